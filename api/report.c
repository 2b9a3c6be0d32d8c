/* The plan's HTML report (`plan --report FILE.html`, also shard): one page,
 * inline CSS and SVG, no script, readable offline.
 *
 * requires: a materialised plan (prop_materialize), its JSON object
 *           (api/pipeline.c's plan_json: costs, baselines), the hardware
 * provides: report_html: FILE written whole (temp file beside it, renamed)
 *           or not at all; one error line naming FILE
 *
 * Every string from the model (value names, mesh axis names, paths) goes
 * through esc(); numbers are printed by this file (bytes in B, KB, MB, GB
 * of 1000, times in s, ms, µs). Sections: the mesh (a grid of ranks), the
 * decisions (plan.decisions_made), activations and graph inputs and
 * outputs (each input and output; activations by the axes that split them,
 * the largest listed), weights by layer (a layer is the first all-digit
 * dotted component of a weight's name, or of its first consumer's name;
 * weights before the first layer are "embeddings", after it "head";
 * consecutive layers of the same dtypes, shapes and shardings are one card,
 * "layers 0-31: identical"), collectives
 * (each reshard step that communicates, with the bytes of the whole
 * tensor), peak memory per rank against the device's capacity, step time
 * beside the baselines. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/report.h"

/* ---- an output buffer through the context's allocator ---- */

typedef struct {
	shd_ctx *c;
	char *s;
	size_t n, cap;
	int bad; /* an allocation was refused */
} buf;

static void
put(buf *b, const char *s, size_t n)
{
	if (b->bad)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *t = shd_realloc(b->c, b->s, b->cap, cap);
		if (!t) {
			b->bad = 1;
			return;
		}
		b->s = t;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

static void
puts_(buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->bad = 1;
		return;
	}
	if ((size_t)n < sizeof small) {
		put(b, small, (size_t)n);
		return;
	}
	char *big = shd_alloc(b->c, (size_t)n + 1);
	if (!big) {
		b->bad = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	put(b, big, (size_t)n);
	shd_free(b->c, big, (size_t)n + 1);
}

/* s[0..n) as HTML text or attribute value: & < > " ' escaped, control
 * bytes shown as U+FFFD. */
static void
esc_n(buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		switch (ch) {
		case '&': puts_(b, "&amp;"); break;
		case '<': puts_(b, "&lt;"); break;
		case '>': puts_(b, "&gt;"); break;
		case '"': puts_(b, "&quot;"); break;
		case '\'': puts_(b, "&#39;"); break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				puts_(b, "&#xFFFD;");
			else
				put(b, s + i, 1);
		}
	}
}

static void
esc(buf *b, const char *s)
{
	esc_n(b, s ? s : "", s ? strlen(s) : 0);
}

/* s, at most max bytes of it (not cutting a UTF-8 sequence), escaped. */
static void
esc_short(buf *b, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max) {
		esc_n(b, s, n);
		return;
	}
	n = max;
	while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	esc_n(b, s, n);
	puts_(b, "&hellip;");
}

/* ---- numbers ---- */

static void
fmt_bytes(char *out, size_t sz, double v)
{
	static const char *const u[] = {"B", "KB", "MB", "GB", "TB", "PB"};
	int i = 0;

	while (v >= 1000 && i < 5)
		v /= 1000, i++;
	snprintf(out, sz, i ? "%.3g %s" : "%.0f %s", v, u[i]);
}

static void
fmt_secs(char *out, size_t sz, double v)
{
	if (v == 0)
		snprintf(out, sz, "0 s");
	else if (v < 1e-3)
		snprintf(out, sz, "%.3g \xc2\xb5s", v * 1e6);
	else if (v < 1)
		snprintf(out, sz, "%.3g ms", v * 1e3);
	else
		snprintf(out, sz, "%.3g s", v);
}

