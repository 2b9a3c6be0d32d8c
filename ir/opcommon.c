/* What op functions share: attributes, shapes, broadcasting, folding of
 * small integer values, errors, and the sharding-rule builder. */
#include <stdarg.h>
#include <string.h>

#include "ir_impl.h"
#include "ops_impl.h"

static const struct {
	rule_fn rule;
} rules[] = {
#define OP(id, name, min_in, max_in, infer, rule) {rule},
#include "ops.h"
#undef OP
};
_Static_assert(sizeof rules / sizeof rules[0] == OP_OPAQUE, "rule table out of step");

int
node_error(ir_graph *g, const ir_node *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++) /* attribute strings quoted in msg: one line */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return shd_error(g->ctx, ONNXSHARD_EINPUT, "%s: node '%s' (%s): %s", g->model->path,
	                 ir_cstr(g, n->name), ir_cstr(g, n->op_type), msg);
}

/* ---- attributes ---- */

const Onnx__AttributeProto *
ir_attr(const ir_node *n, const char *name)
{
	for (size_t i = 0; i < n->proto->n_attribute; i++)
		if (n->proto->attribute[i]->name && !strcmp(n->proto->attribute[i]->name, name))
			return n->proto->attribute[i];
	return NULL;
}

int64_t
ir_attr_int(const ir_node *n, const char *name, int64_t dflt)
{
	const Onnx__AttributeProto *a = ir_attr(n, name);
	return a && a->has_i ? a->i : dflt;
}

float
ir_attr_float(const ir_node *n, const char *name, float dflt)
{
	const Onnx__AttributeProto *a = ir_attr(n, name);
	return a && a->has_f ? a->f : dflt;
}

size_t
ir_attr_ints(const ir_node *n, const char *name, const int64_t **v)
{
	const Onnx__AttributeProto *a = ir_attr(n, name);
	*v = a ? a->ints : NULL;
	return a ? a->n_ints : 0;
}

const char *
ir_attr_str(ir_graph *g, const ir_node *n, const char *name, const char *dflt)
{
	const Onnx__AttributeProto *a = ir_attr(n, name);

	if (!a || !a->has_s)
		return dflt;
	/* bytes in the proto are not NUL-terminated: intern a copy */
	ir_str s = ir_intern_n(g, a->s.data ? (const char *)a->s.data : "", a->s.len);
	return s.i == IR_NONE ? dflt : ir_cstr(g, s);
}

/* ---- values and shapes ---- */

ir_value *
in_val(ir_graph *g, const ir_node *n, uint32_t k)
{
	uint32_t v = ir_in(g, n, k);
	return v == IR_NONE ? NULL : ir_val(g, v);
}

ir_value *
out_val(ir_graph *g, const ir_node *n, uint32_t k)
{
	uint32_t v = k < n->n_out ? ir_out(g, n, k) : IR_NONE;
	return v == IR_NONE ? NULL : ir_val(g, v);
}

ir_dim *
set_shape(ir_graph *g, ir_value *v, int32_t dtype, int32_t r)
{
	ir_dim *d = shd_arena_alloc(g->ctx, &g->arena, (size_t)(r > 0 ? r : 1) * sizeof *d);

	if (!d)
		return NULL;
	if (dtype)
		v->dtype = dtype;
	v->rank = r;
	v->dims = d;
	return d;
}

int
copy_shape(ir_graph *g, ir_value *v, const ir_value *src, int32_t dtype)
{
	if (!v || !src)
		return 0;
	if (!dtype)
		dtype = src->dtype;
	if (src->rank < 0) {
		if (dtype)
			v->dtype = dtype;
		return 0;
	}
	ir_dim *d = set_shape(g, v, dtype, src->rank);
	if (!d)
		return shd_nomem(g->ctx);
	memcpy(d, src->dims, (size_t)src->rank * sizeof *d);
	return 0;
}

