#!/usr/bin/env bash
# bench/spawn.sh - what the hive adds to starting a worker, and whether supervising workers
# leaks anything.
#
#   bench/spawn.sh [BUILD_DIR]     BUILD_DIR defaults to ./build (needs bin/ and tests/bin/)
#
# 1. Spawn-to-ready overhead: `worker_spawn` submit to the stream's [DONE] (preflight with the
#    binary's sha256, remembered by file identity, port probing, launch plan, fork/exec with
#    binding, readiness polling, the ready state's registry write), against the same test
#    worker binary started by hand on a free port and polled every millisecond until /health
#    answers. Both are timed by one Python client (bench/spawn_time.py), alternated, with no
#    program started per request (curl and jq each cost more than what is measured). Median
#    (and fastest) of RUNS each; the difference is the hive's overhead.
# 2. Leaks: COUNT workers spawned and stopped one after the other; before and after, the hive's
#    open file descriptors (/proc/<hive>/fd), RSS (VmRSS) and the test worker processes and
#    zombies left. Leak checks repeat after a warm-up, so one-time allocations do not count.
# The test worker is installed through worker_install from the test catalog
# (tests/worker_fixtures) and the model downloaded from the fake hub, as an operator would.
# Environment: RUNS (15), COUNT (20). Needs: python3, curl, jq, bc.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-15}
COUNT=${COUNT:-20}

[ -x "$build/bin/rbee-hive" ] || die "no '$build/bin/rbee-hive': build first or pass the build directory"
[ -f "$build/tests/bin/rbee-test-worker-1.0.tar.gz" ] || die "no test worker tarball in '$build/tests/bin': build the tests"
for t in python3 curl jq bc; do command -v $t >/dev/null || die "$t is not installed"; done

now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_file() { for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.05; done; die "no $1"; }
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
minimum() { sort -n | head -n 1; }

# --- the hive, the test worker installed, a model present ---
export RBEE_HOME=$tmp/home RBEE_TEST_BIN=$build/tests/bin
# A hive running as root runs workers as uids of their own (RBEE_WORKER_UIDS), which must be
# able to reach the installed binary and the model: mktemp made $tmp private.
chmod 755 "$tmp"
mkdir -p "$RBEE_HOME" "$tmp/hub/org/tiny-GGUF"
bash "$src/tests/worker_fixtures/make_catalog.sh" "$tmp/catalog" "http://127.0.0.1:9" 9 >/dev/null
python3 "$src/tests/models/make_gguf.py" "$tmp/hub/org/tiny-GGUF/tiny.Q4_K_M.gguf" --ftype 15
python3 "$src/tests/models/fake_hub.py" --root "$tmp/hub" --port-file "$tmp/hub.port" >/dev/null 2>&1 &
pids+=($!)
wait_file "$tmp/hub.port"
export HF_ENDPOINT="http://127.0.0.1:$(cat "$tmp/hub.port")" RBEE_WORKER_PORTS=29000-29499
"$build/bin/rbee-hive" --port 0 --port-file "$tmp/hive.port" --catalog "$tmp/catalog" \
	>"$tmp/hive.log" 2>&1 &
hive=$!
pids+=($hive)
wait_file "$tmp/hive.port"
url="http://127.0.0.1:$(cat "$tmp/hive.port")"

run() {
	local job
	job=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "$1" "$url/v1/jobs" | jq -r .job_id)
	curl -sN "$url/v1/jobs/$job/stream"
}
out=$(run '{"operation":"worker_install","worker_id":"rbee-test-worker-local"}')
grep -q '\[DONE\]' <<<"$out" || die "install failed: $(tail -3 <<<"$out")"
out=$(run '{"operation":"model_download","model":"org/tiny-GGUF"}')
grep -q '\[DONE\]' <<<"$out" || die "model download failed: $(tail -3 <<<"$out")"
binary=$(jq -r .binary_path "$RBEE_HOME/workers/rbee-test-worker-local/metadata.json")
model=$(jq -r .path "$RBEE_HOME/models/org@tiny-GGUF/metadata.json")

