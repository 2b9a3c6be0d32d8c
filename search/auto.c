/* The automatic strategy: MCTS over the decision groups of the
 * dimension-class analysis, each rollout scored by the simulator.
 * A decision gives one group (the same classes in every identical layer)
 * a set of mesh axes (none, one, or several: the batch over both axes of
 * a 2-D mesh); a rollout seeds every initializer and graph-input slot of
 * the group's classes with them, propagates, materialises and simulates
 * one forward step: the cost is the step time, infinite when the plan
 * does not fit the device. The baselines (data, megatron, data,megatron,
 * after the same earlier tactics) are scored too, so auto is never worse
 * than the best of them that fits.
 * requires: a lifted graph, a plan whose earlier tactics are applied (want[]),
 *   a hardware profile
 * provides: want[] of the best plan found (seeds applied and propagated) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "emit/lower.h"
#include "propagate/analysis.h"
#include "search_impl.h"

/* A graph plans are costed on: the whole graph, or a truncated copy
 * (fold.c) whose values map to the whole graph's. */
typedef struct {
	ir_graph *g;
	const uint32_t *of_full, *to_full; /* NULL: g is the whole graph */
	const ir_rule *rules;              /* every node's, built once */
} view;

typedef struct {
	ir_graph *g;
	const prop_plan *base; /* earlier tactics applied */
	search_env *env;
	const prop_analysis *a;
	uint32_t n_dec;
	uint32_t *group; /* per decision: its analysis group */
	uint8_t axes[PROP_MAX_AXES];
	uint32_t n_axes;  /* the axes auto may use, in mesh order */
	view full;        /* the whole graph */
	search_fold fold; /* per-layer costing, when fold.on */
	view sub[2];      /* its copies of 2 and 3 blocks */
	uint32_t scored;  /* plans scored so far, and the best cost (progress) */
	double best, t0, shown;
	uint32_t budget;      /* plans the search may score (0: until it stops improving) */
	uint8_t mask[256];    /* option k of a decision: the axes mask[k] (bit i: axes[i]) */
	uint32_t n_opt;       /* options per decision */
	search_cost min_cost; /* the smallest peak seen (nothing fits: the error) */
	int skew; /* ONNXSHARD_TEST_FOLD_SKEW set: per-layer costs made wrong (a test) */
} auto_state;

/* A fresh plan on w with base's wants (the earlier tactics). */
static int
copy_plan(const view *w, const prop_plan *base, prop_plan *q)
{
	ir_graph *g = w->g;
	int rc = prop_plan_init(g, base->mesh, q);

	if (rc)
		return rc;
	for (uint32_t v = 0; v < g->n_values; v++) {
		uint32_t f = w->to_full ? w->to_full[v] : v;
		if (g->values[v].rank > 0)
			memcpy(q->want[v].dims, base->want[f].dims,
			       (size_t)g->values[v].rank * sizeof(prop_dim));
		q->fixed[v] = base->fixed[f];
	}
	q->rules = w->rules;
	q->bind = base->bind;
	q->bind_ud = base->bind_ud;
	q->stop = base->stop;
	q->stop_ud = base->stop_ud;
	return 0;
}

/* Seed decision k's option o (a subset of the axes, bit i: axes[i]) on w. */
static void
seed_option(auto_state *s, const view *w, prop_plan *q, uint32_t k, uint8_t o)
{
	const prop_dgroup *gr = &s->a->groups[s->group[k]];

	for (uint32_t i = 0; i < s->n_axes; i++) {
		if (!(s->mask[o] & (1u << i)))
			continue;
		for (uint32_t j = 0; j < gr->n_seeds; j++) {
			const prop_slot *sl = &s->a->seeds[gr->first_seed + j];
			uint32_t v = w->of_full ? w->of_full[sl->value] : sl->value;
			/* a weight's dim that does not divide is padded (a choice the
			 * simulator weighs: the padding costs memory and compute) at
			 * the granularity its uses need, piece by piece; graph inputs
			 * (the batch) only split where they divide */
			if (v != IR_NONE && !q->fixed[v])
				prop_seed_padded(w->g, q, v, sl->dim, s->axes[i],
				                 s->a->seed_pieces[gr->first_seed + j], 0,
				                 s->a->seed_unit[gr->first_seed + j]);
		}
	}
}

/* Materialise and simulate q on w: *out, and whether ORT's collectives
 * can run it (when they must). */
