/* emit/: per-rank lowering (internal interface of lower.c and pipeline.c). */
#ifndef LOWER_H
#define LOWER_H

#include "propagate/prop.h"

typedef struct {
	uint64_t threshold;    /* initializers this big go to rank{r}.onnx.data */
	int ort;               /* com.microsoft collectives (one ORT world per group) */
	int (*stop)(void *ud); /* NULL, or polled while writing: a non-zero status
	                        * (diagnostic set) ends emission with it */
	void *stop_ud;
	void (*progress)(void *ud, uint64_t bytes); /* NULL, or told of weight bytes written */
	void *progress_ud;
} emit_opts;

/* What emission measured, for the manifest and the plan summary. */
typedef struct {
	uint64_t param_bytes;         /* this rank's initializer bytes */
	uint32_t collectives;         /* collective nodes in this rank's model */
	uint64_t data_bytes;          /* bytes of its external data file (0: none) */
	uint64_t model_bytes;         /* bytes of rank{r}.onnx */
	uint32_t model_crc, data_crc; /* crc32 of the two files, read back once written */
} emit_rank_stats;

/* Initializer v's block on every rank: its dims into dims (room for IR_MAX_RANK)
 * and its bytes (0 past rank IR_MAX_RANK, or for strings). */
uint64_t emit_init_block(const ir_graph *g, const prop_plan *p, uint32_t v, int64_t *dims);

/* Write rank r's model to dir/rank{r}.onnx (+ .data).
 * requires: a materialised plan
 * provides: the rank model: local shapes, sliced initializers streamed from
 *   the source, shape values as shapes.c says, collectives */
int emit_rank(ir_graph *g, const prop_plan *p, int64_t r, const char *dir, const emit_opts *o,
              emit_rank_stats *st);

/* The mesh axes an ONNX Runtime world spans (--collectives ort): every
 * collective of the plan must lie on the same axes (in mesh order), and
 * each group over them is one world (a data replica, say); no collective:
 * every axis. 0xff when the collectives lie on different axes. */
uint8_t emit_ort_axes(const prop_plan *p);
/* Why ONNX Runtime's com.microsoft collectives cannot run the materialised
 * plan p (a message, static or in buf[n]), or NULL: they can. The plan's collectives
 * must lie over one set of axes (emit_ort_axes), of types ORT takes (or
 * sent as a wider exact type; a ReduceScatter runs as an AllReduce and a
 * local Split, an AllToAll as ORT's dim-0 AllToAll between Transposes, a
 * Split and a Concat). The search scores a plan it refuses as not valid,
 * so plan and shard agree. */
const char *emit_ort_why(const ir_graph *g, const prop_plan *p, char *buf, size_t n);

#endif
