/* Per-rank lowering: one ONNX model per rank.
 * requires: a lifted graph and its materialised plan
 * provides: rank{r}.onnx (+ rank{r}.onnx.data): the source's nodes in order
 *   with local shapes; initializers sliced to this rank's block and streamed
 *   from the source (mmap) to disk; shape values global, made local where
 *   they size data (shapes.c); reshards
 *   as onnxshard collectives (or local Split/Mul), value_info on their
 *   results. Every name the plan makes is the same on every rank. */
#define _POSIX_C_SOURCE 200809L /* pread */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "lower_impl.h"

#define IO_CHUNK ((size_t)1 << 20)

/* ---- the error channel (lower_impl.h) ---- */

int
emit_fail(rank_ctx *k, int status, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (k->rc)
		return k->rc;
	va_start(ap, fmt);
	msg = shd_arena_vprintf(k->c, &k->a, fmt, ap);
	va_end(ap);
	k->rc = msg ? shd_error(k->c, status, "%s", msg) : shd_nomem(k->c);
	return k->rc;
}

int
emit_nomem(rank_ctx *k)
{
	if (!k->rc)
		k->rc = shd_nomem(k->c);
	return k->rc;
}

int
emit_status(rank_ctx *k, int rc)
{
	if (rc && !k->rc)
		k->rc = rc;
	return k->rc;
}

void *
emit_alloc(rank_ctx *k, size_t n)
{
	void *p = shd_arena_zalloc(k->c, &k->a, n);

	if (!p)
		emit_nomem(k);
	return p;
}

char *
emit_str(rank_ctx *k, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = shd_arena_vprintf(k->c, &k->a, fmt, ap);
	va_end(ap);
	if (!s)
		emit_nomem(k);
	return s;
}

/* Append item (NULL: a builder failed, k->rc set) to v. */
static int
push(rank_ctx *k, shd_vec *v, void *item)
{
	void **slot;

	if (k->rc)
		return k->rc;
	SHD_ASSERT(item); /* a builder returns NULL only with k->rc set */
	if (!(slot = shd_vec_push(k->c, v, sizeof item)))
		return emit_nomem(k);
	*slot = item;
	return 0;
}

/* ---- proto builders ---- */

static Onnx__AttributeProto *
attr(rank_ctx *k, const char *name, int type)
{
	Onnx__AttributeProto *a = emit_alloc(k, sizeof *a);
	Onnx__AttributeProto init = ONNX__ATTRIBUTE_PROTO__INIT;

	if (!a)
		return NULL;
	*a = init;
	a->name = (char *)name;
	a->has_type = 1;
	a->type = type;
	return a;
}

static Onnx__AttributeProto *
attr_int(rank_ctx *k, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	if (a)
		a->has_i = 1, a->i = v;
	return a;
}

