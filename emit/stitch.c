/* `onnxshard stitch`: all ranks of an output directory in one model, the
 * collectives replaced by standard ops, to verify in any runtime. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"

/* Stitching.
 * requires: an output directory that passes emit_outdir_check
 * provides: FILE (+ FILE.data): one model whose inputs and outputs are the
 *           manifest's global ones; rank r's values and nodes (subgraphs
 *           included) renamed "r{r}/..."; each rank's inputs cut from the
 *           global inputs by Split; each collective as Sum/Max/Min, Concat and
 *           Split over its group's members; each global output concatenated
 *           from rank blocks in shard-index order; nodes topologically sorted
 *           (Kahn); initializers streamed one rank at a time, those of
 *           ONNX_EXT_THRESHOLD bytes or more to FILE.data */

#define CHUNK ((size_t)1 << 20)

typedef struct {
	char **slot; /* a name inside a rank model, renamed */
	char *old;   /* what it held: put back before the model is freed */
} undo_rec;

typedef struct {
	const char *name; /* the collective's name on its rank, before renaming */
	Onnx__NodeProto *n;
} coll_ref;

typedef struct {
	shd_ctx *ctx;
	emit_outdir *d;
	shd_arena a;        /* every new message and name */
	onnx_model **m;     /* world: the rank models, kept (initializers streamed out) */
	shd_vec *colls;     /* world: coll_ref sorted by name */
	shd_vec nodes;      /* Onnx__NodeProto *, before sorting */
	shd_vec inits;      /* Onnx__TensorProto * */
	shd_vec undo;       /* undo_rec */
	onnx_datafile df;
	const char *loc;    /* FILE.data's name, as tensors give it */
	uint64_t n_ext;     /* tensors written to FILE.data */
	uint8_t *buf;       /* CHUNK bytes */
	int64_t opset;      /* default domain, from rank 0 */
	int ms_used;        /* a non-collective com.microsoft node is kept */
} stitch;

static char *
fmt(stitch *s, const char *f, ...) __attribute__((format(printf, 2, 3)));

static char *
fmt(stitch *s, const char *f, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	if (n < 0 || !(p = shd_arena_alloc(s->ctx, &s->a, (size_t)n + 1)))
		return NULL;
	va_start(ap, f);
	vsnprintf(p, (size_t)n + 1, f, ap);
	va_end(ap);
	return p;
}

static int
push_ptr(stitch *s, shd_vec *v, void *p)
{
	void **slot = shd_vec_push(s->ctx, v, sizeof p);

	if (!slot)
		return shd_nomem(s->ctx);
	*slot = p;
	return 0;
}

/* A new default-domain node with room for its inputs, outputs and up to two
 * attributes; names are filled in by the caller (NULL names: out of memory,
 * caught by check_names). */
static Onnx__NodeProto *
new_node(stitch *s, const char *op, size_t nin, size_t nout)
{
	Onnx__NodeProto *n = shd_arena_zalloc(s->ctx, &s->a, sizeof *n);

	if (!n)
		return NULL;
	*n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
	n->op_type = (char *)op;
	n->domain = "";
	n->input = shd_arena_zalloc(s->ctx, &s->a, (nin + 1) * sizeof *n->input);
	n->output = shd_arena_zalloc(s->ctx, &s->a, (nout + 1) * sizeof *n->output);
	n->attribute = shd_arena_zalloc(s->ctx, &s->a, 2 * sizeof *n->attribute);
	if (!n->input || !n->output || !n->attribute || push_ptr(s, &s->nodes, n))
		return NULL;
	n->n_input = nin;
	n->n_output = nout;
	return n;
}

static int
set_int(stitch *s, Onnx__NodeProto *n, const char *key, int64_t v)
{
	Onnx__AttributeProto *a = shd_arena_zalloc(s->ctx, &s->a, sizeof *a);

	if (!a)
		return shd_nomem(s->ctx);
	*a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
	a->name = (char *)key;
	a->has_type = a->has_i = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->i = v;
	n->attribute[n->n_attribute++] = a;
	return 0;
}

/* Every name of n set (an allocation may have failed); its name from its output. */
static int
done_node(stitch *s, Onnx__NodeProto *n)
{
	for (size_t i = 0; i < n->n_input; i++)
		if (!n->input[i])
			return shd_nomem(s->ctx);
	for (size_t i = 0; i < n->n_output; i++)
		if (!n->output[i])
			return shd_nomem(s->ctx);
	if (!(n->name = fmt(s, "s/%s", n->output[0])))
		return shd_nomem(s->ctx);
	return 0;
}

/* Split x along axis into k equal parts; part `keep` is named as, the others
 * get scratch names from stem. */
