/* The mesh (named axes, row-major ranks, shard indices, groups) and the
 * small operations on shardings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

static int
is_name(const char *s, size_t n)
{
	if (n == 0 ||
	    !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

int
prop_mesh_parse(shd_ctx *c, const char *spec, prop_mesh *m)
{
	const char *p = spec;

	memset(m, 0, sizeof *m);
	m->world = 1;
	if (!*spec)
		return shd_error(c, ONNXSHARD_EINPUT,
		                 "--mesh: empty mesh (want e.g. data=2,model=4)");
	while (*p) {
		const char *eq = p + strcspn(p, "=,");
		size_t n = (size_t)(eq - p);
		char *end;
		if (*eq != '=' || !is_name(p, n))
			return shd_error(c, ONNXSHARD_EINPUT,
			                 "--mesh '%s': want NAME=SIZE[,NAME=SIZE...] with names "
			                 "like data or model",
			                 spec);
		if (m->n_axes == PROP_MAX_AXES)
			return shd_error(c, ONNXSHARD_EINPUT, "--mesh '%s': more than %d axes",
			                 spec, PROP_MAX_AXES);
		errno = 0;
		long long size = strtoll(eq + 1, &end, 10);
		if (errno || end == eq + 1 || (*end && *end != ',') || size < 1 || size > 65536)
			return shd_error(c, ONNXSHARD_EINPUT,
			                 "--mesh '%s': size of axis '%.*s' must be 1..65536", spec,
			                 (int)n, p);
		for (uint32_t i = 0; i < m->n_axes; i++)
			if (strlen(m->names[i]) == n && !strncmp(m->names[i], p, n))
				return shd_error(c, ONNXSHARD_EINPUT,
				                 "--mesh '%s': axis '%.*s' named twice", spec,
				                 (int)n, p);
		if (!(m->names[m->n_axes] = shd_alloc(c, n + 1)))
			return shd_nomem(c);
		memcpy(m->names[m->n_axes], p, n);
		m->names[m->n_axes][n] = 0;
		m->sizes[m->n_axes++] = size;
		m->world *= size;
		if (m->world > 65536)
			return shd_error(c, ONNXSHARD_EINPUT, "--mesh '%s': more than 65536 ranks",
			                 spec);
		p = *end ? end + 1 : end;
		if (*end == ',' && !*p)
			return shd_error(c, ONNXSHARD_EINPUT, "--mesh '%s': trailing comma", spec);
	}
	return 0;
}

void
prop_mesh_free(shd_ctx *c, prop_mesh *m)
{
	for (uint32_t i = 0; i < m->n_axes; i++)
		shd_strfree(c, m->names[i]);
	memset(m, 0, sizeof *m);
}

int
prop_mesh_axis(const prop_mesh *m, const char *name)
{
	for (uint32_t i = 0; i < m->n_axes; i++)
		if (!strcmp(m->names[i], name))
			return (int)i;
	return -1;
}

void
prop_mesh_coords(const prop_mesh *m, int64_t r, int64_t *coords)
{
	for (int i = (int)m->n_axes - 1; i >= 0; i--) {
		coords[i] = r % m->sizes[i];
		r /= m->sizes[i];
	}
}

int64_t
prop_shard_index(const prop_mesh *m, int64_t r, const uint8_t *ax, uint32_t n)
{
	int64_t coords[PROP_MAX_AXES], idx = 0;

	prop_mesh_coords(m, r, coords);
	for (uint32_t i = 0; i < n; i++)
		idx = idx * m->sizes[ax[i]] + coords[ax[i]];
	return idx;
}

int64_t
prop_axes_size(const prop_mesh *m, const uint8_t *ax, uint32_t n)
{
	int64_t s = 1;

	for (uint32_t i = 0; i < n; i++)
		s *= m->sizes[ax[i]];
	return s;
}

void
prop_group(const prop_mesh *m, int64_t r, const uint8_t *ax, uint32_t n, int64_t *out)
{
	int64_t coords[PROP_MAX_AXES], g = prop_axes_size(m, ax, n);

	prop_mesh_coords(m, r, coords);
	for (int64_t k = 0; k < g; k++) {
		int64_t rest = k, rank = 0;
		for (int i = (int)n - 1; i >= 0; i--) {
			coords[ax[i]] = rest % m->sizes[ax[i]];
			rest /= m->sizes[ax[i]];
		}
		for (uint32_t i = 0; i < m->n_axes; i++)
			rank = rank * m->sizes[i] + coords[i];
		out[k] = rank;
	}
}

int
prop_shard_eq(const prop_shard *a, const prop_shard *b)
{
	if (a->partial != b->partial)
		return 0;
	int32_t r = a->rank > b->rank ? a->rank : b->rank;
	for (int32_t d = 0; d < r; d++) {
		const prop_dim *x = d < a->rank ? &a->dims[d] : NULL;
		const prop_dim *y = d < b->rank ? &b->dims[d] : NULL;
		uint8_t nx = x ? x->n : 0, ny = y ? y->n : 0;
		if (nx != ny || (nx && (memcmp(x->ax, y->ax, nx) || !prop_same_pieces(x, y))))
			return 0;
	}
	return 1;
}

uint8_t
prop_shard_axes(const prop_shard *s)
{
	uint8_t mask = 0;

	for (int32_t d = 0; d < s->rank; d++)
		for (uint8_t i = 0; i < s->dims[d].n; i++)
			mask |= (uint8_t)(1u << s->dims[d].ax[i]);
	return mask;
}

int
prop_is_replicated(const prop_shard *s)
{
	return !s->partial && !prop_shard_axes(s);
}

void
prop_shard_print(const prop_plan *p, const prop_shard *s, FILE *out)
{
	fputc('[', out);
	for (int32_t d = 0; d < s->rank; d++) {
		fputs(d ? ",[" : "[", out);
		for (uint8_t i = 0; i < s->dims[d].n; i++)
			fprintf(out, "%s%s", i ? "," : "", p->mesh->names[s->dims[d].ax[i]]);
		fputc(']', out);
	}
	fputc(']', out);
	if (s->partial) {
		fputs(" partial(", out);
		for (uint32_t a = 0, k = 0; a < p->mesh->n_axes; a++)
			if (s->partial & (1u << a))
				fprintf(out, "%s%s", k++ ? "," : "", p->mesh->names[a]);
		fputc(')', out);
	}
}
