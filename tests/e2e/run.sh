#!/usr/bin/env bash
# End-to-end: every model of the corpus x strategy x mesh (corpus.py: shard,
# check, onnx.checker on every rank model, stitch, then source and stitched
# graph in ONNX Runtime on the same random inputs, every replica, relative
# error <= 1e-4); tactics files; the same bytes twice; the GPT-2 Megatron
# collective count; the refusals.
#   tests/e2e/run.sh BIN SRCDIR [ONLY]   (ONLY: a substring of the corpus cases)
set -u
bin=$1
src=$2
shift 2
e2e=$src/tests/e2e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0
only=()
[ $# -gt 0 ] && only=(--only "$1")
if [ ! -d "$e2e/node_modules/onnxruntime-node" ]; then
	echo "e2e: onnxruntime-node is missing: run scripts/setup.sh" >&2
	exit 1
fi

ok() { pass=$((pass + 1)); }
bad() { failn=$((failn + 1)); echo "FAIL: $*"; }

run_case() { # sample mesh strategy
	local s=$1 mesh=$2 st=$3 out="$tmp/$1-$2-${3##*/}"
	local what="$s --mesh $mesh --strategy $st"
	if ! "$bin" shard "$src/samples/$s.onnx" --mesh "$mesh" --strategy "$st" -o "$out" --quiet >"$out.log" 2>&1; then
		bad "$what: shard: $(tail -1 "$out.log")"
		return
	fi
	if ! "$bin" check "$out" >"$out.log" 2>&1; then
		bad "$what: check: $(tail -1 "$out.log")"
		return
	fi
	if ! /usr/bin/python3 "$e2e/check_model.py" "$out"/rank*.onnx >"$out.log" 2>&1; then
		bad "$what: onnx.checker: $(grep FAIL "$out.log" | head -1)"
		return
	fi
	if ! "$bin" stitch "$out" -o "$out.stitched.onnx" >"$out.log" 2>&1; then
		bad "$what: stitch: $(tail -1 "$out.log")"
		return
	fi
	if ! node "$e2e/ortcompare.js" "$src/samples/$s.onnx" "$out.stitched.onnx" \
		--dim batch=4 --dim seq=8 >"$out.log" 2>&1; then
		bad "$what: ortcompare: $(grep -v '^ok' "$out.log" | head -2 | tr '\n' ' ')"
		return
	fi
	echo "ok $what: $(grep -o 'relerr=[^ ]*' "$out.log" | sort | tail -1)"
	ok
}

# every model of the corpus (samples and samples/corpus) x strategy x mesh
if /usr/bin/python3 "$e2e/corpus.py" "$bin" "$src" "${only[@]}"; then ok; else bad "corpus (above)"; fi

# tactics files
run_case mlp data=2,model=2 "$e2e/tactics/mlp-columns.json"
run_case gpt2 data=2,model=2 "$e2e/tactics/gpt2-manual.json"

# the same input and options give the same bytes
a=$tmp/det-a b=$tmp/det-b
"$bin" shard "$src/samples/gpt2.onnx" --mesh data=2,model=2 -o "$a" --quiet >/dev/null 2>&1
"$bin" shard "$src/samples/gpt2.onnx" --mesh data=2,model=2 -o "$b" --quiet >/dev/null 2>&1
if [ -f "$a/manifest.json" ] && diff -r "$a" "$b" >/dev/null; then ok; else bad "two runs gave different bytes"; fi
# ... whatever the number of writer processes
for j in 1 3; do
	rm -rf "$b"
	"$bin" shard "$src/samples/gpt2.onnx" --mesh data=2,model=2 -o "$b" --quiet --jobs $j >/dev/null 2>&1
	if [ -f "$a/manifest.json" ] && diff -r "$a" "$b" >/dev/null; then ok; else bad "--jobs $j gave other bytes"; fi
done

# GPT-2 under Megatron: exactly 2 AllReduce per layer on the model axis and
# no other collective inside a layer.
out=$tmp/gpt2-count
"$bin" shard "$src/samples/gpt2.onnx" --mesh data=2,model=2 --strategy data,megatron -o "$out" --quiet >/dev/null 2>&1
if counts=$(/usr/bin/python3 "$e2e/count_collectives.py" "$out/rank0.onnx" 'h\.(\d+)'); then
	echo "gpt2 collectives per layer: $counts"
	if [[ "$counts" == "layer 0: AllReduce[model]=2; layer 1: AllReduce[model]=2" || \
	      "$counts" == "layer 0: AllReduce[model]=2; layer 1: AllReduce[model]=2; outside: "* ]]; then
		ok
	else
		bad "gpt2 collective count: $counts"
	fi
else
	bad "gpt2 collective count: $counts"
fi

# torch.nn attention under data,megatron: the [batch·heads] dim holds the
# batch on data and the heads on model at once (prop_dim.npc), so q, k and
# v are not gathered before that Reshape: 2 AllReduce per layer, nothing
# else (ONNX Runtime verifies these models in corpus.py)
out=$tmp/nn-count
"$bin" shard "$src/samples/corpus/nn_encoder_prenorm.onnx" --mesh data=2,model=2 \
	--strategy data,megatron -o "$out" --quiet >/dev/null 2>&1
counts=$(/usr/bin/python3 "$e2e/count_collectives.py" "$out/rank0.onnx" 'layers\.(\d+)')
echo "nn_encoder_prenorm collectives per layer: $counts"
if [[ "$counts" == "layer 0: AllReduce[model]=2; layer 1: AllReduce[model]=2"* && "$counts" != *AllGather* ]]; then
	ok
else
	bad "nn_encoder_prenorm collective count: $counts"
fi

# refusals: one line, exit 2, no output directory
refuse() { # want args...
	local want=$1
	shift
	"$bin" "$@" >"$tmp/r.out" 2>"$tmp/r.err"
	local rc=$?
	if [ $rc = 2 ] && [ "$(wc -l <"$tmp/r.err")" = 1 ] && grep -q "^onnxshard: error: .*$want" "$tmp/r.err" &&
	   [ ! -e "$tmp/refused" ]; then
		ok
	else
		bad "onnxshard $* -> exit $rc: $(head -2 "$tmp/r.err")"
	fi
}
m=$src/samples/mlp.onnx
refuse "--mesh 'data=0': size" shard "$m" --mesh data=0 -o "$tmp/refused"
refuse "--mesh 'data': want NAME=SIZE" shard "$m" --mesh data -o "$tmp/refused"
refuse "axis 'data' named twice" shard "$m" --mesh data=2,data=2 -o "$tmp/refused"
refuse "no mesh axis named 'nope'" shard "$m" --mesh data=2 --strategy megatron:nope -o "$tmp/refused"
refuse "unknown tactic 'bogus'" shard "$m" --mesh data=2 --strategy bogus -o "$tmp/refused"
refuse "the model has no symbolic dim 'seq'" shard "$m" --mesh data=2 --dim seq=8 -o "$tmp/refused"
refuse "--dim 'batch=x': size" shard "$m" --mesh data=2 --dim batch=x -o "$tmp/refused"
refuse "needs --mesh" shard "$m" -o "$tmp/refused"
mkdir -p "$tmp/exists"
refuse "already exists" shard "$m" --mesh data=2 -o "$tmp/exists"
if "$bin" shard "$m" --mesh data=2 -o "$tmp/exists" --force --quiet >/dev/null && [ -f "$tmp/exists/manifest.json" ]; then ok; else bad "--force did not replace OUT"; fi
ls -d "$tmp"/*.tmp-* >/dev/null 2>&1 && bad "a temp dir was left behind"

echo "e2e: $pass passed, $failn failed"
[ "$failn" = 0 ]
