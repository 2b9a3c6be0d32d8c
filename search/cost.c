/* The simulator: one forward step of a materialised plan on a hardware
 * profile, for one rank, on local shapes.
 * requires: a materialised plan (have[] per value, reshards with steps)
 * provides: search_cost: time (per-op roofline + alpha-beta collectives with
 *   ring factors), peak memory (parameters + live activations + graph
 *   inputs and outputs), bytes sent by collectives, feasibility
 *
 * The slowest rank is rank 0: a dim is split only where its blocks divide
 * evenly, so every rank holds the same local shapes, runs the same ops
 * (a Mask or a masked lookup costs the same on every shard) and joins
 * collectives of the same sizes over the same axes; the per-axis link
 * (intra- or inter-node) is decided over every group of the axis.
 *
 * Cost: O(values + args + reshard steps) per call, one allocation. */
#include <math.h>
#include <string.h>

#include "search/cost.h"

typedef struct {
	ir_graph *g;
	const prop_plan *p;
	const search_hw *hw;
	ir_bindf bind;
	int exact;
	uint8_t intra[PROP_MAX_AXES]; /* per mesh axis: every group inside one node */
} sim;

static int
no_bind(void *ud, const char *sym, int64_t *val)
{
	(void)ud;
	(void)sym;
	(void)val;
	return 1;
}

/* Global size of a dim; 1 (clearing exact) when unknown or unbound. */
static double
dim_size(sim *s, ir_dim d)
{
	int64_t x;

	if (ir_is_const(d) && d.c >= 0)
		return (double)d.c;
	if (ir_dim_eval(s->g, d, s->bind, s->p->bind_ud, &x) || x < 0) {
		s->exact = 0;
		return 1;
	}
	return (double)x;
}

static double
value_dim(sim *s, uint32_t v, int32_t d)
{
	const ir_value *x = &s->g->values[v];

	if (d < 0 || d >= x->rank) {
		s->exact = 0;
		return 1;
	}
	return dim_size(s, x->dims[d]);
}

/* Elements of value v on one rank under sharding sh; a padded dim counts
 * its padded block (the padding's memory and compute are spent too). */
static double
local_elems(sim *s, const ir_value *v, const prop_shard *sh)
{
	double n = 1;

	if (v->rank < 0) {
		s->exact = 0;
		return 1;
	}
	for (int32_t d = 0; d < v->rank; d++) {
		double x = dim_size(s, v->dims[d]);
		if (d < sh->rank && sh->dims[d].n) {
			double ways = (double)prop_axes_size(s->p->mesh, sh->dims[d].ax,
			                                     sh->dims[d].n),
			       u = sh->dims[d].pad, pc = (double)prop_pieces(&sh->dims[d]);
			/* padded: each piece's padded block */
			x = u > 0 ? pc * ceil(x / (pc * ways * u)) * u : floor(x / ways);
		}
		n *= x;
	}
	return n;
}

static double
elem_bytes(const ir_value *v)
{
	unsigned b = onnx_dtype_bits(v->dtype); /* 4-bit: half a byte */
	return b ? b / 8.0 : 4;
}

/* Product of the sizes of the axes in mask. */
static double
mask_size(const prop_mesh *m, uint8_t mask)
{
	double n = 1;

	for (uint32_t a = 0; a < m->n_axes; a++)
		if (mask >> a & 1)
			n *= (double)m->sizes[a];
	return n;
}

/* Whether every group of axis a lies inside one node (ranks fill nodes in
 * order, row-major). */
static int
axis_intra(const prop_mesh *m, int64_t per_node, uint32_t a)
{
	int64_t stride = 1;

	for (uint32_t j = a + 1; j < m->n_axes; j++)
		stride *= m->sizes[j];
	int64_t span = (m->sizes[a] - 1) * stride;
	for (int64_t r = 0; r < m->world; r++)
		if ((r / stride) % m->sizes[a] == 0 && r / per_node != (r + span) / per_node)
			return 0;
	return 1;
}

