/* Propagation of shardings through op rules to a fixed point.
 * requires: a lifted graph with shapes, a mesh, seeds from tactics
 * provides: want[v] for every value: the sharding propagation settled on
 *   (never partial). Shardings only grow (an axis is appended to a dim that
 *   the value does not use elsewhere), so the loop ends.
 *
 * Padding. A split may be padded (prop_dim.pad: a constant dim D held as
 * blocks of ceil(D / (shards * u)) * u, u its granularity), only where a
 * seed allowed it (prop_seed_padded). The contract that keeps a padded plan
 * exact: the padded positions of every computed value hold finite values,
 * and nothing reads them into the true positions. So a padded factor
 * passes a node only where that holds (pad_passes): elementwise ops that
 * keep finite values finite (a Div or Pow only with the padded factor
 * absent from its divisor or exponent), MatMul and Gemm on their output
 * dims, Reshape (a unit of the dim whole: u times the minor factors),
 * Transpose, Softmax and normalisations over other dims, a Gather's pass
 * dims, Slice, Concat and Split along other dims; a contraction over a padded dim (MatMul's K) only
 * where an operand holding it is an initializer, which emission writes with zeros in the padding (0
 * times a finite value adds nothing); a Gather's table rows, which the ids (< D) never read past D.
 * Everywhere else the node computes that factor whole: the padding is cut off first (an AllGather
 * and a Slice to D), as it is before every graph output. A padded dim
 * never grows (its axes are set once) and is never a graph input's. A dim
 * in constant pieces (a fused QKV projection) is padded piece by piece:
 * each piece (D / pieces) in padded blocks, a rank holding its block of
 * every piece; it passes as a single factor does (MatMul's N, the Add of
 * a bias in the same pieces), and the factor within the pieces takes the
 * padding where a node splits the dim into them (a Split into the pieces,
 * a Reshape to [pieces, ...]): each piece is then a plain padded dim. A
 * Slice never cuts a padded factor out of a compound dim (its bounds
 * would fall between the padding), nor a lookup reads padded pieces. */
#include <string.h>

#include "prop.h"

static prop_dim *
new_dims(ir_graph *g, prop_plan *p, int32_t rank)
{
	return shd_arena_zalloc(g->ctx, &p->arena,
	                        (size_t)(rank > 0 ? rank : 1) * sizeof(prop_dim));
}

int
prop_plan_init(ir_graph *g, const prop_mesh *m, prop_plan *p)
{
	memset(p, 0, sizeof *p);
	p->mesh = m;
	p->want = shd_arena_zalloc(g->ctx, &p->arena, (g->n_values + 1) * sizeof *p->want);
	p->have = shd_arena_zalloc(g->ctx, &p->arena, (g->n_values + 1) * sizeof *p->have);
	p->fixed = shd_arena_zalloc(g->ctx, &p->arena, g->n_values + 1);
	p->nosym = shd_arena_zalloc(g->ctx, &p->arena, g->n_values + 1);
	p->gather_out = shd_arena_zalloc(g->ctx, &p->arena, g->n_outputs + 1);
	if (!p->want || !p->have || !p->fixed || !p->nosym || !p->gather_out)
		goto nomem;
	for (uint32_t v = 0; v < g->n_values; v++) {
		int32_t r = g->values[v].rank;
		p->want[v].rank = r;
		p->have[v].rank = r;
		if (!(p->want[v].dims = new_dims(g, p, r)) ||
		    !(p->have[v].dims = new_dims(g, p, r)))
			goto nomem;
	}
	return 0;
nomem: /* nothing for the caller to free */
	prop_plan_free(g, p);
	return shd_nomem(g->ctx);
}

void
prop_plan_free(ir_graph *g, prop_plan *p)
{
	shd_free(g->ctx, p->reshards, p->cap_reshards * sizeof *p->reshards);
	shd_free(g->ctx, p->steps, p->cap_steps * sizeof *p->steps);
	shd_free(g->ctx, p->notes, p->cap_notes * sizeof *p->notes);
	shd_arena_free(g->ctx, &p->arena);
	memset(p, 0, sizeof *p);
}

/* Whether size is divisible into n blocks (unknown sizes are assumed to
 * be: the deployer binds them; --dim makes the check exact). */
static int
divides(ir_graph *g, const prop_plan *p, ir_dim size, int64_t n)
{
	int64_t v;

	if (n == 1)
		return 1;
	if (ir_dim_eval(g, size, p->bind, p->bind_ud, &v))
		return ir_is_known(size) && !ir_is_const(size);
	return v % n == 0;
}

