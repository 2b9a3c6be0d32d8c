#!/usr/bin/python3
"""Export the onnxshard sample models from PyTorch.

Run with Debian's interpreter (python3-torch, python3-onnx):

    /usr/bin/python3 samples/export.py [--skip-ort] [NAME ...]

Writes samples/<name>.onnx next to this script for every model (or only the
NAMEs given).  Every export is seeded (torch.manual_seed(0)), so re-running
gives the same weights.  After each export the model is checked with
onnx.checker and onnx.shape_inference, and run in ONNX Runtime (npm
onnxruntime-node, installed in tests/e2e/node_modules) with batch=2, seq=8:
ORT's outputs must match PyTorch's, and tests/e2e/ortcompare.js must accept
the model against itself.  --skip-ort skips the ONNX Runtime part.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
E2E = os.path.join(ROOT, "tests", "e2e")

OPSET = 17  # torch 1.13 exports up to opset 17
BATCH, SEQ = 2, 8  # sizes used to check the exports
MAX_BYTES = 2 * 1024 * 1024


def perturb_norms(model):
    """Give every LayerNorm a weight near 1 and a bias near 0 instead of exactly
    1 and 0, so that a wrongly sliced or reordered norm parameter changes the
    numbers.  (With the default init, torch's export also merges the identical
    norm parameters into one initializer read through Identity nodes: bert.onnx
    keeps that default on purpose.)"""
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            with torch.no_grad():
                m.weight.add_(0.1 * torch.randn_like(m.weight))
                m.bias.add_(0.1 * torch.randn_like(m.bias))


# --------------------------------------------------------------------------
# MLP


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 256)
        self.fc2 = nn.Linear(256, 64)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


# --------------------------------------------------------------------------
# GPT-2, written like Hugging Face's modeling_gpt2


class Conv1D(nn.Module):
    """HF's Conv1D: a linear layer with the weight stored [nx, nf]."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        nn.init.normal_(self.weight, std=0.02)
        nn.init.normal_(self.bias, std=0.02)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, n_embd, n_head, n_positions):
        super().__init__()
        self.n_embd, self.n_head = n_embd, n_head
        self.head_dim = n_embd // n_head
        self.register_buffer(
            "bias",
            torch.tril(torch.ones((n_positions, n_positions), dtype=torch.bool)).view(1, 1, n_positions, n_positions),
            persistent=False,
        )
        self.c_attn = Conv1D(3 * n_embd, n_embd)
        self.c_proj = Conv1D(n_embd, n_embd)

    def _split_heads(self, t):
        t = t.view(t.size()[:-1] + (self.n_head, self.head_dim))
        return t.permute(0, 2, 1, 3)  # (batch, head, seq, head_dim)

    def _merge_heads(self, t):
        t = t.permute(0, 2, 1, 3).contiguous()
        return t.view(t.size()[:-2] + (self.n_embd,))

    def _attn(self, q, k, v):
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
        query_length, key_length = q.size(-2), k.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length : key_length, :key_length]
        mask_value = torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype)
        w = torch.where(causal_mask, w, mask_value)
        w = F.softmax(w, dim=-1)
        return torch.matmul(w, v)

    def forward(self, h):
        q, k, v = self.c_attn(h).split(self.n_embd, dim=2)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        a = self._merge_heads(self._attn(q, k, v))
        return self.c_proj(a)


class GPT2MLP(nn.Module):
    def __init__(self, n_embd, n_inner):
        super().__init__()
        self.c_fc = Conv1D(n_inner, n_embd)
        self.c_proj = Conv1D(n_embd, n_inner)

    def forward(self, h):
        return self.c_proj(gelu_new(self.c_fc(h)))


class GPT2Block(nn.Module):
    def __init__(self, n_embd, n_head, n_positions):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=1e-5)
        self.attn = GPT2Attention(n_embd, n_head, n_positions)
        self.ln_2 = nn.LayerNorm(n_embd, eps=1e-5)
        self.mlp = GPT2MLP(n_embd, 4 * n_embd)

    def forward(self, h):
        h = h + self.attn(self.ln_1(h))
        return h + self.mlp(self.ln_2(h))


