#!/usr/bin/python3
"""Write the deploy corpus: small models in the forms deployment tools write.

    /usr/bin/python3 samples/deploy/gen.py [--out DIR]

Writes DIR/*.onnx and DIR/models.json (DIR defaults to this script's folder).
Only onnx.helper and numpy; every model has its own seeded generator, so a
re-run writes the same bytes. README.md (same folder) says which tool's form
each model follows and where the op schemas come from.
"""

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

MS = "com.microsoft"
F32, F16, I64, I32 = TP.FLOAT, TP.FLOAT16, TP.INT64, TP.INT32
INT4, UINT4 = 22, 21  # TensorProto data types of ONNX 1.16+ (this onnx may predate them)


class G:
    """A graph being built: nodes, initializers, inputs, outputs, value_info."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.inputs, self.outputs, self.vi = [], [], [], [], []
        self.init_names = set()
        self.counter = {}

    def input(self, name, dtype, shape):
        self.inputs.append(oh.make_tensor_value_info(name, dtype, shape))
        return name

    def output(self, name, dtype, shape):
        self.outputs.append(oh.make_tensor_value_info(name, dtype, shape))
        return name

    def value(self, name, dtype, shape):
        self.vi.append(oh.make_tensor_value_info(name, dtype, shape))

    def init(self, name, arr):
        if name not in self.init_names:
            self.init_names.add(name)
            self.inits.append(nh.from_array(np.asarray(arr), name))
        return name

    def raw_init(self, name, dtype, dims, raw):
        """A tensor from its raw bytes (also for data types this onnx has no numpy mapping of)."""
        t = TP()
        t.name, t.data_type, t.raw_data = name, dtype, raw
        t.dims.extend(dims)
        self.init_names.add(name)
        self.inits.append(t)
        return name

    def const_i64(self, vals, scalar=False):
        """An int64 constant named like the genai builder's /model/constants/INT64/..."""
        a = np.array(vals, dtype=np.int64)
        if scalar:
            a = a.reshape(())
        name = "/model/constants/INT64/%s" % (
            str(int(a)) if scalar else "[" + ", ".join(str(int(v)) for v in a.reshape(-1)) + "]")
        return self.init(name, a)

    def randn(self, shape, std=0.1, dtype=np.float32):
        return (self.rng.standard_normal(shape) * std).astype(dtype)

    def node(self, op, inputs, outputs, name=None, domain=None, **attrs):
        if name is None:
            k = self.counter.get(op, 0)
            self.counter[op] = k + 1
            name = "%s_%d" % (op, k)
        if isinstance(outputs, str):
            outputs = [outputs]
        self.nodes.append(oh.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def model(self, opset=17, ir_version=8, ms=True, producer="onnxshard samples/deploy/gen.py"):
        g = oh.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits, value_info=self.vi)
        ops = [oh.make_opsetid("", opset)] + ([oh.make_opsetid(MS, 1)] if ms else [])
        m = oh.make_model(g, opset_imports=ops, ir_version=ir_version, producer_name=producer)
        return m


# ---------------------------------------------------------------------------
# 1. Llama decoder, onnxruntime-genai int4 form (MatMulNBits, GQA, RotaryEmbedding)

def pack_u4(q):
    """uint8 values 0..15 on the last axis (even length) -> bytes, low nibble first."""
    q = q.astype(np.uint8)
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def quant_nbits(w, block, symmetric):
    """MatMulNBits weights of w [K, N]: B [N, k_blocks, block/2] uint8, scales [N, k_blocks]
    float32, zero points [N, ceil(k_blocks/2)] uint8 (asymmetric only). The arithmetic of
    ORT's DefaultWeightOnlyQuantizer / MLAS: asymmetric over [min(w,0), max(w,0)] with
    zp in 0..15; symmetric stores q+8 with scale = signed absmax / -8 (implicit zp 8)."""
    K, N = w.shape
    kb = K // block
    blk = w.T.reshape(N, kb, block)
    if symmetric:
        mx, mn = blk.max(axis=2, keepdims=True), blk.min(axis=2, keepdims=True)
        absmax = np.where(np.abs(mx) > np.abs(mn), mx, mn)
        scale = absmax / -8.0
        q = np.clip(np.round(blk / scale), -8, 7) + 8
        zp = None
    else:
        mn = np.minimum(blk.min(axis=2, keepdims=True), 0)
        mx = np.maximum(blk.max(axis=2, keepdims=True), 0)
        scale = (mx - mn) / 15.0
        z = np.clip(np.round(-mn / scale), 0, 15)
        q = np.clip(np.round(blk / scale + z), 0, 15)
        zq = z.reshape(N, kb)
        if kb % 2:
            zq = np.concatenate([zq, np.zeros((N, 1))], axis=1)
        zp = pack_u4(zq)
    return pack_u4(q), scale.reshape(N, kb).astype(np.float32), zp


