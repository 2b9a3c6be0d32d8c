#!/usr/bin/python3
"""Check the simulator (search/cost.c, `cpu` preset) against ONNX Runtime.

    /usr/bin/python3 tests/sim_validate.py [--build DIR] [--hardware cpu|FILE]
                                           [--only SUBSTRING] [--runs N] [--rounds R] [--keep DIR]
                                           [--calibrate]

The report behind ctest's sim_accuracy (tests/sim_accuracy.py, which
calibrates on one half of the models and asserts on the other): for every model of samples/ and
samples/corpus/ (models.json, batch bound to 8) under data on data=2 and
megatron on model=2 and model=4, it shards with DIR/onnxshard (default
build/), takes rank 0's model, replaces each onnxshard collective by local
ops of the same result shape (AllReduce: Identity; AllGather: Concat of n
copies; ReduceScatter: the first 1/n slice; AllToAll: both), and times it in
onnxruntime-node (tests/e2e/node_modules; one thread, warm-up, median of N
runs; "net": less the fixed cost of one run, measured on a one-op model).
The simulator's compute_s for the same plan comes from DIR/tests/sim_cost.
Prints one line per pair, Spearman's rank correlation over all pairs, and the
distribution of measured / simulated. --calibrate also fits the cpu preset's
peak FLOP/s, memory bandwidth and per-op overhead to the measurements (a
grid search on the log error; the fitted profile is written to
/tmp/cpu-fit.json and the pairs re-simulated with it).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import onnx
from onnx import helper, TensorProto

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import corpus  # noqa: E402  (the models and their dims)

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [("data", "data=2"), ("megatron", "model=2"), ("megatron", "model=4")]
ORT = os.path.join(SRC, "tests", "e2e", "node_modules", "onnxruntime-node")

TIMER_JS = r"""
'use strict';
const ort = require(process.argv[2]);
ort.env.logLevel = 'fatal';
const fs = require('fs');
const CTORS = {float32: Float32Array, float64: Float64Array, int64: BigInt64Array,
               int32: Int32Array, int8: Int8Array, uint8: Uint8Array, float16: Uint16Array,
               bool: Uint8Array};
