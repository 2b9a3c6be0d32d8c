/* Monte Carlo Tree Search over a sequence of decisions (and exhaustive
 * enumeration when the space is small).
 * A decision k has n_opt[k] options; a full assignment is scored by the
 * caller (a cost: lower is better, INFINITY when invalid). The tree fixes
 * decisions in order: each node is a prefix, selected by UCT on rewards
 * best/cost in (0, 1]; the rest of a rollout is drawn at random. Full
 * assignments are cached, so a space smaller than the budget is not
 * scored twice. Deterministic for a seed.
 * requires: n_dec decisions with 1..255 options each, a scoring function
 * provides: the best assignment found and its cost */
#include <math.h>
#include <string.h>

#include "search_impl.h"

typedef struct {
	uint32_t child;  /* index of the first child (n_opt[depth] of them), 0: none yet */
	uint32_t visits; /* rollouts through this prefix */
	double reward;   /* sum of rewards */
} tnode;

typedef struct {
	shd_ctx *c;
	const mcts_opts *o;
	mcts_evalf eval;
	void *ud;
	tnode *t;
	uint32_t n_t, cap_t;
	uint64_t *keys; /* cache of scored assignments: hash -> slot */
	double *costs;
	uint32_t cap_cache, n_cache;
	uint64_t rng;
	uint8_t *cur, *best;
	double best_cost;
	uint32_t scored;
} mcts;

static uint64_t
next_rand(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t
hash_of(const uint8_t *a, uint32_t n)
{
	uint64_t h = 1469598103934665603u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ a[i]) * 1099511628211u;
	return h | 1; /* 0 marks an empty slot */
}

static int
grow_cache(mcts *m)
{
	uint32_t ncap = m->cap_cache ? 2 * m->cap_cache : 1024;
	uint64_t *k = shd_calloc(m->c, ncap, sizeof *k);
	double *v = shd_calloc(m->c, ncap, sizeof *v);

	if (!k || !v) {
		shd_free(m->c, k, ncap * sizeof *k);
		shd_free(m->c, v, ncap * sizeof *v);
		return shd_nomem(m->c);
	}
	for (uint32_t i = 0; i < m->cap_cache; i++)
		if (m->keys[i]) {
			uint32_t j = (uint32_t)(m->keys[i] & (ncap - 1));
			while (k[j])
				j = (j + 1) & (ncap - 1);
			k[j] = m->keys[i];
			v[j] = m->costs[i];
		}
	shd_free(m->c, m->keys, m->cap_cache * sizeof *m->keys);
	shd_free(m->c, m->costs, m->cap_cache * sizeof *m->costs);
	m->keys = k;
	m->costs = v;
	m->cap_cache = ncap;
	return 0;
}

/* The cost of m->cur, scored once. */
static int
score(mcts *m, double *cost)
{
	uint64_t h = hash_of(m->cur, m->o->n_dec);
	int rc;

	if (m->n_cache * 2 >= m->cap_cache && (rc = grow_cache(m)))
		return rc;
	uint32_t j = (uint32_t)(h & (m->cap_cache - 1));
	while (m->keys[j] && m->keys[j] != h)
		j = (j + 1) & (m->cap_cache - 1);
	if (m->keys[j]) {
		*cost = m->costs[j];
		return 0;
	}
	if ((rc = m->eval(m->ud, m->cur, cost)))
		return rc;
	m->keys[j] = h;
	m->costs[j] = *cost;
	m->n_cache++;
	m->scored++;
	if (*cost < m->best_cost) {
		m->best_cost = *cost;
		memcpy(m->best, m->cur, m->o->n_dec);
	}
	return 0;
}

static int
out_of_budget(mcts *m)
{
	return (m->o->max_rollouts && m->scored >= m->o->max_rollouts) ||
	       (m->o->deadline > 0 && shd_now() >= m->o->deadline);
}

/* The tree's share of the budget: three quarters (the polish has the rest). */
static int
tree_done(mcts *m)
{
	return (m->o->max_rollouts && m->scored >= m->o->max_rollouts - m->o->max_rollouts / 4) ||
	       (m->o->deadline > 0 && shd_now() >= m->o->deadline);
}

/* Children of node i (at depth d), made on first visit. */
static int
expand(mcts *m, uint32_t i, uint32_t d)
{
	uint32_t n = m->o->n_opt[d];

	if (m->n_t + n > m->cap_t) {
		uint32_t ncap = (m->n_t + n) * 2;
		tnode *t = shd_realloc(m->c, m->t, m->cap_t * sizeof *t, ncap * sizeof *t);
		if (!t)
			return shd_nomem(m->c);
		m->t = t;
		m->cap_t = ncap;
	}
	memset(&m->t[m->n_t], 0, n * sizeof *m->t);
	m->t[i].child = m->n_t;
	m->n_t += n;
	return 0;
}

/* One rollout: select down the tree by UCT, expand one level, draw the
 * rest at random, score, back up. */
