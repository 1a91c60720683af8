#!/usr/bin/env bash
# What a client is told is on disk before it is told: right after a spawn's [DONE] the
# registry file holds the worker (pid, ready), and a hive SIGKILLed at that moment re-adopts it;
# right after a stop's [DONE] the file no longer holds it, and a hive SIGKILLed then neither
# lists it nor even mentions it. The writes themselves happen off the registry's lock.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

make_spawn_catalog "$T/catalog"
start_fake_hub
# Changes no client waits for are batched for 3 s: what is on disk at an ack is there because
# the ack waited for it, not because the batch happened to be written already.
export RBEE_HEALTH_INTERVAL_MS=300 RBEE_STOP_GRACE_MS=2000 RBEE_REGISTRY_BATCH_MS=3000
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
download "$MODEL"
REG="$RBEE_HOME/state/workers.json"
on_disk() { jq -c --arg id "$1" '[.workers[] | select(.worker_id == $id) | {pid, state}]' "$REG"; }
state_of() { curl -sf "$HIVE_URL/v1/workers" | jq -r --arg id "$1" '.workers[] | select(.worker_id == $id) | .state'; }

# --- a spawn's [DONE]: on disk at once, re-adopted after a SIGKILL right then ---
for round in 1 2 3; do
	spawn_ok cpu
	assert_eq "$(on_disk "$W_ID")" "[{\"pid\":$W_PID,\"state\":\"ready\"}]" \
		"spawn $round: at [DONE] the registry file already holds the ready worker"
	stop_hive KILL
	start_hive --catalog "$T/catalog"
	w=$(curl -sf "$HIVE_URL/v1/workers" | jq -c --arg id "$W_ID" '.workers[] | select(.worker_id == $id) | {pid, adopted}')
	assert_eq "$w" "{\"pid\":$W_PID,\"adopted\":true}" "spawn $round: the hive SIGKILLed right after re-adopts it"
	wait_for test "$(state_of "$W_ID")" = ready || fail "re-adopted worker $W_ID is not ready"
	# --- a stop's [DONE]: gone from the file at once; a SIGKILL right then does not bring it back ---
	out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}")
	assert_contains "$out" "[DONE]" "stop $round: the worker is stopped"
	assert_eq "$(on_disk "$W_ID")" "[]" "stop $round: at [DONE] the registry file no longer holds it"
	stop_hive KILL
	gone "$W_PID" || [ "$(awk '{print $3}' "/proc/$W_PID/stat" 2>/dev/null)" = Z ] ||
		fail "stopped worker $W_PID still runs"
	HIVE_LOG_BEFORE=$(wc -l <"$HIVE_LOG")
	start_hive --catalog "$T/catalog"
	assert_eq "$(state_of "$W_ID")" "" "stop $round: the next hive does not list it"
	assert_not_contains "$(tail -n +"$((HIVE_LOG_BEFORE + 1))" "$HIVE_LOG")" "$W_ID" \
		"stop $round: nor mentions it (its removal was on disk, not found dead at load)"
done

curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive still answers /health"
assert_eq "$(worker_count)" 0 "nothing is left in the registry"
pass