static int
split(stitch *s, const char *x, int64_t axis, size_t k, size_t keep, const char *as,
      const char *stem)
{
	Onnx__NodeProto *n = new_node(s, "Split", 1, k);
	int rc;

	if (!n)
		return shd_nomem(s->ctx);
	n->input[0] = (char *)x;
	for (size_t c = 0; c < k; c++)
		n->output[c] = c == keep && as ? (char *)as : fmt(s, "%s/part%zu", stem, c);
	if ((rc = set_int(s, n, "axis", axis)) ||
	    (s->opset >= 18 && (rc = set_int(s, n, "num_outputs", (int64_t)k))))
		return rc;
	return done_node(s, n);
}

/* ---- Renaming a rank model in place ---------------------------------- */

static int
rename_one(stitch *s, size_t r, char **slot)
{
	undo_rec *u;
	char *nw;

	if (!*slot || !**slot)
		return 0;
	if (!(nw = fmt(s, "r%zu/%s", r, *slot)) || !(u = shd_vec_push(s->ctx, &s->undo, sizeof *u)))
		return shd_nomem(s->ctx);
	*u = (undo_rec){slot, *slot};
	*slot = nw;
	return 0;
}

/* Every name in g and its subgraphs gets the rank's prefix, so outer-scope
 * references inside subgraphs follow. Top-level initializers are copied
 * under new names instead (their messages are freed after streaming). */
static int
rename_graph(stitch *s, size_t r, Onnx__GraphProto *g, int top)
{
	int rc = 0;

	for (size_t i = 0; i < g->n_input && !rc; i++)
		rc = rename_one(s, r, &g->input[i]->name);
	for (size_t i = 0; i < g->n_output && !rc; i++)
		rc = rename_one(s, r, &g->output[i]->name);
	for (size_t i = 0; i < g->n_value_info && !rc; i++)
		rc = rename_one(s, r, &g->value_info[i]->name);
	for (size_t i = 0; !top && i < g->n_initializer && !rc; i++)
		rc = rename_one(s, r, &g->initializer[i]->name);
	for (size_t i = 0; i < g->n_sparse_initializer && !rc; i++)
		if (g->sparse_initializer[i]->values)
			rc = rename_one(s, r, &g->sparse_initializer[i]->values->name);
	for (size_t i = 0; i < g->n_node && !rc; i++) {
		Onnx__NodeProto *n = g->node[i];
		rc = rename_one(s, r, &n->name);
		for (size_t j = 0; j < n->n_input && !rc; j++)
			rc = rename_one(s, r, &n->input[j]);
		for (size_t j = 0; j < n->n_output && !rc; j++)
			rc = rename_one(s, r, &n->output[j]);
		for (size_t j = 0; j < n->n_attribute && !rc; j++) {
			Onnx__AttributeProto *a = n->attribute[j];
			if (a->g)
				rc = rename_graph(s, r, a->g, 0);
			for (size_t k = 0; k < a->n_graphs && !rc; k++)
				rc = rename_graph(s, r, a->graphs[k], 0);
		}
	}
	return rc;
}

/* ---- Initializers, streamed --------------------------------------------- */

/* A copy of t named name: inline when small, else appended to FILE.data. */
static int
copy_tensor(stitch *s, onnx_model *m, const Onnx__TensorProto *t, const char *name)
{
	Onnx__TensorProto *nt = shd_arena_zalloc(s->ctx, &s->a, sizeof *nt);
	uint64_t len = onnx_tensor_numel(t) * onnx_dtype_size(t->data_type), off;
	int rc;

	if (!nt || push_ptr(s, &s->inits, nt))
		return shd_nomem(s->ctx);
	*nt = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
	nt->name = (char *)name;
	nt->has_data_type = 1;
	nt->data_type = t->data_type;
	nt->n_dims = t->n_dims;
	if (!(nt->dims = shd_arena_alloc(s->ctx, &s->a, (t->n_dims + 1) * sizeof *nt->dims)))
		return shd_nomem(s->ctx);
	memcpy(nt->dims, t->dims, t->n_dims * sizeof *nt->dims);
	if (len < ONNX_EXT_THRESHOLD) {
		nt->has_raw_data = 1;
		nt->raw_data.len = (size_t)len;
		if (!(nt->raw_data.data = shd_arena_alloc(s->ctx, &s->a, (size_t)len)))
			return shd_nomem(s->ctx);
		return onnx_tensor_read(m, t, 0, len, nt->raw_data.data);
	}
	if ((rc = onnx_datafile_align(s->ctx, &s->df, &off)))
		return rc;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		if ((rc = onnx_tensor_read(m, t, done, n, s->buf)) ||
		    (rc = onnx_datafile_write(s->ctx, &s->df, s->buf, n)))
			return rc;
		done += n;
	}
	Onnx__StringStringEntryProto *e = shd_arena_zalloc(s->ctx, &s->a, 3 * sizeof *e);
	nt->external_data = shd_arena_zalloc(s->ctx, &s->a, 3 * sizeof *nt->external_data);
	if (!e || !nt->external_data)
		return shd_nomem(s->ctx);
	const char *keys[3] = {"location", "offset", "length"};
	const char *vals[3] = {s->loc, fmt(s, "%llu", (unsigned long long)off),
	                       fmt(s, "%llu", (unsigned long long)len)};
	for (int i = 0; i < 3; i++) {
		e[i] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
		e[i].key = (char *)keys[i];
		if (!(e[i].value = (char *)vals[i]))
			return shd_nomem(s->ctx);
		nt->external_data[i] = &e[i];
	}
	nt->n_external_data = 3;
	nt->has_data_location = 1;
	nt->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	s->n_ext++;
	return 0;
}

