/* Shape inference and sharding rules of ONNX Runtime's fused attention,
 * rotary embedding and n-bit matmul (com.microsoft), as its transformer
 * optimizer and onnxruntime-genai's model builder write them.
 * - Attention heads are a pass-through factor of every tensor that holds
 *   them (query, key, value, caches, biases, the output); the head size and
 *   the sequence dims stay whole. GroupQueryAttention's query heads are
 *   [kv heads, group]: only the KV heads split, so each rank keeps whole
 *   groups with the KV head they read. Emission makes num_heads and
 *   kv_num_heads local (emit/shapes.c).
 * - MatMulNBits: N (B's rows, with their scales, zero points and bias)
 *   passes to the result; K splits only on whole blocks, and where 4-bit
 *   (2-bit) zero points pack two (four) blocks a byte, on whole bytes of
 *   them: A's K is [k bytes, blocks a byte, block], the first a reduction.
 * Every factor is made only when every tensor that holds it was found in the
 * shape the schema gives; otherwise that dim stays whole. */
#include <string.h>

#include "ops_impl.h"

static int
is_const(ir_dim d, int64_t c)
{
	return ir_is_const(d) && d.c == c;
}

/* Whether value v is present with rank r. */
static int
has(const ir_value *v, int32_t r)
{
	return v && v->rank == r;
}

/* Map factor f to dim d of tensor t unless that dim is a broadcast 1. */
static void
map_unless_one(rule_b *b, const ir_value *v, uint32_t t, uint32_t d, uint32_t f)
{
	if (v && (int32_t)d < v->rank && !is_one(v->dims[d]))
		rb_map(b, t, d, f);
}

/* ---- MatMulNBits ---- */

int
infer_msmatmulnbits(ir_graph *g, ir_node *n)
{
	ir_value *a = in_val(g, n, 0), *y = out_val(g, n, 0);
	int64_t K = ir_attr_int(n, "K", -1), N = ir_attr_int(n, "N", -1);

	if (!a || !y || a->rank < 0)
		return 0;
	if (a->rank < 1 || a->rank > MAX_RANK)
		return node_error(g, n, "A has rank %d", (int)a->rank);
	if (K < 1 || N < 1)
		return node_error(g, n, "attributes K and N must be positive");
	if (ir_is_const(a->dims[a->rank - 1]) && a->dims[a->rank - 1].c != K)
		return node_error(g, n, "A's last dim is %lld, K is %lld",
		                  (long long)a->dims[a->rank - 1].c, (long long)K);
	ir_dim *d = set_shape(g, y, a->dtype, a->rank);
	if (!d)
		return nomem(g);
	memcpy(d, a->dims, (size_t)a->rank * sizeof *d);
	d[a->rank - 1] = ir_const(N);
	return 0;
}

