/* Allocation failure (Lua's debug_realloc): a run of shard, check, stitch
 * and inspect is repeated with its Nth allocation refused, for every N up to
 * the allocations a whole run makes; each such run must fail cleanly (status
 * 1, one line, nothing left on disk, nothing leaked) or, when the refused
 * allocation was optional, succeed with the very bytes of a normal run.
 *
 * jansson allocates with its own malloc unless told otherwise, and that hook
 * (json_set_alloc_funcs) is process-global: this test sets it, so jansson's
 * allocations are counted and refused like the context's. Allocations by the
 * C library itself (fopen's FILE, asprintf, realpath) are not counted.
 *
 * ONNXSHARD_ALLOC_FULL=1 in the environment: every N of every model, however
 * long it takes (the default strides past the first ALL_UPTO of large runs). */
#define _GNU_SOURCE
#include <dirent.h>
#include <execinfo.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "testutil.h"

#ifndef ONNXSHARD_SRCDIR
#define ONNXSHARD_SRCDIR "."
#endif

#define ALL_UPTO 20000u /* every N up to this, then a stride */
#define STRIDED 1500u  /* about this many more Ns past ALL_UPTO */

/* ---- the test allocator ---- */

typedef struct {
	uint64_t calls;    /* allocations asked for (nsize > 0), jansson's too */
	uint64_t fail_at;  /* refuse the call with this number (1-based); 0: none */
	uint64_t refused;  /* calls refused */
	int64_t live;      /* blocks handed out and not yet freed */
	uint64_t bad_size; /* frees and reallocs whose osize (when given) was wrong */
	void *where[10];   /* the refused call's stack (ONNXSHARD_ALLOC_VERBOSE) */
	int n_where;
} talloc;

/* Every block carries its size in front, to check osize. */
typedef union {
	size_t size;
	max_align_t align;
} header;

static void *
talloc_f(void *ud, void *ptr, size_t osize, size_t nsize)
{
	talloc *t = ud;
	header *h = ptr ? (header *)ptr - 1 : NULL;

	if (h && osize && osize != h->size)
		t->bad_size++;
	if (nsize == 0) {
		if (h) {
			t->live--;
			free(h);
		}
		return NULL;
	}
	if (++t->calls == t->fail_at || nsize > SIZE_MAX - sizeof *h) {
		t->refused++;
		if (getenv("ONNXSHARD_ALLOC_VERBOSE"))
			t->n_where = backtrace(t->where, 10);
		return NULL;
	}
	header *n = realloc(h, sizeof *n + nsize);
	if (!n)
		return NULL;
	if (!h)
		t->live++;
	n->size = nsize;
	return n + 1;
}

/* jansson's hook: process-global by jansson's design, so a global here;
 * outside a run it counts into `outside`. */
static talloc outside;
static talloc *jansson_t = &outside;

static void *
j_malloc(size_t n)
{
	return talloc_f(jansson_t, NULL, 0, n ? n : 1);
}

static void
j_free(void *p)
{
	talloc_f(jansson_t, p, 0, 0);
}

/* ---- disk ---- */

/* Names in dir (no . and ..), joined by spaces; "" when empty. malloc'd. */
static char *
listing(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t len = 0;
	char *s = calloc(1, 1);

	assert_non_null(d);
	assert_non_null(s);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		size_t n = strlen(e->d_name);
		s = realloc(s, len + n + 2);
		assert_non_null(s);
		if (len)
			s[len++] = ' ';
		memcpy(s + len, e->d_name, n + 1);
		len += n;
	}
	closedir(d);
	return s;
}

/* Every file of dir a holds the same bytes in dir b, and no more files. */
static int
same_tree(const char *a, const char *b)
{
	char *la = listing(a), *lb = listing(b);
	int same = !strcmp(la, lb);

	for (char *p = la, *sp; same && *p; p = sp ? sp + 1 : p + strlen(p)) {
		if ((sp = strchr(p, ' ')))
			*sp = 0;
		char *pa = tu_path(a, p), *pb = tu_path(b, p);
		size_t na, nb;
		uint8_t *ba = tu_read(pa, &na), *bb = tu_read(pb, &nb);
		same = na == nb && !memcmp(ba, bb, na);
		free(ba);
		free(bb);
		free(pa);
		free(pb);
	}
	free(la);
	free(lb);
	return same;
}

