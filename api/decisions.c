/* What a plan decided, in words: one entry per decision group of the
 * dimension-class analysis (the classes alike in identical layers), named
 * from its members, with the mesh axes its tensors ended on and, for what
 * stayed whole, why, with the numbers.
 *
 * requires: a materialised plan (prop_materialize), the hardware
 * provides: api_decisions (plan.decisions_made), api_decisions_print
 *
 * Naming, the first rule that holds for some member (value, dim) of the
 * group's classes:
 *   vocabulary       a class of the rows of a table that Gather looks up by
 *                    row (axis 0), or a linear's output features of that
 *                    size that no later linear contracts (the LM head)
 *   positions        the rows of such a table looked up by computed ids
 *                    (position embeddings)
 *   experts          dim 0 of a stacked [E, d, f] weight a MatMul reads as B
 *   attention heads  a last dim that a Reshape splits into [heads, head
 *                    size] or merges from it (also after an equal Split
 *                    of fused q, k, v), or that a fused attention reads as
 *                    q, k or v (its num_heads / kv_num_heads)
 *   batch, sequence, past sequence, or the dim's own name
 *                    a graph input's symbolic dim named so (containing
 *                    "batch"; "past"; "seq", "len" or "token"), in a class
 *                    without weights; dim 0 of a graph input of constant
 *                    size is "batch"
 *   hidden           an embedding table's columns, or a linear's output
 *                    features that some node needs whole (a norm's axis:
 *                    the residual stream)
 *   ffn hidden       a linear's output features that a later linear
 *                    contracts (no heads on the way)
 *   channels         a Conv weight's output channels
 *   output features  a linear's output features otherwise
 *   NAME[d]          else: the first tensor's dim */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/decisions.h"
#include "core/json.h"
#include "propagate/analysis.h"

typedef struct {
	ir_graph *g;
	const prop_plan *p;
	const prop_analysis *a;
	uint32_t *use_off, *uses; /* consumers of value v: uses[use_off[v] .. use_off[v+1]) */
} names;

/* ir_reshape_heads, at least 2 heads (a Reshape adding a dim of 1 splits
 * no heads). */
static int64_t
reshape_heads(ir_graph *g, const ir_node *n, int merge)
{
	int64_t h = ir_reshape_heads(g, n, merge);
	return h > 1 ? h : 0;
}

/* Attention heads that member (v, d) is the features of, or 0. */
static int64_t
member_heads(const names *nm, prop_slot s, int64_t *pieces)
{
	ir_graph *g = nm->g;
	const ir_value *x = &g->values[s.value];

	if (s.dim != x->rank - 1)
		return 0;
	if (x->kind == IR_V_NODE) {
		int64_t h = reshape_heads(g, &g->nodes[x->producer], 1);
		if (h)
			return h;
	}
	for (uint32_t k = nm->use_off[s.value]; k < nm->use_off[s.value + 1]; k++) {
		const ir_node *n = &g->nodes[nm->uses[k]];
		int64_t h = reshape_heads(g, n, 0);
		if (h)
			return h;
		/* a fused projection: an equal Split of the features into q, k, v,
		 * each split into heads */
		if (n->op == OP_Split && n->n_out > 1 && ir_out(g, n, 0) != IR_NONE &&
		    ir_attr_int(n, "axis", 0) % x->rank == (x->rank - 1) % x->rank) {
			uint32_t y = ir_out(g, n, 0);
			for (uint32_t j = nm->use_off[y]; j < nm->use_off[y + 1]; j++)
				if ((h = reshape_heads(g, &g->nodes[nm->uses[j]], 0))) {
					*pieces = n->n_out;
					return h;
				}
		}
		int q = ir_in(g, n, 0) == s.value;
		int kv = n->n_in > 2 && (ir_in(g, n, 1) == s.value || ir_in(g, n, 2) == s.value);
		if (n->op == OP_MsGroupQueryAttention && (q || kv))
			return ir_attr_int(n, q ? "num_heads" : "kv_num_heads", 0);
		if (n->op == OP_MsMultiHeadAttention && (q || kv))
			return ir_attr_int(n, "num_heads", 0);
	}
	return 0;
}

