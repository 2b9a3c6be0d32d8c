#!/usr/bin/env bash
# The automatic search against the baselines, on GPT-, Llama- and BERT-
# shaped models of real widths (2 layers: decisions do not grow with depth;
# weights a sparse hole, since plan reads none):
#  - on model=8 and data=2,model=4, decode and prefill (BERT: a short and a
#    long batch), auto's simulated step time is at most the best baseline
#    that fits, in every case, and strictly better (by 1%) in at least one;
#  - where exhaustive is tractable, auto (default budget) is within 1% of it;
#  - with less memory than one copy of the weights, auto returns a plan that
#    fits; with less than any plan needs, one clear error (exit 2);
#  - the same seed gives the same plan.
#   tests/search.sh BIN SRCDIR
set -u
bin=$1
src=$2
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failn=0 pass=0
bad() { failn=$((failn + 1)); echo "FAIL: $*"; }

mk() { "$py" "$src/tests/bench/make_llm.py" "$tmp/$1.onnx" --weights sparse --dtype float16 --layers 2 "${@:2}"; }
mk llama --arch llama --hidden 4096 --heads 32 --kv-heads 8 --ffn 14336 --vocab 32000 || bad "make llama"
mk gpt --arch gpt --hidden 2048 --heads 16 --vocab 50257 || bad "make gpt"
mk bert --arch bert --hidden 1024 --heads 16 --ffn 4096 --vocab 30522 || bad "make bert"

# plan MODEL MESH DIMS... -> the plan's JSON in $tmp/plan.json
plan() {
	local m=$1 mesh=$2
	shift 2
	"$bin" plan "$tmp/$m.onnx" --mesh "$mesh" --json "$@" >"$tmp/plan.json" 2>"$tmp/plan.err"
}

# auto against the baselines: prints "ratio" (auto / best baseline that fits)
compare() {
	"$py" - "$tmp/plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
fit = [b["step_time_s"] for b in p["baselines"].values() if b["fits"]]
best = min(fit) if fit else float("inf")
print("%.6g %.6g %s %s" % (p["step_time_s"], best, p["fits"], ",".join(
    "%s=%.3g" % (k, b["step_time_s"]) for k, b in p["baselines"].items())))
PY
}

better=0
for m in llama gpt bert; do
	if [ $m = bert ]; then
		shapes=("short:--dim batch=1 --dim seq=128" "long:--dim batch=32 --dim seq=512")
	else
		shapes=("decode:--dim batch=8 --dim seq=1" "prefill:--dim batch=8 --dim seq=2048")
	fi
	for mesh in model=8 data=2,model=4; do
		for sh in "${shapes[@]}"; do
			what="$m ${sh%%:*} on $mesh"
			# shellcheck disable=SC2086
			if ! plan $m $mesh ${sh#*:}; then
				bad "$what: $(tail -1 "$tmp/plan.err")"
				continue
			fi
			read -r t best fits rest <<<"$(compare)"
			echo "$what: auto $t s, best baseline $best s ($rest)"
			if [ "$fits" != True ]; then
				bad "$what: auto's plan does not fit"
			elif "$py" -c "import sys; sys.exit(not ($t <= $best * (1 + 1e-9)))"; then
				pass=$((pass + 1))
				"$py" -c "import sys; sys.exit(not ($t < 0.99 * $best))" && better=$((better + 1))
			else
				bad "$what: auto $t s is slower than the best baseline $best s"
			fi
		done
	done
done
echo "search: auto strictly better than every baseline in $better cases"
[ "$better" -ge 1 ] || bad "auto never beat the baselines"

# exhaustive where tractable: a 1-layer GPT (9 decision groups)
"$py" "$src/tests/bench/make_llm.py" "$tmp/g1.onnx" --arch gpt --layers 1 --hidden 64 --heads 4 \
	--vocab 128 || bad "make g1"
for mesh in model=4 data=2,model=2; do
	plan_t() { "$bin" plan "$tmp/g1.onnx" --mesh $mesh --dim batch=8 --dim seq=512 --json "$@" |
		"$py" -c "import json,sys; print(json.load(sys.stdin)['step_time_s'])"; }
	a=$(plan_t) e=$(plan_t --strategy exhaustive --budget 10m)
	echo "g1 on $mesh: auto $a s, exhaustive $e s"
	if "$py" -c "import sys; sys.exit(not ($a <= $e * 1.01))"; then
		pass=$((pass + 1))
	else
		bad "g1 on $mesh: auto $a s is not within 1% of exhaustive $e s"
	fi
done

# memory: less than one copy of the weights (the data file's size)
w=$(stat -c %s "$tmp/llama.onnx.data")
hw() { # capacity
	printf '{"name": "small", "peak_flops": {"float32": 6.7e13, "float16": 9.9e14, "bfloat16": 9.9e14},
 "memory_bandwidth": 3.35e12, "memory_capacity": %s, "devices_per_node": 8,
 "intra_node": {"bandwidth": 4.5e11, "latency": 8e-6}, "inter_node": {"bandwidth": 5.0e10, "latency": 2.0e-5}}\n' "$1" \
		>"$tmp/hw.json"
}
hw $((w * 6 / 10))
if plan llama model=8 --dim batch=8 --dim seq=1 --hardware "$tmp/hw.json" &&
	"$py" -c "import json,sys; p=json.load(open('$tmp/plan.json')); sys.exit(not p['fits'])"; then
	echo "llama with $((w * 6 / 10)) bytes per device ($w of weights): a plan that fits"
	pass=$((pass + 1))
