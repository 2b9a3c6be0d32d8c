#!/usr/bin/env bash
# `onnxshard check` and `onnxshard stitch` on the example output directories
# (tests/fixtures/examples: hand-made output directories, each verified):
# check accepts them and refuses corrupted copies with exit 2 and one line;
# each example stitched into one model computes what its source.onnx does in
# ONNX Runtime. Synthetic output directories add what the examples lack
# (If subgraphs, opset 18, a 2-D mesh, com.microsoft collectives, rank
# external data). Missing examples or tools are a failure, never a skip.
set -u
bin=$1
src=$2
ex=$src/tests/fixtures/examples
e2e=$src/tests/e2e
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0

bad() {
	failn=$((failn + 1))
	echo "FAIL: $*"
}

if [ ! -f "$ex/mlp-allreduce-data2-model2/manifest.json" ]; then
	echo "FAIL: no examples at $ex"
	exit 1
fi
if [ ! -d "$e2e/node_modules/onnxruntime-node" ]; then
	echo "FAIL: onnxruntime-node missing: run 'npm ci --ignore-scripts' in $e2e"
	exit 1
fi

refuse() { # want-fragment args...
	local want=$1
	shift
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$? lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" = 2 ] && [ "$lines" = 1 ] && [ ! -s "$tmp/out" ] &&
	   grep -q "^onnxshard: error: .*$want" "$tmp/err"; then
		pass=$((pass + 1))
	else
		bad "onnxshard $* -> exit $rc, $lines lines, want '$want': $(head -3 "$tmp/err")"
	fi
}

accept_check() { # dir
	if "$bin" check "$1" >"$tmp/out" 2>"$tmp/err" && [ ! -s "$tmp/err" ] &&
	   grep -q '^ok: [0-9]* ranks, [0-9]* collectives, [0-9]* bytes$' "$tmp/out"; then
		pass=$((pass + 1))
	else
		bad "onnxshard check $1: $(cat "$tmp/out" "$tmp/err" | head -3)"
	fi
}

# stitch DIR, then compare with DIR/source.onnx in ONNX Runtime at the given
# batch size; check_model too unless told "nochecker" (its onnx may predate
# the opset).
stitch_compare() { # dir name batch [nochecker]
	local out=$tmp/stitched/$2.onnx
	mkdir -p "$tmp/stitched"
	if ! "$bin" stitch "$1" -o "$out" >"$tmp/out" 2>"$tmp/err" || [ -s "$tmp/err" ]; then
		bad "onnxshard stitch $1: $(head -3 "$tmp/err")"
		return
	fi
	if node "$e2e/ortcompare.js" "$1/source.onnx" "$out" --dim batch="$3" --replicas-exact >"$tmp/cmp" 2>&1; then
		pass=$((pass + 1))
		echo "$2: $(tr '\n' ' ' <"$tmp/cmp")"
	else
		bad "ortcompare $2: $(head -5 "$tmp/cmp")"
	fi
	if [ "${4:-}" != nochecker ]; then
		if "$py" "$e2e/check_model.py" "$out" >"$tmp/cm" 2>&1; then
			pass=$((pass + 1))
		else
			bad "check_model $2: $(head -3 "$tmp/cm")"
		fi
	fi
}

# Edit a copy: mut CMD DIR ARGS... (the manifest's sizes and crc32 follow
# every rank file changed, so only the intended fault remains).
mut() {
	"$py" - "$@" <<'PY'
import json, sys, zlib
import onnx
from onnx import helper
cmd, d = sys.argv[1], sys.argv[2]
m = json.load(open(d + '/manifest.json'))
def refresh(fn):
    b = open(d + '/' + fn, 'rb').read()
    for r in m['ranks']:
        if r['model'] == fn:
            r['bytes'], r['crc32'] = len(b), '%08x' % (zlib.crc32(b) & 0xffffffff)
if cmd == 'json':           # json DIR STATEMENT (on the manifest m)
    exec(sys.argv[3])
elif cmd == 'flip':         # flip DIR FILE OFFSET: one byte inverted, crc32 kept
    p = d + '/' + sys.argv[3]
    b = bytearray(open(p, 'rb').read())
    b[int(sys.argv[4])] ^= 0xff
    open(p, 'wb').write(bytes(b))
elif cmd in ('attr', 'drop'):  # attr DIR FILE NODE NAME JSON | drop DIR FILE NODE
    fn, name = sys.argv[3], sys.argv[4]
    model = onnx.load(d + '/' + fn)
    for i, n in enumerate(model.graph.node):
        if n.name != name:
            continue
        if cmd == 'drop':
            model.graph.node[i].CopyFrom(helper.make_node('Identity', n.input, n.output, name=name))
        else:
            a = [x for x in n.attribute if x.name != sys.argv[5]]
            del n.attribute[:]
            n.attribute.extend(a + [helper.make_attribute(sys.argv[5], json.loads(sys.argv[6]))])
    onnx.save(model, d + '/' + fn)
    refresh(fn)
json.dump(m, open(d + '/manifest.json', 'w'), indent=1)
PY
}

