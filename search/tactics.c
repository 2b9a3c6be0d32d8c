/* Tactics (PartIR): seeds for propagation, applied in order, each followed
 * by propagation.
 * - data[:AXIS]: the batch dim of every graph input on AXIS (batch_dims):
 *   the dim named like a batch where the model names one, else a symbolic
 *   dim 0, else the dim 0 that most inputs share.
 * - megatron[:AXIS]: column-parallel linears (those whose output feeds
 *   another linear, or is split into attention heads) split on their output
 *   features; propagation then makes their partners row-parallel, shards
 *   attention by heads, and leaves a pending sum that is all-reduced where
 *   the residual stream needs it. The LM head is split on the vocabulary.
 * - a JSON file: {"steps": [{"shard": GLOB, "dim": D, "axes": [..]},
 *   {"gather_outputs": GLOB},
 *   {"replicate": GLOB}, {"tactic": "data"|"megatron"|"experts", "axis": A}]}.
 * - experts[:AXIS]: the stacked expert weights of a mixture of experts
 *   (rank-3 operands B of MatMuls, [E, d, f]) split on E: expert parallelism.
 * requires: a lifted graph and a plan over a mesh
 * provides: want[] for every value */
#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>

#include "propagate/analysis.h"
#include "search.h"

static int
axis_or_default(ir_graph *g, prop_plan *p, const char *tactic, const char *name, const char *pref,
                int last)
{
	const prop_mesh *m = p->mesh;
	int a;

	if (name) {
		if ((a = prop_mesh_axis(m, name)) < 0)
			return -shd_error(g->ctx, ONNXSHARD_EINPUT,
			                  "--strategy %s: no mesh axis named '%s'", tactic, name);
		return a;
	}
	if ((a = prop_mesh_axis(m, pref)) >= 0)
		return a;
	return last ? (int)m->n_axes - 1 : 0;
}

/* Whether dim d of v is named like a batch ("batch", "batch_size", ...). */
static int
is_batch_dim(ir_graph *g, const ir_value *v, int32_t d)
{
	ir_str syms[4];

	if (ir_dim_syms(g, v->dims[d], syms, 4) != 1)
		return 0;
	const char *name = ir_cstr(g, syms[0]);
	return ir_dim_eq(v->dims[d], ir_sym(g, name)) &&
	       (strstr(name, "batch") != NULL || strstr(name, "Batch") != NULL);
}

/* Whether v's dim 0 is symbolic (known, not a constant). */
static int
is_symbolic0(const ir_value *v)
{
	return v->rank >= 1 && ir_is_known(v->dims[0]) && !ir_is_const(v->dims[0]);
}

/* The batch dim of each graph input (-1: none, the input is left alone),
 * in the first of these that applies:
 * 1. the model names a batch on some input: the dim so named (an input
 *    without one, a mask or a table, has none);
 * 2. some input's dim 0 is symbolic: dim 0 of those inputs (a dim of
 *    constant size 2 beside a symbolic one, say the source/destination
 *    rows of a GNN's edge_index [2, num_edges], is no batch);
 * 3. every dim 0 is constant: dim 0 of the inputs whose dim 0 lies in the
 *    dimension class that holds the most inputs' dim 0 (the first such
 *    input's on a tie): the dims that must be split alike, which a
 *    selector or a table's rows do not share with the data.
 * d[i] for input i. 0, or ONNXSHARD_EFAIL (out of memory). */
static int
batch_dims(ir_graph *g, int32_t *d)
{
	int named = 0, sym = 0;
	prop_analysis a;
	int rc;

	for (uint32_t i = 0; i < g->n_inputs; i++) {
		const ir_value *v = &g->values[g->inputs[i]];
		d[i] = -1;
		for (int32_t k = 0; k < v->rank && d[i] < 0; k++)
			if (is_batch_dim(g, v, k))
				d[i] = k;
		named |= d[i] >= 0;
		sym |= is_symbolic0(v);
	}
	if (named)
		return 0;
	if (sym) {
		for (uint32_t i = 0; i < g->n_inputs; i++) {
			const ir_value *v = &g->values[g->inputs[i]];
			d[i] = is_symbolic0(v) ? 0 : -1;
		}
		return 0;
	}
	if ((rc = prop_analyze(g, &a)))
		return rc;
	uint32_t best = IR_NONE, best_n = 0;
	for (uint32_t i = 0; i < g->n_inputs; i++) {
		uint32_t c = prop_class_of(&a, g->inputs[i], 0), n = 0;
		for (uint32_t j = 0; j < g->n_inputs && c != IR_NONE; j++)
			n += prop_class_of(&a, g->inputs[j], 0) == c;
		if (n > best_n)
			best = c, best_n = n;
	}
	for (uint32_t i = 0; i < g->n_inputs; i++)
		d[i] = best != IR_NONE && prop_class_of(&a, g->inputs[i], 0) == best ? 0 : -1;
	prop_analysis_free(g, &a);
	return 0;
}

/* Size d in words: "batch 8" (a symbolic dim bound by --dim), "8", or the
 * expression when unbound. */
static void
size_words(ir_graph *g, const prop_plan *p, ir_dim d, char *buf, size_t n)
{
	int64_t x;

	if (ir_is_const(d))
		snprintf(buf, n, "%lld", (long long)d.c);
	else if (!ir_dim_eval(g, d, p->bind, p->bind_ud, &x))
		snprintf(buf, n, "%s %lld", ir_dim_str(g, d), (long long)x);
	else
		snprintf(buf, n, "%s", ir_dim_str(g, d));
}

