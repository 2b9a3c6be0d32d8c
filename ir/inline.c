/* Inlining of model-local functions (ModelProto.functions) before lifting:
 * PyTorch's exporters call them as nodes whose (domain, op_type) is a
 * function's (domain, name); expanded, their bodies shard like any graph.
 * requires: a model that onnx_load accepted
 * provides: every call of a model-local function in the main graph and its
 *   subgraphs replaced by the function's body, recursively, in m's own
 *   protobuf memory (freed with the model): formal inputs and outputs bound
 *   to the call's names (a missing optional input: the empty name); every
 *   other name of the body, subgraphs included, renamed "PREFIX/name" (the
 *   call's name, else its first output), unique in the model; node names
 *   alike; attribute references replaced by the call's attribute, else the
 *   function's default (FunctionProto.attribute_proto, read from the unknown
 *   fields when the schema built against predates it), else dropped; the
 *   domains the function imports added to the model's opset_import;
 *   functions no longer called dropped. A call whose function imports a
 *   domain at another version than the model stays a call (an opaque op,
 *   never a wrong rule). Recursion, nesting deeper than INLINE_MAX_DEPTH and
 *   growth past --max-nodes are refused with ONNXSHARD_EINPUT, one line. */
#include <string.h>

#include "ir.h"

#define INLINE_MAX_DEPTH 32 /* calls nested in calls */
#define TAG_F_ATTR_PROTO 11 /* FunctionProto.attribute_proto (onnx 1.13) */
#define TAG_F_OVERLOAD   13 /* FunctionProto.overload (onnx 1.16) */
#define TAG_N_OVERLOAD   8  /* NodeProto.overload (onnx 1.16) */

/* A string table (set, or map when val is used); keys and values owned. */
typedef struct {
	char *key; /* NULL: empty slot */
	char *val;
} slot;

typedef struct {
	slot *s;
	size_t n, cap; /* cap: 0 or a power of two */
} table;

typedef struct {
	Onnx__FunctionProto *f;
	const char *domain;          /* "" for ai.onnx */
	char *overload;              /* "" when none (owned) */
	Onnx__AttributeProto **dflt; /* attribute defaults, unpacked with m->pba */
	size_t n_dflt;
	uint8_t ok;     /* its opsets agree with the model's: inlinable */
	uint8_t active; /* being inlined (on the call stack) */
	uint8_t used;   /* still called once inlining is done */
} func;

typedef struct {
	shd_ctx *c;
	onnx_model *m;
	func *fn;
	size_t n_fn, cap_fn; /* fn: cap_fn allocated */
	table values;        /* every value name of the model, and those made up */
	table nodes;         /* every node name */
	uint64_t n_new;      /* nodes made by inlining */
} inliner;

/* The nodes replacing a graph's node list; fresh ones were made here. */
typedef struct {
	Onnx__NodeProto **p;
	uint8_t *fresh;
	size_t n, cap;
} nodevec;

static int
nomem(inliner *I)
{
	return shd_nomem(I->c);
}

/* Memory the model's protobuf tree owns (freed with it, by m->pba, which
 * knows each block's size): strings and arrays put into the tree. */
static void *
pb_new(inliner *I, size_t n)
{
	return I->m->pba.alloc(I->m->pba.allocator_data, n);
}

static void
pb_del(inliner *I, void *p)
{
	if (p)
		I->m->pba.free(I->m->pba.allocator_data, p);
}