ir_dim *
set_elems(ir_graph *g, ir_value *v, int32_t n)
{
	ir_dim *e = shd_arena_alloc(g->ctx, &g->arena, (size_t)(n > 0 ? n : 1) * sizeof *e);

	if (!e)
		return NULL;
	v->elems = e;
	v->n_elems = n;
	return e;
}

int
const_ints(const ir_value *v, int64_t *out, int32_t max)
{
	if (!v || !v->elems)
		return 0;
	for (int32_t i = 0; i < v->n_elems; i++) {
		if (!ir_is_const(v->elems[i]))
			return 0;
		if (i < max)
			out[i] = v->elems[i].c;
	}
	return 1;
}

int
norm_axis(int64_t axis, int32_t r)
{
	if (axis < 0)
		axis += r;
	return axis >= 0 && axis < r ? (int)axis : -1;
}

int
broadcast_dims(ir_graph *g, const ir_dim *a, int32_t ra, const ir_dim *b, int32_t rb, ir_dim *out,
               int32_t *bad)
{
	int32_t r = ra > rb ? ra : rb;

	for (int32_t i = 0; i < r; i++) {
		ir_dim x = i - (r - ra) >= 0 ? a[i - (r - ra)] : ir_const(1);
		ir_dim y = i - (r - rb) >= 0 ? b[i - (r - rb)] : ir_const(1);
		if (ir_is_const(x) && x.c == 1)
			out[i] = y;
		else if (ir_is_const(y) && y.c == 1)
			out[i] = x;
		else if (ir_dim_eq(x, y))
			out[i] = x;
		else if (ir_is_const(x) && ir_is_const(y)) {
			*bad = i;
			return 1;
		} else if (!ir_is_known(x) || !ir_is_known(y))
			out[i] = ir_is_known(x) && !ir_is_const(x)   ? x
			         : ir_is_known(y) && !ir_is_const(y) ? y
			         : ir_is_known(x)                    ? x
			                          : y; /* a known non-1 size wins */
		else
			out[i] = ir_is_const(x) ? x : y; /* symbolic vs constant: the constant */
	}
	(void)g;
	return 0;
}

ir_dim
dims_prod(ir_graph *g, const ir_dim *d, int32_t from, int32_t to)
{
	ir_dim p = ir_const(1);

	for (int32_t i = from; i < to; i++)
		p = ir_mul(g, p, d[i]);
	return p;
}

int
need_int_operand(ir_graph *g, const ir_node *n, uint32_t k, const char *what, int any_int)
{
	const ir_value *v = in_val(g, n, k);
	const char *dt;

	if (!v || !v->dtype || v->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
	    (any_int && v->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT32))
		return 0;
	dt = onnx_dtype_name(v->dtype);
	return node_error(g, n, "%s '%s' is %s, not %s", what, ir_cstr(g, v->name),
	                  dt ? dt : "of an unknown type", any_int ? "int32 or int64" : "int64");
}

int
is_int_dtype(int32_t dt)
{
	return dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
	       dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
}

/* Whether a pending sum of dtype dt can be summed by a collective. */
static int
is_sum_dtype(int32_t dt)
{
	return dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
	       dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
	       dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
	       dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
}

int
has_rank(const ir_value *v)
{
	return v && v->rank >= 0 && v->rank <= MAX_RANK;
}

int
dtype_only(ir_value *y, const ir_value *x)
{
	if (y && x)
		y->dtype = x->dtype;
	return 0;
}

/* Whether d is >= 0 for every value of its symbols: graph dims are, and so
 * are sums and products of them with positive coefficients, floor division
 * and mod by such, min and max. Conservative (0 when unsure). */
