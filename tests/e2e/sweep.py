#!/usr/bin/python3
"""The sweep over libonnx-testdata (tests/e2e/sweep.sh runs it).

    /usr/bin/python3 tests/e2e/sweep.py BIN SRCDIR [--only SUBSTRING] [--jobs N]

Two sets of cases:
  - pytorch: every model of pytorch-converted and pytorch-operator, sharded
    with the default strategy on data=2,model=2, compared with its source in
    ONNX Runtime on random inputs; integer inputs that index a table (feed a
    Gather's indices, directly or through Cast, Unsqueeze, Reshape...) are
    drawn below the table's size (ortcompare --int-max);
  - node: every single-op model of node/ on data=2, sharded with a tactics
    file that splits one dim of one graph input ({"steps": [{"shard": NAME,
    "dim": D, "axes": ["data"]}]}): the first (input, dim), in order, whose
    size in test_data_set_0 2 divides and whose plan computes a graph output
    split or partial; else the first such that shards at all; else every
    value replicated (no dim divides). Its stitched model
    runs on the test data's inputs, compared with the expected outputs
    (ortcompare: rtol 1e-3, atol 1e-4, integers, booleans and strings
    exactly).
Each case: shard (a crash, any exit but 0, 1 or 2, fails; a refusal, exit 1
or 2, fails when ONNX Runtime can run the source), check, onnx.checker on
every rank model, stitch, ONNX Runtime (one node process for all cases,
ortcompare.js --batch). A source ONNX Runtime cannot load or run is a skip
with ORT's message as its reason; so is a source that fails onnx.checker
itself; so is a random op's mismatch (a Dropout given training_mode too). Cases listed in
tests/e2e/sweep_known.txt (MODEL<TAB>MATCH<TAB>WHY: MODEL relative to the
data folder; every failure of the case must contain MATCH) are "known":
reported, not failed on; a known case that passes is a
failure (take it off the list). Prints every failure and skip with its
reason, then counts by outcome and skips grouped by reason. A pass counts
as exercising sharding only if a weight or an activation was split (a node
model: only if its op computed an output split or partial); the others are
counted apart ("pass, computed whole", "pass, split nothing") and the
models that split nothing are named. Exit 1 on any failure, or when fewer
than 400 cases pass exercising sharding.
"""
import base64
import collections
import concurrent.futures as cf
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

DATA = "/usr/share/libonnx-testdata/data"
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_model  # noqa: E402

RANDOM_OPS = {"Bernoulli", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}
# ops through which an integer keeps indexing the same table
PASS_OPS = {"Cast", "Unsqueeze", "Squeeze", "Reshape", "Identity", "Flatten", "Expand", "Transpose",
            "Concat", "Slice", "Tile"}
ORT_TYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64", np.dtype(np.float16): "float16",
             np.dtype(np.int64): "int64", np.dtype(np.int32): "int32", np.dtype(np.int16): "int16",
             np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16",
             np.dtype(np.uint32): "uint32", np.dtype(np.uint64): "uint64", np.dtype(np.bool_): "bool"}


class Skip(Exception):
    pass


def one_line(s):
    return " ".join(str(s).split())