/* Whether size d (bound by --dim where symbolic) does not divide by n. */
static int
is_indivisible(ir_graph *g, const prop_plan *p, ir_dim d, int64_t n)
{
	int64_t x;

	return !ir_dim_eval(g, d, p->bind, p->bind_ud, &x) && n > 1 && x % n != 0;
}

/* strict: the user named the tactic; splitting none of its targets
 * because none divides is an error (EINPUT) rather than a replicated plan. */
static int
tactic_data(ir_graph *g, prop_plan *p, int axis, FILE *log, int strict)
{
	uint32_t n = 0, refused = 0, indivisible = 0, first = IR_NONE;
	int32_t *d = shd_calloc(g->ctx, g->n_inputs + 1, sizeof *d);
	const prop_mesh *m = p->mesh;
	char size[96] = "", why[256];
	int rc;

	if (!d)
		return shd_nomem(g->ctx);
	rc = batch_dims(g, d);
	for (uint32_t i = 0; i < g->n_inputs && !rc; i++) {
		uint32_t v = g->inputs[i];
		if (d[i] < 0)
			continue;
		if (!prop_seed(g, p, v, d[i], (uint8_t)axis, 1, 0)) {
			n++;
			continue;
		}
		ir_dim dim = g->values[v].dims[d[i]];
		int indiv = is_indivisible(g, p, dim, m->sizes[axis]);
		refused++;
		indivisible += indiv;
		if (first == IR_NONE) {
			first = i;
			size_words(g, p, dim, size, sizeof size);
		}
		if (indiv)
			snprintf(why, sizeof why,
			         "data: its batch dim (%s) does not divide by %s=%lld", size,
			         m->names[axis], (long long)m->sizes[axis]);
		else
			snprintf(why, sizeof why,
			         "data: its batch dim cannot take %s (already split)",
			         m->names[axis]);
		rc = prop_note_add(g, p, v, why);
	}
	if (!rc && strict && !n && indivisible) {
		const ir_value *x = &g->values[g->inputs[first]];
		if (ir_is_const(x->dims[d[first]]))
			rc = shd_error(
			        g->ctx, ONNXSHARD_EINPUT,
			        "--strategy data: the batch dim %s of '%s' does not divide by "
			        "%s=%lld",
			        size, ir_cstr(g, x->name), m->names[axis],
			        (long long)m->sizes[axis]);
		else
			rc = shd_error(g->ctx, ONNXSHARD_EINPUT,
			               "--strategy data: %s does not divide by %s=%lld", size,
			               m->names[axis], (long long)m->sizes[axis]);
	}
	shd_free(g->ctx, d, (g->n_inputs + 1) * sizeof *d);
	if (!rc && log) {
		fprintf(log, "data on %s: split the batch dim of %u input%s", m->names[axis], n,
		        n == 1 ? "" : "s");
		if (refused)
			fprintf(log, "; not split: %u (%s)", refused,
			        indivisible ? "its size does not divide" : "already split");
		if (refused && first != IR_NONE)
			fprintf(log, ", %s of '%s'", size,
			        ir_cstr(g, g->values[g->inputs[first]].name));
		fputc('\n', log);
	}
	return rc;
}

/* ---- megatron ---- */

/* How node ni's rule treats the last dim of its operand v: PASS_SOME, a
 * pass-through factor is among its factors (the node can split it);
 * PASS_LAST, that factor alone, also alone in the result's last dim (an
 * activation, a bias, a cast, a quantization step: the dim goes through). */
enum { PASS_SOME = 1, PASS_LAST = 2 };
static int
passes(ir_graph *g, uint32_t ni, uint32_t v)
{
	const ir_node *n = &g->nodes[ni];
	uint32_t y = n->n_out ? ir_out(g, n, 0) : IR_NONE;
	shd_arena a = {0};
	ir_rule r;
	int how = 0;

	if (g->values[v].rank < 1 || ir_rule_of(g, ni, &a, &r)) {
		shd_arena_free(g->ctx, &a);
		return 0;
	}
	for (uint32_t k = 0; k < n->n_in; k++) {
		const uint32_t *f, *fy;
		uint32_t nf = ir_in(g, n, k) == v
		                      ? ir_rule_dim(&r, k, (uint32_t)g->values[v].rank - 1, &f)
		                      : 0;
		for (uint32_t j = 0; j < nf; j++) {
			if (r.factors[f[j]].kind != IR_F_PASS)
				continue;
			how |= PASS_SOME;
			if (nf == 1 && y != IR_NONE && g->values[y].rank > 0 &&
			    ir_rule_dim(&r, n->n_in, (uint32_t)g->values[y].rank - 1, &fy) == 1 &&
			    fy[0] == f[0])
				how |= PASS_LAST;
		}
	}
	shd_arena_free(g->ctx, &a);
	return how;
}

/* The initializer behind a linear's weight (directly, or through a
 * Transpose or a DequantizeLinear), and which of its dims holds the output
 * features: MatMul and Gemm with a matrix or stacked matrices (experts
 * [E, d, f]), MatMulNBits' packed B [N, blocks, bytes]. */