void
rule_msmatmulnbits(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *a = in_val(g, n, 0), *w = in_val(g, n, 1), *sc = in_val(g, n, 2);
	ir_value *zp = in_val(g, n, 3), *gi = in_val(g, n, 4), *bias = in_val(g, n, 5);
	ir_value *y = out_val(g, n, 0);
	int64_t K = ir_attr_int(n, "K", 0), N = ir_attr_int(n, "N", 0);
	int64_t bits = ir_attr_int(n, "bits", 4), bs = ir_attr_int(n, "block_size", 0);
	int32_t ra = a->rank;

	for (int32_t d = 0; d + 1 < ra; d++)
		rb_pass(b, a->dims[d], 0, (uint32_t)d, T_OUT(n, 0), (uint32_t)d);
	if (bs < 1 || bits < 1 || bits > 8 || 8 % bits || !has(w, 3) || !has(y, ra) ||
	    !is_const(w->dims[0], N) || !sc)
		return;
	int64_t kb = (K + bs - 1) / bs, zb = (kb * bits + 7) / 8;
	int zpacked = zp && zp->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
	/* scales [N, kb] or [N * kb]; zero points [N, zb] packed, [N, kb] of
	 * the scales' type, or flat */
	int sc2 = has(sc, 2) && is_const(sc->dims[0], N) && is_const(sc->dims[1], kb);
	int sc1 = has(sc, 1) && is_const(sc->dims[0], N * kb);
	int64_t zw = zpacked ? zb : kb;
	int zp2 = zp && has(zp, 2) && is_const(zp->dims[0], N) && is_const(zp->dims[1], zw);
	int zp1 = zp && has(zp, 1) && is_const(zp->dims[0], N * zw);
	if (!(sc2 || sc1) || (zp && !zp2 && !zp1) ||
	    (bias && !(has(bias, 1) && is_const(bias->dims[0], N))))
		return;
	uint32_t fn = rb_pass(b, ir_const(N), T_OUT(n, 0), (uint32_t)(ra - 1), 1, 0);
	rb_map(b, 2, 0, fn);
	if (zp)
		rb_map(b, 3, 0, fn);
	if (bias)
		rb_map(b, 5, 0, fn);
	/* K: whole blocks, whole bytes of packed zero points; never with g_idx
	 * (columns in any order) or a short last block */
	int64_t per = zpacked ? 8 / bits : 1;
	if (gi || K % bs || kb % per || !is_const(a->dims[ra - 1], K))
		return;
	uint32_t fk = rb_factor(b, IR_F_REDUCE, ir_const(kb / per));
	uint32_t fp = per > 1 ? rb_factor(b, IR_F_REPL, ir_const(per)) : UINT32_MAX;
	uint32_t fb = rb_factor(b, IR_F_REPL, ir_const(bs));
	rb_map(b, 0, (uint32_t)(ra - 1), fk);
	if (fp != UINT32_MAX)
		rb_map(b, 0, (uint32_t)(ra - 1), fp);
	rb_map(b, 0, (uint32_t)(ra - 1), fb);
	rb_map(b, 1, 1, fk);
	if (fp != UINT32_MAX)
		rb_map(b, 1, 1, fp);
	/* flat scales and zero points: [N, kb] folded, N major */
	rb_map(b, 2, sc2 ? 1 : 0, fk);
	if (fp != UINT32_MAX)
		rb_map(b, 2, sc2 ? 1 : 0, fp);
	if (zp) {
		rb_map(b, 3, zp2 ? 1 : 0, fk);
		if (!zpacked && fp != UINT32_MAX)
			rb_map(b, 3, zp2 ? 1 : 0, fp);
	}
}

/* ---- attention ---- */

/* Output of an attention op: query's [B, S], then hidden; rank 3. */
static int
attn_output(ir_graph *g, ir_node *n, const ir_value *q, ir_dim hidden)
{
	ir_value *y = out_val(g, n, 0);
	ir_dim *d;

	if (!y)
		return 0;
	if (!(d = set_shape(g, y, q->dtype, 3)))
		return nomem(g);
	d[0] = q->dims[0];
	d[1] = q->dims[1];
	d[2] = hidden;
	return 0;
}

/* Present caches k (and k+1): [B, heads, unknown (the declared length), D];
 * lead: the leading 2 of Attention's packed present. */
static int
attn_present(ir_graph *g, ir_node *n, uint32_t k, uint32_t count, int lead, ir_dim bat,
             ir_dim heads, ir_dim hd, int32_t dtype)
{
	for (uint32_t j = k; j < k + count && j < n->n_out; j++) {
		ir_value *p = out_val(g, n, j);
		ir_dim *d;
		if (!p)
			continue;
		if (!(d = set_shape(g, p, dtype, 4 + lead)))
			return nomem(g);
		if (lead)
			*d++ = ir_const(2);
		d[0] = bat;
		d[1] = heads;
		d[2] = ir_unknown();
		d[3] = hd;
	}
	return 0;
}

