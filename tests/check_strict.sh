#!/usr/bin/env bash
# `onnxshard check` holds every rank to the manifest, and split string
# weights are written as their blocks:
# - string initializers split by a tactics file (a [4] weight on data=2, a
#   [2, 4] weight on its columns): each rank holds its block, `check`
#   accepts the directory, and the stitched model gives in ONNX Runtime
#   exactly the strings the source gives (compared as strings, every replica);
# - a rank whose initializer, graph input or graph output is not the block
#   the manifest implies (a whole weight where the plan splits it, a global
#   size where the input is split, a renamed or valued symbolic dim, a name
#   standing for two sizes) is refused with one line naming the rank, the
#   tensor and the dim; an unnamed symbolic dim is accepted; parameters'
#   pieces must divide;
# - ort_worlds.worlds must be the groups over its axes, each in world-rank
#   order, every rank in one world.
set -u
bin=$1
src=$2
e2e=$src/tests/e2e
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0

bad() {
	failn=$((failn + 1))
	echo "FAIL: $*"
}

if [ ! -d "$e2e/node_modules/onnxruntime-node" ]; then
	echo "FAIL: onnxruntime-node missing: run 'npm ci --ignore-scripts' in $e2e"
	exit 1
fi

refuse() { # want-fragment dir
	"$bin" check "$2" >"$tmp/out" 2>"$tmp/err"
	local rc=$? lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" = 2 ] && [ "$lines" = 1 ] && [ ! -s "$tmp/out" ] &&
	   grep -q "^onnxshard: error: .*$1" "$tmp/err"; then
		pass=$((pass + 1))
	else
		bad "check $2 -> exit $rc, $lines lines, want '$1': $(head -3 "$tmp/err")"
	fi
}

accept() { # dir
	if "$bin" check "$1" >"$tmp/out" 2>"$tmp/err" && [ ! -s "$tmp/err" ] &&
	   grep -q '^ok: ' "$tmp/out"; then
		pass=$((pass + 1))
	else
		bad "check $1: $(cat "$tmp/out" "$tmp/err" | head -3)"
	fi
}

shard() { # out model args...
	local out=$1
	shift
	if ! "$bin" shard "$@" -o "$out" -q >"$tmp/out" 2>"$tmp/err"; then
		bad "shard $* : $(head -3 "$tmp/err")"
		return 1
	fi
}

# Edit a copy into $tmp/c: mut DIR PYTHON (on the manifest m and the rank
# models: load(r), save(r, model) refreshing that rank's size and crc32, so
# only the intended fault remains; $MLP is the source mlp.onnx).
mut() {
	rm -rf "$tmp/c"
	cp -r "$1" "$tmp/c"
	"$py" - "$tmp/c" "$2" <<'PY'
import json, os, sys, zlib
import onnx
d = sys.argv[1]
m = json.load(open(d + '/manifest.json'))
def load(r):
    return onnx.load(d + '/rank%d.onnx' % r)
def save(r, model):
    fn = 'rank%d.onnx' % r
    onnx.save(model, d + '/' + fn)
    b = open(d + '/' + fn, 'rb').read()
    m['ranks'][r]['bytes'], m['ranks'][r]['crc32'] = len(b), '%08x' % (zlib.crc32(b) & 0xffffffff)
def dim(v, i):
    return v.type.tensor_type.shape.dim[i]
def find(vs, name):
    return [v for v in vs if v.name == name][0]
exec(sys.argv[2])
json.dump(m, open(d + '/manifest.json', 'w'), indent=1)
PY
}

# ---- split string initializers -------------------------------------------
"$py" - "$tmp/str.onnx" <<'PY' || bad "could not build the string model"
import sys
import onnx
from onnx import helper as H, TensorProto as T

def st(name, dims, vals):
    return H.make_tensor(name, T.STRING, dims, [v.encode() for v in vals])

nodes = [H.make_node('Gather', ['table', 'ids'], ['g'], axis=0),
         H.make_node('Identity', ['w'], ['wo']),
         H.make_node('Concat', ['x', 'w'], ['c'], axis=0),
         H.make_node('Identity', ['w2'], ['w2o'])]
