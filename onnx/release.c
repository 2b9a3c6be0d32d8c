/* Dropping mapped external data from memory once it has been streamed, so
 * that writing N ranks of a large model keeps about one tensor resident. */
#define _DEFAULT_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "onnxio.h"

void
onnx_tensor_release(const onnx_model *m, const Onnx__TensorProto *t)
{
	uint64_t len;
	const uint8_t *p;

	if (!t->has_data_location ||
	    t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL ||
	    !(p = onnx_tensor_raw(m, t, &len)) || len == 0)
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)p & ~(page - 1),
	          end = ((uintptr_t)p + len + page - 1) & ~(page - 1);
	/* read-only private mapping of a file: the pages come back from the
	 * page cache when read again */
	madvise((void *)start, end - start, MADV_DONTNEED);
}
