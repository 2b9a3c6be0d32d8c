#!/usr/bin/python3
"""a2a.onnx: x [batch, 8, 16] -> MatMul W -> Relu -> y, for the AllToAll
case of tests/e2e/collectives.sh whose split dim is not dim 0 (with
tactics/a2a-seq.json: x arrives split on its features, y leaves split on
its sequence, W whole: x's split moves from dim 2 to dim 1)."""
import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

rng = np.random.default_rng(0)
w = nh.from_array(rng.standard_normal((16, 8)).astype(np.float32), "W")
nodes = [h.make_node("MatMul", ["x", "W"], ["p"]), h.make_node("Relu", ["p"], ["y"])]
g = h.make_graph(nodes, "a2a", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 8, 16])],
                 [h.make_tensor_value_info("y", T.FLOAT, ["batch", 8, 8])], [w])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, __file__.replace("make_a2a.py", "a2a.onnx"))