static int
score_plan(auto_state *s, const view *w, prop_plan *q, search_cost *out, int *runs)
{
	int rc;
	char why[160];

	if ((rc = prop_materialize(w->g, q)) || (rc = search_simulate(w->g, q, s->env->hw, out)))
		return rc;
	*runs = !(s->env->ort && emit_ort_why(w->g, q, why, sizeof why));
	return 0;
}

/* The cost of a plan: its step time, INFINITY when it does not fit or
 * ORT cannot run it; the smallest peak kept for the error. */
static double
cost_of(auto_state *s, const search_cost *sc, int runs)
{
	if (!s->min_cost.peak_bytes || sc->peak_bytes < s->min_cost.peak_bytes)
		s->min_cost = *sc;
	return sc->feasible && runs ? sc->step_s : INFINITY;
}

/* Choice's plan on w, simulated. */
static int
simulate_on(auto_state *s, const view *w, const uint8_t *choice, search_cost *sc, int *runs)
{
	prop_plan q;
	int rc;

	if ((rc = copy_plan(w, s->base, &q)))
		return rc;
	for (uint32_t k = 0; k < s->n_dec; k++)
		if (choice[k])
			seed_option(s, w, &q, k, choice[k]);
	if (!(rc = prop_propagate(w->g, &q)))
		rc = score_plan(s, w, &q, sc, runs);
	prop_plan_free(w->g, &q);
	return rc;
}

/* x(reps) on the line through x(2) = a and x(3) = b, at least 0. */
static double
line(double a, double b, double reps)
{
	double x = a + (reps - 2) * (b - a);
	return x > 0 ? x : 0;
}

/* The whole graph's step from its copies of 2 and 3 blocks (fold.c). */
static void
extrapolate(const search_cost *a, const search_cost *b, double reps, const search_hw *hw,
            search_cost *out)
{
	memset(out, 0, sizeof *out);
	out->step_s = line(a->step_s, b->step_s, reps);
	out->compute_s = line(a->compute_s, b->compute_s, reps);
	out->comm_s = line(a->comm_s, b->comm_s, reps);
#define LINE(f) out->f = (uint64_t)line((double)a->f, (double)b->f, reps)
	LINE(param_bytes);
	LINE(act_peak_bytes);
	LINE(io_bytes);
	LINE(comm_bytes);
	LINE(flops);
	for (int k = 0; k < 4; k++)
		LINE(comm_by_kind[k]);
#undef LINE
	out->peak_bytes = out->param_bytes + out->act_peak_bytes + out->io_bytes;
	out->feasible = (double)out->peak_bytes <= hw->mem_cap;
	out->exact = a->exact && b->exact;
}

static int
eval(void *ud, const uint8_t *choice, double *cost)
{
	auto_state *s = ud;
	search_cost sc, sb;
	int rc, runs = 1, runs_b = 1;

	if (!s->fold.on) {
		rc = simulate_on(s, &s->full, choice, &sc, &runs);
	} else if (!(rc = simulate_on(s, &s->sub[0], choice, &sc, &runs)) &&
	           !(rc = simulate_on(s, &s->sub[1], choice, &sb, &runs_b))) {
		search_cost a = sc;
		extrapolate(&a, &sb, s->fold.reps, s->env->hw, &sc);
		if (s->skew) /* a test's: the whole graph's check must catch it */
			sc.step_s *= 1 + 0.01 * (choice[0] + 1);
	}
	if (rc)
		return rc;
	*cost = cost_of(s, &sc, runs && runs_b);
	s->scored++;
	if (*cost < s->best)
		s->best = *cost;
	double t = shd_now();
	if (s->env->progress && t - s->t0 > 1 && t - s->shown > 0.25) {
		s->shown = t;
		fprintf(s->env->progress, "\rsearch: %u plans scored", s->scored);
		if (s->budget)
			fprintf(s->env->progress, " of %u", s->budget);
		if (s->env->deadline > 0)
			fprintf(s->env->progress, ", %.1f of %.0fs", t - s->t0,
			        s->env->deadline - s->t0);
		fprintf(s->env->progress, ", best %.4g s per step   ", s->best);
		fflush(s->env->progress);
	}
	return 0;
}

const char *const search_baselines[SEARCH_BASELINES] = {"data", "megatron", "data,megatron"};

int
search_baseline_applies(const prop_mesh *m, const char *strategy)
{
	return (!strstr(strategy, "data") || prop_mesh_axis(m, "data") >= 0) &&
	       (!strstr(strategy, "megatron") || prop_mesh_axis(m, "model") >= 0);
}

