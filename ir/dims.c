/* Symbolic dims: polynomials over graph dims and opaque atoms (floor
 * division, mod, min, max that do not simplify), canonical and hash-consed so
 * that equal expressions have equal ids. Bounded: more than MAX_TERMS terms or
 * a monomial of degree above MAX_DEGREE gives "unknown". */
#include <stdlib.h>
#include <string.h>

#include "ir_impl.h"

#define MAX_TERMS  16
#define MAX_DEGREE 8

typedef struct {
	int64_t coeff;
	uint32_t n;
	uint32_t atoms[MAX_DEGREE];
} sterm;

typedef struct {
	uint32_t n;
	int bad; /* overflow or too big: the result is unknown */
	sterm t[MAX_TERMS * MAX_TERMS];
} poly;

int
ir_exprs_init(ir_graph *g)
{
	g->exprs = shd_calloc(g->ctx, 1, sizeof *g->exprs);
	return g->exprs ? 0 : 1;
}

void
ir_exprs_free(ir_graph *g)
{
	ir_exprs *x = g->exprs;

	if (!x)
		return;
	shd_free(g->ctx, x->e, x->cap * sizeof *x->e);
	shd_free(g->ctx, x->atoms, x->cap_atoms * sizeof *x->atoms);
	shd_free(g->ctx, x->by_text, x->cap_by_text * sizeof *x->by_text);
	shd_free(g->ctx, x->atom_by_text, x->cap_atom_by_text * sizeof *x->atom_by_text);
	shd_free(g->ctx, x, sizeof *x);
	g->exprs = NULL;
}

static const char *
atom_name(ir_graph *g, uint32_t a)
{
	return ir_cstr(g, g->exprs->atoms[a].name);
}

static int
cmp_atoms(ir_graph *g, const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
	if (na != nb)
		return na > nb ? -1 : 1; /* higher degree first */
	for (uint32_t i = 0; i < na; i++) {
		int d = strcmp(atom_name(g, a[i]), atom_name(g, b[i]));
		if (d)
			return d;
	}
	return 0;
}

static void
to_poly(ir_graph *g, ir_dim d, poly *p)
{
	p->n = 0;
	p->bad = 0;
	if (d.ex == IR_EX_CONST) {
		if (d.c) {
			p->t[0].coeff = d.c;
			p->t[0].n = 0;
			p->n = 1;
		}
		return;
	}
	const ir_expr *e = &g->exprs->e[d.ex];
	for (uint32_t i = 0; i < e->n_terms; i++) {
		p->t[i].coeff = e->terms[i].coeff;
		p->t[i].n = e->terms[i].n;
		memcpy(p->t[i].atoms, e->terms[i].atoms, e->terms[i].n * sizeof(uint32_t));
	}
	p->n = e->n_terms;
}

/* Sort terms, merge equal monomials, drop zeros. */
static void
canon(ir_graph *g, poly *p)
{
	/* insertion sort: few terms */
	for (uint32_t i = 1; i < p->n; i++) {
		sterm t = p->t[i];
		uint32_t j = i;
		while (j > 0 && cmp_atoms(g, t.atoms, t.n, p->t[j - 1].atoms, p->t[j - 1].n) < 0) {
			p->t[j] = p->t[j - 1];
			j--;
		}
		p->t[j] = t;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < p->n; i++) {
		if (k > 0 &&
		    cmp_atoms(g, p->t[i].atoms, p->t[i].n, p->t[k - 1].atoms, p->t[k - 1].n) == 0) {
			if (__builtin_add_overflow(p->t[k - 1].coeff, p->t[i].coeff,
			                           &p->t[k - 1].coeff))
				p->bad = 1;
		} else {
			p->t[k++] = p->t[i];
		}
	}
	p->n = 0;
	for (uint32_t i = 0; i < k; i++)
		if (p->t[i].coeff)
			p->t[p->n++] = p->t[i];
	if (p->n > MAX_TERMS)
		p->bad = 1;
}

static void
put(char **s, char *end, const char *x)
{
	size_t n = strlen(x);

	if (*s + n >= end)
		n = (size_t)(end - *s) - 1;
	memcpy(*s, x, n);
	*s += n;
	**s = 0;
}

