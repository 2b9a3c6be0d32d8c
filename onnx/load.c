/* Loading: file or gzip bytes -> ModelProto, every tensor checked, external
 * data mapped read-only after the path is proven to stay in the model's folder. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "onnx_impl.h"

#define MAX_MODEL_BYTES ((uint64_t)1 << 31) /* protobuf's own 2 GiB limit */

/* The most protobuf bytes c accepts (onnxshard_set_limits). */
static uint64_t
proto_limit(const shd_ctx *c)
{
	return c->max_model_bytes < MAX_MODEL_BYTES ? c->max_model_bytes : MAX_MODEL_BYTES;
}

/* protobuf-c's allocator: its free gives no size, so each block carries
 * its own in front, for the context's allocator (which is told every
 * size). Whatever goes into an unpacked tree comes from here. */
typedef union {
	size_t size; /* of the whole block, header included */
	max_align_t align;
} pb_head;

static void *
pb_alloc(void *ud, size_t n)
{
	shd_ctx *c = ud;
	pb_head *h;

	if (n > SIZE_MAX - sizeof *h) {
		c->n_refused++;
		return NULL;
	}
	if (!(h = shd_alloc(c, sizeof *h + n)))
		return NULL;
	h->size = sizeof *h + n;
	return h + 1;
}

static void
pb_free(void *ud, void *p)
{
	if (p) {
		pb_head *h = (pb_head *)p - 1;
		shd_free(ud, h, h->size);
	}
}

static const struct {
	const char *name;
	uint8_t bits; /* per element; 0: string (no fixed size) */
} dtypes[] = {
        [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT] = {"float32", 32},
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT8] = {"uint8", 8},
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT8] = {"int8", 8},
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT16] = {"uint16", 16},
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT16] = {"int16", 16},
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT32] = {"int32", 32},
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT64] = {"int64", 64},
        [ONNX__TENSOR_PROTO__DATA_TYPE__STRING] = {"string", 0},
        [ONNX__TENSOR_PROTO__DATA_TYPE__BOOL] = {"bool", 8},
        [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16] = {"float16", 16},
        [ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE] = {"float64", 64},
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT32] = {"uint32", 32},
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT64] = {"uint64", 64},
        [ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64] = {"complex64", 64},
        [ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128] = {"complex128", 128},
        [ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16] = {"bfloat16", 16},
        [ONNX_DT_FLOAT8E4M3FN] = {"float8e4m3fn", 8},
        [ONNX_DT_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 8},
        [ONNX_DT_FLOAT8E5M2] = {"float8e5m2", 8},
        [ONNX_DT_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 8},
        [ONNX_DT_UINT4] = {"uint4", 4},
        [ONNX_DT_INT4] = {"int4", 4},
};
#define NDTYPES ((int32_t)(sizeof dtypes / sizeof dtypes[0]))

const char *
onnx_dtype_name(int32_t dt)
{
	return dt > 0 && dt < NDTYPES ? dtypes[dt].name : NULL;
}

unsigned
onnx_dtype_bits(int32_t dt)
{
	return dt > 0 && dt < NDTYPES ? dtypes[dt].bits : 0;
}

size_t
onnx_dtype_size(int32_t dt)
{
	unsigned b = onnx_dtype_bits(dt);

	return b % 8 ? 0 : b / 8;
}

uint64_t
onnx_dtype_bytes(int32_t dt, uint64_t n)
{
	unsigned b = onnx_dtype_bits(dt);

	return b % 8 ? (n * b + 7) / 8 : n * (b / 8);
}

int
onnx_dtype_from_name(const char *name)
{
	for (int32_t i = 1; i < NDTYPES; i++)
		if (dtypes[i].name && strcmp(dtypes[i].name, name) == 0)
			return i;
	return -1;
}

uint64_t
onnx_tensor_numel(const Onnx__TensorProto *t)
{
	uint64_t n = 1;

	for (size_t i = 0; i < t->n_dims; i++)
		n *= (uint64_t)t->dims[i];
	return n;
}

uint64_t
onnx_tensor_bytes(const Onnx__TensorProto *t)
{
	return onnx_dtype_bytes(t->data_type, onnx_tensor_numel(t));
}