class GPT2(nn.Module):
    def __init__(self, vocab=128, n_positions=64, n_embd=64, n_head=4, n_layer=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        nn.init.normal_(self.wte.weight, std=0.1)
        nn.init.normal_(self.wpe.weight, std=0.02)
        self.h = nn.ModuleList([GPT2Block(n_embd, n_head, n_positions) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        perturb_norms(self)

    def forward(self, input_ids):
        seq = input_ids.size(-1)
        position_ids = torch.arange(0, seq, dtype=torch.long).unsqueeze(0)
        h = self.wte(input_ids) + self.wpe(position_ids)
        for block in self.h:
            h = block(h)
        h = self.ln_f(h)
        # LM head tied to wte.  torch's constant folding turns Transpose(wte)
        # into a second initializer; retie() below undoes that after export.
        return torch.matmul(h, self.wte.weight.t())


# --------------------------------------------------------------------------
# BERT, written like Hugging Face's modeling_bert (post-LN encoder)


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, n_head):
        super().__init__()
        self.n_head, self.head_dim = n_head, hidden // n_head
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def _for_scores(self, x):
        x = x.view(x.size()[:-1] + (self.n_head, self.head_dim))
        return x.permute(0, 2, 1, 3)

    def forward(self, h, ext_mask):
        q = self._for_scores(self.query(h))
        k = self._for_scores(self.key(h))
        v = self._for_scores(self.value(h))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores + ext_mask
        probs = F.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.n_head * self.head_dim,))


class BertLayer(nn.Module):
    def __init__(self, hidden, n_head, inter):
        super().__init__()
        self.attention = BertSelfAttention(hidden, n_head)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_ln = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = nn.Linear(hidden, inter)
        self.output = nn.Linear(inter, hidden)
        self.out_ln = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, h, ext_mask):
        h = self.attn_ln(self.attn_out(self.attention(h, ext_mask)) + h)
        return self.out_ln(self.output(F.gelu(self.intermediate(h))) + h)


class Bert(nn.Module):
    def __init__(self, vocab=128, max_pos=64, type_vocab=2, hidden=64, n_head=4, inter=256, n_layer=2):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.emb_ln = nn.LayerNorm(hidden, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(max_pos).expand((1, -1)), persistent=False)
        self.layers = nn.ModuleList([BertLayer(hidden, n_head, inter) for _ in range(n_layer)])

    def forward(self, input_ids, attention_mask):
        seq = input_ids.size(1)
        position_ids = self.position_ids[:, :seq]
        token_type_ids = torch.zeros_like(input_ids)
        h = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        h = self.emb_ln(h + self.position_embeddings(position_ids))
        ext = attention_mask[:, None, None, :].to(dtype=h.dtype)
        ext = (1.0 - ext) * -10000.0
        for layer in self.layers:
            h = layer(h, ext)
        return h


# --------------------------------------------------------------------------
# ResNet


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + idt)


class ResNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, classes)
        # Non-trivial BatchNorm statistics, so that the folded or unfolded BN
        # really changes the numbers.
        g = torch.Generator().manual_seed(1)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


# --------------------------------------------------------------------------
# ViT


class ViTAttention(nn.Module):
    def __init__(self, dim, n_head):
        super().__init__()
        self.n_head, self.head_dim = n_head, dim // n_head
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q = self.q(x).reshape(b, n, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k(x).reshape(b, n, self.n_head, self.head_dim).transpose(1, 2)
        v = self.v(x).reshape(b, n, self.n_head, self.head_dim).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (self.head_dim ** -0.5)
        att = att.softmax(dim=-1)
        out = (att @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class ViTBlock(nn.Module):
    def __init__(self, dim, n_head, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ViTAttention(dim, n_head)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, img=32, patch=8, dim=64, n_head=4, hidden=128, depth=2, classes=10):
        super().__init__()
        n_patches = (img // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([ViTBlock(dim, n_head, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)
        perturb_norms(self)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, 16, dim)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 0]))


