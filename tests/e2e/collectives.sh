#!/usr/bin/env bash
# Collective coverage: each collective kind the planner emits must appear in
# at least one sharded sample that passes check, onnx.checker, stitch and
# ONNX Runtime (every replica, bit-identical); the rank models are counted
# (count_collectives.py), so a case that emits none of its kind cannot count.
# Plus --collectives ort outputs: ONNX Runtime's schemas
# (tests/fixtures/ort_collectives.json) on every com.microsoft node, then
# check, stitch and ONNX Runtime.
#   tests/e2e/collectives.sh BIN SRCDIR
set -u
bin=$1
src=$2
e2e=$src/tests/e2e
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failn=0
declare -A covered
bad() { failn=$((failn + 1)); echo "FAIL: $*"; }

# case KIND[=OP] SAMPLE MESH STRATEGY [--collectives ort]: the rank models
# must hold OP nodes (default KIND; a ReduceScatter runs as ORT's AllReduce)
case_() {
	local kind=${1%%=*} op=${1#*=} s=$2 mesh=$3 st=$4
	shift 4
	local m=$src/samples/$s.onnx
	[[ "$s" == */* ]] && m=$src/$s
	local out=$tmp/${s##*/}-$kind what="$kind: $s --mesh $mesh --strategy ${st##*/} $*"
	rm -rf "$out"
	if ! "$bin" shard "$m" --mesh "$mesh" --strategy "$st" "$@" -o "$out" --quiet >"$tmp/log" 2>&1; then
		bad "$what: shard: $(tail -1 "$tmp/log")"
		return 1
	fi
	local n
	n=$($py - "$out" "$op" <<'PY'
import glob, sys
import onnx
n = 0
for f in glob.glob(sys.argv[1] + '/rank*.onnx'):
    n += sum(1 for x in onnx.load(f).graph.node
             if x.op_type == sys.argv[2] and x.domain in ('onnxshard', 'com.microsoft'))
print(n)
PY
)
	if [ "${n:-0}" = 0 ]; then
		bad "$what: no $op in the rank models"
		return 1
	fi
	if [ "$*" = "--collectives ort" ] &&
	   ! $py "$src/tests/ort_schema.py" "$src/tests/fixtures/ort_collectives.json" "$out"/rank*.onnx >"$tmp/log" 2>&1; then
		bad "$what: ort_schema: $(grep FAIL "$tmp/log" | head -1)"
		return 1
	fi
	if ! "$bin" check "$out" >"$tmp/log" 2>&1; then
		bad "$what: check: $(tail -1 "$tmp/log")"
		return 1
	fi
	if ! $py "$e2e/check_model.py" "$out"/rank*.onnx >"$tmp/log" 2>&1; then
		bad "$what: onnx.checker: $(grep FAIL "$tmp/log" | head -1)"
		return 1
	fi
	if ! "$bin" stitch "$out" -o "$out.onnx" >"$tmp/log" 2>&1; then
		bad "$what: stitch: $(tail -1 "$tmp/log")"
		return 1
	fi
	if ! node "$e2e/ortcompare.js" "$m" "$out.onnx" --dim batch=4 --replicas-exact >"$tmp/log" 2>&1; then
		bad "$what: ortcompare: $(grep -v '^ok' "$tmp/log" | head -2 | tr '\n' ' ')"
		return 1
	fi
	echo "ok $what: $n $op nodes"
	covered[$kind$*]=1
}

t=$e2e/tactics
case_ AllReduce mlp data=2,model=2 data,megatron
case_ AllGather mlp model=4 "$t/mlp-allgather.json"
case_ AllToAll mlp model=4 "$t/mlp-alltoall.json"
case_ AllGather mlp model=4 "$t/mlp-allgather.json" --collectives ort
case_ AllReduce mlp model=4 megatron --collectives ort
# collectives over model only: each data replica its own ORT world
case_ AllReduce gpt2 data=2,model=2 data,megatron --collectives ort
# W1 split on its columns leaves p a pending sum; q wants its rows split
case_ ReduceScatter tests/e2e/models/rs.onnx model=2 "$t/rs-q.json"
# ORT's AllToAll splits dim 0 only: x's split moves from dim 1 to dim 0
# (no Transpose), and on a2a.onnx from dim 2 to dim 1 (Transposes around it)
case_ AllToAll mlp model=4 "$t/mlp-alltoall.json" --collectives ort
case_ AllToAll tests/e2e/models/a2a.onnx model=4 "$t/a2a-seq.json"
case_ AllToAll tests/e2e/models/a2a.onnx model=4 "$t/a2a-seq.json" --collectives ort
# ORT has no ReduceScatter: an AllReduce, then this rank's block (Split)
case_ ReduceScatter=AllReduce tests/e2e/models/rs.onnx model=2 "$t/rs-q.json" --collectives ort
# fused layouts resharded piece by piece: y (3 pieces split) to a whole output,
# and GPT-2's QKV projection output split plainly, then sliced per piece
case_ AllGather tests/e2e/models/pieces.onnx model=2 "$t/pieces-a2.json"
case_ AllGather tests/e2e/models/pieces.onnx model=2 "$t/pieces-a2.json" --collectives ort
case_ AllGather gpt2 model=4 "$t/gpt2-qkv-plain.json"
# whole outputs on request: the vocabulary-parallel logits gathered over model
case_ AllGather gpt2 data=2,model=2 data,megatron --gather-outputs 'log*'
for k in AllReduce AllGather AllToAll ReduceScatter "AllGather--collectives ort" \
	"AllReduce--collectives ort" "AllToAll--collectives ort" "ReduceScatter--collectives ort"; do
	[ "${covered[$k]:-}" = 1 ] || bad "no passing case covers $k"
done
echo "collectives: covered ${!covered[*]}; $failn failed"
[ "$failn" = 0 ]