static int
is_nonneg(ir_graph *g, ir_dim d, int depth)
{
	if (ir_is_const(d))
		return d.c >= 0;
	if (!ir_is_known(d) || depth > 8)
		return 0;
	const ir_expr *e = &g->exprs->e[d.ex];
	for (uint32_t i = 0; i < e->n_terms; i++) {
		if (e->terms[i].coeff < 0)
			return 0;
		for (uint32_t j = 0; j < e->terms[i].n; j++) {
			const ir_atom *at = &g->exprs->atoms[e->terms[i].atoms[j]];
			int a = at->kind == ATOM_SYM || is_nonneg(g, at->a, depth + 1);
			int b = at->kind == ATOM_SYM || is_nonneg(g, at->b, depth + 1);
			int ok;
			switch (at->kind) {
			case ATOM_MAX: ok = a || b; break;
			case ATOM_MOD: ok = b; break; /* of the divisor's sign */
			default: ok = a && b;         /* symbols, floor division, min */
			}
			if (!ok)
				return 0;
		}
	}
	return 1;
}

/* Equal of two small integer values: 1, 0, or unknown. Shapes compared
 * with -1 (PyTorch's expand) are never equal to it: dims are >= 0. */
static ir_dim
fold_equal(ir_graph *g, ir_dim x, ir_dim z)
{
	if (ir_dim_eq(x, z))
		return ir_const(1);
	if (!ir_is_known(x) || !ir_is_known(z))
		return ir_unknown();
	ir_dim d = ir_sub(g, x, z);
	if (ir_is_const(d))
		return ir_const(d.c == 0);
	if ((ir_is_const(x) && x.c < 0 && is_nonneg(g, z, 0)) ||
	    (ir_is_const(z) && z.c < 0 && is_nonneg(g, x, 0)))
		return ir_const(0);
	return ir_unknown();
}

int
fold_binary(ir_graph *g, ir_node *n, int op)
{
	ir_value *a = in_val(g, n, 0), *b = in_val(g, n, 1), *y = out_val(g, n, 0);

	if (!a || !b || !y || !a->elems || !b->elems || y->rank > 1 || y->rank < 0)
		return 0;
	int32_t na = a->n_elems, nb = b->n_elems, ny = na > nb ? na : nb;
	if ((na != nb && na != 1 && nb != 1) || ny > IR_MAX_ELEMS)
		return 0;
	if (y->rank == 1 && !(ir_is_const(y->dims[0]) && y->dims[0].c == ny))
		return 0;
	ir_dim *e = set_elems(g, y, ny);
	if (!e)
		return shd_nomem(g->ctx);
	for (int32_t i = 0; i < ny; i++) {
		ir_dim x = a->elems[na == 1 ? 0 : i], z = b->elems[nb == 1 ? 0 : i];
		switch (op) {
		case '+': e[i] = ir_add(g, x, z); break;
		case '-': e[i] = ir_sub(g, x, z); break;
		case '*': e[i] = ir_mul(g, x, z); break;
		case '/': /* ONNX integer Div truncates; exact on shapes */
			if (ir_is_const(x) && ir_is_const(z))
				e[i] = z.c == 0 || (x.c == INT64_MIN && z.c == -1)
				               ? ir_unknown()
				               : ir_const(x.c / z.c);
			else
				e[i] = ir_floordiv(g, x, z);
			break;
		case '%': e[i] = ir_mod(g, x, z); break;
		case 'M': e[i] = ir_max(g, x, z); break;
		case 'm': e[i] = ir_min(g, x, z); break;
		case '=': e[i] = fold_equal(g, x, z); break;
		default: e[i] = ir_unknown();
		}
	}
	return 0;
}

/* ---- lists of dims or axes: an attribute or a small operand ---- */

int
dim_list(ir_graph *g, const ir_node *n, const char *attr, uint32_t k, ir_dim *buf, int32_t *cnt)
{
	*cnt = 0;
	if (attr) {
		const int64_t *v;
		size_t c = ir_attr_ints(n, attr, &v);
		if (!ir_attr(n, attr))
			return L_ABSENT;
		if (c > MAX_RANK)
			return L_UNKNOWN;
		for (size_t i = 0; i < c; i++)
			buf[i] = ir_const(v[i]);
		*cnt = (int32_t)c;
		return L_KNOWN;
	}
	ir_value *v = in_val(g, n, k);
	if (!v)
		return L_ABSENT;
	if (!v->elems || v->n_elems > MAX_RANK)
		return L_UNKNOWN;
	memcpy(buf, v->elems, (size_t)v->n_elems * sizeof *buf);
	*cnt = v->n_elems;
	return L_KNOWN;
}

