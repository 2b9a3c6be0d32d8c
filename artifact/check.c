/* `onnxshard check`: an output directory read back and checked against
 * DESIGN.md's format: manifest, checksums, rank models, collectives. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "artifact.h"

/* Output directory check.
 * requires: DIR holding manifest.json and the files it names
 * provides: the manifest read into an art_outdir (mesh, ranks, global
 *           inputs and outputs); every file's size and crc32 verified; every
 *           rank model loaded (tensors, external data) and matched to the
 *           manifest; every collective's attributes and group checked, and
 *           present alike on all members of its group */

#define MANIFEST  "manifest.json"
#define MAX_WORLD ((uint64_t)1 << 20)

typedef struct {
	const char *name; /* arena copy */
	art_coll coll;
} coll_rec;

/* A symbolic dim's name as one rank model uses it: the size it stands for
 * is the manifest's global size split `ways` ways (first use: `by`). */
typedef struct {
	const char *name, *by;
	int64_t ways;
} sym_rec;

static const char *const coll_ops[] = {NULL, "AllReduce", "AllGather", "ReduceScatter", "AllToAll"};

/* A formatted string in the arena ("ranks[2]: "); "" when out of memory
 * (counted in c->n_refused: art_outdir_check then reports out of memory,
 * whatever the text became). Paths are made with shd_arena_printf, whose
 * NULL is checked. */
static const char *
vat(art_outdir *d, const char *fmt, va_list ap)
{
	const char *s = shd_arena_vprintf(d->ctx, &d->arena, fmt, ap);

	return s ? s : "";
}

__attribute__((format(printf, 2, 3))) static const char *
at(art_outdir *d, const char *fmt, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, fmt);
	s = vat(d, fmt, ap);
	va_end(ap);
	return s;
}

/* "DIR/FILE: what is wrong", bad input. */
__attribute__((format(printf, 3, 4))) static int
fail(art_outdir *d, const char *file, const char *fmt, ...)
{
	va_list ap;
	const char *msg;

	va_start(ap, fmt);
	msg = vat(d, fmt, ap);
	va_end(ap);
	return shd_error(d->ctx, ONNXSHARD_EINPUT, "%s/%s: %s", d->dir, file, msg);
}

/* "DIR/FILE: node 'N' (Op): what is wrong". */
__attribute__((format(printf, 4, 5))) static int
nfail(art_outdir *d, const char *file, const Onnx__NodeProto *n, const char *fmt, ...)
{
	va_list ap;
	const char *msg;

	va_start(ap, fmt);
	msg = vat(d, fmt, ap);
	va_end(ap);
	return fail(d, file, "node '%s' (%s): %s", n->name ? n->name : "", n->op_type, msg);
}

/* "[0, 1, 2]" in the arena. */
static const char *
ints_text(art_outdir *d, const int64_t *v, size_t n)
{
	char *s = shd_arena_alloc(d->ctx, &d->arena, 24 * n + 3), *p = s;

	if (!s)
		return "[...]";
	*p++ = '[';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%lld", i ? ", " : "", (long long)v[i]);
	strcpy(p, "]");
	return s;
}

/* Member key of object o (where: "ranks[2]: ", "" at the top) with the wanted
 * JSON type; strings must not be empty. */
static int
field(art_outdir *d, json_t *o, const char *where, const char *key, int type, json_t **v)
{
	static const char *names[] = {[JSON_OBJECT] = "an object",
	                              [JSON_ARRAY] = "an array",
	                              [JSON_STRING] = "a string",
	                              [JSON_INTEGER] = "an integer"};

	*v = json_object_get(o, key);
	if (!*v)
		return fail(d, MANIFEST, "%smissing field '%s'", where, key);
	if ((int)json_typeof(*v) != type)
		return fail(d, MANIFEST, "%sfield '%s' should be %s", where, key, names[type]);
	if (type == JSON_STRING && !json_string_length(*v))
		return fail(d, MANIFEST, "%sfield '%s' is empty", where, key);
	return 0;
}

static int
field_int(art_outdir *d, json_t *o, const char *where, const char *key, int64_t lo, int64_t *out)
{
	json_t *v;
	int rc = field(d, o, where, key, JSON_INTEGER, &v);

	if (rc)
		return rc;
	if ((*out = json_integer_value(v)) < lo)
		return fail(d, MANIFEST, "%sfield '%s' is %lld, below %lld", where, key,
		            (long long)*out, (long long)lo);
	return 0;
}

static int
field_str(art_outdir *d, json_t *o, const char *where, const char *key, const char **out)
{
	json_t *v;
	int rc = field(d, o, where, key, JSON_STRING, &v);

	*out = rc ? NULL : json_string_value(v);
	return rc;
}

static int
field_crc(art_outdir *d, json_t *o, const char *where, uint32_t *crc)
{
	const char *s;
	int rc = field_str(d, o, where, "crc32", &s);

	if (rc)
		return rc;
	if (strlen(s) != 8 || strspn(s, "0123456789abcdefABCDEF") != 8)
		return fail(d, MANIFEST, "%scrc32 '%s' is not 8 hex digits", where, s);
	*crc = (uint32_t)strtoul(s, NULL, 16);
	return 0;
}

static int
axis_index(const art_outdir *d, const char *name, size_t len)
{
	for (size_t i = 0; i < d->n_axes; i++)
		if (strlen(d->axis[i]) == len && !memcmp(d->axis[i], name, len))
			return (int)i;
	return -1;
}

static size_t
rank_of(const art_outdir *d, const int64_t *coords)
{
	size_t r = 0;

	for (size_t i = 0; i < d->n_axes; i++)
		r = r * (size_t)d->size[i] + (size_t)coords[i];
	return r;
}

/* One input or output entry (dtype required), or a parameter (is_param:
 * dtype optional, "pieces" allowed: an integer >= 1 per dim, each dim
 * dividing into its pieces times its shards; "padded" allowed: per dim
 * the padded size its shards hold, checked as the dim's size). */