static const char *
str_or(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

static const char *
norm_domain(const char *d)
{
	return !d || !strcmp(d, "ai.onnx") ? "" : d;
}

/* ---- string tables ---- */

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static slot *
tfind(const table *t, const char *k)
{
	if (!t->cap)
		return NULL;
	for (size_t i = hash(k) & (t->cap - 1);; i = (i + 1) & (t->cap - 1))
		if (!t->s[i].key || !strcmp(t->s[i].key, k))
			return &t->s[i];
}

static int
has_key(const table *t, const char *k)
{
	const slot *e = tfind(t, k);
	return e && e->key;
}

/* Add k (-> v, copied; NULL for a set) when absent. */
static int
tput(inliner *I, table *t, const char *k, const char *v)
{
	if (2 * (t->n + 1) > t->cap) {
		size_t ncap = t->cap ? 2 * t->cap : 64;
		slot *ns = shd_calloc(I->c, ncap, sizeof *ns);
		if (!ns)
			return nomem(I);
		table nt = {ns, t->n, ncap};
		for (size_t i = 0; i < t->cap; i++)
			if (t->s[i].key)
				*tfind(&nt, t->s[i].key) = t->s[i];
		shd_free(I->c, t->s, t->cap * sizeof *t->s);
		*t = nt;
	}
	slot *e = tfind(t, k);
	if (e->key)
		return 0;
	if (!(e->key = shd_strdup(I->c, k)) || (v && !(e->val = shd_strdup(I->c, v)))) {
		shd_strfree(I->c, e->key);
		e->key = NULL;
		return nomem(I);
	}
	t->n++;
	return 0;
}

static void
tfree(shd_ctx *c, table *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		shd_strfree(c, t->s[i].key);
		shd_strfree(c, t->s[i].val);
	}
	shd_free(c, t->s, t->cap * sizeof *t->s);
	memset(t, 0, sizeof *t);
}

/* "prefix/name", or "prefix/name_K" for the first K that is free in set;
 * entered in set. Allocated for the proto (pb_new: free with pb_del). */
static char *
unique(inliner *I, table *set, const char *prefix, const char *name)
{
	size_t cap = strlen(prefix) + strlen(name) + 24;
	char *s = pb_new(I, cap);

	if (!s)
		return NULL;
	snprintf(s, cap, "%s/%s", prefix, name);
	for (unsigned long long k = 1; has_key(set, s); k++)
		snprintf(s, cap, "%s/%s_%llu", prefix, name, k);
	if (tput(I, set, s, NULL)) {
		pb_del(I, s);
		return NULL;
	}
	return s;
}

/* ---- protobuf memory: everything owned by m->pba ---- */

static void *
clone_msg(inliner *I, const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = shd_alloc(I->c, n);

	if (!buf)
		return NULL;
	protobuf_c_message_pack(msg, buf);
	void *r = protobuf_c_message_unpack(msg->descriptor, &I->m->pba, n, buf);
	shd_free(I->c, buf, n);
	return r;
}

static void
free_msg(inliner *I, void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, &I->m->pba);
}

/* Replace *s (a string of the proto) by a copy of to. */
static int
set_str(inliner *I, char **s, const char *to)
{
	size_t n = strlen(to) + 1;
	char *d = pb_new(I, n);
	if (!d)
		return nomem(I);
	memcpy(d, to, n);
	pb_del(I, *s);
	*s = d;
	return 0;
}

/* The payload of a length-prefixed unknown field of msg with this tag, from
 * index *from on (protobuf-c keeps the length prefix in the field's data). */
