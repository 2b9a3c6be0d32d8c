/* Subgraphs that read outer values renamed on this rank.
 * An If, Loop or Scan reads values of the main graph inside its bodies;
 * they are operands of the node (ir/lift.c), so the plan gathers them
 * whole for it, and on this rank the whole value has another name. The
 * bodies are copied with those names replaced (nested bodies too).
 * requires: the operand names this rank's node reads (after reshards)
 * provides: the node copy's subgraph attributes, renamed where needed */
#include <string.h>

#include "lower_impl.h"

typedef struct {
	const char **from, **to;
	uint32_t n;
} renames;

static const char *
renamed(const renames *r, const char *name)
{
	for (uint32_t i = 0; name && i < r->n; i++)
		if (!strcmp(r->from[i], name))
			return r->to[i];
	return NULL;
}

/* Copies of attributes and graphs with r's names replaced (builders: NULL
 * with k->rc set on failure). */
static Onnx__GraphProto *copy_graph(rank_ctx *k, const renames *r, const Onnx__GraphProto *src,
                                    int depth);

static Onnx__AttributeProto **
copy_attrs(rank_ctx *k, const renames *r, Onnx__AttributeProto **src, size_t n, int depth)
{
	Onnx__AttributeProto **at = emit_alloc(k, (n + 1) * sizeof *at);

	for (size_t j = 0; at && j < n; j++) {
		at[j] = src[j];
		if (!src[j]->g && !src[j]->n_graphs)
			continue;
		Onnx__AttributeProto *a = emit_alloc(k, sizeof *a);
		Onnx__GraphProto **gs = emit_alloc(k, (src[j]->n_graphs + 1) * sizeof *gs);
		if (!a || !gs)
			return NULL;
		*a = *src[j];
		if (a->g && !(a->g = copy_graph(k, r, src[j]->g, depth + 1)))
			return NULL;
		for (size_t s = 0; s < a->n_graphs; s++)
			if (!(gs[s] = copy_graph(k, r, src[j]->graphs[s], depth + 1)))
				return NULL;
		a->graphs = gs;
		at[j] = a;
	}
	return at;
}

static Onnx__GraphProto *
copy_graph(rank_ctx *k, const renames *r, const Onnx__GraphProto *src, int depth)
{
	Onnx__GraphProto *g = emit_alloc(k, sizeof *g);
	Onnx__NodeProto **nodes = emit_alloc(k, (src->n_node + 1) * sizeof *nodes);
	Onnx__ValueInfoProto **outs = emit_alloc(k, (src->n_output + 1) * sizeof *outs);

	if (!g || !nodes || !outs)
		return NULL;
	if (depth > ONNX_MAX_GRAPH_DEPTH) { /* the loader refuses such models */
		emit_fail(k, ONNXSHARD_EINPUT, "%s: subgraphs nested deeper than %d",
		          k->g->model->path, ONNX_MAX_GRAPH_DEPTH);
		return NULL;
	}
	*g = *src;
	for (size_t i = 0; i < src->n_node; i++) {
		const Onnx__NodeProto *p = src->node[i];
		Onnx__NodeProto *n = emit_alloc(k, sizeof *n);
		char **in = emit_alloc(k, (p->n_input + 1) * sizeof *in);
		if (!n || !in)
			return NULL;
		*n = *p;
		for (size_t j = 0; j < p->n_input; j++) {
			const char *to = renamed(r, p->input[j]);
			in[j] = to ? (char *)to : p->input[j];
		}
		n->input = in;
		if (p->n_attribute &&
		    !(n->attribute = copy_attrs(k, r, p->attribute, p->n_attribute, depth)))
			return NULL;
		nodes[i] = n;
	}
	/* a body may return an outer value as it is */
	for (size_t i = 0; i < src->n_output; i++) {
		const char *to = renamed(r, src->output[i]->name);
		outs[i] = src->output[i];
		if (to) {
			Onnx__ValueInfoProto *vi = emit_alloc(k, sizeof *vi);
			if (!vi)
				return NULL;
			*vi = *src->output[i];
			vi->name = (char *)to;
			outs[i] = vi;
		}
	}
	g->node = nodes;
	g->output = outs;
	return g;
}

int
emit_captures(rank_ctx *k, uint32_t i, Onnx__NodeProto *copy, char **ins)
{
	ir_graph *g = k->g;
	const ir_node *n = &g->nodes[i];
	uint32_t first = (uint32_t)n->proto->n_input, nc = n->n_in > first ? n->n_in - first : 0;
	renames r = {emit_alloc(k, (nc + 1) * sizeof *r.from),
	             emit_alloc(k, (nc + 1) * sizeof *r.to), 0};

	if (!r.from || !r.to)
		return k->rc;
	for (uint32_t j = first; j < n->n_in; j++) {
		const char *name = ir_cstr(g, g->values[ir_in(g, n, j)].name);
		if (strcmp(name, ins[j]) != 0) {
			r.from[r.n] = name;
			r.to[r.n++] = ins[j];
		}
	}
	if (!r.n)
		return 0;
	if (!(copy->attribute = copy_attrs(k, &r, n->proto->attribute, n->proto->n_attribute, 0)))
		return k->rc;
	return 0;
}
