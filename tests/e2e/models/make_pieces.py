import onnx, numpy as np
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng=np.random.default_rng(0)
W=nh.from_array(rng.standard_normal((8,24)).astype(np.float32),'W')
W2=nh.from_array(rng.standard_normal((8,8)).astype(np.float32),'W2')
nodes=[h.make_node('MatMul',['x','W'],['y']),
 h.make_node('Split',['y'],['a','b','c'],axis=1),
 h.make_node('MatMul',['a','W2'],['a2']),
 h.make_node('Mul',['a2','b'],['ab']), h.make_node('Add',['ab','c'],['z']),
 h.make_node('Relu',['y'],['yr'])]
g=h.make_graph(nodes,'p',[h.make_tensor_value_info('x',T.FLOAT,['batch',8])],[h.make_tensor_value_info('z',T.FLOAT,['batch',8]),h.make_tensor_value_info('yr',T.FLOAT,['batch',24])],[W,W2])
m=h.make_model(g,opset_imports=[h.make_opsetid('',13)]); onnx.checker.check_model(m); onnx.save(m,'pieces.onnx')