static const uint8_t *
unknown_field(const ProtobufCMessage *msg, uint32_t tag, unsigned *from, size_t *len)
{
	for (; *from < msg->n_unknown_fields; (*from)++) {
		const ProtobufCMessageUnknownField *u = &msg->unknown_fields[*from];
		uint64_t n = 0;
		size_t k = 0;
		if (u->tag != tag || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			continue;
		for (int shift = 0; k < u->len && k < 10; shift += 7) {
			n |= (uint64_t)(u->data[k] & 0x7f) << shift;
			if (!(u->data[k++] & 0x80))
				break;
		}
		(*from)++;
		if (n != u->len - k) /* protobuf-c checked it: never */
			return NULL;
		*len = (size_t)n;
		return u->data + k;
	}
	return NULL;
}

/* The overload of a function or node ("" when none), owned by the caller. */
static char *
overload_of(inliner *I, const ProtobufCMessage *msg, uint32_t tag)
{
	unsigned from = 0;
	size_t len = 0;
	const uint8_t *u = unknown_field(msg, tag, &from, &len);
	char *s;

	const uint8_t *nul = u ? memchr(u, 0, len) : NULL;
	if (nul) /* up to a NUL: freed as a string (shd_strfree) */
		len = (size_t)(nul - u);
	s = shd_alloc(I->c, (u ? len : 0) + 1);

	if (s) {
		if (u && len)
			memcpy(s, u, len);
		s[u ? len : 0] = 0;
	}
	return s;
}

/* ---- the functions ---- */

static int64_t
model_version(const Onnx__ModelProto *mp, const char *domain)
{
	for (size_t i = 0; i < mp->n_opset_import; i++)
		if (!strcmp(norm_domain(mp->opset_import[i]->domain), domain))
			return mp->opset_import[i]->version;
	return -1;
}

static int
load_functions(inliner *I)
{
	const Onnx__ModelProto *mp = I->m->proto;

	if (!(I->fn = shd_calloc(I->c, mp->n_functions + 1, sizeof *I->fn)))
		return nomem(I);
	I->cap_fn = mp->n_functions + 1;
	for (size_t i = 0; i < mp->n_functions; i++) {
		func *f = &I->fn[I->n_fn++];
		f->f = mp->functions[i];
		f->domain = norm_domain(f->f->domain);
		if (!(f->overload = overload_of(I, &f->f->base, TAG_F_OVERLOAD)))
			return nomem(I);
		f->ok = 1;
		for (size_t k = 0; k < f->f->n_opset_import; k++) {
			const Onnx__OperatorSetIdProto *o = f->f->opset_import[k];
			int64_t v = model_version(mp, norm_domain(o->domain));
			if (v >= 0 && v != o->version)
				f->ok = 0;
		}
		unsigned from = 0;
		const uint8_t *u;
		size_t len;
		while ((u = unknown_field(&f->f->base, TAG_F_ATTR_PROTO, &from, &len))) {
			uint64_t refused = I->c->n_refused;
			Onnx__AttributeProto *a = onnx__attribute_proto__unpack(&I->m->pba, len, u);
			if (!a && I->c->n_refused != refused)
				return nomem(I);
			if (!a || !a->name || !*a->name) {
				free_msg(I, a);
				return shd_error(I->c, ONNXSHARD_EINPUT,
				                 "%s: function '%s': an attribute default is not a "
				                 "named AttributeProto",
				                 I->m->path, str_or(f->f->name, ""));
			}
			Onnx__AttributeProto **d = shd_realloc(I->c, f->dflt, f->n_dflt * sizeof *d,
			                                       (f->n_dflt + 1) * sizeof *d);
			if (!d) {
				free_msg(I, a);
				return nomem(I);
			}
			f->dflt = d;
			f->dflt[f->n_dflt++] = a;
		}
	}
	return 0;
}

static void
free_functions(inliner *I)
{
	for (size_t i = 0; i < I->n_fn; i++) {
		func *f = &I->fn[i];
		for (size_t k = 0; k < f->n_dflt; k++)
			free_msg(I, f->dflt[k]);
		shd_free(I->c, f->dflt, f->n_dflt * sizeof *f->dflt);
		shd_strfree(I->c, f->overload);
	}
	shd_free(I->c, I->fn, I->cap_fn * sizeof *I->fn);
}

/* The function node p calls, or NULL (*rc set when out of memory). */
static func *
callee(inliner *I, const Onnx__NodeProto *p, int *rc)
{
	const char *dom = norm_domain(p->domain), *op = str_or(p->op_type, "");
	char *ov = NULL;

	*rc = 0;
	for (size_t i = 0; i < I->n_fn; i++) {
		func *f = &I->fn[i];
		if (strcmp(str_or(f->f->name, ""), op) || strcmp(f->domain, dom))
			continue;
		if (!ov && !(ov = overload_of(I, &p->base, TAG_N_OVERLOAD))) {
			*rc = nomem(I);
			return NULL;
		}
		if (!strcmp(ov, f->overload)) {
			shd_strfree(I->c, ov);
			return f;
		}
	}
	shd_strfree(I->c, ov);
	return NULL;
}

/* The domains f imports that the model lacks, added to it. */
static int
add_opsets(inliner *I, const func *f)
{
	Onnx__ModelProto *mp = I->m->proto;

	for (size_t k = 0; k < f->f->n_opset_import; k++) {
		const Onnx__OperatorSetIdProto *o = f->f->opset_import[k];
		if (model_version(mp, norm_domain(o->domain)) >= 0)
			continue;
		Onnx__OperatorSetIdProto *n = clone_msg(I, &o->base);
		Onnx__OperatorSetIdProto **a =
		        n ? pb_new(I, (mp->n_opset_import + 1) * sizeof *a) : NULL;
		if (!a) {
			free_msg(I, n);
			return nomem(I);
		}
		if (mp->n_opset_import)
			memcpy(a, mp->opset_import, mp->n_opset_import * sizeof *a);
		a[mp->n_opset_import] = n;
		pb_del(I, mp->opset_import);
		mp->opset_import = a;
		mp->n_opset_import++;
	}
	return 0;
}

/* ---- names ---- */

static int collect_graph(inliner *I, const Onnx__GraphProto *g);

static int
collect_node(inliner *I, const Onnx__NodeProto *p)
{
	int rc;

	if (p->name && *p->name && (rc = tput(I, &I->nodes, p->name, NULL)))
		return rc;
	for (size_t j = 0; j < p->n_input; j++)
		if (p->input[j] && *p->input[j] && (rc = tput(I, &I->values, p->input[j], NULL)))
			return rc;
	for (size_t j = 0; j < p->n_output; j++)
		if (p->output[j] && *p->output[j] && (rc = tput(I, &I->values, p->output[j], NULL)))
			return rc;
	for (size_t j = 0; j < p->n_attribute; j++) {
		const Onnx__AttributeProto *a = p->attribute[j];
		if (a->g && (rc = collect_graph(I, a->g)))
			return rc;
		for (size_t k = 0; k < a->n_graphs; k++)
			if ((rc = collect_graph(I, a->graphs[k])))
				return rc;
	}
	return 0;
}

static int
collect_vis(inliner *I, Onnx__ValueInfoProto *const *v, size_t n)
{
	int rc;
	for (size_t i = 0; i < n; i++)
		if (v[i]->name && *v[i]->name && (rc = tput(I, &I->values, v[i]->name, NULL)))
			return rc;
	return 0;
}

static int
collect_graph(inliner *I, const Onnx__GraphProto *g)
{
	int rc;

	if ((rc = collect_vis(I, g->input, g->n_input)) ||
	    (rc = collect_vis(I, g->output, g->n_output)) ||
	    (rc = collect_vis(I, g->value_info, g->n_value_info)))
		return rc;
	for (size_t i = 0; i < g->n_initializer; i++)
		if (g->initializer[i]->name &&
		    (rc = tput(I, &I->values, g->initializer[i]->name, NULL)))
			return rc;
	for (size_t i = 0; i < g->n_node; i++)
		if ((rc = collect_node(I, g->node[i])))
			return rc;
	return 0;
}

/* One call's renaming: formals to actuals, the rest to unique names. */
typedef struct {
	table map;
	const char *prefix;
} renamer;

static int
rename_value(inliner *I, renamer *R, char **s)
{
	int rc;

	if (!*s || !**s)
		return 0;
	slot *e = tfind(&R->map, *s);
	if (!e || !e->key) {
		char *u = unique(I, &I->values, R->prefix, *s);
		if (!u)
			return nomem(I);
		rc = tput(I, &R->map, *s, u);
		pb_del(I, u);
		if (rc)
			return rc;
		e = tfind(&R->map, *s);
	}
	return set_str(I, s, e->val);
}

static int rename_graph(inliner *I, renamer *R, Onnx__GraphProto *g);

static int
rename_node(inliner *I, renamer *R, Onnx__NodeProto *p)
{
	int rc;

	for (size_t j = 0; j < p->n_input; j++)
		if ((rc = rename_value(I, R, &p->input[j])))
			return rc;
	for (size_t j = 0; j < p->n_output; j++)
		if ((rc = rename_value(I, R, &p->output[j])))
			return rc;
	for (size_t j = 0; j < p->n_attribute; j++) {
		Onnx__AttributeProto *a = p->attribute[j];
		if (a->g && (rc = rename_graph(I, R, a->g)))
			return rc;
		for (size_t k = 0; k < a->n_graphs; k++)
			if ((rc = rename_graph(I, R, a->graphs[k])))
				return rc;
	}
	return 0;
}

static int
rename_vis(inliner *I, renamer *R, Onnx__ValueInfoProto **v, size_t n)
{
	int rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = rename_value(I, R, &v[i]->name)))
			return rc;
	return 0;
}

