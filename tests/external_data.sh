#!/usr/bin/env bash
# --external-data auto|always|never (README, Options), end to end:
# - never on a model whose rank weights pass protobuf's 2 GiB (a Llama of
#   3.3 GB of float32 weights, sparse: a file hole, tests/bench/make_llm.py):
#   shard refuses with exit 2 and the documented line, its byte count the
#   rank's weights (every weight, replicated under data), before writing
#   anything (no OUT, no temp dir);
# - always: every parameter of every rank (each initializer the manifest
#   lists, but strings, which ONNX keeps inline) is in rank{r}.onnx.data:
#   external, no inline raw_data nor typed data (checked with onnx); the
#   small constants onnxshard adds (onnxshard/...) are counted apart;
# - an unknown value is refused, nothing written;
# - never where it fits: every initializer inline, no .data file;
# - both verified: check, onnx.checker, stitch, ONNX Runtime against the
#   source.
#   external_data.sh ONNXSHARD SRCDIR
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0
ok() { pass=$((pass + 1)); }
bad() {
	failn=$((failn + 1))
	echo "FAIL: $*"
}

# ---- the 2 GiB refusal ----
big=$tmp/big/llama.onnx
mkdir "$tmp/big"
/usr/bin/python3 "$src/tests/bench/make_llm.py" "$big" --arch llama --layers 4 --hidden 4096 \
	--heads 32 --weights sparse >/dev/null || {
	echo "FAIL: make_llm.py"
	exit 1
}
# the rank's weights under data: every initializer's bytes
want=$(/usr/bin/python3 - "$big" <<'EOF'
import sys
sys.path = [p for p in sys.path if p not in ("", ".")]
import math
import onnx
from onnx import mapping
m = onnx.load(sys.argv[1], load_external_data=False)
print(sum(math.prod(t.dims) * mapping.TENSOR_TYPE_TO_NP_TYPE[t.data_type].itemsize
          for t in m.graph.initializer))
EOF
)
[ "$want" -gt $((2 << 30)) ] || bad "the big model has $want bytes of weights, not past 2 GiB"
refused() { # what args...
	local what=$1
	shift
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$? lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" = 2 ] && [ "$lines" = 1 ] && [ ! -s "$tmp/out" ] &&
	   grep -qx "onnxshard: error: --external-data never: each rank holds $want bytes of weights, past protobuf's 2 GiB limit for one model" "$tmp/err"; then
		ok
	else
		bad "$what: exit $rc, $lines lines: $(head -2 "$tmp/err")"
	fi
	# nothing written beside the model
	local left
	left=$(cd "$tmp/big" && find . -mindepth 1 ! -name llama.onnx ! -name llama.onnx.data)
	[ -z "$left" ] || bad "$what: left behind: $left"
}
refused "shard never, data" shard "$big" --mesh data=2 --strategy data --external-data never \
	-o "$tmp/big/out" --quiet
refused "shard never, data, 2 writers" shard "$big" --mesh data=2,model=2 --strategy data \
	--external-data never -o "$tmp/big/out" --quiet --jobs 2
rm -rf "$tmp/big"

# ---- always, never, a bad value, on GPT-2 on data=2,model=2 ----
model=$src/samples/gpt2.onnx
dims=(--dim batch=2 --dim seq=8)
# every initializer of every rank is external (always) or inline (never)
where() { # OUT always|never
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import json, os, sys
sys.path = [p for p in sys.path if p not in ("", ".")]
import onnx
from onnx import TensorProto
out, mode = sys.argv[1], sys.argv[2]
man = json.load(open(os.path.join(out, "manifest.json")))
params = {p["name"] for p in man["parameters"]}
bad, n, helpers = [], 0, 0
for r in man["ranks"]:
    path = os.path.join(out, r["model"])
    m = onnx.load(path, load_external_data=False)
    onnx.checker.check_model(path)
    data = os.path.exists(path + ".data")
    if (mode == "always") != data:
        bad.append("%s: %s" % (r["model"], "no .data file" if mode == "always" else ".data file"))
    if (mode == "always") != bool(r["external_data"]):
        bad.append("%s: manifest external_data %s" % (r["model"], r["external_data"]))
    inits = list(m.graph.initializer)
    for node in m.graph.node:  # subgraphs' initializers too
        for a in node.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                inits += list(g.initializer)
    for t in inits:
        if mode == "always" and (t.name not in params or t.data_type == TensorProto.STRING):
            helpers += 1  # onnxshard's own constants (and strings) stay inline
            continue
        n += 1
        ext = t.data_location == TensorProto.EXTERNAL
        inline = t.HasField("raw_data") or any(len(getattr(t, f)) for f in (
            "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
            "string_data"))
        if mode == "always" and (not ext or inline):
            bad.append("%s: %s inline" % (r["model"], t.name))
        if mode == "never" and (ext or t.external_data):
            bad.append("%s: %s external" % (r["model"], t.name))
if bad:
    sys.exit("; ".join(bad[:5]))
print(n, helpers)
EOF
}
for mode in always never; do
	out=$tmp/$mode
	if ! "$bin" shard "$model" --mesh data=2,model=2 --strategy data,megatron \
		--external-data "$mode" -o "$out" --quiet >/dev/null 2>"$tmp/err"; then
		bad "$mode: shard: $(head -2 "$tmp/err")"
		continue
	fi
	if n=$(where "$out" "$mode" 2>&1); then
		echo "$mode: ${n% *} initializers checked; onnxshard's own constants, inline: ${n#* }"
		[ "${n% *}" -gt 100 ] && ok || bad "$mode: only ${n% *} initializers seen"
	else
		bad "$mode: $n"
	fi
	"$bin" check "$out" >/dev/null 2>"$tmp/err" && ok || bad "$mode: check: $(cat "$tmp/err")"
	if "$bin" stitch "$out" -o "$tmp/$mode.onnx" 2>"$tmp/err" &&
	   node "$src/tests/e2e/ortcompare.js" "$model" "$tmp/$mode.onnx" "${dims[@]}" \
		   --int-max input_ids=50 >"$tmp/cmp" 2>&1; then
		ok
	else
		bad "$mode: stitched against the source: $(tail -3 "$tmp/err" "$tmp/cmp" 2>/dev/null)"
	fi
done
# the same bytes of weights, whichever the mode: auto's inline ones plus its data file
if [ -d "$tmp/always" ]; then
	"$bin" shard "$model" --mesh data=2,model=2 --strategy data,megatron -o "$tmp/auto" \
		--quiet >/dev/null || bad "auto: shard"
	for r in 0 1 2 3; do
		a=$(stat -c %s "$tmp/auto/rank$r.onnx.data" 2>/dev/null || echo 0)
		b=$(stat -c %s "$tmp/always/rank$r.onnx.data")
		[ "$b" -ge "$a" ] && ok || bad "rank $r: always's data file ($b) smaller than auto's ($a)"
	done
fi

"$bin" shard "$model" --mesh data=2 --external-data sometimes -o "$tmp/x" --quiet \
	>/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] &&
   grep -qx "onnxshard: error: --external-data 'sometimes': want auto, always or never" "$tmp/err" &&
   [ -z "$(cd "$tmp" && ls -d x x.tmp-* 2>/dev/null)" ]; then
	ok
else
	bad "--external-data sometimes: exit $rc: $(head -2 "$tmp/err")"
fi

echo "external_data: $pass passed, $failn failed"
[ "$failn" = 0 ]