fresh() { # example -> $tmp/c, writable
	rm -rf "$tmp/c"
	cp -r "$ex/$1" "$tmp/c"
	chmod -R u+w "$tmp/c"
}

n_ex=0
for d in "$ex"/*/; do
	[ -f "$d/manifest.json" ] || continue
	n_ex=$((n_ex + 1))
	accept_check "$d"
	stitch_compare "$d" "$(basename "$d")" 8
done
[ "$n_ex" -ge 4 ] || bad "only $n_ex examples in $ex, want the four of its README"

c=$tmp/c
fresh matmul-allgather-model4
accept_check "$c/"
mut flip "$c" rank1.onnx 100
refuse "$c/rank1.onnx: crc32 [0-9a-f]*, the manifest says" check "$c"
refuse "$c/rank1.onnx: crc32" stitch "$c" -o "$tmp/x.onnx"
if [ -e "$tmp/x.onnx" ] || [ -e "$tmp/x.onnx.tmp" ]; then bad "stitch left a file behind on error"; fi
fresh matmul-allgather-model4
head -c 700 "$ex/matmul-allgather-model4/rank2.onnx" >"$c/rank2.onnx"
refuse "rank2.onnx: 700 bytes, the manifest says 722" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'del m["world_size"]'
refuse "manifest.json: missing field 'world_size'" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'del m["ranks"][2]["crc32"]'
refuse "manifest.json: rank 2: missing field 'crc32'" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'm["world_size"] = 8'
refuse "world_size is 8, the mesh has 4 ranks" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'del m["ranks"][3]'
refuse "ranks: no entry for rank 3" check "$c"
fresh matmul-allgather-model4
rm "$c/rank3.onnx"
refuse "$c/rank3.onnx: No such file" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'm["ranks"][1]["coords"] = [2]'
refuse "ranks\[1\]: coords should be rank 1's row-major coords \[1\]" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'm["outputs"][0]["sharding"][1] = ["data"]'
refuse "outputs\[0\]: 'y': sharding\[1\] names 'data', not a mesh axis" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'm["ranks"][0]["model"] = "../matmul-allgather-model4/rank0.onnx"'
refuse "model '../matmul-allgather-model4/rank0.onnx' is not a plain file name" check "$c"
fresh matmul-allgather-model4
mut json "$c" 'm["version"] = 2'
refuse "manifest.json: version 2" check "$c"
fresh matmul-allgather-model4
echo '{"format": ' >"$c/manifest.json"
refuse "manifest.json: line 2: " check "$c"
fresh matmul-allgather-model4
mv "$c/rank1.onnx" "$tmp/rank1.onnx"
ln -s "$tmp/rank1.onnx" "$c/rank1.onnx"
refuse "$c/rank1.onnx: is a symlink" check "$c"
fresh matmul-allgather-model4
mut drop "$c" rank2.onnx ag0
refuse "$c/rank2.onnx: collective 'ag0' (AllGather, group \[0, 1, 2, 3\] on rank0.onnx) is missing" check "$c"
fresh matmul-allgather-model4
mut attr "$c" rank3.onnx ag0 axis 0
refuse "$c/rank3.onnx: collective 'ag0': axis differs from rank0.onnx's" check "$c"
fresh matmul-allgather-model4
mut attr "$c" rank1.onnx ag0 mesh_axes '["data"]'
refuse "rank1.onnx: node 'ag0' (AllGather): mesh_axes names 'data', not a mesh axis" check "$c"
fresh matmul-allgather-model4
mut attr "$c" rank1.onnx ag0 bogus 1
refuse "rank1.onnx: node 'ag0' (AllGather): unexpected attribute 'bogus'" check "$c"
fresh mlp-allreduce-data2-model2
mut attr "$c" rank1.onnx ar0 group '[1, 2]'
refuse "rank1.onnx: node 'ar0' (AllReduce): group \[1, 2\] should be \[0, 1\]" check "$c"
fresh mlp-allreduce-data2-model2
mut attr "$c" rank1.onnx ar0 group '[2, 3]'
refuse "rank1.onnx: node 'ar0' (AllReduce): group \[2, 3\] does not contain this rank (1)" check "$c"
fresh mlp-allreduce-data2-model2
mut attr "$c" rank2.onnx ar0 group '[2, 3, 0, 1]'
refuse "rank2.onnx: node 'ar0' (AllReduce): group \[2, 3, 0, 1\] has 4 ranks, mesh_axes span 2" check "$c"
fresh mlp-allreduce-data2-model2
mut attr "$c" rank0.onnx ar0 reduce '"mean"'
refuse "rank0.onnx: node 'ar0' (AllReduce): needs string attribute 'reduce'" check "$c"
refuse "no such dir: No such file" check "$tmp/no such dir"
refuse "check needs exactly one output directory" check
refuse "stitch needs -o FILE" stitch "$ex/matmul-allgather-model4"
refuse "unknown option" check --bogus "$c"

# Synthetic directories: a 2-D mesh (an input, a parameter and an output
# split on [model, data], an output on [data] x [model], If branches reading
# outer values, ReduceMax + AllReduce(max)) at opsets 17 and 18, rank
# weights in external data; and com.microsoft collectives.
"$py" - "$tmp/gen" <<'PY' || bad "could not build the synthetic directories"
import json, os, sys, zlib
import numpy as np
import onnx
from onnx import helper as H, TensorProto as T, numpy_helper as NH

rng = np.random.default_rng(0)

def vi(name, dt, shape):
    return H.make_tensor_value_info(name, dt, shape)

def crc(path):
    b = open(path, 'rb').read()
    return len(b), '%08x' % (zlib.crc32(b) & 0xffffffff)

def save_dir(out, source, ranks, man, external=False):
    os.makedirs(out)
    onnx.save(source, out + '/source.onnx')
    entries = []
    for r, (coords, m) in enumerate(ranks):
        fn, ext = 'rank%d.onnx' % r, []
        if external:
            onnx.save(m, out + '/' + fn, save_as_external_data=True, location=fn + '.data',
                      size_threshold=1024)
            b, c = crc(out + '/' + fn + '.data')
            ext.append({'file': fn + '.data', 'bytes': b, 'crc32': c})
        else:
            onnx.save(m, out + '/' + fn)
        b, c = crc(out + '/' + fn)
        entries.append({'rank': r, 'coords': coords, 'model': fn, 'bytes': b, 'crc32': c,
                        'external_data': ext})
    b, c = crc(out + '/source.onnx')
    man = dict(format='onnxshard-manifest', version=1, generator='test_stitch.sh',
               source={'file': 'source.onnx', 'bytes': b, 'crc32': c}, **man, ranks=entries,
               plan={'strategy': 'manual', 'step_time_s': 0.0, 'peak_memory_bytes': [0] * 4,
                     'comm_bytes': 0})
    json.dump(man, open(out + '/manifest.json', 'w'), indent=1)

def model(g, opsets, ir):
    m = H.make_model(g, opset_imports=[H.make_opsetid(d, v) for d, v in opsets])
    m.ir_version = ir
    return m

def tensor(name, dtype, shape, sharding):
    return {'name': name, 'dtype': dtype, 'shape': shape, 'sharding': sharding}

def mesh2d(out, opset):
    W = rng.standard_normal((16, 32)).astype(np.float32)
    P = rng.standard_normal((16, 8)).astype(np.float32)
    def graph(w, pb, group):
        then_g = H.make_graph([H.make_node('Identity', ['h'], ['t'])], 'then', [], [vi('t', T.FLOAT, None)])
        else_g = H.make_graph([H.make_node('Neg', ['h'], ['e'])], 'else', [], [vi('e', T.FLOAT, None)])
        nodes = [H.make_node('MatMul', ['x', 'w'], ['h']),
                 H.make_node('If', ['c'], ['y'], then_branch=then_g, else_branch=else_g),
                 H.make_node('Relu', ['x2'], ['x2r']), H.make_node('Mul', ['x2r', 'p'], ['v'])]
        inits = [NH.from_array(w, 'w'), NH.from_array(pb, 'p')]
        if opset >= 18:
            nodes.append(H.make_node('ReduceMax', ['x', 'ax'], ['mloc'], keepdims=1))
            inits.append(NH.from_array(np.array([0], np.int64), 'ax'))
        else:
            nodes.append(H.make_node('ReduceMax', ['x'], ['mloc'], axes=[0], keepdims=1))
        if group:
            nodes.append(H.make_node('AllReduce', ['mloc'], ['m'], name='armax', domain='onnxshard',
                                     group=group, mesh_axes=['data'], reduce='max'))
        else:
            nodes.append(H.make_node('Identity', ['mloc'], ['m']))
        # a rank declares its block of x2 (DESIGN.md: local shapes)
        return H.make_graph(nodes, 'g', [vi('x', T.FLOAT, ['batch', 16]), vi('c', T.BOOL, []),
                                         vi('x2', T.FLOAT, [4 if group else 16, 8])],
                            [vi('y', T.FLOAT, None), vi('v', T.FLOAT, None), vi('m', T.FLOAT, None)], inits)
    # rank r = (data, model): w's columns by model; p's rows by [model, data],
    # block model * 2 + data (the shard index, computed here independently)
    ranks = [([r // 2, r % 2], model(graph(W[:, r % 2 * 16:r % 2 * 16 + 16].copy(),
                                           P[(r % 2 * 2 + r // 2) * 4:][:4].copy(), [r % 2, 2 + r % 2]),
                                     [('', opset), ('onnxshard', 1)], 8)) for r in range(4)]
    man = dict(mesh={'axes': [{'name': 'data', 'size': 2}, {'name': 'model', 'size': 2}]}, world_size=4,
               collective_domain='onnxshard',
               inputs=[tensor('x', 'float32', ['batch', 16], [['data'], []]), tensor('c', 'bool', [], []),
                       tensor('x2', 'float32', [16, 8], [['model', 'data'], []])],
               outputs=[tensor('y', 'float32', ['batch', 32], [['data'], ['model']]),
                        tensor('v', 'float32', [16, 8], [['model', 'data'], []]),
                        tensor('m', 'float32', [1, 16], [[], []])],
               parameters=[{'name': 'w', 'shape': [16, 32], 'sharding': [[], ['model']]},
                           {'name': 'p', 'shape': [16, 8], 'sharding': [['model', 'data'], []]}])
    save_dir(out, model(graph(W, P, None), [('', opset)], 8), ranks, man, external=True)

def ort(out):
    W = rng.standard_normal((16, 32)).astype(np.float32)
    W2 = rng.standard_normal((16, 8)).astype(np.float32)
    def graph(w, w2, ms):
        def coll(op, i, o, **kw):
            if ms:
                return H.make_node(op, [i], [o], name=o + '_c', domain='com.microsoft', **kw)
            return H.make_node('Identity', [i], [o])
        nodes = [H.make_node('MatMul', ['x', 'w'], ['h']), coll('AllGather', 'h', 'y', axis=1, group_size=4),
                 H.make_node('MatMul', ['x2', 'w2'], ['p']), coll('AllReduce', 'p', 'z'),
                 coll('AllToAll', 'x3', 'xt', group_size=4),
                 H.make_node('ReduceSum', ['xt', 'ax'], ['sl'], keepdims=1), coll('AllReduce', 'sl', 's')]
        # rank shapes are local: x2's columns split; x3's rows split, so
        # its dim 0 is not the whole 'batch' of x (left unnamed)
        shapes = [['batch', 16], ['batch', 4], [None, 16]] if ms else [['batch', 16]] * 3
        return H.make_graph(nodes, 'g', [vi(n, T.FLOAT, sh) for n, sh in zip(('x', 'x2', 'x3'), shapes)],
                            [vi('y', T.FLOAT, None), vi('z', T.FLOAT, None), vi('s', T.FLOAT, None)],
                            [NH.from_array(w, 'w'), NH.from_array(w2, 'w2'),
                             NH.from_array(np.array([0], np.int64), 'ax')])
    ranks = [([r], model(graph(W[:, r * 8:r * 8 + 8].copy(), W2[r * 4:r * 4 + 4].copy(), True),
                         [('', 17), ('com.microsoft', 1)], 8)) for r in range(4)]
    man = dict(mesh={'axes': [{'name': 'model', 'size': 4}]}, world_size=4, collective_domain='com.microsoft',
               inputs=[tensor('x', 'float32', ['batch', 16], [[], []]),
                       tensor('x2', 'float32', ['batch', 16], [[], ['model']]),
                       tensor('x3', 'float32', ['batch', 16], [['model'], []])],
               outputs=[tensor('y', 'float32', ['batch', 32], [[], []]),
                        tensor('z', 'float32', ['batch', 8], [[], []]),
                        tensor('s', 'float32', [1, 16], [[], []])],
               parameters=[])
    save_dir(out, model(graph(W, W2, False), [('', 17)], 8), ranks, man)

root = sys.argv[1]
mesh2d(root + '/mesh2d-opset17', 17)
mesh2d(root + '/mesh2d-opset18', 18)
ort(root + '/ort-model4')
PY
accept_check "$tmp/gen/mesh2d-opset17"
stitch_compare "$tmp/gen/mesh2d-opset17" mesh2d-opset17 8
accept_check "$tmp/gen/mesh2d-opset18"
stitch_compare "$tmp/gen/mesh2d-opset18" mesh2d-opset18 8 nochecker
accept_check "$tmp/gen/ort-model4" # ORT's AllToAll splits a rank's 8 rows in 4
stitch_compare "$tmp/gen/ort-model4" ort-model4 32
# ONNX Runtime's schemas: AllReduce has no attribute, AllGather axis
# (default 1) and group_size, AllToAll group_size; nothing else loads.
o=$tmp/gen/ort-model4
if "$py" "$src/tests/ort_schema.py" "$src/tests/fixtures/ort_collectives.json" "$o"/rank*.onnx >"$tmp/cm" 2>&1; then
	pass=$((pass + 1))
else
	bad "ort_schema ort-model4: $(grep FAIL "$tmp/cm" | head -2)"
fi
ortmut() { # desc want-fragment node attr json
	rm -rf "$tmp/o2"
	cp -r "$o" "$tmp/o2"
	mut attr "$tmp/o2" rank2.onnx "$2" "$3" "$4"
	refuse "$1" check "$tmp/o2"
}
ortmut "rank2.onnx: node 'z_c' (AllReduce): unexpected attribute 'group_size'" z_c group_size 4
ortmut "rank2.onnx: node 'z_c' (AllReduce): unexpected attribute 'reduce'" z_c reduce '"sum"'
ortmut "rank2.onnx: node 'y_c' (AllGather): unexpected attribute 'mesh_axes'" y_c mesh_axes '["model"]'
ortmut "rank2.onnx: node 'y_c' (AllGather): group_size is 2, want the ORT world's size 4" y_c group_size 2
ortmut "rank2.onnx: node 'xt_c' (AllToAll): unexpected attribute 'split_axis'" xt_c split_axis 0
# AllGather's axis defaults to 1: dropped on every rank, the same model
rm -rf "$tmp/o2"
cp -r "$o" "$tmp/o2"
"$py" - "$tmp/o2" <<'PY'
import json, sys, zlib
import onnx
d = sys.argv[1]
m = json.load(open(d + '/manifest.json'))
for r in m['ranks']:
    model = onnx.load(d + '/' + r['model'])
    for n in model.graph.node:
        if n.op_type == 'AllGather':
            keep = [a for a in n.attribute if a.name != 'axis']
            del n.attribute[:]
            n.attribute.extend(keep)
    onnx.save(model, d + '/' + r['model'])
    b = open(d + '/' + r['model'], 'rb').read()
    r['bytes'], r['crc32'] = len(b), '%08x' % (zlib.crc32(b) & 0xffffffff)
json.dump(m, open(d + '/manifest.json', 'w'), indent=1)
PY
accept_check "$tmp/o2"
stitch_compare "$tmp/o2" ort-model4-default-axis 32
g=$tmp/gen/mesh2d-opset17
cp -r "$g" "$tmp/g2"
mut flip "$tmp/g2" rank0.onnx.data 10
refuse "g2/rank0.onnx.data: crc32" check "$tmp/g2"
mut json "$tmp/g2" 'm["ranks"][0]["external_data"] = []'
refuse "g2/rank0.onnx: external data file 'rank0.onnx.data' is not in the manifest" check "$tmp/g2"
mut json "$g" 'm["collective_domain"] = "com.microsoft"'
refuse "node 'armax' (AllReduce): collective in domain 'onnxshard', the manifest's collective_domain is 'com.microsoft'" check "$g"

echo "test_stitch: $pass passed, $failn failed"
[ "$failn" = 0 ]