static Onnx__AttributeProto *
attr_str(rank_ctx *k, const char *name, const char *s)
{
	Onnx__AttributeProto *a = attr(k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	if (a) {
		a->has_s = 1;
		a->s.data = (uint8_t *)s;
		a->s.len = strlen(s);
	}
	return a;
}

static Onnx__AttributeProto *
attr_ints(rank_ctx *k, const char *name, const int64_t *v, size_t n)
{
	Onnx__AttributeProto *a = attr(k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	int64_t *copy = emit_alloc(k, (n ? n : 1) * sizeof *copy);
	if (!a || !copy)
		return NULL;
	memcpy(copy, v, n * sizeof *v);
	a->n_ints = n;
	a->ints = copy;
	return a;
}

static Onnx__AttributeProto *
attr_axes(rank_ctx *k, const uint8_t *ax, uint8_t n)
{
	Onnx__AttributeProto *a =
	        attr(k, "mesh_axes", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
	ProtobufCBinaryData *s = emit_alloc(k, (n ? n : 1) * sizeof *s);
	if (!a || !s)
		return NULL;
	for (uint8_t i = 0; i < n; i++) {
		s[i].data = (uint8_t *)k->mesh->names[ax[i]];
		s[i].len = strlen(k->mesh->names[ax[i]]);
	}
	a->n_strings = n;
	a->strings = s;
	return a;
}

int
emit_node(rank_ctx *k, const char *op, const char *domain, const char *name, const char **in,
          size_t n_in, const char **out, size_t n_out, Onnx__AttributeProto **attrs, size_t n_attrs)
{
	Onnx__NodeProto *n = emit_alloc(k, sizeof *n);
	Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
	char **i = emit_alloc(k, (n_in + 1) * sizeof *i),
	     **o = emit_alloc(k, (n_out + 1) * sizeof *o);
	Onnx__AttributeProto **at = emit_alloc(k, (n_attrs + 1) * sizeof *at);

	if (k->rc) /* here, or in a builder of its names or attributes */
		return k->rc;
	*n = init;
	n->op_type = (char *)op;
	n->domain = (char *)domain;
	n->name = (char *)name;
	memcpy(i, in, n_in * sizeof *i);
	memcpy(o, out, n_out * sizeof *o);
	if (n_attrs)
		memcpy(at, attrs, n_attrs * sizeof *at);
	n->n_input = n_in;
	n->input = i;
	n->n_output = n_out;
	n->output = o;
	n->n_attribute = n_attrs;
	n->attribute = at;
	return push(k, &k->nodes, n);
}

/* Fill k's table of symbolic dim names: a name stands for the local size
 * of the symbol on the graph inputs that have it as a whole dim. Returns a
 * status. */
static int
sym_table(rank_ctx *k)
{
	ir_graph *g = k->g;
	uint32_t cap = 0;

	k->syms_ready = 1;
	for (uint32_t i = 0; i < g->n_inputs; i++)
		cap += g->values[g->inputs[i]].rank > 0 ? (uint32_t)g->values[g->inputs[i]].rank
		                                        : 0;
	k->sym_names = emit_alloc(k, (cap + 1) * sizeof *k->sym_names);
	k->sym_blocks = emit_alloc(k, (cap + 1) * sizeof *k->sym_blocks);
	if (!k->sym_names || !k->sym_blocks)
		return k->rc;
	for (uint32_t i = 0; i < g->n_inputs; i++) {
		const ir_value *v = &g->values[g->inputs[i]];
		const prop_shard *s = &k->p->have[g->inputs[i]];
		for (int32_t d = 0; d < v->rank; d++) {
			ir_str sym;
			uint32_t j;
			if (ir_dim_syms(g, v->dims[d], &sym, 1) != 1 ||
			    !ir_dim_eq(v->dims[d], ir_sym(g, ir_cstr(g, sym))))
				continue;
			for (j = 0; j < k->n_syms && k->sym_names[j].i != sym.i; j++)
				;
			if (j < k->n_syms)
				continue;
			k->sym_names[k->n_syms] = sym;
			k->sym_blocks[k->n_syms++] =
			        d < s->rank && s->dims[d].n
			                ? prop_axes_size(k->mesh, s->dims[d].ax, s->dims[d].n)
			                : 1;
		}
	}
	return 0;
}

/* The blocks in which this rank model's name of symbol sym stands (1 when
 * no graph input has it). */
static int64_t
sym_blocks(const rank_ctx *k, ir_str sym)
{
	for (uint32_t j = 0; j < k->n_syms; j++)
		if (k->sym_names[j].i == sym.i)
			return k->sym_blocks[j];
	return 1;
}

/* Whether dim d of v, split in b blocks, may be written under the name of
 * its expression: the name must stand for the size the dim has here (a
 * whole seq is not the split graph input's seq). */
static int
name_fits(rank_ctx *k, const ir_value *v, int32_t d, int64_t b)
{
	ir_str syms[8];
	uint32_t n = ir_dim_syms(k->g, v->dims[d], syms, 8);

	if (n == 1 && ir_dim_eq(v->dims[d], ir_sym(k->g, ir_cstr(k->g, syms[0]))))
		return sym_blocks(k, syms[0]) == b;
	if (n > 8 || b != 1)
		return 0;
	for (uint32_t j = 0; j < n; j++)
		if (sym_blocks(k, syms[j]) != 1)
			return 0;
	return 1;
}

static Onnx__TypeProto *
tensor_type(rank_ctx *k, int32_t dtype, const ir_value *v, const prop_shard *s)
{
	Onnx__TypeProto *t = emit_alloc(k, sizeof *t);
	Onnx__TypeProto__Tensor *tt = emit_alloc(k, sizeof *tt);
	Onnx__TypeProto ti = ONNX__TYPE_PROTO__INIT;
	Onnx__TypeProto__Tensor tti = ONNX__TYPE_PROTO__TENSOR__INIT;

	if (!t || !tt)
		return NULL;
	*t = ti;
	*tt = tti;
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	tt->has_elem_type = dtype != 0;
	tt->elem_type = dtype;
	if (v->rank < 0)
		return t;
	if (!k->syms_ready && sym_table(k))
		return NULL;
	Onnx__TensorShapeProto *sh = emit_alloc(k, sizeof *sh);
	Onnx__TensorShapeProto shi = ONNX__TENSOR_SHAPE_PROTO__INIT;
	Onnx__TensorShapeProto__Dimension **dims =
	        emit_alloc(k, ((size_t)v->rank + 1) * sizeof *dims);
	if (!sh || !dims)
		return NULL;
	*sh = shi;
	for (int32_t d = 0; d < v->rank; d++) {
		Onnx__TensorShapeProto__Dimension *x = emit_alloc(k, sizeof *x);
		Onnx__TensorShapeProto__Dimension xi = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
		if (!x)
			return NULL;
		*x = xi;
		ir_dim local = prop_local_dim(k->g, k->p, v, s, d);
		if (ir_is_const(local)) {
			x->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			x->dim_value = local.c;
		} else if (ir_is_known(v->dims[d]) &&
		           name_fits(k, v, d,
		                     d < s->rank && s->dims[d].n
		                             ? prop_axes_size(k->mesh, s->dims[d].ax, s->dims[d].n)
		                             : 1)) {
			/* a symbolic dim keeps its name and stands for the local size */
			x->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			x->dim_param = (char *)ir_dim_str(k->g, v->dims[d]);
		}
		dims[d] = x;
	}
	sh->n_dim = (size_t)v->rank;
	sh->dim = dims;
	tt->shape = sh;
	return t;
}

static Onnx__ValueInfoProto *
value_info(rank_ctx *k, const char *name, const ir_value *v, const prop_shard *s)
{
	Onnx__ValueInfoProto *vi = emit_alloc(k, sizeof *vi);
	Onnx__ValueInfoProto init = ONNX__VALUE_INFO_PROTO__INIT;

	if (!vi)
		return NULL;
	*vi = init;
	vi->name = (char *)name;
	if (!(vi->type = tensor_type(k, v->dtype, v, s)))
		return NULL;
	return vi;
}

static Onnx__TensorProto *
tensor(rank_ctx *k, const char *name, int32_t dtype, const int64_t *dims, size_t rank)
{
	Onnx__TensorProto *t = emit_alloc(k, sizeof *t);
	Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
	int64_t *d = emit_alloc(k, (rank + 1) * sizeof *d);

	if (!t || !d)
		return NULL;
	*t = init;
	t->name = (char *)name;
	t->has_data_type = 1;
	t->data_type = dtype;
	if (rank)
		memcpy(d, dims, rank * sizeof *d);
	t->n_dims = rank;
	t->dims = d;
	return push(k, &k->inits, t) ? NULL : t;
}

/* A small inline tensor with the given bytes. */
int
emit_tensor_inline(rank_ctx *k, const char *name, int32_t dtype, const int64_t *dims, size_t rank,
                   const void *bytes, size_t n)
{
	Onnx__TensorProto *t = tensor(k, name, dtype, dims, rank);
	uint8_t *copy = emit_alloc(k, n ? n : 1);

	if (!t || !copy)
		return k->rc;
	memcpy(copy, bytes, n);
	t->has_raw_data = 1;
	t->raw_data.data = copy;
	t->raw_data.len = n;
	return 0;
}

/* A graph input describing initializer t (its dtype and dims). */
static Onnx__ValueInfoProto *
init_info(rank_ctx *k, const Onnx__TensorProto *t)
{
	ir_value v = {0};
	ir_dim *d = emit_alloc(k, (t->n_dims + 1) * sizeof *d);
	prop_dim *pd = emit_alloc(k, (t->n_dims + 1) * sizeof *pd);

	if (!d || !pd)
		return NULL;
	for (size_t i = 0; i < t->n_dims; i++)
		d[i] = ir_const(t->dims[i]);
	v.dtype = t->data_type;
	v.rank = (int32_t)t->n_dims;
	v.dims = d;
	prop_shard whole = {v.rank, pd, 0};
	return value_info(k, t->name, &v, &whole);
}

/* ---- initializers: this rank's block, streamed ---- */

/* Bytes of t from an external file: pread, so that the mapped source never
 * grows this process's memory. */
static int
read_ext(rank_ctx *k, int fd, uint64_t off, uint64_t n, uint8_t *dst)
{
	while (n) {
		ssize_t got = pread(fd, dst, (size_t)n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return emit_fail(k, ONNXSHARD_EFAIL, "%s: cannot read external data: %s",
			                 k->g->model->path, got ? strerror(errno) : "short file");
		dst += got, off += (uint64_t)got, n -= (uint64_t)got;
	}
	return 0;
}

/* Bytes [src, src + n) of t into mem at *written, or appended to the data
 * file. From an external file (fd >= 0): a run of 64 KiB or more bound for
 * the data file is copied in the kernel (*kernel; cleared once the kernel
 * cannot), the rest taken from 1 MiB windows read with pread; else from
 * the tensor's bytes. Returns a status. */
static int
copy_run(rank_ctx *k, const Onnx__TensorProto *t, uint64_t src, uint64_t n, uint8_t *mem,
         uint64_t *written, int fd, uint64_t base, int *kernel)
{
	int rc;

	for (uint64_t done = 0, c; done < n; done += c) {
		if (!mem && fd >= 0 && *kernel && n >= ((uint64_t)64 << 10)) {
			c = n - done < ((uint64_t)16 << 20) ? n - done : (uint64_t)16 << 20;
			if ((rc = onnx_datafile_copy(k->c, &k->df, fd, base + src + done, c,
			                             kernel)))
				return emit_status(k, rc);
			if (!*kernel) {
				c = 0; /* the same bytes again, by the window below */
				continue;
			}
		} else if (fd >= 0) {
			/* a window of the source read once serves the small runs
			 * within it (the columns of a row-major block) */
			uint64_t at = src + done, size = onnx_tensor_bytes(t);
			c = n - done < IO_CHUNK ? n - done : IO_CHUNK;
			if (at < k->win_lo || at + c > k->win_hi) {
				uint64_t len = size - at < IO_CHUNK ? size - at : IO_CHUNK;
				k->win_lo = k->win_hi = 0;
				if ((rc = read_ext(k, fd, base + at, len, k->buf)))
					return rc; /* k->rc */
				k->win_lo = at, k->win_hi = at + len;
			}
			const uint8_t *from = k->buf + (at - k->win_lo);
			if (mem)
				memcpy(mem + *written, from, (size_t)c), rc = 0;
			else
				rc = onnx_datafile_write(k->c, &k->df, from, (size_t)c);
		} else {
			c = n - done < IO_CHUNK ? n - done : IO_CHUNK;
			uint8_t *dst = mem ? mem + *written : k->buf;
			if (!(rc = onnx_tensor_read(k->g->model, t, src + done, c, dst)) && !mem)
				rc = onnx_datafile_write(k->c, &k->df, dst, (size_t)c);
		}
		if (rc || (k->o->stop && (rc = k->o->stop(k->o->stop_ud))))
			return emit_status(k, rc);
		if (k->o->progress)
			k->o->progress(k->o->progress_ud, c);
		*written += c;
	}
	return 0;
}

/* The block of t (value v, rank <= IR_MAX_RANK) this rank holds under sharding s,
 * over t's dims with a dim in pieces as [pieces, dim/pieces]: per dim the
 * global extent gl, the local lo and this rank's first index off (arrays of
 * 2 * rank). Returns the number of dims; *last is the last split one (-1:
 * none). */
static int32_t
block_layout(const rank_ctx *k, const Onnx__TensorProto *t, const ir_value *v, const prop_shard *s,
             int64_t *gl, int64_t *lo, int64_t *off, int32_t *last)
{
	int32_t r = 0;

	*last = -1;
	for (int32_t d = 0; d < v->rank; d++) {
		int64_t p = prop_pieces(&s->dims[d]), size = t->dims[d];
		if (p > 1) {
			gl[r] = lo[r] = p;
			off[r++] = 0;
			size /= p;
		}
		gl[r] = lo[r] = size;
		off[r] = 0;
		if (s->dims[d].n) {
			int64_t nb = prop_axes_size(k->mesh, s->dims[d].ax, s->dims[d].n);
			/* padded: blocks past the dim's end (gl) are zeros (copy_block) */
			lo[r] = s->dims[d].pad ? prop_pad_block(size, s->dims[d].pad, nb)
			                       : size / nb;
			off[r] = prop_shard_index(k->mesh, k->rank, s->dims[d].ax, s->dims[d].n) *
			         lo[r];
			*last = r;
		}
		r++;
	}
	return r;
}

/* The block of string tensor t under s into out's string_data: the
 * entries of t it selects, in row-major order (their bytes shared with the
 * source, which outlives the rank model; the loader has checked that t
 * holds one entry per element). */
static int
string_block(rank_ctx *k, const Onnx__TensorProto *t, const ir_value *v, const prop_shard *s,
             Onnx__TensorProto *out)
{
	int64_t gl[2 * IR_MAX_RANK], lo[2 * IR_MAX_RANK], off[2 * IR_MAX_RANK],
	        idx[2 * IR_MAX_RANK];
	int32_t last, r = block_layout(k, t, v, s, gl, lo, off, &last);
	uint64_t n = 1;

	for (int32_t d = 0; d < r; d++)
		n *= (uint64_t)lo[d], idx[d] = 0;
	ProtobufCBinaryData *sd = emit_alloc(k, (n ? n : 1) * sizeof *sd);
	if (!sd)
		return k->rc;
	for (uint64_t e = 0; e < n; e++) {
		uint64_t src = 0;
		for (int32_t d = 0; d < r; d++)
			src = src * (uint64_t)gl[d] + (uint64_t)(idx[d] + off[d]);
		sd[e] = t->string_data[src];
		for (int32_t d = r - 1; d >= 0 && ++idx[d] == lo[d]; d--)
			idx[d] = 0;
	}
	out->n_string_data = (size_t)n;
	out->string_data = sd;
	return 0;
}

/* n zero bytes into mem at *written, or appended to the data file.
 * Returns a status. */
static int
zero_run(rank_ctx *k, uint64_t n, uint8_t *mem, uint64_t *written)
{
	static const uint8_t zeros[4096];
	int rc;

	if (mem) {
		memset(mem + *written, 0, (size_t)n);
		*written += n;
		return 0;
	}
	for (uint64_t c; n; n -= c, *written += c) {
		c = n < sizeof zeros ? n : sizeof zeros;
		if ((rc = onnx_datafile_write(k->c, &k->df, zeros, (size_t)c)))
			return emit_status(k, rc);
	}
	return 0;
}

/* A padded block (some dim of s padded: its extent lo passes the source's
 * gl there) row by row along the innermost dim: the source's elements where
 * they exist, zeros in the padding. Returns a status. */
static int
copy_padded(rank_ctx *k, const Onnx__TensorProto *t, size_t es, int32_t r, const int64_t *gl,
            const int64_t *lo, const int64_t *off, uint8_t *mem, uint64_t *written, int fd,
            uint64_t base, int *kernel)
{
	int64_t idx[2 * IR_MAX_RANK] = {0}, in_last = gl[r - 1] - off[r - 1];
	uint64_t rows = 1;
	int rc;

	in_last = in_last < 0 ? 0 : in_last > lo[r - 1] ? lo[r - 1] : in_last;
	for (int32_t d = 0; d < r - 1; d++)
		rows *= (uint64_t)lo[d];
	for (uint64_t o = 0; o < rows; o++) {
		uint64_t src = 0, have = (uint64_t)in_last;
		if (o % 4096 == 0 && k->o->stop && (rc = k->o->stop(k->o->stop_ud)))
			return emit_status(k, rc);
		for (int32_t d = 0; d < r - 1; d++) {
			if (idx[d] + off[d] >= gl[d])
				have = 0; /* a row of padding */
			src = src * (uint64_t)gl[d] + (uint64_t)(idx[d] + off[d]);
		}
		src = (src * (uint64_t)gl[r - 1] + (uint64_t)off[r - 1]) * es;
		if ((have &&
		     (rc = copy_run(k, t, src, have * es, mem, written, fd, base, kernel))) ||
		    (rc = zero_run(k, ((uint64_t)lo[r - 1] - have) * es, mem, written)))
			return rc;
		for (int32_t d = r - 2; d >= 0 && ++idx[d] == lo[d]; d--)
			idx[d] = 0;
	}
	return 0;
}

/* Copy the block of t under sharding s into mem, or to the data file when
 * mem is NULL. A dim in pieces is copied as [pieces, dim/pieces] with the
 * inner part split. A 4-bit tensor (two elements a byte, flattened) is
 * copied whole, or split as bytes with its innermost dim halved: the plan
 * splits one only into blocks whose innermost extent is even (propagate.c). */
static int
copy_block(rank_ctx *k, const Onnx__TensorProto *t, const ir_value *v, const prop_shard *s,
           uint8_t *mem, uint64_t *written)
{
	size_t es = onnx_dtype_size(t->data_type);
	int64_t gl[2 * IR_MAX_RANK], lo[2 * IR_MAX_RANK], off[2 * IR_MAX_RANK],
	        idx[2 * IR_MAX_RANK];
	int32_t last, r = block_layout(k, t, v, s, gl, lo, off, &last);
	int rc, fd = -1, kernel = 1;
	uint64_t base = 0;

	if (onnx_tensor_fd(k->g->model, t, &fd, &base))
		fd = -1;
	k->win_lo = k->win_hi = 0; /* nothing of this tensor read yet */
	for (int32_t d = 0; d < v->rank; d++)
		if (prop_is_padded(&s->dims[d])) /* never 4-bit; pieces: each padded */
			return copy_padded(k, t, es, r, gl, lo, off, mem, written, fd, base,
			                   &kernel);
	if (onnx_dtype_bits(t->data_type) == 4) {
		if (last < 0)
			return copy_run(k, t, 0, onnx_tensor_bytes(t), mem, written, fd, base,
			                &kernel);
		if (lo[r - 1] % 2 || gl[r - 1] % 2)
			return emit_fail(k, ONNXSHARD_EFAIL,
			                 "tensor '%s': a block of %lld %s values in its innermost "
			                 "dim would cut a byte",
			                 t->name ? t->name : "", (long long)lo[r - 1],
			                 onnx_dtype_name(t->data_type));
		gl[r - 1] /= 2, lo[r - 1] /= 2, off[r - 1] /= 2;
		es = 1;
	}
	/* a contiguous run: the local extent of the last split dim and all after it */
	uint64_t run = es, outer = 1;
	for (int32_t d = r - 1; d >= (last < 0 ? 0 : last); d--)
		run *= (uint64_t)lo[d];
	for (int32_t d = 0; d < last; d++) {
		outer *= (uint64_t)lo[d];
		idx[d] = 0;
	}
	for (uint64_t o = 0; o < outer; o++) {
		uint64_t src = 0;
		if (o % 4096 == 0 && k->o->stop && (rc = k->o->stop(k->o->stop_ud)))
			return emit_status(k, rc);
		for (int32_t d = 0; d < r; d++) {
			int64_t i = d < last ? idx[d] + off[d] : d == last ? off[d] : 0;
			src = src * (uint64_t)gl[d] + (uint64_t)i;
		}
		src *= es;
		if ((rc = copy_run(k, t, src, run, mem, written, fd, base, &kernel)))
			return rc;
		for (int32_t d = last - 1; d >= 0; d--) {
			if (++idx[d] < lo[d])
				break;
			idx[d] = 0;
		}
	}
	return 0;
}

uint64_t
emit_init_block(const ir_graph *g, const prop_plan *p, uint32_t v, int64_t *dims)
{
	const ir_value *x = &g->values[v];
	const prop_shard *s = &p->have[v];
	uint64_t n = 1;

	if (x->rank > IR_MAX_RANK)
		return 0;
	for (int32_t d = 0; d < x->rank; d++) {
		dims[d] = x->init->dims[d];
		int64_t nb =
		        s->dims[d].n ? prop_axes_size(p->mesh, s->dims[d].ax, s->dims[d].n) : 1;
		dims[d] = s->dims[d].n && s->dims[d].pad
		                  ? prop_padded_local(dims[d], &s->dims[d], nb)
		                  : dims[d] / nb;
		n *= (uint64_t)dims[d];
	}
	return onnx_dtype_bytes(x->init->data_type, n); /* 4-bit: packed */
}

/* Initializer v as this rank holds it: a tensor named as in the source,
 * with this rank's block (emit_init_block) of the source's bytes, inline
 * when smaller than the threshold (strings always), else appended to the
 * rank's data file (aligned) and cited by location, offset and length.
 * The bytes are read from the source as copy_block says (the mmap, or
 * pread windows of its external file); its pages are released after.
 * Returns a status (k->rc). */
static int
emit_init(rank_ctx *k, uint32_t v)
{
	const ir_value *x = &k->g->values[v];
	const Onnx__TensorProto *t = x->init;
	const prop_shard *s = &k->p->have[v];
	int64_t dims[IR_MAX_RANK];
	uint64_t bytes = emit_init_block(k->g, k->p, v, dims);
	int rc;

	if (x->rank > IR_MAX_RANK) /* as it is */
		return push(k, &k->inits, (void *)t);
	if (onnx_dtype_bits(t->data_type) == 0) { /* strings: this rank's entries, inline */
		Onnx__TensorProto *st =
		        tensor(k, ir_cstr(k->g, x->name), t->data_type, dims, (size_t)x->rank);
		return st ? string_block(k, t, x, s, st) : k->rc;
	}
	k->st->param_bytes += bytes;
	Onnx__TensorProto *out =
	        tensor(k, ir_cstr(k->g, x->name), t->data_type, dims, (size_t)x->rank);
	if (!out)
		return k->rc;
	uint64_t written = 0;
	if (bytes < k->o->threshold || bytes == 0) {
		uint8_t *mem = emit_alloc(k, bytes ? bytes : 1);
		if (!mem)
			return k->rc;
		if ((rc = copy_block(k, t, x, s, mem, &written)))
			return rc;
		out->has_raw_data = 1;
		out->raw_data.data = mem;
		out->raw_data.len = bytes;
		return 0;
	}
	uint64_t off;
	if ((rc = emit_status(k, onnx_datafile_align(k->c, &k->df, &off))) ||
	    (rc = copy_block(k, t, x, s, NULL, &written)))
		return rc;
	onnx_tensor_release(k->g->model, t);
	Onnx__StringStringEntryProto **e = emit_alloc(k, 3 * sizeof *e);
	const char *keys[3] = {"location", "offset", "length"};
	const char *vals[3] = {k->loc, emit_str(k, "%llu", (unsigned long long)off),
	                       emit_str(k, "%llu", (unsigned long long)bytes)};
	if (k->rc)
		return k->rc;
	for (int i = 0; i < 3; i++) {
		Onnx__StringStringEntryProto init = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
		if (!(e[i] = emit_alloc(k, sizeof *e[i])))
			return k->rc;
		*e[i] = init;
		e[i]->key = (char *)keys[i];
		e[i]->value = (char *)vals[i];
	}
	out->n_external_data = 3;
	out->external_data = e;
	out->has_data_location = 1;
	out->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	return 0;
}

/* ---- reshards ---- */

/* A scalar initializer `name` of value v's dtype holding 1 (one) or 0:
 * the mask that makes v a share of a pending sum. Returns a status. */
static int
scalar_const(rank_ctx *k, const char *name, const ir_value *v, int one)
{
	int32_t dtype = v->dtype;
	uint8_t b[8] = {0};

	switch (dtype) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
		float f = (float)one;
		memcpy(b, &f, 4);
		break;
	}
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
		double f = one;
		memcpy(b, &f, 8);
		break;
	}
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: b[1] = one ? 0x3c : 0; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
		b[1] = one ? 0x3f : 0, b[0] = one ? 0x80 : 0;
		break;
	default: b[0] = (uint8_t)one; break; /* integers, little-endian */
	}
	size_t es = onnx_dtype_size(dtype);
	if (!es)
		return emit_fail(k, ONNXSHARD_EINPUT,
		                 "%s: value '%s' has %s%s: it cannot be masked into a share "
		                 "of a pending sum",
		                 k->g->model->path, ir_cstr(k->g, v->name),
		                 onnx_dtype_name(dtype) ? "dtype " : "no known dtype",
		                 onnx_dtype_name(dtype) ? onnx_dtype_name(dtype) : "");
	return emit_tensor_inline(k, name, dtype, NULL, 0, b, es);
}

/* A local Split of `in` into n equal blocks along dim. */
static int
emit_split(rank_ctx *k, const char *nn, const char *in, const char **outs, int64_t n, int32_t dim)
{
	Onnx__AttributeProto *sa[2];
	size_t ns = 0;

	sa[ns++] = attr_int(k, "axis", dim);
	if (k->g->opset >= 18)
		sa[ns++] = attr_int(k, "num_outputs", n);
	return emit_node(k, "Split", "", nn, &in, 1, outs, (size_t)n, sa, ns);
}

/* Node nn: `in` (value v's rank) sliced to [start, end) along dim, then
 * padded with zeros at its end to `padto` elements there when shorter:
 * the local steps of a padded dim (its padding cut off after a gather, or a
 * rank's padded block of a whole dim). Returns a status. */
static int
emit_cut(rank_ctx *k, const char *nn, const char *in, const char *out, const ir_value *v,
         int32_t dim, int64_t start, int64_t end, int64_t padto)
{
	const int32_t i64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	int64_t b[3] = {start, end, dim}, one[1] = {1}, rank = v->rank > 0 ? v->rank : 1;
	const char *sl = padto > end - start ? emit_str(k, "%s/cut", out) : out;

	if (!sl)
		return k->rc;
	if (k->g->opset >= 10) {
		const char *c[3], *ins[4] = {in};
		for (int j = 0; j < 3; j++)
			if (!(c[j] = emit_str(k, "%s/b%d", nn, j)) ||
			    emit_tensor_inline(k, c[j], i64, one, 1, &b[j], 8))
				return k->rc;
		ins[1] = c[0], ins[2] = c[1], ins[3] = c[2];
		if (emit_node(k, "Slice", "", nn, ins, 4, &sl, 1, NULL, 0))
			return k->rc;
	} else {
		Onnx__AttributeProto *at[3] = {attr_ints(k, "starts", &b[0], 1),
		                               attr_ints(k, "ends", &b[1], 1),
		                               attr_ints(k, "axes", &b[2], 1)};
		if (k->rc || emit_node(k, "Slice", "", nn, &in, 1, &sl, 1, at, 3))
			return k->rc;
	}
	if (sl == out)
		return 0;
	int64_t *pads = emit_alloc(k, (size_t)(2 * rank) * sizeof *pads);
	if (!pads)
		return k->rc;
	pads[rank + dim] = padto - (end - start);
	const char *pn = emit_str(k, "%s/pad", nn);
	if (k->g->opset >= 11) {
		int64_t np[1] = {2 * rank};
		const char *pc = emit_str(k, "%s/pads", nn), *ins[2] = {sl, pc};
		if (!pc || emit_tensor_inline(k, pc, i64, np, 1, pads, (size_t)(2 * rank) * 8))
			return k->rc;
		return emit_node(k, "Pad", "", pn, ins, 2, &out, 1, NULL, 0);
	}
	Onnx__AttributeProto *at[1] = {attr_ints(k, "pads", pads, (size_t)(2 * rank))};
	return k->rc ? k->rc : emit_node(k, "Pad", "", pn, &sl, 1, &out, 1, at, 1);
}

/* The type ONNX Runtime's com.microsoft collective `kind` sends a value of
 * dtype dt as: dt where its schema takes it (AllReduce, and the AllReduce
 * a ReduceScatter runs as: float16, float, double; AllGather and AllToAll:
 * those, int64 and bool), else a wider type that holds every value exactly
 * (bfloat16 as float; AllGather's and AllToAll's other integers of 32 bits
 * or less as int64), or -1: none (an unknown dtype is left as it is). No
 * plan sums an integer (ir_rule_of). */
static int32_t
ort_wire_dtype(int kind, int32_t dt)
{
	int moves = kind == PROP_ALLGATHER || kind == PROP_ALLTOALL; /* no sum */

	switch (dt) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED:
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return dt;
	case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return moves ? dt : -1;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
		return moves ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : -1;
	default: return -1;
	}
}

