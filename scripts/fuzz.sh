#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and run each
# for SECONDS (default 60) on a copy of its committed corpus
# (tests/fuzz/corpus/TARGET), up to nproc targets at a time. Prints the
# executions per target; exits non-zero when a target found a crash, leak or
# timeout, keeping the input in build-fuzz/crashes/TARGET/ and the log in
# build-fuzz/logs/TARGET.log. BUILD (default build-fuzz) selects the build
# directory, JOBS (default nproc) how many targets run at once, FUZZ_SEED
# a fixed seed (CI uses one, so that its run repeats one checked beforehand
# for longer: the same seed walks the same inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
build=${BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc)}
targets="fuzz_model fuzz_tactics fuzz_manifest fuzz_options"

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DONNXSHARD_FUZZ=ON -DONNXSHARD_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz

work=$(cd "$build" && pwd)/run
rm -rf "$work" "$build/crashes" "$build/logs"
mkdir -p "$work/tmp" "$build/logs"
export TMPDIR=$work/tmp
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# One target: its exit status to $work/TARGET.rc.
run() {
	local t=$1 rc=0
	mkdir -p "$work/corpus/$t" "$build/crashes/$t"
	cp tests/fuzz/corpus/"${t#fuzz_}"/* "$work/corpus/$t"/
	"$build/tests/fuzz/$t" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -max_total_time="$secs" \
		-rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$build/crashes/$t/" "$work/corpus/$t" \
		>"$build/logs/$t.log" 2>&1 || rc=$?
	echo "$rc" >"$work/$t.rc"
}

running=0
for t in $targets; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run "$t" &
	running=$((running + 1))
done
wait

failed=0
printf '%-14s %12s  %s\n' target executions result
for t in $targets; do
	rc=$(cat "$work/$t.rc" 2>/dev/null || echo '?')
	log=$build/logs/$t.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	if [ "$rc" = 0 ] && [ -z "$(ls -A "$build/crashes/$t")" ]; then
		result=ok
		rmdir "$build/crashes/$t"
	else
		result="FAILED (exit $rc): $(ls "$build/crashes/$t" | tr '\n' ' ')see $log"
		failed=1
	fi
	printf '%-14s %12s  %s\n' "$t" "${execs:-?}" "$result"
done
rm -rf "$work"
rmdir "$build/crashes" 2>/dev/null || true
exit "$failed"
