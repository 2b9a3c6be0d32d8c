/* Dimension classes, conflicts and decision groups (TOAST's analysis).
 * requires: a lifted graph with shapes; ir_rule_of for every node
 * provides: prop_analysis: the class of every (value, dim) slot, flags per
 *   class, conflicts (two dims of one tensor in one class), decision groups
 *   (classes with equal layer-independent signatures) with their seeds
 *   and the padding granularity each seed's uses need (prop_pad_unit).
 *
 * Union-find runs over the slots and over each node's factor instances. A
 * dim made of one factor joins that factor; a compound dim (h*d) is an
 * equation "slot = product of factors", closed under congruence (equal
 * products are one class) and decomposition (one class written twice as a
 * product of parts of equal sizes: the parts are equal), so the merged
 * [batch*seq] of a Conv1D, split back, finds batch and seq again. Values
 * that hold shape data (their elements are tracked) have no slots. */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "prop.h"

/* ---- hashing ---- */

static uint64_t
mix(uint64_t h, uint64_t x)
{
	uint64_t z = h ^ (x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A name with every run of digits read as one '#': h.0.attn and h.11.attn
 * hash alike. */
static uint64_t
name_hash(const char *s)
{
	uint64_t h = 0x51ed27u;

	for (; s && *s; s++) {
		if (*s >= '0' && *s <= '9') {
			while (s[1] >= '0' && s[1] <= '9')
				s++;
			h = mix(h, '#');
		} else {
			h = mix(h, (unsigned char)*s);
		}
	}
	return h;
}

typedef struct {
	uint64_t key;
	uint32_t i;
} keyed;

static int
cmp_keyed(const void *a, const void *b)
{
	const keyed *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- union-find ---- */

static uint32_t
find(uint32_t *parent, uint32_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

/* Returns whether x and y were apart. The smaller root joins the larger
 * id-wise smaller one, so roots are deterministic. */
static int
unite(uint32_t *parent, uint32_t x, uint32_t y)
{
	x = find(parent, x);
	y = find(parent, y);
	if (x == y)
		return 0;
	if (x < y)
		parent[y] = x;
	else
		parent[x] = y;
	return 1;
}

/* ---- the working state ---- */

typedef struct {
	uint32_t lhs;   /* a slot */
	uint32_t first; /* parts: w->parts[first .. first + k), w->psize alike */
	uint32_t k;
} equation;

typedef struct {
	ir_graph *g;
	prop_analysis *a;
	shd_arena tmp;
	ir_rule *rules;  /* per node */
	uint32_t *fbase; /* per node: element of its factor 0 */
	uint32_t n_elems;
	uint32_t *parent; /* n_elems */
	uint8_t *kind;    /* per element: IR_F_* of a factor instance (slots: 0) */
	shd_vec eqs;      /* equation */
	shd_vec parts;    /* uint32_t elements */
	shd_vec psize;    /* ir_dim */
	keyed *order;     /* n eqs */
} work;

static void *
tzalloc(work *w, size_t n, size_t size)
{
	uint64_t bytes;

	if (shd_mul_overflow(n ? n : 1, size, &bytes) || bytes > SIZE_MAX)
		return NULL;
	return shd_arena_zalloc(w->g->ctx, &w->tmp, (size_t)bytes);
}

static void *
azalloc(work *w, size_t n, size_t size)
{
	uint64_t bytes;

	if (shd_mul_overflow(n ? n : 1, size, &bytes) || bytes > SIZE_MAX)
		return NULL;
	return shd_arena_zalloc(w->g->ctx, &w->a->arena, (size_t)bytes);
}

static uint32_t
tensor_value(const ir_graph *g, const ir_node *n, uint32_t t)
{
	return t < n->n_in ? ir_in(g, n, t) : ir_out(g, n, t - n->n_in);
}

/* Dims that tensor t has in rule r. */
static uint32_t
rule_rank(const ir_rule *r, uint32_t t)
{
	return (t + 1 < r->n_tensors ? r->slot0[t + 1] : r->n_slots) - r->slot0[t];
}

static int
make_slots(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	uint32_t n = 0;

	if (!(a->slot0 = azalloc(w, g->n_values, sizeof *a->slot0)))
		return 1;
	for (uint32_t v = 0; v < g->n_values; v++) {
		const ir_value *x = &g->values[v];
		a->slot0[v] = IR_NONE;
		if (x->rank <= 0 || x->elems)
			continue;
		if (n > UINT32_MAX / 2 - (uint32_t)x->rank)
			return 1;
		a->slot0[v] = n;
		n += (uint32_t)x->rank;
	}
	a->n_slots = n;
	if (!(a->slots = azalloc(w, n, sizeof *a->slots)))
		return 1;
	for (uint32_t v = 0; v < g->n_values; v++)
		for (int32_t d = 0; a->slot0[v] != IR_NONE && d < g->values[v].rank; d++)
			a->slots[a->slot0[v] + (uint32_t)d] = (prop_slot){v, d};
	return 0;
}

/* Rules of every node, factor elements, the links of single-factor dims and
 * the equations of compound ones. */
static int
link_rules(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	shd_ctx *c = g->ctx;
	uint64_t total = a->n_slots;
	int rc;

	w->rules = tzalloc(w, g->n_nodes, sizeof *w->rules);
	w->fbase = tzalloc(w, g->n_nodes, sizeof *w->fbase);
	if (!w->rules || !w->fbase)
		return shd_nomem(c);
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		if ((rc = ir_rule_of(g, i, &w->tmp, &w->rules[i])))
			return rc;
		w->fbase[i] = (uint32_t)total;
		total += w->rules[i].n_factors;
		if (total >= UINT32_MAX)
			return shd_nomem(c);
	}
	w->n_elems = (uint32_t)total;
	w->parent = tzalloc(w, total, sizeof *w->parent);
	w->kind = tzalloc(w, total, 1);
	if (!w->parent || !w->kind)
		return shd_nomem(c);
	for (uint32_t e = 0; e < total; e++)
		w->parent[e] = e;
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		const ir_rule *r = &w->rules[i];
		for (uint32_t f = 0; f < r->n_factors; f++)
			w->kind[w->fbase[i] + f] = r->factors[f].kind;
		for (uint32_t t = 0; t < r->n_tensors && r->n_factors; t++) {
			uint32_t v = tensor_value(g, n, t);
			if (v == IR_NONE || a->slot0[v] == IR_NONE)
				continue;
			uint32_t rk = rule_rank(r, t);
			for (uint32_t d = 0; d < rk && d < (uint32_t)g->values[v].rank; d++) {
				const uint32_t *fs;
				uint32_t k = ir_rule_dim(r, t, d, &fs), s = a->slot0[v] + d;
				if (k == 1) {
					unite(w->parent, s, w->fbase[i] + fs[0]);
					continue;
				}
				if (k == 0)
					continue;
				equation *e = shd_vec_push(c, &w->eqs, sizeof *e);
				if (!e)
					return shd_nomem(c);
				*e = (equation){s, (uint32_t)w->parts.n, k};
				for (uint32_t j = 0; j < k; j++) {
					uint32_t *p = shd_vec_push(c, &w->parts, sizeof *p);
					ir_dim *z = shd_vec_push(c, &w->psize, sizeof *z);
					if (!p || !z)
						return shd_nomem(c);
					*p = w->fbase[i] + fs[j];
					*z = r->factors[fs[j]].size;
				}
			}
		}
	}
	return 0;
}

/* One round of congruence (equal products: one class) then decomposition
 * (one class as two products of parts of equal sizes: equal parts).
 * Returns whether some classes merged. */
static int
close_round(work *w)
{
	const equation *eq = w->eqs.data;
	const uint32_t *parts = w->parts.data;
	const ir_dim *psize = w->psize.data;
	uint32_t n = (uint32_t)w->eqs.n;
	int changed = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t h = mix(1, eq[i].k);
		for (uint32_t j = 0; j < eq[i].k; j++)
			h = mix(h, find(w->parent, parts[eq[i].first + j]));
		w->order[i] = (keyed){h, i};
	}
	qsort(w->order, n, sizeof *w->order, cmp_keyed);
	for (uint32_t i = 1; i < n; i++) {
		uint32_t run = i;
		while (run > 0 && w->order[run - 1].key == w->order[i].key)
			run--;
		const equation *x = &eq[w->order[run].i], *y = &eq[w->order[i].i];
		if (run == i || x->k != y->k)
			continue;
		uint32_t j = 0;
		while (j < x->k &&
		       find(w->parent, parts[x->first + j]) == find(w->parent, parts[y->first + j]))
			j++;
		if (j == x->k)
			changed |= unite(w->parent, x->lhs, y->lhs);
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t h = mix(2, eq[i].k);
		h = mix(h, find(w->parent, eq[i].lhs));
		for (uint32_t j = 0; j < eq[i].k; j++)
			h = mix(mix(h, psize[eq[i].first + j].ex),
			        (uint64_t)psize[eq[i].first + j].c);
		w->order[i] = (keyed){h, i};
	}
	qsort(w->order, n, sizeof *w->order, cmp_keyed);
	for (uint32_t i = 1; i < n; i++) {
		uint32_t run = i;
		while (run > 0 && w->order[run - 1].key == w->order[i].key)
			run--;
		const equation *x = &eq[w->order[run].i], *y = &eq[w->order[i].i];
		if (run == i || x->k != y->k || find(w->parent, x->lhs) != find(w->parent, y->lhs))
			continue;
		uint32_t j = 0;
		while (j < x->k && ir_dim_eq(psize[x->first + j], psize[y->first + j]))
			j++;
		for (uint32_t m = 0; j == x->k && m < x->k; m++)
			changed |= unite(w->parent, parts[x->first + m], parts[y->first + m]);
	}
	return changed;
}

static int
is_decision(const prop_class *k)
{
	return (k->flags & (PROP_C_WEIGHT | PROP_C_INPUT)) &&
	       !(ir_is_const(k->size) && k->size.c <= 1);
}

/* Class ids in slot order, members, flags. */
static int
make_classes(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	uint32_t *of_root = tzalloc(w, w->n_elems, sizeof *of_root);
	uint32_t *fill;

	a->cls = azalloc(w, a->n_slots, sizeof *a->cls);
	a->members = azalloc(w, a->n_slots, sizeof *a->members);
	if (!of_root || !a->cls || !a->members)
		return 1;
	for (uint32_t e = 0; e < w->n_elems; e++)
		of_root[e] = IR_NONE;
	for (uint32_t s = 0; s < a->n_slots; s++) {
		uint32_t r = find(w->parent, s);
		if (of_root[r] == IR_NONE)
			of_root[r] = a->n_classes++;
		a->cls[s] = of_root[r];
	}
	a->classes = azalloc(w, a->n_classes, sizeof *a->classes);
	fill = tzalloc(w, a->n_classes, sizeof *fill);
	if (!a->classes || !fill)
		return 1;
	for (uint32_t s = 0; s < a->n_slots; s++) {
		prop_class *k = &a->classes[a->cls[s]];
		const ir_value *x = &g->values[a->slots[s].value];
		if (!k->n_members++)
			k->size = x->dims[a->slots[s].dim];
		k->flags |= x->kind == IR_V_INIT ? PROP_C_WEIGHT : 0;
		k->flags |= x->kind == IR_V_INPUT ? PROP_C_INPUT : 0;
	}
	for (uint32_t i = 0, at = 0; i < a->n_classes; i++) {
		a->classes[i].first = fill[i] = at;
		at += a->classes[i].n_members;
	}
	for (uint32_t s = 0; s < a->n_slots; s++)
		a->members[fill[a->cls[s]]++] = a->slots[s];
	for (uint32_t e = a->n_slots; e < w->n_elems; e++) {
		uint32_t id = of_root[find(w->parent, e)];
		if (id == IR_NONE)
			continue;
		a->classes[id].n_repl += w->kind[e] == IR_F_REPL;
		a->classes[id].n_reduced += w->kind[e] == IR_F_REDUCE;
	}
	for (uint32_t i = 0; i < a->n_classes; i++) {
		prop_class *k = &a->classes[i];
		k->flags |= k->n_repl ? PROP_C_REPL : 0;
		k->flags |= k->n_reduced ? PROP_C_REDUCED : 0;
		if (is_decision(k)) {
			k->flags |= PROP_C_DECISION;
			a->n_decisions++;
		}
		k->group = IR_NONE;
	}
	return 0;
}

/* Layer-independent signatures: per slot, what the value is (kind, an
 * initializer's name, producer op, name and result index, consumer ops,
 * names and operand positions; names with digit runs as '#', so that
 * /h.0/attn/Add and /h.11/attn/Add read alike while k_proj and v_proj
 * differ), the dim, rank and size; per class, the multiset of its slots'. */
static int
make_signatures(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	uint64_t *vh = tzalloc(w, g->n_values, sizeof *vh);
	uint64_t *sh = tzalloc(w, a->n_slots, sizeof *sh);

	if (!vh || !sh)
		return 1;
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		uint64_t nh = name_hash(ir_cstr(g, n->name));
		for (uint32_t k = 0; k < n->n_in; k++) {
			uint32_t v = ir_in(g, n, k);
			if (v != IR_NONE) /* commutative: a multiset */
				vh[v] += mix(mix(mix(3, n->op_type.i), k), nh);
		}
		for (uint32_t k = 0; k < n->n_out; k++)
			if (ir_out(g, n, k) != IR_NONE) /* an absent optional result */
				vh[ir_out(g, n, k)] += mix(mix(mix(4, n->op_type.i), k), nh);
	}
	for (uint32_t v = 0; v < g->n_values; v++) {
		const ir_value *x = &g->values[v];
		vh[v] = mix(mix(vh[v], x->kind), (uint64_t)x->rank);
		if (x->kind == IR_V_INIT)
			vh[v] = mix(vh[v], name_hash(ir_cstr(g, x->name)));
	}
	for (uint32_t i = 0; i < a->n_classes; i++) {
		prop_class *k = &a->classes[i];
		for (uint32_t m = 0; m < k->n_members; m++) {
			prop_slot s = a->members[k->first + m];
			ir_dim d = g->values[s.value].dims[s.dim];
			sh[k->first + m] =
			        mix(mix(mix(vh[s.value], (uint64_t)s.dim), d.ex), (uint64_t)d.c);
		}
		qsort(sh + k->first, k->n_members, sizeof *sh, cmp_u64);
		uint64_t h = mix(5, k->n_members);
		for (uint32_t m = 0; m < k->n_members; m++)
			h = mix(h, sh[k->first + m]);
		k->sig = h;
	}
	return 0;
}

