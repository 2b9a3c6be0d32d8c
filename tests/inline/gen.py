#!/usr/bin/env python3
"""Models with model-local functions for tests/inline.sh; run from anywhere:
    /usr/bin/python3 tests/inline/gen.py   (writes the .onnx files beside it)
torch_block.onnx is torch 1.13's export_modules_as_functions of a small
transformer-style block; the others are hand-made with onnx.helper:
  nested.onnx     a function calling a function calling a function
  attrs.onnx      attribute references: given by the call, from a default
                  (FunctionProto.attribute_proto, field 11, written by hand:
                  onnx 1.12 predates it), and neither (dropped)
  opset.onnx      a function importing a domain the model lacks (its own
                  nested function's domain); ONNX Runtime refuses to run it,
                  so opset.ref.onnx (the model importing it) is the reference
  twice.onnx      one function called twice (names made unique per call)
  conflict.onnx   a function importing ai.onnx 13 in an opset 15 model:
                  stays a call (opaque)
  recursive.onnx  a function calling itself: refused"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
F = TensorProto.FLOAT
OPSET = [helper.make_opsetid("", 15)]


def save(model, name, check=True):
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name))


def weight(name, *shape, seed=0):
    rng = np.random.default_rng(sum(name.encode()) + seed)
    return numpy_helper.from_array(rng.uniform(-0.5, 0.5, shape).astype(np.float32), name)


def io(name, *dims):
    return helper.make_tensor_value_info(name, F, list(dims))


def model(nodes, inits, inputs, outputs, functions, opsets=None):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=opsets or OPSET + [helper.make_opsetid("local", 1)],
                          functions=functions)
    m.ir_version = 8
    return m


def with_default(fn, attr):
    """fn with one attribute default (FunctionProto field 11) appended."""
    body = attr.SerializeToString()
    raw = fn.SerializeToString() + bytes([11 << 3 | 2]) + varint(len(body)) + body
    out = onnx.FunctionProto()
    out.ParseFromString(raw)
    return out


def varint(n):
    b = bytearray()
    while True:
        if n < 0x80:
            b.append(n)
            return bytes(b)
        b.append(n & 0x7F | 0x80)
        n >>= 7


def torch_block():
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, d=16, h=32):
            super().__init__()
            self.ln = nn.LayerNorm(d)
            self.fc1 = nn.Linear(d, h)
            self.fc2 = nn.Linear(h, d)

        def forward(self, x):
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln(x))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.b1 = Block()
            self.b2 = Block()
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            return self.head(self.b2(self.b1(x)))

    Block.__module__ = Net.__module__ = "onnxshard_test"  # the functions' domain
    Block.__qualname__, Net.__qualname__ = "Block", "Net"
    torch.manual_seed(0)
    path = os.path.join(HERE, "torch_block.onnx")
    torch.onnx.export(Net().eval(), torch.randn(2, 8, 16), path, opset_version=15,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                      export_modules_as_functions={Block})


def nested():
    # inner: y = Relu(x * w) ; mid: y = inner(x, w) + x ; outer: y = mid(mid(x, w), w)
    inner = helper.make_function("local", "Inner", ["x", "w"], ["y"], [
        helper.make_node("MatMul", ["x", "w"], ["t"]),
        helper.make_node("Relu", ["t"], ["y"])], OPSET)
    mid = helper.make_function("local", "Mid", ["x", "w"], ["y"], [
        helper.make_node("Inner", ["x", "w"], ["t"], domain="local"),
        helper.make_node("Add", ["t", "x"], ["y"])], OPSET + [helper.make_opsetid("local", 1)])
    outer = helper.make_function("local", "Outer", ["x", "w"], ["y"], [
        helper.make_node("Mid", ["x", "w"], ["t"], domain="local", name="m1"),
        helper.make_node("Mid", ["t", "w"], ["y"], domain="local", name="m2")],
        OPSET + [helper.make_opsetid("local", 1)])
    m = model([helper.make_node("Outer", ["x", "w"], ["h"], domain="local", name="outer"),
               helper.make_node("Softmax", ["h"], ["y"], axis=-1)],
              [weight("w", 8, 8)], [io("x", "batch", 4, 8)], [io("y", "batch", 4, 8)],
              [inner, mid, outer])
    save(m, "nested.onnx")


def attrs():
    # Scale: y = LeakyRelu(x, alpha=@alpha) then Softmax(axis=@axis), Transpose(perm=@perm)
    body = [helper.make_node("LeakyRelu", ["x"], ["a"]),
            helper.make_node("Softmax", ["a"], ["b"]),
            helper.make_node("Transpose", ["b"], ["y"])]
    for n, (attr, ref, ty) in zip(body, [("alpha", "alpha", onnx.AttributeProto.FLOAT),
                                         ("axis", "axis", onnx.AttributeProto.INT),
                                         ("perm", "perm", onnx.AttributeProto.INTS)]):
        a = onnx.AttributeProto()
        a.name, a.ref_attr_name, a.type = attr, ref, ty
        n.attribute.append(a)
    fn = helper.make_function("local", "Act", ["x"], ["y"], body, OPSET,
                              attributes=["alpha", "axis", "perm"])
    fn = with_default(fn, helper.make_attribute("axis", -1))
    # alpha given by the call; axis from the default; perm neither (dropped:
    # Transpose reverses the dims); a second call gives axis
    m = model([helper.make_node("Act", ["x"], ["t"], domain="local", name="act1", alpha=0.25),
               helper.make_node("Act", ["t"], ["y"], domain="local", name="act2", alpha=0.5,
                                axis=0)],
              [], [io("x", "batch", 6, 5)], [io("y", "batch", 6, 5)], [fn])
    save(m, "attrs.onnx", check=False)  # the checker of onnx 1.12 knows no defaults


def opset():
    # Sq (domain lib.inner, imported only by Outer): y = x * x
    sq = helper.make_function("lib.inner", "Sq", ["x"], ["y"],
                              [helper.make_node("Mul", ["x", "x"], ["y"])], OPSET)
    outer = helper.make_function("local", "Norm", ["x", "g"], ["y"], [
        helper.make_node("Sq", ["x"], ["s"], domain="lib.inner"),
        helper.make_node("ReduceMean", ["s"], ["m"], axes=[-1], keepdims=1),
        helper.make_node("Constant", [], ["eps"], value=numpy_helper.from_array(
            np.array(1e-5, np.float32))),
        helper.make_node("Add", ["m", "eps"], ["v"]),
        helper.make_node("Sqrt", ["v"], ["r"]),
        helper.make_node("Div", ["x", "r"], ["n"]),
        helper.make_node("Mul", ["n", "g"], ["y"])],
        OPSET + [helper.make_opsetid("lib.inner", 1)])
    m = model([helper.make_node("Norm", ["x", "g"], ["y"], domain="local", name="norm")],
              [weight("g", 12)], [io("x", "batch", 3, 12)], [io("y", "batch", 3, 12)],
              [sq, outer])
    save(m, "opset.onnx")
    # ONNX Runtime wants the model to import lib.inner too: the reference
    m.opset_import.append(helper.make_opsetid("lib.inner", 1))
    save(m, "opset.ref.onnx")


def twice():
    # Lin: y = x @ w + b, one optional input missing on one call (b = "")
    fn = helper.make_function("local", "Lin", ["x", "w", "b"], ["y", "t"], [
        helper.make_node("MatMul", ["x", "w"], ["t"]),
        helper.make_node("Sum", ["t", "b"], ["y"])], OPSET)
    m = model([helper.make_node("Lin", ["x", "w1", "b1"], ["h", ""], domain="local"),
               helper.make_node("Relu", ["h"], ["h/t"], name="h/MatMul"),
               helper.make_node("Lin", ["h/t", "w2", "b2"], ["y", "t2"], domain="local"),
               helper.make_node("Identity", ["t2"], ["z"])],
              [weight("w1", 8, 16), weight("b1", 16), weight("w2", 16, 8), weight("b2", 8)],
              [io("x", "batch", 8)], [io("y", "batch", 8), io("z", "batch", 8)], [fn])
    save(m, "twice.onnx")


def conflict():
    fn = helper.make_function("local", "Old", ["x"], ["y"],
                              [helper.make_node("Relu", ["x"], ["y"])],
                              [helper.make_opsetid("", 13)])
    m = model([helper.make_node("Old", ["x"], ["y"], domain="local", name="old")],
              [], [io("x", "batch", 4)], [io("y", "batch", 4)], [fn])
    save(m, "conflict.onnx", check=False)


def recursive():
    fn = helper.make_function("local", "Loop", ["x"], ["y"], [
        helper.make_node("Relu", ["x"], ["t"]),
        helper.make_node("Loop", ["t"], ["y"], domain="local")],
        OPSET + [helper.make_opsetid("local", 1)])
    m = model([helper.make_node("Loop", ["x"], ["y"], domain="local", name="call")],
              [], [io("x", "batch", 4)], [io("y", "batch", 4)], [fn])
    save(m, "recursive.onnx", check=False)


if __name__ == "__main__":
    nested()
    attrs()
    opset()
    twice()
    conflict()
    recursive()
    if "--no-torch" not in sys.argv:
        torch_block()
