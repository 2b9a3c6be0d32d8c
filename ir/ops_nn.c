/* Shape inference and sharding rules of convolution, pooling and normalisation.
 * Layouts are ONNX's: X [N, C, D1..Dn]; Conv W [M, C/group, k1..kn];
 * ConvTranspose W [C, M/group, k1..kn]. Spatial dims are never split (no
 * halo exchange): their factors are need-replication. */
#include <string.h>

#include "ops_impl.h"

#define ATTR_MAX INT32_MAX /* bound on window attribute values: keeps arithmetic exact */

/* ---- windows: kernel, strides, dilations, pads ---- */

enum { PAD_NOTSET, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER };

/* The window of a conv or pool over nsp spatial dims, checked. */
typedef struct {
	int32_t nsp;
	int pad;               /* PAD_* from auto_pad */
	int ceil_mode;         /* pools only */
	ir_dim k[MAX_RANK];    /* kernel, from kernel_shape or the weight */
	int64_t s[MAX_RANK];   /* strides, >= 1 */
	int64_t dil[MAX_RANK]; /* dilations, >= 1 */
	int64_t pb[MAX_RANK];  /* pads at the beginning, >= 0 (0 unless NOTSET) */
	int64_t pe[MAX_RANK];  /* pads at the end, >= 0 (0 unless NOTSET) */
} window;

/* An ints attribute of exactly want values in [lo, ATTR_MAX] into out, or
 * dflt everywhere when absent. */
static int
ints_attr(ir_graph *g, ir_node *n, const char *name, size_t want, int64_t lo, int64_t dflt,
          int64_t *out)
{
	const int64_t *v;
	size_t cnt = ir_attr_ints(n, name, &v);

	if (!ir_attr(n, name)) {
		for (size_t i = 0; i < want; i++)
			out[i] = dflt;
		return 0;
	}
	if (cnt != want)
		return node_error(g, n, "attribute '%s' has %zu values, expected %zu", name, cnt,
		                  want);
	for (size_t i = 0; i < cnt; i++) {
		if (v[i] < lo || v[i] > ATTR_MAX)
			return node_error(g, n, "attribute '%s' value %lld is out of range", name,
			                  (long long)v[i]);
		out[i] = v[i];
	}
	return 0;
}

/* Read the window attributes of n over nsp spatial dims. The kernel comes
 * from kernel_shape, checked against wk (the weight's kernel dims) when
 * both exist; wk NULL means kernel_shape is required (pools). */
static int
read_window(ir_graph *g, ir_node *n, int32_t nsp, const ir_dim *wk, window *w)
{
	const char *ap = ir_attr_str(g, n, "auto_pad", "NOTSET");
	int64_t buf[2 * MAX_RANK];
	int rc;

	memset(w, 0, sizeof *w);
	w->nsp = nsp;
	if (!strcmp(ap, "NOTSET"))
		w->pad = PAD_NOTSET;
	else if (!strcmp(ap, "VALID"))
		w->pad = PAD_VALID;
	else if (!strcmp(ap, "SAME_UPPER"))
		w->pad = PAD_SAME_UPPER;
	else if (!strcmp(ap, "SAME_LOWER"))
		w->pad = PAD_SAME_LOWER;
	else
		return node_error(g, n, "unknown auto_pad '%s'", ap);
	if (ir_attr(n, "kernel_shape")) {
		if ((rc = ints_attr(g, n, "kernel_shape", (size_t)nsp, 1, 1, buf)))
			return rc;
		for (int32_t i = 0; i < nsp; i++) {
			w->k[i] = ir_const(buf[i]);
			if (wk && ir_is_const(wk[i]) && wk[i].c != buf[i])
				return node_error(
				        g, n, "kernel_shape %lld differs from the weight's %lld",
				        (long long)buf[i], (long long)wk[i].c);
		}
	} else if (!wk) {
		return node_error(g, n, "attribute 'kernel_shape' is required");
	} else {
		for (int32_t i = 0; i < nsp; i++) {
			if (ir_is_const(wk[i]) && wk[i].c < 1)
				return node_error(g, n, "kernel dim %lld is below 1",
				                  (long long)wk[i].c);
			w->k[i] = wk[i];
		}
	}
	if ((rc = ints_attr(g, n, "strides", (size_t)nsp, 1, 1, w->s)) ||
	    (rc = ints_attr(g, n, "dilations", (size_t)nsp, 1, 1, w->dil)) ||
	    (rc = ints_attr(g, n, "pads", 2 * (size_t)nsp, 0, 0, buf)))
		return rc;
	for (int32_t i = 0; i < nsp; i++) {
		if (w->pad != PAD_NOTSET && (buf[i] || buf[nsp + i]))
			return node_error(g, n,
			                  "attribute 'pads' cannot be used with auto_pad '%s'", ap);
		w->pb[i] = buf[i];
		w->pe[i] = buf[nsp + i];
	}
	w->ceil_mode = ir_attr_int(n, "ceil_mode", 0) != 0;
	return 0;
}

