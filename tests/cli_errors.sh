#!/usr/bin/env bash
# The command refuses bad input with exit 2 and exactly one line
# "onnxshard: error: FILE: ..." on stderr, and nothing on stdout.
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0
model=/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx

refuse() { # want-fragment args...
	local want=$1
	shift
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	local lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" = 2 ] && [ "$lines" = 1 ] && [ ! -s "$tmp/out" ] &&
	   grep -q "^onnxshard: error: .*$want" "$tmp/err"; then
		pass=$((pass + 1))
	else
		failn=$((failn + 1))
		echo "FAIL: onnxshard $* -> exit $rc, $lines lines: $(head -3 "$tmp/err")"
	fi
}

accept() {
	if "$bin" "$@" >"$tmp/out" 2>"$tmp/err" && [ ! -s "$tmp/err" ]; then
		pass=$((pass + 1))
	else
		failn=$((failn + 1))
		echo "FAIL: onnxshard $* should succeed: $(head -3 "$tmp/err")"
	fi
}

accept inspect "$model"
accept inspect --json "$model"
accept --version
accept --help
gzip -c "$model" >"$tmp/m.onnx.gz"
accept inspect "$tmp/m.onnx.gz"

refuse "no command given"
refuse "unknown command 'frobnicate'" frobnicate
refuse "inspect needs exactly one MODEL" inspect
refuse "unknown option" inspect --bogus "$model"
refuse "$tmp/none.onnx: No such file" inspect "$tmp/none.onnx"
refuse "$tmp: is a directory" inspect "$tmp"
: >"$tmp/empty.onnx"
refuse "empty.onnx: empty file" inspect "$tmp/empty.onnx"
printf 'ir_version: 8\ngraph { node { op_type: "Relu" } }\n' >"$tmp/text.onnx"
refuse "text.onnx: " inspect "$tmp/text.onnx"
head -c 5000 /dev/urandom >"$tmp/random.onnx"
refuse "random.onnx: " inspect "$tmp/random.onnx"
head -c 200 "$tmp/m.onnx.gz" >"$tmp/cut.onnx.gz"
refuse "cut.onnx.gz: bad gzip stream" inspect "$tmp/cut.onnx.gz"
size=$(stat -c %s "$model")
for ((n = 1; n < size; n += 37)); do
	head -c $n "$model" >"$tmp/trunc.onnx"
	refuse "trunc.onnx: " inspect "$tmp/trunc.onnx"
done

# limits and their option values (shard, plan and inspect)
gpt2=$src/samples/gpt2.onnx
refuse "gpt2.onnx: 509768 bytes, more than 102400 (--max-model-bytes)" \
	inspect "$gpt2" --max-model-bytes 100k
refuse "gpt2.onnx: 479 nodes, more than 10 (--max-nodes)" inspect "$gpt2" --max-nodes 10
# within the limit on disk, past it inflated
gz=$(stat -c %s "$tmp/m.onnx.gz")
refuse "m.onnx.gz: gzip stream inflates past $gz bytes (--max-model-bytes)" \
	inspect "$tmp/m.onnx.gz" --max-model-bytes "$gz"
refuse "gpt2.onnx: 479 nodes, more than 478 (--max-nodes)" \
	plan "$gpt2" --mesh data=2 --max-nodes 478
refuse "gpt2.onnx: .* (--max-model-bytes)" shard "$gpt2" --mesh data=2 -o "$tmp/o" \
	--max-model-bytes 1M --max-nodes 1000 --max-model-bytes 4096
[ -e "$tmp/o" ] && { failn=$((failn + 1)); echo "FAIL: a refused shard left $tmp/o"; }
accept inspect "$gpt2" --max-model-bytes 1M --max-nodes 479
for v in 0 -1 2x 1e3 inf 0.1ms abc " 2s"; do
	refuse "--budget: '$v' is not a duration" shard "$gpt2" --mesh data=2 --budget "$v"
done
for v in 0 -1 1x 12Q 16000000000T " 1M"; do
	refuse "--max-model-bytes: '$v' is not a size" inspect "$gpt2" --max-model-bytes "$v"
done
for v in 0 -1 1x 5000000000 " 9"; do
	refuse "--max-nodes: '$v' is not a positive number" plan "$gpt2" --mesh data=2 --max-nodes "$v"
done

# each command's own help: its usage line, not the list of every command
for c in shard plan inspect analyze check stitch; do
	if "$bin" "$c" --help >"$tmp/out" 2>"$tmp/err" && [ ! -s "$tmp/err" ] &&
	   head -1 "$tmp/out" | grep -q "^usage: onnxshard $c " &&
	   ! grep -q '^commands:' "$tmp/out"; then
		pass=$((pass + 1))
	else
		failn=$((failn + 1))
		echo "FAIL: onnxshard $c --help: $(head -2 "$tmp/out")"
	fi
done
grep -q -- '--quiet .*no progress or warnings' <("$bin" plan --help) &&
	grep -q "the plan's summary still" <("$bin" plan --help) ||
	{ failn=$((failn + 1)); echo "FAIL: plan --help does not say what --quiet keeps"; }
"$bin" shard --help | grep -q -- '--mesh data=2,model=4' ||
	{ failn=$((failn + 1)); echo "FAIL: shard --help has no options"; }

