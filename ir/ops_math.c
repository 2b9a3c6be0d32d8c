/* Shape inference and sharding rules of elementwise ops, matrix products,
 * reductions, ops along one axis, and shape computations (Shape, Size,
 * Constant, ConstantOfShape, Range) with their folding. */
#include <string.h>

#include "ops_impl.h"

/* ---- elementwise ---- */

int
infer_same(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int rc;

	if (!x || !y)
		return 0;
	if ((rc = copy_shape(g, y, x, 0)))
		return rc;
	if (x->elems && (n->op == OP_Identity || n->op == OP_Neg || n->op == OP_Abs)) {
		ir_dim *e = set_elems(g, y, x->n_elems);
		if (!e)
			return nomem(g);
		for (int32_t i = 0; i < x->n_elems; i++) {
			ir_dim d = x->elems[i];
			if (n->op == OP_Neg)
				d = ir_sub(g, ir_const(0), d);
			else if (n->op == OP_Abs)
				d = ir_is_const(d) ? ir_const(d.c < 0 ? -d.c : d.c) : ir_unknown();
			e[i] = d;
		}
	}
	return 0;
}

int
infer_isx(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	return x && y ? copy_shape(g, y, x, ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) : 0;
}

int
infer_dropout(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0), *mask = out_val(g, n, 1);
	int rc;

	if (!x)
		return 0;
	if (y && (rc = copy_shape(g, y, x, 0)))
		return rc;
	/* the mask is bool since opset 10, of x's type before */
	if (!mask)
		return 0;
	return copy_shape(g, mask, x, g->opset >= 10 ? ONNX__TENSOR_PROTO__DATA_TYPE__BOOL : 0);
}

int
infer_cast(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int32_t to = (int32_t)ir_attr_int(n, "to", 0);
	int rc;

	/* types newer than int4 (22): the shape, dtype unknown */
	if (!onnx_dtype_name(to) && (to < 1 || to > MAX_ONNX_DTYPE))
		return node_error(g, n, "attribute 'to' is not a known data type (%d)", (int)to);
	if (!onnx_dtype_name(to))
		to = 0;
	if (!x || !y)
		return 0;
	if ((rc = copy_shape(g, y, x, to)))
		return rc;
	y->dtype = to;
	if (x->elems && is_int_dtype(x->dtype) && is_int_dtype(to)) {
		ir_dim *e = set_elems(g, y, x->n_elems);
		if (!e)
			return nomem(g);
		memcpy(e, x->elems, (size_t)x->n_elems * sizeof *e);
	}
	return 0;
}

int
infer_castlike(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *t = in_val(g, n, 1), *y = out_val(g, n, 0);
	int rc;

	if (!x || !t || !y)
		return 0;
	if ((rc = copy_shape(g, y, x, t->dtype)))
		return rc;
	y->dtype = t->dtype; /* unknown when t's is */
	if (x->elems && is_int_dtype(x->dtype) && is_int_dtype(t->dtype)) {
		ir_dim *e = set_elems(g, y, x->n_elems);
		if (!e)
			return nomem(g);
		memcpy(e, x->elems, (size_t)x->n_elems * sizeof *e);
	}
	return 0;
}

/* Broadcast operands [from, n_in) into y with dtype. */
static int
broadcast_all(ir_graph *g, ir_node *n, uint32_t from, int32_t dtype)
{
	ir_value *y = out_val(g, n, 0);
	ir_dim acc[MAX_RANK], tmp[MAX_RANK];
	int32_t r = 0, bad;

	if (!y)
		return 0;
	y->dtype = dtype;
	for (uint32_t k = from; k < n->n_in; k++) {
		ir_value *x = in_val(g, n, k);
		if (!x || x->rank < 0)
			return 0;
		if (x->rank > MAX_RANK)
			return node_error(g, n, "rank %d is above %d", (int)x->rank, MAX_RANK);
		if (k == from) {
			memcpy(acc, x->dims, (size_t)x->rank * sizeof *acc);
			r = x->rank;
			continue;
		}
		if (broadcast_dims(g, acc, r, x->dims, x->rank, tmp, &bad)) {
			int32_t rr = r > x->rank ? r : x->rank;
			int32_t ia = bad - (rr - r), ib = bad - (rr - x->rank);
			return node_error(g, n, "cannot broadcast dim %s with %s",
			                  ir_dim_str(g, acc[ia]), ir_dim_str(g, x->dims[ib]));
		}
		r = r > x->rank ? r : x->rank;
		memcpy(acc, tmp, (size_t)r * sizeof *acc);
	}
	ir_dim *d = set_shape(g, y, dtype, r);
	if (!d)
		return nomem(g);
	memcpy(d, acc, (size_t)r * sizeof *d);
	return 0;
}

/* Before opset 7 the second operand broadcasts to the first by older rules
 * (an axis attribute): the result has the first operand's shape. */
static int
is_legacy_bcast(const ir_graph *g, const ir_node *n)
{
	return g->opset < 7 && n->n_in == 2;
}

