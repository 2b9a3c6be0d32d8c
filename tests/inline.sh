#!/usr/bin/env bash
# Model-local functions are inlined before lifting (ir/inline.c). For each
# model of tests/inline/ (made by tests/inline/gen.py): shard on data=2 with
# the data strategy, check, stitch, and compare with the source in ONNX
# Runtime (or with M.ref.onnx when ONNX Runtime cannot run M); the batch stays split through the inlined bodies (every output is
# split on data in the manifest). conflict.onnx keeps its call (opaque) and
# recursive.onnx is refused with one line, exit 2.
#   tests/inline.sh BIN SRCDIR
set -u
bin=$1
src=$2
dir=$src/tests/inline
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0
ok() { pass=$((pass + 1)); echo "ok $*"; }
bad() { failn=$((failn + 1)); echo "FAIL: $*"; }

for m in torch_block nested attrs opset twice; do
	out=$tmp/$m
	if ! "$bin" shard "$dir/$m.onnx" --mesh data=2 --strategy data -o "$out" --quiet >"$out.log" 2>&1; then
		bad "$m: shard: $(tail -1 "$out.log")"
		continue
	fi
	if ! "$bin" check "$out" >"$out.log" 2>&1; then
		bad "$m: check: $(tail -1 "$out.log")"
		continue
	fi
	# every output split on data: the batch went through the inlined bodies
	if ! /usr/bin/python3 - "$out/manifest.json" >"$out.log" 2>&1 <<'PY'; then
import json, sys
m = json.load(open(sys.argv[1]))
bad = [o["name"] for o in m["outputs"] if o["sharding"][:1] != [["data"]]]
if bad:
    sys.exit("outputs not split on data: " + " ".join(bad))
PY
		bad "$m: $(tail -1 "$out.log")"
		continue
	fi
	if "$bin" inspect "$out/rank0.onnx" | grep -q '::'; then
		bad "$m: rank0.onnx still calls a function: $("$bin" inspect "$out/rank0.onnx" | grep '::')"
		continue
	fi
	if ! "$bin" stitch "$out" -o "$out.stitched.onnx" >"$out.log" 2>&1; then
		bad "$m: stitch: $(tail -1 "$out.log")"
		continue
	fi
	ref=$dir/$m.onnx
	[ -f "$dir/$m.ref.onnx" ] && ref=$dir/$m.ref.onnx
	if ! node "$src/tests/e2e/ortcompare.js" "$ref" "$out.stitched.onnx" \
		--dim batch=4 >"$out.log" 2>&1; then
		bad "$m: ortcompare: $(grep -v '^ok' "$out.log" | head -2 | tr '\n' ' ')"
		continue
	fi
	ok "$m: $(grep -o 'relerr=[^ ]*' "$out.log" | sort | tail -1)"
done

# a call whose function imports ai.onnx 13 in an opset-15 model stays a call
if "$bin" inspect "$dir/conflict.onnx" 2>&1 | grep -q 'local::Old 1' &&
	"$bin" plan "$dir/conflict.onnx" --mesh data=2 --strategy data >/dev/null 2>&1; then
	ok "conflict: the call stays opaque"
else
	bad "conflict: $("$bin" inspect "$dir/conflict.onnx" 2>&1 | tail -1)"
fi

# recursion: exit 2, one line naming the file
"$bin" shard "$dir/recursive.onnx" --mesh data=2 -o "$tmp/rec" >"$tmp/rec.out" 2>"$tmp/rec.err"
rc=$?
if [ "$rc" = 2 ] && [ "$(wc -l <"$tmp/rec.err")" = 1 ] &&
	grep -q "^onnxshard: error: .*recursive.onnx: .*calls itself" "$tmp/rec.err"; then
	ok "recursive: $(cat "$tmp/rec.err")"
else
	bad "recursive: exit $rc: $(cat "$tmp/rec.err")"
fi

echo "inline: $pass passed, $failn failed"
[ "$failn" = 0 ]
