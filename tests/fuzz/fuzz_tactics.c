/* Fuzz target: bytes as a JSON tactics file (search_apply on PATH.json),
 * applied to samples/mlp.onnx (or $ONNXSHARD_FUZZ_MODEL) on data=2,model=2,
 * then materialised. Bad tactics must give a status, never a crash. */
#include <stdlib.h>

#include "fuzz_util.h"
#include "search/search.h"

#ifndef FUZZ_SOURCE_DIR
#define FUZZ_SOURCE_DIR "."
#endif

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *model = fuzz_path("ONNXSHARD_FUZZ_MODEL", FUZZ_SOURCE_DIR "/samples/mlp.onnx");
	char path[FUZZ_PATH_MAX];
	shd_ctx *c = onnxshard_new(NULL, NULL, 0);
	onnx_model *m = NULL;
	ir_graph *g = NULL;
	prop_mesh mesh;
	prop_plan p;

	if (!c)
		abort();
	c->quiet = 1;
	fuzz_write(fuzz_tmppath(path, "tactics.json"), data, size);
	/* the model is known good: failing to load or plan it is the harness's fault */
	if (onnx_load(c, model, &m) || ir_lift(c, m, &g) ||
	    prop_mesh_parse(c, "data=2,model=2", &mesh) || prop_plan_init(g, &mesh, &p)) {
		fprintf(stderr, "fuzz_tactics: %s\n", onnxshard_error(c));
		abort();
	}
	if (!search_apply(g, &p, path, NULL) && !prop_materialize(g, &p))
		fuzz_check_plan(g, &p);
	prop_plan_free(g, &p);
	prop_mesh_free(c, &mesh);
	ir_free(g);
	onnx_model_free(m);
	onnxshard_free(c);
	return 0;
}