/* Node nn: ONNX Runtime's com.microsoft collective op (of step kind `kind`,
 * whose wire types apply) from `in` to `out`, a value like v sharded sh
 * (its value_info); sent as a wider type (Cast before and after) where the
 * schema does not take v's. Returns a status. */
static int
ort_coll(rank_ctx *k, int kind, const char *op, const char *nn, const char *in, const char *out,
         const ir_value *v, const prop_shard *sh, Onnx__AttributeProto **at, size_t na)
{
	int32_t wire = ort_wire_dtype(kind, v->dtype);

	if (wire < 0)
		return emit_fail(k, ONNXSHARD_EFAIL,
		                 "--collectives ort: a step emit_ort_why lets pass (a bug)");
	if (wire == v->dtype) {
		if (emit_node(k, op, "com.microsoft", nn, &in, 1, &out, 1, at, na) ||
		    push(k, &k->vinfo, value_info(k, out, v, sh)))
			return k->rc;
		k->st->collectives++;
		return 0;
	}
	/* sent as a wider type that holds every value exactly */
	ir_value wv = *v;
	const char *win = emit_str(k, "%s/wire", in), *wout = emit_str(k, "%s/wire", out);
	Onnx__AttributeProto *ci[1] = {attr_int(k, "to", wire)},
	                     *co[1] = {attr_int(k, "to", v->dtype)};
	wv.dtype = wire;
	if (k->rc || emit_node(k, "Cast", "", emit_str(k, "%s/in", nn), &in, 1, &win, 1, ci, 1) ||
	    emit_node(k, op, "com.microsoft", nn, &win, 1, &wout, 1, at, na) ||
	    push(k, &k->vinfo, value_info(k, wout, &wv, sh)) ||
	    emit_node(k, "Cast", "", emit_str(k, "%s/out", nn), &wout, 1, &out, 1, co, 1) ||
	    push(k, &k->vinfo, value_info(k, out, v, sh)))
		return k->rc;
	k->st->collectives++;
	return 0;
}

