/* The IR's text form (--dump ir, golden tests) and its verifier. */
#include <string.h>

#include "ir_impl.h"
#include "ops_impl.h"

static void
print_type(ir_graph *g, const ir_value *v, FILE *out)
{
	const char *dt = onnx_dtype_name(v->dtype);

	fputs(dt ? dt : "?", out);
	if (v->rank < 0) {
		fputs("[?]", out);
	} else {
		fputc('[', out);
		for (int32_t i = 0; i < v->rank; i++)
			fprintf(out, "%s%s", i ? "," : "", ir_dim_str(g, v->dims[i]));
		fputc(']', out);
	}
	if (v->elems) {
		fputs(" = {", out);
		for (int32_t i = 0; i < v->n_elems; i++)
			fprintf(out, "%s%s", i ? "," : "", ir_dim_str(g, v->elems[i]));
		fputc('}', out);
	}
}

static void
print_value(ir_graph *g, const char *what, uint32_t v, FILE *out)
{
	fprintf(out, "%s %s: ", what, ir_cstr(g, g->values[v].name));
	print_type(g, &g->values[v], out);
	fputc('\n', out);
}

void
ir_print(ir_graph *g, FILE *out)
{
	shd_arena a = {0};

	fprintf(out, "opset %lld\n", (long long)g->opset);
	for (uint32_t i = 0; i < g->n_inputs; i++)
		print_value(g, "input", g->inputs[i], out);
	for (uint32_t v = 0; v < g->n_values; v++)
		if (g->values[v].kind == IR_V_INIT)
			print_value(g, "init", v, out);
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		ir_node *n = &g->nodes[i];
		ir_rule r;
		fprintf(out, "node %s = %s%s%s(", ir_cstr(g, n->name), ir_cstr(g, n->domain),
		        *ir_cstr(g, n->domain) ? "::" : "", ir_cstr(g, n->op_type));
		for (uint32_t k = 0; k < n->n_in; k++) {
			uint32_t v = ir_in(g, n, k);
			fprintf(out, "%s%s", k ? ", " : "",
			        v == IR_NONE ? "_" : ir_cstr(g, g->values[v].name));
		}
		fputs(")\n", out);
		for (uint32_t k = 0; k < n->n_out; k++) {
			uint32_t v = ir_out(g, n, k);
			if (v != IR_NONE)
				print_value(g, "  ->", v, out);
		}
		if (n->op != OP_OPAQUE && ir_rule_of(g, i, &a, &r) == 0) {
			fputs("  rule ", out);
			ir_rule_print(g, i, &r, out);
			fputc('\n', out);
		} else if (n->op == OP_OPAQUE) {
			fputs("  opaque\n", out);
		}
		shd_arena_free(g->ctx, &a);
	}
	for (uint32_t i = 0; i < g->n_outputs; i++)
		fprintf(out, "output %s\n", ir_cstr(g, g->values[g->outputs[i]].name));
}

int
ir_verify(ir_graph *g)
{
	for (uint32_t v = 0; v < g->n_values; v++) {
		const ir_value *x = &g->values[v];
		if (x->rank >= 0 && !x->dims)
			return shd_error(g->ctx, ONNXSHARD_EFAIL,
			                 "ir_verify: value %u has rank but no dims", v);
		if ((x->kind == IR_V_NODE) != (x->producer != IR_NONE))
			return shd_error(g->ctx, ONNXSHARD_EFAIL,
			                 "ir_verify: value %u producer/kind mismatch", v);
		if (x->producer != IR_NONE && x->producer >= g->n_nodes)
			return shd_error(g->ctx, ONNXSHARD_EFAIL,
			                 "ir_verify: value %u producer out of range", v);
		if (x->elems && x->n_elems > IR_MAX_ELEMS)
			return shd_error(g->ctx, ONNXSHARD_EFAIL,
			                 "ir_verify: value %u elems too many", v);
	}
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		if (n->op >= OP__COUNT || n->in + n->n_in > g->n_args ||
		    n->out + n->n_out > g->n_args)
			return shd_error(g->ctx, ONNXSHARD_EFAIL, "ir_verify: node %u malformed",
			                 i);
		for (uint32_t k = 0; k < n->n_in; k++) {
			uint32_t v = ir_in(g, n, k);
			if (v != IR_NONE &&
			    (v >= g->n_values ||
			     (g->values[v].producer != IR_NONE && g->values[v].producer >= i)))
				return shd_error(
				        g->ctx, ONNXSHARD_EFAIL,
				        "ir_verify: node %u reads value %u before it is produced",
				        i, v);
		}
		for (uint32_t k = 0; k < n->n_out; k++) {
			uint32_t v = ir_out(g, n, k);
			if (v != IR_NONE && (v >= g->n_values || g->values[v].producer != i))
				return shd_error(
				        g->ctx, ONNXSHARD_EFAIL,
				        "ir_verify: node %u result %u has another producer", i, v);
		}
	}
	for (uint32_t i = 0; i < g->n_inputs; i++)
		if (g->inputs[i] >= g->n_values || g->values[g->inputs[i]].kind != IR_V_INPUT)
			return shd_error(g->ctx, ONNXSHARD_EFAIL, "ir_verify: bad graph input %u",
			                 i);
	for (uint32_t i = 0; i < g->n_outputs; i++)
		if (g->outputs[i] >= g->n_values)
			return shd_error(g->ctx, ONNXSHARD_EFAIL, "ir_verify: bad graph output %u",
			                 i);
	return 0;
}
