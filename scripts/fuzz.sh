#!/usr/bin/env bash
# Fuzz the parsers of untrusted input with libFuzzer (tests/fuzz/, docs/FUZZING.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Configures build-fuzz with clang (-DRBEE_FUZZ=ON: ASan + UBSan + coverage), builds the
# harnesses, and runs each TARGET (default: all) for SECONDS (default 300) on a copy of its seed
# corpus (tests/fuzz/corpus/<target>/ is never written; the grown corpus is left in
# build-fuzz/fuzz-work/<target>/), with its regressions (tests/fuzz/regressions/<target>/) as
# extra seeds and tests/fuzz/dict/<target>.dict as its dictionary. Prints runs, exec/s and what
# each run added; crash, leak, timeout and out-of-memory inputs are kept in
# build-fuzz/crashes/<target>/. Exits non-zero when any target failed.
#
# Environment: RBEE_FUZZ_BUILD_DIR (default build-fuzz), RBEE_FUZZ_BUILD=0 skips the configure
# and build (for several runs at once on one tree), RBEE_FUZZ_JOBS (build parallelism, nproc),
# RBEE_FUZZ_FORK=1 runs libFuzzer in fork mode, which goes on after a crash, timeout or OOM
# (each one still saved and counted) instead of stopping at the first: for long runs.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-300}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
all=(job_request pkgbuild gguf sse catalog_entry range)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

# The largest input each target is fed: about 4-10x its largest real input, so that length
# limits and budgets are reached without slowing every run down.
max_len() {
	case $1 in
	job_request) echo 4096 ;;
	pkgbuild) echo 32768 ;;
	gguf) echo 8192 ;;
	sse) echo 4096 ;;
	catalog_entry) echo 8192 ;;
	range) echo 2048 ;;
	*) return 1 ;;
	esac
}
for t in "${targets[@]}"; do
	max_len "$t" >/dev/null || { echo "fuzz: unknown target '$t' (known: ${all[*]})" >&2; exit 2; }
done

build=${RBEE_FUZZ_BUILD_DIR:-build-fuzz}
if [ "${RBEE_FUZZ_BUILD:-1}" != 0 ]; then
	command -v clang >/dev/null || { echo "fuzz: clang is needed (scripts/deps.sh installs it)" >&2; exit 1; }
	cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DRBEE_FUZZ=ON -DRBEE_TESTS=OFF >/dev/null
	cmake --build "$build" -j"${RBEE_FUZZ_JOBS:-$(nproc)}" --target fuzz_all >/dev/null
fi

# Leaks count as findings; a sanitizer report aborts the run with the input saved.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=()
printf '%-14s %8s %10s %8s %6s %6s %8s  %s\n' target seconds runs exec/s cov new rss_mb result
for t in "${targets[@]}"; do
	bin=$build/bin/fuzz/fuzz_$t
	work=$build/fuzz-work/$t
	crashes=$build/crashes/$t
	log=$build/fuzz-logs/$t.log
	rm -rf "$work"
	mkdir -p "$work" "$crashes" "$(dirname "$log")"
	cp -R tests/fuzz/corpus/"$t"/. "$work"/
	seeds=(tests/fuzz/corpus/"$t")
	[ -d tests/fuzz/regressions/"$t" ] && seeds+=(tests/fuzz/regressions/"$t")
	dict=()
	[ -f tests/fuzz/dict/"$t".dict ] && dict=(-dict=tests/fuzz/dict/"$t".dict)
	fork=()
	[ "${RBEE_FUZZ_FORK:-0}" = 1 ] && fork=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
	touch "$work.start"
	start=$(date +%s)
	rc=0
	# -timeout: one input taking 10 s is a hang; -rss_limit_mb: growth driven by input is a bug.
	# (In a subshell, so that bash's "Aborted" line goes to the log too.)
	("$bin" "${fork[@]}" "${dict[@]}" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
		-rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$crashes"/ "$work" "${seeds[@]}"
	 e=$? && exit $e) >"$log" 2>&1 || rc=$?
	took=$(($(date +%s) - start))
	stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
	runs=$(stat number_of_executed_units)
	eps=$(stat average_exec_per_sec)
	new=$(stat new_units_added)
	rss=$(stat peak_rss_mb)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
	if [ ${#fork[@]} -gt 0 ]; then # fork mode prints "#N: cov: C ft: F corp: K exec/s E ..."
		last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
		runs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
		eps=$(echo "$last" | sed -n 's/.*exec\/s \([0-9]*\).*/\1/p')
		new=$(($(find "$work" -type f -newer "$work.start" | wc -l)))
	fi
	found=$(find "$crashes" -type f -newer "$work.start" | wc -l)
	if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then
		result=ok
		passed=$((passed + 1))
	else
		first=$(find "$crashes" -type f -newer "$work.start" -printf '%f\n' | sort | head -1 || true)
		result="FAILED (exit $rc, $found input(s) saved${first:+, e.g. $crashes/$first}; log $log)"
		failed+=("$t")
	fi
	printf '%-14s %8s %10s %8s %6s %6s %8s  %s\n' "$t" "$took" "${runs:--}" "${eps:--}" \
		"${cov:--}" "${new:--}" "${rss:--}" "$result"
	if [ $rc -ne 0 ]; then
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 | sed 's/^/    /' || true
	fi
done
echo "fuzz: ${#targets[@]} targets for ${secs}s each: $passed passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
