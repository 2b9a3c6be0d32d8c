#!/usr/bin/python3
"""The sharding rules of ONNX Runtime's contrib ops and of quantization,
end to end (ctest contrib).

    /usr/bin/python3 tests/contrib/run.py BIN SRCDIR [--only SUBSTRING] [--jobs N]

Each model of tests/contrib/gen.py is sharded under each of its cases
(--strategy data on data=2, megatron on model=2, a tactics file on model=2)
and verified as tests/e2e/corpus.py does (its prepare: shard, check,
onnx.checker on every rank model, stitch; then ONNX Runtime on the source
and the stitched model through sweep.ort_batch, every output within 1e-4
and replicas bit for bit). The checker of this onnx knows opsets up to 17:
rank models of a later opset (block-wise DequantizeLinear, opset 21) are
left to ONNX Runtime, which loads and runs them. Then each case's own
assertions: the tensors it names split on the dim it names (manifest
inputs and parameters) or left whole, the count of collective nodes in the
rank models (0 where the op is batch-parallel under data), and for float16
and bfloat16 weights, each rank's bytes equal to its slice of the source's.
Prints one line per failure and a closing count; exit 1 on any failure.
"""
import json
import os
import shutil
import sys
import tempfile
import types

import numpy as np
import onnx
import onnx.numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import check_model  # noqa: E402
import corpus  # noqa: E402
import gen  # noqa: E402
import sweep  # noqa: E402

CHECKER_OPSET = onnx.defs.onnx_opset_version()


def keep_out(path, ignore_errors=False):
    """prepare's removal of the shard folder: kept beside it for the checks."""
    if os.path.basename(path) == "out":
        os.rename(path, path + ".kept")
    else:
        shutil.rmtree(path, ignore_errors=ignore_errors)


def check_known_opset(path, full):
    """check_model.check, but for a model of an opset this checker does not
    know, or with an op of the default domain it has no schema of (ONNX
    Runtime's SimplifiedLayerNormalization)."""
    m = onnx.load(path, load_external_data=False)
    if max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) > CHECKER_OPSET:
        return
    if any(n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type) for n in m.graph.node):
        return
    check_model.check(path, full)


def shardings(out):
    man = json.load(open(os.path.join(out, "manifest.json")))
    return {t["name"]: t["sharding"] for t in man["inputs"] + man["parameters"]}, man


def raw_bytes(t, base):
    """An initializer's bytes (raw or external), as one row of uint8."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        onnx.external_data_helper.load_external_data_for_tensor(t, base)
    return np.frombuffer(onnx.numpy_helper.to_array(t).tobytes() if not t.raw_data else t.raw_data,
                         np.uint8)


def check_bytes(c, out, man, name):
    """Each rank's bytes of initializer name equal its block of the source's."""
    src = {t.name: t for t in onnx.load(c["model"]).graph.initializer}[name]
    es = {onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.BFLOAT16: 2}.get(src.data_type)
    if not es:
        return "%s is not float16 or bfloat16" % name
    whole = raw_bytes(src, os.path.dirname(c["model"])).view(np.uint16).reshape(list(src.dims))
    sh = {p["name"]: p["sharding"] for p in man["parameters"]}[name]
    sizes = {a["name"]: a["size"] for a in man["mesh"]["axes"]}
    names = [a["name"] for a in man["mesh"]["axes"]]
    for r in man["ranks"]:
        m = onnx.load(os.path.join(out, r["model"]), load_external_data=False)
        t = {x.name: x for x in m.graph.initializer}[name]
        if t.data_type != src.data_type:
            return "rank %d: %s is of type %d, not %d" % (r["rank"], name, t.data_type, src.data_type)
        got = raw_bytes(t, out).view(np.uint16).reshape(list(t.dims))
        want = whole
        for d, axes in enumerate(sh):
            if not axes:
                continue
            n, idx = 1, 0
            for a in axes:
                idx = idx * sizes[a] + r["coords"][names.index(a)]
                n *= sizes[a]
            blk = whole.shape[d] // n
            want = np.take(want, range(idx * blk, (idx + 1) * blk), axis=d)
        if got.shape != want.shape or not np.array_equal(got, want):
            return "rank %d: the bytes of %s are not its block of the source's" % (r["rank"], name)
    return None


def assertions(c):
    """The case's own checks on its kept shard folder: a list of failures."""
    out = os.path.join(c["work"], "out.kept")
    sh, man = shardings(out)
    bad = []
    for name, dim in c["spec"].get("split", []):
        if name not in sh or not sh[name][dim]:
            bad.append("%s is not split on dim %d (%s)" % (name, dim, sh.get(name)))
    for name in c["spec"].get("whole", []):
        if name in sh and any(sh[name]):
            bad.append("%s is split (%s), it must stay whole" % (name, sh[name]))
    ncoll = sum(c.get("collectives", {}).values())
    want = c["spec"].get("coll")
    if want is not None and ncoll != want:
        bad.append("%d collectives (%s), expected %d" % (ncoll, c.get("collectives"), want))
    if ncoll < c["spec"].get("min_coll", 0):
        bad.append("%d collectives, expected at least %d" % (ncoll, c["spec"]["min_coll"]))
    for name in c["spec"].get("bytes", []):
        why = check_bytes(c, out, man, name)
        if why:
            bad.append(why)
    return bad


def main(argv):
    args = sweep.parse_args(argv, "contrib", 2)
    if not args:
        return 2
    binary, src, only, jobs = args
    corpus.shutil = types.SimpleNamespace(rmtree=keep_out)
    corpus.check_model = types.SimpleNamespace(check=check_known_opset)
    tmp = tempfile.mkdtemp(prefix="contrib-")
    cases = []
    try:
        paths = gen.write(os.path.join(tmp, "models"))
        for name, (_, dims, int_max, specs) in gen.CASES.items():
            for k, spec in enumerate(specs):
                work = os.path.join(tmp, str(len(cases)))
                if "tactic" in spec:
                    strategy, mesh = os.path.join(tmp, "%s-%d.json" % (name, k)), "model=2"
                    with open(strategy, "w") as f:
                        json.dump({"steps": spec["tactic"]}, f)
                    what = "%s --strategy %s" % (name, json.dumps(spec["tactic"]))
                else:
                    strategy = spec["strategy"]
                    mesh = "data=2" if strategy == "data" else "model=2"
                    what = "%s --strategy %s --mesh %s" % (name, strategy, mesh)
                if only is None or only in what:
                    cases.append({"id": len(cases), "name": name, "model": paths[name], "dims": dims,
                                  "intMax": int_max, "src": src, "strategy": strategy, "mesh": mesh,
                                  "what": what, "work": work, "spec": spec})
        for c in cases:
            corpus.prepare(c, binary)
        todo = [c for c in cases if "outcome" not in c]
        res = sweep.ort_batch(todo, src, jobs) if todo else {}
        for c in todo:
            kind, msg = res.get(c["id"], ("fail", "no result from ortcompare"))
            if kind != "pass":
                c["outcome"] = ("fail", "ortcompare %s: %s" % (kind, msg))
                continue
            bad = assertions(c)
            c["outcome"] = ("fail", "; ".join(bad)) if bad else ("pass", "")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    npass = sum(c["outcome"][0] == "pass" for c in cases)
    for c in cases:
        if c["outcome"][0] != "pass":
            print("FAIL %s: %s" % (c["what"], c["outcome"][1]))
    print("contrib: %d models, %d cases" % (len({c["name"] for c in cases}), len(cases)))
    print("%d passed, %d failed" % (npass, len(cases) - npass))
    return 0 if cases and npass == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
