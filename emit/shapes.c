/* Shape operands made local to each rank.
 * Reshape/Expand targets, ConstantOfShape shapes and Split sizes hold global
 * sizes; each rank needs its local ones. The shape computations are run
 * again over this rank's local dims (Shape reads the local tensor), which
 * tells what each element is at run time; an element that comes out wrong
 * is fixed: constant pieces become literals, the rest is scaled by
 * constants in front of the consumer.
 * requires: a materialised plan, a rank_ctx
 * provides: per operand slot a literal replacement or a run-time scale */
#include <string.h>

#include "lower_impl.h"

static int64_t
dim_blocks(rank_ctx *k, uint32_t y, int32_t d)
{
	const prop_shard *s = &k->p->have[y];

	if (d < 0 || d >= s->rank || !s->dims[d].n)
		return 1;
	return prop_axes_size(k->mesh, s->dims[d].ax, s->dims[d].n);
}

/* The elements of every shape value as this rank computes them: the
 * shape-computing nodes inferred again with local dims under Shape. */
static int
runtime_elems(rank_ctx *k)
{
	ir_graph *g = k->g;
	size_t bytes = g->n_values * sizeof *g->values;
	ir_value *saved = shd_alloc(k->c, bytes);

	k->rt = emit_alloc(k, (g->n_values + 1) * sizeof *k->rt);
	if (!saved || !k->rt) {
		shd_free(k->c, saved, bytes);
		return shd_nomem(k->c);
	}
	memcpy(saved, g->values, bytes);
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		int shape_node = n->n_out > 0;
		for (uint32_t o = 0; o < n->n_out; o++) {
			uint32_t y = ir_out(g, n, o);
			shape_node &= y != IR_NONE && saved[y].elems != NULL;
		}
		if (!shape_node)
			continue;
		if (n->op == OP_Shape || n->op == OP_Size) {
			uint32_t x = ir_in(g, n, 0);
			ir_value *xv = &g->values[x];
			ir_dim *ld = xv->rank > 0 ? shd_arena_alloc(k->c, &k->a,
			                                            (size_t)xv->rank * sizeof *ld)
			                          : NULL;
			if (xv->rank > 0 && !ld)
				break;
			for (int32_t d = 0; d < xv->rank; d++)
				ld[d] = prop_local_dim(g, k->p, &saved[x], &k->p->have[x], d);
			if (xv->rank > 0)
				xv->dims = ld;
		}
		for (uint32_t o = 0; o < n->n_out; o++)
			g->values[ir_out(g, n, o)].elems = NULL;
		if (ir_infer_node(g, i))
			for (uint32_t o = 0; o < n->n_out; o++)
				g->values[ir_out(g, n, o)].elems = NULL;
	}
	for (uint32_t v = 0; v < g->n_values; v++)
		k->rt[v] = saved[v].elems && g->values[v].n_elems == saved[v].n_elems
		                   ? g->values[v].elems
		                   : NULL;
	memcpy(g->values, saved, bytes);
	shd_free(k->c, saved, bytes);
	return 0;
}

/* Write want[0..n) as a literal replacing args slot `slot`. */
static int
literal(rank_ctx *k, uint32_t slot, uint32_t sv, const ir_dim *want, int32_t n)
{
	const ir_value *x = &k->g->values[sv];
	int64_t vals[IR_MAX_ELEMS];
	int32_t v32[IR_MAX_ELEMS];

	for (int32_t i = 0; i < n; i++) {
		if (!ir_is_const(want[i]))
			return 1;
		vals[i] = want[i].c;
		v32[i] = (int32_t)want[i].c;
	}
	const char *name = emit_str(k, "%s/local%u", ir_cstr(k->g, x->name), slot);
	int64_t dims[1] = {n};
	size_t r = x->rank == 0 ? 0 : 1;
	int rc = x->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT32
	                 ? emit_tensor_inline(k, name, x->dtype, dims, r, v32, (size_t)n * 4)
	                 : emit_tensor_inline(k, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims,
	                                      r, vals, (size_t)n * 8);
	if (rc)
		return -1;
	k->override[slot] = name;
	return 0;
}

