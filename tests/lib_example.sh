#!/usr/bin/env bash
# libonnxshard as a user gets it: cmake --install into a temp prefix, build
# docs/example.c with pkg-config against the shared library, run it on
# samples/mlp.onnx (plan, shard, check), check the result with the command,
# and import the installed Python package.
# usage: lib_example.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS] [PYTHON_ENV]
# EXTRA_CFLAGS: e.g. -fsanitize=address,undefined for a sanitized build;
# PYTHON_ENV "skip" skips the Python part.
set -euo pipefail
build=$1
src=$2
extra=${3:-}
pyenv=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(find "$tmp/prefix" -name onnxshard.pc)")/..
libdir=$(cd "$libdir" && pwd)
test -L "$libdir/libonnxshard.so.0"
test -f "$libdir/libonnxshard.so.0.1.0"
test -f "$libdir/libonnxshard.a"
test -f "$tmp/prefix/include/onnxshard.h"
test -x "$tmp/prefix/bin/onnxshard"

export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -Werror $extra "$src/docs/example.c" \
	$(pkg-config --cflags --libs onnxshard) -o "$tmp/example"
# dynamically linked against the installed .so
readelf -d "$tmp/example" | grep -q 'NEEDED.*libonnxshard.so.0'

LD_LIBRARY_PATH=$libdir "$tmp/example" "$src/samples/mlp.onnx" "$tmp/out" data=2 >"$tmp/log"
grep -q '"step_time_s"' "$tmp/log"
grep -q '^ok: 2 ranks' "$tmp/log"
test -f "$tmp/out/manifest.json"
"$build/onnxshard" check "$tmp/out" >/dev/null

# a bad mesh: status 2, the library's message
set +e
LD_LIBRARY_PATH=$libdir "$tmp/example" "$src/samples/mlp.onnx" "$tmp/out2" data=0 2>"$tmp/err"
rc=$?
set -e
test "$rc" = 2
grep -q "^example: --mesh 'data=0'" "$tmp/err"
test ! -e "$tmp/out2"

if [ "$pyenv" != skip ]; then
	pydir=$(dirname "$(find "$tmp/prefix" -name __init__.py -path '*onnxshard*')")/..
	test -f "$pydir/onnxshard/_libdir.py"
	# the installed package finds the installed library through _libdir.py
	(cd "$tmp" && PYTHONPATH=$pydir /usr/bin/python3 -c '
import os, sys, onnxshard
assert onnxshard.__file__.startswith(sys.argv[1]), onnxshard.__file__
c = onnxshard.check(sys.argv[2])
print("ok: %d ranks" % c["ranks"] if c["ok"] else c)' "$tmp/prefix" "$tmp/out") | grep -q '^ok: 2 ranks'
fi
echo "lib_example: ok"
