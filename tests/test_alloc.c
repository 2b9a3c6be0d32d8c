/* Allocation failure (Lua's debug_realloc): a run of shard (data,megatron;
 * auto, the search, on a budget of 20 plans: the tree search; the same with
 * 2 writer processes), plan (exhaustive: every assignment enumerated), check,
 * stitch, inspect and analyze is repeated with its Nth allocation refused,
 * for N from 1 up to the allocations a whole run makes. Each such run must fail cleanly
 * (status 1, a one-line diagnostic, nothing left on disk, nothing leaked,
 * every free of the size allocated) or, where the refused allocation was
 * optional, succeed with the very bytes of a normal run.
 *
 * jansson allocates with its own malloc unless told otherwise, and that hook
 * (json_set_alloc_funcs) is process-global: this test sets it, so jansson's
 * blocks are counted (leaks) and, where jansson only builds and writes JSON
 * (shard, inspect), refused like the context's; not where it parses (check,
 * stitch: see j_malloc). Allocations of the C library itself (fopen's FILE,
 * asprintf, realpath) are not seen.
 *
 * The writer processes of --jobs are forks: each counts on from the
 * parent's count at the fork, so the Nth allocation is refused in whichever
 * process makes it. What the children refuse and the frees of a wrong size
 * they see go to a page shared with them (`shared`); so does the highest
 * count any process reached, which is the run's total. A child's leaks are
 * not seen (it ends with _exit). The parent's path up to the fork is the
 * single-process shard's, swept already: the sweep of --jobs starts at the
 * fork (the count there, noted by a pthread_atfork handler).
 *
 * Every N up to ALL_UPTO, then a stride so that about STRIDED more are tried
 * across the rest of the run (every phase is still hit: each makes hundreds
 * of allocations); fewer under AddressSanitizer (the search on gpt2, the
 * exhaustive plan and the writers' forks fewer still, there). In the environment:
 * ONNXSHARD_ALLOC_FULL=1 tries every N (a few minutes), ONNXSHARD_ALLOC_N=K only K,
 * ONNXSHARD_ALLOC_ONLY=gpt2 one model, ONNXSHARD_ALLOC_VERBOSE=1 prints every run and the refused
 * call's stack (addresses, for addr2line). */
#define _GNU_SOURCE
#include <dirent.h>
#include <execinfo.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "testutil.h"

#ifndef ONNXSHARD_SRCDIR
#define ONNXSHARD_SRCDIR "."
#endif

#if defined(__SANITIZE_ADDRESS__) /* about 3 times slower: fewer Ns */
#define ALL_UPTO    1000u
#define STRIDED     700u
#define JOBS_STRIDE 5u   /* a fork under ASan costs tens of ms: every 5th N */
#define AUTO_BIG    150u /* the search takes ~100 ms a run: 150 + 150 Ns */
#else
#define ALL_UPTO    1000u
#define STRIDED     1500u
#define JOBS_STRIDE 1u
#define AUTO_BIG    ALL_UPTO
#endif

/* ---- the test allocator ---- */

typedef struct {
	uint64_t calls;        /* refusable allocations asked for (nsize > 0) */
	uint64_t fail_at;      /* refuse the call with this number (1-based); 0: none */
	uint64_t refused;      /* calls refused */
	int64_t live;          /* blocks handed out and not yet freed */
	uint64_t bad_size;     /* frees and reallocs whose osize was wrong (jansson's
	                        * free gives none: unchecked) */
	int jansson_refusable; /* jansson's allocations count and may be refused */
	void *where[12];       /* the refused call's stack (verbose) */
	int n_where;
} talloc;

static int verbose;

/* Seen by every process of a run (the writers are forks): reset per run. */
typedef struct {
	uint64_t refused;   /* calls refused, in any process */
	uint64_t bad_size;  /* frees of a wrong size, in any process */
	uint64_t max_calls; /* the highest count any process reached */
	uint64_t fork_at;   /* the count at the first fork of the run; 0: none */
} shared_counts;
static shared_counts *shared;

/* Every block carries its size in front, to check osize. */
typedef union {
	size_t size;
	max_align_t align;
} header;