int
infer_bcast(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0);
	int rc;

	/* PRelu's slope broadcasts to X one way (X's shape); the rule maps its
	 * dims right-aligned like any broadcast, so a slope of X's own dims
	 * splits with X */
	if (x && (is_legacy_bcast(g, n) || n->op == OP_PRelu))
		return copy_shape(g, out_val(g, n, 0), x, 0);
	if (!x || (rc = broadcast_all(g, n, 0, x->dtype)))
		return x ? rc : 0;
	if (n->n_in != 2)
		return 0;
	switch (n->op) {
	case OP_Add:
	case OP_Sum: return fold_binary(g, n, '+');
	case OP_Sub: return fold_binary(g, n, '-');
	case OP_Mul: return fold_binary(g, n, '*');
	case OP_Div: return fold_binary(g, n, '/');
	case OP_Mod: return ir_attr_int(n, "fmod", 0) ? 0 : fold_binary(g, n, '%');
	case OP_Max: return fold_binary(g, n, 'M');
	case OP_Min: return fold_binary(g, n, 'm');
	default: return 0;
	}
}

int
infer_compare(ir_graph *g, ir_node *n)
{
	if (is_legacy_bcast(g, n) && in_val(g, n, 0))
		return copy_shape(g, out_val(g, n, 0), in_val(g, n, 0),
		                  ONNX__TENSOR_PROTO__DATA_TYPE__BOOL);
	int rc = broadcast_all(g, n, 0, ONNX__TENSOR_PROTO__DATA_TYPE__BOOL);

	if (rc || n->op != OP_Equal)
		return rc;
	return fold_binary(g, n, '=');
}

int
infer_where(ir_graph *g, ir_node *n)
{
	ir_value *c = in_val(g, n, 0), *x = in_val(g, n, 1), *z = in_val(g, n, 2);
	ir_value *y = out_val(g, n, 0);
	int rc;

	if (!x || (rc = broadcast_all(g, n, 0, x->dtype)))
		return x ? rc : 0;
	/* fold a select over small integer values (shape fix-ups) */
	if (!y || !c || !z || !c->elems || !x->elems || !z->elems || y->rank != 1 ||
	    !ir_is_const(y->dims[0]) || y->dims[0].c > IR_MAX_ELEMS)
		return 0;
	int32_t ny = (int32_t)y->dims[0].c;
	for (int32_t i = 0; i < c->n_elems; i++)
		if (!ir_is_const(c->elems[i]))
			return 0;
	ir_dim *e = set_elems(g, y, ny);
	if (!e)
		return nomem(g);
	for (int32_t i = 0; i < ny; i++) {
		ir_dim ci = c->elems[c->n_elems == 1 ? 0 : i % c->n_elems];
		ir_value *src = ci.c ? x : z;
		e[i] = src->elems[src->n_elems == 1 ? 0 : i % src->n_elems];
	}
	return 0;
}

void
rule_same(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);

	for (int32_t d = 0; d < x->rank; d++) {
		uint32_t f = rb_pass(b, x->dims[d], 0, (uint32_t)d, IR_NONE, 0);
		for (uint32_t k = 0; k < n->n_out; k++) {
			ir_value *y = out_val(g, n, k);
			if (y && y->rank == x->rank)
				rb_map(b, T_OUT(n, k), (uint32_t)d, f);
		}
	}
}

void
rule_castlike(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);

	for (int32_t d = 0; d < x->rank; d++)
		rb_pass(b, x->dims[d], 0, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
}

void
rule_bcast(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *y = out_val(g, n, 0);

	if (!y || y->rank < 0)
		return;
	for (int32_t d = 0; d < y->rank; d++) {
		uint32_t f = rb_pass(b, y->dims[d], T_OUT(n, 0), (uint32_t)d, IR_NONE, 0);
		for (uint32_t k = 0; k < (is_legacy_bcast(g, n) ? 1 : n->n_in); k++) {
			ir_value *x = in_val(g, n, k);
			int32_t xd = x ? d - (y->rank - x->rank) : -1;
			if (xd < 0)
				continue;
			/* a broadcast (size-1) operand dim is not split with the result */
			if (ir_is_const(x->dims[xd]) && x->dims[xd].c == 1 &&
			    !(ir_is_const(y->dims[d]) && y->dims[d].c == 1))
				continue;
			rb_map(b, k, (uint32_t)xd, f);
		}
	}
}

/* ---- matrix products ---- */