static uint32_t
linear_weight(ir_graph *g, const ir_node *n, int32_t *out_dim)
{
	uint32_t w = ir_in(g, n, 1);
	int trans = 0;

	if (n->op == OP_MsMatMulNBits && w != IR_NONE && g->values[w].kind == IR_V_INIT &&
	    g->values[w].rank == 3) {
		*out_dim = 0;
		return w;
	}
	if ((n->op != OP_MatMul && n->op != OP_Gemm) || w == IR_NONE)
		return IR_NONE;
	if (n->op == OP_Gemm)
		trans = ir_attr_int(n, "transB", 0) != 0;
	for (int hop = 0; hop < 2 && g->values[w].kind == IR_V_NODE; hop++) {
		const ir_node *t = &g->nodes[g->values[w].producer];
		const int64_t *perm;
		if (t->op == OP_Transpose && ir_attr_ints(t, "perm", &perm) <= 2 &&
		    ir_in(g, t, 0) != IR_NONE) {
			w = ir_in(g, t, 0);
			trans = !trans;
		} else if (!strcmp(ir_cstr(g, t->op_type), "DequantizeLinear") &&
		           ir_in(g, t, 0) != IR_NONE) {
			w = ir_in(g, t, 0); /* per-tensor or per-channel: the rule slices scales */
		} else {
			return IR_NONE;
		}
	}
	const ir_value *x = &g->values[w];
	if (x->kind != IR_V_INIT || x->rank < 2 || (x->rank > 2 && (n->op != OP_MatMul || trans)))
		return IR_NONE;
	*out_dim = trans ? x->rank - 2 : x->rank - 1;
	return w;
}

/* Whether v is computed from a graph input (not only from weights and
 * constants, as a dequantized weight is): live[] per value. */
static int
is_activation(const uint8_t *live, uint32_t v)
{
	return v != IR_NONE && live[v];
}

/* Ops a column split passes through on its way to the consumer that
 * decides (elementwise with a constant or another activation, reshapes). */
static int
is_transparent(int op)
{
	switch (op) {
	case OP_Add:
	case OP_Sub:
	case OP_Mul:
	case OP_Div:
	case OP_Pow:
	case OP_Relu:
	case OP_Gelu:
	case OP_Sigmoid:
	case OP_Tanh:
	case OP_Erf:
	case OP_Sqrt:
	case OP_Neg:
	case OP_Exp:
	case OP_HardSigmoid:
	case OP_HardSwish:
	case OP_Softplus:
	case OP_Elu:
	case OP_Selu:
	case OP_Celu:
	case OP_Mish:
	case OP_LeakyRelu:
	case OP_Clip:
	case OP_Identity:
	case OP_Dropout:
	case OP_Cast:
	case OP_Reshape:
	case OP_Transpose:
	case OP_Split:
	case OP_Squeeze:
	case OP_Unsqueeze:
	case OP_MsRotaryEmbedding: /* per head */
	case OP_Expand: return 1;
	default: return 0;
	}
}

enum { VOTE_NONE, VOTE_COL, VOTE_ROW };

/* Follow value v forward: column-parallel if it reaches another linear or
 * an activation-activation MatMul (attention), and nothing that needs the
 * whole feature dim (a residual Add, a norm, a graph output). */
/* Whether Split node n cuts its input in equal pieces. */
static int
is_equal_split(ir_graph *g, const ir_node *n)
{
	if (n->n_out < 2 || ir_out(g, n, 0) == IR_NONE)
		return 0;
	const ir_value *first = &g->values[ir_out(g, n, 0)];
	int axis = (int)ir_attr_int(n, "axis", 0);

	if (first->rank < 0)
		return 0;
	if (axis < 0)
		axis += first->rank;
	if (axis < 0 || axis >= first->rank)
		return 0;
	for (uint32_t o = 1; o < n->n_out; o++) {
		uint32_t v = ir_out(g, n, o);
		if (v == IR_NONE || g->values[v].rank != first->rank ||
		    !ir_dim_eq(g->values[v].dims[axis], first->dims[axis]))
			return 0;
	}
	return 1;
}

/* Mark the values that v reaches through transparent ops. */
static void
reach(ir_graph *g, uint32_t v, const uint32_t *use_off, const uint32_t *uses, uint8_t *reached,
      int depth)
{
	if (reached[v] || depth > 24)
		return;
	reached[v] = 1;
	for (uint32_t k = use_off[v]; k < use_off[v + 1]; k++) {
		const ir_node *n = &g->nodes[uses[k]];
		if (!is_transparent(n->op) && !(passes(g, uses[k], v) & PASS_LAST))
			continue;
		for (uint32_t o = 0; o < n->n_out; o++)
			if (ir_out(g, n, o) != IR_NONE)
				reach(g, ir_out(g, n, o), use_off, uses, reached, depth + 1);
	}
}

/* rt learns the route's fused pieces and attention heads; reached[] holds what the linear's output
 * reaches, so that an Add inside an activation (GELU's x + c*x^3) is told from a residual one. */
typedef struct {
	int pieces;          /* an equal Split on the way: a fused projection */
	int64_t heads;       /* a Reshape on the way splits features into heads (0: none) */
	const uint8_t *live; /* per value: computed from a graph input */
	const ir_node *stop; /* a fused attention that cannot split what it reads */
	int fused;           /* the heads are a fused attention's (num_heads attributes) */
} route;