static void
print_poly(ir_graph *g, const poly *p, char *buf, size_t size)
{
	char *s = buf, *end = buf + size, num[32];

	*s = 0;
	for (uint32_t i = 0; i < p->n; i++) {
		int64_t c = p->t[i].coeff;
		if (c < 0) {
			put(&s, end, "-");
			c = -c; /* coefficients never reach INT64_MIN: checked on multiply */
		} else if (i > 0) {
			put(&s, end, "+");
		}
		if (c != 1 || p->t[i].n == 0) {
			snprintf(num, sizeof num, "%lld", (long long)c);
			put(&s, end, num);
			if (p->t[i].n)
				put(&s, end, "*");
		}
		for (uint32_t j = 0; j < p->t[i].n; j++) {
			if (j)
				put(&s, end, "*");
			put(&s, end, atom_name(g, p->t[i].atoms[j]));
		}
	}
}

static int
grow_map(ir_graph *g, uint32_t **map, uint32_t *cap, uint32_t need)
{
	if (need < *cap)
		return 0;
	uint32_t ncap = *cap ? *cap : 256;
	while (ncap <= need)
		ncap *= 2;
	uint32_t *m = shd_realloc(g->ctx, *map, *cap * sizeof *m, ncap * sizeof *m);
	if (!m)
		return 1;
	memset(m + *cap, 0, (ncap - *cap) * sizeof *m);
	*map = m;
	*cap = ncap;
	return 0;
}

static ir_dim
from_poly(ir_graph *g, poly *p)
{
	ir_exprs *x = g->exprs;
	char buf[512];

	canon(g, p);
	if (p->bad)
		return ir_unknown();
	if (p->n == 0)
		return ir_const(0);
	if (p->n == 1 && p->t[0].n == 0)
		return ir_const(p->t[0].coeff);
	print_poly(g, p, buf, sizeof buf);
	ir_str text = ir_intern(g, buf);
	if (text.i == IR_NONE || grow_map(g, &x->by_text, &x->cap_by_text, text.i))
		return ir_unknown();
	if (x->by_text[text.i])
		return (ir_dim){0, x->by_text[text.i]};
	if (x->n == 0)
		x->n = 1; /* id 0 is IR_EX_CONST */
	if (x->n >= x->cap) {
		uint32_t cap = x->cap ? 2 * x->cap : 64;
		ir_expr *e = shd_realloc(g->ctx, x->e, x->cap * sizeof *e, cap * sizeof *e);
		if (!e)
			return ir_unknown();
		x->e = e;
		x->cap = cap;
	}
	ir_expr *e = &x->e[x->n];
	e->terms = shd_arena_alloc(g->ctx, &g->arena, p->n * sizeof *e->terms);
	if (!e->terms)
		return ir_unknown();
	for (uint32_t i = 0; i < p->n; i++) {
		e->terms[i].coeff = p->t[i].coeff;
		e->terms[i].n = p->t[i].n;
		e->terms[i].atoms =
		        shd_arena_alloc(g->ctx, &g->arena, p->t[i].n * sizeof(uint32_t) + 1);
		if (!e->terms[i].atoms)
			return ir_unknown();
		memcpy(e->terms[i].atoms, p->t[i].atoms, p->t[i].n * sizeof(uint32_t));
	}
	e->n_terms = p->n;
	e->text = text;
	x->by_text[text.i] = x->n;
	return (ir_dim){0, x->n++};
}

/* The atom named text (made once), as a dim. */
static ir_dim
atom_dim(ir_graph *g, int kind, const char *text, ir_dim a, ir_dim b)
{
	ir_exprs *x = g->exprs;
	ir_str name = ir_intern(g, text);
	uint32_t id;
	poly p;

	if (name.i == IR_NONE || grow_map(g, &x->atom_by_text, &x->cap_atom_by_text, name.i))
		return ir_unknown();
	if (x->atom_by_text[name.i]) {
		id = x->atom_by_text[name.i] - 1;
	} else {
		if (x->n_atoms == x->cap_atoms) {
			uint32_t cap = x->cap_atoms ? 2 * x->cap_atoms : 64;
			ir_atom *at = shd_realloc(g->ctx, x->atoms, x->cap_atoms * sizeof *at,
			                          cap * sizeof *at);
			if (!at)
				return ir_unknown();
			x->atoms = at;
			x->cap_atoms = cap;
		}
		id = x->n_atoms++;
		x->atoms[id] = (ir_atom){(uint8_t)kind, name, a, b};
		x->atom_by_text[name.i] = id + 1;
	}
	p.n = 1;
	p.bad = 0;
	p.t[0].coeff = 1;
	p.t[0].n = 1;
	p.t[0].atoms[0] = id;
	return from_poly(g, &p);
}

