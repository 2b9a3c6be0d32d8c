/* Shape inference and sharding rules of the data-movement ops that regroup or
 * reorder dims (Reshape, Transpose, Squeeze, Unsqueeze, Flatten, Concat, Split,
 * Expand, Tile, Pad, Resize) and Trilu's rule; the indexing ops are in
 * ops_index.c. Small integer values (shape tensors) have their elements folded
 * through these ops, so that Shape -> Gather -> Concat -> Reshape gives a
 * symbolic target shape. */
#include <math.h>
#include <string.h>

#include "ops_impl.h"

/* Whether v's dims are all constant (a small tensor whose elements may be
 * tracked, row-major, whatever its rank). */
static int
is_const_shape(const ir_value *v)
{
	for (int32_t d = 0; d < v->rank; d++)
		if (!ir_is_const(v->dims[d]))
			return 0;
	return v->rank >= 0;
}

/* y holds x's elements in another shape (Reshape, Squeeze...): copy them
 * when y is a small value of constant shape and as many elements. */
static int
pass_elems(ir_graph *g, const ir_value *x, ir_value *y)
{
	if (!x->elems || y->rank < 0 || !is_const_shape(y) ||
	    !ir_dim_eq(dims_prod(g, y->dims, 0, y->rank), ir_const(x->n_elems)))
		return 0;
	ir_dim *e = set_elems(g, y, x->n_elems);
	if (!e)
		return nomem(g);
	memcpy(e, x->elems, (size_t)x->n_elems * sizeof *e);
	return 0;
}

/* y, a small 1-D value, cycles through x's elements (Expand, Tile). */
static int
cycle_elems(ir_graph *g, const ir_value *x, ir_value *y)
{
	if (!x->elems || !x->n_elems || x->rank > 1 || y->rank != 1 || !ir_is_const(y->dims[0]) ||
	    y->dims[0].c > IR_MAX_ELEMS || y->dims[0].c % x->n_elems)
		return 0;
	ir_dim *e = set_elems(g, y, (int32_t)y->dims[0].c);
	if (!e)
		return nomem(g);
	for (int32_t i = 0; i < y->n_elems; i++)
		e[i] = x->elems[i % x->n_elems];
	return 0;
}

/* ---- Reshape, Flatten and their compound-factor rule ---- */

int
infer_reshape(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *s = in_val(g, n, 1), *y = out_val(g, n, 0);
	int allow0 = ir_attr_int(n, "allowzero", 0) != 0;
	int32_t minus = -1;
	int rc;

	if (!x || !s || !y)
		return 0;
	y->dtype = x->dtype;
	if ((rc = need_int_operand(g, n, 1, "shape", 0)))
		return rc;
	if (s->rank > 1 || s->rank == 0)
		return node_error(g, n, "the shape operand has rank %d, not 1", (int)s->rank);
	if (s->rank < 0 || !ir_is_const(s->dims[0]))
		return 0;
	if (s->dims[0].c > MAX_RANK)
		return node_error(g, n, "target rank %lld is above %d", (long long)s->dims[0].c,
		                  MAX_RANK);
	int32_t r = (int32_t)s->dims[0].c;
	ir_dim *d = set_shape(g, y, x->dtype, r);
	if (!d)
		return nomem(g);
	for (int32_t i = 0; i < r; i++) {
		ir_dim e = s->elems && s->n_elems == r ? s->elems[i] : ir_unknown();
		d[i] = e;
		if (!ir_is_const(e))
			continue;
		if (e.c == 0 && !allow0) {
			if (x->rank >= 0 && i >= x->rank)
				return node_error(
				        g, n, "target dim %d copies an input dim beyond rank %d",
				        (int)i, (int)x->rank);
			d[i] = x->rank >= 0 ? x->dims[i] : ir_unknown();
		} else if (e.c == -1) {
			if (minus >= 0)
				return node_error(g, n, "more than one -1 in the target shape");
			minus = i;
			d[i] = ir_unknown();
		} else if (e.c < 0) {
			return node_error(g, n, "target dim %lld is negative", (long long)e.c);
		}
	}
	if (x->rank < 0)
		return 0;
	ir_dim total = dims_prod(g, x->dims, 0, x->rank), rest = ir_const(1);
	for (int32_t i = 0; i < r; i++)
		rest = i == minus ? rest : ir_mul(g, rest, d[i]);
	if (minus >= 0) {
		if (ir_is_const(rest) && rest.c == 0) {
			if (ir_is_const(total) && total.c != 0)
				return node_error(
				        g, n, "cannot reshape %lld elements with a 0 dim and -1",
				        (long long)total.c);
		} else if (ir_is_const(total) && ir_is_const(rest)) {
			if (total.c % rest.c)
				return node_error(
				        g, n, "cannot reshape %lld elements into multiples of %lld",
				        (long long)total.c, (long long)rest.c);
			d[minus] = ir_const(total.c / rest.c);
		} else {
			d[minus] = ir_floordiv(g, total, rest);
		}
	} else if (ir_is_const(total) && ir_is_const(rest) && total.c != rest.c) {
		return node_error(g, n, "cannot reshape %lld elements into %lld",
		                  (long long)total.c, (long long)rest.c);
	}
	return pass_elems(g, x, y);
}

