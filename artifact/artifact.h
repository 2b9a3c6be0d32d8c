/* artifact/: reading an output directory back: check.c (manifest,
 * checksums, rank models, collectives) and stitch.c (one model of all
 * ranks, to verify in any runtime). */
#ifndef ARTIFACT_H
#define ARTIFACT_H

#include <jansson.h>

#include "core/shd.h"
#include "onnx/onnxio.h"

/* ------------------------------------------------------------------------
 * Reading an output directory back: check.c (manifest, checksums, rank
 * models, collectives) and stitch.c (one model of all ranks).
 * ------------------------------------------------------------------------ */

/* A graph input or output as the manifest gives it (global shape). */
typedef struct {
	const char *name; /* points into the manifest's JSON */
	int32_t dtype;    /* ONNX data type */
	size_t ndim;
	int64_t *dims;    /* length ndim; -1 where symbolic */
	const char **sym; /* length ndim; the symbolic name, or NULL */
	int *axes;        /* ndim rows of n_axes: mesh axes major to minor, -1 after the last */
	int64_t *pieces;  /* length ndim, each >= 1 ("pieces": parameters only) */
} art_mtensor;

/* An output directory whose manifest has been read and checked. */
typedef struct {
	shd_ctx *ctx;
	shd_arena arena; /* everything below except root */
	const char *dir;
	json_t *root; /* the manifest */
	size_t n_axes;
	const char **axis;  /* length n_axes, mesh order */
	int64_t *size;      /* length n_axes, each >= 1 */
	size_t world;       /* product of sizes */
	int64_t *coords;    /* world rows of n_axes, by rank (row-major numbering) */
	const char **model; /* length world: rank r's file name inside dir */
	int ort;            /* collective domain is com.microsoft: groups are ORT worlds */
	int *ort_axes;      /* the axes an ORT world spans (manifest "ort_worlds"; all
	                     * axes when absent), mesh order */
	size_t n_ort_axes;
	int64_t ort_size; /* ranks in one world */
	art_mtensor *in, *out, *param;
	size_t n_in, n_out, n_param;
	uint8_t *absent; /* length world: 1 where the manifest says "written": false
	                  * (shard --rank: the files are not in dir) */
	size_t n_absent;
} art_outdir;

enum { ART_ALLREDUCE = 1, ART_ALLGATHER, ART_REDUCESCATTER, ART_ALLTOALL };

/* A collective node read from a rank model, attributes checked. */
typedef struct {
	int kind;                        /* ART_*; 0 when the node is no collective */
	const char *reduce;              /* "sum", "max" or "min" (AllReduce, ReduceScatter) */
	int64_t axis;                    /* AllGather, ReduceScatter */
	int64_t split_axis, concat_axis; /* AllToAll */
	int *mesh_axes;                  /* n_mesh_axes axis indices, as written */
	size_t n_mesh_axes;
	int64_t *group; /* n_group global ranks in shard-index order; this rank among them */
	size_t n_group;
} art_coll;

/* Read and check dir/manifest.json, every rank file and external data file
 * (size, crc32), every rank model and its collectives across ranks.
 * Bad input: ONNXSHARD_EINPUT, "DIR/FILE: what is wrong". On success *out
 * (may be NULL) keeps the manifest; stats (may be NULL) get ranks,
 * collectives (distinct node names) and bytes (rank and data files). */
int art_outdir_check(shd_ctx *c, const char *dir, art_outdir **out, uint64_t stats[3]);
void art_outdir_free(art_outdir *d);
/* Read node n of rank r's model (named file) as a collective (kind 0 if it
 * is none), checking its attributes and group against the mesh. */
int art_coll_read(art_outdir *d, size_t r, const char *file, const Onnx__NodeProto *n,
                  art_coll *out);

/* ---- end of check and stitch ------------------------------------------- */

#endif
