/* The pipeline, in order:
 *
 *   model.onnx -onnx_load-> ModelProto -ir_lift-> IR (shapes, rules, folded shapes)
 *     -search_apply (tactics, each followed by prop_propagate)-> want[] per value
 *     -prop_materialize-> have[] per value, reshards per operand
 *     -emit_rank x world-> rank{r}.onnx (+ .data)  -manifest-> manifest.json
 *
 * written into a temp dir beside OUT and renamed at the end, so OUT appears
 * whole or not at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/decisions.h"
#include "api/report.h"
#include "api/workers.h"
#include "emit/lower.h"
#include "search/search.h"
#include "core/json.h"

typedef struct {
	const onnxshard_opts *o;
	int64_t *vals;
	size_t n;
} bindings;

static int
bind_dim(void *ud, const char *sym, int64_t *val)
{
	const bindings *b = ud;

	for (size_t i = 0; i < b->n; i++) {
		const char *eq = strchr(b->o->dims[i], '=');
		if (eq && (size_t)(eq - b->o->dims[i]) == strlen(sym) &&
		    !strncmp(b->o->dims[i], sym, strlen(sym))) {
			*val = b->vals[i];
			return 0;
		}
	}
	return 1;
}

static int
parse_dims(shd_ctx *c, const onnxshard_opts *o, ir_graph *g, bindings *b)
{
	b->o = o;
	b->n = o->n_dims;
	if (!(b->vals = shd_calloc(c, o->n_dims + 1, sizeof *b->vals)))
		return shd_nomem(c);
	for (size_t i = 0; i < o->n_dims; i++) {
		const char *d = o->dims[i], *eq = strchr(d, '=');
		char *end;
		if (!eq || eq == d)
			return shd_error(c, ONNXSHARD_EINPUT, "--dim '%s': want NAME=SIZE", d);
		errno = 0;
		long long v = strtoll(eq + 1, &end, 10);
		/* 0 is a size: an empty past is a decoder's first prompt */
		if (errno || *end || end == eq + 1 || v < 0)
			return shd_error(c, ONNXSHARD_EINPUT,
			                 "--dim '%s': size must be an integer >= 0", d);
		b->vals[i] = v;
		/* the name must be a symbolic dim of the model */
		int found = 0;
		for (uint32_t k = 0; k < g->n_values && !found; k++) {
			const ir_value *x = &g->values[k];
			for (int32_t j = 0; j < x->rank && !found; j++) {
				ir_str syms[8];
				uint32_t ns = ir_dim_syms(g, x->dims[j], syms, 8);
				for (uint32_t s = 0; s < ns; s++)
					found |= strlen(ir_cstr(g, syms[s])) == (size_t)(eq - d) &&
					         !strncmp(ir_cstr(g, syms[s]), d, (size_t)(eq - d));
			}
		}
		if (!found)
			return shd_error(c, ONNXSHARD_EINPUT,
			                 "--dim '%s': the model has no symbolic dim '%.*s'", d,
			                 (int)(eq - d), d);
	}
	return 0;
}

/* With --collectives ort, a plan ONNX Runtime's collectives cannot run is
 * refused (bad input) before anything is written: plan and shard agree. */
static int
ort_runs(ir_graph *g, const prop_plan *p, int ort)
{
	char buf[160];
	const char *why = ort ? emit_ort_why(g, p, buf, sizeof buf) : NULL;

	return why ? shd_error(g->ctx, ONNXSHARD_EINPUT, "%s", why) : 0;
}

/* One warning line on log for the symbolic dims that no --dim binds: the
 * plan counts them as 1, so its times and sizes mean little. */
static int
warn_unbound(ir_graph *g, const bindings *b, FILE *log)
{
	ir_str *seen = shd_calloc(g->ctx, 64, sizeof *seen);
	uint32_t n = 0, more = 0;

	if (!seen)
		return shd_nomem(g->ctx);
	for (uint32_t k = 0; k < g->n_values; k++) {
		const ir_value *x = &g->values[k];
		for (int32_t j = 0; j < x->rank; j++) {
			ir_str syms[8];
			int64_t val;
			uint32_t ns = ir_dim_syms(g, x->dims[j], syms, 8);
			for (uint32_t s = 0; s < ns && s < 8; s++) {
				uint32_t i = 0;
				while (i < n && seen[i].i != syms[s].i)
					i++;
				if (i < n || !bind_dim((void *)b, ir_cstr(g, syms[s]), &val))
					continue;
				if (n < 64)
					seen[n++] = syms[s];
				else
					more++;
			}
		}
	}
	if (n) {
		fputs("onnxshard: warning: symbolic dims not bound, counted as 1 in the plan's "
		      "times and sizes:",
		      log);
		for (uint32_t i = 0; i < n && i < 8; i++)
			fprintf(log, "%s %s", i ? "," : "", ir_cstr(g, seen[i]));
		if (n + more > 8)
			fprintf(log, " and %u more", n + more - 8);
		fputs("; pass", log);
		for (uint32_t i = 0; i < n && i < 8; i++)
			fprintf(log, " --dim %s=N", ir_cstr(g, seen[i]));
		fputc('\n', log);
	}
	shd_free(g->ctx, seen, 64 * sizeof *seen);
	return 0;
}

/* ---- manifest ---- */

/* JSON text is UTF-8; a model's names should be too, and a path may not. */
static int
not_utf8(shd_ctx *c, const onnxshard_opts *o)
{
	return shd_error(c, ONNXSHARD_EINPUT, "%s: a name or the path is not valid UTF-8",
	                 o->model);
}

static json_t *
shape_json(ir_graph *g, const ir_value *v, int *bad)
{
	json_t *a = json_array();

	for (int32_t d = 0; d < v->rank; d++) {
		ir_dim x = v->dims[d];
		shd_jpush(a,
		          ir_is_const(x)   ? json_integer(x.c)
		          : ir_is_known(x) ? shd_jstr(ir_dim_str(g, x), bad)
		                           : json_null(),
		          bad);
	}
	return a;
}

static json_t *
sharding_json(const prop_plan *p, const prop_shard *s, int *bad)
{
	json_t *a = json_array();

	for (int32_t d = 0; d < s->rank; d++) {
		json_t *axes = json_array();
		for (uint8_t i = 0; i < s->dims[d].n; i++)
			shd_jpush(axes, shd_jstr(p->mesh->names[s->dims[d].ax[i]], bad), bad);
		shd_jpush(a, axes, bad);
	}
	return a;
}