static double
jnum(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* ---- colours ---- */

static const char *const axis_colour[PROP_MAX_AXES] = {"#2f6fdf", "#f08c00", "#2b9a48", "#d63a3a",
                                                       "#8a55c8", "#8c5a3c", "#d05aa8", "#159aa8"};
#define REPL_COLOUR    "#d5d9e0"
#define COMPUTE_COLOUR "#5b7fa8"
#define COMM_COLOUR    "#e8743b"

static void
axis_chip(buf *b, const prop_mesh *m, uint32_t a)
{
	putf(b, "<span class=\"chip\" style=\"background:%s\">", axis_colour[a]);
	esc(b, m->names[a]);
	puts_(b, "</span>");
}

/* ---- bytes of a value (unbound dims count as 1) ---- */

static double
value_bytes(ir_graph *g, const prop_plan *p, uint32_t v, int *exact)
{
	const ir_value *x = &g->values[v];
	double n = onnx_dtype_bits(x->dtype) / 8.0;

	if (x->rank < 0)
		*exact = 0;
	for (int32_t d = 0; d < x->rank; d++) {
		int64_t e;
		if (ir_dim_eval(g, x->dims[d], p->bind, p->bind_ud, &e) || e < 0)
			*exact = 0, e = 1;
		n *= (double)e;
	}
	return n;
}

/* ---- the page's parts ---- */

static const char css[] =
        "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
        "color:#1d2430;background:#f5f6f8;margin:0;padding:20px 28px}"
        "h1{font-size:22px;margin:0 0 4px}"
        "h2{font-size:17px;margin:0 0 10px;padding-bottom:4px;border-bottom:1px solid #dde1e7}"
        ".sub{color:#5a6472;margin-bottom:14px}"
        "section{background:#fff;border:1px solid #dde1e7;border-radius:8px;"
        "padding:14px 18px;margin:0 0 16px}"
        ".cards{display:flex;gap:12px;flex-wrap:wrap;margin:0 0 16px}"
        ".card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px 14px;"
        "min-width:150px}"
        ".card b{display:block;font-size:18px}.card span{color:#5a6472;font-size:12px}"
        ".bad{color:#c62828;font-weight:600}.good{color:#2b7a3d;font-weight:600}"
        ".chip{display:inline-block;color:#fff;border-radius:4px;padding:0 6px;margin-right:3px;"
        "font-size:12px;font-weight:600}"
        ".legend{display:flex;gap:16px;flex-wrap:wrap;margin:0 0 10px;font-size:13px}"
        ".sw{display:inline-block;width:14px;height:14px;border-radius:3px;"
        "vertical-align:-2px;margin-right:5px;border:1px solid rgba(0,0,0,.15)}"
        ".mesh{display:inline-grid;gap:6px;align-items:center}"
        ".mesh .h{font-size:12px;font-weight:600;text-align:center;padding:2px 4px}"
        ".rank{border:1px solid #b8c2d0;border-radius:6px;background:#eef3fb;padding:6px 10px;"
        "text-align:center;min-width:70px}"
        ".rank b{display:block}.rank span{font-size:11px;color:#5a6472}"
        ".layers{display:flex;flex-wrap:wrap;gap:10px}"
        ".layer{border:1px solid #dde1e7;border-radius:6px;padding:6px 8px;width:300px;"
        "background:#fbfcfd}"
        ".layer.same{border-color:#9fb6d8;background:#f3f7fd}"
        ".w .sz{margin-left:auto;color:#5a6472;font-variant-numeric:tabular-nums}"
        ".nm{overflow:hidden;text-overflow:ellipsis}"
        "#decisions td{white-space:nowrap}#decisions td:last-child{white-space:normal}"
        ".layer h3{font-size:13px;margin:0 0 4px}.layer h3 span{display:block;font-weight:400;"
        "color:#5a6472;font-size:11px}"
        ".bw{display:inline-block;width:64px;flex:none}"
        ".w{display:flex;align-items:center;gap:6px;font-size:11px;height:15px;"
        "white-space:nowrap;overflow:hidden}"
        ".bar{display:inline-flex;height:10px;flex:none;border-radius:2px;overflow:hidden;"
        "border:1px solid rgba(0,0,0,.12)}"
        ".bar i{display:block;height:100%;flex:1}"
        "table{border-collapse:collapse;font-size:13px}"
        "th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #eceff3}"
        "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
        ".scroll{max-height:420px;overflow:auto;margin-top:8px}"
        "code{font-size:12px}"
        "svg text{font:12px system-ui,sans-serif;fill:#1d2430}";

static void
section_mesh(buf *b, const prop_mesh *m)
{
	int64_t cols = m->sizes[m->n_axes - 1], rows = m->world / cols, co[PROP_MAX_AXES];
	int64_t shown_rows = rows > 64 ? 64 : rows;
	uint32_t last = m->n_axes - 1;

	puts_(b, "<section id=\"mesh\"><h2>Mesh</h2><div class=\"legend\">");
	for (uint32_t a = 0; a < m->n_axes; a++) {
		putf(b, "<span><span class=\"sw\" style=\"background:%s\"></span>", axis_colour[a]);
		esc(b, m->names[a]);
		putf(b, " = %lld%s</span>", (long long)m->sizes[a],
		     a == last       ? " (columns)"
		     : m->n_axes > 1 ? " (rows)"
		                     : "");
	}
	putf(b, "<span>%lld ranks, row-major</span></div>", (long long)m->world);
	putf(b,
	     "<div class=\"mesh\" style=\"grid-template-columns:auto "
	     "repeat(%lld,minmax(70px,1fr))\">",
	     (long long)(cols > 64 ? 64 : cols));
	puts_(b, "<div></div>");
	for (int64_t j = 0; j < cols && j < 64; j++) {
		putf(b, "<div class=\"h\" style=\"color:%s\">", axis_colour[last]);
		esc(b, m->names[last]);
		putf(b, "=%lld</div>", (long long)j);
	}
	for (int64_t i = 0; i < shown_rows; i++) {
		prop_mesh_coords(m, i * cols, co);
		puts_(b, "<div class=\"h\">");
		for (uint32_t a = 0; a + 1 < m->n_axes; a++) {
			putf(b, "<span style=\"color:%s\">", axis_colour[a]);
			esc(b, m->names[a]);
			putf(b, "=%lld</span> ", (long long)co[a]);
		}
		puts_(b, "</div>");
		for (int64_t j = 0; j < cols && j < 64; j++) {
			int64_t r = i * cols + j;
			prop_mesh_coords(m, r, co);
			putf(b, "<div class=\"rank\"><b>rank %lld</b><span>(", (long long)r);
			for (uint32_t a = 0; a < m->n_axes; a++)
				putf(b, "%s%lld", a ? ", " : "", (long long)co[a]);
			puts_(b, ")</span></div>");
		}
	}
	puts_(b, "</div>");
	if (shown_rows < rows || cols > 64)
		puts_(b, "<p>(the first 64 rows and columns of ranks shown)</p>");
	puts_(b, "</section>");
}

/* A weight and its layer. */
typedef struct {
	uint32_t v;
	int64_t key;       /* order of its group */
	const char *label; /* the group's name (a prefix of a name: label_n bytes) */
	size_t label_n;
	const char *rest; /* the name after the layer number, or the whole name */
	int small;        /* a constant: a scalar, or at most 64 non-float elements
	                   * (a Reshape's target): one summary row a card */
} weight;

/* Whether initializer v is a small constant rather than a weight. */
static int
is_small(ir_graph *g, const prop_plan *p, uint32_t v)
{
	const ir_value *x = &g->values[v];
	int ex = 1, fl = 0;
	double elems = value_bytes(g, p, v, &ex) * 8 /
	               (onnx_dtype_bits(x->dtype) ? onnx_dtype_bits(x->dtype) : 8);

	switch (x->dtype) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: fl = 1; break;
	default: break;
	}
	return x->rank == 0 || (!fl && elems <= 64);
}

/* The first all-digit component of s (split at '.' and '/'), or -1; *after
 * points past it. */
static int64_t
layer_number(const char *s, const char **after)
{
	const char *p = s;

	while (*p) {
		size_t n = strcspn(p, "./");
		if (n && n <= 9 && strspn(p, "0123456789") == n) {
			*after = p[n] ? p + n + 1 : p + n;
			return strtoll(p, NULL, 10);
		}
		p += n;
		if (*p)
			p++;
	}
	return -1;
}

