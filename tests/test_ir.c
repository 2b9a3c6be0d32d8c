/* Tests of ir/: what lifting refuses and what it accepts, and symbolic
 * dims (simplification, hash-consing, evaluation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "ir/ir.h"

#define F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

static shd_ctx *
ctx(void)
{
	shd_ctx *c = onnxshard_new(NULL, NULL, 1);
	assert_non_null(c);
	return c;
}

/* Load and lift m; fails the test on any refusal. */
static ir_graph *
lift(shd_ctx *c, Onnx__ModelProto *mp, onnx_model **m)
{
	ir_graph *g;

	if (tu_mb_load(c, mp, m))
		fail_msg("load: %s", onnxshard_error(c));
	if (ir_lift(c, *m, &g))
		fail_msg("lift: %s", onnxshard_error(c));
	assert_int_equal(ir_verify(g), 0);
	return g;
}

static uint32_t
value_named(ir_graph *g, const char *name)
{
	for (uint32_t v = 0; v < g->n_values; v++)
		if (!strcmp(ir_cstr(g, g->values[v].name), name))
			return v;
	fail_msg("no value '%s'", name);
	return IR_NONE;
}

/* v's shape printed as "[2,batch,?]", or "?" when the rank is unknown. */
static const char *
shape_of(ir_graph *g, const char *name)
{
	static char buf[256];
	const ir_value *x = ir_val(g, value_named(g, name));
	size_t k = 0;

	if (x->rank < 0)
		return "?";
	buf[k++] = '[';
	for (int32_t i = 0; i < x->rank; i++)
		k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? "," : "",
		                      ir_dim_str(g, x->dims[i]));
	snprintf(buf + k, sizeof buf - k, "]");
	return buf;
}

/* Every operand is produced before its reader. */
static void
assert_topological(ir_graph *g)
{
	for (uint32_t i = 0; i < g->n_nodes; i++)
		for (uint32_t k = 0; k < g->nodes[i].n_in; k++) {
			uint32_t v = ir_in(g, &g->nodes[i], k);
			if (v != IR_NONE && g->values[v].producer != IR_NONE)
				assert_true(g->values[v].producer < i);
		}
}

/* ---- refusals ---- */

static void
cycle(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2");
	tu_mb_node(m, "n1", "Relu", "b", "a");
	tu_mb_node(m, "n2", "Neg", "a", "b");
	tu_mb_node(m, "n3", "Add", "x,a", "y");
	tu_mb_output(m, "y", F32, "2");
}

static void
twice(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2");
	tu_mb_node(m, "n1", "Relu", "x", "y");
	tu_mb_node(m, "n2", "Neg", "x", "y");
	tu_mb_output(m, "y", F32, "2");
}

static void
twice_init(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2");
	tu_mb_init(m, "w", F32, "2", NULL);
	tu_mb_node(m, "n1", "Relu", "x", "w");
	tu_mb_output(m, "w", F32, "2");
}

static void
twice_input(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2");
	tu_mb_node(m, "n1", "Relu", "x", "x");
	tu_mb_output(m, "x", F32, "2");
}

static void
undefined(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2");
	tu_mb_node(m, "n1", "Add", "x,nothere", "y");
	tu_mb_output(m, "y", F32, "2");
}

static void
matmul_one(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2,2");
	tu_mb_node(m, "n1", "MatMul", "x", "y");
	tu_mb_output(m, "y", F32, NULL);
}

static void
matmul_absent(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2,2");
	tu_mb_node(m, "n1", "MatMul", "x,", "y");
	tu_mb_output(m, "y", F32, NULL);
}

static void
reshape_one(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2,2");
	tu_mb_node(m, "n1", "Reshape", "x", "y");
	tu_mb_output(m, "y", F32, NULL);
}

static void
inner_dims(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2,4");
	tu_mb_init(m, "w", F32, "5,3", NULL);
	tu_mb_node(m, "n1", "MatMul", "x,w", "y");
	tu_mb_output(m, "y", F32, NULL);
}

