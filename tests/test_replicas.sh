#!/usr/bin/env bash
# The oracle sees every rank: a real output directory (mlp, data=2,model=2,
# data,megatron: y split on data, replicated on model) passes check, stitch
# and ortcompare; the same with one replica rank tampered (a Neg after its
# AllReduce, manifest checksums refreshed so only the fault remains) must
# fail ortcompare on that replica's output, for a rank at coordinate 0 of the
# replicated axis and for one off it.
#   tests/test_replicas.sh BIN SRCDIR
set -u
bin=$1
src=$2
e2e=$src/tests/e2e
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0
ok() { pass=$((pass + 1)); }
bad() { failn=$((failn + 1)); echo "FAIL: $*"; }

out=$tmp/mlp
if ! "$bin" shard "$src/samples/mlp.onnx" --mesh data=2,model=2 --strategy data,megatron -o "$out" --quiet >/dev/null 2>"$tmp/err"; then
	echo "FAIL: shard: $(cat "$tmp/err")"
	exit 1
fi

tamper() { # DIR RANK: y = -(AllReduce result) on that rank
	"$py" - "$1" "$2" <<'PY'
import json, sys, zlib
import onnx
from onnx import helper
d, r = sys.argv[1], int(sys.argv[2])
m = json.load(open(d + '/manifest.json'))
fn = m['ranks'][r]['model']
model = onnx.load(d + '/' + fn)
g = model.graph
for i, n in enumerate(g.node):
    if n.op_type == 'AllReduce':
        y = n.output[0]
        n.output[0] = y + '/pre_neg'
        g.node.insert(i + 1, helper.make_node('Neg', [y + '/pre_neg'], [y], name='tamper/neg'))
        break
else:
    sys.exit('no AllReduce in ' + fn)
onnx.save(model, d + '/' + fn)
b = open(d + '/' + fn, 'rb').read()
m['ranks'][r]['bytes'], m['ranks'][r]['crc32'] = len(b), '%08x' % (zlib.crc32(b) & 0xffffffff)
json.dump(m, open(d + '/manifest.json', 'w'), indent=1)
PY
}

verify() { # DIR -> 0 if check, stitch and ortcompare all pass; output in $tmp/log
	"$bin" check "$1" >"$tmp/log" 2>&1 &&
		"$bin" stitch "$1" -o "$1.stitched.onnx" >>"$tmp/log" 2>&1 &&
		node "$e2e/ortcompare.js" "$src/samples/mlp.onnx" "$1.stitched.onnx" --dim batch=4 --replicas-exact >>"$tmp/log" 2>&1
}

if verify "$out" && grep -q '^ok y@replica1 ' "$tmp/log"; then ok; else bad "untampered: $(cat "$tmp/log")"; fi

# rank r = (data, model); y's replica q is the model coordinate
# (the tampered replica fails against the source, the other one passes)
for case in "1 y@replica1 y" "3 y@replica1 y" "0 y y@replica1" "2 y y@replica1"; do
	set -- $case
	rm -rf "$tmp/t" "$tmp/t.stitched.onnx"
	cp -r "$out" "$tmp/t"
	tamper "$tmp/t" "$1" || { bad "could not tamper rank $1"; continue; }
	if verify "$tmp/t"; then
		bad "rank $1 negated after its AllReduce, yet check+stitch+ortcompare pass: $(tr '\n' ' ' <"$tmp/log")"
	elif grep -q "^FAIL $2 \[" "$tmp/log" && grep -q "^ok $3 \[" "$tmp/log"; then
		ok
		echo "rank $1 tampered: $(grep '^FAIL' "$tmp/log" | head -1)"
	else
		bad "rank $1 tampered: want '$2' to fail and '$3' to pass: $(tr '\n' ' ' <"$tmp/log")"
	fi
done
echo "test_replicas: $pass passed, $failn failed"
[ "$failn" = 0 ]