def llama_int4_gqa():
    H, NH, KVH, HD, FF, V, L, CTX = 256, 8, 2, 32, 512, 512, 2, 64
    g = G("llama_int4_gqa", 101)
    ids = g.input("input_ids", I64, ["batch_size", "sequence_length"])
    mask = g.input("attention_mask", I64, ["batch_size", "total_sequence_length"])
    pos = g.input("position_ids", I64, ["batch_size", "sequence_length"])
    for i in range(L):
        for kv in ("key", "value"):
            g.input("past_key_values.%d.%s" % (i, kv), F32, ["batch_size", KVH, "past_sequence_length", HD])
    g.output("logits", F32, ["batch_size", "sequence_length", V])
    for i in range(L):
        for kv in ("key", "value"):
            g.output("present.%d.%s" % (i, kv), F32, ["batch_size", KVH, "total_sequence_length", HD])
    hs = ["batch_size", "sequence_length", H]

    # attention mask subgraph (make_attention_mask_reformatting_for_gqa)
    b = "/model/attn_mask_reformat/attn_mask_subgraph"
    rs = g.node("ReduceSum", [mask, g.const_i64([1])], b + "/ReduceSum/output_0", name=b + "/ReduceSum", keepdims=0)
    sub = g.node("Sub", [rs, g.const_i64([1])], b + "/Sub/output_0", name=b + "/Sub")
    seqlens_k = g.node("Cast", [sub], b + "/Sub/Cast/output_0", name=b + "/Sub/Cast", to=I32)
    shp = g.node("Shape", [mask], b + "/Shape/output_0", name=b + "/Shape")
    gat = g.node("Gather", [shp, g.const_i64(1, scalar=True)], b + "/Gather/output_0", name=b + "/Gather", axis=0)
    total = g.node("Cast", [gat], b + "/Gather/Cast/output_0", name=b + "/Gather/Cast", to=I32)
    for n, t, s in ((rs, I64, ["batch_size"]), (sub, I64, ["batch_size"]), (seqlens_k, I32, ["batch_size"]),
                    (shp, I64, [2]), (gat, I64, []), (total, I32, [])):
        g.value(n, t, s)

    # rotary caches (cos/sin [max_len, head_size/2]), shared by RotaryEmbedding and GQA
    inv = 1.0 / (10000.0 ** (np.arange(0, HD, 2, dtype=np.float64) / HD))
    ang = np.arange(CTX, dtype=np.float64)[:, None] * inv[None, :]
    cos = g.init("cos_cache", np.cos(ang).astype(np.float32))
    sin = g.init("sin_cache", np.sin(ang).astype(np.float32))

    def mm_nbits(name, x, k, n, symmetric, flat):
        """MatMulNBits as MatMulNBitsQuantizer writes it (flat: 1-D scales/zero points,
        the quantizer's layout; else the 2-D layout of the op's documentation)."""
        w = g.randn((k, n), std=1.0 / np.sqrt(k))
        B, sc, zp = quant_nbits(w, 32, symmetric)
        wn = name[1:].replace("/", ".")
        ins = [x, g.init(wn + ".weight_Q4", B), g.init(wn + ".weight_scales", sc.reshape(-1) if flat else sc)]
        if zp is not None:
            ins.append(g.init(wn + ".weight_zero_points", zp.reshape(-1) if flat else zp))
        out = "logits" if name.endswith("lm_head/MatMulNBits") else name + "/output_0"
        g.node("MatMulNBits", ins, out, name=name, domain=MS, K=k, N=n, bits=4, block_size=32, accuracy_level=4)
        if out != "logits":
            g.value(out, F32, ["batch_size", "sequence_length", n])
        return out

    emb = g.init("model.embed_tokens.weight", g.randn((V, H), std=0.5))
    x = g.node("Gather", [emb, ids], "/model/embed_tokens/Gather/output_0", name="/model/embed_tokens/Gather")
    g.value(x, F32, hs)
    resid, skip = x, None
    for i in range(L):
        p = "/model/layers.%d" % i
        lw = g.init("model.layers.%d.input_layernorm.weight" % i, (1 + g.randn(H)).astype(np.float32))
        if skip is None:
            ln = g.node("SimplifiedLayerNormalization", [resid, lw], p + "/input_layernorm/output_0",
                        name=p + "/input_layernorm/LayerNorm", epsilon=1e-5, axis=-1, stash_type=1)
        else:
            ln, _, _, resid = g.node("SkipSimplifiedLayerNormalization", [resid, skip, lw],
                               [p + "/input_layernorm/output_0", "", "", p + "/input_layernorm/output_3"],
                               name=p + "/input_layernorm/SkipLayerNorm", domain=MS, epsilon=1e-5)
            g.value(resid, F32, hs)
        g.value(ln, F32, hs)
        asym = i == 0  # layer 0: asymmetric (zero points) and 1-D scales; layer 1: symmetric, 2-D scales
        past_k, past_v = "past_key_values.%d.key" % i, "past_key_values.%d.value" % i
        gqa_attrs = dict(num_heads=NH, kv_num_heads=KVH, scale=float(1 / np.sqrt(HD)), local_window_size=-1,
                         softcap=0.0, rotary_interleaved=0)
        if i == 0:
            # separate q/k/v projections and RotaryEmbedding nodes (the builder's form for EPs
            # without rotary fused into GQA, which take position_ids)
            q = mm_nbits(p + "/attn/q_proj/MatMulNBits", ln, H, NH * HD, not asym, asym)
            k = mm_nbits(p + "/attn/k_proj/MatMulNBits", ln, H, KVH * HD, not asym, asym)
            v = mm_nbits(p + "/attn/v_proj/MatMulNBits", ln, H, KVH * HD, not asym, asym)
            qr = g.node("RotaryEmbedding", [q, pos, cos, sin], p + "/attn/q_rotary/output_0",
                        name=p + "/attn/q_rotary/RotaryEmbedding", domain=MS, interleaved=0, num_heads=0,
                        rotary_embedding_dim=0)
            kr = g.node("RotaryEmbedding", [k, pos, cos, sin], p + "/attn/k_rotary/output_0",
                        name=p + "/attn/k_rotary/RotaryEmbedding", domain=MS, interleaved=0, num_heads=0,
                        rotary_embedding_dim=0)
            g.value(qr, F32, ["batch_size", "sequence_length", NH * HD])
            g.value(kr, F32, ["batch_size", "sequence_length", KVH * HD])
            gqa_in = [qr, kr, v, past_k, past_v, seqlens_k, total]
            gqa_attrs["do_rotary"] = 0
        else:
            # packed QKV projection, rotary inside GQA (do_rotary=1 with cos/sin caches)
            qkv = mm_nbits(p + "/attn/qkv_proj/MatMulNBits", ln, H, (NH + 2 * KVH) * HD, not asym, asym)
            gqa_in = [qkv, "", "", past_k, past_v, seqlens_k, total, cos, sin]
            gqa_attrs["do_rotary"] = 1
        att = g.node("GroupQueryAttention", gqa_in,
                     [p + "/attn/GroupQueryAttention/output_0", "present.%d.key" % i, "present.%d.value" % i],
                     name=p + "/attn/GroupQueryAttention", domain=MS, **gqa_attrs)[0]
        g.value(att, F32, ["batch_size", "sequence_length", NH * HD])
        o = mm_nbits(p + "/attn/o_proj/MatMulNBits", att, NH * HD, H, not asym, asym)
        pw = g.init("model.layers.%d.post_attention_layernorm.weight" % i, (1 + g.randn(H)).astype(np.float32))
        ln2, _, _, resid = g.node("SkipSimplifiedLayerNormalization", [resid, o, pw],
                            [p + "/post_attention_layernorm/output_0", "", "",
                             p + "/post_attention_layernorm/output_3"],
                            name=p + "/post_attention_layernorm/SkipLayerNorm", domain=MS, epsilon=1e-5)
        g.value(ln2, F32, hs)
        g.value(resid, F32, hs)
        gate = mm_nbits(p + "/mlp/gate_proj/MatMulNBits", ln2, H, FF, not asym, asym)
        up = mm_nbits(p + "/mlp/up_proj/MatMulNBits", ln2, H, FF, not asym, asym)
        sg = g.node("Sigmoid", [gate], p + "/mlp/act_fn/Sigmoid/output_0", name=p + "/mlp/act_fn/Sigmoid")
        silu = g.node("Mul", [gate, sg], p + "/mlp/act_fn/Mul/output_0", name=p + "/mlp/act_fn/Mul")
        gu = g.node("Mul", [silu, up], p + "/mlp/Mul/output_0", name=p + "/mlp/Mul")
        for n in (sg, silu, gu):
            g.value(n, F32, ["batch_size", "sequence_length", FF])
        skip = mm_nbits(p + "/mlp/down_proj/MatMulNBits", gu, FF, H, not asym, asym)
    nw = g.init("model.layers.%d.final_norm_layernorm.weight" % L, (1 + g.randn(H)).astype(np.float32))
    fin = g.node("SkipSimplifiedLayerNormalization", [resid, skip, nw], "/model/layers.%d/final_norm_layernorm/output_0" % L,
                 name="/model/layers.%d/final_norm_layernorm/SkipLayerNorm" % L, domain=MS, epsilon=1e-5)
    g.value(fin, F32, hs)
    mm_nbits("/lm_head/MatMulNBits", fin, H, V, True, True)
    return g.model(opset=17, ir_version=8, producer="onnxruntime-genai")