static void
gemm_rank3(Onnx__ModelProto *m)
{
	tu_mb_input(m, "a", F32, "2,3,4");
	tu_mb_init(m, "b", F32, "4,5", NULL);
	tu_mb_node(m, "n1", "Gemm", "a,b", "y");
	tu_mb_output(m, "y", F32, NULL);
}

static void
cast_bad(Onnx__ModelProto *m)
{
	tu_mb_input(m, "x", F32, "2");
	tu_mb_attr_int(tu_mb_node(m, "n1", "Cast", "x", "y"), "to", 99);
	tu_mb_output(m, "y", 0, NULL);
}

static const struct {
	const char *name;
	void (*build)(Onnx__ModelProto *m);
	const char *node; /* the node the message names */
	const char *what;
} refusals[] = {
        {"cycle", cycle, "n1", "the graph has a cycle through it"},
        {"value produced twice", twice, "n2", "value 'y' is produced twice (also by another node)"},
        {"result named like an initializer", twice_init, "n1",
         "value 'w' is produced twice (also by an initializer)"},
        {"result named like a graph input", twice_input, "n1",
         "value 'x' is produced twice (also by a graph input)"},
        {"input nothing produces", undefined, "n1",
         "input 'nothere' is not produced by any node, graph input or initializer"},
        {"MatMul with one input", matmul_one, "n1", "needs 2 inputs"},
        {"MatMul with an absent input", matmul_absent, "n1", "input 1 is required but empty"},
        {"Reshape with one input", reshape_one, "n1", "needs 2 inputs"},
        {"MatMul inner dims", inner_dims, "n1", "inner dims 4 and 5 differ"},
        {"Gemm on rank 3", gemm_rank3, "n1", "operands must be matrices (ranks 3 and 2)"},
        {"Cast to an unknown dtype", cast_bad, "n1",
         "attribute 'to' is not a known data type (99)"},
};

/* A refusal: EINPUT, one line, "t.onnx: node 'NAME' (...): what". */
static void
assert_refusal(shd_ctx *c, int rc, const char *name, const char *node, const char *what)
{
	const char *e = onnxshard_error(c);
	char want[128];

	snprintf(want, sizeof want, "t.onnx: node '%s' (", node);
	if (rc != ONNXSHARD_EINPUT || strncmp(e, want, strlen(want)) || !strstr(e, what) ||
	    strchr(e, '\n'))
		fail_msg("%s: want status 2 and '%s...%s', got %d '%s'", name, want, what, rc, e);
}

static void
test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		shd_ctx *c = ctx();
		Onnx__ModelProto *mp = tu_mb_new(13);
		onnx_model *m;
		ir_graph *g = NULL;

		refusals[i].build(mp);
		if (tu_mb_load(c, mp, &m))
			fail_msg("%s: load: %s", refusals[i].name, onnxshard_error(c));
		int rc = ir_lift(c, m, &g);
		assert_null(g);
		assert_refusal(c, rc, refusals[i].name, refusals[i].node, refusals[i].what);
		onnx_model_free(m);
		tu_mb_free(mp);
		onnxshard_free(c);
	}
}

/* The loader wants an opset for every domain it sees; the lifter checks
 * the default domain on its own, so hide it after loading. */