/* Whether initializer member (v, d) is the output features of a linear
 * (MatMul's B [.., d, f] dim f, Gemm's B by transB), or a Conv's output
 * channels (2). */
static int
member_linear(const names *nm, prop_slot s)
{
	ir_graph *g = nm->g;
	const ir_value *x = &g->values[s.value];

	for (uint32_t k = nm->use_off[s.value]; k < nm->use_off[s.value + 1]; k++) {
		const ir_node *n = &g->nodes[nm->uses[k]];
		if (n->n_in < 2 || ir_in(g, n, 1) != s.value)
			continue;
		if (n->op == OP_MatMul && x->rank >= 2 && s.dim == x->rank - 1)
			return 1;
		if (n->op == OP_Gemm && x->rank == 2 &&
		    s.dim == (ir_attr_int(n, "transB", 0) ? 0 : 1))
			return 1;
		if (n->op == OP_Conv && s.dim == 0)
			return 2;
	}
	return 0;
}

/* Whether member (v, d) is the rows (dim 0) or columns (dim 1) of a table
 * that a lookup reads by rows (ir_lookup_table): 2 when by a graph input's ids
 * (a vocabulary), else 1 (positions). */
static int
member_table(const names *nm, prop_slot s, int32_t dim)
{
	ir_graph *g = nm->g;

	if (g->values[s.value].kind != IR_V_INIT || g->values[s.value].rank != 2 || s.dim != dim)
		return 0;
	for (uint32_t k = nm->use_off[s.value]; k < nm->use_off[s.value + 1]; k++) {
		uint32_t ids;
		if (ir_lookup_table(g, &g->nodes[nm->uses[k]], &ids) == s.value)
			return g->values[ids].kind == IR_V_INPUT ? 2 : 1;
	}
	return 0;
}

/* The name of a graph input's dim: batch, sequence, past sequence, its
 * own name; NULL when symbolic but not a single name. */
static const char *
input_dim_name(ir_graph *g, const ir_value *x, int32_t d)
{
	ir_str syms[2];

	if (ir_is_const(x->dims[d]))
		return d == 0 ? "batch" : NULL;
	if (ir_dim_syms(g, x->dims[d], syms, 2) != 1)
		return NULL;
	const char *s = ir_cstr(g, syms[0]);
	if (strstr(s, "batch") || strstr(s, "Batch"))
		return "batch";
	if (strstr(s, "past"))
		return "past sequence";
	if (strstr(s, "seq") || strstr(s, "len") || strstr(s, "token"))
		return "sequence";
	return s;
}

enum {
	N_VOCAB,
	N_POSITIONS,
	N_EXPERTS,
	N_HEADS,
	N_INPUT,
	N_HIDDEN,
	N_FFN,
	N_CHANNELS,
	N_FEATURES,
	N_OTHER
};

