/* Tests of onnx/: round trip over ONNX's test models, external data,
 * gzip, unknown fields, crc32, and every refusal on load. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

#ifndef ONNX_TESTDATA
#define ONNX_TESTDATA "/usr/share/libonnx-testdata/data"
#endif

static shd_ctx *
ctx(void)
{
	shd_ctx *c = onnxshard_new(NULL, NULL, 1);
	assert_non_null(c);
	return c;
}

/* Load a packed tu_model written to dir/model.onnx; return status. */
static int
load_packed(shd_ctx *c, const char *dir, tu_model *t, onnx_model **m)
{
	size_t n;
	uint8_t *buf = tu_pack(&t->model.base, &n);
	char *p = tu_path(dir, "model.onnx");
	int rc;

	tu_write(p, buf, n);
	rc = onnx_load(c, p, m);
	free(buf);
	free(p);
	return rc;
}

/* ---- round trip over every model in libonnx-testdata ---- */

static char **models;
static size_t nmodels, capmodels;

static int
collect(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_F && strcmp(p + strlen(p) - 10, "model.onnx") == 0) {
		if (nmodels == capmodels) {
			capmodels = capmodels ? 2 * capmodels : 256;
			models = realloc(models, capmodels * sizeof *models);
			assert_non_null(models);
		}
		models[nmodels++] = strdup(p);
	}
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
same_initializers(onnx_model *a, onnx_model *b)
{
	Onnx__GraphProto *ga = a->proto->graph, *gb = b->proto->graph;

	assert_int_equal(ga->n_initializer, gb->n_initializer);
	for (size_t i = 0; i < ga->n_initializer; i++) {
		Onnx__TensorProto *x = ga->initializer[i], *y = gb->initializer[i];
		uint64_t n = onnx_tensor_bytes(x);
		assert_string_equal(x->name, y->name);
		assert_int_equal(onnx_tensor_numel(x), onnx_tensor_numel(y));
		if (n == 0)
			continue;
		uint8_t *bx = malloc(n), *by = malloc(n);
		assert_int_equal(onnx_tensor_read(a, x, 0, n, bx), 0);
		assert_int_equal(onnx_tensor_read(b, y, 0, n, by), 0);
		assert_memory_equal(bx, by, n);
		free(bx);
		free(by);
	}
}

static void
test_roundtrip_testdata(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *out = tu_path(dir, "m.onnx");
	char *outdata = tu_path(dir, "m.onnx.data");
	size_t external = 0;

	(void)state;
	assert_int_equal(nftw(ONNX_TESTDATA, collect, 16, FTW_PHYS), 0);
	qsort(models, nmodels, sizeof *models, cmp_str);
	assert_true(nmodels > 1000);
	for (size_t i = 0; i < nmodels; i++) {
		onnx_model *m, *r;
		size_t na, nb;

		if (onnx_load(c, models[i], &m))
			fail_msg("%s", onnxshard_error(c));
		/* inline: the reloaded model packs to the same bytes */
		assert_int_equal(onnx_save(m, out, 0), 0);
		assert_int_equal(onnx_load(c, out, &r), 0);
		uint8_t *a = tu_pack(&m->proto->base, &na), *b = tu_pack(&r->proto->base, &nb);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na);
		free(a);
		free(b);
		onnx_model_free(r);
		/* external: same graph, same tensor bytes, aligned offsets */
		remove(outdata);
		assert_int_equal(onnx_save(m, out, 1), 0);
		if (onnx_load(c, out, &r))
			fail_msg("%s: %s", models[i], onnxshard_error(c));
		assert_int_equal(r->proto->graph->n_node, m->proto->graph->n_node);
		for (size_t j = 0; j < m->proto->graph->n_node; j++)
			assert_string_equal(r->proto->graph->node[j]->op_type,
			                    m->proto->graph->node[j]->op_type);
		same_initializers(m, r);
		for (size_t j = 0; j < r->proto->graph->n_initializer; j++) {
			Onnx__TensorProto *t = r->proto->graph->initializer[j];
			if (t->has_data_location && t->data_location) {
				external++;
				for (size_t k = 0; k < t->n_external_data; k++)
					if (!strcmp(t->external_data[k]->key, "offset"))
						assert_int_equal(
						        strtoull(t->external_data[k]->value, NULL,
						                 10) %
						                ONNX_EXT_ALIGN,
						        0);
			}
		}
		onnx_model_free(r);
		onnx_model_free(m);
		free(models[i]);
	}
	print_message("round trip: %zu models, %zu tensors through external data\n", nmodels,
	              external);
	assert_true(external >= 32);
	free(models);
	tu_rmtree(dir);
	free(dir);
	free(out);
	free(outdata);
	onnxshard_free(c);
}

