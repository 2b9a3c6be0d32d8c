#!/usr/bin/python3
"""Writes the malformed-model corpus: tests/malformed/cases/* and
tests/malformed/expected.txt (FILE<TAB>the one stderr line onnxshard must print).

Run with /usr/bin/python3 (python3-onnx). The output is byte-identical on every
run: models are serialized by onnx's protobuf, the deep and huge ones are
written by hand on the wire, and gzip streams are encoded here (stored and
fixed-Huffman deflate blocks), not by the zlib of the day. The generated files
are committed; tests/malformed.sh runs them.
"""
import os
import shutil
import struct
import sys
import zlib

from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
MLP = os.path.join(HERE, "..", "..", "samples", "mlp.onnx")

F = TensorProto.FLOAT
I64 = TensorProto.INT64

cases = []  # (relative path, expected stderr line)


def put(name, data, expect):
    """Write data (bytes or a ModelProto) to cases/name; expect is the error
    after 'onnxshard: error: ', with {f} standing for name."""
    path = os.path.join(CASES, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not isinstance(data, (bytes, bytearray)):
        data = data.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    cases.append((name, "onnxshard: error: " + expect.replace("{f}", name)))


# ---- protobuf wire format, by hand ----

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field, payload):  # length-delimited field
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def vi(field, n):  # varint field
    return varint(field << 3) + varint(n)


OPSET17 = ld(8, vi(2, 17))  # ModelProto.opset_import {version: 17}


# ---- gzip, by hand ----

class BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def bits(self, v, n):  # LSB first
        self.acc |= v << self.n
        self.n += n
        while self.n >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.n -= 8

    def huff(self, code, n):  # Huffman codes go MSB first
        self.bits(int(format(code, "0%db" % n)[::-1], 2), n)

    def flush(self):
        if self.n:
            self.out.append(self.acc & 0xFF)
        self.acc = self.n = 0
        return bytes(self.out)


def fixed_literal(w, b):
    if b < 144:
        w.huff(0x30 + b, 8)
    else:
        w.huff(0x190 + b - 144, 9)


def deflate_repeat(head, unit, count, tail):
    """One fixed-Huffman block: head, then unit repeated count times (sent
    as literals once, then as matches of length 258 at a distance that is a
    multiple of the unit), then tail."""
    assert count >= 1 and 3 <= len(unit)
    w = BitWriter()
    w.bits(1, 1)  # BFINAL
    w.bits(1, 2)  # fixed Huffman
    for b in head + unit:
        fixed_literal(w, b)
    dist = len(unit) * max(1, 256 // len(unit))
    left = (count - 1) * len(unit)
    sent = len(unit)
    # literal copies until a whole distance is available
    while sent < dist and left:
        for b in unit:
            fixed_literal(w, b)
        sent += len(unit)
        left -= len(unit)
    dcode, dextra, dbits = None, 0, 0
    base = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769]
    for code, start in enumerate(base):
        nb = max(0, (code // 2) - 1)
        if start <= dist < start + (1 << nb):
            dcode, dextra, dbits = code, dist - start, nb
    assert dcode is not None
    while left >= 258:
        w.huff(0xC5, 8)  # length symbol 285 = 258 (fixed code 11000101)
        w.huff(dcode, 5)
        w.bits(dextra, dbits)
        left -= 258
    done = count * len(unit) - left  # the rest, continuing the period, as literals
    for i in range(left):
        fixed_literal(w, unit[(done + i) % len(unit)])
    for b in tail:
        fixed_literal(w, b)
    w.huff(0, 7)  # end of block (256)
    return w.flush()


def deflate_stored(data):
    out = bytearray()
    for i in range(0, max(len(data), 1), 65535):
        chunk = data[i:i + 65535]
        last = i + 65535 >= len(data)
        out += bytes([1 if last else 0]) + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk
    return bytes(out)


def gzip_wrap(deflated, data):
    # magic, deflate, no flags, mtime 0, xfl 0, OS unknown
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + deflated +
            struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF))


# ---- models through onnx.helper ----

def model(nodes, inputs, outputs, inits=(), opset=17, value_info=(), **kw):
    g = helper.make_graph(nodes, "g", list(inputs), list(outputs), list(inits),
                          value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], **kw)
    m.ir_version = 8
    return m


def tin(name, shape, dt=F):
    return helper.make_tensor_value_info(name, dt, shape)


def node(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or (outs[0] if outs else None), **attrs)


def ftensor(name, dims, dt=F):
    n = 1
    for d in dims:
        n *= d
    return helper.make_tensor(name, dt, dims, [1] * n)


def tensor(name, dt, dims, raw=None, **typed):
    """A TensorProto built field by field (onnx.helper refuses bad ones)."""
    t = TensorProto()
    t.name = name
    t.data_type = dt
    t.dims.extend(dims)
    if raw is not None:
        t.raw_data = raw
    for field, vals in typed.items():
        getattr(t, field).extend(vals)
    return t


