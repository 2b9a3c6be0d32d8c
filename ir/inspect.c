/* `onnxshard inspect`: a report of a model's ops, opsets, inputs, outputs,
 * parameters and external data, as text or JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "core/json.h"

typedef struct {
	const char *name; /* "Op" or "domain::Op"; points into the model */
	const char *domain;
	size_t count;
} op_count;

static int
cmp_ops(const void *a, const void *b)
{
	const op_count *x = a, *y = b;
	int d;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if ((d = strcmp(x->domain, y->domain)))
		return d;
	return strcmp(x->name, y->name);
}

static int
is_initializer(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_initializer; i++)
		if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
			return 1;
	return 0;
}

/* The value's tensor type, or NULL when it has none. */
static const Onnx__TypeProto__Tensor *
tensor_type(const Onnx__ValueInfoProto *v)
{
	if (v->type && v->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
		return v->type->tensor_type;
	return NULL;
}

static json_t *
dim_json(const Onnx__TensorShapeProto__Dimension *d, int *bad)
{
	if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
		return json_integer(d->dim_value);
	if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param &&
	    *d->dim_param)
		return shd_jstr(d->dim_param, bad);
	return json_null();
}

static json_t *
value_json(const Onnx__ValueInfoProto *v, int *bad)
{
	const Onnx__TypeProto__Tensor *tt = tensor_type(v);
	const char *dt = tt && tt->has_elem_type ? onnx_dtype_name(tt->elem_type) : NULL;
	json_t *o = json_object(), *shape;

	shd_jset(o, "name", shd_jstr(v->name ? v->name : "", bad), bad);
	shd_jset(o, "dtype", dt ? shd_jstr(dt, bad) : json_null(), bad);
	if (tt && tt->shape) {
		shape = json_array();
		for (size_t i = 0; i < tt->shape->n_dim; i++)
			shd_jpush(shape, dim_json(tt->shape->dim[i], bad), bad);
	} else {
		shape = json_null();
	}
	shd_jset(o, "shape", shape, bad);
	return o;
}

static void
print_value(FILE *out, json_t *v)
{
	json_t *shape = json_object_get(v, "shape"), *d;
	json_t *dt = json_object_get(v, "dtype");
	size_t i;

	fprintf(out, "  %s  %s ", json_string_value(json_object_get(v, "name")),
	        json_is_string(dt) ? json_string_value(dt) : "?");
	if (!json_is_array(shape)) {
		fprintf(out, "(unknown shape)\n");
		return;
	}
	fputc('[', out);
	json_array_foreach(shape, i, d)
	{
		if (i)
			fputs(", ", out);
		if (json_is_integer(d))
			fprintf(out, "%lld", (long long)json_integer_value(d));
		else if (json_is_string(d))
			fputs(json_string_value(d), out);
		else
			fputc('?', out);
	}
	fputs("]\n", out);
}

static json_t *
ir_dim_json(ir_graph *g, ir_dim d, int *bad)
{
	if (!ir_is_known(d))
		return json_null();
	if (ir_is_const(d))
		return json_integer(d.c);
	return shd_jstr(ir_dim_str(g, d), bad);
}

/* Every value of the main graph: inputs, initializers, node results. */
static json_t *
values_json(ir_graph *g, int *bad)
{
	json_t *a = json_array();

	for (uint32_t v = 0; v < g->n_values; v++) {
		const ir_value *x = &g->values[v];
		const char *dt = onnx_dtype_name(x->dtype);
		json_t *o = json_object(), *shape = json_null();
		shd_jset(o, "name", shd_jstr(ir_cstr(g, x->name), bad), bad);
		shd_jset(o, "dtype", dt ? shd_jstr(dt, bad) : json_null(), bad);
		if (x->rank >= 0) {
			shape = json_array();
			for (int32_t i = 0; i < x->rank; i++)
				shd_jpush(shape, ir_dim_json(g, x->dims[i], bad), bad);
		}
		shd_jset(o, "shape", shape, bad);
		shd_jpush(a, o, bad);
	}
	return a;
}

