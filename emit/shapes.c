/* Shape values in rank models: one rule.
 * A tensor that carries shape information holds on every rank the value it
 * holds in the source: the global sizes. Shape and Size of a split tensor
 * multiply each split dim back by its split factor, so whatever arithmetic
 * follows is the source's own. Only where a shape value creates or
 * reshapes data (Reshape, Expand, ConstantOfShape, Split sizes, Resize
 * sizes, TopK's k, the repeats of a Tile that broadcasts a dim of size 1)
 * is it made local: each element that sizes a split
 * result dim is divided by that dim's split factor, from the plan's
 * sharding of the result. Slice bounds are divided the same way: a Slice
 * keeps a split dim only whole or as one of equal pieces split within,
 * where the local bounds are the global ones over the factor. Pad bounds,
 * Tile's other repeats and Range bounds address dims their rules keep
 * whole (Range's result is never split), so they stay global.
 * requires: a materialised plan, a rank_ctx
 * provides: emit_shape_read (a global Shape/Size), emit_local_sizes (a
 *   local sizes operand), emit_local_attrs (the same in attributes of old
 *   opsets: Split's sizes, Slice's bounds) */
#include <string.h>

#include "lower_impl.h"

/* How the elements of a sizes operand relate to its node's result dims. */
enum {
	SZ_NONE,    /* not a sizes operand */
	SZ_PLAIN,   /* element e sizes result dim e */
	SZ_RESHAPE, /* as PLAIN; 0 (copy) and -1 (infer) are kept */
	SZ_EXPAND,  /* aligned right on the result; 1 (as the input) is kept */
	SZ_SPLIT,   /* element e sizes result e's dim `axis` */
	SZ_AXIS,    /* one element: result 0's dim `axis` (TopK's k) */
	SZ_AXES,    /* element e sizes result dim axes[e] (Resize sizes with axes) */
	SZ_SLICE,   /* element e bounds result dim axes[e] (Slice starts and ends:
	             * whole dims, or one of equal pieces, split within) */
};

static int
sizes_kind(const ir_graph *g, const ir_node *n, uint32_t j)
{
	switch (n->op) {
	case OP_Reshape: return j == 1 ? SZ_RESHAPE : SZ_NONE;
	case OP_Expand: return j == 1 ? SZ_EXPAND : SZ_NONE;
	case OP_Tile: return j == 1 ? SZ_EXPAND : SZ_NONE; /* one per dim; 1 kept */
	case OP_ConstantOfShape: return j == 0 ? SZ_PLAIN : SZ_NONE;
	case OP_Split: return j == 1 ? SZ_SPLIT : SZ_NONE;
	case OP_TopK: return j == 1 ? SZ_AXIS : SZ_NONE;
	case OP_Slice: return j == 1 || j == 2 ? SZ_SLICE : SZ_NONE;
	case OP_Resize:
		if (j != 3)
			return SZ_NONE;
		return g->opset >= 18 && ir_attr(n, "axes") ? SZ_AXES : SZ_PLAIN;
	default: return SZ_NONE;
	}
}

/* Split blocks of dim d of value v as produced (1 when whole). */
static int64_t
blocks(rank_ctx *k, uint32_t v, int32_t d)
{
	const prop_shard *s;

	if (v == IR_NONE)
		return 1;
	s = &k->p->have[v];
	if (d < 0 || d >= s->rank || !s->dims[d].n)
		return 1;
	return prop_axes_size(k->mesh, s->dims[d].ax, s->dims[d].n);
}

/* The padded split of dim d of value v as produced, or NULL (not padded). */
static const prop_dim *
padded_dim(rank_ctx *k, uint32_t v, int32_t d)
{
	const prop_shard *s = v == IR_NONE ? NULL : &k->p->have[v];

	return s && d >= 0 && d < s->rank && prop_is_padded(&s->dims[d]) ? &s->dims[d] : NULL;
}

/* The divisor of each of the ne elements of sizes operand j of node i
 * (kind sz), from the plan's sharding of the results they size; and in
 * pu[e] and pp[e] (pu not NULL) the padding granularity and pieces of a
 * padded result dim, whose local size is its pieces' padded blocks
 * (prop_padded_local), else 0 and 1. */