/* The decisions closest to plan q: per decision, the option of the axes
 * its first split seed has in q (none split: no split). */
static void
project(const auto_state *s, const prop_plan *q, uint8_t *choice)
{
	for (uint32_t k = 0; k < s->n_dec; k++) {
		const prop_dgroup *gr = &s->a->groups[s->group[k]];
		uint32_t x = 0;
		for (uint32_t j = 0; j < gr->n_seeds && !x; j++) {
			const prop_slot *sl = &s->a->seeds[gr->first_seed + j];
			const prop_dim *d = &q->want[sl->value].dims[sl->dim];
			for (uint8_t t = 0; t < d->n; t++)
				for (uint32_t i = 0; i < s->n_axes; i++)
					if (s->axes[i] == d->ax[t])
						x |= 1u << i;
		}
		choice[k] = 0;
		for (uint32_t o = 0; o < s->n_opt; o++)
			if (s->mask[o] == x)
				choice[k] = (uint8_t)o;
	}
}

/* A baseline (a tactic list) after the earlier tactics: its cost, and its
 * projection on the decisions into choice. */
static int
baseline(auto_state *s, const char *strategy, double *cost, uint8_t *choice)
{
	prop_plan q;
	search_cost sc;
	int rc;

	*cost = INFINITY;
	if ((rc = copy_plan(&s->full, s->base, &q)))
		return rc;
	int runs;
	if (!(rc = search_apply(s->g, &q, strategy, NULL)) &&
	    !(rc = score_plan(s, &s->full, &q, &sc, &runs))) {
		*cost = cost_of(s, &sc, runs);
		project(s, &q, choice);
	}
	prop_plan_free(s->g, &q);
	return rc;
}

/* Weight of a group: the elements of the tensors its seeds split (big
 * decisions first). */
static double
group_weight(const auto_state *s, uint32_t gi)
{
	const prop_dgroup *gr = &s->a->groups[gi];
	double w = 0;

	for (uint32_t j = 0; j < gr->n_seeds; j++) {
		const ir_value *v = &s->g->values[s->a->seeds[gr->first_seed + j].value];
		double n = 1;
		for (int32_t d = 0; d < v->rank; d++) {
			int64_t x = 1;
			ir_dim_eval(s->g, v->dims[d], s->base->bind, s->base->bind_ud, &x);
			n *= (double)(x > 0 ? x : 1);
		}
		w += n;
	}
	return w;
}

static const char *
human_bytes(char *buf, size_t n, uint64_t b)
{
	snprintf(buf, n, "%.3g GB", (double)b / 1e9);
	return buf;
}

/* Every node's rule of w's graph, in arena ra. */
static int
rules_of(view *w, shd_arena *ra)
{
	ir_rule *r = shd_arena_zalloc(w->g->ctx, ra, (w->g->n_nodes + 1) * sizeof *r);
	int rc = r ? prop_rules(w->g, ra, r) : shd_nomem(w->g->ctx);

	w->rules = r;
	return rc;
}

/* The search. With per-layer costing its best is costed again on the
 * whole graph; where the two differ (by more than 1e-6), or nothing was
 * found, the search runs again on the whole graph. */
static int
run_search(auto_state *s, const mcts_opts *mo, const uint8_t *starts, uint32_t n_start,
           uint8_t *best, mcts_result *res, FILE *log)
{
	shd_ctx *c = s->g->ctx;
	search_cost sc;
	int rc, runs;

	if ((rc = mcts_search(c, mo, eval, s, starts, n_start, best, res)) || !s->fold.on)
		return rc;
	double whole = INFINITY;
	if (isfinite(res->best_cost)) {
		if ((rc = simulate_on(s, &s->full, best, &sc, &runs)))
			return rc;
		whole = cost_of(s, &sc, runs);
		if (fabs(whole - res->best_cost) <= 1e-6 * whole) {
			res->best_cost = whole;
			return 0;
		}
	}
	if (log)
		fprintf(log,
		        "auto: per-layer costing gave %.6g s per step, the whole graph %.6g s: "
		        "searching the whole graph\n",
		        res->best_cost, whole);
	uint32_t before = res->scored;
	s->fold.on = 0;
	rc = mcts_search(c, mo, eval, s, starts, n_start, best, res);
	res->scored += before;
	return rc;
}