static json_t *
build_report(onnx_model *m, int *bad)
{
	shd_ctx *c = m->ctx;
	Onnx__ModelProto *p = m->proto;
	Onnx__GraphProto *g = p->graph;
	json_t *r = json_object(), *a;
	op_count *ops = shd_calloc(c, g->n_node ? g->n_node : 1, sizeof *ops);
	size_t nops = 0;
	uint64_t nelem = 0, nbytes = 0;

	if (!r || !ops) {
		json_decref(r);
		shd_free(c, ops, (g->n_node ? g->n_node : 1) * sizeof *ops);
		return NULL;
	}
	shd_jset(r, "file", shd_jstr(m->path, bad), bad);
	shd_jset(r, "bytes", json_integer((json_int_t)m->file_bytes), bad);
	shd_jset(r, "ir_version", json_integer(p->ir_version), bad);
	shd_jset(r, "producer", shd_jstr(p->producer_name ? p->producer_name : "", bad), bad);
	shd_jset(r, "producer_version",
	         shd_jstr(p->producer_version ? p->producer_version : "", bad), bad);
	a = json_array();
	for (size_t i = 0; i < p->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = p->opset_import[i];
		json_t *e = json_object();
		shd_jset(e, "domain",
		         shd_jstr(o->domain && *o->domain ? o->domain : "ai.onnx", bad), bad);
		shd_jset(e, "version", json_integer(o->version), bad);
		shd_jpush(a, e, bad);
	}
	shd_jset(r, "opsets", a, bad);
	a = json_array();
	for (size_t i = 0; i < g->n_input; i++)
		if (!g->input[i]->name || !is_initializer(g, g->input[i]->name))
			shd_jpush(a, value_json(g->input[i], bad), bad);
	shd_jset(r, "inputs", a, bad);
	a = json_array();
	for (size_t i = 0; i < g->n_output; i++)
		shd_jpush(a, value_json(g->output[i], bad), bad);
	shd_jset(r, "outputs", a, bad);

	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *n = g->node[i];
		const char *op = n->op_type ? n->op_type : "";
		const char *dom = n->domain ? n->domain : "";
		size_t j;
		for (j = 0; j < nops; j++)
			if (strcmp(ops[j].name, op) == 0 && strcmp(ops[j].domain, dom) == 0)
				break;
		if (j == nops)
			ops[nops++] = (op_count){op, dom, 0};
		ops[j].count++;
	}
	qsort(ops, nops, sizeof *ops, cmp_ops);
	a = json_array();
	for (size_t i = 0; i < nops; i++) {
		json_t *e = json_object();
		shd_jset(e, "op", shd_jstr(ops[i].name, bad), bad);
		if (*ops[i].domain)
			shd_jset(e, "domain", shd_jstr(ops[i].domain, bad), bad);
		shd_jset(e, "count", json_integer((json_int_t)ops[i].count), bad);
		shd_jpush(a, e, bad);
	}
	shd_jset(r, "nodes", json_integer((json_int_t)g->n_node), bad);
	shd_jset(r, "ops", a, bad);
	shd_free(c, ops, (g->n_node ? g->n_node : 1) * sizeof *ops);

	for (size_t i = 0; i < g->n_initializer; i++) {
		uint64_t n = onnx_tensor_numel(g->initializer[i]);
		nelem += n;
		nbytes += onnx_dtype_bytes(g->initializer[i]->data_type, n);
	}
	json_t *params = json_object();
	shd_jset(params, "tensors", json_integer((json_int_t)g->n_initializer), bad);
	shd_jset(params, "elements", json_integer((json_int_t)nelem), bad);
	shd_jset(params, "bytes", json_integer((json_int_t)nbytes), bad);
	shd_jset(r, "parameters", params, bad);
	a = json_array();
	for (size_t i = 0; i < m->n_ext; i++) {
		json_t *e = json_object();
		shd_jset(e, "file", shd_jstr(m->ext[i].location, bad), bad);
		shd_jset(e, "bytes", json_integer((json_int_t)m->ext[i].size), bad);
		shd_jpush(a, e, bad);
	}
	shd_jset(r, "external_data", a, bad);
	return r;
}

