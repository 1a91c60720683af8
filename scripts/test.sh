#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite: first the normal build, then the
# AddressSanitizer + UndefinedBehaviorSanitizer build (skip it with RBEE_TEST_SANITIZE=0), then
# every libFuzzer harness for a short fixed time (scripts/fuzz.sh, RBEE_TEST_FUZZ_SECONDS each,
# default 15; skip it with RBEE_TEST_FUZZ=0).
# Extra arguments go to ctest (e.g. -R jobs); with them the fuzz stage runs only when
# RBEE_TEST_FUZZ=1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

run_suite() {
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
	ctest --test-dir "$dir" --output-on-failure -j"$jobs" "${ctest_args[@]}"
}

ctest_args=("$@")
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${RBEE_TEST_SANITIZE:-1}" != 0 ]; then
	# detect_leaks: the suite must also be leak-free; abort_on_error gives a core-like exit.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DRBEE_SANITIZE=ON
fi
if [ "${RBEE_TEST_FUZZ:-$([ ${#ctest_args[@]} -eq 0 ] && echo 1 || echo 0)}" != 0 ]; then
	scripts/fuzz.sh "${RBEE_TEST_FUZZ_SECONDS:-15}"
fi