int
infer_flatten(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int64_t axis = ir_attr_int(n, "axis", 1);

	if (!x || !y || !has_rank(x))
		return dtype_only(y, x);
	if (axis < 0)
		axis += x->rank;
	if (axis < 0 || axis > x->rank)
		return node_error(g, n, "axis %lld out of range for rank %d",
		                  (long long)ir_attr_int(n, "axis", 1), (int)x->rank);
	ir_dim *d = set_shape(g, y, x->dtype, 2);
	if (!d)
		return nomem(g);
	d[0] = dims_prod(g, x->dims, 0, (int32_t)axis);
	d[1] = dims_prod(g, x->dims, (int32_t)axis, x->rank);
	return 0;
}

/* The shortest runs xs[0..*a) and ys[0..*c) of equal product, or 0. */
static int
find_run(ir_graph *g, const ir_dim *xs, int32_t nx, const ir_dim *ys, int32_t ny, int32_t *a,
         int32_t *c)
{
	ir_dim px[MAX_RANK + 1], py[MAX_RANK + 1];

	px[0] = py[0] = ir_const(1);
	for (int32_t i = 0; i < nx; i++)
		px[i + 1] = ir_mul(g, px[i], xs[i]);
	for (int32_t j = 0; j < ny; j++)
		py[j + 1] = ir_mul(g, py[j], ys[j]);
	for (int32_t len = 2; len <= nx + ny; len++)
		for (int32_t i = 1; i < len; i++)
			if (i <= nx && len - i <= ny && ir_dim_eq(px[i], py[len - i])) {
				*a = i;
				*c = len - i;
				return 1;
			}
	return 0;
}

/* The factors of one run: dims ix[0..a) of tensor tx against iy[0..c) of ty. */
static void
emit_run(rule_b *b, uint32_t tx, const ir_value *x, const int32_t *ix, int32_t a, uint32_t ty,
         const ir_value *y, const int32_t *iy, int32_t c)
{
	if (a == 1 && c == 1) {
		rb_pass(b, x->dims[ix[0]], tx, (uint32_t)ix[0], ty, (uint32_t)iy[0]);
	} else if (a == 1) { /* split: x's dim is the compound of y's, major first */
		for (int32_t j = 0; j < c; j++)
			rb_map(b, tx, (uint32_t)ix[0],
			       rb_pass(b, y->dims[iy[j]], ty, (uint32_t)iy[j], IR_NONE, 0));
	} else if (c == 1) { /* merge */
		for (int32_t i = 0; i < a; i++)
			rb_map(b, ty, (uint32_t)iy[0],
			       rb_pass(b, x->dims[ix[i]], tx, (uint32_t)ix[i], IR_NONE, 0));
	}
}

/* q = n / d when d divides n exactly (as constants or monomials). */
static int
divides_exactly(ir_graph *g, ir_dim n, ir_dim d, ir_dim *q)
{
	if (!ir_is_known(n) || !ir_is_known(d) || (ir_is_const(d) && d.c <= 0))
		return 0;
	*q = ir_floordiv(g, n, d);
	return ir_is_known(*q) && ir_dim_eq(ir_mul(g, *q, d), n);
}

/* Several dims against several ([17, 2*b, 16] -> [17*b, 32]): the prefix
 * products of both sides, merged into one chain where each divides the
 * next, give the common factors (17, b, 2, 16); each dim is the compound
 * of the factors inside it, major first. 0 when the chain is not one. */
static int
emit_refined(ir_graph *g, rule_b *b, uint32_t tx, const ir_value *x, const int32_t *ix, int32_t a,
             uint32_t ty, const ir_value *y, const int32_t *iy, int32_t c)
{
	ir_dim px[MAX_RANK + 1], py[MAX_RANK + 1], chain[2 * MAX_RANK + 1], q;
	int32_t xi[2 * MAX_RANK], yi[2 * MAX_RANK], n = 0, i = 1, j = 1;

	px[0] = py[0] = chain[0] = ir_const(1);
	for (int32_t k = 0; k < a; k++)
		px[k + 1] = ir_mul(g, px[k], x->dims[ix[k]]);
	for (int32_t k = 0; k < c; k++)
		py[k + 1] = ir_mul(g, py[k], y->dims[iy[k]]);
	while (i <= a && j <= c) {
		xi[n] = i - 1, yi[n] = j - 1;
		if (ir_dim_eq(px[i], py[j]))
			chain[++n] = px[i++], j++;
		else if (divides_exactly(g, py[j], px[i], &q))
			chain[++n] = px[i++];
		else if (divides_exactly(g, px[i], py[j], &q))
			chain[++n] = py[j++];
		else
			return 0;
	}
	if (i <= a || j <= c)
		return 0;
	ir_dim size[2 * MAX_RANK];
	for (int32_t k = 0; k < n; k++)
		if (!divides_exactly(g, chain[k + 1], chain[k], &size[k]))
			return 0;
	for (int32_t k = 0; k < n; k++)
		rb_pass(b, size[k], tx, (uint32_t)ix[xi[k]], ty, (uint32_t)iy[yi[k]]);
	return 1;
}

