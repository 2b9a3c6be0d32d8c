/* onnxshard: turn one ONNX model into per-rank ONNX models for a device mesh.
 * The public API of libonnxshard.
 *
 * Linking: `pkg-config --cflags --libs onnxshard` (libonnxshard.so.0, soname
 * version 0, exporting exactly the functions below; libonnxshard.a beside
 * it, with `pkg-config --static`). docs/example.c plans, shards and checks
 * a model; python/onnxshard is a ctypes binding of this API.
 *
 * Entry points, one per command of the onnxshard tool:
 *   onnxshard_shard    shard (o->out set) and plan (o->out NULL)
 *   onnxshard_inspect  inspect [--json | --dump ir]
 *   onnxshard_analyze  analyze [--json]
 *   onnxshard_check    check
 *   onnxshard_stitch   stitch
 * Each takes a context (onnxshard_new) and returns a status below. A model
 * is read from a path (its external data files beside it); to work on a
 * model held in memory, write it to a file first (the Python package does
 * so for bytes, in a private temp dir removed after the call).
 *
 * Errors: a non-zero status leaves one line in onnxshard_error(c), the very
 * message the command prints after "onnxshard: error: " (e.g. "--mesh
 * 'data=0': size of axis 'data' must be 1..65536", "m.onnx: No such file or
 * directory", "interrupted"). Nothing is printed by the library except
 * progress on stderr during shard and plan unless o->quiet.
 *
 * Ownership: the caller owns the context (free it with onnxshard_free),
 * every string and array it passes (read during the call only, never
 * kept) and every FILE * (written, flushed by the caller, never closed by
 * the library). The library owns the string onnxshard_error returns: it
 * is valid until the next call with the same context or its free. Nothing
 * the library allocates outlives a call except the context itself.
 *
 * Threads: the library has no global state; a context is used by one thread
 * at a time, and calls on distinct contexts may run at once. It never
 * changes process-wide settings (no umask, no signal handlers, no
 * jansson allocation hooks). Files and folders it makes get the modes a
 * plain creat (0666) or mkdir (0777) gives, less the process umask: with
 * umask 022, OUT is 0755 and its files 0644; with 077, 0700 and 0600.
 * Worker processes (o->jobs > 1) are fork()s of the calling process: see
 * onnxshard_opts.jobs. */
#ifndef ONNXSHARD_H
#define ONNXSHARD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ONNXSHARD_VERSION "0.1.0"
/* The ai.onnx opsets whose op forms onnxshard knows (older forms of some ops
 * are read as opaque: replicated, never sharded wrong). */
#define ONNXSHARD_OPSET_MIN 1
#define ONNXSHARD_OPSET_MAX 21

/* Status codes, returned by every entry point that can fail, and the
 * command's exit codes: 2 means the input or the options are wrong (a fix on
 * the caller's side), 1 that the work failed (memory, I/O, cancelled). */
enum {
	ONNXSHARD_OK = 0,
	ONNXSHARD_EFAIL = 1,  /* failure while working (out of memory, I/O) */
	ONNXSHARD_EINPUT = 2, /* bad usage or bad input */
};

typedef struct onnxshard_ctx onnxshard_ctx;

/* Allocator in the style of lua_Alloc: nsize 0 frees, else (re)allocates.
 * When ptr is not NULL, osize is always the size of the block ptr points
 * to, as asked for when it was (re)allocated (never 0: every request is for
 * 1 byte or more); with ptr NULL, osize is 0. A refused allocation returns
 * NULL and the call fails cleanly ("out of memory"). Everything the library
 * allocates goes through it, but what the C library and jansson allocate
 * inside their own calls: FILE buffers (fopen), realpath's result (copied
 * at once), and the JSON trees of manifests, plans and hardware files,
 * which jansson builds and parses with malloc (or whatever the host passed
 * to json_set_alloc_funcs, a process-wide setting the library leaves
 * alone). */
typedef void *(*onnxshard_allocf)(void *ud, void *ptr, size_t osize, size_t nsize);

/* A context owns the allocator, diagnostics and the seed. alloc may be NULL
 * for the C library's (ud is passed to alloc as is). Returns NULL when even
 * the context cannot be had. onnxshard_free(NULL) does nothing. */
onnxshard_ctx *onnxshard_new(onnxshard_allocf alloc, void *ud, uint64_t seed);
void onnxshard_free(onnxshard_ctx *c);

/* The last diagnostic ("FILE: what is wrong"), or "" when there is none;
 * "out of memory" for a NULL context. Owned by the context: valid until its
 * next call or onnxshard_free. */
const char *onnxshard_error(const onnxshard_ctx *c);

/* Limits on the models this context reads, against hostile input (0: the
 * default). max_model_bytes: what a command reads: the protobuf (after
 * gunzip; never more than protobuf's own 2 GiB), and for shard, which
 * streams every weight, its external data files too; default
 * ONNXSHARD_MAX_MODEL_BYTES (2 GiB + 2 TiB: a 405B-parameter model in
 * float32 passes); max_nodes: nodes of the main graph, default
 * ONNXSHARD_MAX_NODES. A model over a limit is refused as bad input. */
#define ONNXSHARD_MAX_MODEL_BYTES (((uint64_t)2 << 30) + ((uint64_t)2 << 40))
#define ONNXSHARD_MAX_NODES       1000000u
void onnxshard_set_limits(onnxshard_ctx *c, uint64_t max_model_bytes, uint64_t max_nodes);