static int
read_tensor(art_outdir *d, json_t *t, const char *where, int is_param, art_mtensor *mt)
{
	json_t *shape, *sh, *v, *pc = json_object_get(t, "pieces");
	const char *dt;
	uint64_t used = 0;
	int rc;

	if (!json_is_object(t))
		return fail(d, MANIFEST, "%sshould be an object", where);
	if ((rc = field_str(d, t, where, "name", &mt->name)))
		return rc;
	where = at(d, "%s'%s': ", where, mt->name);
	mt->dtype = -1;
	if ((!is_param || json_object_get(t, "dtype")) &&
	    ((rc = field_str(d, t, where, "dtype", &dt)) ||
	     (mt->dtype = onnx_dtype_from_name(dt)) < 0))
		return rc ? rc : fail(d, MANIFEST, "%sunknown dtype '%s'", where, dt);
	if ((rc = field(d, t, where, "shape", JSON_ARRAY, &shape)) ||
	    (rc = field(d, t, where, "sharding", JSON_ARRAY, &sh)))
		return rc;
	if ((mt->ndim = json_array_size(shape)) != json_array_size(sh))
		return fail(d, MANIFEST, "%ssharding has %zu entries, shape %zu", where,
		            json_array_size(sh), mt->ndim);
	if (pc && !is_param)
		return fail(d, MANIFEST, "%sa graph input or output has no pieces", where);
	if (pc && (!json_is_array(pc) || json_array_size(pc) != mt->ndim))
		return fail(d, MANIFEST, "%spieces should be an array of %zu integers", where,
		            mt->ndim);
	mt->dims = shd_arena_zalloc(d->ctx, &d->arena, (mt->ndim + 1) * sizeof *mt->dims);
	mt->sym = shd_arena_zalloc(d->ctx, &d->arena, (mt->ndim + 1) * sizeof *mt->sym);
	mt->axes =
	        shd_arena_alloc(d->ctx, &d->arena, (mt->ndim * d->n_axes + 1) * sizeof *mt->axes);
	mt->pieces = shd_arena_zalloc(d->ctx, &d->arena, (mt->ndim + 1) * sizeof *mt->pieces);
	if (!mt->dims || !mt->sym || !mt->axes || !mt->pieces)
		return shd_nomem(d->ctx);
	for (size_t i = 0; i < mt->ndim; i++) {
		json_t *dim = json_array_get(shape, i), *axes = json_array_get(sh, i);
		int64_t prod = 1;
		mt->pieces[i] = 1;
		if (pc && (!json_is_integer(v = json_array_get(pc, i)) ||
		           (mt->pieces[i] = json_integer_value(v)) < 1))
			return fail(d, MANIFEST, "%spieces[%zu] should be an integer >= 1", where,
			            i);
		mt->dims[i] = json_is_integer(dim) ? json_integer_value(dim) : -1;
		if (json_is_string(dim) && json_string_length(dim))
			mt->sym[i] = json_string_value(dim);
		else if (mt->dims[i] < 0)
			return fail(d, MANIFEST, "%sshape[%zu] should be a size >= 0 or a name",
			            where, i);
		if (!json_is_array(axes))
			return fail(d, MANIFEST, "%ssharding[%zu] should be an array of axis names",
			            where, i);
		for (size_t k = 0; k < d->n_axes; k++)
			mt->axes[i * d->n_axes + k] = -1;
		for (size_t k = 0; k < json_array_size(axes); k++) {
			int a = -1;
			if (json_is_string(v = json_array_get(axes, k)))
				a = axis_index(d, json_string_value(v), json_string_length(v));
			if (a < 0)
				return fail(d, MANIFEST,
				            "%ssharding[%zu] names %s, not a mesh axis", where, i,
				            json_is_string(v) ? at(d, "'%s'", json_string_value(v))
				                              : "a non-string");
			if (used & ((uint64_t)1 << a))
				return fail(d, MANIFEST, "%smesh axis '%s' shards the tensor twice",
				            where, d->axis[a]);
			used |= (uint64_t)1 << a;
			mt->axes[i * d->n_axes + k] = a;
			prod *= d->size[a];
		}
		/* a padded split: held as equal blocks of the padded size */
		json_t *pad = is_param ? json_object_get(t, "padded") : NULL;
		if (pad) {
			json_t *pv = json_is_array(pad) && json_array_size(pad) == mt->ndim
			                     ? json_array_get(pad, i)
			                     : NULL;
			int64_t ps = json_is_integer(pv) ? json_integer_value(pv) : -1;
			if (mt->dims[i] < 0 || ps < mt->dims[i] || ps % prod ||
			    mt->dims[i] % mt->pieces[i])
				return fail(
				        d, MANIFEST,
				        "%spadded[%zu] should be dim %zu's size or more, in %lld "
				        "equal blocks (of each of its pieces)",
				        where, i, i, (long long)prod);
			mt->dims[i] = ps; /* the blocks held */
		}
		if (mt->dims[i] >= 0 && mt->pieces[i] > 1 && mt->dims[i] % (prod * mt->pieces[i]))
			return fail(
			        d, MANIFEST,
			        "%sdim %zu (%lld) does not divide into %lld pieces of %lld shards",
			        where, i, (long long)mt->dims[i], (long long)mt->pieces[i],
			        (long long)prod);
		if (mt->dims[i] >= 0 && mt->dims[i] % prod)
			return fail(d, MANIFEST,
			            "%sdim %zu (%lld) does not divide into %lld shards", where, i,
			            (long long)mt->dims[i], (long long)prod);
	}
	return 0;
}

static int
read_tensors(art_outdir *d, const char *key, int is_param, art_mtensor **out, size_t *n)
{
	json_t *arr = json_object_get(d->root, key);

	*n = json_array_size(arr);
	if (!(*out = shd_arena_zalloc(d->ctx, &d->arena, (*n + 1) * sizeof **out)))
		return shd_nomem(d->ctx);
	for (size_t i = 0; i < *n; i++) {
		int rc = read_tensor(d, json_array_get(arr, i), at(d, "%s[%zu]: ", key, i),
		                     is_param, &(*out)[i]);
		if (rc)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp((*out)[j].name, (*out)[i].name))
				return fail(d, MANIFEST, "%s: '%s' listed twice", key,
				            (*out)[i].name);
	}
	return 0;
}

static int
read_mesh(art_outdir *d)
{
	json_t *axes, *v;
	uint64_t w = 1;
	int rc;

	if ((rc = field(d, json_object_get(d->root, "mesh"), "mesh: ", "axes", JSON_ARRAY, &axes)))
		return rc;
	d->n_axes = json_array_size(axes);
	if (d->n_axes == 0 || d->n_axes > 63)
		return fail(d, MANIFEST, "mesh: %zu axes (want 1 to 63)", d->n_axes);
	d->axis = shd_arena_zalloc(d->ctx, &d->arena, d->n_axes * sizeof *d->axis);
	d->size = shd_arena_zalloc(d->ctx, &d->arena, d->n_axes * sizeof *d->size);
	if (!d->axis || !d->size)
		return shd_nomem(d->ctx);
	for (size_t i = 0; i < d->n_axes; i++) {
		const char *where = at(d, "mesh.axes[%zu]: ", i);
		if (!json_is_object(v = json_array_get(axes, i)))
			return fail(d, MANIFEST, "%sshould be an object", where);
		if ((rc = field_str(d, v, where, "name", &d->axis[i])) ||
		    (rc = field_int(d, v, where, "size", 1, &d->size[i])))
			return rc;
		if (axis_index(d, d->axis[i], strlen(d->axis[i])) != (int)i)
			return fail(d, MANIFEST, "%saxis '%s' named twice", where, d->axis[i]);
		if (shd_mul_overflow(w, (uint64_t)d->size[i], &w) || w > MAX_WORLD)
			return fail(d, MANIFEST, "mesh: more than %llu ranks",
			            (unsigned long long)MAX_WORLD);
	}
	int64_t world = json_integer_value(json_object_get(d->root, "world_size"));
	if ((uint64_t)world != w)
		return fail(d, MANIFEST, "world_size is %lld, the mesh has %llu ranks",
		            (long long)world, (unsigned long long)w);
	d->world = (size_t)w;
	return 0;
}