/* A ReduceScatter in ONNX Runtime's collectives, which have none: node
 * nn's AllReduce of `in` (v, sharded as pre less its pending sum), then a
 * local Split along s->dim taking this rank's block of the group (its
 * shard index on s->ax, as a Slice step's). Returns a status. */
static int
ort_reduce_scatter(rank_ctx *k, const prop_step *s, const char *nn, const char *in, const char *out,
                   const ir_value *v, const prop_shard *pre, int64_t gsize)
{
	const char *sum = emit_str(k, "%s/sum", out);
	const char **outs = emit_alloc(k, (size_t)gsize * sizeof *outs);
	int64_t idx = prop_shard_index(k->mesh, k->rank, s->ax, s->n_axes);

	if (!sum || !outs || ort_coll(k, PROP_ALLREDUCE, "AllReduce", nn, in, sum, v, pre, NULL, 0))
		return k->rc;
	for (int64_t j = 0; j < gsize; j++)
		outs[j] = j == idx ? out : emit_str(k, "%s_part%lld", out, (long long)j);
	return emit_split(k, emit_str(k, "%s/split", nn), sum, outs, gsize, s->dim);
}

/* An AllToAll in ONNX Runtime's form, whose AllToAll splits a rank's
 * buffer along dim 0 into group_size chunks, sends chunk i to world rank
 * i and puts what it receives from rank j at chunk j: `in` (v sharded pre)
 * with the split dim s->dim swapped to the front (Transpose; none when it
 * is dim 0), node nn's AllToAll, the swap undone, then the chunks (now
 * blocks of the split dim, rank j's block of the concat dim in each) Split
 * along s->dim and concatenated in group order along s->dim2 into `out`
 * (v sharded cur). Symbolic dims need no shape value. Returns a status. */