/* The typed field a dtype is stored in when not raw, and how many entries
 * one element takes there. */
static size_t
typed_count(const Onnx__TensorProto *t, int *per)
{
	*per = 1;
	switch (t->data_type) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->n_float_data;
	case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: *per = 2; return t->n_float_data;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return t->n_int64_data;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->n_double_data;
	case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: *per = 2; return t->n_double_data;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return t->n_uint64_data;
	case ONNX__TENSOR_PROTO__DATA_TYPE__STRING: return t->n_string_data;
	default: return t->n_int32_data;
	}
}

static const char *
ext_entry(const Onnx__TensorProto *t, const char *key)
{
	for (size_t i = 0; i < t->n_external_data; i++) {
		const Onnx__StringStringEntryProto *e = t->external_data[i];
		if (e->key && strcmp(e->key, key) == 0)
			return e->value ? e->value : "";
	}
	return NULL;
}

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return 1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end)
		return 1;
	*v = x;
	return 0;
}

static int
is_external(const Onnx__TensorProto *t)
{
	return t->has_data_location &&
	       t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

static const onnx_extfile *
find_ext(const onnx_model *m, const char *location)
{
	for (size_t i = 0; i < m->n_ext; i++)
		if (strcmp(m->ext[i].location, location) == 0)
			return &m->ext[i];
	return NULL;
}

/* Refuse a location that is absolute, climbs with "..", is a symlink, or
 * resolves outside the model's folder; map it once. */
static int
map_external(onnx_model *m, const char *location, const char *tname, const onnx_extfile **out)
{
	shd_ctx *c = m->ctx;
	const char *p;
	char *full = NULL, *real = NULL, *realdir = NULL;
	struct stat st;
	int fd = -1, rc = ONNXSHARD_EINPUT;
	size_t n;
	void *map = NULL;

	if ((*out = find_ext(m, location)))
		return 0;
	if (!*location)
		return shd_error(c, rc, "%s: tensor '%s': empty external data location", m->path,
		                 tname);
	if (location[0] == '/')
		return shd_error(c, rc, "%s: tensor '%s': external data location '%s' is absolute",
		                 m->path, tname, location);
	for (p = location; *p;) {
		size_t len = strcspn(p, "/\\");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return shd_error(c, rc,
			                 "%s: tensor '%s': external data location '%s' leaves the "
			                 "model's folder",
			                 m->path, tname, location);
		p += len;
		if (*p)
			p++;
	}
	n = strlen(m->dir) + strlen(location) + 2;
	if (!(full = shd_alloc(c, n)))
		return shd_nomem(c);
	snprintf(full, n, "%s/%s", m->dir, location);
	if (lstat(full, &st) != 0) {
		rc = shd_error(c, rc, "%s: tensor '%s': external data file '%s': %s", m->path,
		               tname, location, strerror(errno));
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		rc = shd_error(c, rc, "%s: tensor '%s': external data file '%s' is a symlink",
		               m->path, tname, location);
		goto out;
	}
	real = shd_realpath(c, full);
	realdir = real ? shd_realpath(c, m->dir) : NULL;
	if ((!real || !realdir) && errno == ENOMEM) {
		rc = shd_nomem(c);
		goto out;
	}
	if (!real || !realdir) {
		rc = shd_error(c, rc, "%s: tensor '%s': external data file '%s': %s", m->path,
		               tname, location, strerror(errno));
		goto out;
	}
	n = strlen(realdir);
	if (strncmp(real, realdir, n) != 0 || (real[n] != '/' && n != 1)) {
		rc = shd_error(
		        c, rc,
		        "%s: tensor '%s': external data location '%s' leaves the model's folder",
		        m->path, tname, location);
		goto out;
	}
	fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = shd_error(
		        c, rc,
		        "%s: tensor '%s': external data file '%s' is not a readable regular file",
		        m->path, tname, location);
		goto out;
	}
	uint64_t total = m->file_bytes + (uint64_t)st.st_size;
	for (size_t i = 0; i < m->n_ext; i++)
		total += m->ext[i].size;
	if (total > c->max_model_bytes && !c->weightless) {
		rc = shd_error(c, rc,
		               "%s: with external data file '%s' the model passes %llu bytes "
		               "(--max-model-bytes)",
		               m->path, location, (unsigned long long)c->max_model_bytes);
		goto out;
	}
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			rc = shd_error(c, ONNXSHARD_EFAIL,
			               "%s: cannot map external data file '%s': %s", m->path,
			               location, strerror(errno));
			goto out;
		}
	}
	/* m->ext holds exactly n_ext entries (its size, when freed) */
	char *loc = shd_strdup(c, location);
	onnx_extfile *ext =
	        loc ? shd_realloc(c, m->ext, m->n_ext * sizeof *ext, (m->n_ext + 1) * sizeof *ext)
	            : NULL;
	if (!ext || !loc) {
		shd_strfree(c, loc);
		if (map)
			munmap(map, (size_t)st.st_size);
		rc = shd_nomem(c);
		goto out;
	}
	m->ext = ext;
	ext[m->n_ext] = (onnx_extfile){loc, map, (size_t)st.st_size, fd};
	*out = &ext[m->n_ext++];
	fd = -1; /* kept open for copies in the kernel */
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	shd_strfree(c, real);
	shd_strfree(c, realdir);
	shd_strfree(c, full);
	return rc;
}

