#!/usr/bin/env bash
# Benchmarks: figures as ratios against a baseline run in the same script
# (these machines are noisy).
#   scripts/bench.sh [BUILD]   (default build)
# - time: shard vs inspect (load + lift, the baseline) on each sample;
# - memory: peak RSS of shard on a large external-data model against the
#   size of its weights (streamed weights keep the ratio far below 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/onnxshard
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

best() { # command... -> best of 3 wall-clock seconds
	local b=""
	for _ in 1 2 3; do
		local t0 t1
		t0=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s.%N)
		b=$(echo "$t0 $t1 ${b:-1e9}" | awk '{d=$2-$1; print (d<$3)?d:$3}')
	done
	echo "$b"
}

printf '%-8s %12s %12s %8s\n' sample inspect_s shard_s ratio
for s in mlp gpt2 bert resnet vit llama; do
	base=$(best "$bin" inspect --json "samples/$s.onnx")
	run=$(best "$bin" shard "samples/$s.onnx" --mesh data=2,model=4 -o "$tmp/$s" --force --quiet)
	printf '%-8s %12.4f %12.4f %8.1f\n' "$s" "$base" "$run" "$(echo "$run $base" | awk '{print $1/$2}')"
done

layers=${BENCH_LAYERS:-8}
hidden=${BENCH_HIDDEN:-1024}
/usr/bin/python3 tests/bench/make_big.py "$tmp/big.onnx" "$layers" "$hidden"
weights=$(stat -c %s "$tmp/big.onnx.data")
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
base_kb=$(rss "$bin" inspect "$tmp/big.onnx")
shard_kb=$(rss "$bin" shard "$tmp/big.onnx" --mesh model=8 -o "$tmp/big.out" --quiet)
echo "big model: $layers layers, hidden $hidden, weights $((weights / 1048576)) MiB"
echo "peak RSS: inspect $((base_kb / 1024)) MiB, shard on model=8 $((shard_kb / 1024)) MiB"
echo "shard peak RSS / weights: $(echo "$shard_kb $weights" | awk '{printf "%.3f", $1*1024/$2}')"
echo "shard peak RSS / inspect peak RSS: $(echo "$shard_kb $base_kb" | awk '{printf "%.2f", $1/$2}')"
