/* Internal to search/: the tree search (mcts.c) and what the auto tactic
 * (auto.c) shares with it. */
#ifndef SEARCH_IMPL_H
#define SEARCH_IMPL_H

#include "search.h"

/* Score of a full assignment (choice[k] < n_opt[k] for each decision k):
 * *cost, lower is better, INFINITY when the plan is not valid (does not
 * fit). Non-zero: an error that ends the search (diagnostic set). */
typedef int (*mcts_evalf)(void *ud, const uint8_t *choice, double *cost);

typedef struct {
	uint32_t n_dec;
	const uint8_t *n_opt; /* per decision: its options, 1..255 */
	uint64_t seed;
	uint32_t max_rollouts; /* scored assignments at most (0: no limit; then deadline) */
	double deadline;       /* shd_now() past which the search stops (0: none) */
	int exhaustive;        /* enumerate every assignment, whatever the budget */
	int (*stop)(void *ud); /* NULL, or polled: non-zero ends the search with it */
	void *stop_ud;
} mcts_opts;

/* The number of assignments (a double: it may be astronomical). */
double mcts_space(const mcts_opts *o);
/* Search from `start` (scored first); best gets n_dec choices, *best_cost
 * its cost (INFINITY when nothing valid was found), *scored (may be NULL)
 * how many assignments were scored. A space no larger than the budget is
 * enumerated. */
int mcts_search(shd_ctx *c, const mcts_opts *o, mcts_evalf eval, void *ud, const uint8_t *start,
                uint8_t *best, double *best_cost, uint32_t *scored);

#endif
