/* Shape inference and sharding rules of the indexing ops: Slice, Gather,
 * GatherElements, GatherND, ScatterElements, ScatterND, OneHot (the routing
 * ops of a mixture of experts). Slice and Gather fold
 * the elements of small integer values (shape tensors) through. */
#include <string.h>

#include "ops_impl.h"

/* A Slice bound at least this large in magnitude means "past the end" (dims
 * are taken to be below 2^31 elements). */
#define SLICE_HUGE ((int64_t)INT32_MAX)

/* ---- Slice ---- */

typedef struct {
	int32_t n;                             /* sliced axes */
	int32_t axis[MAX_RANK];                /* normalised, distinct */
	int64_t step[MAX_RANK];                /* never 0 */
	ir_dim start[MAX_RANK], end[MAX_RANK]; /* as given, possibly unknown */
} slice_p;

/* Slice's starts, ends, axes, steps (attributes before opset 10) against
 * rank r: 0, -1 when the axes or steps are not known, 1 when malformed. */
static int
slice_params(ir_graph *g, const ir_node *n, int32_t r, slice_p *p)
{
	int old = g->opset < 10;
	int64_t ax[MAX_RANK];
	int32_t ns, ne, na, nt, cnt;
	int ss = dim_list(g, n, old ? "starts" : NULL, 1, p->start, &ns);
	int se = dim_list(g, n, old ? "ends" : NULL, 2, p->end, &ne);
	int sa = int_list(g, n, old ? "axes" : NULL, 3, ax, &na);
	int st = old ? L_ABSENT : int_list(g, n, NULL, 4, p->step, &nt);

	if (ss == L_ABSENT || se == L_ABSENT)
		return 1;
	if (sa == L_UNKNOWN || st == L_UNKNOWN)
		return -1;
	cnt = ss == L_KNOWN   ? ns
	      : se == L_KNOWN ? ne
	      : sa == L_KNOWN ? na
	      : st == L_KNOWN ? nt
	                      : -1;
	if (cnt < 0)
		return -1;
	if ((ss == L_KNOWN && ns != cnt) || (se == L_KNOWN && ne != cnt) ||
	    (sa == L_KNOWN && na != cnt) || (st == L_KNOWN && nt != cnt) || cnt > r)
		return 1;
	p->n = cnt;
	uint8_t mask[MAX_RANK];
	if (sa == L_KNOWN && axes_mask(ax, cnt, r, mask, 0))
		return 1;
	for (int32_t i = 0; i < cnt; i++) {
		p->axis[i] = sa == L_KNOWN ? norm_axis(ax[i], r) : i;
		if (st != L_KNOWN)
			p->step[i] = 1;
		else if (p->step[i] == 0)
			return 1;
		if (ss != L_KNOWN)
			p->start[i] = ir_unknown();
		if (se != L_KNOWN)
			p->end[i] = ir_unknown();
	}
	return 0;
}

/* Where index i lands in a dim of size D once clamped as Slice does: into
 * [0, D] for a positive step, [-1, D-1] for a negative one. A symbolic D is
 * taken to be at least 1, and a symbolic bound against a constant D (slicing
 * a buffer to another tensor's length) to lie within it, as ONNX Runtime's
 * symbolic shape inference does; otherwise unknown unless provable. */