/* Offset and length of an external tensor, as checked on load. */
static void
ext_span(const Onnx__TensorProto *t, uint64_t *off, uint64_t *len)
{
	*off = 0;
	parse_u64(ext_entry(t, "offset"), off);
	*len = onnx_tensor_bytes(t);
	parse_u64(ext_entry(t, "length"), len);
}

/* ---- text: names reach diagnostics (one line each) and JSON (UTF-8) ---- */

/* 0, or a refusal naming where s is ("node #3 input 1"), never s itself. */
static int check_text(onnx_model *m, const char *s, int is_name, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int
check_text(onnx_model *m, const char *s, int is_name, const char *fmt, ...)
{
	int fault = shd_utf8_fault(s, is_name);
	char where[128];
	va_list ap;

	if (!fault)
		return 0;
	va_start(ap, fmt);
	vsnprintf(where, sizeof where, fmt, ap);
	va_end(ap);
	return shd_error(m->ctx, ONNXSHARD_EINPUT, "%s: %s %s", m->path, where,
	                 fault == 1 ? "is not valid UTF-8" : "contains a control character");
}

/* The names of the model's header and main graph, which reports print. */
static int
check_names(onnx_model *m)
{
	const Onnx__ModelProto *p = m->proto;
	const Onnx__GraphProto *g = p->graph;
	int rc;

	if ((rc = check_text(m, p->producer_name, 0, "producer_name")) ||
	    (rc = check_text(m, p->producer_version, 0, "producer_version")) ||
	    (rc = check_text(m, p->domain, 1, "the model's domain")))
		return rc;
	for (size_t i = 0; i < p->n_opset_import; i++)
		if ((rc = check_text(m, p->opset_import[i]->domain, 1, "opset_import #%zu domain",
		                     i)))
			return rc;
	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *n = g->node[i];
		if ((rc = check_text(m, n->name, 1, "node #%zu name", i)) ||
		    (rc = check_text(m, n->op_type, 1, "node #%zu op_type", i)) ||
		    (rc = check_text(m, n->domain, 1, "node #%zu domain", i)))
			return rc;
		for (size_t j = 0; j < n->n_input; j++)
			if ((rc = check_text(m, n->input[j], 1, "node #%zu input %zu", i, j)))
				return rc;
		for (size_t j = 0; j < n->n_output; j++)
			if ((rc = check_text(m, n->output[j], 1, "node #%zu output %zu", i, j)))
				return rc;
	}
	const struct {
		Onnx__ValueInfoProto **v;
		size_t n;
		const char *what;
	} lists[] = {{g->input, g->n_input, "graph input"},
	             {g->output, g->n_output, "graph output"},
	             {g->value_info, g->n_value_info, "value_info"}};
	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
		for (size_t i = 0; i < lists[l].n; i++) {
			const Onnx__ValueInfoProto *v = lists[l].v[i];
			const Onnx__TypeProto *tp = v->type;
			if ((rc = check_text(m, v->name, 1, "%s #%zu name", lists[l].what, i)))
				return rc;
			if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
			    !tp->tensor_type->shape)
				continue;
			const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
			for (size_t d = 0; d < sh->n_dim; d++)
				if (sh->dim[d]->value_case ==
				            ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
				    (rc = check_text(m, sh->dim[d]->dim_param, 1, "%s #%zu dim %zu",
				                     lists[l].what, i, d)))
					return rc;
		}
	return 0;
}

