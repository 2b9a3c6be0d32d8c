#!/usr/bin/env bash
# Install what onnxshard needs to build and test on Debian 12 (run as root or with sudo).
set -euo pipefail
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	build-essential cmake pkg-config clang clang-format libclang-rt-14-dev \
	libprotobuf-c-dev protobuf-c-compiler libonnx-dev \
	zlib1g-dev libcmocka-dev libjansson-dev \
	libonnx-testdata python3-onnx python3-numpy chromium >/dev/null
command -v node >/dev/null || $SUDO apt-get install -y -qq nodejs npm >/dev/null
if [ -f tests/e2e/package.json ] && [ ! -d tests/e2e/node_modules/onnxruntime-node ]; then
	(cd tests/e2e && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