/* A file the manifest names: a plain name, a regular file (no symlink),
 * with the size and crc32 the manifest gives. */
static int
check_file(art_outdir *d, json_t *o, const char *where, const char *key, const char **name,
           uint64_t *total)
{
	uint32_t crc, want_crc;
	uint64_t bytes;
	int64_t want_bytes;
	struct stat st;
	int rc;

	if ((rc = field_str(d, o, where, key, name)) ||
	    (rc = field_int(d, o, where, "bytes", 0, &want_bytes)) ||
	    (rc = field_crc(d, o, where, &want_crc)))
		return rc;
	if (strpbrk(*name, "/\\") || !strcmp(*name, ".") || !strcmp(*name, "..") ||
	    !strcmp(*name, MANIFEST))
		return fail(d, MANIFEST, "%s%s '%s' is not a plain file name inside the directory",
		            where, key, *name);
	const char *path = shd_arena_printf(d->ctx, &d->arena, "%s/%s", d->dir, *name);
	if (!path)
		return shd_nomem(d->ctx);
	if (lstat(path, &st) != 0)
		return fail(d, *name, "%s", strerror(errno));
	if (S_ISLNK(st.st_mode))
		return fail(d, *name, "is a symlink (files must be inside the directory)");
	if (!S_ISREG(st.st_mode))
		return fail(d, *name, "not a regular file");
	if ((rc = onnx_crc32_file(d->ctx, path, &crc, &bytes)))
		return rc;
	if (bytes != (uint64_t)want_bytes)
		return fail(d, *name, "%llu bytes, the manifest says %lld",
		            (unsigned long long)bytes, (long long)want_bytes);
	if (crc != want_crc)
		return fail(d, *name, "crc32 %08x, the manifest says %08x", crc, want_crc);
	*total += bytes;
	return 0;
}

/* Ranks 0..world-1 each once, coords row-major; entries[r] is rank r's. */
static int
read_ranks(art_outdir *d, json_t **entries)
{
	json_t *ranks = json_object_get(d->root, "ranks"), *v, *coords;
	int rc;

	d->coords = shd_arena_zalloc(d->ctx, &d->arena, d->world * d->n_axes * sizeof *d->coords);
	d->model = shd_arena_zalloc(d->ctx, &d->arena, d->world * sizeof *d->model);
	d->absent = shd_arena_zalloc(d->ctx, &d->arena, d->world);
	if (!d->coords || !d->model || !d->absent)
		return shd_nomem(d->ctx);
	for (size_t i = 0; i < json_array_size(ranks); i++) {
		const char *where = at(d, "ranks[%zu]: ", i);
		int64_t r;
		if (!json_is_object(v = json_array_get(ranks, i)))
			return fail(d, MANIFEST, "%sshould be an object", where);
		if ((rc = field_int(d, v, where, "rank", 0, &r)) ||
		    (rc = field(d, v, where, "coords", JSON_ARRAY, &coords)))
			return rc;
		if ((uint64_t)r >= d->world)
			return fail(d, MANIFEST, "%srank %lld, world_size is %zu", where,
			            (long long)r, d->world);
		if (entries[r])
			return fail(d, MANIFEST, "%srank %lld listed twice", where, (long long)r);
		entries[r] = v;
		/* shard --rank: a rank another process writes; its files are not here */
		json_t *w = json_object_get(v, "written");
		if (w && !json_is_boolean(w))
			return fail(d, MANIFEST, "%swritten should be true or false", where);
		if (json_is_false(w)) {
			if ((rc = field_str(d, v, where, "model", &d->model[r])))
				return rc;
			d->absent[r] = 1;
			d->n_absent++;
		}
		int64_t *c = &d->coords[(size_t)r * d->n_axes];
		for (size_t a = d->n_axes, q = (size_t)r; a-- > 0; q /= (size_t)d->size[a])
			c[a] = (int64_t)(q % (size_t)d->size[a]);
		int ok = json_array_size(coords) == d->n_axes;
		for (size_t a = 0; ok && a < d->n_axes; a++)
			ok = json_is_integer(json_array_get(coords, a)) &&
			     json_integer_value(json_array_get(coords, a)) == c[a];
		if (!ok)
			return fail(d, MANIFEST,
			            "%scoords should be rank %lld's row-major coords %s", where,
			            (long long)r, ints_text(d, c, d->n_axes));
	}
	for (size_t r = 0; r < d->world; r++)
		if (!entries[r])
			return fail(d, MANIFEST, "ranks: no entry for rank %zu (world_size %zu)", r,
			            d->world);
	return 0;
}

/* The group rank r must have: ranks along axes from r, in shard-index order. */
static int64_t *
want_group(art_outdir *d, size_t r, const int *axes, size_t n_axes, size_t *g)
{
	int64_t *want, *c = shd_arena_alloc(d->ctx, &d->arena, d->n_axes * sizeof *c);

	*g = 1;
	for (size_t i = 0; i < n_axes; i++)
		*g *= (size_t)d->size[axes[i]];
	if (!c || !(want = shd_arena_alloc(d->ctx, &d->arena, *g * sizeof *want)))
		return NULL;
	for (size_t s = 0; s < *g; s++) {
		memcpy(c, &d->coords[r * d->n_axes], d->n_axes * sizeof *c);
		for (size_t i = n_axes, q = s; i-- > 0; q /= (size_t)d->size[axes[i]])
			c[axes[i]] = (int64_t)(q % (size_t)d->size[axes[i]]);
		want[s] = (int64_t)rank_of(d, c);
	}
	return want;
}

/* "ort_worlds": {"axes": [...], "size": N, "worlds": [[ranks]...]}: the
 * axes each ONNX Runtime world spans (every axis when absent). */