/* Tensor t of m as the loader accepts it, else a refusal naming it (bad
 * input): names and external data entries clean text, a known dtype, dims
 * non-negative with at most 2^60 elements, and data of exactly the size
 * its dims need (external: in a file beside the model, mapped here by
 * map_external, within it; raw_data; or typed fields, a 4-bit tensor one
 * int32_data entry a byte). Strings only in typed fields. Reads t, keeps
 * nothing but the mapping (owned by m). */
static int
check_tensor(onnx_model *m, Onnx__TensorProto *t)
{
	shd_ctx *c = m->ctx;
	const char *name = t->name && *t->name ? t->name : "(unnamed)";
	uint64_t numel = 1, bytes;
	unsigned bits;
	int rc = ONNXSHARD_EINPUT;

	if ((rc = check_text(m, t->name, 1, "a tensor's name")))
		return rc;
	for (size_t i = 0; i < t->n_external_data; i++)
		if ((rc = check_text(m, t->external_data[i]->key, 1,
		                     "tensor '%s': external data key #%zu", name, i)) ||
		    (rc = check_text(m, t->external_data[i]->value, 1,
		                     "tensor '%s': external data value #%zu", name, i)))
			return rc;
	rc = ONNXSHARD_EINPUT;
	if (!t->has_data_type || !onnx_dtype_name(t->data_type))
		return shd_error(c, rc, "%s: tensor '%s': unknown data type %d", m->path, name,
		                 (int)t->data_type);
	for (size_t i = 0; i < t->n_dims; i++) {
		if (t->dims[i] < 0)
			return shd_error(c, rc, "%s: tensor '%s': negative dimension %lld", m->path,
			                 name, (long long)t->dims[i]);
		if (shd_mul_overflow(numel, (uint64_t)t->dims[i], &numel) ||
		    numel > ((uint64_t)1 << 60))
			return shd_error(c, rc, "%s: tensor '%s': element count overflows", m->path,
			                 name);
	}
	bits = onnx_dtype_bits(t->data_type);
	bytes = onnx_dtype_bytes(t->data_type, numel); /* 4-bit: ceil(numel / 2) */
	if (is_external(t)) {
		const char *loc = ext_entry(t, "location");
		const onnx_extfile *f;
		uint64_t off = 0, len = bytes, end;

		if (!loc)
			return shd_error(c, rc, "%s: tensor '%s': external data without a location",
			                 m->path, name);
		if (bits == 0)
			return shd_error(c, rc, "%s: tensor '%s': string tensor in external data",
			                 m->path, name);
		if ((ext_entry(t, "offset") && parse_u64(ext_entry(t, "offset"), &off)) ||
		    (ext_entry(t, "length") && parse_u64(ext_entry(t, "length"), &len)))
			return shd_error(c, rc,
			                 "%s: tensor '%s': bad external data offset or length",
			                 m->path, name);
		if ((rc = map_external(m, loc, name, &f)))
			return rc;
		rc = ONNXSHARD_EINPUT;
		if (shd_add_overflow(off, len, &end) || end > f->size)
			return shd_error(c, rc,
			                 "%s: tensor '%s': external data past the end of '%s' "
			                 "(offset %llu, length %llu, file %zu bytes)",
			                 m->path, name, loc, (unsigned long long)off,
			                 (unsigned long long)len, f->size);
		if (len != bytes)
			return shd_error(
			        c, rc,
			        "%s: tensor '%s': external data holds %llu bytes, dims need %llu",
			        m->path, name, (unsigned long long)len, (unsigned long long)bytes);
		return 0;
	}
	if (t->has_raw_data) {
		if (bits == 0)
			return shd_error(c, rc, "%s: tensor '%s': string tensor in raw_data",
			                 m->path, name);
		if (t->raw_data.len != bytes)
			return shd_error(
			        c, rc, "%s: tensor '%s': raw_data holds %zu bytes, dims need %llu",
			        m->path, name, t->raw_data.len, (unsigned long long)bytes);
		return 0;
	}
	int per;
	size_t have = typed_count(t, &per);
	/* 4-bit: each int32_data entry is one byte of two elements */
	uint64_t need = bits == 4 ? bytes : numel * (uint64_t)per;
	if (have != need)
		return shd_error(c, rc, "%s: tensor '%s': holds %zu values, dims need %llu",
		                 m->path, name, have, (unsigned long long)need);
	return 0;
}

