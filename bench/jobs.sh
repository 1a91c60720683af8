#!/usr/bin/env bash
# bench/jobs.sh - the job engine's overhead and stream fan-out.
#
#   bench/jobs.sh [BUILD_DIR]          BUILD_DIR defaults to ./build (needs bin/rbee-hive-test)
#
# 1. Round trip of a job against a bare request, on the same hive in the same run: a
#    `hive_check` job (POST /v1/jobs, then its SSE stream until [DONE]: two HTTP requests, a
#    queue hop to a worker thread, four backends listed, a file created and deleted in the
#    cache, the catalog directory read) against `GET /health` (one request, no work). Times are
#    curl's own `time_total`, so process start-up is not counted. Printed: the ratios of the
#    medians and of the p99s.
# 2. STREAMS clients (10000) hold streams open at once on one slow job (test_sleep, SLOW_S
#    seconds, with narration and progress), from one client process (bench/sse_fanout.py): all
#    must end [DONE] with identical events. Printed: completed/STREAMS, the hive's threads and
#    RSS idle, with all streams open, and its peak, from /proc. The open-file limit is raised to
#    the hard one (each stream is a descriptor on both sides) and RBEE_HTTP_MAX_PER_IP to
#    STREAMS, since every client comes from 127.0.0.1.
# Environment: RUNS (200), STREAMS (10000), SLOW_S (60). Needs: curl, jq, python3.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-200}
STREAMS=${STREAMS:-10000}
SLOW_S=${SLOW_S:-60}
ulimit -n "$(ulimit -Hn)"

# The tests' build of the daemon: test_sleep is not in rbee-hive.
hivebin=$build/bin/rbee-hive-test
[ -x "$hivebin" ] || die "no '$hivebin': build with -DRBEE_TESTS=ON first or pass the build directory"
for t in curl jq python3; do command -v $t >/dev/null || die "$t is not installed"; done

wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; die "no $1"; }
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

mkdir -p "$tmp/home"
RBEE_HOME=$tmp/home RBEE_ENABLE_TEST_OPS=1 RBEE_HTTP_MAX_PER_IP=$((STREAMS + 16)) "$hivebin" --port 0 --port-file "$tmp/hive.port" \
	>"$tmp/hive.log" 2>&1 &
hive=$!
pids+=($hive)
wait_file "$tmp/hive.port"
url="http://127.0.0.1:$(cat "$tmp/hive.port")"
for _ in $(seq 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.05; done

# percentile FILE P: the P-th percentile (nearest rank) of the numbers in FILE.
percentile() { sort -g "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int((p * NR + 99) / 100); if (i < 1) i = 1; print v[i]}'; }

# --- 1. round trips, interleaved so both see the same machine state
: >"$tmp/health.t"
: >"$tmp/job.t"
: >"$tmp/submit.t"
: >"$tmp/stream.t"
for _ in $(seq 5); do curl -sf "$url/health" >/dev/null; done # warm-up
for _ in $(seq "$RUNS"); do
	curl -s -o /dev/null -w '%{time_total}\n' "$url/health" >>"$tmp/health.t"
	sub=$(curl -s -w ' %{time_total}' -X POST -H 'Content-Type: application/json' --data-binary '{"operation":"hive_check"}' "$url/v1/jobs")
	id=$(jq -r .job_id <<<"${sub% *}")
	# Read into memory: curl writing a file in the timed region costs it a file truncation.
	out=$(curl -s -w '\n%{time_total}' "$url/v1/jobs/$id/stream")
	st=${out##*$'\n'}
	grep -q '^data: \[DONE\]$' <<<"$out" || die "job $id did not end [DONE]"
	awk -v a="${sub##* }" -v b="$st" 'BEGIN {printf "%.6f\n", a + b}' >>"$tmp/job.t"
	echo "${sub##* }" >>"$tmp/submit.t"
	echo "$st" >>"$tmp/stream.t"
done
h50=$(percentile "$tmp/health.t" 50)
h99=$(percentile "$tmp/health.t" 99)
j50=$(percentile "$tmp/job.t" 50)
j99=$(percentile "$tmp/job.t" 99)
echo "job round trip (hive_check submit -> [DONE]) / GET /health, $RUNS runs each:"
awk -v j="$j50" -v h="$h50" 'BEGIN {printf "  median ratio  %.1f\n", j / h}'
awk -v j="$j99" -v h="$h99" 'BEGIN {printf "  p99 ratio     %.1f\n", j / h}'
awk -v j="$j50" -v h="$h50" -v J="$j99" -v H="$h99" 'BEGIN {
	printf "  (job %.2f / %.2f ms, /health %.2f / %.2f ms: median / p99)\n", j * 1000, J * 1000, h * 1000, H * 1000 }'
awk -v s="$(percentile "$tmp/submit.t" 50)" -v t="$(percentile "$tmp/stream.t" 50)" 'BEGIN {
	printf "  (medians of its parts: submit %.2f ms, stream %.2f ms)\n", s * 1000, t * 1000 }'

# --- 2. STREAMS clients on one slow job
threads() { ls "/proc/$hive/task" | wc -l; }
idle=$(rss_kib $hive VmRSS)
idle_threads=$(threads)
id=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "{\"operation\":\"test_sleep\",\"seconds\":$SLOW_S,\"lines\":50}" \
	"$url/v1/jobs" | jq -r .job_id)
start=$(date +%s.%N)
python3 "$here/sse_fanout.py" "$(cat "$tmp/hive.port")" "$id" "$STREAMS" >"$tmp/fanout.out" &
fan=$!
pids+=($fan)
for _ in $(seq 6000); do grep -q '^open' "$tmp/fanout.out" && break; sleep 0.05; done
grep -q '^open' "$tmp/fanout.out" || die "the load generator did not open its streams"
opened_s=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
open=$(threads)
busy=$(rss_kib $hive VmRSS)
state=$(curl -sf "$url/v1/jobs" | jq -r --arg id "$id" '.jobs[] | select(.job_id == $id) | .state')
h_ms=$(curl -s -o /dev/null -w '%{time_total}' "$url/health")
wait $fan || die "the load generator failed: $(cat "$tmp/fanout.out")"
peak=$(rss_kib $hive VmHWM)
read -r _ ratio _ distinct < <(grep '^completed' "$tmp/fanout.out")
completed=${ratio%/*}
cores=$(nproc)
echo "$STREAMS clients on one ${SLOW_S}-second job ($cores cores, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
echo "  all open after          ${opened_s} s (job still $state then)"
echo "  completed [DONE]        $completed/$STREAMS (distinct event sequences: $distinct)"
echo "  hive threads            idle $idle_threads, all streams open $open (goal <= 2 x $cores + constant)"
echo "  GET /health meanwhile   $h_ms s"
awk -v i="$idle" -v b="$busy" -v p="$peak" -v n="$STREAMS" 'BEGIN {
	printf "  hive RSS idle           %.1f MiB\n", i / 1024
	printf "  hive RSS, streams open  %.1f MiB (%.1f KiB per stream)\n", b / 1024, (b - i) / n
	printf "  hive peak RSS           %.1f MiB\n", p / 1024 }'
[ "$completed" = "$STREAMS" ] || die "only $completed of $STREAMS streams ended [DONE]"
[ "$distinct" = 1 ] || die "the clients saw $distinct different event sequences"