/* Copy rank r's initializers out and free them (string tensors are kept
 * in place, shallow-copied under the new name). */
static int
stream_inits(stitch *s, size_t r, onnx_model *m)
{
	Onnx__GraphProto *g = m->proto->graph;
	size_t kept = 0;
	int rc = 0;

	if (g->n_sparse_initializer)
		return shd_error(s->ctx, ONNXSHARD_EINPUT, "%s/%s: sparse initializers are not supported by stitch",
		                 s->d->dir, s->d->model[r]);
	for (size_t i = 0; i < g->n_initializer; i++) {
		Onnx__TensorProto *t = g->initializer[i], *nt;
		char *name = fmt(s, "r%zu/%s", r, t->name ? t->name : "");
		if (!name)
			rc = shd_nomem(s->ctx);
		if (!rc && onnx_dtype_size(t->data_type) == 0) {
			if (!(nt = shd_arena_alloc(s->ctx, &s->a, sizeof *nt)) || push_ptr(s, &s->inits, nt))
				rc = shd_nomem(s->ctx);
			else
				*nt = *t, nt->name = name;
			g->initializer[kept++] = t;
			continue;
		}
		if (!rc)
			rc = copy_tensor(s, m, t, name);
		protobuf_c_message_free_unpacked(&t->base, &m->pba);
	}
	g->n_initializer = kept;
	return rc;
}

/* ---- Collectives -------------------------------------------------------- */

static int
cmp_ref(const void *a, const void *b)
{
	return strcmp(((const coll_ref *)a)->name, ((const coll_ref *)b)->name);
}

/* Rank m's collective named name (checked to exist). */
static Onnx__NodeProto *
member_node(stitch *s, size_t m, const char *name)
{
	coll_ref key = {name, NULL};
	coll_ref *c = bsearch(&key, s->colls[m].data, s->colls[m].n, sizeof key, cmp_ref);

	SHD_ASSERT(c);
	return c->n;
}

static int
lower_coll(stitch *s, size_t r, const char *name, Onnx__NodeProto *n, const emit_coll *k)
{
	static const char *red_op[] = {"Sum", "Max", "Min"};
	const char *red = k->reduce ? red_op[k->reduce[1] == 'a' ? 1 : k->reduce[1] == 'i' ? 2 : 0] : NULL;
	size_t g = k->n_group, p = 0;
	const char *stem = fmt(s, "s/r%zu/%s", r, name), *y = n->output[0];
	Onnx__NodeProto *o;
	int rc;

	if (!stem)
		return shd_nomem(s->ctx);
	while ((size_t)k->group[p] != r)
		p++;
	if (k->kind == EMIT_ALLTOALL) {
		if ((rc = split(s, n->input[0], k->split_axis, g, g, NULL, stem)))
			return rc;
		if (!(o = new_node(s, "Concat", g, 1)) || (rc = set_int(s, o, "axis", k->concat_axis)))
			return shd_nomem(s->ctx);
		for (size_t j = 0; j < g; j++)
			o->input[j] = fmt(s, "s/r%lld/%s/part%zu", (long long)k->group[j], name, p);
		o->output[0] = (char *)y;
		return done_node(s, o);
	}
	const char *op = k->kind == EMIT_ALLGATHER ? "Concat" : red;
	if (!(o = new_node(s, op, g, 1)))
		return shd_nomem(s->ctx);
	for (size_t j = 0; j < g; j++)
		o->input[j] = member_node(s, (size_t)k->group[j], name)->input[0];
	if (k->kind == EMIT_ALLGATHER && (rc = set_int(s, o, "axis", k->axis)))
		return rc;
	o->output[0] = k->kind == EMIT_REDUCESCATTER ? fmt(s, "%s/reduced", stem) : (char *)y;
	if ((rc = done_node(s, o)))
		return rc;
	if (k->kind == EMIT_REDUCESCATTER)
		return split(s, o->output[0], k->axis, g, p, y, stem);
	return 0;
}