static int
ort_alltoall(rank_ctx *k, const prop_step *s, const char *nn, const char *in, const char *out,
             const ir_value *v, const prop_shard *pre, const prop_shard *cur, int64_t gsize)
{
	int32_t rank = v->rank, d = s->dim;
	int64_t *perm = emit_alloc(k, (size_t)rank * sizeof *perm);
	ir_dim *td = emit_alloc(k, (size_t)rank * sizeof *td);
	prop_dim *tsd = emit_alloc(k, (size_t)rank * sizeof *tsd);
	const char **parts = emit_alloc(k, (size_t)gsize * sizeof *parts);
	const char *t = d ? emit_str(k, "%s/swapped", out) : in, *a = emit_str(k, "%s/a2a", out);
	const char *back = d ? emit_str(k, "%s/back", out) : a;
	Onnx__AttributeProto *ga[1] = {attr_int(k, "group_size", gsize)}, *pa[1];
	ir_value tv = *v;
	prop_shard ts = *pre;

	if (!perm || !td || !tsd || !parts || !t || !a || !back || k->rc)
		return k->rc;
	SHD_ASSERT(rank >= 2 && d != s->dim2 && pre->rank == rank);
	/* the value as the AllToAll sees it: dims 0 and d swapped */
	for (int32_t j = 0; j < rank; j++) {
		int32_t f = j == 0 ? d : j == d ? 0 : j;
		perm[j] = f;
		td[j] = v->dims[f];
		tsd[j] = pre->dims[f];
	}
	tv.dims = td;
	ts.dims = tsd;
	pa[0] = attr_ints(k, "perm", perm, (size_t)rank);
	if (d && emit_node(k, "Transpose", "", emit_str(k, "%s/swap", nn), &in, 1, &t, 1, pa, 1))
		return k->rc;
	if (ort_coll(k, PROP_ALLTOALL, "AllToAll", nn, t, a, &tv, &ts, ga, 1))
		return k->rc;
	if (d &&
	    emit_node(k, "Transpose", "", emit_str(k, "%s/unswap", nn), &a, 1, &back, 1, pa, 1))
		return k->rc;
	for (int64_t j = 0; j < gsize; j++)
		parts[j] = emit_str(k, "%s_part%lld", out, (long long)j);
	Onnx__AttributeProto *ca[1] = {attr_int(k, "axis", s->dim2)};
	if (emit_split(k, emit_str(k, "%s/split", nn), back, parts, gsize, d) ||
	    emit_node(k, "Concat", "", emit_str(k, "%s/join", nn), parts, (size_t)gsize, &out, 1,
	              ca, 1))
		return k->rc;
	return push(k, &k->vinfo, value_info(k, out, v, cur));
}

/* One step of a reshard: node nn turns `in` into `out`; cur (v's
 * sharding so far) follows. Returns a status; with --collectives ort, a
 * step ONNX Runtime's collectives cannot take is refused (bad input). */
static int
one_step(rank_ctx *k, const prop_step *s, const char *nn, const char *in, const char *out,
         const ir_value *v, prop_shard *cur)
{
	prop_dim *dims = cur->dims, pdims[IR_MAX_RANK];
	prop_shard pre = {0}; /* ReduceScatter, AllToAll: cur before the step */
	int64_t gsize = prop_axes_size(k->mesh, s->ax, s->n_axes);
	int64_t *grp = emit_alloc(k, (size_t)gsize * sizeof *grp);
	Onnx__AttributeProto *at[4];
	size_t na = 0;
	const char *op = NULL;

	if (!grp || !nn || !out)
		return k->rc;
	prop_group(k->mesh, k->rank, s->ax, s->n_axes, grp);
	switch (s->kind) {
	case PROP_ALLREDUCE:
		op = "AllReduce";
		if (!k->o->ort)
			at[na++] = attr_str(k, "reduce", "sum");
		for (uint8_t j = 0; j < s->n_axes; j++)
			cur->partial &= (uint8_t) ~(1u << s->ax[j]);
		break;
	case PROP_REDUCESCATTER:
		op = "ReduceScatter";
		at[na++] = attr_int(k, "axis", s->dim);
		at[na++] = attr_str(k, "reduce", "sum");
		cur->partial = 0;
		pre = *cur;
		pre.dims = pdims;
		memcpy(pdims, dims, (size_t)(cur->rank > 0 ? cur->rank : 0) * sizeof *pdims);
		memcpy(&dims[s->dim].ax[dims[s->dim].n], s->ax, s->n_axes);
		dims[s->dim].n = (uint8_t)(dims[s->dim].n + s->n_axes);
		if (k->o->ort) /* com.microsoft has none: AllReduce, then a local Split */
			return ort_reduce_scatter(k, s, nn, in, out, v, &pre, gsize);
		break;
	case PROP_ALLGATHER:
		op = "AllGather";
		at[na++] = attr_int(k, "axis", s->dim);
		dims[s->dim].n = (uint8_t)(dims[s->dim].n - s->n_axes);
		if (!dims[s->dim].n)
			dims[s->dim].pieces = 0;
		break;
	case PROP_ALLTOALL:
		op = "AllToAll";
		at[na++] = attr_int(k, "split_axis", s->dim);
		at[na++] = attr_int(k, "concat_axis", s->dim2);
		pre = *cur;
		pre.dims = pdims;
		memcpy(pdims, dims, (size_t)(cur->rank > 0 ? cur->rank : 0) * sizeof *pdims);
		dims[s->dim2].n = (uint8_t)(dims[s->dim2].n - s->n_axes);
		memcpy(&dims[s->dim].ax[dims[s->dim].n], s->ax, s->n_axes);
		dims[s->dim].n = (uint8_t)(dims[s->dim].n + s->n_axes);
		if (k->o->ort) /* ORT's splits and joins dim 0 only */
			return ort_alltoall(k, s, nn, in, out, v, &pre, cur, gsize);
		break;
	case PROP_SLICE: {
		/* a local Split into equal blocks; this rank keeps its own */
		const char **outs = emit_alloc(k, (size_t)gsize * sizeof *outs);
		int64_t idx = prop_shard_index(k->mesh, k->rank, s->ax, s->n_axes);
		if (!outs)
			return k->rc;
		if (s->pad) { /* of a whole constant dim: this rank's padded block */
			int64_t size = v->dims[s->dim].c, b = prop_pad_block(size, s->pad, gsize);
			int64_t lo = idx * b < size ? idx * b : size,
			        hi = lo + b < size ? lo + b : size;
			memcpy(dims[s->dim].ax, s->ax, s->n_axes);
			dims[s->dim].n = s->n_axes;
			dims[s->dim].pad = s->pad;
			return emit_cut(k, nn, in, out, v, s->dim, lo, hi, b);
		}
		for (int64_t j = 0; j < gsize; j++)
			outs[j] = j == idx ? out : emit_str(k, "%s_part%lld", out, (long long)j);
		memcpy(&dims[s->dim].ax[dims[s->dim].n], s->ax, s->n_axes);
		dims[s->dim].n = (uint8_t)(dims[s->dim].n + s->n_axes);
		dims[s->dim].pieces = s->pieces;
		return emit_split(k, nn, in, outs, gsize, s->dim);
	}
	case PROP_TOPARTIAL: {
		int keep = prop_shard_index(k->mesh, k->rank, s->ax, s->n_axes) == 0;
		const char *cn = emit_str(k, "%s_mask", out);
		const char *ins[2] = {in, cn};
		if (!cn || scalar_const(k, cn, v, keep))
			return k->rc;
		/* now a share of a pending sum */
		return emit_node(k, "Mul", "", nn, ins, 2, &out, 1, NULL, 0);
	}
	}
	if (k->o->ort) {
		/* com.microsoft: groups are ORT worlds (emit_ort_axes); the plan
		 * was held to emit_ort_why before any rank was written */
		if (s->kind == PROP_ALLGATHER) /* ORT's AllReduce takes no attribute */
			at[na++] = attr_int(k, "group_size", gsize);
		return ort_coll(k, s->kind, op, nn, in, out, v, cur, at, na);
	}
	at[na++] = attr_ints(k, "group", grp, (size_t)gsize);
	at[na++] = attr_axes(k, s->ax, s->n_axes);
	if (emit_node(k, op, "onnxshard", nn, &in, 1, &out, 1, at, na) ||
	    push(k, &k->vinfo, value_info(k, out, v, cur)))
		return k->rc;
	k->st->collectives++;
	return 0;
}

