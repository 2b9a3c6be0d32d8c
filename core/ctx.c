/* The context: allocator, diagnostics, overflow-checked arithmetic and the
 * growable array. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shd.h"

static char nomem_msg[] = "out of memory";

static void *
libc_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, nsize);
}

void
shd_assert_fail(const char *file, int line, const char *expr)
{
	fprintf(stderr, "onnxshard: internal error: %s:%d: assertion failed: %s\n", file, line,
	        expr);
	abort();
}

onnxshard_ctx *
onnxshard_new(onnxshard_allocf alloc, void *ud, uint64_t seed)
{
	shd_ctx *c;

	if (!alloc)
		alloc = libc_alloc;
	c = alloc(ud, NULL, 0, sizeof *c);
	if (!c)
		return NULL;
	memset(c, 0, sizeof *c);
	c->alloc = alloc;
	c->alloc_ud = ud;
	c->seed = seed;
	onnxshard_set_limits(c, 0, 0);
	return c;
}

void
onnxshard_set_limits(onnxshard_ctx *c, uint64_t max_model_bytes, uint64_t max_nodes)
{
	c->max_model_bytes = max_model_bytes ? max_model_bytes : ONNXSHARD_MAX_MODEL_BYTES;
	c->max_nodes = max_nodes ? max_nodes : ONNXSHARD_MAX_NODES;
}

void
onnxshard_free(onnxshard_ctx *c)
{
	if (!c)
		return;
	if (c->err != nomem_msg)
		shd_strfree(c, c->err);
	c->alloc(c->alloc_ud, c, sizeof *c, 0);
}

const char *
onnxshard_error(const onnxshard_ctx *c)
{
	if (!c)
		return "out of memory";
	return c->err ? c->err : "";
}

void *
shd_alloc(shd_ctx *c, size_t n)
{
	void *p = c->alloc(c->alloc_ud, NULL, 0, n ? n : 1);

	if (!p)
		c->n_refused++;
	return p;
}

void *
shd_calloc(shd_ctx *c, size_t n, size_t size)
{
	uint64_t bytes;
	void *p;

	if (shd_mul_overflow(n, size, &bytes) || bytes > SIZE_MAX) {
		c->n_refused++;
		return NULL;
	}
	p = shd_alloc(c, (size_t)bytes);
	if (p)
		memset(p, 0, (size_t)bytes);
	return p;
}

void *
shd_realloc(shd_ctx *c, void *p, size_t old, size_t n)
{
	void *q = c->alloc(c->alloc_ud, p, old, n ? n : 1);

	if (!q)
		c->n_refused++;
	return q;
}

void
shd_free(shd_ctx *c, void *p, size_t n)
{
	if (p)
		c->alloc(c->alloc_ud, p, n, 0);
}

char *
shd_strdup(shd_ctx *c, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = shd_alloc(c, n);

	if (d)
		memcpy(d, s, n);
	return d;
}

void
shd_strfree(shd_ctx *c, char *s)
{
	if (s)
		shd_free(c, s, strlen(s) + 1);
}

int
shd_error(shd_ctx *c, int status, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (c->err != nomem_msg)
		shd_strfree(c, c->err);
	c->err = NULL;
	if (n < 0)
		n = 0;
	msg = shd_alloc(c, (size_t)n + 1);
	if (!msg) {
		c->err = nomem_msg;
		return ONNXSHARD_EFAIL;
	}
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	c->err = msg;
	return status;
}

int
shd_nomem(shd_ctx *c)
{
	if (c->err != nomem_msg)
		shd_strfree(c, c->err);
	c->err = nomem_msg;
	return ONNXSHARD_EFAIL;
}

int
shd_settle(shd_ctx *c, uint64_t since, int rc)
{
	return c->n_refused != since ? shd_nomem(c) : rc;
}

int
shd_utf8_fault(const char *s, int no_controls)
{
	const unsigned char *p = (const unsigned char *)s;

	while (p && *p) {
		unsigned c = *p, cp, min;
		int n;
		if (c < 0x80) {
			if (no_controls && (c < 0x20 || c == 0x7f))
				return 2;
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			return 1;
		for (int i = 1; i <= n; i++) { /* a NUL stops here too */
			if ((p[i] & 0xc0) != 0x80)
				return 1;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 1;
		p += n + 1;
	}
	return 0;
}

int
shd_is_utf8(const char *s)
{
	return shd_utf8_fault(s, 0) == 0;
}

int
shd_mul_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

int
shd_add_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r);
}

void *
shd_vec_push(shd_ctx *c, shd_vec *v, size_t sz)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 8;
		void *d;

		if (cap > SIZE_MAX / sz) {
			c->n_refused++;
			return NULL;
		}
		d = shd_realloc(c, v->data, v->cap * sz, cap * sz);
		if (!d)
			return NULL;
		v->data = d;
		v->cap = cap;
	}
	return (char *)v->data + sz * v->n++;
}

void
shd_vec_free(shd_ctx *c, shd_vec *v, size_t sz)
{
	shd_free(c, v->data, v->cap * sz);
	v->data = NULL;
	v->n = v->cap = 0;
}

double
shd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