static int
all_match(const ir_dim *got, const ir_dim *want, int32_t n)
{
	for (int32_t i = 0; i < n; i++)
		if (!got || !ir_dim_eq(got[i], want[i]))
			return 0;
	return 1;
}

/* Every graph dim bound to the same value (a multiple of the world, so
 * that local sizes divide). */
static int
bind_all(void *ud, const char *sym, int64_t *val)
{
	(void)sym;
	*val = *(const int64_t *)ud;
	return 0;
}

/* a / b with want = got * a / b for two bindings of the graph dims; 0 ok. */
static int
scale_of(rank_ctx *k, ir_dim got, ir_dim want, int64_t *a, int64_t *b)
{
	int64_t ra = 0, rb = 0;

	for (int64_t t = 3; t <= 5; t += 2) {
		int64_t bind = t * 2 * k->mesh->world, x, y;
		if (ir_dim_eval(k->g, got, bind_all, &bind, &x) ||
		    ir_dim_eval(k->g, want, bind_all, &bind, &y) || x <= 0 || y <= 0)
			return 1;
		int64_t na = y % x == 0 ? y / x : 1, nb = x % y == 0 ? x / y : 1;
		if (na * x / nb != y || (ra && (ra != na || rb != nb)))
			return 1;
		ra = na;
		rb = nb;
	}
	*a = ra;
	*b = rb;
	return 0;
}

/* Make shape operand k_op of node i local. 0 ok, 1 cannot, -1 out of memory. */
static int
rewrite_shape_operand(rank_ctx *k, uint32_t i, uint32_t k_op)
{
	ir_graph *g = k->g;
	const ir_node *n = &g->nodes[i];
	uint32_t sv = ir_in(g, n, k_op), y = ir_out(g, n, 0);
	ir_dim want[IR_MAX_ELEMS] = {{0, 0}};
	int all_const = 1;

	if (sv == IR_NONE || y == IR_NONE || !g->values[sv].elems)
		return 0;
	const ir_value *x = &g->values[sv], *yv = &g->values[y];
	const ir_value *in = &g->values[ir_in(g, n, 0)];
	const ir_dim *rt = k->rt[sv];
	for (int32_t e = 0; e < x->n_elems; e++) {
		ir_dim v = x->elems[e];
		uint32_t ye = y;
		int32_t d = n->op == OP_Expand ? yv->rank - x->n_elems + e : e;
		if (n->op == OP_Split) { /* split sizes: element j sizes output j's axis dim */
			int64_t ax = ir_attr_int(n, "axis", 0);
			if (e < (int32_t)n->n_out && ir_out(g, n, (uint32_t)e) != IR_NONE)
				ye = ir_out(g, n, (uint32_t)e);
			d = (int32_t)(ax < 0 ? ax + in->rank : ax);
		}
		/* Reshape's 0 and -1 and Expand's 1 say "as the input": keep them */
		int keep = (n->op == OP_Reshape && ir_is_const(v) && (v.c == 0 || v.c == -1)) ||
		           (n->op == OP_Expand && ir_is_const(v) && v.c == 1);
		want[e] = keep ? v : ir_floordiv(g, v, ir_const(dim_blocks(k, ye, d)));
		all_const &= ir_is_const(want[e]);
	}
	if (all_match(rt, want, x->n_elems))
		return 0;
	if (all_const)
		return literal(k, n->in + k_op, sv, want, x->n_elems);
	/* a Concat of pieces: a literal for each wrong piece that can be one */
	if (x->kind == IR_V_NODE && g->nodes[x->producer].op == OP_Concat && rt) {
		const ir_node *cn = &g->nodes[x->producer];
		int32_t at = 0, ok = 1;
		for (uint32_t j = 0; j < cn->n_in && ok; j++) {
			uint32_t pv = ir_in(g, cn, j);
			int32_t len =
			        pv == IR_NONE || !g->values[pv].elems ? -1 : g->values[pv].n_elems;
			if (len < 0 || at + len > x->n_elems) {
				ok = 0;
				break;
			}
			if (!all_match(rt + at, want + at, len)) {
				int rc = literal(k, cn->in + j, pv, want + at, len);
				if (rc < 0)
					return rc;
				ok = rc == 0;
			}
			at += len;
		}
		if (ok)
			return 0;
	}
	/* scale at run time: want = runtime * a / b */
	struct shape_fix *f = emit_alloc(k, sizeof *f);
	if (!f || !rt)
		return f ? 1 : -1;
	f->n = x->n_elems;
	for (int32_t e = 0; e < x->n_elems; e++) {
		f->a[e] = f->b[e] = 1;
		if (ir_dim_eq(rt[e], want[e]))
			continue;
		if (scale_of(k, rt[e], want[e], &f->a[e], &f->b[e]))
			return 1;
	}
	k->fix[n->in + k_op] = f;
	return 0;
}

