#!/usr/bin/env bash
# A CPU worker's whole life: spawned on CPU device 0 (the test worker installed from the test
# catalog, the model downloaded from the fake hub), ready, bound to the NUMA node's cpuset,
# without the hive's secrets, listed with live facts, its log and the heartbeats readable, its
# model and installed worker protected while it runs, then deleted: gone, reaped, unlisted.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"
RBEE="$BIN/rbee"

make_spawn_catalog "$T/catalog"
start_fake_hub
export HF_TOKEN=hf_secret_value MY_SERVICE_PASSWORD=pw RBEE_SPAWN_MARKER=kept
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
download "$MODEL"

# --- spawn ---
spawn_ok cpu 0
assert_contains "$SPAWN_STREAM" '"stage":"loading"' "a loading progress event"
assert_contains "$SPAWN_STREAM" '"stage":"ready"' "then a ready progress event"
assert_eq "$(jq -r .status <<<"$W_JSON")" ready "the result says ready"
assert_contains "$W_ID" "rbee-test-worker-local-" "the worker id starts with the installed id"
assert_eq "$(jq -r .url <<<"$W_JSON")" "http://127.0.0.1:$W_PORT" "the url is on the port"
assert_eq "$(jq -r '.model + " " + .backend + " " + (.device|tostring)' <<<"$W_JSON")" \
	"$MODEL cpu 0" "model, backend and device are reported"
