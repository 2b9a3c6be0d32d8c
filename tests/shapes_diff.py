#!/usr/bin/python3
"""Differential shape test: onnxshard's shape inference against ONNX's.

usage: shapes_diff.py [--strict] [--verbose] [--jobs N] [--max-less NAME=N ...] BIN MODEL_OR_DIR...
  --max-less NAME=N  fail when we know less than ONNX of more than N values
             of the target whose folder is named NAME (today's count: a
             regression in our inference fails, an improvement asks for the
             figure to be lowered); a target compared on no value fails
  --verbose  also list every value we know less of although its operands are
             fully known to us (the op's own gap, not an upstream one)

For each model (every model.onnx under a directory, and the *.onnx files
directly in it), run `BIN inspect --json MODEL` (it must accept it), then
the same on a copy without declared types of node results (value_info,
output shapes), so that what BIN reports is its own inference, and ONNX's
onnx.shape_inference.infer_shapes on the original; compare every value ONNX knows
(graph inputs, initializers, value_info, outputs; declared output shapes of
ONNX's node tests are ground truth too):
  - dtype and rank, when both sides know them;
  - each dim ONNX gives as dim_value: ours must be that int;
  - each dim ONNX gives as a dim_param naming a graph-input symbol (not a
    made-up unk__N): ours must be that string.
Then, for models whose inputs have symbolic dims, each known dim of ours (an
integer, or an expression such as "2*seq" or "floor((S-3)/2)+1") is
evaluated at two bindings of those symbols and checked against the integer
dims ONNX infers (with data propagation) on a copy of the model with the
symbols bound.
Where ONNX knows something and we say unknown, that is "we know less"
(failure only with --strict); where the two differ, a disagreement. A model
that `BIN inspect` refuses is a failure too (all these models are valid).
When ONNX's own inference throws, the model is counted and compared against
its declared types only. Exit 1 on any failure.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

import onnx
from onnx import shape_inference

MAX_DETAILS = 30

DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
    7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
    12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
    16: "bfloat16",
}


def find_models(arg):
    if os.path.isfile(arg):
        return [arg]
    found = []
    for root, dirs, files in os.walk(arg):
        dirs.sort()
        for f in sorted(files):
            if f == "model.onnx" or (root == arg and f.endswith(".onnx")):
                found.append(os.path.join(root, f))
    return found


def run_ours(binary, path):
    try:
        p = subprocess.run([binary, "inspect", "--json", path], capture_output=True,
                           text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    if p.returncode != 0:
        err = p.stderr.strip().splitlines()
        return None, "exit %d: %s" % (p.returncode, err[0] if err else "")
    try:
        return json.loads(p.stdout), None
    except ValueError as e:
        return None, "bad JSON: %s" % e


def strip_declared(model, path):
    """Write model to path without declared types of node results (graph
    outputs' shapes, value_info): what BIN reports then is its own inference."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inputs = {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer}
    for o in m.graph.output:
        if o.name not in inputs and o.type.HasField("tensor_type"):
            o.type.tensor_type.ClearField("shape")
            o.type.tensor_type.ClearField("elem_type")
    del m.graph.value_info[:]
    onnx.save(m, path)


def check_model(binary, path, stripped):
    """(report of BIN on the stripped copy, or None; refusal message or None)."""
    ours, err = run_ours(binary, path)
    if ours is None:
        return None, err
    model = onnx.load(path)
    strip_declared(model, stripped)
    mine, err = run_ours(binary, stripped)
    if mine is None:
        return None, "without declared result types: " + err
    return mine, None


def onnx_types(model):
    """name -> (dtype or None, shape or None): each dim an int, a str or None."""
    known = {}

    def tensor(name, elem, dims):
        if name and name not in known:
            known[name] = (DTYPES.get(elem), dims)

    g = model.graph
    for t in g.initializer:
        tensor(t.name, t.data_type, list(t.dims))
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        dims = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(d.dim_value)
                elif d.HasField("dim_param") and d.dim_param:
                    dims.append(d.dim_param)
                else:
                    dims.append(None)
        tensor(vi.name, tt.elem_type if tt.HasField("elem_type") else 0, dims)
    return known


def input_symbols(model):
    inits = {t.name for t in model.graph.initializer}
    syms = set()
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param:
                syms.add(d.dim_param)
    return syms


def producers(model):
    """value name -> (op, operand names) of the node producing it."""
    ops = {}
    for n in model.graph.node:
        for o in n.output:
            ops[o] = ((n.domain + "::" if n.domain else "") + n.op_type, [i for i in n.input if i])
    return ops


class Stats:
    def __init__(self):
        self.models = self.values = self.disagree = self.less = 0
        self.refused = self.onnx_failed = self.bound = 0


# Values given to graph-input symbols for the bound check: two sets, even and
# odd, small enough for the samples (seq <= 64).
BINDINGS = ([4, 16, 8, 12, 6, 10], [3, 7, 5, 11, 13, 9])
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def eval_dim(expr, env):
    """Our printed dim ("2*seq+1", "floor((S-3)/2)+1", "mod(a,b)") at the
    bindings env, or None when it cannot be evaluated."""
    def name(m):
        w = m.group(0)
        if w in ("floor", "mod", "min", "max"):
            return w
        return str(env[w]) if w in env else "?"
    text = IDENT.sub(name, expr)
    if "?" in text:
        return None
    text = text.replace("/", "//")  # only inside floor(...): floor division
    try:
        v = eval(text, {"__builtins__": {}, "floor": lambda x: x, "min": min, "max": max,
                        "mod": lambda a, b: a % b})
    except Exception:
        return None
    return v if isinstance(v, int) else None


def concrete(model, env):
    """A copy of model with graph-input symbols bound and no declared types
    of node results, for ONNX to infer integer dims."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                if d.HasField("dim_param") and d.dim_param in env:
                    d.dim_value = env[d.dim_param]
    inputs = {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer}
    for o in m.graph.output:
        if o.name not in inputs:
            o.ClearField("type")
    del m.graph.value_info[:]
    return m


def check_bound(path, ours, model, syms, st, disagree):
    """Our symbolic dims, evaluated at bindings of the graph-input symbols,
    against ONNX's integer dims on the model with those symbols bound."""
    if not syms or not all(IDENT.fullmatch(x) for x in syms):
        return
    mine = {v["name"]: v for v in ours.get("values", [])}
    for values in BINDINGS:
        env = dict(zip(sorted(syms), values * len(syms)))
        try:
            inferred = shape_inference.infer_shapes(concrete(model, env), strict_mode=False,
                                                     data_prop=True)
        except Exception:
            continue
        at = ",".join("%s=%d" % kv for kv in sorted(env.items()))
        for name, (dt, dims) in onnx_types(inferred).items():
            v = mine.get(name)
            if dims is None or v is None or v.get("shape") is None or len(v["shape"]) != len(dims):
                continue
            for i, (a, b) in enumerate(zip(v["shape"], dims)):
                if a is None or not isinstance(b, int):
                    continue
                st.bound += 1
                x = eval_dim(a, env) if isinstance(a, str) else a
                if x is not None and x != b:
                    disagree(name, "dim %d at %s" % (i, at), "%s = %d" % (a, x), b)
                    break


def fully_known(v):
    return v is not None and v.get("shape") is not None and None not in v["shape"]


def compare(path, ours, model, inferred, syms, ops, st, details, by_op, less_by_op, own_less):
    mine = {v["name"]: v for v in ours.get("values", [])}
    theirs = onnx_types(model)
    if inferred is not None:
        theirs.update(onnx_types(inferred))

    def disagree(name, what, a, b):
        st.disagree += 1
        op = ops.get(name, ("(input)", []))[0]
        by_op[op] = by_op.get(op, 0) + 1
        details.append("%s: value '%s' (%s): %s: ours %s, onnx %s" % (path, name, op, what, a, b))

    def less(name):
        st.less += 1
        op, operands = ops.get(name, ("(input)", []))
        less_by_op[op] = less_by_op.get(op, 0) + 1
        if operands and all(fully_known(mine.get(x)) for x in operands):
            own_less.append("%s: value '%s' (%s)" % (path, name, op))

    g = model.graph
    exists = ({i.name for i in g.input} | {t.name for t in g.initializer} |
              {o for n in g.node for o in n.output})
    for name, (dt, dims) in theirs.items():
        if (dt is None and dims is None) or name not in exists:
            continue  # nothing known, or a value_info of no value
        st.values += 1
        v = mine.get(name)
        if v is None:
            disagree(name, "value", "missing", "present")
            continue
        lacks = False
        if dt is not None:
            if v.get("dtype") is None:
                lacks = True
            elif v["dtype"] != dt:
                disagree(name, "dtype", v["dtype"], dt)
                continue
        if dims is not None:
            shape = v.get("shape")
            if shape is None:
                less(name)
                continue
            if len(shape) != len(dims):
                disagree(name, "rank", len(shape), len(dims))
                continue
            for i, (a, b) in enumerate(zip(shape, dims)):
                if isinstance(b, int):
                    want = b
                elif isinstance(b, str) and b in syms:
                    want = b
                else:
                    continue
                if a is None:
                    lacks = True
                elif a != want or type(a) is not type(want):
                    disagree(name, "dim %d of %s vs %s" % (i, json.dumps(shape), json.dumps(dims)),
                             json.dumps(a), json.dumps(want))
                    break
        if lacks:
            less(name)
    check_bound(path, ours, model, syms, st, disagree)


def main(argv):
    strict = verbose = False
    jobs = os.cpu_count() or 2
    max_less = {}
    args = []
    it = iter(argv[1:])
    for a in it:
        if a == "--strict":
            strict = True
        elif a == "--verbose":
            verbose = True
        elif a == "--jobs":
            jobs = int(next(it))
        elif a == "--max-less":
            k, _, v = next(it).partition("=")
            max_less[k] = int(v)
        else:
            args.append(a)
    if len(args) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    binary, targets = args[0], args[1:]
    for k in max_less:
        if k not in [os.path.basename(os.path.normpath(t)) for t in targets]:
            print("shapes_diff: error: --max-less %s names no target" % k, file=sys.stderr)
            return 2
    failed = False
    total_details = []
    by_op, less_by_op, own_less = {}, {}, []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool, \
            tempfile.TemporaryDirectory() as tmp:
        for t, target in enumerate(targets):
            st = Stats()
            details = []
            models = find_models(target)
            futures = [pool.submit(check_model, binary, m,
                                   os.path.join(tmp, "%d-%d.onnx" % (t, i)))
                       for i, m in enumerate(models)]
            for path, fut in zip(models, futures):
                st.models += 1
                ours, err = fut.result()
                if ours is None:
                    st.refused += 1
                    details.append("%s: refused: %s" % (path, err))
                    continue
                model = onnx.load(path)
                try:
                    inferred = shape_inference.infer_shapes(model, strict_mode=False)
                except Exception:  # ONNX cannot infer: compare declared types only
                    inferred = None
                    st.onnx_failed += 1
                compare(path, ours, model, inferred, input_symbols(model), producers(model),
                        st, details, by_op, less_by_op, own_less)
            print("%s: %d models, %d values compared, %d disagreements, %d we-know-less, "
                  "%d refused, %d onnx-inference-failed, %d dims checked at bindings" %
                  (target, st.models, st.values, st.disagree, st.less, st.refused,
                   st.onnx_failed, st.bound))
            total_details += details
            if st.disagree or st.refused or (strict and st.less):
                failed = True
            name = os.path.basename(os.path.normpath(target))
            if st.values == 0:
                print("FAIL %s: no value compared" % target)
                failed = True
            if name in max_less and st.less > max_less[name]:
                print("FAIL %s: we know less of %d values, more than the %d allowed (--max-less)"
                      % (target, st.less, max_less[name]))
                failed = True
            elif name in max_less and st.less < max_less[name]:
                print("note %s: we know less of %d values, fewer than %d: lower --max-less"
                      % (target, st.less, max_less[name]))
    if total_details:
        print("\nfirst %d of %d problems:" % (min(MAX_DETAILS, len(total_details)),
                                               len(total_details)))
        for d in total_details[:MAX_DETAILS]:
            print("  " + d)
    if by_op:
        print("\ndisagreements by producing op: " +
              ", ".join("%s %d" % kv for kv in sorted(by_op.items(), key=lambda kv: -kv[1])))
    if less_by_op:
        print("we-know-less by producing op: " +
              ", ".join("%s %d" % kv for kv in sorted(less_by_op.items(), key=lambda kv: -kv[1])))
    if own_less:
        ops = {}
        for x in own_less:
            op = x.rsplit("(", 1)[1][:-1]
            ops[op] = ops.get(op, 0) + 1
        print("we-know-less although all operands are known to us: " +
              ", ".join("%s %d" % kv for kv in sorted(ops.items(), key=lambda kv: -kv[1])))
        if verbose:
            for x in own_less:
                print("  " + x)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
