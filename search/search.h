/* search/: strategies: the tactics of PartIR (data, megatron, a tactics
 * file), each followed by propagation, and the automatic search (auto:
 * MCTS over the dimension-class analysis' decisions, scored by the
 * simulator of cost.h; exhaustive: every assignment). */
#ifndef SEARCH_H
#define SEARCH_H

#include "search/cost.h"

/* What the automatic search needs beyond the plan. */
typedef struct {
	const search_hw *hw; /* the device (NULL: the h100 preset) */
	uint64_t seed;       /* the tree search's */
	double deadline;     /* shd_now() past which it stops (0: none) */
	uint32_t rollouts;   /* plans scored (0: until SEARCH_PATIENCE plans in a row do not
	                      * better the best, or a tenth of the time to the deadline) */
	FILE *progress;      /* NULL, or a terminal: a line of plans scored, best so far */
	int ort;             /* --collectives ort: a plan ONNX Runtime's collectives cannot
	                      * run (emit_ort_why) is not valid */
	int strict;          /* the user named the strategy: a data, megatron or experts
	                      * step that splits none of its targets because none
	                      * divides is refused (EINPUT) */
	/* what the last auto step did (out) */
	uint32_t decisions; /* decision groups */
	uint32_t scored;    /* plans scored, baselines included */
	const char *chose;  /* the baseline that won, or NULL: the search's plan */
} search_env;

#define SEARCH_PATIENCE  256u  /* the default stop */
#define SEARCH_ENUMERATE 1024u /* the default enumerates a space this small */

/* Apply a strategy: "data[:AXIS]", "megatron[:AXIS]", "auto", a comma list
 * of those, or a JSON tactics file. Each step is followed by propagation.
 * log (may be NULL) gets one line per step. Bad strategies: EINPUT. */
int search_apply(ir_graph *g, prop_plan *p, const char *strategy, FILE *log);
/* The same with the search's environment ("auto[:AXES]" and
 * "exhaustive[:AXES]", AXES like data+model, default every axis; env may be
 * NULL: the defaults). */
int search_run(ir_graph *g, prop_plan *p, const char *strategy, search_env *env, FILE *log);
/* Graph outputs matching glob (fnmatch) assembled whole but for their
 * batch split over the axis named "data" (p->gather_out). None matching:
 * ONNXSHARD_EINPUT, "WHERE 'GLOB': no graph output matches". */
int search_gather_outputs(ir_graph *g, prop_plan *p, const char *glob, const char *where);
/* The baselines an automatic plan is measured against, and whether one
 * applies on mesh m (data needs an axis named data, megatron one named
 * model). */
#define SEARCH_BASELINES 3
extern const char *const search_baselines[SEARCH_BASELINES];
int search_baseline_applies(const prop_mesh *m, const char *strategy);
/* The auto step: over the axes of axes_mask (bit i: mesh axis i). */
int search_auto(ir_graph *g, prop_plan *p, uint8_t axes_mask, search_env *env, int exhaustive,
                FILE *log);

#endif