static ir_dim
slice_clamp(ir_graph *g, ir_dim D, ir_dim i, int neg)
{
	ir_dim hi = neg ? ir_sub(g, D, ir_const(1)) : D;
	int64_t lo = neg ? -1 : 0;

	if (!ir_is_known(D) || !ir_is_known(i))
		return ir_unknown();
	if (ir_is_const(i) && i.c >= SLICE_HUGE)
		return hi;
	if (ir_is_const(i) && i.c <= -SLICE_HUGE)
		return ir_const(lo);
	if (ir_is_const(D) && ir_is_const(i)) {
		int64_t v = i.c < 0 ? i.c + D.c : i.c;
		return ir_const(v < lo ? lo : v > hi.c ? hi.c : v);
	}
	if (ir_is_const(i) && i.c >= 0) /* below hi when hi >= 1 - neg */
		return i.c <= 1 - neg ? i : ir_unknown();
	if (ir_is_const(i)) /* negative: D + i, at least lo when i >= lo - 1 */
		return !ir_is_const(D) && i.c >= lo - 1 ? ir_add(g, D, i) : ir_unknown();
	if (ir_is_const(D)) /* a symbolic index: assumed within [0, D] */
		return neg ? ir_unknown() : i;
	/* an index computed from D: D + c, not negative when c >= -1 */
	ir_dim c = ir_sub(g, i, D);
	if (!ir_is_const(c))
		return ir_unknown();
	return c.c >= 0 ? hi : c.c >= -1 ? i : ir_unknown();
}

/* The length of a slice of dim D from s to e by step; unknown when not
 * provable. */
static ir_dim
slice_len(ir_graph *g, ir_dim D, ir_dim s, ir_dim e, int64_t step)
{
	ir_dim a = slice_clamp(g, D, s, step < 0), z = slice_clamp(g, D, e, step < 0);
	ir_dim span = step > 0 ? ir_sub(g, z, a) : ir_sub(g, a, z);
	int64_t by = step > 0 ? step : step == INT64_MIN ? INT64_MAX : -step;

	if (ir_is_const(span))
		return ir_const(span.c <= 0 ? 0 : span.c / by + (span.c % by != 0));
	/* symbolic: not negative when it is D + c with c >= -1, or when it runs
	 * from the first position */
	ir_dim c = ir_sub(g, span, D);
	int from0 = step > 0 ? ir_dim_eq(a, ir_const(0)) : ir_dim_eq(z, ir_const(-1));
	if (!ir_is_known(span) || !(from0 || (ir_is_const(c) && c.c >= -1)))
		return ir_unknown();
	return ir_ceildiv(g, span, ir_const(by));
}

int
infer_slice(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	static const char *const what[] = {"starts", "ends", "axes", "steps"};
	slice_p p;
	int st;

	for (uint32_t k = 1; g->opset >= 10 && k <= 4; k++)
		if ((st = need_int_operand(g, n, k, what[k - 1], 1)))
			return st;
	if (!x || !y || !has_rank(x))
		return dtype_only(y, x);
	if ((st = slice_params(g, n, x->rank, &p)) > 0)
		return node_error(g, n, "starts, ends, axes and steps do not match rank %d",
		                  (int)x->rank);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	for (int32_t i = 0; i < x->rank; i++)
		d[i] = st ? ir_unknown() : x->dims[i];
	for (int32_t k = 0; !st && k < p.n; k++)
		d[p.axis[k]] = slice_len(g, x->dims[p.axis[k]], p.start[k], p.end[k], p.step[k]);
	/* a slice of a small tensor of constant shape */
	if (st || !x->elems)
		return 0;
	int64_t first[MAX_RANK], step[MAX_RANK], idx[MAX_RANK], numel = 1;
	for (int32_t i = 0; i < x->rank; i++) {
		if (!ir_is_const(x->dims[i]) || !ir_is_const(d[i]))
			return 0;
		first[i] = 0, step[i] = 1, idx[i] = 0;
		numel *= x->dims[i].c;
	}
	for (int32_t k = 0; k < p.n; k++) {
		ir_dim a = slice_clamp(g, x->dims[p.axis[k]], p.start[k], p.step[k] < 0);
		if (!ir_is_const(a))
			return 0;
		first[p.axis[k]] = a.c;
		step[p.axis[k]] = p.step[k];
	}
	if (numel != x->n_elems)
		return 0;
	int64_t ny = 1;
	for (int32_t i = 0; i < x->rank; i++)
		ny *= d[i].c;
	ir_dim *e = set_elems(g, y, (int32_t)ny);
	if (!e)
		return nomem(g);
	for (int64_t k = 0; k < ny; k++) {
		int64_t src = 0;
		for (int32_t i = 0; i < x->rank; i++)
			src = src * x->dims[i].c + first[i] + idx[i] * step[i];
		if (src < 0 || src >= numel)
			return node_error(g, n, "slice reads past the tensor");
		e[k] = x->elems[src];
		for (int32_t i = x->rank - 1; i >= 0 && ++idx[i] == d[i].c; i--)
			idx[i] = 0;
	}
	return 0;
}