/* Why the search stopped, for its log line. */
static void
why_stopped(char *buf, size_t n, const mcts_result *r, double space, uint32_t budget)
{
	switch (r->why) {
	case MCTS_ENUMERATED: snprintf(buf, n, "every one of the %.0f plans scored", space); break;
	case MCTS_BUDGET: snprintf(buf, n, "the budget of %u plans reached", budget); break;
	case MCTS_TIME: snprintf(buf, n, "its time share reached at %u plans", r->scored); break;
	case MCTS_PATIENCE:
		snprintf(buf, n, "converged: the last %u plans did not better the best",
		         r->patience);
		break;
	case MCTS_STOPPED: snprintf(buf, n, "stopped"); break;
	default: snprintf(buf, n, "converged: nothing new to try after %u plans", r->scored);
	}
}

/* Decisions: the groups with seeds, heaviest first. */
static int
order_decisions(auto_state *s)
{
	shd_ctx *c = s->g->ctx;
	const prop_analysis *a = s->a;
	double *weight = shd_calloc(c, a->n_groups + 1, sizeof *weight);

	if (!weight)
		return shd_nomem(c);
	for (uint32_t gi = 0; gi < a->n_groups; gi++)
		if (a->groups[gi].n_seeds)
			s->group[s->n_dec++] = gi;
	for (uint32_t k = 0; k < s->n_dec; k++)
		weight[k] = group_weight(s, s->group[k]);
	for (uint32_t k = 1; k < s->n_dec; k++)
		for (uint32_t j = k; j > 0 && weight[j] > weight[j - 1]; j--) {
			double w = weight[j];
			uint32_t t = s->group[j];
			weight[j] = weight[j - 1], s->group[j] = s->group[j - 1];
			weight[j - 1] = w, s->group[j - 1] = t;
		}
	shd_free(c, weight, ((size_t)a->n_groups + 1) * sizeof *weight);
	/* options: every subset of the axes, or past three axes one axis each */
	if (s->n_axes <= 3) {
		s->n_opt = 1u << s->n_axes;
		for (uint32_t o = 0; o < s->n_opt; o++)
			s->mask[o] = (uint8_t)o;
	} else {
		s->n_opt = s->n_axes + 1;
		for (uint32_t o = 1; o < s->n_opt; o++)
			s->mask[o] = (uint8_t)(1u << (o - 1));
	}
	return 0;
}