static int
rename_graph(inliner *I, renamer *R, Onnx__GraphProto *g)
{
	int rc;

	if ((rc = rename_vis(I, R, g->input, g->n_input)) ||
	    (rc = rename_vis(I, R, g->output, g->n_output)) ||
	    (rc = rename_vis(I, R, g->value_info, g->n_value_info)))
		return rc;
	for (size_t i = 0; i < g->n_initializer; i++)
		if ((rc = rename_value(I, R, &g->initializer[i]->name)))
			return rc;
	for (size_t i = 0; i < g->n_sparse_initializer; i++) {
		Onnx__SparseTensorProto *s = g->sparse_initializer[i];
		if ((s->values && (rc = rename_value(I, R, &s->values->name))) ||
		    (s->indices && (rc = rename_value(I, R, &s->indices->name))))
			return rc;
	}
	for (size_t i = 0; i < g->n_node; i++)
		if ((rc = rename_node(I, R, g->node[i])))
			return rc;
	return 0;
}

/* ---- attribute references ---- */

static const Onnx__AttributeProto *
find_attr(Onnx__AttributeProto *const *a, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (a[i]->name && !strcmp(a[i]->name, name))
			return a[i];
	return NULL;
}

static int subst_graph(inliner *I, Onnx__GraphProto *g, const Onnx__NodeProto *call, const func *f);