/* Alpha-beta time of a collective step moving `bytes` (the whole of an
 * AllReduce's or AllToAll's operand, AllGather's result, ReduceScatter's
 * operand); *sent gets the bytes one rank sends around the ring. Over
 * several axes: the product group, the slowest link. */
static double
coll_time(const sim *s, const prop_step *st, double bytes, double *sent)
{
	const prop_mesh *m = s->p->mesh;
	double n = 1, bw = INFINITY, lat = 0;

	for (uint8_t k = 0; k < st->n_axes; k++) {
		uint8_t a = st->ax[k];
		double b = s->intra[a] ? s->hw->intra_bw : s->hw->inter_bw;
		double l = s->intra[a] ? s->hw->intra_lat : s->hw->inter_lat;
		n *= (double)m->sizes[a];
		bw = b < bw ? b : bw;
		lat = l > lat ? l : lat;
	}
	if (n <= 1) {
		*sent = 0;
		return 0;
	}
	*sent = (st->kind == PROP_ALLREDUCE ? 2 : 1) * (n - 1) / n * bytes;
	return lat + *sent / bw;
}

static double
peak_of(const search_hw *hw, int32_t dtype)
{
	if (dtype <= 0 || dtype >= SEARCH_DTYPES)
		dtype = 1; /* float32 */
	return hw->peak_flops[dtype];
}

/* Einsum: 2 x result elements x the product of the summed labels' sizes,
 * divided by the split of the summed labels (the result's partial axes). */
static double
einsum_flops(sim *s, const ir_node *n, const double *argel, double out_el, double part)
{
	const Onnx__AttributeProto *at = ir_attr(n, "equation");
	double size[128];
	uint8_t seen[128] = {0}, in_out[128] = {0};
	const char *eq, *end, *arrow;

	(void)argel;
	if (!at || !at->s.data)
		return 2 * out_el;
	eq = (const char *)at->s.data;
	end = eq + at->s.len;
	for (arrow = eq; arrow + 1 < end && !(arrow[0] == '-' && arrow[1] == '>'); arrow++)
		;
	if (arrow + 1 >= end)
		arrow = end;
	/* the operands' labels */
	const char *t = eq;
	for (uint32_t k = 0; t < arrow && k < n->n_in; k++) {
		const char *te = t;
		while (te < arrow && *te != ',')
			te++;
		uint32_t v = ir_in(s->g, n, k);
		int32_t rank = v == IR_NONE ? 0 : s->g->values[v].rank;
		int32_t n_lab = 0, before = -1, pos = 0;
		for (const char *q = t; q < te; q++)
			if (*q == '.') {
				if (before < 0)
					before = n_lab;
			} else if (*q != ' ') {
				n_lab++;
			}
		int32_t after = before < 0 ? 0 : n_lab - before;
		for (const char *q = t; q < te; q++) {
			unsigned char ch = (unsigned char)*q;
			if (ch == '.' || ch == ' ' || ch >= 128)
				continue;
			int32_t d =
			        before >= 0 && pos >= before ? rank - after + (pos - before) : pos;
			pos++;
			if (!seen[ch])
				size[ch] = v == IR_NONE ? 1 : value_dim(s, v, d);
			seen[ch] = seen[ch] < 2 ? seen[ch] + 1 : 2;
		}
		t = te < arrow ? te + 1 : te;
	}
	/* the result's labels: explicit, or those seen once */
	if (arrow < end) {
		for (const char *q = arrow + 2; q < end; q++)
			if ((unsigned char)*q < 128)
				in_out[(unsigned char)*q] = 1;
	} else {
		for (int ch = 0; ch < 128; ch++)
			in_out[ch] = seen[ch] == 1;
	}
	double red = 1;
	for (int ch = 0; ch < 128; ch++)
		if (seen[ch] && !in_out[ch] && ch != '.')
			red *= size[ch];
	red /= part;
	return red > 1 ? 2 * out_el * red : out_el;
}

/* FLOPs per element of the ops that cost a fixed number per element: of
 * their first operand (*of_in: reductions, TopK) or of their result; 0 for
 * data movement (bytes only). -1: not one of them. */
