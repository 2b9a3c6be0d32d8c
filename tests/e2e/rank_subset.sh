#!/usr/bin/env bash
# Load-time sharding (shard --rank): GPT-2 on data=2,model=2 sharded fully and
# with --rank 1,2; the partial run's files are byte for byte the full run's,
# its manifest the full one but for the absent ranks' entries, which say
# "written": false; check of the partial directory passes, names the absent
# ranks and still catches a corrupted file there; stitch refuses it. Four
# processes writing one rank each into one OUT at once leave the full run's
# directory, byte for byte (checked, stitched and compared with the source in
# ONNX Runtime). Another plan's OUT is refused untouched; bad --rank values
# are refused with one line, exit 2, nothing made.
#   tests/e2e/rank_subset.sh BIN SRCDIR
set -u
bin=$1 src=$2
model=$src/samples/gpt2.onnx
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# the plan comes from the search (auto), capped in plans so that it is the same
# in every process
args=(--mesh data=2,model=2 --strategy auto --budget 64p --seed 7 --quiet)

"$bin" shard "$model" "${args[@]}" -o "$tmp/full" >/dev/null || fail "full run"
"$bin" shard "$model" "${args[@]}" --rank 2,1 -o "$tmp/part" >"$tmp/part.log" ||
	fail "--rank 2,1"
grep -q "^wrote $tmp/part: rank 1,2 of 4, manifest.json$" "$tmp/part.log" ||
	fail "summary: $(tail -1 "$tmp/part.log")"

# the written files: rank 1's and 2's only, each the full run's bytes
want=$(cd "$tmp/full" && ls rank1.* rank2.* manifest.json | sort)
have=$(cd "$tmp/part" && ls | sort)
[ "$want" = "$have" ] || fail "partial directory holds [$have], want [$want]"
for f in $(cd "$tmp/part" && ls rank*); do
	cmp -s "$tmp/full/$f" "$tmp/part/$f" || fail "$f differs from the full run's"
done

# the manifests: equal but for ranks 0 and 3, {rank, coords, model, written: false}
/usr/bin/python3 - "$tmp/full/manifest.json" "$tmp/part/manifest.json" <<'EOF' || fail "manifests"
import json, sys
full, part = (json.load(open(p)) for p in sys.argv[1:3])
assert list(full) == list(part), (list(full), list(part))
for k in full:
    if k != "ranks":
        assert full[k] == part[k], k
for f, p in zip(full["ranks"], part["ranks"]):
    if f["rank"] in (1, 2):
        assert f == p, (f, p)
    else:
        want = {"rank": f["rank"], "coords": f["coords"], "model": f["model"], "written": False}
        assert p == want, (p, want)
        assert f["external_data"] and f["bytes"] > 0  # the full run's entry had files
EOF

out=$("$bin" check "$tmp/part") || fail "check of the partial directory: $out"
[[ $out == "ok: 2 of 4 ranks, "*"; not written: ranks 0,3" ]] || fail "check says: $out"
err=$("$bin" stitch "$tmp/part" -o "$tmp/s.onnx" 2>&1) && fail "stitch of a partial directory"
[[ $err == *"2 of 4 ranks are not written (shard --rank)"* ]] || fail "stitch says: $err"
# what is there is still checked: one byte of rank 2's weights changed
cp -r "$tmp/part" "$tmp/bad"
printf '\x55' | dd of="$tmp/bad/rank2.onnx.data" bs=1 seek=100 conv=notrunc status=none
err=$("$bin" check "$tmp/bad" 2>&1) && fail "check passed a corrupted rank 2"
[[ $err == *"rank2.onnx.data: crc32"* ]] || fail "corrupted rank 2: $err"

# four processes, one rank each, one OUT, at once: the full run's directory
for r in 0 1 2 3; do
	"$bin" shard "$model" "${args[@]}" --jobs 1 --rank $r -o "$tmp/shared" >/dev/null \
		2>"$tmp/shared$r.err" &
done
wait
cat "$tmp"/shared?.err >&2
for f in $(cd "$tmp/full" && ls); do
	cmp -s "$tmp/full/$f" "$tmp/shared/$f" || fail "shared OUT: $f differs from the full run's"
done
[ "$(ls -A "$tmp/shared" | wc -l)" = "$(ls -A "$tmp/full" | wc -l)" ] ||
	fail "shared OUT holds $(ls -A "$tmp/shared")"
[[ $("$bin" check "$tmp/shared") == "ok: 4 ranks, "* ]] || fail "check of the shared OUT"
# writing a rank again leaves it as it is; its stitched model computes the source's
"$bin" shard "$model" "${args[@]}" --rank 3 -o "$tmp/shared" >/dev/null || fail "rank 3 again"
cmp -s "$tmp/full/manifest.json" "$tmp/shared/manifest.json" || fail "rank 3 again: manifest"
"$bin" stitch "$tmp/shared" -o "$tmp/stitched.onnx" || fail "stitch of the shared OUT"
node "$src/tests/e2e/ortcompare.js" "$model" "$tmp/stitched.onnx" --dim batch=4 --dim seq=8 \
	--int-max input_ids=128 >"$tmp/ort.log" 2>&1 && grep -q "^ok logits" "$tmp/ort.log" ||
	fail "ORT: $(cat "$tmp/ort.log")"

# an OUT of another plan (another mesh) is refused and left as it was
cp "$tmp/part/manifest.json" "$tmp/before.json"
err=$("$bin" shard "$model" --mesh data=4 --strategy data --quiet --rank 0 -o "$tmp/part" 2>&1)
rc=$?
[ $rc = 2 ] && [[ $err == *"holds the output of another plan"* ]] || fail "another plan: $rc $err"
cmp -s "$tmp/before.json" "$tmp/part/manifest.json" && [ ! -e "$tmp/part/rank0.onnx" ] ||
	fail "another plan changed the OUT"

# bad values: exit 2, one line, nothing made
for bad in 4 -1 x 1, ,1 1,,2 "" 99999999999999999999; do
	err=$("$bin" shard "$model" "${args[@]}" --rank "$bad" -o "$tmp/badrank" 2>&1)
	rc=$?
	[ $rc = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ $err == "onnxshard: error: --rank"* ]] ||
		fail "--rank '$bad': exit $rc: $err"
	[ -e "$tmp/badrank" ] && fail "--rank '$bad' made OUT"
done
err=$("$bin" shard "$model" "${args[@]}" --rank 4 -o "$tmp/badrank" 2>&1)
[ "$err" = "onnxshard: error: --rank 4: the mesh data=2,model=2 has ranks 0 to 3" ] ||
	fail "--rank 4: $err"
err=$("$bin" plan "$model" "${args[@]}" --rank 1 2>&1) && fail "plan --rank accepted"
[[ $err == *"--rank: only when writing an output directory"* ]] || fail "plan --rank: $err"

if [ $fails -ne 0 ]; then
	echo "rank_subset: $fails failures" >&2
	exit 1
fi
echo "rank_subset: ok"