# ---------------------------------------------------------------------------
# 2. BERT encoder, ORT transformer optimizer form (EmbedLayerNormalization, Attention, ...)

def bert_opt(fp16):
    H, NH, FF, V, P, L = 64, 4, 256, 128, 64, 2
    g = G("bert_opt_fp16" if fp16 else "bert_opt_fp32", 202)
    wt = F16 if fp16 else F32
    ndt = np.float16 if fp16 else np.float32
    # fp32: the optimizer's default, int64 graph inputs cast to int32 for EmbedLayerNormalization;
    # fp16: also change_graph_inputs_to_int32 (int32 inputs, no Cast)
    itype = I32 if fp16 else I64
    ids = g.input("input_ids", itype, ["batch_size", "sequence_length"])
    seg = g.input("token_type_ids", itype, ["batch_size", "sequence_length"])
    mask = g.input("attention_mask", itype, ["batch_size", "sequence_length"])
    if not fp16:
        ids = g.node("Cast", [ids], "input_ids_int32", name="Cast_input_ids", to=I32)
        seg = g.node("Cast", [seg], "token_type_ids_int32", name="Cast_token_type_ids", to=I32)
        mask = g.node("Cast", [mask], "attention_mask_int32", name="Cast_attention_mask", to=I32)
    seq_out = g.output("last_hidden_state", F32, ["batch_size", "sequence_length", H])
    g.output("pooler_output", F32, ["batch_size", H])

    def w32(name, shape, std=0.1, one=False):
        a = g.randn(shape, std)
        return g.init(name, (1 + a) if one else a)

    def w(name, shape, std=0.1, one=False):
        a = g.randn(shape, std)
        return g.init(name, ((1 + a) if one else a).astype(ndt))

    def to16(x, name):
        return g.node("Cast", [x], name, name=name, to=F16) if fp16 else x

    def to32(x, name):
        return g.node("Cast", [x], name, name=name, to=F32) if fp16 else x

    # EmbedLayerNormalization, Attention, BiasGelu and FastGelu have float-only CPU kernels: in the
    # fp16 model they keep fp32 weights and get Casts, as convert_float_to_float16(op_block_list=...)
    emb, mask_index = g.node("EmbedLayerNormalization",
                             [ids, seg, w32("bert.embeddings.word_embeddings.weight", (V, H), 0.5),
                              w32("bert.embeddings.position_embeddings.weight", (P, H), 0.5),
                              w32("bert.embeddings.token_type_embeddings.weight", (2, H), 0.5),
                              w32("bert.embeddings.LayerNorm.weight", H, one=True),
                              w32("bert.embeddings.LayerNorm.bias", H), mask],
                             ["embed_output", "mask_index"], name="EmbedLayerNormalization_0", domain=MS,
                             epsilon=1e-12)
    x32 = emb
    x = to16(emb, "embed_output_fp16")
    for i in range(L):
        p = "bert.encoder.layer.%d." % i
        att = g.node("Attention", [x32, w32(p + "attention.self.qkv.weight", (H, 3 * H)),
                                   w32(p + "attention.self.qkv.bias", 3 * H), mask_index],
                     "attention_output_%d" % i, name="Attention_%d" % i, domain=MS, num_heads=NH)
        att = to16(att, "attention_output_%d_fp16" % i)
        mo = g.node("MatMul", [att, w(p + "attention.output.dense.weight", (H, H))], "attn_out_matmul_%d" % i,
                    name="MatMul_attn_out_%d" % i)
        ln1 = g.node("SkipLayerNormalization", [mo, x, w(p + "attention.output.LayerNorm.weight", H, one=True),
                                                w(p + "attention.output.LayerNorm.bias", H),
                                                w(p + "attention.output.dense.bias", H)],
                     "skip_ln1_%d" % i, name="SkipLayerNorm_attn_%d" % i, domain=MS, epsilon=1e-12)
        f1 = g.node("MatMul", [ln1, w(p + "intermediate.dense.weight", (H, FF))], "ffn_matmul1_%d" % i,
                    name="MatMul_ffn1_%d" % i)
        f1 = to32(f1, "ffn_matmul1_%d_fp32" % i)
        act = "BiasGelu" if i == 0 else "FastGelu"
        ge = g.node(act, [f1, w32(p + "intermediate.dense.bias", FF)], "gelu_%d" % i, name="%s_%d" % (act, i),
                    domain=MS)
        ge = to16(ge, "gelu_%d_fp16" % i)
        f2 = g.node("MatMul", [ge, w(p + "output.dense.weight", (FF, H))], "ffn_matmul2_%d" % i,
                    name="MatMul_ffn2_%d" % i)
        last = i == L - 1
        x = g.node("SkipLayerNormalization", [f2, ln1, w(p + "output.LayerNorm.weight", H, one=True),
                                              w(p + "output.LayerNorm.bias", H), w(p + "output.dense.bias", H)],
                   "layer_%d_output" % i if (fp16 or not last) else seq_out,
                   name="SkipLayerNorm_ffn_%d" % i, domain=MS, epsilon=1e-12)
        if not last:
            x32 = to32(x, "layer_%d_output_fp32" % i)
    if fp16:
        g.node("Cast", [x], seq_out, name="Cast_last_hidden_state", to=F32)
    first = g.node("Gather", [x, g.init("pooler_index_0", np.array(0, dtype=np.int64))], "pooler_first_token",
                   name="Gather_pooler", axis=1)
    pm = g.node("MatMul", [first, w("bert.pooler.dense.weight", (H, H))], "pooler_matmul", name="MatMul_pooler")
    pa = g.node("Add", [pm, w("bert.pooler.dense.bias", H)], "pooler_add", name="Add_pooler")
    if fp16:
        pt = g.node("Tanh", [pa], "pooler_tanh", name="Tanh_pooler")
        g.node("Cast", [pt], "pooler_output", name="Cast_pooler_output", to=F32)
    else:
        g.node("Tanh", [pa], "pooler_output", name="Tanh_pooler")
    return g.model(opset=17, ir_version=8, producer="onnxruntime.transformers")