g = H.make_graph(nodes, 'strings',
                 [H.make_tensor_value_info('ids', T.INT64, ['batch']),
                  H.make_tensor_value_info('x', T.STRING, [4])],
                 [H.make_tensor_value_info('g', T.STRING, ['batch']),
                  H.make_tensor_value_info('wo', T.STRING, [4]),
                  H.make_tensor_value_info('c', T.STRING, [8]),
                  H.make_tensor_value_info('w2o', T.STRING, [2, 4])],
                 [st('table', [4], ['alpha', 'beta', 'gamma', 'delta']),
                  st('w', [4], ['w0', 'w1', 'w2', 'w3']),
                  st('w2', [2, 4], ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3'])])
m = H.make_model(g, opset_imports=[H.make_opsetid('', 17)])
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
PY
cat >"$tmp/str.json" <<'EOF'
{"steps": [{"tactic": "data", "axis": "data"},
           {"shard": "w", "dim": 0, "axes": ["data"]},
           {"shard": "w2", "dim": 1, "axes": ["data"]}]}
EOF
s=$tmp/str
if shard "$s" "$tmp/str.onnx" --mesh data=2 --strategy "$tmp/str.json"; then
	accept "$s"
	# each rank's block of w and w2, as the source's slices
	if "$py" - "$s" "$tmp/str.onnx" >"$tmp/cm" 2>&1 <<'PY'; then
import json, sys
import onnx
from onnx import numpy_helper as NH
d, src = sys.argv[1], onnx.load(sys.argv[2])
whole = {t.name: NH.to_array(t) for t in src.graph.initializer}
man = {p['name']: p['sharding'] for p in json.load(open(d + '/manifest.json'))['parameters']}
assert man['w'] == [['data']] and man['w2'] == [[], ['data']], man
for r in (0, 1):
    got = {t.name: NH.to_array(t) for t in onnx.load('%s/rank%d.onnx' % (d, r)).graph.initializer}
    for name, want in (('w', whole['w'][2 * r:2 * r + 2]), ('w2', whole['w2'][:, 2 * r:2 * r + 2])):
        assert got[name].shape == want.shape and (got[name] == want).all(), (r, name, got[name], want)
print('blocks ok')
PY
		pass=$((pass + 1))
	else
		bad "string blocks: $(tail -3 "$tmp/cm")"
	fi
	if "$bin" stitch "$s" -o "$tmp/str-st.onnx" 2>"$tmp/err"; then
		# the source and the stitched model on fixed inputs, strings compared
		# exactly (every replica of every output)
		if NODE_PATH=$e2e/node_modules node - "$tmp/str.onnx" "$tmp/str-st.onnx" >"$tmp/cmp" 2>&1 <<'JS'; then
const ort = require('onnxruntime-node');
(async () => {
  const feeds = { ids: new ort.Tensor('int64', BigInt64Array.from([3n, 0n, 2n, 1n]), [4]),
                  x: new ort.Tensor('string', ['p', 'q', 'r', 's'], [4]) };
  const run = async (f) => (await ort.InferenceSession.create(f)).run(feeds);
  const a = await run(process.argv[2]), b = await run(process.argv[3]);
  const text = (t) => JSON.stringify([t.dims, Array.from(t.data)]);
  let bad = 0, n = 0;
  for (const k of Object.keys(a))
    for (const o of Object.keys(b).filter((o) => o === k || o.startsWith(k + '@replica'))) {
      n++;
      if (text(a[k]) !== text(b[o])) bad++, console.log(`FAIL ${o}: ${text(b[o])}, want ${text(a[k])}`);
    }
  for (const k of Object.keys(a)) if (!b[k]) bad++, console.log(`FAIL ${k}: missing`);
  console.log(`${n} outputs compared`);
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.log(String(e)); process.exit(2); });
JS
			pass=$((pass + 1))
			echo "strings: $(tail -1 "$tmp/cmp")"
		else
			bad "strings in ORT: $(head -5 "$tmp/cmp")"
		fi
	else
		bad "stitch $s: $(head -3 "$tmp/err")"
	fi
	# the whole string weight where the plan splits it
	mut "$s" 'x = load(1); t = find(x.graph.initializer, "w"); del t.dims[:]; t.dims.append(4); t.string_data.extend([b"w0", b"w1"]); save(1, x)'
	refuse "rank1.onnx: rank 1: initializer 'w': dim 0 is 4, want 2 (the manifest's 4 split 2 ways over \[data\])" "$tmp/c"
fi

# ---- block shapes of weights, inputs and outputs --------------------------
mlp=$src/samples/mlp.onnx
export MLP=$mlp
o=$tmp/mlp-megatron
if shard "$o" "$mlp" --mesh model=2 --strategy megatron; then
	accept "$o"
	# rank 1 carries the whole fc1.weight (the source's) where the plan splits it
	mut "$o" 'x = load(1); w = find(onnx.load(os.environ["MLP"]).graph.initializer, "fc1.weight")
find(x.graph.initializer, "fc1.weight").CopyFrom(w); save(1, x)'
	refuse "rank1.onnx: rank 1: initializer 'fc1.weight': dim 0 is 256, want 128 (the manifest's 256 split 2 ways over \[model\])" "$tmp/c"
	mut "$o" 'x = load(0); t = find(x.graph.initializer, "fc2.weight"); t.dims.append(1); save(0, x)'
	refuse "rank0.onnx: rank 0: initializer 'fc2.weight' has rank 3, the manifest 2" "$tmp/c"
	# a parameter's pieces must divide (fc1.weight: 256 in 3 pieces of 2 shards)
	mut "$o" 'p = [p for p in m["parameters"] if p["name"] == "fc1.weight"][0]; p["pieces"] = [3, 1]'
	refuse "parameters\[[0-9]*\]: 'fc1.weight': dim 0 (256) does not divide into 3 pieces of 2 shards" "$tmp/c"
	mut "$o" 'm["inputs"][0]["pieces"] = [1, 1]'
	refuse "inputs\[0\]: 'x': a graph input or output has no pieces" "$tmp/c"
fi
o=$tmp/mlp-a2a
cat >"$tmp/cols.json" <<'EOF'
{"steps": [{"tactic": "data", "axis": "data"}, {"shard": "x", "dim": 1, "axes": ["model"]}]}
EOF
if shard "$o" "$mlp" --mesh data=2,model=2 --strategy "$tmp/cols.json"; then
	accept "$o"
	# x: [batch, 64] split [data], [model]: rank 2 declares the global 64
	mut "$o" 'x = load(2); dim(find(x.graph.input, "x"), 1).dim_value = 64; save(2, x)'
	refuse "rank2.onnx: rank 2: graph input 'x': dim 1 is 64, want 32 (the manifest's 64 split 2 ways over \[model\])" "$tmp/c"
	mut "$o" 'x = load(3); dim(find(x.graph.input, "x"), 0).dim_param = "nbatch"; save(3, x)'
	refuse "rank3.onnx: rank 3: graph input 'x': dim 0 is 'nbatch', the manifest's is 'batch'" "$tmp/c"
	mut "$o" 'x = load(1); dim(find(x.graph.output, "y"), 0).dim_value = 4; save(1, x)'
	refuse "rank1.onnx: rank 1: graph output 'y': dim 0 is 4, the manifest's is 'batch'" "$tmp/c"
	# an unnamed (unknown) symbolic dim says nothing wrong
	mut "$o" 'x = load(1); dim(find(x.graph.output, "y"), 0).Clear(); save(1, x)'
	accept "$tmp/c"
	# 'batch' is x's batch split in 2; an output declaring it whole may not use the name
	mut "$o" 'o = [o for o in m["outputs"] if o["name"] == "y"][0]; o["sharding"][0] = []'
	refuse "rank0.onnx: rank 0: graph output 'y': dim 0 is named 'batch', which in this model stands for batch split 2 ways (graph input 'x'), but the manifest's block here is batch whole" "$tmp/c"
fi

# ---- ort_worlds -----------------------------------------------------------
o=$tmp/mlp-ort
if shard "$o" "$mlp" --mesh data=2,model=2 --strategy data,megatron --collectives ort; then
	accept "$o"
	if "$py" -c 'import json, sys; w = json.load(open(sys.argv[1]))["ort_worlds"]
assert w == {"axes": ["model"], "size": 2, "worlds": [[0, 1], [2, 3]]}, w' "$o/manifest.json"; then
		pass=$((pass + 1))
	else
		bad "ort_worlds of $o: $(grep -A8 ort_worlds "$o/manifest.json" | tr -d ' \n')"
	fi
	mut "$o" 'm["ort_worlds"]["worlds"] = [[1, 0], [2, 3]]'
	refuse "ort_worlds.worlds\[0\]: should be \[0, 1\] (rank 1's group over the world's axes, in world-rank order)" "$tmp/c"
	mut "$o" 'm["ort_worlds"]["worlds"] = [[0, 2], [1, 3]]'
	refuse "ort_worlds.worlds\[0\]: should be \[0, 1\]" "$tmp/c"
	mut "$o" 'm["ort_worlds"]["worlds"] = [[0, 1], [0, 1]]'
	refuse "ort_worlds.worlds\[1\]: rank 0 is in another world too" "$tmp/c"
	mut "$o" 'm["ort_worlds"]["worlds"] = [[0, 1]]'
	refuse "ort_worlds: worlds should be an array of 2 worlds of 2 ranks" "$tmp/c"
	mut "$o" 'm["ort_worlds"]["worlds"] = [[0, 1], [2, 4]]'
	refuse "ort_worlds.worlds\[1\]: entry 1 is not a rank below 4" "$tmp/c"
	# the list's order is no part of a world
	mut "$o" 'm["ort_worlds"]["worlds"] = [[2, 3], [0, 1]]'
	accept "$tmp/c"
fi
o=$tmp/mlp-megatron
if [ -d "$o" ]; then
	mut "$o" 'm["ort_worlds"] = {"axes": ["model"], "size": 2, "worlds": [[0, 1]]}'
	refuse "ort_worlds without com.microsoft collectives" "$tmp/c"
fi

echo "check_strict: $pass passed, $failn failed"
[ "$failn" = 0 ]
