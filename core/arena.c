/* Arenas: bump allocation in chunks, freed all at once (one per lifetime:
 * the model's IR, an MCTS rollout, one rank's emission). */
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

void
shd_arena_free(shd_ctx *c, shd_arena *a)
{
	for (chunk *k = a->head, *next; k; k = next) {
		next = k->next;
		shd_free(c, k, sizeof *k + k->size);
	}
	a->head = NULL;
}