/* Whether a dim of size `size` laid out as d (its pieces) splits into
 * blocks over n more ranks. */
static int
block_divides(ir_graph *g, const prop_plan *p, ir_dim size, const prop_dim *d, int64_t n)
{
	if (!d->sym)
		return divides(g, p, size, prop_pieces(d) * n);
	ir_dim pc = {0, d->sym}, q = ir_floordiv(g, size, pc);
	return ir_is_known(q) && ir_dim_eq(ir_mul(g, q, pc), size) && divides(g, p, q, n);
}

/* Whether a dim of size `size` laid out as d splits into blocks over n
 * more ranks: equal blocks, or padded ones of whole units (a constant dim,
 * no pieces). */
static int
fits(ir_graph *g, const prop_plan *p, ir_dim size, const prop_dim *d, int64_t n)
{
	if (!d->pad)
		return block_divides(g, p, size, d, n);
	int64_t pc = prop_pieces(d);
	return ir_is_const(size) && size.c > 0 && !d->sym && size.c % pc == 0 &&
	       size.c / pc % d->pad == 0;
}

/* d (a split of a dim of size `size` over n shards) without padding where
 * its pieces' blocks divide. */
static void
drop_needless_pad(ir_dim size, prop_dim *d, int64_t n)
{
	if (d->pad && ir_is_const(size) && size.c % prop_pieces(d) == 0 &&
	    size.c / prop_pieces(d) % (n * d->pad) == 0)
		d->pad = 0;
}

/* Whether sharding s keeps the bytes of value v whole: always, but for a
 * 4-bit dtype (two elements a byte along the flattened tensor, emission
 * copies its blocks as bytes): unsplit, or every block's innermost extent
 * even (a row of whole bytes). */
static int
keeps_bytes(ir_graph *g, const prop_plan *p, const ir_value *v, const prop_shard *s)
{
	if (onnx_dtype_bits(v->dtype) != 4 || v->rank < 1 || s->rank != v->rank ||
	    !prop_shard_axes(s))
		return 1;
	const prop_dim *x = &s->dims[v->rank - 1];
	return block_divides(g, p, v->dims[v->rank - 1], x,
	                     2 * prop_axes_size(p->mesh, x->ax, x->n));
}

int
prop_seed(ir_graph *g, prop_plan *p, uint32_t v, int32_t d, uint8_t a, int pieces, int fix)
{
	prop_shard *s = &p->want[v];

	if (d < 0 || d >= s->rank || (prop_shard_axes(s) & (1u << a)) ||
	    s->dims[d].n >= PROP_MAX_AXES || pieces < 1 || pieces > 255)
		return 1;
	prop_dim nd = s->dims[d];
	if (nd.n && (prop_pieces(&nd) != pieces || nd.pad))
		return 1;
	nd.pieces = (uint16_t)(pieces > 1 ? pieces : 0);
	nd.ax[nd.n++] = a;
	if (!divides(g, p, g->values[v].dims[d], pieces * prop_axes_size(p->mesh, nd.ax, nd.n)))
		return 1;
	prop_dim old = s->dims[d];
	s->dims[d] = nd;
	if (!keeps_bytes(g, p, &g->values[v], s)) {
		s->dims[d] = old;
		return 2;
	}
	p->fixed[v] |= (uint8_t)(fix != 0);
	return 0;
}

int
prop_seed_padded(ir_graph *g, prop_plan *p, uint32_t v, int32_t d, uint8_t a, int pieces, int fix,
                 int64_t unit)
{
	const ir_value *x = &g->values[v];
	prop_shard *s = &p->want[v];

	/* equal blocks where they are whole units (prop_seed), else padded */
	if (!unit || d < 0 || d >= s->rank || !ir_is_const(x->dims[d]) || pieces < 1 ||
	    x->dims[d].c % (prop_axes_size(p->mesh, s->dims[d].ax, s->dims[d].n) *
	                    p->mesh->sizes[a] * unit * pieces) ==
	            0)
		return prop_seed(g, p, v, d, a, pieces, fix);
	if (x->kind != IR_V_INIT || pieces > 255 || s->dims[d].n ||
	    (prop_shard_axes(s) & (1u << a)) || unit > 65535 || x->dims[d].c % pieces ||
	    x->dims[d].c / pieces % unit || onnx_dtype_bits(x->dtype) == 4)
		return 1;
	prop_dim nd = {0};
	nd.n = 1;
	nd.ax[0] = a;
	nd.pieces = (uint16_t)(pieces > 1 ? pieces : 0);
	nd.pad = (uint16_t)unit;
	drop_needless_pad(x->dims[d], &nd, p->mesh->sizes[a]);
	s->dims[d] = nd;
	p->fixed[v] |= (uint8_t)(fix != 0);
	return 0;
}