/* ---- Global inputs and outputs ------------------------------------------ */

static const int *
dim_axes(const emit_outdir *d, const emit_mtensor *t, size_t i, size_t *n, size_t *shards)
{
	const int *ax = &t->axes[i * d->n_axes];

	*shards = 1;
	for (*n = 0; *n < d->n_axes && ax[*n] >= 0; ++*n)
		*shards *= (size_t)d->size[ax[*n]];
	return ax;
}

/* Rank r's block of global input t: one Split per sharded dim. */
static int
cut_input(stitch *s, size_t r, const emit_mtensor *t)
{
	const emit_outdir *d = s->d;
	const char *cur = t->name, *last = fmt(s, "r%zu/%s", r, t->name);
	size_t n_sharded = 0, na, shards;
	int rc;

	for (size_t i = 0; i < t->ndim; i++)
		dim_axes(d, t, i, &na, &shards), n_sharded += na > 0;
	if (!last)
		return shd_nomem(s->ctx);
	if (n_sharded == 0) {
		Onnx__NodeProto *n = new_node(s, "Identity", 1, 1);
		if (!n)
			return shd_nomem(s->ctx);
		n->input[0] = (char *)cur;
		n->output[0] = (char *)last;
		return done_node(s, n);
	}
	for (size_t i = 0; i < t->ndim; i++) {
		const int *ax = dim_axes(d, t, i, &na, &shards);
		size_t idx = 0;
		if (!na)
			continue;
		for (size_t k = 0; k < na; k++)
			idx = idx * (size_t)d->size[ax[k]] + (size_t)d->coords[r * d->n_axes + (size_t)ax[k]];
		const char *stem = fmt(s, "s/r%zu/in/%s/%zu", r, t->name, i);
		const char *next = --n_sharded ? stem : last;
		if (!stem || (rc = split(s, cur, (int64_t)i, shards, idx, next, stem)))
			return stem ? rc : shd_nomem(s->ctx);
		cur = next;
	}
	return 0;
}

/* Global output t from rank blocks: along each sharded dim (last first),
 * concatenate in shard-index order; ranks off t's axes take coords 0. */
static int
join_output(stitch *s, const emit_mtensor *t)
{
	const emit_outdir *d = s->d;
	const char **cur = shd_arena_zalloc(s->ctx, &s->a, d->world * sizeof *cur);
	uint64_t live = 0; /* axes not yet joined */
	size_t na, shards, left = 0;
	int rc;

	if (!cur)
		return shd_nomem(s->ctx);
	for (size_t i = 0; i < t->ndim; i++) {
		const int *ax = dim_axes(d, t, i, &na, &shards);
		for (size_t k = 0; k < na; k++)
			live |= (uint64_t)1 << ax[k];
		left += na > 0;
	}
	for (size_t r = 0; r < d->world; r++) {
		int rep = 1;
		for (size_t a = 0; a < d->n_axes; a++)
			rep &= (live >> a & 1) || d->coords[r * d->n_axes + a] == 0;
		if (rep && !(cur[r] = fmt(s, "r%zu/%s", r, t->name)))
			return shd_nomem(s->ctx);
	}
	if (!left) {
		Onnx__NodeProto *n = new_node(s, "Identity", 1, 1);
		if (!n)
			return shd_nomem(s->ctx);
		n->input[0] = (char *)cur[0];
		n->output[0] = (char *)t->name;
		return done_node(s, n);
	}
	int64_t *c = shd_arena_alloc(s->ctx, &s->a, d->n_axes * sizeof *c);
	if (!c)
		return shd_nomem(s->ctx);
	for (size_t i = t->ndim; i-- > 0;) {
		const int *ax = dim_axes(d, t, i, &na, &shards);
		if (!na)
			continue;
		left--;
		for (size_t r = 0; r < d->world; r++) {
			int rep = cur[r] != NULL;
			for (size_t k = 0; k < na; k++)
				rep &= d->coords[r * d->n_axes + (size_t)ax[k]] == 0;
			if (!rep)
				continue;
			Onnx__NodeProto *n = new_node(s, "Concat", shards, 1);
			if (!n || (rc = set_int(s, n, "axis", (int64_t)i)))
				return shd_nomem(s->ctx);
			for (size_t q = 0; q < shards; q++) {
				memcpy(c, &d->coords[r * d->n_axes], d->n_axes * sizeof *c);
				for (size_t k = na, x = q; k-- > 0; x /= (size_t)d->size[ax[k]])
					c[ax[k]] = (int64_t)(x % (size_t)d->size[ax[k]]);
				size_t src = 0;
				for (size_t a = 0; a < d->n_axes; a++)
					src = src * (size_t)d->size[a] + (size_t)c[a];
				n->input[q] = (char *)cur[src];
				if (src != r)
					cur[src] = NULL;
			}
			n->output[0] = left ? fmt(s, "s/out/%s/%zu/r%zu", t->name, i, r) : (char *)t->name;
			cur[r] = n->output[0];
			if ((rc = done_node(s, n)))
				return rc;
		}
	}
	return 0;
}

