/* Internal to emit/: one rank's lowering state and the builders that
 * lower.c and shapes.c share. */
#ifndef LOWER_IMPL_H
#define LOWER_IMPL_H

#include "lower.h"

/* operand * a / b, elementwise, in front of the consumer */
struct shape_fix {
	int32_t n;
	int64_t a[IR_MAX_ELEMS], b[IR_MAX_ELEMS];
};

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
	const char **override;       /* per g->args slot: a replacement operand name */
	struct shape_fix **fix;      /* per g->args slot: scale a shape operand at run time */
	ir_dim **rt;                 /* per value: its elements as this rank computes them */
	onnx_datafile df;
	const char *loc; /* df's name as tensors cite it (outlives df) */
	uint8_t *buf;
	int failed; /* out of memory somewhere */
	emit_rank_stats *st;
} rank_ctx;

void *emit_alloc(rank_ctx *k, size_t n); /* zeroed, this rank's arena; sets failed */
char *emit_str(rank_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
Onnx__NodeProto *emit_node(rank_ctx *k, const char *op, const char *domain, const char *name,
                           const char **in, size_t n_in, const char **out, size_t n_out,
                           Onnx__AttributeProto **attrs, size_t n_attrs);
/* A small inline initializer with the given bytes. */
int emit_tensor_inline(rank_ctx *k, const char *name, int32_t dtype, const int64_t *dims,
                       size_t rank, const void *bytes, size_t n);

/* Make every shape operand local to this rank (shapes.c).
 * requires: have[] of the plan
 * provides: k->override and k->fix per operand slot */
int emit_shape_operands(rank_ctx *k);
/* The scaled operand j of node i (k->fix), emitted in front of it. */
const char *emit_fix(rank_ctx *k, uint32_t i, uint32_t j, const char *in);

#endif