/* Decision groups: decision classes of equal signatures, numbered by their
 * first class; their classes and seed slots. */
static int
make_groups(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	keyed *o = tzalloc(w, a->n_decisions, sizeof *o);
	uint32_t n = 0, *first = tzalloc(w, a->n_classes, sizeof *first);

	if (!o || !first)
		return 1;
	for (uint32_t i = 0; i < a->n_classes; i++)
		if (a->classes[i].flags & PROP_C_DECISION)
			o[n++] = (keyed){a->classes[i].sig, i};
	qsort(o, n, sizeof *o, cmp_keyed);
	/* the group's first class, in the class's slot */
	for (uint32_t i = 0; i < n; i++)
		first[o[i].i] = i > 0 && o[i - 1].key == o[i].key ? first[o[i - 1].i] : o[i].i;
	for (uint32_t i = 0; i < a->n_classes; i++) {
		prop_class *k = &a->classes[i];
		if (!(k->flags & PROP_C_DECISION))
			continue;
		k->group = first[i] == i ? a->n_groups++ : a->classes[first[i]].group;
	}
	a->groups = azalloc(w, a->n_groups, sizeof *a->groups);
	a->group_classes = azalloc(w, a->n_decisions, sizeof *a->group_classes);
	if (!a->groups || !a->group_classes)
		return 1;
	for (uint32_t i = 0; i < a->n_classes; i++) {
		const prop_class *k = &a->classes[i];
		if (k->group == IR_NONE)
			continue;
		a->groups[k->group].n_classes++;
		for (uint32_t m = 0; m < k->n_members; m++)
			a->groups[k->group].n_seeds +=
			        g->values[a->members[k->first + m].value].kind != IR_V_NODE;
	}
	for (uint32_t i = 0, c = 0, s = 0; i < a->n_groups; i++) {
		a->groups[i].first_class = c;
		a->groups[i].first_seed = s;
		c += a->groups[i].n_classes;
		s += a->groups[i].n_seeds;
		a->groups[i].n_classes = a->groups[i].n_seeds = 0;
		a->n_seeds = s;
	}
	if (!(a->seeds = azalloc(w, a->n_seeds, sizeof *a->seeds)))
		return 1;
	for (uint32_t i = 0; i < a->n_classes; i++) {
		const prop_class *k = &a->classes[i];
		if (k->group == IR_NONE)
			continue;
		prop_dgroup *gr = &a->groups[k->group];
		a->group_classes[gr->first_class + gr->n_classes++] = i;
		for (uint32_t m = 0; m < k->n_members; m++) {
			prop_slot s = a->members[k->first + m];
			if (g->values[s.value].kind != IR_V_NODE)
				a->seeds[gr->first_seed + gr->n_seeds++] = s;
		}
	}
	return 0;
}

