#!/usr/bin/python3
"""Write a large MLP stack with its weights in external data, for benchmarks.

    /usr/bin/python3 make_big.py OUT.onnx LAYERS HIDDEN

LAYERS pairs of Gemm (HIDDEN -> 4*HIDDEN -> HIDDEN) with Relu between and a
residual Add, weights in OUT.onnx.data (written in chunks, never whole).
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper


def main():
    out, layers, hidden = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    data = out + ".data"
    loc = data.rsplit("/", 1)[-1]
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    off = 0
    with open(data, "wb") as f:
        def weight(name, shape):
            nonlocal off
            a = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
            b = a.tobytes()
            f.write(b)
            t = TensorProto()
            t.name = name
            t.data_type = TensorProto.FLOAT
            t.dims.extend(shape)
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", loc), ("offset", str(off)), ("length", str(len(b)))):
                e = t.external_data.add()
                e.key, e.value = k, v
            off += len(b)
            inits.append(t)
        x = "x"
        for i in range(layers):
            weight(f"l{i}.w1", [hidden, 4 * hidden])
            weight(f"l{i}.w2", [4 * hidden, hidden])
            nodes += [
                helper.make_node("MatMul", [x, f"l{i}.w1"], [f"l{i}.h"]),
                helper.make_node("Relu", [f"l{i}.h"], [f"l{i}.r"]),
                helper.make_node("MatMul", [f"l{i}.r", f"l{i}.w2"], [f"l{i}.o"]),
                helper.make_node("Add", [x, f"l{i}.o"], [f"l{i}.y"]),
            ]
            x = f"l{i}.y"
        nodes.append(helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(nodes, "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", hidden])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", hidden])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with open(out, "wb") as f:
        f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