static int
weight_cmp(const void *x, const void *y)
{
	const weight *a = x, *b = y;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->small != b->small)
		return a->small - b->small; /* constants after the weights */
	return a->v < b->v ? -1 : a->v > b->v;
}

/* The end of the layer that starts at w[i] (weights sorted by layer). */
static uint32_t
layer_end(const weight *w, uint32_t n, uint32_t i)
{
	uint32_t e = i;

	while (e < n && w[e].key == w[i].key)
		e++;
	return e;
}

/* Whether layers w[i..e) and w[j..f) hold the same weights: in order, the
 * same dtype, shape and sharding (names aside: a layer's names differ;
 * small constants aside: a layer may hold those the others share). */
static int
same_layer(ir_graph *g, const prop_plan *p, const weight *w, uint32_t i, uint32_t e, uint32_t j,
           uint32_t f)
{
	while (e > i && w[e - 1].small) /* constants (sorted last) aside */
		e--;
	while (f > j && w[f - 1].small)
		f--;
	if (e - i != f - j)
		return 0;
	for (uint32_t k = 0; k < e - i; k++) {
		const ir_value *x = &g->values[w[i + k].v], *y = &g->values[w[j + k].v];
		if (x->dtype != y->dtype || x->rank != y->rank ||
		    !prop_shard_eq(&p->have[w[i + k].v], &p->have[w[j + k].v]))
			return 0;
		for (int32_t d = 0; d < x->rank; d++)
			if (!ir_dim_eq(x->dims[d], y->dims[d]))
				return 0;
	}
	(void)g;
	return 1;
}

/* A value's sharding as text: [data, -, model+data], "partial(model)" appended. */
static void
shard_text(buf *b, const prop_mesh *m, const prop_shard *s)
{
	puts_(b, "[");
	for (int32_t d = 0; d < s->rank; d++) {
		puts_(b, d ? ", " : "");
		if (!s->dims[d].n)
			puts_(b, "-");
		for (uint8_t k = 0; k < s->dims[d].n; k++) {
			puts_(b, k ? "+" : "");
			esc(b, m->names[s->dims[d].ax[k]]);
		}
	}
	puts_(b, "]");
	for (uint32_t a = 0; a < m->n_axes; a++)
		if (s->partial & (1u << a)) {
			puts_(b, " partial(");
			esc(b, m->names[a]);
			puts_(b, ")");
		}
}

/* A value's shape, --dim bindings applied ("?" where unbound). */
static void
shape_text(buf *b, ir_graph *g, const prop_plan *p, const ir_value *x)
{
	puts_(b, "[");
	for (int32_t d = 0; d < x->rank; d++) {
		int64_t e;
		if (d)
			puts_(b, ", ");
		if (!ir_dim_eval(g, x->dims[d], p->bind, p->bind_ud, &e))
			putf(b, "%lld", (long long)e);
		else
			esc(b, ir_dim_str(g, x->dims[d]));
	}
	puts_(b, "]");
}

/* A bar of the axes of mask, grey when none, len pixels wide. */
static void
axes_bar(buf *b, const prop_mesh *m, uint8_t mask, double len)
{
	putf(b, "<span class=\"bar\" style=\"width:%.0fpx\">", len);
	if (!mask)
		puts_(b, "<i style=\"background:" REPL_COLOUR "\"></i>");
	for (uint32_t a = 0; a < m->n_axes; a++)
		if (mask & (1u << a))
			putf(b, "<i style=\"background:%s\"></i>", axis_colour[a]);
	puts_(b, "</span>");
}

/* One weight of a layer card: bar, name, size; the title has shape and
 * sharding. */
static void
weight_row(buf *b, ir_graph *g, const prop_plan *p, const weight *wt, double maxb)
{
	const prop_shard *s = &p->have[wt->v];
	const ir_value *x = &g->values[wt->v];
	int ex = 1;
	double by = value_bytes(g, p, wt->v, &ex);
	char bs[32];

	fmt_bytes(bs, sizeof bs, by);
	puts_(b, "<div class=\"w\" title=\"");
	esc(b, ir_cstr(g, x->name));
	puts_(b, " ");
	shape_text(b, g, p, x);
	puts_(b, " sharding ");
	shard_text(b, p->mesh, s);
	putf(b, " %s\"><span class=\"bw\">", bs);
	axes_bar(b, p->mesh, prop_shard_axes(s) | s->partial, 6 + 56 * __builtin_sqrt(by / maxb));
	puts_(b, "</span><span class=\"nm\">");
	esc_short(b, wt->rest, 30);
	putf(b, "</span><span class=\"sz\">%s</span></div>", bs);
}

