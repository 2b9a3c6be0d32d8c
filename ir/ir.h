/* ir/: the shape-aware partitioning IR. Values and nodes in arrays indexed by
 * typed 32-bit ids, nodes in topological order, names interned, dims as
 * symbolic expressions, the op table with shape inference and sharding rules. */
#ifndef IR_H
#define IR_H

#include "onnx/onnxio.h"

typedef struct {
	uint32_t i;
} value_id;
typedef struct {
	uint32_t i;
} node_id;
typedef struct {
	uint32_t i;
} ir_str; /* interned string; equal ids, equal strings */

#define IR_NONE      UINT32_MAX /* a missing optional operand, no producer */
#define IR_MAX_ELEMS 64         /* integer tensors this small have their elements tracked */
#define IR_MAX_RANK  64         /* tensors of higher rank are refused on lifting */

/* ---- dims and small integer values: symbolic expressions ---- */

#define IR_EX_CONST   0u         /* ir_dim.ex of a constant */
#define IR_EX_UNKNOWN UINT32_MAX /* ir_dim.ex of an unknown dim */

/* A dim or an element of a shape tensor: a constant, unknown, or a symbolic
 * expression (a polynomial over graph dims and opaque atoms, hash-consed:
 * equal expressions have equal ids). */
typedef struct {
	int64_t c;   /* the value when ex == IR_EX_CONST */
	uint32_t ex; /* IR_EX_CONST, IR_EX_UNKNOWN, or an expression id */
} ir_dim;

typedef struct ir_exprs ir_exprs; /* the expression table, in ir_graph */

/* ---- the op table ---- */

enum ir_op {
#define OP(id, name, min_in, max_in, infer, rule) OP_##id,
#include "ops.h"
#undef OP
	OP_OPAQUE, /* any op without a rule: replicate everything */
	OP__COUNT
};

/* ---- graph ---- */

enum { IR_V_INPUT = 1, IR_V_INIT, IR_V_NODE };

typedef struct {
	ir_str name;
	int32_t dtype;                 /* ONNX TensorProto.DataType; 0 when unknown */
	int32_t rank;                  /* -1 when unknown */
	ir_dim *dims;                  /* rank entries (arena) */
	uint32_t producer;             /* node index, or IR_NONE for inputs and initializers */
	uint8_t kind;                  /* IR_V_INPUT, IR_V_INIT or IR_V_NODE */
	uint8_t is_output;             /* a graph output */
	const Onnx__TensorProto *init; /* initializer data, in the model (never copied) */
	ir_dim *elems;                 /* known elements of a small integer tensor, or NULL */
	int32_t n_elems;               /* entries of elems */
} ir_value;

typedef struct {
	uint16_t op;    /* enum ir_op */
	ir_str name;    /* the node's name, or a made-up unique one */
	ir_str op_type; /* as in the model (for opaque ops) */
	ir_str domain;
	uint32_t in, n_in;            /* operands: g->args[in .. in+n_in); IR_NONE = absent */
	uint32_t out, n_out;          /* results: g->args[out .. out+n_out) */
	const Onnx__NodeProto *proto; /* attributes and subgraphs, in the model */
} ir_node;

typedef struct ir_strtab ir_strtab;

typedef struct ir_graph {
	shd_ctx *ctx;
	const onnx_model *model;
	shd_arena arena;  /* dims, elems, strings: the model's lifetime */
	ir_value *values; /* n_values */
	uint32_t n_values, cap_values;
	ir_node *nodes; /* n_nodes, topological order */
	uint32_t n_nodes, cap_nodes;
	uint32_t *args; /* operand and result value indices of all nodes */
	uint32_t n_args, cap_args;
	uint32_t *inputs, n_inputs;       /* graph inputs (not initializers), in order */
	uint32_t *outputs, n_outputs;     /* graph outputs, in order */
	uint32_t cap_inputs, cap_outputs; /* allocated items of inputs, outputs */
	int64_t opset;                    /* ai.onnx opset version */
	ir_strtab *strs;
	ir_exprs *exprs;
} ir_graph;