def relu_model(**kw):
    return model([node("Relu", ["x"], ["y"])], [tin("x", [2, 3])], [tin("y", [2, 3])], **kw)


# ======================================================================
# truncations of a real model (samples/mlp.onnx, 132808 bytes: ir_version
# at 0, producer fields at 2..18, the graph at 19..132803 with its nodes at
# 23..304 and initializers from 305, opset_import at 132804)

def truncations():
    with open(MLP, "rb") as f:
        mlp = f.read()
    assert len(mlp) == 132808 and zlib.crc32(mlp) == 0x3651CC36, "samples/mlp.onnx changed"
    bad = "{f}: not a valid ONNX model (protobuf parse failed: truncated or corrupt)"
    for cut, expect in [
        (1, bad),                                    # inside the first field
        (2, "{f}: not an ONNX model (no graph)"),    # a field boundary: ir_version only
        (19, "{f}: not an ONNX model (no graph)"),   # a field boundary before the graph
        (21, bad),                                   # inside the graph's length
        (100, bad),                                  # inside the first node
        (135, bad),                                  # between two nodes, inside the graph
        (320, bad),                                  # inside fc1.weight's raw_data
        (132804, "{f}: no opset_import (truncated or not an ONNX model)"),  # after the graph
        (len(mlp) - 1, bad),                         # 1 byte short
    ]:
        put("trunc/mlp_%d.onnx" % cut, mlp[:cut], expect)


# ======================================================================