/* Reshape-like rules: x's and y's dims (size-1 dims left out) grouped into
 * minimal runs of equal product, from the front, then from the back for
 * what stays unmatched; one dim against one passes, one against several is
 * their compound; several against several is refined into common factors
 * where the prefix products allow it, else stays unmapped. */
static void
rule_regroup(ir_graph *g, rule_b *b, uint32_t tx, const ir_value *x, uint32_t ty, const ir_value *y)
{
	int32_t ix[MAX_RANK], iy[MAX_RANK], nx = 0, ny = 0, i = 0, j = 0, a, c;
	ir_dim xs[MAX_RANK], ys[MAX_RANK];

	if (!has_rank(x) || !has_rank(y))
		return;
	for (int32_t d = 0; d < x->rank; d++)
		if (!is_one(x->dims[d]))
			xs[nx] = x->dims[d], ix[nx++] = d;
	for (int32_t d = 0; d < y->rank; d++)
		if (!is_one(y->dims[d]))
			ys[ny] = y->dims[d], iy[ny++] = d;
	for (; i < nx && j < ny && find_run(g, xs + i, nx - i, ys + j, ny - j, &a, &c);
	     i += a, j += c)
		if (a == 1 || c == 1 || !emit_refined(g, b, tx, x, ix + i, a, ty, y, iy + j, c))
			emit_run(b, tx, x, ix + i, a, ty, y, iy + j, c);
	/* from the back: reversed copies of what is left */
	while (i < nx && j < ny) {
		ir_dim rx[MAX_RANK], ry[MAX_RANK];
		for (int32_t k = 0; k < nx - i; k++)
			rx[k] = xs[nx - 1 - k];
		for (int32_t k = 0; k < ny - j; k++)
			ry[k] = ys[ny - 1 - k];
		if (!find_run(g, rx, nx - i, ry, ny - j, &a, &c))
			break;
		nx -= a;
		ny -= c;
		emit_run(b, tx, x, ix + nx, a, ty, y, iy + ny, c);
	}
}

void
rule_reshape(ir_graph *g, ir_node *n, rule_b *b)
{
	rule_regroup(g, b, 0, in_val(g, n, 0), T_OUT(n, 0), out_val(g, n, 0));
}

void
rule_flatten(ir_graph *g, ir_node *n, rule_b *b)
{
	rule_reshape(g, n, b);
}

/* ---- Transpose ---- */

/* Transpose's permutation of rank r into perm; 1 when not a permutation. */
static int
transpose_perm(const ir_node *n, int32_t r, int32_t *perm)
{
	const int64_t *p;
	size_t np = ir_attr_ints(n, "perm", &p);
	uint8_t seen[MAX_RANK] = {0};

	if (!ir_attr(n, "perm")) {
		for (int32_t i = 0; i < r; i++)
			perm[i] = r - 1 - i;
		return 0;
	}
	if (np != (size_t)r)
		return 1;
	for (int32_t i = 0; i < r; i++) {
		if (p[i] < 0 || p[i] >= r || seen[p[i]])
			return 1;
		seen[p[i]] = 1;
		perm[i] = (int32_t)p[i];
	}
	return 0;
}

int
infer_transpose(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int32_t perm[MAX_RANK];

	if (!x || !y || !has_rank(x))
		return dtype_only(y, x);
	if (transpose_perm(n, x->rank, perm))
		return node_error(g, n, "perm is not a permutation of %d axes", (int)x->rank);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	for (int32_t i = 0; i < x->rank; i++)
		d[i] = x->dims[perm[i]];
	if (x->rank <= 1)
		return pass_elems(g, x, y);
	/* a small tensor of constant shape: its elements permuted */
	if (!x->elems || !is_const_shape(x))
		return 0;
	ir_dim *e = set_elems(g, y, x->n_elems);
	int64_t idx[MAX_RANK] = {0};
	if (!e)
		return nomem(g);
	for (int32_t k = 0; k < x->n_elems; k++) {
		int64_t src = 0; /* y's index idx is x's index idx[perm^-1] */
		for (int32_t i = 0; i < x->rank; i++) {
			int64_t xi = 0;
			for (int32_t j = 0; j < x->rank; j++)
				if (perm[j] == i)
					xi = idx[j];
			src = src * x->dims[i].c + xi;
		}
		e[k] = x->elems[src];
		for (int32_t j = x->rank - 1; j >= 0 && ++idx[j] == d[j].c; j--)
			idx[j] = 0;
	}
	return 0;
}

