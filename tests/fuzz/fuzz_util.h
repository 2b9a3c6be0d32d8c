/* Helpers the libFuzzer targets share: a per-process temp dir (removed at
 * exit), writing an input to a file in it, paths of the repository's data,
 * a plan's invariants. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "propagate/prop.h"

/* libFuzzer's entry points. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* This process's temp dir (mkdtemp in TMPDIR on the first call, removed
 * with everything in it at exit). Aborts when it cannot be made. */
const char *fuzz_tmpdir(void);
/* DIR/name under the temp dir, into buf (FUZZ_PATH_MAX bytes). */
#define FUZZ_PATH_MAX 4096
char *fuzz_tmppath(char *buf, const char *name);
/* Write data to path (replacing it). Aborts on failure: not the input's fault. */
void fuzz_write(const char *path, const uint8_t *data, size_t size);
/* The value of environment variable env, else dflt (a compiled-in path). */
const char *fuzz_path(const char *env, const char *dflt);
/* Copy file src to dst. Aborts on failure. */
void fuzz_copy(const char *src, const char *dst);

/* Check a materialised plan's invariants (shardings within the mesh, no
 * axis twice, constant dims divisible, reshards and steps in range);
 * aborts naming the broken one: an internal bug, whatever the input. */
void fuzz_check_plan(ir_graph *g, const prop_plan *p);

#endif
