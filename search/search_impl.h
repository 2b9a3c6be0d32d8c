/* Internal to search/: the tree search (mcts.c) and what the auto tactic
 * (auto.c) shares with it. */
#ifndef SEARCH_IMPL_H
#define SEARCH_IMPL_H

#include "search.h"

/* Score of a full assignment (choice[k] < n_opt[k] for each decision k):
 * *cost, lower is better, INFINITY when the plan is not valid (does not
 * fit). Non-zero: an error that ends the search (diagnostic set). */
typedef int (*mcts_evalf)(void *ud, const uint8_t *choice, double *cost);

/* Why a search stopped. */
enum {
	MCTS_ENUMERATED, /* every assignment scored */
	MCTS_BUDGET,     /* max_rollouts scored */
	MCTS_TIME,       /* the deadline (or soft deadline) passed */
	MCTS_PATIENCE,   /* `patience` plans scored since the best last improved */
	MCTS_EXHAUSTED,  /* rollouts keep meeting scored plans: nothing new to try */
	MCTS_STOPPED,    /* stop() said so */
};

typedef struct {
	uint32_t n_dec;
	const uint8_t *n_opt; /* per decision: its options, 1..255 */
	/* option k of any decision is the set of axes mask[k] (bit i: the i-th
	 * axis searched); NULL: no joint moves */
	const uint8_t *mask;
	uint32_t n_mask; /* entries of mask (>= every n_opt) */
	uint64_t seed;
	uint32_t max_rollouts; /* scored assignments at most (0: no limit) */
	uint32_t patience;     /* stop once this many plans past one pass of polish' moves
	                        * have not bettered the best (0: never) */
	uint32_t enumerate;    /* enumerate a space of at most this many assignments */
	double deadline;       /* shd_now() past which the search stops (0: none) */
	int exhaustive;        /* enumerate every assignment, whatever the budget */
	int (*stop)(void *ud); /* NULL, or polled: non-zero ends the search with it */
	void *stop_ud;
} mcts_opts;

typedef struct {
	double best_cost;  /* INFINITY when nothing valid was found */
	uint32_t scored;   /* assignments scored (each once) */
	int why;           /* MCTS_* */
	uint32_t patience; /* the patience applied */
} mcts_result;

/* The number of assignments (a double: it may be astronomical). */
double mcts_space(const mcts_opts *o);
/* Search from the n_start assignments of starts (n_dec each, scored first,
 * in order); best gets n_dec choices. The order in which assignments are
 * scored depends on the seed and the starts alone, never on the budget: a
 * larger budget scores a superset, so its best is never worse. A space of
 * at most o->enumerate assignments is enumerated. */
int mcts_search(shd_ctx *c, const mcts_opts *o, mcts_evalf eval, void *ud, const uint8_t *starts,
                uint32_t n_start, uint8_t *best, mcts_result *res);

/* Per-layer costing (fold.c): a truncated copy of the graph. Its nodes,
 * values, operands, inputs and outputs are its own; strings, dims and the
 * model are the full graph's. */
typedef struct {
	ir_graph g;
	uint32_t *of_full; /* per full value: its index here, or IR_NONE */
	uint32_t *to_full; /* per value here: the full graph's */
	ir_rule *rules;    /* per node, built once (by the caller, in its arena) */
} fold_graph;

typedef struct {
	int on;                       /* a run of reps >= 4 identical blocks was found */
	uint32_t start, period, reps; /* the run: nodes [start, start + period * reps) */
	fold_graph sub[2];            /* the copies of 2 and 3 blocks */
} search_fold;

/* Find the run and build both copies (on = 0: none; cost the whole graph).
 * Returns 0, or ONNXSHARD_EFAIL when out of memory. */
int search_fold_init(ir_graph *g, search_fold *f);
/* Free the copies; what costing them added to the shared tables stays. */
void search_fold_free(ir_graph *g, search_fold *f);

#endif
