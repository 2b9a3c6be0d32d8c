#!/usr/bin/python3
"""Small mixture-of-experts models for tests/e2e/moe.sh (onnx.helper).

    /usr/bin/python3 tests/e2e/make_moe.py OUTDIR

One MoE layer of 8 experts, d=64, f=128, a router MatMul -> Softmax ->
TopK(k=2), and a residual Add:
  moe_dense.onnx   x [tokens, 64]; gates by ScatterElements of the top-k
                   probabilities into zeros [tokens, 8]; the experts as
                   batched MatMuls: x expanded to [8, tokens, 64] @ W1
                   [8, 64, 128] (+ b1 [8, 1, 128]) -> Relu -> @ W2
                   [8, 128, 64], times the gates transposed to [8, tokens, 1],
                   ReduceSum over the experts (opset 17).
  moe_onehot.onnx  x [batch, seq, 64] reshaped to [tokens, 64]; the top-k
                   probabilities read back by GatherElements, the gates
                   ReduceSum over k of OneHot(idx, 8) * p[..., None]; x
                   tiled to [8, tokens, 64]; Gelu written with Erf (opset 17).
  scatter_add.onnx ScatterElements(data, idx, upd, axis=1, reduction=add),
                   GatherElements(out, idx, axis=1) and ScatterND(table,
                   rows_idx, rows, reduction=add), every operand a graph
                   input (data tokens x 8, idx and upd tokens x 4, table
                   16 x 8, rows_idx tokens x 1, rows tokens x 8), for the
                   rules' reductions over the updates (a tactics file splits
                   idx along the scatter axis and rows_idx along tokens).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

E, D, F, K = 8, 64, 128, 2
FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def ints(name, vals):
    return init(name, np.array(vals, dtype=np.int64))


def weights(rng):
    s1, s2 = 1 / np.sqrt(D), 1 / np.sqrt(F)
    return [init("router.weight", rng.uniform(-1, 1, (D, E)).astype(np.float32)),
            init("experts.W1", (rng.standard_normal((E, D, F)) * s1).astype(np.float32)),
            init("experts.b1", (rng.standard_normal((E, 1, F)) * 0.1).astype(np.float32)),
            init("experts.W2", (rng.standard_normal((E, F, D)) * s2).astype(np.float32))]


def router(nodes, x):
    """logits -> probs -> (vals, idx), appended to nodes."""
    nodes += [helper.make_node("MatMul", [x, "router.weight"], ["logits"], name="router/MatMul"),
              helper.make_node("Softmax", ["logits"], ["probs"], name="router/Softmax", axis=-1),
              helper.make_node("TopK", ["probs", "k"], ["topk_vals", "topk_idx"], name="router/TopK",
                               axis=-1)]


def activation(act, x, y):
    """Relu, or Gelu written with Erf (Gelu is an op from opset 20 on)."""
    if act == "Relu":
        return [helper.make_node("Relu", [x], [y], name="experts/Relu")]
    return [helper.make_node("Div", [x, "sqrt2"], ["g_s"], name="experts/gelu/Div"),
            helper.make_node("Erf", ["g_s"], ["g_e"], name="experts/gelu/Erf"),
            helper.make_node("Add", ["g_e", "one"], ["g_a"], name="experts/gelu/Add"),
            helper.make_node("Mul", [x, "g_a"], ["g_m"], name="experts/gelu/Mul"),
            helper.make_node("Mul", ["g_m", "half"], [y], name="experts/gelu/Mul2")]


def experts(nodes, xe, act):
    """[E, tokens, d] -> [E, tokens, d] through the stacked expert weights."""
    nodes += [helper.make_node("MatMul", [xe, "experts.W1"], ["h1"], name="experts/MatMul1"),
              helper.make_node("Add", ["h1", "experts.b1"], ["h1b"], name="experts/AddBias"),
              *activation(act, "h1b", "h"),
              helper.make_node("MatMul", ["h", "experts.W2"], ["y"], name="experts/MatMul2")]


def combine(nodes, gates, x, out):
    """gates [tokens, E] -> [E, tokens, 1]; out = x + sum_e y * gate."""
    nodes += [helper.make_node("Transpose", [gates], ["gates_t"], name="combine/Transpose",
                               perm=[1, 0]),
              helper.make_node("Unsqueeze", ["gates_t", "ax_last"], ["gates_e"],
                               name="combine/Unsqueeze"),
              helper.make_node("Mul", ["y", "gates_e"], ["yw"], name="combine/Mul"),
              helper.make_node("ReduceSum", ["yw", "ax0"], ["moe"], name="combine/ReduceSum",
                               keepdims=0),
              helper.make_node("Add", [x, "moe"], [out], name="residual/Add")]


def dense(rng):
    nodes = []
    router(nodes, "x")
    nodes += [helper.make_node("Shape", ["probs"], ["probs_shape"], name="gates/Shape"),
              helper.make_node("ConstantOfShape", ["probs_shape"], ["zeros"], name="gates/Zeros",
                               value=helper.make_tensor("v", FLOAT, [1], [0.0])),
              helper.make_node("ScatterElements", ["zeros", "topk_idx", "topk_vals"], ["gates"],
                               name="gates/Scatter", axis=1),
              helper.make_node("Unsqueeze", ["x", "ax0"], ["x1"], name="dispatch/Unsqueeze"),
              helper.make_node("Expand", ["x1", "expand_shape"], ["xe"], name="dispatch/Expand")]
    experts(nodes, "xe", "Relu")
    combine(nodes, "gates", "x", "out")
    g = helper.make_graph(
        nodes, "moe_dense",
        [helper.make_tensor_value_info("x", FLOAT, ["tokens", D])],
        [helper.make_tensor_value_info("out", FLOAT, ["tokens", D])],
        weights(rng) + [ints("k", [K]), ints("ax0", [0]), ints("ax_last", [-1]),
                        ints("expand_shape", [E, 1, 1])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                             producer_name="make_moe.py")


def onehot(rng):
    nodes = [helper.make_node("Reshape", ["x_in", "flat"], ["x"], name="flatten/Reshape")]
    router(nodes, "x")
    nodes += [helper.make_node("GatherElements", ["probs", "topk_idx"], ["p"], name="gates/Gather",
                               axis=1),
              helper.make_node("OneHot", ["topk_idx", "depth", "onoff"], ["oh"], name="gates/OneHot",
                               axis=-1),
              helper.make_node("Unsqueeze", ["p", "ax_last"], ["p1"], name="gates/Unsqueeze"),
              helper.make_node("Mul", ["oh", "p1"], ["ohp"], name="gates/Mul"),
              helper.make_node("ReduceSum", ["ohp", "ax1"], ["gates"], name="gates/ReduceSum",
                               keepdims=0),
              helper.make_node("Unsqueeze", ["x", "ax0"], ["x1"], name="dispatch/Unsqueeze"),
              helper.make_node("Tile", ["x1", "repeats"], ["xe"], name="dispatch/Tile")]
    experts(nodes, "xe", "gelu")
    combine(nodes, "gates", "x", "res")
    nodes += [helper.make_node("Shape", ["x_in"], ["in_shape"], name="unflatten/Shape"),
              helper.make_node("Reshape", ["res", "in_shape"], ["out"], name="unflatten/Reshape")]
    g = helper.make_graph(
        nodes, "moe_onehot",
        [helper.make_tensor_value_info("x_in", FLOAT, ["batch", "seq", D])],
        [helper.make_tensor_value_info("out", FLOAT, ["batch", "seq", D])],
        weights(rng) + [ints("k", [K]), ints("ax0", [0]), ints("ax1", [1]), ints("ax_last", [-1]),
                        ints("flat", [-1, D]), ints("repeats", [E, 1, 1]),
                        init("depth", np.array(E, dtype=np.int64)),
                        init("onoff", np.array([0.0, 1.0], dtype=np.float32)),
                        init("sqrt2", np.array(np.sqrt(2), dtype=np.float32)),
                        init("one", np.array(1, dtype=np.float32)),
                        init("half", np.array(0.5, dtype=np.float32))])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                             producer_name="make_moe.py")


def scatter_add():
    nodes = [helper.make_node("ScatterElements", ["data", "idx", "upd"], ["sc"], name="Scatter",
                              axis=1, reduction="add"),
             helper.make_node("GatherElements", ["sc", "idx"], ["ga"], name="Gather", axis=1),
             helper.make_node("ScatterND", ["table", "rows_idx", "rows"], ["nd"], name="ScatterND",
                              reduction="add")]
    g = helper.make_graph(
        nodes, "scatter_add",
        [helper.make_tensor_value_info("data", FLOAT, ["tokens", E]),
         helper.make_tensor_value_info("idx", INT64, ["tokens", 4]),
         helper.make_tensor_value_info("upd", FLOAT, ["tokens", 4]),
         helper.make_tensor_value_info("table", FLOAT, [16, E]),
         helper.make_tensor_value_info("rows_idx", INT64, ["tokens", 1]),
         helper.make_tensor_value_info("rows", FLOAT, ["tokens", E])],
        [helper.make_tensor_value_info("sc", FLOAT, ["tokens", E]),
         helper.make_tensor_value_info("ga", FLOAT, ["tokens", 4]),
         helper.make_tensor_value_info("nd", FLOAT, [16, E])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                             producer_name="make_moe.py")


def main(argv):
    if len(argv) != 1:
        print("usage: make_moe.py OUTDIR", file=sys.stderr)
        return 2
    os.makedirs(argv[0], exist_ok=True)
    rng = np.random.default_rng(0)
    for name, m in (("moe_dense", dense(rng)), ("moe_onehot", onehot(rng)),
                    ("scatter_add", scatter_add())):
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, os.path.join(argv[0], name + ".onnx"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
