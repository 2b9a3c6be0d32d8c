/* Shape inference and sharding rules of the image and grid ops of opsets
 * 16 to 21: GridSample (16, N-D from 20), AffineGrid (20), Col2Im (18),
 * CenterCropPad (18). Spatial dims of an image read through a grid or a
 * window are never split; shape operands are never divided, so only dims
 * that no shape operand describes pass. */
#include <string.h>

#include "ops_impl.h"

/* ---- GridSample: X [N, C, D1..Dr], grid [N, H1..Hr, r] -> [N, C, H1..Hr] ---- */

int
infer_gridsample(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *gr = in_val(g, n, 1), *y = out_val(g, n, 0);

	if (!x || !gr || !y || !has_rank(x) || !has_rank(gr))
		return dtype_only(y, x);
	int32_t r = x->rank - 2;
	if (r < 1 || gr->rank != x->rank || (g->opset < 20 && x->rank != 4))
		return node_error(g, n, "X rank %d and grid rank %d do not fit (opset %lld)",
		                  (int)x->rank, (int)gr->rank, (long long)g->opset);
	ir_dim last = gr->dims[gr->rank - 1];
	if (ir_is_const(last) && last.c != r)
		return node_error(g, n, "grid's last dim is %lld, not %d", (long long)last.c,
		                  (int)r);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	d[0] = ir_is_known(x->dims[0]) ? x->dims[0] : gr->dims[0];
	d[1] = x->dims[1];
	for (int32_t i = 0; i < r; i++)
		d[2 + i] = gr->dims[1 + i];
	return 0;
}

/* N passes through X, grid and Y, C from X to Y; each output location
 * reads its own grid entry, so the grid's spatial dims pass to Y's; X's
 * spatial dims are read anywhere (need-replication). */
void
rule_gridsample(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *gr = in_val(g, n, 1), *y = out_val(g, n, 0);
	uint32_t to = T_OUT(n, 0);

	if (!has_rank(x) || !has_rank(gr) || gr->rank != x->rank || y->rank != x->rank ||
	    x->rank < 3 || !ir_dim_eq(x->dims[0], gr->dims[0]))
		return;
	uint32_t f = rb_pass(b, x->dims[0], 0, 0, 1, 0);
	rb_map(b, to, 0, f);
	rb_pass(b, x->dims[1], 0, 1, to, 1);
	for (int32_t i = 2; i < x->rank; i++) {
		rb_map(b, 0, (uint32_t)i, rb_factor(b, IR_F_REPL, x->dims[i]));
		rb_pass(b, gr->dims[i - 1], 1, (uint32_t)(i - 1), to, (uint32_t)i);
	}
}

/* ---- AffineGrid: theta [N, r, r+1], size [N, C, D1..Dr] -> [N, D1..Dr, r] ---- */

int
infer_affinegrid(ir_graph *g, ir_node *n)
{
	ir_value *th = in_val(g, n, 0), *sz = in_val(g, n, 1), *y = out_val(g, n, 0);
	int rc;

	if ((rc = need_int_operand(g, n, 1, "size", 0)))
		return rc;
	if (!y || !sz || !sz->elems)
		return dtype_only(y, th);
	int32_t r = sz->n_elems - 2;
	if (r != 2 && r != 3)
		return node_error(g, n, "size has %d elements, not 4 or 5", (int)sz->n_elems);
	ir_dim *d = set_shape(g, y, th ? th->dtype : 0, r + 2);
	if (!d)
		return nomem(g);
	d[0] = sz->elems[0];
	for (int32_t i = 0; i < r; i++)
		d[1 + i] = sz->elems[2 + i];
	d[r + 1] = ir_const(r);
	return 0;
}

/* AffineGrid's result is laid out by its size operand (global sizes):
 * nothing is split (rule_none). */

/* ---- Col2Im: [N, C*prod(block), L], image_shape, block_shape -> [N, C, image] ---- */