void
prop_seed_replicated(prop_plan *p, uint32_t v)
{
	prop_shard *s = &p->want[v];

	for (int32_t d = 0; d < s->rank; d++)
		s->dims[d].n = 0;
	p->fixed[v] = 1;
}

/* ---- factor assignment ---- */

uint32_t prop_tensor_value(const ir_graph *g, const ir_node *n, uint32_t t);

uint32_t
prop_tensor_value(const ir_graph *g, const ir_node *n, uint32_t t)
{
	return t < n->n_in ? ir_in(g, n, t) : ir_out(g, n, t - n->n_in);
}

/* Whether b extends a: the same layout and a's axes first. */
static int
is_prefix(const prop_dim *a, const prop_dim *b)
{
	/* a plain split over the axes that split b's run of pieces is b's
	 * layout with its pieces whole */
	int runs = !prop_is_pieced(a) && !a->pad && a->n <= b->npc;
	return a->n <= b->n && memcmp(a->ax, b->ax, a->n) == 0 &&
	       (a->n == 0 || runs || prop_same_pieces(a, b));
}

/* Product of the sizes of factors f[0..k). */
static ir_dim
majors_dim(ir_graph *g, const ir_rule *r, const uint32_t *f, uint32_t k)
{
	ir_dim d = ir_const(1);

	for (uint32_t j = 0; j < k; j++)
		d = ir_mul(g, d, r->factors[f[j]].size);
	return d;
}

/* Whether factor f of tensor t of node n's rule r appears in one of its dims. */
static int
has_factor(const ir_rule *r, uint32_t t, int32_t rank, uint32_t f)
{
	for (int32_t d = 0; d < rank; d++) {
		const uint32_t *fs;
		uint32_t k = ir_rule_dim(r, t, (uint32_t)d, &fs);
		for (uint32_t j = 0; j < k; j++)
			if (fs[j] == f)
				return 1;
	}
	return 0;
}

/* Whether factor f of tensor t (of rank `rank`) of rule r is one of several
 * factors of one of its dims. */
static int
in_compound(const ir_rule *r, uint32_t t, int32_t rank, uint32_t f)
{
	for (int32_t d = 0; d < rank; d++) {
		const uint32_t *fs;
		uint32_t k = ir_rule_dim(r, t, (uint32_t)d, &fs);
		for (uint32_t j = 0; j < k && k > 1; j++)
			if (fs[j] == f)
				return 1;
	}
	return 0;
}

/* Whether node ni may compute factor f of its rule r in padded blocks (see
 * the contract at the top): the padding stays finite and out of the true
 * positions. Not sure: no. */
static int
pad_passes(const ir_graph *g, uint32_t ni, const ir_rule *r, uint32_t f)
{
	const ir_node *n = &g->nodes[ni];
	uint32_t in1 = n->n_in > 1 ? ir_in(g, n, 1) : IR_NONE;

	if (r->factors[f].kind == IR_F_REPL)
		return 0;
	if (r->factors[f].kind == IR_F_REDUCE) {
		if (n->op == OP_Gather) /* the table's rows: ids < D never read the padding */
			return !in_compound(r, 0, g->values[ir_in(g, n, 0)].rank, f);
		if (n->op != OP_MatMul && n->op != OP_Gemm)
			return 0;
		/* a contraction: exact when an operand is zero in the padding */
		for (uint32_t t = 0; t < 2 && t < n->n_in; t++) {
			uint32_t v = ir_in(g, n, t);
			if (v != IR_NONE && g->values[v].kind == IR_V_INIT &&
			    has_factor(r, t, g->values[v].rank, f))
				return 1;
		}
		return 0;
	}
	switch (n->op) {
	case OP_MatMul:
	case OP_Gemm:
	case OP_Add:
	case OP_Sub:
	case OP_Mul:
	case OP_Where:
	case OP_Relu:
	case OP_Gelu:
	case OP_MsGelu:
	case OP_MsFastGelu:
	case OP_MsBiasGelu:
	case OP_Sigmoid:
	case OP_Tanh:
	case OP_Erf:
	case OP_Neg:
	case OP_Identity:
	case OP_Dropout:
	case OP_Cast:
	case OP_Reshape:
	case OP_Transpose:
	case OP_Squeeze:
	case OP_Unsqueeze:
	case OP_Softmax:
	case OP_LayerNormalization:
	case OP_MsSimplifiedLayerNormalization:
	case OP_Gather:
	/* along another dim than the one joined or split (whole, or its
	 * pieces: each a padded block), or sliced (whole: a Slice's bounds
	 * address no padded factor within a compound dim) */
	case OP_Concat:
	case OP_Split: return 1;
	case OP_Slice: return !in_compound(r, 0, g->values[ir_in(g, n, 0)].rank, f);
	case OP_Div:
	case OP_Pow: /* a zero divisor or a padded exponent could make the padding infinite */
		return in1 != IR_NONE && !has_factor(r, 1, g->values[in1].rank, f);
	default: return 0;
	}
}