int
int_list(ir_graph *g, const ir_node *n, const char *attr, uint32_t k, int64_t *buf, int32_t *cnt)
{
	ir_dim d[MAX_RANK];
	int st = dim_list(g, n, attr, k, d, cnt);

	for (int32_t i = 0; st == L_KNOWN && i < *cnt; i++) {
		if (!ir_is_const(d[i]))
			return L_UNKNOWN;
		buf[i] = d[i].c;
	}
	return st;
}

int
axes_mask(const int64_t *axes, int32_t cnt, int32_t r, uint8_t *mask, int repeats)
{
	memset(mask, 0, MAX_RANK);
	for (int32_t i = 0; i < cnt; i++) {
		int a = norm_axis(axes[i], r);
		if (a < 0 || (mask[a] && !repeats))
			return 1;
		mask[a] = 1;
	}
	return 0;
}

/* ---- the rule builder ---- */

typedef struct {
	uint32_t slot, factor;
} pair;

struct rule_b {
	ir_graph *g;
	shd_arena *a;
	int failed;
	ir_factor *factors;
	uint32_t n_factors, cap_factors;
	pair *pairs;
	uint32_t n_pairs, cap_pairs;
	uint32_t *slot0;
	int32_t *rank; /* per tensor */
	uint32_t n_tensors;
};

uint32_t
rb_factor(rule_b *b, int kind, ir_dim size)
{
	if (b->n_factors == b->cap_factors) {
		uint32_t cap = b->cap_factors ? 2 * b->cap_factors : 16;
		ir_factor *f = shd_realloc(b->g->ctx, b->factors, b->cap_factors * sizeof *f,
		                           cap * sizeof *f);
		if (!f) {
			b->failed = 1;
			return 0;
		}
		b->factors = f;
		b->cap_factors = cap;
	}
	b->factors[b->n_factors] = (ir_factor){(uint8_t)kind, size};
	return b->n_factors++;
}

void
rb_map(rule_b *b, uint32_t t, uint32_t d, uint32_t f)
{
	if (t >= b->n_tensors || b->rank[t] < 0 || d >= (uint32_t)b->rank[t] || f >= b->n_factors)
		return; /* absent operand or unknown rank: nothing to map */
	if (b->n_pairs == b->cap_pairs) {
		uint32_t cap = b->cap_pairs ? 2 * b->cap_pairs : 32;
		pair *p =
		        shd_realloc(b->g->ctx, b->pairs, b->cap_pairs * sizeof *p, cap * sizeof *p);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->pairs = p;
		b->cap_pairs = cap;
	}
	b->pairs[b->n_pairs++] = (pair){b->slot0[t] + d, f};
}

uint32_t
rb_pass(rule_b *b, ir_dim size, uint32_t t1, uint32_t d1, uint32_t t2, uint32_t d2)
{
	uint32_t f = rb_factor(b, IR_F_PASS, size);

	if (t1 != IR_NONE)
		rb_map(b, t1, d1, f);
	if (t2 != IR_NONE)
		rb_map(b, t2, d2, f);
	return f;
}