static int
read_ort_worlds(art_outdir *d)
{
	json_t *o = json_object_get(d->root, "ort_worlds"), *axes, *x;
	size_t i;

	d->ort_axes = shd_arena_alloc(d->ctx, &d->arena, (d->n_axes + 1) * sizeof *d->ort_axes);
	if (!d->ort_axes)
		return shd_nomem(d->ctx);
	d->n_ort_axes = 0;
	d->ort_size = 1;
	if (!o) {
		for (i = 0; i < d->n_axes; i++)
			d->ort_axes[d->n_ort_axes++] = (int)i, d->ort_size *= d->size[i];
		return 0;
	}
	if (!json_is_object(o) || !json_is_array(axes = json_object_get(o, "axes")))
		return fail(d, MANIFEST, "ort_worlds: want an object with an array 'axes'");
	json_array_foreach(axes, i, x)
	{
		const char *name = json_string_value(x);
		int a = name ? axis_index(d, name, strlen(name)) : -1;
		if (a < 0 || (d->n_ort_axes && a <= d->ort_axes[d->n_ort_axes - 1]))
			return fail(d, MANIFEST,
			            "ort_worlds: axes must be mesh axes, each once, in mesh order");
		d->ort_axes[d->n_ort_axes++] = a;
		d->ort_size *= d->size[a];
	}
	if (json_integer_value(json_object_get(o, "size")) != d->ort_size)
		return fail(d, MANIFEST, "ort_worlds: size is not the product of its axes (%lld)",
		            (long long)d->ort_size);
	return 0;
}

/* ort_worlds.worlds (after read_ranks): world / size worlds, each the
 * group over the world's axes of its first rank, in world-rank (shard
 * index) order; every rank in exactly one. */
static int
check_ort_worlds(art_outdir *d)
{
	json_t *o = json_object_get(d->root, "ort_worlds"), *ws, *w, *x;
	size_t n = d->world / (size_t)d->ort_size, i, j, g;
	uint8_t *seen = shd_arena_zalloc(d->ctx, &d->arena, d->world);
	int64_t r;

	if (!o)
		return 0;
	if (!seen)
		return shd_nomem(d->ctx);
	if (!json_is_array(ws = json_object_get(o, "worlds")) || json_array_size(ws) != n)
		return fail(d, MANIFEST,
		            "ort_worlds: worlds should be an array of %zu worlds of %lld ranks", n,
		            (long long)d->ort_size);
	json_array_foreach(ws, i, w)
	{
		const char *where = at(d, "ort_worlds.worlds[%zu]: ", i);
		int64_t *want;
		if (!json_is_array(w) || json_array_size(w) != (size_t)d->ort_size)
			return fail(d, MANIFEST, "%sshould be an array of %lld ranks", where,
			            (long long)d->ort_size);
		json_array_foreach(w, j, x)
		{
			if (!json_is_integer(x) || (r = json_integer_value(x)) < 0 ||
			    (uint64_t)r >= d->world)
				return fail(d, MANIFEST, "%sentry %zu is not a rank below %zu",
				            where, j, d->world);
			if (seen[r]++)
				return fail(d, MANIFEST, "%srank %lld is in another world too",
				            where, (long long)r);
		}
		r = json_integer_value(json_array_get(w, 0));
		if (!(want = want_group(d, (size_t)r, d->ort_axes, d->n_ort_axes, &g)))
			return shd_nomem(d->ctx);
		for (j = 0; j < g && json_integer_value(json_array_get(w, j)) == want[j]; j++)
			;
		if (j < g)
			return fail(d, MANIFEST,
			            "%sshould be %s (rank %lld's group over the world's axes, in "
			            "world-rank order)",
			            where, ints_text(d, want, g), (long long)r);
	}
	return 0;
}

/* The manifest of d->dir, read and checked as a whole: every top-level
 * field of its type, format and version, the source, mesh, collective
 * domain (and ORT worlds against the mesh), inputs, outputs, parameters,
 * the plan's figures, and the ranks (read_ranks).
 * provides: d->root (the JSON, owned by d), d->world, d->in, d->out,
 *   d->param (in d's arena); *entries: each rank's entry by rank (d's
 *   arena; entries of ranks not written marked in d->absent)
 * Returns 0, ONNXSHARD_EINPUT naming DIR/manifest.json and the field, or
 * out of memory. */
static int
read_manifest(art_outdir *d, json_t ***entries)
{
	/* clang-format off */
	static const struct {
		const char *key;
		int type;
	} top[] = {
		{"format", JSON_STRING}, {"version", JSON_INTEGER}, {"generator", JSON_STRING},
		{"source", JSON_OBJECT}, {"mesh", JSON_OBJECT}, {"world_size", JSON_INTEGER},
		{"collective_domain", JSON_STRING}, {"inputs", JSON_ARRAY}, {"outputs", JSON_ARRAY},
		{"parameters", JSON_ARRAY}, {"ranks", JSON_ARRAY}, {"plan", JSON_OBJECT},
	};
	/* clang-format on */
	const char *path = shd_arena_printf(d->ctx, &d->arena, "%s/%s", d->dir, MANIFEST), *s;
	json_t *v, *src, *plan;
	struct stat st;
	json_error_t je;
	int rc;

	if (!path)
		return shd_nomem(d->ctx);
	if (lstat(path, &st) != 0)
		return fail(d, MANIFEST, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(d, MANIFEST, "not a regular file");
	if (!(d->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je)))
		return json_error_code(&je) == json_error_out_of_memory
		               ? shd_nomem(d->ctx)
		               : fail(d, MANIFEST, "line %d: %s", je.line, je.text);
	if (!json_is_object(d->root))
		return fail(d, MANIFEST, "not a JSON object");
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		if ((rc = field(d, d->root, "", top[i].key, top[i].type, &v)))
			return rc;
	if (strcmp(s = json_string_value(json_object_get(d->root, "format")), "onnxshard-manifest"))
		return fail(d, MANIFEST, "format is '%s', want 'onnxshard-manifest'", s);
	if (json_integer_value(json_object_get(d->root, "version")) != 1)
		return fail(d, MANIFEST, "version %lld, this onnxshard reads version 1",
		            (long long)json_integer_value(json_object_get(d->root, "version")));
	src = json_object_get(d->root, "source");
	if ((rc = field(d, src, "source: ", "file", JSON_STRING, &v)) ||
	    (rc = field(d, src, "source: ", "bytes", JSON_INTEGER, &v)) ||
	    (rc = field_crc(d, src, "source: ", &(uint32_t){0})) || (rc = read_mesh(d)))
		return rc;
	s = json_string_value(json_object_get(d->root, "collective_domain"));
	if (strcmp(s, "onnxshard") && strcmp(s, "com.microsoft"))
		return fail(d, MANIFEST, "collective_domain '%s' (want onnxshard or com.microsoft)",
		            s);
	d->ort = !strcmp(s, "com.microsoft");
	if (d->ort && (rc = read_ort_worlds(d)))
		return rc;
	if (!d->ort && json_object_get(d->root, "ort_worlds"))
		return fail(d, MANIFEST, "ort_worlds without com.microsoft collectives");
	plan = json_object_get(d->root, "plan");
	if ((rc = read_tensors(d, "inputs", 0, &d->in, &d->n_in)) ||
	    (rc = read_tensors(d, "outputs", 0, &d->out, &d->n_out)) ||
	    (rc = read_tensors(d, "parameters", 1, &d->param, &d->n_param)) ||
	    (rc = field(d, plan, "plan: ", "strategy", JSON_STRING, &v)))
		return rc;
	/* The plan's figures are optional: the hand-made examples have none. */
	int ok = !(v = json_object_get(plan, "peak_memory_bytes")) || json_is_array(v);
	for (size_t i = 0; ok && i < json_array_size(v); i++)
		ok = json_is_integer(json_array_get(v, i));
	if (!ok || ((v = json_object_get(plan, "step_time_s")) && !json_is_number(v)) ||
	    ((v = json_object_get(plan, "comm_bytes")) && !json_is_number(v)))
		return fail(d, MANIFEST,
		            "plan: step_time_s, comm_bytes or peak_memory_bytes mistyped");
	if (!(*entries = shd_arena_zalloc(d->ctx, &d->arena, d->world * sizeof **entries)))
		return shd_nomem(d->ctx);
	if ((rc = read_ranks(d, *entries)))
		return rc;
	return d->ort ? check_ort_worlds(d) : 0;
}

