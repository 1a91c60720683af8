#!/usr/bin/env bash
# A restarted hive lists only the workers that still run: workers stopped on request or at a
# normal shutdown, workers that exited by themselves, and workers that died while the hive was
# down are reported once in the log and dropped, not listed as stopped or exited forever.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

make_spawn_catalog "$T/catalog"
add_variant "$T/catalog" rbee-test-dies cpu 30 --die-after-ms 1000
start_fake_hub
export RBEE_HEALTH_INTERVAL_MS=300 RBEE_STOP_GRACE_MS=2000
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
install rbee-test-dies
download "$MODEL"
state_of() { curl -sf "$HIVE_URL/v1/workers" | jq -r --arg id "$1" '.workers[] | select(.worker_id == $id) | .state'; }
saved_ids() { jq -r '[.workers[].worker_id] | sort | join(" ")' "$RBEE_HOME/state/workers.json"; }
mark() { echo $(($(wc -l <"$HIVE_LOG") + 1)); }

# --- a normal SIGTERM restart: stopped and exited workers are not listed again ---
spawn_ok rbee-test-worker-local
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}")
assert_contains "$out" "[DONE]" "a worker is stopped on request"
spawn_ok rbee-test-worker-local
shut_id=$W_ID shut_pid=$W_PID
spawn_ok rbee-test-dies
died_id=$W_ID
WAIT_S=10 wait_for bash -c "[ \"\$(curl -sf '$HIVE_URL/v1/workers' | jq -r '.workers[] | select(.worker_id == \"$died_id\") | .state')\" = exited ]" ||
	fail "worker $died_id did not exit"
ok "while the hive runs, a worker that exited by itself is listed as exited"
stop_hive TERM
gone "$shut_pid" || fail "worker $shut_pid survived the hive's SIGTERM"
ok "SIGTERM stops the running worker"
assert_eq "$(saved_ids)" "" "the saved registry hands no ended worker to the next hive"
start_hive --catalog "$T/catalog"
assert_eq "$(worker_count)" 0 "the restarted hive lists none of them (stopped, stopped at shutdown, exited)"
assert_eq "$(state_of "$shut_id")" "" "the worker stopped at shutdown is not listed as stopped"
assert_eq "$(state_of "$died_id")" "" "the worker that exited is not listed as exited"

# --- SIGKILL: a worker that died while the hive was down is reported once and dropped ---
spawn_ok rbee-test-worker-local
live_id=$W_ID live_pid=$W_PID
spawn_ok rbee-test-worker-local
lost_id=$W_ID lost_pid=$W_PID
spawn_ok rbee-test-dies
gone_id=$W_ID gone_pid=$W_PID
WAIT_S=10 wait_for bash -c "[ \"\$(jq -r '.workers[] | select(.worker_id == \"$gone_id\") | .state' '$RBEE_HOME/state/workers.json')\" = exited ]" ||
	fail "worker $gone_id did not exit"
stop_hive KILL
kill -KILL "$lost_pid"
wait_for bash -c "[ ! -e /proc/$lost_pid ] || grep -q ') Z ' /proc/$lost_pid/stat" || fail "$lost_pid still runs"
m=$(mark)
start_hive --catalog "$T/catalog"
assert_eq "$(state_of "$live_id")" ready "the worker that still runs is re-adopted and listed"
assert_eq "$(worker_count)" 1 "and it is the only one listed"
assert_eq "$(state_of "$lost_id")" "" "a worker that died while the hive was down is not listed"
assert_eq "$(state_of "$gone_id")" "" "nor one that exited before the hive was killed"
log=$(tail -n "+$m" "$HIVE_LOG")
assert_contains "$log" "worker '$lost_id' (pid $lost_pid, port " "the log reports the one that died meanwhile"
assert_contains "$log" "ended while the hive was not running (exit status unknown): dropped from the registry" \
	"as ended while the hive was down, and dropped"
assert_contains "$log" "worker '$gone_id' (pid $gone_pid, model '$MODEL') had exited with status 5 before the last hive stopped" \
	"the log reports the one that exited before, with its exit status"
assert_eq "$(saved_ids)" "$live_id" "the saved registry keeps only the running worker"
[ -f "$RBEE_HOME/logs/$lost_id.log" ] || fail "the dropped worker's log file is gone"
ok "the dropped worker's log file stays"

# --- reported once: the next restart does not mention them again ---
m=$(mark)
stop_hive KILL
start_hive --catalog "$T/catalog"
log=$(tail -n "+$m" "$HIVE_LOG")
assert_not_contains "$log" "$lost_id" "a dropped worker is reported only once"
assert_eq "$(worker_count)" 1 "the running worker is still listed"
stop_hive TERM
wait_for bash -c "[ ! -e /proc/$live_pid ] || grep -q ') Z ' /proc/$live_pid/stat" ||
	fail "worker $live_pid survived the hive's SIGTERM"
ok "and is stopped at the last shutdown"
start_hive --catalog "$T/catalog"
assert_eq "$(worker_count)" 0 "after which no worker is listed"
pass
