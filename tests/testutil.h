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
uint8_t *tu_read(const char *path, size_t *n); /* malloc'd */
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

/* Models built in code (for the IR tests). Shapes are strings of dims
 * separated by commas: an integer, a symbol, or "?" for an unknown dim;
 * "" is a scalar, NULL no shape. Operand lists are names separated by
 * commas, an empty name an absent operand ("x,,z"). Every field is
 * malloc'd: tu_mb_free releases the lot. */
Onnx__ModelProto *tu_mb_new(int64_t opset); /* opset <= 0: no default domain */
void tu_mb_opset(Onnx__ModelProto *m, const char *domain, int64_t version);
void tu_mb_input(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape);
void tu_mb_output(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape);
void tu_mb_value_info(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape);
/* An initializer of constant dims: int64 values from vals (NULL: zeros), any
 * other dtype zero bytes. */
void tu_mb_init(Onnx__ModelProto *m, const char *name, int32_t dtype, const char *shape,
                const int64_t *vals);
Onnx__NodeProto *tu_mb_node(Onnx__ModelProto *m, const char *name, const char *op, const char *ins,
                            const char *outs);
void tu_mb_domain(Onnx__NodeProto *n, const char *domain);
void tu_mb_attr_int(Onnx__NodeProto *n, const char *name, int64_t v);
void tu_mb_attr_str(Onnx__NodeProto *n, const char *name, const char *v);
/* Pack and load with onnx_load_buffer as "t.onnx"; the loader's status. */
int tu_mb_load(shd_ctx *c, Onnx__ModelProto *m, onnx_model **out);
void tu_mb_free(Onnx__ModelProto *m);

#endif