static void
divisors(rank_ctx *k, uint32_t i, int sz, int32_t ne, int64_t *f, int64_t *pu, int64_t *pp)
{
	const ir_node *n = &k->g->nodes[i];
	uint32_t y = ir_out(k->g, n, 0);
	int32_t yr = y == IR_NONE ? -1 : k->g->values[y].rank;
	int64_t axis = ir_attr_int(n, "axis", sz == SZ_AXIS ? -1 : 0), sax[IR_MAX_ELEMS];
	const int64_t *axes = NULL;
	size_t na = sz == SZ_AXES ? ir_attr_ints(n, "axes", &axes) : 0;

	if (sz == SZ_SLICE) { /* Slice's axes: an operand (an attribute before 10), or 0.. */
		uint32_t av = ir_in(k->g, n, 3);
		const ir_value *a = av == IR_NONE ? NULL : &k->g->values[av];
		na = k->g->opset < 10 ? ir_attr_ints(n, "axes", &axes) : 0;
		if (a && a->elems && a->n_elems <= IR_MAX_ELEMS) {
			for (int32_t e = 0; e < a->n_elems; e++)
				sax[e] = ir_is_const(a->elems[e]) ? a->elems[e].c : IR_MAX_ELEMS;
			axes = sax;
			na = (size_t)a->n_elems;
		} else if (a) {
			for (int32_t e = 0; e < ne; e++)
				f[e] = 1; /* axes unknown: the rule split no sliced dim */
			return;
		}
		if (!axes)
			for (int32_t e = 0; e < ne && e < IR_MAX_ELEMS; e++)
				sax[e] = e;
		if (!axes)
			axes = sax, na = (size_t)ne;
		sz = SZ_AXES;
	}

	if (axis < 0)
		axis += yr;
	for (int32_t e = 0; e < ne; e++) {
		int64_t d = sz == SZ_EXPAND  ? yr - ne + e
		            : sz == SZ_AXIS  ? axis
		            : sz == SZ_SPLIT ? axis
		            : sz == SZ_AXES  ? ((size_t)e < na ? axes[e] : -1)
		                             : e;
		if (sz == SZ_AXES && d < 0)
			d += yr;
		if (sz == SZ_SPLIT)
			y = (uint32_t)e < n->n_out ? ir_out(k->g, n, (uint32_t)e) : IR_NONE;
		f[e] = blocks(k, y, (int32_t)d);
		const prop_dim *pd = pu ? padded_dim(k, y, (int32_t)d) : NULL;
		if (pu)
			pu[e] = pd ? pd->pad : 0, pp[e] = pd ? prop_pieces(pd) : 1;
	}
}

/* Whether element v keeps its value whatever the split (Reshape's 0 and
 * -1, Expand's 1); -1 when not known before run time. */
static int
is_kept(int sz, ir_dim v)
{
	if (!ir_is_const(v))
		return ir_is_known(v) ? 0 : -1;
	return (sz == SZ_RESHAPE && v.c <= 0) || (sz == SZ_EXPAND && v.c == 1);
}

static int
int_tensor(rank_ctx *k, const char *name, int32_t dtype, int scalar, const int64_t *v, int32_t n)
{
	int64_t dims[1] = {n};
	int32_t v32[IR_MAX_ELEMS];

	if (dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
		for (int32_t e = 0; e < n; e++)
			v32[e] = (int32_t)v[e];
		return emit_tensor_inline(k, name, dtype, dims, scalar ? 0 : 1, v32, (size_t)n * 4);
	}
	return emit_tensor_inline(k, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims,
	                          scalar ? 0 : 1, v, (size_t)n * 8);
}

/* *out = OP(in, base/CS): an elementwise op with the integer constant
 * vals[0..ne) of x's type (named base/CS; the result base/RS). Returns
 * k->rc. */
static int
binop_const(rank_ctx *k, const char *op, const char *in, const char *base, const char *cs,
            const char *rs, const ir_value *x, const int64_t *vals, int32_t ne, const char **out)
{
	const char *cn = emit_str(k, "%s/%s", base, cs), *rn = emit_str(k, "%s/%s", base, rs);
	const char *ins[2] = {in, cn};

	if (k->rc || int_tensor(k, cn, x->dtype, x->rank == 0, vals, ne) ||
	    emit_node(k, op, "", rn, ins, 2, &rn, 1, NULL, 0))
		return k->rc;
	*out = rn;
	return 0;
}

