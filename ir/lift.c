/* Lifting: ModelProto -> IR.
 * requires: a model that onnx_load accepted
 * provides: values (inputs, initializers, node results) with dtypes and
 *   shapes, nodes in topological order with their op, the op table's shape
 *   inference run once over the graph; or a refusal naming the node. */
#include <stdlib.h>
#include <string.h>

#include "ir_impl.h"
#include "ops_impl.h"

static const struct {
	const char *name;
	int min_in, max_in;
	infer_fn infer;
} ops[] = {
#define OP(id, name, min_in, max_in, infer, rule) {name, min_in, max_in, infer},
#include "ops.h"
#undef OP
        {"(opaque)", 0, -1, NULL},
};
_Static_assert(sizeof ops / sizeof ops[0] == OP__COUNT, "op table out of step");

const char *
ir_op_name(int op)
{
	return op >= 0 && op < OP__COUNT ? ops[op].name : "?";
}

/* The op's since-version (ops.h's OP_SINCE): older forms are opaque. */
static const struct {
	int op;
	int64_t since;
} op_since[] = {
#define OP_SINCE(id, version) {OP_##id, version},
#define OP(id, name, min_in, max_in, infer, rule)
#include "ops.h"
#undef OP
#undef OP_SINCE
};

/* Inputs below min_in that may be empty (ops.h's OP_OPTIONAL). */
static const struct {
	int op;
	uint32_t mask;
} op_optional[] = {
#define OP_OPTIONAL(id, mask) {OP_##id, mask},
#define OP(id, name, min_in, max_in, infer, rule)
#include "ops.h"
#undef OP
#undef OP_OPTIONAL
};

static uint32_t
optional_inputs(int op)
{
	for (size_t k = 0; k < sizeof op_optional / sizeof op_optional[0]; k++)
		if (op_optional[k].op == op)
			return op_optional[k].mask;
	return 0;
}

/* The op of (domain, type): the table names ops of other domains than
 * ai.onnx "domain.Type" ("com.microsoft.MatMulNBits"). */
static int
lookup_op(const char *domain, const char *type, int64_t opset)
{
	size_t dl = 0;

	if (domain && *domain && strcmp(domain, "ai.onnx") != 0)
		dl = strlen(domain);
	for (int i = 0; i < OP_OPAQUE; i++)
		if ((dl ? strncmp(ops[i].name, domain, dl) == 0 && ops[i].name[dl] == '.' &&
		                     strcmp(ops[i].name + dl + 1, type) == 0
		        : strcmp(ops[i].name, type) == 0)) {
			for (size_t k = 0; k < sizeof op_since / sizeof op_since[0]; k++)
				if (op_since[k].op == i && opset < op_since[k].since)
					return OP_OPAQUE;
			return i;
		}
	return OP_OPAQUE;
}

/* Lifting state beside the graph. */
typedef struct {
	ir_graph *g;
	const char *path;
	uint32_t *by_name; /* ir_str index -> value index + 1 */
	uint32_t cap_by_name;
	const Onnx__ValueInfoProto **declared; /* value index -> declared type or NULL */
	uint32_t n_declared;                   /* allocated items of declared */
} lifter;

static uint32_t
find_value(lifter *L, ir_str s)
{
	return s.i < L->cap_by_name && L->by_name[s.i] ? L->by_name[s.i] - 1 : IR_NONE;
}

static int
grow(shd_ctx *c, void **p, uint32_t *cap, uint32_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	uint32_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	void *np = shd_realloc(c, *p, *cap * sz, ncap * sz);
	if (!np)
		return 1;
	memset((char *)np + *cap * sz, 0, (ncap - *cap) * sz);
	*p = np;
	*cap = ncap;
	return 0;
}

/* A new value named s (must not exist yet). */
static int
new_value(lifter *L, ir_str s, uint8_t kind, uint32_t *out)
{
	ir_graph *g = L->g;

	if (grow(g->ctx, (void **)&g->values, &g->cap_values, g->n_values + 1, sizeof *g->values) ||
	    grow(g->ctx, (void **)&L->by_name, &L->cap_by_name, s.i + 1, sizeof *L->by_name))
		return nomem(L->g);
	ir_value *v = &g->values[g->n_values];
	memset(v, 0, sizeof *v);
	v->name = s;
	v->rank = -1;
	v->producer = IR_NONE;
	v->kind = kind;
	L->by_name[s.i] = g->n_values + 1;
	*out = g->n_values++;
	return 0;
}

