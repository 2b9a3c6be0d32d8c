#!/usr/bin/python3
"""End-to-end over the corpus: every model x strategy x mesh, verified in ORT.

    /usr/bin/python3 tests/e2e/corpus.py BIN SRCDIR [--only SUBSTRING] [--jobs N]

The models: the samples (samples/*.onnx) and the real-architecture corpus
(samples/corpus/models.json: torchvision, torch.nn, Hugging Face-style
exports). Each is sharded under every strategy of STRATEGIES on every mesh
of MESHES; each case runs shard, check, onnx.checker on every rank model,
stitch, then ONNX Runtime on the source and the stitched model (one node
process per job for all cases): every output of every replica must match
the source element by element (ortcompare.js: floats within 1e-5 +
1e-4*|a|, integers, booleans and strings exactly), and replicas must agree
bit for bit. Integer inputs that index a table (sweep.int_tables) are drawn
over the whole table, so the rows of a vocabulary split beyond the first
block are looked up. A refusal, a crash, a checker failure or a mismatch
fails the run; nothing is skipped. The summary counts cases by outcome,
with the passes that split nothing (every weight and activation
replicated: correct, but they exercise no sharding) apart and named, the
collectives the passing cases ran (by kind), and the cases that split a
table over its rows with how many had ids drawn in the blocks above the
first (vocab_hits).
"""
import collections
import concurrent.futures as cf
import json
import os
import re
import shutil
import sys
import tempfile

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_model  # noqa: E402
import sweep  # noqa: E402

STRATEGIES = ["data", "megatron", "data,megatron", "auto"]
MESHES = ["data=2", "model=2", "model=4", "data=2,model=2"]
SAMPLES = {"mlp": ("batch",), "gpt2": ("batch", "seq"), "bert": ("batch", "seq"),
           "resnet": ("batch",), "vit": ("batch",), "llama": ("batch", "seq")}  # their symbolic dims
KINDS = ("AllReduce", "AllGather", "ReduceScatter", "AllToAll")


def models(src, batch=4, sample_seq=8):
    """(name, path, dims) of the samples and the corpus (samples/corpus/models.json):
    the batch bound to batch, the samples' seq to sample_seq, the corpus's
    other dims as models.json gives them."""
    size = {"batch": batch, "seq": sample_seq}
    out = [(name, os.path.join(src, "samples", name + ".onnx"), {d: size[d] for d in syms})
           for name, syms in SAMPLES.items()]
    with open(os.path.join(src, "samples", "corpus", "models.json")) as f:
        for m in json.load(f):
            dims = dict(m.get("dims", {}))
            if "batch" in dims:
                dims["batch"] = batch
            out.append((m["name"], os.path.join(src, "samples", "corpus", m["file"]), dims))
    return out


def collectives(out):
    """Collective nodes of every rank model, by kind (distinct node names)."""
    names = collections.defaultdict(set)
    for r in sorted(f for f in os.listdir(out) if f.endswith(".onnx")):
        m = onnx.load(os.path.join(out, r), load_external_data=False)
        for n in m.graph.node:
            if n.domain in ("onnxshard", "com.microsoft") and n.op_type in KINDS:
                names[n.op_type].add(n.name)
    return {k: len(v) for k, v in names.items()}


def vocab_splits(out, tables):
    """[(input, table, rows, k)]: the tables of tables ({input: [(table,
    axis, rows)]}, sweep.int_tables) that OUT's manifest splits over the
    axis the input indexes, in k contiguous blocks."""
    with open(os.path.join(out, "manifest.json")) as f:
        m = json.load(f)
    size = {a["name"]: a["size"] for a in m["mesh"]["axes"]}
    params = {p["name"]: p for p in m["parameters"]}
    res = []
    for inp, ts in tables.items():
        for table, axis, rows in ts:
            p = params.get(table)
            if not p or not p["sharding"][axis] or p.get("pieces", [1] * len(p["shape"]))[axis] != 1:
                continue
            k = 1
            for a in p["sharding"][axis]:
                k *= size[a]
            res.append((inp, table, rows, k))
    return res


