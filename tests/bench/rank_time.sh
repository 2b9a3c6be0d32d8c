#!/usr/bin/env bash
# Load-time sharding: the wall time of one rank (shard --rank 0) of an
# 8B-shaped Llama (8 layers of Llama-3-8B's widths, 128k vocabulary) on
# model=8 against the full run (every rank), in the same script; each run
# after dropping the output's pages (sync), best of 2.
#   tests/bench/rank_time.sh [BUILD] [zeros|sparse] [float32|float16]
# Needs about 3x the weights' size on disk for zeros (source, full output),
# 1x for sparse (the source is a hole; the output is written).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/onnxshard
weights=${2:-zeros}
dtype=${3:-float32}
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 tests/bench/make_llm.py "$tmp/l8.onnx" --arch llama --layers 8 \
	--hidden 4096 --heads 32 --kv-heads 8 --ffn 14336 --vocab 128256 \
	--weights "$weights" --dtype "$dtype" >/dev/null
src_gb=$(du --apparent-size -B1 "$tmp/l8.onnx.data" | awk '{printf "%.2f", $1/1e9}')
run() { # OUT [--rank R] -> seconds
	local out=$1 t0 t1
	shift
	rm -rf "$tmp/$out"
	sync
	t0=$(date +%s.%N)
	"$bin" shard "$tmp/l8.onnx" --mesh model=8 --strategy megatron --quiet \
		-o "$tmp/$out" "$@" >/dev/null
	sync
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.2f", $2-$1}'
}
best() { # OUT args... -> best of 2
	local a b
	a=$(run "$@")
	b=$(run "$@")
	echo "$a $b" | awk '{print ($1<$2)?$1:$2}'
}
full=$(best full)
full_gb=$(du -B1 -s "$tmp/full" | awk '{printf "%.2f", $1/1e9}')
rm -rf "$tmp/full"
one=$(best one --rank 0)
one_gb=$(du -B1 -s "$tmp/one" | awk '{printf "%.2f", $1/1e9}')
printf 'source: %s GB of %s %s weights; mesh model=8, megatron\n' "$src_gb" "$weights" "$dtype"
printf '%-18s %8s %10s\n' run seconds written_GB
printf '%-18s %8s %10s\n' "full (8 ranks)" "$full" "$full_gb" "--rank 0" "$one" "$one_gb"
echo "$one $full" | awk '{printf "one rank / full run: %.3f\n", $1/$2}'
