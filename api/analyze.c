/* `onnxshard analyze`: the dimension classes of a model, their conflicts,
 * opaque ops and the decision space before and after grouping identical
 * layers, as text or JSON.
 * requires: a model file (loaded and lifted as `inspect` does)
 * provides: onnxshard_analyze */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "propagate/analysis.h"

#define MESH_AXES   2  /* the decision space is counted for a 2-axis mesh */
#define TEXT_ROWS   40 /* conflicts listed in the text form */
#define MAX_MEMBERS 3  /* members shown per class */

static const struct {
	uint8_t flag;
	const char *name;
} flag_names[] = {
        {PROP_C_WEIGHT, "weight"},
        {PROP_C_INPUT, "input"},
        {PROP_C_REDUCED, "reduced"},
        {PROP_C_REPL, "replicated-somewhere"},
};

/* Up to MAX_MEMBERS members of class k: initializers and graph inputs first. */
static uint32_t
pick_members(ir_graph *g, const prop_analysis *a, const prop_class *k, prop_slot *out)
{
	uint32_t n = 0;

	for (int pass = 0; pass < 2 && n < MAX_MEMBERS; pass++)
		for (uint32_t m = 0; m < k->n_members && n < MAX_MEMBERS; m++) {
			prop_slot s = a->members[k->first + m];
			if ((g->values[s.value].kind == IR_V_NODE) == (pass == 0))
				continue;
			out[n++] = s;
		}
	return n;
}

static double
log10_space(uint32_t classes, uint32_t conflicts)
{
	return classes * log10(1.0 + MESH_AXES) + conflicts * log10(2.0);
}

static void
print_space(FILE *out, const char *what, uint32_t classes, uint32_t conflicts)
{
	double x = log10_space(classes, conflicts);

	fprintf(out, "  %s %d^%u x 2^%u = ", what, 1 + MESH_AXES, classes, conflicts);
	if (x < 9)
		fprintf(out, "%.0f\n", pow(10, x));
	else
		fprintf(out, "10^%.1f\n", x);
}

static const char *
node_name(ir_graph *g, uint32_t n)
{
	return n == IR_NONE ? "(graph input)" : ir_cstr(g, g->nodes[n].name);
}

static void
print_text(ir_graph *g, const prop_analysis *a, const char *path, FILE *out)
{
	prop_slot mem[MAX_MEMBERS];

	fprintf(out, "model: %s\n", path);
	fprintf(out,
	        "classes: %u (%u decision classes: touching weights or graph inputs, size > 1)\n",
	        a->n_classes, a->n_decisions);
	fprintf(out, "decision classes:\n  %-5s %-12s %-6s %-5s %-36s %s\n", "id", "size", "slots",
	        "group", "flags", "members");
	for (uint32_t i = 0; i < a->n_classes; i++) {
		const prop_class *k = &a->classes[i];
		char flags[80] = "";
		if (!(k->flags & PROP_C_DECISION))
			continue;
		for (size_t f = 0; f < sizeof flag_names / sizeof flag_names[0]; f++)
			if (k->flags & flag_names[f].flag) {
				if (*flags)
					strcat(flags, ",");
				strcat(flags, flag_names[f].name);
			}
		fprintf(out, "  %-5u %-12s %-6u %-5u %-36s", i, ir_dim_str(g, k->size),
		        k->n_members, k->group, flags);
		uint32_t n = pick_members(g, a, k, mem);
		for (uint32_t m = 0; m < n; m++)
			fprintf(out, "%s%s[%d]", m ? ", " : " ",
			        ir_cstr(g, g->values[mem[m].value].name), mem[m].dim);
		fputc('\n', out);
	}
	fprintf(out,
	        "conflicts: %u in %u sets (one decision each), %u groups (%u sets, %u groups on "
	        "decision classes)\n",
	        a->n_conflicts, a->n_conflict_sets, a->n_conflict_groups,
	        a->n_decision_conflict_sets, a->n_decision_conflict_groups);
	for (uint32_t i = 0; i < a->n_conflicts && i < TEXT_ROWS; i++) {
		const prop_conflict *p = &a->conflicts[i];
		fprintf(out, "  %s: %s dims %d,%d in class %u (set %u, group %u)\n",
		        node_name(g, p->node), ir_cstr(g, g->values[p->value].name), p->d1, p->d2,
		        p->cls, p->set, p->group);
	}
	if (a->n_conflicts > TEXT_ROWS)
		fprintf(out, "  ... %u more (--json lists all)\n", a->n_conflicts - TEXT_ROWS);
	fputs("opaque ops:", out);
	if (!a->n_opaque)
		fputs(" none", out);
	for (uint32_t i = 0; i < a->n_opaque; i++)
		fprintf(out, "%s %s %u", i ? "," : "", ir_cstr(g, (ir_str){a->opaque[i].op_type}),
		        a->opaque[i].count);
	fprintf(out, "\ngroups: %u decision groups of %u classes\n", a->n_groups, a->n_decisions);
	fprintf(out,
	        "decision space (%d-axis mesh: a class unsplit or on one axis, a conflict "
	        "set resolved one of 2 ways):\n",
	        MESH_AXES);
	print_space(out, "before grouping:", a->n_decisions, a->n_decision_conflict_sets);
	print_space(out, "after grouping: ", a->n_groups, a->n_decision_conflict_groups);
}

