#!/usr/bin/env bash
# Sub-byte and float8 weights end to end: samples/deploy/qdq_block_ffn.onnx
# (block-wise int4/uint4 DequantizeLinear) and make_subbyte.py's model (int4
# of an odd innermost dim, int4 in int32_data, uint4 of an odd count, float8)
# under megatron, data and tactics files that split 4-bit weights where
# their blocks keep whole bytes and where they would cut them. Each case:
# shard, check, stitch, ONNX Runtime on the source and the stitched model
# (--accuracy-level 1: the MatMulNBits ORT fuses from DequantizeLinear and
# MatMul computes in float32; at its default level it quantizes activations,
# which differs with where K is split), and the manifest's shardings: the
# splits that keep bytes are made, the ones that would cut a byte are not
# (and are noted), never a wrong rank model.
#   tests/e2e/subbyte.sh BIN SRCDIR
set -u
bin=$(realpath "$1")
src=$(realpath "$2")
e2e=$src/tests/e2e
py=/usr/bin/python3
if [ ! -d "$e2e/node_modules/onnxruntime-node" ]; then
	echo "subbyte: onnxruntime-node is missing: run scripts/setup.sh" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0

fail() {
	failn=$((failn + 1))
	echo "FAIL: $*"
}

$py "$e2e/make_subbyte.py" "$tmp" || exit 1
ffn=$src/samples/deploy/qdq_block_ffn.onnx
sb=$tmp/subbyte.onnx
# the same with every tensor in external data (read from the mapped file)
for m in "$ffn" "$sb"; do
	$py -c 'import onnx, sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2], save_as_external_data=True, location=sys.argv[3], size_threshold=0)' \
		"$m" "$tmp/ext_$(basename "$m")" "ext_$(basename "$m" .onnx).data" || exit 1
done

# tactics files
cat >"$tmp/ffn_rows.json" <<'EOF'
{"steps": [
  {"shard": "fc1.weight_DQ_Q4", "dim": 0, "axes": ["model"]},
  {"shard": "fc2.weight_DQ_Q4", "dim": 1, "axes": ["model"]}
]}
EOF
cat >"$tmp/sb_seeds.json" <<'EOF'
{"steps": [
  {"shard": "w1", "dim": 0, "axes": ["model"]},
  {"shard": "w2", "dim": 0, "axes": ["model"]},
  {"shard": "w4", "dim": 1, "axes": ["model"]}
]}
EOF
cat >"$tmp/sb_propagated.json" <<'EOF'
{"steps": [
  {"shard": "h1", "dim": 1, "axes": ["model"]},
  {"shard": "w5", "dim": 1, "axes": ["model"]}
]}
EOF

# expect NAME MANIFEST PYTHON-CONDITION: the condition over
# p (parameter name -> sharding) and notes (value -> why) holds
expect() {
	$py - "$2" "$3" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
p = {x["name"]: x["sharding"] for x in m["parameters"]}
notes = {x["value"]: x["why"] for x in m["plan"].get("replicated", [])}
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}

# case NAME MODEL DIM MESH STRATEGY CONDITION
case_() {
	local name=$1 model=$2 dim=$3 mesh=$4 strategy=$5 cond=$6 out=$tmp/$1
	if ! "$bin" shard "$model" --mesh "$mesh" --strategy "$strategy" -o "$out" --json \
		>"$tmp/$name.shard.log" 2>&1; then
		fail "$name: shard: $(tail -1 "$tmp/$name.shard.log")"
		return
	fi
	if ! "$bin" check "$out" >"$tmp/$name.check.log" 2>&1; then
		fail "$name: check: $(tail -1 "$tmp/$name.check.log")"
		return
	fi
	if ! expect "$name" "$out/manifest.json" "$cond"; then
		fail "$name: the manifest does not hold: $cond"
		$py -c "import json,sys; m=json.load(open(sys.argv[1])); [print('  ', x['name'], x['sharding']) for x in m['parameters']]; print('  ', m['plan'].get('replicated'))" "$out/manifest.json"
		return
	fi
	if ! "$bin" stitch "$out" -o "$tmp/$name.onnx" >"$tmp/$name.stitch.log" 2>&1; then
		fail "$name: stitch: $(tail -1 "$tmp/$name.stitch.log")"
		return
	fi
	if ! node "$e2e/ortcompare.js" "$model" "$tmp/$name.onnx" --dim "$dim=4" --accuracy-level 1 \
		>"$tmp/$name.ort.log" 2>&1; then
		fail "$name: ortcompare: $(grep -v '^ok' "$tmp/$name.ort.log" | head -2)"
		return
	fi
	echo "ok $name: $(head -1 "$tmp/$name.ort.log")"
	pass=$((pass + 1))
}