int
matmul_shape(ir_graph *g, ir_node *n, uint32_t ia, uint32_t ib, int32_t dt)
{
	ir_value *a = in_val(g, n, ia), *bv = in_val(g, n, ib), *y = out_val(g, n, 0);
	ir_dim bat[MAX_RANK];
	int32_t bad;

	if (y && dt)
		y->dtype = dt;
	if (!a || !bv || !y || a->rank < 0 || bv->rank < 0)
		return 0;
	int32_t ra = a->rank, rb = bv->rank;
	if (ra == 0 || rb == 0)
		return node_error(g, n, "operands must not be scalars");
	if (ra > MAX_RANK || rb > MAX_RANK)
		return node_error(g, n, "rank above %d", MAX_RANK);
	ir_dim ka = a->dims[ra - 1], kb = bv->dims[rb == 1 ? 0 : rb - 2];
	if (ir_is_const(ka) && ir_is_const(kb) && ka.c != kb.c)
		return node_error(g, n, "inner dims %lld and %lld differ", (long long)ka.c,
		                  (long long)kb.c);
	int32_t nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
	if (broadcast_dims(g, a->dims, nba, bv->dims, nbb, bat, &bad))
		return node_error(g, n, "batch dims do not broadcast");
	int32_t rbat = nba > nbb ? nba : nbb;
	ir_dim *d = set_shape(g, y, dt ? dt : a->dtype, rbat + (ra > 1) + (rb > 1));
	if (!d)
		return nomem(g);
	memcpy(d, bat, (size_t)rbat * sizeof *d);
	int32_t k = rbat;
	if (ra > 1)
		d[k++] = a->dims[ra - 2];
	if (rb > 1)
		d[k++] = bv->dims[rb - 1];
	return 0;
}

int
infer_matmul(ir_graph *g, ir_node *n)
{
	return matmul_shape(g, n, 0, 1, 0);
}

void
rule_matmul(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *a = in_val(g, n, 0), *bv = in_val(g, n, 1), *y = out_val(g, n, 0);
	int32_t ra = a->rank, rb = bv->rank, ry = y->rank;
	int32_t rbat = ry - (ra > 1) - (rb > 1);

	for (int32_t d = 0; d < rbat; d++) {
		uint32_t f = rb_pass(b, y->dims[d], T_OUT(n, 0), (uint32_t)d, IR_NONE, 0);
		int32_t da = d - (rbat - (ra - 2)), db = d - (rbat - (rb - 2));
		if (ra > 2 && da >= 0 &&
		    !(ir_is_const(a->dims[da]) && a->dims[da].c == 1 &&
		      !(ir_is_const(y->dims[d]) && y->dims[d].c == 1)))
			rb_map(b, 0, (uint32_t)da, f);
		if (rb > 2 && db >= 0 &&
		    !(ir_is_const(bv->dims[db]) && bv->dims[db].c == 1 &&
		      !(ir_is_const(y->dims[d]) && y->dims[d].c == 1)))
			rb_map(b, 1, (uint32_t)db, f);
	}
	if (ra > 1)
		rb_pass(b, a->dims[ra - 2], 0, (uint32_t)(ra - 2), T_OUT(n, 0), (uint32_t)rbat);
	if (rb > 1)
		rb_pass(b, bv->dims[rb - 1], 1, (uint32_t)(rb - 1), T_OUT(n, 0),
		        (uint32_t)(ry - 1));
	uint32_t k = rb_factor(b, IR_F_REDUCE, a->dims[ra - 1]);
	rb_map(b, 0, (uint32_t)(ra - 1), k);
	rb_map(b, 1, (uint32_t)(rb == 1 ? 0 : rb - 2), k);
}

int
infer_gemm(ir_graph *g, ir_node *n)
{
	ir_value *a = in_val(g, n, 0), *bv = in_val(g, n, 1), *y = out_val(g, n, 0);
	int ta = ir_attr_int(n, "transA", 0) != 0, tb = ir_attr_int(n, "transB", 0) != 0;

	if (!a || !bv || !y || a->rank < 0 || bv->rank < 0)
		return 0;
	if (a->rank != 2 || bv->rank != 2)
		return node_error(g, n, "operands must be matrices (ranks %d and %d)", (int)a->rank,
		                  (int)bv->rank);
	ir_dim ka = a->dims[ta ? 0 : 1], kb = bv->dims[tb ? 1 : 0];
	if (ir_is_const(ka) && ir_is_const(kb) && ka.c != kb.c)
		return node_error(g, n, "inner dims %lld and %lld differ", (long long)ka.c,
		                  (long long)kb.c);
	ir_dim *d = set_shape(g, y, a->dtype, 2);
	if (!d)
		return nomem(g);
	d[0] = a->dims[ta ? 1 : 0];
	d[1] = bv->dims[tb ? 0 : 1];
	/* C must broadcast to [M, N] (the rule maps its dims to M and N) */
	ir_value *cv = in_val(g, n, 2);
	if (cv && cv->rank > 2)
		return node_error(g, n, "C has rank %d, at most 2", (int)cv->rank);
	for (int32_t k = 0; cv && k < cv->rank; k++) {
		ir_dim cd = cv->dims[k], yd = d[k + 2 - cv->rank];
		if (ir_is_const(cd) && cd.c != 1 && ir_is_const(yd) && cd.c != yd.c)
			return node_error(g, n, "C dim %d is %lld, does not broadcast to %lld",
			                  (int)k, (long long)cd.c, (long long)yd.c);
	}
	return 0;
}