static int
section_layers(buf *b, ir_graph *g, const prop_plan *p)
{
	const prop_mesh *m = p->mesh;
	uint32_t n = 0, *first_use;
	weight *w;
	double maxb = 1;
	int64_t min_use = INT64_MAX, layered = 0;

	for (uint32_t v = 0; v < g->n_values; v++)
		n += g->values[v].kind == IR_V_INIT;
	if (!(first_use = shd_calloc(g->ctx, g->n_values + 1, sizeof *first_use)) ||
	    !(w = shd_calloc(g->ctx, n + 1, sizeof *w))) {
		shd_free(g->ctx, first_use, ((size_t)g->n_values + 1) * sizeof *first_use);
		return 1;
	}
	for (uint32_t v = 0; v < g->n_values; v++)
		first_use[v] = UINT32_MAX;
	for (uint32_t i = g->n_nodes; i-- > 0;)
		for (uint32_t k = 0; k < g->nodes[i].n_in; k++) {
			uint32_t v = ir_in(g, &g->nodes[i], k);
			if (v != IR_NONE)
				first_use[v] = i;
		}
	/* the layer of each weight: its name's number, else its first consumer's */
	n = 0;
	for (uint32_t v = 0; v < g->n_values; v++) {
		if (g->values[v].kind != IR_V_INIT)
			continue;
		const char *name = ir_cstr(g, g->values[v].name), *after = name;
		int64_t l = layer_number(name, &after);
		if (l < 0 && first_use[v] != UINT32_MAX) {
			const char *dummy;
			l = layer_number(ir_cstr(g, g->nodes[first_use[v]].name), &dummy);
			after = name;
		}
		int ex = 1;
		double by = value_bytes(g, p, v, &ex);
		maxb = by > maxb ? by : maxb;
		w[n] = (weight){v, l, NULL, 0, after, is_small(g, p, v)};
		if (l >= 0) {
			layered++;
			if (first_use[v] != UINT32_MAX && first_use[v] < min_use)
				min_use = first_use[v];
		}
		n++;
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *name = ir_cstr(g, g->values[w[i].v].name);
		if (!layered) { /* no numbered layers: group by the first component */
			size_t len = strcspn(name, "./");
			w[i].key = 0;
			for (uint32_t j = 0; j < i; j++)
				if (w[j].label_n == len && !strncmp(w[j].label, name, len)) {
					w[i].key = w[j].key;
					break;
				} else {
					w[i].key = (int64_t)j + 1;
				}
			w[i].label = name;
			w[i].label_n = len ? len : strlen(name);
		} else if (w[i].key < 0) {
			int before = first_use[w[i].v] != UINT32_MAX && first_use[w[i].v] < min_use;
			w[i].key = before ? -1 : INT64_MAX;
			w[i].label = before ? "embeddings" : "head";
		}
	}
	qsort(w, n, sizeof *w, weight_cmp);

	puts_(b, "<section id=\"layers\"><h2>Weights by layer</h2><div class=\"legend\">");
	for (uint32_t a = 0; a < m->n_axes; a++) {
		putf(b, "<span><span class=\"sw\" style=\"background:%s\"></span>split over ",
		     axis_colour[a]);
		esc(b, m->names[a]);
		puts_(b, "</span>");
	}
	puts_(b, "<span><span class=\"sw\" style=\"background:" REPL_COLOUR
	         "\"></span>replicated</span>"
	         "<span>bar length: size (square-root scale), the size at the right; hover for "
	         "the name, shape and sharding; identical layers in one card</span></div>"
	         "<div class=\"layers\">");
	for (uint32_t i = 0; i < n;) {
		uint32_t e = layer_end(w, n, i), last = e, runs = 1;
		int64_t key_last = w[i].key;
		/* the numbered layers after it that are the same: one card */
		while (!w[i].label && last < n && !w[last].label) {
			uint32_t e2 = layer_end(w, n, last);
			if (!same_layer(g, p, w, i, e, last, e2))
				break;
			key_last = w[last].key;
			last = e2;
			runs++;
		}
		uint32_t split = 0, n_small = 0;
		double by = 0, small_by = 0;
		for (uint32_t j = i; j < e; j++) {
			int ex = 1;
			double x = value_bytes(g, p, w[j].v, &ex);
			split += !prop_is_replicated(&p->have[w[j].v]);
			by += x;
			n_small += w[j].small;
			small_by += w[j].small ? x : 0;
		}
		char bs[32];
		fmt_bytes(bs, sizeof bs, by);
		puts_(b, i ? "</div>" : "");
		puts_(b, runs > 1 ? "<div class=\"layer same\"><h3>" : "<div class=\"layer\"><h3>");
		if (w[i].label)
			esc_n(b, w[i].label, w[i].label_n ? w[i].label_n : strlen(w[i].label));
		else if (runs > 1)
			putf(b, "layers %lld-%lld: identical", (long long)w[i].key,
			     (long long)key_last);
		else
			putf(b, "layer %lld", (long long)w[i].key);
		putf(b, "<span>%s%u weight%s, %u split, %s</span></h3>", runs > 1 ? "each: " : "",
		     e - i - n_small, e - i - n_small == 1 ? "" : "s", split, bs);
		for (uint32_t j = i; j < e; j++)
			if (!w[j].small)
				weight_row(b, g, p, &w[j], maxb);
		if (n_small) {
			fmt_bytes(bs, sizeof bs, small_by);
			putf(b,
			     "<div class=\"w\"><span class=\"bw\"></span><span class=\"nm\">%u "
			     "small "
			     "constant%s (shapes, scalars)</span><span "
			     "class=\"sz\">%s</span></div>",
			     n_small, n_small == 1 ? "" : "s", bs);
		}
		i = last;
	}
	puts_(b, n ? "</div></div></section>" : "<p>The model has no weights.</p></div></section>");
	shd_free(g->ctx, w, ((size_t)n + 1) * sizeof *w);
	shd_free(g->ctx, first_use, ((size_t)g->n_values + 1) * sizeof *first_use);
	return 0;
}

/* What the plan decided (plan.decisions_made, api/decisions.c): one row a
 * decision group. */
static void
section_decisions(buf *b, const prop_mesh *m, json_t *plan)
{
	json_t *arr = json_object_get(plan, "decisions_made"), *e, *ax;
	size_t i, j;

	puts_(b, "<section id=\"decisions\"><h2>Decisions</h2>");
	if (!json_array_size(arr)) {
		puts_(b,
		      "<p>No decision: no dim of a weight or graph input can split.</p></section>");
		return;
	}
	puts_(b, "<p>Each row is a group of dims that split alike (one per identical layer), "
	         "named by what it holds.</p><table><tr><th>decision</th><th class=\"n\">size</th>"
	         "<th class=\"n\">tensors</th><th>e.g.</th><th>axes</th><th>why</th></tr>");
	json_array_foreach(arr, i, e)
	{
		json_t *size = json_object_get(e, "size");
		long long heads = json_integer_value(json_object_get(e, "heads"));
		puts_(b, "<tr><td>");
		esc(b, json_string_value(json_object_get(e, "name")));
		puts_(b, "</td><td class=\"n\">");
		if (json_is_integer(size)) {
			putf(b, "%lld", (long long)json_integer_value(size));
			long long pieces = json_integer_value(json_object_get(e, "pieces"));
			if (heads && pieces > 1)
				putf(b, " (%lld &times; %lld &times; %lld)", pieces, heads,
				     (long long)json_integer_value(size) / pieces / heads);
			else if (heads)
				putf(b, " (%lld &times; %lld)", heads,
				     (long long)json_integer_value(size) / heads);
		} else {
			esc(b, json_string_value(size));
		}
		putf(b, "</td><td class=\"n\">%lld</td><td><code>",
		     (long long)json_integer_value(json_object_get(e, "tensors")));
		esc_short(b, json_string_value(json_object_get(e, "tensor")), 48);
		putf(b, "[%lld]</code></td><td>",
		     (long long)json_integer_value(json_object_get(e, "dim")));
		if (!json_array_size(json_object_get(e, "axes")))
			puts_(b, "<span class=\"chip\" style=\"background:#8a93a0\">whole</span>");
		json_array_foreach(json_object_get(e, "axes"), j, ax)
		{
			int a = prop_mesh_axis(m, json_string_value(ax));
			if (a >= 0)
				axis_chip(b, m, (uint32_t)a);
		}
		puts_(b, "</td><td>");
		if (json_integer_value(json_object_get(e, "padded")))
			putf(b, "padded to %lld; ",
			     (long long)json_integer_value(json_object_get(e, "padded")));
		esc(b, json_string_value(json_object_get(e, "as")));
		if (json_string_value(json_object_get(e, "as")) &&
		    json_string_value(json_object_get(e, "why")))
			puts_(b, "; ");
		esc(b, json_string_value(json_object_get(e, "why")));
		puts_(b, "</td></tr>");
	}
	puts_(b, "</table></section>");
}