/* Product of the constant sizes of factors f[0..k); 0 when one is not constant. */
static int64_t
majors(const ir_rule *r, const uint32_t *f, uint32_t k)
{
	int64_t p = 1;

	for (uint32_t j = 0; j < k; j++) {
		if (!ir_is_const(r->factors[f[j]].size))
			return 0;
		p *= r->factors[f[j]].size.c;
	}
	return p;
}

/* Whether the factors f[0..j) make the pieces of dim layout d, factor
 * f[j] (not a size 1) holding the split within them. */
static int
makes_pieces(ir_graph *g, const ir_rule *r, const uint32_t *f, uint32_t j, const prop_dim *d)
{
	ir_dim sz = r->factors[f[j]].size;

	if (ir_is_const(sz) && sz.c == 1)
		return 0;
	if (d->sym)
		return ir_dim_eq(majors_dim(g, r, f, j), (ir_dim){0, d->sym});
	return majors(r, f, j) == prop_pieces(d);
}

/* Mesh axes per factor of node n's rule r, from the shardings sh[] of its
 * values; results first when results_first. Each axis serves one factor;
 * a factor takes only axes whose product divides its size. */
void prop_assign(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r,
                 const prop_shard *sh, int results_first, prop_dim *fa);

void
prop_assign(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r, const prop_shard *sh,
            int results_first, prop_dim *fa)
{
	const ir_node *n = &g->nodes[ni];
	uint8_t used = 0;

	memset(fa, 0, r->n_factors * sizeof *fa);
	for (uint32_t i = 0; i < r->n_tensors; i++) {
		uint32_t t = results_first ? (i + n->n_in) % r->n_tensors : i;
		uint32_t v = prop_tensor_value(g, n, t);
		if (v == IR_NONE || g->values[v].rank < 0)
			continue;
		const prop_shard *s = &sh[v];
		for (int32_t d = 0; d < s->rank; d++) {
			const uint32_t *f;
			uint32_t k;
			if (!s->dims[d].n || !(k = ir_rule_dim(r, t, (uint32_t)d, &f)))
				continue;
			/* a compound dim's split belongs to its major factor; a dim in
			 * pieces, to the first factor whose majors make the pieces
			 * (the factors after it whole) */
			prop_dim cand = s->dims[d];
			uint32_t to = f[0];
			if (prop_is_padded(&cand)) {
				/* in pieces: the factor within them (the majors make the
				 * pieces) holds each piece's padding, the pieces gone */
				uint32_t j = 0;
				if (k > 1 && prop_is_pieced(&cand)) {
					for (j = 1; j < k && !makes_pieces(g, r, f, j, &cand); j++)
						;
					if (j == k)
						continue;
					cand.pieces = 0;
				}
				/* that factor's unit: the dim's over its minors */
				int64_t minor = majors(r, f + j + 1, k - j - 1);
				to = f[j];
				if (!minor || cand.pad % minor || !pad_passes(g, ni, r, to))
					continue;
				cand.pad = (uint16_t)(cand.pad / minor);
			} else if (k > 1 && prop_is_pieced(&cand)) {
				uint32_t j = 1;
				while (j < k && !makes_pieces(g, r, f, j, &cand))
					j++;
				if (j == k)
					continue;
				to = f[j];
				cand.pieces = 0;
				cand.sym = 0;
				if (cand.npc) {
					/* the pieces' axes split the major factor, the rest
					 * the factor within the pieces */
					prop_dim maj = cand;
					maj.n = cand.npc;
					maj.npc = 0;
					cand.n = (uint8_t)(cand.n - maj.n);
					memmove(cand.ax, cand.ax + maj.n, cand.n);
					cand.npc = 0;
					if (r->factors[f[0]].kind != IR_F_REPL &&
					    is_prefix(&fa[f[0]], &maj))
						fa[f[0]] = maj;
				}
			}
			if (r->factors[to].kind == IR_F_REPL)
				continue;
			if (is_prefix(&fa[to], &cand))
				fa[to] = cand;
		}
	}
	for (uint32_t f = 0; f < r->n_factors; f++) {
		uint8_t k;
		for (k = 0; k < fa[f].n && !(used & (1u << fa[f].ax[k])); k++)
			;
		if (fa[f].pad) { /* padded: all its axes or none */
			if (k < fa[f].n || !fits(g, p, r->factors[f].size, &fa[f], 1))
				k = 0;
			else
				drop_needless_pad(r->factors[f].size, &fa[f],
				                  prop_axes_size(p->mesh, fa[f].ax, k));
		}
		while (k > 0 && !fits(g, p, r->factors[f].size, &fa[f],
		                      prop_axes_size(p->mesh, fa[f].ax, k)))
			k--;
		fa[f].n = k;
		if (!k)
			fa[f].pad = 0;
		for (k = 0; k < fa[f].n; k++)
			used |= (uint8_t)(1u << fa[f].ax[k]);
	}
}

