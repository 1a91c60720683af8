#!/usr/bin/env bash
# bench/jobs.sh - the job engine's overhead and stream fan-out.
#
#   bench/jobs.sh [BUILD_DIR]          BUILD_DIR defaults to ./build (needs bin/rbee-hive)
#
# 1. Round trip of a job against a bare request, on the same hive in the same run: a
#    `hive_check` job (POST /v1/jobs, then its SSE stream until [DONE]: two HTTP requests, a
#    queue hop to a worker thread, four backends listed, a file created and deleted in the
#    cache, the catalog directory read) against `GET /health` (one request, no work). Times are
#    curl's own `time_total`, so process start-up is not counted. Printed: the ratios of the
#    medians and of the p99s.
# 2. STREAMS clients (200) hold streams open at once on one slow job (test_sleep, SLOW_S
#    seconds, with narration and progress): all must end [DONE] with identical events. Printed:
#    completed/STREAMS, and the hive's RSS idle, with the streams open, and its peak.
# Environment: RUNS (200), STREAMS (200), SLOW_S (4). Needs: curl, jq.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-200}
STREAMS=${STREAMS:-200}
SLOW_S=${SLOW_S:-4}

[ -x "$build/bin/rbee-hive" ] || die "no '$build/bin/rbee-hive': build first or pass the build directory"
for t in curl jq; do command -v $t >/dev/null || die "$t is not installed"; done

wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; die "no $1"; }
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

mkdir -p "$tmp/home"
RBEE_HOME=$tmp/home RBEE_ENABLE_TEST_OPS=1 "$build/bin/rbee-hive" --port 0 --port-file "$tmp/hive.port" \
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
for _ in $(seq 5); do curl -sf "$url/health" >/dev/null; done # warm-up
for _ in $(seq "$RUNS"); do
	curl -s -o /dev/null -w '%{time_total}\n' "$url/health" >>"$tmp/health.t"
	sub=$(curl -s -w ' %{time_total}' -X POST --data-binary '{"operation":"hive_check"}' "$url/v1/jobs")
	id=$(jq -r .job_id <<<"${sub% *}")
	st=$(curl -s -o "$tmp/one.sse" -w '%{time_total}' "$url/v1/jobs/$id/stream")
	grep -q '^data: \[DONE\]$' "$tmp/one.sse" || die "job $id did not end [DONE]"
	awk -v a="${sub##* }" -v b="$st" 'BEGIN {printf "%.6f\n", a + b}' >>"$tmp/job.t"
done
h50=$(percentile "$tmp/health.t" 50)
h99=$(percentile "$tmp/health.t" 99)
j50=$(percentile "$tmp/job.t" 50)
j99=$(percentile "$tmp/job.t" 99)
echo "job round trip (hive_check submit -> [DONE]) / GET /health, $RUNS runs each:"
awk -v j="$j50" -v h="$h50" 'BEGIN {printf "  median ratio  %.1f\n", j / h}'
awk -v j="$j99" -v h="$h99" 'BEGIN {printf "  p99 ratio     %.1f\n", j / h}'

# --- 2. STREAMS clients on one slow job
idle=$(rss_kib $hive VmRSS)
id=$(curl -sf -X POST --data-binary "{\"operation\":\"test_sleep\",\"seconds\":$SLOW_S,\"lines\":50}" \
	"$url/v1/jobs" | jq -r .job_id)
mkdir -p "$tmp/streams"
spids=()
for i in $(seq "$STREAMS"); do
	curl -sN --max-time $((SLOW_S + 60)) "$url/v1/jobs/$id/stream" >"$tmp/streams/$i.sse" &
	spids+=($!)
done
sleep $((SLOW_S / 2))
open=$(ls /proc/$hive/task | wc -l)
busy=$(rss_kib $hive VmRSS)
wait "${spids[@]}" || true
peak=$(rss_kib $hive VmHWM)
completed=0
for f in "$tmp/streams"/*.sse; do
	[ "$(grep '^data: ' "$f" | tail -n 1)" = "data: [DONE]" ] && completed=$((completed + 1))
done
distinct=$(for f in "$tmp/streams"/*.sse; do grep -v -e '^:' -e '^$' "$f" | md5sum; done | sort -u | wc -l)
echo "$STREAMS clients on one ${SLOW_S}-second job:"
echo "  completed [DONE]       $completed/$STREAMS (distinct event sequences: $distinct)"
echo "  hive threads midway    $open"
awk -v i="$idle" -v b="$busy" -v p="$peak" -v n="$STREAMS" 'BEGIN {
	printf "  hive RSS idle         %.1f MiB\n", i / 1024
	printf "  hive RSS, streams on  %.1f MiB (%.0f KiB per stream)\n", b / 1024, (b - i) / n
	printf "  hive peak RSS         %.1f MiB\n", p / 1024 }'
[ "$completed" = "$STREAMS" ] || die "only $completed of $STREAMS streams ended [DONE]"
[ "$distinct" = 1 ] || die "the clients saw $distinct different event sequences"