# --------------------------------------------------------------------------
# LLaMA (no rotary): RMSNorm, grouped-query attention, SwiGLU


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaAttention(nn.Module):
    def __init__(self, dim, n_head, n_kv_head):
        super().__init__()
        self.n_head, self.n_kv_head = n_head, n_kv_head
        self.head_dim = dim // n_head
        self.n_rep = n_head // n_kv_head
        self.q_proj = nn.Linear(dim, n_head * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, n_kv_head * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, n_kv_head * self.head_dim, bias=False)
        self.o_proj = nn.Linear(n_head * self.head_dim, dim, bias=False)

    def _repeat_kv(self, t):
        # HF's repeat_kv: (b, kv, s, d) -> (b, kv*n_rep, s, d) via expand + reshape
        b, kv, s, d = t.shape
        t = t[:, :, None, :, :].expand(b, kv, self.n_rep, s, d)
        return t.reshape(b, kv * self.n_rep, s, d)

    def forward(self, x, mask):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.n_kv_head, self.head_dim).transpose(1, 2)
        k, v = self._repeat_kv(k), self._repeat_kv(v)
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        w = F.softmax(w + mask, dim=-1)
        o = torch.matmul(w, v).transpose(1, 2).reshape(b, s, self.n_head * self.head_dim)
        return self.o_proj(o)


class LlamaMLP(nn.Module):
    def __init__(self, dim, inter):
        super().__init__()
        self.gate_proj = nn.Linear(dim, inter, bias=False)
        self.up_proj = nn.Linear(dim, inter, bias=False)
        self.down_proj = nn.Linear(inter, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, dim, n_head, n_kv_head, inter):
        super().__init__()
        self.input_layernorm = RMSNorm(dim)
        self.self_attn = LlamaAttention(dim, n_head, n_kv_head)
        self.post_attention_layernorm = RMSNorm(dim)
        self.mlp = LlamaMLP(dim, inter)

    def forward(self, x, mask):
        x = x + self.self_attn(self.input_layernorm(x), mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, vocab=128, dim=64, n_layer=2, n_head=4, n_kv_head=2, inter=128):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([LlamaLayer(dim, n_head, n_kv_head, inter) for _ in range(n_layer)])
        self.norm = RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, input_ids):
        s = input_ids.size(1)
        h = self.embed_tokens(input_ids)
        mask = torch.full((s, s), torch.finfo(h.dtype).min, dtype=h.dtype)
        mask = torch.triu(mask, diagonal=1)[None, None, :, :]
        for layer in self.layers:
            h = layer(h, mask)
        return self.lm_head(self.norm(h))


# --------------------------------------------------------------------------
# the samples

# BatchNorm: export the eval-mode model with TrainingMode.PRESERVE, which keeps
# BatchNormalization nodes (training_mode=0) and the parameter names; the default
# (TrainingMode.EVAL) folds every BN into the Conv before it.
TRAINING = {"resnet": torch.onnx.TrainingMode.PRESERVE}

# name: (constructor, [(input name, dtype, shape with dim names), ...], [output names])
SAMPLES = {
    "mlp": (MLP, [("x", torch.float32, ["batch", 64])], ["y"]),
    "gpt2": (GPT2, [("input_ids", torch.int64, ["batch", "seq"])], ["logits"]),
    "bert": (
        Bert,
        [("input_ids", torch.int64, ["batch", "seq"]), ("attention_mask", torch.int64, ["batch", "seq"])],
        ["last_hidden_state"],
    ),
    "resnet": (ResNet, [("x", torch.float32, ["batch", 3, 32, 32])], ["logits"]),
    "vit": (ViT, [("x", torch.float32, ["batch", 3, 32, 32])], ["logits"]),
    "llama": (Llama, [("input_ids", torch.int64, ["batch", "seq"])], ["logits"]),
}

# Output dims that are symbolic (the rest are fixed by the model).
OUTPUT_DIMS = {
    "mlp": {"y": {0: "batch"}},
    "gpt2": {"logits": {0: "batch", 1: "seq"}},
    "bert": {"last_hidden_state": {0: "batch", 1: "seq"}},
    "resnet": {"logits": {0: "batch"}},
    "vit": {"logits": {0: "batch"}},
    "llama": {"logits": {0: "batch", 1: "seq"}},
}

DIM_VALUES = {"batch": BATCH, "seq": SEQ}


