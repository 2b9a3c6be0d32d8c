/* sim_cost: the simulator from the command line, until `plan --json` reports
 * it (used by tests/sim_validate.py; also times search_simulate).
 *
 *   sim_cost MODEL --mesh AXES [--strategy S] [--hardware h100|a100|cpu|FILE]
 *            [--dim NAME=SIZE ...] [--repeat N]
 *
 * Prints one JSON object: the search_cost fields on the first --hardware,
 * with --repeat the microseconds per search_simulate call, and with several
 * --hardware options "compute_s_by_hw" (one plan, each profile: for fitting
 * a profile). Exit 0, 1 on failure, 2 bad input. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "search/cost.h"
#include "search/search.h"

typedef struct {
	char **dims; /* "NAME=SIZE" */
	int n;
} binds;

static int
bind(void *ud, const char *sym, int64_t *val)
{
	const binds *b = ud;
	size_t n = strlen(sym);

	for (int i = 0; i < b->n; i++)
		if (!strncmp(b->dims[i], sym, n) && b->dims[i][n] == '=') {
			*val = strtoll(b->dims[i] + n + 1, NULL, 10);
			return 0;
		}
	return 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"mesh", required_argument, NULL, 'm'},
	                                     {"strategy", required_argument, NULL, 's'},
	                                     {"hardware", required_argument, NULL, 'h'},
	                                     {"dim", required_argument, NULL, 'd'},
	                                     {"repeat", required_argument, NULL, 'r'},
	                                     {NULL, 0, NULL, 0}};
	const char *mesh_spec = NULL, *strategy = "auto";
	const char **hw_specs = calloc((size_t)argc + 1, sizeof *hw_specs);
	int n_hw = 0;
	binds b = {calloc((size_t)argc, sizeof(char *)), 0};
	long repeat = 0;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': mesh_spec = optarg; break;
		case 's': strategy = optarg; break;
		case 'h': hw_specs[n_hw++] = optarg; break;
		case 'd': b.dims[b.n++] = optarg; break;
		case 'r': repeat = strtol(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (optind + 1 != argc || !mesh_spec) {
		fprintf(stderr, "usage: sim_cost MODEL --mesh AXES [--strategy S] [--hardware H] "
		                "[--dim NAME=SIZE ...] [--repeat N]\n");
		return 2;
	}
	shd_ctx *c = onnxshard_new(NULL, NULL, 1);
	onnx_model *m = NULL;
	ir_graph *g = NULL;
	prop_mesh mesh;
	prop_plan p;
	search_hw hw = {0};
	search_cost cost;
	int rc, have_plan = 0, have_mesh = 0;
	double us = 0;

	memset(&p, 0, sizeof p);
	have_mesh = 1;
	if (!n_hw)
		hw_specs[n_hw++] = "cpu";
	if ((rc = search_hw_load(c, hw_specs[0], &hw)) ||
	    (rc = prop_mesh_parse(c, mesh_spec, &mesh)))
		goto out;
	if ((rc = onnx_load(c, argv[optind], &m)) || (rc = ir_lift(c, m, &g)) ||
	    (rc = prop_plan_init(g, &mesh, &p)))
		goto out;
	have_plan = 1;
	p.bind = bind;
	p.bind_ud = &b;
	if ((rc = search_apply(g, &p, strategy, NULL)) || (rc = prop_materialize(g, &p)) ||
	    (rc = search_simulate(g, &p, &hw, &cost)))
		goto out;
	if (repeat > 0) {
		double t0 = now_s();
		for (long i = 0; i < repeat && !rc; i++)
			rc = search_simulate(g, &p, &hw, &cost);
		us = (now_s() - t0) / (double)repeat * 1e6;
	}
	json_t *o = json_object(), *by_hw = json_array();
	for (int i = 1; i < n_hw && !rc; i++) {
		search_hw h2;
		search_cost c2;
		if (!(rc = search_hw_load(c, hw_specs[i], &h2)) &&
		    !(rc = search_simulate(g, &p, &h2, &c2)))
			json_array_append_new(by_hw, json_real(c2.compute_s));
		search_hw_free(c, &h2);
	}
	if (rc) {
		json_decref(o);
		json_decref(by_hw);
		goto out;
	}
	json_object_set_new(o, "hardware", json_string(hw.name));
	json_object_set_new(o, "step_s", json_real(cost.step_s));
	json_object_set_new(o, "compute_s", json_real(cost.compute_s));
	json_object_set_new(o, "comm_s", json_real(cost.comm_s));
	json_object_set_new(o, "flops", json_integer((json_int_t)cost.flops));
	json_object_set_new(o, "peak_bytes", json_integer((json_int_t)cost.peak_bytes));
	json_object_set_new(o, "param_bytes", json_integer((json_int_t)cost.param_bytes));
	json_object_set_new(o, "act_peak_bytes", json_integer((json_int_t)cost.act_peak_bytes));
	json_object_set_new(o, "io_bytes", json_integer((json_int_t)cost.io_bytes));
	json_object_set_new(o, "comm_bytes", json_integer((json_int_t)cost.comm_bytes));
	json_t *k = json_array();
	for (int i = 0; i < 4; i++)
		json_array_append_new(k, json_integer((json_int_t)cost.comm_by_kind[i]));
	json_object_set_new(o, "comm_by_kind", k);
	json_object_set_new(o, "feasible", json_boolean(cost.feasible));
	json_object_set_new(o, "exact", json_boolean(cost.exact));
	json_object_set_new(o, "nodes", json_integer(g->n_nodes));
	if (repeat > 0)
		json_object_set_new(o, "us_per_call", json_real(us));
	if (n_hw > 1)
		json_object_set_new(o, "compute_s_by_hw", by_hw);
	else
		json_decref(by_hw);
	json_dumpf(o, stdout, JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(o);
out:
	if (rc)
		fprintf(stderr, "sim_cost: error: %s\n", onnxshard_error(c));
	if (have_plan)
		prop_plan_free(g, &p);
	ir_free(g);
	onnx_model_free(m);
	if (have_mesh)
		prop_mesh_free(c, &mesh);
	search_hw_free(c, &hw);
	onnxshard_free(c);
	free(b.dims);
	free(hw_specs);
	return rc;
}