/* p's attributes that refer to the function's: the call's value, else the
 * default, else none. Subgraphs alike. */
static int
subst_node(inliner *I, Onnx__NodeProto *p, const Onnx__NodeProto *call, const func *f)
{
	size_t k = 0;
	int rc = 0;

	for (size_t j = 0; j < p->n_attribute; j++) {
		Onnx__AttributeProto *a = p->attribute[j];
		if (rc || !a->ref_attr_name || !*a->ref_attr_name) {
			p->attribute[k++] = a;
			if (rc)
				continue;
			if (a->g)
				rc = subst_graph(I, a->g, call, f);
			for (size_t i = 0; !rc && i < a->n_graphs; i++)
				rc = subst_graph(I, a->graphs[i], call, f);
			continue;
		}
		const Onnx__AttributeProto *src =
		        find_attr(call->attribute, call->n_attribute, a->ref_attr_name);
		if (!src)
			src = find_attr(f->dflt, f->n_dflt, a->ref_attr_name);
		if (!src) {
			free_msg(I, a);
			continue;
		}
		Onnx__AttributeProto *b = clone_msg(I, &src->base);
		if (!b || set_str(I, &b->name, str_or(a->name, ""))) {
			free_msg(I, b);
			p->attribute[k++] = a;
			rc = nomem(I);
			continue;
		}
		free_msg(I, a);
		p->attribute[k++] = b;
	}
	p->n_attribute = k;
	return rc;
}

static int
subst_graph(inliner *I, Onnx__GraphProto *g, const Onnx__NodeProto *call, const func *f)
{
	int rc;
	for (size_t i = 0; i < g->n_node; i++)
		if ((rc = subst_node(I, g->node[i], call, f)))
			return rc;
	return 0;
}

/* ---- expansion ---- */