/* Group gi's name (rank of the rule above) and, for heads, their count. */
static int
group_name(const names *nm, uint32_t gi, const char **input, int64_t *heads, int64_t *pieces)
{
	ir_graph *g = nm->g;
	const prop_analysis *a = nm->a;
	const prop_dgroup *gr = &a->groups[gi];
	int best = N_OTHER, weights = 0, repl = 0, reduced = 0;

	*input = NULL;
	*heads = 0;
	*pieces = 1;
	for (uint32_t j = 0; j < gr->n_classes; j++) {
		const prop_class *k = &a->classes[a->group_classes[gr->first_class + j]];
		weights |= (k->flags & PROP_C_WEIGHT) != 0;
		repl |= (k->flags & PROP_C_REPL) != 0;
		reduced |= (k->flags & PROP_C_REDUCED) != 0;
	}
	for (uint32_t j = 0; j < gr->n_classes && best > N_VOCAB; j++) {
		const prop_class *k = &a->classes[a->group_classes[gr->first_class + j]];
		for (uint32_t m = 0; m < k->n_members && best > N_VOCAB; m++) {
			prop_slot s = a->members[k->first + m];
			const ir_value *x = &g->values[s.value];
			int64_t h;
			int tab = member_table(nm, s, 0);
			if (tab == 2) {
				best = N_VOCAB;
			} else if (tab && best > N_POSITIONS) {
				best = N_POSITIONS;
			} else if (x->kind == IR_V_INIT && x->rank == 3 && s.dim == 0 &&
			           member_linear(nm, (prop_slot){s.value, 2}) == 1) {
				best = best < N_EXPERTS ? best : N_EXPERTS;
			} else if (best > N_HEADS && (h = member_heads(nm, s, pieces))) {
				best = N_HEADS, *heads = h;
			} else if (best > N_INPUT && x->kind == IR_V_INPUT && !weights &&
			           input_dim_name(g, x, s.dim)) {
				best = N_INPUT, *input = input_dim_name(g, x, s.dim);
			} else if (best > N_HIDDEN && member_table(nm, s, 1)) {
				best = N_HIDDEN;
			} else if (best > N_FFN && x->kind == IR_V_INIT) {
				int lin = member_linear(nm, s);
				int r = lin == 2 ? N_CHANNELS
				        : lin    ? (reduced ? N_FFN : N_FEATURES)
				                 : N_OTHER;
				best = r < best ? r : best;
			}
		}
	}
	/* the LM head: a linear's features of the vocabulary's size */
	if (best > N_VOCAB && weights) {
		const prop_class *k0 = &a->classes[a->group_classes[gr->first_class]];
		for (uint32_t i = 0; i < g->n_nodes && best > N_VOCAB; i++) {
			const ir_node *n = &g->nodes[i];
			uint32_t t = n->n_in ? ir_in(g, n, 0) : IR_NONE;
			if (n->op == OP_Gather && t != IR_NONE && g->values[t].kind == IR_V_INIT &&
			    g->values[t].rank == 2 && !ir_attr_int(n, "axis", 0) &&
			    ir_dim_eq(g->values[t].dims[0], k0->size) && best >= N_FEATURES)
				best = N_VOCAB;
		}
	}
	if ((best == N_FFN || best == N_FEATURES) && repl)
		best = N_HIDDEN;
	return best;
}

static const char *const rule_names[] = {
        "vocabulary", "positions",  "experts",  "attention heads", NULL,
        "hidden",     "ffn hidden", "channels", "output features", NULL,
};

/* The parallelism a split group stands for, or NULL. */
static const char *
parallelism(int rule, const char *name)
{
	switch (rule) {
	case N_VOCAB:
	case N_HEADS:
	case N_FFN: return "tensor parallelism";
	case N_EXPERTS: return "expert parallelism";
	case N_INPUT:
		if (!strcmp(name, "batch"))
			return "data parallelism";
		if (!strcmp(name, "sequence"))
			return "context parallelism: each rank a block of the sequence, attention "
			       "gathering K and V";
		return NULL;
	default: return NULL;
	}
}

/* ---- what the plan did with each group ---- */

/* Seeds of group gr split in plan q: how many, and the axes of the first. */
static uint32_t
seeds_split(const prop_analysis *a, const prop_dgroup *gr, const prop_plan *q, prop_dim *first)
{
	uint32_t n = 0;

	first->n = 0;
	for (uint32_t j = 0; j < gr->n_seeds; j++) {
		prop_slot s = a->seeds[gr->first_seed + j];
		const prop_shard *sh = &q->have[s.value];
		if (s.dim >= sh->rank || !sh->dims[s.dim].n)
			continue;
		if (!n++)
			*first = sh->dims[s.dim];
	}
	return n;
}

