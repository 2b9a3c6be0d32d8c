/* Helpers the libFuzzer targets share: a per-process temp dir removed at
 * exit, file writes and copies, a plan's invariants. Failures abort. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

/* The harness's only state: this process's temp dir. */
static char *tmpdir;

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
rm_tmpdir(void)
{
	if (tmpdir)
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmpdir);
	tmpdir = NULL;
}

const char *
fuzz_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	if (tmpdir)
		return tmpdir;
	if (asprintf(&tmpdir, "%s/onnxshard-fuzz-XXXXXX", t && *t ? t : "/tmp") < 0 ||
	    !mkdtemp(tmpdir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(rm_tmpdir);
	return tmpdir;
}

char *
fuzz_tmppath(char *buf, const char *name)
{
	if (snprintf(buf, FUZZ_PATH_MAX, "%s/%s", fuzz_tmpdir(), name) >= FUZZ_PATH_MAX) {
		fputs("fuzz: TMPDIR too long\n", stderr);
		abort();
	}
	return buf;
}

void
fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

const char *
fuzz_path(const char *env, const char *dflt)
{
	const char *v = getenv(env);

	return v && *v ? v : dflt;
}

void
fuzz_copy(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
	char buf[65536];
	size_t n;

	if (!in || !out) {
		perror(in ? dst : src);
		abort();
	}
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			perror(dst);
			abort();
		}
	if (ferror(in) || fclose(out) != 0) {
		perror(dst);
		abort();
	}
	fclose(in);
}

/* ---- the plan's invariants ---- */

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz: plan invariant broken: %s (%s:%d)\n", #x, __FILE__, \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The same, naming the value and its sharding. */
#define CHECK_V(x)                                                                                 \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz: plan invariant broken for %s '%s' ", what,          \
			        ir_cstr(g, g->values[v].name));                                    \
			prop_shard_print(p, s, stderr);                                            \
			fprintf(stderr, ": %s (%s:%d)\n", #x, __FILE__, __LINE__);                 \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Axes on dims within the mesh, none used twice, constant dims divisible. */
static void
check_shard(ir_graph *g, const prop_plan *p, uint32_t v, const prop_shard *s, const char *what)
{
	const prop_mesh *m = p->mesh;
	const ir_value *x = &g->values[v];
	unsigned used = 0;

	CHECK_V(s->rank == x->rank);
	CHECK_V(what[0] == 'h' || !s->partial);
	CHECK_V(!(s->partial >> m->n_axes));
	for (int32_t d = 0; d < s->rank; d++) {
		const prop_dim *pd = &s->dims[d];
		CHECK_V(pd->n <= PROP_MAX_AXES);
		for (uint8_t i = 0; i < pd->n; i++) {
			CHECK_V(pd->ax[i] < m->n_axes);
			CHECK_V(!(used & (1u << pd->ax[i])));
			used |= 1u << pd->ax[i];
		}
		if (pd->n && ir_is_const(x->dims[d]))
			CHECK_V(x->dims[d].c %
			                (prop_pieces(pd) * prop_axes_size(m, pd->ax, pd->n)) ==
			        0);
	}
	CHECK_V(!(used & s->partial));
}

void
fuzz_check_plan(ir_graph *g, const prop_plan *p)
{
	const prop_mesh *m = p->mesh;

	for (uint32_t v = 0; v < g->n_values; v++) {
		check_shard(g, p, v, &p->want[v], "want");
		check_shard(g, p, v, &p->have[v], "have");
	}
	for (uint32_t i = 0; i < p->n_reshards; i++) {
		const prop_reshard *r = &p->reshards[i];
		CHECK(r->value < g->n_values);
		if (r->node == IR_NONE) {
			CHECK(r->operand < g->n_outputs && g->outputs[r->operand] == r->value);
		} else {
			CHECK(r->node < g->n_nodes && r->operand < g->nodes[r->node].n_in);
			CHECK(ir_in(g, &g->nodes[r->node], r->operand) == r->value);
		}
		CHECK(r->first <= p->n_steps && r->n <= p->n_steps - r->first);
		for (uint32_t k = 0; k < r->n; k++) {
			const prop_step *s = &p->steps[r->first + k];
			int32_t rank = g->values[r->value].rank;
			CHECK(s->kind <= PROP_TOPARTIAL && s->n_axes >= 1 &&
			      s->n_axes <= PROP_MAX_AXES);
			for (uint8_t j = 0; j < s->n_axes; j++)
				CHECK(s->ax[j] < m->n_axes);
			if (s->kind == PROP_ALLGATHER || s->kind == PROP_REDUCESCATTER ||
			    s->kind == PROP_SLICE || s->kind == PROP_ALLTOALL)
				CHECK(s->dim >= 0 && s->dim < rank);
			if (s->kind == PROP_ALLTOALL)
				CHECK(s->dim2 >= 0 && s->dim2 < rank && s->dim2 != s->dim);
		}
	}
	for (uint32_t i = 0; i < p->n_notes; i++)
		CHECK(p->notes[i].value < g->n_values && p->notes[i].why);
}
