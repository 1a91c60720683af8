#!/usr/bin/env bash
# The registry survives the hive: after a SIGKILL the next hive re-adopts live workers (pid and
# start time match) and can still stop them, drops (logging once) the ones that died meanwhile;
# SIGTERM stops workers unless --keep-workers; a damaged registry file is set aside.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

make_spawn_catalog "$T/catalog"
start_fake_hub
export RBEE_HEALTH_INTERVAL_MS=300 RBEE_STOP_GRACE_MS=2000
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
download "$MODEL"
# Re-adopted workers are not our children: once stopped they are gone, or a zombie waiting
# for whoever inherited them; either way not running.
not_running() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
state_of() { curl -sf "$HIVE_URL/v1/workers" | jq -r --arg id "$1" '.workers[] | select(.worker_id == $id) | .state'; }

# --- SIGKILL: the workers live on and are re-adopted ---
spawn_ok cpu
a_id=$W_ID a_pid=$W_PID a_port=$W_PORT
spawn_ok cpu
b_id=$W_ID b_pid=$W_PID
stop_hive KILL
kill -0 "$a_pid" || fail "the worker died with the hive"
ok "workers outlive a SIGKILLed hive"
kill -KILL "$b_pid"
start_hive --catalog "$T/catalog"
w=$(curl -sf "$HIVE_URL/v1/workers" | jq --arg id "$a_id" '.workers[] | select(.worker_id == $id)')
assert_eq "$(jq -r .pid <<<"$w")" "$a_pid" "the restarted hive lists the live worker"
assert_eq "$(jq -r .adopted <<<"$w")" true "as re-adopted"
assert_eq "$(jq -r .state <<<"$w")" ready "and ready"
assert_contains "$(cat "$HIVE_LOG")" "re-adopted worker '$a_id' (pid $a_pid" "the hive log says so"
assert_eq "$(state_of "$b_id")" "" "a worker that died meanwhile is not listed"
assert_contains "$(grep -F "worker '$b_id' (pid $b_pid" "$HIVE_LOG")" \
	"ended while the hive was not running" "the hive log reports it once, with the reason"
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$a_pid}")
assert_contains "$out" "[DONE]" "a re-adopted worker can still be deleted"
wait_for not_running "$a_pid" || fail "re-adopted worker $a_pid still runs"
ok "and stops"
assert_eq "$(state_of "$a_id")" "" "and leaves the registry"

# --- SIGKILL while the pid was reused: never adopted (start time differs) ---
spawn_ok cpu
c_id=$W_ID
stop_hive KILL
kill -KILL "$W_PID"
# Pretend the pid now belongs to an unrelated process: our own shell (alive, other start time).
jq --argjson pid $$ '(.workers[] | select(.worker_id == "'"$c_id"'") | .pid) = $pid' \
	"$RBEE_HOME/state/workers.json" >"$T/reg.json" && cp "$T/reg.json" "$RBEE_HOME/state/workers.json"
start_hive --catalog "$T/catalog"
assert_eq "$(state_of "$c_id")" "" "a pid with another start time is not adopted"
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$$}")
assert_contains "$out" "is not a worker spawned by this hive" "that pid is no worker of the hive"
kill -0 $$ || fail "the unrelated process was signalled"
ok "and signals nobody"

# --- SIGTERM stops the workers, gracefully ---
spawn_ok cpu
stop_hive TERM
gone "$W_PID" || fail "worker $W_PID survived the hive's SIGTERM"
ok "SIGTERM to the hive stops and reaps its workers"
assert_contains "$(cat "$HIVE_LOG")" "stopping 1 worker(s)" "the hive log says it stops them"

# --- --keep-workers leaves them for the next hive ---
start_hive --catalog "$T/catalog" --keep-workers
spawn_ok cpu
stop_hive TERM
kill -0 "$W_PID" || fail "--keep-workers did not keep worker $W_PID"
ok "--keep-workers leaves workers running"
start_hive --catalog "$T/catalog"
assert_eq "$(state_of "$W_ID")" ready "the next hive re-adopts them"
stop_hive TERM
wait_for not_running "$W_PID" || fail "the re-adopted worker survived SIGTERM"
ok "and stops them on its own SIGTERM"

# --- a damaged registry is set aside, not fatal ---
echo '{ not json' >"$RBEE_HOME/state/workers.json"
start_hive --catalog "$T/catalog"
assert_eq "$(worker_count)" 0 "a damaged registry starts empty"
ls "$RBEE_HOME"/state/workers.json.damaged-* >/dev/null || fail "the damaged file was not kept"
ok "and the damaged file is kept aside"
pass
