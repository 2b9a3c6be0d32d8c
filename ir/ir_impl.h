/* Internal to ir/: the string and expression tables. */
#ifndef IR_IMPL_H
#define IR_IMPL_H

#include "ir.h"

struct ir_strtab {
	const char **strs; /* n strings, in the graph's arena */
	uint32_t n, cap_strs;
	uint32_t *slots; /* open addressing: 0 empty, else index + 1 */
	uint32_t cap;    /* a power of two */
};

ir_str ir_intern_n(ir_graph *g, const char *s, size_t n);
void ir_strtab_free(ir_graph *g);

enum { ATOM_SYM, ATOM_FLOORDIV, ATOM_MOD, ATOM_MIN, ATOM_MAX };

typedef struct {
	uint8_t kind;
	ir_str name; /* the symbol, or the printed form of the operation */
	ir_dim a, b; /* operands of an operation */
} ir_atom;

typedef struct {
	int64_t coeff;
	uint32_t n;      /* atoms in the monomial, with repeats for powers */
	uint32_t *atoms; /* sorted by name */
} ir_term;

typedef struct {
	uint32_t n_terms; /* >= 1, canonical order, no zero coefficient */
	ir_term *terms;
	ir_str text;
} ir_expr;

struct ir_exprs {
	ir_expr *e; /* e[0] unused: id 0 is IR_EX_CONST */
	uint32_t n, cap;
	ir_atom *atoms;
	uint32_t n_atoms, cap_atoms;
	uint32_t *by_text; /* ir_str index -> expr id or atom id + 1 (0: none) */
	uint32_t cap_by_text;
	uint32_t *atom_by_text;
	uint32_t cap_atom_by_text;
};

int ir_exprs_init(ir_graph *g);
void ir_exprs_free(ir_graph *g);

#endif
