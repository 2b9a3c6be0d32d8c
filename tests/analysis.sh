#!/usr/bin/env bash
# The dimension-class analysis (`onnxshard analyze`): class, conflict and
# group counts of the samples, Q·Kᵀ conflicts, decision groups that do not
# grow with the depth of a generated decoder, JSON that parses, exit codes.
#   analysis.sh ONNXSHARD SRCDIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

# counts: MODEL CLASSES DECISION_CLASSES GROUPS CONFLICT_SETS
expect() {
	"$bin" analyze "$src/samples/$1.onnx" --json >"$tmp/$1.json" || fail "$1: analyze --json"
	got=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["n_classes"], len(r["classes"]), len(r["groups"]), r["decisions_before"]["conflicts"])
' "$tmp/$1.json")
	[ "$got" = "$2 $3 $4 $5" ] || fail "$1: classes, decision classes, groups, conflict sets: $got, expected $2 $3 $4 $5"
	"$bin" analyze "$src/samples/$1.onnx" >"$tmp/$1.txt" || fail "$1: analyze"
	grep -q "^groups: $4 decision groups of $3 classes" "$tmp/$1.txt" || fail "$1: text groups"
}
expect mlp 4 4 4 0
expect gpt2 21 11 8 2
expect llama 36 15 10 1
expect bert 22 12 9 2
expect resnet 23 19 13 0
expect vit 25 15 12 2

# Q·Kᵀ: the scores' two seq dims are one class
grep -q '^  /h.0/attn/MatMul: /h.0/attn/MatMul_output_0 dims 2,3 in class' "$tmp/gpt2.txt" ||
	fail "gpt2: no Q·Kᵀ conflict"
grep -q '^  /layers.1/self_attn/MatMul: .* dims 2,3' "$tmp/llama.txt" || fail "llama: no Q·Kᵀ conflict"
# the fused QKV output and c_proj's input are one class; layers share groups
grep -qE '^  4 +64 .*h.0.attn.c_proj.weight\[0\]' "$tmp/gpt2.txt" || fail "gpt2: q,k,v,o class"

# deeper decoders: as many decision groups at 2, 8 and 32 layers
for n in 2 8 32; do
	/usr/bin/python3 "$src/tests/make_decoder.py" "$tmp/dec$n.onnx" $n
	"$bin" analyze "$tmp/dec$n.onnx" --json >"$tmp/dec$n.json" || fail "dec$n: analyze"
done
/usr/bin/python3 - "$tmp" <<'PY' || fail "decision groups grow with depth"
import json, sys
rs = {n: json.load(open(f"{sys.argv[1]}/dec{n}.json")) for n in (2, 8, 32)}
for n, r in rs.items():
    print(f"dec{n}: classes {r['n_classes']}, decision classes {len(r['classes'])}, "
          f"conflicts {len(r['conflicts'])}, groups {len(r['groups'])}, "
          f"10^{r['decisions_before']['log10']} -> 10^{r['decisions_after']['log10']}")
g = {len(r["groups"]) for r in rs.values()}
a = {r["decisions_after"]["log10"] for r in rs.values()}
assert len(g) == 1 and len(a) == 1, (g, a)
assert len(rs[32]["classes"]) > len(rs[2]["classes"])
# every group seeds the search: initializer or graph-input slots
assert all(gr["seeds"] for gr in rs[32]["groups"])
# q,k,v,o of one layer: one class (fused QKV Split), c_fc another
PY

# what the plan decided (plan.decisions_made): a Llama-shaped decoder with
# grouped K/V (8 query heads, 4 KV heads) under megatron on model=8: the
# query heads, ffn and vocabulary split over model, the 4 KV heads padded
# over model; a pure data plan on data=2: only the batch
/usr/bin/python3 "$src/tests/bench/make_llm.py" "$tmp/dl.onnx" --arch llama --layers 3 \
	--hidden 512 --heads 8 --kv-heads 4 --ffn 1024 --vocab 1000 --weights sparse >/dev/null
"$bin" plan "$tmp/dl.onnx" --mesh model=8 --dim batch=1 --dim seq=1 --strategy megatron \
	--json --quiet >"$tmp/dm.json" || fail "decisions: plan megatron"
"$bin" plan "$tmp/dl.onnx" --mesh data=2 --dim batch=8 --dim seq=16 --strategy data \
	--json --quiet >"$tmp/dd.json" || fail "decisions: plan data"
"$bin" plan "$tmp/dl.onnx" --mesh model=4 --dim batch=1 --dim seq=1 --json --quiet \
	--hardware "$src/tests/fixtures/hw-slow-compute.json" >"$tmp/da.json" || fail "decisions: auto"
/usr/bin/python3 - "$tmp/dm.json" "$tmp/dd.json" "$tmp/da.json" <<'PY' || fail "decisions_made"
import json, sys
m, d, a = (json.load(open(f))["decisions_made"] for f in sys.argv[1:])
def by(ds, tensor):
    return next(e for e in ds if e["tensor"] == tensor)
names = [e["name"] for e in m]
assert names == ["vocabulary", "hidden", "attention heads", "attention heads", "attention heads",
                 "attention heads", "ffn hidden", "vocabulary", "batch", "sequence"], names
q, k = by(m, "layers.0.attn.q_proj.weight"), by(m, "layers.0.attn.k_proj.weight")
assert q["axes"] == ["model"] and q["heads"] == 8 and q["split"] == q["tensors"] == 3, q
# 4 KV heads on 8 ranks: padded to 8 (half of them zeros), gathered before use
assert k["axes"] == ["model"] and k["heads"] == 4 and k["split"] == k["tensors"], k
assert k["padded"] == 512 and k["size"] == 256 and "padded" not in q, (k, q)
assert by(m, "layers.0.mlp.gate_proj.weight")["axes"] == ["model"]
assert by(m, "lm_head.weight")["axes"] == ["model"] and by(m, "lm_head.weight")["size"] == 1000
assert [e["name"] for e in m if e["tensor"] == "embed_tokens.weight"] == ["vocabulary", "hidden"]
b = by(m, "input_ids")
assert b["name"] == "batch" and b["axes"] == [] and b["why"] == "batch 1 does not divide by model=8", b
# data: the batch over data, every other decision whole as no target of data
split = [e for e in d if e["axes"]]
assert [(e["name"], e["axes"], e["size"]) for e in split] == [("batch", ["data"], 8)], split
assert all(e["why"] == "not a target of data" for e in d if not e["axes"] and e["name"] != "batch"), d
# auto: every decision says where it went, or why not, with a number
for e in a:
    assert e["axes"] or any(ch.isdigit() for ch in e["why"]), e
PY

# errors: one line, exit 2
set +e
"$bin" analyze "$tmp/missing.onnx" 2>"$tmp/err" >/dev/null
rc=$?
set -e
[ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "missing model: rc $rc"
printf 'not a model' >"$tmp/bad.onnx"
set +e
"$bin" analyze "$tmp/bad.onnx" 2>"$tmp/err" >/dev/null
rc=$?
"$bin" analyze 2>/dev/null
rc2=$?
"$bin" analyze --bogus "$src/samples/mlp.onnx" 2>/dev/null
rc3=$?
set -e
[ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "bad model: rc $rc"
[ $rc2 -eq 2 ] && [ $rc3 -eq 2 ] || fail "usage: rc $rc2 $rc3"
echo "analysis: ok"