/* One row of the values table: name, dtype, shape, sharding, bytes whole
 * and per rank. */
static void
value_row(buf *b, ir_graph *g, const prop_plan *p, uint32_t v, const prop_shard *s,
          const char *what)
{
	const ir_value *x = &g->values[v];
	const char *dt = onnx_dtype_name(x->dtype);
	int ex = 1;
	double by = value_bytes(g, p, v, &ex), per = by;
	char bs[32], ps[32];

	for (int32_t d = 0; d < s->rank; d++)
		per /= (double)prop_axes_size(p->mesh, s->dims[d].ax, s->dims[d].n);
	fmt_bytes(bs, sizeof bs, by);
	fmt_bytes(ps, sizeof ps, per);
	putf(b, "<tr><td>%s</td><td><code>", what);
	esc_short(b, ir_cstr(g, x->name), 60);
	puts_(b, "</code></td><td>");
	esc(b, dt ? dt : "?");
	puts_(b, "</td><td><code>");
	shape_text(b, g, p, x);
	puts_(b, "</code></td><td>");
	axes_bar(b, p->mesh, prop_shard_axes(s) | s->partial, 24);
	puts_(b, " <code>");
	shard_text(b, p->mesh, s);
	putf(b, "</code></td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>", bs, ps);
}

#define TOP_ACTIVATIONS 12

/* Graph inputs and outputs, each; activations (values computed by nodes)
 * by the axes that split them, and the largest ones. */
static int
section_values(buf *b, ir_graph *g, const prop_plan *p)
{
	const prop_mesh *m = p->mesh;
	double tot[256] = {0};
	uint32_t cnt[256] = {0}, top[TOP_ACTIVATIONS], n_top = 0, n_act = 0;
	double top_by[TOP_ACTIVATIONS];
	char bs[32];

	puts_(b, "<section id=\"values\"><h2>Activations, graph inputs and outputs</h2>"
	         "<table><tr><th></th><th>value</th><th>dtype</th><th>shape</th><th>sharding</th>"
	         "<th class=\"n\">bytes</th><th class=\"n\">per rank</th></tr>");
	for (uint32_t i = 0; i < g->n_inputs; i++)
		value_row(b, g, p, g->inputs[i], &p->have[g->inputs[i]], "input");
	for (uint32_t i = 0; i < g->n_outputs; i++) {
		uint32_t v = g->outputs[i];
		prop_dim fd[IR_MAX_RANK];
		prop_shard s = {0, fd, 0};
		prop_output_shard(g, p, i, &s); /* lifting refused ranks above IR_MAX_RANK */
		value_row(b, g, p, v, &s, "output");
	}
	puts_(b, "</table>");
	for (uint32_t v = 0; v < g->n_values; v++) {
		const prop_shard *s = &p->have[v];
		if (g->values[v].kind != IR_V_NODE || g->values[v].rank < 0)
			continue;
		int ex = 1;
		double by = value_bytes(g, p, v, &ex);
		uint8_t mask = prop_shard_axes(s) | s->partial;
		n_act++;
		cnt[mask]++;
		tot[mask] += by;
		/* the largest, kept sorted */
		uint32_t k = n_top < TOP_ACTIVATIONS ? n_top++ : TOP_ACTIVATIONS;
		if (k == TOP_ACTIVATIONS && by <= top_by[k - 1])
			continue;
		if (k == TOP_ACTIVATIONS)
			k--;
		while (k > 0 && top_by[k - 1] < by) {
			top[k] = top[k - 1], top_by[k] = top_by[k - 1];
			k--;
		}
		top[k] = v, top_by[k] = by;
	}
	putf(b,
	     "<p>%u activations (values computed by nodes), by the mesh axes that split them "
	     "(or hold a pending sum):</p><table><tr><th>split over</th><th class=\"n\">values</th>"
	     "<th class=\"n\">bytes, whole</th></tr>",
	     n_act);
	for (int mask = 0; mask < 256; mask++) {
		if (!cnt[mask])
			continue;
		puts_(b, "<tr><td>");
		axes_bar(b, m, (uint8_t)mask, 24);
		if (!mask)
			puts_(b, " replicated");
		for (uint32_t a = 0, k = 0; a < m->n_axes; a++)
			if (mask & (1 << a)) {
				puts_(b, k++ ? "+" : " ");
				esc(b, m->names[a]);
			}
		fmt_bytes(bs, sizeof bs, tot[mask]);
		putf(b, "</td><td class=\"n\">%u</td><td class=\"n\">%s</td></tr>", cnt[mask], bs);
	}
	puts_(b, "</table>");
	if (n_top) {
		putf(b,
		     "<details><summary>the %u largest activations</summary><table><tr><th></th>"
		     "<th>value</th><th>dtype</th><th>shape</th><th>sharding</th><th "
		     "class=\"n\">bytes</th><th class=\"n\">per rank</th></tr>",
		     n_top);
		for (uint32_t i = 0; i < n_top; i++)
			value_row(b, g, p, top[i], &p->have[top[i]], "");
		puts_(b, "</table></details>");
	}
	puts_(b, "</section>");
	return 0;
}

