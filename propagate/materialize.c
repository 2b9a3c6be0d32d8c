/* Materialisation: what each node computes on every rank, and the reshards
 * (collectives or local slices) between producers and consumers.
 * requires: want[] from prop_propagate
 * provides: have[v] (as produced: possibly partial), one prop_reshard per
 *   operand or graph output whose sharding differs, notes on replication */
#include <string.h>

#include "prop.h"

uint32_t prop_tensor_value(const ir_graph *g, const ir_node *n, uint32_t t);
void prop_assign(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r,
                 const prop_shard *sh, int results_first, prop_dim *fa);
void prop_restrict(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r, prop_dim *fa);
void prop_derive(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r, const prop_dim *fa,
                 uint32_t t, prop_shard *out);

/* Operands added into a contraction's result (Gemm's C, a conv bias, the
 * data a scatter adds into): with the contraction split, they must be
 * added on one shard only. */
static int
is_additive(ir_graph *g, const ir_node *n, uint32_t k)
{
	if (k == 0)
		return ir_scatter_adds(g, n);
	return k == 2 && (n->op == OP_Gemm || n->op == OP_Conv || n->op == OP_ConvTranspose);
}

/* Room for one more item in an array of *cap items of size sz. */
static int
reserve(ir_graph *g, void **arr, uint32_t n, uint32_t *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	uint32_t ncap = *cap ? 2 * *cap : 16;
	void *a = shd_realloc(g->ctx, *arr, *cap * sz, ncap * sz);
	if (!a)
		return shd_nomem(g->ctx);
	*arr = a;
	*cap = ncap;
	return 0;
}

static int
add_step(ir_graph *g, prop_plan *p, prop_step s)
{
	int rc = reserve(g, (void **)&p->steps, p->n_steps, &p->cap_steps, sizeof s);

	if (!rc)
		p->steps[p->n_steps++] = s;
	return rc;
}

static prop_step
step(uint8_t kind, const uint8_t *ax, uint8_t n, int32_t dim, int32_t dim2)
{
	prop_step s;

	memset(&s, 0, sizeof s); /* padding too: steps are compared with memcmp */
	s.kind = kind;
	s.n_axes = n;
	s.dim = dim;
	s.dim2 = dim2;
	memcpy(s.ax, ax, n);
	return s;
}

static uint8_t
mask_axes(uint8_t mask, uint8_t *ax)
{
	uint8_t n = 0;

	for (uint8_t a = 0; a < PROP_MAX_AXES; a++)
		if (mask & (1u << a))
			ax[n++] = a;
	return n;
}

/* Whether two dims lie alike (a pending sum's AllReduce keeps them). */
static int
same_dim(const prop_dim *a, const prop_dim *b)
{
	return a->n == b->n && !memcmp(a->ax, b->ax, a->n) && (!a->n || prop_same_pieces(a, b));
}

