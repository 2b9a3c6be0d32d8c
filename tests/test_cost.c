/* Tests of search/hw.c and search/cost.c: hardware profiles (presets, JSON
 * files, every bad key named), the collectives' ring formulas on hand-made
 * plans, memory and time monotonicity, feasibility, exactness. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "search/cost.h"
#include "search/search.h"

#define F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define F16 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16

static shd_ctx *
ctx(void)
{
	shd_ctx *c = onnxshard_new(NULL, NULL, 1);
	assert_non_null(c);
	return c;
}

static const char good_json[] =
        "{\"name\": \"h100-node\", \"peak_flops\": {\"float32\": 6.7e13, \"float16\": 9.9e14, "
        "\"bfloat16\": 9.9e14},\n"
        " \"memory_bandwidth\": 3.35e12, \"memory_capacity\": 8.0e10, \"devices_per_node\": 8,\n"
        " \"intra_node\": {\"bandwidth\": 4.5e11, \"latency\": 8e-6},\n"
        " \"inter_node\": {\"bandwidth\": 5.0e10, \"latency\": 2.0e-5}}\n";

/* Load text as a profile file; the status, the diagnostic in *err. */
static int
load_text(shd_ctx *c, const char *text, search_hw *hw, char *err, size_t n)
{
	char *dir = tu_tmpdir(), *path = tu_path(dir, "hw.json");
	int rc;

	tu_write(path, text, strlen(text));
	rc = search_hw_load(c, path, hw);
	snprintf(err, n, "%s", onnxshard_error(c));
	tu_rmtree(dir);
	free(path);
	free(dir);
	return rc;
}

static void
test_presets(void **state)
{
	shd_ctx *c = ctx();
	search_hw hw;

	(void)state;
	assert_int_equal(search_hw_load(c, "h100", &hw), 0);
	assert_string_equal(hw.name, "h100");
	assert_true(hw.peak_flops[F32] == 6.7e13 && hw.peak_flops[F16] == 9.9e14);
	assert_true(hw.peak_flops[ONNX__TENSOR_PROTO__DATA_TYPE__INT64] == 6.7e13);
	assert_true(hw.mem_bw == 3.35e12 && hw.mem_cap == 8.0e10 && hw.devices_per_node == 8);
	assert_true(hw.intra_bw == 4.5e11 && hw.inter_bw == 5.0e10);
	search_hw_free(c, &hw);
	assert_int_equal(search_hw_load(c, "a100", &hw), 0);
	assert_true(hw.peak_flops[F32] == 1.95e13 && hw.mem_bw == 2.0e12);
	search_hw_free(c, &hw);
	assert_int_equal(search_hw_load(c, "cpu", &hw), 0);
	assert_true(hw.devices_per_node == 1 && hw.mem_cap == 24.0 * 1024 * 1024 * 1024);
	search_hw_free(c, &hw);
	assert_int_equal(search_hw_load(c, "/nonexistent/tpu.json", &hw), ONNXSHARD_EINPUT);
	assert_non_null(strstr(onnxshard_error(c), "not a hardware preset"));
	onnxshard_free(c);
}

static void
test_json_good(void **state)
{
	shd_ctx *c = ctx();
	search_hw hw;
	char err[512];

	(void)state;
	assert_int_equal(load_text(c, good_json, &hw, err, sizeof err), 0);
	assert_string_equal(hw.name, "h100-node");
	assert_true(hw.peak_flops[F32] == 6.7e13);
	assert_true(hw.peak_flops[ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16] == 9.9e14);
	/* unset dtypes: float32's */
	assert_true(hw.peak_flops[ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE] == 6.7e13);
	assert_true(hw.peak_flops[ONNX__TENSOR_PROTO__DATA_TYPE__INT8] == 6.7e13);
	assert_true(hw.mem_bw == 3.35e12 && hw.mem_cap == 8.0e10 && hw.devices_per_node == 8);
	assert_true(hw.intra_bw == 4.5e11 && hw.intra_lat == 8e-6);
	assert_true(hw.inter_bw == 5.0e10 && hw.inter_lat == 2.0e-5);
	assert_true(hw.op_overhead == 0);
	search_hw_free(c, &hw);
	onnxshard_free(c);
}

