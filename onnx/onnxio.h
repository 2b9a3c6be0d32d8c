/* onnx/: load and save ONNX models (protobuf-c over the system onnx.proto),
 * external data by mmap with path safety, tensor access, crc32. */
#ifndef ONNXIO_H
#define ONNXIO_H

#include "core/shd.h"
#include "onnx/onnx.pb-c.h"

#define ONNX_EXT_ALIGN       65536u /* offsets in written .data files */
#define ONNX_EXT_THRESHOLD   1024u  /* tensors this big or bigger go external */
#define ONNX_MAX_GRAPH_DEPTH 64     /* subgraph nesting accepted on load */

typedef struct {
	char *location;     /* relative path, as written in the model */
	const uint8_t *map; /* whole file, read-only; NULL when size is 0 */
	size_t size;
	int fd; /* the file, open read-only (copies in the kernel), or -1 */
} onnx_extfile;

typedef struct onnx_model {
	shd_ctx *ctx;
	Onnx__ModelProto *proto; /* unpacked; owns embedded tensor bytes */
	char *path;              /* as given */
	char *dir;               /* the model's folder (external data root) */
	uint64_t file_bytes;     /* size of the file on disk */
	onnx_extfile *ext;       /* external data files, each mapped once */
	size_t n_ext;
	ProtobufCAllocator pba; /* protobuf-c's view of the context allocator */
} onnx_model;

/* Load path (.onnx or gzip), check every tensor, map external data.
 * Bad input: ONNXSHARD_EINPUT with "PATH: what is wrong". */
int onnx_load(shd_ctx *c, const char *path, onnx_model **out);
/* Where external tensor t's bytes live: 0 with the file's descriptor and
 * the tensor's offset in it, or 1 when t is not external. */
int onnx_tensor_fd(const onnx_model *m, const Onnx__TensorProto *t, int *fd, uint64_t *base);
/* The same for a command that reads no weight (plan, analyze, inspect):
 * external data does not count against the size limit. */
int onnx_load_weightless(shd_ctx *c, const char *path, onnx_model **out);
/* Parse an in-memory model whose external data (if any) lives in dir. */
int onnx_load_buffer(shd_ctx *c, const uint8_t *buf, size_t len, const char *name, const char *dir,
                     onnx_model **out);
void onnx_model_free(onnx_model *m);

/* Data types. The system onnx.proto may predate ONNX 1.14's float8 and
 * 1.16's 4-bit integers: their TensorProto.DataType codes. */
enum {
	ONNX_DT_FLOAT8E4M3FN = 17,
	ONNX_DT_FLOAT8E4M3FNUZ = 18,
	ONNX_DT_FLOAT8E5M2 = 19,
	ONNX_DT_FLOAT8E5M2FNUZ = 20,
	ONNX_DT_UINT4 = 21, /* two elements a byte, the first in the low nibble */
	ONNX_DT_INT4 = 22,
};
const char *onnx_dtype_name(int32_t dt); /* "float32", ...; NULL if unknown */
/* Bytes per element; 0 if unknown, string or 4-bit (no whole byte). */
size_t onnx_dtype_size(int32_t dt);
/* Bits per element: 4 (int4, uint4), else 8 * onnx_dtype_size. */
unsigned onnx_dtype_bits(int32_t dt);
/* Bytes n elements of dt take, packed (4-bit: ceil(n / 2)); 0 if unsized. */
uint64_t onnx_dtype_bytes(int32_t dt, uint64_t n);
int onnx_dtype_from_name(const char *name); /* -1 if unknown */

/* Element count of a tensor (dims checked on load). */
uint64_t onnx_tensor_numel(const Onnx__TensorProto *t);
/* Bytes of the tensor's raw layout (onnx_dtype_bytes of its elements). */
uint64_t onnx_tensor_bytes(const Onnx__TensorProto *t);
/* The tensor's bytes in raw little-endian layout when stored raw (raw_data
 * or external data); NULL when stored in a typed field. */
const uint8_t *onnx_tensor_raw(const onnx_model *m, const Onnx__TensorProto *t, uint64_t *len);
/* Copy bytes [off, off+n) of the tensor's raw layout to dst, converting
 * typed fields. Checked on load, so only out-of-range requests fail. */
int onnx_tensor_read(const onnx_model *m, const Onnx__TensorProto *t, uint64_t off, uint64_t n,
                     void *dst);
/* Drop the tensor's mapped external data from memory (it stays readable). */
void onnx_tensor_release(const onnx_model *m, const Onnx__TensorProto *t);
/* Read the tensor as int64 values (int64/int32/... integer dtypes). */
int onnx_tensor_ints(const onnx_model *m, const Onnx__TensorProto *t, int64_t *dst, uint64_t n);

/* An external data file being written: appends at 64 KiB-aligned offsets. */
typedef struct {
	FILE *f;
	char *path;
	char *location; /* relative name written into tensors */
	uint64_t off;   /* bytes written so far */
	char *iobuf;    /* f's buffer (ONNX_DATAFILE_BUF bytes): small writes gathered */
} onnx_datafile;

#define ONNX_DATAFILE_BUF ((size_t)1 << 20)

int onnx_datafile_open(shd_ctx *c, onnx_datafile *d, const char *path, const char *location);
/* Pad to the next aligned offset and return it. */
int onnx_datafile_align(shd_ctx *c, onnx_datafile *d, uint64_t *off);
int onnx_datafile_write(shd_ctx *c, onnx_datafile *d, const void *p, size_t n);
/* Append n bytes of file src from offset src_off, copied in the kernel
 * (copy_file_range): 0, or an I/O error (diagnostic set). When the kernel
 * cannot (this file system, these files), 0 with *kernel cleared and
 * nothing written: write them another way. */
int onnx_datafile_copy(shd_ctx *c, onnx_datafile *d, int src, uint64_t src_off, uint64_t n,
                       int *kernel);
int onnx_datafile_close(shd_ctx *c, onnx_datafile *d);

/* Write any protobuf message to path, streamed. */
int onnx_write_message(shd_ctx *c, const ProtobufCMessage *msg, const char *path);
/* Save m's model to path; main-graph initializers of at least threshold
 * bytes go to PATH.data (threshold 0: everything inline). */
int onnx_save(onnx_model *m, const char *path, uint64_t threshold);

/* crc32 (zlib) of a file, streamed; also its size. */
int onnx_crc32_file(shd_ctx *c, const char *path, uint32_t *crc, uint64_t *bytes);

#endif
