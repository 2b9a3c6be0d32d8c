/* propagate/analysis: dimension classes (TOAST-style), the conflicts among
 * them, and decision groups that let identical layers share one decision.
 * Read by the search (seeds per group) and by `onnxshard analyze`. */
#ifndef PROP_ANALYSIS_H
#define PROP_ANALYSIS_H

#include "ir/ir.h"

/* One (value, dim) of the graph. */
typedef struct {
	uint32_t value;
	int32_t dim;
} prop_slot;

/* Class flags. */
enum {
	PROP_C_WEIGHT = 1,   /* some member is a dim of an initializer */
	PROP_C_INPUT = 2,    /* some member is a dim of a graph input */
	PROP_C_REDUCED = 4,  /* some node contracts it (a split leaves a pending sum) */
	PROP_C_REPL = 8,     /* some node needs it whole (softmax, norm axis...) */
	PROP_C_DECISION = 16 /* WEIGHT or INPUT, and its size is not 1 */
};

/* A dimension class: slots that must be split alike (the same factor runs
 * through them, or they are equal products of such classes). */
typedef struct {
	ir_dim size;        /* the size of its first member */
	uint32_t first;     /* members: a->members[first .. first + n_members), slot order */
	uint32_t n_members; /* >= 1 */
	uint32_t n_repl;    /* nodes where it is a need-replication factor */
	uint32_t n_reduced; /* nodes where it is a reduction factor */
	uint8_t flags;      /* PROP_C_* */
	uint32_t group;     /* decision group, or IR_NONE when not a decision class */
	uint64_t sig;       /* layer-independent signature (equal in identical layers) */
} prop_class;

/* Two dims of one tensor in one class: only one of them can hold a split of
 * the class (Q·Kᵀ: the scores' two seq dims). Conflicts that a node carries
 * dim for dim into each other (scores -> scaled -> masked -> softmax) form
 * one set: one decision, which side keeps the split. */
typedef struct {
	uint32_t node;  /* the producer, or IR_NONE for an input or initializer */
	uint32_t value; /* the tensor */
	uint32_t cls;
	int32_t d1, d2; /* d1 < d2 */
	uint32_t set;   /* conflict set, numbered by first conflict */
	uint32_t group; /* group of its set: sets alike in identical layers */
} prop_conflict;

/* A decision group: classes with equal signatures (one per identical layer);
 * the search decides once for all of them. */
typedef struct {
	uint32_t first_class, n_classes; /* a->group_classes[first_class ..] */
	uint32_t first_seed, n_seeds;    /* a->seeds[first_seed ..]: every initializer
	                                  * and graph-input slot of its classes */
} prop_dgroup;

typedef struct {
	uint32_t op_type; /* ir_str id of the op type */
	uint32_t count;
} prop_opaque;

typedef struct {
	shd_arena arena; /* everything below */
	uint32_t *slot0; /* per value: its first slot (slot = slot0[v] + dim), or
	                  * IR_NONE (unknown rank, rank 0, or a shape value) */
	uint32_t n_slots;
	prop_slot *slots;   /* per slot: its (value, dim) */
	uint32_t *cls;      /* per slot: class id */
	prop_slot *members; /* slots ordered by class */
	prop_class *classes;
	uint32_t n_classes, n_decisions; /* n_decisions: classes with PROP_C_DECISION */
	prop_conflict *conflicts;        /* in value order */
	uint32_t n_conflicts, n_conflict_sets, n_conflict_groups;
	uint32_t n_decision_conflict_sets;   /* sets on decision classes */
	uint32_t n_decision_conflict_groups; /* their groups */
	prop_dgroup *groups;
	uint32_t n_groups;
	uint32_t *group_classes; /* class ids, by group */
	prop_slot *seeds;
	uint32_t n_seeds;
	uint16_t *seed_unit;   /* per seed: the granularity a padded split of it
	                        * needs (prop_pad_unit; 1 but for initializers) */
	uint16_t *seed_pieces; /* per seed: its equal pieces (1: none), likewise */
	prop_opaque *opaque;   /* op types without a rule, by count then name */
	uint32_t n_opaque;
} prop_analysis;

/* Dimension classes.
 * requires: a lifted graph (shapes, rules)
 * provides: the class of every slot, class flags, conflicts, decision
 *   groups with their seed slots, opaque op counts.
 * 0, or ONNXSHARD_EFAIL when out of memory (a is then empty). */
int prop_analyze(ir_graph *g, prop_analysis *a);
void prop_analysis_free(ir_graph *g, prop_analysis *a);

/* The class of value v's dim d, or IR_NONE when it has no slot. */
static inline uint32_t
prop_class_of(const prop_analysis *a, uint32_t v, int32_t d)
{
	return a->slot0[v] == IR_NONE ? IR_NONE : a->cls[a->slot0[v] + (uint32_t)d];
}

#endif
