/* propagate/: the sharding representation (mesh, per-dim mesh axes, partial
 * axes), factor-based propagation of shardings through op rules, and the
 * materialised plan: each node's factor assignment and the reshards
 * (collectives) its operands need. */
#ifndef PROP_H
#define PROP_H

#include "ir/ir.h"

#define PROP_MAX_AXES 8 /* mesh axes; an axis mask fits a byte */

typedef struct {
	uint32_t n_axes;
	char *names[PROP_MAX_AXES]; /* owned */
	int64_t sizes[PROP_MAX_AXES];
	int64_t world; /* product of sizes */
} prop_mesh;

/* Parse "data=2,model=4". Bad specs: ONNXSHARD_EINPUT naming the option. */
int prop_mesh_parse(shd_ctx *c, const char *spec, prop_mesh *m);
void prop_mesh_free(shd_ctx *c, prop_mesh *m);
int prop_mesh_axis(const prop_mesh *m, const char *name); /* -1 if absent */
/* Coordinates of rank r (row-major). */
void prop_mesh_coords(const prop_mesh *m, int64_t r, int64_t *coords);
/* Block index of rank r on a dim split over axes ax[0..n) (ax[0] major). */
int64_t prop_shard_index(const prop_mesh *m, int64_t r, const uint8_t *ax, uint32_t n);
/* Product of the sizes of axes ax[0..n). */
int64_t prop_axes_size(const prop_mesh *m, const uint8_t *ax, uint32_t n);
/* The group of rank r over axes ax[0..n): ranks sharing r's other coords,
 * in shard-index order; writes prop_axes_size entries. */
void prop_group(const prop_mesh *m, int64_t r, const uint8_t *ax, uint32_t n, int64_t *out);

/* A dim's sharding: the mesh axes splitting it, major to minor. With
 * pieces p > 1 the dim is p equal pieces side by side (a fused QKV
 * projection), each split over the axes; a rank holds its block of every
 * piece, in piece order. The count of pieces may be symbolic (sym: the
 * heads of a [batch*heads] dim split, batch pieces of heads each): such a
 * layout flows through ops that keep the dim, never through a reshard. */
typedef struct {
	uint8_t n;
	uint16_t pieces; /* 0 or 1: plain blocks (unless sym) */
	uint8_t ax[PROP_MAX_AXES];
	uint16_t pad; /* 0: equal blocks that divide the dim; u > 0: padded (a
	               * constant dim D, n > 0, no symbolic count): each of its
	               * pieces (D / pieces) in blocks of
	               * ceil(D / (pieces * shards * u)) * u, the positions past
	               * each piece's end padding (propagate.c: where padding may
	               * pass) */
	uint32_t sym; /* 0, or the expression id (ir_dim.ex) of a symbolic count */
	uint8_t npc;  /* with sym: the leading npc axes of ax split the count of
	               * pieces (a rank holds a contiguous run of them), the rest
	               * each piece ([batch·heads]: the batch over data, the
	               * heads over model); 0: every axis splits each piece */
} prop_dim;

/* The block of a dim of constant size `size` padded at granularity u
 * over `shards` blocks: ceil(size / (shards * u)) * u. */
static inline int64_t
prop_pad_block(int64_t size, int64_t u, int64_t shards)
{
	return (size + shards * u - 1) / (shards * u) * u;
}

static inline int64_t
prop_pieces(const prop_dim *d)
{
	return d->pieces > 1 ? d->pieces : 1;
}
/* The local size of padded split d of a constant dim of size `size` over
 * `shards` blocks: every piece's padded block, side by side. */
static inline int64_t
prop_padded_local(int64_t size, const prop_dim *d, int64_t shards)
{
	return prop_pieces(d) * prop_pad_block(size / prop_pieces(d), d->pad, shards);
}
/* Whether d is in pieces (a constant or symbolic count). */
static inline int
prop_is_pieced(const prop_dim *d)
{
	return d->pieces > 1 || d->sym;
}
/* Whether d is split in padded blocks. */
static inline int
prop_is_padded(const prop_dim *d)
{
	return d->n && d->pad;
}
/* Whether a and b lay their pieces (and padding) out alike. */
static inline int
prop_same_pieces(const prop_dim *a, const prop_dim *b)
{
	return prop_pieces(a) == prop_pieces(b) && a->sym == b->sym && a->pad == b->pad &&
	       a->npc == b->npc;
}

/* A tensor's sharding. rank -1: unknown rank, always replicated. */
typedef struct {
	int32_t rank;
	prop_dim *dims;  /* rank entries */
	uint8_t partial; /* mask of mesh axes over which the value is a pending sum */
} prop_shard;

int prop_shard_eq(const prop_shard *a, const prop_shard *b);
uint8_t prop_shard_axes(const prop_shard *s); /* mask of axes used on dims */
int prop_is_replicated(const prop_shard *s);

/* One step of a reshard, applied in order. */
enum {
	PROP_ALLREDUCE,     /* partial -> not partial over axes */
	PROP_REDUCESCATTER, /* partial over axes -> dim split over them */
	PROP_ALLGATHER,     /* dim split over axes (its minor ones) -> not */
	PROP_ALLTOALL,      /* axes move from dim (concat_dim) to dim (split_dim) */
	PROP_SLICE,         /* local: take this rank's block on dim over axes */
	PROP_TOPARTIAL,     /* local: keep on shard 0 of axes, zero elsewhere */
};