/* ---- external data ---- */

static void
test_external_read(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *dp = tu_path(dir, "w.bin");
	uint8_t blob[200];
	tu_model t;
	onnx_model *m;
	float got[16];

	(void)state;
	tu_model_init(&t);
	memset(blob, 0xee, sizeof blob);
	memcpy(blob + 100, t.data, sizeof t.data);
	tu_write(dp, blob, sizeof blob);
	tu_model_external(&t, "w.bin", "100", "64");
	assert_int_equal(load_packed(c, dir, &t, &m), 0);
	assert_int_equal(m->n_ext, 1);
	assert_int_equal(onnx_tensor_read(m, m->proto->graph->initializer[0], 0, 64, got), 0);
	assert_memory_equal(got, t.data, 64);
	/* length may be left out */
	onnx_model_free(m);
	tu_model_external(&t, "w.bin", "100", NULL);
	assert_int_equal(load_packed(c, dir, &t, &m), 0);
	assert_int_equal(onnx_tensor_read(m, m->proto->graph->initializer[0], 4, 8, got), 0);
	assert_memory_equal(got, t.data + 1, 8);
	/* save writes it inline or external again */
	char *out = tu_path(dir, "out.onnx");
	onnx_model *r;
	assert_int_equal(onnx_save(m, out, 1), 0);
	assert_int_equal(onnx_load(c, out, &r), 0);
	same_initializers(m, r);
	onnx_model_free(r);
	onnx_model_free(m);
	free(out);
	free(dp);
	tu_rmtree(dir);
	free(dir);
	onnxshard_free(c);
}

static void
test_typed_fields(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *out = tu_path(dir, "o.onnx");
	tu_model t;
	onnx_model *m, *r;
	float got[16];

	(void)state;
	tu_model_init(&t);
	t.w.has_raw_data = 0;
	t.w.n_float_data = 16;
	t.w.float_data = t.data;
	assert_int_equal(load_packed(c, dir, &t, &m), 0);
	assert_null(onnx_tensor_raw(m, m->proto->graph->initializer[0], &(uint64_t){0}));
	assert_int_equal(
	        onnx_tensor_read(m, m->proto->graph->initializer[0], 2, 60, (uint8_t *)got + 2), 0);
	assert_memory_equal((uint8_t *)got + 2, (uint8_t *)t.data + 2, 60);
	/* written external, typed values become raw bytes */
	assert_int_equal(onnx_save(m, out, 1), 0);
	assert_int_equal(onnx_load(c, out, &r), 0);
	assert_non_null(onnx_tensor_raw(r, r->proto->graph->initializer[0], &(uint64_t){0}));
	same_initializers(m, r);
	onnx_model_free(r);
	onnx_model_free(m);
	free(out);
	tu_rmtree(dir);
	free(dir);
	onnxshard_free(c);
}

/* ---- 4-bit and float8 types: names, packed sizes, raw and int32_data ---- */

