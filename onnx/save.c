/* Saving: protobuf packed straight to a file, large initializers streamed to
 * an external data file at 64 KiB-aligned offsets; crc32 of a file. */
#define _GNU_SOURCE /* copy_file_range */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "onnxio.h"

#define IO_CHUNK ((size_t)1 << 20)

typedef struct {
	ProtobufCBuffer base;
	FILE *f;
	int failed;
} file_buffer;

static void
file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	file_buffer *fb = (file_buffer *)b;

	if (len && !fb->failed && fwrite(data, 1, len, fb->f) != len)
		fb->failed = 1;
}

static int
io_error(shd_ctx *c, const char *path)
{
	return shd_error(c, ONNXSHARD_EFAIL, "%s: write failed: %s", path,
	                 errno ? strerror(errno) : "I/O error");
}

int
onnx_write_message(shd_ctx *c, const ProtobufCMessage *msg, const char *path)
{
	file_buffer fb = {{file_append}, NULL, 0};
	char *iobuf;

	errno = 0;
	if (!(fb.f = fopen(path, "wb")))
		return shd_error(c, ONNXSHARD_EFAIL, "%s: cannot create: %s", path,
		                 strerror(errno));
	iobuf = shd_alloc(c, 1 << 16);
	if (iobuf)
		setvbuf(fb.f, iobuf, _IOFBF, 1 << 16);
	protobuf_c_message_pack_to_buffer(msg, &fb.base);
	if (fflush(fb.f) != 0)
		fb.failed = 1;
	if (fclose(fb.f) != 0)
		fb.failed = 1;
	shd_free(c, iobuf, 1 << 16);
	return fb.failed ? io_error(c, path) : 0;
}

int
onnx_datafile_open(shd_ctx *c, onnx_datafile *d, const char *path, const char *location)
{
	memset(d, 0, sizeof *d);
	d->path = shd_strdup(c, path);
	d->location = shd_strdup(c, location);
	if (!d->path || !d->location) {
		onnx_datafile_close(c, d);
		return shd_nomem(c);
	}
	errno = 0;
	if (!(d->f = fopen(path, "wb"))) {
		int rc = shd_error(c, ONNXSHARD_EFAIL, "%s: cannot create: %s", path,
		                   strerror(errno));
		onnx_datafile_close(c, d);
		return rc;
	}
	/* small runs (a column block's rows) gathered into large writes */
	if ((d->iobuf = shd_alloc(c, ONNX_DATAFILE_BUF)))
		setvbuf(d->f, d->iobuf, _IOFBF, ONNX_DATAFILE_BUF);
	return 0;
}

int
onnx_datafile_align(shd_ctx *c, onnx_datafile *d, uint64_t *off)
{
	static const uint8_t zeros[4096];
	uint64_t pad = (ONNX_EXT_ALIGN - d->off % ONNX_EXT_ALIGN) % ONNX_EXT_ALIGN;
	int rc;

	while (pad) {
		size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
		if ((rc = onnx_datafile_write(c, d, zeros, n)))
			return rc;
		pad -= n;
	}
	*off = d->off;
	return 0;
}

int
onnx_datafile_write(shd_ctx *c, onnx_datafile *d, const void *p, size_t n)
{
	errno = 0;
	if (n && fwrite(p, 1, n, d->f) != n)
		return io_error(c, d->path);
	d->off += n;
	return 0;
}

int
onnx_datafile_copy(shd_ctx *c, onnx_datafile *d, int src, uint64_t src_off, uint64_t n, int *kernel)
{
	loff_t in = (loff_t)src_off;
	uint64_t done = 0;

	errno = 0;
	if (fflush(d->f) != 0)
		return io_error(c, d->path);
	while (done < n) {
		ssize_t k = copy_file_range(src, &in, fileno(d->f), NULL, (size_t)(n - done), 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (done == 0 && (k == 0 || errno == EXDEV || errno == ENOSYS ||
			                  errno == EINVAL || errno == EOPNOTSUPP || errno == EBADF))
				return *kernel = 0, 0; /* not here: the caller writes them */
			return io_error(c, d->path);
		}
		done += (uint64_t)k;
	}
	d->off += n;
	return 0;
}

int
onnx_datafile_close(shd_ctx *c, onnx_datafile *d)
{
	int rc = 0;

	errno = 0;
	if (d->f && fclose(d->f) != 0)
		rc = io_error(c, d->path);
	shd_free(c, d->iobuf, ONNX_DATAFILE_BUF);
	shd_strfree(c, d->path);
	shd_strfree(c, d->location);
	memset(d, 0, sizeof *d);
	return rc;
}

/* What a tensor held before it was pointed at the data file. */
typedef struct {
	Onnx__TensorProto *t;
	Onnx__TensorProto saved;
	Onnx__StringStringEntryProto entries[3];
	Onnx__StringStringEntryProto *ptrs[3];
	char offset[24], length[24];
} moved_tensor;

