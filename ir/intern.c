/* Interned strings: every name stored once; equality is an id compare. */
#include <string.h>

#include "ir.h"
#include "ir_impl.h"

static uint32_t
hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static int
grow(ir_graph *g, ir_strtab *t)
{
	uint32_t cap = t->cap ? 2 * t->cap : 1024;
	uint32_t *slots = shd_calloc(g->ctx, cap, sizeof *slots);

	if (!slots)
		return 1;
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t h = hash(t->strs[i], strlen(t->strs[i])) & (cap - 1);
		while (slots[h])
			h = (h + 1) & (cap - 1);
		slots[h] = i + 1;
	}
	shd_free(g->ctx, t->slots, t->cap * sizeof *t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

ir_str
ir_intern_n(ir_graph *g, const char *s, size_t n)
{
	ir_strtab *t = g->strs;
	uint32_t h;

	if (2 * (t->n + 1) > t->cap && grow(g, t))
		return (ir_str){IR_NONE};
	h = hash(s, n) & (t->cap - 1);
	for (; t->slots[h]; h = (h + 1) & (t->cap - 1)) {
		const char *x = t->strs[t->slots[h] - 1];
		if (strncmp(x, s, n) == 0 && x[n] == 0)
			return (ir_str){t->slots[h] - 1};
	}
	if (t->n == t->cap_strs) {
		uint32_t cap = t->cap_strs ? 2 * t->cap_strs : 1024;
		const char **strs = shd_realloc(g->ctx, t->strs, t->cap_strs * sizeof *strs,
		                                cap * sizeof *strs);
		if (!strs)
			return (ir_str){IR_NONE};
		t->strs = strs;
		t->cap_strs = cap;
	}
	char *copy = shd_arena_strdup(g->ctx, &g->arena, s, n);
	if (!copy)
		return (ir_str){IR_NONE};
	t->strs[t->n] = copy;
	t->slots[h] = ++t->n;
	return (ir_str){t->n - 1};
}

ir_str
ir_intern(ir_graph *g, const char *s)
{
	return ir_intern_n(g, s, strlen(s));
}

const char *
ir_cstr(const ir_graph *g, ir_str s)
{
	return s.i < g->strs->n ? g->strs->strs[s.i] : "";
}

void
ir_strtab_free(ir_graph *g)
{
	ir_strtab *t = g->strs;

	if (!t)
		return;
	shd_free(g->ctx, t->slots, t->cap * sizeof *t->slots);
	shd_free(g->ctx, t->strs, t->cap_strs * sizeof *t->strs);
	shd_free(g->ctx, t, sizeof *t);
	g->strs = NULL;
}