else
	bad "llama with 60% of its weights per device: no fitting plan ($(tail -1 "$tmp/plan.err"))"
fi
hw 1000000
plan llama model=8 --dim batch=8 --dim seq=1 --hardware "$tmp/hw.json"
rc=$?
if [ $rc = 2 ] && [ "$(wc -l <"$tmp/plan.err")" = 1 ] && grep -q "no plan found fits" "$tmp/plan.err"; then
	echo "llama with 1 MB per device: $(cat "$tmp/plan.err")"
	pass=$((pass + 1))
else
	bad "llama with 1 MB per device: exit $rc, $(head -2 "$tmp/plan.err")"
fi

# the same seed, the same plan
# (10 minutes of time budget: the search's own stop, not the host's speed)
plan gpt data=2,model=4 --dim batch=8 --dim seq=2048 --seed 7 --budget 10m &&
	cp "$tmp/plan.json" "$tmp/a.json"
plan gpt data=2,model=4 --dim batch=8 --dim seq=2048 --seed 7 --budget 10m
if cmp -s "$tmp/plan.json" "$tmp/a.json"; then pass=$((pass + 1)); else bad "the same seed gave another plan"; fi

# per-layer costing: a 12-layer decoder is costed on copies of 2 and 3
# layers; the best plan's cost, checked on the whole graph, agrees (else the
# log says "per-layer costing gave ..." and the search runs again)
for arch in llama gpt; do
	"$py" "$src/tests/bench/make_llm.py" "$tmp/d6.onnx" --arch $arch --layers 12 --hidden 1024 \
		--heads 16 --kv-heads 4 --vocab 32000 --weights sparse || bad "make d6"
	for mesh in model=8 data=2,model=4 data=8; do
		for sh in "--dim batch=8 --dim seq=1" "--dim batch=4 --dim seq=1024"; do
			# shellcheck disable=SC2086
			"$bin" plan "$tmp/d6.onnx" --mesh $mesh $sh >/dev/null 2>"$tmp/fold.err"
			if grep -q "costed per layer (12 identical blocks" "$tmp/fold.err" &&
				! grep -q "per-layer costing gave" "$tmp/fold.err"; then
				pass=$((pass + 1))
			else
				bad "per-layer costing, $arch on $mesh $sh: $(grep auto: "$tmp/fold.err")"
			fi
		done
	done
done