static int check_graph(onnx_model *m, Onnx__GraphProto *g, int depth);

static int
check_sparse(onnx_model *m, Onnx__SparseTensorProto *s)
{
	int rc;

	if (s->values && (rc = check_tensor(m, s->values)))
		return rc;
	if (s->indices && (rc = check_tensor(m, s->indices)))
		return rc;
	return 0;
}

static int
check_node(onnx_model *m, Onnx__NodeProto *n, int depth)
{
	int rc;

	for (size_t i = 0; i < n->n_attribute; i++) {
		Onnx__AttributeProto *a = n->attribute[i];
		if (a->t && (rc = check_tensor(m, a->t)))
			return rc;
		for (size_t j = 0; j < a->n_tensors; j++)
			if ((rc = check_tensor(m, a->tensors[j])))
				return rc;
		if (a->sparse_tensor && (rc = check_sparse(m, a->sparse_tensor)))
			return rc;
		for (size_t j = 0; j < a->n_sparse_tensors; j++)
			if ((rc = check_sparse(m, a->sparse_tensors[j])))
				return rc;
		if (a->g && (rc = check_graph(m, a->g, depth + 1)))
			return rc;
		for (size_t j = 0; j < a->n_graphs; j++)
			if ((rc = check_graph(m, a->graphs[j], depth + 1)))
				return rc;
	}
	return 0;
}

static int
check_graph(onnx_model *m, Onnx__GraphProto *g, int depth)
{
	int rc;

	if (depth > ONNX_MAX_GRAPH_DEPTH)
		return shd_error(m->ctx, ONNXSHARD_EINPUT,
		                 "%s: subgraphs nested deeper than %d levels", m->path,
		                 ONNX_MAX_GRAPH_DEPTH);
	for (size_t i = 0; i < g->n_initializer; i++)
		if ((rc = check_tensor(m, g->initializer[i])))
			return rc;
	for (size_t i = 0; i < g->n_sparse_initializer; i++)
		if ((rc = check_sparse(m, g->sparse_initializer[i])))
			return rc;
	for (size_t i = 0; i < g->n_node; i++)
		if ((rc = check_node(m, g->node[i], depth)))
			return rc;
	return 0;
}

/* The opset a domain is imported at, or NULL ("" and "ai.onnx" are one). */
static const Onnx__OperatorSetIdProto *
find_opset(const Onnx__ModelProto *p, const char *domain)
{
	if (!domain || !strcmp(domain, "ai.onnx"))
		domain = "";
	for (size_t i = 0; i < p->n_opset_import; i++) {
		const char *d = p->opset_import[i]->domain;
		if (!d || !strcmp(d, "ai.onnx"))
			d = "";
		if (!strcmp(d, domain))
			return p->opset_import[i];
	}
	return NULL;
}