static double
per_element_flops(int op, int *of_in)
{
	*of_in = 0;
	switch (op) {
	case OP_GlobalAveragePool:
	case OP_GlobalMaxPool:
	case OP_CumSum:
	case OP_ArgMax:
	case OP_ArgMin:
	case OP_ReduceSum:
	case OP_ReduceMean:
	case OP_ReduceMax:
	case OP_ReduceMin:
	case OP_ReduceProd:
	case OP_ReduceL1: *of_in = 1; return 1;
	case OP_ReduceL2:
	case OP_ReduceSumSquare:
	case OP_TopK: *of_in = 1; return 2;
	case OP_ReduceLogSum:
	case OP_ReduceLogSumExp: *of_in = 1; return 8;
	case OP_BatchNormalization: return 2;
	case OP_InstanceNormalization:
	case OP_LayerNormalization:
	case OP_GroupNormalization: return 8;
	case OP_Softmax:
	case OP_LogSoftmax: return 10;
	/* transcendental: a polynomial each */
	case OP_Pow:
	case OP_Gelu:
	case OP_Sigmoid:
	case OP_Tanh:
	case OP_Erf:
	case OP_Exp:
	case OP_Log:
	case OP_Sin:
	case OP_Cos:
	case OP_Tan:
	case OP_Asin:
	case OP_Acos:
	case OP_Atan:
	case OP_Sinh:
	case OP_Cosh:
	case OP_Asinh:
	case OP_Acosh:
	case OP_Atanh:
	case OP_Softplus:
	case OP_Softsign:
	case OP_Elu:
	case OP_Selu:
	case OP_Celu:
	case OP_Mish: return 8;
	case OP_Sqrt:
	case OP_Reciprocal:
	case OP_Div: return 4;
	/* data movement: bytes only */
	case OP_Reshape:
	case OP_Transpose:
	case OP_Squeeze:
	case OP_Unsqueeze:
	case OP_Flatten:
	case OP_Concat:
	case OP_Split:
	case OP_Expand:
	case OP_Tile:
	case OP_Pad:
	case OP_Identity:
	case OP_Dropout:
	case OP_Cast:
	case OP_Trilu:
	case OP_ConstantOfShape:
	case OP_Range:
	case OP_ScatterElements:
	case OP_ScatterND: return 0;
	case OP_Resize:
	case OP_GridSample:
	case OP_Col2Im:
	case OP_CenterCropPad: return 4;
	default: return -1;
	}
}

/* The bytes of node i that read part of their data or none (Shape, Size,
 * Constant, Slice, the gathers) into *by (and a masked lookup's FLOPs into
 * *fl): 1, or 0 when i reads every byte of its operands. in_b and out_b:
 * the bytes of all its operands and results. */
static int
partial_reads(sim *s, uint32_t i, const double *argel, double in_b, double out_b, double out_el,
              double *fl, double *by)
{
	ir_graph *g = s->g;
	const ir_node *n = &g->nodes[i];
	uint32_t a0 = ir_in(g, n, 0), a1 = ir_in(g, n, 1);
	double in0 = n->n_in ? argel[n->in] : 0;

	switch (n->op) {
	case OP_Shape:
	case OP_Size: *by = out_b; return 1; /* reads no data */
	case OP_Constant: *by = 0; return 1; /* a weight, folded by runtimes */
	case OP_Slice:
		*by = 2 * out_b + (in_b - (a0 == IR_NONE ? 0 : in0 * elem_bytes(&g->values[a0])));
		return 1;
	case OP_Gather:
	case OP_GatherElements:
	case OP_GatherND: {
		/* the rows read, not the whole table; a masked lookup also
		 * shifts the ids and zeroes the rows it does not hold */
		double ids = a1 == IR_NONE ? 0 : argel[n->in + 1] * elem_bytes(&g->values[a1]);
		*by = ids + 2 * out_b;
		if (s->p->lookup && s->p->lookup[i].n)
			*by += 3 * ids + 2 * out_b, *fl = out_el;
		return 1;
	}
	default: return 0;
	}
}

/* FLOPs of node n that computes more than a fixed number per element
 * (linear ops, convolutions, pools, recurrences; elementwise ops by
 * default), out_el its result's local elements, part the split of its
 * summed dims; *dtype set to the operand type that sets the peak. */
