#!/usr/bin/python3
"""Small seeded models of ONNX Runtime's contrib ops and of quantization,
one per op, for tests/contrib/run.py.

    /usr/bin/python3 tests/contrib/gen.py OUTDIR

CASES lists each model's builder with the cases run on it: a strategy
("data" on data=2, "megatron" on model=2, or a tactics step list on
model=2) and what its plan must show: tensors split on a dim ("split":
[(NAME, DIM)]), tensors left whole ("whole": [NAME]), and how many
collectives the rank models may hold ("coll": 0, or None for any).
"""
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import TensorProto as T
from onnx import helper as h

MS = "com.microsoft"


class Model:
    """A graph under construction with seeded initializers."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inputs, self.outputs, self.inits = [], [], [], []

    def input(self, name, dt, shape):
        self.inputs.append(h.make_tensor_value_info(name, dt, shape))

    def output(self, name, dt, shape):
        self.outputs.append(h.make_tensor_value_info(name, dt, shape))

    def init(self, name, arr):
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(arr), name))

    def weight(self, name, shape, scale=0.5):
        self.init(name, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def int8(self, name, shape, lo=-8, hi=8, dt=np.int8):
        self.init(name, self.rng.integers(lo, hi, shape).astype(dt))

    def node(self, op, ins, outs, domain="", **attrs):
        self.nodes.append(h.make_node(op, ins, outs, name="n%d" % len(self.nodes), domain=domain, **attrs))

    def model(self, opset=17):
        g = h.make_graph(self.nodes, "g", self.inputs, self.outputs, self.inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", opset), h.make_opsetid(MS, 1)])
        m.ir_version = 8
        return m


X3 = ["batch", 8, 16]  # [batch, seq, hidden]


def skipln(simplified):
    m = Model(1)
    m.input("x", T.FLOAT, X3)
    m.input("skip", T.FLOAT, [8, 16] if simplified else X3)  # a skip broadcast over the batch
    m.weight("gamma", [16])
    ins = ["x", "skip", "gamma"]
    if not simplified:
        m.weight("beta", [16])
        m.weight("bias", [16])
        ins += ["beta", "bias"]
    op = "SkipSimplifiedLayerNormalization" if simplified else "SkipLayerNormalization"
    m.node(op, ins, ["y", "", "", "sum"], MS, epsilon=1e-5)
    m.output("y", T.FLOAT, X3)
    m.output("sum", T.FLOAT, X3)
    return m.model()


def simpln(domain):
    m = Model(2)
    m.input("x", T.FLOAT, X3)
    m.weight("scale", [16])
    m.node("SimplifiedLayerNormalization", ["x", "scale"], ["y"], domain, axis=-1, epsilon=1e-5)
    m.output("y", T.FLOAT, X3)
    return m.model()


def embedln(posids):
    m = Model(3)
    m.input("input_ids", T.INT32, ["batch", 8])
    m.input("segment_ids", T.INT32, ["batch", 8])
    m.weight("word", [50, 16])
    m.weight("pos", [8, 16])
    m.weight("seg", [2, 16])
    m.weight("gamma", [16])
    m.weight("beta", [16])
    ins = ["input_ids", "segment_ids", "word", "pos", "seg", "gamma", "beta"]
    outs = ["y"]
    if posids:
        m.input("position_ids", T.INT32, ["batch", 8])
        ins += ["", "position_ids"]
        outs += ["mask_index"]  # ORT's shape inference writes it
        m.output("mask_index", T.INT32, ["batch"])
    else:
        m.input("mask", T.INT32, ["batch", 8])
        ins += ["mask"]
        outs += ["mask_index"]
        m.output("mask_index", T.INT32, ["batch"])
    m.node("EmbedLayerNormalization", ins, outs, MS, epsilon=1e-5)
    m.output("y", T.FLOAT, X3)
    return m.model()


def mlp(act, dt=T.FLOAT):
    """x @ W1 -> act (with its bias) -> @ W2: megatron splits the hidden 32."""
    m = Model(4)
    npdt = np.float16 if dt == T.FLOAT16 else np.float32
    m.input("x", dt, ["batch", 16])
    m.init("w1", (m.rng.standard_normal([16, 32]) * 0.5).astype(npdt))
    m.init("w2", (m.rng.standard_normal([32, 16]) * 0.5).astype(npdt))
    m.init("b1", (m.rng.standard_normal([32]) * 0.5).astype(npdt))
    m.node("MatMul", ["x", "w1"], ["h"])
    if act in ("Gelu", "QuickGelu"):
        m.node(act, ["h"], ["a"], MS)
    else:
        m.node(act, ["h", "b1"], ["a"], MS)
    m.node("MatMul", ["a", "w2"], ["y"])
    m.output("y", dt, ["batch", 16])
    return m.model()


def fusedmatmul(ta, tb):
    m = Model(5)
    m.input("x", T.FLOAT, ["batch", 16, 8] if ta else X3)
    m.weight("w", [32, 16] if tb else [16, 32])
    m.node("FusedMatMul", ["x", "w"], ["y"], MS, transA=ta, transB=tb, alpha=0.5)
    m.output("y", T.FLOAT, ["batch", 8, 32])
    return m.model()


def qdq_tensor():
    m = Model(6)
    m.input("x", T.FLOAT, ["batch", 16])
    m.init("s", np.array(0.02, np.float32))
    m.init("z", np.array(128, np.uint8))
    m.node("QuantizeLinear", ["x", "s", "z"], ["q"])
    m.node("DequantizeLinear", ["q", "s", "z"], ["y"])
    m.output("y", T.FLOAT, ["batch", 16])
    m.output("q", T.UINT8, ["batch", 16])
    return m.model()


def qdq_axis(domain):
    """A per-channel int8 weight dequantized (axis 1, the N of x @ W) and a
    per-channel quantize-dequantize of the activation (axis 1)."""
    m = Model(7)
    m.input("x", T.FLOAT, ["batch", 16])
    m.init("xs", (0.01 + m.rng.random(16) * 0.02).astype(np.float32))
    m.int8("xz", [16], -4, 4)
    m.node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], domain, axis=1)
    m.node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], domain, axis=1)
    m.int8("w", [16, 32])
    m.init("ws", (0.05 + m.rng.random(32) * 0.05).astype(np.float32))
    m.int8("wz", [32], -2, 2)
    m.node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], domain, axis=1)
    m.node("MatMul", ["xd", "wf"], ["y"])
    m.output("y", T.FLOAT, ["batch", 32])
    return m.model()


def dq_block():
    """Opset 21: W int8 [16, 32] in blocks of 4 along axis 0 (the K of x @ W)."""
    m = Model(8)
    m.input("x", T.FLOAT, ["batch", 16])
    m.int8("w", [16, 32])
    m.init("ws", (0.05 + m.rng.random([4, 32]) * 0.05).astype(np.float32))
    m.int8("wz", [4, 32], -2, 2)
    m.node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], axis=0, block_size=4)
    m.node("MatMul", ["x", "wf"], ["y"])
    m.output("y", T.FLOAT, ["batch", 32])
    return m.model(opset=21)


def dynquant():
    m = Model(9)
    m.input("x", T.FLOAT, ["batch", 16])
    m.node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"])
    m.node("DequantizeLinear", ["q", "s", "z"], ["y"])
    m.output("y", T.FLOAT, ["batch", 16])
    return m.model()


def quant_x(m, shape):
    """x (float) quantized to uint8 with a per-tensor scale: q."""
    m.input("x", T.FLOAT, shape)
    m.init("xs", np.array(0.01, np.float32))
    m.init("xz", np.array(128, np.uint8))
    m.node("QuantizeLinear", ["x", "xs", "xz"], ["q"])


def matmulinteger():
    m = Model(10)
    quant_x(m, ["batch", 16])
    m.int8("b", [16, 32], 0, 255, np.uint8)
    m.int8("bz", [32], 120, 136, np.uint8)
    m.node("MatMulInteger", ["q", "b", "xz", "bz"], ["acc"])
    m.node("Cast", ["acc"], ["y"], to=T.FLOAT)
    m.output("y", T.FLOAT, ["batch", 32])
    return m.model()


def qlinearmatmul():
    m = Model(11)
    quant_x(m, ["batch", 16])
    m.int8("b", [16, 32])
    m.init("bs", (0.01 + m.rng.random(32) * 0.01).astype(np.float32))
    m.init("bz", np.zeros(32, np.int8))
    m.init("ys", np.array(0.05, np.float32))
    m.init("yz", np.array(128, np.uint8))
    m.node("QLinearMatMul", ["q", "xs", "xz", "b", "bs", "bz", "ys", "yz"], ["yq"])
    m.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])
    m.output("y", T.FLOAT, ["batch", 32])
    return m.model()


XC = ["batch", 4, 8, 8]


def convinteger():
    m = Model(12)
    quant_x(m, XC)
    m.int8("w", [4, 4, 3, 3], 0, 255, np.uint8)
    m.init("wz", np.array(128, np.uint8))
    m.node("ConvInteger", ["q", "w", "xz", "wz"], ["acc"], pads=[1, 1, 1, 1])
    m.node("Cast", ["acc"], ["y"], to=T.FLOAT)
    m.output("y", T.FLOAT, ["batch", 4, 8, 8])
    return m.model()


def qlinearconv():
    m = Model(13)
    quant_x(m, XC)
    m.int8("w", [4, 4, 3, 3])
    m.init("ws", (0.01 + m.rng.random(4) * 0.01).astype(np.float32))
    m.init("wz", np.zeros(4, np.int8))
    m.init("ys", np.array(0.05, np.float32))
    m.init("yz", np.array(128, np.uint8))
    m.init("bias", m.rng.integers(-500, 500, 4).astype(np.int32))
    m.node("QLinearConv", ["q", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"], ["yq"], pads=[1, 1, 1, 1])
    m.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])
    m.output("y", T.FLOAT, ["batch", 4, 8, 8])
    return m.model()


def matmulintegertofloat():
    m = Model(14)
    quant_x(m, ["batch", 16])
    m.int8("b", [16, 32], 0, 255, np.uint8)
    m.init("bs", np.array(0.02, np.float32))
    m.init("bz", np.array(128, np.uint8))
    m.weight("bias", [32])
    m.node("MatMulIntegerToFloat", ["q", "b", "xs", "bs", "xz", "bz", "bias"], ["y"], MS)
    m.output("y", T.FLOAT, ["batch", 32])
    return m.model()


def dynquantmatmul():
    m = Model(15)
    m.input("x", T.FLOAT, ["batch", 16])
    m.int8("b", [16, 32])
    m.init("bs", np.array(0.02, np.float32))
    m.init("bz", np.array(0, np.int8))
    m.weight("bias", [32])
    m.node("DynamicQuantizeMatMul", ["x", "b", "bs", "bz", "bias"], ["y"], MS)
    m.output("y", T.FLOAT, ["batch", 32])
    return m.model()


def bf16():
    """A bfloat16 weight, cast to float before the product."""
    m = Model(16)
    m.input("x", T.FLOAT, ["batch", 16])
    bits = (m.rng.standard_normal([16, 32]).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    t = onnx.helper.make_tensor("w", T.BFLOAT16, [16, 32], bits.tobytes(), raw=True)
    m.inits.append(t)
    m.node("Cast", ["w"], ["wf"], to=T.FLOAT)
    m.node("MatMul", ["x", "wf"], ["y"])
    m.output("y", T.FLOAT, ["batch", 32])
    return m.model()


def split(name, dim):
    return [{"shard": name, "dim": dim, "axes": ["model"]}]


DATA = {"strategy": "data", "coll": 0}  # batch-parallel: no collective
MEGA = {"strategy": "megatron", "coll": None}
IDS = {"input_ids": 50, "segment_ids": 2, "position_ids": 8}

# name: (builder, --dim bindings, ortcompare --int-max, cases)
CASES = {
    "skipln": (lambda: skipln(False), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0), ("skip", 0)]), MEGA,
        {"tactic": split("x", 1), "split": [("x", 1), ("skip", 1)], "coll": 0},  # seq passes
        {"tactic": split("gamma", 0), "coll": None}]),  # hidden: need-replication, gathered
    "skipsimpln": (lambda: skipln(True), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)], whole=["skip"]), MEGA,
        {"tactic": split("x", 1), "split": [("x", 1), ("skip", 0)], "coll": 0}]),
    "simpln": (lambda: simpln(""), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA, {"tactic": split("x", 1), "split": [("x", 1)], "coll": 0}]),
    "embedln": (lambda: embedln(False), {"batch": 4}, IDS, [
        dict(DATA, split=[("input_ids", 0), ("mask", 0)], whole=["word", "pos"]), MEGA,
        # no position_ids: the sequence is need-replication (gathered first)
        {"tactic": split("input_ids", 1), "coll": None, "whole": ["word", "pos", "seg"]}]),
    "embedln_posids": (lambda: embedln(True), {"batch": 4}, IDS, [
        dict(DATA, split=[("input_ids", 0), ("position_ids", 0)]), MEGA,
        {"tactic": split("input_ids", 1), "split": [("input_ids", 1), ("position_ids", 1)], "coll": 0,
         "whole": ["word", "pos"]}]),
    "fastgelu": (lambda: mlp("FastGelu"), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), dict(MEGA, split=[("w1", 1), ("b1", 0), ("w2", 0)])]),
    "biasgelu": (lambda: mlp("BiasGelu"), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), dict(MEGA, split=[("w1", 1), ("b1", 0), ("w2", 0)])]),
    "gelu": (lambda: mlp("Gelu"), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), dict(MEGA, split=[("w1", 1), ("w2", 0)])]),
    "quickgelu": (lambda: mlp("QuickGelu"), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), dict(MEGA, split=[("w1", 1), ("w2", 0)])]),
    "fusedmatmul_tb": (lambda: fusedmatmul(0, 1), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA,
        {"tactic": split("w", 0), "split": [("w", 0)], "coll": 0},  # N: the output stays split
        {"tactic": split("w", 1), "split": [("w", 1)], "coll": None, "min_coll": 1}]),  # K: summed
    "fusedmatmul_ta": (lambda: fusedmatmul(1, 0), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA, {"tactic": split("x", 2), "split": [("x", 2)], "coll": 0}]),
    "fp16_fastgelu": (lambda: mlp("FastGelu", T.FLOAT16), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]),
        {"tactic": split("w1", 1), "split": [("w1", 1), ("b1", 0)], "coll": None, "bytes": ["w1", "b1"]}]),
    "qdq_tensor": (qdq_tensor, {"batch": 4}, {}, [dict(DATA, split=[("x", 0)]), MEGA]),
    "qdq_axis": (lambda: qdq_axis(""), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)], whole=["w", "ws"]), MEGA,
        {"tactic": split("w", 1), "split": [("w", 1), ("ws", 0), ("wz", 0)], "coll": 0},
        {"tactic": split("x", 1), "split": [("x", 1), ("xs", 0), ("xz", 0)], "coll": None}]),
    "qdq_axis_ms": (lambda: qdq_axis(MS), {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), {"tactic": split("w", 1), "split": [("w", 1), ("ws", 0)], "coll": 0}]),
    "dq_block": (dq_block, {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)], whole=["w"]),
        {"tactic": split("w", 0), "split": [("w", 0), ("ws", 0), ("wz", 0)], "min_coll": 1,
         "coll": None},  # K, on block boundaries: a pending sum
        {"tactic": split("w", 1), "split": [("w", 1), ("ws", 1), ("wz", 1)], "coll": 0}]),
    "dynquant": (dynquant, {"batch": 4}, {}, [
        # the scale is over all of x: data gathers x first
        {"strategy": "data", "coll": None, "min_coll": 1}, MEGA]),
    "matmulinteger": (matmulinteger, {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA,
        {"tactic": split("b", 1), "split": [("b", 1), ("bz", 0)], "coll": 0},
        # K: an int32 sum no collective takes (ONNX Runtime's AllReduce, ONNX's Sum)
        {"tactic": split("b", 0), "whole": ["b"], "coll": 0}]),
    "qlinearmatmul": (qlinearmatmul, {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA,
        {"tactic": split("b", 1), "split": [("b", 1), ("bs", 0), ("bz", 0)], "coll": 0},
        {"tactic": split("b", 0), "whole": ["b"], "coll": 0}]),  # K: need-replication
    "convinteger": (convinteger, {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA, {"tactic": split("w", 0), "split": [("w", 0)], "coll": 0}]),
    "qlinearconv": (qlinearconv, {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA,
        {"tactic": split("w", 0), "split": [("w", 0), ("ws", 0), ("wz", 0), ("bias", 0)], "coll": 0},
        {"tactic": split("w", 1), "whole": ["w"], "coll": 0}]),  # C: need-replication
    "matmulintegertofloat": (matmulintegertofloat, {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]), MEGA,
        {"tactic": split("b", 1), "split": [("b", 1), ("bias", 0)], "coll": 0},
        {"tactic": split("b", 0), "whole": ["b"], "coll": 0}]),  # K: every rank would add the bias
    "dynquantmatmul": (dynquantmatmul, {"batch": 4}, {}, [
        {"strategy": "data", "coll": None, "min_coll": 1}, MEGA,
        {"tactic": split("b", 1), "split": [("b", 1), ("bias", 0)], "coll": 0}]),
    "bf16": (bf16, {"batch": 4}, {}, [
        dict(DATA, split=[("x", 0)]),
        {"tactic": split("w", 1), "split": [("w", 1)], "coll": 0, "bytes": ["w"]},
        {"tactic": split("w", 0), "split": [("w", 0)], "coll": None, "bytes": ["w"]}]),
}


def write(outdir):
    """Every model of CASES as OUTDIR/NAME.onnx; returns {name: path}."""
    os.makedirs(outdir, exist_ok=True)
    paths = {}
    for name, (build, _, _, _) in CASES.items():
        paths[name] = os.path.join(outdir, name + ".onnx")
        onnx.save(build(), paths[name])
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: gen.py OUTDIR", file=sys.stderr)
        sys.exit(2)
    for p in write(sys.argv[1]).values():
        print(p)