static const char *const step_name[] = {"AllReduce", "ReduceScatter", "AllGather",
                                        "AllToAll",  "Slice",         "Mask"};

static int
section_collectives(buf *b, ir_graph *g, const prop_plan *p, json_t *plan)
{
	const prop_mesh *m = p->mesh;
	uint8_t *seen = shd_calloc(g->ctx, p->n_reshards + 1, 1);
	/* totals by op (4 communicating kinds) and axes mask */
	double tot[4][256] = {{0}};
	uint32_t cnt[4][256] = {{0}}, n = 0, local = 0;
	int exact = 1;

	if (!seen)
		return 1;
	for (uint32_t i = 0; i < p->n_reshards; i++) {
		const prop_reshard *rs = &p->reshards[i];
		if (seen[rs->id])
			continue;
		seen[rs->id] = 1;
		double by = value_bytes(g, p, rs->value, &exact);
		for (uint32_t k = 0; k < rs->n; k++) {
			const prop_step *s = &p->steps[rs->first + k];
			uint8_t mask = 0;
			for (uint8_t j = 0; j < s->n_axes; j++)
				mask |= (uint8_t)(1u << s->ax[j]);
			if (s->kind > PROP_ALLTOALL) {
				local++;
				continue;
			}
			tot[s->kind][mask] += by;
			cnt[s->kind][mask]++;
			n++;
		}
	}
	char bs[32];
	puts_(b, "<section id=\"collectives\"><h2>Collectives</h2>");
	fmt_bytes(bs, sizeof bs, jnum(plan, "comm_bytes"));
	putf(b, "<p>%u collective%s; each rank sends %s per step", n, n == 1 ? "" : "s", bs);
	const char *kname;
	json_t *kv;
	int first = 1;
	json_object_foreach(json_object_get(plan, "comm_bytes_by_kind"), kname, kv)
	{
		fmt_bytes(bs, sizeof bs, (double)json_integer_value(kv));
		puts_(b, first ? " (" : ", ");
		esc(b, kname);
		putf(b, " %s", bs);
		first = 0;
	}
	putf(b, "%s.</p>", first ? "" : ")");
	if (local)
		putf(b, "<p>%u local reshard step%s (Slice, Mask): no data moves.</p>", local,
		     local == 1 ? "" : "s");
	if (!n) {
		puts_(b, "<p>No collective: every operand already has the layout its consumer "
		         "needs.</p></section>");
		shd_free(g->ctx, seen, p->n_reshards + 1);
		return 0;
	}
	puts_(b, "<table><tr><th>collective</th><th>mesh axes</th><th class=\"n\">count</th>"
	         "<th class=\"n\">tensor bytes</th></tr>");
	for (int k = 0; k < 4; k++)
		for (int mask = 1; mask < 256; mask++) {
			if (!cnt[k][mask])
				continue;
			putf(b, "<tr><td>%s</td><td>", step_name[k]);
			for (uint32_t a = 0; a < m->n_axes; a++)
				if (mask & (1 << a))
					axis_chip(b, m, a);
			fmt_bytes(bs, sizeof bs, tot[k][mask]);
			putf(b, "</td><td class=\"n\">%u</td><td class=\"n\">%s</td></tr>",
			     cnt[k][mask], bs);
		}
	puts_(b, "</table>");
	putf(b,
	     "<details open><summary>every collective (%u)%s</summary><div class=\"scroll\">"
	     "<table><tr><th class=\"n\">#</th><th>collective</th><th>mesh axes</th>"
	     "<th>value</th><th class=\"n\">tensor bytes</th></tr>",
	     n, exact ? "" : "; unbound dims counted as 1");
	memset(seen, 0, p->n_reshards + 1);
	uint32_t row = 0;
	for (uint32_t i = 0; i < p->n_reshards; i++) {
		const prop_reshard *rs = &p->reshards[i];
		if (seen[rs->id])
			continue;
		seen[rs->id] = 1;
		int ex = 1;
		fmt_bytes(bs, sizeof bs, value_bytes(g, p, rs->value, &ex));
		for (uint32_t k = 0; k < rs->n; k++) {
			const prop_step *s = &p->steps[rs->first + k];
			if (s->kind > PROP_ALLTOALL)
				continue;
			putf(b, "<tr><td class=\"n\">%u</td><td>%s</td><td>", ++row,
			     step_name[s->kind]);
			for (uint8_t j = 0; j < s->n_axes; j++)
				axis_chip(b, m, s->ax[j]);
			puts_(b, "</td><td><code>");
			esc_short(b, ir_cstr(g, g->values[rs->value].name), 80);
			putf(b, "</code></td><td class=\"n\">%s</td></tr>", bs);
		}
	}
	puts_(b, "</table></div></details></section>");
	shd_free(g->ctx, seen, p->n_reshards + 1);
	return 0;
}