ir_dim
ir_sym(ir_graph *g, const char *name)
{
	return atom_dim(g, ATOM_SYM, name, ir_unknown(), ir_unknown());
}

static ir_dim
add_sub(ir_graph *g, ir_dim a, ir_dim b, int64_t sign)
{
	poly *p, q;

	if (!ir_is_known(a) || !ir_is_known(b))
		return ir_unknown();
	if (ir_is_const(a) && ir_is_const(b)) {
		int64_t r;
		if (sign > 0 ? __builtin_add_overflow(a.c, b.c, &r)
		             : __builtin_sub_overflow(a.c, b.c, &r))
			return ir_unknown();
		return ir_const(r);
	}
	if (!(p = shd_alloc(g->ctx, sizeof *p)))
		return ir_unknown();
	to_poly(g, a, p);
	to_poly(g, b, &q);
	for (uint32_t i = 0; i < q.n; i++) {
		p->t[p->n] = q.t[i];
		if (sign < 0) {
			if (q.t[i].coeff == INT64_MIN)
				p->bad = 1;
			p->t[p->n].coeff = -q.t[i].coeff;
		}
		p->n++;
	}
	ir_dim r = from_poly(g, p);
	shd_free(g->ctx, p, sizeof *p);
	return r;
}

ir_dim
ir_add(ir_graph *g, ir_dim a, ir_dim b)
{
	return add_sub(g, a, b, 1);
}

ir_dim
ir_sub(ir_graph *g, ir_dim a, ir_dim b)
{
	return add_sub(g, a, b, -1);
}

/* Merge two sorted atom lists. */
static int
merge_atoms(ir_graph *g, const sterm *a, const sterm *b, sterm *out)
{
	uint32_t i = 0, j = 0;

	if (a->n + b->n > MAX_DEGREE)
		return 1;
	out->n = 0;
	while (i < a->n || j < b->n) {
		if (j == b->n ||
		    (i < a->n && strcmp(atom_name(g, a->atoms[i]), atom_name(g, b->atoms[j])) <= 0))
			out->atoms[out->n++] = a->atoms[i++];
		else
			out->atoms[out->n++] = b->atoms[j++];
	}
	return 0;
}

ir_dim
ir_mul(ir_graph *g, ir_dim a, ir_dim b)
{
	poly *p, pa, pb;

	if (!ir_is_known(a) || !ir_is_known(b))
		return ir_unknown();
	if (ir_is_const(a) && ir_is_const(b)) {
		int64_t r;
		if (__builtin_mul_overflow(a.c, b.c, &r))
			return ir_unknown();
		return ir_const(r);
	}
	if (!(p = shd_alloc(g->ctx, sizeof *p)))
		return ir_unknown();
	to_poly(g, a, &pa);
	to_poly(g, b, &pb);
	p->n = 0;
	p->bad = 0;
	for (uint32_t i = 0; i < pa.n; i++)
		for (uint32_t j = 0; j < pb.n; j++) {
			sterm *t = &p->t[p->n++];
			if (__builtin_mul_overflow(pa.t[i].coeff, pb.t[j].coeff, &t->coeff) ||
			    t->coeff == INT64_MIN || merge_atoms(g, &pa.t[i], &pb.t[j], t))
				p->bad = 1;
		}
	ir_dim r = from_poly(g, p);
	shd_free(g->ctx, p, sizeof *p);
	return r;
}

/* Remove the atoms of d from t (a multiset difference); 1 if not contained. */
static int
strip_atoms(const sterm *t, const sterm *d, sterm *out)
{
	uint32_t used[MAX_DEGREE] = {0};

	for (uint32_t j = 0; j < d->n; j++) {
		uint32_t i;
		for (i = 0; i < t->n; i++)
			if (!used[i] && t->atoms[i] == d->atoms[j])
				break;
		if (i == t->n)
			return 1;
		used[i] = 1;
	}
	out->n = 0;
	for (uint32_t i = 0; i < t->n; i++)
		if (!used[i])
			out->atoms[out->n++] = t->atoms[i];
	return 0;
}

