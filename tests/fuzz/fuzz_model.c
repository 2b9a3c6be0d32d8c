/* Fuzz target: bytes as an ONNX model -> onnx_load_buffer -> ir_lift ->
 * ir_verify, every node's sharding rule; for small graphs also the plan
 * (tactics data,megatron on data=2,model=2, propagation, materialisation)
 * and, when it plans, the whole of onnxshard_shard on that mesh (every
 * rank emitted to a temp dir), then check and stitch of what it wrote; the
 * output is removed after.
 * The model's folder is the temp dir, holding one external data file,
 * ext.data (256 bytes). Bad input must give a status, never a crash, a leak
 * or a broken IR. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "ir/ir.h"
#include "search/search.h"

#define PLAN_MAX_NODES 200

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[FUZZ_PATH_MAX];
	uint8_t ext[256];

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof ext; i++)
		ext[i] = (uint8_t)(i * 37 + 11);
	fuzz_write(fuzz_tmppath(path, "ext.data"), ext, sizeof ext);
	return 0;
}

/* A rule's tables must stay in range: an internal bug otherwise. */
static void
check_rule(const ir_graph *g, uint32_t n, const ir_rule *r)
{
	if (r->fac_off[0] != 0)
		abort();
	for (uint32_t s = 0; s < r->n_slots; s++) {
		if (r->fac_off[s + 1] < r->fac_off[s])
			abort();
		for (uint32_t k = r->fac_off[s]; k < r->fac_off[s + 1]; k++)
			if (r->fac[k] >= r->n_factors)
				abort();
	}
	if (r->n_tensors != g->nodes[n].n_in + g->nodes[n].n_out)
		abort();
}

/* 1 when the plan materialised. */
static int
plan(ir_graph *g)
{
	shd_ctx *c = g->ctx;
	prop_mesh mesh;
	prop_plan p;
	int ok = 0;

	if (prop_mesh_parse(c, "data=2,model=2", &mesh))
		abort();
	if (!prop_plan_init(g, &mesh, &p) && !search_apply(g, &p, "data,megatron", NULL) &&
	    !prop_materialize(g, &p)) {
		fuzz_check_plan(g, &p);
		ok = 1;
	}
	prop_plan_free(g, &p);
	prop_mesh_free(c, &mesh);
	return ok;
}

/* Remove the files of dir (no subfolders), then dir. */
static void
rmdir_flat(const char *dir)
{
	char path[FUZZ_PATH_MAX];
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
			unlink(path);
	if (d)
		closedir(d);
	rmdir(dir);
}

/* The model through emission: shard on data=2,model=2 into a temp dir, then
 * check and stitch it (a failure is a status; only crashes and leaks count). */
static void
emit(const uint8_t *data, size_t size)
{
	char model[FUZZ_PATH_MAX], out[FUZZ_PATH_MAX], st[FUZZ_PATH_MAX];
	shd_ctx *c = onnxshard_new(NULL, NULL, 0);
	onnxshard_opts o = {0};

	if (!c)
		abort();
	c->quiet = 1;
	fuzz_write(fuzz_tmppath(model, "emit.onnx"), data, size);
	fuzz_tmppath(out, "emit.out");
	fuzz_tmppath(st, "emit.stitched.onnx");
	o.model = model;
	o.mesh = "data=2,model=2";
	o.out = out;
	o.strategy = "data,megatron";
	o.force = 1;
	o.quiet = 1;
	o.budget_ms = 5000;
	if (!onnxshard_shard(c, &o) && !onnxshard_check(c, out, NULL))
		onnxshard_stitch(c, out, st);
	rmdir_flat(out);
	unlink(st);
	fuzz_tmppath(st, "emit.stitched.onnx.data");
	unlink(st);
	unlink(model);
	onnxshard_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	shd_ctx *c = onnxshard_new(NULL, NULL, 0);
	onnx_model *m = NULL;
	ir_graph *g = NULL;

	if (!c)
		abort();
	c->quiet = 1;
	if (!onnx_load_buffer(c, data, size, "fuzz.onnx", fuzz_tmpdir(), &m) &&
	    !ir_lift(c, m, &g)) {
		shd_arena a = {0};
		if (ir_verify(g)) {
			fprintf(stderr, "ir_verify: %s\n", onnxshard_error(c));
			abort();
		}
		for (uint32_t n = 0; n < g->n_nodes; n++) {
			ir_rule r;
			if (!ir_rule_of(g, n, &a, &r))
				check_rule(g, n, &r);
		}
		shd_arena_free(c, &a);
		if (g->n_nodes < PLAN_MAX_NODES && plan(g)) {
			ir_free(g);
			g = NULL;
			emit(data, size);
		}
	}
	ir_free(g);
	onnx_model_free(m);
	onnxshard_free(c);
	return 0;
}
