/* Shape inference and sharding rules of ONNX Runtime's normalisation and
 * activation contrib ops (com.microsoft: SkipLayerNormalization and its
 * simplified form, EmbedLayerNormalization, FastGelu, BiasGelu, BiasAdd,
 * BiasSplitGelu, FusedMatMul). A normalised dim is need-replication; the
 * dims before it pass; a bias, gamma or beta takes the hidden dim. */
#include <string.h>

#include "ops_impl.h"

/* Whether operand p broadcasts to x from the right (unknown dims do). */
static int
broadcasts_to(const ir_value *p, const ir_value *x)
{
	if (p->rank > x->rank)
		return 0;
	for (int32_t j = 0; j < p->rank; j++) {
		ir_dim pd = p->dims[j], xd = x->dims[x->rank - p->rank + j];
		if (ir_is_const(pd) && ir_is_const(xd) && pd.c != xd.c && pd.c != 1)
			return 0;
	}
	return 1;
}

/* Operand k of node n, aligned from the right with the dims of a result of
 * rank r whose dim i has factor f[i]: each of its dims takes that factor,
 * but a broadcast 1 against a dim that is not 1 (rsize[i]). */
static void
map_trailing(ir_graph *g, ir_node *n, rule_b *b, uint32_t k, const uint32_t *f, const ir_dim *rsize,
             int32_t r)
{
	ir_value *p = in_val(g, n, k);

	if (!p || p->rank < 0 || p->rank > r)
		return;
	for (int32_t j = 0; j < p->rank; j++) {
		int32_t i = r - p->rank + j;
		if (is_one(p->dims[j]) && !is_one(rsize[i]))
			continue;
		rb_map(b, k, (uint32_t)j, f[i]);
	}
}

/* ---- SkipLayerNormalization, SkipSimplifiedLayerNormalization ---- */

/* input [.., H], skip broadcasting to it, gamma [H] and beta, bias [H]
 * (beta only in SkipLayerNormalization). Results: output and
 * input_skip_bias_sum (3) take input's shape; mean (1) and inv_std_var (2)
 * are float, of a shape the schema leaves open (a declared one is kept). */
int
infer_msskipnorm(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *skip = in_val(g, n, 1);
	int rc;

	if (!x || x->rank < 0)
		return 0;
	if (x->rank < 1 || x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is not in 1..%d", (int)x->rank, MAX_RANK);
	if (skip && skip->rank >= 0 && !broadcasts_to(skip, x))
		return node_error(g, n, "skip does not broadcast to the input");
	ir_dim h = x->dims[x->rank - 1];
	for (uint32_t k = 2; k < n->n_in; k++) {
		ir_value *p = in_val(g, n, k);
		if (!p || p->rank < 0)
			continue;
		if (p->rank != 1)
			return node_error(g, n, "'%s' has rank %d, not 1", ir_cstr(g, p->name),
			                  (int)p->rank);
		if (ir_is_const(p->dims[0]) && ir_is_const(h) && p->dims[0].c != h.c)
			return node_error(g, n, "'%s' has %lld elements, the hidden size is %lld",
			                  ir_cstr(g, p->name), (long long)p->dims[0].c,
			                  (long long)h.c);
	}
	for (uint32_t k = 0; k < n->n_out && k < 4; k++) {
		ir_value *o = out_val(g, n, k);
		if (!o)
			continue;
		if (k == 1 || k == 2)
			o->dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
		else if ((rc = copy_shape(g, o, x, 0)))
			return rc;
	}
	return 0;
}

/* The dims before the last pass; the last (hidden) is normalised over:
 * need-replication, shared with gamma, beta and bias. Skip aligns from the
 * right; mean and inv_std_var, when of input's rank, take the leading dims. */
void
rule_msskipnorm(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0);
	int32_t r = x->rank;
	uint32_t f[MAX_RANK];

	if (r < 1 || r > MAX_RANK)
		return;
	for (int32_t i = 0; i < r; i++) {
		f[i] = rb_factor(b, i == r - 1 ? IR_F_REPL : IR_F_PASS, x->dims[i]);
		rb_map(b, 0, (uint32_t)i, f[i]);
		for (uint32_t k = 0; k < n->n_out && k < 4; k++) {
			ir_value *o = out_val(g, n, k);
			if (!o || o->rank != r)
				continue;
			if ((k == 1 || k == 2) &&
			    (i == r - 1 || !ir_dim_eq(o->dims[i], x->dims[i])))
				continue; /* statistics: [.., 1] */
			rb_map(b, T_OUT(n, k), (uint32_t)i, f[i]);
		}
	}
	map_trailing(g, n, b, 1, f, x->dims, r);
	for (uint32_t k = 2; k < n->n_in; k++) {
		ir_value *p = in_val(g, n, k);
		if (p && p->rank == 1 && !(is_one(p->dims[0]) && !is_one(x->dims[r - 1])))
			rb_map(b, k, 0, f[r - 1]);
	}
}

