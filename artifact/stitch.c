/* `onnxshard stitch`: all ranks of an output directory in one model, the
 * collectives replaced by standard ops, to verify in any runtime. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "artifact.h"

/* Stitching.
 * requires: an output directory that passes art_outdir_check
 * provides: FILE (+ FILE.data): one model whose inputs and outputs are the
 *           manifest's global ones; rank r's values and nodes (subgraphs
 *           included) renamed "r{r}/..."; each rank's inputs cut from the
 *           global inputs by Split; each collective as Add (a sum: any
 *           numeric type), Max/Min, Concat and Split over its group's
 *           members; each global output concatenated from rank blocks in
 *           shard-index order, once per replica (the ranks off its axes):
 *           replica 0 under its name, replica q > 0 as the extra output
 *           "{name}@replica{q}"; nodes topologically sorted (Kahn);
 *           initializers streamed one rank at a time, those of
 *           ONNX_EXT_THRESHOLD bytes or more to FILE.data. New values are
 *           named "s/...", which no renamed rank value can be. */

#define CHUNK   ((size_t)1 << 20)
#define NO_AXIS INT64_MIN

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
	art_outdir *d;
	shd_arena a;    /* every new message and name */
	onnx_model **m; /* world: the rank models, kept (initializers streamed out) */
	shd_vec *colls; /* world: coll_ref sorted by name */
	shd_vec nodes;  /* Onnx__NodeProto *, before sorting */
	shd_vec inits;  /* Onnx__TensorProto * */
	shd_vec undo;   /* undo_rec */
	shd_vec reps;   /* const char *: the extra outputs "{name}@replica{q}" */
	shd_vec rep_of; /* const art_mtensor *: the output each of reps copies */
	onnx_datafile df;
	const char *loc; /* FILE.data's name, as tensors give it */
	uint64_t n_ext;  /* tensors written to FILE.data */
	uint8_t *buf;    /* CHUNK bytes */
	int64_t opset;   /* default domain, from rank 0 */
	int ms_used;     /* a non-collective com.microsoft node is kept */
} stitch;

/* A formatted string in the stitch's arena; NULL when out of memory. */
__attribute__((format(printf, 2, 3))) static char *
fmt(stitch *s, const char *f, ...)
{
	va_list ap;
	char *p;

	va_start(ap, f);
	p = shd_arena_vprintf(s->ctx, &s->a, f, ap);
	va_end(ap);
	return p;
}