int64_t
ir_slice_piece(ir_graph *g, const ir_node *n, int32_t *axis)
{
	ir_value *x = in_val(g, (ir_node *)n, 0), *y = out_val(g, (ir_node *)n, 0);
	int64_t pieces = 0;
	slice_p p;

	if (n->op != OP_Slice || !x || !y || !has_rank(x) || y->rank != x->rank ||
	    slice_params(g, n, x->rank, &p))
		return 0;
	for (int32_t k = 0; k < p.n; k++) {
		ir_dim D = x->dims[p.axis[k]], L = y->dims[p.axis[k]];
		if (ir_dim_eq(D, L) && p.step[k] > 0)
			continue; /* whole */
		ir_dim a = slice_clamp(g, D, p.start[k], 0);
		if (pieces || p.step[k] != 1 || !ir_is_const(D) || !ir_is_const(L) || L.c < 1 ||
		    D.c % L.c || D.c / L.c < 2 || D.c / L.c > 255 || !ir_is_const(a) || a.c % L.c)
			return 0;
		pieces = D.c / L.c;
		*axis = p.axis[k];
	}
	return pieces;
}

void
rule_slice(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int8_t sliced[MAX_RANK] = {0};
	int32_t axis = -1;
	int64_t pieces = ir_slice_piece(g, n, &axis);
	slice_p p;

	if (!has_rank(x) || y->rank != x->rank || slice_params(g, n, x->rank, &p))
		return;
	for (int32_t k = 0; k < p.n; k++)
		sliced[p.axis[k]] = p.step[k] > 0 ? 1 : 2;
	/* a dim sliced by a positive step to its full size is left as it was;
	 * one of equal pieces ([which piece, within a piece], as an equal
	 * Split) splits alike within the piece (a packed projection) */
	for (int32_t d = 0; d < x->rank; d++) {
		if (!sliced[d] || (sliced[d] == 1 && ir_dim_eq(x->dims[d], y->dims[d]))) {
			rb_pass(b, x->dims[d], 0, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
		} else if (d == axis && pieces) {
			rb_map(b, 0, (uint32_t)d, rb_factor(b, IR_F_REPL, ir_const(pieces)));
			rb_pass(b, y->dims[d], 0, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
		}
	}
}

/* ---- Gather, GatherElements, GatherND, ScatterElements, ScatterND ---- */

int
infer_gather(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1), *y = out_val(g, n, 0);
	int64_t idx[IR_MAX_ELEMS];
	int rc;

	if ((rc = need_int_operand(g, n, 1, "indices", 1)))
		return rc;
	if (!x || !ix || !y || !has_rank(x) || !has_rank(ix))
		return dtype_only(y, x);
	int axis = norm_axis(ir_attr_int(n, "axis", 0), x->rank);
	int32_t r = x->rank - 1 + ix->rank;
	if (axis < 0)
		return node_error(g, n, "axis out of range for rank %d", (int)x->rank);
	if (r > MAX_RANK)
		return 0;
	ir_dim *d = set_shape(g, y, x->dtype, r);
	if (!d)
		return nomem(g);
	memcpy(d, x->dims, (size_t)axis * sizeof *d);
	memcpy(d + axis, ix->dims, (size_t)ix->rank * sizeof *d);
	memcpy(d + axis + ix->rank, x->dims + axis + 1, (size_t)(x->rank - axis - 1) * sizeof *d);
	/* elements of a small 1-D value picked by constant indices */
	if (!x->elems || x->rank != 1 || ix->rank > 1 || !const_ints(ix, idx, IR_MAX_ELEMS) ||
	    ix->n_elems > IR_MAX_ELEMS)
		return 0;
	ir_dim *e = set_elems(g, y, ix->n_elems);
	if (!e)
		return nomem(g);
	for (int32_t i = 0; i < ix->n_elems; i++) {
		int64_t k = idx[i] < 0 ? idx[i] + x->n_elems : idx[i];
		if (k < 0 || k >= x->n_elems)
			return node_error(g, n, "index %lld out of range for %d elements",
			                  (long long)idx[i], (int)x->n_elems);
		e[i] = x->elems[k];
	}
	return 0;
}

void
rule_gather(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1);
	int axis = norm_axis(ir_attr_int(n, "axis", 0), x->rank);

	if (axis < 0)
		return;
	for (int32_t d = 0; d < x->rank; d++)
		if (d != axis)
			rb_pass(b, x->dims[d], 0, (uint32_t)d, T_OUT(n, 0),
			        (uint32_t)(d < axis ? d : d - 1 + ix->rank));
	for (int32_t d = 0; d < ix->rank; d++)
		rb_pass(b, ix->dims[d], 1, (uint32_t)d, T_OUT(n, 0), (uint32_t)(axis + d));
	/* a table split along the gathered axis (a vocabulary-parallel
	 * embedding): each rank looks up the rows it holds, zeros elsewhere,
	 * and the result is a pending sum (emission masks the lookup with ops
	 * of opset 9) */
	if (x->rank == 2 && axis == 0 && is_int_dtype(ix->dtype) && g->opset >= 9)
		rb_map(b, 0, (uint32_t)axis, rb_factor(b, IR_F_REDUCE, x->dims[axis]));
}