/* ---- Topological order (Kahn's algorithm over value names) --------------- */

typedef struct {
	const char **key;
	size_t *val; /* producing node, or SIZE_MAX for graph inputs and initializers */
	size_t cap;  /* a power of two */
} name_map;

static size_t
hash(const char *k)
{
	uint32_t h = 2166136261u;

	while (*k)
		h = (h ^ (uint8_t)*k++) * 16777619u;
	return h;
}

static size_t *
map_slot(const name_map *m, const char *k, int *found)
{
	size_t i = hash(k) & (m->cap - 1);

	while (m->key[i] && strcmp(m->key[i], k))
		i = (i + 1) & (m->cap - 1);
	*found = m->key[i] != NULL;
	return &m->val[i];
}

static int
define(stitch *s, name_map *m, const char *k, size_t v)
{
	int found;
	size_t *slot = map_slot(m, k, &found);

	if (found)
		return shd_error(s->ctx, ONNXSHARD_EINPUT, "%s: stitched graph: value '%s' is defined twice",
		                 s->d->dir, k);
	m->key[slot - m->val] = k;
	*slot = v;
	return 0;
}

/* Names read inside n's subgraphs that top-level nodes produce. */
static int
outer_refs(stitch *s, const name_map *m, const Onnx__GraphProto *g, size_t to, shd_vec *edges)
{
	int found, rc;

	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *n = g->node[i];
		for (size_t j = 0; j < n->n_input; j++) {
			size_t *p = map_slot(m, n->input[j], &found), *e;
			if (found && *p != SIZE_MAX) {
				if (!(e = shd_vec_push(s->ctx, edges, 2 * sizeof *e)))
					return shd_nomem(s->ctx);
				e[0] = *p, e[1] = to;
			}
		}
		for (size_t j = 0; j < n->n_attribute; j++) {
			const Onnx__AttributeProto *a = n->attribute[j];
			if (a->g && (rc = outer_refs(s, m, a->g, to, edges)))
				return rc;
			for (size_t k = 0; k < a->n_graphs; k++)
				if ((rc = outer_refs(s, m, a->graphs[k], to, edges)))
					return rc;
		}
	}
	return 0;
}