/* Attribute key of the given type, or NULL; marks it in *used. */
static const Onnx__AttributeProto *
attr(const Onnx__NodeProto *n, const char *key, int type, uint64_t *used)
{
	for (size_t i = 0; i < n->n_attribute; i++)
		if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, key) &&
		    (int)n->attribute[i]->type == type) {
			*used |= (uint64_t)1 << i;
			return n->attribute[i];
		}
	return NULL;
}

int
art_coll_read(art_outdir *d, size_t r, const char *file, const Onnx__NodeProto *n, art_coll *out)
{
	enum { INT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT };
	const char *dom = n->domain ? n->domain : "", *op = n->op_type ? n->op_type : "";
	const Onnx__AttributeProto *a;
	uint64_t used = 0;
	size_t g;

	memset(out, 0, sizeof *out);
	for (int k = 1; k <= ART_ALLTOALL; k++)
		out->kind = strcmp(op, coll_ops[k]) ? out->kind : k;
	int ms = !strcmp(dom, "com.microsoft");
	if (ms && out->kind == ART_REDUCESCATTER)
		return nfail(d, file, n,
		             "ONNX Runtime's com.microsoft domain has no ReduceScatter");
	if (strcmp(dom, "onnxshard") && !(ms && out->kind))
		return out->kind = 0;
	if (!out->kind)
		return nfail(d, file, n, "unknown collective op in domain 'onnxshard'");
	if (ms != d->ort)
		return nfail(d, file, n,
		             "collective in domain '%s', the manifest's collective_domain is '%s'",
		             dom, d->ort ? "com.microsoft" : "onnxshard");
	if (n->n_attribute > 64)
		return nfail(d, file, n, "too many attributes");
	if (n->n_input != 1 || n->n_output != 1 || !*n->input[0] || !*n->output[0])
		return nfail(d, file, n, "a collective takes one input and gives one output");
	/* The int attributes each op needs (ORT's are read below). */
	static const char *const ints[][2] = {[ART_ALLGATHER] = {"axis"},
	                                      [ART_REDUCESCATTER] = {"axis"},
	                                      [ART_ALLTOALL] = {"split_axis", "concat_axis"}};
	int64_t *slot[2] = {out->kind == ART_ALLTOALL ? &out->split_axis : &out->axis,
	                    &out->concat_axis};
	for (int i = 0; !ms && i < 2 && ints[out->kind][i]; i++) {
		if (!(a = attr(n, ints[out->kind][i], INT, &used)))
			return nfail(d, file, n, "needs int attribute '%s'", ints[out->kind][i]);
		*slot[i] = a->i;
	}
	if (ms) {
		/* ONNX Runtime's schemas (collective_defs.cc): AllReduce has no
		 * attribute (a sum over the whole world); AllGather has axis
		 * (default 1) and group_size (default 1); AllToAll has group_size
		 * and splits and concatenates dim 0. ORT refuses any other
		 * attribute at load. The group is one ORT world (ort_worlds). */
		if (out->kind == ART_ALLGATHER)
			out->axis = (a = attr(n, "axis", INT, &used)) ? a->i : 1;
		int64_t gs = 1;
		if (out->kind != ART_ALLREDUCE && (a = attr(n, "group_size", INT, &used)))
			gs = a->i;
		if (out->kind != ART_ALLREDUCE && gs != d->ort_size)
			return nfail(d, file, n,
			             "group_size is %lld, want the ORT world's size %lld",
			             (long long)gs, (long long)d->ort_size);
		out->reduce = out->kind == ART_ALLREDUCE ? "sum" : NULL;
		out->mesh_axes = d->ort_axes;
		out->n_mesh_axes = d->n_ort_axes;
	} else {
		if (out->kind == ART_ALLREDUCE || out->kind == ART_REDUCESCATTER) {
			static const char *red[] = {"sum", "max", "min"};
			a = attr(n, "reduce", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &used);
			for (int k = 0; a && k < 3; k++)
				if (a->s.len == 3 && !memcmp(a->s.data, red[k], 3))
					out->reduce = red[k];
			if (!out->reduce)
				return nfail(d, file, n,
				             "needs string attribute 'reduce' (sum, max or min)");
		}
		a = attr(n, "mesh_axes", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS, &used);
		if (!a || !a->n_strings)
			return nfail(d, file, n, "needs strings attribute 'mesh_axes'");
		out->n_mesh_axes = a->n_strings;
		if (!(out->mesh_axes =
		              shd_arena_alloc(d->ctx, &d->arena, a->n_strings * sizeof(int))))
			return shd_nomem(d->ctx);
		for (size_t i = 0; i < a->n_strings; i++) {
			int x = axis_index(d, (const char *)a->strings[i].data, a->strings[i].len);
			if (x < 0)
				return nfail(d, file, n, "mesh_axes names '%.*s', not a mesh axis",
				             (int)a->strings[i].len,
				             (const char *)a->strings[i].data);
			for (size_t j = 0; j < i; j++)
				if (out->mesh_axes[j] == x)
					return nfail(d, file, n, "mesh_axes names '%s' twice",
					             d->axis[x]);
			out->mesh_axes[i] = x;
		}
		if (!(a = attr(n, "group", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &used)))
			return nfail(d, file, n, "needs ints attribute 'group'");
		out->group = a->ints;
		out->n_group = a->n_ints;
	}
	for (size_t i = 0; i < n->n_attribute; i++)
		if (!(used & ((uint64_t)1 << i)))
			return nfail(d, file, n, "unexpected attribute '%s'",
			             n->attribute[i]->name ? n->attribute[i]->name : "");
	int64_t *want = want_group(d, r, out->mesh_axes, out->n_mesh_axes, &g);
	if (!want)
		return shd_nomem(d->ctx);
	size_t i = 0;
	while (!ms && i < out->n_group && out->group[i] != (int64_t)r)
		i++;
	if (!ms && (i == out->n_group || out->n_group != g ||
	            memcmp(want, out->group, g * sizeof *want))) {
		const char *have = ints_text(d, out->group, out->n_group);
		if (i == out->n_group)
			return nfail(d, file, n, "group %s does not contain this rank (%zu)", have,
			             r);
		if (out->n_group != g)
			return nfail(d, file, n, "group %s has %zu ranks, mesh_axes span %zu", have,
			             out->n_group, g);
		return nfail(
		        d, file, n,
		        "group %s should be %s (the ranks along mesh_axes, in shard-index order)",
		        have, ints_text(d, want, g));
	}
	out->group = want; /* the node's array dies with its model */
	out->n_group = g;
	return 0;
}