int
infer_msgqa(ir_graph *g, ir_node *n)
{
	ir_value *q = in_val(g, n, 0), *kv = in_val(g, n, 1);
	int64_t hq = ir_attr_int(n, "num_heads", 0), hk = ir_attr_int(n, "kv_num_heads", 0);

	if (!q || q->rank < 0)
		return 0;
	if (q->rank != 3 || hq < 1 || hk < 1 || hq % hk)
		return node_error(g, n,
		                  "query must be [batch, seq, hidden] and num_heads a multiple "
		                  "of kv_num_heads");
	ir_dim hidden = q->dims[2], hd = ir_unknown();
	if (ir_is_const(hidden)) {
		int64_t per = kv ? hq : hq + 2 * hk; /* packed: q, k and v heads */
		if (hidden.c % per)
			return node_error(g, n, "query hidden %lld is not %lld heads",
			                  (long long)hidden.c, (long long)per);
		hd = ir_const(hidden.c / per);
		hidden = ir_const(hd.c * hq);
	} else if (!kv) {
		hidden = ir_unknown();
	}
	int rc = attn_output(g, n, q, hidden);
	if (!rc)
		rc = attn_present(g, n, 1, 2, 0, q->dims[0], ir_const(hk), hd, q->dtype);
	return rc;
}

void
rule_msgqa(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *q = in_val(g, n, 0), *k = in_val(g, n, 1), *v = in_val(g, n, 2);
	ir_value *pk = in_val(g, n, 3), *pv = in_val(g, n, 4);
	ir_value *ab = in_val(g, n, 10), *sink = in_val(g, n, 11);
	int64_t hq = ir_attr_int(n, "num_heads", 0), hk = ir_attr_int(n, "kv_num_heads", 0);
	uint32_t outs = n->n_out;

	if (!has(q, 3) || hq < 1 || hk < 1 || hq % hk)
		return;
	/* batch: every tensor's dim 0 but the caches' of cos and sin */
	uint32_t fb = rb_pass(b, q->dims[0], 0, 0, T_OUT(n, 0), 0);
	static const uint32_t bat_in[] = {1, 2, 3, 4, 5, 9, 10};
	for (size_t j = 0; j < sizeof bat_in / sizeof bat_in[0]; j++)
		map_unless_one(b, in_val(g, n, bat_in[j]), bat_in[j], 0, fb);
	for (uint32_t j = 1; j < outs; j++)
		map_unless_one(b, out_val(g, n, j), T_OUT(n, j), 0, fb);
	/* heads: [kv heads, group, head size] in query and output; only when
	 * k and v are apart and every cache holds its kv heads at dim 1 */
	if (!k || !has(k, 3) || !has(v, 3) || !ir_is_const(q->dims[2]) || q->dims[2].c % hq)
		return;
	int64_t hd = q->dims[2].c / hq;
	if (!is_const(k->dims[2], hk * hd) || !is_const(v->dims[2], hk * hd))
		return;
	const ir_value *caches[4] = {pk, pv, out_val(g, n, 1), out_val(g, n, 2)};
	for (int j = 0; j < 4; j++)
		if (caches[j] && !(has(caches[j], 4) && is_const(caches[j]->dims[1], hk)))
			return;
	if (ab && !(has(ab, 4) && (is_one(ab->dims[1]) || is_const(ab->dims[1], hq))))
		return;
	if (sink && !(has(sink, 1) && is_const(sink->dims[0], hq)))
		return;
	ir_value *qk = outs > 3 ? out_val(g, n, 3) : NULL;
	if (qk && !(has(qk, 4) && is_const(qk->dims[1], hq)))
		return;
	uint32_t fh = rb_factor(b, IR_F_PASS, ir_const(hk));
	uint32_t fg = rb_factor(b, IR_F_REPL, ir_const(hq / hk));
	uint32_t fd = rb_factor(b, IR_F_REPL, ir_const(hd));
	uint32_t grouped[2] = {0, T_OUT(n, 0)};
	for (int j = 0; j < 2; j++) {
		rb_map(b, grouped[j], 2, fh);
		rb_map(b, grouped[j], 2, fg);
		rb_map(b, grouped[j], 2, fd);
	}
	for (uint32_t t = 1; t < 3; t++) {
		rb_map(b, t, 2, fh);
		rb_map(b, t, 2, fd);
	}
	rb_map(b, 3, 1, fh);
	rb_map(b, 4, 1, fh);
	rb_map(b, T_OUT(n, 1), 1, fh);
	rb_map(b, T_OUT(n, 2), 1, fh);
	if (ab && !is_one(ab->dims[1])) {
		rb_map(b, 10, 1, fh);
		rb_map(b, 10, 1, fg);
	}
	if (sink) {
		rb_map(b, 11, 0, fh);
		rb_map(b, 11, 0, fg);
	}
	if (qk) {
		rb_map(b, T_OUT(n, 3), 1, fh);
		rb_map(b, T_OUT(n, 3), 1, fg);
	}
}