/* Replace the first occurrence of `from` in the good profile by `to`. */
static char *
edited(const char *from, const char *to)
{
	const char *at = strstr(good_json, from);
	assert_non_null(at);
	size_t n = strlen(good_json) - strlen(from) + strlen(to) + 1;
	char *s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, "%.*s%s%s", (int)(at - good_json), good_json, to, at + strlen(from));
	return s;
}

static void
test_json_bad(void **state)
{
	static const struct {
		const char *from, *to, *key;
	} cases[] = {
	        {"\"name\": \"h100-node\", ", "", "key 'name': missing"},
	        {"\"h100-node\"", "7", "key 'name'"},
	        {"\"peak_flops\": {\"float32\": 6.7e13, \"float16\": 9.9e14, \"bfloat16\": "
	         "9.9e14},",
	         "", "key 'peak_flops': missing"},
	        {"\"float32\": 6.7e13, ", "", "key 'peak_flops.float32': missing"},
	        {"\"float16\": 9.9e14", "\"float16\": -1", "key 'peak_flops.float16'"},
	        {"\"float16\": 9.9e14", "\"float17\": 1e14", "key 'peak_flops.float17'"},
	        {"\"memory_bandwidth\": 3.35e12, ", "", "key 'memory_bandwidth': missing"},
	        {"3.35e12", "\"fast\"", "key 'memory_bandwidth'"},
	        {"3.35e12", "0", "key 'memory_bandwidth'"},
	        {"\"memory_capacity\": 8.0e10, ", "", "key 'memory_capacity': missing"},
	        {"8.0e10", "-8", "key 'memory_capacity'"},
	        {"\"devices_per_node\": 8,", "", "key 'devices_per_node': missing"},
	        {"\"devices_per_node\": 8", "\"devices_per_node\": 0", "key 'devices_per_node'"},
	        {"\"devices_per_node\": 8", "\"devices_per_node\": 2.5", "key 'devices_per_node'"},
	        {"\"intra_node\": {\"bandwidth\": 4.5e11, \"latency\": 8e-6},", "",
	         "key 'intra_node': missing"},
	        {"{\"bandwidth\": 4.5e11, \"latency\": 8e-6}", "[1, 2]", "key 'intra_node'"},
	        {"\"bandwidth\": 4.5e11, ", "", "key 'intra_node.bandwidth': missing"},
	        {"\"latency\": 8e-6", "\"latency\": -1", "key 'intra_node.latency'"},
	        {"\"inter_node\": {\"bandwidth\": 5.0e10, \"latency\": 2.0e-5}", "\"x\": 1",
	         "key 'inter_node': missing"},
	        {"\"bandwidth\": 5.0e10", "\"bandwidth\": null", "key 'inter_node.bandwidth'"},
	        {"\"latency\": 2.0e-5", "\"lat\": 2.0e-5", "key 'inter_node.latency': missing"},
	        {"\"devices_per_node\": 8,", "\"devices_per_node\": 8, \"op_overhead\": -1,",
	         "key 'op_overhead'"},
	        {"{\"name\"", "[{\"name\"", "not JSON"},
	};
	shd_ctx *c = ctx();
	search_hw hw;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *text = edited(cases[i].from, cases[i].to);
		int rc = load_text(c, text, &hw, err, sizeof err);
		if (rc != ONNXSHARD_EINPUT || !strstr(err, cases[i].key))
			fail_msg("case %zu: rc %d, '%s' (want '%s')", i, rc, err, cases[i].key);
		assert_null(hw.name);
		free(text);
	}
	onnxshard_free(c);
}

/* ---- plans on small models ---- */

typedef struct {
	shd_ctx *c;
	Onnx__ModelProto *mp;
	onnx_model *m;
	ir_graph *g;
	prop_mesh mesh;
	prop_plan p;
	const char *binds; /* "batch=8" style, one binding */
} fixture;