static const Onnx__ValueInfoProto *
find_value(Onnx__ValueInfoProto **v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (v[i]->name && !strcmp(v[i]->name, name))
			return v[i];
	return NULL;
}

/* An ORT collective's result type, where g declares it, in the schema's
 * type constraint: AllReduce float16, float, double; AllGather and AllToAll
 * also int64 and bool. */
static int
check_ort_type(art_outdir *d, const char *file, const Onnx__GraphProto *g, const Onnx__NodeProto *n,
               int kind)
{
	const Onnx__ValueInfoProto *v = find_value(g->value_info, g->n_value_info, n->output[0]);
	int t;

	if (!v)
		v = find_value(g->output, g->n_output, n->output[0]);
	if (!v || !v->type || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
	    !v->type->tensor_type || !v->type->tensor_type->has_elem_type)
		return 0;
	t = v->type->tensor_type->elem_type;
	if (t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
	    t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
	    t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
	    (kind != ART_ALLREDUCE && (t == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
	                               t == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL)))
		return 0;
	return nfail(d, file, n, "ONNX Runtime's %s does not take %s tensors", n->op_type,
	             onnx_dtype_name(t) ? onnx_dtype_name(t) : at(d, "dtype %d", t));
}

/* The collectives of g into recs; none may sit in a subgraph. */
static int
scan_nodes(art_outdir *d, size_t r, const char *file, const Onnx__GraphProto *g, int depth,
           shd_vec *recs)
{
	coll_rec *rec;
	art_coll k;
	int rc;

	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *n = g->node[i];
		if ((rc = art_coll_read(d, r, file, n, &k)))
			return rc;
		if (k.kind && depth)
			return nfail(d, file, n, "a collective inside a subgraph");
		if (k.kind && d->ort && (rc = check_ort_type(d, file, g, n, k.kind)))
			return rc;
		if (k.kind && (!n->name || !*n->name))
			return nfail(d, file, n, "a collective without a name");
		if (k.kind &&
		    (!(rec = shd_vec_push(d->ctx, recs, sizeof *rec)) ||
		     !(rec->name = shd_arena_strdup(d->ctx, &d->arena, n->name, strlen(n->name)))))
			return shd_nomem(d->ctx);
		if (k.kind)
			rec->coll = k;
		for (size_t j = 0; j < n->n_attribute; j++) {
			const Onnx__AttributeProto *a = n->attribute[j];
			if (a->g && (rc = scan_nodes(d, r, file, a->g, depth + 1, recs)))
				return rc;
			for (size_t m = 0; m < a->n_graphs; m++)
				if ((rc = scan_nodes(d, r, file, a->graphs[m], depth + 1, recs)))
					return rc;
		}
	}
	return 0;
}

/* Dim i of manifest tensor mt (what: "graph input", "initializer"...)
 * against what rank r's model declares: val >= 0 a size, else sym a name or
 * NULL (unknown: accepted). A size must be the block the manifest gives
 * every rank (the global size over the product of the dim's axes' sizes;
 * blocks are equal, pieces too); a name must be the manifest's (it stands
 * for the local size). */
static int
match_dim(art_outdir *d, const char *file, size_t r, const char *what, const art_mtensor *mt,
          size_t i, int64_t val, const char *sym)
{
	const int *ax = &mt->axes[i * d->n_axes];
	int64_t ways = 1;
	char *over;
	size_t k, len = 1;

	for (k = 0; k < d->n_axes && ax[k] >= 0; k++)
		ways *= d->size[ax[k]], len += strlen(d->axis[ax[k]]) + 2;
	if (mt->sym[i] ? val < 0 && (!sym || !strcmp(sym, mt->sym[i]))
	    : val < 0  ? !sym
	               : val == mt->dims[i] / ways)
		return 0;
	if (!(over = shd_arena_alloc(d->ctx, &d->arena, len + 1)))
		return shd_nomem(d->ctx);
	over[0] = 0;
	for (size_t q = 0; q < k; q++)
		strcat(strcat(over, q ? ", " : ""), d->axis[ax[q]]);
	const char *have = val >= 0 ? at(d, "%lld", (long long)val) : at(d, "'%s'", sym);
	if (mt->sym[i])
		return fail(d, file, "rank %zu: %s '%s': dim %zu is %s, the manifest's is '%s'", r,
		            what, mt->name, i, have, mt->sym[i]);
	if (ways == 1)
		return fail(d, file,
		            "rank %zu: %s '%s': dim %zu is %s, the manifest's is %lld (whole)", r,
		            what, mt->name, i, have, (long long)mt->dims[i]);
	return fail(d, file,
	            "rank %zu: %s '%s': dim %zu is %s, want %lld (the manifest's %lld split %lld "
	            "ways over [%s])",
	            r, what, mt->name, i, have, (long long)(mt->dims[i] / ways),
	            (long long)mt->dims[i], (long long)ways, over);
}

/* "whole" or "split N ways". */
static const char *
ways_text(art_outdir *d, int64_t ways)
{
	return ways == 1 ? "whole" : at(d, "split %lld ways", (long long)ways);
}

/* A name in rank r's model (dim i of mt, named as the manifest names it)
 * stands for one size throughout the model: the global size split as its
 * first use (in syms) splits it. Expressions ("2*seq") are not checked. */
