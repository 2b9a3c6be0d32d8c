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

echo "cli_errors: $pass passed, $failn failed"
[ "$failn" = 0 ]
