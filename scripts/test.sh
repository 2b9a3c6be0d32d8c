#!/usr/bin/env bash
# Configure with warnings as errors, build, run every test.
# BUILD (default build) and CMAKE_FLAGS select a build directory and options.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -DONNXSHARD_WERROR=ON ${CMAKE_FLAGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
