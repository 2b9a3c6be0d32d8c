/* Per-layer costing: a model whose nodes hold a run of R >= 4 identical
 * blocks (layers) is costed on two truncated copies, with 2 and 3 blocks,
 * and the step extrapolated: X(R) = X(2) + (R - 2) (X(3) - X(2)) for every
 * additive figure (times, bytes, FLOPs). A scored plan then costs two small
 * graphs, whatever the depth. The blocks' seeds are the full graph's
 * (identical layers share each decision), mapped onto the copies.
 *
 * A block is a run of P nodes repeated R times in node order with equal
 * signatures (op, domain, attributes, operand kinds and shapes), each
 * block's operands coming from itself, from the block before (the first
 * block: from the nodes before the run), from before the run (the same
 * value in every block), or from initializers and graph inputs of equal
 * shapes. The nodes after the run read the last block only; in a copy they
 * read its last block instead.
 * requires: a lifted graph
 * provides: search_fold (on = 0: no such run; cost the whole graph) */
#include <string.h>

#include "search_impl.h"

static uint64_t
mix(uint64_t h, uint64_t x)
{
	return (h ^ x) * 1099511628211u;
}

/* A value's dtype, shape and known elements. */
static uint64_t
dims_sig(const ir_value *v)
{
	uint64_t h = mix(mix(1469598103934665603u, (uint64_t)v->dtype), (uint64_t)v->rank);
	for (int32_t d = 0; d < v->rank; d++)
		h = mix(mix(h, v->dims[d].ex), (uint64_t)v->dims[d].c);
	for (int32_t i = 0; v->elems && i < v->n_elems; i++)
		h = mix(mix(h, v->elems[i].ex), (uint64_t)v->elems[i].c);
	return h;
}

/* A node's signature: what equal nodes of identical layers share. */
static uint64_t
node_sig(const ir_graph *g, const ir_node *n)
{
	uint64_t h = mix(mix(mix(1469598103934665603u, n->op), n->op_type.i), n->domain.i);
	h = mix(mix(h, n->n_in), n->n_out);
	for (uint32_t k = 0; k < n->n_in; k++) {
		uint32_t v = ir_in(g, n, k);
		h = mix(h, v == IR_NONE ? 7 : g->values[v].kind);
		if (v != IR_NONE)
			h = mix(h, dims_sig(&g->values[v]));
	}
	for (uint32_t k = 0; k < n->n_out; k++) {
		uint32_t v = ir_out(g, n, k);
		h = mix(h, v == IR_NONE ? 7 : dims_sig(&g->values[v]));
	}
	for (size_t j = 0; n->proto && j < n->proto->n_attribute; j++) {
		const Onnx__AttributeProto *a = n->proto->attribute[j];
		for (const char *c = a->name; c && *c; c++)
			h = mix(h, (unsigned char)*c);
		h = mix(mix(h, (uint64_t)a->i), (uint64_t)a->type);
		uint64_t f;
		memcpy(&f, &(double){a->f}, sizeof f);
		h = mix(h, f);
		for (size_t i = 0; i < a->n_ints; i++)
			h = mix(h, (uint64_t)a->ints[i]);
		for (size_t i = 0; i < a->s.len; i++)
			h = mix(h, a->s.data[i]);
	}
	return h;
}

/* Where node i lies: its block (or -1 before the run, -2 after it). */
static int64_t
block_of(const search_fold *f, uint32_t i)
{
	if (i < f->start)
		return -1;
	if (i >= f->start + f->period * f->reps)
		return -2;
	return (i - f->start) / f->period;
}

/* Which result of its producer v is. */
static uint32_t
result_of(const ir_graph *g, uint32_t v)
{
	const ir_node *n = &g->nodes[g->values[v].producer];
	uint32_t o = 0;

	while (o + 1 < n->n_out && ir_out(g, n, o) != v)
		o++;
	return o;
}

/* Whether operand k of node i (block r >= 1) matches its counterpart in
 * block r - 1. */
static int
operand_ok(const ir_graph *g, const search_fold *f, uint32_t i, uint32_t k, int64_t r)
{
	const ir_node *n = &g->nodes[i], *m = &g->nodes[i - f->period];
	uint32_t v = ir_in(g, n, k), w = ir_in(g, m, k);

	if (v == IR_NONE || w == IR_NONE)
		return v == w;
	const ir_value *a = &g->values[v], *b = &g->values[w];
	if (a->kind != IR_V_NODE || b->kind != IR_V_NODE)
		return a->kind == b->kind && (v == w || dims_sig(a) == dims_sig(b));
	int64_t ra = block_of(f, a->producer), rb = block_of(f, b->producer);
	if (ra == -1)
		return v == w; /* from before the run: the same value */
	if (rb >= 0 && result_of(g, v) != result_of(g, w))
		return 0;
	if (ra == r) /* its own block: the same place */
		return rb == r - 1 && a->producer - b->producer == f->period;
	if (ra == r - 1) /* the block before: the first block's is before the run */
		return rb == -1 ? r == 1 : rb == r - 2 && a->producer - b->producer == f->period;
	return 0;
}