static json_t *
tensor_json(ir_graph *g, const prop_plan *p, uint32_t v, const prop_shard *s, int dtype, int *bad)
{
	json_t *o = json_object();
	const ir_value *x = &g->values[v];
	const char *dt = onnx_dtype_name(x->dtype);

	shd_jset(o, "name", shd_jstr(ir_cstr(g, x->name), bad), bad);
	if (dtype)
		shd_jset(o, "dtype", dt ? shd_jstr(dt, bad) : json_null(), bad);
	shd_jset(o, "shape", shape_json(g, x, bad), bad);
	shd_jset(o, "sharding", sharding_json(p, s, bad), bad);
	/* a fused projection: each sharded dim's pieces (see docs/FORMAT.md) */
	int pieced = 0;
	for (int32_t d = 0; d < s->rank; d++)
		pieced |= prop_pieces(&s->dims[d]) > 1;
	if (pieced) {
		json_t *a = json_array();
		for (int32_t d = 0; d < s->rank; d++)
			shd_jpush(a, json_integer(prop_pieces(&s->dims[d])), bad);
		shd_jset(o, "pieces", a, bad);
	}
	/* a padded split (a weight's): each dim's padded global size, its
	 * blocks' sum (see docs/FORMAT.md) */
	int padded = 0;
	for (int32_t d = 0; d < s->rank; d++)
		padded |= prop_is_padded(&s->dims[d]);
	if (padded) {
		json_t *a = json_array();
		for (int32_t d = 0; d < s->rank; d++) {
			const prop_dim *pd = &s->dims[d];
			int64_t ways = prop_axes_size(p->mesh, pd->ax, pd->n);
			int64_t size = g->values[v].dims[d].c; /* padded: every dim constant */
			shd_jpush(a,
			          json_integer(prop_is_padded(pd)
			                               ? prop_padded_local(size, pd, ways) * ways
			                               : size),
			          bad);
		}
		shd_jset(o, "padded", a, bad);
	}
	return o;
}

/* Size and crc32 of dir/name into e (as "bytes", "crc32", after "file"
 * when with_name). */
static void
file_json(const char *name, uint32_t crc, uint64_t bytes, json_t *e, int with_name, int *bad)
{
	char hex[16];

	snprintf(hex, sizeof hex, "%08x", crc);
	if (with_name)
		shd_jset(e, "file", shd_jstr(name, bad), bad);
	shd_jset(e, "bytes", json_integer((json_int_t)bytes), bad);
	shd_jset(e, "crc32", shd_jstr(hex, bad), bad);
}

/* Write text to path: a clean error naming the cause (ENOSPC, EFBIG...). */
static int
write_text(shd_ctx *c, const char *path, const char *text)
{
	FILE *f;
	size_t n = strlen(text);
	int bad;

	errno = 0;
	if (!(f = fopen(path, "w")))
		return shd_error(c, ONNXSHARD_EFAIL, "%s: cannot create: %s", path,
		                 strerror(errno));
	bad = fwrite(text, 1, n, f) != n;
	bad |= fflush(f) != 0;
	int e = errno;
	bad |= fclose(f) != 0;
	if (bad)
		return shd_error(c, ONNXSHARD_EFAIL, "%s: write failed: %s", path,
		                 strerror(e       ? e
		                          : errno ? errno
		                                  : EIO));
	return 0;
}

