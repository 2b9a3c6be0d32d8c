/* Helpers shared by the cmocka tests: temp dirs, files, small models. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "onnx/onnxio.h"

/* A fresh directory under $TMPDIR, removed by tu_rmtree. */
char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
char *tu_path(const char *dir, const char *name); /* malloc'd dir/name */
void tu_write(const char *path, const void *p, size_t n);
uint8_t *tu_read(const char *path, size_t *n);     /* malloc'd */
/* Pack a message to a malloc'd buffer. */
uint8_t *tu_pack(const ProtobufCMessage *m, size_t *n);

/* A small model: input x [2,4] float -> MatMul with initializer w [4,4]
 * -> y. w's tensor is exposed so a test can break it before packing. */
typedef struct {
	Onnx__ModelProto model;
	Onnx__GraphProto graph;
	Onnx__NodeProto node;
	Onnx__TensorProto w;
	Onnx__TensorProto *inits[1];
	Onnx__NodeProto *nodes[1];
	Onnx__OperatorSetIdProto opset;
	Onnx__OperatorSetIdProto *opsets[1];
	char *node_in[2], *node_out[1];
	int64_t dims[2];
	float data[16];
	Onnx__StringStringEntryProto ext[3];
	Onnx__StringStringEntryProto *extp[3];
} tu_model;

void tu_model_init(tu_model *t);
/* Point w at external data: location, offset, length (NULL: leave out). */
void tu_model_external(tu_model *t, const char *loc, const char *off, const char *len);

#endif