/* A dim of factors f[0..] split on its major factor f[0] and on f[j]
 * (the factors between and after whole): with a symbolic count of pieces
 * (the majors f[0..j)), their run split over f[0]'s axes and each piece
 * over f[j]'s (prop_dim.npc). Else *out is left whole. */
static void
merged_pieces(ir_graph *g, const prop_plan *p, const ir_rule *r, const uint32_t *f, uint32_t j,
              const prop_dim *fa, uint32_t vi, prop_dim *out)
{
	const prop_dim *a = &fa[f[0]], *b = &fa[f[j]];
	ir_dim pc = majors_dim(g, r, f, j);

	if (prop_is_pieced(a) || prop_is_pieced(b) || a->pad || b->pad ||
	    a->n + b->n > PROP_MAX_AXES || ir_is_const(pc) || !ir_is_known(pc) || p->nosym[vi] ||
	    g->values[vi].kind != IR_V_NODE)
		return;
	*out = *a;
	memcpy(out->ax + a->n, b->ax, b->n);
	out->n = (uint8_t)(a->n + b->n);
	out->npc = a->n;
	out->sym = pc.ex;
}

/* Tensor t's sharding under the factor assignment (never partial). A
 * compound dim is split only through its major factor; a split that does
 * not divide the tensor's own dim (a broadcast or contradicting operand) is
 * left out. */
void prop_derive(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r, const prop_dim *fa,
                 uint32_t t, prop_shard *out);

void
prop_derive(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r, const prop_dim *fa,
            uint32_t t, prop_shard *out)
{
	uint32_t vi = prop_tensor_value(g, &g->nodes[ni], t);
	const ir_value *v = &g->values[vi];

	out->partial = 0;
	for (int32_t d = 0; d < out->rank; d++) {
		const uint32_t *f;
		uint32_t k = ir_rule_dim(r, t, (uint32_t)d, &f);
		memset(&out->dims[d], 0, sizeof out->dims[d]);
		if (!k)
			continue;
		uint32_t split = 0, which = 0;
		for (uint32_t j = 0; j < k; j++)
			if (fa[f[j]].n)
				split++, which = j;
		if (split == 2 && fa[f[0]].n) {
			prop_dim *x = &out->dims[d];
			merged_pieces(g, p, r, f, which, fa, vi, x);
			if (x->n && (d >= v->rank || !fits(g, p, v->dims[d], x,
			                                   prop_axes_size(p->mesh, x->ax, x->n))))
				memset(x, 0, sizeof *x);
			continue;
		}
		if (split != 1)
			continue;
		if (which == 0) {
			out->dims[d] = fa[f[0]];
			if (fa[f[0]].pad) {
				/* padded: this dim's unit is the factor's times its minors,
				 * and the dim must be all its factors (not a broadcast 1) */
				int64_t minor = majors(r, f + 1, k - 1), u = minor * fa[f[0]].pad;
				if (!minor || u > 65535 || v->kind == IR_V_INPUT ||
				    onnx_dtype_bits(v->dtype) == 4 || d >= v->rank ||
				    !ir_dim_eq(v->dims[d], majors_dim(g, r, f, k))) {
					memset(&out->dims[d], 0, sizeof out->dims[d]);
					continue;
				}
				out->dims[d].pad = (uint16_t)u;
			}
		} else if (fa[f[which]].pad) {
			/* a padded factor below whole majors: as many pieces, each
			 * padded alike (the unit times the minors) */
			ir_dim pc = majors_dim(g, r, f, which);
			int64_t minor = majors(r, f + which + 1, k - which - 1),
			        u = minor * fa[f[which]].pad,
			        most = v->kind == IR_V_INIT ? 65535 : 255;
			if (prop_is_pieced(&fa[f[which]]) || !ir_is_const(pc) || pc.c < 2 ||
			    pc.c > most || !minor || u > 65535 || v->kind == IR_V_INPUT ||
			    onnx_dtype_bits(v->dtype) == 4 || d >= v->rank ||
			    !ir_dim_eq(v->dims[d], majors_dim(g, r, f, k)))
				continue;
			out->dims[d] = fa[f[which]];
			out->dims[d].pieces = (uint16_t)pc.c;
			out->dims[d].pad = (uint16_t)u;
		} else if (!prop_is_pieced(&fa[f[which]])) {
			/* one factor split below whole majors (its minors whole):
			 * the dim is in pieces, as many as the majors */
			ir_dim pc = majors_dim(g, r, f, which);
			/* a weight's layout is only a slicing pattern (it is stored
			 * so, never resharded): many pieces, its scales' [N * blocks]
			 * split by blocks */
			int64_t most = v->kind == IR_V_INIT ? 65535 : 255;
			if (ir_is_const(pc) ? pc.c < 2 || pc.c > most
			                    : !ir_is_known(pc) || p->nosym[vi])
				continue;
			out->dims[d] = fa[f[which]];
			if (ir_is_const(pc))
				out->dims[d].pieces = (uint16_t)pc.c;
			else
				out->dims[d].sym = pc.ex;
		}
		const prop_dim *x = &out->dims[d];
		if (x->sym && p->nosym[vi])
			memset(&out->dims[d], 0, sizeof out->dims[d]);
		if (x->n && (d >= v->rank ||
		             !fits(g, p, v->dims[d], x, prop_axes_size(p->mesh, x->ax, x->n))))
			memset(&out->dims[d], 0, sizeof out->dims[d]);
		if (x->n)
			drop_needless_pad(v->dims[d], &out->dims[d],
			                  prop_axes_size(p->mesh, x->ax, x->n));
	}
	/* 4-bit: a split that cuts bytes goes, the innermost dim's first; an
	 * odd innermost dim leaves the tensor whole */
	if (!keeps_bytes(g, p, v, out))
		memset(&out->dims[v->rank - 1], 0, sizeof *out->dims);
	if (!keeps_bytes(g, p, v, out))
		memset(out->dims, 0, (size_t)out->rank * sizeof *out->dims);
}

