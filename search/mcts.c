/* Monte Carlo Tree Search over a sequence of decisions, with local moves
 * (and exhaustive enumeration when the space is small).
 * A decision k has n_opt[k] options; a full assignment is scored by the
 * caller (a cost: lower is better, INFINITY when invalid). The search
 * scores its starts, polishes the best by local moves (one decision at a
 * time, and joint moves: an option's axes taken from every other decision,
 * two axes swapped everywhere, an axis dropped everywhere), then runs tree
 * rollouts, polishing again whenever one betters the best. The tree fixes
 * decisions in order: each node is a prefix, selected by UCT on rewards
 * best/cost in (0, 1]; the rest of a rollout is drawn at random. Full
 * assignments are cached, so none is scored twice. The sequence of scored
 * assignments is a function of the seed and the starts: a budget only cuts
 * it, so a larger budget's best is never worse.
 * requires: n_dec decisions with 1..255 options each, a scoring function
 * provides: the best assignment found, its cost, why the search stopped */
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
	uint32_t scored;      /* assignments scored */
	uint32_t improved;    /* scored when the best last improved */
	int why;              /* MCTS_*, or -1 while searching */
	int rc;               /* stop()'s status */
	int force;            /* score even when done (the first start) */
	int enumerating;      /* every assignment in turn: patience does not stop it */
	uint32_t patience;    /* o->patience past a pass of polish (0: none) */
	uint32_t n_axes;      /* axes the masks use */
	uint8_t of_mask[256]; /* option of each axes mask, + 1 (0: none) */
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

/* Whether the search must stop now (m->why then says why). */
static int
done(mcts *m)
{
	const mcts_opts *o = m->o;

	if (m->why >= 0)
		return 1;
	if (o->max_rollouts && m->scored >= o->max_rollouts)
		m->why = MCTS_BUDGET;
	else if (m->patience && !m->enumerating && m->scored - m->improved >= m->patience)
		m->why = MCTS_PATIENCE;
	else if (o->deadline > 0 && shd_now() >= o->deadline)
		m->why = MCTS_TIME;
	else if (o->stop && (m->rc = o->stop(o->stop_ud)))
		m->why = MCTS_STOPPED;
	return m->why >= 0;
}

/* The cost of m->cur, scored once (INFINITY, unscored, once done). */
static int
score(mcts *m, double *cost)
{
	uint64_t h = hash_of(m->cur, m->o->n_dec);
	int rc;

	*cost = INFINITY;
	if (m->n_cache * 2 >= m->cap_cache && (rc = grow_cache(m)))
		return rc;
	uint32_t j = (uint32_t)(h & (m->cap_cache - 1));
	while (m->keys[j] && m->keys[j] != h)
		j = (j + 1) & (m->cap_cache - 1);
	if (m->keys[j]) {
		*cost = m->costs[j];
		return 0;
	}
	if (!m->force && done(m))
		return 0;
	if ((rc = m->eval(m->ud, m->cur, cost)))
		return rc;
	m->keys[j] = h;
	m->costs[j] = *cost;
	m->n_cache++;
	m->scored++;
	if (*cost < m->best_cost) {
		m->best_cost = *cost;
		m->improved = m->scored;
		memcpy(m->best, m->cur, m->o->n_dec);
	}
	return 0;
}

/* The option of decision-independent axes mask x (none: 0, no split). */
static uint8_t
option_of(const mcts *m, uint32_t x)
{
	return m->of_mask[x & 255] ? (uint8_t)(m->of_mask[x & 255] - 1) : 0;
}

/* Score the best with decision d at option k; with steal, every other
 * decision also gives up k's axes (the batch onto a second axis while the
 * groups on that axis are released). */
static int
move(mcts *m, uint32_t d, uint8_t k, int steal)
{
	const mcts_opts *o = m->o;
	double cost;
	int changed = 0;

	memcpy(m->cur, m->best, o->n_dec);
	changed = m->cur[d] != k;
	m->cur[d] = k;
	for (uint32_t e = 0; steal && e < o->n_dec; e++) {
		uint8_t x = o->mask[m->cur[e]];
		if (e != d && (x & o->mask[k])) {
			uint8_t y = option_of(m, x & ~o->mask[k]);
			changed |= y != m->cur[e];
			m->cur[e] = y < o->n_opt[e] ? y : 0;
		}
	}
	return changed ? score(m, &cost) : 0;
}

