#!/usr/bin/env bash
# The sweep over libonnx-testdata: pytorch-converted and pytorch-operator
# (default strategy on data=2,model=2, random inputs) and node (on data=2,
# one input dim split by a tactics file, the first whose op then computes
# split; the test data's inputs and expected outputs): shard, check,
# onnx.checker on every rank model, stitch, ONNX Runtime, element by element.
# See sweep.py for the outcomes and what counts as exercising sharding; known
# failures are in sweep_known.txt.
#   tests/e2e/sweep.sh BIN SRCDIR [--only SUBSTRING]
set -u
bin=$1
src=$2
shift 2
if [ ! -d "$src/tests/e2e/node_modules/onnxruntime-node" ]; then
	echo "sweep: onnxruntime-node is missing: run scripts/setup.sh" >&2
	exit 1
fi
exec /usr/bin/python3 "$src/tests/e2e/sweep.py" "$bin" "$src" "$@"
