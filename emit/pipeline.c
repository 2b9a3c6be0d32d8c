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
#include <ftw.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emit/lower.h"
#include "search/search.h"

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
		if (errno || *end || end == eq + 1 || v < 1)
			return shd_error(c, ONNXSHARD_EINPUT, "--dim '%s': size must be a positive integer", d);
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
			return shd_error(c, ONNXSHARD_EINPUT, "--dim '%s': the model has no symbolic dim '%.*s'",
			                 d, (int)(eq - d), d);
	}
	return 0;
}

/* ---- manifest ---- */

static json_t *
shape_json(ir_graph *g, const ir_value *v)
{
	json_t *a = json_array();

	for (int32_t d = 0; d < v->rank; d++) {
		ir_dim x = v->dims[d];
		json_array_append_new(a, ir_is_const(x) ? json_integer(x.c)
		                         : ir_is_known(x) ? json_string(ir_dim_str(g, x)) : json_null());
	}
	return a;
}

static json_t *
sharding_json(const prop_plan *p, const prop_shard *s)
{
	json_t *a = json_array();

	for (int32_t d = 0; d < s->rank; d++) {
		json_t *axes = json_array();
		for (uint8_t i = 0; i < s->dims[d].n; i++)
			json_array_append_new(axes, json_string(p->mesh->names[s->dims[d].ax[i]]));
		json_array_append_new(a, axes);
	}
	return a;
}

static json_t *
tensor_json(ir_graph *g, const prop_plan *p, uint32_t v, const prop_shard *s, int dtype)
{
	json_t *o = json_object();
	const ir_value *x = &g->values[v];
	const char *dt = onnx_dtype_name(x->dtype);

	json_object_set_new(o, "name", json_string(ir_cstr(g, x->name)));
	if (dtype)
		json_object_set_new(o, "dtype", dt ? json_string(dt) : json_null());
	json_object_set_new(o, "shape", shape_json(g, x));
	json_object_set_new(o, "sharding", sharding_json(p, s));
	/* a fused projection: each sharded dim's pieces (see docs/FORMAT.md) */
	int pieced = 0;
	for (int32_t d = 0; d < s->rank; d++)
		pieced |= prop_pieces(&s->dims[d]) > 1;
	if (pieced) {
		json_t *a = json_array();
		for (int32_t d = 0; d < s->rank; d++)
			json_array_append_new(a, json_integer(prop_pieces(&s->dims[d])));
		json_object_set_new(o, "pieces", a);
	}
	return o;
}

static json_t *
file_json(shd_ctx *c, const char *dir, const char *name, int *rc)
{
	char *path;
	uint32_t crc;
	uint64_t bytes;
	char hex[16];
	json_t *o;

	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		*rc = shd_nomem(c);
		return NULL;
	}
	*rc = onnx_crc32_file(c, path, &crc, &bytes);
	free(path);
	if (*rc)
		return NULL;
	snprintf(hex, sizeof hex, "%08x", crc);
	o = json_object();
	json_object_set_new(o, "file", json_string(name));
	json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
	json_object_set_new(o, "crc32", json_string(hex));
	return o;
}

/* The final sharding of graph output j (after its reshard, if any). */
static prop_shard
output_shard(const prop_plan *p, uint32_t j, uint32_t v)
{
	prop_shard s = p->have[v];

	for (uint32_t i = 0; i < p->n_reshards; i++)
		if (p->reshards[i].node == IR_NONE && p->reshards[i].operand == j)
			s = p->want[v];
	s.partial = 0;
	return s;
}