static int
check_model(onnx_model *m)
{
	Onnx__ModelProto *p = m->proto;
	int rc;

	if (!p->graph)
		return shd_error(m->ctx, ONNXSHARD_EINPUT, "%s: not an ONNX model (no graph)",
		                 m->path);
	if (!p->has_ir_version || p->ir_version <= 0)
		return shd_error(m->ctx, ONNXSHARD_EINPUT, "%s: not an ONNX model (no ir_version)",
		                 m->path);
	if (p->n_opset_import == 0)
		return shd_error(m->ctx, ONNXSHARD_EINPUT,
		                 "%s: no opset_import (truncated or not an ONNX model)", m->path);
	if ((rc = check_names(m)))
		return rc;
	for (size_t i = 0; i < p->graph->n_node; i++) {
		const Onnx__NodeProto *n = p->graph->node[i];
		if (!find_opset(p, n->domain))
			return shd_error(m->ctx, ONNXSHARD_EINPUT,
			                 "%s: node '%s' (%s): domain '%s' is not in opset_import",
			                 m->path, n->name ? n->name : "",
			                 n->op_type ? n->op_type : "", n->domain ? n->domain : "");
	}
	if ((rc = check_graph(m, p->graph, 0)))
		return rc;
	for (size_t i = 0; i < p->n_functions; i++)
		for (size_t j = 0; j < p->functions[i]->n_node; j++)
			if ((rc = check_node(m, p->functions[i]->node[j], 0)))
				return rc;
	return 0;
}

static char *
dir_of(shd_ctx *c, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (!slash)
		return shd_strdup(c, ".");
	if (slash == path)
		return shd_strdup(c, "/");
	d = shd_alloc(c, (size_t)(slash - path) + 1);
	if (d) {
		memcpy(d, path, (size_t)(slash - path));
		d[slash - path] = 0;
	}
	return d;
}

