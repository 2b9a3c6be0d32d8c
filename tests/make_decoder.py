#!/usr/bin/python3
"""Write a GPT-2-like decoder of LAYERS layers (weights inline, small), for
the analysis test: the decision groups must not grow with the depth.

    /usr/bin/python3 make_decoder.py OUT.onnx LAYERS [HIDDEN [HEADS]]

Token and position embeddings, per layer: LayerNorm, fused QKV MatMul +
bias, Split into q, k, v, heads by Reshape [0,0,H,D] + Transpose, Q·Kᵀ,
scale, causal mask (Where), Softmax, ·V, merge heads, output projection,
residual; LayerNorm, MLP (4x, Gelu as x·Sigmoid(1.702x)), residual. Final
LayerNorm and an LM head tied to the token embedding.
"""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def main():
    out, layers = sys.argv[1], int(sys.argv[2])
    hid = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    heads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    vocab, maxpos, hd = 128, 64, hid // heads
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def w(name, *shape, val=None):
        a = val if val is not None else (rng.standard_normal(shape) * 0.02)
        inits.append(numpy_helper.from_array(np.asarray(a, dtype=np.float32), name))
        return name

    def const(name, vals, dtype=np.int64):
        inits.append(numpy_helper.from_array(np.asarray(vals, dtype=dtype), name))
        return name

    def node(op, ins, out_name, **kw):
        nodes.append(helper.make_node(op, ins, [out_name], name=out_name, **kw))
        return out_name

    def ln(x, p):
        return node("LayerNormalization",
                    [x, w(p + ".weight", hid, val=np.ones(hid)),
                     w(p + ".bias", hid, val=np.zeros(hid))], p + "/out", axis=-1)

    const("shape_heads", [0, 0, heads, hd])
    const("shape_merge", [0, 0, hid])
    const("split_qkv", [hid, hid, hid])
    const("one", 1)
    const("zero", 0)
    const("ax0", [0])
    const("ax01", [0, 1])
    inits.append(numpy_helper.from_array(np.tril(np.ones((maxpos, maxpos), dtype=bool)), "tril"))
    sh = node("Shape", ["input_ids"], "ids_shape")
    seq = node("Gather", [sh, "one"], "seq")
    pos = node("Range", ["zero", seq, "one"], "pos")
    x = node("Add", [node("Gather", [w("wte.weight", vocab, hid), "input_ids"], "tok_emb"),
                     node("Gather", [w("wpe.weight", maxpos, hid), pos], "pos_emb")], "emb")
    seq1 = node("Unsqueeze", [seq, "ax0"], "seq1")
    ends = node("Concat", [seq1, seq1], "mask_ends", axis=0)
    mask = node("Slice", ["tril", const("mask_starts", [0, 0]), ends, "ax01"], "mask")
    neg = const("neg", np.float32(-1e4), np.float32)
    for i in range(layers):
        p = f"h.{i}"
        h = ln(x, p + ".ln_1")
        qkv = node("Add", [node("MatMul", [h, w(p + ".attn.c_attn.weight", hid, 3 * hid)],
                                p + "/qkv_mm"),
                           w(p + ".attn.c_attn.bias", 3 * hid)], p + "/qkv")
        nodes.append(helper.make_node("Split", [qkv, "split_qkv"],
                                      [p + "/q", p + "/k", p + "/v"], name=p + "/split", axis=2))

        def heads_of(t, perm):
            r = node("Reshape", [p + "/" + t, "shape_heads"], p + "/" + t + "_h")
            return node("Transpose", [r], p + "/" + t + "_t", perm=perm)
        q, k, v = heads_of("q", [0, 2, 1, 3]), heads_of("k", [0, 2, 3, 1]), heads_of("v", [0, 2, 1, 3])
        s = node("Mul", [node("MatMul", [q, k], p + "/scores"),
                         const(p + ".scale", np.float32(hd ** -0.5), np.float32)], p + "/scaled")
        s = node("Where", [mask, s, neg], p + "/masked")
        a = node("MatMul", [node("Softmax", [s], p + "/probs", axis=-1), v], p + "/ctx")
        a = node("Reshape", [node("Transpose", [a], p + "/ctx_t", perm=[0, 2, 1, 3]),
                             "shape_merge"], p + "/ctx_m")
        a = node("Add", [node("MatMul", [a, w(p + ".attn.c_proj.weight", hid, hid)],
                              p + "/proj_mm"), w(p + ".attn.c_proj.bias", hid)], p + "/proj")
        x = node("Add", [x, a], p + "/res1")
        h = ln(x, p + ".ln_2")
        f = node("Add", [node("MatMul", [h, w(p + ".mlp.c_fc.weight", hid, 4 * hid)],
                              p + "/fc_mm"), w(p + ".mlp.c_fc.bias", 4 * hid)], p + "/fc")
        g = node("Mul", [f, node("Sigmoid", [node("Mul", [f, const(p + ".k", np.float32(1.702),
                                                                  np.float32)], p + "/fk")],
                                 p + "/sig")], p + "/gelu")
        m = node("Add", [node("MatMul", [g, w(p + ".mlp.c_proj.weight", 4 * hid, hid)],
                              p + "/mlp_mm"), w(p + ".mlp.c_proj.bias", hid)], p + "/mlp")
        x = node("Add", [x, m], p + "/res2")
    x = ln(x, "ln_f")
    node("MatMul", [x, node("Transpose", ["wte.weight"], "wte_t", perm=[1, 0])], "logits")
    g = helper.make_graph(
        nodes, "decoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", vocab])],
        inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with open(out, "wb") as f:
        f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