/* A padded dim of `in` (value v, sharded cur) gathered whole at its padded
 * size by node nn, then cut to its size into `out`; cur follows. Returns a
 * status. */
static int
gather_padded(rank_ctx *k, const prop_step *s, const char *nn, const char *in, const char *out,
              const ir_value *v, prop_shard *cur)
{
	ir_value pv = *v;
	ir_dim pd[IR_MAX_RANK];
	size_t rank = (size_t)(v->rank > 0 ? v->rank : 0);
	int64_t size = v->dims[s->dim].c, nb = prop_axes_size(k->mesh, s->ax, s->n_axes);
	const char *full = emit_str(k, "%s/padded", out);

	memcpy(pd, v->dims, rank * sizeof *pd);
	pd[s->dim] = ir_const(prop_pad_block(size, s->pad, nb) * nb);
	pv.dims = pd;
	if (!full || !nn || one_step(k, s, nn, in, full, &pv, cur))
		return k->rc;
	cur->dims[s->dim].pad = 0;
	return emit_cut(k, emit_str(k, "%s/cut", nn), full, out, v, s->dim, 0, size, 0);
}

/* Reshard rs of a value: the plan's steps from its sharding as produced
 * to the one its reader needs, each a collective or a local op (a dim in
 * pieces: the step on each piece, then the pieces joined).
 * requires: the plan's steps for rs; *name the value's name on this rank
 * provides: *name the resharded value's name (the same on every rank;
 *   emitted once per reshard, shared by its readers)
 * Returns a status. */
static int
emit_reshard(rank_ctx *k, const prop_reshard *rs, const char **name)
{
	const ir_value *v = &k->g->values[rs->value];
	prop_shard cur = k->p->have[rs->value];
	prop_dim dims[IR_MAX_RANK], pdims[IR_MAX_RANK];
	size_t rank = (size_t)(v->rank > 0 ? v->rank : 0);

	if (k->rs_done[rs->id]) {
		*name = k->rs_done[rs->id];
		return 0;
	}
	memcpy(dims, cur.dims, rank * sizeof *dims);
	cur.dims = dims;
	for (uint32_t i = 0; i < rs->n; i++) {
		const prop_step *s = &k->p->steps[rs->first + i];
		const char *nn = emit_str(k, "onnxshard/rs%u/%u", rs->id, i);
		const char *out = emit_str(k, "%s/rs%u_%u", ir_cstr(k->g, v->name), rs->id, i);
		int64_t np = s->pieces > 1 ? s->pieces : 1;
		if (k->rc)
			return k->rc;
		if (np == 1 && s->kind == PROP_ALLGATHER && s->pad) {
			if (gather_padded(k, s, nn, *name, out, v, &cur))
				return k->rc;
			*name = out;
			continue;
		}
		if (np == 1) {
			if (one_step(k, s, nn, *name, out, v, &cur))
				return k->rc;
			*name = out;
			continue;
		}
		/* a dim in pieces: the step on each piece, then the pieces joined */
		const char **pin = emit_alloc(k, (size_t)np * sizeof *pin),
		           **pout = emit_alloc(k, (size_t)np * sizeof *pout);
		ir_value piece = *v;
		ir_dim *pd = emit_alloc(k, (rank ? rank : 1) * sizeof *pd);
		if (!pin || !pout || !pd)
			return k->rc;
		memcpy(pd, v->dims, rank * sizeof *pd);
		pd[s->dim] = ir_floordiv(k->g, v->dims[s->dim], ir_const(np));
		piece.dims = pd;
		for (int64_t q = 0; q < np; q++)
			pin[q] = emit_str(k, "%s_in%lld", out, (long long)q);
		if (emit_split(k, emit_str(k, "%s/in", nn), *name, pin, np, s->dim))
			return k->rc;
		prop_shard pc = cur;
		for (int64_t q = 0; q < np; q++) {
			pc = cur;
			pc.dims = pdims;
			memcpy(pdims, dims, rank * sizeof *pdims);
			pdims[s->dim].pieces = 0;
			pout[q] = emit_str(k, "%s_out%lld", out, (long long)q);
			const char *pn = emit_str(k, "%s/p%lld", nn, (long long)q);
			if (s->kind == PROP_ALLGATHER && s->pad
			            ? /* each piece cut */
			            gather_padded(k, s, pn, pin[q], pout[q], &piece, &pc)
			            : one_step(k, s, pn, pin[q], pout[q], &piece, &pc))
				return k->rc;
		}
		memcpy(dims, pdims, rank * sizeof *dims);
		dims[s->dim].pieces = dims[s->dim].n ? (uint16_t)np : 0;
		Onnx__AttributeProto *ca[1] = {attr_int(k, "axis", s->dim)};
		if (emit_node(k, "Concat", "", emit_str(k, "%s/out", nn), pout, (size_t)np, &out, 1,
		              ca, 1))
			return k->rc;
		*name = out;
	}
	k->rs_done[rs->id] = *name;
	return 0;
}

uint8_t
emit_ort_axes(const prop_plan *p)
{
	uint8_t axes = 0;
	int seen = 0;

	for (uint32_t i = 0; i < p->n_steps; i++) {
		const prop_step *s = &p->steps[i];
		uint8_t m = 0;
		if (s->kind != PROP_ALLREDUCE && s->kind != PROP_ALLGATHER &&
		    s->kind != PROP_REDUCESCATTER && s->kind != PROP_ALLTOALL)
			continue;
		for (uint8_t j = 0; j < s->n_axes; j++) {
			if (j && s->ax[j] < s->ax[j - 1])
				return 0xff; /* ORT gathers in world rank order */
			m |= (uint8_t)(1u << s->ax[j]);
		}
		if (seen && m != axes)
			return 0xff;
		axes = m;
		seen = 1;
	}
	return seen ? axes : (uint8_t)((1u << p->mesh->n_axes) - 1);
}

