#!/usr/bin/python3
"""Write a GPT-, Llama- or BERT-shaped transformer of any depth and width,
in the patterns exporters produce, with its weights as external data.

    /usr/bin/python3 tests/bench/make_llm.py OUT.onnx [--arch gpt|llama|bert]
        [--layers N] [--hidden H] [--heads A] [--kv-heads K] [--ffn F]
        [--vocab V] [--weights random|zeros|sparse] [--dtype float32|float16|bfloat16]

Inputs input_ids int64 [batch, seq] (BERT also attention_mask); output
logits [batch, seq, vocab] (BERT: last_hidden_state [batch, seq, hidden]).
Per layer, as torch.onnx exports Hugging Face models: a norm (LayerNorm, or
RMSNorm written out for llama), q/k/v projections as MatMul on [hidden, out]
weights (GPT: one fused QKV MatMul + Split), heads by Reshape to a target
built from Shape -> Gather -> Unsqueeze -> Concat of the input's own dims,
Transpose, Q·Kᵀ scaled, a causal mask (decoders) or an additive padding
mask (BERT), Softmax, ·V, merge heads by the same kind of Reshape, output
projection, residual; MLP (GELU for gpt/bert, SwiGLU for llama), residual.
Grouped K/V heads (llama, --kv-heads) are repeated by Expand + Reshape.

Weights go to OUT.onnx.data: random (seeded), zeros, or sparse (the file is
extended to its size without writing: a hole, for plan-only runs of models
of hundreds of GB). Every tensor's offset is 64-byte aligned.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

DT = {"float32": (TensorProto.FLOAT, 4), "float16": (TensorProto.FLOAT16, 2),
      "bfloat16": (TensorProto.BFLOAT16, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", default="llama", choices=["gpt", "llama", "bert"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--ffn", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--weights", default="random", choices=["random", "zeros", "sparse"])
    ap.add_argument("--dtype", default="float32", choices=list(DT))
    a = ap.parse_args()
    H, A = a.hidden, a.heads
    K = a.kv_heads or A
    D = H // A
    F = a.ffn or (4 * H if a.arch != "llama" else (8 * H // 3 + 255) // 256 * 256)
    et, es = DT[a.dtype]
    data = a.out + ".data"
    loc = os.path.basename(data)
    rng = np.random.default_rng(0)
    inits, nodes, vi = [], [], []
    off = [0]
    f = open(data, "wb")

    def weight(name, *shape):
        n = int(np.prod(shape))
        nbytes = n * es
        start = (off[0] + 63) // 64 * 64
        if a.weights == "sparse":
            pass  # a hole: the file is extended at the end
        else:
            f.seek(start)
            if a.weights == "zeros":
                f.write(b"\0" * nbytes)
            else:
                x = (rng.standard_normal(n, dtype=np.float32) * 0.02)
                if a.dtype == "float16":
                    f.write(x.astype(np.float16).tobytes())
                elif a.dtype == "bfloat16":
                    f.write((x.view(np.uint32) >> 16).astype(np.uint16).tobytes())
                else:
                    f.write(x.tobytes())
        off[0] = start + nbytes
        t = TensorProto()
        t.name, t.data_type = name, et
        t.dims.extend(shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", loc), ("offset", str(start)), ("length", str(nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v
        inits.append(t)
        return name

    def ints(name, vals):
        inits.append(helper.make_tensor(name, TensorProto.INT64, [len(vals)], vals))
        return name

    def scalar(name, val, dtype=None):
        inits.append(helper.make_tensor(name, dtype or et, [], [val]))
        return name

    def node(op, ins, name, n_out=1, **kw):
        outs = [name] if n_out == 1 else ["%s_%d" % (name, i) for i in range(n_out)]
        nodes.append(helper.make_node(op, ins, outs, name=name, **kw))
        return outs[0] if n_out == 1 else outs

    for i in range(3):
        ints("c%d" % i, [i])
        inits.append(helper.make_tensor("i%d" % i, TensorProto.INT64, [], [i]))
    ints("ax0", [0])
    scalar("eps", 1e-5, TensorProto.FLOAT)

    def dim_of(x, i, p, scalar=False):
        """Gather(Shape(x), i): how exporters read a dim (1-D, or a scalar)."""
        s = node("Shape", [x], p + "/Shape_%d" % i)
        return node("Gather", [s, ("i%d" if scalar else "c%d") % i], p + "/Gather_%d" % i, axis=0)

    def heads_target(x, heads, p):
        """Concat(batch, seq, heads, D) from x's own dims."""
        b, s = dim_of(x, 0, p), dim_of(x, 1, p)
        return node("Concat", [b, s, ints(p + "/h", [heads]), ints(p + "/d", [D])], p + "/Concat", axis=0)

    def norm(x, p):
        if a.arch == "llama":
            w = weight(p + ".weight", H)
            x32 = node("Cast", [x], p + "/Cast", to=TensorProto.FLOAT) if et != TensorProto.FLOAT else x
            sq = node("Mul", [x32, x32], p + "/Pow")
            m = node("ReduceMean", [sq], p + "/ReduceMean", axes=[-1], keepdims=1)
            r = node("Sqrt", [node("Add", [m, "eps"], p + "/Add")], p + "/Sqrt")
            y = node("Div", [x32, r], p + "/Div")
            if et != TensorProto.FLOAT:
                y = node("Cast", [y], p + "/Cast_1", to=et)
            return node("Mul", [w, y], p + "/Mul")
        return node("LayerNormalization", [x, weight(p + ".weight", H), weight(p + ".bias", H)], p + "/LN",
                    axis=-1, epsilon=1e-5)

    def linear(x, n_in, n_out, p, bias=True):
        y = node("MatMul", [x, weight(p + ".weight", n_in, n_out)], p + "/MatMul")
        return node("Add", [weight(p + ".bias", n_out), y], p + "/Add") if bias else y

    def split_heads(x, heads, p):
        r = node("Reshape", [x, heads_target(x, heads, p)], p + "/Reshape")
        return node("Transpose", [r], p + "/Transpose", perm=[0, 2, 1, 3])

    bias = a.arch != "llama"
    ids = "input_ids"
    h = node("Gather", [weight("embed_tokens.weight", a.vocab, H), ids], "embed/Gather", axis=0)
    if a.arch != "llama":
        s = dim_of(ids, 1, "pos", scalar=True)
        pos = node("Range", ["pos0", s, "pos1"], "pos/Range")
        inits.append(helper.make_tensor("pos0", TensorProto.INT64, [], [0]))
        inits.append(helper.make_tensor("pos1", TensorProto.INT64, [], [1]))
        pe = node("Gather", [weight("embed_positions.weight", 4096, H), pos], "pos/Gather", axis=0)
        h = node("Add", [h, pe], "embed/Add")
    # masks
    if a.arch == "bert":
        m = node("Cast", ["attention_mask"], "mask/Cast", to=et)
        m = node("Unsqueeze", [m, ints("mask/axes", [1, 2])], "mask/Unsqueeze")
        inv = node("Sub", [scalar("one", 1.0), m], "mask/Sub")
        mask = node("Mul", [inv, scalar("neg", -10000.0)], "mask/Mul")
    else:
        s = dim_of(ids, 1, "causal")
        s2 = node("Concat", [s, s], "causal/Concat", axis=0)
        ones = node("ConstantOfShape", [s2], "causal/ConstantOfShape",
                    value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))
        tri = node("Trilu", [ones], "causal/Trilu", upper=0)
        ok = node("Cast", [tri], "causal/Cast", to=TensorProto.BOOL)
    scale = scalar("scale", float(D) ** -0.5)
    for i in range(a.layers):
        p = "layers.%d" % i
        x = norm(h, p + ".input_norm")
        if a.arch == "gpt":
            qkv = linear(x, H, 3 * H, p + ".attn.c_attn")
            q, k, v = node("Split", [qkv, ints(p + "/split", [H, H, H])], p + "/Split", n_out=3, axis=2)
        else:
            q = linear(x, H, H, p + ".attn.q_proj", bias)
            k = linear(x, H, K * D, p + ".attn.k_proj", bias)
            v = linear(x, H, K * D, p + ".attn.v_proj", bias)
        q, k, v = split_heads(q, A, p + "/q"), split_heads(k, K, p + "/k"), split_heads(v, K, p + "/v")
        if K != A:  # repeat the K/V heads
            for nm in ("k", "v"):
                t = k if nm == "k" else v
                u = node("Unsqueeze", [t, ints(p + "/%s/rep_axes" % nm, [2])], p + "/%s/rep_Unsqueeze" % nm)
                b, s = dim_of(t, 0, p + "/%s/rep" % nm), dim_of(t, 2, p + "/%s/rep" % nm)
                tgt = node("Concat", [b, ints(p + "/%s/kvh" % nm, [K]), ints(p + "/%s/g" % nm, [A // K]), s,
                                      ints(p + "/%s/dd" % nm, [D])], p + "/%s/rep_Concat" % nm, axis=0)
                e = node("Expand", [u, tgt], p + "/%s/rep_Expand" % nm)
                tgt2 = node("Concat", [b, ints(p + "/%s/ah" % nm, [A]), s, ints(p + "/%s/d2" % nm, [D])],
                            p + "/%s/rep_Concat2" % nm, axis=0)
                r = node("Reshape", [e, tgt2], p + "/%s/rep_Reshape" % nm)
                if nm == "k":
                    k = r
                else:
                    v = r
        kt = node("Transpose", [k], p + "/kT", perm=[0, 1, 3, 2])
        w = node("Mul", [node("MatMul", [q, kt], p + "/QK"), scale], p + "/scale")
        if a.arch == "bert":
            w = node("Add", [w, mask], p + "/mask")
        else:
            w = node("Where", [ok, w, scalar(p + "/min", -1e4)], p + "/mask")
        w = node("Softmax", [w], p + "/Softmax", axis=-1)
        o = node("Transpose", [node("MatMul", [w, v], p + "/AV")], p + "/merge/Transpose", perm=[0, 2, 1, 3])
        b, s = dim_of(o, 0, p + "/merge"), dim_of(o, 1, p + "/merge")
        tgt = node("Concat", [b, s, ints(p + "/merge/hid", [H])], p + "/merge/Concat", axis=0)
        o = node("Reshape", [o, tgt], p + "/merge/Reshape")
        h = node("Add", [h, linear(o, H, H, p + ".attn.o_proj", bias)], p + "/residual1")
        x = norm(h, p + ".post_norm")
        if a.arch == "llama":
            g = linear(x, H, F, p + ".mlp.gate_proj", False)
            u = linear(x, H, F, p + ".mlp.up_proj", False)
            act = node("Mul", [node("Mul", [g, node("Sigmoid", [g], p + "/Sigmoid")], p + "/silu"), u], p + "/gate")
            y = linear(act, F, H, p + ".mlp.down_proj", False)
        else:
            u = linear(x, H, F, p + ".mlp.fc1")
            act = node("Mul", [u, node("Sigmoid", [node("Mul", [u, scalar(p + "/g", 1.702)], p + "/gs")],
                                       p + "/Sigmoid")], p + "/gelu")
            y = linear(act, F, H, p + ".mlp.fc2")
        h = node("Add", [h, y], p + "/residual2")
    h = norm(h, "final_norm")
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    if a.arch == "bert":
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]))
        outputs = [helper.make_tensor_value_info(h, et, ["batch", "seq", H])]
    else:
        h = node("MatMul", [h, weight("lm_head.weight", H, a.vocab)], "logits")
        outputs = [helper.make_tensor_value_info("logits", et, ["batch", "seq", a.vocab])]
    if a.weights == "sparse":
        f.truncate(off[0])
    f.close()
    g = helper.make_graph(nodes, "llm", inputs, outputs, inits, value_info=vi)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_llm")
    m.ir_version = 8
    onnx.save(m, a.out)


if __name__ == "__main__":
    main()