def make_inputs(specs, gen):
    out = []
    for name, dtype, dims in specs:
        shape = [DIM_VALUES[d] if isinstance(d, str) else d for d in dims]
        if dtype == torch.float32:
            t = torch.rand(shape, generator=gen) * 2 - 1
        elif "mask" in name:
            t = torch.randint(0, 2, shape, generator=gen, dtype=dtype)
            t[..., 0] = 1
        else:
            t = torch.randint(0, 16, shape, generator=gen, dtype=dtype)
        out.append(t)
    return out


def export(name, path):
    ctor, in_specs, out_names = SAMPLES[name]
    torch.manual_seed(0)
    model = ctor().eval()
    gen = torch.Generator().manual_seed(0)
    # Trace with sizes different from the check sizes, so that a size that
    # tracing wrongly baked in as a constant shows up in the ORT check.
    trace_vals = {"batch": 3, "seq": 5}
    trace_inputs = []
    for n, dtype, dims in in_specs:
        shape = [trace_vals[d] if isinstance(d, str) else d for d in dims]
        if dtype == torch.float32:
            trace_inputs.append(torch.rand(shape, generator=gen))
        else:
            trace_inputs.append(torch.ones(shape, dtype=dtype))
    dynamic_axes = {}
    for n, _, dims in in_specs:
        dyn = {i: d for i, d in enumerate(dims) if isinstance(d, str)}
        if dyn:
            dynamic_axes[n] = dyn
    dynamic_axes.update(OUTPUT_DIMS[name])
    with torch.no_grad():
        torch.onnx.export(
            model,
            tuple(trace_inputs),
            path,
            input_names=[s[0] for s in in_specs],
            output_names=out_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            # nothing to fold in resnet, and torch warns about folding with PRESERVE
            do_constant_folding=name not in TRAINING,
            export_params=True,
            training=TRAINING.get(name, torch.onnx.TrainingMode.EVAL),
        )
    if name == "gpt2":
        retie(path, "wte.weight")
    return model


def retie(path, weight):
    """Tie a transposed copy of an initializer back to it.

    torch's constant folding replaces Transpose(W) by a new initializer holding
    W.T, so a weight used both directly and transposed (GPT-2's wte: Gather for
    the embedding, MatMul for the LM head) is stored twice.  Replace every such
    copy by one Transpose node reading W, as Hugging Face Optimum does."""
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    w = onnx.numpy_helper.to_array(inits[weight])
    copies = [
        i.name
        for i in g.initializer
        if i.name != weight
        and list(i.dims) == list(reversed(w.shape))
        and np.array_equal(onnx.numpy_helper.to_array(i), w.T)
    ]
    if not copies:
        raise RuntimeError("%s: no transposed copy of %s to retie" % (path, weight))
    tname = "/lm_head/Transpose"
    tout = tname + "_output_0"
    for n in g.node:
        for k, x in enumerate(n.input):
            if x in copies:
                n.input[k] = tout
    keep = [i for i in g.initializer if i.name not in copies]
    del g.initializer[:]
    g.initializer.extend(keep)
    g.node.insert(0, onnx.helper.make_node("Transpose", [weight], [tout], name=tname, perm=[1, 0]))
    onnx.save(m, path)


def check_onnx(path):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    for init in m.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise RuntimeError("%s: initializer %s uses external data" % (path, init.name))
    return m, inferred