/* dilation * (k - 1) + 1 */
static ir_dim
effective_kernel(ir_graph *g, const window *w, int32_t i)
{
	return ir_add(g, ir_mul(g, ir_const(w->dil[i]), ir_sub(g, w->k[i], ir_const(1))),
	              ir_const(1));
}

/* Output size of spatial dim i of a conv or pool over input size in. */
static ir_dim
window_out(ir_graph *g, const window *w, int32_t i, ir_dim in)
{
	ir_dim s = ir_const(w->s[i]), ek = effective_kernel(g, w, i);

	if (w->pad == PAD_SAME_UPPER || w->pad == PAD_SAME_LOWER)
		return ir_ceildiv(g, in, s);
	/* floor or ceil((in + pads - ek) / s) + 1 */
	ir_dim num = ir_sub(g, ir_add(g, in, ir_const(w->pb[i] + w->pe[i])), ek);
	if (!w->ceil_mode)
		return ir_add(g, ir_floordiv(g, num, s), ir_const(1));
	ir_dim out = ir_add(g, ir_ceildiv(g, num, s), ir_const(1));
	/* a last window that would start in the end padding is dropped */
	if (ir_is_const(out) && ir_is_const(in)) {
		ir_dim last = ir_mul(g, ir_sub(g, out, ir_const(1)), s);
		ir_dim lim = ir_add(g, in, ir_const(w->pb[i]));
		if (!ir_is_const(last) || !ir_is_const(lim))
			return ir_unknown(); /* overflow */
		return last.c >= lim.c ? ir_const(out.c - 1) : out;
	}
	/* symbolic: it never starts there when ek >= s + pad_end */
	if (ir_is_const(ek) && ek.c >= w->s[i] + w->pe[i])
		return out;
	return ir_unknown();
}