def shapes_of(model):
    """Static dims of every value ONNX's shape inference knows."""
    out = {}
    try:
        m = onnx.shape_inference.infer_shapes(model)
    except Exception:
        m = model
    g = m.graph
    for v in list(g.input) + list(g.value_info) + list(g.output):
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
            out[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
    for t in g.initializer:
        out[t.name] = list(t.dims)
    return out


def int_ranges(model):
    """{input: N} for integer graph inputs that index a table of N rows (the
    smallest, where an input indexes several)."""
    return {k: min(rows for _, _, rows in v) for k, v in int_tables(model).items()}


def int_tables(model):
    """{input: [(table, axis, rows)]}: the tables (a Gather's or
    GatherElements' data, axis and its size there) that each integer graph
    input indexes, directly or through PASS_OPS."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    shapes = None
    users = collections.defaultdict(list)
    for n in g.node:
        for i, x in enumerate(n.input):
            users[x].append((n, i))
    res = {}
    for inp in g.input:
        if inp.name in inits or inp.type.tensor_type.elem_type not in (6, 7, 5, 3, 12, 13, 4, 2):
            continue
        todo, seen, tables = [inp.name], set(), []
        while todo:
            v = todo.pop()
            if v in seen:
                continue
            seen.add(v)
            for n, i in users[v]:
                if n.op_type in PASS_OPS:
                    todo.extend(n.output)
                elif n.op_type in ("Gather", "GatherElements") and i == 1:
                    if shapes is None:
                        shapes = shapes_of(model)
                    axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
                    sh = shapes.get(n.input[0])
                    if sh and -len(sh) <= axis < len(sh) and sh[axis]:
                        tables.append((n.input[0], axis % len(sh), sh[axis]))
        if tables:
            res[inp.name] = tables
    return res


def tensor_json(name, arr):
    if arr.dtype.kind in "OSU":
        return {"name": name, "type": "string", "dims": list(arr.shape), "strings": [str(x) for x in arr.flatten()]}
    t = ORT_TYPES.get(arr.dtype)
    if t is None:
        raise Skip("test data tensor %s has dtype %s, which onnxruntime-node cannot take" % (name, arr.dtype))
    a = np.ascontiguousarray(arr)
    if t == "float16":
        a = a.view(np.uint16)
    elif t == "bool":
        a = a.astype(np.uint8)
    return {"name": name, "type": t, "dims": list(arr.shape), "b64": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode()}


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        b = f.read()
    t.ParseFromString(b)
    if not t.name and not t.dims and not t.raw_data and t.data_type == 0:
        raise Skip("test data %s is not a tensor (a sequence or optional)" % os.path.basename(path))
    return t, numpy_helper.to_array(t)


def node_case(model, folder, work):
    """(data file, candidates) of a node case, or Skip: candidates are the
    (input, dim) of its graph inputs whose test data's size there 2 divides,
    inputs and dims in order."""
    ds = os.path.join(folder, "test_data_set_0")
    g = model.graph
    inits = {t.name for t in g.initializer}
    ins = [i for i in g.input if i.name not in inits]
    files_in = sorted(f for f in os.listdir(ds) if f.startswith("input_"))
    files_out = sorted(f for f in os.listdir(ds) if f.startswith("output_"))
    if len(files_in) != len(ins) or len(files_out) != len(g.output):
        raise Skip("test data has %d inputs and %d outputs, the model %d and %d (optional ones left out)"
                   % (len(files_in), len(files_out), len(ins), len(g.output)))
    for i in list(ins) + list(g.output):
        if not i.type.HasField("tensor_type"):
            raise Skip("a graph input or output is not a tensor (sequence, optional or map)")
    data = {"inputs": [], "outputs": []}
    cands = []
    for vi, f in zip(ins, sorted(files_in, key=lambda s: int(re.findall(r"\d+", s)[0]))):
        _, a = read_pb(os.path.join(ds, f))
        if not set(vi.name) & set("*?[]\\"):  # a tactics file's shard takes a glob
            cands += [(vi.name, d) for d, n in enumerate(a.shape) if n > 0 and n % 2 == 0]
        data["inputs"].append(tensor_json(vi.name, a))
    for vi, f in zip(g.output, sorted(files_out, key=lambda s: int(re.findall(r"\d+", s)[0]))):
        _, a = read_pb(os.path.join(ds, f))
        data["outputs"].append(tensor_json(vi.name, a))
    path = os.path.join(work, "data.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path, cands


def read_plan(text):
    """The plan JSON that `shard --json` printed in text (its stdout and
    stderr together: the JSON starts a line), or None."""
    m = re.search(r"^\{", text, re.M)
    try:
        return json.JSONDecoder().raw_decode(text[m.start():])[0] if m else None
    except ValueError:
        return None


def split_summary(out, plan):
    """What a shard run split, from OUT's manifest and its plan JSON (None if
    there is none): {"split": a weight or an activation was split (a graph
    input, output or parameter split in the manifest, or a reshard in the plan
    other than Mask), "computed": a graph output was computed split or
    partial (split in the manifest, or a reshard other than Slice moves it)}."""
    with open(os.path.join(out, "manifest.json")) as f:
        m = json.load(f)
    reshards = (plan or {}).get("reshards", [])
    outs = {t["name"] for t in m["outputs"]}
    computed = any(any(t["sharding"]) for t in m["outputs"]) or any(
        r["op"] != "Slice" and r["value"] in outs for r in reshards)
    split = computed or any(any(t["sharding"]) for t in m["inputs"] + m["parameters"]) or any(
        r["op"] != "Mask" for r in reshards)
    return {"split": split, "computed": computed}


def node_shard(c, binary, cands):
    """Shard node case c on data=2 and return (exit code, output, OUT): with a
    tactics file sharding the first (input, dim) of cands whose plan computes
    a graph output split, else the first that shards at all, else all
    replicated. Sets c["tactic"] (what was sharded) and split_summary's
    keys. A crash ends the search at once."""
    work, first = c["work"], None
    for k, (name, dim) in enumerate(cands):
        tf = os.path.join(work, "tactics%d.json" % k)
        with open(tf, "w") as f:
            json.dump({"steps": [{"shard": name, "dim": dim, "axes": ["data"]}]}, f)
        out = os.path.join(work, "out%d" % k)
        rc, text = run([binary, "shard", c["model"], "--mesh", "data=2", "--strategy", tf, "-o", out,
                        "--quiet", "--json"], os.path.join(work, "shard%d.log" % k))
        if rc not in (0, 1, 2):
            return rc, text, out
        if rc:
            continue
        summ = dict(split_summary(out, read_plan(text)), tactic="%s dim %d" % (name, dim))
        if summ["computed"]:
            if first:
                shutil.rmtree(first[2])
            c.update(summ)
            return rc, text, out
        if first:
            shutil.rmtree(out)
        else:
            first = (rc, text, out, summ)
    if first:
        c.update(first[3])
        return first[:3]
    # no dim of an input divides (or none shards): every rank computes
    # whole, as a replicated plan (a named data tactic would be refused)
    out, tf = os.path.join(work, "out"), os.path.join(work, "whole.json")
    with open(tf, "w") as f:
        json.dump({"steps": [{"replicate": "*"}]}, f)
    rc, text = run([binary, "shard", c["model"], "--strategy", tf, "--mesh", "data=2", "-o", out,
                    "--quiet", "--json"], os.path.join(work, "shard.log"))
    if rc == 0:
        c.update(split_summary(out, read_plan(text)), tactic="replicated")
    return rc, text, out


def run(cmd, log):
    with open(log, "wb") as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    with open(log, "rb") as f:
        text = f.read().decode(errors="replace")
    return p.returncode, text


def prepare(c, binary):
    """shard, check, onnx.checker, stitch; fills c['outcome'] unless ORT is still needed."""
    work, model_path = c["work"], c["model"]
    os.makedirs(work)
    try:
        model = onnx.load(model_path)
    except Exception as e:
        c["outcome"] = ("skip", "onnx cannot load the source: " + one_line(e))
        return
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        c["outcome"] = ("skip", "the source fails onnx.checker")
        c["detail"] = one_line(e)[:200]
        return
    try:
        if c["set"] == "node":
            c["data"], cands = node_case(model, os.path.dirname(model_path), work)
        else:
            c["intMax"] = int_ranges(model)
    except Skip as e:
        c["outcome"] = ("skip", str(e))
        return
    # a Dropout given training_mode (its third input) may drop at random
    rnd = sorted({n.op_type for n in model.graph.node if n.op_type in RANDOM_OPS or (
        n.op_type == "Dropout" and len(n.input) > 2 and n.input[2])})
    if rnd:
        c["random"] = "random op (%s): its results cannot be compared" % ", ".join(rnd)
    if c["set"] == "node":
        rc, text, out = node_shard(c, binary, cands)
    else:
        out = os.path.join(work, "out")
        rc, text = run([binary, "shard", model_path, "--mesh", "data=2,model=2", "-o", out, "--quiet", "--json"],
                       os.path.join(work, "shard.log"))
        if rc == 0:
            c.update(split_summary(out, read_plan(text)))
    if rc != 0:
        last = text.strip().splitlines()[-1] if text.strip() else ""
        if rc in (1, 2):
            c["refused"] = "shard refused (exit %d): %s" % (rc, last)  # a failure if ORT runs the source
        else:
            c["outcome"] = ("fail", "shard crashed (exit %d): %s" % (rc, last))
        return
    rc, text = run([binary, "check", out], os.path.join(work, "check.log"))
    if rc != 0:
        c["outcome"] = ("fail", "check: " + one_line(text)[:300])
        return
    c["fails"] = []  # onnx.checker failures; the case goes on to ORT
    for r in sorted(f for f in os.listdir(out) if f.endswith(".onnx")):
        try:
            check_model.check(os.path.join(out, r), False)
        except Exception as e:
            c["fails"].append("onnx.checker %s: %s" % (r, one_line(e)[:300]))
    st = os.path.join(work, "stitched.onnx")
    rc, text = run([binary, "stitch", out, "-o", st], os.path.join(work, "stitch.log"))
    if rc != 0:
        c["outcome"] = ("fail", "stitch: " + one_line(text)[:300])
        return
    c["stitched"] = st


def ort_batch(cases, src, jobs):
    """ortcompare --batch over the cases, in jobs node processes: {id: (pass,
    fail or skip, why)}. A case's keys: model, stitched, data (a --data file;
    rtol 1e-3) or intMax, dims, ones; tol (rtol), atol, accuracyLevel. Sets
    c["ids"] ({input: sorted distinct ids drawn}) on the cases with intMax."""
    lines = []
    for c in cases:
        d = {"id": c["id"], "source": c["model"], "other": c.get("stitched"), "replicasExact": True}
        if c.get("data"):
            d["data"], d["tol"] = c["data"], 1e-3
        else:
            d["intMax"], d["dims"] = c.get("intMax", {}), c.get("dims", {"batch": 4})
            if c.get("ones"):
                d["ones"] = c["ones"]
            if c.get("tol"):
                d["tol"] = c["tol"]
        for k in ("atol", "accuracyLevel"):
            if c.get(k) is not None:
                d[k] = c[k]
        lines.append(json.dumps(d))
    by_id = {c["id"]: c for c in cases}
    chunks = [lines[i::jobs] for i in range(jobs)]
    procs = []
    tmp = tempfile.mkdtemp(prefix="sweep-ort-")
    for k, ch in enumerate(chunks):
        f = os.path.join(tmp, "cases%d.jsonl" % k)
        with open(f, "w") as fh:
            fh.write("\n".join(ch) + "\n")
        procs.append(subprocess.Popen(["node", os.path.join(HERE, "ortcompare.js"), "--batch", f],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    res = {}
    for p in procs:
        out, _ = p.communicate()
        for line in out.splitlines():
            m = re.match(r"^(\d+) (pass|fail|skip)(?:: (.*))?$", line)
            ids = re.match(r"^(\d+) ids (.*)$", line)
            if m:
                res[int(m.group(1))] = (m.group(2), m.group(3) or "")
            elif ids and int(ids.group(1)) in by_id:
                by_id[int(ids.group(1))]["ids"] = {
                    n: [int(x) for x in v.split(",") if x] for n, v in (w.split("=", 1) for w in ids.group(2).split())}
            elif line.strip():
                print("ortcompare: " + line)
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def parse_args(argv, name, jobs):
    """BIN SRCDIR [--only SUBSTRING] [--jobs N] -> (bin, src, only, jobs), or None."""
    binary, src, only = argv[0], argv[1], None
    i = 2
    while i < len(argv):
        if argv[i] == "--only":
            only, i = argv[i + 1], i + 2
        elif argv[i] == "--jobs":
            jobs, i = int(argv[i + 1]), i + 2
        else:
            print("%s: error: unknown argument %r" % (name, argv[i]), file=sys.stderr)
            return None
    return binary, src, only, jobs


def main(argv):
    args = parse_args(argv, "sweep", 2)
    if not args:
        return 2
    binary, src, only, jobs = args
    known = {}
    kf = os.path.join(HERE, "sweep_known.txt")
    if os.path.exists(kf):
        for line in open(kf):
            line = line.rstrip("\n")
            if line.strip() and not line.startswith("#"):
                f = line.split("\t")
                if len(f) != 3:
                    print("sweep: error: %s: want MODEL<TAB>MATCH<TAB>WHY: %r" % (kf, line), file=sys.stderr)
                    return 2
                known[f[0].strip()] = (f[1].strip(), f[2].strip())
    cases = []
    for s, folders in (("pytorch", ["pytorch-converted", "pytorch-operator"]), ("node", ["node"])):
        for fo in folders:
            for d in sorted(os.listdir(os.path.join(DATA, fo))):
                p = os.path.join(DATA, fo, d, "model.onnx")
                rel = os.path.relpath(p, DATA)
                if os.path.exists(p) and (only is None or only in rel):
                    cases.append({"id": len(cases), "set": s, "model": p, "rel": rel})
    tmp = tempfile.mkdtemp(prefix="sweep-")
    try:
        for c in cases:
            c["work"] = os.path.join(tmp, str(c["id"]))
        with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
            list(ex.map(lambda c: prepare(c, binary), cases))
        need = [c for c in cases if "outcome" not in c]
        res = ort_batch(need, src, jobs) if need else {}
        for c in need:
            st, why = res.get(c["id"], ("fail", "no result from ortcompare"))
            if c.get("refused"):
                c["outcome"] = ("skip", why) if st == "skip" else ("fail", c["refused"])
            elif st == "fail" and c.get("random"):
                c["outcome"] = ("skip", c["random"])
            else:
                c["outcome"] = (st, why)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for c in cases:  # a rank model onnx.checker refuses fails the case, whatever ORT says
        st, why = c["outcome"]
        if c.get("fails"):
            reasons = c["fails"] + ([why] if st == "fail" else [])
            c["outcome"] = ("fail", "; ".join(reasons))
            c["reasons"] = reasons
    counts = collections.Counter()
    skips = collections.defaultdict(list)
    for c in cases:
        st, why = c["outcome"]
        if c["rel"] in known:
            match, expl = known[c["rel"]]
            if st == "fail" and all(match in r for r in c.get("reasons", [why])):
                st, why = "known", "%s: %s" % (expl, why)
            elif st == "pass":
                st, why = "fail", "listed in sweep_known.txt (%s) but passes: take it off the list" % known[c["rel"]][1]
        c["outcome"] = (st, why)
        if st == "pass" and not c.get("split"):
            st = "pass, split nothing"
        elif st == "pass" and c["set"] == "node" and not c.get("computed"):
            st = "pass, computed whole"
        counts[(c["set"], st)] += 1
        if st == "skip":
            # group ORT's messages by their gist: drop paths and numbers
            key = re.sub(r"/\S+", "FILE", why)
            key = re.sub(r"\(-?\d+\)", "(N)", key)[:150]
            skips[key].append(c["rel"])
        if st in ("fail", "known", "skip"):
            print("%s %s: %s" % (st.upper(), c["rel"], why))
    for rel in known:
        if not any(c["rel"] == rel for c in cases) and only is None:
            print("FAIL %s: listed in sweep_known.txt but not a sweep case" % rel)
            counts[("known-list", "fail")] += 1
    print("\nsweep summary (pass: something was split; pass, computed whole: a node model whose inputs were")
    print("split but whose op computed its outputs whole; pass, split nothing: every value replicated)")
    kinds = ("pass", "pass, computed whole", "pass, split nothing", "fail", "known", "skip")
    for s in ("pytorch", "node", "known-list"):
        parts = ["%s %d" % (st, counts[(s, st)]) for st in kinds if counts[(s, st)]]
        if parts:
            print("  %s: %s" % (s, "; ".join(parts)))
    ran = [c for c in cases if c["set"] == "node" and c["outcome"][0] != "skip"]
    print("  node: %d models run, %d computed on split data (a graph output computed split or partial)" % (
        len(ran), sum(1 for c in ran if c.get("computed"))))
    for s in ("pytorch", "node"):
        idle = sorted(os.path.basename(os.path.dirname(c["rel"])) for c in cases
                      if c["set"] == s and c["outcome"][0] == "pass" and not c.get("split"))
        if idle:
            print("  %s, split nothing: %s" % (s, " ".join(idle)))
    print("skips by reason:")
    for key, rels in sorted(skips.items(), key=lambda kv: -len(kv[1])):
        print("  %4d  %s" % (len(rels), key))
    nfail = sum(v for (s, st), v in counts.items() if st == "fail")
    npass = sum(v for (s, st), v in counts.items() if st == "pass")
    print("sweep: %d passed (%d split something, %d split nothing), %d failed, %d known, %d skipped" % (
        sum(v for (s, st), v in counts.items() if st.startswith("pass")), npass + counts[("node", "pass, computed whole")],
        sum(v for (s, st), v in counts.items() if st == "pass, split nothing"),
        nfail, sum(v for (s, st), v in counts.items() if st == "known"),
        sum(v for (s, st), v in counts.items() if st == "skip")))
    if only is None and npass < 400:
        print("FAIL: only %d cases passed computing on split data, want at least 400" % npass)
        return 1
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