static void *
alloc(stitch *s, size_t n)
{
	return shd_arena_zalloc(s->ctx, &s->a, n);
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

static int
set_int(stitch *s, Onnx__NodeProto *n, const char *key, int64_t v)
{
	Onnx__AttributeProto *a = alloc(s, sizeof *a);

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

/* A new default-domain node, appended to the node list, with an "axis"
 * attribute unless NO_AXIS; the caller fills its inputs and outputs, then
 * calls done(). NULL when out of memory. */
static Onnx__NodeProto *
node(stitch *s, const char *op, size_t nin, size_t nout, int64_t axis)
{
	Onnx__NodeProto *n = alloc(s, sizeof *n);

	if (!n)
		return NULL;
	*n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
	n->op_type = (char *)op;
	n->domain = "";
	n->input = alloc(s, (nin + 1) * sizeof *n->input);
	n->output = alloc(s, (nout + 1) * sizeof *n->output);
	n->attribute = alloc(s, 2 * sizeof *n->attribute);
	if (!n->input || !n->output || !n->attribute || push_ptr(s, &s->nodes, n) ||
	    (axis != NO_AXIS && set_int(s, n, "axis", axis)))
		return NULL;
	n->n_input = nin;
	n->n_output = nout;
	return n;
}

/* n complete (no name left NULL by a failed allocation); named after its
 * first output. */
static int
done(stitch *s, Onnx__NodeProto *n)
{
	for (size_t i = 0; n && i < n->n_input; i++)
		if (!n->input[i])
			n = NULL;
	for (size_t i = 0; n && i < n->n_output; i++)
		if (!n->output[i])
			n = NULL;
	if (!n || !(n->name = fmt(s, "s/%s", n->output[0])))
		return shd_nomem(s->ctx);
	return 0;
}

static int
identity(stitch *s, const char *x, const char *y)
{
	Onnx__NodeProto *n = node(s, "Identity", 1, 1, NO_AXIS);

	if (n)
		n->input[0] = (char *)x, n->output[0] = (char *)y;
	return done(s, n);
}

/* Split x along axis into k equal parts (no sizes: shapes may be symbolic);
 * part keep is named as, the others stem/part{c}. */
static int
split(stitch *s, const char *x, int64_t axis, size_t k, size_t keep, const char *as,
      const char *stem)
{
	Onnx__NodeProto *n = node(s, "Split", 1, k, axis);

	if (!n || (s->opset >= 18 && set_int(s, n, "num_outputs", (int64_t)k)))
		return shd_nomem(s->ctx);
	n->input[0] = (char *)x;
	for (size_t c = 0; c < k; c++)
		n->output[c] = c == keep ? (char *)as : fmt(s, "%s/part%zu", stem, c);
	return done(s, n);
}

/* ---- Renaming a rank model in place ------------------------------------- */

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

/* ---- Initializers, streamed ---------------------------------------------- */

/* A copy of t named name: inline when small, else appended to FILE.data. */
static int
copy_tensor(stitch *s, onnx_model *m, const Onnx__TensorProto *t, const char *name)
{
	Onnx__TensorProto *nt = alloc(s, sizeof *nt);
	Onnx__StringStringEntryProto *e = alloc(s, 3 * sizeof *e);
	uint64_t len = onnx_tensor_bytes(t), off;
	int rc;

	if (!nt || !e || push_ptr(s, &s->inits, nt))
		return shd_nomem(s->ctx);
	*nt = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
	nt->name = (char *)name;
	nt->has_data_type = 1;
	nt->data_type = t->data_type;
	nt->n_dims = t->n_dims;
	if (!(nt->dims = alloc(s, (t->n_dims + 1) * sizeof *nt->dims)))
		return shd_nomem(s->ctx);
	if (t->n_dims)
		memcpy(nt->dims, t->dims, t->n_dims * sizeof *nt->dims);
	if (len < ONNX_EXT_THRESHOLD) {
		nt->has_raw_data = 1;
		nt->raw_data.len = (size_t)len;
		if (!(nt->raw_data.data = alloc(s, (size_t)len)))
			return shd_nomem(s->ctx);
		return onnx_tensor_read(m, t, 0, len, nt->raw_data.data);
	}
	if ((rc = onnx_datafile_align(s->ctx, &s->df, &off)))
		return rc;
	for (uint64_t at = 0; at < len;) {
		size_t n = len - at < CHUNK ? (size_t)(len - at) : CHUNK;
		if ((rc = onnx_tensor_read(m, t, at, n, s->buf)) ||
		    (rc = onnx_datafile_write(s->ctx, &s->df, s->buf, n)))
			return rc;
		at += n;
	}
	const char *kv[6] = {"location", s->loc,
	                     "offset",   fmt(s, "%llu", (unsigned long long)off),
	                     "length",   fmt(s, "%llu", (unsigned long long)len)};
	if (!(nt->external_data = alloc(s, 3 * sizeof *nt->external_data)) || !kv[3] || !kv[5])
		return shd_nomem(s->ctx);
	for (int i = 0; i < 3; i++) {
		e[i] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
		e[i].key = (char *)kv[2 * i];
		e[i].value = (char *)kv[2 * i + 1];
		nt->external_data[i] = &e[i];
	}
	nt->n_external_data = 3;
	nt->has_data_location = 1;
	nt->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	s->n_ext++;
	return 0;
}

/* Copy rank r's initializers out and free them (string tensors stay in the
 * model, shallow-copied under the new name). */
static int
stream_inits(stitch *s, size_t r, onnx_model *m)
{
	Onnx__GraphProto *g = m->proto->graph;
	size_t kept = 0;
	int rc = 0;

	if (g->n_sparse_initializer)
		return shd_error(s->ctx, ONNXSHARD_EINPUT,
		                 "%s: sparse initializers are not supported by stitch", m->path);
	for (size_t i = 0; i < g->n_initializer; i++) {
		Onnx__TensorProto *t = g->initializer[i], *nt;
		char *name = fmt(s, "r%zu/%s", r, t->name ? t->name : "");
		if (!rc && !name)
			rc = shd_nomem(s->ctx);
		if (onnx_dtype_bits(t->data_type) == 0) {
			g->initializer[kept++] = t;
			if (!rc && (!(nt = alloc(s, sizeof *nt)) || push_ptr(s, &s->inits, nt)))
				rc = shd_nomem(s->ctx);
			else if (!rc)
				*nt = *t, nt->name = name;
			continue;
		}
		if (!rc)
			rc = copy_tensor(s, m, t, name);
		protobuf_c_message_free_unpacked(&t->base, &m->pba);
	}
	g->n_initializer = kept;
	return rc;
}

/* ---- Collectives --------------------------------------------------------- */

static int
cmp_ref(const void *a, const void *b)
{
	return strcmp(((const coll_ref *)a)->name, ((const coll_ref *)b)->name);
}

/* The input of rank m's collective named name (check made sure it exists). */
static char *
member_input(stitch *s, int64_t m, const char *name)
{
	coll_ref key = {name, NULL};
	coll_ref *c = bsearch(&key, s->colls[m].data, s->colls[m].n, sizeof key, cmp_ref);

	SHD_ASSERT(c);
	return c->n->input[0];
}

/* Collective n (named name before renaming) of rank r as standard ops:
 *   AllReduce      Y = X_0 + X_1 + ... (Add in group order) | Max|Min(X_j)
 *   AllGather      Y = Concat(axis; X_j in group order)
 *   ReduceScatter  Y = part p of Split(axis, g; reduction of X_j)
 *   AllToAll       Y = Concat(concat_axis; part p of Split(split_axis, g; X_j))
 * where p is r's place in the group; X_j's parts are made by rank j's own
 * lowering, as s/r{j}/{name}/part{c}. */
static int
lower_coll(stitch *s, size_t r, const char *name, Onnx__NodeProto *n, const art_coll *k)
{
	size_t g = k->n_group, p = 0;
	const char *stem = fmt(s, "s/r%zu/%s", r, name), *y = n->output[0], *op = "Concat";
	Onnx__NodeProto *o;
	int rc;

	while ((size_t)k->group[p] != r)
		p++;
	if (!stem)
		return shd_nomem(s->ctx);
	if (k->kind == ART_ALLTOALL) {
		if ((rc = split(s, n->input[0], k->split_axis, g, g, NULL, stem)))
			return rc;
		if ((o = node(s, "Concat", g, 1, k->concat_axis)))
			for (size_t j = 0; j < g; j++)
				o->input[j] = fmt(s, "s/r%lld/%s/part%zu", (long long)k->group[j],
				                  name, p);
	} else if (k->kind != ART_ALLGATHER && strcmp(k->reduce, "max") &&
	           strcmp(k->reduce, "min") && g > 1) {
		/* a sum: Add in group order (Sum takes no integer type; Add takes
		 * every numeric one) */
		const char *acc = member_input(s, k->group[0], name);
		for (size_t j = 1; j < g && (o = node(s, "Add", 2, 1, NO_AXIS)); j++) {
			o->input[0] = (char *)acc;
			o->input[1] = member_input(s, k->group[j], name);
			if (j + 1 < g) {
				o->output[0] = fmt(s, "%s/sum%zu", stem, j);
				if ((rc = done(s, o)))
					return rc;
				acc = o->output[0];
			}
		}
	} else {
		if (k->kind != ART_ALLGATHER)
			op = !strcmp(k->reduce, "max")   ? "Max"
			     : !strcmp(k->reduce, "min") ? "Min"
			                                 : "Sum";
		if ((o = node(s, op, g, 1, k->kind == ART_ALLGATHER ? k->axis : NO_AXIS)))
			for (size_t j = 0; j < g; j++)
				o->input[j] = member_input(s, k->group[j], name);
	}
	if (o)
		o->output[0] =
		        k->kind == ART_REDUCESCATTER ? fmt(s, "%s/reduced", stem) : (char *)y;
	if ((rc = done(s, o)) || k->kind != ART_REDUCESCATTER)
		return rc;
	return split(s, o->output[0], k->axis, g, p, y, stem);
}

/* ---- Global inputs and outputs ------------------------------------------- */

/* Dim i of t: its mesh axes (*n of them) and the number of blocks. */
static const int *
dim_axes(const art_outdir *d, const art_mtensor *t, size_t i, size_t *n, size_t *blocks)
{
	const int *ax = &t->axes[i * d->n_axes];

	*blocks = 1;
	for (*n = 0; *n < d->n_axes && ax[*n] >= 0; ++*n)
		*blocks *= (size_t)d->size[ax[*n]];
	return ax;
}

/* Rank r's block of global input t: one Split per sharded dim, taking the
 * part at r's shard index. */
static int
cut_input(stitch *s, size_t r, const art_mtensor *t)
{
	const art_outdir *d = s->d;
	const char *cur = t->name, *last = fmt(s, "r%zu/%s", r, t->name);
	size_t left = 0, na, blocks;
	int rc;

	for (size_t i = 0; i < t->ndim; i++)
		dim_axes(d, t, i, &na, &blocks), left += na > 0;
	if (!last)
		return shd_nomem(s->ctx);
	if (!left)
		return identity(s, cur, last);
	for (size_t i = 0; i < t->ndim; i++) {
		const int *ax = dim_axes(d, t, i, &na, &blocks);
		size_t idx = 0;
		if (!na)
			continue;
		for (size_t k = 0; k < na; k++)
			idx = idx * (size_t)d->size[ax[k]] +
			      (size_t)d->coords[r * d->n_axes + (size_t)ax[k]];
		const char *stem = fmt(s, "s/r%zu/in/%s/%zu", r, t->name, i);
		const char *next = --left ? stem : last;
		if (!stem)
			return shd_nomem(s->ctx);
		if ((rc = split(s, cur, (int64_t)i, blocks, idx, next, stem)))
			return rc;
		cur = next;
	}
	return 0;
}

/* Global output t from rank blocks, as one replica sees it: along each
 * sharded dim (last first), concatenate the blocks in shard-index order,
 * keeping the result at the rank whose coords on that dim's axes are 0.
 * The ranks off t's axes are replicas: replica q is the set of ranks whose
 * coords on those axes are q's mixed-radix digits (mesh order, the first
 * axis most significant); its result is named as. */
static int
join_replica(stitch *s, const art_mtensor *t, uint64_t on, size_t q, const char *as)
{
	const art_outdir *d = s->d;
	const char **cur = alloc(s, d->world * sizeof *cur);
	int64_t *c = alloc(s, d->n_axes * sizeof *c), *want = alloc(s, d->n_axes * sizeof *want);
	size_t na, blocks, left = 0;
	int rc;

	if (!cur || !c || !want || !as)
		return shd_nomem(s->ctx);
	for (size_t a = d->n_axes; a-- > 0;)
		if (!(on >> a & 1)) {
			want[a] = (int64_t)(q % (size_t)d->size[a]);
			q /= (size_t)d->size[a];
		}
	for (size_t i = 0; i < t->ndim; i++)
		dim_axes(d, t, i, &na, &blocks), left += na > 0;
	size_t first = SIZE_MAX;
	for (size_t r = 0; r < d->world; r++) {
		int rep = 1;
		for (size_t a = 0; a < d->n_axes; a++)
			rep &= (on >> a & 1) || d->coords[r * d->n_axes + a] == want[a];
		if (rep && !(cur[r] = fmt(s, "r%zu/%s", r, t->name)))
			return shd_nomem(s->ctx);
		if (rep && first == SIZE_MAX)
			first = r;
	}
	if (!left)
		return identity(s, cur[first], as);
	for (size_t i = t->ndim; i-- > 0;) {
		const int *ax = dim_axes(d, t, i, &na, &blocks);
		if (!na)
			continue;
		left--;
		for (size_t r = 0; r < d->world; r++) {
			int rep = cur[r] != NULL;
			for (size_t k = 0; k < na; k++)
				rep &= d->coords[r * d->n_axes + (size_t)ax[k]] == 0;
			if (!rep)
				continue;
			Onnx__NodeProto *n = node(s, "Concat", blocks, 1, (int64_t)i);
			for (size_t b = 0; n && b < blocks; b++) {
				size_t src = 0;
				memcpy(c, &d->coords[r * d->n_axes], d->n_axes * sizeof *c);
				for (size_t k = na, x = b; k-- > 0; x /= (size_t)d->size[ax[k]])
					c[ax[k]] = (int64_t)(x % (size_t)d->size[ax[k]]);
				for (size_t a = 0; a < d->n_axes; a++)
					src = src * (size_t)d->size[a] + (size_t)c[a];
				n->input[b] = (char *)cur[src];
				cur[src] = src == r ? cur[src] : NULL;
			}
			if (n)
				cur[r] = n->output[0] =
				        left ? fmt(s, "s/out/%s/%zu/r%zu", as, i, r) : (char *)as;
			if ((rc = done(s, n)))
				return rc;
		}
	}
	return 0;
}

/* Global output t once per replica: replica 0 as t's name, replica q > 0
 * as "{name}@replica{q}", so a verifier sees every rank's result. */
static int
join_output(stitch *s, const art_mtensor *t)
{
	const art_outdir *d = s->d;
	uint64_t on = 0; /* t's axes */
	size_t na, blocks, n_rep = 1;
	int rc;

	for (size_t i = 0; i < t->ndim; i++) {
		const int *ax = dim_axes(d, t, i, &na, &blocks);
		for (size_t k = 0; k < na; k++)
			on |= (uint64_t)1 << ax[k];
	}
	for (size_t a = 0; a < d->n_axes; a++)
		n_rep *= on >> a & 1 ? 1 : (size_t)d->size[a];
	for (size_t q = 0; q < n_rep; q++) {
		const char *as = q ? fmt(s, "%s@replica%zu", t->name, q) : t->name;
		if ((rc = join_replica(s, t, on, q, as)))
			return rc;
		if (q && push_ptr(s, &s->reps, (void *)as))
			return shd_nomem(s->ctx);
		if (q && push_ptr(s, &s->rep_of, (void *)t))
			return shd_nomem(s->ctx);
	}
	return 0;
}

/* ---- Topological order: Kahn's algorithm over value names --------------- */

typedef struct {
	const char **key;
	size_t *val; /* producing node, or SIZE_MAX for graph inputs and initializers */
	size_t cap;  /* a power of two */
} name_map;

static size_t *
map_slot(const name_map *m, const char *k, int *found)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (const char *p = k; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (i = h & (m->cap - 1); m->key[i] && strcmp(m->key[i], k); i = (i + 1) & (m->cap - 1))
		;
	*found = m->key[i] != NULL;
	return &m->val[i];
}

static int
define(stitch *s, name_map *m, const char *k, size_t v)
{
	int found;
	size_t *slot = map_slot(m, k, &found);

	if (found)
		return shd_error(s->ctx, ONNXSHARD_EINPUT,
		                 "%s: stitched graph: value '%s' is defined twice", s->d->dir, k);
	m->key[slot - m->val] = k;
	*slot = v;
	return 0;
}

/* Edges into node `to` from the producers of n's inputs and, through n's
 * subgraphs, of the outer values they read (names they define themselves
 * are not in the map). A top-level input nothing defines is an error. */
static int
add_deps(stitch *s, const name_map *m, const Onnx__NodeProto *n, size_t to, int top, shd_vec *edges)
{
	size_t *p, *e;
	int found, rc;

	for (size_t j = 0; j < n->n_input; j++) {
		if (!*n->input[j])
			continue;
		p = map_slot(m, n->input[j], &found);
		if (!found && top)
			return shd_error(s->ctx, ONNXSHARD_EINPUT,
			                 "%s: stitched graph: node '%s' (%s) reads '%s', which "
			                 "nothing defines",
			                 s->d->dir, n->name ? n->name : "", n->op_type,
			                 n->input[j]);
		if (found && *p != SIZE_MAX) {
			if (!(e = shd_vec_push(s->ctx, edges, 2 * sizeof *e)))
				return shd_nomem(s->ctx);
			e[0] = *p, e[1] = to;
		}
	}
	for (size_t j = 0; j < n->n_attribute; j++) {
		const Onnx__AttributeProto *a = n->attribute[j];
		for (size_t k = 0; a->g && k < a->g->n_node; k++)
			if ((rc = add_deps(s, m, a->g->node[k], to, 0, edges)))
				return rc;
		for (size_t q = 0; q < a->n_graphs; q++)
			for (size_t k = 0; k < a->graphs[q]->n_node; k++)
				if ((rc = add_deps(s, m, a->graphs[q]->node[k], to, 0, edges)))
					return rc;
	}
	return 0;
}

static int
toposort(stitch *s, Onnx__NodeProto **out)
{
	Onnx__NodeProto **nodes = s->nodes.data;
	size_t nn = s->nodes.n, nv = s->inits.n + s->d->n_in, head = 0, tail = 0;
	shd_vec edges = {0};
	name_map m = {0};
	int rc = 0;

	for (size_t i = 0; i < nn; i++)
		nv += nodes[i]->n_output;
	for (m.cap = 16; m.cap < 2 * nv; m.cap *= 2)
		;
	if (!(m.key = alloc(s, m.cap * sizeof *m.key)) ||
	    !(m.val = alloc(s, m.cap * sizeof *m.val)))
		return shd_nomem(s->ctx);
	for (size_t i = 0; i < s->d->n_in && !rc; i++)
		rc = define(s, &m, s->d->in[i].name, SIZE_MAX);
	for (size_t i = 0; i < s->inits.n && !rc; i++)
		rc = define(s, &m, ((Onnx__TensorProto **)s->inits.data)[i]->name, SIZE_MAX);
	for (size_t i = 0; i < nn && !rc; i++)
		for (size_t j = 0; j < nodes[i]->n_output && !rc; j++)
			if (*nodes[i]->output[j])
				rc = define(s, &m, nodes[i]->output[j], i);
	for (size_t i = 0; i < nn && !rc; i++)
		rc = add_deps(s, &m, nodes[i], i, 1, &edges);
	/* Consumers by producer (a counting sort of the edges), in-degrees, then
	 * a FIFO from the nodes that wait on nothing, in list order. */
	size_t ne = edges.n, *ev = edges.data;
	size_t *deg = alloc(s, (nn + 1) * sizeof *deg), *start = alloc(s, (nn + 2) * sizeof *start);
	size_t *adj = alloc(s, (ne + 1) * sizeof *adj), *queue = alloc(s, (nn + 1) * sizeof *queue);
	if (!rc && (!deg || !start || !adj || !queue))
		rc = shd_nomem(s->ctx);
	for (size_t e = 0; !rc && e < ne; e++)
		deg[ev[2 * e + 1]]++, start[ev[2 * e] + 2]++;
	for (size_t i = 2; !rc && i < nn + 2; i++)
		start[i] += start[i - 1];
	for (size_t e = 0; !rc && e < ne; e++)
		adj[start[ev[2 * e] + 1]++] = ev[2 * e + 1];
	for (size_t i = 0; !rc && i < nn; i++)
		if (!deg[i])
			queue[tail++] = i;
	while (!rc && head < tail) {
		size_t i = queue[head++];
		out[head - 1] = nodes[i];
		for (size_t e = start[i]; e < start[i + 1]; e++)
			if (--deg[adj[e]] == 0)
				queue[tail++] = adj[e];
	}
	for (size_t i = 0; !rc && tail < nn && i < nn; i++)
		if (deg[i])
			rc = shd_error(s->ctx, ONNXSHARD_EINPUT,
			               "%s: stitched graph has a cycle through node '%s' (%s): the "
			               "ranks' collectives wait on each other",
			               s->d->dir, nodes[i]->name ? nodes[i]->name : "",
			               nodes[i]->op_type);
	shd_vec_free(s->ctx, &edges, 2 * sizeof(size_t));
	return rc;
}

/* ---- The model ----------------------------------------------------------- */

/* A graph input or output with the manifest's global shape. */
static Onnx__ValueInfoProto *
value_info(stitch *s, const art_mtensor *t, const char *name)
{
	Onnx__ValueInfoProto *v = alloc(s, sizeof *v);
	Onnx__TypeProto *tp = alloc(s, sizeof *tp);
	Onnx__TypeProto__Tensor *tt = alloc(s, sizeof *tt);
	Onnx__TensorShapeProto *sh = alloc(s, sizeof *sh);
	Onnx__TensorShapeProto__Dimension *dims = alloc(s, (t->ndim + 1) * sizeof *dims);
	Onnx__TensorShapeProto__Dimension **dp = alloc(s, (t->ndim + 1) * sizeof *dp);

	if (!v || !tp || !tt || !sh || !dims || !dp)
		return NULL;
	*v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
	*tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
	*tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
	*sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
	for (size_t i = 0; i < t->ndim; i++) {
		dims[i] = (Onnx__TensorShapeProto__Dimension)
		        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
		dims[i].value_case = t->sym[i]
		                             ? ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
		                             : ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		if (t->sym[i])
			dims[i].dim_param = (char *)t->sym[i];
		else
			dims[i].dim_value = t->dims[i];
		dp[i] = &dims[i];
	}
	sh->dim = dp;
	sh->n_dim = t->ndim;
	tt->has_elem_type = 1;
	tt->elem_type = t->dtype;
	tt->shape = sh;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	v->name = (char *)name;
	v->type = tp;
	return v;
}

/* A copy of rank r's declared tensor type vi (with a shape), its symbolic
 * dims (local sizes there) named for the rank. */
static Onnx__ValueInfoProto *
rank_info(stitch *s, size_t r, const Onnx__ValueInfoProto *vi)
{
	const Onnx__TensorShapeProto *src = vi->type->tensor_type->shape;
	Onnx__ValueInfoProto *v = alloc(s, sizeof *v);
	Onnx__TypeProto *tp = alloc(s, sizeof *tp);
	Onnx__TypeProto__Tensor *tt = alloc(s, sizeof *tt);
	Onnx__TensorShapeProto *sh = alloc(s, sizeof *sh);
	Onnx__TensorShapeProto__Dimension *dims = alloc(s, (src->n_dim + 1) * sizeof *dims);
	Onnx__TensorShapeProto__Dimension **dp = alloc(s, (src->n_dim + 1) * sizeof *dp);

	if (!v || !tp || !tt || !sh || !dims || !dp)
		return NULL;
	*v = *vi;
	*tp = *vi->type;
	*tt = *vi->type->tensor_type;
	*sh = *src;
	for (size_t k = 0; k < src->n_dim; k++) {
		dims[k] = *src->dim[k];
		if (dims[k].value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
		    !(dims[k].dim_param = fmt(s, "r%zu/%s", r, dims[k].dim_param)))
			return NULL;
		dp[k] = &dims[k];
	}
	sh->dim = dp;
	tt->shape = sh;
	tp->tensor_type = tt;
	v->type = tp;
	return v;
}

/* Load rank r, index its collectives, stream its initializers, rename it. */
static int
load_rank(stitch *s, size_t r)
{
	const char *path = fmt(s, "%s/%s", s->d->dir, s->d->model[r]);
	art_coll k;
	coll_ref *c;
	int rc;

	if (!path)
		return shd_nomem(s->ctx);
	if ((rc = onnx_load(s->ctx, path, &s->m[r])))
		return rc;
	Onnx__GraphProto *g = s->m[r]->proto->graph;
	if (s->m[r]->proto->n_functions)
		return shd_error(s->ctx, ONNXSHARD_EINPUT,
		                 "%s: model-local functions are not supported by stitch", path);
	for (size_t i = 0; i < g->n_node; i++) {
		if ((rc = art_coll_read(s->d, r, s->d->model[r], g->node[i], &k)))
			return rc;
		if (k.kind && (!(c = shd_vec_push(s->ctx, &s->colls[r], sizeof *c)) ||
		               !(c->name = fmt(s, "%s", g->node[i]->name))))
			return shd_nomem(s->ctx);
		if (k.kind)
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
	art_coll k;
	int rc;

	for (size_t i = 0; i < g->n_node; i++) {
		Onnx__NodeProto *n = g->node[i];
		/* art_coll_read reads attributes: the renaming does not matter. */
		if ((rc = art_coll_read(s->d, r, s->d->model[r], n, &k)))
			return rc;
		if (k.kind) /* its name before renaming follows "r{r}/" */
			rc = lower_coll(s, r, strchr(n->name, '/') + 1, n, &k);
		else
			rc = push_ptr(s, &s->nodes, n);
		if (rc)
			return rc;
		s->ms_used |= !k.kind && n->domain && !strcmp(n->domain, "com.microsoft");
	}
	return 0;
}

/* ir_version of rank 0; its opsets but the collectives' domain (ORT's
 * com.microsoft stays when other nodes use it). */
static int
write_model(stitch *s, const char *path, Onnx__NodeProto **sorted)
{
	Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	const Onnx__ModelProto *r0 = s->m[0]->proto;
	const art_outdir *d = s->d;

	mp.has_ir_version = 1;
	mp.ir_version = r0->ir_version;
	mp.producer_name = "onnxshard stitch";
	mp.producer_version = ONNXSHARD_VERSION;
	mp.graph = &g;
	mp.opset_import = alloc(s, (r0->n_opset_import + 2) * sizeof *mp.opset_import);
	g.input = alloc(s, (d->n_in + 1) * sizeof *g.input);
	g.output = alloc(s, (d->n_out + s->reps.n + 1) * sizeof *g.output);
	if (!mp.opset_import || !g.input || !g.output)
		return shd_nomem(s->ctx);
	for (size_t i = 0; i < r0->n_opset_import; i++) {
		const char *dom = r0->opset_import[i]->domain ? r0->opset_import[i]->domain : "";
		if (strcmp(dom, "onnxshard") && (strcmp(dom, "com.microsoft") || s->ms_used))
			mp.opset_import[mp.n_opset_import++] = r0->opset_import[i];
	}
	int has_default = 0;
	for (size_t i = 0; i < mp.n_opset_import; i++) {
		const char *dom = mp.opset_import[i]->domain ? mp.opset_import[i]->domain : "";
		has_default |= !*dom || !strcmp(dom, "ai.onnx");
	}
	if (!has_default) {
		Onnx__OperatorSetIdProto *o = alloc(s, sizeof *o);
		if (!o)
			return shd_nomem(s->ctx);
		*o = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
		o->domain = "";
		o->has_version = 1;
		o->version = s->opset;
		mp.opset_import[mp.n_opset_import++] = o;
	}
	g.name = "stitched";
	g.node = sorted;
	g.n_node = s->nodes.n;
	g.initializer = s->inits.data;
	g.n_initializer = s->inits.n;
	/* every rank's declared local shapes, for ONNX Runtime's buffer
	 * planning (a cache op may reuse its past's buffer for its present
	 * when it cannot tell their shapes apart); a symbolic dim stands for
	 * the rank's local size, so it is renamed per rank */
	size_t nvi = 0;
	for (size_t r = 0; r < d->world; r++) {
		const Onnx__GraphProto *rg = s->m[r]->proto->graph;
		nvi += rg->n_input + rg->n_output + rg->n_value_info;
	}
	if (!(g.value_info = alloc(s, (nvi + 1) * sizeof *g.value_info)))
		return shd_nomem(s->ctx);
	for (size_t r = 0; r < d->world; r++) {
		const Onnx__GraphProto *rg = s->m[r]->proto->graph;
		Onnx__ValueInfoProto **lists[3] = {rg->input, rg->output, rg->value_info};
		size_t counts[3] = {rg->n_input, rg->n_output, rg->n_value_info};
		for (int l = 0; l < 3; l++)
			for (size_t i = 0; i < counts[l]; i++) {
				Onnx__ValueInfoProto *vi = lists[l][i];
				if (!vi->type ||
				    vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
				    !vi->type->tensor_type->shape)
					continue;
				if (!(vi = rank_info(s, r, vi)))
					return shd_nomem(s->ctx);
				g.value_info[g.n_value_info++] = vi;
			}
	}
	for (; g.n_input < d->n_in; g.n_input++)
		if (!(g.input[g.n_input] = value_info(s, &d->in[g.n_input], d->in[g.n_input].name)))
			return shd_nomem(s->ctx);
	for (; g.n_output < d->n_out; g.n_output++)
		if (!(g.output[g.n_output] =
		              value_info(s, &d->out[g.n_output], d->out[g.n_output].name)))
			return shd_nomem(s->ctx);
	for (size_t i = 0; i < s->reps.n; i++, g.n_output++)
		if (!(g.output[g.n_output] =
		              value_info(s, ((const art_mtensor **)s->rep_of.data)[i],
		                         ((const char **)s->reps.data)[i])))
			return shd_nomem(s->ctx);
	return onnx_write_message(s->ctx, &mp.base, path);
}

static int
run(stitch *s, const char *tmp, const char *dtmp)
{
	const art_outdir *d = s->d;
	const Onnx__ModelProto *p;
	Onnx__NodeProto **sorted;
	int rc;

	if ((rc = onnx_datafile_open(s->ctx, &s->df, dtmp, s->loc)))
		return rc;
	for (size_t r = 0; r < d->world; r++)
		if ((rc = load_rank(s, r)))
			return rc;
	p = s->m[0]->proto;
	for (size_t i = 0; i < p->n_opset_import; i++)
		if (!p->opset_import[i]->domain || !*p->opset_import[i]->domain ||
		    !strcmp(p->opset_import[i]->domain, "ai.onnx"))
			s->opset = p->opset_import[i]->version;
	if (!s->opset) /* no default-domain node: import one for the stitching ops */
		s->opset = p->ir_version >= 7 ? 13 : 9;
	else if (s->opset < 2)
		return shd_error(s->ctx, ONNXSHARD_EINPUT,
		                 "%s/%s: default-domain opset %lld; stitch needs 2 or later",
		                 d->dir, d->model[0], (long long)s->opset);
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
	if (!(sorted = alloc(s, (s->nodes.n + 1) * sizeof *sorted)))
		return shd_nomem(s->ctx);
	if ((rc = toposort(s, sorted)) || (rc = onnx_datafile_close(s->ctx, &s->df)))
		return rc;
	return write_model(s, tmp, sorted);
}

int
onnxshard_stitch(onnxshard_ctx *c, const char *dir, const char *path)
{
	stitch s = {.ctx = c};
	const char *base = strrchr(path, '/');
	char *tmp, *dpath, *dtmp;
	int rc;

	if ((rc = art_outdir_check(c, dir, &s.d, NULL)))
		return rc;
	if (s.d->n_absent) { /* shard --rank */
		rc = shd_error(c, ONNXSHARD_EINPUT,
		               "%s: %zu of %zu ranks are not written (shard --rank); stitch "
		               "needs every rank",
		               dir, s.d->n_absent, s.d->world);
		art_outdir_free(s.d);
		return rc;
	}
	s.m = alloc(&s, s.d->world * sizeof *s.m);
	s.colls = alloc(&s, s.d->world * sizeof *s.colls);
	s.buf = alloc(&s, CHUNK);
	s.loc = fmt(&s, "%s.data", base ? base + 1 : path);
	tmp = fmt(&s, "%s.tmp", path);
	dpath = fmt(&s, "%s.data", path);
	dtmp = fmt(&s, "%s.data.tmp", path);
	if (!s.m || !s.colls || !s.buf || !s.loc || !tmp || !dpath || !dtmp)
		rc = shd_nomem(c);
	else
		rc = run(&s, tmp, dtmp);
	/* Written beside FILE, renamed into place only when whole. */
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
	shd_vec_free(c, &s.reps, sizeof(void *));
	shd_vec_free(c, &s.rep_of, sizeof(void *));
	shd_vec_free(c, &s.inits, sizeof(void *));
	shd_arena_free(c, &s.a);
	art_outdir_free(s.d);
	return rc;
}