int
search_auto(ir_graph *g, prop_plan *p, uint8_t axes_mask, search_env *env, int exhaustive,
            FILE *log)
{
	shd_ctx *c = g->ctx;
	prop_analysis a;
	auto_state s;
	uint8_t *n_opt = NULL, *starts = NULL, *best = NULL;
	size_t n_starts = SEARCH_BASELINES + 1;
	int rc;

	shd_arena ra = {0};

	memset(&s, 0, sizeof s);
	if ((rc = prop_analyze(g, &a)))
		return rc;
	s.full.g = g;
	if ((rc = rules_of(&s.full, &ra)) || (rc = search_fold_init(g, &s.fold)))
		goto out;
	for (uint32_t i = 0; s.fold.on && i < 2; i++) {
		fold_graph *f = &s.fold.sub[i];
		s.sub[i] = (view){&f->g, f->of_full, f->to_full, NULL};
		if ((rc = rules_of(&s.sub[i], &ra)))
			goto out;
	}
	s.skew = getenv("ONNXSHARD_TEST_FOLD_SKEW") != NULL;
	s.g = g;
	s.base = p;
	s.best = INFINITY;
	s.t0 = shd_now();
	s.env = env;
	s.a = &a;
	for (uint32_t i = 0; i < p->mesh->n_axes; i++)
		if (axes_mask & (1u << i))
			s.axes[s.n_axes++] = (uint8_t)i;
	s.group = shd_calloc(c, a.n_groups + 1, sizeof *s.group);
	n_opt = shd_calloc(c, a.n_groups + 1, 1);
	starts = shd_calloc(c, n_starts * (a.n_groups + 1), 1);
	best = shd_calloc(c, a.n_groups + 1, 1);
	if (!s.group || !n_opt || !starts || !best) {
		rc = shd_nomem(c);
		goto out;
	}
	if ((rc = order_decisions(&s)))
		goto out;
	memset(n_opt, (int)s.n_opt, s.n_dec);
	/* the baselines, on the axes they would take; their plans' decisions
	 * are the search's starts after no split at all */
	const char *winner = NULL;
	double bc[SEARCH_BASELINES], best_cost = INFINITY, t0 = shd_now();
	uint32_t n_start = 1, n_base = 0;
	for (int i = 0; i < SEARCH_BASELINES; i++) {
		bc[i] = INFINITY;
		if (!search_baseline_applies(p->mesh, search_baselines[i]))
			continue;
		if ((rc = baseline(&s, search_baselines[i], &bc[i], starts + n_start * s.n_dec)))
			goto out;
		n_base++;
		n_start++;
		if (bc[i] < best_cost)
			best_cost = bc[i], winner = search_baselines[i];
	}
	/* the default stops once the best stops improving, or at a tenth of
	 * the time budget; a budget of plans is spent whole */
	double deadline = env->deadline;
	if (!env->rollouts && !exhaustive && deadline > 0)
		deadline = s.t0 + (deadline - s.t0) / 10;
	mcts_opts mo = {s.n_dec,
	                n_opt,
	                s.mask,
	                s.n_opt,
	                env->seed,
	                env->rollouts,
	                env->rollouts ? 0 : SEARCH_PATIENCE,
	                env->rollouts ? env->rollouts : SEARCH_ENUMERATE,
	                deadline,
	                exhaustive,
	                p->stop,
	                p->stop_ud};
	mcts_result res = {INFINITY, 0, MCTS_EXHAUSTED, 0};
	double space = mcts_space(&mo);
	s.budget = exhaustive || space <= mo.enumerate ? (uint32_t)fmin(space, UINT32_MAX)
	                                               : env->rollouts;
	if (s.n_dec && (rc = run_search(&s, &mo, starts, n_start, best, &res, log)))
		goto out;
	if (res.best_cost <= best_cost)
		best_cost = res.best_cost, winner = NULL;
	if (!isfinite(best_cost)) {
		char b1[32], b2[32], b3[32], b4[32], b5[32];
		rc = shd_error(c, ONNXSHARD_EINPUT,
		               "%s: no plan found fits %s per device: the smallest needs %s per "
		               "rank (parameters %s, activations %s, inputs and outputs %s)",
		               g->model->path,
		               human_bytes(b1, sizeof b1, (uint64_t)env->hw->mem_cap),
		               human_bytes(b2, sizeof b2, s.min_cost.peak_bytes),
		               human_bytes(b3, sizeof b3, s.min_cost.param_bytes),
		               human_bytes(b4, sizeof b4, s.min_cost.act_peak_bytes),
		               human_bytes(b5, sizeof b5, s.min_cost.io_bytes));
		goto out;
	}
	env->decisions = s.n_dec;
	env->scored = res.scored + n_base;
	env->chose = winner;
	if (winner) {
		rc = search_apply(g, p, winner, NULL);
	} else {
		for (uint32_t k = 0; k < s.n_dec; k++)
			if (best[k])
				seed_option(&s, &s.full, p, k, best[k]);
		rc = prop_propagate(g, p);
	}
	char stopped[128];
	why_stopped(stopped, sizeof stopped, &res, space, env->rollouts);
	if (env->progress && s.shown > 0)
		fprintf(env->progress, "\nsearch: stopped: %s\n", stopped);
	if (log && !rc) {
		uint32_t split = 0;
		for (uint32_t k = 0; k < s.n_dec; k++)
			split += best[k] != 0;
		fprintf(log,
		        "auto: %u decision groups (%u classes), %u plans scored in %.2fs (%s): ",
		        s.n_dec, a.n_decisions, env->scored, shd_now() - t0, stopped);
		if (s.fold.on)
			fprintf(log,
			        "costed per layer (%u identical blocks of %u nodes): ", s.fold.reps,
			        s.fold.period);
		if (winner)
			fprintf(log, "the baseline %s is best, %.3g s per step", winner, best_cost);
		else
			fprintf(log, "%.3g s per step, %u groups seeded", best_cost, split);
		for (int i = 0; i < SEARCH_BASELINES; i++)
			if (isfinite(bc[i]))
				fprintf(log, "; %s %.3g s", search_baselines[i], bc[i]);
		fputc('\n', log);
	}
out:
	search_fold_free(g, &s.fold);
	shd_free(c, s.group, ((size_t)a.n_groups + 1) * sizeof *s.group);
	shd_free(c, n_opt, (size_t)a.n_groups + 1);
	shd_free(c, starts, n_starts * (a.n_groups + 1));
	shd_free(c, best, (size_t)a.n_groups + 1);
	prop_analysis_free(g, &a);
	shd_arena_free(c, &ra);
	return rc;
}