int
emit_local_sizes(rank_ctx *k, uint32_t i, uint32_t j, const char **name)
{
	ir_graph *g = k->g;
	const ir_node *n = &g->nodes[i];
	uint32_t sv = ir_in(g, n, j);
	int sz = sizes_kind(g, n, j);
	int64_t f[IR_MAX_ELEMS], lit[IR_MAX_ELEMS], pu[IR_MAX_ELEMS] = {0}, pp[IR_MAX_ELEMS];
	int any = 0, literal = 1, guard = 0, padded = 0, pieced = 0;
	const char *in = *name;

	if (sz == SZ_NONE || sv == IR_NONE)
		return 0;
	const ir_value *x = &g->values[sv];
	int32_t ne = x->rank == 0                              ? 1
	             : x->rank == 1 && ir_is_const(x->dims[0]) ? (int32_t)x->dims[0].c
	             : x->elems                                ? x->n_elems
	                                                       : -1;
	if (ne < 0 || ne > IR_MAX_ELEMS)
		return 0; /* the result's rank is unknown: never split */
	divisors(k, i, sz, ne, f, pu, pp);
	for (int32_t e = 0; e < ne; e++) {
		ir_dim v = x->elems && x->n_elems == ne ? x->elems[e] : ir_unknown();
		int kept = is_kept(sz, v);
		if (kept > 0 || f[e] == 1)
			f[e] = 1, pu[e] = 0, pp[e] = 1;
		padded |= pu[e] > 0;
		pieced |= pp[e] > 1;
		any |= f[e] > 1;
		guard |= f[e] > 1 && kept < 0;
		literal &= ir_is_const(v);
		lit[e] = ir_is_const(v) ? v.c : 0;
		if (pu[e]) { /* a padded dim's blocks (its global size is a constant) */
			lit[e] = pp[e] * prop_pad_block(lit[e] / pp[e], pu[e], f[e]);
			continue;
		}
		if (literal && f[e] > 1 && lit[e] % f[e] && sz != SZ_SLICE)
			return emit_fail(
			        k, ONNXSHARD_EFAIL,
			        "%s: node '%s' (%s): size %lld of a result split %lld ways "
			        "(a bug: propagation splits only dims that divide)",
			        g->model->path, ir_cstr(g, n->name), ir_cstr(g, n->op_type),
			        (long long)lit[e], (long long)f[e]);
		lit[e] /= f[e];
	}
	if (!any)
		return 0;
	const char *base = emit_str(k, "onnxshard/local%u_%u", i, j);
	if (!base)
		return k->rc;
	if (literal) { /* every element known: the local sizes as a constant */
		*name = base;
		return int_tensor(k, base, x->dtype, x->rank == 0, lit, ne);
	}
	/* at run time: in / f, elements that may be kept guarded; a padded
	 * element e in p pieces, ((in / p) + f u - 1) / (f u) * u p */
	const char *num = in, *div;
	int64_t add[IR_MAX_ELEMS], unit[IR_MAX_ELEMS];
	for (int32_t e = 0; e < ne; e++) {
		add[e] = pu[e] ? f[e] * pu[e] - 1 : 0;
		unit[e] = pu[e] ? pu[e] : 1;
		f[e] *= unit[e];
		unit[e] *= pp[e];
	}
	if ((pieced && binop_const(k, "Div", num, base, "p", "piece", x, pp, ne, &num)) ||
	    (padded && binop_const(k, "Add", num, base, "a", "sum", x, add, ne, &num)) ||
	    binop_const(k, "Div", num, base, "f", "div", x, f, ne, &div) ||
	    (padded && binop_const(k, "Mul", div, base, "u", "units", x, unit, ne, &div)))
		return k->rc;
	*name = div;
	if (!guard)
		return 0;
	int64_t c = sz == SZ_RESHAPE ? 0 : 1;
	const char *cn = emit_str(k, "%s/c", base), *out = emit_str(k, "%s/guard", base);
	if (k->rc || int_tensor(k, cn, x->dtype, 1, &c, 1))
		return k->rc;
	*name = out;
	if (sz == SZ_EXPAND) { /* 1 stays 1: max(in / f, 1) */
		const char *m_in[2] = {div, cn};
		return emit_node(k, "Max", "", out, m_in, 2, &out, 1, NULL, 0);
	}
	/* Reshape: 0 and -1 stay: where(in > 0, in / f, in) */
	const char *gt = emit_str(k, "%s/pos", base);
	const char *g_in[2] = {in, cn}, *w_in[3] = {gt, div, in};
	if (emit_node(k, "Greater", "", gt, g_in, 2, &gt, 1, NULL, 0))
		return k->rc;
	return emit_node(k, "Where", "", out, w_in, 3, &out, 1, NULL, 0);
}