/* Inflate a gzip stream into a fresh buffer. */
static int
gunzip(shd_ctx *c, const char *path, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen,
       size_t *outcap)
{
	z_stream z;
	size_t cap = n * 4 + 4096, len = 0;
	uint8_t *buf = NULL;
	int zr, rc;

	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return shd_nomem(c);
	z.next_in = (Bytef *)in;
	z.avail_in = 0;
	for (;;) {
		if (len == cap || !buf) {
			uint8_t *nb;
			size_t ncap = buf ? cap * 2 : cap;
			if (ncap > proto_limit(c) + 1)
				ncap = proto_limit(c) + 1;
			if (buf && ncap == cap) {
				rc = shd_error(c, ONNXSHARD_EINPUT,
				               "%s: gzip stream inflates past %llu bytes%s", path,
				               (unsigned long long)proto_limit(c),
				               proto_limit(c) < MAX_MODEL_BYTES
				                       ? " (--max-model-bytes)"
				                       : "");
				goto fail;
			}
			if (!(nb = shd_realloc(c, buf, buf ? cap : 0, ncap))) {
				rc = shd_nomem(c);
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		size_t chunk_in = n - (size_t)(z.next_in - in);
		z.avail_in = chunk_in > UINT_MAX ? UINT_MAX : (uInt)chunk_in;
		size_t room = cap - len;
		z.next_out = buf + len;
		z.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		uInt before = z.avail_out;
		zr = inflate(&z, Z_NO_FLUSH);
		len += before - z.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && !(zr == Z_BUF_ERROR && z.avail_out == 0)) {
			rc = shd_error(c, ONNXSHARD_EINPUT, "%s: bad gzip stream (%s)", path,
			               zr == Z_BUF_ERROR ? "truncated"
			               : z.msg           ? z.msg
			                                 : "corrupt");
			goto fail;
		}
	}
	inflateEnd(&z);
	*out = buf;
	*outlen = len;
	*outcap = cap;
	return 0;
fail:
	inflateEnd(&z);
	shd_free(c, buf, cap);
	return rc;
}

static int
unpack(onnx_model *m, const uint8_t *buf, size_t len)
{
	int rc;

	if (len == 0)
		return shd_error(m->ctx, ONNXSHARD_EINPUT, "%s: empty file", m->path);
	if ((rc = onnx_check_nesting(m, buf, len)))
		return rc;
	uint64_t refused = m->ctx->n_refused;
	m->proto = onnx__model_proto__unpack(&m->pba, len, buf);
	if (!m->proto && m->ctx->n_refused != refused) /* protobuf-c says only NULL */
		return shd_nomem(m->ctx);
	if (!m->proto)
		return shd_error(
		        m->ctx, ONNXSHARD_EINPUT,
		        "%s: not a valid ONNX model (protobuf parse failed: truncated or corrupt)",
		        m->path);
	return check_model(m);
}

static int
new_model(shd_ctx *c, const char *name, const char *dir, onnx_model **out)
{
	onnx_model *m = shd_calloc(c, 1, sizeof *m);

	*out = m;
	if (!m)
		return shd_nomem(c);
	m->ctx = c;
	m->pba = (ProtobufCAllocator){pb_alloc, pb_free, c};
	m->path = shd_strdup(c, name);
	m->dir = dir ? shd_strdup(c, dir) : dir_of(c, name);
	if (!m->path || !m->dir)
		return shd_nomem(c);
	return 0;
}

int
onnx_load_buffer(shd_ctx *c, const uint8_t *buf, size_t len, const char *name, const char *dir,
                 onnx_model **out)
{
	onnx_model *m;
	int rc = new_model(c, name, dir, &m);

	if (!rc) {
		m->file_bytes = len;
		rc = unpack(m, buf, len);
	}
	if (rc) {
		onnx_model_free(m);
		m = NULL;
	}
	*out = m;
	return rc;
}

int
onnx_load_weightless(shd_ctx *c, const char *path, onnx_model **out)
{
	int rc;

	c->weightless = 1;
	rc = onnx_load(c, path, out);
	c->weightless = 0;
	return rc;
}

int
onnx_load(shd_ctx *c, const char *path, onnx_model **out)
{
	onnx_model *m;
	struct stat st;
	void *map = NULL;
	uint8_t *gz = NULL;
	size_t gzlen = 0, gzcap = 0;
	int fd = -1, rc;

	*out = NULL;
	if ((rc = new_model(c, path, NULL, &m)))
		goto done;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: %s", path,
		               S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		goto done;
	}
	m->file_bytes = (uint64_t)st.st_size;
	if (st.st_size == 0) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: empty file", path);
		goto done;
	}
	if ((uint64_t)st.st_size > MAX_MODEL_BYTES) {
		rc = shd_error(c, ONNXSHARD_EINPUT,
		               "%s: larger than protobuf's 2 GiB limit (use external data)", path);
		goto done;
	}
	if ((uint64_t)st.st_size > c->max_model_bytes) {
		rc = shd_error(c, ONNXSHARD_EINPUT,
		               "%s: %llu bytes, more than %llu (--max-model-bytes)", path,
		               (unsigned long long)st.st_size,
		               (unsigned long long)c->max_model_bytes);
		goto done;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot map: %s", path, strerror(errno));
		goto done;
	}
	if (st.st_size >= 2 && ((uint8_t *)map)[0] == 0x1f && ((uint8_t *)map)[1] == 0x8b) {
		if ((rc = gunzip(c, path, map, (size_t)st.st_size, &gz, &gzlen, &gzcap)))
			goto done;
		rc = unpack(m, gz, gzlen);
	} else {
		rc = unpack(m, map, (size_t)st.st_size);
	}