static const char *
node_label(const Onnx__NodeProto *p, char *buf, size_t n, size_t index)
{
	if (p->name && *p->name)
		return p->name;
	snprintf(buf, n, "#%zu", index);
	return buf;
}

static ir_dim
declared_dim(ir_graph *g, const Onnx__TensorShapeProto__Dimension *d)
{
	if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
	    d->dim_value >= 0)
		return ir_const(d->dim_value);
	if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param &&
	    *d->dim_param)
		return ir_sym(g, d->dim_param);
	return ir_unknown();
}

/* Take a declared type (graph input, output or value_info) into v where v
 * does not know better: dtype and rank when unknown, and each dim inference
 * left unknown (a dim it knows is kept, even when the declaration differs). */
static int
apply_declared(ir_graph *g, ir_value *v, const Onnx__ValueInfoProto *vi)
{
	if (!vi || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
		return 0;
	const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
	if (!v->dtype && tt->has_elem_type && onnx_dtype_name(tt->elem_type))
		v->dtype = tt->elem_type;
	if (!tt->shape)
		return 0;
	if (v->rank < 0) {
		ir_dim *d = set_shape(g, v, v->dtype, (int32_t)tt->shape->n_dim);
		if (!d)
			return shd_nomem(g->ctx);
		for (size_t i = 0; i < tt->shape->n_dim; i++)
			d[i] = declared_dim(g, tt->shape->dim[i]);
	} else if ((size_t)v->rank == tt->shape->n_dim) {
		int32_t i;
		for (i = 0; i < v->rank && ir_is_known(v->dims[i]); i++)
			;
		if (i == v->rank)
			return 0;
		/* a fresh copy: dims arrays may be shared between values */
		ir_dim *d = shd_arena_alloc(g->ctx, &g->arena, (size_t)v->rank * sizeof *d);
		if (!d)
			return shd_nomem(g->ctx);
		for (i = 0; i < v->rank; i++)
			d[i] = ir_is_known(v->dims[i]) ? v->dims[i]
			                               : declared_dim(g, tt->shape->dim[i]);
		v->dims = d;
	}
	return 0;
}

/* What is wrong with v's shape for the ops and passes after lifting (their
 * arrays hold MAX_RANK dims; sizes are products of dims, in any order), into
 * buf; NULL when nothing: rank above MAX_RANK, a negative dim, a product of
 * the nonzero constant dims of 2^60 or more. */
static const char *
shape_problem(const ir_value *v, char *buf, size_t n)
{
	uint64_t numel = 1;

	if (v->rank > MAX_RANK) {
		snprintf(buf, n, "rank %d is above %d", (int)v->rank, MAX_RANK);
		return buf;
	}
	for (int32_t i = 0; i < v->rank; i++) {
		if (ir_is_const(v->dims[i]) && v->dims[i].c < 0) {
			snprintf(buf, n, "dim %d is negative (%lld)", (int)i,
			         (long long)v->dims[i].c);
			return buf;
		}
	}
	for (int32_t i = 0; i < v->rank; i++)
		if (ir_is_const(v->dims[i]) && v->dims[i].c > 0 &&
		    (shd_mul_overflow(numel, (uint64_t)v->dims[i].c, &numel) ||
		     numel >= ((uint64_t)1 << 60))) {
			snprintf(buf, n, "element count overflows");
			return buf;
		}
	return NULL;
}

static int
lift_initializer(lifter *L, const Onnx__TensorProto *t)
{
	ir_graph *g = L->g;
	uint32_t v;
	int rc;

	if (!t->name || !*t->name)
		return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s: an initializer has no name",
		                 L->path);
	ir_str s = ir_intern(g, t->name);
	if (s.i == IR_NONE)
		return nomem(L->g);
	if (find_value(L, s) != IR_NONE)
		return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s: initializer '%s' is defined twice",
		                 L->path, t->name);
	if ((rc = new_value(L, s, IR_V_INIT, &v)))
		return rc;
	ir_value *x = ir_val(g, v);
	x->init = t;
	ir_dim *d = set_shape(g, x, t->data_type, (int32_t)t->n_dims);
	if (!d)
		return nomem(L->g);
	for (size_t i = 0; i < t->n_dims; i++)
		d[i] = ir_const(t->dims[i]);
	char why[64];
	if (shape_problem(x, why, sizeof why))
		return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s: initializer '%s': %s", L->path,
		                 t->name, why);
	uint64_t n = onnx_tensor_numel(t);
	if (is_int_dtype(t->data_type) && t->n_dims <= 1 && n <= IR_MAX_ELEMS) {
		int64_t buf[IR_MAX_ELEMS];
		ir_dim *e = set_elems(g, x, (int32_t)n);
		if (!e)
			return nomem(L->g);
		if ((rc = onnx_tensor_ints(g->model, t, buf, n)))
			return rc;
		for (uint64_t i = 0; i < n; i++)
			e[i] = ir_const(buf[i]);
	}
	return 0;
}

