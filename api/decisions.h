/* api/: what a plan decided, in words (decisions.c): per decision group of
 * the dimension-class analysis, its name, the axes it took, and why what
 * stayed whole stayed whole. Read by the plan's JSON (plan.decisions_made),
 * its text summary and the HTML report. */
#ifndef API_DECISIONS_H
#define API_DECISIONS_H

#include <jansson.h>

#include "search/cost.h"

/* The decisions of the materialised plan p, as a JSON array (see
 * docs/FORMAT.md, plan.decisions_made). strategy: the --strategy given; when
 * it has an auto or exhaustive step, a group left whole that could split is
 * explained by simulating the plan with it split (on hw).
 * requires: prop_materialize(g, p)
 * provides: *out, or NULL and ONNXSHARD_EFAIL (out of memory) */
int api_decisions(ir_graph *g, const prop_plan *p, const search_hw *hw, const char *strategy,
                  json_t **out);

/* One line per decision of arr (api_decisions' array), indented by two
 * spaces, for the text summary. */
void api_decisions_print(json_t *arr, FILE *out);

#endif