/* Each seed's padding granularity and pieces, from its uses (an
 * initializer's; a graph input is split only where it divides). */
static int
make_units(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	uint32_t *off = NULL, *uses = NULL;

	a->seed_unit = azalloc(w, a->n_seeds, sizeof *a->seed_unit);
	a->seed_pieces = azalloc(w, a->n_seeds, sizeof *a->seed_pieces);
	if (!a->seed_unit || !a->seed_pieces || ir_consumers(g, &off, &uses))
		return 1;
	for (uint32_t j = 0; j < a->n_seeds; j++) {
		prop_slot s = a->seeds[j];
		int pieces = 1;
		int64_t u = g->values[s.value].kind == IR_V_INIT
		                    ? prop_pad_unit(g, w->rules, off, uses, s.value, s.dim, &pieces)
		                    : 1;
		a->seed_unit[j] = (uint16_t)(u > 0 && u <= 65535 ? u : 1);
		a->seed_pieces[j] = (uint16_t)pieces;
	}
	shd_free(g->ctx, off, ((size_t)g->n_values + 2) * sizeof *off);
	shd_free(g->ctx, uses, ((size_t)g->n_args + 1) * sizeof *uses);
	return 0;
}

/* Factor ids of tensor t's dims d1 and d2 at node i when both are one
 * factor each; 0 otherwise. */