/* Drop from fa the splits that some tensor of the node cannot express (a
 * minor factor of a compound dim whose majors are not constant, two split
 * factors in one dim, a block that does not divide a dim other than a
 * broadcast 1): every operand and result must hold its block of the
 * factors the node computes split, or the node computes them whole. */
void prop_restrict(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r, prop_dim *fa);

void
prop_restrict(ir_graph *g, const prop_plan *p, uint32_t ni, const ir_rule *r, prop_dim *fa)
{
	const ir_node *n = &g->nodes[ni];
	prop_dim dims[IR_MAX_RANK];
	prop_shard tmp = {0, dims, 0};

	/* padding passes only where it stays out of the true positions */
	for (uint32_t f = 0; f < r->n_factors; f++)
		if (prop_is_padded(&fa[f]) && !pad_passes(g, ni, r, f))
			memset(&fa[f], 0, sizeof fa[f]);
	for (int changed = 1; changed;) {
		changed = 0;
		for (uint32_t t = 0; t < r->n_tensors && !changed; t++) {
			uint32_t v = prop_tensor_value(g, n, t);
			const ir_value *x = v == IR_NONE ? NULL : &g->values[v];
			if (!x || x->rank < 0 || x->rank > IR_MAX_RANK)
				continue;
			tmp.rank = x->rank;
			prop_derive(g, p, ni, r, fa, t, &tmp);
			for (int32_t d = 0; d < x->rank && !changed; d++) {
				const uint32_t *f;
				uint32_t k = ir_rule_dim(r, t, (uint32_t)d, &f), first = k;
				if (tmp.dims[d].n || (ir_is_const(x->dims[d]) && x->dims[d].c == 1))
					continue;
				for (uint32_t j = 0; j < k; j++) {
					if (!fa[f[j]].n)
						continue;
					if (first < k) /* two split: keep the major one */
						fa[f[j]].n = 0, changed = 1;
					else
						first = j;
				}
				if (!changed && first < k)
					fa[f[first]].n = 0, changed = 1;
			}
		}
	}
}

/* Grow cur towards derived: append axes to dims whose axes are a prefix
 * of the derived ones, never reusing an axis. Returns whether it changed. */