NODE_RUN = r"""
const ort = require(process.argv[1]);
const req = JSON.parse(require('fs').readFileSync(0, 'utf8'));
(async () => {
  const s = await ort.InferenceSession.create(req.model, {executionProviders: ['cpu']});
  const feeds = {};
  for (const i of req.inputs) {
    const data = i.dtype === 'int64' ? BigInt64Array.from(i.data.map(BigInt)) : Float32Array.from(i.data);
    feeds[i.name] = new ort.Tensor(i.dtype, data, i.shape);
  }
  const r = await s.run(feeds);
  const out = {};
  for (const n of s.outputNames) out[n] = {dims: r[n].dims, data: Array.from(r[n].data, Number)};
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""


def check_ort(name, path, model):
    ort_pkg = os.path.join(E2E, "node_modules", "onnxruntime-node")
    if not os.path.isdir(ort_pkg):
        raise RuntimeError(
            "onnxruntime-node is not installed: run `cd tests/e2e && npm install --ignore-scripts` "
            "(or pass --skip-ort)"
        )
    _, in_specs, out_names = SAMPLES[name]
    inputs = make_inputs(in_specs, torch.Generator().manual_seed(42))
    with torch.no_grad():
        ref = model(*inputs)
    refs = ref if isinstance(ref, tuple) else (ref,)
    req = {
        "model": path,
        "inputs": [
            {
                "name": n,
                "dtype": "int64" if t.dtype == torch.int64 else "float32",
                "shape": list(t.shape),
                "data": t.flatten().tolist(),
            }
            for (n, _, _), t in zip(in_specs, inputs)
        ],
    }
    p = subprocess.run(
        ["node", "-e", NODE_RUN, ort_pkg], input=json.dumps(req).encode(), capture_output=True, check=False
    )
    if p.returncode != 0:
        raise RuntimeError("%s: ONNX Runtime failed: %s" % (path, p.stderr.decode().strip()))
    got = json.loads(p.stdout)
    worst = 0.0
    for n, r in zip(out_names, refs):
        g = got[n]
        if list(g["dims"]) != list(r.shape):
            raise RuntimeError("%s: output %s shape %s in ORT, %s in torch" % (path, n, g["dims"], list(r.shape)))
        a = np.asarray(g["data"], dtype=np.float64).reshape(r.shape)
        b = r.double().numpy()
        rel = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-6))
        if not rel <= 1e-4:
            raise RuntimeError("%s: output %s differs from torch, relerr=%g" % (path, n, rel))
        worst = max(worst, rel)
    # and the comparison script itself must accept the model against itself
    p = subprocess.run(
        ["node", os.path.join(E2E, "ortcompare.js"), path, path, "--dim", "batch=%d" % BATCH, "--dim", "seq=%d" % SEQ],
        capture_output=True,
        check=False,
    )
    if p.returncode != 0:
        raise RuntimeError("%s: ortcompare failed:\n%s%s" % (path, p.stdout.decode(), p.stderr.decode()))
    return worst


def histogram(m):
    h = {}
    for n in m.graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else n.domain + "." + n.op_type
        h[key] = h.get(key, 0) + 1
    return dict(sorted(h.items()))


def dims_of(vi):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in vi.type.tensor_type.shape.dim]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="samples to export (default: all)")
    ap.add_argument("--skip-ort", action="store_true", help="do not run the exports in ONNX Runtime")
    ap.add_argument("--summary", metavar="FILE", help="also write a JSON summary (sizes, op histograms, dims)")
    args = ap.parse_args()
    names = args.names or list(SAMPLES)
    for n in names:
        if n not in SAMPLES:
            ap.error("unknown sample %r (have: %s)" % (n, ", ".join(SAMPLES)))
    summary = {}
    for name in names:
        path = os.path.join(HERE, name + ".onnx")
        # export to a temporary file in the same folder, then rename: a failed
        # export never leaves a half-written sample behind
        fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".onnx", dir=HERE)
        os.close(fd)
        try:
            model = export(name, tmp)
            m, _ = check_onnx(tmp)
            size = os.path.getsize(tmp)
            if size >= MAX_BYTES:
                raise RuntimeError("%s: %d bytes, over the %d byte limit" % (name, size, MAX_BYTES))
            rel = None if args.skip_ort else check_ort(name, tmp, model)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        summary[name] = {
            "bytes": size,
            "opset": [(o.domain or "ai.onnx", o.version) for o in m.opset_import],
            "ops": histogram(m),
            "inputs": {i.name: dims_of(i) for i in m.graph.input},
            "outputs": {o.name: dims_of(o) for o in m.graph.output},
            "initializers": len(m.graph.initializer),
        }
        print(
            "%-7s %8d bytes  %4d nodes  ort relerr vs torch %s"
            % (name, size, len(m.graph.node), "skipped" if rel is None else "%.2e" % rel)
        )
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print("export.py: error: %s" % e, file=sys.stderr)
        sys.exit(1)