# ---------------------------------------------------------------------------
# 3. Pre-LN encoder with com.microsoft MultiHeadAttention

def encoder_mha(fp16):
    H, NH, FF, L = 64, 4, 256, 2
    g = G("encoder_mha_fp16" if fp16 else "encoder_mha_fp32", 303)
    ndt = np.float16 if fp16 else np.float32
    g.input("input", F32, ["batch_size", "sequence_length", H])
    g.output("output", F32, ["batch_size", "sequence_length", H])
    x = g.node("Cast", ["input"], "input_fp16", name="Cast_input", to=F16) if fp16 else "input"

    def w(name, shape, std=0.1, one=False):
        a = g.randn(shape, std)
        return g.init(name, ((1 + a) if one else a).astype(ndt))

    for i in range(L):
        p = "encoder.layers.%d." % i
        ln = g.node("LayerNormalization", [x, w(p + "norm1.weight", H, one=True), w(p + "norm1.bias", H)],
                    "ln1_%d" % i, name="LayerNorm_1_%d" % i, axis=-1, epsilon=1e-5)
        qkv = []
        for t in "qkv":
            mm = g.node("MatMul", [ln, w(p + "attn.%s_proj.weight" % t, (H, H))], "%s_matmul_%d" % (t, i),
                        name="MatMul_%s_%d" % (t, i))
            if i == 0:  # layer 0: bias Adds before MHA; layer 1: biases packed into MHA's bias input
                mm = g.node("Add", [mm, w(p + "attn.%s_proj.bias" % t, H)], "%s_add_%d" % (t, i),
                            name="Add_%s_%d" % (t, i))
            qkv.append(mm)
        ins = qkv if i == 0 else qkv + [w(p + "attn.qkv_bias", 3 * H)]
        att = g.node("MultiHeadAttention", ins, "mha_%d" % i, name="MultiHeadAttention_%d" % i, domain=MS,
                     num_heads=NH)
        o = g.node("MatMul", [att, w(p + "attn.out_proj.weight", (H, H))], "o_matmul_%d" % i, name="MatMul_o_%d" % i)
        o = g.node("Add", [o, w(p + "attn.out_proj.bias", H)], "o_add_%d" % i, name="Add_o_%d" % i)
        r1 = g.node("Add", [x, o], "resid1_%d" % i, name="Add_resid1_%d" % i)
        ln2 = g.node("LayerNormalization", [r1, w(p + "norm2.weight", H, one=True), w(p + "norm2.bias", H)],
                     "ln2_%d" % i, name="LayerNorm_2_%d" % i, axis=-1, epsilon=1e-5)
        f1 = g.node("MatMul", [ln2, w(p + "mlp.fc1.weight", (H, FF))], "fc1_matmul_%d" % i, name="MatMul_fc1_%d" % i)
        if i == 0:
            f1 = g.node("Add", [f1, w(p + "mlp.fc1.bias", FF)], "fc1_add_%d" % i, name="Add_fc1_%d" % i)
            ge = g.node("Gelu", [f1], "gelu_%d" % i, name="Gelu_%d" % i, domain=MS)
        else:
            ge = g.node("FastGelu", [f1, w(p + "mlp.fc1.bias", FF)], "gelu_%d" % i, name="FastGelu_%d" % i, domain=MS)
        f2 = g.node("MatMul", [ge, w(p + "mlp.fc2.weight", (FF, H))], "fc2_matmul_%d" % i, name="MatMul_fc2_%d" % i)
        f2 = g.node("Add", [f2, w(p + "mlp.fc2.bias", H)], "fc2_add_%d" % i, name="Add_fc2_%d" % i)
        last = i == L - 1
        x = g.node("Add", [r1, f2], "output" if last and not fp16 else "resid2_%d" % i, name="Add_resid2_%d" % i)
    if fp16:
        g.node("Cast", [x], "output", name="Cast_output", to=F32)
    return g.model(opset=17, ir_version=8, producer="onnxruntime.transformers")