const char *
emit_ort_why(const ir_graph *g, const prop_plan *p, char *buf, size_t n)
{
	if (emit_ort_axes(p) == 0xff)
		return "--collectives ort: the plan has collectives over different mesh axes; ONNX "
		       "Runtime's span one world (one group of axes)";
	for (uint32_t i = 0; i < p->n_reshards; i++) {
		const prop_reshard *rs = &p->reshards[i];
		for (uint32_t j = rs->first; j < rs->first + rs->n; j++) {
			int kind = p->steps[j].kind;
			if (kind <= PROP_ALLTOALL &&
			    ort_wire_dtype(kind == PROP_REDUCESCATTER ? PROP_ALLREDUCE : kind,
			                   g->values[rs->value].dtype) < 0) {
				snprintf(
				        buf, n,
				        "--collectives ort: the plan moves a %s tensor, which ONNX "
				        "Runtime's com.microsoft collectives do not take",
				        onnx_dtype_name(g->values[rs->value].dtype));
				return buf;
			}
		}
	}
	return NULL;
}

/* ---- the rank model ---- */

/* A lookup's row counts, rows held here in c[1], the first in c[0], the
 * table's in c[3] (c[2] is 0), scalars of the ids' dtype: constants where
 * the table's rows are, else read at run time from the local table
 * (Shape, times this rank's shard index and the blocks), as every shape
 * value is. Returns a status. */
static int
lookup_rows(rank_ctx *k, uint32_t i, const char *table, const char **c)
{
	ir_graph *g = k->g;
	const ir_node *n = &g->nodes[i];
	const prop_dim *ax = &k->p->lookup[i];
	const ir_value *tab = &g->values[ir_in(g, n, 0)];
	int32_t it = g->values[ir_in(g, n, 1)].dtype;
	size_t es = onnx_dtype_size(it);
	int64_t blocks = prop_axes_size(k->mesh, ax->ax, ax->n),
	        index = prop_shard_index(k->mesh, k->rank, ax->ax, ax->n);
	int sym = !ir_is_const(tab->dims[0]);
	/* padded rows (ax->pad): the ids, < the table's rows, never reach them */
	int64_t local = sym       ? 0
	                : ax->pad ? prop_pad_block(tab->dims[0].c, ax->pad, blocks)
	                          : tab->dims[0].c / blocks;
	int64_t vals[4] = {index * local, local, 0, ax->pad ? tab->dims[0].c : local * blocks};

	for (int j = 0; j < 4; j++) {
		int32_t v32 = (int32_t)vals[j];
		if (!(c[j] = emit_str(k, "onnxshard/lookup%u/c%d", i, j)))
			return k->rc;
		if ((!sym || j == 2) &&
		    emit_tensor_inline(k, c[j], it, NULL, 0,
		                       es == 4 ? (void *)&v32 : (void *)&vals[j], es))
			return k->rc;
	}
	if (!sym)
		return 0;
	/* rows here = Shape(table)[0]; first = rows * index; all = rows * blocks */
	const int32_t i64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	const char *r[7];
	int64_t kv[3] = {0, index, blocks};
	for (int j = 0; j < 7; j++)
		r[j] = emit_str(k, "onnxshard/lookup%u/r%d", i, j);
	for (int j = 0; j < 3 && !k->rc; j++)
		emit_tensor_inline(k, r[j], i64, NULL, 0, &kv[j], 8);
	if (k->rc)
		return k->rc;
	const char *a0[2] = {r[3], r[0]}, *a1[2] = {r[4], r[1]}, *a2[2] = {r[4], r[2]};
	const char *res[3] = {r[5], r[4], r[6]}; /* first, here, all (int64) */
	if (emit_node(k, "Shape", "", r[3], &table, 1, &r[3], 1, NULL, 0) ||
	    emit_node(k, "Gather", "", r[4], a0, 2, &r[4], 1, NULL, 0) ||
	    emit_node(k, "Mul", "", r[5], a1, 2, &r[5], 1, NULL, 0) ||
	    emit_node(k, "Mul", "", r[6], a2, 2, &r[6], 1, NULL, 0))
		return k->rc;
	for (int j = 0; j < 3; j++) {
		int ci = j == 2 ? 3 : j;
		if (it == i64) {
			c[ci] = res[j];
			continue;
		}
		Onnx__AttributeProto *at[1] = {attr_int(k, "to", it)};
		if (emit_node(k, "Cast", "", c[ci], &res[j], 1, &c[ci], 1, at, 1))
			return k->rc;
	}
	return 0;
}

/* A Gather whose table is split along its rows on this rank: look up the
 * rows this rank holds, zeros for the others (the result is a pending sum).
 * Returns a status. */
static int
emit_lookup(rank_ctx *k, uint32_t i, char **ins, char **outs)
{
	ir_graph *g = k->g;
	const ir_value *tab = &g->values[ir_in(g, &g->nodes[i], 0)];
	const char *c[4], *t[12];
	uint8_t zero[16] = {0};

	if (lookup_rows(k, i, ins[0], c))
		return k->rc;
	for (int j = 0; j < 12; j++)
		t[j] = emit_str(k, "onnxshard/lookup%u/t%d", i, j);
	const char *zf = emit_str(k, "onnxshard/lookup%u/zero", i);
	if (k->rc ||
	    emit_tensor_inline(k, zf, tab->dtype, NULL, 0, zero, onnx_dtype_size(tab->dtype)))
		return k->rc;
	const char *idx = ins[1];
	/* negative indices count from the end of the whole table */
	const char *a0[2] = {idx, c[2]}, *a1[2] = {idx, c[3]}, *a2[3] = {t[0], t[1], idx};
	emit_node(k, "Less", "", t[0], a0, 2, &t[0], 1, NULL, 0);
	emit_node(k, "Add", "", t[1], a1, 2, &t[1], 1, NULL, 0);
	emit_node(k, "Where", "", t[2], a2, 3, &t[2], 1, NULL, 0);
	/* local row, and whether this rank holds it */
	const char *a3[2] = {t[2], c[0]}, *a4[2] = {t[3], c[2]}, *a5[2] = {t[3], c[1]};
	emit_node(k, "Sub", "", t[3], a3, 2, &t[3], 1, NULL, 0);
	emit_node(k, "Less", "", t[4], a4, 2, &t[4], 1, NULL, 0);
	emit_node(k, "Not", "", t[5], &t[4], 1, &t[5], 1, NULL, 0);
	emit_node(k, "Less", "", t[6], a5, 2, &t[6], 1, NULL, 0);
	const char *a6[2] = {t[5], t[6]}, *a7[3] = {t[7], t[3], c[2]};
	emit_node(k, "And", "", t[7], a6, 2, &t[7], 1, NULL, 0);
	emit_node(k, "Where", "", t[8], a7, 3, &t[8], 1, NULL, 0);
	const char *a8[2] = {ins[0], t[8]};
	emit_node(k, "Gather", "", t[9], a8, 2, &t[9], 1, NULL, 0);
	/* zero the rows looked up elsewhere */
	int64_t axes[1] = {-1};
	if (k->g->opset >= 13) {
		const char *ca = emit_str(k, "onnxshard/lookup%u/axes", i);
		int64_t one[1] = {1};
		if (k->rc || emit_tensor_inline(k, ca, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, one, 1,
		                                axes, 8))
			return k->rc;
		const char *a9[2] = {t[7], ca};
		emit_node(k, "Unsqueeze", "", t[10], a9, 2, &t[10], 1, NULL, 0);
	} else {
		Onnx__AttributeProto *at[1] = {attr_ints(k, "axes", axes, 1)};
		emit_node(k, "Unsqueeze", "", t[10], &t[7], 1, &t[10], 1, at, 1);
	}
	const char *a10[3] = {t[10], t[9], zf};
	/* each emit_node above returned k->rc once it was set: the last says */
	return emit_node(k, "Where", "", emit_str(k, "onnxshard/lookup%u", i), a10, 3,
	                 (const char **)outs, 1, NULL, 0);
}

static const prop_reshard *
find_reshard(const prop_plan *p, uint32_t node, uint32_t k)
{
	for (uint32_t i = 0; i < p->n_reshards; i++)
		if (p->reshards[i].node == node && p->reshards[i].operand == k)
			return &p->reshards[i];
	return NULL;
}

/* Operand j of node i as this rank reads it: its name here, resharded as
 * the plan says, then made local where it holds sizes (shapes.c); into
 * *name. Returns a status. */
static int
operand(rank_ctx *k, uint32_t i, uint32_t j, const char **name)
{
	const ir_node *n = &k->g->nodes[i];
	uint32_t v = ir_in(k->g, n, j);
	const prop_reshard *rs;

	if (v == IR_NONE) {
		*name = n->proto->input[j];
		return 0;
	}
	*name = k->name_of[v];
	if ((rs = find_reshard(k->p, i, j)) && emit_reshard(k, rs, name))
		return k->rc;
	return emit_local_sizes(k, i, j, name);
}

/* Node i on this rank: a copy of its source node reading its operands as
 * operand() makes them, or the masked lookup of a row-split Gather; a
 * Shape or Size of a split tensor scaled back to global sizes. */