static int
bind_one(void *ud, const char *sym, int64_t *val)
{
	const fixture *f = ud;
	size_t n = strlen(sym);

	if (!f->binds || strncmp(f->binds, sym, n) || f->binds[n] != '=')
		return 1;
	*val = strtoll(f->binds + n + 1, NULL, 10);
	return 0;
}

static void
fx_plan(fixture *f, const char *mesh)
{
	if (prop_mesh_parse(f->c, mesh, &f->mesh) || prop_plan_init(f->g, &f->mesh, &f->p))
		fail_msg("plan: %s", onnxshard_error(f->c));
	f->p.bind = bind_one;
	f->p.bind_ud = f;
}

static void
fx_lift(fixture *f)
{
	if (tu_mb_load(f->c, f->mp, &f->m) || ir_lift(f->c, f->m, &f->g))
		fail_msg("lift: %s", onnxshard_error(f->c));
}

static void
fx_free(fixture *f)
{
	prop_plan_free(f->g, &f->p);
	prop_mesh_free(f->c, &f->mesh);
	ir_free(f->g);
	onnx_model_free(f->m);
	if (f->mp)
		tu_mb_free(f->mp);
	f->mp = NULL, f->m = NULL, f->g = NULL;
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

/* x [8,64] @ w1 [64,256] -> h; then h @ w2 [256,64] -> y, or y = Softmax(h)
 * (over h's last dim: a split there is gathered first). */
static void
two_linears(fixture *f, int second)
{
	f->mp = tu_mb_new(17);
	tu_mb_input(f->mp, "x", F32, "8,64");
	tu_mb_init(f->mp, "w1", F32, "64,256", NULL);
	tu_mb_node(f->mp, "mm1", "MatMul", "x,w1", "h");
	if (second) {
		tu_mb_init(f->mp, "w2", F32, "256,64", NULL);
		tu_mb_node(f->mp, "mm2", "MatMul", "h,w2", "y");
		tu_mb_output(f->mp, "y", F32, "8,64");
	} else {
		tu_mb_node(f->mp, "sm", "Softmax", "h", "y");
		tu_mb_output(f->mp, "y", F32, "8,256");
	}
	fx_lift(f);
}

/* A profile with round numbers: 1e12 FLOP/s, 1e11 B/s, 2 per node. */
static search_hw
test_hw(void)
{
	search_hw hw;

	memset(&hw, 0, sizeof hw);
	for (int d = 0; d < SEARCH_DTYPES; d++)
		hw.peak_flops[d] = 1e12;
	hw.mem_bw = 1e11;
	hw.mem_cap = 1e9;
	hw.devices_per_node = 2;
	hw.intra_bw = 1e10, hw.intra_lat = 1e-6;
	hw.inter_bw = 1e9, hw.inter_lat = 1e-5;
	return hw;
}

static void
seed_w1(fixture *f, const char *axis)
{
	assert_int_equal(prop_seed(f->g, &f->p, value_named(f->g, "w1"), 1,
	                           (uint8_t)prop_mesh_axis(&f->mesh, axis), 1, 1),
	                 0);
	if (prop_propagate(f->g, &f->p) || prop_materialize(f->g, &f->p))
		fail_msg("plan: %s", onnxshard_error(f->c));
}

static void
assert_near(double a, double b)
{
	if (fabs(a - b) > 1e-9 * fabs(b) + 1e-15)
		fail_msg("%.12g != %.12g", a, b);
}

static void
test_ring_allreduce(void **state)
{
	fixture f = {.c = ctx()};
	search_hw hw = test_hw();
	search_cost sc;
	double bytes = 8 * 64 * 4; /* y's local partial sum */

	(void)state;
	/* model=4 over 2 per node: the groups cross nodes, the slow link */
	two_linears(&f, 1);
	fx_plan(&f, "model=4");
	seed_w1(&f, "model");
	assert_int_equal(search_simulate(f.g, &f.p, &hw, &sc), 0);
	assert_near(sc.comm_s, 1e-5 + 2.0 * 3 / 4 * bytes / 1e9);
	assert_true(sc.comm_by_kind[SEARCH_ALLREDUCE] == (uint64_t)(2.0 * 3 / 4 * bytes));
	assert_true(sc.comm_bytes == sc.comm_by_kind[SEARCH_ALLREDUCE]);
	assert_near(sc.step_s, sc.compute_s + sc.comm_s);
	/* the FLOPs: 2*M*N*K on local shapes, K split on the second */
	assert_true(sc.flops == 2 * 8 * 64 * 64 + 2 * 8 * 64 * 64);
	assert_true(sc.param_bytes == (64 * 64 + 64 * 64) * 4);
	assert_true(sc.exact && sc.feasible);
	prop_plan_free(f.g, &f.p);
	prop_mesh_free(f.c, &f.mesh);
	/* data=2,model=2: model is the inner axis, its groups {0,1} {2,3} lie in a node */
	fx_plan(&f, "data=2,model=2");
	seed_w1(&f, "model");
	assert_int_equal(search_simulate(f.g, &f.p, &hw, &sc), 0);
	assert_near(sc.comm_s, 1e-6 + 2.0 * 1 / 2 * bytes / 1e10);
	fx_free(&f);
	onnxshard_free(f.c);
}

static void
test_ring_allgather(void **state)
{
	fixture f = {.c = ctx()};
	search_hw hw = test_hw();
	search_cost sc;

	(void)state;
	/* h split on dim 1 over both axes is gathered whole for the Softmax:
	 * one AllGather over [data, model], product group 4, slowest link */
	two_linears(&f, 0);
	fx_plan(&f, "data=2,model=2");
	assert_int_equal(prop_seed(f.g, &f.p, value_named(f.g, "w1"), 1, 0, 1, 1), 0);
	assert_int_equal(prop_seed(f.g, &f.p, value_named(f.g, "w1"), 1, 1, 1, 1), 0);
	if (prop_propagate(f.g, &f.p) || prop_materialize(f.g, &f.p))
		fail_msg("plan: %s", onnxshard_error(f.c));
	assert_int_equal(search_simulate(f.g, &f.p, &hw, &sc), 0);
	double full = 8 * 256 * 4;
	assert_true(sc.comm_by_kind[SEARCH_ALLGATHER] == (uint64_t)(3.0 / 4 * full));
	assert_near(sc.comm_s, 1e-5 + 3.0 / 4 * full / 1e9);
	assert_true(sc.param_bytes == 64 * 64 * 4);
	/* the output is whole on every rank */
	assert_true(sc.io_bytes == 8 * 64 * 4 + 8 * 256 * 4);
	fx_free(&f);
	onnxshard_free(f.c);
}

/* samples/gpt2.onnx under a strategy on a mesh, simulated. */
static search_cost
gpt2(const char *mesh, const char *strategy, const char *hw_name, const char *binds)
{
	fixture f = {.c = ctx()};
	search_hw hw;
	search_cost sc;

	f.binds = binds;
	assert_int_equal(search_hw_load(f.c, hw_name, &hw), 0);
	if (onnx_load(f.c, ONNXSHARD_SRCDIR "/samples/gpt2.onnx", &f.m) || ir_lift(f.c, f.m, &f.g))
		fail_msg("gpt2: %s", onnxshard_error(f.c));
	fx_plan(&f, mesh);
	if (search_apply(f.g, &f.p, strategy, NULL) || prop_materialize(f.g, &f.p) ||
	    search_simulate(f.g, &f.p, &hw, &sc))
		fail_msg("gpt2: %s", onnxshard_error(f.c));
	search_hw_free(f.c, &hw);
	fx_free(&f);
	onnxshard_free(f.c);
	return sc;
}

static void
test_params_fall(void **state)
{
	(void)state;
	search_cost r1 = gpt2("model=1", "megatron", "h100", NULL);
	search_cost r2 = gpt2("model=2", "megatron", "h100", NULL);
	search_cost r4 = gpt2("model=4", "megatron", "h100", NULL);
	assert_true(r2.param_bytes < r1.param_bytes);
	assert_true(r4.param_bytes < r2.param_bytes);
	assert_true(r4.comm_by_kind[SEARCH_ALLREDUCE] > 0);
	/* unbound batch and seq: counted as 1, not exact */
	assert_false(r1.exact);
	search_cost d = gpt2("data=2", "data", "h100", "batch=8");
	assert_true(d.param_bytes == r1.param_bytes);
	/* data on its own never communicates in a forward step */
	assert_true(d.comm_bytes == 0 && d.comm_s == 0);
}

/* x [1,2048] @ w1 [2048,8192] -> Gelu -> @ w2 [8192,2048]: a decode step of
 * a float16 MLP, bound by reading its 64 MiB of weights. */
static void
test_decode_megatron(void **state)
{
	fixture f[2] = {{.c = ctx()}, {.c = ctx()}};
	search_hw hw = test_hw();
	search_cost sc[2];

	(void)state;
	assert_int_equal(search_hw_load(f[0].c, "h100", &hw), 0);
	for (int i = 0; i < 2; i++) {
		f[i].mp = tu_mb_new(17);
		tu_mb_input(f[i].mp, "x", F16, "1,2048");
		tu_mb_init(f[i].mp, "w1", F16, "2048,8192", NULL);
		tu_mb_init(f[i].mp, "w2", F16, "8192,2048", NULL);
		tu_mb_node(f[i].mp, "mm1", "MatMul", "x,w1", "h");
		tu_mb_node(f[i].mp, "act", "Gelu", "h", "a");
		tu_mb_node(f[i].mp, "mm2", "MatMul", "a,w2", "y");
		tu_mb_output(f[i].mp, "y", F16, "1,2048");
		fx_lift(&f[i]);
		fx_plan(&f[i], "model=8");
		if (search_apply(f[i].g, &f[i].p, i ? "megatron" : "data", NULL) ||
		    prop_materialize(f[i].g, &f[i].p) ||
		    search_simulate(f[i].g, &f[i].p, &hw, &sc[i]))
			fail_msg("plan: %s", onnxshard_error(f[i].c));
	}
	/* replicated: 64 MiB at 3.35e12 B/s; megatron: an eighth, one AllReduce */
	assert_true(sc[0].param_bytes == 2u * 2048 * 8192 * 2);
	assert_true(sc[1].param_bytes == sc[0].param_bytes / 8);
	assert_true(sc[0].comm_s == 0 && sc[1].comm_s > 0);
	assert_true(sc[1].step_s < sc[0].step_s);
	assert_true(sc[0].compute_s > 2.0 * 2048 * 8192 * 2 / 3.35e12);
	search_hw_free(f[0].c, &hw);
	for (int i = 0; i < 2; i++) {
		fx_free(&f[i]);
		onnxshard_free(f[i].c);
	}
}

static void
test_feasible(void **state)
{
	fixture f = {.c = ctx()};
	search_hw hw = test_hw();
	search_cost sc;

	(void)state;
	two_linears(&f, 1);
	fx_plan(&f, "model=4");
	seed_w1(&f, "model");
	hw.mem_cap = 1e9;
	assert_int_equal(search_simulate(f.g, &f.p, &hw, &sc), 0);
	assert_true(sc.feasible);
	assert_true(sc.peak_bytes == sc.param_bytes + sc.act_peak_bytes + sc.io_bytes);
	/* x, y; h [8,64] live, and the reshard's result of y */
	assert_true(sc.io_bytes == 2 * 8 * 64 * 4);
	assert_true(sc.act_peak_bytes >= 8 * 64 * 4);
	hw.mem_cap = (double)sc.peak_bytes;
	assert_int_equal(search_simulate(f.g, &f.p, &hw, &sc), 0);
	assert_true(sc.feasible);
	hw.mem_cap = (double)sc.peak_bytes - 1;
	assert_int_equal(search_simulate(f.g, &f.p, &hw, &sc), 0);
	assert_false(sc.feasible);
	fx_free(&f);
	onnxshard_free(f.c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_presets),         cmocka_unit_test(test_json_good),
	        cmocka_unit_test(test_json_bad),        cmocka_unit_test(test_ring_allreduce),
	        cmocka_unit_test(test_ring_allgather),  cmocka_unit_test(test_params_fall),
	        cmocka_unit_test(test_decode_megatron), cmocka_unit_test(test_feasible),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