void
rule_transpose(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int32_t perm[MAX_RANK];

	if (!has_rank(x) || transpose_perm(n, x->rank, perm))
		return;
	for (int32_t i = 0; i < x->rank; i++)
		rb_pass(b, x->dims[perm[i]], 0, (uint32_t)perm[i], T_OUT(n, 0), (uint32_t)i);
}

/* ---- Squeeze, Unsqueeze ---- */

/* For each dim of Squeeze's or Unsqueeze's result, the operand dim it is
 * (-1: an inserted 1) into src, the result rank into *r: 0, -1 when not
 * known, 1 when the axes are missing (Unsqueeze), out of range, repeated, or
 * (Squeeze) name a dim that is not 1. Squeeze without axes drops the dims
 * of size 1, so needs every dim known. */
static int
squeeze_src(ir_graph *g, const ir_node *n, const ir_value *x, int32_t *src, int32_t *r)
{
	int un = n->op == OP_Unsqueeze;
	int64_t ax[MAX_RANK];
	int32_t na, k = 0;
	uint8_t mask[MAX_RANK];
	int st = int_list(g, n, g->opset < 13 ? "axes" : NULL, 1, ax, &na);

	if (st == L_UNKNOWN || (un && x->rank + na > MAX_RANK))
		return -1;
	*r = un ? x->rank + na : 0;
	if ((un && st == L_ABSENT) ||
	    (st == L_KNOWN && axes_mask(ax, na, un ? *r : x->rank, mask, !un)))
		return 1;
	for (int32_t d = 0; un && d < *r; d++)
		src[d] = mask[d] ? -1 : k++;
	for (int32_t d = 0; !un && d < x->rank; d++) {
		ir_dim xd = x->dims[d];
		if (st == L_ABSENT && !ir_is_const(xd))
			return -1;
		if (st == L_KNOWN ? !mask[d] : !is_one(xd))
			src[(*r)++] = d;
		else if (ir_is_const(xd) && xd.c != 1)
			return 1;
	}
	return 0;
}

int
infer_squeeze(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int32_t src[MAX_RANK], r;
	int st;

	if (g->opset >= 13 && (st = need_int_operand(g, n, 1, "axes", 0)))
		return st;
	if (!y || !has_rank(x))
		return dtype_only(y, x);
	y->dtype = x->dtype;
	if ((st = squeeze_src(g, n, x, src, &r)) < 0)
		return 0;
	if (st)
		return node_error(g, n,
		                  "axes missing, out of range, repeated or of dims not 1 (rank %d)",
		                  (int)x->rank);
	ir_dim *d = set_shape(g, y, x->dtype, r);
	if (!d)
		return nomem(g);
	for (int32_t k = 0; k < r; k++)
		d[k] = src[k] < 0 ? ir_const(1) : x->dims[src[k]];
	return pass_elems(g, x, y);
}

int
infer_unsqueeze(ir_graph *g, ir_node *n)
{
	return infer_squeeze(g, n); /* squeeze_src tells them apart */
}

void
rule_squeeze(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int32_t src[MAX_RANK], r;

	if (!has_rank(x) || squeeze_src(g, n, x, src, &r))
		return;
	for (int32_t k = 0; k < r; k++)
		if (src[k] >= 0)
			rb_pass(b, x->dims[src[k]], 0, (uint32_t)src[k], T_OUT(n, 0), (uint32_t)k);
}

void
rule_unsqueeze(ir_graph *g, ir_node *n, rule_b *b)
{
	rule_squeeze(g, n, b);
}

/* ---- Concat, Split ---- */