/* Topological order: keep the model's order when it is one; otherwise
 * Kahn's algorithm, always taking the ready node that came first. */
typedef struct {
	uint32_t *heap, n;
} minheap;

static void
heap_push(minheap *h, uint32_t x)
{
	uint32_t i = h->n++;
	h->heap[i] = x;
	while (i > 0 && h->heap[(i - 1) / 2] > h->heap[i]) {
		uint32_t p = (i - 1) / 2, t = h->heap[p];
		h->heap[p] = h->heap[i];
		h->heap[i] = t;
		i = p;
	}
}

static uint32_t
heap_pop(minheap *h)
{
	uint32_t top = h->heap[0], i = 0;

	h->heap[0] = h->heap[--h->n];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && h->heap[l] < h->heap[m])
			m = l;
		if (r < h->n && h->heap[r] < h->heap[m])
			m = r;
		if (m == i)
			break;
		uint32_t t = h->heap[m];
		h->heap[m] = h->heap[i];
		h->heap[i] = t;
		i = m;
	}
	return top;
}

/* Names read inside a node's subgraphs that are values of the main graph:
 * implicit operands (ONNX forbids a subgraph to shadow an outer name). */
static int
captures(lifter *L, const Onnx__GraphProto *sg, uint32_t **deps, uint32_t *n, uint32_t *cap,
         int depth)
{
	ir_graph *g = L->g;

	if (depth > ONNX_MAX_GRAPH_DEPTH)
		return 0;
	for (size_t i = 0; i < sg->n_node; i++) {
		const Onnx__NodeProto *p = sg->node[i];
		for (size_t j = 0; j < p->n_input; j++) {
			if (!p->input[j] || !*p->input[j])
				continue;
			ir_str s = ir_intern(g, p->input[j]);
			if (s.i == IR_NONE)
				return nomem(L->g);
			uint32_t v = find_value(L, s);
			if (v == IR_NONE)
				continue;
			if (grow(g->ctx, (void **)deps, cap, *n + 1, sizeof **deps))
				return nomem(L->g);
			(*deps)[(*n)++] = v;
		}
		for (size_t j = 0; j < p->n_attribute; j++) {
			const Onnx__AttributeProto *a = p->attribute[j];
			int rc;
			if (a->g && (rc = captures(L, a->g, deps, n, cap, depth + 1)))
				return rc;
			for (size_t k = 0; k < a->n_graphs; k++)
				if ((rc = captures(L, a->graphs[k], deps, n, cap, depth + 1)))
					return rc;
		}
	}
	return 0;
}

/* Append the captured values cap[0..n) to node n's operands (the node's
 * operands are the last args), each once. */
static int
add_captures(lifter *L, ir_node *n, const uint32_t *cap, uint32_t nc)
{
	ir_graph *g = L->g;

	for (uint32_t k = 0; k < nc; k++) {
		uint32_t j;
		for (j = 0; j < n->n_in && g->args[n->in + j] != cap[k]; j++)
			;
		if (j < n->n_in)
			continue;
		if (grow(g->ctx, (void **)&g->args, &g->cap_args, g->n_args + 1, sizeof *g->args))
			return nomem(L->g);
		g->args[g->n_args++] = cap[k];
		n->n_in++;
	}
	return 0;
}

/* lift_nodes' scratch, indexed by the node's position in the proto. */
typedef struct {
	size_t nn;         /* nodes of the proto graph */
	uint32_t *dep_off; /* nn + 1: node i reads deps[dep_off[i]..dep_off[i + 1]) */
	uint32_t *deps;    /* value ids: operands, then subgraph captures */
	uint32_t n_deps, cap_deps;
	uint32_t *order; /* nn + 1: the proto index of the k-th node in order */
	uint32_t *cap;   /* one subgraph's captures (add_captures) */
	uint32_t cap_cap;
} lift_scratch;