int
infer_col2im(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	ir_dim img[MAX_RANK], blk[MAX_RANK];
	int32_t ni, nb;
	int rc;

	if ((rc = need_int_operand(g, n, 1, "image_shape", 0)) ||
	    (rc = need_int_operand(g, n, 2, "block_shape", 0)))
		return rc;
	if (!x || !y || !has_rank(x))
		return dtype_only(y, x);
	if (x->rank != 3)
		return node_error(g, n, "input rank %d is not 3", (int)x->rank);
	if (dim_list(g, n, NULL, 1, img, &ni) != L_KNOWN)
		return dtype_only(y, x);
	ir_dim c = ir_unknown();
	if (dim_list(g, n, NULL, 2, blk, &nb) == L_KNOWN) {
		if (nb != ni)
			return node_error(g, n, "image_shape has %d entries, block_shape %d",
			                  (int)ni, (int)nb);
		ir_dim p = dims_prod(g, blk, 0, nb);
		if (ir_is_const(p) && p.c > 0 && ir_is_const(x->dims[1]) && x->dims[1].c % p.c)
			return node_error(g, n, "input dim 1 (%lld) is not a multiple of %lld",
			                  (long long)x->dims[1].c, (long long)p.c);
		if (!ir_is_const(p) || p.c > 0)
			c = ir_floordiv(g, x->dims[1], p);
	}
	ir_dim *d = set_shape(g, y, x->dtype, ni + 2);
	if (!d)
		return nomem(g);
	d[0] = x->dims[0];
	d[1] = c;
	memcpy(d + 2, img, (size_t)ni * sizeof *d);
	return 0;
}

/* N passes; the blocks gathered into the image are replicated. */
void
rule_col2im(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);

	if (x->rank == 3 && y->rank >= 3)
		rb_pass(b, x->dims[0], 0, 0, T_OUT(n, 0), 0);
}

/* ---- CenterCropPad: X, shape (for axes) -> X with those dims resized ---- */

/* The axes CenterCropPad resizes, as a mask over rank r: 0, or 1 when
 * malformed; *cnt is how many (shape's length must be that). */
static int
crop_axes(const ir_node *n, int32_t r, uint8_t *mask, int32_t *cnt)
{
	const int64_t *av;
	size_t na = ir_attr_ints(n, "axes", &av);

	if (!ir_attr(n, "axes")) {
		memset(mask, 1, MAX_RANK);
		*cnt = r;
		return 0;
	}
	*cnt = (int32_t)na;
	return na > MAX_RANK || axes_mask(av, (int32_t)na, r, mask, 0);
}

int
infer_centercroppad(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	ir_dim sz[MAX_RANK];
	uint8_t mask[MAX_RANK];
	int32_t na, ns;
	int rc;

	if ((rc = need_int_operand(g, n, 1, "shape", 1)))
		return rc;
	if (!x || !y || !has_rank(x))
		return dtype_only(y, x);
	if (crop_axes(n, x->rank, mask, &na))
		return node_error(g, n, "axes do not fit rank %d", (int)x->rank);
	int st = dim_list(g, n, NULL, 1, sz, &ns);
	if (st == L_KNOWN && ns != na)
		return node_error(g, n, "shape has %d entries for %d axes", (int)ns, (int)na);
	ir_dim *d = set_shape(g, y, x->dtype, x->rank);
	if (!d)
		return nomem(g);
	/* shape's entries follow the axes attribute's order */
	const int64_t *av;
	int has = ir_attr(n, "axes") != NULL;
	ir_attr_ints(n, "axes", &av);
	memcpy(d, x->dims, (size_t)x->rank * sizeof *d);
	for (int32_t k = 0; k < na; k++) {
		int a = has ? norm_axis(av[k], x->rank) : k;
		d[a] = st == L_KNOWN ? sz[k] : ir_unknown();
	}
	return 0;
}

/* Dims not cropped or padded pass. */
void
rule_centercroppad(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	uint8_t mask[MAX_RANK];
	int32_t na;

	if (!has_rank(x) || y->rank != x->rank || crop_axes(n, x->rank, mask, &na))
		return;
	for (int32_t i = 0; i < x->rank; i++)
		if (!mask[i])
			rb_pass(b, x->dims[i], 0, (uint32_t)i, T_OUT(n, 0), (uint32_t)i);
}