/* ---- EmbedLayerNormalization ---- */

enum {
	EMB_IDS,
	EMB_SEGS,
	EMB_WORD,
	EMB_POS,
	EMB_SEGEMB,
	EMB_GAMMA,
	EMB_BETA,
	EMB_MASK,
	EMB_POSIDS
};

/* input_ids [B, S] (int32), word_embedding [V, H]: output [B, S, H] and
 * embedding_sum [B, S, H] of the tables' type, mask_index [B] int32. */
int
infer_msembedln(ir_graph *g, ir_node *n)
{
	ir_value *ids = in_val(g, n, EMB_IDS), *word = in_val(g, n, EMB_WORD);

	if (!ids || !word || ids->rank < 0 || word->rank < 0)
		return 0;
	if (ids->rank != 2)
		return node_error(g, n, "input_ids has rank %d, not 2", (int)ids->rank);
	if (word->rank != 2)
		return node_error(g, n, "word_embedding has rank %d, not 2", (int)word->rank);
	for (uint32_t k = EMB_SEGS; k < n->n_in; k++) {
		ir_value *p = in_val(g, n, k);
		if (!p || p->rank < 0 || k == EMB_WORD)
			continue;
		int want = k == EMB_GAMMA || k == EMB_BETA ? 1 : 2;
		if (p->rank != want)
			return node_error(g, n, "'%s' has rank %d, not %d", ir_cstr(g, p->name),
			                  (int)p->rank, want);
	}
	for (uint32_t k = 0; k < n->n_out && k < 3; k++) {
		ir_value *o = out_val(g, n, k);
		if (!o)
			continue;
		int32_t dt = k == 1 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32 : word->dtype;
		ir_dim *d = set_shape(g, o, dt, k == 1 ? 1 : 3);
		if (!d)
			return nomem(g);
		d[0] = ids->dims[0];
		if (k != 1) {
			d[1] = ids->dims[1];
			d[2] = word->dims[1];
		}
	}
	return 0;
}

/* The batch passes (ids, segment ids, mask, position ids, every result).
 * The sequence passes only with explicit position_ids (else each rank would
 * number its block from 0) and no mask_index counted over a mask; else it
 * is need-replication. The hidden dim is normalised over; the embedding
 * tables are never split. */
void
rule_msembedln(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *ids = in_val(g, n, EMB_IDS), *y = out_val(g, n, 0);
	int seq_ok = in_val(g, n, EMB_POSIDS) && !(in_val(g, n, EMB_MASK) && out_val(g, n, 1));
	static const uint32_t per_token[] = {EMB_IDS, EMB_SEGS, EMB_MASK, EMB_POSIDS};

	if (ids->rank != 2 || y->rank != 3)
		return;
	uint32_t fb = rb_factor(b, IR_F_PASS, ids->dims[0]);
	uint32_t fs = rb_factor(b, seq_ok ? IR_F_PASS : IR_F_REPL, ids->dims[1]);
	uint32_t fh = rb_factor(b, IR_F_REPL, y->dims[2]);
	for (size_t i = 0; i < sizeof per_token / sizeof per_token[0]; i++) {
		ir_value *p = in_val(g, n, per_token[i]);
		if (!p || p->rank != 2)
			continue;
		if (!(is_one(p->dims[0]) && !is_one(ids->dims[0])))
			rb_map(b, per_token[i], 0, fb);
		rb_map(b, per_token[i], 1, fs);
	}
	for (uint32_t k = 0; k < n->n_out && k < 3; k++) {
		ir_value *o = out_val(g, n, k);
		if (!o || o->rank != (k == 1 ? 1 : 3))
			continue;
		rb_map(b, T_OUT(n, k), 0, fb);
		if (k != 1) {
			rb_map(b, T_OUT(n, k), 1, fs);
			rb_map(b, T_OUT(n, k), 2, fh);
		}
	}
	for (uint32_t k = EMB_GAMMA; k <= EMB_BETA; k++) {
		ir_value *p = in_val(g, n, k);
		if (p && p->rank == 1)
			rb_map(b, k, 0, fh);
	}
}