def vocab_hits(c):
    """(splits, some, every) of a case: its vocabulary splits (vocab_splits),
    how many of them had an id drawn in some block of rows above the first,
    and in every one (ortcompare's ids; which rank sees which id under a data
    split is not followed)."""
    some = every = 0
    for inp, _, rows, k in c.get("vocab", []):
        hit = {i * k // rows for i in c.get("ids", {}).get(inp, []) if 0 <= i < rows}
        some += bool(hit - {0})
        every += set(range(1, k)) <= hit
    return len(c.get("vocab", [])), some, every


def prepare(c, binary, measure=None):
    """shard, check, onnx.checker, stitch; sets c['outcome'] on failure.
    measure(out), when given, reads the output directory before it is
    removed; its result goes to c['measure']."""
    work = c["work"]
    os.makedirs(work)
    out = os.path.join(work, "out")
    # auto on a device whose compute is slow and links free: the search
    # splits all it can, so its plans exercise the emitter
    dims = [x for k, v in c["dims"].items() for x in ("--dim", "%s=%d" % (k, v))] + [
        "--hardware", os.path.join(c["src"], "tests", "fixtures", "hw-slow-compute.json")] \
        if c["strategy"] == "auto" else []
    rc, text = sweep.run([binary, "shard", c["model"], "--mesh", c["mesh"], "--strategy", c["strategy"],
                                                    "-o", out, "--json", *dims], os.path.join(work, "shard.log"))
    # a named tactic that splits none of its targets is refused with the
    # numbers (a detection model's batch of 1 on data=2): right when they
    # do not divide
    m = re.search(r"--strategy data: the batch dim (\d+) of '[^']+' does not divide by \w+=(\d+)$",
                  sweep.one_line(text))
    if rc == 2 and m and int(m.group(1)) % int(m.group(2)):
        c["outcome"], c["split"], c["refused"] = ("pass", ""), False, True
        return
    if rc != 0:
        c["outcome"] = ("fail", "shard (exit %d): %s" % (rc, sweep.one_line(text)[-300:]))
        return
    c.update(sweep.split_summary(out, sweep.read_plan(text)))
    if c.get("tables"):
        c["vocab"] = vocab_splits(out, c["tables"])
    rc, text = sweep.run([binary, "check", out], os.path.join(work, "check.log"))
    if rc != 0:
        c["outcome"] = ("fail", "check: " + sweep.one_line(text)[:300])
        return
    for r in sorted(f for f in os.listdir(out) if f.endswith(".onnx")):
        try:
            check_model.check(os.path.join(out, r), False)
        except Exception as e:
            c["outcome"] = ("fail", "onnx.checker %s: %s" % (r, sweep.one_line(e)[:300]))
            return
    c["collectives"] = collectives(out)
    if measure:
        c["measure"] = measure(out)
    st = os.path.join(work, "stitched.onnx")
    rc, text = sweep.run([binary, "stitch", out, "-o", st], os.path.join(work, "stitch.log"))
    if rc != 0:
        c["outcome"] = ("fail", "stitch: " + sweep.one_line(text)[:300])
        return
    shutil.rmtree(out)
    c["stitched"] = st


def main(argv):
    args = sweep.parse_args(argv, "corpus", os.cpu_count() or 2)
    if not args:
        return 2
    binary, src, only, jobs = args
    tmp = tempfile.mkdtemp(prefix="corpus-")
    cases = []
    for name, path, dims in models(src):
        # ids over the whole table each integer input indexes
        tables = sweep.int_tables(onnx.load(path, load_external_data=False))
        int_max = {k: min(r for _, _, r in v) for k, v in tables.items()}
        for st in STRATEGIES:
            for mesh in MESHES:
                what = "%s --strategy %s --mesh %s" % (name, st, mesh)
                if st == "auto" and mesh == "data=2":
                    continue  # auto on the meshes with a model axis
                if only is None or only in what:
                    cases.append({"id": len(cases), "name": name, "model": path, "dims": dims, "src": src,
                                  "strategy": st, "mesh": mesh, "what": what, "intMax": int_max, "tables": tables,
                                  "work": os.path.join(tmp, str(len(cases)))})
    try:
        with cf.ThreadPoolExecutor(jobs) as ex:
            list(ex.map(lambda c: prepare(c, binary), cases))
        todo = [c for c in cases if "outcome" not in c]
        res = sweep.ort_batch(todo, src, jobs) if todo else {}
        for c in todo:
            kind, msg = res.get(c["id"], ("fail", "no result from ortcompare"))
            c["outcome"] = ("pass", "") if kind == "pass" else ("fail", "ortcompare: " + msg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = collections.Counter(c["outcome"][0] for c in cases)
    kinds = collections.Counter()
    for c in cases:
        if c["outcome"][0] == "fail":
            print("FAIL %s: %s" % (c["what"], c["outcome"][1]))
        else:
            for k, n in c.get("collectives", {}).items():
                kinds[k] += 1
    unsplit = collections.defaultdict(list)
    for c in cases:
        if c["outcome"][0] == "pass" and not c.get("split"):
            unsplit[c["name"]].append("%s on %s%s" % (c["strategy"], c["mesh"],
                                                      " (refused: its batch does not divide)"
                                                      if c.get("refused") else ""))
    nidle = sum(len(v) for v in unsplit.values())
    print("corpus: %d models, %d cases: %d passed splitting something, %d passed, split nothing, %d failed" %
          (len({c["name"] for c in cases}), len(cases), counts["pass"] - nidle, nidle, counts["fail"]))
    print("corpus: passing cases that run each collective: " +
          ", ".join("%s %d" % (k, kinds[k]) for k in KINDS))
    vocab = [vocab_hits(c) for c in cases if c["outcome"][0] == "pass"]
    print("corpus: %d passing cases split a table an input indexes over its rows (a vocabulary split); the ids "
          "drawn hit a block of rows above the first in %d of them, every such block in %d" % (
              sum(1 for n, _, _ in vocab if n), sum(1 for n, s, _ in vocab if n and s == n),
              sum(1 for n, _, e in vocab if n and e == n)))
    print("corpus: passed, split nothing (every weight and activation replicated: they exercise no sharding):")
    for name, what in unsplit.items():
        print("  %s: %s" % (name, ", ".join(what)))
    return 1 if counts["fail"] or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