typedef struct {
	uint8_t kind;
	uint8_t n_axes;
	uint16_t pieces; /* AllGather, Slice: the dim is this many pieces (0, 1: plain) */
	uint8_t ax[PROP_MAX_AXES];
	uint16_t pad; /* AllGather: the dim was padded at this granularity (the
	               * gathered padding is cut off); Slice: the block is padded so */
	int32_t dim;  /* AllGather, ReduceScatter, Slice: the dim; AllToAll: split dim */
	int32_t dim2; /* AllToAll: the concat dim */
} prop_step;

/* The reshard of one operand of one node (or of a graph output). */
typedef struct {
	uint32_t node;    /* consumer node index, or IR_NONE for a graph output */
	uint32_t operand; /* operand index (graph output index) */
	uint32_t value;
	uint32_t first, n; /* steps: plan->steps[first .. first+n) */
	uint32_t id;       /* names the collectives alike on every rank */
} prop_reshard;

/* Why a value that a tactic or propagation wanted split ended replicated. */
typedef struct {
	uint32_t value;
	const char *why; /* interned */
} prop_note;

typedef struct {
	const prop_mesh *mesh;
	shd_arena arena;
	prop_shard *want; /* per value: propagated sharding (never partial) */
	uint8_t *fixed;   /* per value: set by a tactic, propagation leaves it */
	prop_shard *have; /* per value: sharding as produced (may be partial) */
	prop_reshard *reshards;
	uint32_t n_reshards, cap_reshards;
	prop_step *steps;
	uint32_t n_steps, cap_steps;
	prop_note *notes;
	uint32_t n_notes, cap_notes;
	prop_dim *lookup;     /* per node: a Gather's table split along its rows (n = 0: none) */
	uint8_t *gather_out;  /* per graph output: assemble it whole but for the axis
	                       * named "data" (--gather-outputs) */
	uint8_t *nosym;       /* per value: may not hold a symbolic count of pieces
	                       * (one would need a reshard; set by prop_materialize) */
	const ir_rule *rules; /* per node, or NULL: built by each pass (the search
	                       * builds them once: prop_rules) */
	ir_bindf bind;        /* --dim bindings, for divisibility */
	void *bind_ud;
	int (*stop)(void *ud); /* NULL, or polled while propagating: a non-zero
	                        * status (diagnostic set) ends propagation with it */
	void *stop_ud;
} prop_plan;

int prop_plan_init(ir_graph *g, const prop_mesh *m, prop_plan *p);
void prop_plan_free(ir_graph *g, prop_plan *p);

/* Seed: value v's dim d split over axis a (appended; in `pieces` equal
 * pieces when > 1), fixed or not. Returns 0, 1 when the axis is already
 * used by v, the layout differs, or it does not divide, or 2 when v is
 * 4-bit and a block's innermost extent would be odd (it would cut bytes). */
int prop_seed(ir_graph *g, prop_plan *p, uint32_t v, int32_t d, uint8_t a, int pieces, int fix);
/* The same, allowing a padded split: a constant dim whose pieces do not
 * divide is held as padded blocks at granularity unit, each piece alike
 * (whole units: a head's width where a Reshape splits the dim into heads);
 * an initializer only (graph inputs arrive in equal blocks), and the dim
 * not yet split. unit 0 is prop_seed. */
int prop_seed_padded(ir_graph *g, prop_plan *p, uint32_t v, int32_t d, uint8_t a, int pieces,
                     int fix, int64_t unit);
/* The granularity a split of value v's dim d needs from its uses: the dim
 * followed through the rules of the nodes that hold it (operands and
 * results alike, a factor at a time) to the first Reshape that splits it
 * into [heads, width] or joins it from them: that width (the product of
 * the minor factors), and in *pieces (when not NULL) the equal pieces an
 * equal Split on the way cut it into (1: none). 1 when no Reshape is
 * reached (and on running out of memory). rules: every node's rule, or
 * NULL (built as needed); use_off, uses: ir_consumers's index, or NULL
 * (built). */
int64_t prop_pad_unit(ir_graph *g, const ir_rule *rules, const uint32_t *use_off,
                      const uint32_t *uses, uint32_t v, int32_t d, int *pieces);
/* Mark v replicated and fixed. */
void prop_seed_replicated(prop_plan *p, uint32_t v);

/* Every node's rule into rules[0..n_nodes), allocated in arena a. */
int prop_rules(ir_graph *g, shd_arena *a, ir_rule *rules);

/* Propagation to a fixed point.
 * requires: lifted graph, seeds
 * provides: want[] for every value */
int prop_propagate(ir_graph *g, prop_plan *p);

/* Materialisation.
 * requires: want[] (after prop_propagate)
 * provides: have[] for every value, the reshards of every operand and graph
 *   output, notes on what was replicated and why */
int prop_materialize(ir_graph *g, prop_plan *p);

/* The sharding graph output j ends with (after its reshard): as produced
 * when that is not partial, else what the plan wanted; never partial, a
 * dim in pieces gathered; only the axis named "data" kept when
 * gather_out[j]. out->dims has room for the output's rank. */
void prop_output_shard(const ir_graph *g, const prop_plan *p, uint32_t j, prop_shard *out);

/* Size of dim d of value v on one rank under sharding s (global / blocks;
 * a padded dim's padded block). */
ir_dim prop_local_dim(ir_graph *g, const prop_plan *p, const ir_value *v, const prop_shard *s,
                      int32_t d);

/* Record why value v stays replicated (first reason wins). */
int prop_note_add(ir_graph *g, prop_plan *p, uint32_t v, const char *why);

/* "[data],[],[model]" style text; "partial(model)" appended. */
void prop_shard_print(const prop_plan *p, const prop_shard *s, FILE *out);

#endif