static int
push(inliner *I, nodevec *v, Onnx__NodeProto *p, int fresh)
{
	if (fresh && ++I->n_new > I->c->max_nodes)
		return shd_error(I->c, ONNXSHARD_EINPUT,
		                 "%s: inlining local functions makes more than %llu nodes "
		                 "(--max-nodes)",
		                 I->m->path, (unsigned long long)I->c->max_nodes);
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 16;
		Onnx__NodeProto **np =
		        shd_realloc(I->c, v->p, v->cap * sizeof *np, cap * sizeof *np);
		if (np)
			v->p = np;
		uint8_t *nf = np ? shd_realloc(I->c, v->fresh, v->cap, cap) : NULL;
		if (!nf)
			return nomem(I);
		v->fresh = nf;
		v->cap = cap;
	}
	v->p[v->n] = p;
	v->fresh[v->n++] = (uint8_t)fresh;
	return 0;
}

static int expand_graph(inliner *I, Onnx__GraphProto *g, int depth);

static int
expand_subgraphs(inliner *I, Onnx__NodeProto *p, int depth)
{
	int rc;

	for (size_t j = 0; j < p->n_attribute; j++) {
		Onnx__AttributeProto *a = p->attribute[j];
		if (a->g && (rc = expand_graph(I, a->g, depth)))
			return rc;
		for (size_t k = 0; k < a->n_graphs; k++)
			if ((rc = expand_graph(I, a->graphs[k], depth)))
				return rc;
	}
	return 0;
}

/* The body of f for call, its nodes appended to out (fresh). */
static int
inline_call(inliner *I, const Onnx__NodeProto *call, func *f, nodevec *out, int depth)
{
	const char *fname = str_or(f->f->name, "");
	renamer R = {{0}, NULL};
	int rc = 0;

	if (f->active)
		return shd_error(I->c, ONNXSHARD_EINPUT,
		                 "%s: node '%s' (%s): local function '%s' calls itself "
		                 "(recursion)",
		                 I->m->path, str_or(call->name, ""), fname, fname);
	if (depth > INLINE_MAX_DEPTH)
		return shd_error(I->c, ONNXSHARD_EINPUT,
		                 "%s: node '%s' (%s): local functions nest more than %d deep",
		                 I->m->path, str_or(call->name, ""), fname, INLINE_MAX_DEPTH);
	R.prefix = str_or(call->name, NULL);
	for (size_t i = 0; !R.prefix && i < call->n_output; i++)
		R.prefix = str_or(call->output[i], NULL);
	if (!R.prefix)
		R.prefix = fname;
	/* formals: actual names, an unused output a name of its own */
	for (size_t i = 0; !rc && i < f->f->n_input; i++)
		if (f->f->input[i] && *f->f->input[i])
			rc = tput(I, &R.map, f->f->input[i],
			          i < call->n_input && call->input[i] ? call->input[i] : "");
	for (size_t i = 0; !rc && i < f->f->n_output; i++) {
		const char *o = f->f->output[i];
		if (!o || !*o)
			continue;
		if (i < call->n_output && call->output[i] && *call->output[i]) {
			rc = tput(I, &R.map, o, call->output[i]);
		} else {
			char *u = unique(I, &I->values, R.prefix, o);
			rc = u ? tput(I, &R.map, o, u) : nomem(I);
			pb_del(I, u);
		}
	}
	if (rc || (rc = add_opsets(I, f)))
		goto out;
	f->active = 1;
	for (size_t i = 0; i < f->f->n_node && !rc; i++) {
		const Onnx__NodeProto *b = f->f->node[i];
		Onnx__NodeProto *q = clone_msg(I, &b->base);
		char *name = NULL;
		func *g;
		if (!q) {
			rc = nomem(I);
			break;
		}
		if ((rc = rename_node(I, &R, q)) ||
		    (rc = (name = unique(I, &I->nodes, R.prefix,
		                         str_or(b->name, str_or(b->op_type, "node"))))
		                  ? 0
		                  : nomem(I))) {
			free_msg(I, q);
			break;
		}
		pb_del(I, q->name);
		q->name = name;
		if ((rc = subst_node(I, q, call, f))) {
			free_msg(I, q);
			break;
		}
		g = callee(I, q, &rc);
		if (!rc && g && g->ok)
			rc = inline_call(I, q, g, out, depth + 1);
		else if (!rc && !(rc = expand_subgraphs(I, q, depth)) && !(rc = push(I, out, q, 1)))
			continue; /* out owns q */
		free_msg(I, q);
	}
	f->active = 0;
out:
	tfree(I->c, &R.map);
	return rc;
}

