#!/usr/bin/python3
"""End-to-end over the forms deployers run (samples/deploy): every model x
strategy x mesh verified in ONNX Runtime, and the plans held to being useful.

    /usr/bin/python3 tests/e2e/deploy.py BIN SRCDIR [--only SUBSTRING] [--jobs N]

The models (samples/deploy/gen.py) are ONNX Runtime's and its tools' forms:
an int4 Llama of onnxruntime-genai's model builder (MatMulNBits,
GroupQueryAttention, RotaryEmbedding, SkipSimplifiedLayerNormalization), a
BERT of the transformer optimizer (EmbedLayerNormalization, Attention,
SkipLayerNormalization, BiasGelu, FastGelu) in fp32 and fp16, a pre-LN
encoder with MultiHeadAttention, QDQ int8 models of the static quantizer,
two top-2 mixture-of-experts layers and a GNN message-passing layer. Each
case runs like tests/e2e/corpus.py (shard, check, onnx.checker, stitch,
ONNX Runtime on the source and the stitched model, every replica) with the
model's dims, integer ranges and all-ones inputs from models.json (fp16
models element-wise to rtol 1e-2, atol 2e-3: each rank's partial sums are
rounded to fp16 before they are added).

Every rank's MatMulNBits reads its B, scales and zero points as
initializers (never a collective's or another op's result). Usefulness,
asserted (a correct plan that splits nothing fails):
- data on data=2: a model whose inputs share a batch computes without any
  collective (ALLDATA below);
- megatron on model=2: the transformers' ranks each hold at most 60% of the
  source's weight bytes (TENSOR below);
- auto on model=2 at batch 1 (tests/fixtures/hw-slow-compute.json, where
  splitting pays and the batch cannot split): the same models split their
  weights (under 90% per rank) or their step's work (a rank computes at
  most 60% of the FLOPs of the model on one device);
- experts on model=2 and model=4: the MoE layers' ranks hold at most 60%
  of the weight bytes.
Prints, per model, the weight bytes per rank under megatron and auto and
the collectives under data.
"""
import collections
import concurrent.futures as cf
import json
import os
import shutil
import sys
import tempfile

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
import deploy_models  # noqa: E402
import sweep  # noqa: E402

STRATEGIES = ["data", "megatron", "data,megatron", "auto"]
MESHES = ["data=2", "model=2", "model=4", "data=2,model=2"]
# batch-parallel: data needs no collective
ALLDATA = {"llama_int4_gqa", "llama_int4_gqa_decode", "bert_opt_fp32", "bert_opt_fp16",
           "encoder_mha_fp32", "encoder_mha_fp16", "qdq_cnn", "qdq_ffn", "qdq_block_ffn",
           "moe_dense", "moe_onehot", "ort_gpt2_past_prompt", "ort_gpt2_past_decode",
           "genai_qwen_gqa_prompt", "genai_qwen_gqa_decode"}
# tensor-parallel: megatron and auto split their weights (the GPT-2 of ORT's
# converter keeps its EmbedLayerNormalization tables whole, so under
# megatron on model=2 it is held to 75%: its layers and LM head split)
TENSOR = {"llama_int4_gqa", "llama_int4_gqa_decode", "bert_opt_fp32", "bert_opt_fp16",
          "encoder_mha_fp32", "encoder_mha_fp16", "qdq_ffn", "genai_qwen_gqa_prompt",
          "genai_qwen_gqa_decode"}
MOE = {"moe_dense", "moe_onehot"}


# bytes per element of each TensorProto data type
SIZES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
         17: 1, 18: 1, 19: 1, 20: 1}


def tensor_bytes(t):
    """Bytes of an initializer, from its dims and type (external data too)."""
    n = 1
    for d in t.dims:
        n *= d
    if t.data_type in (21, 22):  # UINT4, INT4
        return (n + 1) // 2
    if t.data_type == onnx.TensorProto.STRING:
        return sum(len(s) for s in t.string_data)
    return n * SIZES[t.data_type]


def weight_bytes(path):
    m = onnx.load(path, load_external_data=False)
    return sum(tensor_bytes(t) for t in m.graph.initializer)