/* Attribute name of node copy replaced by ints v[0..n). */
static int
replace_ints(rank_ctx *k, Onnx__NodeProto *copy, const char *name, const int64_t *v, size_t n)
{
	Onnx__AttributeProto **at = emit_alloc(k, (copy->n_attribute + 1) * sizeof *at);
	Onnx__AttributeProto *a = emit_alloc(k, sizeof *a);
	int64_t *iv = emit_alloc(k, (n + 1) * sizeof *iv);

	if (!at || !a || !iv)
		return k->rc;
	memcpy(iv, v, n * sizeof *iv);
	for (size_t j = 0; j < copy->n_attribute; j++) {
		at[j] = copy->attribute[j];
		if (at[j]->name && !strcmp(at[j]->name, name)) {
			*a = *at[j];
			a->ints = iv;
			at[j] = a;
		}
	}
	copy->attribute = at;
	return 0;
}

/* Attributes that count the heads or features of one dim: divided by that
 * dim's blocks (a result's, res, or operand t's; dim -1: the last). */
static const struct {
	int op;
	const char *name;
	int res;
	uint32_t t;
	int32_t dim;
} count_attrs[] = {
        {OP_MsMatMulNBits, "N", 1, 0, -1},
        {OP_MsMatMulNBits, "K", 0, 1, 1}, /* B's k blocks */
        {OP_MsGroupQueryAttention, "num_heads", 1, 0, 2},
        {OP_MsGroupQueryAttention, "kv_num_heads", 1, 0, 2},
        {OP_MsMultiHeadAttention, "num_heads", 1, 0, 2},
        {OP_MsAttention, "num_heads", 1, 0, 2},
        {OP_MsAttention, "qkv_hidden_sizes", 1, 0, 2},
        {OP_MsRotaryEmbedding, "num_heads", 1, 0, 2},
};

/* Attribute name of node copy (an int or ints) divided by f. */
static int
divide_attr(rank_ctx *k, Onnx__NodeProto *copy, const char *name, int64_t f)
{
	for (size_t j = 0; j < copy->n_attribute; j++) {
		const Onnx__AttributeProto *at = copy->attribute[j];
		int64_t v[IR_MAX_ELEMS];
		if (!at->name || strcmp(at->name, name))
			continue;
		if (at->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) {
			Onnx__AttributeProto **all = emit_alloc(k, copy->n_attribute * sizeof *all);
			Onnx__AttributeProto *a = emit_alloc(k, sizeof *a);
			if (!all || !a)
				return k->rc;
			memcpy(all, copy->attribute, copy->n_attribute * sizeof *all);
			*a = *at;
			a->i = at->i / f;
			all[j] = a;
			copy->attribute = all;
			return 0;
		}
		if (at->n_ints > IR_MAX_ELEMS)
			return 0;
		for (size_t e = 0; e < at->n_ints; e++)
			v[e] = at->ints[e] / f;
		return replace_ints(k, copy, name, v, at->n_ints);
	}
	return 0;
}

int
emit_local_attrs(rank_ctx *k, uint32_t i, Onnx__NodeProto *copy)
{
	const ir_node *n = &k->g->nodes[i];
	static const char *const slice[2] = {"starts", "ends"};
	int rc = 0;

	for (size_t j = 0; j < sizeof count_attrs / sizeof count_attrs[0] && !rc; j++) {
		if (count_attrs[j].op != n->op)
			continue;
		uint32_t v = count_attrs[j].res ? ir_out(k->g, n, count_attrs[j].t)
		                                : ir_in(k->g, n, count_attrs[j].t);
		int32_t d = count_attrs[j].dim, r = v == IR_NONE ? 0 : k->g->values[v].rank;
		if (n->op == OP_MsRotaryEmbedding && r == 4)
			d = 1; /* [B, H, S, D] */
		int64_t f = blocks(k, v, d < 0 ? r + d : d);
		if (f > 1)
			rc = divide_attr(k, copy, count_attrs[j].name, f);
	}

	for (int j = 0; j < 2 && !rc; j++) {
		const char *name = n->op == OP_Split ? "split" : slice[j];
		const int64_t *v;
		size_t nv = ir_attr_ints(n, name, &v);
		int64_t f[IR_MAX_ELEMS], loc[IR_MAX_ELEMS], pu[IR_MAX_ELEMS], pp[IR_MAX_ELEMS];
		int any = 0;
		if ((n->op != OP_Split || j) && (n->op != OP_Slice || k->g->opset >= 10))
			break;
		if (!v || !nv || nv > IR_MAX_ELEMS)
			continue;
		divisors(k, i, n->op == OP_Split ? SZ_SPLIT : SZ_SLICE, (int32_t)nv, f, pu, pp);
		for (size_t e = 0; e < nv; e++) {
			/* a padded piece (Split's): its padded block */
			loc[e] = pu[e] && f[e] > 1
			                 ? pp[e] * prop_pad_block(v[e] / pp[e], pu[e], f[e])
			                 : v[e] / f[e];
			any |= f[e] > 1;
		}
		if (any)
			rc = replace_ints(k, copy, name, loc, nv);
	}
	return rc;
}