static void
test_no_default_opset(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp = tu_mb_new(0);
	onnx_model *m;
	ir_graph *g = NULL;

	(void)state;
	tu_mb_opset(mp, "my.domain", 1);
	tu_mb_opset(mp, "", 13);
	tu_mb_input(mp, "x", F32, "2");
	tu_mb_node(mp, "n1", "Relu", "x", "y");
	tu_mb_output(mp, "y", F32, "2");
	assert_int_equal(tu_mb_load(c, mp, &m), 0);
	assert_int_equal(m->proto->n_opset_import, 2);
	m->proto->n_opset_import = 1; /* only my.domain */
	int rc = ir_lift(c, m, &g);
	m->proto->n_opset_import = 2;
	assert_null(g);
	assert_refusal(c, rc, "no default opset", "n1", "no opset_import for the default domain");
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

/* ---- accepted ---- */

static void
test_out_of_order(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp = tu_mb_new(13);
	onnx_model *m;

	(void)state;
	tu_mb_input(mp, "x", F32, "batch,4");
	tu_mb_node(mp, "n4", "Sub", "c,b", "y");
	tu_mb_node(mp, "n3", "Add", "b,a", "c");
	tu_mb_node(mp, "n2", "Neg", "a", "b");
	tu_mb_node(mp, "n1", "Relu", "x", "a");
	tu_mb_output(mp, "y", 0, NULL);
	ir_graph *g = lift(c, mp, &m);
	assert_int_equal(g->n_nodes, 4);
	assert_topological(g);
	const char *want[] = {"n1", "n2", "n3", "n4"};
	for (uint32_t i = 0; i < 4; i++)
		assert_string_equal(ir_cstr(g, g->nodes[i].name), want[i]);
	assert_string_equal(shape_of(g, "y"), "[batch,4]");
	assert_int_equal(ir_val(g, value_named(g, "y"))->dtype, F32);
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

/* A malloc'd copy of n bytes of s (as tu_mb_free frees it). */
static char *
dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	assert_non_null(d);
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

/* Strings of a comma list, malloc'd. */
static char **
names(const char *list, size_t *n)
{
	char **v = calloc(8, sizeof *v);
	const char *p = list;

	assert_non_null(v);
	for (*n = 0; *p && *n < 8; (*n)++) {
		size_t k = strcspn(p, ",");
		v[*n] = dup_n(p, k);
		p += k + (p[k] == ',');
	}
	return v;
}

/* A function NAME of domain "local" (importing ai.onnx 17) whose body is
 * the last k nodes of mp's graph, moved there. */
static void
add_function(Onnx__ModelProto *mp, const char *name, const char *ins, const char *outs, size_t k)
{
	Onnx__FunctionProto *f = calloc(1, sizeof *f);
	Onnx__OperatorSetIdProto *o = calloc(1, sizeof *o);
	Onnx__GraphProto *g = mp->graph;

	assert_true(f && o && g->n_node >= k);
	onnx__function_proto__init(f);
	onnx__operator_set_id_proto__init(o);
	o->domain = dup_n("", 0);
	o->has_version = 1;
	o->version = 17;
	f->opset_import = calloc(1, sizeof *f->opset_import);
	f->opset_import[0] = o;
	f->n_opset_import = 1;
	f->name = dup_n(name, strlen(name));
	f->domain = dup_n("local", 5);
	f->input = names(ins, &f->n_input);
	f->output = names(outs, &f->n_output);
	f->node = calloc(k + 1, sizeof *f->node);
	memcpy(f->node, g->node + g->n_node - k, k * sizeof *f->node);
	f->n_node = k;
	g->n_node -= k;
	mp->functions = realloc(mp->functions, (mp->n_functions + 1) * sizeof *mp->functions);
	mp->functions[mp->n_functions++] = f;
}

/* Calls of a model-local function are inlined before lifting: one body per
 * call, its names prefixed by the call's, nested calls too; the functions,
 * no longer called, are gone. A function calling itself is refused. */
static void
test_inline(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp = tu_mb_new(17);
	onnx_model *m;

	(void)state;
	tu_mb_opset(mp, "local", 1);
	tu_mb_input(mp, "x", F32, "batch,4");
	tu_mb_init(mp, "w", F32, "4,4", NULL);
	tu_mb_node(mp, "mm", "MatMul", "a,b", "t");
	tu_mb_node(mp, "", "Relu", "t", "c");
	add_function(mp, "Lin", "a,b", "c", 2);
	tu_mb_domain(tu_mb_node(mp, "", "Lin", "a,b", "t"), "local");
	tu_mb_node(mp, "", "Neg", "t", "c");
	add_function(mp, "Outer", "a,b", "c", 2);
	tu_mb_domain(tu_mb_node(mp, "call", "Lin", "x,w", "h"), "local");
	tu_mb_domain(tu_mb_node(mp, "", "Outer", "h,w", "y"), "local");
	tu_mb_output(mp, "y", 0, NULL);
	ir_graph *g = lift(c, mp, &m);
	assert_int_equal(g->n_nodes, 5);
	assert_int_equal(g->nodes[0].op, OP_MatMul);
	assert_string_equal(ir_cstr(g, g->nodes[0].name), "call/mm");
	assert_string_equal(ir_cstr(g, g->nodes[1].name), "call/Relu");
	assert_string_equal(ir_cstr(g, g->nodes[2].name), "y/Lin/mm");
	assert_int_equal(g->nodes[4].op, OP_Neg);
	assert_string_equal(shape_of(g, "call/t"), "[batch,4]");
	assert_string_equal(shape_of(g, "y/Lin/t"), "[batch,4]");
	assert_string_equal(shape_of(g, "y"), "[batch,4]");
	assert_int_equal(m->proto->n_functions, 0);
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);

	mp = tu_mb_new(17);
	tu_mb_opset(mp, "local", 1);
	tu_mb_input(mp, "x", F32, "4");
	tu_mb_node(mp, "", "Relu", "a", "t");
	tu_mb_domain(tu_mb_node(mp, "again", "Rec", "t", "c"), "local");
	add_function(mp, "Rec", "a", "c", 2);
	tu_mb_domain(tu_mb_node(mp, "first", "Rec", "x", "y"), "local");
	tu_mb_output(mp, "y", 0, NULL);
	assert_int_equal(tu_mb_load(c, mp, &m), 0);
	assert_int_equal(ir_lift(c, m, &g), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "t.onnx: node 'first/again' (Rec): local "
	                                           "function 'Rec' calls itself"));
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

static void
test_opaque(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp = tu_mb_new(13);
	onnx_model *m;

	(void)state;
	tu_mb_opset(mp, "my.domain", 1);
	tu_mb_input(mp, "x", F32, "batch,4");
	tu_mb_node(mp, "n1", "NoSuchOp", "x", "a");
	Onnx__NodeProto *n2 = tu_mb_node(mp, "n2", "MatMul", "a,x", "b");
	tu_mb_domain(n2, "my.domain"); /* not ONNX's MatMul */
	tu_mb_node(mp, "n3", "Relu", "b", "y");
	tu_mb_node(mp, "n4", "NoSuchOp", "x", "z");
	tu_mb_value_info(mp, "a", F32, "3,?,batch");
	tu_mb_value_info(mp, "b", I64, "batch,7");
	tu_mb_output(mp, "y", 0, NULL);
	tu_mb_output(mp, "z", 0, NULL);
	ir_graph *g = lift(c, mp, &m);
	assert_int_equal(g->nodes[0].op, OP_OPAQUE);
	assert_int_equal(g->nodes[1].op, OP_OPAQUE);
	assert_int_equal(g->nodes[2].op, OP_Relu);
	assert_string_equal(ir_cstr(g, g->nodes[1].domain), "my.domain");
	assert_string_equal(ir_cstr(g, g->nodes[1].op_type), "MatMul");
	assert_string_equal(shape_of(g, "a"), "[3,?,batch]");
	assert_string_equal(shape_of(g, "b"), "[batch,7]");
	assert_int_equal(ir_val(g, value_named(g, "b"))->dtype, I64);
	assert_string_equal(shape_of(g, "y"), "[batch,7]"); /* inferred past them */
	assert_int_equal(ir_val(g, value_named(g, "y"))->dtype, I64);
	assert_string_equal(shape_of(g, "z"), "?"); /* nothing declared */
	assert_int_equal(ir_val(g, value_named(g, "z"))->dtype, 0);
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

static void
test_zero_size(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp = tu_mb_new(13);
	onnx_model *m;

	(void)state;
	tu_mb_input(mp, "x", F32, "0,4");
	tu_mb_input(mp, "s", F32, "1,3");
	tu_mb_init(mp, "w", F32, "4,3", NULL);
	tu_mb_init(mp, "e", F32, "0,5", NULL);
	tu_mb_init(mp, "shape", I64, "3", (const int64_t[]){2, 0, 3});
	tu_mb_node(mp, "n1", "MatMul", "x,w", "a");
	tu_mb_node(mp, "n2", "Add", "a,s", "b");
	tu_mb_node(mp, "n3", "Relu", "e", "f");
	tu_mb_node(mp, "n4", "ReduceSum", "e", "r");
	tu_mb_node(mp, "n5", "ConstantOfShape", "shape", "k");
	tu_mb_output(mp, "b", 0, NULL);
	tu_mb_output(mp, "f", 0, NULL);
	tu_mb_output(mp, "r", 0, NULL);
	tu_mb_output(mp, "k", 0, NULL);
	ir_graph *g = lift(c, mp, &m);
	assert_string_equal(shape_of(g, "a"), "[0,3]");
	assert_string_equal(shape_of(g, "b"), "[0,3]");
	assert_string_equal(shape_of(g, "f"), "[0,5]");
	assert_string_equal(shape_of(g, "r"), "[1,1]");
	assert_string_equal(shape_of(g, "k"), "[2,0,3]");
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

static void
test_output_is_input(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp = tu_mb_new(13);
	onnx_model *m;

	(void)state;
	tu_mb_input(mp, "x", F32, "2,batch");
	tu_mb_node(mp, "n1", "Relu", "x", "y");
	tu_mb_output(mp, "x", F32, "2,batch");
	tu_mb_output(mp, "y", 0, NULL);
	ir_graph *g = lift(c, mp, &m);
	uint32_t x = value_named(g, "x");
	assert_int_equal(g->n_inputs, 1);
	assert_int_equal(g->n_outputs, 2);
	assert_int_equal(g->inputs[0], x);
	assert_int_equal(g->outputs[0], x);
	assert_int_equal(ir_val(g, x)->kind, IR_V_INPUT);
	assert_true(ir_val(g, x)->is_output);
	assert_string_equal(shape_of(g, "y"), "[2,batch]");
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

/* Elements of a small integer value printed as "{batch,0,?}". */
static const char *
elems_of(ir_graph *g, const char *name)
{
	static char buf[256];
	const ir_value *x = ir_val(g, value_named(g, name));
	size_t k = 0;

	if (!x->elems)
		return "none";
	buf[k++] = '{';
	for (int32_t i = 0; i < x->n_elems; i++)
		k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? "," : "",
		                      ir_dim_str(g, x->elems[i]));
	snprintf(buf + k, sizeof buf - k, "}");
	return buf;
}

/* PyTorch's expand: Where(Equal(shape, -1), 1, shape) folds, since dims
 * are never negative; shape arithmetic folds to symbolic elements. */
static void
test_fold_shapes(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp = tu_mb_new(13);
	onnx_model *m;

	(void)state;
	tu_mb_input(mp, "x", F32, "batch,seq,8");
	tu_mb_init(mp, "neg", I64, "3", (const int64_t[]){-1, -1, -1});
	tu_mb_init(mp, "ones", I64, "3", (const int64_t[]){1, 1, 1});
	tu_mb_init(mp, "k", I64, "3", (const int64_t[]){2, 1, 8});
	tu_mb_init(mp, "two", I64, "", (const int64_t[]){2});
	tu_mb_node(mp, "n1", "Shape", "x", "s");
	tu_mb_node(mp, "n2", "Equal", "s,neg", "e");
	tu_mb_node(mp, "n3", "Where", "e,ones,s", "w");
	tu_mb_node(mp, "n4", "Mul", "s,k", "s2");
	tu_mb_node(mp, "n5", "Equal", "s2,s", "e2");
	tu_mb_node(mp, "n6", "Size", "x", "n");
	tu_mb_node(mp, "n7", "Div", "n,two", "h");
	tu_mb_node(mp, "n8", "Sub", "s2,s", "d");
	tu_mb_node(mp, "n9", "ConstantOfShape", "s2", "z");
	tu_mb_output(mp, "w", 0, NULL);
	tu_mb_output(mp, "e2", 0, NULL);
	tu_mb_output(mp, "h", 0, NULL);
	tu_mb_output(mp, "d", 0, NULL);
	tu_mb_output(mp, "z", 0, NULL);
	ir_graph *g = lift(c, mp, &m);
	assert_string_equal(elems_of(g, "s"), "{batch,seq,8}");
	assert_string_equal(elems_of(g, "e"), "{0,0,0}");
	assert_string_equal(elems_of(g, "w"), "{batch,seq,8}");
	assert_string_equal(elems_of(g, "s2"), "{2*batch,seq,64}");
	assert_string_equal(elems_of(g, "e2"), "{?,1,0}"); /* batch may be 0 */
	assert_string_equal(elems_of(g, "h"), "{4*batch*seq}");
	assert_string_equal(elems_of(g, "d"), "{batch,0,56}");
	assert_string_equal(shape_of(g, "z"), "[2*batch,seq,64]");
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

/* ---- symbolic dims ---- */

typedef struct {
	const char *name;
	int64_t val;
} binding;

static int
bind(void *ud, const char *sym, int64_t *val)
{
	for (const binding *b = ud; b->name; b++)
		if (!strcmp(b->name, sym)) {
			*val = b->val;
			return 0;
		}
	return 1;
}

static int64_t
eval(ir_graph *g, ir_dim d, const binding *b)
{
	int64_t v;

	if (ir_dim_eval(g, d, bind, (void *)b, &v))
		fail_msg("'%s' does not evaluate", ir_dim_str(g, d));
	return v;
}

/* A graph to hold expressions: x [batch, seq, 64] -> Relu. */
static ir_graph *
dims_graph(shd_ctx *c, Onnx__ModelProto **mp, onnx_model **m)
{
	*mp = tu_mb_new(13);
	tu_mb_input(*mp, "x", F32, "batch,seq,64");
	tu_mb_node(*mp, "n1", "Relu", "x", "y");
	tu_mb_output(*mp, "y", 0, NULL);
	return lift(c, *mp, m);
}

static void
test_dims_simplify(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp;
	onnx_model *m;
	ir_graph *g = dims_graph(c, &mp, &m);
	ir_dim b = ir_sym(g, "batch"), s = ir_sym(g, "seq");
	const binding at5[] = {{"batch", 3}, {"seq", 5}, {NULL, 0}};
	const binding at6[] = {{"batch", 3}, {"seq", 6}, {NULL, 0}};

	(void)state;
	/* the input's dims are the same symbols */
	const ir_value *x = ir_val(g, value_named(g, "x"));
	assert_true(ir_dim_eq(x->dims[0], b));
	assert_true(ir_dim_eq(x->dims[1], s));
	/* (batch*seq*64)/(batch*seq) == 64 */
	ir_dim bs = ir_mul(g, b, s), bs64 = ir_mul(g, bs, ir_const(64));
	ir_dim q = ir_floordiv(g, bs64, bs);
	assert_true(ir_is_const(q));
	assert_int_equal(q.c, 64);
	assert_true(ir_dim_eq(ir_floordiv(g, bs64, ir_const(64)), bs));
	assert_true(ir_dim_eq(ir_floordiv(g, bs64, s), ir_mul(g, ir_const(64), b)));
	assert_string_equal(ir_dim_str(g, bs64), "64*batch*seq");
	/* (2*seq+4)/2 == seq+2, exactly */
	ir_dim s24 = ir_add(g, ir_mul(g, ir_const(2), s), ir_const(4));
	assert_true(ir_dim_eq(ir_floordiv(g, s24, ir_const(2)), ir_add(g, s, ir_const(2))));
	/* (2*seq+1)/2 stays symbolic and evaluates as floor division */
	ir_dim s21 = ir_add(g, ir_mul(g, ir_const(2), s), ir_const(1));
	ir_dim h = ir_floordiv(g, s21, ir_const(2));
	assert_string_equal(ir_dim_str(g, s21), "2*seq+1");
	assert_true(ir_is_known(h));
	assert_false(ir_is_const(h));
	assert_false(ir_dim_eq(h, s));
	assert_string_equal(ir_dim_str(g, h), "floor((2*seq+1)/2)");
	assert_int_equal(eval(g, h, at5), 5);
	assert_int_equal(eval(g, h, at6), 6);
	assert_int_equal(eval(g, ir_mod(g, s21, ir_const(2)), at5), 1);
	assert_int_equal(eval(g, ir_ceildiv(g, s, ir_const(4)), at5), 2);
	ir_dim sb2 = ir_floordiv(g, s, ir_mul(g, ir_const(2), b));
	assert_string_equal(ir_dim_str(g, sb2), "floor(seq/(2*batch))");
	assert_int_equal(eval(g, sb2, at6), 1);
	/* cancellation and exact remainders */
	assert_true(ir_dim_eq(ir_sub(g, ir_add(g, s, b), b), s));
	ir_dim zero = ir_sub(g, bs, ir_mul(g, s, b));
	assert_true(ir_is_const(zero) && zero.c == 0);
	ir_dim r = ir_mod(g, ir_mul(g, ir_const(4), s), ir_const(2));
	assert_true(ir_is_const(r) && r.c == 0);
	assert_true(ir_dim_eq(ir_min(g, s, s), s));
	/* unknown stays unknown; division by zero is unknown */
	assert_false(ir_is_known(ir_add(g, s, ir_unknown())));
	assert_false(ir_is_known(ir_floordiv(g, s, ir_const(0))));
	assert_false(ir_dim_eq(ir_unknown(), ir_unknown()));
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

static void
test_dims_hashcons(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp;
	onnx_model *m;
	ir_graph *g = dims_graph(c, &mp, &m);
	ir_dim b = ir_sym(g, "batch"), s = ir_sym(g, "seq");

	(void)state;
	assert_int_equal(ir_sym(g, "seq").ex, s.ex);
	assert_int_not_equal(b.ex, s.ex);
	/* same expression, built in different ways: same id */
	ir_dim e1 = ir_add(g, ir_mul(g, ir_const(2), s), ir_const(1));
	ir_dim e2 = ir_add(g, ir_const(1), ir_add(g, s, s));
	assert_int_equal(e1.ex, e2.ex);
	assert_int_equal(ir_mul(g, b, s).ex, ir_mul(g, s, b).ex);
	assert_int_equal(ir_mul(g, ir_add(g, b, ir_const(1)), s).ex,
	                 ir_add(g, ir_mul(g, s, b), s).ex);
	ir_dim h1 = ir_floordiv(g, e1, ir_const(2)), h2 = ir_floordiv(g, e2, ir_const(2));
	assert_int_equal(h1.ex, h2.ex);
	assert_int_equal(ir_max(g, b, s).ex, ir_max(g, b, s).ex);
	assert_int_not_equal(ir_max(g, b, s).ex, ir_min(g, b, s).ex);
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

static void
test_dims_eval(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp;
	onnx_model *m;
	ir_graph *g = dims_graph(c, &mp, &m);
	ir_dim b = ir_sym(g, "batch"), s = ir_sym(g, "seq");
	const binding both[] = {{"batch", 8}, {"seq", 16}, {NULL, 0}};
	const binding only_b[] = {{"batch", 8}, {NULL, 0}};
	int64_t v;

	(void)state;
	ir_dim d = ir_add(g, ir_mul(g, ir_mul(g, b, s), ir_const(64)), ir_sub(g, s, ir_const(3)));
	assert_int_equal(eval(g, d, both), 8 * 16 * 64 + 16 - 3);
	assert_int_equal(ir_dim_eval(g, d, bind, (void *)only_b, &v), 1);
	assert_int_equal(ir_dim_eval(g, d, NULL, NULL, &v), 1);
	assert_int_equal(eval(g, ir_const(-7), NULL), -7);
	assert_int_equal(ir_dim_eval(g, ir_unknown(), bind, (void *)both, &v), 1);
	assert_int_equal(eval(g, ir_min(g, b, s), both), 8);
	assert_int_equal(eval(g, ir_max(g, b, s), both), 16);
	assert_int_equal(eval(g, ir_floordiv(g, s, b), both), 2);
	assert_int_equal(eval(g, ir_floordiv(g, ir_sub(g, ir_const(0), s), ir_const(3)), both), -6);
	/* symbols d mentions, through atoms too */
	ir_str syms[4];
	assert_int_equal(ir_dim_syms(g, d, syms, 4), 2);
	assert_int_equal(ir_dim_syms(g, ir_floordiv(g, b, ir_const(3)), syms, 4), 1);
	assert_string_equal(ir_cstr(g, syms[0]), "batch");
	assert_int_equal(ir_dim_syms(g, ir_const(3), syms, 4), 0);
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

static void
test_dims_constants(void **state)
{
	shd_ctx *c = ctx();
	Onnx__ModelProto *mp;
	onnx_model *m;
	ir_graph *g = dims_graph(c, &mp, &m);
	static const int64_t cases[][4] = {
	        /* a, b, ceil(a/b), floor(a/b) */
	        {7, 2, 4, 3},   {-7, 2, -3, -4}, {7, -2, -3, -4},
	        {-7, -2, 4, 3}, {6, 3, 2, 2},    {-6, 3, -2, -2},
	        {0, 5, 0, 0},   {1, 1, 1, 1},    {INT64_MAX, 2, INT64_MAX / 2 + 1, INT64_MAX / 2},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ir_dim ce = ir_ceildiv(g, ir_const(cases[i][0]), ir_const(cases[i][1]));
		ir_dim fl = ir_floordiv(g, ir_const(cases[i][0]), ir_const(cases[i][1]));
		if (!ir_is_const(ce) || ce.c != cases[i][2] || !ir_is_const(fl) ||
		    fl.c != cases[i][3])
			fail_msg("%lld / %lld: ceil %s floor %s", (long long)cases[i][0],
			         (long long)cases[i][1], ir_dim_str(g, ce), ir_dim_str(g, fl));
	}
	assert_false(ir_is_known(ir_ceildiv(g, ir_const(5), ir_const(0))));
	assert_false(ir_is_known(ir_floordiv(g, ir_const(INT64_MIN), ir_const(-1))));
	assert_false(ir_is_known(ir_mul(g, ir_const(INT64_MAX), ir_const(2))));
	assert_false(ir_is_known(ir_add(g, ir_const(INT64_MAX), ir_const(1))));
	assert_int_equal(ir_mod(g, ir_const(-7), ir_const(3)).c, 2);
	assert_int_equal(ir_mod(g, ir_const(7), ir_const(-3)).c, -2);
	ir_free(g);
	onnx_model_free(m);
	tu_mb_free(mp);
	onnxshard_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_refusals),        cmocka_unit_test(test_no_default_opset),
	        cmocka_unit_test(test_out_of_order),    cmocka_unit_test(test_opaque),
	        cmocka_unit_test(test_inline),          cmocka_unit_test(test_zero_size),
	        cmocka_unit_test(test_output_is_input), cmocka_unit_test(test_fold_shapes),
	        cmocka_unit_test(test_dims_simplify),   cmocka_unit_test(test_dims_hashcons),
	        cmocka_unit_test(test_dims_eval),       cmocka_unit_test(test_dims_constants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
