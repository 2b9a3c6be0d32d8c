/* api/: rank models written by worker processes (workers.c). */
#ifndef API_WORKERS_H
#define API_WORKERS_H

#include "emit/lower.h"

/* Write the models of the ranks in want (NULL: every rank) to dir with jobs
 * workers (1: in this process). st gets each written rank's figures. 0, or
 * the first error (diagnostic set). */
int api_emit_ranks(ir_graph *g, const prop_plan *p, const char *dir, const emit_opts *o, int jobs,
                   const uint8_t *want, emit_rank_stats *st);

#endif
