#!/usr/bin/env bash
# Golden IR dumps. Each tests/golden/*.txt holds, after a line "--- model",
# a model in ONNX's text syntax (onnx.parser.parse_model), and after a line
# "--- expect" the expected `onnxshard inspect --dump ir` of it; lines before
# "--- model" are a free comment. When the command fails, the expected text
# is its stdout, then "exit N", then its stderr (the model file is NAME.onnx).
#
# usage: golden.sh [--update] BIN SRCDIR [NAME...]
#   --update  rewrite the expect sections with what BIN prints now; review
#             every change by hand against the ONNX operator spec.
set -u
update=0
if [ "${1:-}" = --update ]; then
	update=1
	shift
fi
if [ $# -lt 2 ]; then
	echo "usage: golden.sh [--update] BIN SRCDIR [NAME...]" >&2
	exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$2/tests/golden
shift 2
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ $# -gt 0 ]; then
	files=()
	for name in "$@"; do files+=("$dir/${name%.txt}.txt"); done
else
	files=("$dir"/*.txt)
fi

pass=0 failn=0
for f in "${files[@]}"; do
	name=$(basename "$f" .txt)
	if [ ! -f "$f" ] || ! grep -qx -- '--- model' "$f" || ! grep -qx -- '--- expect' "$f"; then
		echo "FAIL $name: no such golden, or no '--- model' / '--- expect' line"
		failn=$((failn + 1))
		continue
	fi
	awk '/^--- model$/ {on = 1; next} /^--- expect$/ {on = 0} on' "$f" >"$tmp/$name.model"
	awk 'on; /^--- expect$/ {on = 1}' "$f" >"$tmp/$name.expect"
	if ! "$py" -c '
import sys, onnx, onnx.parser
m = onnx.parser.parse_model(open(sys.argv[1]).read())
onnx.save(m, sys.argv[2])
' "$tmp/$name.model" "$tmp/$name.onnx" 2>"$tmp/$name.pyerr"; then
		echo "FAIL $name: the model text does not parse:"
		tail -3 "$tmp/$name.pyerr"
		failn=$((failn + 1))
		continue
	fi
	(cd "$tmp" && "$bin" inspect --dump ir "$name.onnx" >"$name.out" 2>"$name.err")
	rc=$?
	if [ "$rc" != 0 ]; then
		echo "exit $rc" >>"$tmp/$name.out"
		cat "$tmp/$name.err" >>"$tmp/$name.out"
	fi
	if [ "$update" = 1 ]; then
		if ! cmp -s "$tmp/$name.out" "$tmp/$name.expect"; then
			awk '{print} /^--- expect$/ {exit}' "$f" >"$tmp/$name.new"
			cat "$tmp/$name.out" >>"$tmp/$name.new"
			cp "$tmp/$name.new" "$f"
			echo "updated $name"
		fi
		pass=$((pass + 1))
	elif diff -u --label "$name (expected)" --label "$name (actual)" \
		"$tmp/$name.expect" "$tmp/$name.out"; then
		pass=$((pass + 1))
	else
		echo "FAIL $name"
		failn=$((failn + 1))
	fi
done
echo "golden: $pass passed, $failn failed"
[ "$failn" = 0 ]
