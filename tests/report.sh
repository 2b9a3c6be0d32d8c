#!/usr/bin/env bash
# The plan's HTML report (`plan --report FILE.html`, also shard): for every
# sample on data=2,model=2, the page is written, names are escaped, nothing
# is fetched from the network, and headless Chromium renders it (a
# screenshot of some size, a DOM with every section), and the page's
# figures (step time, compute, communication, peak memory, bytes sent, the
# count of collectives), read from the rendered DOM's text, are `plan
# --json`'s for the same run (tests/report_figures.py). A write error is one
# line naming the file, exit 1, and no file left behind. Without Chromium
# the pages are not rendered (the figures are read from the HTML) and, when
# CI is set (CI runs scripts/setup.sh, which installs it), the test fails.
#   report.sh ONNXSHARD SRCDIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

browser=
for b in chromium chromium-browser google-chrome; do
	if command -v "$b" >/dev/null; then
		browser=$b
		break
	fi
done
if [ -z "$browser" ] && [ -n "${CI:-}" ]; then
	fail "no chromium (CI=$CI; scripts/setup.sh installs it)"
fi

# the symbolic dims each sample has, bound so the plan splits something;
# gpt2 and llama on data,megatron (auto keeps data on h100 here): plans
# with collectives to count
dims() {
	case $1 in
	gpt2 | llama) echo --dim batch=8 --dim seq=128 --strategy data,megatron ;;
	bert) echo --dim batch=8 --dim seq=128 ;;
	*) echo --dim batch=8 ;;
	esac
}

render() { # HTML PNG -> DOM on stdout
	local prof
	prof=$(mktemp -d "$tmp/prof.XXXXXX")
	timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$prof" --screenshot="$2" --window-size=1280,2000 "file://$1" \
		>/dev/null 2>&1 || fail "$1: chromium --screenshot"
	prof=$(mktemp -d "$tmp/prof.XXXXXX")
	timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$prof" --dump-dom "file://$1" 2>/dev/null || fail "$1: chromium --dump-dom"
}

collectives=0
for s in mlp gpt2 bert resnet vit llama; do
	html=$tmp/$s.html
	# shellcheck disable=SC2046
	"$bin" plan "$src/samples/$s.onnx" --mesh data=2,model=2 $(dims "$s") --quiet \
		--report "$html" >"$tmp/$s.txt" 2>"$tmp/$s.err" || fail "$s: plan --report: $(cat "$tmp/$s.err")"
	[ -s "$html" ] || fail "$s: no report"
	grep -q '^plan: ' "$tmp/$s.txt" || fail "$s: the summary is still printed"
	# shellcheck disable=SC2046
	"$bin" plan "$src/samples/$s.onnx" --mesh data=2,model=2 $(dims "$s") --quiet --json \
		>"$tmp/$s.json" || fail "$s: plan --json"
	if grep -Eiq '(src|href)=["'"'"']?(https?:)?//' "$html" || grep -Eiq 'https?://' "$html"; then
		fail "$s: the page refers to the network"
	fi
	grep -qi '<script' "$html" && fail "$s: the page has a script"
	for id in mesh layers collectives memory time; do
		grep -q "<section id=\"$id\"" "$html" || fail "$s: no section $id"
	done
	ls "$tmp" | grep -q '\.tmp-' && fail "$s: a temp file is left"
	if [ -n "$browser" ]; then
		render "$html" "$tmp/$s.png" >"$tmp/$s.dom"
		[ -f "$tmp/$s.png" ] || fail "$s: no screenshot"
		size=$(stat -c %s "$tmp/$s.png")
		[ "$size" -gt 40000 ] || fail "$s: screenshot of $size bytes: blank?"
		for h in Mesh 'Weights by layer' Collectives 'Peak memory per rank' 'Step time'; do
			grep -q "<h2>$h" "$tmp/$s.dom" || fail "$s: the DOM has no heading '$h'"
		done
		grep -q 'rank 3' "$tmp/$s.dom" || fail "$s: the mesh grid has no rank 3"
		grep -q '<svg' "$tmp/$s.dom" || fail "$s: no SVG chart"
		grep -qi '<script src=' "$tmp/$s.dom" && fail "$s: a script from elsewhere"
		page=$tmp/$s.dom
	else
		page=$html
	fi
	n=$(/usr/bin/python3 "$src/tests/report_figures.py" "$page" "$tmp/$s.json") ||
		fail "$s: the page's figures: $n"
	collectives=$((collectives + n))
done
# the figures were compared on plans that communicate
[ "$collectives" -gt 0 ] || fail "no sample's plan has a collective: the count went untested"

# shard writes it too, beside OUT
"$bin" shard "$src/samples/mlp.onnx" --mesh data=2,model=2 -o "$tmp/out" --quiet \
	--report "$tmp/shard.html" >/dev/null || fail "shard --report"