int
emit_shape_read(rank_ctx *k, uint32_t i, const char *global, const char **local)
{
	ir_graph *g = k->g;
	const ir_node *n = &g->nodes[i];
	uint32_t x = ir_in(g, n, 0);
	int64_t f[IR_MAX_ELEMS];
	int32_t len = 0;

	*local = global;
	if (x == IR_NONE || g->values[x].rank <= 0 || g->values[x].rank > IR_MAX_ELEMS)
		return 0;
	int32_t r = g->values[x].rank, start = 0, count = r;
	if (n->op == OP_Shape)
		count = ir_shape_range(g, n, r, &start);
	int64_t prod = 1;
	for (int32_t d = 0; d < r; d++) {
		int64_t b = blocks(k, x, d);
		prod *= b;
		if (d >= start && d < start + count)
			f[len++] = b;
	}
	if (prod == 1)
		return 0;
	if (n->op == OP_Size) {
		f[0] = prod;
		len = 1;
	}
	const char *fn = emit_str(k, "onnxshard/global%u/f", i);
	if (!(*local = emit_str(k, "%s/onnxshard_local", global)) || !fn)
		return k->rc;
	return int_tensor(k, fn, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, n->op == OP_Size, f, len);
}

/* What a Shape (node i) of a tensor with padded dims adds to its local
 * sizes times their blocks: size - padded size on each padded dim it reads
 * (a constant), 0 elsewhere, into off[0..*len). Returns whether any is
 * padded. (A Size of one reads it unpadded: prop_materialize.) */
static int
shape_offsets(rank_ctx *k, uint32_t i, int64_t *off, int32_t *len)
{
	const ir_node *n = &k->g->nodes[i];
	uint32_t x = ir_in(k->g, n, 0);
	int any = 0;

	*len = 0;
	if (n->op != OP_Shape || x == IR_NONE || k->g->values[x].rank <= 0 ||
	    k->g->values[x].rank > IR_MAX_ELEMS)
		return 0;
	int32_t r = k->g->values[x].rank, start = 0, count = ir_shape_range(k->g, n, r, &start);
	for (int32_t d = start; d < start + count; d++) {
		const prop_dim *pd = padded_dim(k, x, d);
		int64_t b = blocks(k, x, d);
		ir_dim size = k->g->values[x].dims[d];
		off[(*len)++] =
		        pd && ir_is_const(size) ? size.c - prop_padded_local(size.c, pd, b) * b : 0;
		any |= off[*len - 1] != 0;
	}
	return any;
}

int
emit_shape_scale(rank_ctx *k, uint32_t i, const char *local, const char *global)
{
	const char *fn = emit_str(k, "onnxshard/global%u/f", i);
	const char *in[2] = {local, fn};
	int64_t off[IR_MAX_ELEMS];
	int32_t len;

	if (!shape_offsets(k, i, off, &len))
		return emit_node(k, "Mul", "", emit_str(k, "onnxshard/global%u", i), in, 2, &global,
		                 1, NULL, 0);
	/* padded dims: local block times blocks, less the padding */
	const char *on = emit_str(k, "onnxshard/global%u/off", i),
	           *mul = emit_str(k, "onnxshard/global%u/padded", i);
	const char *a_in[2] = {mul, on};
	if (k->rc || int_tensor(k, on, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 0, off, len) ||
	    emit_node(k, "Mul", "", mul, in, 2, &mul, 1, NULL, 0))
		return k->rc;
	return emit_node(k, "Add", "", emit_str(k, "onnxshard/global%u", i), a_in, 2, &global, 1,
	                 NULL, 0);
}
