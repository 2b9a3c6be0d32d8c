/* Fuzz target: bytes as manifest.json of an output directory that also
 * holds copies of a valid example's files ($ONNXSHARD_FUZZ_EXAMPLE, else
 * tests/fixtures/examples/mlp-allreduce-data2-model2), then onnxshard_check.
 * A bad manifest must give a status, never a crash or a leak. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/shd.h"
#include "fuzz_util.h"

#ifndef FUZZ_SOURCE_DIR
#define FUZZ_SOURCE_DIR "."
#endif

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *ex = fuzz_path("ONNXSHARD_FUZZ_EXAMPLE", FUZZ_SOURCE_DIR
	                           "/tests/fixtures/examples/mlp-allreduce-data2-model2");
	char out[FUZZ_PATH_MAX], src[FUZZ_PATH_MAX], dst[FUZZ_PATH_MAX * 2];
	DIR *d = opendir(ex);
	struct dirent *e;

	(void)argc;
	(void)argv;
	if (!d) {
		perror(ex);
		abort();
	}
	if (mkdir(fuzz_tmppath(out, "out"), 0700) != 0) {
		perror(out);
		abort();
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "manifest.json"))
			continue;
		snprintf(src, sizeof src, "%s/%s", ex, e->d_name);
		snprintf(dst, sizeof dst, "%s/%s", out, e->d_name);
		fuzz_copy(src, dst);
	}
	closedir(d);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[FUZZ_PATH_MAX], path[FUZZ_PATH_MAX];
	shd_ctx *c = onnxshard_new(NULL, NULL, 0);

	if (!c)
		abort();
	c->quiet = 1;
	fuzz_write(fuzz_tmppath(path, "out/manifest.json"), data, size);
	onnxshard_check(c, fuzz_tmppath(out, "out"), NULL);
	onnxshard_free(c);
	return 0;
}
