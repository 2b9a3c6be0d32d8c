#!/usr/bin/python3
"""rs.onnx: x -> MatMul W1 -> MatMul W2 -> p -> Relu -> q, for the
ReduceScatter case of tests/e2e/collectives.sh (with tactics/rs-q.json:
W1 split on its columns leaves p a pending sum, which q's split rows
reduce-scatter)."""
import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

rng = np.random.default_rng(0)
w1 = nh.from_array(rng.standard_normal((8, 16)).astype(np.float32), "W1")
w2 = nh.from_array(rng.standard_normal((16, 8)).astype(np.float32), "W2")
nodes = [h.make_node("MatMul", ["x", "W1"], ["h"]), h.make_node("MatMul", ["h", "W2"], ["p"]),
         h.make_node("Relu", ["p"], ["q"])]
g = h.make_graph(nodes, "rs", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 8])],
                 [h.make_tensor_value_info("q", T.FLOAT, ["batch", 8])], [w1, w2])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, __file__.replace("make_rs.py", "rs.onnx"))