/* Steps turning sharding s into t (same rank). */
static int
plan_steps(ir_graph *g, prop_plan *p, const prop_shard *s, const prop_shard *t)
{
	prop_dim cur[IR_MAX_RANK];
	uint8_t ax[PROP_MAX_AXES], partial = s->partial;
	int rc;

	SHD_ASSERT(s->rank == t->rank && s->rank <= IR_MAX_RANK);
	memcpy(cur, s->dims, (size_t)(s->rank > 0 ? s->rank : 0) * sizeof *cur);
	/* pending sums: reduce-scatter into a dim that wants exactly that axis, else all-reduce */
	partial &= (uint8_t)~t->partial;
	if (partial) {
		int done = 0;
		if (!(partial & (partial - 1)))
			for (int32_t d = 0; d < s->rank && !done; d++) {
				const prop_dim *x = &cur[d], *y = &t->dims[d];
				if (y->n == x->n + 1 && prop_pieces(y) == 1 && !y->pad &&
				    !memcmp(x->ax, y->ax, x->n) && (1u << y->ax[x->n]) == partial) {
					if ((rc = add_step(g, p,
					                   step(PROP_REDUCESCATTER, &y->ax[x->n], 1,
					                        d, 0))))
						return rc;
					cur[d] = *y;
					done = 1;
				}
			}
		if (!done &&
		    (rc = add_step(g, p, step(PROP_ALLREDUCE, ax, mask_axes(partial, ax), 0, 0))))
			return rc;
	}
	/* axes a dim has beyond the common prefix: move them (all-to-all) or
	 * gather; a dim in pieces whose layout changes is gathered whole, piece
	 * by piece */
	for (int32_t d = 0; d < s->rank; d++) {
		uint8_t k = 0;
		const prop_dim *y = &t->dims[d];
		int same = same_dim(&cur[d], y);
		if (cur[d].n && !same && (cur[d].pad || y->pad)) {
			/* padded blocks change only through the whole dim: gathered
			 * (the padding cut off), then sliced again */
			prop_step st = step(PROP_ALLGATHER, cur[d].ax, cur[d].n, d, 0);
			st.pad = cur[d].pad;
			st.pieces = cur[d].pieces; /* piece by piece, each cut */
			if ((rc = add_step(g, p, st)))
				return rc;
			memset(&cur[d], 0, sizeof cur[d]);
			continue;
		}
		if (cur[d].n && prop_pieces(&cur[d]) != prop_pieces(&t->dims[d])) {
			prop_step st = step(PROP_ALLGATHER, cur[d].ax, cur[d].n, d, 0);
			st.pieces = cur[d].pieces;
			if ((rc = add_step(g, p, st)))
				return rc;
			memset(&cur[d], 0, sizeof cur[d]);
			continue;
		}
		while (k < cur[d].n && k < t->dims[d].n && cur[d].ax[k] == t->dims[d].ax[k])
			k++;
		if (k == cur[d].n)
			continue;
		uint8_t extra = (uint8_t)(cur[d].n - k);
		const uint8_t *ex = &cur[d].ax[k];
		int moved = 0;
		for (int32_t d2 = 0; d2 < s->rank && !moved && prop_pieces(&cur[d]) == 1; d2++) {
			const prop_dim *y2 = &t->dims[d2];
			if (d2 == d || prop_pieces(y2) > 1 || y2->pad || cur[d2].pad ||
			    y2->n != cur[d2].n + extra || memcmp(cur[d2].ax, y2->ax, cur[d2].n) ||
			    memcmp(&y2->ax[cur[d2].n], ex, extra))
				continue;
			if ((rc = add_step(g, p, step(PROP_ALLTOALL, ex, extra, d2, d))))
				return rc;
			cur[d2] = *y2;
			moved = 1;
		}
		prop_step st = step(PROP_ALLGATHER, ex, extra, d, 0);
		st.pieces = cur[d].pieces;
		if (!moved && (rc = add_step(g, p, st)))
			return rc;
		cur[d].n = k;
		if (!k)
			cur[d].pieces = 0;
	}
	/* axes to add: a local slice (of each piece, for a dim in pieces) */
	for (int32_t d = 0; d < s->rank; d++) {
		if (t->dims[d].n <= cur[d].n)
			continue;
		prop_step st = step(PROP_SLICE, &t->dims[d].ax[cur[d].n],
		                    (uint8_t)(t->dims[d].n - cur[d].n), d, 0);
		st.pieces = t->dims[d].pieces;
		st.pad = t->dims[d].pad; /* from a whole dim (above) */
		if ((rc = add_step(g, p, st)))
			return rc;
	}
	uint8_t topartial = t->partial & (uint8_t)~s->partial;
	if (topartial)
		return add_step(g, p, step(PROP_TOPARTIAL, ax, mask_axes(topartial, ax), 0, 0));
	return 0;
}

enum { RETRY = -1 }; /* add_reshard: set nosym[v], materialise again */

static int
add_reshard(ir_graph *g, prop_plan *p, uint32_t node, uint32_t k, uint32_t v, const prop_shard *t)
{
	const prop_shard *s = &p->have[v];
	uint32_t first = p->n_steps;
	int rc;

	if (s->rank < 0 || prop_shard_eq(s, t))
		return 0;
	/* a symbolic count of pieces cannot be moved by a reshard (a pending
	 * sum over such a layout is summed in place): the value will be made
	 * without it (see prop_materialize) */
	for (int32_t d = 0; d < s->rank; d++)
		if ((s->dims[d].sym || t->dims[d].sym) && !same_dim(&s->dims[d], &t->dims[d])) {
			p->nosym[v] = 1;
			return RETRY;
		}
	if ((rc = plan_steps(g, p, s, t)))
		return rc;
	/* the same steps on the same value: one set of collectives serves both */
	uint32_t id = p->n_reshards, n = p->n_steps - first;
	for (uint32_t i = 0; i < p->n_reshards; i++) {
		const prop_reshard *o = &p->reshards[i];
		if (o->value == v && o->n == n &&
		    !memcmp(&p->steps[o->first], &p->steps[first], n * sizeof *p->steps)) {
			p->n_steps = first;
			first = o->first;
			id = o->id;
			break;
		}
	}
	if ((rc = reserve(g, (void **)&p->reshards, p->n_reshards, &p->cap_reshards,
	                  sizeof *p->reshards)))
		return rc;
	p->reshards[p->n_reshards] = (prop_reshard){node, k, v, first, n, id};
	p->n_reshards++;
	return 0;
}