/* The plan p with group gr's seeds split over axis ax as well: its cost,
 * and how many of the seeds ended split. */
static int
alt_cost(ir_graph *g, const prop_plan *p, const ir_rule *rules, const prop_analysis *a,
         const prop_dgroup *gr, uint8_t ax, const search_hw *hw, search_cost *sc, uint32_t *split)
{
	prop_plan q;
	prop_dim first;
	int rc = prop_plan_init(g, p->mesh, &q);

	if (rc)
		return rc;
	for (uint32_t v = 0; v < g->n_values; v++) {
		if (g->values[v].rank > 0)
			memcpy(q.want[v].dims, p->want[v].dims,
			       (size_t)g->values[v].rank * sizeof(prop_dim));
		q.fixed[v] = p->fixed[v];
	}
	memcpy(q.gather_out, p->gather_out, g->n_outputs);
	q.rules = rules;
	q.bind = p->bind;
	q.bind_ud = p->bind_ud;
	for (uint32_t j = 0; j < gr->n_seeds; j++) {
		prop_slot s = a->seeds[gr->first_seed + j];
		if (!q.fixed[s.value])
			prop_seed_padded(g, &q, s.value, s.dim, ax,
			                 a->seed_pieces[gr->first_seed + j], 0,
			                 a->seed_unit[gr->first_seed + j]); /* as the search */
	}
	if (!(rc = prop_propagate(g, &q)) && !(rc = prop_materialize(g, &q)) &&
	    !(rc = search_simulate(g, &q, hw, sc)))
		*split = seeds_split(a, gr, &q, &first);
	prop_plan_free(g, &q);
	return rc;
}

/* s in s, ms or us, to that many significant digits. */
static void
fmt_time(char *out, size_t n, double s, int digits)
{
	double m = fabs(s);

	if (m == 0)
		snprintf(out, n, "0 s");
	else if (m < 1e-3)
		snprintf(out, n, "%.*g us", digits, s * 1e6);
	else if (m < 1)
		snprintf(out, n, "%.*g ms", digits, s * 1e3);
	else
		snprintf(out, n, "%.*g s", digits, s);
}