static double
compute_flops(sim *s, const ir_node *n, const double *argel, double out_el, double part,
              int32_t *dtype)
{
	ir_graph *g = s->g;
	uint32_t a0 = ir_in(g, n, 0), a1 = ir_in(g, n, 1);
	double in0 = n->n_in ? argel[n->in] : 0;

	switch (n->op) {
	case OP_MatMul:
	case OP_Gemm: {
		int32_t ra = a0 == IR_NONE ? 0 : g->values[a0].rank;
		int32_t kd = n->op == OP_Gemm ? (ir_attr_int(n, "transA", 0) ? 0 : 1) : ra - 1;
		if (a0 != IR_NONE)
			*dtype = g->values[a0].dtype;
		return 2 * out_el * value_dim(s, a0, kd) / part + (n->n_in > 2 ? out_el : 0);
	}
	case OP_Conv: {
		double kern = 1;
		for (int32_t d = 1; a1 != IR_NONE && d < g->values[a1].rank; d++)
			kern *= value_dim(s, a1, d);
		return 2 * out_el * kern / part;
	}
	case OP_ConvTranspose: {
		double cin = a1 == IR_NONE ? 1 : value_dim(s, a1, 0) / part;
		return 2 * in0 * (a1 == IR_NONE ? 1 : argel[n->in + 1]) / (cin > 0 ? cin : 1);
	}
	case OP_Einsum: return einsum_flops(s, n, argel, out_el, part);
	case OP_MaxPool:
	case OP_AveragePool: {
		const int64_t *ks;
		size_t nk = ir_attr_ints(n, "kernel_shape", &ks);
		double kern = 1;
		for (size_t k = 0; k < nk; k++)
			kern *= (double)(ks[k] > 0 ? ks[k] : 1);
		return out_el * kern;
	}
	case OP_OPAQUE: {
		const char *ty = ir_cstr(g, n->op_type);
		double fl = out_el;
		if ((!strcmp(ty, "LSTM") || !strcmp(ty, "GRU") || !strcmp(ty, "RNN")) &&
		    n->n_in >= 3 && a0 != IR_NONE && ir_in(g, n, 2) != IR_NONE &&
		    g->values[a0].rank == 3) {
			/* 2 x steps x batch x (W + R elements) */
			double in_sz = value_dim(s, a0, 2);
			fl = 2 * in0 / (in_sz > 0 ? in_sz : 1) *
			     (argel[n->in + 1] + argel[n->in + 2]);
		}
		if (a0 != IR_NONE)
			*dtype = g->values[a0].dtype;
		return fl;
	}
	default: /* elementwise: one per result element and operand beyond the first */
		return out_el * (n->n_in > 2 ? n->n_in - 1 : 1);
	}
}

/* FLOPs and bytes moved of node i on local shapes; argel[] holds each
 * operand's local elements as the node reads it (after its reshard),
 * elems[] each value's local elements; *dtype: the type whose peak applies
 * (its first result's, or as compute_flops says). */
static void
node_cost(sim *s, uint32_t i, const double *argel, const double *elems, double *fl, double *by,
          int32_t *dtype)
{
	ir_graph *g = s->g;
	const ir_node *n = &g->nodes[i];
	const prop_mesh *m = s->p->mesh;
	double in_b = 0, out_b = 0, out_el = 0, part = 1, per_el;
	uint32_t o0 = n->n_out ? ir_out(g, n, 0) : IR_NONE;
	int of_in;

	for (uint32_t k = 0; k < n->n_in; k++) {
		uint32_t v = ir_in(g, n, k);
		if (v != IR_NONE)
			in_b += argel[n->in + k] * elem_bytes(&g->values[v]);
	}
	for (uint32_t k = 0; k < n->n_out; k++) {
		uint32_t v = ir_out(g, n, k);
		if (v != IR_NONE) /* an optional result left out */
			out_b += elems[v] * elem_bytes(&g->values[v]);
	}
	if (o0 != IR_NONE) {
		out_el = elems[o0];
		part = mask_size(m, s->p->have[o0].partial);
		*dtype = g->values[o0].dtype;
	}
	*fl = 0;
	*by = in_b + out_b;
	if ((per_el = per_element_flops(n->op, &of_in)) >= 0)
		*fl = per_el * (of_in ? (n->n_in ? argel[n->in] : 0) : out_el);
	else if (!partial_reads(s, i, argel, in_b, out_b, out_el, fl, by))
		*fl = compute_flops(s, n, argel, out_el, part, dtype);
}