void
rule_gemm(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *a = in_val(g, n, 0), *bv = in_val(g, n, 1), *c = in_val(g, n, 2);
	int ta = ir_attr_int(n, "transA", 0) != 0, tb = ir_attr_int(n, "transB", 0) != 0;
	uint32_t m = rb_pass(b, a->dims[ta ? 1 : 0], 0, ta ? 1 : 0, T_OUT(n, 0), 0);
	uint32_t nn = rb_pass(b, bv->dims[tb ? 0 : 1], 1, tb ? 0 : 1, T_OUT(n, 0), 1);
	uint32_t k = rb_factor(b, IR_F_REDUCE, a->dims[ta ? 0 : 1]);

	rb_map(b, 0, ta ? 0 : 1, k);
	rb_map(b, 1, tb ? 1 : 0, k);
	if (!c)
		return;
	/* C broadcasts to [M, N] */
	for (int32_t d = 0; d < c->rank; d++) {
		int32_t yd = d + 2 - c->rank;
		if (yd < 0 || (ir_is_const(c->dims[d]) && c->dims[d].c == 1))
			continue;
		rb_map(b, 2, (uint32_t)d, yd == 0 ? m : nn);
	}
}

/* Einsum: each dim gets a label, letters 0..51, ellipsis dims 52 + their
 * position from the right; the output is explicit or implicit. */
#define EIN_MAX 64

typedef struct {
	int16_t lab[EIN_MAX + 1][EIN_MAX]; /* per operand, output at [n_in] */
	int len[EIN_MAX + 1];
} einsum_eq;

static int
letter(char ch)
{
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a';
	if (ch >= 'A' && ch <= 'Z')
		return 26 + ch - 'A';
	return -1;
}

/* Parse one term ending at stop chars; rank r (or -1 for the output, which
 * takes width ell for its ellipsis). Returns chars consumed, -1 on error. */
static int
einsum_term(const char *p, int r, int ell, int16_t *lab, int *len)
{
	int letters = 0, has_ell = 0, i = 0;
	const char *q;

	for (q = p; *q && *q != ',' && *q != '-'; q++) {
		if (*q == '.') {
			if (strncmp(q, "...", 3) || has_ell)
				return -1;
			has_ell = 1;
			q += 2;
		} else if (letter(*q) >= 0) {
			letters++;
		} else if (*q != ' ') {
			return -1;
		}
	}
	int w = has_ell ? (r >= 0 ? r - letters : ell) : 0;
	if (w < 0 || (r >= 0 && !has_ell && letters != r) || letters + w > EIN_MAX)
		return -1;
	for (const char *c = p; c < q; c++) {
		if (*c == '.') {
			for (int j = 0; j < w; j++)
				lab[i++] = (int16_t)(52 + (w - 1 - j));
			c += 2;
		} else if (letter(*c) >= 0) {
			lab[i++] = (int16_t)letter(*c);
		}
	}
	*len = i;
	return (int)(q - p);
}

static int
einsum_parse(ir_graph *g, ir_node *n, einsum_eq *e)
{
	const char *eq = ir_attr_str(g, n, "equation", NULL), *p;
	int ell = 0, count[EIN_MAX + 52] = {0};

	if (!eq || n->n_in > EIN_MAX)
		return 1;
	p = eq;
	for (uint32_t k = 0; k < n->n_in; k++) {
		ir_value *x = in_val(g, n, k);
		if (!x || x->rank < 0)
			return 1;
		int used = einsum_term(p, x->rank, 0, e->lab[k], &e->len[k]);
		if (used < 0)
			return 1;
		p += used;
		for (int i = 0; i < e->len[k]; i++) {
			count[e->lab[k][i]]++;
			if (e->lab[k][i] >= 52 && e->lab[k][i] - 52 + 1 > ell)
				ell = e->lab[k][i] - 52 + 1;
		}
		if (k + 1 < n->n_in && *p++ != ',')
			return 1;
	}
	int16_t *out = e->lab[n->n_in];
	if (p[0] == '-' && p[1] == '>') {
		int used = einsum_term(p + 2, -1, ell, out, &e->len[n->n_in]);
		if (used < 0 || p[2 + used])
			return 1;
		/* each output letter comes from an operand, once */
		uint8_t seen[EIN_MAX + 52] = {0};
		for (int i = 0; i < e->len[n->n_in]; i++)
			if ((out[i] < 52 && !count[out[i]]) || seen[out[i]]++)
				return 1;
	} else if (*p) {
		return 1;
	} else {
		int k = 0;
		for (int j = ell - 1; j >= 0; j--)
			out[k++] = (int16_t)(52 + j);
		for (int l = 0; l < 52; l++)
			if (count[l] == 1)
				out[k++] = (int16_t)l;
		e->len[n->n_in] = k;
	}
	return 0;
}