# ---------------------------------------------------------------------------
# 4. QDQ (ORT static quantizer) models

class Q:
    """QDQ helpers over a G: uint8 activations per tensor, int8 weights per channel."""

    def __init__(self, g):
        self.g = g

    def qdq(self, x, scale, zp, tag):
        g = self.g
        s = g.init(tag + "_scale", np.array(scale, dtype=np.float32))
        z = g.init(tag + "_zero_point", np.array(zp, dtype=np.uint8))
        q = g.node("QuantizeLinear", [x, s, z], tag + "_QuantizeLinear_Output", name=tag + "_QuantizeLinear")
        return g.node("DequantizeLinear", [q, s, z], tag + "_DequantizeLinear_Output", name=tag + "_DequantizeLinear"), scale

    def weight(self, name, w, axis):
        """int8 symmetric per-channel along axis (zero points 0)."""
        g = self.g
        red = tuple(d for d in range(w.ndim) if d != axis)
        amax = np.maximum(np.abs(w).max(axis=red), 1e-8)
        scale = (amax / 127.0).astype(np.float32)
        bshape = [1] * w.ndim
        bshape[axis] = -1
        q = np.clip(np.round(w / scale.reshape(bshape)), -127, 127).astype(np.int8)
        qn = g.init(name + "_quantized", q)
        sn = g.init(name + "_scale", scale)
        zn = g.init(name + "_zero_point", np.zeros(scale.shape, dtype=np.int8))
        return g.node("DequantizeLinear", [qn, sn, zn], name + "_DequantizeLinear_Output",
                      name=name + "_DequantizeLinear", axis=axis), scale

    def bias(self, name, b, x_scale, w_scale):
        """int32 bias with scale x_scale * w_scale (per channel), zero points 0."""
        g = self.g
        scale = (x_scale * w_scale).astype(np.float32)
        q = np.round(b / scale).astype(np.int32)
        qn = g.init(name + "_quantized", q)
        sn = g.init(name + "_quantized_scale", scale)
        zn = g.init(name + "_quantized_zero_point", np.zeros(scale.shape, dtype=np.int32))
        return g.node("DequantizeLinear", [qn, sn, zn], name + "_quantized_DequantizeLinear_Output",
                      name=name + "_quantized_DequantizeLinear", axis=0)


def qdq_cnn():
    g = G("qdq_cnn", 404)
    q = Q(g)
    g.input("input", F32, ["batch_size", 3, 16, 16])
    g.output("output", F32, ["batch_size", 10])
    x, xs = q.qdq("input", 2.0 / 255, 128, "input")
    cin = 3
    for i, (cout, stride) in enumerate(((8, 1), (16, 1), (16, 2))):
        wd, ws = q.weight("conv%d.weight" % i, g.randn((cout, cin, 3, 3), 0.3), 0)
        bd = q.bias("conv%d.bias" % i, g.randn(cout, 0.05), xs, ws)
        c = g.node("Conv", [x, wd, bd], "conv%d_output" % i, name="Conv_%d" % i, kernel_shape=[3, 3],
                   pads=[1, 1, 1, 1], strides=[stride, stride])
        c, cs = q.qdq(c, 0.05, 128, "conv%d_output" % i)
        r = g.node("Relu", [c], "relu%d_output" % i, name="Relu_%d" % i)
        x, xs = q.qdq(r, 0.025, 0, "relu%d_output" % i)
        if i == 0:
            mp = g.node("MaxPool", [x], "maxpool_output", name="MaxPool_0", kernel_shape=[2, 2], strides=[2, 2])
            x, xs = q.qdq(mp, 0.025, 0, "maxpool_output")
        cin = cout
    gp = g.node("GlobalAveragePool", [x], "gap_output", name="GlobalAveragePool_0")
    x, xs = q.qdq(gp, 0.01, 0, "gap_output")
    fl = g.node("Flatten", [x], "flatten_output", name="Flatten_0", axis=1)
    x, xs = q.qdq(fl, 0.01, 0, "flatten_output")
    wd, ws = q.weight("fc.weight", g.randn((10, 16), 0.3), 0)  # Gemm transB=1: [N, K], channels on axis 0
    bd = q.bias("fc.bias", g.randn(10, 0.05), xs, ws)
    gm = g.node("Gemm", [x, wd, bd], "fc_output", name="Gemm_fc", transB=1)
    out, _ = q.qdq(gm, 0.02, 128, "fc_output")
    g.node("Identity", [out], "output", name="Identity_output")
    return g.model(opset=17, ir_version=8, ms=False, producer="onnxruntime.quantization")