/* Inline every call of a model-local function into m's graph (ir/inline.c;
 * m keeps the result, functions no longer called are dropped). */
int ir_inline_functions(shd_ctx *c, onnx_model *m);
/* Lift m's main graph, after ir_inline_functions on m. Refuses graphs that
 * are not graphs (cycle, value produced twice, undefined input, missing
 * operands, no opset) with ONNXSHARD_EINPUT and a line naming the node.
 * Shapes are inferred. */
int ir_lift(shd_ctx *c, onnx_model *m, ir_graph **out);
void ir_free(ir_graph *g);
/* Run node i's shape inference again (its results' dims, dtype, elems). */
int ir_infer_node(ir_graph *g, uint32_t i);

/* Accessors. */
static inline ir_value *
ir_val(ir_graph *g, uint32_t v)
{
	return &g->values[v];
}
static inline uint32_t
ir_in(const ir_graph *g, const ir_node *n, uint32_t k)
{
	return k < n->n_in ? g->args[n->in + k] : IR_NONE;
}
static inline uint32_t
ir_out(const ir_graph *g, const ir_node *n, uint32_t k)
{
	return g->args[n->out + k];
}
const char *ir_op_name(int op);

/* Strings. */
ir_str ir_intern(ir_graph *g, const char *s); /* {IR_NONE} when out of memory */
const char *ir_cstr(const ir_graph *g, ir_str s);