static int
pair_factors(const work *w, uint32_t i, uint32_t t, const prop_conflict *p, uint32_t f[2])
{
	const ir_rule *r = &w->rules[i];
	const uint32_t *fs;

	if (t >= r->n_tensors || !r->n_factors || (uint32_t)p->d2 >= rule_rank(r, t))
		return 0;
	if (ir_rule_dim(r, t, (uint32_t)p->d1, &fs) != 1)
		return 0;
	f[0] = fs[0];
	if (ir_rule_dim(r, t, (uint32_t)p->d2, &fs) != 1)
		return 0;
	f[1] = fs[0];
	return 1;
}

typedef struct {
	uint32_t f[2]; /* factors of the conflict's two dims at the node */
	uint32_t c;    /* conflict */
} side;

/* Conflicts that are one decision: a node maps the two dims of one
 * conflicting tensor onto the two of another through the same two factors
 * (MatMul -> Div -> Where -> Softmax carry the scores' [seq, seq]). */
static int
join_conflicts(work *w, uint32_t *set, const uint32_t *cfirst, const uint32_t *ccount)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	shd_vec sides = {0};

	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		sides.n = 0;
		for (uint32_t t = 0; t < n->n_in + n->n_out; t++) {
			uint32_t v = tensor_value(g, n, t);
			for (uint32_t j = 0; v != IR_NONE && j < ccount[v]; j++) {
				side sd = {{0, 0}, cfirst[v] + j};
				if (!pair_factors(w, i, t, &a->conflicts[sd.c], sd.f))
					continue;
				side *p = shd_vec_push(g->ctx, &sides, sizeof *p);
				if (!p) {
					shd_vec_free(g->ctx, &sides, sizeof(side));
					return 1;
				}
				*p = sd;
			}
		}
		const side *sd = sides.data;
		for (size_t x = 0; x < sides.n; x++)
			for (size_t y = x + 1; y < sides.n; y++)
				if ((sd[x].f[0] == sd[y].f[0] && sd[x].f[1] == sd[y].f[1]) ||
				    (sd[x].f[0] == sd[y].f[1] && sd[x].f[1] == sd[y].f[0]))
					unite(set, sd[x].c, sd[y].c);
	}
	shd_vec_free(g->ctx, &sides, sizeof(side));
	return 0;
}

