#!/usr/bin/env bash
# Hive start-up: time from exec to the first successful GET /health (median of N runs), as a
# ratio to loading the hwloc topology alone (`lstopo-no-graphics --of xml`, the same discovery
# the hive does, I/O devices included) measured in the same script; plus the idle hive's RSS.
# usage: bench/startup.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-15}
hive="$build/bin/rbee-hive"
[ -x "$hive" ] || { echo "build first: $hive not found" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RBEE_HOME="$tmp/home"

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

base=()
for _ in $(seq "$runs"); do
	t0=$(now_ns)
	lstopo-no-graphics --of xml --whole-io >/dev/null 2>&1 || lstopo-no-graphics --of xml >/dev/null
	base+=($(( $(now_ns) - t0 )))
done

start=()
for _ in $(seq "$runs"); do
	rm -f "$tmp/port"
	t0=$(now_ns)
	"$hive" --port 0 --port-file "$tmp/port" >/dev/null 2>&1 &
	pid=$!
	until [ -s "$tmp/port" ] && curl -sf "http://127.0.0.1:$(cat "$tmp/port")/health" >/dev/null 2>&1; do
		sleep 0.002
	done
	start+=($(( $(now_ns) - t0 )))
	sleep 0.5
	rss_kb=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
done

b=$(printf '%s\n' "${base[@]}" | median)
s=$(printf '%s\n' "${start[@]}" | median)
echo "runs: $runs"
echo "hive start to first /health vs hwloc topology load alone: $(awk -v s="$s" -v b="$b" 'BEGIN{printf "%.2f", s/b}')x"
echo "idle hive RSS: ${rss_kb} KiB"
