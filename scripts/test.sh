#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite: first the normal build, then the
# AddressSanitizer + UndefinedBehaviorSanitizer build (skip it with RBEE_TEST_SANITIZE=0), then
# every libFuzzer harness for a short fixed time (scripts/fuzz.sh, RBEE_TEST_FUZZ_SECONDS each,
# default 15; skip it with RBEE_TEST_FUZZ=0), then the real worker (tests/real: the shipped
# llama-cpp-server-cpu built offline from a source mirror that scripts/offline-sources.sh fills
# from the npm registry, serving tokens; ~15 minutes on 2 cores; skip it with RBEE_TEST_REAL=0).
# Extra arguments go to ctest (e.g. -R jobs); with them the fuzz and real stages run only when
# RBEE_TEST_FUZZ=1 / RBEE_TEST_REAL=1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ "${RBEE_TEST_REAL:-1}" = 0 ] || scripts/deps.sh real
jobs=$(nproc)

run_suite() {
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
	ctest --test-dir "$dir" --output-on-failure -j"$jobs" -LE real "${ctest_args[@]}"
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
if [ "${RBEE_TEST_REAL:-$([ ${#ctest_args[@]} -eq 0 ] && echo 1 || echo 0)}" != 0 ]; then
	# Set-up, with the npm registry: the mirror, kept in the build tree between runs.
	if [ ! -f build/mirror/.complete ]; then
		scripts/offline-sources.sh build/mirror
		touch build/mirror/.complete
	fi
	RBEE_TEST_MIRROR=$PWD/build/mirror ctest --test-dir build --output-on-failure -L real
fi
