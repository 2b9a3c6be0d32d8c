/* Fuzz target: the option parsers. Bytes are lines: the mesh, the strategy
 * (a list of tactics; file names are fuzz_tactics' business), the
 * collectives, then --dim bindings. The mesh goes to prop_mesh_parse; when
 * it parses, all of them go to onnxshard_shard (plan only, out = NULL) on
 * samples/mlp.onnx (or $ONNXSHARD_FUZZ_MODEL). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "propagate/prop.h"

#ifndef FUZZ_SOURCE_DIR
#define FUZZ_SOURCE_DIR "."
#endif

#define MAX_DIMS 16

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* A parsed mesh must be consistent: an internal bug otherwise. */
static void
check_mesh(const prop_mesh *m)
{
	int64_t w = 1;

	if (m->n_axes < 1 || m->n_axes > PROP_MAX_AXES)
		abort();
	for (uint32_t i = 0; i < m->n_axes; i++) {
		if (!m->names[i] || !*m->names[i] || m->sizes[i] < 1)
			abort();
		w *= m->sizes[i];
	}
	if (w != m->world || w > 65536)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	shd_ctx *c = onnxshard_new(NULL, NULL, 0);
	char *buf = malloc(size + 1), *line[3 + MAX_DIMS], *s;
	const char *dims[MAX_DIMS];
	size_t n = 0;
	prop_mesh mesh;

	if (!c || !buf)
		abort();
	c->quiet = 1;
	memcpy(buf, data, size);
	buf[size] = 0;
	for (s = buf; n < 3 + MAX_DIMS; n++) {
		line[n] = s;
		if (!(s = strchr(s, '\n')))
			break;
		*s++ = 0;
	}
	n = n < 3 + MAX_DIMS ? n + 1 : n;
	int rc = prop_mesh_parse(c, line[0], &mesh);
	if (!rc)
		check_mesh(&mesh);
	prop_mesh_free(c, &mesh);
	if (!rc) {
		onnxshard_opts o = {0};
		o.model = fuzz_path("ONNXSHARD_FUZZ_MODEL", FUZZ_SOURCE_DIR "/samples/mlp.onnx");
		o.mesh = line[0];
		o.strategy = n > 1 && *line[1] ? line[1] : NULL;
		if (o.strategy && (strchr(o.strategy, '/') || strstr(o.strategy, ".json")))
			o.strategy = NULL;
		o.collectives = n > 2 && *line[2] ? line[2] : NULL;
		for (size_t i = 3; i < n; i++)
			dims[o.n_dims++] = line[i];
		o.dims = dims;
		o.quiet = 1;
		onnxshard_shard(c, &o);
	}
	free(buf);
	onnxshard_free(c);
	return 0;
}