/* Why group gr stayed whole: words with numbers into why. */
static int
why_whole(ir_graph *g, const prop_plan *p, const ir_rule *rules, const prop_analysis *a,
          const prop_dgroup *gr, const search_hw *hw, const search_cost *cur, int searched,
          const char *strategy, const char *name, int64_t size, int64_t heads,
          const char *const *taken, char *why, size_t n)
{
	const prop_mesh *m = p->mesh;
	uint8_t fit[PROP_MAX_AXES];
	uint32_t n_fit = 0;
	size_t len = 0;

	/* divisibility first: a split needs the heads (else the size) whole per
	 * rank, but the search pads a weight's dim (so it weighed every axis) */
	int padded = 0;
	for (uint32_t j = 0; searched && j < gr->n_seeds; j++)
		padded |= g->values[a->seeds[gr->first_seed + j].value].kind == IR_V_INIT;
	for (uint32_t i = 0; i < m->n_axes; i++)
		if (size < 0 || padded || (heads ? heads : size) % m->sizes[i] == 0)
			fit[n_fit++] = (uint8_t)i;
	if (!n_fit) {
		len = (size_t)snprintf(why, n, "%s %lld %s not divide by ", heads ? "heads" : name,
		                       (long long)(heads ? heads : size), heads ? "do" : "does");
		for (uint32_t i = 0; i < m->n_axes && len < n; i++)
			len += (size_t)snprintf(why + len, n - len, "%s%s=%lld",
			                        i ? (i + 1 == m->n_axes ? " or " : ", ") : "",
			                        m->names[i], (long long)m->sizes[i]);
		return 0;
	}
	/* a reason a tactic or propagation recorded for every tensor of it
	 * (a note names a tensor, not a dim: one on some of them may be about
	 * another of their dims) */
	const char *note = NULL;
	for (uint32_t j = 0; j < gr->n_seeds; j++) {
		const char *w = NULL;
		for (uint32_t i = 0; i < p->n_notes && !w; i++)
			if (p->notes[i].value == a->seeds[gr->first_seed + j].value)
				w = p->notes[i].why;
		if (!w) {
			note = NULL;
			break;
		}
		note = note ? note : w;
	}
	if (note) {
		snprintf(why, n, "%s", note);
		return 0;
	}
	if (!searched) {
		snprintf(why, n, "not a target of %s", strategy);
		return 0;
	}
	/* the search's reason: the plan with it split over each axis that fits */
	int best = -1, rc;
	search_cost bc = {0};
	for (uint32_t i = 0; i < n_fit; i++) {
		search_cost sc;
		uint32_t split = 0;
		if ((rc = alt_cost(g, p, rules, a, gr, fit[i], hw, &sc, &split)))
			return rc;
		if (!split)
			continue;
		if (best < 0 || (sc.feasible && (!bc.feasible || sc.step_s < bc.step_s)))
			best = fit[i], bc = sc;
	}
	if (best < 0) {
		/* an axis splits one dim of a tensor: another decision has it */
		const char *owner = NULL;
		int same = 1;
		for (uint32_t i = 0; i < n_fit; i++)
			if (taken[fit[i]]) {
				same &= !owner || !strcmp(owner, taken[fit[i]]);
				owner = owner ? owner : taken[fit[i]];
			}
		for (uint32_t i = 0; owner && i < n_fit && len < n; i++) {
			if (!taken[fit[i]])
				continue;
			len += (size_t)snprintf(why + len, n - len, "%s%s=%lld", len ? " and " : "",
			                        m->names[fit[i]], (long long)m->sizes[fit[i]]);
			if (!same && len < n)
				len += (size_t)snprintf(why + len, n - len, " by %s",
				                        taken[fit[i]]);
		}
		if (owner) {
			if (same && len < n)
				snprintf(why + len, n - len,
				         " taken by %s in the tensors they share", owner);
			else if (len < n)
				snprintf(why + len, n - len, " taken in the tensors they share");
			return 0;
		}
		snprintf(why, n,
		         "a neighbour needs it whole: seeded over %s, propagation "
		         "leaves it whole",
		         m->names[fit[0]]);
		return 0;
	}
	char t1[32], t2[32], dc[32], dm[32];
	/* digits enough to tell the two apart */
	for (int digits = 3; digits <= 9; digits++) {
		fmt_time(t1, sizeof t1, bc.step_s, digits);
		fmt_time(t2, sizeof t2, cur->step_s, digits);
		if (strcmp(t1, t2))
			break;
	}
	fmt_time(dm, sizeof dm, bc.comm_s - cur->comm_s, 3);
	fmt_time(dc, sizeof dc, bc.compute_s - cur->compute_s, 3);
	if (!bc.feasible)
		snprintf(why, n,
		         "does not fit split over %s: %.3g GB per rank, the device has %.3g GB",
		         m->names[best], (double)bc.peak_bytes / 1e9, hw->mem_cap / 1e9);
	else if (bc.step_s >= cur->step_s)
		snprintf(why, n,
		         "cheaper whole: over %s the step would take %s, not %s (communication "
		         "%s%s, compute %s%s)",
		         m->names[best], t1, t2, bc.comm_s >= cur->comm_s ? "+" : "", dm,
		         bc.compute_s >= cur->compute_s ? "+" : "", dc);
	else
		snprintf(why, n,
		         "not found by the search: over %s the step would take %s, not %s (a "
		         "larger --budget may find it)",
		         m->names[best], t1, t2);
	return 0;
}