# ... and where they disagree (ONNXSHARD_TEST_FOLD_SKEW, a test hook, makes
# the per-layer costs wrong), the search runs again on the whole graph and
# gives the plan it gives unfolded: the same step time as a run whose
# whole-graph costs never disagree, on the same seed
"$py" "$src/tests/bench/make_llm.py" "$tmp/d6.onnx" --arch llama --layers 12 --hidden 1024 \
	--heads 16 --kv-heads 4 --vocab 32000 --weights sparse || bad "make d6"
step() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['step_time_s'])" "$1"; }
# (a time budget of 10 minutes: the default stop, not a slow host, ends both)
"$bin" plan "$tmp/d6.onnx" --mesh data=2,model=4 --dim batch=4 --dim seq=1024 --json \
	--budget 10m >"$tmp/f0.json" 2>/dev/null
ONNXSHARD_TEST_FOLD_SKEW=1 "$bin" plan "$tmp/d6.onnx" --mesh data=2,model=4 --dim batch=4 \
	--dim seq=1024 --json --budget 10m >"$tmp/f1.json" 2>"$tmp/fold.err"
if grep -q "per-layer costing gave .*searching the whole graph" "$tmp/fold.err" &&
	[ "$(step "$tmp/f0.json")" = "$(step "$tmp/f1.json")" ]; then
	pass=$((pass + 1))
else
	bad "per-layer costing's fallback: $(grep auto: "$tmp/fold.err" | head -2), $(step "$tmp/f0.json") vs $(step "$tmp/f1.json")"
fi

# --collectives ort: plan and shard agree. The search scores a plan ORT's
# collectives cannot run as not valid; what runs is AllReduce, AllGather and
# AllToAll (a ReduceScatter runs, and is costed, as an AllReduce and a local
# Split), so a ReduceScatter tactic is accepted by plan as by shard.
agree() { # what, then plan's arguments (MODEL first)
	local what=$1 prc src_rc
	shift
	"$bin" plan "$@" --collectives ort --json --quiet >"$tmp/ort.json" 2>"$tmp/ort.err"
	prc=$?
	rm -rf "$tmp/ort.out"
	"$bin" shard "$@" --collectives ort --quiet -o "$tmp/ort.out" >/dev/null 2>"$tmp/ort.serr"
	src_rc=$?
	if [ $prc != $src_rc ] || ! cmp -s "$tmp/ort.err" "$tmp/ort.serr"; then
		bad "ort $what: plan exit $prc ($(cat "$tmp/ort.err")), shard exit $src_rc ($(cat "$tmp/ort.serr"))"
	elif [ $prc = 0 ] && ! "$py" -c "import json,sys; k=json.load(open('$tmp/ort.json'))['comm_bytes_by_kind']
sys.exit(not set(k) <= {'AllReduce', 'AllGather', 'AllToAll'})"; then
		bad "ort $what: the plan needs $(cat "$tmp/ort.json" | "$py" -c "import json,sys; print(json.load(sys.stdin)['comm_bytes_by_kind'])")"
	else
		pass=$((pass + 1))
	fi
}
for s in gpt2 bert llama vit resnet mlp; do
	for mesh in model=4 data=2,model=2; do
		agree "$s on $mesh" "$src/samples/$s.onnx" --mesh $mesh --dim batch=8 --dim seq=64
	done
done
agree "a ReduceScatter tactic" "$src/tests/e2e/models/rs.onnx" --mesh model=2 \
	--strategy "$src/tests/e2e/tactics/rs-q.json"
"$py" - "$tmp/ort.json" "$tmp/ort.out" <<'PY' || bad "ort: the ReduceScatter tactic: not planned as an AllReduce, or not shard's"
import glob, json, sys
import onnx
p = json.load(open(sys.argv[1]))
ops = [n.op_type for f in sorted(glob.glob(sys.argv[2] + "/rank*.onnx")) for n in onnx.load(f).graph.node
       if n.domain == "com.microsoft"]
assert [r["op"] for r in p["reshards"]] == ["ReduceScatter"], p["reshards"]
assert list(p["comm_bytes_by_kind"]) == ["AllReduce"], p["comm_bytes_by_kind"]  # what runs
assert ops == ["AllReduce"] * 2, ops
PY

echo "search: $pass passed, $failn failed"
[ "$failn" = 0 ]
