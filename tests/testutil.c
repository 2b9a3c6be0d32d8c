/* Helpers shared by the cmocka tests. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *d;

	if (!base || !*base)
		base = "/tmp";
	assert_true(asprintf(&d, "%s/onnxshard-test-XXXXXX", base) > 0);
	assert_non_null(mkdtemp(d));
	return d;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

void
tu_rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *
tu_path(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

void
tu_write(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

uint8_t *
tu_read(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return buf;
}

uint8_t *
tu_pack(const ProtobufCMessage *m, size_t *n)
{
	uint8_t *buf;

	*n = protobuf_c_message_get_packed_size(m);
	buf = malloc(*n + 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), *n);
	return buf;
}

void
tu_model_init(tu_model *t)
{
	static char x[] = "x", w[] = "w", y[] = "y", mm[] = "MatMul", dom[] = "";
	Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	Onnx__NodeProto n = ONNX__NODE_PROTO__INIT;
	Onnx__TensorProto tw = ONNX__TENSOR_PROTO__INIT;
	Onnx__OperatorSetIdProto o = ONNX__OPERATOR_SET_ID_PROTO__INIT;

	memset(t, 0, sizeof *t);
	t->model = m;
	t->graph = g;
	t->node = n;
	t->w = tw;
	t->opset = o;
	t->opset.domain = dom;
	t->opset.has_version = 1;
	t->opset.version = 17;
	t->opsets[0] = &t->opset;
	t->model.has_ir_version = 1;
	t->model.ir_version = 8;
	t->model.n_opset_import = 1;
	t->model.opset_import = t->opsets;
	t->model.graph = &t->graph;
	t->node_in[0] = x;
	t->node_in[1] = w;
	t->node_out[0] = y;
	t->node.op_type = mm;
	t->node.n_input = 2;
	t->node.input = t->node_in;
	t->node.n_output = 1;
	t->node.output = t->node_out;
	t->nodes[0] = &t->node;
	t->graph.n_node = 1;
	t->graph.node = t->nodes;
	for (int i = 0; i < 16; i++)
		t->data[i] = (float)i;
	t->dims[0] = t->dims[1] = 4;
	t->w.name = w;
	t->w.n_dims = 2;
	t->w.dims = t->dims;
	t->w.has_data_type = 1;
	t->w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	t->w.has_raw_data = 1;
	t->w.raw_data.len = sizeof t->data;
	t->w.raw_data.data = (uint8_t *)t->data;
	t->inits[0] = &t->w;
	t->graph.n_initializer = 1;
	t->graph.initializer = t->inits;
}

void
tu_model_external(tu_model *t, const char *loc, const char *off, const char *len)
{
	static char kl[] = "location", ko[] = "offset", kn[] = "length";
	char *keys[3] = {kl, ko, kn};
	const char *vals[3] = {loc, off, len};
	size_t n = 0;

	t->w.has_raw_data = 0;
	t->w.raw_data.len = 0;
	t->w.raw_data.data = NULL;
	t->w.has_data_location = 1;
	t->w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	for (int i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		Onnx__StringStringEntryProto e = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
		e.key = keys[i];
		e.value = (char *)vals[i];
		t->ext[n] = e;
		t->extp[n] = &t->ext[n];
		n++;
	}
	t->w.n_external_data = n;
	t->w.external_data = t->extp;
}