int
api_decisions(ir_graph *g, const prop_plan *p, const search_hw *hw, const char *strategy,
              json_t **out)
{
	shd_ctx *c = g->ctx;
	prop_analysis a;
	shd_arena ra = {0};
	ir_rule *rules = NULL;
	names nm = {g, p, &a, NULL, NULL};
	json_t *arr = NULL;
	search_cost cur;
	int rc, bad = 0;
	int searched = strstr(strategy, "auto") || strstr(strategy, "exhaustive");

	*out = NULL;
	if ((rc = prop_analyze(g, &a)))
		return rc;
	if ((rc = ir_consumers(g, &nm.use_off, &nm.uses)))
		goto out;
	if (!(rules = shd_arena_zalloc(c, &ra, (g->n_nodes + 1) * sizeof *rules))) {
		rc = shd_nomem(c);
		goto out;
	}
	if ((rc = prop_rules(g, &ra, rules)) || (rc = search_simulate(g, p, hw, &cur)))
		goto out;
	arr = json_array();
	/* pass 1: names and axes; pass 2: why what stayed whole did */
	const char *taken[PROP_MAX_AXES] = {0};
	for (int pass = 0; pass < 2 && !rc; pass++) {
		size_t entry = 0;
		for (uint32_t gi = 0; gi < a.n_groups && !bad; gi++) {
			const prop_dgroup *gr = &a.groups[gi];
			if (!gr->n_seeds)
				continue;
			const prop_class *k0 = &a.classes[a.group_classes[gr->first_class]];
			prop_slot rep = a.seeds[gr->first_seed];
			const char *input;
			int64_t heads, pieces, size = -1;
			int rule = group_name(&nm, gi, &input, &heads, &pieces);
			char other[256], why[512] = "";
			const char *name = rule_names[rule];
			if (rule == N_INPUT) {
				name = input;
			} else if (!name) {
				snprintf(other, sizeof other, "%s[%d]",
				         ir_cstr(g, g->values[rep.value].name), rep.dim);
				name = other;
			}
			ir_dim_eval(g, k0->size, p->bind, p->bind_ud, &size);
			prop_dim first;
			uint32_t split = seeds_split(&a, gr, p, &first);
			if (pass) {
				json_t *e = json_array_get(arr, entry++);
				if (!split) {
					if ((rc = why_whole(g, p, rules, &a, gr, hw, &cur, searched,
					                    strategy, name, size, heads, taken, why,
					                    sizeof why)))
						break;
				}
				if (*why)
					shd_jset(e, "why", shd_jstr(why, &bad), &bad);
				continue;
			}
			for (uint8_t i = 0; i < first.n; i++)
				if (!taken[first.ax[i]])
					taken[first.ax[i]] =
					        rule_names[rule] ? rule_names[rule] : input;
			json_t *e = json_object(), *axes = json_array();
			shd_jset(e, "name", shd_jstr(name, &bad), &bad);
			shd_jset(e, "size",
			         size >= 0 ? json_integer(size)
			                   : shd_jstr(ir_dim_str(g, k0->size), &bad),
			         &bad);
			if (heads)
				shd_jset(e, "heads", json_integer(heads), &bad);
			if (pieces > 1)
				shd_jset(e, "pieces", json_integer(pieces), &bad);
			shd_jset(e, "tensor", shd_jstr(ir_cstr(g, g->values[rep.value].name), &bad),
			         &bad);
			shd_jset(e, "dim", json_integer(rep.dim), &bad);
			shd_jset(e, "classes", json_integer(gr->n_classes), &bad);
			shd_jset(e, "tensors", json_integer(gr->n_seeds), &bad);
			for (uint8_t i = 0; i < first.n; i++)
				shd_jpush(axes, shd_jstr(p->mesh->names[first.ax[i]], &bad), &bad);
			shd_jset(e, "axes", axes, &bad);
			shd_jset(e, "split", json_integer(split), &bad);
			if (split && first.pad && size > 0) {
				/* split padded: the size the blocks make, past the true one */
				int64_t shards = prop_axes_size(p->mesh, first.ax, first.n);
				shd_jset(e, "padded",
				         json_integer(prop_padded_local(size, &first, shards) *
				                      shards),
				         &bad);
			}
			if (split && parallelism(rule, name))
				shd_jset(e, "as", shd_jstr(parallelism(rule, name), &bad), &bad);
			if (split && split < gr->n_seeds) {
				snprintf(why, sizeof why, "%u of the %u tensors split", split,
				         gr->n_seeds);
				for (uint32_t j = 0; j < gr->n_seeds; j++) {
					prop_slot s = a.seeds[gr->first_seed + j];
					const prop_shard *sh = &p->have[s.value];
					if (s.dim < sh->rank && sh->dims[s.dim].n)
						continue;
					for (uint32_t i = 0; i < p->n_notes; i++)
						if (p->notes[i].value == s.value) {
							size_t l = strlen(why);
							snprintf(
							        why + l, sizeof why - l,
							        "; '%s': %s",
							        ir_cstr(g, g->values[s.value].name),
							        p->notes[i].why);
							j = gr->n_seeds;
							break;
						}
				}
			}
			if (*why)
				shd_jset(e, "why", shd_jstr(why, &bad), &bad);
			shd_jpush(arr, e, &bad);
		}
	}
	if (!rc && bad)
		rc = shd_nomem(c);
out:
	if (rc)
		json_decref(arr);
	else
		*out = arr;
	shd_free(c, nm.use_off, ((size_t)g->n_values + 2) * sizeof *nm.use_off);
	shd_free(c, nm.uses, ((size_t)g->n_args + 1) * sizeof *nm.uses);
	shd_arena_free(c, &ra);
	prop_analysis_free(g, &a);
	return rc;
}