/* Number runs of equal keys in o (sorted) by their smallest index: ids[i]
 * for each index, 0.. in index order. Returns the count. */
static uint32_t
number_runs(const keyed *o, uint32_t n, uint32_t *ids, uint32_t *tmp)
{
	uint32_t next = 0;

	for (uint32_t i = 0; i < n; i++)
		tmp[o[i].i] = i > 0 && o[i - 1].key == o[i].key ? tmp[o[i - 1].i] : o[i].i;
	for (uint32_t i = 0; i < n; i++)
		ids[i] = tmp[i] == i ? next++ : ids[tmp[i]];
	return next;
}

/* Two dims of one tensor in one class (of a size other than 1); the sets
 * of conflicts that are one decision; groups of sets alike in every layer. */
static int
make_conflicts(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	shd_vec v = {0};
	uint32_t *cfirst = tzalloc(w, g->n_values, sizeof *cfirst);
	uint32_t *ccount = tzalloc(w, g->n_values, sizeof *ccount);
	int rc = 1;

	if (!cfirst || !ccount)
		goto out;
	for (uint32_t x = 0; x < g->n_values; x++) {
		const ir_value *val = &g->values[x];
		cfirst[x] = (uint32_t)v.n;
		for (int32_t d1 = 0; a->slot0[x] != IR_NONE && d1 < val->rank; d1++)
			for (int32_t d2 = d1 + 1; d2 < val->rank; d2++) {
				uint32_t k = prop_class_of(a, x, d1);
				const prop_class *cl = &a->classes[k];
				if (k != prop_class_of(a, x, d2) ||
				    (ir_is_const(cl->size) && cl->size.c <= 1))
					continue;
				prop_conflict *p = shd_vec_push(g->ctx, &v, sizeof *p);
				if (!p)
					goto out;
				*p = (prop_conflict){val->producer, x, k, d1, d2, 0, 0};
			}
		ccount[x] = (uint32_t)v.n - cfirst[x];
	}
	uint32_t n = a->n_conflicts = (uint32_t)v.n;
	uint32_t *set = tzalloc(w, n, sizeof *set), *ids = tzalloc(w, n, sizeof *ids);
	uint32_t *tmp = tzalloc(w, n, sizeof *tmp);
	uint64_t *ssig = tzalloc(w, n, sizeof *ssig);
	keyed *o = tzalloc(w, n, sizeof *o);
	a->conflicts = azalloc(w, n, sizeof *a->conflicts);
	if (!a->conflicts || !set || !ids || !tmp || !ssig || !o)
		goto out;
	if (n)
		memcpy(a->conflicts, v.data, n * sizeof *a->conflicts);
	for (uint32_t i = 0; i < n; i++)
		set[i] = i;
	if (join_conflicts(w, set, cfirst, ccount))
		goto out;
	/* sets, numbered by their first conflict */
	for (uint32_t i = 0; i < n; i++)
		o[i] = (keyed){find(set, i), i};
	qsort(o, n, sizeof *o, cmp_keyed);
	a->n_conflict_sets = number_runs(o, n, ids, tmp);
	/* a set's signature: the multiset of its conflicts' (class, dims,
	 * rank, producing op) */
	for (uint32_t i = 0; i < n; i++) {
		prop_conflict *p = &a->conflicts[i];
		uint64_t h = mix(mix(6, a->classes[p->cls].sig), (uint64_t)p->d1);
		h = mix(mix(h, (uint64_t)p->d2), (uint64_t)g->values[p->value].rank);
		h = mix(h, p->node == IR_NONE ? 0 : g->nodes[p->node].op_type.i + 1u);
		p->set = ids[i];
		ssig[p->set] += h;
	}
	for (uint32_t i = 0; i < n; i++)
		o[i] = (keyed){ssig[a->conflicts[i].set], i};
	qsort(o, n, sizeof *o, cmp_keyed);
	a->n_conflict_groups = number_runs(o, n, ids, tmp);
	for (uint32_t i = 0, sets = 0, groups = 0; i < n; i++) {
		prop_conflict *p = &a->conflicts[i];
		int is_decision = (a->classes[p->cls].flags & PROP_C_DECISION) != 0;
		p->group = ids[i];
		a->n_decision_conflict_sets += (uint32_t)(is_decision && p->set == sets);
		a->n_decision_conflict_groups += (uint32_t)(is_decision && p->group == groups);
		sets += p->set == sets;
		groups += p->group == groups;
	}
	rc = 0;
out:
	shd_vec_free(g->ctx, &v, sizeof(prop_conflict));
	return rc;
}