int
ir_rule_of(ir_graph *g, uint32_t ni, shd_arena *a, ir_rule *r)
{
	shd_ctx *c = g->ctx;
	ir_node *n = &g->nodes[ni];
	rule_b b = {g, a, 0, NULL, 0, 0, NULL, 0, 0, NULL, NULL, n->n_in + n->n_out};
	int known = 1, rc = 0;

	memset(r, 0, sizeof *r);
	b.slot0 = shd_arena_alloc(c, a, (b.n_tensors + 1) * sizeof *b.slot0);
	b.rank = shd_arena_alloc(c, a, (b.n_tensors + 1) * sizeof *b.rank);
	if (!b.slot0 || !b.rank)
		return shd_nomem(c);
	uint32_t slots = 0;
	for (uint32_t t = 0; t < b.n_tensors; t++) {
		uint32_t v = t < n->n_in ? ir_in(g, n, t) : ir_out(g, n, t - n->n_in);
		b.rank[t] = v == IR_NONE ? -1 : g->values[v].rank;
		if (v != IR_NONE && b.rank[t] < 0)
			known = 0;
		b.slot0[t] = slots;
		slots += b.rank[t] > 0 ? (uint32_t)b.rank[t] : 0;
	}
	/* rules read their first result: a node without it has none */
	if (n->op != OP_OPAQUE && known && n->n_out && ir_out(g, n, 0) != IR_NONE)
		rules[n->op].rule(g, n, &b);
	if (b.failed) {
		rc = shd_nomem(c);
		goto out;
	}
	r->n_tensors = b.n_tensors;
	r->slot0 = b.slot0;
	r->n_slots = slots;
	r->n_factors = b.n_factors;
	r->factors = shd_arena_alloc(c, a, (b.n_factors + 1) * sizeof *r->factors);
	r->fac_off = shd_arena_zalloc(c, a, (slots + 2) * sizeof *r->fac_off);
	r->fac = shd_arena_alloc(c, a, (b.n_pairs + 1) * sizeof *r->fac);
	if (!r->factors || !r->fac_off || !r->fac) {
		rc = shd_nomem(c);
		goto out;
	}
	if (b.n_factors)
		memcpy(r->factors, b.factors, b.n_factors * sizeof *r->factors);
	/* a split reduction leaves its results a pending sum, which a
	 * collective sums: only floating-point values are summed that way (ONNX
	 * Runtime's AllReduce takes no integer, nor does ONNX's Sum), so on a
	 * node with another result type the factor is computed whole */
	for (uint32_t t = 0; t < n->n_out; t++) {
		uint32_t v = ir_out(g, n, t);
		if (v == IR_NONE || !g->values[v].dtype || is_sum_dtype(g->values[v].dtype))
			continue;
		for (uint32_t f = 0; f < r->n_factors; f++)
			if (r->factors[f].kind == IR_F_REDUCE)
				r->factors[f].kind = IR_F_REPL;
	}
	/* counting sort by slot, keeping the order factors were mapped in */
	for (uint32_t i = 0; i < b.n_pairs; i++)
		r->fac_off[b.pairs[i].slot + 1]++;
	for (uint32_t s = 0; s < slots; s++)
		r->fac_off[s + 1] += r->fac_off[s];
	uint32_t *fill = shd_arena_zalloc(c, a, (slots + 1) * sizeof *fill);
	if (!fill) {
		rc = shd_nomem(c);
		goto out;
	}
	for (uint32_t i = 0; i < b.n_pairs; i++) {
		uint32_t s = b.pairs[i].slot;
		r->fac[r->fac_off[s] + fill[s]++] = b.pairs[i].factor;
	}
out:
	shd_free(c, b.factors, b.cap_factors * sizeof *b.factors);
	shd_free(c, b.pairs, b.cap_pairs * sizeof *b.pairs);
	return rc;
}

static void
print_factor(FILE *out, uint32_t f)
{
	if (f < 26)
		fputc('a' + (int)f, out);
	else
		fprintf(out, "f%u", f);
}