static void
test_subbyte(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *out = tu_path(dir, "o.onnx");
	uint8_t raw[16], got[16];
	int32_t typed[16];
	tu_model t;
	onnx_model *m, *r;

	(void)state;
	assert_string_equal(onnx_dtype_name(ONNX_DT_INT4), "int4");
	assert_string_equal(onnx_dtype_name(ONNX_DT_UINT4), "uint4");
	assert_string_equal(onnx_dtype_name(ONNX_DT_FLOAT8E5M2FNUZ), "float8e5m2fnuz");
	assert_int_equal(onnx_dtype_from_name("float8e4m3fn"), ONNX_DT_FLOAT8E4M3FN);
	assert_int_equal(onnx_dtype_size(ONNX_DT_INT4), 0);
	assert_int_equal(onnx_dtype_bits(ONNX_DT_INT4), 4);
	assert_int_equal(onnx_dtype_size(ONNX_DT_FLOAT8E4M3FNUZ), 1);
	assert_int_equal(onnx_dtype_bytes(ONNX_DT_UINT4, 5), 3);
	assert_int_equal(onnx_dtype_bytes(ONNX_DT_UINT4, 6), 3);
	assert_int_equal(onnx_dtype_bytes(ONNX_DT_FLOAT8E5M2, 5), 5);
	assert_int_equal(onnx_dtype_bits(ONNX__TENSOR_PROTO__DATA_TYPE__STRING), 0);
	for (int i = 0; i < 16; i++)
		raw[i] = (uint8_t)(17 * i), typed[i] = 17 * i;
	/* int4 [4, 4]: 8 bytes raw, 8 int32_data entries of one byte each */
	tu_model_init(&t);
	t.w.data_type = ONNX_DT_INT4;
	t.w.raw_data = (ProtobufCBinaryData){8, raw};
	assert_int_equal(load_packed(c, dir, &t, &m), 0);
	assert_int_equal(onnx_tensor_bytes(m->proto->graph->initializer[0]), 8);
	onnx_model_free(m);
	t.w.raw_data.len = 16; /* one byte a value: refused */
	assert_int_equal(load_packed(c, dir, &t, &m), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "raw_data holds 16 bytes, dims need 8"));
	t.w.has_raw_data = 0;
	t.w.n_int32_data = 16;
	t.w.int32_data = typed;
	assert_int_equal(load_packed(c, dir, &t, &m), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "holds 16 values, dims need 8"));
	t.w.n_int32_data = 8;
	assert_int_equal(load_packed(c, dir, &t, &m), 0);
	assert_int_equal(onnx_tensor_read(m, m->proto->graph->initializer[0], 1, 7, got), 0);
	assert_memory_equal(got, raw + 1, 7);
	/* written external, the packed bytes; odd counts round up */
	assert_int_equal(onnx_save(m, out, 1), 0);
	assert_int_equal(onnx_load(c, out, &r), 0);
	same_initializers(m, r);
	onnx_model_free(r);
	onnx_model_free(m);
	t.w.data_type = ONNX_DT_UINT4;
	t.dims[0] = t.dims[1] = 3;
	t.w.n_int32_data = 5;
	assert_int_equal(load_packed(c, dir, &t, &m), 0);
	onnx_model_free(m);
	/* float8: a byte a value */
	t.w.data_type = ONNX_DT_FLOAT8E4M3FN;
	t.w.n_int32_data = 9;
	assert_int_equal(load_packed(c, dir, &t, &m), 0);
	assert_int_equal(onnx_tensor_bytes(m->proto->graph->initializer[0]), 9);
	assert_int_equal(onnx_tensor_read(m, m->proto->graph->initializer[0], 0, 9, got), 0);
	assert_memory_equal(got, raw, 9);
	onnx_model_free(m);
	free(out);
	tu_rmtree(dir);
	free(dir);
	onnxshard_free(c);
}

/* ---- gzip ---- */

static void
test_gzip(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *gp = tu_path(dir, "m.onnx.gz");
	tu_model t;
	size_t n, gn;
	uint8_t *buf, *gz;
	onnx_model *m;

	(void)state;
	tu_model_init(&t);
	buf = tu_pack(&t.model.base, &n);
	gzFile f = gzopen(gp, "wb");
	assert_non_null(f);
	assert_int_equal(gzwrite(f, buf, (unsigned)n), (int)n);
	assert_int_equal(gzclose(f), Z_OK);
	assert_int_equal(onnx_load(c, gp, &m), 0);
	assert_string_equal(m->proto->graph->node[0]->op_type, "MatMul");
	onnx_model_free(m);
	/* truncated gzip, corrupt gzip */
	gz = tu_read(gp, &gn);
	tu_write(gp, gz, gn / 2);
	assert_int_equal(onnx_load(c, gp, &m), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "bad gzip stream"));
	for (size_t i = 12; i < gn - 8; i++)
		gz[i] ^= 0x5a;
	tu_write(gp, gz, gn);
	assert_int_equal(onnx_load(c, gp, &m), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "bad gzip stream"));
	free(gz);
	free(buf);
	free(gp);
	tu_rmtree(dir);
	free(dir);
	onnxshard_free(c);
}

/* ---- unknown fields survive ---- */

static void
test_unknown_fields(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *in = tu_path(dir, "in.onnx"), *out = tu_path(dir, "out.onnx");
	tu_model t;
	size_t n, n2;
	uint8_t *buf, *back;
	onnx_model *m;
	/* field 1000, varint 42; field 1001, bytes "hi" */
	static const uint8_t extra[] = {0xc0, 0x3e, 42, 0xca, 0x3e, 2, 'h', 'i'};

	(void)state;
	tu_model_init(&t);
	buf = tu_pack(&t.model.base, &n);
	buf = realloc(buf, n + sizeof extra);
	memcpy(buf + n, extra, sizeof extra);
	tu_write(in, buf, n + sizeof extra);
	assert_int_equal(onnx_load(c, in, &m), 0);
	assert_int_equal(m->proto->base.n_unknown_fields, 2);
	assert_int_equal(onnx_save(m, out, 0), 0);
	back = tu_read(out, &n2);
	assert_int_equal(n2, n + sizeof extra);
	assert_memory_equal(back, buf, n2);
	onnx_model_free(m);
	free(back);
	free(buf);
	free(in);
	free(out);
	tu_rmtree(dir);
	free(dir);
	onnxshard_free(c);
}