static void
print_text(FILE *out, json_t *r)
{
	json_t *e;
	size_t i;

	fprintf(out, "model: %s (%lld bytes, ir_version %lld, producer %s %s)\n",
	        json_string_value(json_object_get(r, "file")),
	        (long long)json_integer_value(json_object_get(r, "bytes")),
	        (long long)json_integer_value(json_object_get(r, "ir_version")),
	        json_string_value(json_object_get(r, "producer")),
	        json_string_value(json_object_get(r, "producer_version")));
	fputs("opsets:", out);
	json_array_foreach(json_object_get(r, "opsets"), i, e)
	        fprintf(out, " %s %lld", json_string_value(json_object_get(e, "domain")),
	                (long long)json_integer_value(json_object_get(e, "version")));
	fputs("\ninputs:\n", out);
	json_array_foreach(json_object_get(r, "inputs"), i, e) print_value(out, e);
	fputs("outputs:\n", out);
	json_array_foreach(json_object_get(r, "outputs"), i, e) print_value(out, e);
	json_t *p = json_object_get(r, "parameters");
	fprintf(out, "parameters: %lld tensors, %lld elements, %lld bytes\n",
	        (long long)json_integer_value(json_object_get(p, "tensors")),
	        (long long)json_integer_value(json_object_get(p, "elements")),
	        (long long)json_integer_value(json_object_get(p, "bytes")));
	fputs("external data:", out);
	if (json_array_size(json_object_get(r, "external_data")) == 0)
		fputs(" none", out);
	fputc('\n', out);
	json_array_foreach(json_object_get(r, "external_data"), i, e)
	        fprintf(out, "  %s  %lld bytes\n", json_string_value(json_object_get(e, "file")),
	                (long long)json_integer_value(json_object_get(e, "bytes")));
	fprintf(out, "ops (%lld nodes):\n",
	        (long long)json_integer_value(json_object_get(r, "nodes")));
	json_array_foreach(json_object_get(r, "ops"), i, e)
	{
		json_t *d = json_object_get(e, "domain");
		fprintf(out, "  %s%s%s %lld\n", d ? json_string_value(d) : "", d ? "::" : "",
		        json_string_value(json_object_get(e, "op")),
		        (long long)json_integer_value(json_object_get(e, "count")));
	}
}

int
onnxshard_inspect(onnxshard_ctx *c, const char *path, int json, FILE *out)
{
	onnx_model *m;
	ir_graph *g;
	json_t *r;
	int rc;

	if ((rc = onnx_load_weightless(c, path, &m)))
		return rc;
	if ((rc = ir_lift(c, m, &g))) {
		onnx_model_free(m);
		return rc;
	}
	if (json == ONNXSHARD_DUMP_IR) {
		ir_print(g, out);
		ir_free(g);
		onnx_model_free(m);
		return 0;
	}
	int bad = 0;
	r = build_report(m, &bad);
	if (r && json)
		shd_jset(r, "values", values_json(g, &bad), &bad);
	ir_free(g);
	onnx_model_free(m);
	/* the JSON text whole before a byte of it is written */
	size_t n = 0;
	char *text = NULL;
	if (r && !bad && json) {
		n = json_dumpb(r, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (n && (text = shd_alloc(c, n)) &&
		    json_dumpb(r, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != n) {
			shd_free(c, text, n);
			text = NULL;
		}
	}
	if (bad & 2) {
		json_decref(r);
		shd_free(c, text, n);
		return shd_error(c, ONNXSHARD_EINPUT, "%s: a name is not valid UTF-8", path);
	}
	if (!r || bad || (json && !text)) {
		json_decref(r);
		return shd_nomem(c);
	}
	if (json) {
		fwrite(text, 1, n, out);
		fputc('\n', out);
		shd_free(c, text, n);
	} else {
		print_text(out, r);
	}
	json_decref(r);
	return 0;
}