static int
refine(prop_shard *cur, const prop_shard *derived)
{
	int changed = 0;

	for (int32_t d = 0; d < cur->rank && d < derived->rank; d++) {
		if (derived->dims[d].n <= cur->dims[d].n ||
		    !is_prefix(&cur->dims[d], &derived->dims[d]))
			continue;
		uint8_t other = prop_shard_axes(cur);
		prop_dim nd = cur->dims[d];
		nd.pieces = derived->dims[d].pieces;
		nd.sym = derived->dims[d].sym;
		nd.pad = derived->dims[d].pad;
		nd.npc = derived->dims[d].npc;
		while (nd.n < derived->dims[d].n && !(other & (1u << derived->dims[d].ax[nd.n])))
			nd.ax[nd.n] = derived->dims[d].ax[nd.n], nd.n++;
		if (nd.npc && nd.npc >= nd.n) /* the pieces' axes only: plain blocks */
			nd.npc = 0, nd.sym = 0, nd.pieces = 0;
		if (nd.pad && (cur->dims[d].n || nd.n < derived->dims[d].n))
			continue; /* a padded dim's axes are set once, all of them */
		if (nd.n != cur->dims[d].n) {
			cur->dims[d] = nd;
			changed = 1;
		}
	}
	return changed;
}

int
prop_rules(ir_graph *g, shd_arena *a, ir_rule *rules)
{
	int rc = 0;

	for (uint32_t i = 0; i < g->n_nodes && !rc; i++)
		rc = ir_rule_of(g, i, a, &rules[i]);
	return rc;
}

int
prop_propagate(ir_graph *g, prop_plan *p)
{
	shd_ctx *c = g->ctx;
	shd_arena a = {0};
	ir_rule *own = p->rules ? NULL : shd_calloc(c, g->n_nodes + 1, sizeof *own);
	const ir_rule *rules = p->rules ? p->rules : own;
	prop_dim *fa = NULL;
	prop_shard tmp = {0};
	uint32_t max_factors = 1;
	int32_t max_rank = 1;
	int rc = 0;

	if (!rules)
		return shd_nomem(c);
	if (own && (rc = prop_rules(g, &a, own)))
		goto out;
	for (uint32_t i = 0; i < g->n_nodes; i++)
		if (rules[i].n_factors > max_factors)
			max_factors = rules[i].n_factors;
	for (uint32_t v = 0; v < g->n_values; v++)
		if (g->values[v].rank > max_rank)
			max_rank = g->values[v].rank;
	fa = shd_calloc(c, max_factors, sizeof *fa);
	tmp.dims = shd_calloc(c, (size_t)max_rank, sizeof *tmp.dims);
	if (!fa || !tmp.dims) {
		rc = shd_nomem(c);
		goto out;
	}
	for (int changed = 1, iter = 0; changed && iter < 64; iter++) {
		changed = 0;
		for (uint32_t k = 0; k < 2 * g->n_nodes; k++) {
			if (k % 1024 == 0 && p->stop && (rc = p->stop(p->stop_ud)))
				goto out;
			uint32_t i = k < g->n_nodes ? k : 2 * g->n_nodes - 1 - k;
			const ir_node *n = &g->nodes[i];
			const ir_rule *r = &rules[i];
			if (!r->n_factors)
				continue;
			prop_assign(g, p, i, r, p->want, k >= g->n_nodes, fa);
			prop_restrict(g, p, i, r, fa);
			for (uint32_t t = 0; t < r->n_tensors; t++) {
				uint32_t v = prop_tensor_value(g, n, t);
				if (v == IR_NONE || p->fixed[v] || g->values[v].rank < 0)
					continue;
				tmp.rank = g->values[v].rank;
				prop_derive(g, p, i, r, fa, t, &tmp);
				changed |= refine(&p->want[v], &tmp);
			}
		}
	}
out:
	shd_free(c, fa, max_factors * sizeof *fa);
	shd_free(c, tmp.dims, (size_t)max_rank * sizeof *tmp.dims);
	shd_free(c, own, ((size_t)g->n_nodes + 1) * sizeof *own);
	shd_arena_free(c, &a);
	return rc;
}

ir_dim
prop_local_dim(ir_graph *g, const prop_plan *p, const ir_value *v, const prop_shard *s, int32_t d)
{
	ir_dim size = v->dims[d];

	if (d >= s->rank || !s->dims[d].n)
		return size;
	int64_t n = prop_axes_size(p->mesh, s->dims[d].ax, s->dims[d].n);
	if (s->dims[d].pad && ir_is_const(size))
		return ir_const(prop_padded_local(size.c, &s->dims[d], n));
	return ir_floordiv(g, size, ir_const(n));
}

/* ---- the granularity a split needs ---- */