int
infer_concat(ir_graph *g, ir_node *n)
{
	ir_value *y = out_val(g, n, 0), *x0 = in_val(g, n, 0);
	const Onnx__AttributeProto *a = ir_attr(n, "axis");
	int32_t r = -1, ne = 0, some = 0;

	if (!y || !x0)
		return 0;
	y->dtype = x0->dtype;
	if ((!a || !a->has_i) && g->opset >= 4)
		return node_error(g, n, "attribute 'axis' is missing");
	for (uint32_t k = 0; k < n->n_in; k++) {
		ir_value *x = in_val(g, n, k);
		if (!x || !has_rank(x))
			return 0;
		if (r >= 0 && x->rank != r)
			return node_error(g, n, "operand %u has rank %d, operand 0 rank %d", k,
			                  (int)x->rank, (int)r);
		r = x->rank;
	}
	int axis = norm_axis(a && a->has_i ? a->i : 1, r);
	if (axis < 0)
		return node_error(g, n, "axis out of range for rank %d", (int)r);
	ir_dim *d = set_shape(g, y, x0->dtype, r);
	if (!d)
		return nomem(g);
	memcpy(d, x0->dims, (size_t)r * sizeof *d);
	for (uint32_t k = 1; k < n->n_in; k++) {
		ir_value *x = in_val(g, n, k);
		for (int32_t i = 0; i < r; i++) {
			ir_dim xi = x->dims[i];
			if (i == axis)
				d[i] = ir_add(g, d[i], xi);
			else if (ir_is_const(d[i]) && ir_is_const(xi) && d[i].c != xi.c)
				return node_error(g, n, "dim %d of operand %u is %lld, not %lld",
				                  (int)i, k, (long long)xi.c, (long long)d[i].c);
			else if (!ir_is_known(d[i]) || (ir_is_const(xi) && !ir_is_const(d[i])))
				d[i] = xi;
		}
	}
	/* a 1-D shape value: its elements, unknown where an operand's are */
	if (r != 1 || !ir_is_const(d[0]) || d[0].c > IR_MAX_ELEMS)
		return 0;
	for (uint32_t k = 0; k < n->n_in; k++) {
		ir_value *x = in_val(g, n, k);
		if (!ir_is_const(x->dims[0]))
			return 0;
		some |= x->elems && x->n_elems == x->dims[0].c;
	}
	ir_dim *e = some ? set_elems(g, y, (int32_t)d[0].c) : NULL;
	if (some && !e)
		return nomem(g);
	for (uint32_t k = 0; some && k < n->n_in; k++) {
		ir_value *x = in_val(g, n, k);
		for (int64_t i = 0; i < x->dims[0].c; i++)
			e[ne++] =
			        x->elems && x->n_elems == x->dims[0].c ? x->elems[i] : ir_unknown();
	}
	return 0;
}

void
rule_concat(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *y = out_val(g, n, 0);
	int axis = norm_axis(ir_attr_int(n, "axis", 1), y->rank);

	for (int32_t d = 0; d < y->rank; d++) {
		if (d == axis)
			continue;
		uint32_t f = rb_pass(b, y->dims[d], T_OUT(n, 0), (uint32_t)d, IR_NONE, 0);
		for (uint32_t k = 0; k < n->n_in; k++)
			if (in_val(g, n, k) && in_val(g, n, k)->rank == y->rank)
				rb_map(b, k, (uint32_t)d, f);
	}
}

/* The size of part k of n equal parts of dim D (the last ones smaller when
 * D does not divide, from opset 18); unknown when not known. */
static ir_dim
split_part(ir_graph *g, ir_dim D, int64_t k, int64_t n)
{
	if (ir_is_const(D)) {
		int64_t c = D.c / n + (D.c % n != 0), left = D.c - k * c;
		return ir_const(left < 0 ? 0 : left < c ? left : c);
	}
	ir_dim q = ir_floordiv(g, D, ir_const(n));
	return ir_dim_eq(ir_mul(g, q, ir_const(n)), D) ? q : ir_unknown();
}

int
infer_split(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0);
	int64_t sz[MAX_RANK], sum = 0, no = (int64_t)n->n_out;
	int32_t cnt;
	int st = g->opset >= 13 ? need_int_operand(g, n, 1, "split", 0) : 0;

	if (st)
		return st;
	st = int_list(g, n, g->opset < 13 ? "split" : NULL, 1, sz, &cnt);
	if (!has_rank(x) || !no) {
		for (uint32_t k = 0; k < n->n_out; k++)
			dtype_only(out_val(g, n, k), x);
		return 0;
	}
	int axis = norm_axis(ir_attr_int(n, "axis", 0), x->rank);
	if (axis < 0)
		return node_error(g, n, "axis out of range for rank %d", (int)x->rank);
	ir_dim D = x->dims[axis];
	if (st == L_KNOWN) {
		if (cnt != no)
			return node_error(g, n, "%d split sizes for %u results", (int)cnt,
			                  n->n_out);
		for (int32_t k = 0; k < cnt; k++) {
			if (sz[k] < 0 || sz[k] > INT64_MAX - sum)
				return node_error(g, n, "split size %lld is out of range",
				                  (long long)sz[k]);
			sum += sz[k];
		}
		if (ir_is_const(D) && D.c != sum)
			return node_error(g, n, "split sizes sum to %lld, the dim is %lld",
			                  (long long)sum, (long long)D.c);
	} else if (st == L_ABSENT) {
		if (g->opset >= 18 && ir_attr_int(n, "num_outputs", no) != no)
			return node_error(g, n, "num_outputs is not the %u results", n->n_out);
		if (ir_is_const(D) && D.c % no && g->opset < 18)
			return node_error(g, n, "dim %lld does not split into %lld equal parts",
			                  (long long)D.c, (long long)no);
	}
	for (uint32_t k = 0; k < n->n_out; k++) {
		ir_value *y = out_val(g, n, k);
		if (!y)
			continue;
		ir_dim *d = set_shape(g, y, x->dtype, x->rank);
		if (!d)
			return nomem(g);
		memcpy(d, x->dims, (size_t)x->rank * sizeof *d);
		d[axis] = st == L_KNOWN    ? ir_const(sz[k])
		          : st == L_ABSENT ? split_part(g, D, k, no)
		                           : ir_unknown();
	}
	return 0;
}