/* Every node result as a value (IR_V_NODE, producer: the proto index for
 * now); a value defined twice is refused. */
static int
define_results(lifter *L, const Onnx__GraphProto *gp)
{
	ir_graph *g = L->g;
	char lbl[32];
	int rc;

	for (size_t i = 0; i < gp->n_node; i++) {
		const Onnx__NodeProto *p = gp->node[i];
		for (size_t j = 0; j < p->n_output; j++) {
			if (!p->output[j] || !*p->output[j])
				continue;
			ir_str s = ir_intern(g, p->output[j]);
			uint32_t v;
			if (s.i == IR_NONE)
				return nomem(L->g);
			if ((v = find_value(L, s)) != IR_NONE) {
				const char *was = ir_val(g, v)->kind == IR_V_INIT ? "an initializer"
				                  : ir_val(g, v)->kind == IR_V_INPUT
				                          ? "a graph input"
				                          : "another node";
				return shd_error(g->ctx, ONNXSHARD_EINPUT,
				                 "%s: node '%s' (%s): value '%s' is produced twice "
				                 "(also by %s)",
				                 L->path, node_label(p, lbl, sizeof lbl, i),
				                 p->op_type, p->output[j], was);
			}
			if ((rc = new_value(L, s, IR_V_NODE, &v)))
				return rc;
			g->values[v].producer = (uint32_t)i; /* proto index until sorted */
		}
	}
	return 0;
}

/* Each node's dependencies into S (operands and subgraph captures, as
 * value ids); an operand nothing defines is refused. */
static int
collect_deps(lifter *L, const Onnx__GraphProto *gp, lift_scratch *S)
{
	ir_graph *g = L->g;
	char lbl[32];
	int rc;

	for (size_t i = 0; i < S->nn; i++) {
		const Onnx__NodeProto *p = gp->node[i];
		S->dep_off[i] = S->n_deps;
		for (size_t j = 0; j < p->n_input; j++) {
			if (!p->input[j] || !*p->input[j])
				continue;
			ir_str s = ir_intern(g, p->input[j]);
			uint32_t v = s.i == IR_NONE ? IR_NONE : find_value(L, s);
			if (s.i == IR_NONE)
				return nomem(L->g);
			if (v == IR_NONE)
				return shd_error(
				        g->ctx, ONNXSHARD_EINPUT,
				        "%s: node '%s' (%s): input '%s' is not produced by "
				        "any node, graph input or initializer",
				        L->path, node_label(p, lbl, sizeof lbl, i), p->op_type,
				        p->input[j]);
			if (grow(g->ctx, (void **)&S->deps, &S->cap_deps, S->n_deps + 1,
			         sizeof *S->deps))
				return nomem(L->g);
			S->deps[S->n_deps++] = v;
		}
		for (size_t j = 0; j < p->n_attribute; j++) {
			const Onnx__AttributeProto *a = p->attribute[j];
			if (a->g && (rc = captures(L, a->g, &S->deps, &S->n_deps, &S->cap_deps, 1)))
				return rc;
			for (size_t k = 0; k < a->n_graphs; k++)
				if ((rc = captures(L, a->graphs[k], &S->deps, &S->n_deps,
				                   &S->cap_deps, 1)))
					return rc;
		}
	}
	S->dep_off[S->nn] = S->n_deps;
	return 0;
}

/* S->order: the nodes in a topological order, the proto's own when it is
 * one, else Kahn's with the lowest proto index first; a cycle is refused. */