static void
test_crc32(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *p = tu_path(dir, "f");
	uint32_t crc;
	uint64_t n;

	(void)state;
	tu_write(p, "123456789", 9);
	assert_int_equal(onnx_crc32_file(c, p, &crc, &n), 0);
	assert_int_equal(crc, 0xcbf43926u); /* the standard check value */
	assert_int_equal(n, 9);
	free(p);
	tu_rmtree(dir);
	free(dir);
	onnxshard_free(c);
}

/* ---- refusals ---- */

typedef struct {
	const char *what; /* expected fragment of the diagnostic */
	void (*mutate)(tu_model *t, const char *dir);
} bad_case;

static void
bad_dtype(tu_model *t, const char *d)
{
	(void)d;
	t->w.data_type = 99;
}
static void
no_dtype(tu_model *t, const char *d)
{
	(void)d;
	t->w.has_data_type = 0;
}
static void
neg_dim(tu_model *t, const char *d)
{
	(void)d;
	t->dims[0] = -4;
}
static void
huge_dims(tu_model *t, const char *d)
{
	(void)d;
	t->dims[0] = t->dims[1] = INT64_MAX / 2;
}
static void
short_raw(tu_model *t, const char *d)
{
	(void)d;
	t->w.raw_data.len = 60;
}
static void
long_raw(tu_model *t, const char *d)
{
	(void)d;
	t->dims[0] = 3;
}
static void
wrong_typed(tu_model *t, const char *d)
{
	(void)d;
	t->w.has_raw_data = 0;
	t->w.n_float_data = 15;
	t->w.float_data = t->data;
}
static void
ext_abs(tu_model *t, const char *d)
{
	(void)d;
	tu_model_external(t, "/etc/passwd", "0", "64");
}
static void
ext_dotdot(tu_model *t, const char *d)
{
	(void)d;
	tu_model_external(t, "../w.bin", "0", "64");
}
static void
ext_dotdot2(tu_model *t, const char *d)
{
	(void)d;
	tu_model_external(t, "sub/../../w.bin", "0", "64");
}
static void
ext_missing(tu_model *t, const char *d)
{
	(void)d;
	tu_model_external(t, "nothere.bin", "0", "64");
}
static void
ext_noloc(tu_model *t, const char *d)
{
	(void)d;
	tu_model_external(t, NULL, "0", "64");
}

static void
write_blob(const char *dir, const char *name, size_t n)
{
	char *p = tu_path(dir, name);
	uint8_t *b = calloc(1, n + 1);
	tu_write(p, b, n);
	free(b);
	free(p);
}

static void
ext_past_end(tu_model *t, const char *d)
{
	write_blob(d, "w.bin", 100);
	tu_model_external(t, "w.bin", "50", "64");
}
static void
ext_overflow(tu_model *t, const char *d)
{
	write_blob(d, "w.bin", 100);
	tu_model_external(t, "w.bin", "18446744073709551610", "64");
}
static void
ext_badoff(tu_model *t, const char *d)
{
	write_blob(d, "w.bin", 100);
	tu_model_external(t, "w.bin", "-1", "64");
}
static void
ext_badlen(tu_model *t, const char *d)
{
	write_blob(d, "w.bin", 100);
	tu_model_external(t, "w.bin", "0", "32");
}
static void
ext_symlink(tu_model *t, const char *d)
{
	char *p = tu_path(d, "link.bin");
	write_blob(d, "w.bin", 100);
	assert_int_equal(symlink("w.bin", p), 0);
	free(p);
	tu_model_external(t, "link.bin", "0", "64");
}
static void
ext_dir_symlink(tu_model *t, const char *d)
{
	char *p = tu_path(d, "sub");
	assert_int_equal(symlink("/etc", p), 0);
	free(p);
	tu_model_external(t, "sub/passwd", "0", "64");
}
static void
no_graph(tu_model *t, const char *d)
{
	(void)d;
	t->model.graph = NULL;
}
static void
no_ir(tu_model *t, const char *d)
{
	(void)d;
	t->model.has_ir_version = 0;
}
static void
no_opset(tu_model *t, const char *d)
{
	(void)d;
	t->model.n_opset_import = 0;
}
static void
bad_domain(tu_model *t, const char *d)
{
	static char dom[] = "com.example";
	(void)d;
	t->node.domain = dom;
}

