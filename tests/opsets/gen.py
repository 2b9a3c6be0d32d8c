#!/usr/bin/env python3
"""Models of opsets 18 to 21 for tests/opsets.sh (onnx.helper; onnx 1.12's
checker knows no schema past 17, so none is checked; ONNX Runtime runs
them). Writes the .onnx files beside this script:
  reduce18   ReduceMean/ReduceSum/ReduceMax with axes inputs, noop_with_empty_axes
  split18    Split with num_outputs, Pad with an axes input (and mode wrap, 19)
  norm21     GroupNormalization (21, per-channel scale), LayerNormalization, Gelu (20)
  resize18   Resize with axes and antialias
  image20    GridSample (20), Col2Im (18), CenterCropPad (18)
  types21    Cast through float8e4m3fn (19), BitwiseAnd/Not (18), Reshape allowzero
  scatter18  ScatterElements reduction max, ScatterND reduction min (18)"""
import os

import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def const(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def vi(name, ty, *dims):
    return helper.make_tensor_value_info(name, ty, list(dims))


def save(name, opset, nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10 if opset >= 21 else 9 if opset >= 19 else 8
    onnx.save(m, os.path.join(HERE, name + ".onnx"))


N = helper.make_node
F = T.FLOAT
rng = np.random.default_rng(0)

save("reduce18", 18, [
    N("ReduceMean", ["x", "a2"], ["m"]),
    N("Sub", ["x", "m"], ["c"]),
    N("ReduceSum", ["c", "a1"], ["s"], keepdims=0),
    N("ReduceMax", ["s"], ["y"], noop_with_empty_axes=1),
    N("ReduceL2", ["x", "a12"], ["z"], keepdims=1),
    N("ReduceLogSumExp", ["x", "a2"], ["w"], keepdims=0),
], [vi("x", F, "batch", 6, 8)], [vi("y", F, "batch", 8), vi("z", F, "batch", 1, 1),
                                 vi("w", F, "batch", 6)],
    [const("a2", np.array([2], np.int64)), const("a1", np.array([1], np.int64)),
     const("a12", np.array([1, 2], np.int64))])

save("split18", 19, [
    N("Split", ["x"], ["p", "q", "r"], axis=1, num_outputs=3),
    N("Concat", ["r", "p", "q"], ["c"], axis=1),
    N("Pad", ["c", "pads", "", "axes"], ["y"]),
    N("Pad", ["x", "pads", "", "axes"], ["w"], mode="wrap"),
], [vi("x", F, "batch", 10)], [vi("y", F, "batch", 13), vi("w", F, "batch", 13)],
    [const("pads", np.array([1, 2], np.int64)), const("axes", np.array([-1], np.int64))])

save("norm21", 21, [
    N("GroupNormalization", ["x", "gs", "gb"], ["y"], num_groups=2, epsilon=1e-3),
    N("LayerNormalization", ["h", "ls", "lb"], ["l"], axis=-1),
    N("Gelu", ["l"], ["e"], approximate="tanh"),
    N("Gelu", ["e"], ["z"]),
], [vi("x", F, "batch", 8, 5, 5), vi("h", F, "batch", 4, 16)],
    [vi("y", F, "batch", 8, 5, 5), vi("z", F, "batch", 4, 16)],
    [const("gs", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
     const("gb", rng.uniform(-1, 1, 8).astype(np.float32)),
     const("ls", rng.uniform(0.5, 1.5, 16).astype(np.float32)),
     const("lb", rng.uniform(-1, 1, 16).astype(np.float32))])

save("resize18", 18, [
    N("Resize", ["x", "", "", "sizes"], ["y"], axes=[2, 3], mode="linear", antialias=1),
    N("Resize", ["x", "", "", "box"], ["z"], axes=[2, 3],
      keep_aspect_ratio_policy="not_larger"),
], [vi("x", F, "batch", 3, 8, 12)], [vi("y", F, "batch", 3, 4, 6), vi("z", F, "batch", 3, 4, 6)],
    [const("sizes", np.array([4, 6], np.int64)), const("box", np.array([6, 6], np.int64))])

save("image20", 20, [
    N("GridSample", ["x", "grid"], ["y"], mode="linear", align_corners=0),
    N("Col2Im", ["cols", "ishape", "block"], ["ci"]),
    N("CenterCropPad", ["img", "crop"], ["cc"], axes=[1, 2]),
], [vi("x", F, "batch", 2, 6, 6), vi("grid", F, "batch", 5, 4, 2),
    vi("cols", F, "batch", 12, 16), vi("img", F, "batch", 10, 10, 3)],
    [vi("y", F, "batch", 2, 5, 4), vi("ci", F, "batch", 3, 5, 5), vi("cc", F, "batch", 6, 12, 3)],
    [const("ishape", np.array([5, 5], np.int64)), const("block", np.array([2, 2], np.int64)),
     const("crop", np.array([6, 12], np.int64))])

save("types21", 21, [
    N("Cast", ["x"], ["f8"], to=T.FLOAT8E4M3FN if hasattr(T, "FLOAT8E4M3FN") else 17),
    N("Cast", ["f8"], ["y"], to=F),
    N("BitwiseAnd", ["i", "j"], ["a"]),
    N("BitwiseNot", ["a"], ["b"]),
    N("Reshape", ["x", "shp"], ["r"], allowzero=1),
], [vi("x", F, "batch", 4, 2), vi("i", T.INT32, "batch", 4), vi("j", T.INT32, 4)],
    [vi("y", F, "batch", 4, 2), vi("b", T.INT32, "batch", 4), vi("r", F, "batch", 8)],
    [const("shp", np.array([-1, 8], np.int64))])

save("scatter18", 18, [
    N("ScatterElements", ["x", "idx", "u"], ["y"], axis=1, reduction="max"),
    N("Transpose", ["x"], ["xt"], perm=[1, 2, 0]),
    N("ScatterND", ["xt", "nd", "v"], ["z"], reduction="min"),
], [vi("x", F, "batch", 4, 5), vi("idx", T.INT64, "batch", 2, 5), vi("u", F, "batch", 2, 5),
    vi("v", F, 2, 5, "batch")],
    [vi("y", F, "batch", 4, 5), vi("z", F, 4, 5, "batch")],
    [const("nd", np.array([[1], [3]], np.int64))])
