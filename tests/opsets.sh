#!/usr/bin/env bash
# Op forms of opsets 18 to 21 (tests/opsets/gen.py makes the models): each
# is sharded on data=2 with the data strategy, checked, stitched, and run in
# ONNX Runtime against the source; every output keeps its batch dim split
# (the manifest's sharding names data for the dim named batch).
#   tests/opsets.sh BIN SRCDIR
set -u
bin=$1
src=$2
dir=$src/tests/opsets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0

for m in reduce18 split18 norm21 resize18 image20 types21 scatter18; do
	out=$tmp/$m
	if ! "$bin" shard "$dir/$m.onnx" --mesh data=2 --strategy data -o "$out" --quiet >"$out.log" 2>&1 ||
		! "$bin" check "$out" >"$out.log" 2>&1; then
		failn=$((failn + 1))
		echo "FAIL $m: shard or check: $(tail -1 "$out.log")"
		continue
	fi
	if ! /usr/bin/python3 - "$out/manifest.json" >"$out.log" 2>&1 <<'PY'; then
import json, sys
m = json.load(open(sys.argv[1]))
bad = [o["name"] for o in m["outputs"]
       if ["data"] not in [s for d, s in zip(o["shape"], o["sharding"]) if d == "batch"]]
if bad:
    sys.exit("batch not split in outputs: " + " ".join(bad))
PY
		failn=$((failn + 1))
		echo "FAIL $m: $(tail -1 "$out.log")"
		continue
	fi
	if ! "$bin" stitch "$out" -o "$out.stitched.onnx" >"$out.log" 2>&1 ||
		! node "$src/tests/e2e/ortcompare.js" "$dir/$m.onnx" "$out.stitched.onnx" \
			--dim batch=4 --int-max idx=4 >"$out.log" 2>&1; then
		failn=$((failn + 1))
		echo "FAIL $m: stitch or ortcompare: $(grep -v '^ok' "$out.log" | head -2 | tr '\n' ' ')"
		continue
	fi
	pass=$((pass + 1))
	echo "ok $m: $(grep -o 'relerr=[^ ]*' "$out.log" | sort | tail -1)"
done
echo "opsets: $pass passed, $failn failed"
[ "$failn" = 0 ]