void
ir_rule_print(ir_graph *g, uint32_t ni, const ir_rule *r, FILE *out)
{
	ir_node *n = &g->nodes[ni];

	for (uint32_t t = 0; t < r->n_tensors; t++) {
		uint32_t v = t < n->n_in ? ir_in(g, n, t) : ir_out(g, n, t - n->n_in);
		if (t == n->n_in)
			fputs(t ? " -> " : "-> ", out);
		else if (t)
			fputc(' ', out);
		if (v == IR_NONE || g->values[v].rank < 0) {
			fputc(v == IR_NONE ? '_' : '?', out);
			continue;
		}
		fputc('[', out);
		for (int32_t d = 0; d < g->values[v].rank; d++) {
			const uint32_t *f;
			uint32_t k = ir_rule_dim(r, t, (uint32_t)d, &f);
			if (d)
				fputc(',', out);
			if (k == 0)
				fputc('.', out);
			if (k > 1)
				fputc('(', out);
			for (uint32_t j = 0; j < k; j++) {
				if (j)
					fputc(' ', out);
				print_factor(out, f[j]);
			}
			if (k > 1)
				fputc(')', out);
		}
		fputc(']', out);
	}
	for (uint32_t f = 0; f < r->n_factors; f++) {
		if (r->factors[f].kind == IR_F_PASS)
			continue;
		fputc(' ', out);
		print_factor(out, f);
		fputs(r->factors[f].kind == IR_F_REDUCE ? ":reduce" : ":repl", out);
	}
}

int
ir_consumers(ir_graph *g, uint32_t **off, uint32_t **uses)
{
	shd_ctx *c = g->ctx;
	uint32_t *o = shd_calloc(c, g->n_values + 2, sizeof *o);
	uint32_t *u = shd_calloc(c, g->n_args + 1, sizeof *u);
	uint32_t *fill = shd_calloc(c, g->n_values + 1, sizeof *fill);

	*off = *uses = NULL;
	if (!o || !u || !fill) {
		shd_free(c, o, ((size_t)g->n_values + 2) * sizeof *o);
		shd_free(c, u, ((size_t)g->n_args + 1) * sizeof *u);
		shd_free(c, fill, ((size_t)g->n_values + 1) * sizeof *fill);
		return shd_nomem(c);
	}
	for (uint32_t i = 0; i < g->n_nodes; i++)
		for (uint32_t k = 0; k < g->nodes[i].n_in; k++)
			if (ir_in(g, &g->nodes[i], k) != IR_NONE)
				o[ir_in(g, &g->nodes[i], k) + 1]++;
	for (uint32_t v = 0; v < g->n_values; v++)
		o[v + 1] += o[v];
	for (uint32_t i = 0; i < g->n_nodes; i++)
		for (uint32_t k = 0; k < g->nodes[i].n_in; k++) {
			uint32_t v = ir_in(g, &g->nodes[i], k);
			if (v != IR_NONE)
				u[o[v] + fill[v]++] = i;
		}
	shd_free(c, fill, ((size_t)g->n_values + 1) * sizeof *fill);
	*off = o;
	*uses = u;
	return 0;
}

int64_t
ir_reshape_heads(ir_graph *g, const ir_node *n, int merge)
{
	uint32_t xv = ir_in(g, n, 0), yv = n->n_out ? ir_out(g, n, 0) : IR_NONE;

	if (n->op != OP_Reshape || xv == IR_NONE || yv == IR_NONE)
		return 0;
	const ir_value *x = &g->values[merge ? yv : xv], *y = &g->values[merge ? xv : yv];
	if (x->rank < 1 || y->rank != x->rank + 1 || !ir_is_const(y->dims[y->rank - 2]))
		return 0;
	ir_dim prod = ir_mul(g, y->dims[y->rank - 2], y->dims[y->rank - 1]);
	return ir_dim_eq(prod, x->dims[x->rank - 1]) ? y->dims[y->rank - 2].c : 0;
}

uint32_t
ir_lookup_table(const ir_graph *g, const ir_node *n, uint32_t *ids)
{
	uint32_t t = IR_NONE, x = IR_NONE;

	if (n->op == OP_Gather && !ir_attr_int(n, "axis", 0))
		t = ir_in(g, n, 0), x = ir_in(g, n, 1);
	else if (n->op == OP_MsEmbedLayerNormalization)
		t = ir_in(g, n, 2), x = ir_in(g, n, 0);
	if (t == IR_NONE || x == IR_NONE || g->values[t].rank != 2)
		return IR_NONE;
	if (ids)
		*ids = x;
	return t;
}