case_ ffn_megatron "$ffn" batch_size model=2 megatron \
	'p["fc1.weight_DQ_Q4"] == [[], ["model"]] and p["fc2.weight_DQ_Q4"] == [["model"], []] and p["fc2.weight_DQ_zero_points"] == [["model"], []]'
case_ ffn_data "$ffn" batch_size data=2 data 'not any(any(s) for s in p.values())'
case_ ffn_rows "$ffn" batch_size model=2 "$tmp/ffn_rows.json" \
	'p["fc1.weight_DQ_Q4"] == [["model"], []] and p["fc1.weight_DQ_scales"] == [["model"], []] and p["fc2.weight_DQ_Q4"] == [[], ["model"]] and p["fc2.weight_DQ_zero_points"] == [[], ["model"]]'
# w1 [8, 6] by columns: 3 values a row, cut bytes: replicated, noted
case_ sb_megatron "$sb" batch model=2 megatron \
	'p["w1"] == [[], []] and "cut bytes" in notes.get("w1", "")'
case_ sb_data "$sb" batch data=2 data 'not any(any(s) for s in p.values())'
# w1 by rows keeps bytes; w2 [6, 3] by rows would cut them (3 values a row);
# float8 w4 splits as bytes
case_ sb_seeds "$sb" batch model=2 "$tmp/sb_seeds.json" \
	'p["w1"] == [["model"], []] and p["w2"] == [[], []] and "cut bytes" in notes.get("w2", "") and p["w4"] == [[], ["model"]]'
# h1 split on its features: propagation would give w1 3 values a row, so
# w1 stays whole; w5 (uint4 [4, 4]) by columns, 1 byte a row, and its
# per-column zero points [4] with it (1 byte a rank)
case_ sb_propagated "$sb" batch model=2 "$tmp/sb_propagated.json" \
	'p["w1"] == [[], []] and p["w5"] == [[], ["model"]] and p["w5_zp"] == [["model"]]'
case_ ffn_external "$tmp/ext_qdq_block_ffn.onnx" batch_size model=2 megatron \
	'p["fc1.weight_DQ_Q4"] == [[], ["model"]] and p["fc2.weight_DQ_Q4"] == [["model"], []]'
case_ sb_external "$tmp/ext_subbyte.onnx" batch model=2 "$tmp/sb_seeds.json" \
	'p["w1"] == [["model"], []] and p["w2"] == [[], []] and p["w4"] == [[], ["model"]]'

# the dtype names
if "$bin" inspect "$sb" --dump ir >"$tmp/ir.txt" 2>&1 &&
	grep -q 'init w1: int4\[8,6\]' "$tmp/ir.txt" && grep -q 'init w3: uint4\[3,5\]' "$tmp/ir.txt" &&
	grep -q 'init w4: float8e4m3fn\[5,4\]' "$tmp/ir.txt"; then
	pass=$((pass + 1))
else
	fail "inspect --dump ir does not name int4, uint4 and float8e4m3fn: $(head -3 "$tmp/ir.txt")"
fi

echo "subbyte: $pass passed, $failn failed"
[ "$failn" = 0 ]