/* A value held between its producer and its last consumer (graph inputs,
 * outputs, initializers and Constant results are counted apart). */
static int
is_activation(const ir_graph *g, uint32_t v)
{
	if (v == IR_NONE) /* an optional result left out */
		return 0;
	const ir_value *x = &g->values[v];

	return x->kind == IR_V_NODE && !x->is_output && g->nodes[x->producer].op != OP_Constant;
}

static uint64_t
to_u64(double x)
{
	return x <= 0 ? 0 : x >= 1.8e19 ? UINT64_MAX : (uint64_t)llround(x);
}

int
search_simulate(ir_graph *g, const prop_plan *p, const search_hw *hw, search_cost *out)
{
	shd_ctx *c = g->ctx;
	const prop_mesh *m = p->mesh;
	sim s = {g, p, hw, p->bind ? p->bind : no_bind, 1, {0}};
	size_t nv = g->n_values, na = g->n_args, nr = p->n_reshards;
	double compute = 0, comm = 0, flops = 0, sent_kind[4] = {0};
	double params = 0, io = 0, act = 0, act_peak = 0;

	memset(out, 0, sizeof *out);
	/* one block: elems[nv], argel[na], fin[nr] (doubles), last[nv], seen[nr] */
	size_t size = (nv + na + nr) * sizeof(double) + nv * sizeof(uint32_t) + nr + 1;
	double *elems = shd_alloc(c, size);
	if (!elems)
		return shd_nomem(c);
	double *argel = elems + nv, *fin = argel + na;
	uint32_t *last = (uint32_t *)(fin + nr);
	uint8_t *seen = (uint8_t *)(last + nv);
	memset(seen, 0, nr + 1);
	for (uint32_t a = 0; a < m->n_axes; a++)
		s.intra[a] = (uint8_t)axis_intra(m, hw->devices_per_node, a);

	for (uint32_t v = 0; v < nv; v++) {
		elems[v] = local_elems(&s, &g->values[v], &p->have[v]);
		last[v] = IR_NONE;
	}
	for (uint32_t k = 0; k < na; k++)
		argel[k] = g->args[k] == IR_NONE ? 0 : elems[g->args[k]];
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		for (uint32_t k = 0; k < n->n_in; k++)
			if (ir_in(g, n, k) != IR_NONE)
				last[ir_in(g, n, k)] = i;
	}

	/* reshards: collectives once per id, local steps as ops */
	for (uint32_t r = 0; r < nr; r++) {
		const prop_reshard *rs = &p->reshards[r];
		const ir_value *x = &g->values[rs->value];
		double eb = elem_bytes(x);
		if (!seen[rs->id]) {
			double cur = elems[rs->value], sent;
			seen[rs->id] = 1;
			for (uint32_t k = 0; k < rs->n; k++) {
				const prop_step *st = &p->steps[rs->first + k];
				double nn = prop_axes_size(m, st->ax, st->n_axes);
				switch (st->kind) {
				case PROP_ALLREDUCE:
					comm += coll_time(&s, st, cur * eb, &sent);
					sent_kind[SEARCH_ALLREDUCE] += sent;
					break;
				case PROP_REDUCESCATTER:
					if (hw->ort) { /* an AllReduce, then a local Split */
						prop_step ar = *st;
						ar.kind = PROP_ALLREDUCE;
						comm += coll_time(&s, &ar, cur * eb, &sent);
						sent_kind[SEARCH_ALLREDUCE] += sent;
						compute +=
						        2 * cur * eb / hw->mem_bw + hw->op_overhead;
						cur = floor(cur / nn);
						break;
					}
					comm += coll_time(&s, st, cur * eb, &sent);
					sent_kind[SEARCH_REDUCESCATTER] += sent;
					cur = floor(cur / nn);
					break;
				case PROP_ALLGATHER:
					cur *= nn;
					comm += coll_time(&s, st, cur * eb, &sent);
					sent_kind[SEARCH_ALLGATHER] += sent;
					break;
				case PROP_ALLTOALL:
					comm += coll_time(&s, st, cur * eb, &sent);
					sent_kind[SEARCH_ALLTOALL] += sent;
					if (hw->ort) /* Transposes (split dim not 0), Split, Concat
					              */
						compute += (st->dim ? 4 : 2) *
						           (2 * cur * eb / hw->mem_bw +
						            hw->op_overhead);
					break;
				case PROP_SLICE:
					cur = floor(cur / nn);
					compute += 2 * cur * eb / hw->mem_bw + hw->op_overhead;
					break;
				default: /* PROP_TOPARTIAL */
					compute += 2 * cur * eb / hw->mem_bw + hw->op_overhead;
					break;
				}
			}
			fin[rs->id] = cur;
		}
		if (rs->node != IR_NONE)
			argel[g->nodes[rs->node].in + rs->operand] = fin[rs->id];
		else
			io += (fin[rs->id] - elems[rs->value]) * eb;
	}

	/* the nodes in order: time, and the activations live at each */
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const ir_node *n = &g->nodes[i];
		double fl, by, moved = 0;
		int32_t dtype = 1;
		node_cost(&s, i, argel, elems, &fl, &by, &dtype);
		flops += fl;
		if (n->op != OP_Constant) {
			double t = fl / peak_of(hw, dtype), tb = by / hw->mem_bw;
			compute += (t > tb ? t : tb) + hw->op_overhead;
		}
		for (uint32_t k = 0; k < n->n_out; k++) {
			uint32_t v = ir_out(g, n, k);
			if (is_activation(g, v))
				act += elems[v] * elem_bytes(&g->values[v]);
		}
		for (uint32_t k = 0; k < n->n_in; k++) {
			uint32_t v = ir_in(g, n, k);
			if (v != IR_NONE && argel[n->in + k] != elems[v])
				moved += argel[n->in + k] * elem_bytes(&g->values[v]);
		}
		if (act + moved > act_peak)
			act_peak = act + moved;
		for (uint32_t k = 0; k < n->n_in; k++) {
			uint32_t v = ir_in(g, n, k);
			if (v != IR_NONE && last[v] == i) {
				if (is_activation(g, v))
					act -= elems[v] * elem_bytes(&g->values[v]);
				last[v] = IR_NONE - 1; /* freed once, however often read */
			}
		}
		for (uint32_t k = 0; k < n->n_out; k++) {
			uint32_t v = ir_out(g, n, k);
			if (v != IR_NONE && last[v] == IR_NONE && is_activation(g, v))
				act -= elems[v] * elem_bytes(&g->values[v]);
		}
	}

	for (uint32_t v = 0; v < nv; v++) {
		const ir_value *x = &g->values[v];
		double b = elems[v] * elem_bytes(x);
		if (x->kind == IR_V_INIT ||
		    (x->kind == IR_V_NODE && g->nodes[x->producer].op == OP_Constant))
			params += b;
		else if (x->kind == IR_V_INPUT || x->is_output)
			io += b;
	}
	shd_free(c, elems, size);

	out->compute_s = compute;
	out->comm_s = comm;
	out->step_s = compute + comm;
	out->flops = to_u64(flops);
	out->param_bytes = to_u64(params);
	out->act_peak_bytes = to_u64(act_peak);
	out->io_bytes = to_u64(io);
	out->peak_bytes = out->param_bytes + out->act_peak_bytes + out->io_bytes;
	for (int k = 0; k < 4; k++) {
		out->comm_by_kind[k] = to_u64(sent_kind[k]);
		out->comm_bytes += out->comm_by_kind[k];
	}
	out->feasible = (double)out->peak_bytes <= hw->mem_cap;
	out->exact = s.exact;
	return 0;
}