/* ---- activations with a bias: FastGelu, BiasGelu, BiasAdd ---- */

/* Y has X's shape; the other operands (bias [H], BiasAdd's skip) broadcast
 * to it from the right. */
int
infer_msbiasact(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0);

	if (!x || x->rank < 0)
		return 0;
	if (x->rank > MAX_RANK)
		return node_error(g, n, "input rank %d is above %d", (int)x->rank, MAX_RANK);
	for (uint32_t k = 1; k < n->n_in; k++) {
		ir_value *p = in_val(g, n, k);
		if (p && p->rank >= 0 && !broadcasts_to(p, x))
			return node_error(g, n, "'%s' does not broadcast to the input",
			                  ir_cstr(g, p->name));
	}
	return copy_shape(g, out_val(g, n, 0), x, 0);
}

/* Elementwise: every dim passes; the other operands align from the right. */
void
rule_msbiasact(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *y = out_val(g, n, 0);
	uint32_t f[MAX_RANK];

	if (x->rank > MAX_RANK || y->rank != x->rank)
		return;
	for (int32_t i = 0; i < x->rank; i++)
		f[i] = rb_pass(b, x->dims[i], 0, (uint32_t)i, T_OUT(n, 0), (uint32_t)i);
	for (uint32_t k = 1; k < n->n_in; k++)
		map_trailing(g, n, b, k, f, x->dims, x->rank);
}

/* ---- BiasSplitGelu ---- */

/* X [N, S, D], bias [D]: Y [N, S, D/2] = left half * Gelu(right half). */
int
infer_msbiassplitgelu(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *bias = in_val(g, n, 1), *y = out_val(g, n, 0);

	if (!x || !y || x->rank < 0)
		return 0;
	if (x->rank != 3)
		return node_error(g, n, "input rank %d is not 3", (int)x->rank);
	ir_dim dd = x->dims[2];
	if (ir_is_const(dd) && dd.c % 2)
		return node_error(g, n, "hidden size %lld is odd", (long long)dd.c);
	if (bias && bias->rank >= 0 &&
	    (bias->rank != 1 ||
	     (ir_is_const(bias->dims[0]) && ir_is_const(dd) && bias->dims[0].c != dd.c)))
		return node_error(g, n, "bias is not of the hidden size [%s]", ir_dim_str(g, dd));
	ir_dim *d = set_shape(g, y, x->dtype, 3);
	if (!d)
		return nomem(g);
	d[0] = x->dims[0];
	d[1] = x->dims[1];
	d[2] = ir_floordiv(g, dd, ir_const(2));
	return 0;
}

/* N and S pass. X's and the bias's D is [2 halves, D/2]: the halves are
 * need-replication, D/2 passes to Y, so a split of it holds X and the
 * bias in two pieces (the rank's block of each half). */
void
rule_msbiassplitgelu(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *bias = in_val(g, n, 1), *y = out_val(g, n, 0);

	if (x->rank != 3 || y->rank != 3)
		return;
	for (uint32_t i = 0; i < 2; i++)
		rb_pass(b, x->dims[i], 0, i, T_OUT(n, 0), i);
	uint32_t halves = rb_factor(b, IR_F_REPL, ir_const(2));
	uint32_t h = rb_factor(b, IR_F_PASS, y->dims[2]);
	rb_map(b, 0, 2, halves);
	rb_map(b, 0, 2, h);
	rb_map(b, T_OUT(n, 0), 2, h);
	if (bias && bias->rank == 1) {
		rb_map(b, 1, 0, halves);
		rb_map(b, 1, 0, h);
	}
}

/* ---- FusedMatMul ---- */

/* The dims of operand v as MatMul sees them after transposing its last
 * two (when trans and rank >= 2): perm[i] is the operand dim of view dim i. */
static void
trans_view(const ir_value *v, int trans, int32_t *perm)
{
	for (int32_t i = 0; i < v->rank; i++)
		perm[i] = i;
	if (trans && v->rank >= 2) {
		perm[v->rank - 2] = v->rank - 1;
		perm[v->rank - 1] = v->rank - 2;
	}
}

static int
is_batch_transposed(const ir_node *n)
{
	return ir_attr_int(n, "transBatchA", 0) || ir_attr_int(n, "transBatchB", 0);
}

/* MatMul of A and B with their last two dims transposed by transA and
 * transB. With transBatchA or transBatchB, the dtype only. */
