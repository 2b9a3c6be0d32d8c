#!/usr/bin/python3
"""Models whose weights stream from external data, for tests/e2e/streamed.sh.

    /usr/bin/python3 tests/e2e/make_streamed.py DIR

DIR/mlp_big.onnx: x [batch, 1024] -> MatMul W1 [1024, 3000] (11.7 MiB) +
b1 -> Relu -> MatMul W2 [3000, 1024] (11.7 MiB) -> y, every weight in
mlp_big.onnx.data: a column split of W1 copies runs of 6 KB (read through
the 1 MiB window), a row split of W2 runs of megabytes (copied in the
kernel).
DIR/far.onnx: x [batch, 256] -> MatMul W [256, 512] whose data lies past
4.5 GiB of far.onnx.data (a file hole before it: it takes no disk), and a
small bias at offset 0; far.w.npy holds W for a byte comparison.
Seeded: the same bytes every run.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

FAR = 4608 << 20  # 4.5 GiB


def external(name, arr, location, offset):
    t = onnx.TensorProto(name=name, data_type=TensorProto.FLOAT, dims=arr.shape)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(arr.nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def save(path, nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, os.path.basename(path)[:-5], inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def main(out):
    rng = np.random.default_rng(7)
    os.makedirs(out, exist_ok=True)
    # mlp_big: weights side by side, 64 KiB aligned
    w1 = rng.standard_normal((1024, 3000), dtype=np.float32) * 0.03
    b1 = rng.standard_normal((3000,), dtype=np.float32) * 0.1
    w2 = rng.standard_normal((3000, 1024), dtype=np.float32) * 0.02
    inits, off = [], 0
    with open(os.path.join(out, "mlp_big.onnx.data"), "wb") as f:
        for name, a in (("w1", w1), ("b1", b1), ("w2", w2)):
            f.seek(off)
            f.write(a.tobytes())
            inits.append(external(name, a, "mlp_big.onnx.data", off))
            off = (off + a.nbytes + 65535) // 65536 * 65536
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1024])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1024])
    save(os.path.join(out, "mlp_big.onnx"),
         [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
          helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])],
         [x], [y], inits)
    # far: a weight past 4.5 GiB of its data file
    w = rng.standard_normal((256, 512), dtype=np.float32)
    b = rng.standard_normal((512,), dtype=np.float32)
    with open(os.path.join(out, "far.onnx.data"), "wb") as f:
        f.write(b.tobytes())
        f.seek(FAR)
        f.write(w.tobytes())
    np.save(os.path.join(out, "far.w.npy"), w)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 512])
    save(os.path.join(out, "far.onnx"),
         [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
         [x], [y], [external("b", b, "far.onnx.data", 0), external("w", w, "far.onnx.data", FAR)])


if __name__ == "__main__":
    main(sys.argv[1])
