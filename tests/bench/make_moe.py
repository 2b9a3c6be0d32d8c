#!/usr/bin/python3
"""Write a stack of mixture-of-experts layers of any width, weights as
external data, for plan-only benchmarks (scripts/bench.sh).

    /usr/bin/python3 tests/bench/make_moe.py OUT.onnx [--layers N] [--hidden D]
        [--ffn F] [--experts E] [--topk K] [--weights zeros|sparse]

Input x float32 [tokens, D], output [tokens, D]. Per layer, the dense form
of tests/e2e/make_moe.py: a router MatMul [D, E] -> Softmax -> TopK, the
top-k probabilities scattered into zeros [tokens, E] (the gates); x
expanded to [E, tokens, D] @ W1 [E, D, F] + b1 -> Relu -> @ W2 [E, F, D],
times the gates transposed to [E, tokens, 1], ReduceSum over the experts,
and a residual Add. Weights go to OUT.onnx.data (sparse: a file hole, no
bytes written), 64-byte aligned.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--ffn", type=int, default=4096)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--topk", type=int, default=2)
    ap.add_argument("--weights", default="sparse", choices=["zeros", "sparse"])
    a = ap.parse_args()
    D, F, E = a.hidden, a.ffn, a.experts
    data = a.out + ".data"
    loc = os.path.basename(data)
    off = [0]
    f = open(data, "wb")
    inits, nodes = [], []

    def weight(name, *shape):
        nbytes = int(np.prod(shape)) * 4
        start = (off[0] + 63) // 64 * 64
        if a.weights == "zeros":
            f.seek(start)
            f.write(b"\0" * nbytes)
        off[0] = start + nbytes
        t = onnx.TensorProto()
        t.name, t.data_type = name, FLOAT
        t.dims.extend(shape)
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", loc), ("offset", str(start)), ("length", str(nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v
        inits.append(t)
        return name

    def node(op, ins, out, **kw):
        nodes.append(helper.make_node(op, ins, [out], name=out, **kw))
        return out

    for name, vals in (("k", [a.topk]), ("ax0", [0]), ("ax_last", [-1]),
                       ("expand_shape", [E, 1, 1])):
        inits.append(numpy_helper.from_array(np.array(vals, dtype=np.int64), name))
    x = "x"
    for i in range(a.layers):
        p = "layers.%d." % i
        logits = node("MatMul", [x, weight(p + "router.weight", D, E)], p + "router/MatMul")
        probs = node("Softmax", [logits], p + "router/Softmax", axis=-1)
        nodes.append(helper.make_node("TopK", [probs, "k"], [p + "topk_vals", p + "topk_idx"],
                                      name=p + "router/TopK", axis=-1))
        shape = node("Shape", [probs], p + "gates/Shape")
        zeros = node("ConstantOfShape", [shape], p + "gates/Zeros",
                     value=helper.make_tensor("v", FLOAT, [1], [0.0]))
        gates = node("ScatterElements", [zeros, p + "topk_idx", p + "topk_vals"],
                     p + "gates/Scatter", axis=1)
        xe = node("Expand", [node("Unsqueeze", [x, "ax0"], p + "dispatch/Unsqueeze"),
                             "expand_shape"], p + "dispatch/Expand")
        h = node("MatMul", [xe, weight(p + "experts.W1", E, D, F)], p + "experts/MatMul1")
        h = node("Add", [h, weight(p + "experts.b1", E, 1, F)], p + "experts/AddBias")
        h = node("Relu", [h], p + "experts/Relu")
        y = node("MatMul", [h, weight(p + "experts.W2", E, F, D)], p + "experts/MatMul2")
        gt = node("Unsqueeze", [node("Transpose", [gates], p + "combine/Transpose", perm=[1, 0]),
                                "ax_last"], p + "combine/Unsqueeze")
        moe = node("ReduceSum", [node("Mul", [y, gt], p + "combine/Mul"), "ax0"],
                   p + "combine/ReduceSum", keepdims=0)
        x = node("Add", [x, moe], p + "residual/Add")
    f.truncate(off[0])
    f.close()
    g = helper.make_graph(nodes, "moe_stack",
                          [helper.make_tensor_value_info("x", FLOAT, ["tokens", D])],
                          [helper.make_tensor_value_info(x, FLOAT, ["tokens", D])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="make_moe.py")
    onnx.save(m, a.out)


if __name__ == "__main__":
    main()