static json_t *
dim_json(ir_graph *g, ir_dim d, int *bad)
{
	if (ir_is_const(d))
		return json_integer(d.c);
	if (!ir_is_known(d))
		return json_null();
	return shd_jstr(ir_dim_str(g, d), bad);
}

static json_t *
slot_json(ir_graph *g, prop_slot s, int *bad)
{
	json_t *o = json_object();

	shd_jset(o, "value", shd_jstr(ir_cstr(g, g->values[s.value].name), bad), bad);
	shd_jset(o, "dim", json_integer(s.dim), bad);
	return o;
}

static json_t *
space_json(uint32_t classes, uint32_t conflicts, int *bad)
{
	json_t *o = json_object();

	shd_jset(o, "classes", json_integer(classes), bad);
	shd_jset(o, "conflicts", json_integer(conflicts), bad);
	shd_jset(o, "axes", json_integer(MESH_AXES), bad);
	shd_jset(o, "log10", json_real(round(log10_space(classes, conflicts) * 1000) / 1000), bad);
	return o;
}

static json_t *
build_json(ir_graph *g, const prop_analysis *a, const char *path, int *bad)
{
	json_t *r = json_object(), *cl = json_array(), *cf = json_array(), *op = json_array(),
	       *gr = json_array();
	prop_slot mem[MAX_MEMBERS];

	shd_jset(r, "file", shd_jstr(path, bad), bad);
	shd_jset(r, "n_classes", json_integer(a->n_classes), bad);
	for (uint32_t i = 0; i < a->n_classes; i++) {
		const prop_class *k = &a->classes[i];
		if (!(k->flags & PROP_C_DECISION))
			continue;
		json_t *o = json_object(), *fl = json_array(), *ms = json_array();
		shd_jset(o, "id", json_integer(i), bad);
		shd_jset(o, "size", dim_json(g, k->size, bad), bad);
		shd_jset(o, "slots", json_integer(k->n_members), bad);
		shd_jset(o, "group", json_integer(k->group), bad);
		shd_jset(o, "repl_nodes", json_integer(k->n_repl), bad);
		shd_jset(o, "reduced_nodes", json_integer(k->n_reduced), bad);
		for (size_t f = 0; f < sizeof flag_names / sizeof flag_names[0]; f++)
			if (k->flags & flag_names[f].flag)
				shd_jpush(fl, json_string(flag_names[f].name), bad);
		shd_jset(o, "flags", fl, bad);
		uint32_t n = pick_members(g, a, k, mem);
		for (uint32_t m = 0; m < n; m++)
			shd_jpush(ms, slot_json(g, mem[m], bad), bad);
		shd_jset(o, "members", ms, bad);
		shd_jpush(cl, o, bad);
	}
	shd_jset(r, "classes", cl, bad);
	for (uint32_t i = 0; i < a->n_conflicts; i++) {
		const prop_conflict *p = &a->conflicts[i];
		json_t *o = json_object();
		shd_jset(o, "node",
		         p->node == IR_NONE ? json_null()
		                            : shd_jstr(ir_cstr(g, g->nodes[p->node].name), bad),
		         bad);
		shd_jset(o, "value", shd_jstr(ir_cstr(g, g->values[p->value].name), bad), bad);
		shd_jset(o, "class", json_integer(p->cls), bad);
		shd_jset(o, "dims", json_pack("[ii]", p->d1, p->d2), bad);
		shd_jset(o, "set", json_integer(p->set), bad);
		shd_jset(o, "group", json_integer(p->group), bad);
		shd_jset(o, "decision", json_boolean(a->classes[p->cls].flags & PROP_C_DECISION),
		         bad);
		shd_jpush(cf, o, bad);
	}
	shd_jset(r, "conflicts", cf, bad);
	shd_jset(r, "conflict_sets", json_integer(a->n_conflict_sets), bad);
	shd_jset(r, "conflict_groups", json_integer(a->n_conflict_groups), bad);
	for (uint32_t i = 0; i < a->n_opaque; i++)
		shd_jpush(op,
		          json_pack("{s:o,s:i}", "op",
		                    shd_jstr(ir_cstr(g, (ir_str){a->opaque[i].op_type}), bad),
		                    "count", (json_int_t)a->opaque[i].count),
		          bad);
	shd_jset(r, "opaque", op, bad);
	for (uint32_t i = 0; i < a->n_groups; i++) {
		const prop_dgroup *p = &a->groups[i];
		json_t *o = json_object(), *cs = json_array(), *ss = json_array();
		shd_jset(o, "id", json_integer(i), bad);
		for (uint32_t j = 0; j < p->n_classes; j++)
			shd_jpush(cs, json_integer(a->group_classes[p->first_class + j]), bad);
		shd_jset(o, "classes", cs, bad);
		for (uint32_t j = 0; j < p->n_seeds; j++)
			shd_jpush(ss, slot_json(g, a->seeds[p->first_seed + j], bad), bad);
		shd_jset(o, "seeds", ss, bad);
		shd_jpush(gr, o, bad);
	}
	shd_jset(r, "groups", gr, bad);
	shd_jset(r, "decisions_before",
	         space_json(a->n_decisions, a->n_decision_conflict_sets, bad), bad);
	shd_jset(r, "decisions_after", space_json(a->n_groups, a->n_decision_conflict_groups, bad),
	         bad);
	return r;
}

