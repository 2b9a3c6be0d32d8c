/* Helpers the libFuzzer targets share: a per-process temp dir removed at
 * exit, file writes and copies. Failures here are the harness's, so abort. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

/* The harness's only state: this process's temp dir. */
static char *tmpdir;

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
rm_tmpdir(void)
{
	if (tmpdir)
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmpdir);
	tmpdir = NULL;
}

const char *
fuzz_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	if (tmpdir)
		return tmpdir;
	if (asprintf(&tmpdir, "%s/onnxshard-fuzz-XXXXXX", t && *t ? t : "/tmp") < 0 ||
	    !mkdtemp(tmpdir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(rm_tmpdir);
	return tmpdir;
}

char *
fuzz_tmppath(char *buf, const char *name)
{
	if (snprintf(buf, FUZZ_PATH_MAX, "%s/%s", fuzz_tmpdir(), name) >= FUZZ_PATH_MAX) {
		fputs("fuzz: TMPDIR too long\n", stderr);
		abort();
	}
	return buf;
}

void
fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

const char *
fuzz_path(const char *env, const char *dflt)
{
	const char *v = getenv(env);

	return v && *v ? v : dflt;
}

void
fuzz_copy(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
	char buf[65536];
	size_t n;

	if (!in || !out) {
		perror(in ? dst : src);
		abort();
	}
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			perror(dst);
			abort();
		}
	if (ferror(in) || fclose(out) != 0) {
		perror(dst);
		abort();
	}
	fclose(in);
}