static int
vote(ir_graph *g, uint32_t v, const uint32_t *use_off, const uint32_t *uses, uint8_t *seen,
     const uint8_t *reached, int depth, route *rt)
{
	int col = 0;

	if (depth > 24)
		return VOTE_ROW;
	if (g->values[v].is_output)
		return VOTE_ROW;
	for (uint32_t k = use_off[v]; k < use_off[v + 1]; k++) {
		uint32_t ni = uses[k];
		const ir_node *n = &g->nodes[ni];
		int32_t od;
		if (seen[ni] || n->op == OP_Shape || n->op == OP_Size)
			continue; /* reading the shape takes any sharding */
		seen[ni] = 1;
		if (linear_weight(g, n, &od) != IR_NONE && ir_in(g, n, 0) == v) {
			col = 1;
			continue;
		}
		if (n->op == OP_MatMul && is_activation(rt->live, ir_in(g, n, 0)) &&
		    is_activation(rt->live, ir_in(g, n, 1))) {
			col = 1;
			continue;
		}
		/* a fused attention's query, key or value: split by heads (a
		 * grouped one's by its KV heads) */
		if ((n->op == OP_MsGroupQueryAttention || n->op == OP_MsMultiHeadAttention) &&
		    (ir_in(g, n, 0) == v || ir_in(g, n, 1) == v || ir_in(g, n, 2) == v)) {
			if (!(passes(g, ni, v) & PASS_SOME)) { /* packed q, k and v */
				rt->stop = n;
				return VOTE_ROW;
			}
			rt->heads = ir_attr_int(
			        n, n->op == OP_MsMultiHeadAttention ? "num_heads" : "kv_num_heads",
			        0);
			rt->fused = 1;
			col = 1;
			continue;
		}
		if (n->op == OP_Add && is_activation(rt->live, ir_in(g, n, 0)) &&
		    is_activation(rt->live, ir_in(g, n, 1)) &&
		    !(reached[ir_in(g, n, 0)] && reached[ir_in(g, n, 1)]))
			return VOTE_ROW; /* a residual connection */
		int32_t sax;
		int64_t spc = n->op == OP_Slice ? ir_slice_piece(g, n, &sax) : 0;
		if (spc && ir_in(g, n, 0) == v && sax == g->values[v].rank - 1)
			rt->pieces = (int)spc; /* q, k or v of a packed projection */
		else if (!is_transparent(n->op) && !(passes(g, ni, v) & PASS_LAST))
			return VOTE_ROW;
		if (n->op == OP_Split) {
			if (!is_equal_split(g, n))
				return VOTE_ROW;
			rt->pieces = (int)n->n_out;
		}
		if (ir_reshape_heads(g, n, 0))
			rt->heads = ir_reshape_heads(g, n, 0);
		for (uint32_t o = 0; o < n->n_out; o++) {
			uint32_t r = ir_out(g, n, o);
			if (r == IR_NONE)
				continue;
			int sub = vote(g, r, use_off, uses, seen, reached, depth + 1, rt);
			if (sub == VOTE_ROW)
				return VOTE_ROW;
			col |= sub == VOTE_COL;
		}
	}
	return col ? VOTE_COL : VOTE_NONE;
}

/* Whether some lookup (ir_lookup_table) reads rows of an initializer with
 * size rows. */
static int
is_vocab(ir_graph *g, const ir_dim *size)
{
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		uint32_t t = ir_lookup_table(g, &g->nodes[i], NULL);
		if (t != IR_NONE && g->values[t].kind == IR_V_INIT &&
		    ir_dim_eq(g->values[t].dims[0], *size))
			return 1;
	}
	return 0;
}

/* What megatron left whole, for its log line and its refusal: how many, how
 * many for a size that does not divide, the first with its reason. */
typedef struct {
	uint32_t n, indivisible;
	uint32_t value, ivalue; /* the first, the first that does not divide */
	char why[256], iwhy[256];
} not_split;

static int refuse_split(ir_graph *g, prop_plan *p, not_split *ns, uint32_t v, int indiv,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Note why v stays whole (fmt: the reason, with its numbers) and count it. */
static int
refuse_split(ir_graph *g, prop_plan *p, not_split *ns, uint32_t v, int indiv, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	/* "megatron: " is the tactic's prefix of every note */
	const char *bare = strncmp(why, "megatron: ", 10) ? why : why + 10;
	if (!ns->n++) {
		ns->value = v;
		snprintf(ns->why, sizeof ns->why, "%s", bare);
	}
	if (indiv && !ns->indivisible++) {
		ns->ivalue = v;
		snprintf(ns->iwhy, sizeof ns->iwhy, "%s",
		         strncmp(bare, "its ", 4) ? bare : bare + 4);
	}
	return prop_note_add(g, p, v, why);
}

/* live[v]: v is computed from a graph input (nodes are in topological
 * order); live has n_values + 1 entries, zeroed. */
static void
mark_live(ir_graph *g, uint8_t *live)
{
	for (uint32_t i = 0; i < g->n_inputs; i++)
		live[g->inputs[i]] = 1;
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		uint8_t any = 0;
		for (uint32_t k = 0; k < n->n_in; k++)
			any |= ir_in(g, n, k) != IR_NONE && live[ir_in(g, n, k)];
		for (uint32_t k = 0; k < n->n_out; k++)
			if (ir_out(g, n, k) != IR_NONE)
				live[ir_out(g, n, k)] = any;
	}
}

/* The optimizer's fused Attention: its packed weight [hidden, 3 pieces of
 * heads] (and bias) split by heads, per piece; *cols counts them. */
