/* Shape inference and sharding rules of quantization: QuantizeLinear and
 * DequantizeLinear (ai.onnx and com.microsoft; per tensor, per axis and,
 * from opset 21, per block), DynamicQuantizeLinear, and the integer
 * contractions MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv and
 * com.microsoft's MatMulIntegerToFloat and DynamicQuantizeMatMul.
 * A scale computed from a whole tensor makes its dims need-replication; a
 * contraction requantised into integers cannot be a pending sum, so its
 * reduced dim is need-replication; an integer sum (int32) can. */
#include <string.h>

#include "ops_impl.h"

/* A dtype onnxshard cannot split (no fixed size: strings): its values
 * stay whole. Unknown (0) is not one; float8 is a byte, and a 4-bit value
 * splits where its blocks keep whole bytes (propagate.c's keeps_bytes). */
static int
is_unsized(int32_t dt)
{
	return dt != 0 && onnx_dtype_bits(dt) == 0;
}

/* ---- QuantizeLinear, DequantizeLinear ---- */

enum { Q_TENSOR, Q_AXIS, Q_BLOCK };

/* The form of a Q/DQ node: per tensor (a scalar or one-element scale), per
 * axis (a 1-D scale along *axis), or per block (block_size > 0: the scale
 * of x's rank, x's axis dim in blocks of *bs). -1 when the scale's shape
 * is unknown. */
static int
qdq_mode(const ir_node *n, const ir_value *x, const ir_value *s, int *axis, int64_t *bs)
{
	*bs = ir_attr_int(n, "block_size", 0);
	*axis = norm_axis(ir_attr_int(n, "axis", 1), x->rank);
	if (!s || s->rank < 0)
		return -1;
	if (*bs > 0)
		return Q_BLOCK;
	if (s->rank == 0 || (s->rank == 1 && is_one(s->dims[0])))
		return Q_TENSOR;
	return Q_AXIS;
}

/* The scale and zero point against x: 0 or a refusal. */
static int
check_qparams(ir_graph *g, ir_node *n, const ir_value *x)
{
	ir_value *s = in_val(g, n, 1), *z = in_val(g, n, 2);
	int axis;
	int64_t bs;
	int mode = qdq_mode(n, x, s, &axis, &bs);

	if (mode < 0 || mode == Q_TENSOR)
		return 0;
	if (axis < 0)
		return node_error(g, n, "axis %lld out of range for rank %d",
		                  (long long)ir_attr_int(n, "axis", 1), (int)x->rank);
	if (z && z->rank >= 0 && z->rank != s->rank)
		return node_error(g, n, "zero point rank %d differs from the scale's %d",
		                  (int)z->rank, (int)s->rank);
	ir_dim xa = x->dims[axis];
	if (mode == Q_AXIS) {
		if (s->rank != 1)
			return node_error(g, n, "scale has rank %d: per-axis scales are 1-D",
			                  (int)s->rank);
		if (ir_is_const(s->dims[0]) && ir_is_const(xa) && s->dims[0].c != xa.c)
			return node_error(g, n, "scale has %lld elements, axis %d has %lld",
			                  (long long)s->dims[0].c, axis, (long long)xa.c);
		return 0;
	}
	if (s->rank != x->rank)
		return node_error(g, n, "block scale has rank %d, the input %d", (int)s->rank,
		                  (int)x->rank);
	for (int32_t i = 0; i < x->rank; i++) {
		ir_dim want = i == axis ? ir_ceildiv(g, x->dims[i], ir_const(bs)) : x->dims[i];
		if (ir_is_const(s->dims[i]) && ir_is_const(want) && s->dims[i].c != want.c)
			return node_error(g, n, "block scale dim %d is %lld, expected %lld", (int)i,
			                  (long long)s->dims[i].c, (long long)want.c);
	}
	return 0;
}

/* y: x's shape; its type the zero point's, else output_dtype (opset 21),
 * else uint8. Types onnxshard does not name (float8, int4) are unknown. */