static void *
talloc_do(talloc *t, void *ptr, size_t osize, size_t nsize, int refusable)
{
	header *h = ptr ? (header *)ptr - 1 : NULL;

	if (h && osize && osize != h->size) {
		t->bad_size++;
		__atomic_add_fetch(&shared->bad_size, 1, __ATOMIC_RELAXED);
	}
	if (nsize == 0) {
		if (h) {
			t->live--;
			free(h);
		}
		return NULL;
	}
	if (refusable) {
		uint64_t m = __atomic_load_n(&shared->max_calls, __ATOMIC_RELAXED);
		++t->calls;
		while (m < t->calls &&
		       !__atomic_compare_exchange_n(&shared->max_calls, &m, t->calls, 0,
		                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	if (nsize > SIZE_MAX - sizeof *h || (refusable && t->calls == t->fail_at)) {
		t->refused++;
		__atomic_add_fetch(&shared->refused, 1, __ATOMIC_RELAXED);
		if (verbose)
			t->n_where = backtrace(t->where, 12);
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

/* The context's allocator: told every live block's size (the contract of
 * onnxshard_allocf), so an osize of 0 is as wrong as any other. */
static void *
talloc_f(void *ud, void *ptr, size_t osize, size_t nsize)
{
	talloc *t = ud;

	if (ptr && osize == 0) {
		t->bad_size++;
		__atomic_add_fetch(&shared->bad_size, 1, __ATOMIC_RELAXED);
	}
	return talloc_do(t, ptr, osize, nsize, 1);
}

/* jansson's hook is process-global by jansson's design, so a global here;
 * outside a run it counts into `outside`. jansson 2.14's parser corrupts
 * memory when refused some allocations (a lost byte desyncs its lexer,
 * akheron/jansson#362), so runs that parse JSON (check, stitch) count its
 * blocks, for leaks, but never refuse them. */
static talloc outside;
static talloc *jansson_t = &outside;

static void *
j_malloc(size_t n)
{
	return talloc_do(jansson_t, NULL, 0, n ? n : 1, jansson_t->jansson_refusable);
}

static void
j_free(void *p)
{
	talloc_do(jansson_t, p, 0, 0, 0);
}

static void
on_fork_child(void)
{
	uint64_t zero = 0;

	__atomic_compare_exchange_n(&shared->fork_at, &zero, jansson_t->calls, 0, __ATOMIC_RELAXED,
	                            __ATOMIC_RELAXED);
}

/* ---- disk ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir (no . and ..), sorted, NULL-terminated; all malloc'd. */
static char **
names(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = calloc(1, sizeof *v);
	size_t n = 0;

	assert_non_null(d);
	assert_non_null(v);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		v = realloc(v, (n + 2) * sizeof *v);
		assert_non_null(v);
		v[n++] = strdup(e->d_name);
		v[n] = NULL;
	}
	closedir(d);
	qsort(v, n, sizeof *v, cmp_str);
	return v;
}

static void
free_names(char **v)
{
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* What dir holds, for messages: names joined by spaces; "" when empty. */
static void
describe(const char *dir, char *buf, size_t n)
{
	char **v = names(dir);

	buf[0] = 0;
	for (char **p = v; *p; p++)
		snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", p == v ? "" : " ", *p);
	free_names(v);
}

/* Dirs a and b hold the same names, and files of the same bytes (deep). */
static int
same_tree(const char *a, const char *b)
{
	char **va = names(a), **vb = names(b);
	int same = 1;
	size_t i;

	for (i = 0; same && va[i] && vb[i]; i++) {
		char *pa = tu_path(a, va[i]), *pb = tu_path(b, vb[i]);
		struct stat sa, sb;
		same = !strcmp(va[i], vb[i]) && !lstat(pa, &sa) && !lstat(pb, &sb) &&
		       S_ISDIR(sa.st_mode) == S_ISDIR(sb.st_mode);
		if (same && S_ISDIR(sa.st_mode)) {
			same = same_tree(pa, pb);
		} else if (same) {
			size_t na, nb;
			uint8_t *ba = tu_read(pa, &na), *bb = tu_read(pb, &nb);
			same = na == nb && !memcmp(ba, bb, na);
			free(ba);
			free(bb);
		}
		free(pa);
		free(pb);
	}
	same &= !va[i] && !vb[i];
	free_names(va);
	free_names(vb);
	return same;
}

static void
empty_dir(const char *dir)
{
	tu_rmtree(dir);
	assert_int_equal(mkdir(dir, 0777), 0);
}

/* ---- one run under the allocator ---- */

enum {
	RUN_SHARD,
	RUN_AUTO,
	RUN_JOBS,
	RUN_EXHAUSTIVE,
	RUN_CHECK,
	RUN_STITCH,
	RUN_INSPECT,
	RUN_INSPECT_JSON,
	RUN_ANALYZE,
	RUN_ANALYZE_JSON
};
static const char *run_names[] = {"shard",   "shard auto",    "shard --jobs 2", "plan exhaustive",
                                  "check",   "stitch",        "inspect",        "inspect --json",
                                  "analyze", "analyze --json"};

typedef struct {
	int what;          /* RUN_* */
	const char *model; /* what shard and inspect read */
	const char *ref;   /* a finished OUT, what check and stitch read */
	const char *work;  /* an empty dir the run writes into */
	unsigned upto;     /* every N up to it, then about as many strided */
} job;

typedef struct {
	int rc;        /* the status; -1 when not even the context could be had */
	char err[512]; /* its diagnostic */
} result;

static void
run(const job *j, talloc *t, result *res)
{
	onnxshard_ctx *c;
	char *out = NULL;

	jansson_t = t;
	memset(shared, 0, sizeof *shared);
	t->jansson_refusable = j->what != RUN_CHECK && j->what != RUN_STITCH;
	res->err[0] = 0;
	if (!(c = onnxshard_new(talloc_f, t, 1))) {
		res->rc = -1;
		jansson_t = &outside;
		return;
	}
	switch (j->what) {
	case RUN_SHARD:
	case RUN_AUTO:
	case RUN_JOBS: {
		onnxshard_opts o = {0};
		out = tu_path(j->work, "out");
		o.model = j->model;
		o.mesh = "data=2,model=2";
		/* auto on 20 plans: more than these models' spaces hold, so the tree */
		o.strategy = j->what == RUN_AUTO ? NULL : "data,megatron";
		o.budget_plans = j->what == RUN_AUTO ? 20 : 0;
		o.jobs = j->what == RUN_JOBS ? 2 : 1;
		o.out = out;
		o.quiet = 1;
		res->rc = onnxshard_shard(c, &o);
		break;
	}
	case RUN_CHECK: res->rc = onnxshard_check(c, j->ref, NULL); break;
	case RUN_STITCH:
		out = tu_path(j->work, "stitched.onnx");
		res->rc = onnxshard_stitch(c, j->ref, out);
		break;
	default: {
		/* the report: written only when whole, so a failed run leaves it empty */
		out = tu_path(j->work, "report");
		FILE *f = fopen(out, "w");
		assert_non_null(f);
		if (j->what == RUN_EXHAUSTIVE) {
			onnxshard_opts o = {0};
			o.model = j->model;
			o.mesh = "data=2,model=2";
			o.strategy = "exhaustive";
			o.quiet = 1;
			o.json = 1;
			o.report = f;
			res->rc = onnxshard_shard(c, &o);
		} else if (j->what == RUN_ANALYZE || j->what == RUN_ANALYZE_JSON) {
			res->rc = onnxshard_analyze(c, j->model, j->what == RUN_ANALYZE_JSON, f);
		} else {
			res->rc = onnxshard_inspect(c, j->model, j->what == RUN_INSPECT_JSON, f);
		}
		assert_int_equal(fclose(f), 0);
		struct stat st;
		if (res->rc && stat(out, &st) == 0 && st.st_size == 0)
			remove(out);
		break;
	}
	}
	free(out);
	snprintf(res->err, sizeof res->err, "%s", onnxshard_error(c));
	onnxshard_free(c);
	jansson_t = &outside;
}

/* A bad run: say so (the first few, or all when verbose) and go on. */
static unsigned bad_runs;

typedef struct {
	uint64_t total;    /* refusable allocations of a normal run */
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

/* Run j normally (what it writes kept in normal), then with each N refused. */
static void
sweep(const job *j, const char *normal, stats *s)
{
	talloc t = {0};
	result res;
	double t0 = now();
	int full = getenv("ONNXSHARD_ALLOC_FULL") != NULL;

	memset(s, 0, sizeof *s);
	run(j, &t, &res);
	if (res.rc)
		fail_msg("%s %s: a normal run fails: %s", run_names[j->what],
		         j->model ? j->model : j->ref, res.err);
	assert_int_equal(t.live, 0);
	assert_int_equal(t.bad_size, 0);
	assert_int_equal(shared->bad_size, 0);
	s->total = shared->max_calls; /* the writers' counts too */
	tu_rmtree(normal);
	assert_int_equal(rename(j->work, normal), 0);
	assert_int_equal(mkdir(j->work, 0777), 0);

	uint64_t stride = 1, first = 1, last = s->total;
	unsigned upto = j->upto ? j->upto : ALL_UPTO, strided = j->upto ? j->upto : STRIDED;
	if (!full && s->total > upto)
		stride = ((s->total - upto) / strided + 1) | 1; /* odd: no beat with loops of 2^k */
	if (j->what == RUN_JOBS) {
		assert_true(shared->fork_at > 0);
		first = shared->fork_at + 1;
		if (!full)
			stride = JOBS_STRIDE;
		printf("# %s: from allocation %llu, the fork\n", run_names[j->what],
		       (unsigned long long)first);
	}
	if (getenv("ONNXSHARD_ALLOC_N"))
		first = last = strtoull(getenv("ONNXSHARD_ALLOC_N"), NULL, 10);
	for (uint64_t n = first; n <= last && n <= s->total;
	     n += n < upto && j->what != RUN_JOBS ? 1 : stride) {
		talloc ft = {0};
		char why[600] = "", left[400];
		ft.fail_at = n;
		run(j, &ft, &res);
		s->tried++;
		describe(j->work, left, sizeof left);
		if (ft.live != 0 || shared->bad_size)
			snprintf(why, sizeof why, "%lld blocks leaked, %llu frees of a wrong size",
			         (long long)ft.live, (unsigned long long)shared->bad_size);
		else if (res.rc == -1) /* the context itself: only the first */
			snprintf(why, sizeof why, "%s", n == 1 ? "" : "no context");
		else if (!shared->refused)
			snprintf(why, sizeof why, "never asked for (the runs differ)");
		else if (res.rc == 0) {
			if (!same_tree(j->work, normal))
				snprintf(why, sizeof why, "succeeds with other output (%s)", left);
			s->survived++;
		} else if (res.rc != ONNXSHARD_EFAIL || !res.err[0] || strchr(res.err, '\n') ||
		           *left)
			snprintf(why, sizeof why, "status %d, left behind '%s'", res.rc, left);
		if (*why && (bad_runs++ < 30 || verbose))
			print_error("%s, allocation %llu refused: %s (%s)\n", run_names[j->what],
			            (unsigned long long)n, why, res.err);
		if (verbose) {
			printf("N %llu rc %d err %s live %lld verdict %s at", (unsigned long long)n,
			       res.rc, res.err, (long long)ft.live, *why ? why : "ok");
			for (int i = 1; i < ft.n_where; i++)
				printf(" %p", ft.where[i]);
			putchar('\n');
		}
		if (*left)
			empty_dir(j->work);
	}
	s->seconds = now() - t0;
	printf("# %-14s %-9s %6llu allocations, %5llu Ns tried (all to %u, then every %llu), "
	       "%llu survived, %.1f s\n",
	       run_names[j->what], j->model ? strrchr(j->model, '/') + 1 : "",
	       (unsigned long long)s->total, (unsigned long long)s->tried, upto,
	       (unsigned long long)stride, (unsigned long long)s->survived, s->seconds);
}

/* shard (its forms; against a normal run's output), check and stitch of
 * that output, inspect and analyze of the model; small: plan on every
 * assignment (small spaces only) and shard with 2 writers too (each fork
 * costs: on the small model, where every N is tried). */
static void
model_sweep(const char *name, int small)
{
	const char *only = getenv("ONNXSHARD_ALLOC_ONLY");
	if (only && !strstr(name, only))
		skip();
	char *model = tu_path(ONNXSHARD_SRCDIR "/samples", name);
	char *root = tu_tmpdir(), *ref = tu_path(root, "ref"), *work = tu_path(root, "work");
	char *normal = tu_path(root, "normal"), *refout = tu_path(ref, "out");
	stats s;

	assert_int_equal(mkdir(ref, 0777), 0);
	assert_int_equal(mkdir(work, 0777), 0);
	/* the output check and stitch read, made with the C library's allocator */
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

	bad_runs = 0;
	for (int what = RUN_SHARD; what <= RUN_ANALYZE_JSON; what++) {
		job j = {what, model, refout, work,
		         (what == RUN_AUTO && !small) || what == RUN_EXHAUSTIVE ? AUTO_BIG : 0};
		if ((what == RUN_EXHAUSTIVE || what == RUN_JOBS) && !small)
			continue;
		sweep(&j, normal, &s);
	}
	tu_rmtree(root);
	if (bad_runs)
		fail_msg("%s: %u bad runs", name, bad_runs);
	free(refout);
	free(normal);
	free(ref);
	free(work);
	free(root);
	free(model);
}

static void
test_mlp(void **state)
{
	(void)state;
	model_sweep("mlp.onnx", 1);
}

static void
test_gpt2(void **state)
{
	(void)state;
	model_sweep("gpt2.onnx", 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mlp),
	        cmocka_unit_test(test_gpt2),
	};

	verbose = getenv("ONNXSHARD_ALLOC_VERBOSE") != NULL;
	shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
	              0);
	if (shared == MAP_FAILED || pthread_atfork(NULL, NULL, on_fork_child))
		return 1;
	json_set_alloc_funcs(j_malloc, j_free);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