static int
rollout(mcts *m, uint32_t *path)
{
	const mcts_opts *o = m->o;
	uint32_t i = 0, d = 0, depth;
	int rc;

	path[0] = 0;
	for (; d < o->n_dec; d++) {
		tnode *t = &m->t[i];
		if (!t->child) {
			if ((rc = expand(m, i, d)))
				return rc;
			t = &m->t[i];
			uint32_t k = (uint32_t)(next_rand(&m->rng) % o->n_opt[d]);
			m->cur[d] = (uint8_t)k;
			i = t->child + k;
			path[d + 1] = i;
			d++;
			break;
		}
		double bestu = -1;
		uint32_t pick = 0;
		for (uint32_t k = 0; k < o->n_opt[d]; k++) {
			const tnode *ch = &m->t[t->child + k];
			double u = ch->visits ? ch->reward / ch->visits +
			                                1.0 * sqrt(log((double)t->visits + 1) /
			                                           ch->visits)
			                      : 1e9 + (double)(next_rand(&m->rng) % 1000);
			if (u > bestu)
				bestu = u, pick = k;
		}
		m->cur[d] = (uint8_t)pick;
		i = t->child + pick;
		path[d + 1] = i;
	}
	depth = d;
	/* the rest at random, half of them left at option 0 (no split): good
	 * plans split few groups */
	for (; d < o->n_dec; d++)
		m->cur[d] =
		        next_rand(&m->rng) & 1 ? 0 : (uint8_t)(next_rand(&m->rng) % o->n_opt[d]);
	double cost;
	if ((rc = score(m, &cost)))
		return rc;
	double r = isfinite(cost) && cost > 0 ? m->best_cost / cost : 0;
	for (uint32_t k = 0; k <= depth; k++) {
		m->t[path[k]].visits++;
		m->t[path[k]].reward += r;
	}
	return 0;
}

/* Every assignment, in order (the space is small). */
static int
enumerate(mcts *m)
{
	const mcts_opts *o = m->o;
	int rc;

	memset(m->cur, 0, o->n_dec);
	for (;;) {
		double cost;
		if ((rc = score(m, &cost)))
			return rc;
		if (o->stop && (rc = o->stop(o->stop_ud)))
			return rc;
		if (o->deadline > 0 && shd_now() >= o->deadline)
			return 0; /* out of time: the best so far */
		uint32_t d = o->n_dec;
		while (d > 0 && ++m->cur[d - 1] == o->n_opt[d - 1])
			m->cur[--d] = 0;
		if (d == 0)
			return 0;
	}
}

double
mcts_space(const mcts_opts *o)
{
	double n = 1;
	for (uint32_t d = 0; d < o->n_dec; d++)
		n *= o->n_opt[d];
	return n;
}

int
mcts_search(shd_ctx *c, const mcts_opts *o, mcts_evalf eval, void *ud, const uint8_t *start,
            uint8_t *best, double *best_cost, uint32_t *scored)
{
	mcts m = {0};
	uint32_t *path = shd_calloc(c, o->n_dec + 2, sizeof *path);
	int rc = 0;

	m.c = c;
	m.o = o;
	m.eval = eval;
	m.ud = ud;
	m.rng = o->seed;
	m.best_cost = INFINITY;
	m.cur = shd_calloc(c, o->n_dec + 1, 1);
	m.best = best;
	if (!path || !m.cur) {
		rc = shd_nomem(c);
		goto out;
	}
	/* the starting point (no decision, or the caller's) is always scored */
	memcpy(m.cur, start, o->n_dec);
	memcpy(m.best, start, o->n_dec);
	double first;
	if ((rc = score(&m, &first)))
		goto out;
	if (o->exhaustive || mcts_space(o) <= (double)(o->max_rollouts ? o->max_rollouts : 256)) {
		rc = enumerate(&m);
		goto out;
	}
	if (!(m.t = shd_calloc(c, 64, sizeof *m.t))) { /* the root */
		rc = shd_nomem(c);
		goto out;
	}
	m.cap_t = 64;
	m.n_t = 1;
	/* rollouts that only meet scored points count too, so the loop ends */
	for (uint32_t tries = 0;
	     !tree_done(&m) && (!o->max_rollouts || tries < 8 * o->max_rollouts); tries++) {
		if (o->stop && (rc = o->stop(o->stop_ud)))
			break;
		if ((rc = rollout(&m, path)))
			break;
	}
	/* polish: coordinate descent from the best, one decision at a time,
	 * while it improves and the budget lasts */
	for (int better = 1; !rc && better && isfinite(m.best_cost);) {
		better = 0;
		for (uint32_t d = 0; d < o->n_dec && !rc && !out_of_budget(&m); d++)
			for (uint32_t k = 0; k < o->n_opt[d] && !rc && !out_of_budget(&m); k++) {
				double before = m.best_cost, cost;
				memcpy(m.cur, m.best, o->n_dec);
				if (m.cur[d] == k)
					continue;
				m.cur[d] = (uint8_t)k;
				rc = score(&m, &cost);
				better |= m.best_cost < before;
			}
	}
out:
	*best_cost = m.best_cost;
	if (scored)
		*scored = m.scored;
	shd_free(c, path, ((size_t)o->n_dec + 2) * sizeof *path);
	shd_free(c, m.cur, (size_t)o->n_dec + 1);
	shd_free(c, m.t, m.cap_t * sizeof *m.t);
	shd_free(c, m.keys, m.cap_cache * sizeof *m.keys);
	shd_free(c, m.costs, m.cap_cache * sizeof *m.costs);
	return rc;
}