static int
make_opaque(work *w)
{
	ir_graph *g = w->g;
	prop_analysis *a = w->a;
	uint32_t n = 0;

	for (uint32_t i = 0; i < g->n_nodes; i++)
		n += g->nodes[i].op == OP_OPAQUE;
	if (!(a->opaque = azalloc(w, n, sizeof *a->opaque)))
		return 1;
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		if (g->nodes[i].op != OP_OPAQUE)
			continue;
		uint32_t j = 0;
		while (j < a->n_opaque && a->opaque[j].op_type != g->nodes[i].op_type.i)
			j++;
		if (j == a->n_opaque)
			a->opaque[a->n_opaque++] = (prop_opaque){g->nodes[i].op_type.i, 0};
		a->opaque[j].count++;
	}
	/* by count, then name (insertion sort: few entries) */
	for (uint32_t i = 1; i < a->n_opaque; i++)
		for (uint32_t j = i; j > 0; j--) {
			prop_opaque *x = &a->opaque[j - 1], *y = &a->opaque[j];
			if (x->count > y->count ||
			    (x->count == y->count && strcmp(ir_cstr(g, (ir_str){x->op_type}),
			                                    ir_cstr(g, (ir_str){y->op_type})) <= 0))
				break;
			prop_opaque t = *x;
			*x = *y;
			*y = t;
		}
	return 0;
}