static int
seed_fused_attention(ir_graph *g, prop_plan *p, int axis, not_split *ns, uint32_t *cols)
{
	const char *an = p->mesh->names[axis];
	long long as = (long long)p->mesh->sizes[axis];
	int rc = 0;

	for (uint32_t i = 0; i < g->n_nodes && !rc; i++) {
		const ir_node *n = &g->nodes[i];
		uint32_t w = ir_in(g, n, 1), b = ir_in(g, n, 2);
		if (n->op != OP_MsAttention || w == IR_NONE || g->values[w].kind != IR_V_INIT ||
		    g->values[w].rank != 2)
			continue;
		int64_t h = ir_attr_int(n, "num_heads", 0);
		if (h % as || prop_seed(g, p, w, 1, (uint8_t)axis, 3, 0)) {
			rc = refuse_split(
			        g, p, ns, w, h % as != 0,
			        "megatron: its %lld attention heads do not divide by %s=%lld",
			        (long long)h, an, as);
			continue;
		}
		(*cols)++;
		if (b != IR_NONE && g->values[b].kind == IR_V_INIT && g->values[b].rank == 1)
			prop_seed(g, p, b, 0, (uint8_t)axis, 3, 0);
	}
	return rc;
}

/* Vocabulary-parallel embeddings: the tables the token ids (graph inputs)
 * look up, split on their rows; *embeds counts them. */
static int
seed_embeddings(ir_graph *g, prop_plan *p, int axis, not_split *ns, uint32_t *embeds)
{
	const char *an = p->mesh->names[axis];
	long long as = (long long)p->mesh->sizes[axis];
	char sz[96];
	int rc = 0;

	for (uint32_t i = 0; i < g->n_nodes && !rc; i++) {
		const ir_node *n = &g->nodes[i];
		uint32_t t = ir_in(g, n, 0), ids = ir_in(g, n, 1);
		if (n->op != OP_Gather || t == IR_NONE || ids == IR_NONE ||
		    g->values[t].kind != IR_V_INIT || g->values[t].rank != 2 ||
		    g->values[ids].kind != IR_V_INPUT || ir_attr_int(n, "axis", 0) != 0)
			continue;
		/* a vocabulary that does not divide: padded rows (never looked up) */
		if (p->want[t].dims[0].n || !prop_seed_padded(g, p, t, 0, (uint8_t)axis, 1, 0, 1)) {
			(*embeds)++;
			continue;
		}
		ir_dim f = g->values[t].dims[0];
		size_words(g, p, f, sz, sizeof sz);
		rc = refuse_split(g, p, ns, t, is_indivisible(g, p, f, as),
		                  "megatron: its vocabulary %s does not divide by %s=%lld", sz, an,
		                  as);
	}
	return rc;
}