int
emit_shape_operands(rank_ctx *k)
{
	ir_graph *g = k->g;
	int rc0 = runtime_elems(k);

	if (rc0)
		return rc0;

	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		uint32_t op = n->op == OP_Reshape || n->op == OP_Expand ? 1
		              : n->op == OP_ConstantOfShape             ? 0
		              : n->op == OP_Split && n->n_in >= 2       ? 1
		                                                        : IR_NONE;
		if (op == IR_NONE)
			continue;
		int rc = rewrite_shape_operand(k, i, op);
		if (rc < 0)
			return shd_nomem(k->c);
		if (rc > 0)
			return shd_error(k->c, ONNXSHARD_EFAIL,
			                 "%s: node '%s' (%s): cannot make its shape operand local "
			                 "to each rank",
			                 g->model->path, ir_cstr(g, n->name),
			                 ir_cstr(g, n->op_type));
	}
	return 0;
}

/* operand * a / b in front of node i's operand j. */
const char *
emit_fix(rank_ctx *k, uint32_t i, uint32_t j, const char *in)
{
	const struct shape_fix *f = k->fix[k->g->nodes[i].in + j];
	const ir_value *x = &k->g->values[ir_in(k->g, &k->g->nodes[i], j)];
	const char *an = emit_str(k, "onnxshard/fix%u_%u/a", i, j),
	           *bn = emit_str(k, "onnxshard/fix%u_%u/b", i, j);
	const char *mid = emit_str(k, "onnxshard/fix%u_%u/mul", i, j),
	           *out = emit_str(k, "onnxshard/fix%u_%u/div", i, j);
	int64_t dims[1] = {f->n};
	size_t r = x->rank == 0 ? 0 : 1;
	int32_t dt = x->dtype;
	int32_t a32[IR_MAX_ELEMS], b32[IR_MAX_ELEMS];

	for (int32_t e = 0; e < f->n; e++)
		a32[e] = (int32_t)f->a[e], b32[e] = (int32_t)f->b[e];
	if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32
	            ? emit_tensor_inline(k, an, dt, dims, r, a32, (size_t)f->n * 4) ||
	                      emit_tensor_inline(k, bn, dt, dims, r, b32, (size_t)f->n * 4)
	            : emit_tensor_inline(k, an, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, r, f->a,
	                                 (size_t)f->n * 8) ||
	                      emit_tensor_inline(k, bn, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims,
	                                         r, f->b, (size_t)f->n * 8))
		return in;
	const char *m_in[2] = {in, an}, *d_in[2] = {mid, bn};
	emit_node(k, "Mul", "", mid, m_in, 2, &mid, 1, NULL, 0);
	emit_node(k, "Div", "", out, d_in, 2, &out, 1, NULL, 0);
	return out;
}
