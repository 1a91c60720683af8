#!/usr/bin/env bash
# Hive start-up: time from exec to the first successful GET /health (median of N runs), as a
# ratio to loading the hwloc topology alone (`lstopo-no-graphics --of xml`, the same discovery
# the hive does, I/O devices included) measured in the same script; then the time until the
# first probe round has landed (GET /v1/backends answers "probing": false), and the idle hive's
# RSS once it has.
#
# /health is polled with bash's /dev/tcp, not curl: a curl per try costs as much as the whole
# baseline on a loaded machine, and would be measured instead of the hive.
# usage: bench/startup.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-15}
hive="$build/bin/rbee-hive"
[ -x "$hive" ] || { echo "build first: $hive not found" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RBEE_HOME="$tmp/home"


# nap: 2 ms without starting a process (a read that times out on a FIFO nobody writes).
mkfifo "$tmp/nap"
exec 9<>"$tmp/nap"
nap() { read -r -t 0.002 -u 9 _ || true; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# get PORT PATH: one HTTP/1.1 GET through /dev/tcp (no process started); the whole reply on
# stdout, false when nobody answers.
get() {
	exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || return 1
	printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
	local reply
	reply=$(cat <&3) || true
	exec 3<&- 3>&-
	printf '%s' "$reply"
}
health_ok() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || return 1
	printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$1" >&3
	IFS= read -r line <&3 || line=
	exec 3<&- 3>&-
	[[ "$line" == "HTTP/1.1 200"* ]]
}

base=()
for _ in $(seq "$runs"); do
	t0=$(date +%s%N)
	lstopo-no-graphics --of xml --whole-io >/dev/null 2>&1 || lstopo-no-graphics --of xml >/dev/null
	base+=($(( $(date +%s%N) - t0 )))
done

start=() ready=()
for _ in $(seq "$runs"); do
	rm -f "$tmp/port"
	port=
	t0=$(date +%s%N)
	"$hive" --port 0 --port-file "$tmp/port" >/dev/null 2>&1 &
	pid=$!
	until [ -n "$port" ] && health_ok "$port"; do
		[ -n "$port" ] || { [ -s "$tmp/port" ] && read -r port <"$tmp/port"; } || true
		nap
	done
	start+=($(( $(date +%s%N) - t0 )))
	# Ready: "probing": false; a hive from before the background first round has no such field
	# (it probed before it answered /health at all).
	until r=$(get "$port" /v1/backends) && [[ "$r" == *'"probing":false'* ||
		( "$r" == *'"backends"'* && "$r" != *'"probing"'* ) ]]; do nap; done
	ready+=($(( $(date +%s%N) - t0 )))
	sleep 0.5
	rss_kb=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
done

b=$(printf '%s\n' "${base[@]}" | median)
s=$(printf '%s\n' "${start[@]}" | median)
r=$(printf '%s\n' "${ready[@]}" | median)
echo "runs: $runs"
echo "hwloc topology load alone (lstopo): $(awk -v b="$b" 'BEGIN{printf "%.1f", b/1e6}') ms"
echo "hive start to first /health: $(awk -v s="$s" 'BEGIN{printf "%.1f", s/1e6}') ms"
echo "hive start to first /health vs hwloc topology load alone: $(awk -v s="$s" -v b="$b" 'BEGIN{printf "%.2f", s/b}')x"
echo "hive start to first probe round landed: $(awk -v r="$r" 'BEGIN{printf "%.1f", r/1e6}') ms ($(awk -v r="$r" -v b="$b" 'BEGIN{printf "%.2f", r/b}')x)"
echo "idle hive RSS: ${rss_kb} KiB"
