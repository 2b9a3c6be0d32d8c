#!/usr/bin/env bash
# Mixture of experts end to end: the models of make_moe.py under experts,
# data,experts, megatron, auto and data, verified in ONNX Runtime; bytes per
# rank under experts, one AllReduce per MoE layer, auto splitting the
# experts (moe.py says what it checks).
#   tests/e2e/moe.sh BIN SRCDIR
set -u
e2e=$2/tests/e2e
if [ ! -d "$e2e/node_modules/onnxruntime-node" ]; then
	echo "moe: onnxruntime-node is missing: run scripts/setup.sh" >&2
	exit 1
fi
exec /usr/bin/python3 "$e2e/moe.py" "$1" "$2"
