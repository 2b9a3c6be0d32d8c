#!/usr/bin/python3
"""Message passing (GNN), integer collectives and an empty past, end to end.

    /usr/bin/python3 tests/e2e/gnn.py BIN SRCDIR

Models from tests/e2e/make_gnn.py: gnn_sym (num_nodes, num_edges symbolic),
gnn_const (16 nodes, 24 edges), past (a cache Concat along
past_sequence_length). Checks:
- the data tactic splits x and not edge_index [2, num_edges] (its dim 0 of 2
  selects sources and destinations: no batch);
- every model x strategy (data, megatron, auto) x mesh (data=2, model=2),
  the past model with --dim past_sequence_length=0 (an empty past, fed as a
  zero-size tensor), through corpus.prepare (shard, check, onnx.checker,
  stitch) and ONNX Runtime against the source (sweep.ort_batch: every
  replica, bit-identical): the stitched model must load and match; gnn_sym
  under data is a masked lookup of a table with symbolic rows;
- no rank model sums an integer (AllReduce, ReduceScatter);
- --dim past_sequence_length=0 is accepted, -1 and x are refused (one line);
- with --collectives ort each case shards (then ort_schema.py, check, and
  ONNX Runtime as above) or is refused with one line, OUT absent;
- stitch turns an integer AllReduce into Adds that ONNX Runtime loads (an
  output directory of an int64 row-parallel MatMul, made by retyping a
  float one).
Prints "gnn: N passed, M failed"; exit 1 on any failure.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as H
from onnx import numpy_helper as NH

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
import make_gnn  # noqa: E402
import sweep  # noqa: E402

INTS = {TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8,
        TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64, TensorProto.BOOL}
GNN_DIMS = {"num_nodes": 16, "num_edges": 24}
PAST_DIMS = {"batch": 2, "past_sequence_length": 0, "sequence_length": 3}


def int_sums(out):
    """Collectives of the rank models in out that sum an integer (or whose
    type is not declared)."""
    bad = []
    for f in sorted(glob.glob(os.path.join(out, "rank*.onnx"))):
        g = onnx.load(f, load_external_data=False).graph
        types = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.output)}
        for n in g.node:
            if n.domain in ("onnxshard", "com.microsoft") and n.op_type in ("AllReduce", "ReduceScatter"):
                t = types.get(n.output[0], 0)
                if t == 0 or t in INTS:
                    bad.append("%s: %s of %s" % (os.path.basename(f), n.op_type,
                                                 TensorProto.DataType.Name(t) if t else "undeclared type"))
    return bad


def shard(binary, c, out, extra=()):
    dims = [x for k, v in c["dims"].items() for x in ("--dim", "%s=%d" % (k, v))]
    if c["strategy"] == "auto":
        dims += ["--hardware", os.path.join(c["src"], "tests", "fixtures", "hw-slow-compute.json")]
    return subprocess.run([binary, "shard", c["model"], "--mesh", c["mesh"], "--strategy", c["strategy"],
                           "-o", out, "--quiet", *dims, *extra], capture_output=True, text=True)


def retyped_int_allreduce(binary, tmp):
    """An output directory whose plan AllReduces an int64 tensor: a float
    row-parallel MatMul (a tactics file), its models retyped to int64."""
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, (8, 4)).astype(np.float32)
    g = H.make_graph([H.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                     [H.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                     [H.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [NH.from_array(w, "w")])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    src = os.path.join(tmp, "mm.onnx")
    onnx.save(m, src)
    tact = os.path.join(tmp, "mm-rows.json")
    with open(tact, "w") as f:
        json.dump({"steps": [{"shard": "w", "dim": 0, "axes": ["model"]}]}, f)
    out = os.path.join(tmp, "mm-out")
    p = subprocess.run([binary, "shard", src, "--mesh", "model=2", "--strategy", tact, "-o", out, "--quiet"],
                       capture_output=True, text=True)
    if p.returncode:
        return None, None, "shard: " + sweep.one_line(p.stderr)
    I64 = TensorProto.INT64

    def retype(model):
        gr = model.graph
        for v in list(gr.input) + list(gr.output) + list(gr.value_info):
            if v.type.tensor_type.elem_type == TensorProto.FLOAT:
                v.type.tensor_type.elem_type = I64
        for i, t in enumerate(gr.initializer):
            if t.data_type == TensorProto.FLOAT:
                gr.initializer[i].CopyFrom(NH.from_array(NH.to_array(t).astype(np.int64), t.name))

    retype(m)
    onnx.save(m, src)
    man_path = os.path.join(out, "manifest.json")
    with open(man_path) as f:
        man = json.load(f)
    def stamp(entry, path):
        with open(path, "rb") as fh:
            data = fh.read()
        entry["bytes"], entry["crc32"] = len(data), "%08x" % (zlib.crc32(data) & 0xffffffff)

    stamp(man["source"], src)
    for r in man["ranks"]:
        path = os.path.join(out, r["model"])
        rm = onnx.load(path)
        retype(rm)
        onnx.save(rm, path)
        stamp(r, path)
        if r.get("external_data"):
            return None, None, "the retyped model has external data"
    for t in man["inputs"] + man["outputs"] + man.get("parameters", []):
        if t.get("dtype") == "float32":
            t["dtype"] = "int64"
    with open(man_path, "w") as f:
        json.dump(man, f, indent=2)
    return src, out, None


def main(argv):
    binary, src = argv[0], argv[1]
    tmp = tempfile.mkdtemp(prefix="gnn-")
    fails, passed, refused, kinds = [], 0, 0, {}
    try:
        models = os.path.join(tmp, "models")
        make_gnn.main(models)
        # the data tactic's dim: x and the tables split, edge_index whole
        for name in ("gnn_sym", "gnn_const"):
            out = os.path.join(tmp, name + "-data")
            c = {"model": os.path.join(models, name + ".onnx"), "mesh": "data=2", "strategy": "data",
                 "dims": {}, "src": src}
            p = shard(binary, c, out)
            if p.returncode:
                fails.append("%s data: shard: %s" % (name, sweep.one_line(p.stderr)))
                continue
            with open(os.path.join(out, "manifest.json")) as f:
                sh = {t["name"]: t["sharding"] for t in json.load(f)["inputs"]}
            if sh["x"][0] != ["data"] or any(sh["edge_index"]):
                fails.append("%s data: inputs split %s, want x on dim 0 and edge_index whole" % (name, sh))
            else:
                passed += 1
            # x [num_nodes, 32] looked up split: rows read at run time (Shape)
            g = onnx.load(os.path.join(out, "rank1.onnx"), load_external_data=False).graph
            rows = [n for n in g.node if n.name.startswith("onnxshard/lookup") and n.op_type == "Shape"]
            if name == "gnn_sym" and len(rows) != 2:
                fails.append("gnn_sym data: %d lookups read their rows at run time, want 2 (x by src, x by dst)"
                             % len(rows))
            elif name == "gnn_sym":
                passed += 1
            shutil.rmtree(out)
        # --dim: 0 is a size, a negative one is not
        past = os.path.join(models, "past.onnx")
        for val, want in (("0", None), ("-1", "size must be an integer >= 0"), ("x", "size must be an integer >= 0")):
            p = subprocess.run([binary, "plan", past, "--mesh", "model=2", "--dim", "past_sequence_length=" + val],
                               capture_output=True, text=True)
            lines = p.stderr.strip().splitlines()
            ok = p.returncode == 0 if want is None else (
                p.returncode == 2 and len(lines) == 1 and lines[0].startswith("onnxshard: error: --dim") and
                want in lines[0])
            if ok:
                passed += 1
            else:
                fails.append("plan --dim past_sequence_length=%s: exit %d: %s" % (val, p.returncode,
                                                                                  sweep.one_line(p.stderr)))
        # every case, both collective domains
        cases = []
        for name, dims in (("gnn_sym", GNN_DIMS), ("gnn_const", {}), ("past", PAST_DIMS)):
            for st in ("data", "megatron", "auto"):
                for mesh in ("data=2", "model=2"):
                    for coll in ("onnxshard", "ort"):
                        cases.append({"id": len(cases), "name": name, "strategy": st, "mesh": mesh, "coll": coll,
                                      "model": os.path.join(models, name + ".onnx"), "src": src,
                                      "dims": dict(dims), "intMax": {"edge_index": 16},
                                      "work": os.path.join(tmp, "c%d" % len(cases)),
                                      "what": "%s --strategy %s --mesh %s --collectives %s" % (name, st, mesh, coll)})
        todo = []
        for c in cases:
            os.makedirs(c["work"])
            out = os.path.join(c["work"], "own")
            p = shard(binary, c, out, ["--collectives", c["coll"]])
            if p.returncode:
                lines = p.stderr.strip().splitlines()
                if c["coll"] == "ort" and p.returncode == 2 and len(lines) == 1 and \
                        lines[0].startswith("onnxshard: error: --collectives ort") and not os.path.exists(out):
                    passed += 1  # refused cleanly
                    refused += 1
                    print("refused %s: %s" % (c["what"], lines[0]))
                else:
                    fails.append("%s: shard exit %d: %s" % (c["what"], p.returncode, sweep.one_line(p.stderr)))
                continue
            bad = int_sums(out)
            if bad:
                fails.append("%s: integer sums: %s" % (c["what"], "; ".join(bad)))
                continue
            for k, n in corpus.collectives(out).items():
                kinds[k] = kinds.get(k, 0) + n
            if c["coll"] == "ort":
                q = subprocess.run(["/usr/bin/python3", os.path.join(src, "tests", "ort_schema.py"),
                                    os.path.join(src, "tests", "fixtures", "ort_collectives.json"),
                                    *glob.glob(os.path.join(out, "rank*.onnx"))], capture_output=True, text=True)
                if any(line.startswith("FAIL") and "no com.microsoft node" not in line
                       for line in q.stdout.splitlines()):
                    fails.append("%s: ort_schema: %s" % (c["what"], sweep.one_line(q.stdout)[:300]))
                    continue
                # corpus.prepare shards with the default domain: stitch ours
                q = subprocess.run([binary, "check", out], capture_output=True, text=True)
                st = os.path.join(c["work"], "stitched.onnx")
                r = subprocess.run([binary, "stitch", out, "-o", st], capture_output=True, text=True)
                if q.returncode or r.returncode:
                    fails.append("%s: check/stitch: %s" % (c["what"], sweep.one_line(q.stdout + q.stderr + r.stderr)))
                    continue
                c["stitched"] = st
            else:
                c["work"] = os.path.join(c["work"], "prepare")
                corpus.prepare(c, binary)
                if "outcome" in c:
                    fails.append("%s: %s" % (c["what"], c["outcome"][1]))
                    continue
            shutil.rmtree(out, ignore_errors=True)
            todo.append(c)
        # stitch of an integer AllReduce
        isrc, iout, err = retyped_int_allreduce(binary, tmp)
        if err:
            fails.append("int64 AllReduce: " + err)
        else:
            if not int_sums(iout):
                fails.append("int64 AllReduce: the retyped output has no integer AllReduce")
            st = os.path.join(tmp, "mm-stitched.onnx")
            q = subprocess.run([binary, "check", iout], capture_output=True, text=True)
            r = subprocess.run([binary, "stitch", iout, "-o", st], capture_output=True, text=True)
            if q.returncode or r.returncode:
                fails.append("int64 AllReduce: check/stitch: " + sweep.one_line(q.stdout + q.stderr + r.stderr))
            else:
                todo.append({"id": len(cases), "what": "stitch of an int64 AllReduce", "model": isrc,
                             "stitched": st, "dims": {"batch": 4}})
        res = sweep.ort_batch(todo, src, 2) if todo else {}
        for c in todo:
            kind, msg = res.get(c["id"], ("fail", "no result from ortcompare"))
            if kind == "pass":
                passed += 1
            else:
                fails.append("%s: ortcompare: %s" % (c["what"], msg))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        print("FAIL " + f)
    print("gnn: %d cases, %d refused with --collectives ort; collectives written: %s" % (
        len(cases), refused, ", ".join("%s %d" % kv for kv in sorted(kinds.items())) or "none"))
    print("gnn: %d passed, %d failed" % (passed, len(fails)))
    return 1 if fails or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