/* ---- one run under the allocator ---- */

enum { RUN_SHARD, RUN_CHECK, RUN_STITCH, RUN_INSPECT, RUN_INSPECT_JSON };
static const char *run_names[] = {"shard", "check", "stitch", "inspect", "inspect --json"};

typedef struct {
	int what;          /* RUN_* */
	const char *model; /* shard, inspect */
	const char *ref;   /* a finished OUT: what shard makes; what check and stitch read */
	const char *work;  /* an empty dir the run writes into */
} job;

typedef struct {
	int rc;        /* the status; -1 when the context could not be had */
	char err[512]; /* its diagnostic */
} result;

static void
run(const job *j, talloc *t, result *res)
{
	onnxshard_ctx *c;
	char *out;

	jansson_t = t;
	res->err[0] = 0;
	if (!(c = onnxshard_new(talloc_f, t, 1))) {
		res->rc = -1;
		return;
	}
	switch (j->what) {
	case RUN_SHARD: {
		onnxshard_opts o = {0};
		out = tu_path(j->work, "out");
		o.model = j->model;
		o.mesh = "data=2,model=2";
		o.strategy = "data,megatron";
		o.out = out;
		o.quiet = 1;
		res->rc = onnxshard_shard(c, &o);
		free(out);
		break;
	}
	case RUN_CHECK:
		res->rc = onnxshard_check(c, j->ref, NULL);
		break;
	case RUN_STITCH:
		out = tu_path(j->work, "stitched.onnx");
		res->rc = onnxshard_stitch(c, j->ref, out);
		free(out);
		break;
	default: {
		FILE *f = fopen("/dev/null", "w");
		assert_non_null(f);
		res->rc = onnxshard_inspect(c, j->model, j->what == RUN_INSPECT_JSON, f);
		fclose(f);
		break;
	}
	}
	snprintf(res->err, sizeof res->err, "%s", onnxshard_error(c));
	onnxshard_free(c);
	jansson_t = &outside;
}

/* What a normal run leaves in work (and then clear work). */
static char *
clear(const char *work)
{
	char *l = listing(work);

	tu_rmtree(work);
	assert_int_equal(mkdir(work, 0777), 0);
	return l;
}

/* A bad run: say so (the first few) and go on, to see them all. */
static unsigned bad_runs;
#define BAD(...)                                                               \
	do {                                                                   \
		if (bad_runs++ < 30)                                           \
			print_error(__VA_ARGS__);                              \
	} while (0)

