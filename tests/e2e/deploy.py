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
model's dims, integer ranges and all-ones inputs from models.json.

Usefulness, asserted (a correct plan that splits nothing fails):
- data on data=2: a model whose inputs share a batch computes without any
  collective (ALLDATA below);
- megatron on model=2: the transformers' ranks each hold at most 60% of the
  source's weight bytes (TENSOR below);
- auto on model=2 (tests/fixtures/hw-slow-compute.json, where splitting
  pays): the same models split weights (under 90% per rank);
- experts on model=2 and model=4: the MoE layers' ranks hold at most 60%
  of the weight bytes.
Prints, per model, the weight bytes per rank under megatron and auto and
the collectives under data.
"""
import collections
import concurrent.futures as cf
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
           "moe_dense", "moe_onehot"}
# tensor-parallel: megatron and auto split their weights
TENSOR = {"llama_int4_gqa", "llama_int4_gqa_decode", "bert_opt_fp32", "bert_opt_fp16",
          "encoder_mha_fp32", "encoder_mha_fp16", "qdq_ffn"}
MOE = {"moe_dense", "moe_onehot"}


def tensor_bytes(t):
    """Bytes of an initializer, from its dims and type (external data too)."""
    n = 1
    for d in t.dims:
        n *= d
    if t.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
        return (n + 1) // 2
    if t.data_type == onnx.TensorProto.STRING:
        return sum(len(s) for s in t.string_data)
    return n * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def weight_bytes(path):
    m = onnx.load(path, load_external_data=False)
    return sum(tensor_bytes(t) for t in m.graph.initializer)


def rank_weights(out):
    """The largest rank's weight bytes."""
    return max(weight_bytes(os.path.join(out, f)) for f in os.listdir(out)
               if f.startswith("rank") and f.endswith(".onnx"))


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
                if only is None or only in what:
                    cases.append({"id": len(cases), "name": name, "model": path, "dims": dims,
                                  "intMax": int_max, "ones": ones, "src": src, "strategy": st,
                                  "mesh": mesh, "what": what, "source_bytes": weight_bytes(path),
                                  "work": os.path.join(tmp, str(len(cases)))})
    return tmp, cases


def useless(c):
    """Why a passing case's plan is not useful, or None."""
    share = c.get("measure", 0) / max(c["source_bytes"], 1)
    ncoll = sum(c.get("collectives", {}).values())
    if c["strategy"] == "data" and c["mesh"] == "data=2" and c["name"] in ALLDATA and ncoll:
        return "data ran %d collectives (%s)" % (ncoll, c["collectives"])
    if c["mesh"] == "model=2" and c["name"] in TENSOR:
        if c["strategy"] == "megatron" and share > 0.6:
            return "megatron: a rank holds %.0f%% of the weight bytes" % (100 * share)
        if c["strategy"] == "auto" and share > 0.9:
            return "auto: a rank holds %.0f%% of the weight bytes" % (100 * share)
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
            list(ex.map(lambda c: corpus.prepare(c, binary, rank_weights), cases))
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
            return "%.0f%%" % (100 * c["measure"] / max(c["source_bytes"], 1))
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
