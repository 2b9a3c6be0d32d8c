#!/usr/bin/env bash
# The modes of what shard writes follow the process umask, as include/
# onnxshard.h and docs/DESIGN.md say (the library never calls umask(), which
# is every thread's): OUT is made as mkdir makes a folder (0777 less the
# umask) and its files, the --report page too, as creat makes a file (0666
# less the umask). Under umask 077 and 022, a shard with external data
# (--external-data always), then --force over it, and the HTML report; and
# the shared library imports no umask at all (nm).
# usage: modes.sh BIN SRCDIR [LIBONNXSHARD.so]
set -u
bin=$1
src=$2
lib=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0

fail() {
	failn=$((failn + 1))
	echo "FAIL: $*"
}

# want MODE PATH...: each path has exactly that mode
want() {
	local m=$1 p
	shift
	for p in "$@"; do
		if [ "$(stat -c %a "$p")" = "$m" ]; then
			pass=$((pass + 1))
		else
			fail "$p: mode $(stat -c %a "$p"), want $m (umask $(umask))"
		fi
	done
}

for um in 077 022; do
	dir=$(printf '%o' $((0777 & ~8#$um)))
	file=$(printf '%o' $((0666 & ~8#$um)))
	out=$tmp/out-$um
	for force in "" --force; do
		if ! (umask "$um" && "$bin" shard "$src/samples/mlp.onnx" --mesh model=2 \
			--strategy megatron --external-data always --quiet $force -o "$out" \
			--report "$tmp/plan-$um.html" >/dev/null 2>"$tmp/err"); then
			fail "shard under umask $um $force: $(head -1 "$tmp/err")"
			continue
		fi
		want "$dir" "$out"
		files=("$out"/*)
		[ "${#files[@]}" -ge 5 ] || fail "$out holds ${#files[@]} files: ${files[*]}"
		want "$file" "${files[@]}" "$tmp/plan-$um.html"
		ls "$out"/*.data >/dev/null 2>&1 || fail "$out: no external data file"
	done
done
if [ -n "$lib" ]; then
	if nm -D --undefined-only "$lib" | grep -qw umask; then
		fail "$lib calls umask()"
	else
		pass=$((pass + 1))
	fi
fi
leftover=$(find "$tmp" -name '*.tmp-*' -o -name '*.old-*' | head -3)
[ -z "$leftover" ] || fail "temp names left behind: $leftover"
echo "modes: $pass passed, $failn failed"
[ "$failn" = 0 ]