def qdq_ffn():
    g = G("qdq_ffn", 505)
    q = Q(g)
    g.input("input", F32, ["batch_size", 64])
    g.output("output", F32, ["batch_size", 64])
    x, xs = q.qdq("input", 2.0 / 255, 128, "input")
    # fc1: MatMul [K, N] weight (channels on axis 1) + Add of an int32 bias
    wd, ws = q.weight("fc1.weight", g.randn((64, 128), 0.15), 1)
    mm = g.node("MatMul", [x, wd], "fc1_matmul_output", name="MatMul_fc1")
    bd = q.bias("fc1.bias", g.randn(128, 0.05), xs, ws)
    ad = g.node("Add", [mm, bd], "fc1_output", name="Add_fc1")
    ad, _ = q.qdq(ad, 0.03, 128, "fc1_output")
    r = g.node("Relu", [ad], "relu_output", name="Relu_0")
    x, xs = q.qdq(r, 0.015, 0, "relu_output")
    # fc2: Gemm transB=0, [K, N] weight (channels on axis 1), int32 bias as C
    wd, ws = q.weight("fc2.weight", g.randn((128, 64), 0.1), 1)
    bd = q.bias("fc2.bias", g.randn(64, 0.05), xs, ws)
    gm = g.node("Gemm", [x, wd, bd], "fc2_output", name="Gemm_fc2")
    out, _ = q.qdq(gm, 0.02, 128, "fc2_output")
    g.node("Identity", [out], "output", name="Identity_output")
    return g.model(opset=17, ir_version=8, ms=False, producer="onnxruntime.quantization")