/* MultiHeadAttention's hidden size of key or value: 3-D [B, L, H*D] or
 * 4-D [B, H, L, D] (H*D), unknown otherwise. */
static ir_dim
mha_hidden(ir_graph *g, const ir_value *x, int64_t heads)
{
	if (has(x, 3))
		return x->dims[2];
	if (has(x, 4) && ir_is_const(x->dims[3]))
		return ir_mul(g, ir_const(heads), x->dims[3]);
	return ir_unknown();
}

int
infer_msmha(ir_graph *g, ir_node *n)
{
	ir_value *q = in_val(g, n, 0), *k = in_val(g, n, 1), *v = in_val(g, n, 2);
	int64_t h = ir_attr_int(n, "num_heads", 0);

	if (!q || q->rank < 0)
		return 0;
	if (h < 1 || (q->rank != 3 && q->rank != 5))
		return node_error(g, n, "needs num_heads and a query of rank 3 or 5");
	ir_dim hidden = ir_unknown(), hd = ir_unknown();
	if (q->rank == 5) { /* packed [B, S, H, 3, D] */
		hidden = ir_mul(g, ir_const(h), q->dims[4]);
		hd = q->dims[4];
	} else if (v && v->rank >= 0) {
		hidden = mha_hidden(g, v, h);
	} else if (!k) {
		hidden = ir_unknown();
	} else {
		hidden = q->dims[2];
	}
	if (q->rank == 3 && ir_is_const(q->dims[2]) && q->dims[2].c % h == 0)
		hd = ir_const(q->dims[2].c / h);
	int rc = attn_output(g, n, q, hidden);
	if (!rc)
		rc = attn_present(g, n, 1, 2, 0, q->dims[0], ir_const(h), hd, q->dtype);
	return rc;
}

/* Map heads factor fh (and head-size factor fd) into x at its heads dim:
 * 3-D [B, L, H*D] dim 2, 4-D [B, H, L, D] dim 1. */
static void
map_heads(rule_b *b, const ir_value *x, uint32_t t, uint32_t fh, uint32_t fd)
{
	if (has(x, 3)) {
		rb_map(b, t, 2, fh);
		rb_map(b, t, 2, fd);
	} else if (has(x, 4)) {
		rb_map(b, t, 1, fh);
	}
}

/* Whether x holds h heads of the hidden size hs at its heads dim (see
 * map_heads); hd gets the head size. */
static int
holds_heads(const ir_value *x, int64_t h, int64_t *hd)
{
	if (has(x, 3) && ir_is_const(x->dims[2]) && x->dims[2].c % h == 0) {
		*hd = x->dims[2].c / h;
		return 1;
	}
	if (has(x, 4) && is_const(x->dims[1], h) && ir_is_const(x->dims[3])) {
		*hd = x->dims[3].c;
		return 1;
	}
	return 0;
}