# -o in a folder that does not exist, and a bad --external-data: refused
# before the model is read (a model that does not exist is not named)
refuse "$tmp/no/such/out: its folder $tmp/no/such does not exist" \
	shard "$tmp/none.onnx" --mesh data=2 -o "$tmp/no/such/out"
refuse "--external-data 'sometimes': want auto, always or never" \
	shard "$tmp/none.onnx" --mesh data=2 -o "$tmp/o2" --external-data sometimes
[ -e "$tmp/o2" ] && { failn=$((failn + 1)); echo "FAIL: a refused shard left $tmp/o2"; }

# a tactic the user named that splits nothing it targets: refused with the numbers
mlp=$src/samples/mlp.onnx
refuse "--strategy data: batch 8 does not divide by data=3" \
	shard "$mlp" --mesh data=3 --dim batch=8 --strategy data -o "$tmp/o3"
grep -qx 'onnxshard: error: --strategy data: batch 8 does not divide by data=3' "$tmp/err" ||
	{ failn=$((failn + 1)); echo "FAIL: data=3: $(cat "$tmp/err")"; }
[ -e "$tmp/o3" ] && { failn=$((failn + 1)); echo "FAIL: a refused shard left $tmp/o3"; }
refuse "--strategy data: batch 8 does not divide by data=3" \
	plan "$mlp" --mesh data=3 --dim batch=8 --strategy data,auto
# (a vocabulary or heads that do not divide are padded: GPT-2 on model=3
# splits its LM head; an MLP's features are not)
refuse "--strategy megatron: nothing splits over model=3: 'fc1.weight': output features 256 do not divide by model=3" \
	plan "$src/samples/mlp.onnx" --mesh model=3 --dim batch=8 --strategy megatron
# ... but auto and the baselines keep replicating what does not divide
accept plan "$mlp" --mesh data=3 --dim batch=8 --quiet
grep -q 'batch 8, 1 tensor like x\[0\]: whole (batch 8 does not divide by data=3)' "$tmp/out" ||
	{ failn=$((failn + 1)); echo "FAIL: auto on data=3: $(grep batch "$tmp/out")"; }
# megatron that splits some: says what it split and what not, with numbers
"$bin" plan "$gpt2" --mesh model=2 --dim batch=8 --dim seq=16 --strategy megatron \
	>/dev/null 2>"$tmp/err"
grep -q '^megatron on model: split [1-9][0-9]* column-parallel linears (1 LM head among them) and 1 embedding$' "$tmp/err" ||
	{ failn=$((failn + 1)); echo "FAIL: megatron's line: $(cat "$tmp/err")"; }

# emission's own refusals keep their diagnostic (once overwritten by "out of
# memory"): a scatter-add split over its updates masks its data, which has no
# dtype to make a zero of (tests/fixtures/untyped-scatter-add.onnx: D and U
# untyped, Y = ScatterElements(D, I, U, reduction=add))
refuse "untyped-scatter-add.onnx: value 'D' has no known dtype: it cannot be masked into a share of a pending sum" \
	shard "$src/tests/fixtures/untyped-scatter-add.onnx" --mesh data=2 --strategy data \
	--dim E=4 --quiet -o "$tmp/untyped"
[ -e "$tmp/untyped" ] && { failn=$((failn + 1)); echo "FAIL: a refused shard left $tmp/untyped"; }
# ORT's collectives span one world: sums over model (h) and data (p) cannot run
printf '%s\n' '{"steps": [{"shard": "x", "dim": 1, "axes": ["model"]},' \
	'{"shard": "W1", "dim": 1, "axes": ["data"]}, {"replicate": "p"}]}' >"$tmp/two-axes.json"
refuse "--collectives ort: the plan has collectives over different mesh axes; ONNX Runtime's span one world (one group of axes)" \
	shard "$src/tests/e2e/models/rs.onnx" --mesh data=2,model=2 \
	--strategy "$tmp/two-axes.json" --collectives ort --quiet -o "$tmp/rs"
[ -e "$tmp/rs" ] && { failn=$((failn + 1)); echo "FAIL: a refused shard left $tmp/rs"; }

# unbound symbolic dims: one warning line naming them and the --dim to pass
"$bin" plan "$gpt2" --mesh data=2 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ] && [ "$(grep -c 'warning' "$tmp/err")" = 1 ] &&
   grep -q '^onnxshard: warning: symbolic dims not bound, counted as 1 in the plan.s times and sizes: batch, seq; pass --dim batch=N --dim seq=N$' "$tmp/err"; then
	pass=$((pass + 1))
else
	failn=$((failn + 1))
	echo "FAIL: the unbound-dims warning (exit $rc): $(cat "$tmp/err")"
fi
"$bin" plan "$gpt2" --mesh data=2 --dim batch=8 --dim seq=16 >/dev/null 2>"$tmp/err"
grep -q warning "$tmp/err" && { failn=$((failn + 1)); echo "FAIL: a warning with every dim bound"; }
"$bin" plan "$gpt2" --mesh data=2 --quiet >/dev/null 2>"$tmp/err"
[ -s "$tmp/err" ] && { failn=$((failn + 1)); echo "FAIL: --quiet printed $(cat "$tmp/err")"; }

echo "cli_errors: $pass passed, $failn failed"
[ "$failn" = 0 ]