static int
tactic_megatron(ir_graph *g, prop_plan *p, int axis, FILE *log, int strict)
{
	shd_ctx *c = g->ctx;
	uint32_t *use_off = NULL, *uses = NULL;
	uint8_t *seen = shd_calloc(c, g->n_nodes + 1, 1);
	uint8_t *reached = shd_calloc(c, g->n_values + 1, 1);
	uint8_t *live = shd_calloc(c, g->n_values + 1, 1);
	uint32_t cols = 0, lm_heads = 0;
	not_split ns = {0, 0, IR_NONE, IR_NONE, "", ""};
	const char *an = p->mesh->names[axis];
	long long as = (long long)p->mesh->sizes[axis];
	char sz[96];
	int rc = 0;

	if (!seen || !reached || !live) {
		rc = shd_nomem(c);
		goto out;
	}
	if ((rc = ir_consumers(g, &use_off, &uses)))
		goto out;
	mark_live(g, live);
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		int32_t od;
		/* opaque nodes may have no results at all */
		uint32_t w = linear_weight(g, n, &od), y = n->n_out ? ir_out(g, n, 0) : IR_NONE;
		if (w == IR_NONE || y == IR_NONE)
			continue;
		route rt = {1, 0, live, NULL, 0};
		memset(seen, 0, g->n_nodes);
		memset(reached, 0, g->n_values);
		reach(g, y, use_off, uses, reached, 0);
		int vt = vote(g, y, use_off, uses, seen, reached, 0, &rt);
		int pieces = rt.pieces;
		if (vt == VOTE_ROW && rt.stop &&
		    (rc = refuse_split(g, p, &ns, w, 0, "%s",
		                       "megatron: not split: the fused attention it feeds "
		                       "cannot split by heads what it reads (q, k and v packed "
		                       "in one tensor)")))
			break;
		/* the LM head: a linear producing a graph output (directly or
		 * through ops that keep its features) over a vocabulary that an
		 * embedding lookup also indexes: split on the vocabulary */
		int to_output = 0;
		for (uint32_t o = 0; o < g->n_outputs; o++)
			to_output |= reached[g->outputs[o]];
		int lm = vt == VOTE_ROW && to_output && is_vocab(g, &g->values[w].dims[od]);
		if (lm)
			vt = VOTE_COL;
		if (vt != VOTE_COL)
			continue;
		/* heads that do not divide: padded to whole heads per rank where a
		 * Reshape splits them (vLLM's padding, each piece of a fused
		 * projection alike; propagation passes the padding only where it
		 * stays exact), else (a fused attention's, grouped K/V) replicated.
		 * A head's width is what the search pads at too (prop_pad_unit) */
		ir_dim f = g->values[w].dims[od];
		int64_t unit = lm ? 1 : 0;
		if (rt.heads && rt.heads % p->mesh->sizes[axis] && !rt.fused && ir_is_const(f)) {
			int upc = 1;
			int64_t u = prop_pad_unit(g, NULL, use_off, uses, w, od, &upc);
			if (u > 1 && upc == pieces && f.c % ((int64_t)pieces * u) == 0 &&
			    f.c / pieces / u == rt.heads)
				unit = u;
		}
		if (rt.heads && rt.heads % p->mesh->sizes[axis] && !unit) {
			if ((rc = refuse_split(
			             g, p, &ns, w, 1,
			             "megatron: its %lld attention heads do not divide by "
			             "%s=%lld",
			             (long long)rt.heads, an, as)))
				break;
			continue;
		}
		int seeded = prop_seed_padded(g, p, w, od, (uint8_t)axis, pieces, 0, unit);
		if (seeded == 0) {
			cols++;
			lm_heads += lm;
			/* the bias of a column-parallel linear goes with it */
			uint32_t b = n->op == OP_Gemm ? ir_in(g, n, 2) : IR_NONE;
			if (b != IR_NONE && g->values[b].rank == 1)
				prop_seed_padded(g, p, b, 0, (uint8_t)axis, pieces, 0, unit);
		} else {
			int indiv = seeded != 2 && is_indivisible(g, p, f, (int64_t)pieces * as);
			size_words(g, p, f, sz, sizeof sz);
			if (seeded == 2)
				rc = refuse_split(g, p, &ns, w, 0, "%s",
				                  "megatron: its blocks would cut bytes of 4-bit "
				                  "values (an odd innermost dim)");
			else if (pieces > 1)
				rc = refuse_split(
				        g, p, &ns, w, indiv,
				        "megatron: its %s %s in %d pieces (or their layout) %s not "
				        "divide by %s=%lld",
				        lm ? "vocabulary" : "output features", sz, pieces,
				        lm ? "does" : "do", an, as);
			else
				rc = refuse_split(g, p, &ns, w, indiv,
				                  "megatron: its %s %s%s %s not divide by %s=%lld",
				                  lm ? "vocabulary" : "output features", sz,
				                  indiv ? "" : " (or their layout)",
				                  lm ? "does" : "do", an, as);
			if (rc)
				break;
		}
	}
	if (!rc)
		rc = seed_fused_attention(g, p, axis, &ns, &cols);
	uint32_t embeds = 0;
	if (!rc)
		rc = seed_embeddings(g, p, axis, &ns, &embeds);
	if (!rc && strict && !cols && !embeds && ns.indivisible) {
		rc = shd_error(g->ctx, ONNXSHARD_EINPUT,
		               "--strategy megatron: nothing splits over %s=%lld: '%s': %s%s", an,
		               as, ir_cstr(g, g->values[ns.ivalue].name), ns.iwhy,
		               ns.indivisible > 1 ? " (and the others alike)" : "");
		goto out;
	}
	if (log && !rc) {
		fprintf(log, "megatron on %s: split %u column-parallel linear%s", an, cols,
		        cols == 1 ? "" : "s");
		if (lm_heads)
			fprintf(log, " (%u LM head%s among them)", lm_heads,
			        lm_heads == 1 ? "" : "s");
		fprintf(log, " and %u embedding%s", embeds, embeds == 1 ? "" : "s");
		if (ns.n)
			fprintf(log, "; not split: %u (the first, '%s': %s)", ns.n,
			        ir_cstr(g, g->values[ns.value].name), ns.why);
		fputc('\n', log);
	}
out:
	shd_free(c, use_off, ((size_t)g->n_values + 2) * sizeof *use_off);
	shd_free(c, uses, ((size_t)g->n_args + 1) * sizeof *uses);
	shd_free(c, seen, (size_t)g->n_nodes + 1);
	shd_free(c, reached, (size_t)g->n_values + 1);
	shd_free(c, live, (size_t)g->n_values + 1);
	return rc;
}

/* ---- experts ---- */

/* The axis of experts[:AXIS]: the one named, else "expert", else "model",
 * else the last; negative: -status. */
static int
experts_axis(ir_graph *g, prop_plan *p, const char *name)
{
	int a = name ? -1 : prop_mesh_axis(p->mesh, "expert");

	return a >= 0 ? a : axis_or_default(g, p, "experts", name, "model", 1);
}

/* Expert parallelism: the stacked weights of a mixture of experts, rank-3
 * initializers read as operand B of a MatMul ([E, d, f]) whose dim 0 is a
 * batch dim of the product, split on that dim: each rank computes its
 * experts, and the sum over experts that combines them is a pending sum
 * (one AllReduce). */