static int
write_manifest(ir_graph *g, const prop_plan *p, const onnxshard_opts *o, const char *tmp,
               const emit_rank_stats *st, json_t *plan)
{
	shd_ctx *c = g->ctx;
	const prop_mesh *m = p->mesh;
	json_t *root = json_object(), *a, *src;
	int rc = 0;
	uint32_t crc;
	uint64_t bytes;
	char hex[16], *path = NULL;

	if ((rc = onnx_crc32_file(c, o->model, &crc, &bytes)))
		goto out;
	snprintf(hex, sizeof hex, "%08x", crc);
	const char *base = strrchr(o->model, '/');
	json_object_set_new(root, "format", json_string("onnxshard-manifest"));
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "generator", json_string("onnxshard " ONNXSHARD_VERSION));
	src = json_object();
	json_object_set_new(src, "file", json_string(base ? base + 1 : o->model));
	json_object_set_new(src, "bytes", json_integer((json_int_t)bytes));
	json_object_set_new(src, "crc32", json_string(hex));
	json_object_set_new(root, "source", src);
	a = json_array();
	for (uint32_t i = 0; i < m->n_axes; i++) {
		json_t *ax = json_object();
		json_object_set_new(ax, "name", json_string(m->names[i]));
		json_object_set_new(ax, "size", json_integer(m->sizes[i]));
		json_array_append_new(a, ax);
	}
	json_t *mesh = json_object();
	json_object_set_new(mesh, "axes", a);
	json_object_set_new(root, "mesh", mesh);
	json_object_set_new(root, "world_size", json_integer(m->world));
	json_object_set_new(root, "collective_domain",
	                    json_string(o->collectives && !strcmp(o->collectives, "ort") ? "com.microsoft" : "onnxshard"));
	a = json_array();
	for (uint32_t i = 0; i < g->n_inputs; i++)
		json_array_append_new(a, tensor_json(g, p, g->inputs[i], &p->have[g->inputs[i]], 1));
	json_object_set_new(root, "inputs", a);
	a = json_array();
	for (uint32_t i = 0; i < g->n_outputs; i++) {
		prop_shard s = output_shard(p, i, g->outputs[i]);
		json_array_append_new(a, tensor_json(g, p, g->outputs[i], &s, 1));
	}
	json_object_set_new(root, "outputs", a);
	a = json_array();
	for (uint32_t v = 0; v < g->n_values; v++)
		if (g->values[v].kind == IR_V_INIT)
			json_array_append_new(a, tensor_json(g, p, v, &p->have[v], 0));
	json_object_set_new(root, "parameters", a);
	a = json_array();
	for (int64_t r = 0; r < m->world && !rc; r++) {
		json_t *e = json_object(), *coords = json_array(), *ext = json_array(), *f;
		int64_t co[PROP_MAX_AXES];
		char name[64], data[64];
		prop_mesh_coords(m, r, co);
		for (uint32_t i = 0; i < m->n_axes; i++)
			json_array_append_new(coords, json_integer(co[i]));
		snprintf(name, sizeof name, "rank%lld.onnx", (long long)r);
		snprintf(data, sizeof data, "rank%lld.onnx.data", (long long)r);
		json_object_set_new(e, "rank", json_integer(r));
		json_object_set_new(e, "coords", coords);
		json_object_set_new(e, "model", json_string(name));
		if ((f = file_json(c, tmp, name, &rc))) {
			json_object_set_new(e, "bytes", json_incref(json_object_get(f, "bytes")));
			json_object_set_new(e, "crc32", json_incref(json_object_get(f, "crc32")));
			json_decref(f);
		}
		if (!rc && st[r].data_bytes && (f = file_json(c, tmp, data, &rc)))
			json_array_append_new(ext, f);
		json_object_set_new(e, "external_data", ext);
		json_array_append_new(a, e);
	}
	json_object_set_new(root, "ranks", a);
	json_object_set_new(root, "plan", json_incref(plan));
	if (rc)
		goto out;
	if (asprintf(&path, "%s/manifest.json", tmp) < 0) {
		path = NULL;
		rc = shd_nomem(c);
		goto out;
	}
	if (json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
		rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot write", path);
out:
	free(path);
	json_decref(root);
	return rc;
}

/* ---- the plan's summary ---- */

static const char *step_names[] = {"AllReduce", "ReduceScatter", "AllGather", "AllToAll", "Slice", "Mask"};