static int
topo_order(lifter *L, const Onnx__GraphProto *gp, lift_scratch *S)
{
	ir_graph *g = L->g;
	shd_ctx *c = g->ctx;
	size_t nn = S->nn;
	const uint32_t *dep_off = S->dep_off, *deps = S->deps;
	char lbl[32];
	int rc = 0, sorted = 1;

	for (size_t i = 0; i < nn && sorted; i++)
		for (uint32_t k = dep_off[i]; k < dep_off[i + 1]; k++) {
			const ir_value *v = ir_val(g, deps[k]);
			if (v->kind == IR_V_NODE && v->producer >= i) {
				sorted = 0;
				break;
			}
		}
	if (sorted) {
		for (size_t i = 0; i < nn; i++)
			S->order[i] = (uint32_t)i;
		return 0;
	}
	/* Kahn: users of each node, count of unfinished producers */
	uint32_t *ndeps = shd_calloc(c, nn + 1, sizeof *ndeps);
	uint32_t *user_off = shd_calloc(c, nn + 2, sizeof *user_off);
	uint32_t *users = shd_calloc(c, (size_t)S->n_deps + 1, sizeof *users);
	uint32_t *waiting = shd_calloc(c, nn + 1, sizeof *waiting);
	minheap h = {0};
	h.heap = shd_calloc(c, nn + 1, sizeof *h.heap);
	if (!ndeps || !user_off || !users || !waiting || !h.heap) {
		rc = nomem(L->g);
		goto out;
	}
	for (size_t i = 0; i < nn; i++)
		for (uint32_t k = dep_off[i]; k < dep_off[i + 1]; k++) {
			const ir_value *v = ir_val(g, deps[k]);
			if (v->kind == IR_V_NODE) {
				ndeps[i]++;
				user_off[v->producer + 1]++;
			}
		}
	for (size_t i = 0; i < nn; i++)
		user_off[i + 1] += user_off[i];
	for (size_t i = 0; i < nn; i++)
		for (uint32_t k = dep_off[i]; k < dep_off[i + 1]; k++) {
			const ir_value *v = ir_val(g, deps[k]);
			if (v->kind == IR_V_NODE)
				users[user_off[v->producer] + waiting[v->producer]++] = (uint32_t)i;
		}
	for (size_t i = 0; i < nn; i++)
		if (!ndeps[i])
			heap_push(&h, (uint32_t)i);
	size_t done = 0;
	while (h.n) {
		uint32_t i = heap_pop(&h);
		S->order[done++] = i;
		for (uint32_t k = user_off[i]; k < user_off[i + 1]; k++)
			if (--ndeps[users[k]] == 0)
				heap_push(&h, users[k]);
	}
	if (done < nn) {
		size_t i;
		for (i = 0; i < nn && !ndeps[i]; i++)
			;
		rc = shd_error(c, ONNXSHARD_EINPUT,
		               "%s: node '%s' (%s): the graph has a cycle through it", L->path,
		               node_label(gp->node[i], lbl, sizeof lbl, i), gp->node[i]->op_type);
	}
out:
	shd_free(c, ndeps, (nn + 1) * sizeof *ndeps);
	shd_free(c, user_off, (nn + 2) * sizeof *user_off);
	shd_free(c, users, ((size_t)S->n_deps + 1) * sizeof *users);
	shd_free(c, waiting, (nn + 1) * sizeof *waiting);
	shd_free(c, h.heap, (nn + 1) * sizeof *h.heap);
	return rc;
}

/* The operands a known op needs: its required inputs present, no more
 * than it takes, a result. */
static int
check_arity(lifter *L, const ir_node *n, const Onnx__NodeProto *p, int op)
{
	ir_graph *g = L->g;
	int min = ops[op].min_in, max = ops[op].max_in;

	if (op == OP_Reshape && g->opset < 5)
		min = 1;
	uint32_t optional = optional_inputs(op);
	for (int j = 0; j < min; j++)
		if (ir_in(g, n, (uint32_t)j) == IR_NONE && !(j < 32 && optional >> j & 1))
			return shd_error(g->ctx, ONNXSHARD_EINPUT,
			                 j < (int)p->n_input ? "%s: node '%s' (%s): input %d is "
			                                       "required but empty"
			                                     : "%s: node '%s' (%s): needs %d "
			                                       "inputs, has fewer",
			                 L->path, ir_cstr(g, n->name), p->op_type,
			                 j < (int)p->n_input ? j : min);
	if (max >= 0 && p->n_input > (size_t)max)
		return shd_error(g->ctx, ONNXSHARD_EINPUT,
		                 "%s: node '%s' (%s): takes at most %d inputs, has %zu", L->path,
		                 ir_cstr(g, n->name), p->op_type, max, p->n_input);
	if (p->n_output == 0)
		return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s: node '%s' (%s): has no output",
		                 L->path, ir_cstr(g, n->name), p->op_type);
	return 0;
}

/* Proto node p (index i) as the next IR node: its op, names, operands
 * (then the values its subgraphs capture), results. */