void
rule_msmha(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *q = in_val(g, n, 0), *k = in_val(g, n, 1), *v = in_val(g, n, 2);
	ir_value *bias = in_val(g, n, 3), *kpm = in_val(g, n, 4), *ab = in_val(g, n, 5);
	ir_value *ci = in_val(g, n, 9), *y = out_val(g, n, 0);
	int64_t h = ir_attr_int(n, "num_heads", 0);

	if (!has(q, 3) || !k || !v || h < 1 || !has(y, 3))
		return; /* packed forms stay whole */
	/* batch; a key padding mask [B] or [B, ...] takes it, other forms
	 * ([3B+2]) and beam search's cache indirection do not */
	uint32_t fb =
	        rb_factor(b,
	                  (ci || (has(kpm, 1) && !ir_dim_eq(kpm->dims[0], q->dims[0]))) ? IR_F_REPL
	                                                                                : IR_F_PASS,
	                  q->dims[0]);
	rb_map(b, 0, 0, fb);
	rb_map(b, T_OUT(n, 0), 0, fb);
	static const uint32_t bat_in[] = {1, 2, 4, 5, 6, 7};
	for (size_t j = 0; j < sizeof bat_in / sizeof bat_in[0]; j++)
		map_unless_one(b, in_val(g, n, bat_in[j]), bat_in[j], 0, fb);
	for (uint32_t j = 1; j < n->n_out; j++)
		map_unless_one(b, out_val(g, n, j), T_OUT(n, j), 0, fb);
	/* heads */
	int64_t dq, dk, dv, dy;
	if (!holds_heads(q, h, &dq) || !holds_heads(k, h, &dk) || !holds_heads(v, h, &dv) ||
	    !holds_heads(y, h, &dy) || dq != dk || dv != dy)
		return;
	for (uint32_t j = 6; j < 8; j++)
		if (in_val(g, n, j) &&
		    !(has(in_val(g, n, j), 4) && is_const(in_val(g, n, j)->dims[1], h)))
			return;
	for (uint32_t j = 1; j < n->n_out; j++)
		if (out_val(g, n, j) &&
		    !(has(out_val(g, n, j), 4) && is_const(out_val(g, n, j)->dims[1], h)))
			return;
	if (bias && !(has(bias, 1) && dq == dv && is_const(bias->dims[0], 3 * h * dq)))
		return;
	if (ab && !(has(ab, 4) && (is_one(ab->dims[1]) || is_const(ab->dims[1], h))))
		return;
	uint32_t fh = rb_factor(b, IR_F_PASS, ir_const(h));
	uint32_t fdq = rb_factor(b, IR_F_REPL, ir_const(dq));
	uint32_t fdv = dv == dq ? fdq : rb_factor(b, IR_F_REPL, ir_const(dv));
	map_heads(b, q, 0, fh, fdq);
	map_heads(b, k, 1, fh, fdq);
	map_heads(b, v, 2, fh, fdv);
	map_heads(b, y, T_OUT(n, 0), fh, fdv);
	for (uint32_t j = 6; j < 8; j++)
		rb_map(b, j, 1, fh);
	for (uint32_t j = 1; j < n->n_out; j++)
		rb_map(b, T_OUT(n, j), 1, fh);
	if (bias) { /* q, k and v biases side by side: 3 pieces of heads */
		rb_map(b, 3, 0, rb_factor(b, IR_F_REPL, ir_const(3)));
		rb_map(b, 3, 0, fh);
		rb_map(b, 3, 0, fdq);
	}
	if (ab && !is_one(ab->dims[1]))
		rb_map(b, 5, 1, fh);
}

int
infer_msattention(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *w = in_val(g, n, 1);
	int64_t h = ir_attr_int(n, "num_heads", 0);
	const int64_t *qkv;
	size_t nq = ir_attr_ints(n, "qkv_hidden_sizes", &qkv);

	if (!x || x->rank < 0 || !w || w->rank < 0)
		return 0;
	if (x->rank != 3 || w->rank != 2 || h < 1)
		return node_error(g, n,
		                  "needs input [batch, seq, hidden], weights [hidden, 3*hidden] "
		                  "and num_heads");
	ir_dim hv = ir_unknown(), hd = ir_unknown();
	if (nq == 3)
		hv = ir_const(qkv[2]);
	else if (ir_is_const(w->dims[1]) && w->dims[1].c % 3 == 0)
		hv = ir_const(w->dims[1].c / 3);
	if (nq == 3 && qkv[1] % h == 0)
		hd = ir_const(qkv[1] / h);
	else if (nq != 3 && ir_is_const(hv) && hv.c % h == 0)
		hd = ir_const(hv.c / h);
	int rc = attn_output(g, n, x, hv);
	if (!rc)
		rc = attn_present(g, n, 1, 1, 1, x->dims[0], ir_const(h), hd, x->dtype);
	return rc;
}

