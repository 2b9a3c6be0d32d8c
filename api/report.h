/* api/: the plan's HTML report (report.c), one self-contained page: the
 * mesh, the weights by layer coloured by the mesh axes that split them, the
 * collectives, peak memory per rank against capacity, step time beside the
 * baselines. */
#ifndef API_REPORT_H
#define API_REPORT_H

#include <jansson.h>

#include "search/cost.h"

/* Write the report of the materialised plan p over g on hw to path,
 * atomically (a temp file beside it, renamed). plan is the plan's JSON
 * object (api/pipeline.c's plan_json); o gives the model, mesh, strategy
 * and --dim bindings for the title.
 * requires: prop_materialize(g, p)
 * provides: 0, or ONNXSHARD_EFAIL with one line naming path */
int report_html(ir_graph *g, const prop_plan *p, const search_hw *hw, const onnxshard_opts *o,
                json_t *plan, const char *path);

#endif