/* The size of label l: from an operand dim that is not a broadcast 1. */
static ir_dim
einsum_size(ir_graph *g, ir_node *n, const einsum_eq *e, int l)
{
	ir_dim best = ir_unknown();

	for (uint32_t k = 0; k < n->n_in; k++)
		for (int i = 0; i < e->len[k]; i++)
			if (e->lab[k][i] == l) {
				ir_dim d = in_val(g, n, k)->dims[i];
				if (!ir_is_known(best) || (ir_is_const(best) && best.c == 1))
					best = d;
			}
	return best;
}

int
infer_einsum(ir_graph *g, ir_node *n)
{
	ir_value *y = out_val(g, n, 0), *x = in_val(g, n, 0);
	einsum_eq *e;

	if (!y || !x)
		return 0;
	if (!(e = shd_alloc(g->ctx, sizeof *e)))
		return nomem(g);
	if (einsum_parse(g, n, e)) {
		int bad = ir_attr_str(g, n, "equation", NULL) == NULL;
		for (uint32_t k = 0; k < n->n_in; k++)
			if (!in_val(g, n, k) || in_val(g, n, k)->rank < 0)
				bad = -1;
		shd_free(g->ctx, e, sizeof *e);
		if (bad < 0)
			return 0;
		return node_error(g, n, "bad equation '%s' for the operands",
		                  ir_attr_str(g, n, "equation", ""));
	}
	/* the dims a label names must agree (1 broadcasts) */
	for (uint32_t k = 0; k < n->n_in; k++)
		for (int i = 0; i < e->len[k]; i++) {
			ir_dim a = in_val(g, n, k)->dims[i], s = einsum_size(g, n, e, e->lab[k][i]);
			if (ir_is_const(a) && a.c != 1 && ir_is_const(s) && s.c != a.c) {
				shd_free(g->ctx, e, sizeof *e);
				return node_error(
				        g, n,
				        "equation '%s': operand %u dim %d is %lld, elsewhere %lld",
				        ir_attr_str(g, n, "equation", ""), k, i, (long long)a.c,
				        (long long)s.c);
			}
		}
	ir_dim *d = set_shape(g, y, x->dtype, e->len[n->n_in]);
	if (!d) {
		shd_free(g->ctx, e, sizeof *e);
		return nomem(g);
	}
	for (int i = 0; i < e->len[n->n_in]; i++)
		d[i] = einsum_size(g, n, e, e->lab[n->n_in][i]);
	shd_free(g->ctx, e, sizeof *e);
	return 0;
}

void
rule_einsum(ir_graph *g, ir_node *n, rule_b *b)
{
	einsum_eq *e = shd_alloc(g->ctx, sizeof *e);

	if (!e || einsum_parse(g, n, e)) {
		shd_free(g->ctx, e, sizeof *e);
		return;
	}
	for (int l = 0; l < EIN_MAX + 52; l++) {
		int out = -1, uses = 0, twice = 0;
		for (int i = 0; i < e->len[n->n_in]; i++)
			if (e->lab[n->n_in][i] == l)
				out = i;
		for (uint32_t k = 0; k < n->n_in; k++) {
			int here = 0;
			for (int i = 0; i < e->len[k]; i++)
				here += e->lab[k][i] == l;
			uses += here;
			twice |= here > 1;
		}
		if (!uses)
			continue;
		ir_dim size = einsum_size(g, n, e, l);
		int kind = twice ? IR_F_REPL : out >= 0 ? IR_F_PASS : IR_F_REDUCE;
		uint32_t f = rb_factor(b, kind, size);
		if (out >= 0 && !twice)
			rb_map(b, T_OUT(n, 0), (uint32_t)out, f);
		for (uint32_t k = 0; k < n->n_in; k++)
			for (int i = 0; i < e->len[k]; i++) {
				ir_dim d = in_val(g, n, k)->dims[i];
				if (e->lab[k][i] != l || (ir_is_const(d) && d.c == 1 &&
				                          !(ir_is_const(size) && size.c == 1)))
					continue;
				rb_map(b, k, (uint32_t)i, f);
			}
	}
	shd_free(g->ctx, e, sizeof *e);
}

/* ---- along one axis ---- */

void
rule_softmax(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int old = g->opset < 13;
	int axis = norm_axis(ir_attr_int(n, "axis", old ? 1 : -1), x->rank);

	for (int32_t d = 0; d < x->rank; d++) {
		int repl = old ? d >= axis : d == axis;
		uint32_t f = rb_factor(b, repl ? IR_F_REPL : IR_F_PASS, x->dims[d]);
		rb_map(b, 0, (uint32_t)d, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)d, f);
	}
}

/* All dims of operand 0 pass to every result, but the axis, which is
 * need-replication (and absent from results that drop it). */
static void
rule_axis(ir_graph *g, ir_node *n, rule_b *b, int axis, int keep)
{
	ir_value *x = in_val(g, n, 0);

	for (int32_t d = 0; d < x->rank; d++) {
		int repl = d == axis;
		uint32_t f = rb_factor(b, repl ? IR_F_REPL : IR_F_PASS, x->dims[d]);
		rb_map(b, 0, (uint32_t)d, f);
		if (repl)
			continue;
		for (uint32_t k = 0; k < n->n_out; k++)
			rb_map(b, T_OUT(n, k), (uint32_t)(keep || axis < 0 || d < axis ? d : d - 1),
			       f);
	}
}