/* Whether the run found is a chain of identical blocks (see the header). */
static int
blocks_ok(const ir_graph *g, const search_fold *f)
{
	uint32_t end = f->start + f->period * f->reps;

	for (uint32_t i = f->start + f->period; i < end; i++) {
		int64_t r = block_of(f, i);
		for (uint32_t k = 0; k < g->nodes[i].n_in; k++)
			if (!operand_ok(g, f, i, k, r))
				return 0;
	}
	for (uint32_t k = 0; k < f->period; k++) /* the first block: no skips */
		for (uint32_t j = 0; j < g->nodes[f->start + k].n_in; j++) {
			uint32_t v = ir_in(g, &g->nodes[f->start + k], j);
			if (v != IR_NONE && g->values[v].kind == IR_V_NODE &&
			    block_of(f, g->values[v].producer) > 0)
				return 0;
		}
	for (uint32_t i = end; i < g->n_nodes; i++) /* after: the last block only */
		for (uint32_t k = 0; k < g->nodes[i].n_in; k++) {
			uint32_t v = ir_in(g, &g->nodes[i], k);
			int64_t r = v == IR_NONE || g->values[v].kind != IR_V_NODE
			                    ? -1
			                    : block_of(f, g->values[v].producer);
			if (r >= 0 && r != (int64_t)f->reps - 1)
				return 0;
		}
	return 1;
}

/* The longest run of identical blocks: the period covering most nodes. */
static int
find_run(ir_graph *g, search_fold *f)
{
	shd_ctx *c = g->ctx;
	uint32_t n = g->n_nodes;
	uint64_t *sig = shd_calloc(c, (size_t)n + 1, sizeof *sig);

	if (!sig)
		return shd_nomem(c);
	for (uint32_t i = 0; i < n; i++)
		sig[i] = node_sig(g, &g->nodes[i]);
	/* periods up to n/4, within about 5e7 comparisons */
	uint64_t pmax = n / 4, cap = 50000000u / (n ? n : 1);
	pmax = pmax < cap ? pmax : cap;
	uint64_t best = 0;
	for (uint32_t p = 1; p <= pmax; p++)
		for (uint32_t i = 0, run = 0; i + p < n; i++) {
			run = sig[i] == sig[i + p] ? run + 1 : 0;
			uint32_t reps = (run + p) / p;
			if (run && reps >= 4 && (uint64_t)reps * p > best &&
			    (i + 1 == n - p || sig[i + 1] != sig[i + 1 + p])) {
				search_fold t = {.start = i + 1 - run, .period = p, .reps = reps};
				if (blocks_ok(g, &t)) {
					best = (uint64_t)reps * p;
					f->start = t.start, f->period = p, f->reps = reps;
				}
			}
		}
	shd_free(c, sig, ((size_t)n + 1) * sizeof *sig);
	return 0;
}

/* Value v of the full graph as the copy of k blocks reads it: a value of
 * block k or later is its counterpart in block k - 1. */
static uint32_t
remap(const ir_graph *g, const search_fold *f, uint32_t k, uint32_t v)
{
	const ir_value *x = &g->values[v];
	int64_t r = x->kind == IR_V_NODE ? block_of(f, x->producer) : -1;

	if (r < (int64_t)k)
		return v;
	const ir_node *n = &g->nodes[x->producer],
	              *m = &g->nodes[x->producer - (r - k + 1) * f->period];
	for (uint32_t o = 0; o < n->n_out; o++)
		if (ir_out(g, n, o) == v)
			return ir_out(g, m, o);
	return v;
}

/* Add full value v to copy s (once); its index there. */
static uint32_t
take(fold_graph *s, const ir_graph *g, uint32_t v)
{
	if (s->of_full[v] == IR_NONE) {
		s->of_full[v] = s->g.n_values;
		s->to_full[s->g.n_values] = v;
		s->g.values[s->g.n_values] = g->values[v];
		s->g.values[s->g.n_values].producer = IR_NONE;
		s->g.values[s->g.n_values].is_output = 0;
		s->g.n_values++;
	}
	return s->of_full[v];
}