void
rule_msattention(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *w = in_val(g, n, 1), *bias = in_val(g, n, 2);
	ir_value *mask = in_val(g, n, 3), *past = in_val(g, n, 4), *ab = in_val(g, n, 5);
	ir_value *y = out_val(g, n, 0), *pres = n->n_out > 1 ? out_val(g, n, 1) : NULL;
	int64_t h = ir_attr_int(n, "num_heads", 0);
	const int64_t *qkv;
	size_t nq = ir_attr_ints(n, "qkv_hidden_sizes", &qkv);

	if (!has(x, 3) || !has(w, 2) || !has(y, 3) || h < 1)
		return;
	/* batch; a 1-D mask index of other than B entries ([2B]) keeps it whole */
	uint32_t fb = rb_factor(
	        b, has(mask, 1) && !ir_dim_eq(mask->dims[0], x->dims[0]) ? IR_F_REPL : IR_F_PASS,
	        x->dims[0]);
	rb_map(b, 0, 0, fb);
	rb_map(b, T_OUT(n, 0), 0, fb);
	map_unless_one(b, mask, 3, 0, fb);
	map_unless_one(b, ab, 5, 0, fb);
	if (has(past, 5))
		rb_map(b, 4, 1, fb);
	if (has(pres, 5))
		rb_map(b, T_OUT(n, 1), 1, fb);
	/* heads: the packed weight [hidden, 3 pieces of H*D], its bias */
	if (nq == 3 && !(qkv[0] == qkv[1] && qkv[1] == qkv[2]))
		return;
	if (!ir_is_const(w->dims[1]) || w->dims[1].c % (3 * h) || !ir_is_const(y->dims[2]) ||
	    y->dims[2].c * 3 != w->dims[1].c)
		return;
	int64_t hd = w->dims[1].c / (3 * h);
	if ((past && !(has(past, 5) && is_const(past->dims[2], h))) ||
	    (pres && !(has(pres, 5) && is_const(pres->dims[2], h))) ||
	    (bias && !(has(bias, 1) && is_const(bias->dims[0], w->dims[1].c))) ||
	    (ab && !(has(ab, 4) && (is_one(ab->dims[1]) || is_const(ab->dims[1], h)))))
		return;
	uint32_t f3 = rb_factor(b, IR_F_REPL, ir_const(3));
	uint32_t fh = rb_factor(b, IR_F_PASS, ir_const(h));
	uint32_t fd = rb_factor(b, IR_F_REPL, ir_const(hd));
	for (uint32_t t = 1; t < 3; t++) {
		uint32_t d = t == 1 ? 1 : 0;
		if (t == 2 && !bias)
			continue;
		rb_map(b, t, d, f3);
		rb_map(b, t, d, fh);
		rb_map(b, t, d, fd);
	}
	rb_map(b, T_OUT(n, 0), 2, fh);
	rb_map(b, T_OUT(n, 0), 2, fd);
	if (past)
		rb_map(b, 4, 2, fh);
	if (pres)
		rb_map(b, T_OUT(n, 1), 2, fh);
	if (ab && !is_one(ab->dims[1]))
		rb_map(b, 5, 1, fh);
}

/* ---- RotaryEmbedding ---- */

int
infer_msrotary(ir_graph *g, ir_node *n)
{
	return copy_shape(g, out_val(g, n, 0), in_val(g, n, 0), 0);
}

