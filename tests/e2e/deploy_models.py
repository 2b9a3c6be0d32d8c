#!/usr/bin/python3
"""The deploy corpus (samples/deploy, written by samples/deploy/gen.py) as test cases.

    deploy_models(src) -> [(name, path, dims, int_max, ones)]

src is the checkout's root. Each entry of samples/deploy/models.json gives one
case; the decode entry of the Llama model points at the same file as the prompt
entry, with other dims. int_max bounds integer inputs that index a table
(ortcompare --int-max), ones names inputs that must be all ones (--ones).

Run as a script, it checks the corpus itself:

    /usr/bin/python3 tests/e2e/deploy_models.py [--only SUBSTRING]

onnx.checker on each file (skipped for an IR version newer than this onnx
knows: ONNX Runtime's loader checks those; nodes of the default domain that only ONNX Runtime
knows, SimplifiedLayerNormalization, are checked as if they were contrib ops),
then ortcompare of each case with itself, twice with different seeds' inputs
held fixed: a model that loads, runs and gives the same outputs on a second run.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ONNX Runtime's own ops in the default domain (onnx's checker has no schema for them)
ORT_ONNX_DOMAIN = {"SimplifiedLayerNormalization"}


def deploy_models(src):
    """(name, path, dims, int_max, ones) of samples/deploy/models.json, then of
    samples/deploy/real/models.json (the tools' own outputs)."""
    cases = []
    for base in (os.path.join(src, "samples", "deploy"), os.path.join(src, "samples", "deploy", "real")):
        with open(os.path.join(base, "models.json")) as f:
            cases += [(m["name"], os.path.join(base, m["file"]), dict(m.get("dims", {})),
                       dict(m.get("int_max", {})), list(m.get("ones", []))) for m in json.load(f)]
    return cases


def ortcompare_args(dims, int_max, ones):
    """ortcompare.js options for one case."""
    a = []
    for k, v in dims.items():
        a += ["--dim", "%s=%d" % (k, v)]
    for k, v in int_max.items():
        a += ["--int-max", "%s=%d" % (k, v)]
    for k in ones:
        a += ["--ones", k]
    return a


def check(path):
    """onnx.checker; None if it passed, else why it was skipped (a model newer than this onnx)."""
    import onnx
    import onnx.checker
    m = onnx.load(path)
    if m.ir_version > onnx.IR_VERSION:
        return "IR version %d, this onnx %s checks up to %d" % (m.ir_version, onnx.__version__, onnx.IR_VERSION)
    for n in m.graph.node:
        if n.domain in ("", "ai.onnx") and n.op_type in ORT_ONNX_DOMAIN:
            n.domain = "com.microsoft"
    onnx.checker.check_model(m)
    return None


def main(argv):
    only = None
    if len(argv) == 2 and argv[0] == "--only":
        only = argv[1]
    elif argv:
        sys.stderr.write("usage: deploy_models.py [--only SUBSTRING]\n")
        return 2
    src = os.path.dirname(os.path.dirname(HERE))
    bad = 0
    checked = set()
    for name, path, dims, int_max, ones in deploy_models(src):
        if only and only not in name:
            continue
        if path not in checked:
            checked.add(path)
            try:
                why = check(path)
                print("%s checker %s%s" % ("skip" if why else "ok", os.path.basename(path), ": " + why if why else ""))
            except Exception as e:  # noqa: BLE001 - report any checker failure
                bad += 1
                print("FAIL checker %s: %s" % (os.path.basename(path), " ".join(str(e).split())[:300]))
        outs = []
        for _ in range(2):
            r = subprocess.run(["node", os.path.join(HERE, "ortcompare.js"), path, path,
                                *ortcompare_args(dims, int_max, ones), "--tol", "0"],
                               capture_output=True, text=True)
            outs.append((r.returncode, r.stdout, r.stderr.strip()))
        rc, text, err = outs[0]
        if rc != 0 or outs[1] != outs[0]:
            bad += 1
            print("FAIL ort %s: rc=%d %s %s" % (name, rc, err[:300], "" if outs[1] == outs[0] else "(runs differ)"))
        else:
            print("ok ort %s: %s" % (name, "; ".join(text.split("\n")[:3]).strip("; ")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
