#!/usr/bin/env bash
# Every model of libonnx-testdata's pytorch-converted and pytorch-operator
# folders, sharded with the default strategy on data=2,model=2, stitched and
# compared with its source in ONNX Runtime on random inputs. Sources that ORT
# itself cannot load or run (old opsets, ids past a tiny vocabulary) are
# counted apart; every other model must match.
#   tests/e2e/sweep.sh BIN SRCDIR
set -u
bin=$1
src=$2
data=/usr/share/libonnx-testdata/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0 skipped=0
for f in $(find "$data/pytorch-converted" "$data/pytorch-operator" -name model.onnx | sort); do
	out=$tmp/out
	rm -rf "$out"
	if ! "$bin" shard "$f" --mesh data=2,model=2 -o "$out" --quiet >/dev/null 2>"$tmp/err" ||
	   ! "$bin" stitch "$out" -o "$tmp/s.onnx" 2>>"$tmp/err"; then
		failn=$((failn + 1))
		echo "FAIL $f: $(head -1 "$tmp/err")"
		continue
	fi
	if node "$src/tests/e2e/ortcompare.js" "$f" "$tmp/s.onnx" >"$tmp/cmp" 2>&1; then
		pass=$((pass + 1))
	elif grep -q "error: \(cannot load\|running\) $f" "$tmp/cmp"; then
		skipped=$((skipped + 1))
	else
		failn=$((failn + 1))
		echo "FAIL $f: $(grep -v '^ok' "$tmp/cmp" | head -1)"
	fi
done
echo "sweep: $skipped sources ONNX Runtime cannot run"
echo "sweep: $pass passed, $failn failed"
[ "$failn" = 0 ] && [ "$pass" -gt 50 ]