int
infer_gatherelements(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1), *y = out_val(g, n, 0);
	int rc;

	if ((rc = need_int_operand(g, n, 1, "indices", 1)))
		return rc;
	if (!x || !ix || !y)
		return 0;
	if (x->rank >= 0 && ix->rank >= 0 && x->rank != ix->rank)
		return node_error(g, n, "data has rank %d, indices rank %d", (int)x->rank,
		                  (int)ix->rank);
	if (x->rank >= 0 && norm_axis(ir_attr_int(n, "axis", 0), x->rank) < 0)
		return node_error(g, n, "axis out of range for rank %d", (int)x->rank);
	rc = copy_shape(g, y, ix, x->dtype);
	y->dtype = x->dtype;
	return rc;
}

/* GatherElements: out[.., i, ..] = data[.., idx[.., i, ..], ..] along axis.
 * A dim other than the axis indexes data, indices and the result alike:
 * it passes through all three when their sizes agree (a smaller indices
 * dim would read data's block at the wrong offset). Along the axis, the
 * indices' positions are the result's: they pass from indices to the
 * result while data stays whole there (each rank gathers its positions
 * from every row). */
void
rule_gatherelements(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1);
	int axis = norm_axis(ir_attr_int(n, "axis", 0), x->rank);

	if (axis < 0 || x->rank != ix->rank)
		return;
	for (int32_t d = 0; d < x->rank; d++)
		if (d == axis) {
			rb_pass(b, ix->dims[d], 1, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
		} else if (ir_dim_eq(x->dims[d], ix->dims[d])) {
			uint32_t f = rb_pass(b, x->dims[d], 0, (uint32_t)d, 1, (uint32_t)d);
			rb_map(b, T_OUT(n, 0), (uint32_t)d, f);
		}
}