void
rule_cumsum(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *ax = in_val(g, n, 1);
	int64_t a;

	if (!const_ints(ax, &a, 1) || ax->n_elems != 1)
		return;
	rule_axis(g, n, b, norm_axis(a, x->rank), 1);
}

int
infer_argmax(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int keep = ir_attr_int(n, "keepdims", 1) != 0;

	if (!x || !y || x->rank < 0)
		return 0;
	int axis = norm_axis(ir_attr_int(n, "axis", 0), x->rank);
	if (axis < 0)
		return node_error(g, n, "axis out of range for rank %d", (int)x->rank);
	ir_dim *d = set_shape(g, y, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, x->rank - !keep);
	if (!d)
		return nomem(g);
	for (int32_t i = 0, k = 0; i < x->rank; i++) {
		if (i == axis && !keep)
			continue;
		d[k++] = i == axis ? ir_const(1) : x->dims[i];
	}
	return 0;
}

void
rule_argmax(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	rule_axis(g, n, b, norm_axis(ir_attr_int(n, "axis", 0), x->rank),
	          ir_attr_int(n, "keepdims", 1) != 0);
}

int
infer_topk(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *kv = in_val(g, n, 1);
	int64_t k;
	ir_dim kd;
	int rc;

	if ((rc = need_int_operand(g, n, 1, "K", 0)))
		return rc;
	if (!x || x->rank < 0)
		return 0;
	int axis = norm_axis(ir_attr_int(n, "axis", -1), x->rank);
	if (axis < 0)
		return node_error(g, n, "axis out of range for rank %d", (int)x->rank);
	if (kv)
		kd = kv->elems && kv->n_elems == 1 ? kv->elems[0] : ir_unknown();
	else
		kd = ir_const(k = ir_attr_int(n, "k", 0));
	for (uint32_t o = 0; o < n->n_out && o < 2; o++) {
		ir_value *y = out_val(g, n, o);
		if (!y)
			continue;
		ir_dim *d = set_shape(g, y, o ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : x->dtype,
		                      x->rank);
		if (!d)
			return nomem(g);
		memcpy(d, x->dims, (size_t)x->rank * sizeof *d);
		d[axis] = kd;
	}
	return 0;
}

void
rule_topk(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	rule_axis(g, n, b, norm_axis(ir_attr_int(n, "axis", -1), x->rank), 1);
}

/* ---- reductions ---- */

/* Reduced axes as a mask over x's dims: 0 ok, -1 axes unknown, or the
 * status of a refusal. */
static int
reduce_axes(ir_graph *g, ir_node *n, const ir_value *x, uint8_t *mask)
{
	const int64_t *av;
	int64_t buf[MAX_RANK];
	size_t na;
	int from_input = n->op == OP_ReduceSum ? g->opset >= 13 : g->opset >= 18;

	if (from_input && n->n_in >= 2 && in_val(g, n, 1)) {
		ir_value *a = in_val(g, n, 1);
		if (a->rank == 1 && ir_is_const(a->dims[0]) && a->dims[0].c == 0)
			na = 0; /* empty, whatever its source */
		else if (!const_ints(a, buf, MAX_RANK) || a->n_elems > MAX_RANK)
			return -1;
		else
			na = (size_t)a->n_elems;
		av = buf;
	} else {
		na = ir_attr_ints(n, "axes", &av);
	}
	memset(mask, 0, MAX_RANK);
	if (na == 0) {
		if (ir_attr_int(n, "noop_with_empty_axes", 0))
			return 0;
		memset(mask, 1, (size_t)(x->rank > 0 ? x->rank : 1));
		return 0;
	}
	if (na > MAX_RANK || axes_mask(av, (int32_t)na, x->rank, mask, 1))
		return node_error(g, n, "axes out of range for rank %d", (int)x->rank);
	return 0;
}

int
infer_reduce(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int keep = ir_attr_int(n, "keepdims", 1) != 0;
	uint8_t mask[MAX_RANK];
	int rc;

	if ((n->op == OP_ReduceSum ? g->opset >= 13 : g->opset >= 18) &&
	    (rc = need_int_operand(g, n, 1, "axes", 0)))
		return rc;
	if (!x || !y || x->rank < 0 || x->rank > MAX_RANK)
		return 0;
	if ((rc = reduce_axes(g, n, x, mask)) > 0)
		return rc;
	if (rc < 0) {
		/* axes known at run time only: with keepdims the rank is kept and
		 * each dim is x's or 1, known only where x's is 1 */
		y->dtype = x->dtype;
		if (!keep)
			return 0;
		ir_dim *d = set_shape(g, y, x->dtype, x->rank);
		if (!d)
			return nomem(g);
		for (int32_t i = 0; i < x->rank; i++)
			d[i] = ir_is_const(x->dims[i]) && x->dims[i].c == 1 ? ir_const(1)
			                                                    : ir_unknown();
		return 0;
	}
	int32_t r = 0;
	for (int32_t i = 0; i < x->rank; i++)
		r += keep || !mask[i];
	ir_dim *d = set_shape(g, y, x->dtype, r);
	if (!d)
		return nomem(g);
	for (int32_t i = 0, k = 0; i < x->rank; i++)
		if (!mask[i])
			d[k++] = x->dims[i];
		else if (keep)
			d[k++] = ir_const(1);
	return 0;
}

