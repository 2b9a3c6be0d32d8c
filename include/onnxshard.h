/* onnxshard: turn one ONNX model into per-rank ONNX models for a device mesh.
 * The public API of libonnxshard. */
#ifndef ONNXSHARD_H
#define ONNXSHARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ONNXSHARD_VERSION "0.1.0"

/* Status codes, also the command's exit codes. */
enum {
	ONNXSHARD_OK = 0,
	ONNXSHARD_EFAIL = 1,  /* failure while working (out of memory, I/O) */
	ONNXSHARD_EINPUT = 2, /* bad usage or bad input */
};

typedef struct onnxshard_ctx onnxshard_ctx;

/* Allocator in the style of lua_Alloc: nsize 0 frees, else (re)allocates. */
typedef void *(*onnxshard_allocf)(void *ud, void *ptr, size_t osize, size_t nsize);

/* A context owns the allocator, diagnostics and the seed. alloc may be NULL
 * for the C library's. Returns NULL when even the context cannot be had. */
onnxshard_ctx *onnxshard_new(onnxshard_allocf alloc, void *ud, uint64_t seed);
void onnxshard_free(onnxshard_ctx *c);

/* The last diagnostic ("FILE: what is wrong"), or "" when there is none. */
const char *onnxshard_error(const onnxshard_ctx *c);

/* Inspect a model: write a report to out. format: 0 text, 1 JSON (with
 * every value's dtype and shape), ONNXSHARD_DUMP_IR the IR's text form. */
enum { ONNXSHARD_DUMP_IR = 2 };
int onnxshard_inspect(onnxshard_ctx *c, const char *model_path, int format, FILE *out);

#endif
