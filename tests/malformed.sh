#!/usr/bin/env bash
# The malformed-model corpus (tests/malformed/, made by make_corpus.py): every
# case is refused by inspect, inspect --json, shard and plan with exit 2 and
# exactly the one stderr line of tests/malformed/expected.txt, nothing on
# stdout, within 20 s, and shard leaves no output or temp dir behind.
# ASAN_OPTIONS and UBSAN_OPTIONS pass through from the environment.
# usage: malformed.sh BIN SRCDIR [CASE...]
set -u
bin=$(realpath "$1")
src=$(realpath "$2")
shift 2
cases=$src/tests/malformed/cases
expected=$src/tests/malformed/expected.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0

fail() {
	failn=$((failn + 1))
	echo "FAIL: $*"
}

# run WANT ARGS...: one invocation, checked
run() {
	local want=$1 rc lines
	shift
	timeout 20 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" != 2 ] || [ "$lines" != 1 ] || [ -s "$tmp/out" ] ||
	   [ "$(cat "$tmp/err")" != "$want" ]; then
		fail "onnxshard $* -> exit $rc, $lines stderr lines, $(wc -c <"$tmp/out") stdout bytes"
		echo "  want: $want"
		head -5 "$tmp/err" | sed 's/^/  got:  /'
		return
	fi
	pass=$((pass + 1))
}

cd "$cases" || exit 1
[ -L ext/link.bin ] || { echo "ext/link.bin is not a symlink (checkout without symlinks?)"; exit 1; }
find . | sort >"$tmp/before"
while IFS=$'\t' read -r name want; do
	[ -n "$name" ] || continue
	if [ $# -gt 0 ]; then
		case " $* " in *" $name "*) ;; *) continue ;; esac
	fi
	if [ ! -e "$name" ]; then
		fail "$name: missing from $cases"
		continue
	fi
	out=$tmp/out.shards
	run "$want" inspect "$name"
	run "$want" inspect --json "$name"
	run "$want" shard "$name" --mesh data=2 -o "$out"
	leftover=$(find "$tmp" -maxdepth 1 -name 'out.shards*' | head -3)
	if [ -n "$leftover" ]; then
		fail "shard $name left $leftover behind"
		rm -rf "$tmp"/out.shards*
	fi
	run "$want" plan "$name" --mesh model=2
done <"$expected"
find . | sort >"$tmp/after"
if ! cmp -s "$tmp/before" "$tmp/after"; then
	fail "the cases directory changed: $(diff "$tmp/before" "$tmp/after" | head -5 | tr '\n' ' ')"
fi

echo "malformed: $pass passed, $failn failed"
[ "$failn" = 0 ] && [ "$pass" -gt 0 ]
