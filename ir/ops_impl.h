/* Internal to ir/: what op shape-inference and rule functions share. */
#ifndef OPS_IMPL_H
#define OPS_IMPL_H

#include "ir.h"

/* Op functions keep dims in arrays of this many (lift.c refuses higher ranks). */
#define MAX_RANK IR_MAX_RANK
/* The last TensorProto.DataType ONNX defines (FLOAT8E8M0, opset 24); codes
 * up to it that onnx_dtype_name does not know are valid, of unknown size. */
#define MAX_ONNX_DTYPE 24

/* A rule under construction. Tensor t: operand k is t = k, result k is
 * t = n_in + k. */
typedef struct rule_b rule_b;
#define T_OUT(n, k) ((n)->n_in + (k)) /* the tensor of node n's result k */
uint32_t rb_factor(rule_b *b, int kind, ir_dim size);
/* Append factor f to the factors of tensor t's dim d (major to minor). */
void rb_map(rule_b *b, uint32_t t, uint32_t d, uint32_t f);
/* A new pass-through factor of the given size mapped to each (t, d) pair of
 * the list; pairs with t == IR_NONE are skipped. Returns the factor. */
uint32_t rb_pass(rule_b *b, ir_dim size, uint32_t t1, uint32_t d1, uint32_t t2, uint32_t d2);

/* Shape inference of node n; results' dtype, rank, dims (and elems where
 * the op computes a shape). Returns 0, or ONNXSHARD_EINPUT via node_error
 * when the node contradicts itself (e.g. MatMul inner dims differ).
 * Leaving a result's rank -1 means "unknown": the declared shape is kept. */
typedef int (*infer_fn)(ir_graph *g, ir_node *n);
/* Sharding rule of node n (its operands' ranks are known). */
typedef void (*rule_fn)(ir_graph *g, ir_node *n, rule_b *b);

#define OP(id, name, min_in, max_in, infer, rule)                                                  \
	int infer(ir_graph *g, ir_node *n);                                                        \
	void rule(ir_graph *g, ir_node *n, rule_b *b);
#include "ops.h"
#undef OP

/* Conv's shape inference (ops_nn.c) with X, W and the bias at operands ix,
 * iw and ib (IR_NONE: none), the result of dtype (0: X's); for the
 * quantized convolutions, whose operands lie elsewhere. */
int conv_shape(ir_graph *g, ir_node *n, uint32_t ix, uint32_t iw, uint32_t ib, int32_t dtype);

/* Out of memory in an op function: the status to return. */
static inline int
nomem(ir_graph *g)
{
	return shd_nomem(g->ctx);
}
/* Whether d is the constant 1 (a broadcast dim). */
static inline int
is_one(ir_dim d)
{
	return ir_is_const(d) && d.c == 1;
}

/* "FILE: node 'name' (Op): what" with ONNXSHARD_EINPUT. */
int node_error(ir_graph *g, const ir_node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The value of operand k, or NULL when absent. */
ir_value *in_val(ir_graph *g, const ir_node *n, uint32_t k);
ir_value *out_val(ir_graph *g, const ir_node *n, uint32_t k);
/* Give v a shape of rank r (dims uninitialised) and dtype; returns the dims
 * or NULL when out of memory (then infer returns shd_nomem). */
ir_dim *set_shape(ir_graph *g, ir_value *v, int32_t dtype, int32_t r);
/* Copy src's shape and dtype (dtype != 0 overrides it) to v; either may be NULL. */
int copy_shape(ir_graph *g, ir_value *v, const ir_value *src, int32_t dtype);
/* Give v n known elements (uninitialised); NULL when out of memory. */
ir_dim *set_elems(ir_graph *g, ir_value *v, int32_t n);
/* Whether v's elements are all known constants; then copy up to max. */
int const_ints(const ir_value *v, int64_t *out, int32_t max);
/* Normalise a possibly negative axis against rank r: 0..r-1, or -1 if out of range. */
int norm_axis(int64_t axis, int32_t r);
/* Multidirectional broadcast of a and b into out (rank max); 0, or 1 when
 * the dims cannot broadcast (then *bad is the offending result dim). */
int broadcast_dims(ir_graph *g, const ir_dim *a, int32_t ra, const ir_dim *b, int32_t rb,
                   ir_dim *out, int32_t *bad);
/* Product of dims [from, to) of v. */
ir_dim dims_prod(ir_graph *g, const ir_dim *d, int32_t from, int32_t to);
/* Operand k, when present and of a known dtype, must be int64 (or int32 as
 * well when any_int): 0, or a refusal naming it as what ("shape"). */
int need_int_operand(ir_graph *g, const ir_node *n, uint32_t k, const char *what, int any_int);
/* Whether an integer dtype (elements trackable). */
int is_int_dtype(int32_t dt);
/* A value whose rank is known and at most MAX_RANK. */
int has_rank(const ir_value *v);
/* An unknown shape for y, x's dtype (either may be NULL); returns 0. */
int dtype_only(ir_value *y, const ir_value *x);

/* The state of a list attribute or operand. */
enum { L_ABSENT, L_KNOWN, L_UNKNOWN };
/* A list of dims: attribute attr when non-NULL, else the elements of
 * operand k. L_ABSENT; L_KNOWN with the count (at most MAX_RANK) in *cnt and
 * the entries (possibly symbolic or unknown) in buf; or L_UNKNOWN. */
int dim_list(ir_graph *g, const ir_node *n, const char *attr, uint32_t k, ir_dim *buf,
             int32_t *cnt);
/* dim_list with every entry a known constant (else L_UNKNOWN). */
int int_list(ir_graph *g, const ir_node *n, const char *attr, uint32_t k, int64_t *buf,
             int32_t *cnt);
/* Mark cnt axes (normalised against rank r) in mask (MAX_RANK entries); 1
 * when one is out of range, or repeated unless repeats (ONNX Runtime runs a
 * Squeeze or a Reduce that names an axis twice, not an Unsqueeze or Pad). */
int axes_mask(const int64_t *axes, int32_t cnt, int32_t r, uint8_t *mask, int repeats);

/* MatMul's shape inference over operands ia and ib into result 0, of
 * dtype dt (0: A's); 0, or a refusal naming the node. */
int matmul_shape(ir_graph *g, ir_node *n, uint32_t ia, uint32_t ib, int32_t dt);

/* Element-wise folding of small integer values for binary ops (Add, Mul...):
 * op is one of '+', '-', '*', '/', '%', 'M'ax, 'm'in, '=' (Equal, 0/1). */
int fold_binary(ir_graph *g, ir_node *n, int op);

#endif