int
prop_note_add(ir_graph *g, prop_plan *p, uint32_t v, const char *why)
{
	for (uint32_t i = 0; i < p->n_notes; i++)
		if (p->notes[i].value == v)
			return 0;
	int rc = reserve(g, (void **)&p->notes, p->n_notes, &p->cap_notes, sizeof *p->notes);
	if (rc)
		return rc;
	ir_str s = ir_intern(g, why);
	if (s.i == IR_NONE)
		return shd_nomem(g->ctx);
	p->notes[p->n_notes++] = (prop_note){v, ir_cstr(g, s)};
	return 0;
}

void
prop_output_shard(const ir_graph *g, const prop_plan *p, uint32_t j, prop_shard *out)
{
	uint32_t v = g->outputs[j];
	const prop_shard *s = p->have[v].partial ? &p->want[v] : &p->have[v];
	int data = p->gather_out[j] ? prop_mesh_axis(p->mesh, "data") : -2; /* -2: keep all */

	out->rank = s->rank;
	out->partial = 0;
	for (int32_t d = 0; d < s->rank; d++) {
		prop_dim *x = &out->dims[d];
		*x = s->dims[d];
		if (prop_is_pieced(x) || x->pad) /* the deployer gets equal blocks */
			memset(x, 0, sizeof *x);
		if (data == -2)
			continue;
		/* whole, but for the batch split over data (its leading axis) */
		if (!x->n || x->ax[0] != data)
			memset(x, 0, sizeof *x);
		else
			x->n = 1;
	}
}