static int
lift_node(lifter *L, const Onnx__NodeProto *p, size_t i, lift_scratch *S)
{
	ir_graph *g = L->g;
	shd_ctx *c = g->ctx;
	ir_node *n = &g->nodes[g->n_nodes++];
	int op = lookup_op(p->domain, p->op_type ? p->op_type : "", g->opset);
	char lbl[32];
	int rc = 0;

	n->op = (uint16_t)op;
	n->proto = p;
	n->name = ir_intern(g, node_label(p, lbl, sizeof lbl, i));
	n->op_type = ir_intern(g, p->op_type ? p->op_type : "");
	n->domain = ir_intern(g, p->domain ? p->domain : "");
	if (grow(c, (void **)&g->args, &g->cap_args,
	         g->n_args + (uint32_t)(p->n_input + p->n_output), sizeof *g->args) ||
	    n->name.i == IR_NONE || n->op_type.i == IR_NONE || n->domain.i == IR_NONE)
		return nomem(L->g);
	n->in = g->n_args;
	n->n_in = (uint32_t)p->n_input;
	for (size_t j = 0; j < p->n_input; j++)
		g->args[g->n_args++] = p->input[j] && *p->input[j]
		                               ? find_value(L, ir_intern(g, p->input[j]))
		                               : IR_NONE;
	/* values of this graph read inside the node's subgraphs are
	 * operands too (after its own), so that its rule applies to
	 * them: an op with subgraphs is opaque, they arrive whole */
	for (size_t j = 0; j < p->n_attribute; j++) {
		const Onnx__AttributeProto *a = p->attribute[j];
		uint32_t nc = 0;
		for (size_t s = 0; s < a->n_graphs + 1 && !rc; s++) {
			const Onnx__GraphProto *sg = s < a->n_graphs ? a->graphs[s] : a->g;
			nc = 0;
			if (sg && !(rc = captures(L, sg, &S->cap, &nc, &S->cap_cap, 1)))
				rc = add_captures(L, n, S->cap, nc);
		}
		if (rc)
			return rc;
	}
	if (grow(c, (void **)&g->args, &g->cap_args, g->n_args + (uint32_t)p->n_output,
	         sizeof *g->args))
		return nomem(L->g);
	n->out = g->n_args;
	n->n_out = (uint32_t)p->n_output;
	for (size_t j = 0; j < p->n_output; j++)
		g->args[g->n_args++] = p->output[j] && *p->output[j]
		                               ? find_value(L, ir_intern(g, p->output[j]))
		                               : IR_NONE;
	return op != OP_OPAQUE ? check_arity(L, n, p, op) : 0;
}

/* The nodes of gp into the IR, in a topological order.
 * requires: graph inputs and initializers lifted (L's values)
 * provides: a value per node result, g->nodes in order (a value's
 *   producer: its node's position), operands and results as value ids */
static int
lift_nodes(lifter *L, const Onnx__GraphProto *gp)
{
	ir_graph *g = L->g;
	shd_ctx *c = g->ctx;
	lift_scratch S = {0};
	int rc = 0;

	S.nn = gp->n_node;
	if (S.nn > UINT32_MAX / 4)
		return shd_error(c, ONNXSHARD_EINPUT, "%s: too many nodes", L->path);
	uint32_t *producer = shd_calloc(c, S.nn + 1, sizeof *producer);
	S.dep_off = shd_calloc(c, S.nn + 1, sizeof *S.dep_off);
	S.order = shd_calloc(c, S.nn + 1, sizeof *S.order);
	if (!producer || !S.dep_off || !S.order) {
		rc = nomem(L->g);
		goto out;
	}
	uint32_t first_result = g->n_values;
	if ((rc = define_results(L, gp)) || (rc = collect_deps(L, gp, &S)) ||
	    (rc = topo_order(L, gp, &S)))
		goto out;
	/* nodes in order; producer becomes the node's position */
	for (size_t i = 0; i < S.nn; i++)
		producer[S.order[i]] = (uint32_t)i;
	for (uint32_t v = first_result; v < g->n_values; v++)
		g->values[v].producer = producer[g->values[v].producer];
	g->nodes = shd_calloc(c, S.nn ? S.nn : 1, sizeof *g->nodes);
	if (!g->nodes) {
		rc = nomem(L->g);
		goto out;
	}
	g->cap_nodes = (uint32_t)(S.nn ? S.nn : 1);
	for (size_t k = 0; k < S.nn && !rc; k++)
		rc = lift_node(L, gp->node[S.order[k]], S.order[k], &S);
out:
	shd_free(c, producer, (S.nn + 1) * sizeof *producer);
	shd_free(c, S.order, (S.nn + 1) * sizeof *S.order);
	shd_free(c, S.dep_off, (S.nn + 1) * sizeof *S.dep_off);
	shd_free(c, S.deps, S.cap_deps * sizeof *S.deps);
	shd_free(c, S.cap, S.cap_cap * sizeof *S.cap);
	return rc;
}

