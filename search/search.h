/* search/: strategies. For now the tactics of PartIR (data, megatron, a
 * tactics file), each followed by propagation. */
#ifndef SEARCH_H
#define SEARCH_H

#include "propagate/prop.h"

/* Apply a strategy: "data[:AXIS]", "megatron[:AXIS]", "auto", a comma list
 * of those, or a JSON tactics file. Each step is followed by propagation.
 * log (may be NULL) gets one line per step. Bad strategies: EINPUT. */
int search_apply(ir_graph *g, prop_plan *p, const char *strategy, FILE *log);

#endif