static int64_t
floordiv64(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Whether d prints as a sum or (products too) as more than one factor, to
 * parenthesise in "floor((2*seq+1)/2)", "floor(seq/(2*batch))". */
static int
is_compound(ir_graph *g, ir_dim d, int products)
{
	if (d.ex == IR_EX_CONST || d.ex == IR_EX_UNKNOWN)
		return 0;
	const ir_expr *e = &g->exprs->e[d.ex];
	return e->n_terms > 1 || (products && (e->terms[0].n > 1 || e->terms[0].coeff != 1));
}

static ir_dim
opaque(ir_graph *g, int kind, const char *fn, const char *op, ir_dim a, ir_dim b)
{
	char buf[600];
	const char *sa = ir_dim_str(g, a), *sb = ir_dim_str(g, b);
	int pa = *op == '/' && is_compound(g, a, 0), pb = *op == '/' && is_compound(g, b, 1);

	snprintf(buf, sizeof buf, "%s(%s%s%s%s%s%s%s)", fn, pa ? "(" : "", sa, pa ? ")" : "", op,
	         pb ? "(" : "", sb, pb ? ")" : "");
	return atom_dim(g, kind, buf, a, b);
}

ir_dim
ir_floordiv(ir_graph *g, ir_dim a, ir_dim b)
{
	poly *p, pb;

	if (!ir_is_known(a) || !ir_is_known(b) || (ir_is_const(b) && b.c == 0))
		return ir_unknown();
	if (ir_is_const(a) && ir_is_const(b)) {
		if (a.c == INT64_MIN && b.c == -1)
			return ir_unknown();
		return ir_const(floordiv64(a.c, b.c));
	}
	if (ir_is_const(b) && b.c == 1)
		return a;
	if (ir_dim_eq(a, b))
		return ir_const(1);
	to_poly(g, b, &pb);
	if (pb.n == 1 && pb.t[0].coeff > 0 && (p = shd_alloc(g->ctx, sizeof *p))) {
		int exact = 1;
		to_poly(g, a, p);
		for (uint32_t i = 0; i < p->n && exact; i++) {
			sterm t;
			if (p->t[i].coeff % pb.t[0].coeff || strip_atoms(&p->t[i], &pb.t[0], &t))
				exact = 0;
			else {
				t.coeff = p->t[i].coeff / pb.t[0].coeff;
				p->t[i] = t;
			}
		}
		ir_dim r = exact ? from_poly(g, p) : ir_unknown();
		shd_free(g->ctx, p, sizeof *p);
		if (exact)
			return r;
	}
	return opaque(g, ATOM_FLOORDIV, "floor", "/", a, b);
}

ir_dim
ir_ceildiv(ir_graph *g, ir_dim a, ir_dim b)
{
	return ir_sub(g, ir_const(0), ir_floordiv(g, ir_sub(g, ir_const(0), a), b));
}

ir_dim
ir_mod(ir_graph *g, ir_dim a, ir_dim b)
{
	if (!ir_is_known(a) || !ir_is_known(b) || (ir_is_const(b) && b.c == 0))
		return ir_unknown();
	if (ir_is_const(a) && ir_is_const(b)) {
		if (b.c == -1)
			return ir_const(0);
		return ir_const(a.c - floordiv64(a.c, b.c) * b.c);
	}
	ir_dim q = ir_floordiv(g, a, b);
	if (ir_is_known(q) && ir_dim_eq(ir_mul(g, q, b), a))
		return ir_const(0); /* divides exactly */
	return opaque(g, ATOM_MOD, "mod", ",", a, b);
}

ir_dim
ir_min(ir_graph *g, ir_dim a, ir_dim b)
{
	if (!ir_is_known(a) || !ir_is_known(b))
		return ir_unknown();
	if (ir_is_const(a) && ir_is_const(b))
		return ir_const(a.c < b.c ? a.c : b.c);
	if (ir_dim_eq(a, b))
		return a;
	return opaque(g, ATOM_MIN, "min", ",", a, b);
}

ir_dim
ir_max(ir_graph *g, ir_dim a, ir_dim b)
{
	if (!ir_is_known(a) || !ir_is_known(b))
		return ir_unknown();
	if (ir_is_const(a) && ir_is_const(b))
		return ir_const(a.c > b.c ? a.c : b.c);
	if (ir_dim_eq(a, b))
		return a;
	return opaque(g, ATOM_MAX, "max", ",", a, b);
}

const char *
ir_dim_str(ir_graph *g, ir_dim d)
{
	char buf[32];

	if (d.ex == IR_EX_UNKNOWN)
		return "?";
	if (d.ex != IR_EX_CONST)
		return ir_cstr(g, g->exprs->e[d.ex].text);
	snprintf(buf, sizeof buf, "%lld", (long long)d.c);
	ir_str s = ir_intern(g, buf);
	return s.i == IR_NONE ? "?" : ir_cstr(g, s);
}

static int
eval_atom(ir_graph *g, uint32_t a, ir_bindf bind, void *ud, int64_t *out, int depth)
{
	const ir_atom *at = &g->exprs->atoms[a];
	int64_t x, y;

	if (at->kind == ATOM_SYM)
		return bind ? bind(ud, ir_cstr(g, at->name), out) : 1;
	if (depth > 64 || ir_dim_eval(g, at->a, bind, ud, &x) ||
	    ir_dim_eval(g, at->b, bind, ud, &y))
		return 1;
	switch (at->kind) {
	case ATOM_FLOORDIV:
		if (y == 0 || (x == INT64_MIN && y == -1))
			return 1;
		*out = floordiv64(x, y);
		return 0;
	case ATOM_MOD:
		if (y == 0)
			return 1;
		*out = y == -1 ? 0 : x - floordiv64(x, y) * y;
		return 0;
	case ATOM_MIN: *out = x < y ? x : y; return 0;
	default: *out = x > y ? x : y; return 0;
	}
}

int
ir_dim_eval(ir_graph *g, ir_dim d, ir_bindf bind, void *ud, int64_t *out)
{
	if (d.ex == IR_EX_UNKNOWN)
		return 1;
	if (d.ex == IR_EX_CONST) {
		*out = d.c;
		return 0;
	}
	const ir_expr *e = &g->exprs->e[d.ex];
	int64_t sum = 0;
	for (uint32_t i = 0; i < e->n_terms; i++) {
		int64_t t = e->terms[i].coeff, v;
		for (uint32_t j = 0; j < e->terms[i].n; j++)
			if (eval_atom(g, e->terms[i].atoms[j], bind, ud, &v, 0) ||
			    __builtin_mul_overflow(t, v, &t))
				return 1;
		if (__builtin_add_overflow(sum, t, &sum))
			return 1;
	}
	*out = sum;
	return 0;
}

static uint32_t
add_syms(ir_graph *g, ir_dim d, ir_str *syms, uint32_t n, uint32_t max, int depth)
{
	if (d.ex == IR_EX_UNKNOWN || d.ex == IR_EX_CONST || depth > 64)
		return n;
	const ir_expr *e = &g->exprs->e[d.ex];
	for (uint32_t i = 0; i < e->n_terms; i++)
		for (uint32_t j = 0; j < e->terms[i].n; j++) {
			const ir_atom *at = &g->exprs->atoms[e->terms[i].atoms[j]];
			if (at->kind != ATOM_SYM) {
				n = add_syms(g, at->a, syms, n, max, depth + 1);
				n = add_syms(g, at->b, syms, n, max, depth + 1);
				continue;
			}
			uint32_t k;
			for (k = 0; k < n && syms[k].i != at->name.i; k++)
				;
			if (k == n && n < max)
				syms[n++] = at->name;
		}
	return n;
}

uint32_t
ir_dim_syms(ir_graph *g, ir_dim d, ir_str *syms, uint32_t max)
{
	return add_syms(g, d, syms, 0, max, 0);
}

int
ir_dim_monomial(ir_graph *g, ir_dim d, ir_str *syms, uint32_t max, uint32_t *n)
{
	*n = 0;
	if (d.ex == IR_EX_UNKNOWN || d.ex == IR_EX_CONST)
		return d.ex == IR_EX_CONST;
	const ir_expr *e = &g->exprs->e[d.ex];
	if (e->n_terms != 1)
		return 0;
	for (uint32_t j = 0; j < e->terms[0].n; j++) {
		const ir_atom *at = &g->exprs->atoms[e->terms[0].atoms[j]];
		if (at->kind != ATOM_SYM || *n == max)
			return 0;
		syms[(*n)++] = at->name;
	}
	return 1;
}