int
prop_analyze(ir_graph *g, prop_analysis *a)
{
	shd_ctx *c = g->ctx;
	work w = {0};
	int rc = 0;

	memset(a, 0, sizeof *a);
	w.g = g;
	w.a = a;
	if (make_slots(&w)) {
		rc = shd_nomem(c);
		goto out;
	}
	if ((rc = link_rules(&w)))
		goto out;
	if (!(w.order = tzalloc(&w, w.eqs.n, sizeof *w.order))) {
		rc = shd_nomem(c);
		goto out;
	}
	for (int round = 0; round < 64 && close_round(&w); round++)
		;
	if (make_classes(&w) || make_signatures(&w) || make_groups(&w) || make_units(&w) ||
	    make_conflicts(&w) || make_opaque(&w))
		rc = shd_nomem(c);
out:
	shd_vec_free(c, &w.eqs, sizeof(equation));
	shd_vec_free(c, &w.parts, sizeof(uint32_t));
	shd_vec_free(c, &w.psize, sizeof(ir_dim));
	shd_arena_free(c, &w.tmp);
	if (rc)
		prop_analysis_free(g, a);
	return rc;
}

void
prop_analysis_free(ir_graph *g, prop_analysis *a)
{
	shd_arena_free(g->ctx, &a->arena);
	memset(a, 0, sizeof *a);
}
