/* Arenas: bump allocation in chunks, freed all at once (one per lifetime:
 * the model's IR, an MCTS rollout, one rank's emission). */
#include <stdio.h>
#include <string.h>

#include "shd.h"

typedef struct chunk {
	struct chunk *next;
	size_t size; /* bytes after the header */
	size_t used;
	max_align_t data[];
} chunk;

void *
shd_arena_alloc(shd_ctx *c, shd_arena *a, size_t n)
{
	chunk *k = a->head;
	size_t align = sizeof(max_align_t);

	if (n > SIZE_MAX - align) { /* rounding up would wrap to a tiny block */
		c->n_refused++;
		return NULL;
	}
	n = (n + align - 1) / align * align;
	if (n == 0)
		n = align;
	if (!k || k->size - k->used < n) {
		size_t size = n > 65536 - sizeof *k ? n : 65536 - sizeof *k;
		if (size > SIZE_MAX - sizeof *k) {
			c->n_refused++;
			return NULL;
		}
		if (!(k = shd_alloc(c, sizeof *k + size)))
			return NULL;
		k->next = a->head;
		k->size = size;
		k->used = 0;
		a->head = k;
	}
	void *p = (char *)k->data + k->used;
	k->used += n;
	return p;
}

void *
shd_arena_zalloc(shd_ctx *c, shd_arena *a, size_t n)
{
	void *p = shd_arena_alloc(c, a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

char *
shd_arena_strdup(shd_ctx *c, shd_arena *a, const char *s, size_t n)
{
	char *d = shd_arena_alloc(c, a, n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

char *
shd_arena_vprintf(shd_ctx *c, shd_arena *a, const char *fmt, va_list ap)
{
	va_list aq;
	char *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0) { /* an encoding error: no string to be had either */
		c->n_refused++;
		return NULL;
	}
	if ((s = a ? shd_arena_alloc(c, a, (size_t)n + 1) : shd_alloc(c, (size_t)n + 1)))
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

char *
shd_arena_printf(shd_ctx *c, shd_arena *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = shd_arena_vprintf(c, a, fmt, ap);
	va_end(ap);
	return s;
}

void
shd_arena_free(shd_ctx *c, shd_arena *a)
{
	for (chunk *k = a->head, *next; k; k = next) {
		next = k->next;
		shd_free(c, k, sizeof *k + k->size);
	}
	a->head = NULL;
}

void
shd_arena_move(shd_arena *a, shd_arena *b)
{
	chunk *k = b->head;

	if (!k)
		return;
	while (k->next)
		k = k->next;
	k->next = a->head;
	a->head = b->head;
	b->head = NULL;
}