static void
section_memory(buf *b, const search_hw *hw, const search_cost *sc, json_t *plan)
{
	json_t *mem = json_object_get(plan, "peak_memory_bytes");
	size_t nr = json_array_size(mem), shown = nr > 64 ? 64 : nr;
	double top = hw->mem_cap, maxpeak = 0, x0 = 90, width = 780, rowh = 26;
	char bs[32], cs[32];

	for (size_t r = 0; r < nr; r++) {
		double v = (double)json_integer_value(json_array_get(mem, r));
		maxpeak = v > maxpeak ? v : maxpeak;
	}
	top = (maxpeak > top ? maxpeak : top) * 1.04;
	fmt_bytes(cs, sizeof cs, hw->mem_cap);
	puts_(b, "<section id=\"memory\"><h2>Peak memory per rank</h2><div class=\"legend\">"
	         "<span><span class=\"sw\" style=\"background:#4e79a7\"></span>parameters</span>"
	         "<span><span class=\"sw\" style=\"background:#59a14f\"></span>activations "
	         "(peak)</span>"
	         "<span><span class=\"sw\" style=\"background:#b07aa1\"></span>inputs and "
	         "outputs</span>"
	         "<span><span class=\"sw\" style=\"background:#c62828\"></span>capacity: ");
	esc(b, cs);
	puts_(b, " per device (");
	esc(b, hw->name);
	puts_(b, ")</span></div>");
	/* against the capacity; then, when the ranks use little of it, zoomed */
	for (int zoom = 0; zoom < 2; zoom++) {
		if (zoom) {
			if (maxpeak <= 0 || maxpeak >= 0.1 * hw->mem_cap)
				break;
			top = maxpeak * 1.04;
			puts_(b, "<p>The same, zoomed to the largest rank (capacity off the "
			         "scale):</p>");
		}
		putf(b,
		     "<svg width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"peak memory\">",
		     x0 + width + 230, rowh * (double)shown + 30);
		for (size_t r = 0; r < shown; r++) {
			double peak = (double)json_integer_value(json_array_get(mem, r));
			double act = (double)sc->act_peak_bytes, io = (double)sc->io_bytes;
			double par = peak - act - io;
			double y = 8 + rowh * (double)r, x = x0;
			par = par < 0 ? 0 : par;
			putf(b, "<text x=\"0\" y=\"%.0f\">rank %zu</text>", y + 14, r);
			putf(b,
			     "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"18\" "
			     "fill=\"#f0f2f5\"/>",
			     x0, y, width * (zoom ? maxpeak : hw->mem_cap) / top);
			const double part[3] = {par, act, io};
			static const char *const col[3] = {"#4e79a7", "#59a14f", "#b07aa1"};
			for (int k = 0; k < 3; k++) {
				double wd = width * part[k] / top;
				if (part[k] > 0 && wd < 1.5)
					wd = 1.5; /* visible, however small against the device */
				putf(b,
				     "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"18\" "
				     "fill=\"%s\"/>",
				     x, y, wd, col[k]);
				x += wd;
			}
			fmt_bytes(bs, sizeof bs, peak);
			putf(b, "<text x=\"%.0f\" y=\"%.0f\">%s (%.2g%% of capacity)%s</text>",
			     x0 + width + 8 > x + 6 ? x0 + width + 8 : x + 6, y + 14, bs,
			     100 * peak / hw->mem_cap, peak > hw->mem_cap ? " does not fit" : "");
		}
		double cx = x0 + width * hw->mem_cap / top;
		if (zoom) {
			puts_(b, "</svg>");
			continue;
		}
		putf(b,
		     "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"2\" y2=\"%.0f\" stroke=\"#c62828\" "
		     "stroke-width=\"2\" stroke-dasharray=\"5 3\"/>",
		     cx, cx, rowh * (double)shown + 12);
		putf(b,
		     "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"end\" "
		     "style=\"fill:#c62828\">capacity ",
		     cx, rowh * (double)shown + 26);
		esc(b, cs);
		puts_(b, "</text></svg>");
	}
	if (shown < nr)
		putf(b, "<p>(the first 64 of %zu ranks shown)</p>", nr);
	fmt_bytes(bs, sizeof bs, (double)sc->act_peak_bytes);
	putf(b, "<p>On the slowest rank: parameters ");
	fmt_bytes(cs, sizeof cs, (double)sc->param_bytes);
	putf(b, "%s, activations at their peak %s, ", cs, bs);
	fmt_bytes(bs, sizeof bs, (double)sc->io_bytes);
	putf(b, "inputs and outputs %s.</p></section>", bs);
}

static void
time_row(buf *b, const char *label, json_t *c, double top, double y, int is_plan)
{
	double x0 = 230, width = 600, comp = jnum(c, "compute_s"), comm = jnum(c, "comm_s");
	double wc = top > 0 ? width * comp / top : 0, wm = top > 0 ? width * comm / top : 0;
	char s1[32], s2[32], s3[32];

	fmt_secs(s1, sizeof s1, jnum(c, "step_time_s"));
	fmt_secs(s2, sizeof s2, comp);
	fmt_secs(s3, sizeof s3, comm);
	putf(b, "<text x=\"0\" y=\"%.0f\"%s>", y + 15, is_plan ? " style=\"font-weight:700\"" : "");
	esc(b, label);
	puts_(b, "</text>");
	putf(b,
	     "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"20\" fill=\"" COMPUTE_COLOUR
	     "\"/>",
	     x0, y, wc);
	putf(b,
	     "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"20\" fill=\"" COMM_COLOUR "\"/>",
	     x0 + wc, y, wm);
	putf(b, "<text x=\"%.1f\" y=\"%.0f\">%s = %s compute + %s comm%s</text>", x0 + wc + wm + 8,
	     y + 15, s1, s2, s3,
	     json_is_true(json_object_get(c, "fits")) ? "" : " \xe2\x80\x94 does not fit");
}

static void
section_time(buf *b, json_t *plan, const char *strategy)
{
	json_t *base = json_object_get(plan, "baselines"), *v;
	const char *name;
	double top = jnum(plan, "step_time_s"), y = 8;
	size_t rows = 1 + json_object_size(base);

	json_object_foreach(base, name, v)
	{
		double t = jnum(v, "step_time_s");
		top = t > top ? t : top;
	}
	puts_(b, "<section id=\"time\"><h2>Step time: this plan and the baselines</h2>"
	         "<div class=\"legend\"><span><span class=\"sw\" style=\"background:" COMPUTE_COLOUR
	         "\"></span>compute</span><span><span class=\"sw\" style=\"background:" COMM_COLOUR
	         "\"></span>communication</span><span>one forward step of the slowest rank, "
	         "simulated</span></div>");
	putf(b, "<svg width=\"1120\" height=\"%.0f\" role=\"img\" aria-label=\"step time\">",
	     34.0 * (double)rows + 10);
	char label[96];
	snprintf(label, sizeof label, "this plan (%.24s%s)", strategy,
	         strlen(strategy) > 24 ? "\xe2\x80\xa6" : "");
	time_row(b, label, plan, top, y, 1);
	json_object_foreach(base, name, v)
	{
		y += 34;
		snprintf(label, sizeof label, "baseline %.60s", name);
		time_row(b, label, v, top, y, 0);
	}
	puts_(b, "</svg>");
	if (!json_object_size(base))
		puts_(b, "<p>No baseline applies: the mesh has neither a data nor a model "
		         "axis.</p>");
	puts_(b, "</section>");
}

