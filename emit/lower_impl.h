/* Internal to emit/: one rank's lowering state and the builders that
 * lower.c and shapes.c share. */
#ifndef LOWER_IMPL_H
#define LOWER_IMPL_H

#include "lower.h"

typedef struct {
	ir_graph *g;
	const prop_plan *p;
	const prop_mesh *mesh;
	int64_t rank;
	const emit_opts *o;
	shd_ctx *c;
	shd_arena a;                 /* this rank's lifetime */
	shd_vec nodes, inits, vinfo; /* of pointers */
	const char **name_of;        /* per value: the name this rank's graph uses */
	const char **rs_done;        /* per reshard id: its result name, once emitted */
	onnx_datafile df;
	const char *loc; /* df's name as tensors cite it (outlives df) */
	uint8_t *buf;
	uint64_t win_lo, win_hi; /* the bytes of the tensor being copied that buf holds */
	int rc;                  /* the status of this rank's first failure, 0 while none; its
	                          * diagnostic is in c->err, set once (emit_fail: later failures
	                          * keep it) */
	/* what each symbolic dim's name stands for in this rank model: the
	 * symbol, as the first graph input that has it alone splits it, in
	 * blocks (sym_blocks[i] for sym_names[i]); computed on first use */
	ir_str *sym_names;
	int64_t *sym_blocks;
	uint32_t n_syms;
	int syms_ready;
	emit_rank_stats *st;
} rank_ctx;

/* Errors: one channel. Every step that can fail returns a status: 0, or
 * k->rc, the status of the rank's first failure, whose diagnostic was set
 * once in the context (a later failure keeps it). Builders that return
 * what they built (emit_alloc, emit_str, the attribute and tensor builders)
 * return NULL on failure with k->rc set; a step taking their results
 * (emit_node) returns k->rc once it is set, so a step may build several
 * and check once. */

/* Record a failure of this rank: the first one's status and diagnostic are
 * kept, later ones dropped. Returns k->rc. */
int emit_fail(rank_ctx *k, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int emit_nomem(rank_ctx *k);
/* A status rc from a callee that set its own diagnostic (onnx_*, the stop
 * callback): recorded as emit_fail does. Returns k->rc (0 when rc is 0 and
 * nothing failed before). */
int emit_status(rank_ctx *k, int rc);

void *emit_alloc(rank_ctx *k, size_t n); /* zeroed, this rank's arena; NULL: k->rc set */
/* A name printed into this rank's arena; NULL: k->rc set. */
char *emit_str(rank_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a node (the names and attributes arrays are copied, their strings
 * shared); a NULL attribute or name is one a builder failed to make. */
int emit_node(rank_ctx *k, const char *op, const char *domain, const char *name, const char **in,
              size_t n_in, const char **out, size_t n_out, Onnx__AttributeProto **attrs,
              size_t n_attrs);
/* A small inline initializer with the given bytes. */
int emit_tensor_inline(rank_ctx *k, const char *name, int32_t dtype, const int64_t *dims,
                       size_t rank, const void *bytes, size_t n);

/* Shape values (shapes.c): global in every rank model, local only where
 * they size data. */
/* Operand j of node i as this rank needs it: *name (on entry the operand's
 * name) itself, or replaced by local sizes (a constant, or it divided at
 * run time). */
int emit_local_sizes(rank_ctx *k, uint32_t i, uint32_t j, const char **name);
/* The same for sizes in attributes (opsets before 13: Split's `split`;
 * before 10: Slice's `starts` and `ends`), in copy. */
int emit_local_attrs(rank_ctx *k, uint32_t i, Onnx__NodeProto *copy);
/* Shape or Size node i writing `global`: into *local the name its node
 * writes instead when the tensor it reads is split (then emit_shape_scale
 * after it), or `global`. */
int emit_shape_read(rank_ctx *k, uint32_t i, const char *global, const char **local);
int emit_shape_scale(rank_ctx *k, uint32_t i, const char *local, const char *global);

/* Node i's subgraphs (in copy) read the outer values as this rank names
 * them, ins[] being its operands' names (capture.c). */
int emit_captures(rank_ctx *k, uint32_t i, Onnx__NodeProto *copy, char **ins);

#endif