void
rule_split(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int axis = norm_axis(ir_attr_int(n, "axis", 0), x->rank);

	for (int32_t d = 0; d < x->rank; d++) {
		if (d == axis)
			continue;
		uint32_t f = rb_pass(b, x->dims[d], 0, (uint32_t)d, IR_NONE, 0);
		for (uint32_t k = 0; k < n->n_out; k++)
			rb_map(b, T_OUT(n, k), (uint32_t)d, f);
	}
	/* equal pieces: the axis is [which piece, within a piece]; splitting
	 * "within" splits every output alike (a fused QKV projection) */
	ir_value *y0 = out_val(g, n, 0);
	if (axis < 0 || n->n_out < 2 || !y0 || y0->rank != x->rank)
		return;
	for (uint32_t k = 1; k < n->n_out; k++) {
		ir_value *yk = out_val(g, n, k);
		if (!yk || yk->rank != x->rank || !ir_dim_eq(yk->dims[axis], y0->dims[axis]))
			return;
	}
	uint32_t which = rb_factor(b, IR_F_REPL, ir_const(n->n_out));
	uint32_t within = rb_factor(b, IR_F_PASS, y0->dims[axis]);
	rb_map(b, 0, (uint32_t)axis, which);
	rb_map(b, 0, (uint32_t)axis, within);
	for (uint32_t k = 0; k < n->n_out; k++)
		rb_map(b, T_OUT(n, k), (uint32_t)axis, within);
}

/* ---- Expand, Tile, Pad ---- */

int
infer_expand(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *s = in_val(g, n, 1), *y = out_val(g, n, 0);
	ir_dim tgt[MAX_RANK], out[MAX_RANK];
	int32_t bad;
	int rc;

	if (!x || !s || !y)
		return 0;
	y->dtype = x->dtype;
	if ((rc = need_int_operand(g, n, 1, "shape", 0)))
		return rc;
	if (s->rank == 0 || s->rank > 1)
		return node_error(g, n, "the shape operand has rank %d, not 1", (int)s->rank);
	if (!has_rank(x) || s->rank < 0 || !ir_is_const(s->dims[0]) || s->dims[0].c > MAX_RANK)
		return 0;
	int32_t ns = (int32_t)s->dims[0].c, r = ns > x->rank ? ns : x->rank;
	for (int32_t i = 0; i < ns; i++)
		tgt[i] = s->elems && s->n_elems == ns ? s->elems[i] : ir_unknown();
	if (broadcast_dims(g, x->dims, x->rank, tgt, ns, out, &bad))
		return node_error(g, n, "cannot expand dim %s to %s",
		                  ir_dim_str(g, x->dims[bad - (r - x->rank)]),
		                  ir_dim_str(g, tgt[bad - (r - ns)]));
	ir_dim *d = set_shape(g, y, x->dtype, r);
	if (!d)
		return nomem(g);
	memcpy(d, out, (size_t)r * sizeof *d);
	return cycle_elems(g, x, y);
}

void
rule_expand(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int32_t off = y->rank - x->rank;

	if (off < 0)
		return;
	/* a dim the input broadcasts into is split on the result alone: each
	 * rank expands to its block (the target is made local on emission) */
	for (int32_t d = 0; d < y->rank; d++) {
		int32_t xd = d - off;
		if (xd >= 0 && ir_dim_eq(x->dims[xd], y->dims[d]))
			rb_pass(b, x->dims[xd], 0, (uint32_t)xd, T_OUT(n, 0), (uint32_t)d);
		else if (xd < 0 || (ir_is_const(x->dims[xd]) && x->dims[xd].c == 1))
			rb_pass(b, y->dims[d], T_OUT(n, 0), (uint32_t)d, IR_NONE, 0);
	}
}