static json_t *
plan_json(ir_graph *g, const prop_plan *p, const onnxshard_opts *o, const emit_rank_stats *st,
          const bindings *b)
{
	json_t *plan = json_object(), *mem = json_array(), *coll = json_array(), *repl = json_array();
	uint8_t *seen = calloc(p->n_reshards + 1, 1);
	double comm = 0;
	int comm_known = 1;

	json_object_set_new(plan, "strategy", json_string(o->strategy ? o->strategy : "auto"));
	for (int64_t r = 0; st && r < p->mesh->world; r++)
		json_array_append_new(mem, json_integer((json_int_t)st[r].param_bytes));
	for (uint32_t i = 0; seen && i < p->n_reshards; i++) {
		const prop_reshard *rs = &p->reshards[i];
		if (seen[rs->id])
			continue;
		seen[rs->id] = 1;
		const ir_value *v = &g->values[rs->value];
		int64_t elems = 1;
		for (int32_t d = 0; d < v->rank; d++) {
			int64_t x;
			if (ir_dim_eval(g, v->dims[d], bind_dim, (void *)b, &x))
				comm_known = 0, x = 1;
			elems *= x;
		}
		for (uint32_t k = 0; k < rs->n; k++) {
			const prop_step *s = &p->steps[rs->first + k];
			json_t *e = json_object(), *axes = json_array();
			for (uint8_t j = 0; j < s->n_axes; j++)
				json_array_append_new(axes, json_string(p->mesh->names[s->ax[j]]));
			json_object_set_new(e, "op", json_string(step_names[s->kind]));
			json_object_set_new(e, "value", json_string(ir_cstr(g, v->name)));
			json_object_set_new(e, "mesh_axes", axes);
			json_array_append_new(coll, e);
			if (s->kind <= PROP_ALLTOALL)
				comm += (double)elems * (double)onnx_dtype_size(v->dtype) / (double)p->mesh->world;
		}
	}
	for (uint32_t i = 0; i < p->n_notes; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "value", json_string(ir_cstr(g, g->values[p->notes[i].value].name)));
		json_object_set_new(e, "why", json_string(p->notes[i].why));
		json_array_append_new(repl, e);
	}
	free(seen);
	/* until the cost model lands: no time, memory is parameters only, and
	 * symbolic dims that --dim did not bind count as 1 */
	json_object_set_new(plan, "step_time_s", json_real(0.0));
	json_object_set_new(plan, "peak_memory_bytes", mem);
	json_object_set_new(plan, "comm_bytes", json_integer((json_int_t)comm));
	json_object_set_new(plan, "comm_bytes_exact", json_boolean(comm_known));
	json_object_set_new(plan, "reshards", coll);
	json_object_set_new(plan, "replicated", repl);
	return plan;
}

static void
print_summary(ir_graph *g, const prop_plan *p, const onnxshard_opts *o, json_t *plan, FILE *out)
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
	if (json_array_size(mem))
		fprintf(out, "  parameter bytes on rank 0: %lld\n",
		        (long long)json_integer_value(json_array_get(mem, 0)));
	/* collectives by op and axes */
	json_t *coll = json_object_get(plan, "reshards"), *count = json_object();
	json_array_foreach(coll, i, e) {
		char key[256] = "";
		json_t *ax;
		size_t j;
		snprintf(key, sizeof key, "%s over [", json_string_value(json_object_get(e, "op")));
		json_array_foreach(json_object_get(e, "mesh_axes"), j, ax) {
			strncat(key, j ? "," : "", sizeof key - strlen(key) - 1);
			strncat(key, json_string_value(ax), sizeof key - strlen(key) - 1);
		}
		strncat(key, "]", sizeof key - strlen(key) - 1);
		json_object_set_new(count, key, json_integer(json_integer_value(json_object_get(count, key)) + 1));
	}
	const char *key;
	json_t *val;
	if (!json_object_size(count))
		fputs("  reshards: none\n", out);
	json_object_foreach(count, key, val)
		fprintf(out, "  %-36s %lld\n", key, (long long)json_integer_value(val));
	json_decref(count);
	json_array_foreach(json_object_get(plan, "replicated"), i, e)
		fprintf(out, "  replicated %s: %s\n", json_string_value(json_object_get(e, "value")),
		        json_string_value(json_object_get(e, "why")));
}

/* ---- the output directory ---- */

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

