# bench/lib.sh - the preamble every benchmark shares. Source it first:
#
#   . "$(dirname "$0")/lib.sh"      # sets here, src, build (first argument or build/), tmp
#   pids+=($!)                      # background processes to stop at exit
#   die "message"                   # print "<script>: message" and exit 1
#
# Benchmarks print ratios against a baseline measured in the same run, never bare timings.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$src/build}
die() { echo "$(basename "$0"): $*" >&2; exit 1; }
"$src/scripts/deps.sh" bench # lstopo, wrk and bc, beside what the build needs

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rbee-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