/* Calls in g's node list (and its nodes' subgraphs) inlined. On failure g
 * keeps its nodes (some of their subgraphs may be expanded already). */
static int
expand_graph(inliner *I, Onnx__GraphProto *g, int depth)
{
	nodevec out = {0};
	size_t n_call = g->n_node + 1;
	uint8_t *call = shd_calloc(I->c, n_call, 1);
	int rc = 0, changed = 0;

	if (!call)
		return nomem(I);
	for (size_t i = 0; i < g->n_node && !rc; i++) {
		Onnx__NodeProto *p = g->node[i];
		func *f = callee(I, p, &rc);
		if (rc)
			break;
		if (f && f->ok) {
			call[i] = changed = 1;
			rc = inline_call(I, p, f, &out, depth + 1);
		} else if (!(rc = expand_subgraphs(I, p, depth))) {
			rc = push(I, &out, p, 0);
		}
	}
	if (!rc && changed) {
		Onnx__NodeProto **a = pb_new(I, (out.n ? out.n : 1) * sizeof *a);
		if (a) {
			if (out.n)
				memcpy(a, out.p, out.n * sizeof *a);
			for (size_t i = 0; i < g->n_node; i++)
				if (call[i])
					free_msg(I, g->node[i]);
			pb_del(I, g->node);
			g->node = a;
			g->n_node = out.n;
			out.n = 0; /* g owns them */
		} else {
			rc = nomem(I);
		}
	}
	for (size_t i = 0; i < out.n; i++)
		if (out.fresh[i])
			free_msg(I, out.p[i]);
	shd_free(I->c, out.p, out.cap * sizeof *out.p);
	shd_free(I->c, out.fresh, out.cap);
	shd_free(I->c, call, n_call);
	return rc;
}

/* ---- functions still called ---- */

static int mark_graph(inliner *I, const Onnx__GraphProto *g);

static int
mark_nodes(inliner *I, Onnx__NodeProto *const *nodes, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		func *f = callee(I, nodes[i], &rc);
		if (rc)
			return rc;
		if (f && !f->used) {
			f->used = 1;
			if ((rc = mark_nodes(I, f->f->node, f->f->n_node)))
				return rc;
		}
		for (size_t j = 0; j < nodes[i]->n_attribute; j++) {
			const Onnx__AttributeProto *a = nodes[i]->attribute[j];
			if (a->g && (rc = mark_graph(I, a->g)))
				return rc;
			for (size_t k = 0; k < a->n_graphs; k++)
				if ((rc = mark_graph(I, a->graphs[k])))
					return rc;
		}
	}
	return 0;
}

static int
mark_graph(inliner *I, const Onnx__GraphProto *g)
{
	return mark_nodes(I, g->node, g->n_node);
}

static void
drop_unused(inliner *I)
{
	Onnx__ModelProto *mp = I->m->proto;
	size_t k = 0;

	for (size_t i = 0; i < mp->n_functions; i++) {
		if (I->fn[i].used)
			mp->functions[k++] = mp->functions[i];
		else
			free_msg(I, mp->functions[i]);
	}
	mp->n_functions = k;
}

int
ir_inline_functions(shd_ctx *c, onnx_model *m)
{
	inliner I = {c, m, NULL, 0, 0, {0}, {0}, 0};
	int rc;

	if (!m->proto->n_functions)
		return 0;
	if (!(rc = load_functions(&I)) && !(rc = collect_graph(&I, m->proto->graph)) &&
	    !(rc = expand_graph(&I, m->proto->graph, 0)) && !(rc = mark_graph(&I, m->proto->graph)))
		drop_unused(&I);
	free_functions(&I);
	tfree(c, &I.values);
	tfree(c, &I.nodes);
	return rc;
}
