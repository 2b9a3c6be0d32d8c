#!/usr/bin/python3
"""Run onnx.checker.check_model on ONNX files.

    /usr/bin/python3 tests/e2e/check_model.py [--full] FILE...

Prints "ok FILE" or "FAIL FILE: reason" for each file; exits 1 if any failed,
2 on bad usage.  --full also runs the checker's strict shape inference
(full_check=True).

Nodes of a custom domain such as onnxshard's collectives (AllReduce, AllGather,
ReduceScatter, AllToAll in domain "onnxshard") pass: the checker only looks up
schemas of the standard domains, for other domains it requires that the model's
opset_import declares the domain, which is what onnxshard writes.  A file is
checked by path, so external data (rank*.onnx.data) is checked relative to the
model's folder, and beyond the checker each external data location must stay
inside that folder and each tensor's offset + length must fit in its file.  FILE
may also be a gzip-compressed model (.onnx.gz).  ONNX Runtime's own ops of the
default domain (SimplifiedLayerNormalization, as onnxruntime-genai writes it)
are checked as custom-domain ops; a model of an IR version newer than this
onnx knows is left to ONNX Runtime's loader (its external data still checked).
"""

import gzip
import os
import sys

import onnx
import onnx.checker


def one_line(e):
    msg = " ".join(s.strip() for s in str(e).splitlines() if s.strip())
    return msg or type(e).__name__


def graphs(g):
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sub in a.graphs:
                    yield from graphs(sub)


def check_external_data(path):
    """What this onnx's checker leaves out: a location must stay inside the
    model's folder, and offset + length must lie inside the data file."""
    model = onnx.load(path, load_external_data=False)
    folder = os.path.dirname(os.path.abspath(path))
    for g in graphs(model.graph):
        for t in g.initializer:
            if t.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {kv.key: kv.value for kv in t.external_data}
            loc = info.get("location", "")
            parts = loc.replace("\\", "/").split("/")
            if not loc or os.path.isabs(loc) or ".." in parts:
                raise ValueError("tensor %s: external data location %r is not a file inside the model's folder" % (t.name, loc))
            data = os.path.join(folder, loc)
            size = os.path.getsize(data)
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else size - offset
            if offset < 0 or length < 0 or offset + length > size:
                raise ValueError(
                    "tensor %s: external data [%d, %d) is outside %s (%d bytes)" % (t.name, offset, offset + length, loc, size)
                )


def check(path, full):
    if not os.path.isfile(path):
        raise FileNotFoundError("no such file")
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            model = onnx.load_model_from_string(f.read())
        onnx.checker.check_model(model, full_check=full)
    else:
        model = onnx.load(path, load_external_data=False)
        if model.ir_version > onnx.IR_VERSION:
            pass  # newer than this onnx knows (opset 21 forms): ORT's loader checks it
        elif relabel_ort_ops(model):
            # beside the original, so that its external data resolves
            tmp = path + ".relabelled.onnx"
            try:
                onnx.save(model, tmp)
                onnx.checker.check_model(tmp, full_check=full)
            finally:
                os.unlink(tmp)
        else:
            # by path: the checker then also resolves external data beside the file
            onnx.checker.check_model(path, full_check=full)
        check_external_data(path)


# ONNX Runtime's own ops in the default domain (onnxruntime-genai writes
# SimplifiedLayerNormalization there); onnx's checker has no schema for them
ORT_ONNX_DOMAIN = {"SimplifiedLayerNormalization"}


def relabel_ort_ops(model):
    """Move ORT's default-domain ops to com.microsoft, which the checker
    treats as a custom domain; whether there were any."""
    nodes = [n for g in graphs(model.graph) for n in g.node
             if n.domain in ("", "ai.onnx") and n.op_type in ORT_ONNX_DOMAIN]
    for n in nodes:
        n.domain = "com.microsoft"
    if nodes and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.add(domain="com.microsoft", version=1)
    return bool(nodes)


def main(argv):
    full = False
    files = []
    for a in argv:
        if a == "--full":
            full = True
        elif a in ("-h", "--help"):
            print(__doc__.strip().splitlines()[2].strip())
            return 0
        elif a.startswith("-") and a != "-":
            print("check_model: error: unknown option %r" % a, file=sys.stderr)
            return 2
        else:
            files.append(a)
    if not files:
        print("check_model: error: no files (usage: check_model.py [--full] FILE...)", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        try:
            check(path, full)
            print("ok %s" % path)
        except Exception as e:  # the checker raises several kinds
            failed += 1
            print("FAIL %s: %s" % (path, one_line(e)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
