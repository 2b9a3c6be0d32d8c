/* api/: rank models written by worker processes (workers.c). */
#ifndef API_WORKERS_H
#define API_WORKERS_H

#include "emit/lower.h"

/* Write every rank's model to dir with jobs workers (1: in this process).
 * st gets each rank's figures. 0, or the first error (diagnostic set). */
int api_emit_ranks(ir_graph *g, const prop_plan *p, const char *dir, const emit_opts *o, int jobs,
                   emit_rank_stats *st);

#endif