static int
match_sym(art_outdir *d, const char *file, size_t r, const char *what, const art_mtensor *mt,
          size_t i, shd_vec *syms)
{
	const char *name = mt->sym[i];
	sym_rec *x = syms->data;
	int64_t ways = 1;
	size_t k;

	if (name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")])
		return 0;
	for (k = 0; k < d->n_axes && mt->axes[i * d->n_axes + k] >= 0; k++)
		ways *= d->size[mt->axes[i * d->n_axes + k]];
	for (k = 0; k < syms->n && strcmp(x[k].name, name); k++)
		;
	if (k < syms->n && x[k].ways != ways)
		return fail(d, file,
		            "rank %zu: %s '%s': dim %zu is named '%s', which in this model stands "
		            "for %s %s (%s), but the manifest's block here is %s %s",
		            r, what, mt->name, i, name, name, ways_text(d, x[k].ways), x[k].by,
		            name, ways_text(d, ways));
	if (k < syms->n)
		return 0;
	if (!(x = shd_vec_push(d->ctx, syms, sizeof *x)))
		return shd_nomem(d->ctx);
	x->name = name;
	x->ways = ways;
	x->by = at(d, "%s '%s'", what, mt->name);
	return 0;
}

/* A manifest input or output against the rank's graph input or output:
 * same dtype and rank, every dim the block the manifest gives (match_dim),
 * every name standing for one size (match_sym). */
static int
match_value(art_outdir *d, const char *file, size_t r, const char *what, const art_mtensor *mt,
            const Onnx__ValueInfoProto *v, shd_vec *syms)
{
	const Onnx__TypeProto__Tensor *tt;
	const char *kind = what[0] == 'i' ? "graph input" : "graph output";
	int rc = 0;

	if (!v)
		return fail(d, file, "the manifest's %s '%s' is not a graph %s", what, mt->name,
		            what);
	if (!v->type || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
	    !(tt = v->type->tensor_type) || tt->elem_type != mt->dtype)
		return fail(d, file, "graph %s '%s' is not a %s tensor as the manifest says", what,
		            mt->name, onnx_dtype_name(mt->dtype));
	if (tt->shape && tt->shape->n_dim != mt->ndim)
		return fail(d, file, "graph %s '%s' has rank %zu, the manifest %zu", what, mt->name,
		            tt->shape->n_dim, mt->ndim);
	for (size_t i = 0; tt->shape && i < mt->ndim && !rc; i++) {
		const Onnx__TensorShapeProto__Dimension *x = tt->shape->dim[i];
		int named = x->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
		            x->dim_param && *x->dim_param;
		rc = match_dim(d, file, r, kind, mt, i,
		               x->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
		                       ? x->dim_value
		                       : -1,
		               named ? x->dim_param : NULL);
		if (!rc && named)
			rc = match_sym(d, file, r, kind, mt, i, syms);
	}
	return rc;
}

/* A manifest parameter against the rank's initializer of its name (none:
 * nothing to compare): its rank and every dim the manifest's block. */
static int
match_param(art_outdir *d, const char *file, size_t r, const art_mtensor *mt,
            const Onnx__GraphProto *g)
{
	const Onnx__TensorProto *t = NULL;
	int rc = 0;

	for (size_t i = 0; i < g->n_initializer && !t; i++)
		if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, mt->name))
			t = g->initializer[i];
	if (t && t->n_dims != mt->ndim)
		return fail(d, file, "rank %zu: initializer '%s' has rank %zu, the manifest %zu", r,
		            mt->name, t->n_dims, mt->ndim);
	for (size_t i = 0; t && i < mt->ndim && !rc; i++)
		rc = match_dim(d, file, r, "initializer", mt, i, t->dims[i] < 0 ? 0 : t->dims[i],
		               NULL);
	return rc;
}

static int
cmp_rec(const void *a, const void *b)
{
	return strcmp(((const coll_rec *)a)->name, ((const coll_rec *)b)->name);
}

static int
is_listed(const Onnx__GraphProto *g, const art_outdir *d, const char *name)
{
	for (size_t i = 0; i < g->n_initializer; i++)
		if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
			return 1;
	for (size_t i = 0; i < d->n_in; i++)
		if (!strcmp(d->in[i].name, name))
			return 1;
	return 0;
}

/* A rank's model against the manifest; its collectives into recs. */
static int
check_model(art_outdir *d, size_t r, const char *file, const onnx_model *m, json_t *exts,
            shd_vec *recs)
{
	const char *cdom = d->ort ? "com.microsoft" : "onnxshard";
	const Onnx__GraphProto *g = m->proto->graph;
	shd_vec syms = {0};
	int rc = 0;

	for (size_t i = 0; i < m->n_ext && !rc; i++) {
		size_t k = 0;
		while (k < json_array_size(exts) &&
		       strcmp(json_string_value(json_object_get(json_array_get(exts, k), "file")),
		              m->ext[i].location))
			k++;
		if (k == json_array_size(exts))
			return fail(
			        d, file,
			        "external data file '%s' is not in the manifest's external_data",
			        m->ext[i].location);
	}
	for (size_t i = 0; i < m->proto->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = m->proto->opset_import[i];
		if (o->domain && !strcmp(o->domain, cdom) && o->version != 1)
			return fail(d, file, "opset_import has domain '%s' at version %lld, want 1",
			            cdom, (long long)o->version);
	}
	for (size_t i = 0; i < d->n_in && !rc; i++)
		rc = match_value(d, file, r, "input", &d->in[i],
		                 find_value(g->input, g->n_input, d->in[i].name), &syms);
	for (size_t i = 0; i < d->n_out && !rc; i++)
		rc = match_value(d, file, r, "output", &d->out[i],
		                 find_value(g->output, g->n_output, d->out[i].name), &syms);
	shd_vec_free(d->ctx, &syms, sizeof(sym_rec));
	for (size_t i = 0; i < d->n_param && !rc; i++)
		rc = match_param(d, file, r, &d->param[i], g);
	for (size_t i = 0; i < g->n_input && !rc; i++)
		if (!is_listed(g, d, g->input[i]->name ? g->input[i]->name : ""))
			rc = fail(d, file, "graph input '%s' is not in the manifest's inputs",
			          g->input[i]->name ? g->input[i]->name : "");
	if (!rc && g->n_output != d->n_out)
		rc = fail(d, file, "%zu graph outputs, the manifest has %zu", g->n_output,
		          d->n_out);
	return rc ? rc : scan_nodes(d, r, file, g, 0, recs);
}

