#!/usr/bin/python3
"""A small model of sub-byte and float8 weights for tests/e2e/subbyte.sh.

    /usr/bin/python3 tests/e2e/make_subbyte.py OUTDIR

Writes OUTDIR/subbyte.onnx (opset 21, IR 10): x [batch, 8] through five
MatMuls, each weight a DequantizeLinear of an initializer, as quantizers
write them:
  w1  int4 [8, 6], per tensor; megatron's column split would leave 3
      values (1.5 bytes) a row per rank: it must stay whole;
  w2  int4 [6, 3] (odd innermost dim: no split keeps bytes whole), stored
      in int32_data (one packed byte an entry, ONNX's rule for 4-bit);
  w3  uint4 [3, 5] (15 values, 8 bytes: the last high nibble padding),
      per tensor with a uint4 zero point;
  w4  float8e4m3fn [5, 4], per tensor;
  w5  uint4 [4, 4], per axis 1 with uint4 zero points [4]: splits on
      either dim at whole bytes.
This onnx (1.12) predates these types: the tensors are written with their
data_type codes and packed bytes by hand (two values a byte, low nibble
first).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
FLOAT8E4M3FN, UINT4, INT4 = 17, 21, 22


def pack4(vals):
    """Values 0..15 (int4 as two's complement nibbles), two a byte, low first."""
    v = np.asarray(vals, dtype=np.uint8).reshape(-1) & 0xF
    if v.size % 2:
        v = np.concatenate([v, np.zeros(1, np.uint8)])
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8)


def tensor(name, dtype, dims, raw=None, int32=None):
    t = TensorProto()
    t.name, t.data_type = name, dtype
    t.dims.extend(dims)
    if raw is not None:
        t.raw_data = bytes(raw)
    else:
        t.int32_data.extend(int(x) for x in int32)
    return t


def build():
    rng = np.random.default_rng(1729)
    inits, nodes = [], []

    def scale(name, shape=()):
        a = rng.uniform(0.05, 0.2, size=shape).astype(np.float32)
        inits.append(numpy_helper.from_array(a, name))
        return name

    def dq(w, ins, **attrs):
        nodes.append(helper.make_node("DequantizeLinear", ins, [w + "_f"], name=w + "_dq", **attrs))
        return w + "_f"

    def matmul(x, w, y):
        nodes.append(helper.make_node("MatMul", [x, w], [y], name=y + "_mm"))
        return y

    s4 = lambda shape: rng.integers(-8, 8, size=shape)  # noqa: E731
    u4 = lambda shape: rng.integers(0, 16, size=shape)  # noqa: E731
    inits.append(tensor("w1", INT4, [8, 6], raw=pack4(s4((8, 6)))))
    inits.append(tensor("w2", INT4, [6, 3], int32=pack4(s4((6, 3)))))
    inits.append(tensor("w3", UINT4, [3, 5], raw=pack4(u4((3, 5)))))
    inits.append(tensor("w3_zp", UINT4, [], raw=pack4([8])))
    # float8 e4m3fn bytes: sign, exponent 4..8 (bias 7), mantissa: +-0.125..3.75
    f8 = (rng.integers(0, 2, (5, 4)) << 7) | (rng.integers(4, 9, (5, 4)) << 3) | rng.integers(0, 8, (5, 4))
    inits.append(tensor("w4", FLOAT8E4M3FN, [5, 4], raw=f8.astype(np.uint8)))
    inits.append(tensor("w5", UINT4, [4, 4], raw=pack4(u4((4, 4)))))
    inits.append(tensor("w5_zp", UINT4, [4], raw=pack4(u4(4))))

    h = matmul("x", dq("w1", ["w1", scale("w1_s")]), "h1")
    h = matmul(h, dq("w2", ["w2", scale("w2_s")]), "h2")
    h = matmul(h, dq("w3", ["w3", scale("w3_s"), "w3_zp"]), "h3")
    h = matmul(h, dq("w4", ["w4", scale("w4_s")]), "h4")
    matmul(h, dq("w5", ["w5", scale("w5_s", (4,)), "w5_zp"], axis=1), "y")

    g = helper.make_graph(nodes, "subbyte", [helper.make_tensor_value_info("x", FLOAT, ["batch", 8])],
                          [helper.make_tensor_value_info("y", FLOAT, ["batch", 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10,
                             producer_name="onnxshard tests/e2e/make_subbyte.py")


def main(out):
    os.makedirs(out, exist_ok=True)
    onnx.save(build(), os.path.join(out, "subbyte.onnx"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_subbyte.py OUTDIR")
    main(sys.argv[1])