/* Inspect a model: write a report to out. format: 0 text, 1 JSON (with
 * every value's dtype and shape), ONNXSHARD_DUMP_IR the IR's text form.
 * Returns ONNXSHARD_EINPUT for a missing, unreadable, malformed or too large
 * model; out is the caller's (written, not closed). */
enum { ONNXSHARD_DUMP_IR = 2 };
int onnxshard_inspect(onnxshard_ctx *c, const char *model_path, int format, FILE *out);

/* Analyze a model's dimension classes: classes that decide a sharding,
 * conflicts, opaque ops, decision groups shared by identical layers and the
 * decision space before and after grouping; json: 0 text, 1 JSON. */
int onnxshard_analyze(onnxshard_ctx *c, const char *model_path, int json, FILE *out);

/* Check an output directory (manifest, file sizes and crc32, rank models,
 * collectives); on success write "ok: N ranks, C collectives, B bytes" to
 * out (may be NULL). */
int onnxshard_check(onnxshard_ctx *c, const char *dir, FILE *out);
/* (check: ONNXSHARD_EINPUT when dir or its contents are wrong.) */
/* Stitch an output directory's ranks into one model at path, collectives
 * replaced by standard ops, large initializers in path.data. */
int onnxshard_stitch(onnxshard_ctx *c, const char *dir, const char *path);

/* Options of onnxshard_shard (and of `plan`, which leaves out NULL). */
typedef struct {
	const char *model;
	const char *mesh;     /* "data=2,model=4" */
	const char *out;      /* output directory; NULL: plan only */
	const char *strategy; /* "auto" (NULL), "data", "megatron[:AXIS]", lists, a .json file */
	const char **dims;    /* "NAME=SIZE" bindings of symbolic dims, for planning */
	size_t n_dims;
	const char *collectives;       /* "onnxshard" (NULL) or "ort" */
	int force;                     /* replace an existing out */
	int quiet;                     /* no progress on stderr */
	int json;                      /* report as JSON */
	FILE *report;                  /* the plan's summary; NULL: none */
	const char *report_html;       /* NULL, or a file: the plan as one HTML page */
	uint64_t budget_ms;            /* planning time, counted from the call; past it the
	                                * search stops with its best plan, and propagation
	                                * fails; 0: ONNXSHARD_BUDGET_MS */
	uint32_t budget_plans;         /* plans the search scores at most; 0: 256 */
	const char *hardware;          /* preset (h100, a100, cpu) or JSON file; NULL: h100 */
	uint64_t seed;                 /* the search's */
	volatile sig_atomic_t *cancel; /* NULL, or polled: non-zero stops the run
	                                * ("interrupted", ONNXSHARD_EFAIL), OUT not made */
	const char **gather_outputs;   /* fnmatch patterns of graph outputs to assemble
	                                * whole, but for their batch split over the axis
	                                * named "data"; each must match an output */
	size_t n_gather_outputs;
	const char *external_data; /* "auto" (NULL): initializers of 1 KiB or more go to
	                            * rank{r}.onnx.data; "always": all; "never": none (a rank
	                            * model past protobuf's 2 GiB is then refused) */
	int jobs;                  /* worker processes writing rank models (0, 1: this one);
	                            * the output is the same whatever the number. Each
	                            * is a fork() of the calling process that runs the
	                            * emitter (which allocates through the context's
	                            * allocator and writes files) and ends with _exit.
	                            * In a multi-threaded host only the calling thread
	                            * exists in a worker: an allocator whose lock another
	                            * thread held at the fork deadlocks it. glibc's
	                            * malloc (the default, NULL allocator) resets its
	                            * locks at fork; a custom allocator must do the same
	                            * (pthread_atfork) or hold no lock, else use 1 there */
	const int64_t *ranks;      /* NULL: every rank; else the n_ranks ranks to write
	                            * (load-time sharding: see onnxshard_shard) */
	size_t n_ranks;
} onnxshard_opts;

#define ONNXSHARD_BUDGET_MS 60000u

/* Shard a model: search or follow the strategy, write per-rank models and a
 * manifest to o->out (atomically: it appears whole or not at all). With
 * o->out NULL, plan only: nothing is written but the report. With o->report
 * set, the plan's summary goes there (JSON when o->json: the object of
 * `onnxshard plan --json`, step_time_s, peak_memory_bytes, baselines, ...).
 * ONNXSHARD_EINPUT: bad options (mesh, strategy, dims, hardware), a bad
 * model, an existing o->out without o->force; ONNXSHARD_EFAIL: I/O, memory,
 * "interrupted" by o->cancel (then o->out is not made, its temp dir is
 * removed). The cancel flag may be set from a signal handler or another
 * thread.
 *
 * With o->ranks, the same plan is made (the whole model is planned) but
 * only those ranks' files are written, byte for byte the full run's, with
 * the full run's manifest, in which every other rank's entry is
 * {rank, coords, model, "written": false}. o->out may then exist: each
 * file is renamed into it whole, and the manifest is merged under a lock
 * (flock on o->out) with the one there, so that processes writing
 * different ranks into one o->out each add theirs (the last leaves the
 * full run's manifest); one of another plan there is refused
 * (ONNXSHARD_EINPUT), whatever o->force. A rank not in the mesh:
 * ONNXSHARD_EINPUT. */
int onnxshard_shard(onnxshard_ctx *c, const onnxshard_opts *o);

#endif