spawn_req='{"operation":"worker_spawn","model":"org/tiny-GGUF","worker":"rbee-test-worker-local"}'
# spawn_once: prints "ms pid"; the worker is left running.
spawn_once() {
	local t0 t1 out
	t0=$(now_ms)
	out=$(run "$spawn_req")
	t1=$(now_ms)
	grep -q '\[DONE\]' <<<"$out" || die "spawn failed: $(grep '^data:' <<<"$out" | tail -3)"
	echo "$((t1 - t0)) $(awk '/^event: data$/{getline; sub(/^data: /,""); print}' <<<"$out" | jq -r .pid)"
}
delete() {
	run "{\"operation\":\"worker_process_delete\",\"pid\":$1}" | grep -q '\[DONE\]' || die "delete of $1 failed"
}
# --- 1. overhead: both sides timed by one client process (bench/spawn_time.py), alternated ---
spawn_once >/dev/null && delete "$(curl -sf "$url/v1/workers" | jq -r '.workers[0].pid')" # warm-up
python3 "$here/spawn_time.py" "$(cat "$tmp/hive.port")" "$binary" "$model" "$RUNS" >"$tmp/times" ||
	die "the spawn timing failed"
h=$(cut -d' ' -f1 "$tmp/times" | median)
s=$(cut -d' ' -f2 "$tmp/times" | median)
# The fastest run of each too: on a busy machine the medians mostly measure the scheduler.
hm=$(cut -d' ' -f1 "$tmp/times" | minimum)
sm=$(cut -d' ' -f2 "$tmp/times" | minimum)
printf 'spawn-to-ready, median of %d (fastest in brackets):\n' "$RUNS"
printf '  test worker started by hand, to /health answering: %s ms (%s ms)\n' "$h" "$hm"
printf '  hive worker_spawn submit to [DONE]:                %s ms (%s ms)\n' "$s" "$sm"
printf '  overhead of the hive: %.1f ms (ratio %.1fx; fastest: %.1f ms, %.1fx)\n' \
	"$(echo "$s - $h" | bc)" "$(echo "$s / $h" | bc -l)" "$(echo "$sm - $hm" | bc)" \
	"$(echo "$sm / $hm" | bc -l)"

# --- 2. leaks over COUNT spawn/stop cycles ---
fds() { ls "/proc/$hive/fd" | wc -l; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$hive/status"; }
workers_left() { pgrep -f -- "--worker-id rbee-test-worker-local-" | wc -l; }
zombies() { ps --ppid "$hive" -o stat= | grep -c Z || true; }
for _ in 1 2 3; do read -r _ pid <<<"$(spawn_once)"; delete "$pid"; done # warm-up
fd0=$(fds) rss0=$(rss)
t0=$(now_ms)
for _ in $(seq "$COUNT"); do
	read -r _ pid <<<"$(spawn_once)"
	delete "$pid"
done
t1=$(now_ms)
sleep 0.5
fd1=$(fds) rss1=$(rss)
printf '\n%d workers spawned and stopped in sequence in %d ms (%d ms per cycle):\n' "$COUNT" \
	"$((t1 - t0))" "$(((t1 - t0) / COUNT))"
printf '  hive open fds: %d before, %d after\n' "$fd0" "$fd1"
printf '  hive RSS:      %d KiB before, %d KiB after (%+d KiB)\n' "$rss0" "$rss1" "$((rss1 - rss0))"
printf '  worker processes left: %d, zombies: %d, registry entries: %d\n' "$(workers_left)" \
	"$(zombies)" "$(curl -sf "$url/v1/workers" | jq '.workers | length')"
[ "$fd1" -le "$fd0" ] && [ "$(workers_left)" -eq 0 ] && [ "$(zombies)" -eq 0 ] ||
	die "something leaked (see above)"
echo "no leaked processes, zombies or file descriptors"