function tensor(t) {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.type === 'int64') return new ort.Tensor('int64', new BigInt64Array(n).fill(1n), t.shape);
  if (t.type === 'bool') return new ort.Tensor('bool', new Uint8Array(n).fill(1), t.shape);
  const C = CTORS[t.type];
  if (!C) throw new Error('input dtype ' + t.type);
  const a = new C(n);
  if (t.type === 'float16') a.fill(0x3c00);  /* 1.0 */
  else if (t.type.startsWith('float')) for (let i = 0; i < n; i++) a[i] = Math.sin(i) * 0.5;
  else a.fill(1);
  return new ort.Tensor(t.type, a, t.shape);
}
(async () => {
  const cases = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter(Boolean).map(JSON.parse);
  for (const c of cases) {
    try {
      const s = await ort.InferenceSession.create(c.model, {executionProviders: ['cpu'],
        intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 4});
      const feeds = {};
      for (const t of c.inputs) feeds[t.name] = tensor(t);
      for (let i = 0; i < 3; i++) await s.run(feeds);
      const times = [];
      let total = 0;
      while (times.length < c.runs || (total < 0.2 && times.length < 200)) {
        const t0 = process.hrtime.bigint();
        await s.run(feeds);
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        times.push(dt);
        total += dt;
      }
      times.sort((a, b) => a - b);
      console.log(JSON.stringify({id: c.id, median_s: times[times.length >> 1], runs: times.length}));
      await s.release();
    } catch (e) {
      console.log(JSON.stringify({id: c.id, error: String(e.message || e).split('\n')[0]}));
    }
  }
})();
"""


def models(only):
    out = corpus.models(SRC, batch=8, sample_seq=32)
    return [m for m in out if not only or only in m[0]]


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def strip_collectives(path, out):
    """Rank model with every onnxshard collective replaced by local ops of
    the same result shape; returns the count by kind."""
    m = onnx.load(path, load_external_data=True)
    g = m.graph
    nodes, count, k = [], {}, 0

    def first_part(x, axis, n, res):
        # res = x[..., :dim/n, ...] along axis (the shape read at run time)
        nonlocal k
        k += 1
        p = "sim_validate/%d/" % k
        nodes.extend([
            helper.make_node("Shape", [x], [p + "shape"]),
            helper.make_node("Constant", [], [p + "axis"], value=helper.make_tensor(
                p + "axis_t", TensorProto.INT64, [1], [axis])),
            helper.make_node("Gather", [p + "shape", p + "axis"], [p + "dim"], axis=0),
            helper.make_node("Constant", [], [p + "n"], value=helper.make_tensor(
                p + "n_t", TensorProto.INT64, [1], [n])),
            helper.make_node("Div", [p + "dim", p + "n"], [p + "end"]),
            helper.make_node("Constant", [], [p + "zero"], value=helper.make_tensor(
                p + "zero_t", TensorProto.INT64, [1], [0])),
            helper.make_node("Slice", [x, p + "zero", p + "end", p + "axis"], [res]),
        ])

    for n in g.node:
        if n.domain != "onnxshard":
            nodes.append(n)
            continue
        count[n.op_type] = count.get(n.op_type, 0) + 1
        size = len(attr(n, "group", [])) or 1
        x, y = n.input[0], n.output[0]
        if n.op_type == "AllReduce":
            nodes.append(helper.make_node("Identity", [x], [y], name=n.name))
        elif n.op_type == "AllGather":
            nodes.append(helper.make_node("Concat", [x] * size, [y], name=n.name,
                                          axis=attr(n, "axis", 0)))
        elif n.op_type == "ReduceScatter":
            first_part(x, attr(n, "axis", 0), size, y)
        elif n.op_type == "AllToAll":
            first_part(x, attr(n, "split_axis", 0), size, y + "/part")
            nodes.append(helper.make_node("Concat", [y + "/part"] * size, [y], name=n.name,
                                          axis=attr(n, "concat_axis", 0)))
        else:
            raise RuntimeError("unknown collective " + n.op_type)
    del g.node[:]
    g.node.extend(nodes)
    keep = [o for o in m.opset_import if o.domain != "onnxshard"]
    del m.opset_import[:]
    m.opset_import.extend(keep)
    onnx.save(m, out)
    return count


def local_inputs(manifest, dims):
    """Rank 0's input shapes: global shapes with dims bound, divided by the splits."""
    axes = {a["name"]: a["size"] for a in manifest["mesh"]["axes"]}
    out = []
    for t in manifest["inputs"]:
        shape = []
        for d, sh in zip(t["shape"], t["sharding"]):
            if isinstance(d, str):
                d = eval(d, {"__builtins__": {}}, dict(dims))  # "2*seq+1" style
            if d is None:
                raise RuntimeError("input %s: unknown dim" % t["name"])
            for a in sh:
                d //= axes[a]
            shape.append(int(d))
        out.append({"name": t["name"], "type": t["dtype"], "shape": shape})
    return out


def spearman(xs, ys):
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for q in range(i, j + 1):
                r[order[q]] = (i + j) / 2.0
            i = j + 1
        return r
    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.mean(rx), statistics.mean(ry)
    num = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    den = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return num / den if den else float("nan")