static int
emit_one(rank_ctx *k, uint32_t i)
{
	ir_graph *g = k->g;
	const ir_node *n = &g->nodes[i];
	Onnx__NodeProto *copy = emit_alloc(k, sizeof *copy);
	char **ins = emit_alloc(k, (n->n_in + 1) * sizeof *ins);
	char **outs = emit_alloc(k, (n->n_out + 1) * sizeof *outs);

	if (!copy || !ins || !outs)
		return k->rc;
	for (uint32_t j = 0; j < n->n_in; j++) {
		const char *name;
		if (operand(k, i, j, &name))
			return k->rc;
		ins[j] = (char *)name;
	}
	for (uint32_t j = 0; j < n->n_out; j++) {
		uint32_t v = ir_out(g, n, j);
		outs[j] = v == IR_NONE ? n->proto->output[j] : (char *)k->name_of[v];
	}
	if (k->p->lookup && k->p->lookup[i].n)
		return emit_lookup(k, i, ins, outs);
	/* Shape and Size hold global sizes, whatever the split they read */
	const char *global = outs[0], *local = global;
	if ((n->op == OP_Shape || n->op == OP_Size) && global && !find_reshard(k->p, i, 0) &&
	    emit_shape_read(k, i, global, &local))
		return k->rc;
	outs[0] = (char *)local;
	*copy = *n->proto;
	copy->input = ins;
	copy->output = outs;
	if (emit_local_attrs(k, i, copy) || emit_captures(k, i, copy, ins) ||
	    push(k, &k->nodes, copy))
		return k->rc;
	if (n->n_out && global != local)
		return emit_shape_scale(k, i, local, global);
	return 0;
}

/* The rank graph's nodes, in the source's order.
 * requires: the initializers emitted (names of values in k->name_of)
 * provides: k->nodes: every source node as this rank runs it (emit_one),
 *   the reshards before the operands that need them (each emitted once),
 *   and the graph outputs that need one: their final step, then an
 *   Identity to the output's own name
 * Returns a status: k->rc (out of memory, a --collectives ort refusal, a
 * value that cannot be masked, ...). */
static int
emit_nodes(rank_ctx *k)
{
	ir_graph *g = k->g;

	for (uint32_t i = 0; i < g->n_nodes; i++)
		if (emit_one(k, i))
			return k->rc;
	/* graph outputs that need a reshard: the final step takes the name */
	for (uint32_t j = 0; j < g->n_outputs; j++) {
		uint32_t v = g->outputs[j];
		const prop_reshard *rs = find_reshard(k->p, IR_NONE, j);
		const char *name = k->name_of[v];
		if (!rs)
			continue;
		if (emit_reshard(k, rs, &name))
			return k->rc;
		const char *in[1] = {name};
		const char *out[1] = {ir_cstr(g, g->values[v].name)};
		if (emit_node(k, "Identity", "", emit_str(k, "onnxshard/out%u", j), in, 1, out, 1,
		              NULL, 0))
			return k->rc;
	}
	return 0;
}

int
emit_rank(ir_graph *g, const prop_plan *p, int64_t r, const char *dir, const emit_opts *o,
          emit_rank_stats *st)
{
	shd_ctx *c = g->ctx;
	const Onnx__ModelProto *src = g->model->proto;
	rank_ctx k = {0};
	int rc = 0;

	memset(st, 0, sizeof *st);
	k.g = g;
	k.p = p;
	k.mesh = p->mesh;
	k.rank = r;
	k.o = o;
	k.c = c;
	k.st = st;
	k.name_of = emit_alloc(&k, (g->n_values + 1) * sizeof *k.name_of);
	k.rs_done = emit_alloc(&k, (p->n_reshards + 1) * sizeof *k.rs_done);
	if (!(k.buf = shd_alloc(c, IO_CHUNK)))
		emit_nomem(&k);
	char *path = emit_str(&k, "%s/rank%lld.onnx", dir, (long long)r);
	char *dpath = path ? emit_str(&k, "%s.data", path) : NULL;
	char *loc = emit_str(&k, "rank%lld.onnx.data", (long long)r);
	if ((rc = k.rc))
		goto out;
	for (uint32_t v = 0; v < g->n_values; v++)
		k.name_of[v] = ir_cstr(g, g->values[v].name);
	for (uint32_t j = 0; j < g->n_outputs; j++)
		if (find_reshard(p, IR_NONE, j))
			k.name_of[g->outputs[j]] =
			        emit_str(&k, "%s/onnxshard_local",
			                 ir_cstr(g, g->values[g->outputs[j]].name));
	k.loc = loc;
	if ((rc = k.rc) || (rc = emit_status(&k, onnx_datafile_open(c, &k.df, dpath, loc))))
		goto out;
	for (uint32_t v = 0; v < g->n_values && !rc; v++)
		if (g->values[v].kind == IR_V_INIT)
			rc = emit_init(&k, v);
	if (rc || (rc = emit_nodes(&k)))
		goto out;
	/* graph inputs and outputs with local shapes */
	Onnx__ValueInfoProto **gin = emit_alloc(&k, (g->n_inputs + k.inits.n + 1) * sizeof *gin);
	Onnx__ValueInfoProto **gout = emit_alloc(&k, (g->n_outputs + 1) * sizeof *gout);
	if ((rc = k.rc))
		goto out;
	for (uint32_t j = 0; j < g->n_inputs; j++)
		gin[j] = value_info(&k, ir_cstr(g, g->values[g->inputs[j]].name),
		                    &g->values[g->inputs[j]], &p->have[g->inputs[j]]);
	for (uint32_t j = 0; j < g->n_outputs; j++) {
		uint32_t v = g->outputs[j];
		prop_dim fd[IR_MAX_RANK];
		prop_shard final = {0, fd, 0};
		prop_output_shard(g, p, j, &final); /* lifting refused ranks above IR_MAX_RANK */
		gout[j] = value_info(&k, ir_cstr(g, g->values[v].name), &g->values[v], &final);
	}
	Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
	graph.name = src->graph->name;
	graph.n_node = k.nodes.n;
	graph.node = k.nodes.data;
	graph.n_initializer = k.inits.n;
	graph.initializer = k.inits.data;
	graph.n_input = g->n_inputs;
	graph.input = gin;
	/* before IR version 4, every initializer is also a graph input */
	for (size_t j = 0; src->ir_version < 4 && j < k.inits.n; j++) {
		const Onnx__TensorProto *t = ((Onnx__TensorProto **)k.inits.data)[j];
		gin[graph.n_input++] = init_info(&k, t);
	}
	graph.n_output = g->n_outputs;
	graph.output = gout;
	graph.n_value_info = k.vinfo.n;
	graph.value_info = k.vinfo.data;
	Onnx__OperatorSetIdProto dom = ONNX__OPERATOR_SET_ID_PROTO__INIT;
	Onnx__OperatorSetIdProto **ops = emit_alloc(&k, (src->n_opset_import + 2) * sizeof *ops);
	/* a value_info above that could not be built: k.rc */
	if ((rc = k.rc))
		goto out;
	memcpy(ops, src->opset_import, src->n_opset_import * sizeof *ops);
	size_t n_ops = src->n_opset_import;
	dom.domain = o->ort ? "com.microsoft" : "onnxshard";
	dom.has_version = 1;
	dom.version = 1;
	if (st->collectives)
		ops[n_ops++] = &dom;
	Onnx__ModelProto model = *src;
	model.producer_name = "onnxshard";
	model.producer_version = ONNXSHARD_VERSION;
	model.graph = &graph;
	model.n_opset_import = n_ops;
	model.opset_import = ops;
	model.n_functions = src->n_functions;
	uint64_t data_bytes = k.df.off;
	if ((rc = onnx_datafile_close(c, &k.df)))
		goto out;
	st->data_bytes = data_bytes;
	if (data_bytes == 0)
		remove(dpath);
	/* the files' checksums for the manifest, read back here (in the
	 * writer that wrote them) */
	uint64_t db;
	if (!(rc = onnx_write_message(c, &model.base, path)) &&
	    !(rc = onnx_crc32_file(c, path, &st->model_crc, &st->model_bytes)) && data_bytes)
		rc = onnx_crc32_file(c, dpath, &st->data_crc, &db);
out:
	if (k.df.f)
		onnx_datafile_close(c, &k.df);
	shd_vec_free(c, &k.nodes, sizeof(void *));
	shd_vec_free(c, &k.inits, sizeof(void *));
	shd_vec_free(c, &k.vinfo, sizeof(void *));
	shd_free(c, k.buf, IO_CHUNK);
	shd_arena_free(c, &k.a);
	return rc;
}