typedef struct {
	uint64_t total;    /* allocations of a normal run */
	uint64_t tried;    /* Ns run */
	uint64_t survived; /* runs that succeeded with the same output */
	double seconds;
} stats;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sweep(const job *j, const char *expect_dir, stats *s)
{
	talloc t = {0};
	result res;
	double t0 = now();
	int full = getenv("ONNXSHARD_ALLOC_FULL") != NULL;

	memset(s, 0, sizeof *s);
	run(j, &t, &res);
	if (res.rc)
		fail_msg("%s %s: a normal run fails: %s", run_names[j->what], j->model ? j->model : j->ref,
		         res.err);
	assert_int_equal(t.live, 0);
	assert_int_equal(t.bad_size, 0);
	s->total = t.calls;
	char *normal = clear(j->work);
	uint64_t stride = 1;
	if (!full && s->total > ALL_UPTO)
		stride = (s->total - ALL_UPTO) / STRIDED + 1;
	for (uint64_t n = 1; n <= s->total; n += n < ALL_UPTO ? 1 : stride) {
		talloc ft = {0};
		ft.fail_at = n;
		run(j, &ft, &res);
		s->tried++;
		if (getenv("ONNXSHARD_ALLOC_VERBOSE")) {
			printf("N %llu rc %d err %s live %lld at", (unsigned long long)n, res.rc, res.err,
			       (long long)ft.live);
			for (int i = 1; i < ft.n_where; i++)
				printf(" %p", ft.where[i]);
			putchar('\n');
		}
		if (ft.live != 0 || ft.bad_size)
			BAD("%s, allocation %llu refused: %lld blocks leaked, %llu wrong sizes (%s)\n",
			         run_names[j->what], (unsigned long long)n, (long long)ft.live,
			         (unsigned long long)ft.bad_size, res.err);
		if (res.rc == -1) { /* the context itself */
			assert_int_equal(n, 1);
			continue;
		}
		if (!ft.refused)
			BAD("%s: allocation %llu of %llu was never asked for (the runs differ)\n",
			         run_names[j->what], (unsigned long long)n, (unsigned long long)s->total);
		if (res.rc == 0) {
			/* the refused allocation was optional: the same output */
			char *l = listing(j->work), *o = tu_path(j->work, "out");
			if (strcmp(l, normal) || (j->what == RUN_SHARD && !same_tree(o, expect_dir)))
				BAD("%s, allocation %llu refused: succeeds with other output (%s)\n",
				         run_names[j->what], (unsigned long long)n, l);
			free(l);
			free(o);
			free(clear(j->work));
			s->survived++;
			continue;
		}
		char *left = listing(j->work);
		if (*left)
			free(clear(j->work));
		if (res.rc != ONNXSHARD_EFAIL || !res.err[0] || strchr(res.err, '\n') || *left)
			BAD("%s, allocation %llu refused: status %d, error '%s', left behind '%s'\n",
			         run_names[j->what], (unsigned long long)n, res.rc, res.err, left);
		free(left);
	}
	free(normal);
	s->seconds = now() - t0;
	printf("# %-15s %-10s %7llu allocations, %5llu Ns tried (every N to %u, then every %llu), "
	       "%llu survived, %.1f s\n",
	       run_names[j->what], j->model ? strrchr(j->model, '/') + 1 : "(its OUT)",
	       (unsigned long long)s->total, (unsigned long long)s->tried, ALL_UPTO,
	       (unsigned long long)stride, (unsigned long long)s->survived, s->seconds);
	if (bad_runs)
		fail_msg("%u bad runs", bad_runs);
}

/* shard (against a normal run's output), then check and stitch of that
 * output, then inspect. */
static void
model_sweep(const char *name)
{
	char *model = tu_path(ONNXSHARD_SRCDIR "/samples", name);
	char *root = tu_tmpdir(), *ref = tu_path(root, "ref"), *work = tu_path(root, "work");
	char *refout = tu_path(ref, "out");
	stats s;

	assert_int_equal(mkdir(ref, 0777), 0);
	assert_int_equal(mkdir(work, 0777), 0);
	/* the reference output, made with the C library's allocator */
	{
		onnxshard_ctx *c = onnxshard_new(NULL, NULL, 1);
		onnxshard_opts o = {0};
		o.model = model;
		o.mesh = "data=2,model=2";
		o.strategy = "data,megatron";
		o.out = refout;
		o.quiet = 1;
		assert_non_null(c);
		if (onnxshard_shard(c, &o))
			fail_msg("%s: %s", name, onnxshard_error(c));
		onnxshard_free(c);
	}
	job j = {RUN_SHARD, model, refout, work};
	sweep(&j, refout, &s);
	j.what = RUN_CHECK;
	sweep(&j, NULL, &s);
	j.what = RUN_STITCH;
	sweep(&j, NULL, &s);
	j.what = RUN_INSPECT;
	sweep(&j, NULL, &s);
	j.what = RUN_INSPECT_JSON;
	sweep(&j, NULL, &s);
	tu_rmtree(root);
	free(refout);
	free(ref);
	free(work);
	free(root);
	free(model);
}

static void
test_mlp(void **state)
{
	(void)state;
	model_sweep("mlp.onnx");
}

static void
test_gpt2(void **state)
{
	(void)state;
	model_sweep("gpt2.onnx");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mlp),
		cmocka_unit_test(test_gpt2),
	};

	json_set_alloc_funcs(j_malloc, j_free);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