int
infer_msfusedmatmul(ir_graph *g, ir_node *n)
{
	ir_value *a = in_val(g, n, 0), *bv = in_val(g, n, 1), *y = out_val(g, n, 0);
	int32_t pa[MAX_RANK], pb[MAX_RANK], bad;
	ir_dim da[MAX_RANK], db[MAX_RANK], bat[MAX_RANK];

	if (!a || !bv || !y || a->rank < 0 || bv->rank < 0)
		return dtype_only(y, a);
	if (is_batch_transposed(n))
		return dtype_only(y, a);
	int32_t ra = a->rank, rb = bv->rank;
	if (ra == 0 || rb == 0)
		return node_error(g, n, "operands must not be scalars");
	if (ra > MAX_RANK || rb > MAX_RANK)
		return node_error(g, n, "rank above %d", MAX_RANK);
	trans_view(a, ir_attr_int(n, "transA", 0) != 0, pa);
	trans_view(bv, ir_attr_int(n, "transB", 0) != 0, pb);
	for (int32_t i = 0; i < ra; i++)
		da[i] = a->dims[pa[i]];
	for (int32_t i = 0; i < rb; i++)
		db[i] = bv->dims[pb[i]];
	ir_dim ka = da[ra - 1], kb = db[rb == 1 ? 0 : rb - 2];
	if (ir_is_const(ka) && ir_is_const(kb) && ka.c != kb.c)
		return node_error(g, n, "inner dims %lld and %lld differ", (long long)ka.c,
		                  (long long)kb.c);
	int32_t nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
	if (broadcast_dims(g, da, nba, db, nbb, bat, &bad))
		return node_error(g, n, "batch dims do not broadcast");
	int32_t rbat = nba > nbb ? nba : nbb;
	ir_dim *d = set_shape(g, y, a->dtype, rbat + (ra > 1) + (rb > 1));
	if (!d)
		return nomem(g);
	memcpy(d, bat, (size_t)rbat * sizeof *d);
	int32_t k = rbat;
	if (ra > 1)
		d[k++] = da[ra - 2];
	if (rb > 1)
		d[k++] = db[rb - 1];
	return 0;
}

/* rule_matmul through the transposes: batch dims and M, N pass; K reduces.
 * transBatchA/B: no rule (everything replicated). */
void
rule_msfusedmatmul(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *a = in_val(g, n, 0), *bv = in_val(g, n, 1), *y = out_val(g, n, 0);
	int32_t ra = a->rank, rb = bv->rank, ry = y->rank, pa[MAX_RANK], pb[MAX_RANK];

	if (is_batch_transposed(n) || ra < 1 || rb < 1 || ra > MAX_RANK || rb > MAX_RANK)
		return;
	int32_t rbat = ry - (ra > 1) - (rb > 1);
	if (rbat < 0 || rbat < ra - 2 || rbat < rb - 2)
		return;
	trans_view(a, ir_attr_int(n, "transA", 0) != 0, pa);
	trans_view(bv, ir_attr_int(n, "transB", 0) != 0, pb);
	for (int32_t d = 0; d < rbat; d++) {
		uint32_t f = rb_pass(b, y->dims[d], T_OUT(n, 0), (uint32_t)d, IR_NONE, 0);
		int32_t da = d - (rbat - (ra - 2)), db = d - (rbat - (rb - 2));
		if (ra > 2 && da >= 0 && !(is_one(a->dims[da]) && !is_one(y->dims[d])))
			rb_map(b, 0, (uint32_t)da, f);
		if (rb > 2 && db >= 0 && !(is_one(bv->dims[db]) && !is_one(y->dims[d])))
			rb_map(b, 1, (uint32_t)db, f);
	}
	if (ra > 1)
		rb_pass(b, a->dims[pa[ra - 2]], 0, (uint32_t)pa[ra - 2], T_OUT(n, 0),
		        (uint32_t)rbat);
	if (rb > 1)
		rb_pass(b, bv->dims[pb[rb - 1]], 1, (uint32_t)pb[rb - 1], T_OUT(n, 0),
		        (uint32_t)(ry - 1));
	uint32_t k = rb_factor(b, IR_F_REDUCE, a->dims[pa[ra - 1]]);
	rb_map(b, 0, (uint32_t)pa[ra - 1], k);
	rb_map(b, 1, (uint32_t)(rb == 1 ? 0 : pb[rb - 2]), k);
}