int
onnxshard_shard(onnxshard_ctx *c, const onnxshard_opts *o)
{
	onnx_model *m = NULL;
	ir_graph *g = NULL;
	prop_mesh mesh;
	prop_plan p;
	bindings b = {0};
	emit_rank_stats *st = NULL;
	json_t *plan = NULL;
	char *tmp = NULL, *old = NULL;
	struct stat sb;
	int rc, have_plan = 0;
	FILE *log = o->quiet ? NULL : stderr;

	memset(&p, 0, sizeof p);
	if ((rc = prop_mesh_parse(c, o->mesh ? o->mesh : "", &mesh))) {
		prop_mesh_free(c, &mesh);
		return rc;
	}
	if (o->collectives && strcmp(o->collectives, "onnxshard") && strcmp(o->collectives, "ort")) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "--collectives '%s': want onnxshard or ort", o->collectives);
		goto out;
	}
	if (o->out && lstat(o->out, &sb) == 0 && !o->force) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: already exists (use --force to replace it)", o->out);
		goto out;
	}
	if ((rc = onnx_load(c, o->model, &m)) || (rc = ir_lift(c, m, &g)) ||
	    (rc = parse_dims(c, o, g, &b)) || (rc = prop_plan_init(g, &mesh, &p)))
		goto out;
	have_plan = 1;
	p.bind = bind_dim;
	p.bind_ud = &b;
	if ((rc = search_apply(g, &p, o->strategy ? o->strategy : "auto", log)) ||
	    (rc = prop_materialize(g, &p)))
		goto out;
	if (!(st = shd_calloc(c, (size_t)mesh.world, sizeof *st))) {
		rc = shd_nomem(c);
		goto out;
	}
	if (o->out) {
		emit_opts eo = {ONNX_EXT_THRESHOLD, o->collectives && !strcmp(o->collectives, "ort")};
		if (asprintf(&tmp, "%s.tmp-XXXXXX", o->out) < 0) {
			tmp = NULL;
			rc = shd_nomem(c);
			goto out;
		}
		if (!mkdtemp(tmp)) {
			rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot create a temp dir beside it: %s",
			               o->out, strerror(errno));
			free(tmp);
			tmp = NULL;
			goto out;
		}
		mode_t um = umask(0);
		umask(um);
		chmod(tmp, 0777 & ~um);
		for (int64_t r = 0; r < mesh.world && !rc; r++) {
			if (log && mesh.world > 8)
				fprintf(log, "\rwriting rank %lld of %lld", (long long)r + 1, (long long)mesh.world);
			rc = emit_rank(g, &p, r, tmp, &eo, &st[r]);
		}
		if (log && mesh.world > 8)
			fputc('\n', log);
		if (rc)
			goto out;
	}
	plan = plan_json(g, &p, o, o->out ? st : NULL, &b);
	if (o->out && (rc = write_manifest(g, &p, o, tmp, st, plan)))
		goto out;
	if (o->out) {
		if (lstat(o->out, &sb) == 0) {
			if (asprintf(&old, "%s.old-XXXXXX", o->out) < 0 || !mkdtemp(old) ||
			    rename(o->out, old) != 0) {
				rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot move the old output aside: %s", o->out,
				               strerror(errno));
				goto out;
			}
		}
		if (rename(tmp, o->out) != 0) {
			rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot rename the finished output into place: %s",
			               o->out, strerror(errno));
			goto out;
		}
		free(tmp);
		tmp = NULL;
		if (old)
			rm_tree(old);
	}
	if (o->report) {
		if (o->json) {
			json_dumpf(plan, o->report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', o->report);
		} else {
			print_summary(g, &p, o, plan, o->report);
			if (o->out)
				fprintf(o->report, "wrote %s: %lld rank models, manifest.json\n", o->out,
				        (long long)mesh.world);
		}
	}
out:
	if (tmp) {
		rm_tree(tmp);
		free(tmp);
	}
	free(old);
	json_decref(plan);
	shd_free(c, st, 0);
	shd_free(c, b.vals, 0);
	if (have_plan)
		prop_plan_free(g, &p);
	ir_free(g);
	onnx_model_free(m);
	prop_mesh_free(c, &mesh);
	return rc;
}