/* Score the best with every decision's axes remapped: axes i and j
 * swapped (j < n_axes), or axis i dropped (j == n_axes). */
static int
remap(mcts *m, uint32_t i, uint32_t j)
{
	const mcts_opts *o = m->o;
	double cost;
	int changed = 0;

	for (uint32_t e = 0; e < o->n_dec; e++) {
		uint32_t x = o->mask[m->best[e]], y = x & ~(1u << i);
		if (j < m->n_axes) /* swap */
			y = (y & ~(1u << j)) | ((x >> i & 1) << j) | ((x >> j & 1) << i);
		uint8_t z = option_of(m, y);
		m->cur[e] = z < o->n_opt[e] ? z : 0;
		changed |= m->cur[e] != m->best[e];
	}
	return changed ? score(m, &cost) : 0;
}

/* Pair moves join the heaviest decisions this many (the callers order
 * decisions heaviest first). */
#define MCTS_PAIRS 12

/* Score the best with decisions d and e at options k and l (with steal,
 * every other decision gives up their axes): the two linears of one
 * layer's attention or feed-forward block move together. */
static int
move_pair(mcts *m, uint32_t d, uint32_t e, uint8_t k, uint8_t l, int steal)
{
	const mcts_opts *o = m->o;
	double cost;

	memcpy(m->cur, m->best, o->n_dec);
	for (uint32_t x = 0; steal && x < o->n_dec; x++) {
		uint8_t y = option_of(m, o->mask[m->cur[x]] & ~(o->mask[k] | o->mask[l]));
		m->cur[x] = y < o->n_opt[x] ? y : 0;
	}
	m->cur[d] = k;
	m->cur[e] = l;
	return memcmp(m->cur, m->best, o->n_dec) ? score(m, &cost) : 0;
}

/* Plans one pass of polish tries at most. */
static uint32_t
neighbourhood(const mcts *m)
{
	const mcts_opts *o = m->o;
	uint32_t opts = o->n_dec ? o->n_opt[0] : 1,
	         p = o->n_dec < MCTS_PAIRS ? o->n_dec : MCTS_PAIRS;
	uint32_t n = o->n_dec * opts;

	if (o->mask)
		n += o->n_dec * opts + m->n_axes * (m->n_axes + 1) / 2 + p * (p - 1) * opts * opts;
	return n;
}

