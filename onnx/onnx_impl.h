/* Internal to onnx/: what load.c uses from prescan.c. */
#ifndef ONNX_IMPL_H
#define ONNX_IMPL_H

#include "onnxio.h"

/* Before unpacking buf (m's protobuf bytes): 0, or ONNXSHARD_EINPUT naming
 * m->path when subgraphs (or any followed messages) nest too deep or the wire
 * format is broken (what protobuf-c would refuse too). */
int onnx_check_nesting(onnx_model *m, const uint8_t *buf, size_t len);

#endif