int
infer_tile(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *rp = in_val(g, n, 1), *y = out_val(g, n, 0);
	ir_dim rep[MAX_RANK];
	int32_t cnt;
	int rc;

	if ((rc = need_int_operand(g, n, 1, "repeats", 0)))
		return rc;
	if (!x || !rp || !y || !has_rank(x))
		return dtype_only(y, x);
	if (rp->rank >= 0 &&
	    (rp->rank != 1 || (ir_is_const(rp->dims[0]) && rp->dims[0].c != x->rank)))
		return node_error(g, n, "repeats must be 1-D with %d entries", (int)x->rank);
	int st = dim_list(g, n, NULL, 1, rep, &cnt);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	for (int32_t i = 0; i < x->rank; i++) {
		ir_dim r = st == L_KNOWN && cnt == x->rank ? rep[i] : ir_unknown();
		if (ir_is_const(r) && r.c < 0)
			return node_error(g, n, "repeat %lld is negative", (long long)r.c);
		d[i] = ir_mul(g, x->dims[i], r);
	}
	return cycle_elems(g, x, y);
}

void
rule_tile(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int64_t rep[MAX_RANK];
	int32_t cnt;

	if (int_list(g, n, NULL, 1, rep, &cnt) != L_KNOWN || cnt != x->rank)
		return;
	/* a dim of size 1 repeated is a broadcast, as Expand's: split on the
	 * result alone, each rank tiles its block (the repeat made local) */
	for (int32_t d = 0; d < x->rank; d++)
		if (rep[d] == 1)
			rb_pass(b, x->dims[d], 0, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
		else if (ir_is_const(x->dims[d]) && x->dims[d].c == 1 && rep[d] > 1)
			rb_pass(b, ir_const(rep[d]), T_OUT(n, 0), (uint32_t)d, IR_NONE, 0);
}

/* Pad's amounts before (lo) and after (hi) each of x's r dims, 0 on dims
 * not padded: 0, -1 when not known, 1 when malformed. */
static int
pad_amounts(ir_graph *g, const ir_node *n, int32_t r, ir_dim *lo, ir_dim *hi)
{
	const char *attr = g->opset < 2 ? "paddings" : g->opset < 11 ? "pads" : NULL;
	ir_dim pads[MAX_RANK];
	int64_t ax[MAX_RANK];
	int32_t np, na = r;
	uint8_t mask[MAX_RANK];
	int sp = dim_list(g, n, attr, 1, pads, &np);
	int sa = g->opset >= 18 ? int_list(g, n, NULL, 3, ax, &na) : L_ABSENT;

	if (sa == L_UNKNOWN)
		return -1;
	if (sp == L_ABSENT || (sa == L_KNOWN && axes_mask(ax, na, r, mask, 0)) ||
	    (sp == L_KNOWN && np != 2 * na))
		return 1;
	for (int32_t i = 0; i < r; i++)
		lo[i] = hi[i] = sa == L_KNOWN ? ir_const(0) : ir_unknown();
	for (int32_t k = 0; k < na; k++) { /* pads: all the starts, then all the ends */
		int a = sa == L_KNOWN ? norm_axis(ax[k], r) : k;
		lo[a] = sp == L_KNOWN ? pads[k] : ir_unknown();
		hi[a] = sp == L_KNOWN ? pads[na + k] : ir_unknown();
	}
	return 0;
}

int
infer_pad(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	ir_dim lo[MAX_RANK], hi[MAX_RANK];
	int st;

	if ((g->opset >= 11 && (st = need_int_operand(g, n, 1, "pads", 0))) ||
	    (g->opset >= 18 && (st = need_int_operand(g, n, 3, "axes", 1))))
		return st;
	if (!x || !y || !has_rank(x))
		return dtype_only(y, x);
	if ((st = pad_amounts(g, n, x->rank, lo, hi)) > 0)
		return node_error(g, n, "pads (and axes) do not fit rank %d", (int)x->rank);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	for (int32_t i = 0; i < x->rank; i++) {
		d[i] = st ? ir_unknown() : ir_add(g, ir_add(g, x->dims[i], lo[i]), hi[i]);
		if (ir_is_const(d[i]) && d[i].c < 0)
			return node_error(g, n, "dim %d padded to %lld", (int)i, (long long)d[i].c);
	}
	return 0;
}

void
rule_pad(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	ir_dim lo[MAX_RANK], hi[MAX_RANK];

	if (!has_rank(x) || pad_amounts(g, n, x->rank, lo, hi))
		return;
	for (int32_t d = 0; d < x->rank; d++)
		if (ir_dim_eq(lo[d], ir_const(0)) && ir_dim_eq(hi[d], ir_const(0)))
			rb_pass(b, x->dims[d], 0, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
}

/* ---- Resize, Trilu ---- */

/* The values of a float32 tensor v (an initializer or a Constant's result),
 * up to max: their count, or -1 when not known. */
static int32_t
float_consts(ir_graph *g, const ir_value *v, float *out, int32_t max)
{
	const Onnx__TensorProto *t = v->init;

	if (!t && v->producer != IR_NONE && g->nodes[v->producer].op == OP_Constant) {
		const Onnx__AttributeProto *a = ir_attr(&g->nodes[v->producer], "value");
		t = a ? a->t : NULL;
	}
	if (!t || onnx_tensor_numel(t) > (uint64_t)max)
		return -1;
	int32_t cnt = (int32_t)onnx_tensor_numel(t);
	if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
	    onnx_tensor_read(g->model, t, 0, (uint64_t)cnt * sizeof *out, out))
		return -1;
	return cnt;
}

/* Resize's result dims into d (x's rank): 0, or 1 when malformed. Dims not
 * known are left unknown. */
static int
resize_dims(ir_graph *g, const ir_node *n, const ir_value *x, ir_dim *d)
{
	const Onnx__AttributeProto *aa = g->opset >= 18 ? ir_attr(n, "axes") : NULL;
	const char *policy = g->opset >= 18
	                             ? ir_attr_str(g, n, "keep_aspect_ratio_policy", "stretch")
	                             : "stretch";
	int stretch = !strcmp(policy, "stretch"), larger = !strcmp(policy, "not_smaller");
	ir_value *sv = in_val(g, n, g->opset >= 11 ? 2 : 1);
	int32_t ax[MAX_RANK], na = aa ? (int32_t)aa->n_ints : x->rank, ns = 0, nsc;
	ir_dim sz[MAX_RANK];
	float sc[MAX_RANK], scale = larger ? 0.0f : INFINITY;
	uint8_t mask[MAX_RANK];
	int st = g->opset >= 11 ? dim_list(g, n, NULL, 3, sz, &ns) : L_ABSENT;

	if (aa && (aa->n_ints > MAX_RANK || axes_mask(aa->ints, na, x->rank, mask, 0)))
		return 1;
	for (int32_t k = 0; k < x->rank; k++) {
		ax[k] = !aa ? k : k < na ? norm_axis(aa->ints[k], x->rank) : 0;
		d[k] = aa && !mask[k] ? x->dims[k] : ir_unknown();
	}
	if (st == L_KNOWN && ns > 0) { /* sizes, maybe scaled to keep the aspect ratio */
		if (ns != na)
			return 1;
		for (int32_t k = 0; k < na; k++) {
			ir_dim in = x->dims[ax[k]];
			if (stretch) {
				d[ax[k]] = sz[k];
				continue;
			}
			if (!ir_is_const(in) || in.c == 0 || !ir_is_const(sz[k]))
				return 0;
			float s = (float)sz[k].c / (float)in.c;
			scale = larger ? fmaxf(scale, s) : fminf(scale, s);
		}
		for (int32_t k = 0; k < na && !stretch; k++)
			d[ax[k]] = ir_const((int64_t)roundf(scale * (float)x->dims[ax[k]].c));
		return 0;
	}
	if (!sv || (nsc = float_consts(g, sv, sc, MAX_RANK)) <= 0)
		return 0;
	if (nsc != na)
		return 1;
	for (int32_t k = 0; k < na; k++) { /* floor(dim * scale), as ONNX in float */
		ir_dim in = x->dims[ax[k]];
		if (!(sc[k] > 0) || sc[k] > 1e9f)
			return 1;
		if (ir_is_const(in))
			d[ax[k]] = ir_const((int64_t)floorf((float)in.c * sc[k]));
		else if (sc[k] == floorf(sc[k]))
			d[ax[k]] = ir_mul(g, in, ir_const((int64_t)sc[k]));
	}
	return 0;
}

int
infer_resize(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	ir_dim out[MAX_RANK];
	int rc;

	if (g->opset >= 11 && (rc = need_int_operand(g, n, 3, "sizes", 0)))
		return rc;
	if (!x || !y || !has_rank(x))
		return dtype_only(y, x);
	if (resize_dims(g, n, x, out))
		return node_error(g, n, "scales, sizes or axes do not fit rank %d", (int)x->rank);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	memcpy(d, out, (size_t)x->rank * sizeof *d);
	return 0;
}

void
rule_resize(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);

	if (!strcmp(ir_attr_str(g, n, "coordinate_transformation_mode", ""), "tf_crop_and_resize"))
		return;
	for (int32_t d = 0; d < x->rank && y->rank == x->rank; d++)
		if (ir_dim_eq(x->dims[d], y->dims[d]))
			rb_pass(b, x->dims[d], 0, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
}

void
rule_trilu(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);

	for (int32_t d = 0; d < x->rank; d++) {
		uint32_t f = rb_factor(b, d >= x->rank - 2 ? IR_F_REPL : IR_F_PASS, x->dims[d]);
		rb_map(b, 0, (uint32_t)d, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)d, f);
	}
}
