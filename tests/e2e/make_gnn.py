#!/usr/bin/python3
"""Small test models for tests/e2e/gnn.sh, written with onnx.helper.

    /usr/bin/python3 tests/e2e/make_gnn.py OUTDIR

- gnn_sym.onnx: one message-passing layer over x [num_nodes, 32] float and
  edge_index [2, num_edges] int64 (ids < num_nodes), both dims symbolic:
  messages = Gather(x, edge_index[0]) @ W; ScatterElements (reduction add)
  of them into zeros [num_nodes, 32] at edge_index[1]; the same with
  ScatterND (reduction add); node update Relu((x + agg_e + agg_nd + s) @ U),
  s the sum over edges of x at the destinations (int32 ids).
  Also integer node tables looked up: labels [num_nodes, 4] int64 at the
  sources (then ReduceSum), tags [num_nodes, 2] int32 at the destinations
  (then ReduceSum).
- gnn_const.onnx: the same with num_nodes = 16 and num_edges = 24 constant.
- past.onnx: a decoder's cache step: present = Concat(past [1, past_sequence_length, 8],
  cur [1, sequence_length, 8]) along dim 1, y = present @ W.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

F = 32


def gnn(nodes, edges):
    rng = np.random.default_rng(0)
    w = nh.from_array(rng.standard_normal((F, F)).astype(np.float32) / 4, "W")
    u = nh.from_array(rng.standard_normal((F, F)).astype(np.float32) / 4, "U")
    c = [nh.from_array(np.array(v, dtype=np.int64), n) for n, v in
         (("zero", [0]), ("one", [1]), ("minus1", [-1]), ("ax1", [1]))]
    n = [
        h.make_node("Gather", ["edge_index", "zero"], ["src2"], axis=0),  # [1, E]
        h.make_node("Squeeze", ["src2", "zero"], ["src"]),  # [E]
        h.make_node("Gather", ["edge_index", "one"], ["dst2"], axis=0),
        h.make_node("Squeeze", ["dst2", "zero"], ["dst"]),
        h.make_node("Gather", ["x", "src"], ["xs"], axis=0),  # [E, F]
        h.make_node("MatMul", ["xs", "W"], ["msg"]),
        # ScatterElements: indices dst expanded to [E, F]
        h.make_node("Unsqueeze", ["dst", "ax1"], ["dstc"]),  # [E, 1]
        h.make_node("Shape", ["msg"], ["msg_shape"]),
        h.make_node("Expand", ["dstc", "msg_shape"], ["dst_e"]),
        h.make_node("Shape", ["x"], ["x_shape"]),
        h.make_node("ConstantOfShape", ["x_shape"], ["zeros"],
                    value=h.make_tensor("v", T.FLOAT, [1], [0.0])),
        h.make_node("ScatterElements", ["zeros", "dst_e", "msg"], ["agg_e"], axis=0, reduction="add"),
        # ScatterND: indices [E, 1]
        h.make_node("ScatterND", ["zeros", "dstc", "msg"], ["agg_nd"], reduction="add"),
        h.make_node("Add", ["x", "agg_e"], ["h1"]),
        h.make_node("Add", ["h1", "agg_nd"], ["h1b"]),
        # a lookup with int32 ids: x at the destinations, summed per edge
        h.make_node("Cast", ["dst"], ["dst32"], to=T.INT32),
        h.make_node("Gather", ["x", "dst32"], ["xd"], axis=0),  # [E, F]
        h.make_node("ReduceSum", ["xd", "zero"], ["xd_sum"], keepdims=1),  # [1, F]
        h.make_node("Add", ["h1b", "xd_sum"], ["h2"]),
        h.make_node("MatMul", ["h2", "U"], ["h3"]),
        h.make_node("Relu", ["h3"], ["y"]),
        # an int64 table looked up at the sources
        h.make_node("Gather", ["labels", "src"], ["ls"], axis=0),  # [E, 4] int64
        h.make_node("ReduceSum", ["ls", "zero"], ["label_sum"], keepdims=0),  # [4]
        # and an int32 one (ORT's AllGather takes no int32: sent as int64)
        h.make_node("Gather", ["tags", "dst"], ["ts"], axis=0),  # [E, 2] int32
        h.make_node("ReduceSum", ["ts", "zero"], ["tag_sum"], keepdims=0),  # [2]
    ]
    g = h.make_graph(
        n, "gnn",
        [h.make_tensor_value_info("x", T.FLOAT, [nodes, F]),
         h.make_tensor_value_info("edge_index", T.INT64, [2, edges]),
         h.make_tensor_value_info("labels", T.INT64, [nodes, 4]),
         h.make_tensor_value_info("tags", T.INT32, [nodes, 2])],
        [h.make_tensor_value_info("y", T.FLOAT, [nodes, F]),
         h.make_tensor_value_info("label_sum", T.INT64, [4]),
         h.make_tensor_value_info("tag_sum", T.INT32, [2])],
        [w, u] + c)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="make_gnn")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def past():
    rng = np.random.default_rng(1)
    w = nh.from_array(rng.standard_normal((8, 8)).astype(np.float32), "W")
    n = [h.make_node("Concat", ["past", "cur"], ["present"], axis=1),
         h.make_node("MatMul", ["present", "W"], ["y"])]
    g = h.make_graph(
        n, "past",
        [h.make_tensor_value_info("past", T.FLOAT, ["batch", "past_sequence_length", 8]),
         h.make_tensor_value_info("cur", T.FLOAT, ["batch", "sequence_length", 8])],
        [h.make_tensor_value_info("present", T.FLOAT, ["batch", "total_sequence_length", 8]),
         h.make_tensor_value_info("y", T.FLOAT, ["batch", "total_sequence_length", 8])],
        [w])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="make_gnn")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def main(out):
    os.makedirs(out, exist_ok=True)
    onnx.save(gnn("num_nodes", "num_edges"), os.path.join(out, "gnn_sym.onnx"))
    onnx.save(gnn(16, 24), os.path.join(out, "gnn_const.onnx"))
    onnx.save(past(), os.path.join(out, "past.onnx"))


if __name__ == "__main__":
    main(sys.argv[1])
