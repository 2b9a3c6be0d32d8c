/* The shared core of onnxshard: context (allocator, diagnostics, seed),
 * status codes, assertions and small helpers every pass uses. */
#ifndef SHD_H
#define SHD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "onnxshard.h"

/* Always-on assertion for internal bugs (never for user input). */
#define SHD_ASSERT(x)                                                                              \
	do {                                                                                       \
		if (!(x))                                                                          \
			shd_assert_fail(__FILE__, __LINE__, #x);                                   \
	} while (0)

_Noreturn void shd_assert_fail(const char *file, int line, const char *expr);

struct onnxshard_ctx {
	onnxshard_allocf alloc; /* never NULL */
	void *alloc_ud;
	char *err; /* last diagnostic, owned; NULL when none */
	uint64_t seed;
	int quiet;                /* no progress on stderr */
	uint64_t max_model_bytes; /* protobuf + external data of a model, > 0 */
	int weightless;           /* the command reads no weight: external data
	                           * does not count against max_model_bytes */
	uint64_t max_nodes;       /* nodes of a model's main graph, > 0 */
	uint64_t n_refused;       /* allocations refused so far (never reset): code
	                           * that cannot report one (the dim algebra answers
	                           * "unknown") is caught by a caller comparing */
};
typedef struct onnxshard_ctx shd_ctx;

/* Allocation through the context; NULL on failure (callers report it). */
void *shd_alloc(shd_ctx *c, size_t n);
void *shd_calloc(shd_ctx *c, size_t n, size_t size);
void *shd_realloc(shd_ctx *c, void *p, size_t old, size_t n);
void shd_free(shd_ctx *c, void *p, size_t n);
char *shd_strdup(shd_ctx *c, const char *s);
void shd_strfree(shd_ctx *c, char *s);

/* printf into a string of the context's allocator (shd_strfree); NULL
 * when out of memory (fs.c). */
char *shd_strprintf(shd_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *shd_vstrprintf(shd_ctx *c, const char *fmt, va_list ap);
/* A new entry named PATH.TAG-XXXXXX (the Xs random), beside path: with fd
 * NULL a directory, made with mode 0777, else a file opened for writing
 * into *fd, made with mode 0666; the process umask applies to both, as to
 * any mkdir or creat (never changed here: it is every thread's). Returns
 * its name (shd_strfree), or NULL with errno set (ENOMEM: the context's
 * allocator refused; EEXIST after 100 names taken). */
char *shd_mktemp(shd_ctx *c, const char *path, const char *tag, int *fd);
/* realpath(3) into the context's allocator (shd_strfree); NULL with errno
 * set. */
char *shd_realpath(shd_ctx *c, const char *path);

/* Record a diagnostic ("FILE: what is wrong") and return status. */
int shd_error(shd_ctx *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int shd_nomem(shd_ctx *c);
/* rc, or out of memory when an allocation was refused since c->n_refused
 * was `since` (whatever else went wrong then is likely its consequence). */
int shd_settle(shd_ctx *c, uint64_t since, int rc);

/* Seconds on a monotonic clock (deadlines, rates). */
double shd_now(void);

/* Whether s is valid UTF-8 (no overlong forms, surrogates or code points
 * past U+10FFFF), as JSON text must be. */
int shd_is_utf8(const char *s);
/* The same check, told why: 0 when s is NULL or valid UTF-8 (with
 * no_controls, also free of control characters: names that reach one-line
 * diagnostics); else 1 (not UTF-8) or 2 (a control character). */
int shd_utf8_fault(const char *s, int no_controls);

/* Overflow-checked size arithmetic: return 0 and set *r, or 1 on overflow. */
int shd_mul_overflow(uint64_t a, uint64_t b, uint64_t *r);
int shd_add_overflow(uint64_t a, uint64_t b, uint64_t *r);

/* A growable array of fixed-size items, allocated through the context. */
typedef struct {
	void *data;
	size_t n;   /* items in use */
	size_t cap; /* items allocated */
} shd_vec;

/* Make room for one more item of size sz; returns its address or NULL. */
void *shd_vec_push(shd_ctx *c, shd_vec *v, size_t sz);
void shd_vec_free(shd_ctx *c, shd_vec *v, size_t sz);

/* An arena: bump allocation, freed all at once. Zero-initialise. */
typedef struct {
	void *head; /* newest chunk */
} shd_arena;

void *shd_arena_alloc(shd_ctx *c, shd_arena *a, size_t n);
void *shd_arena_zalloc(shd_ctx *c, shd_arena *a, size_t n);
char *shd_arena_strdup(shd_ctx *c, shd_arena *a, const char *s, size_t n);
/* printf into arena a (a NULL: shd_alloc, as shd_strprintf): the string,
 * or NULL when out of memory (counted in c->n_refused like every refused
 * allocation; shd_settle sees it). The one printf-into-memory of the code. */
char *shd_arena_printf(shd_ctx *c, shd_arena *a, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
char *shd_arena_vprintf(shd_ctx *c, shd_arena *a, const char *fmt, va_list ap);
void shd_arena_free(shd_ctx *c, shd_arena *a);
/* Move b's chunks into a (b is left empty): what b held lives as long as a. */
void shd_arena_move(shd_arena *a, shd_arena *b);

#endif