void
api_decisions_print(json_t *arr, FILE *out)
{
	json_t *e, *ax;
	size_t i, j;

	if (!json_array_size(arr))
		return;
	fprintf(out, "  decisions (%zu groups of dims split alike):\n", json_array_size(arr));
	json_array_foreach(arr, i, e)
	{
		json_t *size = json_object_get(e, "size");
		long long heads = json_integer_value(json_object_get(e, "heads"));
		long long n = json_integer_value(json_object_get(e, "tensors"));
		fprintf(out, "    %s ", json_string_value(json_object_get(e, "name")));
		if (json_is_integer(size))
			fprintf(out, "%lld", (long long)json_integer_value(size));
		else
			fputs(json_string_value(size), out);
		long long pieces = json_integer_value(json_object_get(e, "pieces"));
		if (pieces > 1 && heads && json_is_integer(size))
			fprintf(out, " (%lld pieces of %lld heads x %lld)", pieces, heads,
			        (long long)json_integer_value(size) / pieces / heads);
		else if (heads && json_is_integer(size))
			fprintf(out, " (%lld heads x %lld)", heads,
			        (long long)json_integer_value(size) / heads);
		fprintf(out, ", %lld tensor%s like %s[%lld]: ", n, n == 1 ? "" : "s",
		        json_string_value(json_object_get(e, "tensor")),
		        (long long)json_integer_value(json_object_get(e, "dim")));
		if (json_array_size(json_object_get(e, "axes"))) {
			fputs("over ", out);
			json_array_foreach(json_object_get(e, "axes"), j, ax)
			        fprintf(out, "%s%s", j ? "+" : "", json_string_value(ax));
			if (json_integer_value(json_object_get(e, "padded")))
				fprintf(out, " padded to %lld",
				        (long long)json_integer_value(
				                json_object_get(e, "padded")));
			if (json_string_value(json_object_get(e, "as")))
				fprintf(out, ", %s", json_string_value(json_object_get(e, "as")));
		} else {
			fputs("whole", out);
		}
		if (json_string_value(json_object_get(e, "why")))
			fprintf(out, " (%s)", json_string_value(json_object_get(e, "why")));
		fputc('\n', out);
	}
}