static void
section_replicated(buf *b, json_t *plan)
{
	json_t *repl = json_object_get(plan, "replicated"), *e;
	size_t i;

	if (!json_array_size(repl))
		return;
	puts_(b, "<section id=\"replicated\"><h2>Kept replicated</h2><div class=\"scroll\">"
	         "<table><tr><th>value</th><th>why</th></tr>");
	json_array_foreach(repl, i, e)
	{
		puts_(b, "<tr><td><code>");
		esc_short(b, json_string_value(json_object_get(e, "value")), 80);
		puts_(b, "</code></td><td>");
		esc(b, json_string_value(json_object_get(e, "why")));
		puts_(b, "</td></tr>");
	}
	puts_(b, "</table></div></section>");
}

/* ---- the file ---- */

/* text[0..n) to path, renamed into place whole: a new file of mode 0666
 * under the umask, as fopen(path, "w") would make it. */
static int
write_atomic(shd_ctx *c, const char *path, const char *text, size_t n)
{
	char *tmp;
	int fd, e = 0;

	if (!(tmp = shd_mktemp(c, path, "tmp", &fd))) {
		if (errno == ENOMEM)
			return shd_nomem(c);
		return shd_error(c, ONNXSHARD_EFAIL, "%s: cannot write the report: %s", path,
		                 strerror(errno));
	}
	for (size_t done = 0; done < n && !e;) {
		ssize_t k = write(fd, text + done, n - done);
		if (k < 0 && errno != EINTR)
			e = errno;
		else if (k > 0)
			done += (size_t)k;
	}
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) != 0)
		e = errno;
	if (e)
		unlink(tmp);
	shd_strfree(c, tmp);
	if (e)
		return shd_error(c, ONNXSHARD_EFAIL, "%s: cannot write the report: %s", path,
		                 strerror(e));
	return 0;
}

int
report_html(ir_graph *g, const prop_plan *p, const search_hw *hw, const onnxshard_opts *o,
            json_t *plan, const char *path)
{
	shd_ctx *c = g->ctx;
	buf b = {c, NULL, 0, 0, 0};
	search_cost sc;
	const char *model = strrchr(o->model, '/'), *strategy = o->strategy ? o->strategy : "auto";
	char s1[32], s2[32];
	int rc;

	model = model ? model + 1 : o->model;
	if (search_simulate(g, p, hw, &sc))
		return shd_nomem(c);
	puts_(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	          "<meta name=\"viewport\" content=\"width=device-width\"><title>onnxshard plan: ");
	esc(&b, model);
	puts_(&b, " on ");
	esc(&b, o->mesh);
	putf(&b, "</title><style>%s</style></head><body>\n<h1>Plan: ", css);
	esc(&b, model);
	puts_(&b, " on ");
	esc(&b, o->mesh);
	puts_(&b, "</h1><div class=\"sub\">strategy <b>");
	esc(&b, strategy);
	puts_(&b, "</b> &middot; hardware <b>");
	esc(&b, hw->name);
	putf(&b, "</b> &middot; %lld ranks", (long long)p->mesh->world);
	for (size_t i = 0; i < o->n_dims; i++) {
		puts_(&b, i ? ", " : " &middot; dims ");
		esc(&b, o->dims[i]);
	}
	if (json_string_value(json_object_get(plan, "chose"))) {
		puts_(&b, " &middot; the search kept baseline ");
		esc(&b, json_string_value(json_object_get(plan, "chose")));
	}
	puts_(&b, " &middot; onnxshard " ONNXSHARD_VERSION "</div>\n<div class=\"cards\">");
	fmt_secs(s1, sizeof s1, jnum(plan, "step_time_s"));
	putf(&b, "<div class=\"card\"><span>step time</span><b>%s</b></div>", s1);
	fmt_secs(s1, sizeof s1, jnum(plan, "compute_s"));
	fmt_secs(s2, sizeof s2, jnum(plan, "comm_s"));
	putf(&b, "<div class=\"card\"><span>compute / communication</span><b>%s / %s</b></div>", s1,
	     s2);
	fmt_bytes(s1, sizeof s1, (double)sc.peak_bytes);
	fmt_bytes(s2, sizeof s2, hw->mem_cap);
	putf(&b, "<div class=\"card\"><span>peak memory per rank (of %s)</span><b>%s</b></div>", s2,
	     s1);
	fmt_bytes(s1, sizeof s1, jnum(plan, "comm_bytes"));
	putf(&b, "<div class=\"card\"><span>sent per rank per step</span><b>%s</b></div>", s1);
	putf(&b, "<div class=\"card\"><span>fits the device</span><b class=\"%s\">%s</b></div>",
	     json_is_true(json_object_get(plan, "fits")) ? "good" : "bad",
	     json_is_true(json_object_get(plan, "fits")) ? "yes" : "no");
	puts_(&b, "</div>\n");
	if (!json_is_true(json_object_get(plan, "exact")))
		puts_(&b, "<p class=\"bad\">Some symbolic dims were not bound (--dim): they count "
		          "as 1 in times and sizes.</p>");
	section_mesh(&b, p->mesh);
	puts_(&b, "\n");
	section_decisions(&b, p->mesh, plan);
	puts_(&b, "\n");
	if (section_values(&b, g, p))
		b.bad = 1;
	puts_(&b, "\n");
	if (section_layers(&b, g, p))
		b.bad = 1;
	puts_(&b, "\n");
	if (section_collectives(&b, g, p, plan))
		b.bad = 1;
	puts_(&b, "\n");
	section_memory(&b, hw, &sc, plan);
	puts_(&b, "\n");
	section_time(&b, plan, strategy);
	puts_(&b, "\n");
	section_replicated(&b, plan);
	puts_(&b, "</body></html>\n");
	if (b.bad)
		rc = shd_nomem(c);
	else
		rc = write_atomic(c, path, b.s, b.n);
	shd_free(c, b.s, b.cap);
	return rc;
}