[ -s "$tmp/shard.html" ] && [ -f "$tmp/out/manifest.json" ] || fail "shard --report: files"

# the name of every kind of value is escaped: a weight named with markup
/usr/bin/python3 - "$tmp/evil.onnx" <<'EOF' || fail "cannot make evil.onnx"
import sys
sys.path = [p for p in sys.path if p not in ("", ".")]
import onnx
from onnx import helper, TensorProto
import numpy as np
bad = 'w<script>alert("x")</script>&\'.0.q'
w = helper.make_tensor(bad, TensorProto.FLOAT, [4, 4], np.ones(16, np.float32).tolist())
g = helper.make_graph([helper.make_node("MatMul", ["x", bad], ["y<&>"])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])],
                      [helper.make_tensor_value_info("y<&>", TensorProto.FLOAT, ["b", 4])], [w])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
EOF
"$bin" plan "$tmp/evil.onnx" --mesh data=2,model=2 --strategy megatron --dim b=4 --quiet \
	--report "$tmp/evil.html" >/dev/null || fail "evil: plan --report"
grep -qi '<script' "$tmp/evil.html" && fail "evil: a name is not escaped"
grep -q 'w&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;' "$tmp/evil.html" ||
	fail "evil: the escaped name is missing"

# a write error: one line naming the file, exit 1, nothing left behind
mkdir "$tmp/ro"
set +e
"$bin" plan "$src/samples/mlp.onnx" --mesh data=2,model=2 --quiet \
	--report "$tmp/nodir/r.html" >/dev/null 2>"$tmp/err"
rc=$?
set -e
[ $rc = 1 ] || fail "write error: exit $rc, expected 1"
[ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "$tmp/nodir/r.html" "$tmp/err" ||
	fail "write error: $(cat "$tmp/err")"
"$bin" plan "$src/samples/mlp.onnx" --mesh data=2,model=2 --quiet --report "" >/dev/null 2>&1 &&
	fail "--report '' accepted"

# what the plan decided: the decisions section, with each decision's row
"$bin" plan "$src/samples/gpt2.onnx" --mesh model=2 --dim batch=1 --dim seq=16 \
	--strategy megatron --quiet --report "$tmp/dec.html" >/dev/null || fail "decisions: plan"
grep -q '<section id="decisions"><h2>Decisions</h2>' "$tmp/dec.html" || fail "no decisions section"
grep -q '<tr><td>ffn hidden</td><td class="n">256</td>' "$tmp/dec.html" ||
	fail "decisions: no ffn hidden row"
grep -q '<tr><td>batch</td>.*batch 1 does not divide by model=2' "$tmp/dec.html" ||
	fail "decisions: the batch's reason is missing"

# a pure data-parallel plan: its split shows in the activations and the
# graph inputs and outputs, though no weight is split
"$bin" plan "$src/samples/mlp.onnx" --mesh data=2 --dim batch=8 --strategy data --quiet \
	--report "$tmp/data.html" >/dev/null || fail "data: plan"
grep -q '<section id="values"><h2>Activations, graph inputs and outputs</h2>' "$tmp/data.html" ||
	fail "data: no activations section"
grep -q '<tr><td>input</td><td><code>x</code></td><td>float32</td><td><code>\[8, 64\]</code></td><td>.*<code>\[data, -\]</code></td><td class="n">2.05 KB</td><td class="n">1.02 KB</td>' \
	"$tmp/data.html" || fail "data: the input row"
grep -q '<td>output</td><td><code>y</code></td>.*<code>\[data, -\]</code>' "$tmp/data.html" ||
	fail "data: the output row"
grep -Eq "</span> data</td><td class=\"n\">[1-9]" "$tmp/data.html" ||
	fail "data: no activation split over data"

# identical layers in one card: a 4-layer model, layers 0-3
/usr/bin/python3 "$src/tests/bench/make_llm.py" "$tmp/l4.onnx" --arch llama --layers 4 \
	--hidden 256 --heads 8 --kv-heads 4 --ffn 512 --vocab 1000 --weights sparse >/dev/null ||
	fail "make_llm"
"$bin" plan "$tmp/l4.onnx" --mesh model=2 --dim batch=1 --dim seq=16 --strategy megatron \
	--quiet --report "$tmp/l4.html" >/dev/null || fail "l4: plan"
[ "$(grep -o 'layers 0-3: identical' "$tmp/l4.html" | wc -l)" = 1 ] ||
	fail "l4: no 'layers 0-3: identical' card"
grep -q '<h3>layer [0-9]' "$tmp/l4.html" && fail "l4: a layer has a card of its own"
# sizes without hovering
grep -q '<span class="sz">262 KB</span>' "$tmp/l4.html" || fail "l4: a weight's size is not shown"

[ -n "$browser" ] || echo "report: no chromium: pages not rendered (scripts/setup.sh installs it)"
echo "report: ok"