/* Declared types by value: graph inputs and outputs, then value_info. */
static int
collect_declared(lifter *L, const Onnx__GraphProto *gp)
{
	ir_graph *g = L->g;
	L->declared = shd_calloc(g->ctx, g->n_values + 1, sizeof *L->declared);
	if (!L->declared)
		return nomem(L->g);
	L->n_declared = g->n_values + 1;
	const Onnx__ValueInfoProto *const *lists[3] = {
	        (const Onnx__ValueInfoProto *const *)gp->input,
	        (const Onnx__ValueInfoProto *const *)gp->output,
	        (const Onnx__ValueInfoProto *const *)gp->value_info};
	size_t counts[3] = {gp->n_input, gp->n_output, gp->n_value_info};
	for (int l = 0; l < 3; l++)
		for (size_t i = 0; i < counts[l]; i++) {
			const Onnx__ValueInfoProto *vi = lists[l][i];
			if (!vi->name || !*vi->name)
				continue;
			uint32_t v = find_value(L, ir_intern(g, vi->name));
			if (v != IR_NONE && !L->declared[v])
				L->declared[v] = vi;
		}
	return 0;
}

int
ir_infer_node(ir_graph *g, uint32_t i)
{
	ir_node *n = &g->nodes[i];
	return n->op == OP_OPAQUE ? 0 : ops[n->op].infer(g, n);
}

static int
infer_all(lifter *L)
{
	ir_graph *g = L->g;
	char why[64];
	int rc;

	for (uint32_t i = 0; i < g->n_nodes; i++) {
		ir_node *n = &g->nodes[i];
		if (n->op != OP_OPAQUE && (rc = ops[n->op].infer(g, n)))
			return rc;
		for (uint32_t k = 0; k < n->n_out; k++) {
			uint32_t v = ir_out(g, n, k);
			if (v == IR_NONE)
				continue;
			if ((rc = apply_declared(g, ir_val(g, v), L->declared[v])))
				return rc;
			/* no later op or pass sees a shape it cannot hold */
			if (shape_problem(ir_val(g, v), why, sizeof why))
				return shd_error(g->ctx, ONNXSHARD_EINPUT,
				                 "%s: node '%s' (%s): result '%s': %s", L->path,
				                 ir_cstr(g, n->name), ir_cstr(g, n->op_type),
				                 ir_cstr(g, ir_val(g, v)->name), why);
		}
	}
	return 0;
}