/* Local search from the best while a pass of moves betters it. */
static int
polish(mcts *m)
{
	const mcts_opts *o = m->o;
	int rc = 0;

	while (!rc && isfinite(m->best_cost) && !done(m)) {
		double before = m->best_cost;
		for (uint32_t d = 0; d < o->n_dec && !rc && !done(m); d++)
			for (uint32_t k = 0; k < o->n_opt[d] && !rc && !done(m); k++)
				rc = move(m, d, (uint8_t)k, 0);
		for (uint32_t d = 0; o->mask && d < o->n_dec && !rc && !done(m); d++)
			for (uint32_t k = 1; k < o->n_opt[d] && !rc && !done(m); k++)
				rc = move(m, d, (uint8_t)k, 1);
		for (uint32_t i = 0; o->mask && i < m->n_axes && !rc; i++)
			for (uint32_t j = i + 1; j <= m->n_axes && !rc && !done(m); j++)
				rc = remap(m, i, j);
		for (uint32_t d = 0; o->mask && d < o->n_dec && d < MCTS_PAIRS && !rc; d++)
			for (uint32_t e = d + 1; e < o->n_dec && e < MCTS_PAIRS && !rc; e++)
				for (uint32_t k = 0; k < o->n_opt[d] && !rc; k++)
					for (uint32_t l = 0; l < o->n_opt[e] && !rc && !done(m);
					     l++)
						for (int steal = 0; steal < 2 && !rc && !done(m);
						     steal++)
							rc = move_pair(m, d, e, (uint8_t)k,
							               (uint8_t)l, steal);
		if (!(m->best_cost < before))
			break;
	}
	return rc;
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
	m->enumerating = 1;
	for (;;) {
		double cost;
		if ((rc = score(m, &cost)))
			return rc;
		uint32_t d = o->n_dec;
		while (d > 0 && ++m->cur[d - 1] == o->n_opt[d - 1])
			m->cur[--d] = 0;
		if (d == 0) {
			if (m->why < 0)
				m->why = MCTS_ENUMERATED;
			return 0;
		}
		if (done(m))
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

/* Rollouts that meet only scored assignments this many times in a row:
 * the tree has nothing new to try. */
#define MCTS_MISSES 1024

/* Polish, then rollouts (each that betters the best polished again). */
static int
tree_search(mcts *m, uint32_t *path)
{
	int rc;

	if ((rc = polish(m)))
		return rc;
	if (!(m->t = shd_calloc(m->c, 64, sizeof *m->t))) /* the root */
		return shd_nomem(m->c);
	m->cap_t = 64;
	m->n_t = 1;
	double polished = m->best_cost;
	for (uint32_t misses = 0; !done(m);) {
		uint32_t before = m->scored;
		if (misses < 16) {
			rc = rollout(m, path);
		} else { /* the tree keeps to scored plans: one drawn uniformly */
			double cost;
			for (uint32_t d = 0; d < m->o->n_dec; d++)
				m->cur[d] = (uint8_t)(next_rand(&m->rng) % m->o->n_opt[d]);
			rc = score(m, &cost);
		}
		if (rc)
			return rc;
		misses = m->scored == before ? misses + 1 : 0;
		if (misses >= MCTS_MISSES) {
			m->why = MCTS_EXHAUSTED;
			break;
		}
		if (m->best_cost < polished) {
			if ((rc = polish(m)))
				return rc;
			polished = m->best_cost;
		}
	}
	return 0;
}

int
mcts_search(shd_ctx *c, const mcts_opts *o, mcts_evalf eval, void *ud, const uint8_t *starts,
            uint32_t n_start, uint8_t *best, mcts_result *res)
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
	m.why = -1;
	m.cur = shd_calloc(c, o->n_dec + 1, 1);
	m.best = best;
	for (uint32_t k = 0; o->mask && k < o->n_mask; k++) {
		m.of_mask[o->mask[k]] = (uint8_t)(k + 1);
		while (o->mask[k] >> m.n_axes)
			m.n_axes++;
	}
	if (!path || !m.cur) {
		rc = shd_nomem(c);
		goto out;
	}
	if (o->patience)
		m.patience = o->patience + neighbourhood(&m);
	/* the starts are always scored (the first even when over budget) */
	memcpy(m.best, starts, o->n_dec);
	for (uint32_t s = 0; s < n_start && !rc && (s == 0 || !done(&m)); s++) {
		double cost;
		memcpy(m.cur, starts + (size_t)s * o->n_dec, o->n_dec);
		m.force = s == 0;
		rc = score(&m, &cost);
		m.force = 0;
	}
	if (rc)
		goto out;
	if (o->exhaustive || mcts_space(o) <= (double)o->enumerate)
		rc = enumerate(&m);
	else
		rc = tree_search(&m, path);
	rc = rc ? rc : m.rc;
out:
	res->best_cost = m.best_cost;
	res->scored = m.scored;
	res->why = m.why < 0 ? MCTS_EXHAUSTED : m.why;
	res->patience = m.patience;
	shd_free(c, path, ((size_t)o->n_dec + 2) * sizeof *path);
	shd_free(c, m.cur, (size_t)o->n_dec + 1);
	shd_free(c, m.t, m.cap_t * sizeof *m.t);
	shd_free(c, m.keys, m.cap_cache * sizeof *m.keys);
	shd_free(c, m.costs, m.cap_cache * sizeof *m.costs);
	return rc;
}