assert_eq "$(curl -sf "http://127.0.0.1:$W_PORT/health")" ok "the worker's /health answers"
lo=${RBEE_WORKER_PORTS%-*} hi=${RBEE_WORKER_PORTS#*-}
[ "$W_PORT" -ge "$lo" ] && [ "$W_PORT" -le "$hi" ] || fail "port $W_PORT is outside $RBEE_WORKER_PORTS"
ok "the port comes from RBEE_WORKER_PORTS"

# --- binding and environment ---
cpuset=$(curl -sf "$HIVE_URL/v1/capabilities" | jq -r '.devices[] | select(.id == "CPU-0") | .cpuset')
affinity=$(awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$W_PID/status")
assert_eq "$affinity" "$cpuset" "the worker's CPU affinity is CPU-0's cpuset"
assert_eq "$(ps -o pgid= -p "$W_PID" | tr -d ' ')" "$W_PID" "the worker leads its own process group"
envs=$(tr '\0' '\n' <"/proc/$W_PID/environ")
assert_not_contains "$envs" "HF_TOKEN" "HF_TOKEN is not inherited"
assert_not_contains "$envs" "MY_SERVICE_PASSWORD" "*PASSWORD* variables are not inherited"
assert_contains "$envs" "RBEE_SPAWN_MARKER=kept" "ordinary variables are inherited"
assert_contains "$envs" "OMP_NUM_THREADS=" "the cpu plugin's variables are set"
# Only the worker's own descriptors: nothing of the hive (its listener, client connections,
# lock and registry files) may leak through fork + exec.
leaked=$(for fd in /proc/$W_PID/fd/*; do
	n=${fd##*/}
	[ "$n" -le 2 ] && continue
	readlink "$fd"
done | grep -E "$RBEE_HOME/state|$RBEE_HOME/models|hive.lock|$RBEE_HOME/workers" || true)
assert_eq "$leaked" "" "no file of the hive leaks into the worker"
sockets=$(for fd in /proc/$W_PID/fd/*; do readlink "$fd"; done | grep -c '^socket:' || true)
[ "$sockets" -le 2 ] || fail "the worker holds $sockets sockets: the hive's leaked into it"
ok "no socket of the hive leaks into the worker ($sockets of its own)"

# --- listing and inspection ---
list=$(curl -sf "$HIVE_URL/v1/workers")
w=$(jq --arg id "$W_ID" '.workers[] | select(.worker_id == $id)' <<<"$list")
assert_eq "$(jq -r .state <<<"$w")" ready "GET /v1/workers lists it as ready"
assert_eq "$(jq -r .pid <<<"$w")" "$W_PID" "with its pid"
[ "$(jq -r .rss_bytes <<<"$w")" -gt 0 ] || fail "no rss_bytes: $w"
ok "with its resident memory"
assert_eq "$(jq -r .vram_bytes <<<"$w")" null "VRAM is unknown for a CPU worker"
[ "$(jq -r .uptime_s <<<"$w")" -ge 0 ] || fail "no uptime: $w"
ok "with its uptime"
out=$("$RBEE" worker process list)
assert_contains "$out" "$W_ID" "rbee worker process list shows it"
assert_contains "$out" "ready" "with its state"
out=$("$RBEE" --json worker process get "$W_PID")
assert_eq "$(jq -r .worker_id <<<"$out")" "$W_ID" "rbee worker process get <pid> finds it"
out=$("$RBEE" worker logs "$W_ID" --tail 50)
assert_contains "$out" "listening on 127.0.0.1:$W_PORT" "rbee worker logs shows its output"
assert_contains "$out" "=== rbee-hive" "and the hive's start header"
assert_eq "$(curl -sf "$HIVE_URL/v1/workers/$W_ID/logs?tail=1" | wc -l)" 1 "?tail=1 gives one line"
assert_contains "$(http GET "/v1/workers/.hidden/logs")" "400" "a bad worker id is refused"
assert_contains "$(http GET "/v1/workers/nope/logs")" "404" "an unknown worker's log is 404"

"$RBEE" worker logs "$W_ID" --follow --tail 0 >"$T/follow.txt" 2>"$T/follow.err" &
follow_pid=$!
track $follow_pid
# Lines written from now on appear (poked until the follower, which connects in the
# background, shows one).
poke() { curl -sf "http://127.0.0.1:$W_PORT/health?from-follow-test" >/dev/null; sleep 0.2;
	 grep -q "from-follow-test" "$T/follow.txt"; }
WAIT_S=5 wait_for poke || fail "--follow did not show a new line"
ok "rbee worker logs --follow shows new lines as they come"

timeout 2.5 curl -sN "$HIVE_URL/v1/heartbeats/stream" >"$T/hb.txt" || true
beats=$(grep -c '^event: heartbeat' "$T/hb.txt")
[ "$beats" -ge 2 ] && [ "$beats" -le 4 ] || fail "expected 2-4 heartbeats in 2.5 s, got $beats"
ok "heartbeats come every second"
hb=$(grep -m1 -A1 '^event: heartbeat' "$T/hb.txt" | sed -n 's/^data: //p')
assert_eq "$(jq -r '.workers[0].worker_id' <<<"$hb")" "$W_ID" "a heartbeat carries the workers"
assert_eq "$(jq -r '.counts.ready' <<<"$hb")" 1 "and their counts by state"
assert_eq "$(jq -r '.hive_id' <<<"$hb")" localhost "and the hive's identity"

# --- what the worker uses is protected ---
out=$(run_job "{\"operation\":\"model_delete\",\"id\":\"$MODEL\"}")
assert_contains "$out" "[ERROR]" "model_delete is refused while a worker uses the model"
assert_contains "$out" "in use by a running worker" "and says why"
out=$(run_job '{"operation":"worker_remove","worker_id":"rbee-test-worker-local"}')
assert_contains "$out" "[ERROR]" "worker_remove is refused while a worker runs it"

# --- delete ---
out=$("$RBEE" worker process delete "$W_PID")
assert_contains "$out" "stopped" "rbee worker process delete stops it"
gone "$W_PID" || fail "pid $W_PID still exists (zombie?): $(cat /proc/$W_PID/stat 2>/dev/null)"
ok "the process is gone and reaped (no zombie)"
WAIT_S=5 wait_for bash -c "! kill -0 $follow_pid 2>/dev/null" || fail "--follow did not end with the worker"
ok "--follow ends when the worker stops"
assert_eq "$(worker_count)" 0 "the registry no longer lists it"
assert_eq "$(jq '.workers | length' "$RBEE_HOME/state/workers.json")" 0 "nor does its saved copy"
out=$(run_job "{\"operation\":\"model_delete\",\"id\":\"$MODEL\"}")
assert_contains "$out" "[DONE]" "model_delete works once the worker is gone"
pass