int
infer_quantize(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *z = in_val(g, n, 2), *y = out_val(g, n, 0);
	int32_t dt = (int32_t)ir_attr_int(n, "output_dtype", 0);
	int rc;

	if (z)
		dt = z->dtype;
	else if (!dt)
		dt = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
	if (dt && !onnx_dtype_name(dt) && (dt < 1 || dt > MAX_ONNX_DTYPE))
		return node_error(g, n, "output_dtype %d is not a known data type", (int)dt);
	if (!x || !y)
		return 0;
	if (x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is above %d", (int)x->rank, MAX_RANK);
	if (x->rank >= 0 && (rc = check_qparams(g, n, x)))
		return rc;
	if ((rc = copy_shape(g, y, x, dt)))
		return rc;
	y->dtype = onnx_dtype_name(dt) ? dt : 0;
	return 0;
}

/* y: x's shape, the scale's type (float before opset 19). */
int
infer_dequantize(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *s = in_val(g, n, 1), *y = out_val(g, n, 0);
	int32_t dt = s && s->dtype ? s->dtype : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	int rc;

	if (!x || !y)
		return 0;
	if (x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is above %d", (int)x->rank, MAX_RANK);
	if (x->rank >= 0 && (rc = check_qparams(g, n, x)))
		return rc;
	return copy_shape(g, y, x, dt);
}

/* Map factor f to dim d of the scale and the zero point. */
static void
map_qparams(ir_node *n, rule_b *b, uint32_t d, uint32_t f)
{
	rb_map(b, 1, d, f);
	if (n->n_in > 2)
		rb_map(b, 2, d, f);
}

/* Elementwise: every dim passes from x to y. Per axis, the axis factor is
 * the scale's and zero point's too (a split slices them). Per block, the
 * scale's dims are x's, the axis one [n_blocks] of x's [n_blocks,
 * block_size] whose block part is need-replication (splits fall on block
 * boundaries); a last partial block leaves the axis need-replication. A
 * value of a type without a byte size (int4, float8) stays whole. */
void
rule_qdq(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *s = in_val(g, n, 1), *y = out_val(g, n, 0);
	int axis;
	int64_t bs;
	int mode = qdq_mode(n, x, s, &axis, &bs);
	int whole = is_unsized(x->dtype) || is_unsized(y->dtype) || mode < 0 ||
	            (mode != Q_TENSOR && axis < 0);

	if (x->rank > MAX_RANK || y->rank != x->rank)
		return;
	if (mode == Q_BLOCK && s->rank != x->rank)
		whole = 1;
	for (int32_t i = 0; i < x->rank; i++) {
		ir_dim xd = x->dims[i];
		if (whole) {
			uint32_t f = rb_factor(b, IR_F_REPL, xd);
			rb_map(b, 0, (uint32_t)i, f);
			rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
			continue;
		}
		if (mode != Q_BLOCK || i != axis) {
			uint32_t f = rb_pass(b, xd, 0, (uint32_t)i, T_OUT(n, 0), (uint32_t)i);
			if (mode == Q_BLOCK && !(is_one(s->dims[i]) && !is_one(xd)))
				map_qparams(n, b, (uint32_t)i, f);
			else if (mode == Q_AXIS && i == axis && s->rank == 1)
				map_qparams(n, b, 0, f);
			continue;
		}
		ir_dim nb = ir_const(ir_is_const(xd) && xd.c % bs == 0 ? xd.c / bs : 0);
		if (!nb.c || !ir_dim_eq(s->dims[i], nb)) {
			uint32_t f = rb_factor(b, IR_F_REPL, xd);
			rb_map(b, 0, (uint32_t)i, f);
			rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
			map_qparams(n, b, (uint32_t)i, rb_factor(b, IR_F_REPL, s->dims[i]));
			continue;
		}
		uint32_t fb = rb_factor(b, IR_F_PASS, nb),
		         fin = rb_factor(b, IR_F_REPL, ir_const(bs));
		for (uint32_t t = 0; t < 2; t++) {
			uint32_t tt = t ? T_OUT(n, 0) : 0;
			rb_map(b, tt, (uint32_t)i, fb);
			rb_map(b, tt, (uint32_t)i, fin);
		}
		map_qparams(n, b, (uint32_t)i, fb);
	}
}

/* ---- DynamicQuantizeLinear ---- */

/* y: x's shape, uint8; y_scale (float) and y_zero_point (uint8) scalars. */
int
infer_dynquant(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0);
	int rc;

	if (!x)
		return 0;
	for (uint32_t k = 0; k < n->n_out && k < 3; k++) {
		ir_value *o = out_val(g, n, k);
		int32_t dt = k == 1 ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
		                    : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
		if (!o)
			continue;
		if (k == 0 && (rc = copy_shape(g, o, x, dt)))
			return rc;
		if (k > 0 && !set_shape(g, o, dt, 0))
			return nomem(g);
		o->dtype = dt;
	}
	return 0;
}

/* The scale and zero point come from the whole of x (its min and max): a
 * rank's block would get its own. Every dim is need-replication. */
void
rule_dynquant(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);

	for (int32_t i = 0; i < x->rank && y->rank == x->rank; i++) {
		uint32_t f = rb_factor(b, IR_F_REPL, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
	}
}

/* ---- integer matrix products ---- */

/* The factors of a MatMul-like product. */
typedef struct {
	uint32_t m, nn, k;      /* IR_NONE when absent (a 1-D operand) */
	uint32_t bat[MAX_RANK]; /* the result's batch dims */
	int32_t rbat;
} mm_factors;

/* rule_matmul of operands ia and ib: batch dims and M (of kind mkind, that
 * is PASS unless A must stay whole), N passes, K of kind kkind. */
static int
mm_rule(ir_graph *g, ir_node *n, rule_b *b, uint32_t ia, uint32_t ib, int mkind, int kkind,
        mm_factors *f)
{
	ir_value *a = in_val(g, n, ia), *bv = in_val(g, n, ib), *y = out_val(g, n, 0);
	int32_t ra = a->rank, rb = bv->rank, ry = y->rank;

	f->m = f->nn = f->k = IR_NONE;
	f->rbat = ry - (ra > 1) - (rb > 1);
	if (ra < 1 || rb < 1 || ra > MAX_RANK || rb > MAX_RANK || f->rbat < 0 || f->rbat < ra - 2 ||
	    f->rbat < rb - 2)
		return 0;
	for (int32_t d = 0; d < f->rbat; d++) {
		uint32_t fd = rb_factor(b, mkind, y->dims[d]);
		int32_t da = d - (f->rbat - (ra - 2)), db = d - (f->rbat - (rb - 2));
		rb_map(b, T_OUT(n, 0), (uint32_t)d, fd);
		if (ra > 2 && da >= 0 && !(is_one(a->dims[da]) && !is_one(y->dims[d])))
			rb_map(b, ia, (uint32_t)da, fd);
		if (rb > 2 && db >= 0 && !(is_one(bv->dims[db]) && !is_one(y->dims[d])))
			rb_map(b, ib, (uint32_t)db, fd);
		f->bat[d] = fd;
	}
	if (ra > 1) {
		f->m = rb_factor(b, mkind, a->dims[ra - 2]);
		rb_map(b, ia, (uint32_t)(ra - 2), f->m);
		rb_map(b, T_OUT(n, 0), (uint32_t)f->rbat, f->m);
	}
	if (rb > 1)
		f->nn = rb_pass(b, bv->dims[rb - 1], ib, (uint32_t)(rb - 1), T_OUT(n, 0),
		                (uint32_t)(ry - 1));
	f->k = rb_factor(b, kkind, a->dims[ra - 1]);
	rb_map(b, ia, (uint32_t)(ra - 1), f->k);
	rb_map(b, ib, (uint32_t)(rb == 1 ? 0 : rb - 2), f->k);
	return 1;
}

/* A 1-D quantization parameter (operand k) of more than one element takes
 * factor fac; one or a scalar stays whole. */
static void
map_vector(ir_graph *g, ir_node *n, rule_b *b, uint32_t k, uint32_t fac)
{
	ir_value *p = in_val(g, n, k);

	if (p && p->rank == 1 && !is_one(p->dims[0]) && fac != IR_NONE)
		rb_map(b, k, 0, fac);
}

int
infer_matmulinteger(ir_graph *g, ir_node *n)
{
	return matmul_shape(g, n, 0, 1, ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
}

/* MatMul's rule; K reduces into an int32 pending sum (zero points are
 * subtracted per element, so the partial products add up exactly).
 * a_zero_point per row ([M], or [.., M, 1]) takes M and the batch dims;
 * b_zero_point per column ([N], or [.., 1, N]) takes N and the batch dims. */
void
rule_matmulinteger(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *a = in_val(g, n, 0), *bv = in_val(g, n, 1);
	mm_factors f;

	if (!mm_rule(g, n, b, 0, 1, IR_F_PASS, IR_F_REDUCE, &f))
		return;
	for (uint32_t k = 2; k < 4; k++) {
		ir_value *z = in_val(g, n, k), *op = k == 2 ? a : bv;
		if (!z || z->rank < 1)
			continue;
		if (z->rank == 1) {
			map_vector(g, n, b, k, k == 2 ? f.m : f.nn);
			continue;
		}
		if (z->rank != op->rank || op->rank < 2)
			continue;
		for (int32_t j = 0; j < z->rank - 2; j++)
			if (!is_one(z->dims[j]))
				rb_map(b, k, (uint32_t)j, f.bat[f.rbat - (op->rank - 2) + j]);
		if (k == 2 && !is_one(z->dims[z->rank - 2]))
			rb_map(b, k, (uint32_t)(z->rank - 2), f.m);
		if (k == 3 && !is_one(z->dims[z->rank - 1]))
			rb_map(b, k, (uint32_t)(z->rank - 1), f.nn);
	}
}

enum { QMM_A, QMM_AS, QMM_AZ, QMM_B, QMM_BS, QMM_BZ, QMM_YS, QMM_YZ };

/* y: the product of a and b, of y_zero_point's type. */
int
infer_qlinearmatmul(ir_graph *g, ir_node *n)
{
	ir_value *yz = in_val(g, n, QMM_YZ);
	return matmul_shape(g, n, QMM_A, QMM_B, yz ? yz->dtype : 0);
}

/* MatMul's rule with K need-replication: each rank would requantise its
 * partial sum, and rounding is not linear. Per-column b (and y) scales and
 * zero points take N; per-row a ones M. */
void
rule_qlinearmatmul(ir_graph *g, ir_node *n, rule_b *b)
{
	mm_factors f;

	if (!mm_rule(g, n, b, QMM_A, QMM_B, IR_F_PASS, IR_F_REPL, &f))
		return;
	map_vector(g, n, b, QMM_AS, f.m);
	map_vector(g, n, b, QMM_AZ, f.m);
	for (uint32_t k = QMM_BS; k <= QMM_YZ; k++)
		map_vector(g, n, b, k, f.nn);
}

enum { MIF_A, MIF_B, MIF_AS, MIF_BS, MIF_AZ, MIF_BZ, MIF_BIAS };

/* Y: the product of A and B, of a_scale's type (float or float16). */
int
infer_msmatmulintegertofloat(ir_graph *g, ir_node *n)
{
	ir_value *as = in_val(g, n, MIF_AS);
	return matmul_shape(g, n, MIF_A, MIF_B,
	                    as && as->dtype ? as->dtype : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
}

/* MatMul's rule; the scales multiply the integer sum, so K reduces into a
 * float pending sum, but for a bias, which every rank would add: then K is
 * need-replication. Per-column b scale, zero point and the bias take N; a
 * per-column (K) a scale and zero point take K. */
void
rule_msmatmulintegertofloat(ir_graph *g, ir_node *n, rule_b *b)
{
	mm_factors f;
	int kkind = in_val(g, n, MIF_BIAS) ? IR_F_REPL : IR_F_REDUCE;

	if (!mm_rule(g, n, b, MIF_A, MIF_B, IR_F_PASS, kkind, &f))
		return;
	map_vector(g, n, b, MIF_AS, f.k);
	map_vector(g, n, b, MIF_AZ, f.k);
	map_vector(g, n, b, MIF_BS, f.nn);
	map_vector(g, n, b, MIF_BZ, f.nn);
	map_vector(g, n, b, MIF_BIAS, f.nn);
}

/* Y: the product of A (float) and B, A's type. */
int
infer_msdynquantmatmul(ir_graph *g, ir_node *n)
{
	ir_value *a = in_val(g, n, 0);
	return matmul_shape(g, n, 0, 1,
	                    a && a->dtype ? a->dtype : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
}

/* A is quantised with a scale from all of it: every A dim (batch, M, K) is
 * need-replication. N passes with b_scale, b_zero_point and the bias. */
void
rule_msdynquantmatmul(ir_graph *g, ir_node *n, rule_b *b)
{
	mm_factors f;

	if (!mm_rule(g, n, b, 0, 1, IR_F_REPL, IR_F_REPL, &f))
		return;
	for (uint32_t k = 2; k < 5; k++)
		map_vector(g, n, b, k, f.nn);
}

/* ---- integer convolutions ---- */

/* Conv's rule over x (operand ix) and w (iw): N passes; with group 1, M
 * passes (w dim 0, y dim 1; its per-channel parameters: operands mk[0..nm))
 * and C is of kind ckind; spatial and kernel dims are need-replication. */
static void
qconv_rule(ir_graph *g, ir_node *n, rule_b *b, uint32_t ix, uint32_t iw, int ckind,
           const uint32_t *mk, uint32_t nm)
{
	ir_value *x = in_val(g, n, ix), *w = in_val(g, n, iw), *y = out_val(g, n, 0);
	int32_t r = x->rank;

	if (r < 3 || r > MAX_RANK || w->rank != r || y->rank != r)
		return;
	rb_pass(b, x->dims[0], ix, 0, T_OUT(n, 0), 0);
	if (ir_attr_int(n, "group", 1) == 1) {
		uint32_t m = rb_pass(b, y->dims[1], iw, 0, T_OUT(n, 0), 1);
		for (uint32_t j = 0; j < nm; j++)
			map_vector(g, n, b, mk[j], m);
		uint32_t c = rb_factor(b, ckind, x->dims[1]);
		rb_map(b, ix, 1, c);
		rb_map(b, iw, 1, c);
	}
	for (int32_t i = 2; i < r; i++) {
		uint32_t f = rb_factor(b, IR_F_REPL, x->dims[i]);
		rb_map(b, ix, (uint32_t)i, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
	}
	for (int32_t i = 2; i < r; i++)
		rb_map(b, iw, (uint32_t)i, rb_factor(b, IR_F_REPL, w->dims[i]));
}

/* x, w, x_zero_point, w_zero_point: Conv's shape, int32. */
int
infer_convinteger(ir_graph *g, ir_node *n)
{
	return conv_shape(g, n, 0, 1, IR_NONE, ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
}

/* Conv's rule; C reduces into an int32 pending sum (x's zero point, a
 * scalar, is subtracted per element, padding included); a per-channel
 * w_zero_point takes M. */
void
rule_convinteger(ir_graph *g, ir_node *n, rule_b *b)
{
	static const uint32_t mk[] = {3};
	qconv_rule(g, n, b, 0, 1, IR_F_REDUCE, mk, 1);
}

enum { QC_X, QC_XS, QC_XZ, QC_W, QC_WS, QC_WZ, QC_YS, QC_YZ, QC_B };

/* Conv's shape of x and w with the int32 bias B, y_zero_point's type. */
int
infer_qlinearconv(ir_graph *g, ir_node *n)
{
	ir_value *yz = in_val(g, n, QC_YZ);
	return conv_shape(g, n, QC_X, QC_W, QC_B, yz ? yz->dtype : 0);
}

/* Conv's rule with C need-replication (requantisation is not linear);
 * per-channel w scale and zero point and the bias take M. */
void
rule_qlinearconv(ir_graph *g, ir_node *n, rule_b *b)
{
	static const uint32_t mk[] = {QC_WS, QC_WZ, QC_B};
	qconv_rule(g, n, b, QC_X, QC_W, IR_F_REPL, mk, 3);
}