void
rule_reduce(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int keep = ir_attr_int(n, "keepdims", 1) != 0;
	/* a pending sum is exact only for sums */
	int sum = n->op == OP_ReduceSum || n->op == OP_ReduceSumSquare || n->op == OP_ReduceL1;
	uint8_t mask[MAX_RANK];

	if (x->rank > MAX_RANK || reduce_axes(g, n, x, mask))
		return;
	for (int32_t i = 0, k = 0; i < x->rank; i++) {
		if (mask[i]) {
			uint32_t f = rb_factor(b, sum ? IR_F_REDUCE : IR_F_REPL, x->dims[i]);
			rb_map(b, 0, (uint32_t)i, f);
			k += keep;
			continue;
		}
		rb_pass(b, x->dims[i], 0, (uint32_t)i, T_OUT(n, 0), (uint32_t)k++);
	}
}

/* ---- shape computations ---- */

void
rule_none(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

/* A tensor made from a shape alone: any dim may be split; each rank makes
 * its block (its shape operand is made local on emission). */
void
rule_fill(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *y = out_val(g, n, 0);

	for (int32_t d = 0; y && d < y->rank; d++)
		rb_pass(b, y->dims[d], T_OUT(n, 0), (uint32_t)d, IR_NONE, 0);
}

int32_t
ir_shape_range(const ir_graph *g, const ir_node *n, int32_t rank, int32_t *start)
{
	int64_t a = g->opset >= 15 ? ir_attr_int(n, "start", 0) : 0;
	int64_t z = g->opset >= 15 ? ir_attr_int(n, "end", rank) : rank;

	a = a < 0 ? a + rank : a;
	z = z < 0 ? z + rank : z;
	a = a < 0 ? 0 : a > rank ? rank : a;
	z = z < 0 ? 0 : z > rank ? rank : z;
	*start = (int32_t)a;
	return z > a ? (int32_t)(z - a) : 0;
}

int
infer_shape(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);

	if (!x || !y)
		return 0;
	if (x->rank < 0) {
		y->dtype = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
		return 0;
	}
	int32_t start, len = ir_shape_range(g, n, x->rank, &start);
	ir_dim *d = set_shape(g, y, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1);
	if (!d)
		return nomem(g);
	d[0] = ir_const(len);
	if (len > IR_MAX_ELEMS)
		return 0;
	ir_dim *e = set_elems(g, y, len);
	if (!e)
		return nomem(g);
	memcpy(e, x->dims + start, (size_t)len * sizeof *e);
	return 0;
}

int
infer_size(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);

	if (!y)
		return 0;
	if (!set_shape(g, y, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 0))
		return nomem(g);
	if (!x || x->rank < 0)
		return 0;
	ir_dim *e = set_elems(g, y, 1);
	if (!e)
		return nomem(g);
	e[0] = dims_prod(g, x->dims, 0, x->rank);
	return 0;
}

/* A result holding tensor t (Constant's value): dtype, dims, elements. */
static int
from_tensor(ir_graph *g, ir_value *y, const Onnx__TensorProto *t)
{
	ir_dim *d = set_shape(g, y, t->data_type, (int32_t)t->n_dims);
	uint64_t n = onnx_tensor_numel(t);

	if (!d)
		return nomem(g);
	for (size_t i = 0; i < t->n_dims; i++)
		d[i] = ir_const(t->dims[i]);
	if (!is_int_dtype(t->data_type) || t->n_dims > 1 || n > IR_MAX_ELEMS)
		return 0;
	int64_t buf[IR_MAX_ELEMS];
	ir_dim *e = set_elems(g, y, (int32_t)n);
	int rc;
	if (!e)
		return nomem(g);
	if ((rc = onnx_tensor_ints(g->model, t, buf, n)))
		return rc;
	for (uint64_t i = 0; i < n; i++)
		e[i] = ir_const(buf[i]);
	return 0;
}

