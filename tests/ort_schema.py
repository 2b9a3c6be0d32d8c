#!/usr/bin/python3
"""Check every com.microsoft node of rank models against ONNX Runtime's
collective schemas (tests/fixtures/ort_collectives.json, copied from
onnxruntime/core/graph/contrib_ops/collective_defs.cc).

    /usr/bin/python3 tests/ort_schema.py SCHEMAS.json RANK.onnx...

A node must name an op of the file, carry only its attributes with their
types (ORT refuses any other attribute when it loads the model), have at
least one input and as many outputs as inputs, and where the model declares
the type of a result, a type the op takes; the model must import
com.microsoft at the schemas' version. Prints "ok FILE: N nodes (OPS)" or
"FAIL FILE: what"; exit 1 if any file failed or no file had a node.
"""
import json
import sys

import onnx
from onnx import AttributeProto, TensorProto

TYPES = {"float16": TensorProto.FLOAT16, "float": TensorProto.FLOAT, "double": TensorProto.DOUBLE,
         "int64": TensorProto.INT64, "bool": TensorProto.BOOL}


def check(path, sch):
    m = onnx.load(path)
    g = m.graph
    types = {}
    for v in list(g.value_info) + list(g.output) + list(g.input):
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type:
            types[v.name] = v.type.tensor_type.elem_type
    seen = []
    for n in g.node:
        if n.domain != sch["domain"]:
            continue
        what = "node %r (%s)" % (n.name, n.op_type)
        op = sch["ops"].get(n.op_type)
        if op is None:
            raise ValueError("%s: not an op of ONNX Runtime's collectives" % what)
        for a in n.attribute:
            want = op["attributes"].get(a.name)
            if want is None:
                raise ValueError("%s: attribute %r is not in ORT's schema" % (what, a.name))
            if a.type != getattr(AttributeProto, want["type"]):
                raise ValueError("%s: attribute %r should be %s" % (what, a.name, want["type"]))
        if len(n.input) < op["inputs"]["min"] or len(n.output) != len(n.input):
            raise ValueError("%s: %d inputs, %d outputs" % (what, len(n.input), len(n.output)))
        allowed = {TYPES[t] for t in op["T"]}
        for o in n.output:
            if o in types and types[o] not in allowed:
                raise ValueError("%s: result %r is %s, ORT takes %s" % (
                    what, o, TensorProto.DataType.Name(types[o]), ", ".join(op["T"])))
        seen.append(n.op_type)
    if seen:
        v = [o.version for o in m.opset_import if o.domain == sch["domain"]]
        if v != [sch["since_version"]]:
            raise ValueError("opset_import has %s %s, want version %d" % (sch["domain"], v, sch["since_version"]))
    return seen


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    sch = json.load(open(argv[0]))
    failed = total = 0
    for path in argv[1:]:
        try:
            seen = check(path, sch)
            total += len(seen)
            print("ok %s: %d nodes (%s)" % (path, len(seen), ", ".join(sorted(set(seen)))))
        except Exception as e:
            failed += 1
            print("FAIL %s: %s" % (path, " ".join(str(e).split())))
    if not total and not failed:
        print("FAIL: no com.microsoft node in %d files" % (len(argv) - 1))
    return 1 if failed or not total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
