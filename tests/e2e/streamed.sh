#!/usr/bin/env bash
# Weights streamed from external data into the rank files, verified in ONNX
# Runtime (tests/e2e/make_streamed.py makes the models):
# - mlp_big (two 11.7 MiB weights): column splits copy short runs through
#   the 1 MiB pread window, row splits long runs in the kernel
#   (copy_file_range); megatron on model=2 and model=4 (--jobs 1 and 2, the
#   same bytes), data,megatron on data=2,model=2;
# - far (a weight past 4.5 GiB of its data file, after a file hole): split
#   by rows and by columns with a tactics file; each rank's block compared
#   byte for byte with the source's slice, and the stitched model in ORT.
#   tests/e2e/streamed.sh BIN SRCDIR
set -u
bin=$1
src=$2
e2e=$src/tests/e2e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0
ok() { pass=$((pass + 1)); }
bad() { failn=$((failn + 1)); echo "FAIL: $*"; }

/usr/bin/python3 "$e2e/make_streamed.py" "$tmp/m" || { echo "FAIL: make_streamed.py"; exit 1; }

case_() { # name model mesh strategy [shard options...]
	local name=$1 m=$2 mesh=$3 st=$4 out="$tmp/$1"
	shift 4
	if ! "$bin" shard "$m" --mesh "$mesh" --strategy "$st" -o "$out" --quiet "$@" >"$tmp/log" 2>&1; then
		bad "$name: shard: $(tail -1 "$tmp/log")"
		return 1
	fi
	if ! "$bin" check "$out" >"$tmp/log" 2>&1; then
		bad "$name: check: $(tail -1 "$tmp/log")"
		return 1
	fi
	if ! "$bin" stitch "$out" -o "$out.onnx" >"$tmp/log" 2>&1; then
		bad "$name: stitch: $(tail -1 "$tmp/log")"
		return 1
	fi
	if ! node "$e2e/ortcompare.js" "$m" "$out.onnx" --dim batch=4 --replicas-exact >"$tmp/log" 2>&1; then
		bad "$name: ortcompare: $(grep -v '^ok' "$tmp/log" | head -2 | tr '\n' ' ')"
		return 1
	fi
	echo "ok $name: $(du -sh --apparent-size "$out" | cut -f1) written"
	ok
}

big=$tmp/m/mlp_big.onnx far=$tmp/m/far.onnx
case_ big-model2 "$big" model=2 megatron --jobs 1
case_ big-model4 "$big" model=4 megatron --jobs 1
case_ big-model4-jobs2 "$big" model=4 megatron --jobs 2
if diff -r "$tmp/big-model4" "$tmp/big-model4-jobs2" >/dev/null; then ok; else bad "--jobs 2 wrote other bytes"; fi
case_ big-2x2 "$big" data=2,model=2 data,megatron
# the weight really moved as blocks of megabytes (rank files near half the source)
if [ -d "$tmp/big-model2" ] && [ "$(stat -c %s "$tmp/big-model2/rank0.onnx.data")" -gt $((11 << 20)) ]; then ok; else
	bad "big-model2: rank0.onnx.data is not the size of its blocks"
fi

echo '{"steps": [{"shard": "w", "dim": 0, "axes": ["model"]}]}' >"$tmp/rows.json"
echo '{"steps": [{"shard": "w", "dim": 1, "axes": ["model"]}]}' >"$tmp/cols.json"
for how in rows cols; do
	case_ "far-$how" "$far" model=2 "$tmp/$how.json" || continue
	if /usr/bin/python3 - "$tmp/far-$how" "$tmp/m/far.w.npy" "$how" <<'EOF'; then ok; else bad "far-$how: a rank's block differs from the source's slice"; fi
import sys, numpy as np, onnx, onnx.numpy_helper as nh
out, ref, how = sys.argv[1], np.load(sys.argv[2]), sys.argv[3]
for r in range(2):
    m = onnx.load("%s/rank%d.onnx" % (out, r))  # external data resolved beside it
    w = nh.to_array(next(t for t in m.graph.initializer if t.name == "w"))
    want = ref[128 * r:128 * (r + 1)] if how == "rows" else ref[:, 256 * r:256 * (r + 1)]
    if w.shape != want.shape or w.tobytes() != want.tobytes():
        sys.exit("rank %d: %s against %s" % (r, w.shape, want.shape))
EOF
done

echo "streamed: $pass passed, $failn failed"
[ "$failn" = 0 ]