def simulate(build, hw, model, mesh, strategy, dims):
    cmd = [os.path.join(build, "tests", "sim_cost"), model, "--mesh", mesh, "--strategy", strategy,
           "--hardware", hw]
    for k, v in dims.items():
        cmd += ["--dim", "%s=%d" % (k, v)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("sim_cost: " + r.stderr.strip())
    return json.loads(r.stdout)


def summary(pairs, key, mkey="measured_s"):
    sim = [p[key] for p in pairs]
    meas = [p[mkey] for p in pairs]
    ratios = sorted(m / s for m, s in zip(meas, sim))
    q = lambda f: ratios[min(len(ratios) - 1, int(f * len(ratios)))]
    gm = math.exp(statistics.mean(math.log(r) for r in ratios))
    print("%s: pairs: %d  Spearman rank correlation (simulated vs measured): %.3f" % (
        mkey, len(pairs), spearman(sim, meas)))
    print("measured/simulated: min %.2f  p10 %.2f  median %.2f  p90 %.2f  max %.2f  geomean %.2f" % (
        ratios[0], q(0.1), q(0.5), q(0.9), ratios[-1], gm))
    within = sum(1 for r in ratios if 0.5 <= r / gm <= 2) / len(ratios)
    print("within 2x of the geometric-mean ratio: %.0f%%" % (100 * within))
    # the search compares plans of one model: how often the simulator orders
    # two plans of a model as ONNX Runtime does (where they differ by > 10%)
    agree = total = 0
    for i, p in enumerate(pairs):
        for q in pairs[i + 1:]:
            if p["id"].split("/")[0] != q["id"].split("/")[0]:
                continue
            if max(p[mkey], q[mkey]) < 1.1 * min(p[mkey], q[mkey]):
                continue
            total += 1
            agree += (p[mkey] < q[mkey]) == (p[key] < q[key])
    if total:
        print("plans of one model ordered as measured: %d of %d (where they differ by > 10%%)" % (
            agree, total))
    worst = sorted(pairs, key=lambda p: -abs(math.log(p[mkey] / p[key] / gm)))[:8]
    print("furthest from it: " + ", ".join("%s %.2f" % (p["id"], p[mkey] / p[key]) for p in worst))


def measure(build, hw, cases, runs, work, rounds=1):
    """Shard, simulate (on hw) and time each (model, plan) pair of cases
    (corpus.models' (name, path, dims)); the pairs that ran, each with
    measured_s, net_s and compute_s, and the fixed cost of one run. With
    rounds > 1 every pair is timed once per round (the rounds one after the
    other, each over all pairs) and keeps its least median: a burst of load
    on a busy machine lands on some pairs of one round, not on one pair's
    every round."""
    binary = os.path.join(build, "onnxshard")
    pairs, jobs = [], []
    for name, path, dims in cases:
        for strategy, mesh in CASES:
            cid = "%s/%s/%s" % (name, strategy, mesh)
            out = os.path.join(work, cid.replace("/", "_").replace("=", ""))
            cmd = [binary, "shard", path, "--mesh", mesh, "--strategy", strategy, "-o", out,
                   "--force", "--quiet"]
            for k, v in dims.items():
                cmd += ["--dim", "%s=%d" % (k, v)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print("skip %s: shard: %s" % (cid, r.stderr.strip()[-200:]))
                continue
            try:
                manifest = json.load(open(os.path.join(out, "manifest.json")))
                coll = strip_collectives(os.path.join(out, "rank0.onnx"), out + ".local.onnx")
                sim = simulate(build, hw, path, mesh, strategy, dims)
                inputs = local_inputs(manifest, dims)
            except Exception as e:  # noqa: BLE001 (a skipped pair is reported)
                print("skip %s: %s" % (cid, str(e).splitlines()[0][:200]))
                continue
            jobs.append({"id": cid, "model": out + ".local.onnx", "inputs": inputs, "runs": runs})
            pairs.append({"id": cid, "model": name, "sim": sim, "collectives": coll,
                          "path": path, "mesh": mesh, "strategy": strategy, "dims": dims})
    # ORT's and node's fixed cost of one run, measured on a one-op model and
    # subtracted from every pair (the simulator models the ops, not the call)
    base = os.path.join(work, "baseline.onnx")
    onnx.save(helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "baseline",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
        opset_imports=[helper.make_opsetid("", 17)]), base)
    jobs.insert(0, {"id": "baseline", "model": base, "runs": 200,
                    "inputs": [{"name": "x", "type": "float32", "shape": [1]}]})
    js = os.path.join(work, "timer.js")
    with open(js, "w") as f:
        f.write(TIMER_JS)
    with open(os.path.join(work, "cases.jsonl"), "w") as f:
        for j in jobs:
            f.write(json.dumps(j) + "\n")
    measured = {}
    for _ in range(rounds):
        r = subprocess.run(["node", js, ORT, os.path.join(work, "cases.jsonl")],
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            d = json.loads(line)
            old = measured.get(d["id"])
            if old is None or "error" in d or ("error" not in old and
                                               d["median_s"] < old["median_s"]):
                measured[d["id"]] = d
    done = []
    call = measured.get("baseline", {}).get("median_s", 0.0)
    for p in pairs:
        d = measured.get(p["id"], {"error": "no result"})
        if "error" in d:
            print("skip %s: ORT: %s" % (p["id"], d["error"][:200]))
            continue
        p["measured_s"] = d["median_s"]
        p["net_s"] = max(d["median_s"] - call, 1e-7)
        p["compute_s"] = p["sim"]["compute_s"]
        done.append(p)
    return done, call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--hardware", default="cpu")
    ap.add_argument("--only", default="")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", default="")
    ap.add_argument("--calibrate", action="store_true")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="sim_validate.")
    os.makedirs(work, exist_ok=True)
    done, call = measure(a.build, a.hardware, models(a.only), a.runs, work, a.rounds)
    print("fixed cost of one run (one-op model), subtracted: %.2e s" % call)
    print("%-44s %12s %12s %12s %7s %6s" % ("pair", "simulated", "measured", "net", "ratio",
                                            "nodes"))
    for p in done:
        print("%-44s %12.3e %12.3e %12.3e %7.2f %6d" % (
            p["id"], p["compute_s"], p["measured_s"], p["net_s"], p["measured_s"] / p["compute_s"],
            p["sim"]["nodes"]))
    if len(done) < 2:
        sys.exit("too few pairs")
    summary(done, "compute_s")
    summary(done, "compute_s", "net_s")
    if a.calibrate:
        calibrate(a, done)
    if not a.keep:
        shutil.rmtree(work)


def fit(build, done, out_path):
    """Grid search of (peak FLOP/s, memory bandwidth, op overhead) minimising
    the squared log error of measured / simulated over done; one sim_cost
    run per pair simulates its plan on every profile of the grid. The best
    profile is written to out_path and each pair's time on it set as
    p["fit_s"]; returns (flops, bandwidth, overhead, rms log error)."""
    base = {"memory_capacity": 24 * 2 ** 30, "devices_per_node": 1,
            "intra_node": {"bandwidth": 5e9, "latency": 5e-5},
            "inter_node": {"bandwidth": 1e9, "latency": 1e-4}}
    grid = [(fl, bw, oh) for fl in (2.5e10, 5e10, 1e11, 1.5e11, 2e11, 3e11)
            for bw in (3e9, 5e9, 8e9, 1.2e10, 2e10, 3e10, 5e10, 8e10)
            for oh in (0, 2.5e-7, 5e-7, 1e-6, 2e-6, 4e-6)]
    tmp = tempfile.mkdtemp(prefix="sim_fit.")
    files = []
    for k, (fl, bw, oh) in enumerate(grid):
        prof = dict(base, name="fit%d" % k, peak_flops={"float32": fl}, memory_bandwidth=bw,
                    op_overhead=oh)
        files.append(os.path.join(tmp, "fit%d.json" % k))
        with open(files[-1], "w") as f:
            json.dump(prof, f)
    err = [0.0] * len(grid)
    sims = []
    for p in done:
        cmd = [os.path.join(build, "tests", "sim_cost"), p["path"], "--mesh", p["mesh"],
               "--strategy", p["strategy"]]
        for k, v in p["dims"].items():
            cmd += ["--dim", "%s=%d" % (k, v)]
        for f in [files[0]] + files:
            cmd += ["--hardware", f]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        by = json.loads(r.stdout)["compute_s_by_hw"]
        sims.append(by)
        for k, t in enumerate(by):
            err[k] += math.log(p["measured_s"] / t) ** 2
    k = min(range(len(grid)), key=lambda i: err[i])
    shutil.copy(files[k], out_path)
    shutil.rmtree(tmp)
    for p, by in zip(done, sims):
        p["fit_s"] = by[k]
    return grid[k] + (math.sqrt(err[k] / len(done)),)


def calibrate(a, done):
    """The cpu preset fitted to the pairs (written to /tmp/cpu-fit.json) and
    the pairs re-simulated with it."""
    fl, bw, oh, rms = fit(a.build, done, "/tmp/cpu-fit.json")
    print("fit: peak_flops.float32 %.3g  memory_bandwidth %.3g  op_overhead %.3g  "
          "(rms log error %.3f; written to /tmp/cpu-fit.json)" % (fl, bw, oh, rms))
    summary(done, "fit_s")


if __name__ == "__main__":
    main()