/* X and W of a conv: ranks 3..64 and equal. */
static int
check_conv_ranks(ir_graph *g, ir_node *n, const ir_value *x, const ir_value *w)
{
	if (x->rank < 3 || x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is not in 3..%d", (int)x->rank, MAX_RANK);
	if (w->rank != x->rank)
		return node_error(g, n, "weight rank %d differs from input rank %d", (int)w->rank,
		                  (int)x->rank);
	return 0;
}

/* An optional bias: rank 1 of size m. */
static int
check_bias(ir_graph *g, ir_node *n, const ir_value *b, ir_dim m)
{
	if (!b || b->rank < 0)
		return 0;
	if (b->rank != 1)
		return node_error(g, n, "bias rank %d is not 1", (int)b->rank);
	if (ir_is_const(b->dims[0]) && ir_is_const(m) && b->dims[0].c != m.c)
		return node_error(g, n, "bias size %lld differs from the %lld output channels",
		                  (long long)b->dims[0].c, (long long)m.c);
	return 0;
}

static int
check_spatial(ir_graph *g, ir_node *n, ir_dim out)
{
	if (ir_is_const(out) && out.c < 1)
		return node_error(g, n, "output spatial dim would be %lld", (long long)out.c);
	return 0;
}

/* ---- convolution ---- */

int
infer_conv(ir_graph *g, ir_node *n)
{
	return conv_shape(g, n, 0, 1, 2, 0);
}

int
conv_shape(ir_graph *g, ir_node *n, uint32_t ix, uint32_t iw, uint32_t ib, int32_t dtype)
{
	ir_value *x = in_val(g, n, ix), *w = in_val(g, n, iw), *y = out_val(g, n, 0);
	int64_t group = ir_attr_int(n, "group", 1);
	window win;
	int rc;

	if (!x || !w || !y || x->rank < 0 || w->rank < 0)
		return 0;
	if ((rc = check_conv_ranks(g, n, x, w)))
		return rc;
	if (group < 1)
		return node_error(g, n, "group %lld is below 1", (long long)group);
	ir_dim c = x->dims[1], m = w->dims[0];
	ir_dim cw = ir_mul(g, w->dims[1], ir_const(group));
	if (ir_is_const(c) && ir_is_const(cw) && c.c != cw.c)
		return node_error(g, n,
		                  "input channels %lld differ from weight channels %s * group %lld",
		                  (long long)c.c, ir_dim_str(g, w->dims[1]), (long long)group);
	if (ir_is_const(m) && m.c % group)
		return node_error(g, n, "output channels %lld are not divisible by group %lld",
		                  (long long)m.c, (long long)group);
	if ((rc = check_bias(g, n, in_val(g, n, ib), m)))
		return rc;
	int32_t nsp = x->rank - 2;
	if ((rc = read_window(g, n, nsp, w->dims + 2, &win)))
		return rc;
	ir_dim *d = set_shape(g, y, dtype ? dtype : x->dtype, x->rank);
	if (!d)
		return nomem(g);
	d[0] = x->dims[0];
	d[1] = m;
	for (int32_t i = 0; i < nsp; i++) {
		d[2 + i] = window_out(g, &win, i, x->dims[2 + i]);
		if ((rc = check_spatial(g, n, d[2 + i])))
			return rc;
	}
	return 0;
}

int
infer_convtranspose(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *w = in_val(g, n, 1), *y = out_val(g, n, 0);
	int64_t group = ir_attr_int(n, "group", 1);
	int64_t opad[MAX_RANK], oshape[MAX_RANK];
	window win;
	int rc;

	if (!x || !w || !y || x->rank < 0 || w->rank < 0)
		return 0;
	if ((rc = check_conv_ranks(g, n, x, w)))
		return rc;
	if (group < 1)
		return node_error(g, n, "group %lld is below 1", (long long)group);
	ir_dim c = x->dims[1], cw = w->dims[0];
	if (ir_is_const(c) && ir_is_const(cw) && c.c != cw.c)
		return node_error(g, n, "input channels %lld differ from weight dim 0 %lld",
		                  (long long)c.c, (long long)cw.c);
	if (ir_is_const(cw) && cw.c % group)
		return node_error(g, n, "input channels %lld are not divisible by group %lld",
		                  (long long)cw.c, (long long)group);
	ir_dim m = ir_mul(g, w->dims[1], ir_const(group));
	if ((rc = check_bias(g, n, in_val(g, n, 2), m)))
		return rc;
	int32_t nsp = x->rank - 2;
	int has_oshape = ir_attr(n, "output_shape") != NULL;
	if ((rc = read_window(g, n, nsp, w->dims + 2, &win)) ||
	    (rc = ints_attr(g, n, "output_padding", (size_t)nsp, 0, 0, opad)) ||
	    (rc = ints_attr(g, n, "output_shape", (size_t)nsp, 1, 1, oshape)))
		return rc;
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	d[0] = x->dims[0];
	d[1] = m;
	for (int32_t i = 0; i < nsp; i++) {
		ir_dim in = x->dims[2 + i], s = ir_const(win.s[i]), o;
		if (has_oshape) {
			o = ir_const(oshape[i]);
		} else if (win.pad == PAD_SAME_UPPER || win.pad == PAD_SAME_LOWER) {
			o = ir_mul(g, in, s);
		} else {
			/* stride * (in - 1) + output_padding + ek - pads */
			o = ir_mul(g, s, ir_sub(g, in, ir_const(1)));
			o = ir_add(g, o, effective_kernel(g, &win, i));
			o = ir_add(g, o, ir_const(opad[i] - win.pb[i] - win.pe[i]));
		}
		d[2 + i] = o;
		if ((rc = check_spatial(g, n, o)))
			return rc;
	}
	return 0;
}

/* Conv and ConvTranspose. With group > 1 the channels stay unmapped: a
 * split of them would need the group attribute rewritten per rank. */
void
rule_conv(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *w = in_val(g, n, 1), *y = out_val(g, n, 0);
	int tr = n->op == OP_ConvTranspose;
	int32_t r = x->rank;

	if (r < 3 || r > MAX_RANK || w->rank != r || !y || y->rank != r)
		return;
	rb_pass(b, x->dims[0], 0, 0, T_OUT(n, 0), 0);
	if (ir_attr_int(n, "group", 1) == 1) {
		/* Conv W [M, C, k..]; ConvTranspose W [C, M, k..] */
		uint32_t wm = tr ? 1 : 0, wc = tr ? 0 : 1;
		uint32_t m = rb_pass(b, y->dims[1], 1, wm, T_OUT(n, 0), 1);
		if (in_val(g, n, 2))
			rb_map(b, 2, 0, m);
		uint32_t c = rb_factor(b, IR_F_REDUCE, x->dims[1]);
		rb_map(b, 0, 1, c);
		rb_map(b, 1, wc, c);
	}
	for (int32_t i = 2; i < r; i++) {
		uint32_t f = rb_factor(b, IR_F_REPL, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
	}
	for (int32_t i = 2; i < r; i++)
		rb_map(b, 1, (uint32_t)i, rb_factor(b, IR_F_REPL, w->dims[i]));
}

/* ---- pooling ---- */

int
infer_pool(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0);
	window win;
	int rc;

	if (!x || x->rank < 0)
		return 0;
	if (x->rank < 3 || x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is not in 3..%d", (int)x->rank, MAX_RANK);
	int32_t nsp = x->rank - 2;
	if ((rc = read_window(g, n, nsp, NULL, &win)))
		return rc;
	ir_dim sp[MAX_RANK];
	for (int32_t i = 0; i < nsp; i++) {
		sp[i] = window_out(g, &win, i, x->dims[2 + i]);
		if ((rc = check_spatial(g, n, sp[i])))
			return rc;
	}
	/* Y, and MaxPool's Indices (int64) */
	for (uint32_t k = 0; k < n->n_out && k < 2; k++) {
		ir_value *y = out_val(g, n, k);
		if (!y)
			continue;
		ir_dim *d = set_shape(g, y, k ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : x->dtype,
		                      x->rank);
		if (!d)
			return nomem(g);
		d[0] = x->dims[0];
		d[1] = x->dims[1];
		memcpy(d + 2, sp, (size_t)nsp * sizeof *d);
	}
	return 0;
}

int
infer_globalpool(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);

	if (!x || !y || x->rank < 0)
		return 0;
	if (x->rank < 2 || x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is not in 2..%d", (int)x->rank, MAX_RANK);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	d[0] = x->dims[0];
	d[1] = x->dims[1];
	for (int32_t i = 2; i < x->rank; i++)
		d[i] = ir_const(1);
	return 0;
}

/* All pools: N and C pass, the window dims are need-replication. Global
 * pools' size-1 result dims stay unmapped. MaxPool's Indices are flat
 * offsets into the whole input, which a split of N or C would shift: then
 * nothing is split. */
void
rule_pool(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int global = n->op == OP_GlobalAveragePool || n->op == OP_GlobalMaxPool;
	int idx = n->op == OP_MaxPool && out_val(g, n, 1) != NULL;
	int32_t r = x->rank;

	if (r < 2 || r > MAX_RANK || !y || y->rank != r)
		return;
	for (int32_t i = 0; i < r; i++) {
		int repl = i >= 2 || idx;
		uint32_t f = rb_factor(b, repl ? IR_F_REPL : IR_F_PASS, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f);
		if (global && i >= 2)
			continue;
		for (uint32_t k = 0; k < n->n_out && k < 2; k++)
			rb_map(b, T_OUT(n, k), (uint32_t)i, f);
	}
}

/* ---- normalisation ---- */

/* Training mode: statistics over N and the spatial dims, extra results. */
static int
is_bn_training(ir_graph *g, const ir_node *n)
{
	if (ir_attr_int(n, "training_mode", 0))
		return 1;
	for (uint32_t k = 1; k < n->n_out; k++)
		if (out_val(g, n, k))
			return 1;
	return 0;
}

int
infer_batchnorm(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	static const char *const names[] = {"", "scale", "B", "input_mean", "input_var"};
	int rc;

	if (!x || x->rank < 0)
		return 0;
	if (x->rank < 1 || x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is not in 1..%d", (int)x->rank, MAX_RANK);
	/* a rank-1 input is N alone, with C = 1 */
	ir_dim c = x->rank >= 2 ? x->dims[1] : ir_const(1);
	/* before opset 9, spatial=0 gave per-element statistics [C, D1..] */
	int per_elem = g->opset < 9 && ir_attr_int(n, "spatial", 1) == 0;
	for (uint32_t k = 1; k < 5 && !per_elem; k++) {
		ir_value *p = in_val(g, n, k);
		if (!p || p->rank < 0)
			continue;
		if (p->rank != 1)
			return node_error(g, n, "%s rank %d is not 1", names[k], (int)p->rank);
		if (ir_is_const(p->dims[0]) && ir_is_const(c) && p->dims[0].c != c.c)
			return node_error(g, n, "%s size %lld differs from the %lld channels",
			                  names[k], (long long)p->dims[0].c, (long long)c.c);
	}
	if (y && (rc = copy_shape(g, y, x, 0)))
		return rc;
	if (per_elem)
		return 0;
	/* running (or saved) mean and variance: [C] */
	for (uint32_t k = 1; k < n->n_out && k < 5; k++) {
		ir_value *o = out_val(g, n, k), *src = k <= 2 ? in_val(g, n, k + 2) : NULL;
		if (!o)
			continue;
		int32_t dt = src && src->dtype ? src->dtype : x->dtype;
		ir_dim *d = set_shape(g, o, dt, 1);
		if (!d)
			return nomem(g);
		d[0] = c;
	}
	return 0;
}

/* Inference: N, C and the spatial dims pass. Training: the statistics
 * reduce over N and the spatial dims, so those are need-replication. */
void
rule_batchnorm(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int train = is_bn_training(g, n);
	int32_t r = x->rank;

	if (r < 1 || r > MAX_RANK)
		return;
	for (int32_t i = 0; i < r; i++) {
		int chan = i == 1;
		uint32_t f = rb_factor(b, chan || !train ? IR_F_PASS : IR_F_REPL, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
		if (!chan || (g->opset < 9 && ir_attr_int(n, "spatial", 1) == 0))
			continue;
		for (uint32_t k = 1; k < 5; k++) {
			ir_value *p = in_val(g, n, k);
			if (p && p->rank == 1)
				rb_map(b, k, 0, f);
		}
		for (uint32_t k = 1; k < n->n_out && k < 5; k++) {
			ir_value *o = out_val(g, n, k);
			if (o && o->rank == 1)
				rb_map(b, T_OUT(n, k), 0, f);
		}
	}
}

/* InstanceNormalization: N and C pass (C with scale and B); the spatial
 * dims are normalised over: need-replication. */
void
rule_instnorm(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int32_t r = x->rank;

	if (r < 2 || r > MAX_RANK)
		return;
	for (int32_t i = 0; i < r; i++) {
		uint32_t f = rb_factor(b, i < 2 ? IR_F_PASS : IR_F_REPL, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
		if (i != 1)
			continue;
		for (uint32_t k = 1; k < 3; k++) {
			ir_value *p = in_val(g, n, k);
			if (p && p->rank == 1)
				rb_map(b, k, 0, f);
		}
	}
}

/* GroupNormalization: N passes; C (grouped) and the spatial dims are
 * normalised over. Scale and bias ([G] or [C] by opset) stay unmapped. */
void
rule_groupnorm(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int32_t r = x->rank;

	if (r < 2 || r > MAX_RANK)
		return;
	for (int32_t i = 0; i < r; i++) {
		uint32_t f = rb_factor(b, i == 0 ? IR_F_PASS : IR_F_REPL, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
	}
}

int
infer_layernorm(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	int32_t stash = (int32_t)ir_attr_int(n, "stash_type", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
	int rc;

	if (!x || x->rank < 0)
		return 0;
	if (x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is above %d", (int)x->rank, MAX_RANK);
	int axis = norm_axis(ir_attr_int(n, "axis", -1), x->rank);
	if (axis < 0)
		return node_error(g, n, "axis %lld out of range for rank %d",
		                  (long long)ir_attr_int(n, "axis", -1), (int)x->rank);
	if (!onnx_dtype_name(stash))
		return node_error(g, n, "attribute 'stash_type' is not a known data type (%d)",
		                  (int)stash);
	/* Scale and B broadcast to X's dims from axis on */
	for (uint32_t k = 1; k < 3; k++) {
		ir_value *p = in_val(g, n, k);
		if (!p || p->rank < 0)
			continue;
		if (p->rank > x->rank - axis)
			return node_error(g, n, "%s rank %d is above the %d normalised dims",
			                  k == 1 ? "scale" : "B", (int)p->rank,
			                  (int)(x->rank - axis));
		for (int32_t j = 0; j < p->rank; j++) {
			ir_dim pd = p->dims[j], xd = x->dims[x->rank - p->rank + j];
			if (ir_is_const(pd) && ir_is_const(xd) && pd.c != xd.c && pd.c != 1)
				return node_error(g, n, "%s dim %lld does not broadcast to %lld",
				                  k == 1 ? "scale" : "B", (long long)pd.c,
				                  (long long)xd.c);
		}
	}
	if (y && (rc = copy_shape(g, y, x, 0)))
		return rc;
	/* Mean and InvStdDev: X's shape, dims from axis on reduced to 1 */
	for (uint32_t k = 1; k < n->n_out && k < 3; k++) {
		ir_value *o = out_val(g, n, k);
		if (!o)
			continue;
		ir_dim *d = set_shape(g, o, stash, x->rank);
		if (!d)
			return nomem(g);
		for (int32_t i = 0; i < x->rank; i++)
			d[i] = i < axis ? x->dims[i] : ir_const(1);
	}
	return 0;
}

/* Dims before axis pass to every result; dims from axis on are normalised
 * over (need-replication), shared with Scale and B aligned from the right. */
void
rule_layernorm(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int32_t r = x->rank;
	int axis = norm_axis(ir_attr_int(n, "axis", -1), r);

	if (axis < 0 || r > MAX_RANK)
		return;
	for (int32_t i = 0; i < r; i++) {
		int repl = i >= axis;
		uint32_t f = rb_factor(b, repl ? IR_F_REPL : IR_F_PASS, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f);
		rb_map(b, T_OUT(n, 0), (uint32_t)i, f);
		if (!repl) {
			for (uint32_t k = 1; k < n->n_out && k < 3; k++)
				rb_map(b, T_OUT(n, k), (uint32_t)i, f);
			continue;
		}
		for (uint32_t k = 1; k < 3; k++) {
			ir_value *p = in_val(g, n, k);
			int32_t j = p ? i - (r - p->rank) : -1;
			if (j < 0 || (is_one(p->dims[j]) && !is_one(x->dims[i])))
				continue;
			rb_map(b, k, (uint32_t)j, f);
		}
	}
}