static int
toposort(stitch *s, Onnx__NodeProto **out)
{
	Onnx__NodeProto **nodes = s->nodes.data;
	size_t nn = s->nodes.n, nv = s->inits.n + s->d->n_in;
	size_t *deg = NULL, *start = NULL, *adj = NULL, *queue = NULL;
	shd_vec edges = {0};
	name_map m = {0};
	int rc = 0, found;

	for (size_t i = 0; i < nn; i++)
		nv += nodes[i]->n_output;
	for (m.cap = 16; m.cap < 2 * nv; m.cap *= 2)
		;
	m.key = shd_arena_zalloc(s->ctx, &s->a, m.cap * sizeof *m.key);
	m.val = shd_arena_alloc(s->ctx, &s->a, m.cap * sizeof *m.val);
	if (!m.key || !m.val)
		return shd_nomem(s->ctx);
	for (size_t i = 0; i < s->d->n_in && !rc; i++)
		rc = define(s, &m, s->d->in[i].name, SIZE_MAX);
	for (size_t i = 0; i < s->inits.n && !rc; i++)
		rc = define(s, &m, ((Onnx__TensorProto **)s->inits.data)[i]->name, SIZE_MAX);
	for (size_t i = 0; i < nn && !rc; i++)
		for (size_t j = 0; j < nodes[i]->n_output && !rc; j++)
			if (*nodes[i]->output[j])
				rc = define(s, &m, nodes[i]->output[j], i);
	for (size_t i = 0; i < nn && !rc; i++) {
		const Onnx__NodeProto *n = nodes[i];
		for (size_t j = 0; j < n->n_input && !rc; j++) {
			size_t *p, *e;
			if (!*n->input[j])
				continue;
			p = map_slot(&m, n->input[j], &found);
			if (!found)
				rc = shd_error(s->ctx, ONNXSHARD_EINPUT,
				               "%s: stitched graph: node '%s' (%s) reads '%s', which nothing defines",
				               s->d->dir, n->name ? n->name : "", n->op_type, n->input[j]);
			else if (*p != SIZE_MAX && !(e = shd_vec_push(s->ctx, &edges, 2 * sizeof *e)))
				rc = shd_nomem(s->ctx);
			else if (*p != SIZE_MAX)
				e[0] = *p, e[1] = i;
		}
		for (size_t j = 0; j < n->n_attribute && !rc; j++) {
			if (n->attribute[j]->g)
				rc = outer_refs(s, &m, n->attribute[j]->g, i, &edges);
			for (size_t k = 0; k < n->attribute[j]->n_graphs && !rc; k++)
				rc = outer_refs(s, &m, n->attribute[j]->graphs[k], i, &edges);
		}
	}
	/* Adjacency by producer (counting sort), in-degrees, then a FIFO from
	 * the nodes that wait on nothing, in their original order. */
	size_t ne = edges.n, *ev = edges.data, head = 0, tail = 0;
	if (!rc && (!(deg = shd_calloc(s->ctx, nn + 1, sizeof *deg)) ||
	            !(start = shd_calloc(s->ctx, nn + 2, sizeof *start)) ||
	            !(adj = shd_calloc(s->ctx, ne + 1, sizeof *adj)) ||
	            !(queue = shd_calloc(s->ctx, nn + 1, sizeof *queue))))
		rc = shd_nomem(s->ctx);
	if (!rc) {
		for (size_t e = 0; e < ne; e++)
			deg[ev[2 * e + 1]]++, start[ev[2 * e] + 2]++;
		for (size_t i = 2; i < nn + 2; i++)
			start[i] += start[i - 1];
		for (size_t e = 0; e < ne; e++)
			adj[start[ev[2 * e] + 1]++] = ev[2 * e + 1];
		for (size_t i = 0; i < nn; i++)
			if (!deg[i])
				queue[tail++] = i;
		while (head < tail) {
			size_t i = queue[head++];
			out[head - 1] = nodes[i];
			for (size_t e = start[i]; e < start[i + 1]; e++)
				if (--deg[adj[e]] == 0)
					queue[tail++] = adj[e];
		}
		for (size_t i = 0; tail < nn && i < nn; i++)
			if (deg[i]) {
				rc = shd_error(s->ctx, ONNXSHARD_EINPUT,
				               "%s: stitched graph has a cycle through node '%s' (%s): collectives wait on each other",
				               s->d->dir, nodes[i]->name ? nodes[i]->name : "", nodes[i]->op_type);
				break;
			}
	}
	shd_free(s->ctx, deg, (nn + 1) * sizeof *deg);
	shd_free(s->ctx, start, (nn + 2) * sizeof *start);
	shd_free(s->ctx, adj, (ne + 1) * sizeof *adj);
	shd_free(s->ctx, queue, (nn + 1) * sizeof *queue);
	shd_vec_free(s->ctx, &edges, 2 * sizeof(size_t));
	return rc;
}

/* ---- The model ------------------------------------------------------------ */