int
infer_constant(ir_graph *g, ir_node *n)
{
	ir_value *y = out_val(g, n, 0);
	const Onnx__AttributeProto *a;

	if (!y)
		return 0;
	if ((a = ir_attr(n, "value")) && a->t)
		return from_tensor(g, y, a->t);
	if ((a = ir_attr(n, "value_int")) || (a = ir_attr(n, "value_ints"))) {
		int scalar = a->has_i;
		int32_t cnt = scalar ? 1 : (int32_t)a->n_ints;
		ir_dim *d = set_shape(g, y, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, scalar ? 0 : 1);
		if (!d)
			return nomem(g);
		if (!scalar)
			d[0] = ir_const(cnt);
		if (cnt > IR_MAX_ELEMS)
			return 0;
		ir_dim *e = set_elems(g, y, cnt);
		if (!e)
			return nomem(g);
		for (int32_t i = 0; i < cnt; i++)
			e[i] = ir_const(scalar ? a->i : a->ints[i]);
		return 0;
	}
	if ((a = ir_attr(n, "value_float")) || (a = ir_attr(n, "value_floats"))) {
		int scalar = a->has_f;
		ir_dim *d = set_shape(g, y, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, scalar ? 0 : 1);
		if (!d)
			return nomem(g);
		if (!scalar)
			d[0] = ir_const((int64_t)a->n_floats);
		return 0;
	}
	if ((a = ir_attr(n, "value_string")) || (a = ir_attr(n, "value_strings"))) {
		int scalar = a->has_s;
		ir_dim *d = set_shape(g, y, ONNX__TENSOR_PROTO__DATA_TYPE__STRING, scalar ? 0 : 1);
		if (!d)
			return nomem(g);
		if (!scalar)
			d[0] = ir_const((int64_t)a->n_strings);
		return 0;
	}
	if ((a = ir_attr(n, "sparse_value")) && a->sparse_tensor) {
		const Onnx__SparseTensorProto *s = a->sparse_tensor;
		ir_dim *d =
		        set_shape(g, y, s->values ? s->values->data_type : 0, (int32_t)s->n_dims);
		if (!d)
			return nomem(g);
		for (size_t i = 0; i < s->n_dims; i++)
			d[i] = ir_const(s->dims[i]);
		return 0;
	}
	return 0;
}

int
infer_constantofshape(ir_graph *g, ir_node *n)
{
	ir_value *s = in_val(g, n, 0), *y = out_val(g, n, 0);
	const Onnx__AttributeProto *a = ir_attr(n, "value");
	int32_t dt = a && a->t ? a->t->data_type : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	int rc;

	if (!s || !y)
		return 0;
	y->dtype = dt;
	if ((rc = need_int_operand(g, n, 0, "shape", 0)))
		return rc;
	int32_t r;
	if (s->rank == 1 && ir_is_const(s->dims[0]) && s->dims[0].c > MAX_RANK)
		return node_error(g, n, "rank %lld is above %d", (long long)s->dims[0].c, MAX_RANK);
	if (s->rank == 1 && ir_is_const(s->dims[0]))
		r = (int32_t)s->dims[0].c;
	else if (s->rank == 0)
		r = 0;
	else
		return 0;
	ir_dim *d = set_shape(g, y, dt, r);
	if (!d)
		return nomem(g);
	for (int32_t i = 0; i < r; i++) {
		d[i] = s->elems ? s->elems[i] : ir_unknown();
		if (ir_is_const(d[i]) && d[i].c < 0)
			return node_error(g, n, "negative dim %lld", (long long)d[i].c);
	}
	/* a small integer fill: its elements are known */
	if (r <= 1 && is_int_dtype(dt) && a && a->t && onnx_tensor_numel(a->t) == 1) {
		ir_dim len = r ? d[0] : ir_const(1);
		int64_t v;
		if (!ir_is_const(len) || len.c > IR_MAX_ELEMS ||
		    onnx_tensor_ints(g->model, a->t, &v, 1))
			return 0;
		ir_dim *e = set_elems(g, y, (int32_t)len.c);
		if (!e)
			return nomem(g);
		for (int64_t i = 0; i < len.c; i++)
			e[i] = ir_const(v);
	}
	return 0;
}

int
infer_range(ir_graph *g, ir_node *n)
{
	ir_value *s = in_val(g, n, 0), *l = in_val(g, n, 1), *dl = in_val(g, n, 2);
	ir_value *y = out_val(g, n, 0);

	if (!s || !l || !dl || !y)
		return 0;
	ir_dim *d = set_shape(g, y, s->dtype, 1);
	if (!d)
		return nomem(g);
	d[0] = ir_unknown();
	if (!s->elems || !l->elems || !dl->elems || s->n_elems != 1 || l->n_elems != 1 ||
	    dl->n_elems != 1)
		return 0;
	ir_dim st = s->elems[0], li = l->elems[0], de = dl->elems[0];
	if (!ir_is_const(de) || de.c == 0)
		return 0;
	ir_dim len = ir_ceildiv(g, ir_sub(g, li, st), de);
	if (ir_is_const(len) && len.c < 0)
		len = ir_const(0);
	d[0] = len;
	if (ir_is_const(len) && ir_is_const(st) && len.c <= IR_MAX_ELEMS) {
		ir_dim *e = set_elems(g, y, (int32_t)len.c);
		if (!e)
			return nomem(g);
		for (int64_t i = 0; i < len.c; i++)
			e[i] = ir_const(st.c + i * de.c);
	}
	return 0;
}