int
infer_gathernd(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1), *y = out_val(g, n, 0);
	int64_t bd = ir_attr_int(n, "batch_dims", 0);
	int rc;

	if ((rc = need_int_operand(g, n, 1, "indices", 0)))
		return rc;
	if (!x || !ix || !y || !has_rank(x) || !has_rank(ix))
		return dtype_only(y, x);
	y->dtype = x->dtype;
	if (ix->rank < 1 || bd < 0 || bd >= x->rank || bd >= ix->rank)
		return node_error(g, n, "batch_dims %lld does not fit ranks %d and %d",
		                  (long long)bd, (int)x->rank, (int)ix->rank);
	ir_dim m = ix->dims[ix->rank - 1];
	if (!ir_is_const(m))
		return 0;
	if (m.c < 1 || m.c > x->rank - bd)
		return node_error(g, n, "index tuples of %lld for data of rank %d", (long long)m.c,
		                  (int)x->rank);
	int32_t lead = ix->rank - 1, tail = x->rank - (int32_t)(bd + m.c);
	ir_dim *d = set_shape(g, y, x->dtype, lead + tail);
	if (!d)
		return nomem(g);
	memcpy(d, ix->dims, (size_t)lead * sizeof *d);
	memcpy(d + lead, x->dims + bd + m.c, (size_t)tail * sizeof *d);
	return 0;
}

int
infer_scatter(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1), *u = in_val(g, n, 2);
	int rc;

	if ((rc = need_int_operand(g, n, 1, "indices", n->op == OP_ScatterElements)))
		return rc;
	if (n->op == OP_ScatterElements && x && ix && u) {
		if ((x->rank >= 0 && ix->rank >= 0 && x->rank != ix->rank) ||
		    (ix->rank >= 0 && u->rank >= 0 && ix->rank != u->rank))
			return node_error(g, n,
			                  "data, indices and updates have ranks %d, %d and %d",
			                  (int)x->rank, (int)ix->rank, (int)u->rank);
		if (x->rank >= 0 && norm_axis(ir_attr_int(n, "axis", 0), x->rank) < 0)
			return node_error(g, n, "axis out of range for rank %d", (int)x->rank);
	}
	return copy_shape(g, out_val(g, n, 0), x, 0);
}

/* Whether a scatter adds its updates into data (reduction "add", opset 16
 * on): then the result is data plus a sum over the updates, and updates
 * split into groups leave a pending sum, with data counted on one shard
 * (materialisation masks it: an additive operand). */
int
ir_scatter_adds(ir_graph *g, const ir_node *n)
{
	return (n->op == OP_ScatterElements || n->op == OP_ScatterND) && g->opset >= 16 &&
	       !strcmp(ir_attr_str(g, n, "reduction", "none"), "add");
}

/* ScatterElements: data copied, then out[.., idx[.., i, ..], ..] (op)=
 * upd[.., i, ..] along axis. A dim other than the axis indexes all four
 * alike and passes where their sizes agree. Along the axis data and the
 * result stay whole (the indices address any row); the indices' and
 * updates' positions there are a reduction when the updates are added:
 * each rank adds its share of them into data kept on one shard, and the
 * shares sum to the result. Overwriting (none), mul, max and min do not
 * combine by a sum: the axis stays whole.
 * ScatterND: indices [q-1 batch dims, k] write slices of data's dims from k
 * on, which pass to the updates' trailing dims; with "add", the batch dims
 * of indices and updates are a reduction as above. */