int
onnxshard_analyze(onnxshard_ctx *c, const char *path, int json, FILE *out)
{
	onnx_model *m;
	ir_graph *g;
	prop_analysis a;
	int rc, bad = 0;
	char *text = NULL;
	size_t n = 0;

	if ((rc = onnx_load_weightless(c, path, &m)))
		return rc;
	if ((rc = ir_lift(c, m, &g))) {
		onnx_model_free(m);
		return rc;
	}
	if ((rc = prop_analyze(g, &a))) {
		ir_free(g);
		onnx_model_free(m);
		return rc;
	}
	if (!json) {
		print_text(g, &a, path, out);
	} else {
		/* the JSON text whole before a byte of it is written */
		json_t *r = build_json(g, &a, path, &bad);
		if (r && !bad) {
			n = json_dumpb(r, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			if (n && (text = shd_alloc(c, n)) &&
			    json_dumpb(r, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != n) {
				shd_free(c, text, n);
				text = NULL;
			}
		}
		json_decref(r);
		if (bad & 2)
			rc = shd_error(c, ONNXSHARD_EINPUT, "%s: a name is not valid UTF-8", path);
		else if (!text)
			rc = shd_nomem(c);
		else {
			fwrite(text, 1, n, out);
			fputc('\n', out);
		}
		shd_free(c, text, n);
	}
	prop_analysis_free(g, &a);
	ir_free(g);
	onnx_model_free(m);
	return rc;
}
