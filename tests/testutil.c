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

/* ---- models built in code ---- */

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* Append x to a malloc'd array of pointers of n entries. */
static void
push(void ***arr, size_t *n, void *x)
{
	void **a = realloc(*arr, (*n + 1) * sizeof *a);

	assert_non_null(a);
	a[(*n)++] = x;
	*arr = a;
}

static void *
xcalloc(size_t size)
{
	void *p = calloc(1, size);

	assert_non_null(p);
	return p;
}

/* Split "a,b,,c" into malloc'd strings (empty ones too); "" gives none. */
static void
split(const char *list, char ***out, size_t *n)
{
	const char *p = list;

	*out = NULL;
	*n = 0;
	if (!*list)
		return;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char *s = malloc(len + 1);
		assert_non_null(s);
		memcpy(s, p, len);
		s[len] = 0;
		push((void ***)out, n, s);
		if (!e)
			break;
		p = e + 1;
	}
}

Onnx__ModelProto *
tu_mb_new(int64_t opset)
{
	Onnx__ModelProto *m = xcalloc(sizeof *m);
	Onnx__GraphProto *g = xcalloc(sizeof *g);

	onnx__model_proto__init(m);
	onnx__graph_proto__init(g);
	g->name = xstrdup("g");
	m->graph = g;
	m->has_ir_version = 1;
	m->ir_version = 8;
	if (opset > 0)
		tu_mb_opset(m, "", opset);
	return m;
}

void
tu_mb_opset(Onnx__ModelProto *m, const char *domain, int64_t version)
{
	Onnx__OperatorSetIdProto *o = xcalloc(sizeof *o);

	onnx__operator_set_id_proto__init(o);
	o->domain = xstrdup(domain);
	o->has_version = 1;
	o->version = version;
	push((void ***)&m->opset_import, &m->n_opset_import, o);
}

static Onnx__ValueInfoProto *
value_info(const char *name, int32_t dtype, const char *shape)
{
	Onnx__ValueInfoProto *v = xcalloc(sizeof *v);

	onnx__value_info_proto__init(v);
	v->name = xstrdup(name);
	if (!dtype && !shape)
		return v;
	Onnx__TypeProto *t = xcalloc(sizeof *t);
	Onnx__TypeProto__Tensor *tt = xcalloc(sizeof *tt);
	onnx__type_proto__init(t);
	onnx__type_proto__tensor__init(tt);
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	v->type = t;
	if (dtype) {
		tt->has_elem_type = 1;
		tt->elem_type = dtype;
	}
	if (!shape)
		return v;
	char **dims;
	size_t n;
	tt->shape = xcalloc(sizeof *tt->shape);
	onnx__tensor_shape_proto__init(tt->shape);
	split(shape, &dims, &n);
	for (size_t i = 0; i < n; i++) {
		Onnx__TensorShapeProto__Dimension *d = xcalloc(sizeof *d);
		char *end;
		long long x = strtoll(dims[i], &end, 10);
		onnx__tensor_shape_proto__dimension__init(d);
		if (*dims[i] && !*end) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = x;
		} else if (strcmp(dims[i], "?") != 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = xstrdup(dims[i]);
		}
		push((void ***)&tt->shape->dim, &tt->shape->n_dim, d);
		free(dims[i]);
	}
	free(dims);
	return v;
}

void
tu_mb_input(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape)
{
	push((void ***)&m->graph->input, &m->graph->n_input, value_info(name, dtype, shape));
}

void
tu_mb_output(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape)
{
	push((void ***)&m->graph->output, &m->graph->n_output, value_info(name, dtype, shape));
}

void
tu_mb_value_info(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape)
{
	push((void ***)&m->graph->value_info, &m->graph->n_value_info,
	     value_info(name, dtype, shape));
}

void
tu_mb_init(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape,
           const int64_t *vals)
{
	Onnx__TensorProto *t = xcalloc(sizeof *t);
	char **dims;
	size_t n;
	uint64_t numel = 1;

	onnx__tensor_proto__init(t);
	t->name = xstrdup(name);
	t->has_data_type = 1;
	t->data_type = dtype;
	split(shape, &dims, &n);
	t->dims = calloc(n + 1, sizeof *t->dims);
	assert_non_null(t->dims);
	t->n_dims = n;
	for (size_t i = 0; i < n; i++) {
		t->dims[i] = strtoll(dims[i], NULL, 10);
		numel *= (uint64_t)t->dims[i];
		free(dims[i]);
	}
	free(dims);
	size_t bytes = (size_t)onnx_dtype_bytes(dtype, numel);
	t->has_raw_data = 1;
	t->raw_data.len = bytes;
	t->raw_data.data = calloc(1, bytes + 1);
	assert_non_null(t->raw_data.data);
	if (vals && dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
		memcpy(t->raw_data.data, vals, bytes); /* little-endian hosts */
	push((void ***)&m->graph->initializer, &m->graph->n_initializer, t);
}

Onnx__NodeProto *
tu_mb_node(Onnx__ModelProto *m, const char *name, const char *op, const char *ins, const char *outs)
{
	Onnx__NodeProto *n = xcalloc(sizeof *n);

	onnx__node_proto__init(n);
	n->name = xstrdup(name);
	n->op_type = xstrdup(op);
	split(ins, &n->input, &n->n_input);
	split(outs, &n->output, &n->n_output);
	push((void ***)&m->graph->node, &m->graph->n_node, n);
	return n;
}

void
tu_mb_domain(Onnx__NodeProto *n, const char *domain)
{
	free(n->domain);
	n->domain = xstrdup(domain);
}

static Onnx__AttributeProto *
attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type)
{
	Onnx__AttributeProto *a = xcalloc(sizeof *a);

	onnx__attribute_proto__init(a);
	a->name = xstrdup(name);
	a->has_type = 1;
	a->type = type;
	push((void ***)&n->attribute, &n->n_attribute, a);
	return a;
}

void
tu_mb_attr_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);

	a->has_i = 1;
	a->i = v;
}

void
tu_mb_attr_str(Onnx__NodeProto *n, const char *name, const char *v)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);

	a->has_s = 1;
	a->s.len = strlen(v);
	a->s.data = (uint8_t *)xstrdup(v);
}

int
tu_mb_load(shd_ctx *c, Onnx__ModelProto *m, onnx_model **out)
{
	size_t n;
	uint8_t *buf = tu_pack(&m->base, &n);
	int rc = onnx_load_buffer(c, buf, n, "t.onnx", ".", out);

	free(buf);
	return rc;
}

void
tu_mb_free(Onnx__ModelProto *m)
{
	protobuf_c_message_free_unpacked(&m->base, NULL);
}
