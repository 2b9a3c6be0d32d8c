/* search/: hardware profiles (hw.c) and the simulator of one forward step of
 * a materialised plan (cost.c): per-op roofline on local shapes, alpha-beta
 * collectives with ring factors, peak memory per rank. */
#ifndef SEARCH_COST_H
#define SEARCH_COST_H

#include "propagate/prop.h"

#define SEARCH_DTYPES 24 /* ONNX TensorProto.DataType values 0..23 */

/* A device and its links. Ranks fill nodes in order (row-major): a mesh axis
 * whose groups all lie inside one node uses the intra-node link. */
typedef struct {
	char *name;                       /* owned */
	double peak_flops[SEARCH_DTYPES]; /* FLOP/s per ONNX dtype; > 0 (unset: float32's) */
	double mem_bw, mem_cap;           /* bytes/s, bytes per device; > 0 */
	int64_t devices_per_node;         /* >= 1 */
	double intra_bw, intra_lat;       /* bytes/s (> 0), seconds per collective (>= 0) */
	double inter_bw, inter_lat;
	double op_overhead; /* seconds per op launched (optional key "op_overhead"; >= 0) */
	int ort;            /* set by the caller, not a profile key (0 when loaded): the ranks
	                     * run ONNX Runtime's collectives (--collectives ort), so a
	                     * ReduceScatter costs the AllReduce and local Split it runs as,
	                     * and an AllToAll adds its local Transposes, Split and Concat */
} search_hw;

/* A preset name (h100, a100, cpu) or a JSON profile file. Bad input:
 * ONNXSHARD_EINPUT, "FILE: key 'memory_bandwidth': must be a positive number". */
int search_hw_load(shd_ctx *c, const char *spec, search_hw *hw);
void search_hw_free(shd_ctx *c, search_hw *hw);

/* comm_by_kind indices */
enum { SEARCH_ALLREDUCE, SEARCH_ALLGATHER, SEARCH_REDUCESCATTER, SEARCH_ALLTOALL };

typedef struct {
	double step_s;    /* the slowest rank's forward step: compute_s + comm_s (no overlap) */
	double compute_s; /* sum of per-op rooflines (+ op_overhead per op), local ops of reshards
	                   */
	double comm_s;    /* sum of the collectives' alpha-beta times */
	uint64_t peak_bytes;      /* param_bytes + act_peak_bytes + io_bytes of that rank */
	uint64_t param_bytes;     /* local initializers and Constant results */
	uint64_t act_peak_bytes;  /* peak of live intermediate values over the node order */
	uint64_t io_bytes;        /* local graph inputs and outputs (KV caches included) */
	uint64_t comm_bytes;      /* bytes the rank sends (ring): sum of comm_by_kind */
	uint64_t comm_by_kind[4]; /* SEARCH_ALLREDUCE .. SEARCH_ALLTOALL */
	uint64_t flops;           /* the rank's FLOPs (local shapes) */
	int feasible;             /* peak_bytes <= hw->mem_cap */
	int exact;                /* every dim was known and every symbolic dim bound */
} search_cost;

/* Simulate one forward step of the materialised plan p over g on hw.
 * Symbolic dims are bound through p->bind (the --dim values); an unbound or
 * unknown one counts as 1 and clears exact.
 * requires: prop_materialize(g, p)
 * provides: *out; 0, or ONNXSHARD_EFAIL when out of memory */
int search_simulate(ir_graph *g, const prop_plan *p, const search_hw *hw, search_cost *out);

#endif