static Onnx__ValueInfoProto *
value_info(stitch *s, const emit_mtensor *t)
{
	Onnx__ValueInfoProto *v = shd_arena_zalloc(s->ctx, &s->a, sizeof *v);
	Onnx__TypeProto *tp = shd_arena_zalloc(s->ctx, &s->a, sizeof *tp);
	Onnx__TypeProto__Tensor *tt = shd_arena_zalloc(s->ctx, &s->a, sizeof *tt);
	Onnx__TensorShapeProto *sh = shd_arena_zalloc(s->ctx, &s->a, sizeof *sh);
	Onnx__TensorShapeProto__Dimension *dims = shd_arena_zalloc(s->ctx, &s->a, (t->ndim + 1) * sizeof *dims);

	if (!v || !tp || !tt || !sh || !dims)
		return NULL;
	*v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
	*tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
	*tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
	*sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
	if (!(sh->dim = shd_arena_zalloc(s->ctx, &s->a, (t->ndim + 1) * sizeof *sh->dim)))
		return NULL;
	for (size_t i = 0; i < t->ndim; i++) {
		dims[i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
		if (t->sym[i]) {
			dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			dims[i].dim_param = (char *)t->sym[i];
		} else {
			dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			dims[i].dim_value = t->dims[i];
		}
		sh->dim[i] = &dims[i];
	}
	sh->n_dim = t->ndim;
	tt->has_elem_type = 1;
	tt->elem_type = t->dtype;
	tt->shape = sh;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	v->name = (char *)t->name;
	v->type = tp;
	return v;
}

/* Opset imports: the default domain, and any other domain of rank 0's
 * except the collectives' (com.microsoft stays if other nodes use it). */
static int
opsets(stitch *s, Onnx__ModelProto *mp)
{
	const Onnx__ModelProto *r0 = s->m[0]->proto;

	mp->opset_import = shd_arena_zalloc(s->ctx, &s->a, (r0->n_opset_import + 1) * sizeof *mp->opset_import);
	if (!mp->opset_import)
		return shd_nomem(s->ctx);
	for (size_t i = 0; i < r0->n_opset_import; i++) {
		const char *dom = r0->opset_import[i]->domain ? r0->opset_import[i]->domain : "";
		if (!strcmp(dom, "onnxshard") || (!strcmp(dom, "com.microsoft") && !s->ms_used))
			continue;
		mp->opset_import[mp->n_opset_import++] = r0->opset_import[i];
	}
	return 0;
}

static int
default_opset(stitch *s)
{
	const Onnx__ModelProto *p = s->m[0]->proto;

	for (size_t i = 0; i < p->n_opset_import; i++) {
		const char *dom = p->opset_import[i]->domain;
		if (!dom || !*dom || !strcmp(dom, "ai.onnx"))
			s->opset = p->opset_import[i]->version;
	}
	if (s->opset < 2)
		return shd_error(s->ctx, ONNXSHARD_EINPUT, "%s/%s: default-domain opset %lld; stitch needs 2 or later",
		                 s->d->dir, s->d->model[0], (long long)s->opset);
	return 0;
}

/* Load rank r, index its collectives, rename it, stream its initializers. */
static int
load_rank(stitch *s, size_t r)
{
	emit_outdir *d = s->d;
	const char *path = fmt(s, "%s/%s", d->dir, d->model[r]);
	emit_coll k;
	int rc;

	if (!path)
		return shd_nomem(s->ctx);
	if ((rc = onnx_load(s->ctx, path, &s->m[r])))
		return rc;
	Onnx__GraphProto *g = s->m[r]->proto->graph;
	if (s->m[r]->proto->n_functions)
		return shd_error(s->ctx, ONNXSHARD_EINPUT, "%s: model-local functions are not supported by stitch",
		                 path);
	for (size_t i = 0; i < g->n_node; i++) {
		coll_ref *c;
		if ((rc = emit_coll_read(d, r, d->model[r], g->node[i], &k)))
			return rc;
		if (!k.kind)
			continue;
		if (!(c = shd_vec_push(s->ctx, &s->colls[r], sizeof *c)) ||
		    !(c->name = fmt(s, "%s", g->node[i]->name)))
			return shd_nomem(s->ctx);
		c->n = g->node[i];
	}
	if (s->colls[r].n)
		qsort(s->colls[r].data, s->colls[r].n, sizeof(coll_ref), cmp_ref);
	if ((rc = stream_inits(s, r, s->m[r])))
		return rc;
	return rename_graph(s, r, g, 1);
}

/* Rank r's nodes, collectives lowered. */
static int
lower_rank(stitch *s, size_t r)
{
	Onnx__GraphProto *g = s->m[r]->proto->graph;
	emit_coll k;
	int rc;

	for (size_t i = 0; i < g->n_node; i++) {
		Onnx__NodeProto *n = g->node[i];
		/* Attributes only: the renamed names do not matter to it. */
		if ((rc = emit_coll_read(s->d, r, s->d->model[r], n, &k)))
			return rc;
		if (k.kind) {
			/* The name before renaming follows the "r{r}/" prefix. */
			if ((rc = lower_coll(s, r, strchr(n->name, '/') + 1, n, &k)))
				return rc;
			continue;
		}
		s->ms_used |= n->domain && !strcmp(n->domain, "com.microsoft");
		if ((rc = push_ptr(s, &s->nodes, n)))
			return rc;
	}
	return 0;
}

static int
write_model(stitch *s, const char *path, Onnx__NodeProto **sorted)
{
	Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	const emit_outdir *d = s->d;
	int rc;

	mp.has_ir_version = 1;
	mp.ir_version = s->m[0]->proto->ir_version;
	mp.producer_name = "onnxshard stitch";
	mp.producer_version = ONNXSHARD_VERSION;
	mp.graph = &g;
	if ((rc = opsets(s, &mp)))
		return rc;
	g.name = "stitched";
	g.doc_string = fmt(s, "all ranks of %s in one graph, collectives as standard ops", d->dir);
	g.node = sorted;
	g.n_node = s->nodes.n;
	g.initializer = s->inits.data;
	g.n_initializer = s->inits.n;
	g.input = shd_arena_zalloc(s->ctx, &s->a, (d->n_in + 1) * sizeof *g.input);
	g.output = shd_arena_zalloc(s->ctx, &s->a, (d->n_out + 1) * sizeof *g.output);
	if (!g.input || !g.output)
		return shd_nomem(s->ctx);
	for (g.n_input = 0; g.n_input < d->n_in; g.n_input++)
		if (!(g.input[g.n_input] = value_info(s, &d->in[g.n_input])))
			return shd_nomem(s->ctx);
	for (g.n_output = 0; g.n_output < d->n_out; g.n_output++)
		if (!(g.output[g.n_output] = value_info(s, &d->out[g.n_output])))
			return shd_nomem(s->ctx);
	return onnx_write_message(s->ctx, &mp.base, path);
}

static int
run(stitch *s, const char *tmp, const char *dtmp)
{
	const emit_outdir *d = s->d;
	Onnx__NodeProto **sorted;
	int rc;

	if ((rc = onnx_datafile_open(s->ctx, &s->df, dtmp, s->loc)))
		return rc;
	for (size_t r = 0; r < d->world; r++)
		if ((rc = load_rank(s, r)))
			return rc;
	if ((rc = default_opset(s)))
		return rc;
	for (size_t i = 0; i < d->n_in; i++)
		for (size_t r = 0; r < d->world; r++)
			if ((rc = cut_input(s, r, &d->in[i])))
				return rc;
	for (size_t r = 0; r < d->world; r++)
		if ((rc = lower_rank(s, r)))
			return rc;
	for (size_t i = 0; i < d->n_out; i++)
		if ((rc = join_output(s, &d->out[i])))
			return rc;
	if (!(sorted = shd_arena_alloc(s->ctx, &s->a, (s->nodes.n + 1) * sizeof *sorted)))
		return shd_nomem(s->ctx);
	if ((rc = toposort(s, sorted)) || (rc = onnx_datafile_close(s->ctx, &s->df)) ||
	    (rc = write_model(s, tmp, sorted)))
		return rc;
	return 0;
}

int
onnxshard_stitch(onnxshard_ctx *c, const char *dir, const char *path)
{
	stitch s = {.ctx = c};
	const char *base = strrchr(path, '/');
	char *tmp, *dpath, *dtmp;
	int rc;

	if ((rc = emit_outdir_check(c, dir, &s.d, NULL)))
		return rc;
	s.m = shd_arena_zalloc(c, &s.a, s.d->world * sizeof *s.m);
	s.colls = shd_arena_zalloc(c, &s.a, s.d->world * sizeof *s.colls);
	s.buf = shd_arena_alloc(c, &s.a, CHUNK);
	s.loc = fmt(&s, "%s.data", base ? base + 1 : path);
	tmp = fmt(&s, "%s.tmp", path);
	dpath = fmt(&s, "%s.data", path);
	dtmp = fmt(&s, "%s.data.tmp", path);
	if (!s.m || !s.colls || !s.buf || !s.loc || !tmp || !dpath || !dtmp)
		rc = shd_nomem(c);
	else
		rc = run(&s, tmp, dtmp);
	if (s.df.f)
		onnx_datafile_close(c, &s.df);
	if (!rc && s.n_ext && rename(dtmp, dpath) != 0)
		rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot rename: %s", dpath, strerror(errno));
	if (!rc && !s.n_ext)
		remove(dpath);
	if (!rc && rename(tmp, path) != 0)
		rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot rename: %s", path, strerror(errno));
	if (dtmp)
		remove(dtmp);
	if (rc && tmp)
		remove(tmp);
	/* Put the rank models back as loaded, then free them. */
	undo_rec *u = s.undo.data;
	for (size_t i = s.undo.n; i-- > 0;)
		*u[i].slot = u[i].old;
	for (size_t r = 0; s.m && s.colls && r < s.d->world; r++) {
		onnx_model_free(s.m[r]);
		shd_vec_free(c, &s.colls[r], sizeof(coll_ref));
	}
	shd_vec_free(c, &s.undo, sizeof(undo_rec));
	shd_vec_free(c, &s.nodes, sizeof(void *));
	shd_vec_free(c, &s.inits, sizeof(void *));
	shd_arena_free(c, &s.a);
	emit_outdir_free(s.d);
	return rc;
}