def not_protobuf():
    put("file/empty.onnx", b"", "{f}: empty file")
    os.makedirs(os.path.join(CASES, "file", "dir.onnx"), exist_ok=True)
    with open(os.path.join(CASES, "file", "dir.onnx", ".keep"), "wb"):
        pass
    cases.append(("file/dir.onnx", "onnxshard: error: file/dir.onnx: is a directory"))
    bad = "{f}: not a valid ONNX model (protobuf parse failed: truncated or corrupt)"
    put("file/text.onnx", b'ir_version: 8\nopset_import { version: 17 }\n'
        b'graph { node { op_type: "Relu" input: "x" output: "y" } }\n', bad)
    put("file/json.onnx", b'{"irVersion": "8", "graph": {"node": [{"opType": "Relu"}]}}\n', bad)
    put("proto/group_wiretype.onnx", vi(1, 8) + varint(7 << 3 | 3) + varint(7 << 3 | 4), bad)
    put("proto/length_past_end.onnx", vi(1, 8) + varint(7 << 3 | 2) + varint(1 << 30) + b"\x0a", bad)
    put("proto/varint_too_long.onnx", b"\x08" + b"\xff" * 11, bad)
    put("proto/zero_field.onnx", b"\x00\x00" + relu_model().SerializeToString(), bad)
    # gzip
    inner = relu_model().SerializeToString()
    good = gzip_wrap(deflate_stored(inner), inner)
    put("gz/truncated.onnx.gz", good[:len(good) // 2], "{f}: bad gzip stream (truncated)")
    put("gz/header_only.onnx.gz", good[:10], "{f}: bad gzip stream (truncated)")
    put("gz/bad_block.onnx.gz", good[:10] + b"\x07\xff\xff\xff" + good[14:],
        "{f}: bad gzip stream (invalid block type)")
    put("gz/bad_crc.onnx.gz", good[:-8] + b"\0\0\0\0" + good[-4:],
        "{f}: bad gzip stream (incorrect data check)")
    put("gz/bad_length.onnx.gz", good[:-4] + struct.pack("<I", len(inner) + 1),
        "{f}: bad gzip stream (incorrect length check)")
    text = b"this is not a model\n" * 10
    put("gz/not_a_model.onnx.gz", gzip_wrap(deflate_stored(text), text), bad)


# ======================================================================
# model-level structure

def model_structure():
    m = relu_model()
    m.ClearField("opset_import")
    put("model/no_opset_import.onnx", m, "{f}: no opset_import (truncated or not an ONNX model)")
    m = relu_model()
    m.ClearField("ir_version")
    put("model/no_ir_version.onnx", m, "{f}: not an ONNX model (no ir_version)")
    m = model([node("Frob", ["x"], ["y"], domain="com.example")], [tin("x", [2])],
              [tin("y", [2])])
    put("model/domain_not_imported.onnx", m,
        "{f}: node 'y' (Frob): domain 'com.example' is not in opset_import")
    m = relu_model()
    m.opset_import[0].domain = "com.example"
    put("model/no_default_opset.onnx", m,
        "{f}: node 'y' (Relu): domain '' is not in opset_import")


# ======================================================================
# tensors

def tensors():
    def init_model(t, shape=None):
        shape = list(t.dims) if shape is None else shape
        return model([node("Add", ["x", "w"], ["y"])], [tin("x", shape)], [tin("y", shape)], [t])

    t = helper.make_tensor("w", F, [2], [1, 2])
    t.dims[0] = -3
    put("tensor/negative_dim.onnx", init_model(t, [2]), "{f}: tensor 'w': negative dimension -3")
    t = helper.make_tensor("w", F, [0], [])
    t.ClearField("dims")
    t.dims.extend([1 << 31, 1 << 31, 1 << 31])
    put("tensor/overflow_dims.onnx", init_model(t, [2]), "{f}: tensor 'w': element count overflows")
    t = helper.make_tensor("w", F, [0], [])
    t.ClearField("dims")
    t.dims.extend([(1 << 62) + 1, 4])
    put("tensor/overflow_dims_wrap.onnx", init_model(t, [2]),
        "{f}: tensor 'w': element count overflows")
    t = helper.make_tensor("w", F, [2], [1, 2])
    t.data_type = 99
    put("tensor/unknown_dtype.onnx", init_model(t), "{f}: tensor 'w': unknown data type 99")
    t = helper.make_tensor("w", F, [2], [1, 2])
    t.data_type = 0
    put("tensor/undefined_dtype.onnx", init_model(t), "{f}: tensor 'w': unknown data type 0")
    t = helper.make_tensor("w", F, [2], [1, 2])
    t.data_type = -5
    put("tensor/negative_dtype.onnx", init_model(t), "{f}: tensor 'w': unknown data type -5")
    t = tensor("w", F, [4], b"\0" * 12)
    put("tensor/raw_short.onnx", init_model(t),
        "{f}: tensor 'w': raw_data holds 12 bytes, dims need 16")
    t = tensor("w", F, [4], b"\0" * 20)
    put("tensor/raw_long.onnx", init_model(t),
        "{f}: tensor 'w': raw_data holds 20 bytes, dims need 16")
    t = tensor("w", F, [4], float_data=[1, 2, 3])
    put("tensor/typed_short.onnx", init_model(t), "{f}: tensor 'w': holds 3 values, dims need 4")
    t = tensor("w", I64, [2], int64_data=[1, 2, 3])
    put("tensor/typed_long.onnx", init_model(t), "{f}: tensor 'w': holds 3 values, dims need 2")
    t = helper.make_tensor("w", F, [2], [1, 2])  # float dtype, values in int64_data
    t.ClearField("float_data")
    t.int64_data.extend([1, 2])
    put("tensor/typed_wrong_field.onnx", init_model(t),
        "{f}: tensor 'w': holds 0 values, dims need 2")
    t = helper.make_tensor("w", TensorProto.STRING, [2], [b"a", b"b"])
    t.ClearField("string_data")
    t.raw_data = b"ab"
    put("tensor/string_raw.onnx", init_model(t), "{f}: tensor 'w': string tensor in raw_data")
    # int4 (data type 22, two values a byte): 5 values are 3 bytes, or 3
    # int32_data entries, not one a value
    def int4_model(t):
        return model([node("DequantizeLinear", ["w", "s"], ["y"])], [], [tin("y", [5])],
                     [t, helper.make_tensor("s", F, [], [0.5])], opset=21)
    put("tensor/int4_raw_unpacked.onnx", int4_model(tensor("w", 22, [5], b"\1" * 5)),
        "{f}: tensor 'w': raw_data holds 5 bytes, dims need 3")
    put("tensor/int4_typed_unpacked.onnx", int4_model(tensor("w", 22, [5], int32_data=[1] * 5)),
        "{f}: tensor 'w': holds 5 values, dims need 3")
    # a bad tensor inside a Constant node and inside a subgraph
    t = tensor("c", F, [3], float_data=[1, 2])
    m = model([node("Constant", [], ["c"], value=t), node("Add", ["x", "c"], ["y"])],
              [tin("x", [3])], [tin("y", [3])])
    put("tensor/constant_short.onnx", m, "{f}: tensor 'c': holds 2 values, dims need 3")
    sub = helper.make_graph([node("Identity", ["k"], ["z"])], "then",
                            [], [tin("z", [2])], [tensor("k", F, [2], float_data=[1, 2, 3])])
    m = model([node("If", ["b"], ["y"], then_branch=sub, else_branch=sub)],
              [tin("b", [], TensorProto.BOOL)], [tin("y", [2])])
    put("tensor/subgraph_init_long.onnx", m, "{f}: tensor 'k': holds 3 values, dims need 2")
    sp = helper.make_sparse_tensor(tensor("v", F, [2], float_data=[1]),
                                   helper.make_tensor("i", I64, [2], [0, 1]), [4])
    m = relu_model()
    m.graph.sparse_initializer.append(sp)
    put("tensor/sparse_values_short.onnx", m, "{f}: tensor 'v': holds 1 values, dims need 2")


# ======================================================================
# external data (files in cases/ext/)

def external():
    d = os.path.join(CASES, "ext")
    os.makedirs(os.path.join(d, "sub"), exist_ok=True)
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(bytes(range(64)))
    with open(os.path.join(d, "sub", ".keep"), "wb"):
        pass
    os.symlink("weights.bin", os.path.join(d, "link.bin"))

    def ext_model(loc, n=16, dt=F, **keys):
        t = TensorProto()
        t.name = "w"
        t.data_type = dt
        t.dims.append(n)
        t.data_location = TensorProto.EXTERNAL
        entries = ([("location", loc)] if loc is not None else []) + list(keys.items())
        for k, v in entries:
            e = t.external_data.add()
            e.key = k
            e.value = v
        return model([node("Add", ["x", "w"], ["y"])], [tin("x", [n], dt)], [tin("y", [n], dt)], [t])

    pre = "{f}: tensor 'w': "
    put("ext/absolute.onnx", ext_model("/etc/passwd"),
        pre + "external data location '/etc/passwd' is absolute")
    put("ext/dotdot.onnx", ext_model("../ext/weights.bin"),
        pre + "external data location '../ext/weights.bin' leaves the model's folder")
    put("ext/dotdot_inner.onnx", ext_model("sub/../../ext/weights.bin"),
        pre + "external data location 'sub/../../ext/weights.bin' leaves the model's folder")
    put("ext/symlink.onnx", ext_model("link.bin"),
        pre + "external data file 'link.bin' is a symlink")
    put("ext/past_end.onnx", ext_model("weights.bin", 32),
        pre + "external data past the end of 'weights.bin' (offset 0, length 128, file 64 bytes)")
    put("ext/offset_past_end.onnx", ext_model("weights.bin", 4, offset="60"),
        pre + "external data past the end of 'weights.bin' (offset 60, length 16, file 64 bytes)")
    put("ext/offset_overflow.onnx", ext_model("weights.bin", 4, offset="18446744073709551612"),
        pre + "external data past the end of 'weights.bin' "
        "(offset 18446744073709551612, length 16, file 64 bytes)")
    put("ext/offset_huge.onnx", ext_model("weights.bin", 4, offset="99999999999999999999999"),
        pre + "bad external data offset or length")
    put("ext/offset_negative.onnx", ext_model("weights.bin", 4, offset="-16"),
        pre + "bad external data offset or length")
    put("ext/length_mismatch.onnx", ext_model("weights.bin", 4, length="12"),
        pre + "external data holds 12 bytes, dims need 16")
    put("ext/missing.onnx", ext_model("missing.bin"),
        pre + "external data file 'missing.bin': No such file or directory")
    put("ext/directory.onnx", ext_model("sub"),
        pre + "external data file 'sub' is not a readable regular file")
    put("ext/empty_location.onnx", ext_model(""), pre + "empty external data location")
    put("ext/no_location.onnx", ext_model(None, offset="0"),
        pre + "external data without a location")
    put("ext/string.onnx", ext_model("weights.bin", 2, TensorProto.STRING),
        pre + "string tensor in external data")


# ======================================================================
# nesting: written on the wire, innermost first

def nested(levels, field=6, named=False):
    """A NodeProto whose attribute (g, or graphs when field is 11) holds a
    graph of one such node ... levels deep; and the graph holding it. Named:
    op_type If, attribute then_branch with its type; else only what nests
    (the deep ones, to stay small: the nesting is refused before the rest
    is looked at)."""
    g = b""
    for _ in range(levels):
        attr = ld(field, g)
        if named:
            attr = ld(1, b"then_branch") + vi(20, 5 if field == 6 else 10) + attr
        nd = (ld(4, b"If") if named else b"") + ld(5, attr)
        g = ld(1, nd)  # GraphProto.node
    return nd, g


def nesting():
    deep = "{f}: subgraphs nested deeper than 64 levels"
    put("nest/if_65.onnx", vi(1, 8) + ld(7, nested(65, named=True)[1]) + OPSET17, deep)
    put("nest/if_5000.onnx", vi(1, 8) + ld(7, nested(5000)[1]) + OPSET17, deep)
    put("nest/graphs_3000.onnx", vi(1, 8) + ld(7, nested(3000, 11)[1]) + OPSET17, deep)
    # ModelProto.functions: FunctionProto.node (7) -> attribute -> g ...
    fn = ld(1, b"f") + ld(7, nested(3000)[0]) + ld(10, b"local")
    put("nest/function_3000.onnx", vi(1, 8) + ld(7, b"") + OPSET17 + ld(25, fn), deep)
    # ModelProto.training_info: TrainingInfoProto.algorithm (2) -> graph ...
    put("nest/training_3000.onnx",
        vi(1, 8) + ld(7, b"") + OPSET17 + ld(20, ld(2, nested(3000)[1])), deep)
    # a graph input's type: sequence of sequence of ... (TypeProto 4 -> 1)
    t = ld(1, vi(1, 1))  # tensor_type {elem_type: FLOAT}
    for _ in range(5000):
        t = ld(4, ld(1, t))
    vinfo = ld(1, b"x") + ld(2, t)
    put("nest/sequence_type_5000.onnx", vi(1, 8) + ld(7, ld(11, vinfo)) + OPSET17,
        "{f}: protobuf messages nested deeper than 264 levels")


# ======================================================================
# graphs that are not graphs (lifting)

def graphs():
    x23 = [tin("x", [2, 3])]
    y23 = [tin("y", [2, 3])]
    m = model([node("Add", ["x", "z"], ["y"], name="a"), node("Relu", ["y"], ["z"], name="b")],
              x23, y23)
    put("graph/cycle.onnx", m, "{f}: node 'a' (Add): the graph has a cycle through it")
    m = model([node("Add", ["x", "y"], ["y"], name="a")], x23, y23)
    put("graph/self_loop.onnx", m, "{f}: node 'a' (Add): the graph has a cycle through it")
    m = model([node("Relu", ["x"], ["y"], name="a"), node("Neg", ["x"], ["y"], name="b")],
              x23, y23)
    put("graph/produced_twice.onnx", m,
        "{f}: node 'b' (Neg): value 'y' is produced twice (also by another node)")
    m = model([node("Relu", ["x"], ["x"], name="a")], x23, [tin("x", [2, 3])])
    put("graph/overwrites_input.onnx", m,
        "{f}: node 'a' (Relu): value 'x' is produced twice (also by a graph input)")
    m = model([node("Relu", ["x"], ["w"], name="a")], x23, [tin("w", [2])],
              [ftensor("w", [2])])
    put("graph/overwrites_initializer.onnx", m,
        "{f}: node 'a' (Relu): value 'w' is produced twice (also by an initializer)")
    m = model([node("Add", ["x", "nope"], ["y"], name="a")], x23, y23)
    put("graph/dangling_input.onnx", m,
        "{f}: node 'a' (Add): input 'nope' is not produced by any node, graph input or initializer")
    m = model([node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["y"], name="fc1")],
              [tin("x", [2, 4])], [tin("y", [2, 3])],
              [ftensor("fc1.weights", [4, 3]), ftensor("fc1.bias", [3])])
    put("graph/missing_initializer.onnx", m,
        "{f}: node 'fc1' (Gemm): input 'fc1.weight' is not produced by any node, graph input or initializer")
    m = model([node("Relu", ["x"], ["y"], name="a")], x23, [tin("out", [2, 3])])
    put("graph/output_not_produced.onnx", m,
        "{f}: graph output 'out' is not produced by any node, input or initializer")
    m = relu_model()
    m.graph.node[0].ClearField("op_type")
    put("graph/no_op_type.onnx", m, "{f}: node #0 has no op_type")
    m = relu_model()
    m.graph.node[0].op_type = ""
    m.graph.node.insert(0, node("Neg", ["x"], ["x2"]))
    put("graph/empty_op_type.onnx", m, "{f}: node #1 has no op_type")
    m = model([node("Add", ["x", "w"], ["y"])], x23, y23, [ftensor("", [3])])
    put("graph/unnamed_initializer.onnx", m, "{f}: an initializer has no name")
    m = model([node("Add", ["x", "w"], ["y"])], x23, y23, [ftensor("w", [3]), ftensor("w", [3])])
    put("graph/initializer_twice.onnx", m, "{f}: initializer 'w' is defined twice")
    m = model([node("Relu", ["x"], ["y"])], [tin("x", [2]), tin("", [2])], [tin("y", [2])])
    put("graph/unnamed_input.onnx", m, "{f}: graph input #1 has no name")
    m = model([node("Relu", ["x"], ["y"])], [tin("x", [2]), tin("x", [2])], [tin("y", [2])])
    put("graph/input_twice.onnx", m, "{f}: graph input 'x' is listed twice")
    m = model([node("Gemm", ["x"], ["y"], name="a")], x23, y23)
    put("graph/too_few_inputs.onnx", m, "{f}: node 'a' (Gemm): needs 2 inputs, has fewer")
    m = model([node("Relu", ["x", "x"], ["y"], name="a")], x23, y23)
    put("graph/too_many_inputs.onnx", m, "{f}: node 'a' (Relu): takes at most 1 inputs, has 2")
    m = model([node("MatMul", ["", "x"], ["y"], name="a")], x23, y23)
    put("graph/empty_required_input.onnx", m, "{f}: node 'a' (MatMul): input 0 is required but empty")
    m = model([node("Relu", ["x"], [], name="a"), node("Relu", ["x"], ["y"], name="b")], x23, y23)
    put("graph/no_output.onnx", m, "{f}: node 'a' (Relu): has no output")


# ======================================================================
# a node with a huge number of inputs: Sum of 200,000 operands, the last
# of which cannot broadcast with the others (gzip, else 600 kB)

def huge():
    n = 200000
    head = vi(1, 8) + OPSET17
    # GraphProto: node {input: "x" * (n-1), input: "z", output: "y", op_type: Sum, name: big}
    unit = ld(1, b"x")
    tail_node = ld(1, b"z") + ld(2, b"y") + ld(3, b"big") + ld(4, b"Sum")
    node_len = len(unit) * (n - 1) + len(tail_node)
    inputs = (ld(11, ld(1, b"x") + ld(2, ld(1, vi(1, 1) + ld(2, ld(1, vi(1, 4)))))) +
              ld(11, ld(1, b"z") + ld(2, ld(1, vi(1, 1) + ld(2, ld(1, vi(1, 5)))))))
    output = ld(12, ld(1, b"y") + ld(2, ld(1, vi(1, 1))))
    node_hdr = varint(1 << 3 | 2) + varint(node_len)
    graph_len = len(node_hdr) + node_len + len(inputs) + len(output)
    graph_hdr = varint(7 << 3 | 2) + varint(graph_len)
    data = head + graph_hdr + node_hdr + unit * (n - 1) + tail_node + inputs + output
    gz = gzip_wrap(deflate_repeat(head + graph_hdr + node_hdr, unit, n - 1,
                                  tail_node + inputs + output), data)
    assert zlib.decompress(gz, 31) == data
    put("huge/sum_200000.onnx.gz", gz, "{f}: node 'big' (Sum): cannot broadcast dim 4 with 5")


# ======================================================================
# shapes that contradict each other, and operands of the wrong type

def shapes():
    def one(name, nodes, inputs, outputs, inits, expect, **kw):
        put("shape/" + name, model(nodes, inputs, outputs, inits, **kw), expect)

    one("matmul_inner.onnx", [node("MatMul", ["a", "b"], ["y"], name="mm")],
        [tin("a", [2, 4]), tin("b", [5, 3])], [tin("y", [2, 3])], [],
        "{f}: node 'mm' (MatMul): inner dims 4 and 5 differ")
    one("gemm_rank3.onnx", [node("Gemm", ["a", "b"], ["y"], name="gemm")],
        [tin("a", [2, 3, 4]), tin("b", [4, 5])], [tin("y", [2, 5])], [],
        "{f}: node 'gemm' (Gemm): operands must be matrices (ranks 3 and 2)")
    one("concat_ranks.onnx", [node("Concat", ["a", "b"], ["y"], name="cat", axis=0)],
        [tin("a", [2, 3]), tin("b", [2, 3, 1])], [tin("y", [4, 3])], [],
        "{f}: node 'cat' (Concat): operand 1 has rank 3, operand 0 rank 2")
    one("reshape_count.onnx", [node("Reshape", ["x", "s"], ["y"], name="rs")],
        [tin("x", [2, 3])], [tin("y", [4, 2])], [helper.make_tensor("s", I64, [2], [4, 2])],
        "{f}: node 'rs' (Reshape): cannot reshape 6 elements into 8")
    one("reshape_float_shape.onnx", [node("Reshape", ["x", "s"], ["y"], name="rs")],
        [tin("x", [2, 3])], [tin("y", [3, 2])], [helper.make_tensor("s", F, [2], [3, 2])],
        "{f}: node 'rs' (Reshape): shape 's' is float32, not int64")
    one("add_bcast.onnx", [node("Add", ["a", "b"], ["y"], name="add")],
        [tin("a", [2, 3]), tin("b", [2, 4])], [tin("y", [2, 3])], [],
        "{f}: node 'add' (Add): cannot broadcast dim 3 with 4")
    one("transpose_perm.onnx", [node("Transpose", ["x"], ["y"], name="t", perm=[0, 0])],
        [tin("x", [2, 3])], [tin("y", [3, 2])], [],
        "{f}: node 't' (Transpose): perm is not a permutation of 2 axes")
    one("split_sum.onnx", [node("Split", ["x", "s"], ["y", "z"], name="sp", axis=0)],
        [tin("x", [6, 3])], [tin("y", [2, 3]), tin("z", [3, 3])],
        [helper.make_tensor("s", I64, [2], [2, 3])],
        "{f}: node 'sp' (Split): split sizes sum to 5, the dim is 6")
    one("expand_shape.onnx", [node("Expand", ["x", "s"], ["y"], name="ex")],
        [tin("x", [2, 3])], [tin("y", [2, 4])], [helper.make_tensor("s", I64, [2], [2, 4])],
        "{f}: node 'ex' (Expand): cannot expand dim 3 to 4")
    one("cast_to.onnx", [node("Cast", ["x"], ["y"], name="c", to=77)],
        [tin("x", [2])], [tin("y", [2])], [],
        "{f}: node 'c' (Cast): attribute 'to' is not a known data type (77)")
    one("tile_negative.onnx", [node("Tile", ["x", "r"], ["y"], name="tile")],
        [tin("x", [2, 3])], [tin("y", [2, 3])], [helper.make_tensor("r", I64, [2], [1, -2])],
        "{f}: node 'tile' (Tile): repeat -2 is negative")
    one("expand_float_shape.onnx", [node("Expand", ["x", "s"], ["y"], name="ex")],
        [tin("x", [2, 3])], [tin("y", [2, 3])], [helper.make_tensor("s", F, [2], [2, 3])],
        "{f}: node 'ex' (Expand): shape 's' is float32, not int64")
    one("slice_float_starts.onnx", [node("Slice", ["x", "s", "e"], ["y"], name="sl")],
        [tin("x", [4])], [tin("y", [2])], [helper.make_tensor("s", F, [1], [1]),
                                           helper.make_tensor("e", I64, [1], [3])],
        "{f}: node 'sl' (Slice): starts 's' is float32, not int32 or int64")
    one("gather_float_indices.onnx", [node("Gather", ["x", "i"], ["y"], name="ga")],
        [tin("x", [4, 2]), tin("i", [3])], [tin("y", [3, 2])], [],
        "{f}: node 'ga' (Gather): indices 'i' is float32, not int32 or int64")
    one("constantofshape_float.onnx", [node("ConstantOfShape", ["s"], ["y"], name="c")],
        [tin("s", [2])], [tin("y", None)], [],
        "{f}: node 'c' (ConstantOfShape): shape 's' is float32, not int64")
    one("einsum_output_label.onnx",
        [node("Einsum", ["a", "b"], ["y"], name="e", equation="ij,jk->ikq")],
        [tin("a", [2, 3]), tin("b", [3, 4])], [tin("y", None)], [],
        "{f}: node 'e' (Einsum): bad equation 'ij,jk->ikq' for the operands")
    one("einsum_label_sizes.onnx",
        [node("Einsum", ["a", "b"], ["y"], name="e", equation="ij,jk->ik")],
        [tin("a", [2, 3]), tin("b", [5, 4])], [tin("y", None)], [],
        "{f}: node 'e' (Einsum): equation 'ij,jk->ik': operand 1 dim 0 is 5, elsewhere 3")
    one("conv_kernel.onnx", [node("Conv", ["x", "w"], ["y"], name="conv")],
        [tin("x", [1, 1, 3, 3]), tin("w", [1, 1, 5, 5])], [tin("y", None)], [],
        "{f}: node 'conv' (Conv): output spatial dim would be -1")
    one("split_negative.onnx", [node("Split", ["x", "s"], ["y", "z"], name="sp")],
        [tin("x", [4])], [tin("y", None), tin("z", None)],
        [helper.make_tensor("s", I64, [2], [-1, 5])],
        "{f}: node 'sp' (Split): split size -1 is out of range")
    one("reshape_two_minus1.onnx", [node("Reshape", ["x", "s"], ["y"], name="rs")],
        [tin("x", [2, 3])], [tin("y", [6])], [helper.make_tensor("s", I64, [2], [-1, -1])],
        "{f}: node 'rs' (Reshape): more than one -1 in the target shape")


# ======================================================================
# names: one-line diagnostics and JSON need printable UTF-8

def text():
    def swap(m, marker, raw):  # put bytes python's protobuf refuses to set
        data = m.SerializeToString()
        assert data.count(marker) == 1
        return data.replace(marker, raw)

    m = model([node("Relu", ["QQ"], ["y"], name="r")], [tin("QQ", [2])], [tin("y", [2])])
    m.graph.input[0].name = "x"
    put("text/input_not_utf8.onnx", swap(m, b"QQ", b"\xff\xfe"),
        "{f}: node #0 input 0 is not valid UTF-8")
    m = model([node("Relu", ["x"], ["y"], name="QQQ")], [tin("x", [2])], [tin("y", [2])])
    put("text/name_overlong_utf8.onnx", swap(m, b"QQQ", b"\xe0\x80\xaf"),
        "{f}: node #0 name is not valid UTF-8")
    m = model([node("Relu", ["x"], ["y"], name="r")], [tin("x", [2])], [tin("y", [2])],
              producer_name="QQQ")
    put("text/producer_surrogate.onnx", swap(m, b"QQQ", b"\xed\xa0\x80"),
        "{f}: producer_name is not valid UTF-8")
    m = model([node("Add", ["x", "a\nb"], ["y"], name="n")], [tin("x", [2])], [tin("y", [2])])
    put("text/newline_in_input.onnx", m, "{f}: node #0 input 1 contains a control character")
    m = model([node("Relu", ["x"], ["y"])], [tin("x", ["batch\r", 2])], [tin("y", ["batch\r", 2])])
    put("text/dim_param_control.onnx", m, "{f}: graph input #0 dim 0 contains a control character")
    m = model([node("Add", ["x", "w\n"], ["y"])], [tin("x", [2])], [tin("y", [2])],
              [ftensor("w\n", [2])])
    put("text/tensor_name_newline.onnx", m, "{f}: node #0 input 1 contains a control character")
    sub = helper.make_graph([node("Identity", ["k\n"], ["z"])], "then", [], [tin("z", [2])],
                            [tensor("k\n", F, [2], float_data=[1, 2, 3])])
    m = model([node("If", ["b"], ["y"], then_branch=sub, else_branch=sub)],
              [tin("b", [], TensorProto.BOOL)], [tin("y", [2])])
    put("text/subgraph_tensor_newline.onnx", m, "{f}: a tensor's name contains a control character")
    m = model([node("Einsum", ["a", "b"], ["y"], name="e", equation="ij,jk\n->ik")],
              [tin("a", [2, 3]), tin("b", [3, 4])], [tin("y", [2, 4])])
    put("text/equation_newline.onnx", m,
        "{f}: node 'e' (Einsum): bad equation 'ij,jk?->ik' for the operands")


# ======================================================================
# shapes the passes cannot hold, refused on lifting

def limits():
    def one(name, nodes, inputs, outputs, inits, expect, **kw):
        put("limit/" + name, model(nodes, inputs, outputs, inits, **kw), expect)

    one("input_rank65.onnx", [node("Relu", ["x"], ["y"], name="r")], [tin("x", [1] * 65)],
        [tin("y", None)], [], "{f}: graph input 'x': rank 65 is above 64")
    one("initializer_rank65.onnx", [node("Relu", ["w"], ["y"], name="r")], [],
        [tin("y", None)], [tensor("w", F, [1] * 65, float_data=[1])],
        "{f}: initializer 'w': rank 65 is above 64")
    m = model([node("Frob", ["x"], ["y"], name="f", domain="com.example")], [tin("x", [2])],
              [tin("y", [1] * 70)])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    put("limit/declared_rank70.onnx", m, "{f}: node 'f' (Frob): result 'y': rank 70 is above 64")
    one("input_dims_overflow.onnx", [node("Relu", ["x"], ["y"], name="r")],
        [tin("x", [1 << 40, 1 << 40])], [tin("y", None)], [],
        "{f}: graph input 'x': element count overflows")
    one("input_dims_overflow_empty.onnx", [node("Relu", ["x"], ["y"], name="r")],
        [tin("x", [8, 1 << 62, 0, 2])], [tin("y", None)], [],
        "{f}: graph input 'x': element count overflows")
    one("expand_negative.onnx", [node("Expand", ["x", "s"], ["y"], name="e")],
        [tin("x", [1, 3])], [tin("y", None)], [helper.make_tensor("s", I64, [2], [-4, 3])],
        "{f}: node 'e' (Expand): result 'y': dim 0 is negative (-4)")
    one("constantofshape_huge.onnx", [node("ConstantOfShape", ["s"], ["y"], name="c")], [],
        [tin("y", None)], [helper.make_tensor("s", I64, [2], [1 << 31, 1 << 31])],
        "{f}: node 'c' (ConstantOfShape): result 'y': element count overflows")
    one("constantofshape_rank.onnx", [node("ConstantOfShape", ["s"], ["y"], name="c")],
        [tin("s", [(1 << 32) + 1], I64)], [tin("y", None)], [],
        "{f}: node 'c' (ConstantOfShape): rank 4294967297 is above 64")
    one("range_huge.onnx", [node("Range", ["a", "b", "c"], ["y"], name="r")], [],
        [tin("y", None)], [helper.make_tensor("a", I64, [], [0]),
                           helper.make_tensor("b", I64, [], [1 << 62]),
                           helper.make_tensor("c", I64, [], [1])],
        "{f}: node 'r' (Range): result 'y': element count overflows")
    one("tile_huge.onnx", [node("Tile", ["x", "r"], ["y"], name="t")], [tin("x", [2, 3])],
        [tin("y", None)], [helper.make_tensor("r", I64, [2], [1 << 40, 1 << 40])],
        "{f}: node 't' (Tile): result 'y': element count overflows")


def main():
    if os.path.exists(CASES):
        shutil.rmtree(CASES)
    os.makedirs(CASES)
    truncations()
    not_protobuf()
    model_structure()
    tensors()
    external()
    nesting()
    graphs()
    huge()
    shapes()
    text()
    limits()
    names = [c[0] for c in cases]
    assert len(names) == len(set(names)), "a case name is used twice"
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        for name, line in sorted(cases):
            assert "\t" not in line and "\n" not in line
            f.write("%s\t%s\n" % (name, line))
    print("%d cases in %s" % (len(cases), CASES), file=sys.stderr)


if __name__ == "__main__":
    main()