int
ir_lift(shd_ctx *c, onnx_model *m, ir_graph **out)
{
	const Onnx__ModelProto *mp = m->proto;
	const Onnx__GraphProto *gp;
	lifter L = {0};
	ir_graph *g;
	int rc;
	uint64_t refused = c->n_refused;

	*out = NULL;
	if ((rc = ir_inline_functions(c, m)))
		return shd_settle(c, refused, rc);
	gp = mp->graph;
	if (gp->n_node > c->max_nodes)
		return shd_error(c, ONNXSHARD_EINPUT, "%s: %zu nodes, more than %llu (--max-nodes)",
		                 m->path, gp->n_node, (unsigned long long)c->max_nodes);
	if (!(g = shd_calloc(c, 1, sizeof *g)))
		return shd_nomem(c);
	g->ctx = c;
	g->model = m;
	L.g = g;
	L.path = m->path;
	if (!(g->strs = shd_calloc(c, 1, sizeof *g->strs)) || ir_exprs_init(g)) {
		rc = nomem(L.g);
		goto fail;
	}
	g->opset = -1;
	for (size_t i = 0; i < mp->n_opset_import; i++) {
		const char *d = mp->opset_import[i]->domain;
		if (!d || !*d || !strcmp(d, "ai.onnx"))
			g->opset = mp->opset_import[i]->version;
	}
	for (size_t i = 0; i < gp->n_node; i++) {
		const char *d = gp->node[i]->domain;
		if (g->opset < 0 && (!d || !*d || !strcmp(d, "ai.onnx"))) {
			rc = shd_error(c, ONNXSHARD_EINPUT,
			               "%s: node '%s' (%s): no opset_import for the default domain",
			               m->path, gp->node[i]->name ? gp->node[i]->name : "",
			               gp->node[i]->op_type ? gp->node[i]->op_type : "");
			goto fail;
		}
		if (!gp->node[i]->op_type || !*gp->node[i]->op_type) {
			rc = shd_error(c, ONNXSHARD_EINPUT, "%s: node #%zu has no op_type", m->path,
			               i);
			goto fail;
		}
	}
	for (size_t i = 0; i < gp->n_initializer; i++)
		if ((rc = lift_initializer(&L, gp->initializer[i])))
			goto fail;
	if ((g->inputs = shd_calloc(c, gp->n_input + 1, sizeof *g->inputs)))
		g->cap_inputs = (uint32_t)gp->n_input + 1;
	if ((g->outputs = shd_calloc(c, gp->n_output + 1, sizeof *g->outputs)))
		g->cap_outputs = (uint32_t)gp->n_output + 1;
	if (!g->inputs || !g->outputs) {
		rc = nomem(L.g);
		goto fail;
	}
	for (size_t i = 0; i < gp->n_input; i++) {
		const char *name = gp->input[i]->name;
		ir_str s;
		uint32_t v;
		if (!name || !*name) {
			rc = shd_error(c, ONNXSHARD_EINPUT, "%s: graph input #%zu has no name",
			               m->path, i);
			goto fail;
		}
		if ((s = ir_intern(g, name)).i == IR_NONE) {
			rc = nomem(L.g);
			goto fail;
		}
		if ((v = find_value(&L, s)) != IR_NONE) {
			if (ir_val(g, v)->kind == IR_V_INIT)
				continue; /* old models list initializers as inputs too */
			rc = shd_error(c, ONNXSHARD_EINPUT, "%s: graph input '%s' is listed twice",
			               m->path, name);
			goto fail;
		}
		if ((rc = new_value(&L, s, IR_V_INPUT, &v)) ||
		    (rc = apply_declared(g, ir_val(g, v), gp->input[i])))
			goto fail;
		char why[64];
		if (shape_problem(ir_val(g, v), why, sizeof why)) {
			rc = shd_error(c, ONNXSHARD_EINPUT, "%s: graph input '%s': %s", m->path,
			               name, why);
			goto fail;
		}
		g->inputs[g->n_inputs++] = v;
	}
	if ((rc = lift_nodes(&L, gp)) || (rc = collect_declared(&L, gp)))
		goto fail;
	for (size_t i = 0; i < gp->n_output; i++) {
		const char *name = gp->output[i]->name;
		uint32_t v = name && *name ? find_value(&L, ir_intern(g, name)) : IR_NONE;
		if (v == IR_NONE) {
			rc = shd_error(c, ONNXSHARD_EINPUT,
			               "%s: graph output '%s' is not produced by any node, input "
			               "or initializer",
			               m->path, name ? name : "");
			goto fail;
		}
		g->values[v].is_output = 1;
		g->outputs[g->n_outputs++] = v;
	}
	/* the dim algebra answers "unknown" when refused memory: that is no
	 * graph to go on with */
	if ((rc = infer_all(&L)) || (rc = shd_settle(c, refused, 0)))
		goto fail;
	shd_free(c, L.by_name, L.cap_by_name * sizeof *L.by_name);
	shd_free(c, L.declared, L.n_declared * sizeof *L.declared);
	SHD_ASSERT(ir_verify(g) == 0);
	*out = g;
	return 0;
fail:
	shd_free(c, L.by_name, L.cap_by_name * sizeof *L.by_name);
	shd_free(c, L.declared, L.n_declared * sizeof *L.declared);
	ir_free(g);
	return shd_settle(c, refused, rc);
}

void
ir_free(ir_graph *g)
{
	if (!g)
		return;
	shd_ctx *c = g->ctx;
	shd_free(c, g->values, g->cap_values * sizeof *g->values);
	shd_free(c, g->nodes, g->cap_nodes * sizeof *g->nodes);
	shd_free(c, g->args, g->cap_args * sizeof *g->args);
	shd_free(c, g->inputs, g->cap_inputs * sizeof *g->inputs);
	shd_free(c, g->outputs, g->cap_outputs * sizeof *g->outputs);
	ir_exprs_free(g);
	ir_strtab_free(g);
	shd_arena_free(c, &g->arena);
	shd_free(c, g, sizeof *g);
}