void
rule_msrotary(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *pos = in_val(g, n, 1), *cos = in_val(g, n, 2);
	int64_t h = ir_attr_int(n, "num_heads", 0), rd = ir_attr_int(n, "rotary_embedding_dim", 0);
	int32_t sd = x->rank == 4 ? 2 : 1;

	if ((x->rank != 3 && x->rank != 4) || ir_attr_int(n, "is_packed_batching", 0))
		return;
	uint32_t fb = rb_pass(b, x->dims[0], 0, 0, T_OUT(n, 0), 0);
	/* positions given per token go with the tokens; a start offset [1]
	 * keeps the sequence whole */
	if (has(pos, 2)) {
		map_unless_one(b, pos, 1, 0, fb);
		uint32_t fs = rb_pass(b, x->dims[sd], 0, (uint32_t)sd, T_OUT(n, 0), (uint32_t)sd);
		map_unless_one(b, pos, 1, 1, fs);
	}
	if (x->rank == 4) {
		rb_pass(b, x->dims[1], 0, 1, T_OUT(n, 0), 1);
		return;
	}
	/* [B, S, H*D]: the head size from num_heads, or from the caches when
	 * every dim rotates */
	int64_t hd = 0;
	if (!ir_is_const(x->dims[2]))
		return;
	if (h > 0 && x->dims[2].c % h == 0)
		hd = x->dims[2].c / h;
	else if (h == 0 && rd == 0 && has(cos, 2) && ir_is_const(cos->dims[1]))
		hd = 2 * cos->dims[1].c;
	if (hd < 1 || x->dims[2].c % hd)
		return;
	uint32_t fh = rb_factor(b, IR_F_PASS, ir_const(x->dims[2].c / hd));
	uint32_t fd = rb_factor(b, IR_F_REPL, ir_const(hd));
	for (uint32_t t = 0; t < 2; t++) {
		uint32_t tt = t ? T_OUT(n, 0) : 0;
		rb_map(b, tt, 2, fh);
		rb_map(b, tt, 2, fd);
	}
}

/* ---- GatherBlockQuantized ---- */

int
infer_msgatherbq(ir_graph *g, ir_node *n)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1), *sc = in_val(g, n, 2);
	ir_value *y = out_val(g, n, 0);
	int64_t ga = ir_attr_int(n, "gather_axis", 0), bits = ir_attr_int(n, "bits", 4);

	if (!x || !ix || !y || !sc || x->rank < 0 || ix->rank < 0)
		return 0;
	int a = norm_axis(ga, x->rank);
	int32_t r = x->rank - 1 + ix->rank;
	if (a < 0 || r > MAX_RANK || bits < 1 || bits > 8)
		return node_error(g, n, "gather_axis or bits out of range");
	ir_dim *d = set_shape(g, y, sc->dtype, r);
	if (!d)
		return nomem(g);
	int32_t o = 0;
	for (int32_t i = 0; i < a; i++)
		d[o++] = x->dims[i];
	for (int32_t i = 0; i < ix->rank; i++)
		d[o++] = ix->dims[i];
	for (int32_t i = a + 1; i < x->rank; i++)
		d[o++] = x->dims[i];
	/* uint8 data packs 8/bits values a byte along its last dim */
	if (x->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 && bits < 8 && a != x->rank - 1)
		d[r - 1] = ir_mul(g, d[r - 1], ir_const(8 / bits));
	return 0;
}

void
rule_msgatherbq(ir_graph *g, ir_node *n, rule_b *b)
{
	ir_value *x = in_val(g, n, 0), *ix = in_val(g, n, 1);
	int a = norm_axis(ir_attr_int(n, "gather_axis", 0), x->rank);

	/* the ids' dims pass to the result; the quantized table stays whole */
	for (int32_t i = 0; a >= 0 && i < ix->rank; i++)
		rb_pass(b, ix->dims[i], 1, (uint32_t)i, T_OUT(n, 0), (uint32_t)(a + i));
}