static const bad_case bad_cases[] = {
        {"unknown data type 99", bad_dtype},
        {"unknown data type 0", no_dtype},
        {"negative dimension -4", neg_dim},
        {"element count overflows", huge_dims},
        {"raw_data holds 60 bytes, dims need 64", short_raw},
        {"raw_data holds 64 bytes, dims need 48", long_raw},
        {"holds 15 values, dims need 16", wrong_typed},
        {"'/etc/passwd' is absolute", ext_abs},
        {"'../w.bin' leaves the model's folder", ext_dotdot},
        {"'sub/../../w.bin' leaves the model's folder", ext_dotdot2},
        {"external data file 'nothere.bin': No such file", ext_missing},
        {"external data without a location", ext_noloc},
        {"external data past the end of 'w.bin'", ext_past_end},
        {"external data past the end of 'w.bin'", ext_overflow},
        {"bad external data offset or length", ext_badoff},
        {"external data holds 32 bytes, dims need 64", ext_badlen},
        {"'link.bin' is a symlink", ext_symlink},
        {"'sub/passwd' leaves the model's folder", ext_dir_symlink},
        {"not an ONNX model (no graph)", no_graph},
        {"not an ONNX model (no ir_version)", no_ir},
        {"no opset_import", no_opset},
        {"domain 'com.example' is not in opset_import", bad_domain},
};

static void
test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		shd_ctx *c = ctx();
		char *dir = tu_tmpdir();
		tu_model t;
		onnx_model *m = NULL;

		tu_model_init(&t);
		bad_cases[i].mutate(&t, dir);
		assert_int_equal(load_packed(c, dir, &t, &m), ONNXSHARD_EINPUT);
		assert_null(m);
		const char *e = onnxshard_error(c);
		if (!strstr(e, bad_cases[i].what))
			fail_msg("case %zu: want '%s', got '%s'", i, bad_cases[i].what, e);
		assert_non_null(strstr(e, "model.onnx: ")); /* names the file */
		assert_null(strchr(e, '\n'));
		tu_rmtree(dir);
		free(dir);
		onnxshard_free(c);
	}
}

static void
test_bad_files(void **state)
{
	shd_ctx *c = ctx();
	char *dir = tu_tmpdir(), *p = tu_path(dir, "f.onnx");
	onnx_model *m;
	uint8_t junk[4096];
	uint32_t x = 12345;

	(void)state;
	assert_int_equal(onnx_load(c, p, &m), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "No such file"));
	assert_int_equal(onnx_load(c, dir, &m), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "is a directory"));
	tu_write(p, "", 0);
	assert_int_equal(onnx_load(c, p, &m), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "empty file"));
	const char *text = "ir_version: 8\ngraph {\n  node { op_type: \"Relu\" }\n}\n";
	tu_write(p, text, strlen(text));
	assert_int_equal(onnx_load(c, p, &m), ONNXSHARD_EINPUT);
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < sizeof junk; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			junk[i] = (uint8_t)x;
		}
		tu_write(p, junk, sizeof junk >> (round % 8));
		assert_int_equal(onnx_load(c, p, &m), ONNXSHARD_EINPUT);
	}
	free(p);
	tu_rmtree(dir);
	free(dir);
	onnxshard_free(c);
}

/* Every proper prefix of a real model is refused. */
static void
test_truncated(void **state)
{
	shd_ctx *c = ctx();
	const char *src = ONNX_TESTDATA "/pytorch-converted/test_Conv2d/model.onnx";
	size_t n;
	uint8_t *buf = tu_read(src, &n);
	onnx_model *m;

	(void)state;
	assert_int_equal(onnx_load_buffer(c, buf, n, src, ".", &m), 0);
	onnx_model_free(m);
	for (size_t len = 0; len < n; len++) {
		int rc = onnx_load_buffer(c, buf, len, "t.onnx", ".", &m);
		if (rc != ONNXSHARD_EINPUT)
			fail_msg("prefix of %zu of %zu bytes accepted", len, n);
	}
	free(buf);
	onnxshard_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_external_read),  cmocka_unit_test(test_typed_fields),
	        cmocka_unit_test(test_subbyte),        cmocka_unit_test(test_gzip),
	        cmocka_unit_test(test_unknown_fields), cmocka_unit_test(test_crc32),
	        cmocka_unit_test(test_refusals),       cmocka_unit_test(test_bad_files),
	        cmocka_unit_test(test_truncated),      cmocka_unit_test(test_roundtrip_testdata),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