static int
tactic_experts(ir_graph *g, prop_plan *p, int axis, FILE *log, int strict)
{
	uint32_t split = 0, skipped = 0, indivisible = 0, first = IR_NONE;
	const char *an = p->mesh->names[axis];
	long long as = (long long)p->mesh->sizes[axis];
	char sz[96] = "", buf[256];
	int rc = 0;

	for (uint32_t i = 0; i < g->n_nodes && !rc; i++) {
		const ir_node *n = &g->nodes[i];
		uint32_t w = n->op == OP_MatMul ? ir_in(g, n, 1) : IR_NONE;
		uint32_t y = n->op == OP_MatMul && n->n_out ? ir_out(g, n, 0) : IR_NONE;
		if (w == IR_NONE || y == IR_NONE || g->values[w].kind != IR_V_INIT ||
		    g->values[w].rank != 3)
			continue;
		const ir_value *wv = &g->values[w], *yv = &g->values[y];
		const char *why = NULL;
		/* numpy matmul: B's dim 0 is the product's dim rank-3 (a
		 * broadcast 1 is no expert dim) */
		if (yv->rank < 3 || !ir_dim_eq(yv->dims[yv->rank - 3], wv->dims[0]) ||
		    (ir_is_const(wv->dims[0]) && wv->dims[0].c == 1))
			why = "experts: its dim 0 is not a batch dim of the product";
		else if (p->want[w].dims[0].n == 1 && p->want[w].dims[0].ax[0] == axis)
			continue; /* read by an earlier MatMul */
		else if (prop_seed(g, p, w, 0, (uint8_t)axis, 1, 0)) {
			int indiv = is_indivisible(g, p, wv->dims[0], as);
			if (indiv && !indivisible++) {
				first = w;
				size_words(g, p, wv->dims[0], sz, sizeof sz);
			}
			if (indiv)
				snprintf(buf, sizeof buf,
				         "experts: its %s experts do not divide by %s=%lld", sz, an,
				         as);
			else
				snprintf(buf, sizeof buf,
				         "experts: its experts (or their layout) do not divide by "
				         "%s=%lld",
				         an, as);
			why = buf;
		}
		if (!why) {
			split++;
			continue;
		}
		skipped++;
		rc = prop_note_add(g, p, w, why);
	}
	if (!rc && strict && !split && indivisible)
		return shd_error(g->ctx, ONNXSHARD_EINPUT,
		                 "--strategy experts: nothing splits over %s=%lld: '%s': its %s "
		                 "experts do not divide by %lld",
		                 an, as, ir_cstr(g, g->values[first].name), sz, as);
	if (log && !rc)
		fprintf(log, "experts on %s: split %u stacked expert weight%s; not split: %u\n", an,
		        split, split == 1 ? "" : "s", skipped);
	return rc;
}

int
search_gather_outputs(ir_graph *g, prop_plan *p, const char *glob, const char *where)
{
	uint32_t hits = 0;

	for (uint32_t j = 0; j < g->n_outputs; j++)
		if (!fnmatch(glob, ir_cstr(g, g->values[g->outputs[j]].name), 0))
			p->gather_out[j] = 1, hits++;
	if (!hits)
		return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s '%s': no graph output matches",
		                 where, glob);
	return 0;
}

/* ---- the tactics file ---- */

static int
file_steps(ir_graph *g, prop_plan *p, const char *path, FILE *log, int strict)
{
	json_error_t err;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err), *steps, *s;
	size_t i;
	int rc = 0;

	if (!root)
		return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s:%d: %s", path, err.line, err.text);
	steps = json_is_array(root) ? root : json_object_get(root, "steps");
	if (!json_is_array(steps)) {
		json_decref(root);
		return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s: want {\"steps\": [...]}", path);
	}
	json_array_foreach(steps, i, s)
	{
		const char *shard = json_string_value(json_object_get(s, "shard"));
		const char *repl = json_string_value(json_object_get(s, "replicate"));
		const char *tactic = json_string_value(json_object_get(s, "tactic"));
		const char *axis = json_string_value(json_object_get(s, "axis"));
		const char *gather = json_string_value(json_object_get(s, "gather_outputs"));
		if (gather) {
			char where[64];
			snprintf(where, sizeof where, "step %zu: gather_outputs", i);
			if ((rc = search_gather_outputs(g, p, gather, where)))
				break;
			continue;
		}
		if (tactic && !strcmp(tactic, "experts")) {
			int a = experts_axis(g, p, axis);
			if (a < 0 || (rc = tactic_experts(g, p, a, log, strict))) {
				rc = a < 0 ? -a : rc;
				break;
			}
		} else if (tactic) {
			int a;
			if (strcmp(tactic, "data") && strcmp(tactic, "megatron")) {
				rc = shd_error(g->ctx, ONNXSHARD_EINPUT,
				               "%s: step %zu: unknown tactic '%s'", path, i,
				               tactic);
				break;
			}
			if ((a = axis_or_default(g, p, tactic, axis,
			                         tactic[0] == 'd' ? "data" : "model",
			                         tactic[0] == 'm')) < 0) {
				rc = -a;
				break;
			}
			if ((rc = tactic[0] == 'd' ? tactic_data(g, p, a, log, strict)
			                           : tactic_megatron(g, p, a, log, strict)))
				break;
		} else if (shard || repl) {
			json_t *axes = json_object_get(s, "axes"), *x;
			json_int_t dim = json_integer_value(json_object_get(s, "dim"));
			uint32_t hits = 0;
			size_t j;
			if (shard &&
			    (!json_is_integer(json_object_get(s, "dim")) || !json_is_array(axes))) {
				rc = shd_error(g->ctx, ONNXSHARD_EINPUT,
				               "%s: step %zu: shard needs \"dim\" and \"axes\"",
				               path, i);
				break;
			}
			for (uint32_t v = 0; v < g->n_values && !rc; v++) {
				if (fnmatch(shard ? shard : repl, ir_cstr(g, g->values[v].name), 0))
					continue;
				hits++;
				if (repl) {
					prop_seed_replicated(p, v);
					continue;
				}
				json_array_foreach(axes, j, x)
				{
					int a = json_is_string(x)
					                ? prop_mesh_axis(p->mesh,
					                                 json_string_value(x))
					                : -1;
					if (a < 0) {
						rc = shd_error(
						        g->ctx, ONNXSHARD_EINPUT,
						        "%s: step %zu: no mesh axis %s", path, i,
						        json_is_string(x) ? json_string_value(x)
						                          : "(not a string)");
						break;
					}
					/* out of int32 range is out of range, not truncated */
					json_int_t dd = dim < 0 ? dim + g->values[v].rank : dim;
					int32_t d = dd < 0 || dd > INT32_MAX ? -1 : (int32_t)dd;
					int seeded = prop_seed(g, p, v, d, (uint8_t)a, 1, 1);
					/* a split that cuts 4-bit bytes: left whole, noted */
					if (seeded == 2) {
						rc = prop_note_add(
						        g, p, v,
						        "shard: its blocks would cut bytes "
						        "of 4-bit values (an odd innermost "
						        "dim)");
						break;
					}
					if (seeded) {
						rc = shd_error(
						        g->ctx, ONNXSHARD_EINPUT,
						        "%s: step %zu: cannot split '%s' dim %lld "
						        "over %s (rank, reuse or divisibility)",
						        path, i, ir_cstr(g, g->values[v].name),
						        (long long)dim, json_string_value(x));
						break;
					}
				}
			}
			if (!rc && !hits)
				rc = shd_error(g->ctx, ONNXSHARD_EINPUT,
				               "%s: step %zu: no tensor matches '%s'", path, i,
				               shard ? shard : repl);
			if (!rc && log)
				fprintf(log, "%s %s: %u tensor%s\n", shard ? "shard" : "replicate",
				        shard ? shard : repl, hits, hits == 1 ? "" : "s");
		} else {
			rc = shd_error(g->ctx, ONNXSHARD_EINPUT,
			               "%s: step %zu: want \"shard\", \"replicate\", \"tactic\" or "
			               "\"gather_outputs\"",
			               path, i);
		}
		if (rc || (rc = prop_propagate(g, p)))
			break;
	}
	json_decref(root);
	return rc;
}