/* One rank: its files, then its model. */
static int
check_rank(art_outdir *d, size_t r, json_t *entry, shd_vec *recs, uint64_t *bytes)
{
	const char *where = at(d, "rank %zu: ", r), *file, *ext;
	onnx_model *m;
	json_t *exts;
	int rc;

	if ((rc = check_file(d, entry, where, "model", &file, bytes)) ||
	    (rc = field(d, entry, where, "external_data", JSON_ARRAY, &exts)))
		return rc;
	for (size_t q = 0; q < r; q++)
		if (!strcmp(d->model[q], file))
			return fail(d, MANIFEST, "%smodel '%s' is also rank %zu's", where, file, q);
	d->model[r] = file;
	for (size_t i = 0; i < json_array_size(exts); i++)
		if ((rc = check_file(d, json_array_get(exts, i),
		                     at(d, "%sexternal_data[%zu]: ", where, i), "file", &ext,
		                     bytes)))
			return rc;
	const char *path = shd_arena_printf(d->ctx, &d->arena, "%s/%s", d->dir, file);
	if (!path)
		return shd_nomem(d->ctx);
	if ((rc = onnx_load(d->ctx, path, &m)))
		return rc;
	rc = check_model(d, r, file, m, exts, recs);
	onnx_model_free(m);
	coll_rec *v = recs->data;
	if (!rc && recs->n)
		qsort(v, recs->n, sizeof *v, cmp_rec);
	for (size_t i = 1; i < recs->n && !rc; i++)
		if (!strcmp(v[i].name, v[i - 1].name))
			rc = fail(d, file, "two collectives named '%s'", v[i].name);
	return rc;
}

static const char *
coll_diff(const art_coll *a, const art_coll *b)
{
	if (a->kind != b->kind)
		return "op";
	if ((a->reduce != NULL) != (b->reduce != NULL) ||
	    (a->reduce && strcmp(a->reduce, b->reduce)))
		return "reduce";
	if (a->axis != b->axis || a->split_axis != b->split_axis ||
	    a->concat_axis != b->concat_axis)
		return "axis";
	if (a->n_mesh_axes != b->n_mesh_axes ||
	    memcmp(a->mesh_axes, b->mesh_axes, a->n_mesh_axes * sizeof(int)))
		return "mesh_axes";
	if (a->n_group != b->n_group || memcmp(a->group, b->group, a->n_group * sizeof(int64_t)))
		return "group";
	return NULL;
}

/* Every collective present alike on every member of its group; the number
 * of distinct collective names. */
static int
check_across(art_outdir *d, shd_vec *rk, uint64_t *n_distinct)
{
	shd_vec all = {0};
	coll_rec *p;

	for (size_t r = 0; r < d->world; r++)
		for (size_t i = 0; i < rk[r].n; i++) {
			const coll_rec *a = (coll_rec *)rk[r].data + i, *b;
			const char *diff;
			for (size_t j = 0; j < a->coll.n_group; j++) {
				size_t m = (size_t)a->coll.group[j];
				if (d->absent[m])
					continue; /* not written here (shard --rank) */
				if (!(b = rk[m].n ? bsearch(a, rk[m].data, rk[m].n, sizeof *b,
				                            cmp_rec)
				                  : NULL))
					return fail(
					        d, d->model[m],
					        "collective '%s' (%s, group %s on %s) is missing",
					        a->name, coll_ops[a->coll.kind],
					        ints_text(d, a->coll.group, a->coll.n_group),
					        d->model[r]);
				if ((diff = coll_diff(&a->coll, &b->coll)))
					return fail(d, d->model[m],
					            "collective '%s': %s differs from %s's",
					            a->name, diff, d->model[r]);
			}
			if (!(p = shd_vec_push(d->ctx, &all, sizeof *p))) {
				shd_vec_free(d->ctx, &all, sizeof *p);
				return shd_nomem(d->ctx);
			}
			*p = *a;
		}
	if (all.n)
		qsort(all.data, all.n, sizeof *p, cmp_rec);
	p = all.data;
	*n_distinct = 0;
	for (size_t i = 0; i < all.n; i++)
		*n_distinct += i == 0 || cmp_rec(&p[i], &p[i - 1]);
	shd_vec_free(d->ctx, &all, sizeof *p);
	return 0;
}

void
art_outdir_free(art_outdir *d)
{
	if (!d)
		return;
	if (d->root)
		json_decref(d->root);
	shd_arena_free(d->ctx, &d->arena);
	shd_free(d->ctx, d, sizeof *d);
}

int
art_outdir_check(shd_ctx *c, const char *dir, art_outdir **out, uint64_t stats[3])
{
	art_outdir *d = shd_calloc(c, 1, sizeof *d);
	shd_vec *rk = NULL;
	json_t **entries = NULL;
	struct stat st;
	uint64_t bytes = 0, n_coll = 0;
	size_t len = strlen(dir);
	uint64_t refused = c->n_refused;
	int rc;

	if (out)
		*out = NULL;
	if (!d)
		return shd_nomem(c);
	d->ctx = c;
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (!(d->dir = shd_arena_strdup(c, &d->arena, dir, len)))
		rc = shd_nomem(c);
	else if (stat(d->dir, &st) != 0)
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: %s", d->dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: not a directory", d->dir);
	else if (!(rc = read_manifest(d, &entries)) && !(rk = shd_calloc(c, d->world, sizeof *rk)))
		rc = shd_nomem(c);
	for (size_t r = 0; !rc && r < d->world; r++)
		if (!d->absent[r])
			rc = check_rank(d, r, entries[r], &rk[r], &bytes);
	if (!rc)
		rc = check_across(d, rk, &n_coll);
	for (size_t r = 0; rk && r < d->world; r++)
		shd_vec_free(c, &rk[r], sizeof(coll_rec));
	shd_free(c, rk, d->world * sizeof *rk);
	rc = shd_settle(c, refused, rc); /* a text cut short by a refusal: "" */
	if (!rc && stats) {
		stats[0] = d->world;
		stats[1] = n_coll;
		stats[2] = bytes;
	}
	if (!rc && out)
		*out = d;
	else
		art_outdir_free(d);
	return rc;
}

int
onnxshard_check(onnxshard_ctx *c, const char *dir, FILE *out)
{
	uint64_t s[3];
	art_outdir *d;
	int rc = art_outdir_check(c, dir, &d, s);

	if (rc || !out) {
		art_outdir_free(d);
		return rc;
	}
	if (!d->n_absent) {
		fprintf(out, "ok: %llu ranks, %llu collectives, %llu bytes\n",
		        (unsigned long long)s[0], (unsigned long long)s[1],
		        (unsigned long long)s[2]);
	} else { /* shard --rank: what is here checked, the rest named */
		fprintf(out, "ok: %llu of %llu ranks, %llu collectives, %llu bytes; not written:",
		        (unsigned long long)(s[0] - d->n_absent), (unsigned long long)s[0],
		        (unsigned long long)s[1], (unsigned long long)s[2]);
		for (size_t r = 0, k = 0; r < d->world; r++)
			if (d->absent[r])
				fprintf(out, "%s%zu",
				        k++               ? ","
				        : d->n_absent > 1 ? " ranks "
				                          : " rank ",
				        r);
		fputc('\n', out);
	}
	art_outdir_free(d);
	return rc;
}