static int
write_manifest(ir_graph *g, const prop_plan *p, const onnxshard_opts *o, const char *tmp,
               const uint8_t *want, const emit_rank_stats *st, json_t *plan)
{
	shd_ctx *c = g->ctx;
	const prop_mesh *m = p->mesh;
	json_t *root = json_object(), *a, *src;
	int rc = 0, bad = 0;
	uint32_t crc;
	uint64_t bytes;
	char hex[16], *path = NULL, *text = NULL;
	size_t text_size = 0;

	if ((rc = onnx_crc32_file(c, o->model, &crc, &bytes)))
		goto out;
	snprintf(hex, sizeof hex, "%08x", crc);
	const char *base = strrchr(o->model, '/');
	shd_jset(root, "format", shd_jstr("onnxshard-manifest", &bad), &bad);
	shd_jset(root, "version", json_integer(1), &bad);
	shd_jset(root, "generator", shd_jstr("onnxshard " ONNXSHARD_VERSION, &bad), &bad);
	src = json_object();
	shd_jset(src, "file", shd_jstr(base ? base + 1 : o->model, &bad), &bad);
	shd_jset(src, "bytes", json_integer((json_int_t)bytes), &bad);
	shd_jset(src, "crc32", shd_jstr(hex, &bad), &bad);
	shd_jset(root, "source", src, &bad);
	a = json_array();
	for (uint32_t i = 0; i < m->n_axes; i++) {
		json_t *ax = json_object();
		shd_jset(ax, "name", shd_jstr(m->names[i], &bad), &bad);
		shd_jset(ax, "size", json_integer(m->sizes[i]), &bad);
		shd_jpush(a, ax, &bad);
	}
	json_t *mesh = json_object();
	shd_jset(mesh, "axes", a, &bad);
	shd_jset(root, "mesh", mesh, &bad);
	shd_jset(root, "world_size", json_integer(m->world), &bad);
	shd_jset(root, "collective_domain",
	         shd_jstr(o->collectives && !strcmp(o->collectives, "ort") ? "com.microsoft"
	                                                                   : "onnxshard",
	                  &bad),
	         &bad);
	if (o->collectives && !strcmp(o->collectives, "ort")) {
		/* each group over these axes is one ONNX Runtime world: its
		 * ranks in world-rank order */
		uint8_t wax[PROP_MAX_AXES], nw = 0, mask = emit_ort_axes(p);
		json_t *ort = json_object(), *names = json_array(), *worlds = json_array();
		for (uint8_t i = 0; i < m->n_axes; i++)
			if (mask & (1u << i)) {
				wax[nw++] = i;
				shd_jpush(names, shd_jstr(m->names[i], &bad), &bad);
			}
		int64_t ws = prop_axes_size(m, wax, nw),
		        *grp = shd_calloc(c, (size_t)ws, sizeof *grp);
		if (!grp)
			bad = 1;
		for (int64_t r = 0; grp && r < m->world; r++) {
			prop_group(m, r, wax, nw, grp);
			if (grp[0] != r)
				continue; /* listed by its first rank */
			json_t *w = json_array();
			for (int64_t j = 0; j < ws; j++)
				shd_jpush(w, json_integer(grp[j]), &bad);
			shd_jpush(worlds, w, &bad);
		}
		shd_free(c, grp, (size_t)ws * sizeof *grp);
		shd_jset(ort, "axes", names, &bad);
		shd_jset(ort, "size", json_integer(ws), &bad);
		shd_jset(ort, "worlds", worlds, &bad);
		shd_jset(root, "ort_worlds", ort, &bad);
	}
	a = json_array();
	for (uint32_t i = 0; i < g->n_inputs; i++)
		shd_jpush(a, tensor_json(g, p, g->inputs[i], &p->have[g->inputs[i]], 1, &bad),
		          &bad);
	shd_jset(root, "inputs", a, &bad);
	a = json_array();
	for (uint32_t i = 0; i < g->n_outputs; i++) {
		prop_dim fd[IR_MAX_RANK];
		prop_shard s = {0, fd, 0};
		prop_output_shard(g, p, i, &s); /* lifting refused ranks above IR_MAX_RANK */
		shd_jpush(a, tensor_json(g, p, g->outputs[i], &s, 1, &bad), &bad);
	}
	shd_jset(root, "outputs", a, &bad);
	a = json_array();
	for (uint32_t v = 0; v < g->n_values; v++)
		if (g->values[v].kind == IR_V_INIT)
			shd_jpush(a, tensor_json(g, p, v, &p->have[v], 0, &bad), &bad);
	shd_jset(root, "parameters", a, &bad);
	a = json_array();
	for (int64_t r = 0; r < m->world && !rc && !bad; r++) {
		json_t *e = json_object(), *coords = json_array(), *ext = json_array();
		int64_t co[PROP_MAX_AXES];
		char name[64], data[64];
		prop_mesh_coords(m, r, co);
		for (uint32_t i = 0; i < m->n_axes; i++)
			shd_jpush(coords, json_integer(co[i]), &bad);
		snprintf(name, sizeof name, "rank%lld.onnx", (long long)r);
		snprintf(data, sizeof data, "rank%lld.onnx.data", (long long)r);
		shd_jset(e, "rank", json_integer(r), &bad);
		shd_jset(e, "coords", coords, &bad);
		shd_jset(e, "model", shd_jstr(name, &bad), &bad);
		if (want && !want[r]) { /* --rank: another process writes it */
			json_decref(ext);
			shd_jset(e, "written", json_false(), &bad);
			shd_jpush(a, e, &bad);
			continue;
		}
		file_json(name, st[r].model_crc, st[r].model_bytes, e, 0, &bad);
		if (st[r].data_bytes) {
			json_t *f = json_object();
			file_json(data, st[r].data_crc, st[r].data_bytes, f, 1, &bad);
			shd_jpush(ext, f, &bad);
		}
		shd_jset(e, "external_data", ext, &bad);
		shd_jpush(a, e, &bad);
	}
	shd_jset(root, "ranks", a, &bad);
	shd_jset(root, "plan", json_incref(plan), &bad);
	if (rc)
		goto out;
	if (bad & 2) {
		rc = not_utf8(c, o);
		goto out;
	}
	size_t n = bad ? 0 : json_dumpb(root, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!n || !(text = shd_alloc(c, text_size = n + 1)) ||
	    json_dumpb(root, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != n) {
		rc = shd_nomem(c);
		goto out;
	}
	text[n] = 0;
	if (!(path = shd_strprintf(c, "%s/manifest.json", tmp))) {
		rc = shd_nomem(c);
		goto out;
	}
	rc = write_text(c, path, text);
out:
	shd_strfree(c, path);
	shd_free(c, text, text_size);
	json_decref(root);
	return rc;
}

/* ---- the plan's summary ---- */

static const char *step_names[] = {"AllReduce", "ReduceScatter", "AllGather",
                                   "AllToAll",  "Slice",         "Mask"};

/* The simulated cost of a materialised plan as JSON fields of obj. */
static void
cost_json(json_t *obj, const prop_plan *p, const search_cost *sc, const emit_rank_stats *st,
          int *bad)
{
	json_t *mem = json_array();

	/* the simulator's rank; emission's exact parameter bytes where known */
	for (int64_t r = 0; r < p->mesh->world; r++)
		shd_jpush(
		        mem,
		        json_integer((json_int_t)(sc->peak_bytes -
		                                  (st ? sc->param_bytes - st[r].param_bytes : 0))),
		        bad);
	shd_jset(obj, "step_time_s", json_real(sc->step_s), bad);
	shd_jset(obj, "compute_s", json_real(sc->compute_s), bad);
	shd_jset(obj, "comm_s", json_real(sc->comm_s), bad);
	shd_jset(obj, "peak_memory_bytes", mem, bad);
	shd_jset(obj, "fits", json_boolean(sc->feasible), bad);
	shd_jset(obj, "comm_bytes", json_integer((json_int_t)sc->comm_bytes), bad);
	static const char *const kinds[4] = {"AllReduce", "AllGather", "ReduceScatter", "AllToAll"};
	json_t *by = json_object();
	for (int k = 0; k < 4; k++)
		if (sc->comm_by_kind[k])
			shd_jset(by, kinds[k], json_integer((json_int_t)sc->comm_by_kind[k]), bad);
	shd_jset(obj, "comm_bytes_by_kind", by, bad);
	shd_jset(obj, "flops", json_integer((json_int_t)sc->flops), bad);
}

/* A baseline strategy on a fresh plan: its cost. */
static int
baseline_cost(ir_graph *g, const prop_plan *p, const char *strategy, const search_hw *hw,
              search_cost *sc)
{
	prop_plan q;
	int rc;

	if ((rc = prop_plan_init(g, p->mesh, &q)))
		return rc;
	q.bind = p->bind;
	q.bind_ud = p->bind_ud;
	if (!(rc = search_apply(g, &q, strategy, NULL)) && !(rc = prop_materialize(g, &q)))
		rc = search_simulate(g, &q, hw, sc);
	prop_plan_free(g, &q);
	return rc;
}

static int
plan_json(ir_graph *g, const prop_plan *p, const onnxshard_opts *o, const emit_rank_stats *st,
          const bindings *b, const search_hw *hw, const search_env *env, json_t **out)
{
	json_t *plan = json_object(), *coll = json_array(), *repl = json_array(),
	       *base = json_object();
	search_cost sc;
	uint8_t *seen = shd_calloc(g->ctx, p->n_reshards + 1, 1);
	double comm = 0;
	int comm_known = 1, bad = !seen;

	shd_jset(plan, "strategy", shd_jstr(o->strategy ? o->strategy : "auto", &bad), &bad);
	shd_jset(plan, "hardware", shd_jstr(hw->name, &bad), &bad);
	if (search_simulate(g, p, hw, &sc)) {
		json_decref(plan);
		json_decref(coll);
		json_decref(repl);
		json_decref(base);
		shd_free(g->ctx, seen, p->n_reshards + 1);
		return shd_nomem(g->ctx);
	}
	cost_json(plan, p, &sc, st, &bad);
	shd_jset(plan, "exact", json_boolean(sc.exact), &bad);
	shd_jset(plan, "decisions", json_integer(env->decisions), &bad);
	shd_jset(plan, "plans_scored", json_integer(env->scored), &bad);
	if (env->chose)
		shd_jset(plan, "chose", shd_jstr(env->chose, &bad), &bad);
	json_t *made;
	if (!bad && api_decisions(g, p, hw, o->strategy ? o->strategy : "auto", &made))
		bad = 1;
	else if (!bad)
		shd_jset(plan, "decisions_made", made, &bad);
	for (int i = 0; i < SEARCH_BASELINES && !bad; i++) {
		search_cost bcost;
		if (!search_baseline_applies(p->mesh, search_baselines[i]))
			continue;
		if (baseline_cost(g, p, search_baselines[i], hw, &bcost)) {
			bad = 1;
		} else {
			json_t *e = json_object();
			cost_json(e, p, &bcost, NULL, &bad);
			shd_jset(base, search_baselines[i], e, &bad);
		}
	}
	for (uint32_t i = 0; seen && i < p->n_reshards; i++) {
		const prop_reshard *rs = &p->reshards[i];
		if (seen[rs->id])
			continue;
		seen[rs->id] = 1;
		const ir_value *v = &g->values[rs->value];
		int64_t elems = 1;
		for (int32_t d = 0; d < v->rank; d++) {
			int64_t x;
			if (ir_dim_eval(g, v->dims[d], bind_dim, (void *)b, &x) || x < 0)
				comm_known = 0, x = 1;
			if (__builtin_mul_overflow(elems, x, &elems))
				comm_known = 0, elems = INT64_MAX / 16;
		}
		for (uint32_t k = 0; k < rs->n; k++) {
			const prop_step *s = &p->steps[rs->first + k];
			json_t *e = json_object(), *axes = json_array();
			for (uint8_t j = 0; j < s->n_axes; j++)
				shd_jpush(axes, shd_jstr(p->mesh->names[s->ax[j]], &bad), &bad);
			shd_jset(e, "op", shd_jstr(step_names[s->kind], &bad), &bad);
			shd_jset(e, "value", shd_jstr(ir_cstr(g, v->name), &bad), &bad);
			shd_jset(e, "mesh_axes", axes, &bad);
			shd_jpush(coll, e, &bad);
			if (s->kind <= PROP_ALLTOALL)
				comm += (double)elems * onnx_dtype_bits(v->dtype) / 8.0;
		}
	}
	for (uint32_t i = 0; i < p->n_notes; i++) {
		json_t *e = json_object();
		shd_jset(e, "value", shd_jstr(ir_cstr(g, g->values[p->notes[i].value].name), &bad),
		         &bad);
		shd_jset(e, "why", shd_jstr(p->notes[i].why, &bad), &bad);
		shd_jpush(repl, e, &bad);
	}
	shd_free(g->ctx, seen, p->n_reshards + 1);
	/* the bytes each collective moves in all (symbolic dims that --dim
	 * did not bind count as 1) */
	shd_jset(plan, "comm_bytes_total", json_integer((json_int_t)comm), &bad);
	shd_jset(plan, "comm_bytes_exact", json_boolean(comm_known), &bad);
	shd_jset(plan, "baselines", base, &bad);
	shd_jset(plan, "reshards", coll, &bad);
	shd_jset(plan, "replicated", repl, &bad);
	if (bad) {
		json_decref(plan);
		*out = NULL;
		return bad & 2 ? not_utf8(g->ctx, o) : shd_nomem(g->ctx);
	}
	*out = plan;
	return 0;
}

/* Collectives by op and axes, for the summary: {"AllReduce over [model]": n}. */
static int
count_reshards(shd_ctx *c, json_t *plan, json_t **out)
{
	json_t *e, *count = json_object();
	size_t i;
	int bad = 0;

	json_array_foreach(json_object_get(plan, "reshards"), i, e)
	{
		char key[256] = "";
		json_t *ax;
		size_t j;
		snprintf(key, sizeof key, "%s over [", json_string_value(json_object_get(e, "op")));
		json_array_foreach(json_object_get(e, "mesh_axes"), j, ax)
		{
			strncat(key, j ? "," : "", sizeof key - strlen(key) - 1);
			strncat(key, json_string_value(ax), sizeof key - strlen(key) - 1);
		}
		strncat(key, "]", sizeof key - strlen(key) - 1);
		shd_jset(count, key,
		         json_integer(json_integer_value(json_object_get(count, key)) + 1), &bad);
	}
	if (bad || !count) {
		json_decref(count);
		*out = NULL;
		return shd_nomem(c);
	}
	*out = count;
	return 0;
}

static void
print_summary(ir_graph *g, const prop_plan *p, const onnxshard_opts *o, json_t *plan, json_t *count,
              FILE *out)
{
	json_t *e;
	size_t i;
	uint32_t sharded = 0, params = 0, split_params = 0;

	for (uint32_t v = 0; v < g->n_values; v++) {
		int rep = prop_is_replicated(&p->have[v]);
		sharded += !rep;
		if (g->values[v].kind == IR_V_INIT)
			params++, split_params += !rep;
	}
	fprintf(out, "plan: %s on %s (%lld ranks), strategy %s\n", o->model, o->mesh,
	        (long long)p->mesh->world, o->strategy ? o->strategy : "auto");
	fprintf(out, "  values split: %u of %u; parameters split: %u of %u\n", sharded, g->n_values,
	        split_params, params);
	json_t *mem = json_object_get(plan, "peak_memory_bytes");
	fprintf(out, "  step time on %s: %.3g s (compute %.3g s, communication %.3g s)%s\n",
	        json_string_value(json_object_get(plan, "hardware")),
	        json_real_value(json_object_get(plan, "step_time_s")),
	        json_real_value(json_object_get(plan, "compute_s")),
	        json_real_value(json_object_get(plan, "comm_s")),
	        json_is_true(json_object_get(plan, "exact")) ? "" : " (unbound dims counted as 1)");
	if (json_array_size(mem))
		fprintf(out, "  peak memory per rank: %.4g GB%s\n",
		        (double)json_integer_value(json_array_get(mem, 0)) / 1e9,
		        json_is_true(json_object_get(plan, "fits")) ? ""
		                                                    : " (does not fit the device)");
	const char *bname;
	json_t *bval;
	json_object_foreach(json_object_get(plan, "comm_bytes_by_kind"), bname, bval)
	        fprintf(out, "  %-14s %.4g MB sent per rank\n", bname,
	                (double)json_integer_value(bval) / 1e6);
	json_object_foreach(json_object_get(plan, "baselines"), bname, bval)
	        fprintf(out, "  baseline %-14s %.3g s (compute %.3g s, communication %.3g s)%s\n",
	                bname, json_real_value(json_object_get(bval, "step_time_s")),
	                json_real_value(json_object_get(bval, "compute_s")),
	                json_real_value(json_object_get(bval, "comm_s")),
	                json_is_true(json_object_get(bval, "fits")) ? "" : ", does not fit");
	const char *key;
	json_t *val;
	if (!json_object_size(count))
		fputs("  reshards: none\n", out);
	json_object_foreach(count, key, val)
	        fprintf(out, "  %-36s %lld\n", key, (long long)json_integer_value(val));
	api_decisions_print(json_object_get(plan, "decisions_made"), out);
	json_array_foreach(json_object_get(plan, "replicated"), i, e) fprintf(
	        out, "  replicated %s: %s\n", json_string_value(json_object_get(e, "value")),
	        json_string_value(json_object_get(e, "why")));
}

/* ---- stopping: an interrupt (o->cancel), the planning budget ---- */

typedef struct {
	shd_ctx *c;
	const onnxshard_opts *o;
	double deadline;   /* shd_now() seconds; 0: no budget (planning is over) */
	const char *pause; /* ONNXSHARD_TEST_PAUSE, or NULL (see test_pause) */
	const char *tmp;   /* the temp dir while emitting, else NULL */
	uint32_t polls;    /* stop() calls while planning */
} run_state;

/* A hook for tests only (docs/DESIGN.md, Testing): with
 * ONNXSHARD_TEST_PAUSE=PHASE:PATH in the environment, the run creates PATH
 * at PHASE and waits until something is written into it (60 s at most), so
 * that a test sends its signal, sets the cancel flag or lets the budget run
 * out at a known point. PHASE: search (the first poll inside the search),
 * emit (planning done, before any rank is written), rank (the first poll of
 * emission once rank0.onnx is written: before rank 1, or a writer's next
 * rank). Once per run: PATH is made with O_EXCL, so a process that finds it
 * there (another writer already paused) goes on. */
static void
test_pause(const run_state *s, const char *phase)
{
	size_t n = strlen(phase);
	struct stat sb;

	if (!s->pause || strncmp(s->pause, phase, n) || s->pause[n] != ':')
		return;
	int fd = open(s->pause + n + 1, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	close(fd);
	for (int i = 0; i < 60000; i++) {
		struct timespec ms = {0, 1000000};
		if (stat(s->pause + n + 1, &sb) || sb.st_size > 0)
			return;
		nanosleep(&ms, NULL);
	}
}

/* A progress line on stderr for long emission (only on a terminal). */
#define RATE_SAMPLES 12 /* the line's rate: over its last 12 updates, 3 s */
typedef struct {
	FILE *f; /* NULL: silent */
	uint64_t total, done;
	double t0, last;
	double at[RATE_SAMPLES]; /* a ring of (time, bytes done) at each update */
	uint64_t bytes[RATE_SAMPLES];
	uint32_t n; /* updates so far; the oldest kept is at n % RATE_SAMPLES */
} progress;

/* Bytes per second at time t over the last few seconds (the ring's oldest
 * sample to now); since the start until there is one. */
static double
recent_rate(progress *pr, double t)
{
	uint32_t k = pr->n % RATE_SAMPLES;
	double t1 = pr->n >= RATE_SAMPLES ? pr->at[k] : pr->t0;
	uint64_t d1 = pr->n >= RATE_SAMPLES ? pr->bytes[k] : 0;
	double rate = (double)(pr->done - d1) / (t - t1 + 1e-9);

	pr->at[k] = t;
	pr->bytes[k] = pr->done;
	pr->n++;
	return rate;
}

static void
on_progress(void *ud, uint64_t n)
{
	progress *pr = ud;
	double t = shd_now();

	pr->done += n;
	if (!pr->f || (t - pr->last < 0.25 && pr->done < pr->total))
		return;
	pr->last = t;
	double rate = recent_rate(pr, t);
	double left = rate > 0 ? (double)(pr->total - pr->done) / rate : 0;
	fprintf(pr->f, "\rwriting %.2f of %.2f GB (%3.0f%%), %.0f MB/s, %.0fs left   ",
	        (double)pr->done / 1e9, (double)pr->total / 1e9,
	        pr->total ? 100.0 * (double)pr->done / (double)pr->total : 100.0, rate / 1e6, left);
	fflush(pr->f);
}

/* Weight bytes one rank holds: every initializer's block. */
static uint64_t
rank_weight_bytes(const ir_graph *g, const prop_plan *p)
{
	uint64_t total = 0;
	int64_t dims[64];

	for (uint32_t v = 0; v < g->n_values; v++)
		if (g->values[v].kind == IR_V_INIT && g->values[v].init)
			total += emit_init_block(g, p, v, dims);
	return total;
}

/* Polled between ranks, while propagating and while writing. */
static int
stop(void *ud)
{
	run_state *s = ud;

	if (s->pause && s->deadline > 0 && ++s->polls == 2)
		test_pause(s, "search");
	if (s->pause && s->tmp) {
		char *r0;
		struct stat sb;
		if (asprintf(&r0, "%s/rank0.onnx", s->tmp) >= 0) {
			if (!stat(r0, &sb))
				test_pause(s, "rank");
			free(r0);
		}
	}
	if (s->o->cancel && *s->o->cancel)
		return shd_error(s->c, ONNXSHARD_EFAIL, "interrupted");
	if (s->deadline > 0 && shd_now() > s->deadline) {
		uint64_t ms = s->o->budget_ms ? s->o->budget_ms : ONNXSHARD_BUDGET_MS;
		return shd_error(s->c, ONNXSHARD_EFAIL, "%s: budget of %gs exceeded", s->o->model,
		                 (double)ms / 1000);
	}
	return 0;
}

/* ---- the output directory ---- */

/* The options about OUT, before any planning: --external-data's word, and
 * OUT's folder, which must exist. */
static int
check_out_opts(shd_ctx *c, const onnxshard_opts *o)
{
	const char *ext = o->external_data ? o->external_data : "auto";
	struct stat sb;

	if (!o->out)
		return 0;
	if (strcmp(ext, "auto") && strcmp(ext, "always") && strcmp(ext, "never"))
		return shd_error(c, ONNXSHARD_EINPUT,
		                 "--external-data '%s': want auto, always or never", ext);
	const char *slash = strrchr(o->out, '/');
	if (!slash || slash == o->out)
		return 0; /* the current folder, or / */
	char *dir = strndup(o->out, (size_t)(slash - o->out));
	if (!dir)
		return shd_nomem(c);
	int bad = stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode);
	if (bad)
		shd_error(c, ONNXSHARD_EINPUT, "%s: its folder %s does not exist", o->out, dir);
	free(dir);
	return bad ? ONNXSHARD_EINPUT : 0;
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- --rank: some ranks' files, into an OUT that others may share ---- */

/* o->ranks as a mask of the world (*want NULL: every rank). */
static int
parse_ranks(shd_ctx *c, const onnxshard_opts *o, const prop_mesh *m, uint8_t **want)
{
	*want = NULL;
	if (!o->ranks || !o->n_ranks)
		return 0;
	if (!o->out)
		return shd_error(c, ONNXSHARD_EINPUT,
		                 "--rank: only when writing an output directory (shard)");
	for (size_t i = 0; i < o->n_ranks; i++)
		if (o->ranks[i] < 0 || o->ranks[i] >= m->world)
			return shd_error(c, ONNXSHARD_EINPUT,
			                 "--rank %lld: the mesh %s has ranks 0 to %lld",
			                 (long long)o->ranks[i], o->mesh, (long long)m->world - 1);
	if (!(*want = shd_calloc(c, (size_t)m->world, 1)))
		return shd_nomem(c);
	for (size_t i = 0; i < o->n_ranks; i++)
		(*want)[o->ranks[i]] = 1;
	return 0;
}

/* Two manifests of one plan: equal but for the ranks' files and marks. */
static int
same_plan(json_t *a, json_t *b)
{
	const char *key;
	json_t *v, *ra = json_object_get(a, "ranks"), *rb = json_object_get(b, "ranks");
	static const char *const id[] = {"rank", "coords", "model"};

	if (json_object_size(a) != json_object_size(b) ||
	    json_array_size(ra) != json_array_size(rb))
		return 0;
	json_object_foreach(a, key, v) if (strcmp(key, "ranks") &&
	                                   !json_equal(v, json_object_get(b, key))) return 0;
	for (size_t r = 0; r < json_array_size(ra); r++)
		for (int i = 0; i < 3; i++)
			if (!json_equal(json_object_get(json_array_get(ra, r), id[i]),
			                json_object_get(json_array_get(rb, r), id[i])))
				return 0;
	return 1;
}

static int
is_written(json_t *rank)
{
	return rank && !json_is_false(json_object_get(rank, "written"));
}

/* Move the wanted ranks' files from tmp into o->out, which exists: under
 * an exclusive flock of o->out, merge the manifest there (the same plan's,
 * or none) with tmp's (each rank written by one or the other is written),
 * rename each file in whole, then the merged manifest. */
static int
merge_ranks(shd_ctx *c, const onnxshard_opts *o, const char *tmp, const uint8_t *want)
{
	char *mine_path = NULL, *their_path = NULL, *from = NULL, *to = NULL, *text = NULL;
	size_t text_size = 0;
	json_t *mine = NULL, *theirs = NULL, *ranks;
	json_error_t je;
	int rc = 0, fd;

	if ((fd = open(o->out, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return shd_error(c, ONNXSHARD_EINPUT, "%s: %s", o->out, strerror(errno));
	while (flock(fd, LOCK_EX) != 0)
		if (errno != EINTR) {
			rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot lock: %s", o->out,
			               strerror(errno));
			goto out;
		}
	if (!(mine_path = shd_strprintf(c, "%s/manifest.json", tmp)) ||
	    !(their_path = shd_strprintf(c, "%s/manifest.json", o->out))) {
		rc = shd_nomem(c);
		goto out;
	}
	if (!(mine = json_load_file(mine_path, 0, &je))) {
		rc = shd_error(c, ONNXSHARD_EFAIL, "%s: %s", mine_path, je.text);
		goto out;
	}
	if (access(their_path, F_OK) == 0 &&
	    (!(theirs = json_load_file(their_path, 0, &je)) || !same_plan(mine, theirs))) {
		rc = shd_error(c, ONNXSHARD_EINPUT,
		               "%s: holds the output of another plan (model, mesh or options "
		               "differ); give each plan its own -o",
		               o->out);
		goto out;
	}
	ranks = json_object_get(mine, "ranks");
	for (size_t r = 0; theirs && r < json_array_size(ranks); r++) {
		json_t *t = json_array_get(json_object_get(theirs, "ranks"), r);
		if (!want[r] && is_written(t) && json_array_set(ranks, r, t)) {
			rc = shd_nomem(c);
			goto out;
		}
	}
	/* this run's files, each whole, then the manifest that lists them */
	for (size_t r = 0; r < json_array_size(ranks) && !rc; r++) {
		json_t *e = json_array_get(ranks, r);
		size_t i;
		if (!want[r])
			continue;
		for (i = 0; i <= json_array_size(json_object_get(e, "external_data")) && !rc; i++) {
			const char *name = json_string_value(
			        i ? json_object_get(
			                    json_array_get(json_object_get(e, "external_data"),
			                                   i - 1),
			                    "file")
			          : json_object_get(e, "model"));
			shd_strfree(c, from), shd_strfree(c, to);
			from = to = NULL;
			if (!name || !(from = shd_strprintf(c, "%s/%s", tmp, name)) ||
			    !(to = shd_strprintf(c, "%s/%s", o->out, name)))
				rc = shd_nomem(c);
			else if (rename(from, to) != 0)
				rc = shd_error(c, ONNXSHARD_EFAIL,
				               "%s: cannot move it into place: %s", to,
				               strerror(errno));
		}
	}
	if (rc)
		goto out;
	size_t n = json_dumpb(mine, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!n || !(text = shd_alloc(c, text_size = n + 1)) ||
	    json_dumpb(mine, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != n) {
		rc = shd_nomem(c);
		goto out;
	}
	text[n] = 0;
	if (!(rc = write_text(c, mine_path, text)) && rename(mine_path, their_path) != 0)
		rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot move it into place: %s", their_path,
		               strerror(errno));
out:
	close(fd); /* and the lock with it */
	shd_free(c, text, text_size);
	json_decref(mine);
	json_decref(theirs);
	shd_strfree(c, mine_path), shd_strfree(c, their_path);
	shd_strfree(c, from), shd_strfree(c, to);
	return rc;
}

/* The options read before the model: the collectives' domain, OUT and its
 * parent, --external-data, --rank (*want: the ranks to write, NULL for all;
 * the caller frees it, mesh->world bytes). */
static int
check_opts(shd_ctx *c, const onnxshard_opts *o, const prop_mesh *mesh, uint8_t **want)
{
	struct stat sb;
	int rc;

	if (o->collectives && strcmp(o->collectives, "onnxshard") && strcmp(o->collectives, "ort"))
		return shd_error(c, ONNXSHARD_EINPUT, "--collectives '%s': want onnxshard or ort",
		                 o->collectives);
	if ((rc = check_out_opts(c, o)) || (rc = parse_ranks(c, o, mesh, want)))
		return rc;
	if (*want && lstat(o->out, &sb) == 0 && !S_ISDIR(sb.st_mode))
		return shd_error(c, ONNXSHARD_EINPUT, "%s: not a directory", o->out);
	if (o->out && !*want && lstat(o->out, &sb) == 0 && !o->force)
		return shd_error(c, ONNXSHARD_EINPUT,
		                 "%s: already exists (use --force to replace it)", o->out);
	return 0;
}

/* Write the rank models and their data into *tmp, a new temp dir beside
 * OUT (the caller removes it on failure): the ranks of want, or all;
 * st[r] gets each rank's figures (every rank's parameter bytes, written or
 * not). */
static int
emit_out(shd_ctx *c, ir_graph *g, prop_plan *p, const onnxshard_opts *o, run_state *rs,
         const uint8_t *want, emit_rank_stats *st, char **tmp, FILE *log)
{
	const char *ext = o->external_data ? o->external_data : "auto";
	uint64_t per_rank = rank_weight_bytes(g, p), n_written = 0;
	for (int64_t r = 0; r < p->mesh->world; r++)
		n_written += !want || want[r];
	progress pr = {log && isatty(fileno(log)) && per_rank >= ((uint64_t)64 << 20) ? log : NULL,
	               per_rank * n_written,
	               0,
	               shd_now(),
	               0,
	               {0},
	               {0},
	               0};
	emit_opts eo = {!strcmp(ext, "always")  ? 1
	                : !strcmp(ext, "never") ? UINT64_MAX
	                                        : ONNX_EXT_THRESHOLD,
	                o->collectives && !strcmp(o->collectives, "ort"),
	                stop,
	                rs,
	                on_progress,
	                &pr};

	/* every weight inline: a rank model must stay under protobuf's 2 GiB */
	if (eo.threshold == UINT64_MAX && per_rank > ((uint64_t)2 << 30) - ((uint64_t)64 << 20)) {
		return shd_error(c, ONNXSHARD_EINPUT,
		                 "--external-data never: each rank holds %llu bytes of weights, "
		                 "past protobuf's 2 GiB limit for one model",
		                 (unsigned long long)per_rank);
	}
	/* made as mkdir makes a dir: mode 0777 under the umask */
	if (!(*tmp = shd_mktemp(c, o->out, "tmp", NULL)))
		return errno == ENOMEM ? shd_nomem(c)
		                       : shd_error(c, ONNXSHARD_EFAIL,
		                                   "%s: cannot create a temp dir beside it: %s",
		                                   o->out, strerror(errno));
	test_pause(rs, "emit");
	rs->tmp = *tmp;
	int rc = api_emit_ranks(g, p, *tmp, &eo, o->jobs, want, st);
	rs->tmp = NULL;
	/* the plan's memory: every rank holds per_rank bytes of weights */
	for (int64_t r = 0; want && r < p->mesh->world; r++)
		if (!want[r])
			st[r].param_bytes = per_rank;
	if (pr.f)
		fputc('\n', pr.f);
	return rc;
}

/* Put the finished *tmp in place as OUT (an old OUT moved aside, then
 * removed), or with --rank merge it into an OUT another process made;
 * *tmp is freed and cleared once renamed. */
static int
place_out(shd_ctx *c, const onnxshard_opts *o, char **tmp, const uint8_t *want)
{
	char *old = NULL;
	struct stat sb;
	int rc = 0;

	if (want) {
		/* OUT made whole by this run, or else (another process made
		 * it) merged into */
		if (rename(*tmp, o->out) == 0) {
			shd_strfree(c, *tmp);
			*tmp = NULL;
		} else if (errno != EEXIST && errno != ENOTEMPTY) {
			rc = shd_error(c, ONNXSHARD_EFAIL,
			               "%s: cannot rename the output into place: %s", o->out,
			               strerror(errno));
			goto done;
		} else if ((rc = merge_ranks(c, o, *tmp, want))) {
			goto done;
		}
	} else {
		if (lstat(o->out, &sb) == 0) {
			if (!(old = shd_mktemp(c, o->out, "old", NULL)) && errno == ENOMEM) {
				rc = shd_nomem(c);
				goto done;
			}
			if (!old || rename(o->out, old) != 0) {
				rc = shd_error(c, ONNXSHARD_EFAIL,
				               "%s: cannot move the old output aside: %s", o->out,
				               strerror(errno));
				if (old)
					rmdir(old); /* shd_mktemp's */
				goto done;
			}
		}
		if (rename(*tmp, o->out) != 0) {
			rc = shd_error(c, ONNXSHARD_EFAIL,
			               "%s: cannot rename the finished output into place: %s",
			               o->out, strerror(errno));
			if (old) /* the old output back */
				rename(old, o->out);
			goto done;
		}
		shd_strfree(c, *tmp);
		*tmp = NULL;
		if (old)
			rm_tree(old);
	}
done:
	shd_strfree(c, old);
	return rc;
}

/* The run's report on o->report: the plan's JSON (made before OUT was put
 * in place), or its summary and what was written. */
static void
print_report(ir_graph *g, const prop_plan *p, const onnxshard_opts *o, json_t *plan, json_t *count,
             const char *json, size_t json_len, const uint8_t *want)
{
	if (o->json) {
		fwrite(json, 1, json_len, o->report);
		fputc('\n', o->report);
	} else {
		print_summary(g, p, o, plan, count, o->report);
		if (o->out && want) {
			fprintf(o->report, "wrote %s: rank", o->out);
			for (int64_t r = 0, k = 0; r < p->mesh->world; r++)
				if (want[r])
					fprintf(o->report, "%s%lld", k++ ? "," : " ", (long long)r);
			fprintf(o->report, " of %lld, manifest.json\n", (long long)p->mesh->world);
		} else if (o->out) {
			fprintf(o->report, "wrote %s: %lld rank models, manifest.json\n", o->out,
			        (long long)p->mesh->world);
		}
	}
}

int
onnxshard_shard(onnxshard_ctx *c, const onnxshard_opts *o)
{
	onnx_model *m = NULL;
	ir_graph *g = NULL;
	prop_mesh mesh;
	prop_plan p;
	bindings b = {0};
	emit_rank_stats *st = NULL;
	json_t *plan = NULL, *count = NULL;
	char *tmp = NULL, *report = NULL;
	uint8_t *want = NULL; /* --rank: the ranks to write; NULL: all */
	size_t report_len = 0;
	int rc, have_plan = 0, have_hw = 0;
	search_hw hw;
	search_env env = {0};
	FILE *log = o->quiet ? NULL : stderr;
	uint64_t refused = c->n_refused;
	run_state rs = {c,
	                o,
	                shd_now() +
	                        (double)(o->budget_ms ? o->budget_ms : ONNXSHARD_BUDGET_MS) / 1000,
	                getenv("ONNXSHARD_TEST_PAUSE"),
	                NULL,
	                0};

	memset(&p, 0, sizeof p);
	if ((rc = prop_mesh_parse(c, o->mesh ? o->mesh : "", &mesh))) {
		prop_mesh_free(c, &mesh);
		return rc;
	}
	if ((rc = check_opts(c, o, &mesh, &want)))
		goto out;
	if ((rc = search_hw_load(c, o->hardware ? o->hardware : "h100", &hw)))
		goto out;
	have_hw = 1;
	env.hw = &hw;
	env.seed = o->seed;
	env.strict = 1; /* the strategy is the user's */
	env.rollouts = o->budget_plans;
	env.ort = o->collectives && !strcmp(o->collectives, "ort");
	hw.ort = env.ort; /* the simulator costs what ORT's collectives run */
	/* the search stops with its best plan before the budget runs out */
	env.deadline = rs.deadline - 0.2 * (rs.deadline - shd_now());
	env.progress = log && isatty(fileno(log)) ? log : NULL;
	/* plan reads no weight: a model's size limit is its protobuf's */
	if ((rc = o->out ? onnx_load(c, o->model, &m) : onnx_load_weightless(c, o->model, &m)) ||
	    (rc = ir_lift(c, m, &g)) || (rc = parse_dims(c, o, g, &b)) ||
	    (rc = prop_plan_init(g, &mesh, &p)))
		goto out;
	have_plan = 1;
	for (size_t i = 0; i < o->n_gather_outputs && !rc; i++)
		rc = search_gather_outputs(g, &p, o->gather_outputs[i], "--gather-outputs");
	if (rc)
		goto out;
	p.bind = bind_dim;
	p.bind_ud = &b;
	p.stop = stop;
	p.stop_ud = &rs;
	if ((rc = stop(&rs)) ||
	    (rc = search_run(g, &p, o->strategy ? o->strategy : "auto", &env, log)) ||
	    (rc = prop_materialize(g, &p)) || (rc = ort_runs(g, &p, env.ort)) ||
	    (log && (rc = warn_unbound(g, &b, log))))
		goto out;
	rs.deadline = 0; /* the budget is planning's */
	if (!(st = shd_calloc(c, (size_t)mesh.world, sizeof *st))) {
		rc = shd_nomem(c);
		goto out;
	}
	if (o->out && (rc = emit_out(c, g, &p, o, &rs, want, st, &tmp, log)))
		goto out;
	if ((rc = plan_json(g, &p, o, o->out ? st : NULL, &b, &hw, &env, &plan)))
		goto out;
	if (o->out && (rc = write_manifest(g, &p, o, tmp, want, st, plan)))
		goto out;
	if (o->report_html && (rc = report_html(g, &p, &hw, o, plan, o->report_html)))
		goto out;
	/* the report, made before OUT is in place: nothing fails after that */
	if (o->report && o->json) {
		report_len = json_dumpb(plan, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!report_len || !(report = shd_alloc(c, report_len)) ||
		    json_dumpb(plan, report, report_len, JSON_INDENT(2) | JSON_PRESERVE_ORDER) !=
		            report_len) {
			rc = shd_nomem(c);
			goto out;
		}
	} else if (o->report && (rc = count_reshards(c, plan, &count))) {
		goto out;
	}
	/* an allocation refused where it could not be reported (the dim
	 * algebra answers "unknown") may have changed the output: none then */
	if ((rc = shd_settle(c, refused, 0)) || (rc = stop(&rs)))
		goto out;
	if (o->out && (rc = place_out(c, o, &tmp, want)))
		goto out;
	if (o->report)
		print_report(g, &p, o, plan, count, report, report_len, want);
out:
	if (rc)
		rc = shd_settle(c, refused, rc);
	if (rc && o->cancel && *o->cancel) /* whatever failed, the cause is likely that */
		rc = shd_error(c, ONNXSHARD_EFAIL, "interrupted");
	if (tmp) {
		rm_tree(tmp);
		shd_strfree(c, tmp);
	}
	shd_free(c, report, report_len);
	json_decref(count);
	json_decref(plan);
	shd_free(c, st, (size_t)mesh.world * sizeof *st);
	shd_free(c, want, (size_t)mesh.world);
	shd_free(c, b.vals, (o->n_dims + 1) * sizeof *b.vals);
	if (have_plan)
		prop_plan_free(g, &p);
	if (have_hw)
		search_hw_free(c, &hw);
	ir_free(g);
	onnx_model_free(m);
	prop_mesh_free(c, &mesh);
	return rc;
}