def computed_nbits(path):
    """MatMulNBits operands B, scales and zero points that are not
    initializers (ORT prepacks them; computed, its accuracy_level=4 kernel
    is wrong): a plan must store them as each rank's block."""
    m = onnx.load(path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    return ["%s input %d" % (n.name, k) for n in m.graph.node if n.op_type == "MatMulNBits"
            for k, x in enumerate(n.input[1:4], 1) if x and x not in inits]


def measure(out):
    """The largest rank's weight bytes, its FLOPs in the plan's step, and
    the MatMulNBits weights fed from computed values."""
    with open(os.path.join(out, "manifest.json")) as f:
        flops = json.load(f)["plan"].get("flops", 0)
    ranks = [os.path.join(out, f) for f in os.listdir(out) if f.startswith("rank") and f.endswith(".onnx")]
    return {"weights": max(weight_bytes(r) for r in ranks), "flops": flops,
            "computed_nbits": [x for r in ranks for x in computed_nbits(r)]}


def whole_flops(binary, c):
    """FLOPs of the model's step on one device (a mesh of one), as the auto case is costed."""
    dims = [x for k, v in c["dims"].items() for x in ("--dim", "%s=%d" % (k, v))]
    rc, text = sweep.run([binary, "plan", c["model"], "--mesh", "model=1", "--json", *dims,
                          "--hardware", os.path.join(c["src"], "tests", "fixtures", "hw-slow-compute.json")],
                         os.path.join(c["work"] + ".whole.log"))
    return json.loads(text[text.index("{"):]).get("flops", 0) if rc == 0 else 0


def cases_of(src, only):
    tmp = tempfile.mkdtemp(prefix="deploy-")
    cases = []
    for name, path, dims, int_max, ones in deploy_models.deploy_models(src):
        strategies = STRATEGIES + (["experts", "data,experts"] if name in MOE else [])
        for st in strategies:
            for mesh in MESHES:
                if st in ("auto", "experts") and mesh == "data=2":
                    continue
                if st.startswith("data,") and mesh != "data=2,model=2":
                    continue
                what = "%s --strategy %s --mesh %s" % (name, st, mesh)
                # auto at batch 1: the batch cannot split, so only tensor
                # parallelism speeds the step (the slow-compute profile)
                cdims = {k: (1 if "batch" in k and st == "auto" else v) for k, v in dims.items()}
                if only is None or only in what:
                    cases.append({"id": len(cases), "name": name, "model": path, "dims": cdims,
                                  # fp16: each rank's partial sums are rounded
                                  # to fp16 before they are added
                                  "tol": 1e-2 if "fp16" in name else None,
                                  "atol": 2e-3 if "fp16" in name else None,
                                  "intMax": int_max, "ones": ones, "src": src, "strategy": st,
                                  "mesh": mesh, "what": what, "source_bytes": weight_bytes(path),
                                  "work": os.path.join(tmp, str(len(cases)))})
    return tmp, cases


def useless(c):
    """Why a passing case's plan is not useful, or None."""
    got = c.get("measure", {})
    share = got.get("weights", 0) / max(c["source_bytes"], 1)
    ncoll = sum(c.get("collectives", {}).values())
    if got.get("computed_nbits"):
        return "MatMulNBits reads computed weights: %s" % ", ".join(got["computed_nbits"][:3])
    if c["strategy"] == "data" and c["mesh"] == "data=2" and c["name"] in ALLDATA and ncoll:
        return "data ran %d collectives (%s)" % (ncoll, c["collectives"])
    if c["mesh"] == "model=2" and c["name"] in TENSOR:
        if c["strategy"] == "megatron" and share > 0.6:
            return "megatron: a rank holds %.0f%% of the weight bytes" % (100 * share)
        work = got.get("flops", 0) / max(c.get("whole_flops", 0), 1)
        if c["strategy"] == "auto" and share > 0.9 and work > 0.6:
            return "auto: a rank holds %.0f%% of the weight bytes and computes %.0f%% of the step" % (
                100 * share, 100 * work)
    if (c["strategy"] == "megatron" and c["mesh"] == "model=2" and c["name"].startswith("ort_gpt2")
            and share > 0.75):
        return "megatron: a rank holds %.0f%% of the weight bytes" % (100 * share)
    if c["strategy"] == "experts" and c["name"] in MOE and share > 0.6:
        return "experts: a rank holds %.0f%% of the weight bytes" % (100 * share)
    return None


def main(argv):
    args = sweep.parse_args(argv, "deploy", os.cpu_count() or 2)
    if not args:
        return 2
    binary, src, only, jobs = args
    tmp, cases = cases_of(src, only)
    try:
        with cf.ThreadPoolExecutor(jobs) as ex:
            list(ex.map(lambda c: corpus.prepare(c, binary, measure), cases))
            for c in cases:
                if c["strategy"] == "auto" and c["mesh"] == "model=2":
                    c["whole_flops"] = whole_flops(binary, c)
        todo = [c for c in cases if "outcome" not in c]
        res = sweep.ort_batch(todo, src, jobs) if todo else {}
        for c in todo:
            kind, msg = res.get(c["id"], ("fail", "no result from ortcompare"))
            c["outcome"] = ("pass", "") if kind == "pass" else ("fail", "ortcompare: " + msg)
            why = useless(c) if kind == "pass" else None
            if why:
                c["outcome"] = ("fail", "not useful: " + why)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = collections.Counter(c["outcome"][0] for c in cases)
    for c in cases:
        if c["outcome"][0] == "fail":
            print("FAIL %s: %s" % (c["what"], c["outcome"][1]))
    by = {(c["name"], c["strategy"], c["mesh"]): c for c in cases}
    print("deploy: weight bytes of the largest rank / the source; collectives under data")
    for name in dict.fromkeys(c["name"] for c in cases):
        def share(st, mesh):
            c = by.get((name, st, mesh))
            if not c or "measure" not in c:
                return "-"
            return "%.0f%%" % (100 * c["measure"]["weights"] / max(c["source_bytes"], 1))
        d = by.get((name, "data", "data=2"))
        print("  %-22s megatron model=2 %5s model=4 %5s | auto model=2 %5s model=4 %5s | data: %s" % (
            name, share("megatron", "model=2"), share("megatron", "model=4"), share("auto", "model=2"),
            share("auto", "model=4"), d.get("collectives", {}) if d else "-"))
    split = sum(1 for c in cases if c["outcome"][0] == "pass" and c.get("split"))
    print("deploy: %d models, %d cases: %d passed (%d split something), %d failed" %
          (len({c["name"] for c in cases}), len(cases), counts["pass"], split, counts["fail"]))
    return 1 if counts["fail"] or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
