#!/usr/bin/python3
"""Count the collectives of a rank model per layer.

    /usr/bin/python3 count_collectives.py RANK.onnx LAYER_REGEX

A collective belongs to the layer whose number LAYER_REGEX (one group) finds
in the name of its input or of the node that produced the input. Prints
"layer 0: AllReduce[model]=2; layer 1: ..." (collectives outside any layer
are listed as "outside: ..." at the end); exit 1 if the model cannot be read.
"""
import re
import sys
from collections import Counter, defaultdict

import onnx


def main():
    if len(sys.argv) != 3:
        print("usage: count_collectives.py RANK.onnx LAYER_REGEX", file=sys.stderr)
        return 2
    m = onnx.load(sys.argv[1], load_external_data=False)
    rx = re.compile(sys.argv[2])
    producer = {o: n for n in m.graph.node for o in n.output}
    counts = defaultdict(Counter)
    for n in m.graph.node:
        if n.domain not in ("onnxshard", "com.microsoft"):
            continue
        axes = [a.strings for a in n.attribute if a.name == "mesh_axes"]
        axes = ",".join(s.decode() for s in axes[0]) if axes else "world"
        src = n.input[0]
        names = [src] + ([producer[src].name] if src in producer else [])
        layer = "outside"
        for s in names:
            mm = rx.search(s)
            if mm:
                layer = "layer " + mm.group(1)
                break
        counts[layer]["%s[%s]" % (n.op_type, axes)] += 1
    keys = sorted(k for k in counts if k != "outside") + (["outside"] if "outside" in counts else [])
    print("; ".join("%s: %s" % (k, ", ".join("%s=%d" % kv for kv in sorted(counts[k].items())))
                    for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