def qdq_block_ffn():
    """MatMulNBitsQuantizer's QDQ form (opset 21): DequantizeLinear(block_size=32, axis=0) of
    int4 [K, N] weights with scales [K/32, N]; fc1 symmetric int4, fc2 uint4 with zero points."""
    g = G("qdq_block_ffn", 606)
    g.input("input", F32, ["batch_size", 64])
    g.output("output", F32, ["batch_size", 64])
    x = "input"
    for i, (k, n, sym) in enumerate(((64, 128, True), (128, 64, False))):
        w = g.randn((k, n), 1.0 / np.sqrt(k))
        blk = w.reshape(k // 32, 32, n)
        name = "fc%d.weight" % (i + 1)
        if sym:
            mx, mn = blk.max(axis=1, keepdims=True), blk.min(axis=1, keepdims=True)
            scale = np.where(np.abs(mx) > np.abs(mn), mx, mn) / -8.0
            qv = np.clip(np.round(blk / scale), -8, 7).astype(np.int8).reshape(k, n)
            zp = None
            dt = INT4
        else:
            mn = np.minimum(blk.min(axis=1, keepdims=True), 0)
            mx = np.maximum(blk.max(axis=1, keepdims=True), 0)
            scale = (mx - mn) / 15.0
            zp = np.clip(np.round(-mn / scale), 0, 15)
            qv = np.clip(np.round(blk / scale + zp), 0, 15).astype(np.uint8).reshape(k, n)
            dt = UINT4
        sc = scale.reshape(k // 32, n).astype(np.float32)
        flat = qv.reshape(-1).astype(np.uint8) & 0xF
        ins = [g.raw_init(name + "_DQ_Q4", dt, [k, n], pack_u4(flat).tobytes()),
               g.init(name + "_DQ_scales", sc)]
        if zp is not None:
            zflat = zp.reshape(-1).astype(np.uint8)
            ins.append(g.raw_init(name + "_DQ_zero_points", dt, [k // 32, n], pack_u4(zflat).tobytes()))
        dq = g.node("DequantizeLinear", ins, name + "_DQ_Q4_output", name="fc%d_DQ_Q4" % (i + 1), axis=0,
                    block_size=32)
        x = g.node("MatMul", [x, dq], "output" if i == 1 else "fc%d_output" % (i + 1), name="fc%d_matmul_Q4" % (i + 1))
        if i == 0:
            x = g.node("Relu", [x], "relu_output", name="Relu_0")
    return g.model(opset=21, ir_version=10, ms=False, producer="onnxruntime.quantization")


# ---------------------------------------------------------------------------
# 5. Mixture of experts (8 experts, top-2)

def moe(onehot):
    D, FF, E, K = 64, 128, 8, 2
    g = G("moe_onehot" if onehot else "moe_dense", 707 if onehot else 708)
    g.input("hidden_states", F32, ["batch_size", "sequence_length", D])
    g.output("output", F32, ["batch_size", "sequence_length", D])
    g.output("router_logits", F32, ["num_tokens", E])
    shp = g.node("Shape", ["hidden_states"], "input_shape", name="Shape_input")
    x = g.node("Reshape", ["hidden_states", g.init("flat_shape", np.array([-1, D], dtype=np.int64))], "tokens",
               name="Reshape_tokens")
    logits = g.node("MatMul", [x, g.init("router.weight", g.randn((D, E), 0.3))], "router_logits", name="MatMul_router")
    probs = g.node("Softmax", [logits], "router_probs", name="Softmax_router", axis=1)
    kk = g.init("top_k", np.array([K], dtype=np.int64))
    tv, ti = g.node("TopK", [probs, kk], ["topk_values", "topk_indices"], name="TopK_router", axis=1)
    if onehot:
        # gates = sum_k OneHot(idx_k, E) * w_k, with the weights gathered back from the probabilities
        tv = g.node("GatherElements", [probs, ti], "topk_gathered", name="GatherElements_topk", axis=1)
    den = g.node("ReduceSum", [tv, g.init("axes_1", np.array([1], dtype=np.int64))], "topk_sum", name="ReduceSum_topk",
                 keepdims=1)
    tw = g.node("Div", [tv, den], "topk_weights", name="Div_topk_norm")
    if onehot:
        oh_ = g.node("OneHot", [ti, g.init("num_experts", np.array(E, dtype=np.int64)),
                                 g.init("onehot_values", np.array([0.0, 1.0], dtype=np.float32))],
                     "expert_onehot", name="OneHot_experts", axis=-1)  # [T, K, E]
        tw3 = g.node("Unsqueeze", [tw, g.init("axes_m1", np.array([-1], dtype=np.int64))], "topk_weights_3d",
                     name="Unsqueeze_topk")
        wm = g.node("Mul", [oh_, tw3], "expert_weighted", name="Mul_onehot")
        gates = g.node("ReduceSum", [wm, "axes_1"], "gates", name="ReduceSum_gates", keepdims=0)  # [T, E]
    else:
        zeros = g.node("ConstantOfShape", [g.node("Shape", [logits], "logits_shape", name="Shape_logits")],
                       "gates_zeros", name="ConstantOfShape_gates",
                       value=oh.make_tensor("value", F32, [1], [0.0]))
        gates = g.node("ScatterElements", [zeros, ti, tw], "gates", name="ScatterElements_gates", axis=1)
    # experts as a batched MatMul over [E, T, D]: x broadcast against w1 [E, D, F], w2 [E, F, D]
    xe = g.node("Unsqueeze", [x, g.init("axes_0", np.array([0], dtype=np.int64))], "tokens_e", name="Unsqueeze_tokens")
    h1 = g.node("MatMul", [xe, g.init("experts.w1", g.randn((E, D, FF), 0.15))], "experts_fc1", name="MatMul_experts_fc1")
    h1 = g.node("Add", [h1, g.init("experts.b1", g.randn((E, 1, FF), 0.05))], "experts_fc1_bias", name="Add_experts_fc1")
    sg = g.node("Sigmoid", [h1], "experts_sigmoid", name="Sigmoid_experts")
    a = g.node("Mul", [h1, sg], "experts_silu", name="Mul_experts_silu")
    h2 = g.node("MatMul", [a, g.init("experts.w2", g.randn((E, FF, D), 0.1))], "experts_fc2", name="MatMul_experts_fc2")
    gt = g.node("Transpose", [gates], "gates_t", name="Transpose_gates", perm=[1, 0])  # [E, T]
    gt = g.node("Unsqueeze", [gt, g.init("axes_m1", np.array([-1], dtype=np.int64))], "gates_e", name="Unsqueeze_gates")  # [E, T, 1]
    wy = g.node("Mul", [h2, gt], "experts_weighted", name="Mul_gates")
    y = g.node("ReduceSum", [wy, "axes_0"], "moe_output", name="ReduceSum_experts", keepdims=0)  # [T, D]
    r = g.node("Add", [x, y], "residual", name="Add_residual")
    g.node("Reshape", [r, shp], "output", name="Reshape_output")
    return g.model(opset=17, ir_version=8, ms=False, producer="onnxshard samples/deploy/gen.py")


# ---------------------------------------------------------------------------
# 6. GNN message passing

def gnn_mp():
    D = 32
    g = G("gnn_mp", 808)
    g.input("x", F32, ["num_nodes", D])
    g.input("edge_index", I64, [2, "num_edges"])
    g.output("node_embeddings", F32, ["num_nodes", D])
    g.output("layer1_embeddings", F32, ["num_nodes", D])
    src = g.node("Gather", ["edge_index", g.init("idx_0", np.array(0, dtype=np.int64))], "src", name="Gather_src", axis=0)
    dst = g.node("Gather", ["edge_index", g.init("idx_1", np.array(1, dtype=np.int64))], "dst", name="Gather_dst", axis=0)
    zeros = g.node("ConstantOfShape", [g.node("Shape", ["x"], "x_shape", name="Shape_x")], "agg_zeros",
                   name="ConstantOfShape_agg", value=oh.make_tensor("value", F32, [1], [0.0]))
    # layer 1: ScatterElements(reduction=add) by the destination index expanded to [E, D]
    xs = g.node("Gather", ["x", src], "msg_src", name="Gather_x_src", axis=0)
    m = g.node("MatMul", [xs, g.init("conv1.lin_msg.weight", g.randn((D, D), 0.2))], "msg1", name="MatMul_msg1")
    di = g.node("Unsqueeze", [dst, g.init("axes_1", np.array([1], dtype=np.int64))], "dst_col", name="Unsqueeze_dst")
    de = g.node("Expand", [di, g.node("Shape", [m], "msg1_shape", name="Shape_msg1")], "dst_expanded",
                name="Expand_dst")
    agg = g.node("ScatterElements", [zeros, de, m], "agg1", name="ScatterElements_agg1", axis=0, reduction="add")
    hs = g.node("MatMul", ["x", g.init("conv1.lin_self.weight", g.randn((D, D), 0.2))], "self1", name="MatMul_self1")
    ha = g.node("MatMul", [agg, g.init("conv1.lin_agg.weight", g.randn((D, D), 0.2))], "nb1", name="MatMul_agg1")
    h = g.node("Add", [hs, ha], "upd1", name="Add_upd1")
    h = g.node("Add", [h, g.init("conv1.bias", g.randn(D, 0.05))], "upd1_bias", name="Add_bias1")
    h1 = g.node("Relu", [h], "layer1_embeddings", name="Relu_1")
    # layer 2: ScatterND(reduction=add) with indices [E, 1]
    xs2 = g.node("Gather", [h1, src], "msg2_src", name="Gather_h_src", axis=0)
    m2 = g.node("MatMul", [xs2, g.init("conv2.lin_msg.weight", g.randn((D, D), 0.2))], "msg2", name="MatMul_msg2")
    agg2 = g.node("ScatterND", [zeros, di, m2], "agg2", name="ScatterND_agg2", reduction="add")
    hs2 = g.node("MatMul", [h1, g.init("conv2.lin_self.weight", g.randn((D, D), 0.2))], "self2", name="MatMul_self2")
    ha2 = g.node("MatMul", [agg2, g.init("conv2.lin_agg.weight", g.randn((D, D), 0.2))], "nb2", name="MatMul_agg2")
    h2 = g.node("Add", [hs2, ha2], "upd2", name="Add_upd2")
    h2 = g.node("Add", [h2, g.init("conv2.bias", g.randn(D, 0.05))], "upd2_bias", name="Add_bias2")
    g.node("Relu", [h2], "node_embeddings", name="Relu_2")
    return g.model(opset=17, ir_version=8, ms=False, producer="onnxshard samples/deploy/gen.py")


# ---------------------------------------------------------------------------

BS, SEQ = 4, 8
LLAMA_PROMPT = {"batch_size": BS, "sequence_length": SEQ, "past_sequence_length": 0, "total_sequence_length": SEQ}
LLAMA_DECODE = {"batch_size": BS, "sequence_length": 1, "past_sequence_length": 4, "total_sequence_length": 5}
BERT_DIMS = {"batch_size": BS, "sequence_length": SEQ}

MODELS = [
    ("llama_int4_gqa", llama_int4_gqa, [
        ("llama_int4_gqa", LLAMA_PROMPT, "first prompt (past 0)"),
        ("llama_int4_gqa_decode", LLAMA_DECODE, "one decode step (past 4)")],
     {"input_ids": 512, "position_ids": 64}, ["attention_mask"],
     "onnxruntime-genai int4 (MatMulNBits bits=4 block 32, GroupQueryAttention, RotaryEmbedding, "
     "SkipSimplifiedLayerNormalization)"),
    ("bert_opt_fp32", lambda: bert_opt(False), [("bert_opt_fp32", BERT_DIMS, "")],
     {"input_ids": 128, "token_type_ids": 2}, [],
     "ORT transformer optimizer BERT (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu/FastGelu)"),
    ("bert_opt_fp16", lambda: bert_opt(True), [("bert_opt_fp16", BERT_DIMS, "")],
     {"input_ids": 128, "token_type_ids": 2}, [],
     "ORT transformer optimizer BERT, float16 with op_block_list casts, int32 inputs"),
    ("encoder_mha_fp32", lambda: encoder_mha(False), [("encoder_mha_fp32", BERT_DIMS, "")], {}, [],
     "pre-LN encoder with com.microsoft MultiHeadAttention, Gelu/FastGelu"),
    ("encoder_mha_fp16", lambda: encoder_mha(True), [("encoder_mha_fp16", BERT_DIMS, "")], {}, [],
     "pre-LN encoder with com.microsoft MultiHeadAttention, float16 (keep_io_types)"),
    ("qdq_cnn", qdq_cnn, [("qdq_cnn", {"batch_size": BS}, "")], {}, [],
     "ORT static quantizer QDQ CNN (uint8 activations, int8 per-channel weights, int32 biases)"),
    ("qdq_ffn", qdq_ffn, [("qdq_ffn", {"batch_size": BS}, "")], {}, [],
     "ORT static quantizer QDQ MLP (MatMul+Add and Gemm, int8 per-channel axis 1)"),
    ("qdq_block_ffn", qdq_block_ffn, [("qdq_block_ffn", {"batch_size": BS}, "")], {}, [],
     "MatMulNBitsQuantizer QDQ form: opset-21 block-wise DequantizeLinear of int4/uint4 weights"),
    ("moe_dense", lambda: moe(False), [("moe_dense", BERT_DIMS, "")], {}, [],
     "top-2 MoE, dense gates by ScatterElements, experts as batched MatMul over [E, d, f]"),
    ("moe_onehot", lambda: moe(True), [("moe_onehot", BERT_DIMS, "")], {}, [],
     "top-2 MoE, gates by OneHot * GatherElements weights, experts as batched MatMul"),
    ("gnn_mp", gnn_mp, [("gnn_mp", {"num_nodes": 16, "num_edges": 48}, "")], {"edge_index": 16}, [],
     "GNN message passing: Gather by source, ScatterElements/ScatterND reduction add by destination"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    entries = []
    for fname, build, cases, int_max, ones, form in MODELS:
        m = build()
        path = os.path.join(a.out, fname + ".onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        for name, dims, note in cases:
            e = {"name": name, "file": fname + ".onnx", "dims": dims, "int_max": int_max, "ones": ones,
                 "form": form + ("; " + note if note else "")}
            entries.append(e)
        print("%-18s %8d bytes  %d nodes" % (fname + ".onnx", os.path.getsize(path), len(m.graph.node)))
    with open(os.path.join(a.out, "models.json"), "w") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
