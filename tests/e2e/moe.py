#!/usr/bin/python3
"""Mixture of experts end to end (tests/e2e/moe.sh runs it).

    /usr/bin/python3 tests/e2e/moe.py BIN SRCDIR

The models of make_moe.py: moe_dense (ScatterElements gates, Expand,
batched expert MatMuls) and moe_onehot (OneHot gates, GatherElements,
Tile), each sharded under experts (model=2, model=4; data,experts on
data=2,model=2), megatron (model=2, model=4), auto on the slow-compute
profile (model=2, model=4, data=2,model=2: a decode step of 3 tokens, which
no mesh axis divides) and data (data=2); scatter_add with a tactics file
splitting the updates of its scatters that add (model=2, model=4,
data=2,model=2): ScatterElements' along its axis, ScatterND's along the
index batch, each a pending sum over data kept on one shard.
Every case goes through corpus.py's chain (shard, check, onnx.checker,
stitch) and ONNX Runtime against the source (sweep.ort_batch, every replica).
Then, on rank files and manifests:
  - experts on model=4: every rank holds a quarter of experts.W1's and
    experts.W2's bytes, and the manifest says dim 0 over model;
  - experts: exactly one AllReduce (and no other collective) per MoE layer;
  - analyze: the experts' dim 0 of W1 and W2 is one decision group;
  - auto on model=2 and model=4 splits the expert dim of W1 and W2.
Prints one line per failure and a closing "N passed, N failed".
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
import sweep  # noqa: E402

# symbolic dims bound at run time: a batch that 2 divides, and a decode step
# of 3 tokens (for auto: only the experts' dim can be split)
DIMS = {"moe_dense": ({"tokens": 6}, {"tokens": 3}),
        "moe_onehot": ({"batch": 2, "seq": 3}, {"batch": 1, "seq": 3})}
PLANS = [("experts", "model=2"), ("experts", "model=4"), ("data,experts", "data=2,model=2"),
         ("megatron", "model=2"), ("megatron", "model=4"),
         ("auto", "model=2"), ("auto", "model=4"), ("auto", "data=2,model=2"),
         ("data", "data=2")]
EXPERT_WEIGHTS = ("experts.W1", "experts.W2")


def shard(binary, src, model, mesh, strategy, out, dims):
    """A shard run for the checks on its output (corpus.prepare removes its own)."""
    extra = [x for k, v in dims.items() for x in ("--dim", "%s=%d" % (k, v))] + [
        "--hardware", os.path.join(src, "tests", "fixtures", "hw-slow-compute.json")] \
        if strategy == "auto" else []
    r = subprocess.run([binary, "shard", model, "--mesh", mesh, "--strategy", strategy, "-o", out,
                        "--quiet", *extra], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("shard %s %s %s: %s" % (os.path.basename(model), mesh, strategy,
                                                   sweep.one_line(r.stderr)))
    return json.load(open(os.path.join(out, "manifest.json")))


def init_bytes(rank_file, name):
    m = onnx.load(rank_file)
    for t in m.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t).nbytes
    return None


def main(argv):
    binary, src = argv[0], argv[1]
    tmp = tempfile.mkdtemp(prefix="moe-")
    models = os.path.join(tmp, "models")
    fails = []
    passed = 0
    try:
        subprocess.run([sys.executable, os.path.join(HERE, "make_moe.py"), models], check=True)
        tactics = os.path.join(tmp, "scatter-axis.json")
        with open(tactics, "w") as f:
            json.dump({"steps": [{"shard": "idx", "dim": 1, "axes": ["model"]},
                                 {"shard": "rows_idx", "dim": 0, "axes": ["model"]}]}, f)
        cases = []

        def add(name, strategy, mesh, dims, **kw):
            c = {"id": len(cases), "name": name, "model": os.path.join(models, name + ".onnx"),
                 "dims": dims, "src": src, "strategy": strategy, "mesh": mesh,
                 "what": "%s --strategy %s --mesh %s" % (name, os.path.basename(strategy), mesh),
                 "work": os.path.join(tmp, str(len(cases)))}
            c.update(kw)
            cases.append(c)

        for name, (dims, decode) in DIMS.items():
            for strategy, mesh in PLANS:
                add(name, strategy, mesh, decode if strategy == "auto" else dims)
        for mesh in ("model=2", "model=4", "data=2,model=2"):
            add("scatter_add", tactics, mesh, {"tokens": 8}, intMax={"idx": 8, "rows_idx": 16})
        for c in cases:
            corpus.prepare(c, binary)
        todo = [c for c in cases if "outcome" not in c]
        res = sweep.ort_batch(todo, src, 2) if todo else {}
        for c in todo:
            kind, msg = res.get(c["id"], ("fail", "no result from ortcompare"))
            c["outcome"] = ("pass", "") if kind == "pass" else ("fail", "ortcompare: " + msg)
        for c in cases:
            if c["outcome"][0] != "pass":
                fails.append("%s: %s" % (c["what"], c["outcome"][1]))
                continue
            passed += 1
            print("ok %s: collectives %s" % (c["what"], c.get("collectives", {})))
            # one MoE layer: the experts' pending sum is the only collective
            if c["strategy"].endswith("experts"):
                if c.get("collectives") != {"AllReduce": 1}:
                    fails.append("%s: want exactly 1 AllReduce, got %s" %
                                 (c["what"], c.get("collectives")))
                else:
                    passed += 1

        # experts on model=4: a quarter of each stacked weight on every rank
        for name, (dims, decode) in DIMS.items():
            out = os.path.join(tmp, name + "-bytes")
            man = shard(binary, src, os.path.join(models, name + ".onnx"), "model=4", "experts",
                        out, dims)
            params = {p["name"]: p for p in man["parameters"]}
            for w in EXPERT_WEIGHTS:
                p = params[w]
                whole = 4
                for s in p["shape"]:
                    whole *= s
                got = [init_bytes(os.path.join(out, r["model"]), w) for r in man["ranks"]]
                ok = p["sharding"][0] == ["model"] and got == [whole // 4] * 4
                print("%s %s experts on model=4: %s sharding %s, bytes per rank %s of %d" %
                      ("ok" if ok else "FAIL", name, w, p["sharding"], got, whole))
                if ok:
                    passed += 1
                else:
                    fails.append("%s: %s: want a quarter of %d bytes on each of 4 ranks, dim 0 "
                                 "over model" % (name, w, whole))
            # analyze: the experts' dim is a decision group of its own
            r = subprocess.run([binary, "analyze", os.path.join(models, name + ".onnx"), "--json"],
                               capture_output=True, text=True)
            groups = json.loads(r.stdout)["groups"] if r.returncode == 0 else []
            want = {(w, 0) for w in EXPERT_WEIGHTS}
            hit = [gr for gr in groups if want <= {(x["value"], x["dim"]) for x in gr["seeds"]}]
            ok = len(hit) == 1 and all(x["dim"] == 0 for x in hit[0]["seeds"])
            print("%s %s analyze: expert group %s" %
                  ("ok" if ok else "FAIL", name, hit[0]["seeds"] if hit else None))
            if ok:
                passed += 1
            else:
                fails.append("%s: analyze has no decision group of the experts' dim 0 alone" % name)
            # auto on a slow device: the experts' dim is split
            for mesh in ("model=2", "model=4"):
                out = os.path.join(tmp, "%s-auto-%s" % (name, mesh))
                man = shard(binary, src, os.path.join(models, name + ".onnx"), mesh, "auto", out,
                            decode)
                params = {p["name"]: p for p in man["parameters"]}
                split = [params[w]["sharding"][0] for w in EXPERT_WEIGHTS]
                ok = all(s == ["model"] for s in split)
                print("%s %s auto on %s: expert dim of W1, W2 over %s" %
                      ("ok" if ok else "FAIL", name, mesh, split))
                if ok:
                    passed += 1
                else:
                    fails.append("%s: auto on %s did not split the experts (dim 0 of W1, W2: %s)"
                                 % (name, mesh, split))
    except (RuntimeError, subprocess.CalledProcessError, KeyError) as e:
        fails.append("moe: %s" % sweep.one_line(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        print("FAIL " + f)
    print("moe: %d passed, %d failed" % (passed, len(fails)))
    return 1 if fails or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