/* A (value, dim) on prop_pad_unit's walk, and the pieces cut on the way. */
typedef struct {
	uint32_t v;
	int32_t d;
	int pieces;
} unit_step;

/* Whether the walk has been at (v, d). */
static int
walked(const unit_step *q, uint32_t n, uint32_t v, int32_t d)
{
	for (uint32_t j = 0; j < n; j++)
		if (q[j].v == v && q[j].d == d)
			return 1;
	return 0;
}

/* Node ni's step of prop_pad_unit's walk from st (its tensor t): into q
 * the tensor dims made of the same single factor; a Reshape splitting or
 * joining the dim ends it (*unit, *pieces), an equal Split into pieces
 * goes on from its pieces. */
static int
unit_node(ir_graph *g, uint32_t ni, const ir_rule *r, uint32_t t, unit_step st, unit_step *q,
          uint32_t *nq, uint32_t most, int64_t *unit, int *pieces)
{
	const ir_node *n = &g->nodes[ni];
	const uint32_t *fs;
	uint32_t k = ir_rule_dim(r, t, (uint32_t)st.d, &fs), f;

	if (k > 1) {
		/* split into (or joined from) [heads, width]: the width */
		int64_t minor = majors(r, fs + 1, k - 1);
		if (n->op == OP_Reshape && minor > 1 && ir_is_const(r->factors[fs[0]].size) &&
		    r->factors[fs[0]].size.c > 1) {
			*unit = minor;
			*pieces = st.pieces;
			return 1;
		}
		/* an equal Split into pieces: on from the factor within them */
		int64_t pc = majors(r, fs, 1);
		if (n->op != OP_Split || k != 2 || pc < 2 || t >= n->n_in ||
		    (int64_t)st.pieces * pc > 255)
			return 0;
		st.pieces = (int)(st.pieces * pc);
		f = fs[1];
	} else if (k == 1) {
		f = fs[0];
	} else {
		return 0;
	}
	for (uint32_t u = 0; u < r->n_tensors; u++) {
		uint32_t x = prop_tensor_value(g, n, u);
		if (x == IR_NONE || g->values[x].rank < 0 || x == st.v)
			continue;
		for (int32_t e = 0; e < g->values[x].rank && *nq < most; e++) {
			const uint32_t *xf;
			if (ir_rule_dim(r, u, (uint32_t)e, &xf) == 1 && xf[0] == f &&
			    !walked(q, *nq, x, e))
				q[(*nq)++] = (unit_step){x, e, st.pieces};
		}
	}
	return 0;
}

int64_t
prop_pad_unit(ir_graph *g, const ir_rule *rules, const uint32_t *use_off, const uint32_t *uses,
              uint32_t v, int32_t d, int *pieces)
{
	enum { MOST = 64 }; /* (value, dim) pairs walked */
	shd_ctx *c = g->ctx;
	unit_step q[MOST];
	uint32_t nq = 0, *own_off = NULL, *own_uses = NULL;
	shd_arena a = {0};
	int64_t unit = 1;
	int pc = 1, done = 0;

	if (pieces)
		*pieces = 1;
	if (v >= g->n_values || d < 0 || d >= g->values[v].rank)
		return 1;
	if (!use_off) {
		if (ir_consumers(g, &own_off, &own_uses))
			return 1;
		use_off = own_off, uses = own_uses;
	}
	q[nq++] = (unit_step){v, d, 1};
	for (uint32_t h = 0; h < nq && !done; h++) {
		unit_step st = q[h];
		/* its producer, then its consumers */
		uint32_t n_nodes = 1 + use_off[st.v + 1] - use_off[st.v];
		for (uint32_t j = 0; j < n_nodes && !done; j++) {
			uint32_t ni = j ? uses[use_off[st.v] + j - 1] : g->values[st.v].producer;
			if (ni == IR_NONE)
				continue;
			ir_rule own;
			const ir_rule *r = rules ? &rules[ni] : &own;
			if (!rules && ir_rule_of(g, ni, &a, &own))
				break;
			for (uint32_t t = 0; t < r->n_tensors && !done && r->n_factors; t++)
				if (prop_tensor_value(g, &g->nodes[ni], t) == st.v)
					done = unit_node(g, ni, r, t, st, q, &nq, MOST, &unit, &pc);
		}
		shd_arena_free(c, &a);
	}
	if (own_off) {
		shd_free(c, own_off, ((size_t)g->n_values + 2) * sizeof *own_off);
		shd_free(c, own_uses, ((size_t)g->n_args + 1) * sizeof *own_uses);
	}
	if (pieces && done)
		*pieces = pc;
	return done ? unit : 1;
}