/* The copy of k blocks: the nodes before the run, k blocks, the nodes after. */
static int
build(ir_graph *g, const search_fold *f, uint32_t k, fold_graph *s)
{
	shd_ctx *c = g->ctx;
	uint32_t end = f->start + f->period * f->reps;

	s->g = *g;
	memset(&s->g.arena, 0, sizeof s->g.arena);
	s->g.n_values = s->g.n_nodes = s->g.n_args = s->g.n_inputs = s->g.n_outputs = 0;
	s->g.cap_values = g->n_values, s->g.cap_nodes = g->n_nodes, s->g.cap_args = g->n_args;
	s->g.cap_inputs = g->n_inputs, s->g.cap_outputs = g->n_outputs;
	s->g.values = shd_calloc(c, (size_t)g->n_values + 1, sizeof *s->g.values);
	s->g.nodes = shd_calloc(c, (size_t)g->n_nodes + 1, sizeof *s->g.nodes);
	s->g.args = shd_calloc(c, (size_t)g->n_args + 1, sizeof *s->g.args);
	s->g.inputs = shd_calloc(c, (size_t)g->n_inputs + 1, sizeof *s->g.inputs);
	s->g.outputs = shd_calloc(c, (size_t)g->n_outputs + 1, sizeof *s->g.outputs);
	s->of_full = shd_calloc(c, (size_t)g->n_values + 1, sizeof *s->of_full);
	s->to_full = shd_calloc(c, (size_t)g->n_values + 1, sizeof *s->to_full);
	if (!s->g.values || !s->g.nodes || !s->g.args || !s->g.inputs || !s->g.outputs ||
	    !s->of_full || !s->to_full)
		return shd_nomem(c);
	memset(s->of_full, 0xff, ((size_t)g->n_values + 1) * sizeof *s->of_full);
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		if (i >= f->start + k * f->period && i < end)
			continue;
		const ir_node *n = &g->nodes[i];
		ir_node *m = &s->g.nodes[s->g.n_nodes];
		*m = *n;
		m->in = s->g.n_args;
		for (uint32_t j = 0; j < n->n_in; j++) {
			uint32_t v = ir_in(g, n, j);
			s->g.args[s->g.n_args++] =
			        v == IR_NONE ? IR_NONE : take(s, g, remap(g, f, k, v));
		}
		m->out = s->g.n_args;
		for (uint32_t j = 0; j < n->n_out; j++) {
			uint32_t v = ir_out(g, n, j);
			if (v != IR_NONE) {
				v = take(s, g, v);
				s->g.values[v].producer = s->g.n_nodes;
			}
			s->g.args[s->g.n_args++] = v;
		}
		s->g.n_nodes++;
	}
	for (uint32_t j = 0; j < g->n_inputs; j++)
		if (s->of_full[g->inputs[j]] != IR_NONE)
			s->g.inputs[s->g.n_inputs++] = s->of_full[g->inputs[j]];
	for (uint32_t j = 0; j < g->n_outputs; j++) {
		uint32_t v = remap(g, f, k, g->outputs[j]);
		if (s->of_full[v] == IR_NONE && g->values[v].kind == IR_V_NODE)
			continue; /* a value of a block not kept */
		v = take(s, g, v);
		if (!s->g.values[v].is_output) {
			s->g.values[v].is_output = 1;
			s->g.outputs[s->g.n_outputs++] = v;
		}
	}
	return 0;
}

int
search_fold_init(ir_graph *g, search_fold *f)
{
	int rc;

	memset(f, 0, sizeof *f);
	if ((rc = find_run(g, f)) || f->reps < 4)
		return rc;
	/* the copies together must be well smaller than the graph */
	uint64_t rest = g->n_nodes - (uint64_t)f->period * f->reps;
	if (4 * (2 * rest + 5 * (uint64_t)f->period) > 3 * (uint64_t)g->n_nodes)
		return 0;
	for (uint32_t i = 0; i < 2; i++)
		if ((rc = build(g, f, 2 + i, &f->sub[i])))
			return rc;
	f->on = 1;
	return 0;
}

void
search_fold_free(ir_graph *g, search_fold *f)
{
	shd_ctx *c = g->ctx;

	for (uint32_t i = 0; i < 2; i++) {
		fold_graph *s = &f->sub[i];
		/* dims made while costing a copy live in the shared expression table */
		shd_arena_move(&g->arena, &s->g.arena);
		shd_free(c, s->g.values, ((size_t)g->n_values + 1) * sizeof *s->g.values);
		shd_free(c, s->g.nodes, ((size_t)g->n_nodes + 1) * sizeof *s->g.nodes);
		shd_free(c, s->g.args, ((size_t)g->n_args + 1) * sizeof *s->g.args);
		shd_free(c, s->g.inputs, ((size_t)g->n_inputs + 1) * sizeof *s->g.inputs);
		shd_free(c, s->g.outputs, ((size_t)g->n_outputs + 1) * sizeof *s->g.outputs);
		shd_free(c, s->of_full, ((size_t)g->n_values + 1) * sizeof *s->of_full);
		shd_free(c, s->to_full, ((size_t)g->n_values + 1) * sizeof *s->to_full);
	}
	memset(f, 0, sizeof *f);
}