static int
materialize_once(ir_graph *g, prop_plan *p)
{
	shd_ctx *c = g->ctx;
	shd_arena a = {0};
	prop_shard req = {0};
	prop_dim *fa = NULL;
	uint32_t cap_fa = 0;
	int rc = 0;

	if (!p->lookup)
		p->lookup = shd_arena_zalloc(c, &p->arena, (g->n_nodes + 1) * sizeof *p->lookup);
	if (!(req.dims = shd_calloc(c, IR_MAX_RANK, sizeof *req.dims)) || !p->lookup) {
		shd_free(c, req.dims, IR_MAX_RANK * sizeof *req.dims);
		return shd_nomem(c);
	}
	memset(p->lookup, 0, (g->n_nodes + 1) * sizeof *p->lookup);
	/* uses of each initializer (graph outputs too): one that a single
	 * operand reads is stored as that operand needs it */
	uint8_t *uses = shd_calloc(c, g->n_values + 1, 1);
	if (!uses) {
		shd_free(c, req.dims, IR_MAX_RANK * sizeof *req.dims);
		return shd_nomem(c);
	}
	for (uint32_t i = 0; i < g->n_nodes; i++)
		for (uint32_t k = 0; k < g->nodes[i].n_in; k++) {
			uint32_t v = ir_in(g, &g->nodes[i], k);
			if (v != IR_NONE && uses[v] < 2)
				uses[v]++;
		}
	for (uint32_t k = 0; k < g->n_outputs; k++)
		uses[g->outputs[k]] = 2;
	for (uint32_t v = 0; v < g->n_values; v++) {
		if (g->values[v].kind == IR_V_NODE)
			continue;
		for (int32_t d = 0; d < g->values[v].rank; d++) {
			p->have[v].dims[d] = p->want[v].dims[d];
			/* graph inputs arrive in plain blocks (the manifest and the
			 * deployer know no pieces) */
			if ((p->have[v].dims[d].sym && p->nosym[v]) ||
			    (g->values[v].kind == IR_V_INPUT &&
			     (prop_is_pieced(&p->have[v].dims[d]) || p->have[v].dims[d].pad)))
				memset(&p->have[v].dims[d], 0, sizeof(prop_dim));
		}
	}
	for (uint32_t i = 0; i < g->n_nodes && !rc; i++) {
		const ir_node *n = &g->nodes[i];
		ir_rule r;
		if (p->rules)
			r = p->rules[i];
		else if ((rc = ir_rule_of(g, i, &a, &r)))
			break;
		if (r.n_factors > cap_fa) {
			shd_free(c, fa, cap_fa * sizeof *fa);
			cap_fa = r.n_factors * 2;
			if (!(fa = shd_calloc(c, cap_fa, sizeof *fa))) {
				rc = shd_nomem(c);
				break;
			}
		}
		if (r.n_factors) {
			prop_assign(g, p, i, &r, p->want, 1, fa);
			prop_restrict(g, p, i, &r, fa);
		}
		uint8_t partial = 0;
		for (uint32_t f = 0; f < r.n_factors; f++)
			if (r.factors[f].kind == IR_F_REDUCE) {
				for (uint8_t k = 0; k < fa[f].n; k++)
					partial |= (uint8_t)(1u << fa[f].ax[k]);
				if (n->op == OP_Gather && fa[f].n)
					p->lookup[i] = fa[f];
			}
		for (uint32_t t = 0; t < n->n_in + n->n_out && !rc; t++) {
			uint32_t v = prop_tensor_value(g, n, t);
			if (v == IR_NONE || g->values[v].rank < 0 ||
			    g->values[v].rank > IR_MAX_RANK)
				continue;
			req.rank = g->values[v].rank;
			if (r.n_factors)
				prop_derive(g, p, i, &r, fa, t, &req);
			else
				memset(req.dims, 0, (size_t)req.rank * sizeof *req.dims);
			req.partial = 0;
			if (t >= n->n_in) {
				memcpy(p->have[v].dims, req.dims,
				       (size_t)req.rank * sizeof *req.dims);
				p->have[v].partial = partial;
				continue;
			}
			if (is_additive(g, n, t))
				req.partial = partial;
			/* Shape and Size read any sharding, a pending sum too: each
			 * rank scales its local sizes back to the global ones (a Size
			 * of padded blocks could not: it reads them unpadded) */
			if (n->op == OP_Shape)
				continue; /* a padded dim's size too (emit_shape_scale) */
			if (n->op == OP_Size) {
				/* but not padded sizes: those are cut off first */
				int padded = 0;
				memcpy(req.dims, p->have[v].dims,
				       (size_t)req.rank * sizeof *req.dims);
				req.partial = p->have[v].partial;
				for (int32_t d = 0; d < req.rank; d++)
					if (prop_is_padded(&req.dims[d]))
						memset(&req.dims[d], 0, sizeof *req.dims),
						        padded = 1;
				if (padded)
					rc = add_reshard(g, p, i, t, v, &req);
				continue;
			}
			/* a weight read once is stored as its reader needs it: never
			 * gathered every step (nor sliced) on its way in */
			if (g->values[v].kind == IR_V_INIT && uses[v] == 1 && !req.partial) {
				memcpy(p->have[v].dims, req.dims,
				       (size_t)req.rank * sizeof *req.dims);
				continue;
			}
			rc = add_reshard(g, p, i, t, v, &req);
		}
		shd_arena_free(c, &a);
	}
	for (uint32_t k = 0; k < g->n_outputs && !rc; k++) {
		uint32_t v = g->outputs[k];
		prop_shard *w = &p->want[v];
		if (w->rank < 0 || w->rank > IR_MAX_RANK)
			continue;
		prop_output_shard(g, p, k, &req);
		rc = add_reshard(g, p, IR_NONE, k, v, &req);
	}
	for (uint32_t i = 0; i < g->n_nodes && !rc; i++)
		if (g->nodes[i].op == OP_OPAQUE)
			for (uint32_t k = 0; k < g->nodes[i].n_in && !rc; k++) {
				uint32_t v = ir_in(g, &g->nodes[i], k);
				if (v != IR_NONE && !prop_is_replicated(&p->have[v]))
					rc = prop_note_add(g, p, v,
					                   "gathered: the op that reads it has no "
					                   "sharding rule");
			}
	shd_free(c, uses, g->n_values + 1);
	shd_free(c, fa, cap_fa * sizeof *fa);
	shd_free(c, req.dims, IR_MAX_RANK * sizeof *req.dims);
	shd_arena_free(c, &a);
	return rc;
}

int
prop_materialize(ir_graph *g, prop_plan *p)
{
	int rc;

	uint32_t notes = p->n_notes; /* the tactics' */

	/* each retry forbids symbolic pieces on one more value: it ends */
	while ((rc = materialize_once(g, p)) == RETRY) {
		p->n_reshards = p->n_steps = 0;
		p->n_notes = notes;
	}
	for (uint32_t v = 0; v < g->n_values && !rc; v++)
		if (p->nosym[v] && !prop_is_replicated(&p->want[v]))
			rc = prop_note_add(g, p, v,
			                   "its split would be pieces over a symbolic dim, "
			                   "which a reshard cannot move");
	return rc;
}