void
rule_scatter(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1), *u = in_val(g, n, 2);
	uint32_t to = T_OUT(n, 0);
	int adds = ir_scatter_adds(g, n);

	if (n->op == OP_ScatterElements) {
		int axis = norm_axis(ir_attr_int(n, "axis", 0), x->rank);
		if (axis < 0 || x->rank != ix->rank || x->rank != u->rank)
			return;
		for (int32_t d = 0; d < x->rank; d++) {
			if (!ir_dim_eq(ix->dims[d], u->dims[d]))
				continue;
			if (d == axis) {
				if (!adds)
					continue;
				uint32_t f = rb_factor(b, IR_F_REDUCE, ix->dims[d]);
				rb_map(b, 1, (uint32_t)d, f);
				rb_map(b, 2, (uint32_t)d, f);
			} else if (ir_dim_eq(x->dims[d], ix->dims[d])) {
				uint32_t f =
				        rb_pass(b, x->dims[d], 0, (uint32_t)d, to, (uint32_t)d);
				rb_map(b, 1, (uint32_t)d, f);
				rb_map(b, 2, (uint32_t)d, f);
			}
		}
		return;
	}
	if (ix->rank < 1 || !ir_is_const(ix->dims[ix->rank - 1]))
		return;
	int64_t k = ix->dims[ix->rank - 1].c;
	if (k < 1 || k > x->rank || u->rank != ix->rank - 1 + x->rank - k)
		return;
	for (int64_t d = k; d < x->rank; d++) {
		int64_t ud = ix->rank - 1 + d - k;
		if (ir_dim_eq(x->dims[d], u->dims[ud])) {
			uint32_t f = rb_pass(b, x->dims[d], 0, (uint32_t)d, to, (uint32_t)d);
			rb_map(b, 2, (uint32_t)ud, f);
		}
	}
	for (int32_t d = 0; adds && d < ix->rank - 1; d++)
		if (ir_dim_eq(ix->dims[d], u->dims[d])) {
			uint32_t f = rb_factor(b, IR_F_REDUCE, ix->dims[d]);
			rb_map(b, 1, (uint32_t)d, f);
			rb_map(b, 2, (uint32_t)d, f);
		}
}

/* ---- OneHot ---- */

int
infer_onehot(ir_graph *g, ir_node *n)
{
	ir_value *ix = in_val(g, n, 0), *dp = in_val(g, n, 1), *vals = in_val(g, n, 2);
	ir_value *y = out_val(g, n, 0);

	if (!ix || !dp || !vals || !y)
		return 0;
	y->dtype = vals->dtype;
	if (dp->rank > 1 || (dp->rank == 1 && ir_is_const(dp->dims[0]) && dp->dims[0].c != 1))
		return node_error(g, n, "depth must be a scalar or have one element");
	if (vals->rank > 1 ||
	    (vals->rank == 1 && ir_is_const(vals->dims[0]) && vals->dims[0].c != 2))
		return node_error(g, n, "values must hold two elements (off, on)");
	if (!has_rank(ix) || ix->rank + 1 > MAX_RANK)
		return 0;
	int32_t r = ix->rank + 1;
	int axis = norm_axis(ir_attr_int(n, "axis", -1), r);
	if (axis < 0)
		return node_error(g, n, "axis out of range for rank %d", (int)r);
	ir_dim *d = set_shape(g, y, vals->dtype, r);
	if (!d)
		return nomem(g);
	/* an integer depth whose element is tracked; a float one is not */
	ir_dim depth = dp->elems && dp->n_elems == 1 ? dp->elems[0] : ir_unknown();
	for (int32_t i = 0, k = 0; i < r; i++)
		d[i] = i == axis ? depth : ix->dims[k++];
	return 0;
}

/* OneHot: every dim of the indices passes to the result; the new depth dim
 * is whole (each rank holds every class of its indices). */
void
rule_onehot(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *ix = in_val(g, n, 0), *y = out_val(g, n, 0);

	if (y->rank != ix->rank + 1)
		return;
	int axis = norm_axis(ir_attr_int(n, "axis", -1), y->rank);
	for (int32_t d = 0; axis >= 0 && d < ix->rank; d++)
		rb_pass(b, ix->dims[d], 0, (uint32_t)d, T_OUT(n, 0),
		        (uint32_t)(d < axis ? d : d + 1));
}