done:
	shd_free(c, gz, gzcap);
	if (map)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	if (rc) {
		onnx_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void
onnx_model_free(onnx_model *m)
{
	if (!m)
		return;
	shd_ctx *c = m->ctx;
	if (m->proto)
		onnx__model_proto__free_unpacked(m->proto, &m->pba);
	for (size_t i = 0; i < m->n_ext; i++) {
		if (m->ext[i].map)
			munmap((void *)m->ext[i].map, m->ext[i].size);
		if (m->ext[i].fd >= 0)
			close(m->ext[i].fd);
		shd_strfree(c, m->ext[i].location);
	}
	shd_free(c, m->ext, m->n_ext * sizeof *m->ext);
	shd_strfree(c, m->path);
	shd_strfree(c, m->dir);
	shd_free(c, m, sizeof *m);
}

int
onnx_tensor_fd(const onnx_model *m, const Onnx__TensorProto *t, int *fd, uint64_t *base)
{
	uint64_t len;

	if (!is_external(t))
		return 1;
	const onnx_extfile *f = find_ext(m, ext_entry(t, "location"));
	SHD_ASSERT(f);
	if (f->fd < 0)
		return 1;
	ext_span(t, base, &len);
	*fd = f->fd;
	return 0;
}

const uint8_t *
onnx_tensor_raw(const onnx_model *m, const Onnx__TensorProto *t, uint64_t *len)
{
	if (is_external(t)) {
		const onnx_extfile *f = find_ext(m, ext_entry(t, "location"));
		uint64_t off;
		SHD_ASSERT(f);
		ext_span(t, &off, len);
		return *len ? f->map + off : (const uint8_t *)"";
	}
	if (t->has_raw_data) {
		*len = t->raw_data.len;
		return t->raw_data.len ? t->raw_data.data : (const uint8_t *)"";
	}
	*len = 0;
	return NULL;
}

int
onnx_tensor_read(const onnx_model *m, const Onnx__TensorProto *t, uint64_t off, uint64_t n,
                 void *dst)
{
	unsigned bits = onnx_dtype_bits(t->data_type);
	size_t es = bits == 4 ? 1 : bits / 8; /* bytes a typed entry holds (4-bit: two elements) */
	uint64_t len = onnx_tensor_bytes(t), end;
	const uint8_t *raw;

	if (es == 0 || shd_add_overflow(off, n, &end) || end > len)
		return shd_error(m->ctx, ONNXSHARD_EFAIL, "%s: tensor '%s': read out of range",
		                 m->path, t->name ? t->name : "");
	if ((raw = onnx_tensor_raw(m, t, &len))) {
		memcpy(dst, raw + off, (size_t)n);
		return 0;
	}
	/* Typed fields: element by element (little-endian host). */
	uint8_t *d = dst;
	for (uint64_t b = off; b < end;) {
		uint64_t i = b / es, within = b % es, take = es - within;
		uint8_t elem[16];
		if (take > end - b)
			take = end - b;
		switch (t->data_type) {
		case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
		case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64:
			memcpy(elem, &t->float_data[i * (es / 4)], es);
			break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
			memcpy(elem, &t->int64_data[i], 8);
			break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
		case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128:
			memcpy(elem, &t->double_data[i * (es / 8)], es);
			break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
			uint32_t v = (uint32_t)t->uint64_data[i];
			memcpy(elem, &v, 4);
			break;
		}
		case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
			memcpy(elem, &t->uint64_data[i], 8);
			break;
		default: { /* int32_data holds int32 and every narrower type (4-bit: bytes) */
			int32_t v = t->int32_data[i];
			memcpy(elem, &v, es);
			break;
		}
		}
		memcpy(d, elem + within, (size_t)take);
		d += take;
		b += take;
	}
	return 0;
}

int
onnx_tensor_ints(const onnx_model *m, const Onnx__TensorProto *t, int64_t *dst, uint64_t n)
{
	size_t es = onnx_dtype_size(t->data_type);
	int rc;

	if (n > onnx_tensor_numel(t))
		n = onnx_tensor_numel(t);
	for (uint64_t i = 0; i < n; i++) {
		uint8_t b[8] = {0};
		if ((rc = onnx_tensor_read(m, t, i * es, es, b)))
			return rc;
		switch (t->data_type) {
		case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
		case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: memcpy(&dst[i], b, 8); break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
			int32_t v;
			memcpy(&v, b, 4);
			dst[i] = v;
			break;
		}
		case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
			uint32_t v;
			memcpy(&v, b, 4);
			dst[i] = v;
			break;
		}
		case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: {
			int16_t v;
			memcpy(&v, b, 2);
			dst[i] = v;
			break;
		}
		case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: {
			uint16_t v;
			memcpy(&v, b, 2);
			dst[i] = v;
			break;
		}
		case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: dst[i] = (int8_t)b[0]; break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
		case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: dst[i] = b[0]; break;
		default:
			return shd_error(m->ctx, ONNXSHARD_EINPUT,
			                 "%s: tensor '%s': %s where integers are needed", m->path,
			                 t->name ? t->name : "", onnx_dtype_name(t->data_type));
		}
	}
	return 0;
}