/* Dims. */
static inline ir_dim
ir_const(int64_t c)
{
	return (ir_dim){c, IR_EX_CONST};
}
static inline ir_dim
ir_unknown(void)
{
	return (ir_dim){0, IR_EX_UNKNOWN};
}
static inline int
ir_is_const(ir_dim d)
{
	return d.ex == IR_EX_CONST;
}
static inline int
ir_is_known(ir_dim d)
{
	return d.ex != IR_EX_UNKNOWN;
}
static inline int
ir_dim_eq(ir_dim a, ir_dim b)
{
	return a.ex == b.ex && (a.ex != IR_EX_CONST || a.c == b.c) && a.ex != IR_EX_UNKNOWN;
}
ir_dim ir_sym(ir_graph *g, const char *name); /* a graph dim by name */
ir_dim ir_add(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_sub(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_mul(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_floordiv(ir_graph *g, ir_dim a, ir_dim b); /* exact when it can be */
ir_dim ir_ceildiv(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_mod(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_min(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_max(ir_graph *g, ir_dim a, ir_dim b);
/* Printed form: "64", "batch", "2*seq+1"; "?" when unknown. Interned. */
const char *ir_dim_str(ir_graph *g, ir_dim d);
/* Value with symbols bound by name -> value; 0 and *out set, or 1 when some
 * symbol is unbound or the result is undefined. */
typedef int (*ir_bindf)(void *ud, const char *sym, int64_t *val);
int ir_dim_eval(ir_graph *g, ir_dim d, ir_bindf bind, void *ud, int64_t *out);
/* Whether d is c * s1 * ... * sn over graph dims (a constant: n = 0);
 * the symbols, with repeats, go to syms. */
int ir_dim_monomial(ir_graph *g, ir_dim d, ir_str *syms, uint32_t max, uint32_t *n);
/* The symbols d mentions, into syms (up to max); returns how many. */
uint32_t ir_dim_syms(ir_graph *g, ir_dim d, ir_str *syms, uint32_t max);

/* Attributes of a node's proto. */
const Onnx__AttributeProto *ir_attr(const ir_node *n, const char *name);
int64_t ir_attr_int(const ir_node *n, const char *name, int64_t dflt);
float ir_attr_float(const ir_node *n, const char *name, float dflt);
/* ints attribute: count, and values through *v (NULL when absent). */
size_t ir_attr_ints(const ir_node *n, const char *name, const int64_t **v);
/* A string attribute (interned), or dflt. */
const char *ir_attr_str(ir_graph *g, const ir_node *n, const char *name, const char *dflt);

/* The dims [*start, *start + count) of a rank-`rank` tensor that Shape node
 * n returns (opset 15's start and end, clamped); returns count. */
int32_t ir_shape_range(const ir_graph *g, const ir_node *n, int32_t rank, int32_t *start);

/* The consumers of every value: node indices (*uses)[(*off)[v] ..
 * (*off)[v + 1]), in node order. *off has n_values + 2 entries, *uses
 * n_args + 1 (free them with those sizes). 0, or the out-of-memory status
 * (both NULL). */
int ir_consumers(ir_graph *g, uint32_t **off, uint32_t **uses);

/* Reshape node n splitting its input's last dim into [h, d] (h a
 * constant), or with merge joining its input's last two [h, d] into its
 * output's last: h, else 0. */
int64_t ir_reshape_heads(ir_graph *g, const ir_node *n, int merge);
/* The 2-D table node n looks rows up in by ids (a Gather's data along axis
 * 0, an EmbedLayerNormalization's word embedding), *ids (may be NULL) its
 * ids operand; IR_NONE when n is no such lookup. */
uint32_t ir_lookup_table(const ir_graph *g, const ir_node *n, uint32_t *ids);

/* Whether Slice node n takes one of p equal pieces of one axis (the rest
 * whole), as a packed projection's q, k or v: p (2..255) and *axis, or 0. */
int64_t ir_slice_piece(ir_graph *g, const ir_node *n, int32_t *axis);

/* Whether node n is a ScatterElements or ScatterND that adds its updates
 * into data (reduction "add"): data is then an additive operand. */
int ir_scatter_adds(ir_graph *g, const ir_node *n);

/* Verify structural invariants (topological order, operand ranges, dims
 * count = rank). 0, or ONNXSHARD_EFAIL with a diagnostic: a bug. */
int ir_verify(ir_graph *g);
/* The text form used by --dump ir and the golden tests. */
void ir_print(ir_graph *g, FILE *out);

/* ---- sharding rules (einsum-like factors, see DESIGN.md) ---- */

enum { IR_F_PASS = 0, IR_F_REDUCE, IR_F_REPL };

typedef struct {
	uint8_t kind; /* IR_F_PASS, IR_F_REDUCE (operands only) or IR_F_REPL */
	ir_dim size;
} ir_factor;

/* A rule: factors, and for each dim of each operand then each result the
 * list of factors it is made of, major to minor (empty: not shardable). */
typedef struct {
	uint32_t n_factors;
	ir_factor *factors;
	uint32_t n_tensors; /* n_in + n_out of the node */
	uint32_t *slot0;    /* per tensor: its first slot; slot = slot0[t] + dim */
	uint32_t n_slots;
	uint32_t *fac_off; /* per slot: first entry in fac; n_slots + 1 entries */
	uint32_t *fac;     /* factor ids */
} ir_rule;

/* Build the rule of node n into r (allocated in arena a). Opaque ops and
 * operands of unknown rank get no factors. */
int ir_rule_of(ir_graph *g, uint32_t n, shd_arena *a, ir_rule *r);
/* Factors of tensor t's dim d: count, and ids through *f. */
static inline uint32_t
ir_rule_dim(const ir_rule *r, uint32_t t, uint32_t d, const uint32_t **f)
{
	uint32_t s = r->slot0[t] + d;
	*f = r->fac + r->fac_off[s];
	return r->fac_off[s + 1] - r->fac_off[s];
}
/* The rule printed as "[a,b] [b,c] -> [a,c] b:reduce". */
void ir_rule_print(ir_graph *g, uint32_t n, const ir_rule *r, FILE *out);

#endif