static int
move_tensor(onnx_model *m, onnx_datafile *d, const char *loc, moved_tensor *mv, uint8_t *buf)
{
	shd_ctx *c = m->ctx;
	Onnx__TensorProto *t = mv->t;
	uint64_t len = onnx_tensor_bytes(t), off;
	int rc;

	if ((rc = onnx_datafile_align(c, d, &off)))
		return rc;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < IO_CHUNK ? (size_t)(len - done) : IO_CHUNK;
		if ((rc = onnx_tensor_read(m, t, done, n, buf)) ||
		    (rc = onnx_datafile_write(c, d, buf, n)))
			return rc;
		done += n;
	}
	mv->saved = *t;
	snprintf(mv->offset, sizeof mv->offset, "%llu", (unsigned long long)off);
	snprintf(mv->length, sizeof mv->length, "%llu", (unsigned long long)len);
	const char *keys[3] = {"location", "offset", "length"};
	const char *vals[3] = {loc, mv->offset, mv->length};
	for (int i = 0; i < 3; i++) {
		Onnx__StringStringEntryProto e = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
		e.key = (char *)keys[i];
		e.value = (char *)vals[i];
		mv->entries[i] = e;
		mv->ptrs[i] = &mv->entries[i];
	}
	t->has_raw_data = 0;
	t->raw_data = (ProtobufCBinaryData){0, NULL};
	t->n_float_data = t->n_int32_data = t->n_int64_data = 0;
	t->n_double_data = t->n_uint64_data = 0;
	t->n_external_data = 3;
	t->external_data = mv->ptrs;
	t->has_data_location = 1;
	t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	return 0;
}

static char *
data_path(shd_ctx *c, const char *path)
{
	size_t n = strlen(path) + 6;
	char *s = shd_alloc(c, n);

	if (s)
		snprintf(s, n, "%s.data", path);
	return s;
}

int
onnx_save(onnx_model *m, const char *path, uint64_t threshold)
{
	shd_ctx *c = m->ctx;
	Onnx__GraphProto *g = m->proto->graph;
	moved_tensor *mv = NULL;
	size_t nmv = 0;
	uint8_t *buf = NULL;
	char *dpath = NULL, *loc = NULL;
	onnx_datafile d = {0};
	int rc = 0;

	if (threshold) {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (!(mv = shd_calloc(c, g->n_initializer ? g->n_initializer : 1, sizeof *mv)) ||
		    !(buf = shd_alloc(c, IO_CHUNK)) || !(dpath = data_path(c, path))) {
			rc = shd_nomem(c);
			goto out;
		}
		if (!(loc = data_path(c, base))) {
			rc = shd_nomem(c);
			goto out;
		}
		if ((rc = onnx_datafile_open(c, &d, dpath, loc)))
			goto out;
		for (size_t i = 0; i < g->n_initializer && !rc; i++) {
			Onnx__TensorProto *t = g->initializer[i];
			uint64_t bytes = onnx_tensor_bytes(t);
			if (bytes == 0 || bytes < threshold)
				continue;
			mv[nmv].t = t;
			if (!(rc = move_tensor(m, &d, loc, &mv[nmv], buf)))
				nmv++;
		}
		int crc = onnx_datafile_close(c, &d);
		if (!rc)
			rc = crc;
		if (!rc && nmv == 0)
			remove(dpath);
	}
	if (!rc)
		rc = onnx_write_message(c, &m->proto->base, path);
out:
	while (nmv--)
		*mv[nmv].t = mv[nmv].saved;
	if (d.f)
		onnx_datafile_close(c, &d);
	shd_free(c, mv, (g->n_initializer ? g->n_initializer : 1) * sizeof *mv);
	shd_free(c, buf, IO_CHUNK);
	shd_strfree(c, dpath);
	shd_strfree(c, loc);
	return rc;
}

int
onnx_crc32_file(shd_ctx *c, const char *path, uint32_t *crc, uint64_t *bytes)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	uLong v = crc32(0L, Z_NULL, 0);
	size_t n;

	*bytes = 0;
	if (!f)
		return shd_error(c, ONNXSHARD_EINPUT, "%s: %s", path, strerror(errno));
	if (!(buf = shd_alloc(c, 1 << 16))) {
		fclose(f);
		return shd_nomem(c);
	}
	while ((n = fread(buf, 1, 1 << 16, f)) > 0) {
		v = crc32(v, buf, (uInt)n);
		*bytes += n;
	}
	int bad = ferror(f);
	fclose(f);
	shd_free(c, buf, 1 << 16);
	if (bad)
		return shd_error(c, ONNXSHARD_EINPUT, "%s: read error", path);
	*crc = (uint32_t)v;
	return 0;
}