/* The auto step with env's hardware, or the h100 preset. */
static int
auto_step(ir_graph *g, prop_plan *p, uint8_t mask, search_env *env, int exhaustive, FILE *log)
{
	search_env e = {0};
	search_hw hw;
	int rc;

	if (env)
		e = *env;
	if (!e.hw) {
		if ((rc = search_hw_load(g->ctx, "h100", &hw)))
			return rc;
		e.hw = &hw;
	}
	rc = search_auto(g, p, mask, &e, exhaustive, log);
	if (e.hw == &hw)
		search_hw_free(g->ctx, &hw);
	if (env) {
		env->decisions = e.decisions;
		env->scored = e.scored;
		env->chose = e.chose;
	}
	return rc;
}

/* AXES of auto:AXES ("data+model") as a mask; -1 naming an unknown axis. */
static int
axes_of(ir_graph *g, const prop_plan *p, const char *word, const char *spec)
{
	int mask = 0;

	if (!spec)
		return (1 << p->mesh->n_axes) - 1;
	while (*spec) {
		size_t n = strcspn(spec, "+");
		char name[64];
		int a;
		if (n == 0 || n >= sizeof name)
			return -shd_error(g->ctx, ONNXSHARD_EINPUT, "--strategy %s: bad axes",
			                  word);
		memcpy(name, spec, n);
		name[n] = 0;
		if ((a = prop_mesh_axis(p->mesh, name)) < 0)
			return -shd_error(g->ctx, ONNXSHARD_EINPUT,
			                  "--strategy %s: no mesh axis named '%s'", word, name);
		mask |= 1 << a;
		spec += n + (spec[n] == '+');
	}
	return mask;
}

int
search_apply(ir_graph *g, prop_plan *p, const char *strategy, FILE *log)
{
	return search_run(g, p, strategy, NULL, log);
}

int
search_run(ir_graph *g, prop_plan *p, const char *strategy, search_env *env, FILE *log)
{
	const char *s = strategy;
	int rc, strict = env && env->strict;

	if (strchr(strategy, '/') || strstr(strategy, ".json"))
		return file_steps(g, p, strategy, log, strict);
	while (*s) {
		size_t n = strcspn(s, ",");
		char word[64];
		if (n == 0 || n >= sizeof word)
			return shd_error(g->ctx, ONNXSHARD_EINPUT, "--strategy '%s': bad step",
			                 strategy);
		memcpy(word, s, n);
		word[n] = 0;
		char *colon = strchr(word, ':');
		if (colon)
			*colon++ = 0;
		if (!strcmp(word, "auto") || !strcmp(word, "exhaustive")) {
			int mask = axes_of(g, p, word, colon);
			if (mask < 0)
				return -mask;
			if ((rc = auto_step(g, p, (uint8_t)mask, env, word[0] == 'e', log)))
				return rc;
		} else if (!strcmp(word, "data") || !strcmp(word, "megatron")) {
			int d = word[0] == 'd';
			int a = axis_or_default(g, p, word, colon, d ? "data" : "model", !d);
			if (a < 0)
				return -a;
			if ((rc = d ? tactic_data(g, p, a, log, strict)
			            : tactic_megatron(g, p, a, log, strict)))
				return rc;
		} else if (!strcmp(word, "experts")) {
			int a = experts_axis(g, p, colon);
			if (a < 0)
				return -a;
			if ((rc = tactic_experts(g, p, a, log, strict)))
				return rc;
		} else {
			return shd_error(g->ctx, ONNXSHARD_EINPUT,
			                 "--strategy: unknown tactic '%s' (known: auto[:AXES], "
			                 "exhaustive[:AXES], data[:AXIS], megatron[:AXIS], "
			                 "experts[:AXIS], or a .json file)",
			                 word);
		}
		if ((rc = prop_propagate(g, p)))
			return rc;
		s += n;
		if (*s == ',')
			s++;
	}
	return 0;
}
