#!/usr/bin/python3
"""Padded splits end to end (ctest padding).

    /usr/bin/python3 tests/padding.py BIN SRCDIR

A dim that does not divide by its mesh axes is held as padded blocks
(docs/DESIGN.md, Padding). Each case is sharded, checked, stitched and run in
ONNX Runtime against the source (tests/e2e/ortcompare.js, element by
element, every replica; token ids drawn over the whole vocabulary, so the
last, padded block of rows is looked up), and its rank files are read:
  1. a 2-layer GPT-shaped decoder, vocabulary 50257, on model=8 and
     data=2,model=4, megatron and auto: every rank's LM head weight has
     ceil(50257 / model) columns (not 50257), the manifest says it is padded
     (parameters[].padded), the padding is zeros, and megatron's embedding
     table holds ceil(50257 / model) rows;
  2. a 12-head Llama-shaped decoder on model=8 under megatron: attention split
     by heads padded to 16 (2 a rank): q, k, v projections of 2 heads' columns,
     o_proj of 2 heads' rows, and no AllGather of q, k or v;
  3. an embedding-table lookup (1001 rows on model=8: 126 a rank, the last
     holding 7 padded rows) under megatron;
  4. a weight padded by auto (slow compute) before a Softmax over the padded
     dim: the padding is cut off before the Softmax reads it;
  5. GPT-2's widths (12 heads of 64, hidden 768, vocabulary 50257, 2 layers)
     on model=8 under megatron and auto (a device of 65 MB, where the weights
     must be split): the fused c_attn [768, 3 pieces of 768] is padded piece
     by piece to 16 heads, 2 a rank: every rank's c_attn weight is [768, 3 x
     128] (each piece's block of the source's columns, then zeros), its bias
     [3 x 128], o_proj [128, 768], and no AllGather of attention values.
Prints one line per failure and "N passed, N failed"; exits 1 on a failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BIN, SRC = sys.argv[1], sys.argv[2]
COMPARE = os.path.join(SRC, "tests", "e2e", "ortcompare.js")
MAKE_LLM = os.path.join(SRC, "tests", "bench", "make_llm.py")
SLOW = os.path.join(SRC, "tests", "fixtures", "hw-slow-compute.json")
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)
    return ok


def run(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def shard_and_compare(model, mesh, strategy, out, dims, int_max, hw=None):
    """Shard, check, stitch and compare in ORT; the manifest, or None."""
    name = "%s %s %s" % (os.path.basename(model), mesh, strategy)
    dim_args = [x for k, v in dims.items() for x in ("--dim", "%s=%d" % (k, v))]
    rc, msg = run(BIN, "shard", model, "--mesh", mesh, "--strategy", strategy, "-o", out,
                  "--quiet", *dim_args, *(["--hardware", hw] if hw else []))
    if not check(rc == 0, "%s: shard: %s" % (name, msg.strip()[-300:])):
        return None
    rc, msg = run(BIN, "check", out)
    check(rc == 0, "%s: check: %s" % (name, msg.strip()[-300:]))
    stitched = os.path.join(out, "stitched.onnx")
    rc, msg = run(BIN, "stitch", out, "-o", stitched)
    if check(rc == 0, "%s: stitch: %s" % (name, msg.strip()[-300:])):
        onnx.checker.check_model(stitched)
        cmp = ["node", COMPARE, model, stitched, *dim_args]
        for k, v in int_max.items():
            cmp += ["--int-max", "%s=%d" % (k, v)]
        rc, msg = run(*cmp)
        check(rc == 0 and "ok " in msg, "%s: ORT: %s" % (name, msg.strip()[-400:]))
    with open(os.path.join(out, "manifest.json")) as f:
        return json.load(f)


def rank_inits(out, r):
    m = onnx.load(os.path.join(out, "rank%d.onnx" % r), load_external_data=False)
    onnx.load_external_data_for_model(m, out)
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def param(manifest, name):
    return next((p for p in manifest["parameters"] if p["name"] == name), None)


def ceil_div(a, b):
    return -(-a // b)


def mesh_model(mesh):
    return dict(kv.split("=") for kv in mesh.split(","))["model"]


def gpt_cases(tmp):
    model = os.path.join(tmp, "gpt.onnx")
    subprocess.run(["/usr/bin/python3", MAKE_LLM, model, "--arch", "gpt", "--layers", "2",
                    "--hidden", "256", "--heads", "4", "--vocab", "50257", "--weights",
                    "random"], check=True, capture_output=True)
    src = numpy_helper.to_array(next(
        t for t in onnx.load(model).graph.initializer if t.name == "lm_head.weight"))
    for mesh in ("model=8", "data=2,model=4"):
        n = int(mesh_model(mesh))
        block = ceil_div(50257, n)
        for strategy in ("megatron", "auto"):
            out = os.path.join(tmp, "gpt-%s-%s" % (mesh.replace(",", "_"), strategy))
            man = shard_and_compare(model, mesh, strategy, out, {"batch": 2, "seq": 8},
                                    {"input_ids": 50257})
            if man is None:
                continue
            name = "gpt %s %s" % (mesh, strategy)
            p = param(man, "lm_head.weight")
            check(p and p["sharding"][1] == ["model"] and
                  p.get("padded") == [256, block * n],
                  "%s: manifest lm_head.weight %s" % (name, p))
            for r in range(man["world_size"]):
                inits = rank_inits(out, r)
                w = inits.get("lm_head.weight")
                if not check(w is not None and w.shape == (256, block),
                             "%s: rank %d lm_head.weight %s, want (256, %d)" %
                             (name, r, None if w is None else w.shape, block)):
                    continue
                shard_i = man["ranks"][r]["coords"][-1]
                lo, hi = shard_i * block, min(50257, (shard_i + 1) * block)
                check(np.array_equal(w[:, :hi - lo], src[:, lo:hi]) and
                      not w[:, hi - lo:].any(),
                      "%s: rank %d lm_head.weight: not the source's columns %d..%d "
                      "then zeros" % (name, r, lo, hi))
                if strategy == "megatron":
                    e = inits.get("embed_tokens.weight")
                    check(e is not None and e.shape == (block, 256),
                          "%s: rank %d embed_tokens.weight %s, want (%d, 256)" %
                          (name, r, None if e is None else e.shape, block))


def heads_case(tmp):
    model = os.path.join(tmp, "llama12.onnx")
    subprocess.run(["/usr/bin/python3", MAKE_LLM, model, "--arch", "llama", "--layers", "2",
                    "--hidden", "384", "--heads", "12", "--kv-heads", "12", "--ffn", "1024",
                    "--vocab", "1000", "--weights", "random"], check=True, capture_output=True)
    out = os.path.join(tmp, "llama12-model8")
    man = shard_and_compare(model, "model=8", "megatron", out, {"batch": 2, "seq": 8},
                            {"input_ids": 1000})
    if man is None:
        return
    name = "llama 12 heads model=8 megatron"
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        p = param(man, "layers.0.attn.%s.weight" % proj)
        d = 0 if proj == "o_proj" else 1
        want = [384, 384]
        want[d] = 512  # 16 heads of 32
        check(p and p["sharding"][d] == ["model"] and p.get("padded") == want,
              "%s: manifest %s %s" % (name, proj, p))
    for r in (0, 5, 7):
        inits = rank_inits(out, r)
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            w = inits.get("layers.0.attn.%s.weight" % proj)
            want = (64, 384) if proj == "o_proj" else (384, 64)
            check(w is not None and w.shape == want,
                  "%s: rank %d %s %s, want %s" % (name, r, proj,
                                                   None if w is None else w.shape, want))
            if r >= 6 and w is not None:  # heads 12..15: all padding
                check(not w.any(), "%s: rank %d %s: padding not zero" % (name, r, proj))
    gathers = [s["value"] for s in man["plan"]["reshards"]
               if s["op"] == "AllGather" and "attn" in s["value"]]
    check(not gathers, "%s: attention values gathered: %s" % (name, gathers))


def lookup_case(tmp):
    rng = np.random.default_rng(0)
    table = numpy_helper.from_array(rng.standard_normal((1001, 16)).astype(np.float32), "table")
    w = numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["e"]),
         helper.make_node("MatMul", ["e", "w"], ["y"])], "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 16])],
        [table, w])
    model = os.path.join(tmp, "lookup.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
    out = os.path.join(tmp, "lookup-model8")
    man = shard_and_compare(model, "model=8", "megatron", out, {"batch": 4, "seq": 64},
                            {"ids": 1001})
    if man is None:
        return
    p = param(man, "table")
    check(p and p["sharding"][0] == ["model"] and p.get("padded") == [1008, 16],
          "lookup: manifest table %s" % p)
    t7 = rank_inits(out, 7).get("table")
    check(t7 is not None and t7.shape == (126, 16) and not t7[119:].any() and
          np.array_equal(t7[:119], numpy_helper.to_array(table)[882:]),
          "lookup: rank 7's table: rows 882..1000 then 7 zero rows")


def softmax_case(tmp):
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((1001, 1001)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["l"]),
         helper.make_node("Softmax", ["l"], ["y"], axis=-1)], "softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1001])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 1001])], [w])
    model = os.path.join(tmp, "softmax.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
    out = os.path.join(tmp, "softmax-model8")
    man = shard_and_compare(model, "model=8", "auto", out, {}, {}, hw=SLOW)
    if man is None:
        return
    p = param(man, "w")
    check(p and p.get("padded") == [1001, 1008], "softmax: auto did not pad w: %s" % p)
    cut = [s for s in man["plan"]["reshards"] if s["value"] == "l" and s["op"] == "AllGather"]
    check(cut, "softmax: the padded logits reach the Softmax ungathered")


def gpt2_heads_case(tmp):
    model = os.path.join(tmp, "gpt2.onnx")
    subprocess.run(["/usr/bin/python3", MAKE_LLM, model, "--arch", "gpt", "--layers", "2",
                    "--hidden", "768", "--heads", "12", "--vocab", "50257", "--weights",
                    "random"], check=True, capture_output=True)
    src = {t.name: numpy_helper.to_array(t) for t in onnx.load(model).graph.initializer
           if t.name.startswith("layers.0.attn.")}
    small = os.path.join(tmp, "hw-65mb.json")
    with open(small, "w") as f:
        json.dump({"name": "h100-65mb", "peak_flops": {"float32": 6.7e13, "float16": 9.9e14,
                   "bfloat16": 9.9e14, "float64": 3.4e13}, "memory_bandwidth": 3.35e12,
                   "memory_capacity": 6.5e7, "devices_per_node": 8,
                   "intra_node": {"bandwidth": 4.5e11, "latency": 8e-6},
                   "inter_node": {"bandwidth": 5.0e10, "latency": 2.0e-5}}, f)
    block, piece = 128, 768  # 16 heads of 64 over 8 ranks: 2 a rank
    for strategy, hw in (("megatron", None), ("auto", small)):
        out = os.path.join(tmp, "gpt2-model8-%s" % strategy)
        man = shard_and_compare(model, "model=8", strategy, out, {"batch": 2, "seq": 8},
                                {"input_ids": 50257}, hw=hw)
        if man is None:
            continue
        name = "gpt2 12 heads model=8 %s" % strategy
        p = param(man, "layers.0.attn.c_attn.weight")
        check(p and p["sharding"] == [[], ["model"]] and p.get("pieces") == [1, 3] and
              p.get("padded") == [768, 3 * 8 * block],
              "%s: manifest c_attn.weight %s" % (name, p))
        p = param(man, "layers.0.attn.o_proj.weight")
        check(p and p["sharding"][0] == ["model"] and p.get("padded") == [8 * block, 768],
              "%s: manifest o_proj.weight %s" % (name, p))
        for r in (0, 5, 7):
            inits = rank_inits(out, r)
            w = inits.get("layers.0.attn.c_attn.weight")
            b = inits.get("layers.0.attn.c_attn.bias")
            o = inits.get("layers.0.attn.o_proj.weight")
            if not check(w is not None and w.shape == (768, 3 * block) and b is not None and
                         b.shape == (3 * block,) and o is not None and o.shape == (block, 768),
                         "%s: rank %d c_attn %s, bias %s, o_proj %s, want (768, 384), (384,), "
                         "(128, 768)" % (name, r, None if w is None else w.shape,
                                         None if b is None else b.shape,
                                         None if o is None else o.shape)):
                continue
            lo, hi = r * block, min(piece, (r + 1) * block)
            for q in range(3):  # q, k, v: this rank's block of each, then zeros
                got, gb = w[:, q * block:(q + 1) * block], b[q * block:(q + 1) * block]
                check(np.array_equal(got[:, :hi - lo],
                                     src["layers.0.attn.c_attn.weight"][:, q * piece + lo:
                                                                         q * piece + hi]) and
                      not got[:, hi - lo:].any() and
                      np.array_equal(gb[:hi - lo],
                                     src["layers.0.attn.c_attn.bias"][q * piece + lo:
                                                                      q * piece + hi]) and
                      not gb[hi - lo:].any(),
                      "%s: rank %d c_attn piece %d: not the source's columns %d..%d then "
                      "zeros" % (name, r, q, q * piece + lo, q * piece + hi))
            check(np.array_equal(o[:hi - lo], src["layers.0.attn.o_proj.weight"][lo:hi]) and
                  not o[hi - lo:].any(),
                  "%s: rank %d o_proj: not the source's rows %d..%d then zeros" %
                  (name, r, lo, hi))
        gathers = [s["value"] for s in man["plan"]["reshards"]
                   if s["op"] == "AllGather" and ("attn" in s["value"] or "/q/" in s["value"] or
                                                  "/k/" in s["value"] or "/v/" in s["value"] or
                                                  "Split" in s["value"])]
        check(not gathers, "%s: attention values gathered: %s" % (name, gathers))


def main():
    tmp = tempfile.mkdtemp(prefix="padding-")
    try:
        gpt_cases(tmp)
        heads_case(tmp)
        lookup_case(tmp)
        softmax_case(tmp)
        gpt2_heads_case(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
