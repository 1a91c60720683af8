#!/usr/bin/env bash
# The hive's own log names every worker it spawns, and says how each one ended: spawned (id,
# pid, port, backend and device, model), ready, stopped on request, exited with its status,
# killed by a signal, failed health checks, re-adopted by the next hive, stopped at shutdown.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

make_spawn_catalog "$T/catalog"
add_variant "$T/catalog" rbee-test-dies cpu 30 --die-after-ms 1500
start_fake_hub
export RBEE_HEALTH_INTERVAL_MS=300 RBEE_STOP_GRACE_MS=2000
start_hive --catalog "$T/catalog" --keep-workers
install rbee-test-worker-local
install rbee-test-dies
download "$MODEL"
# the hive's log from line $1 on (each hive appends to the same file)
log_from() { tail -n "+$1" "$HIVE_LOG"; }
log_has() { grep -qF -- "$1" "$HIVE_LOG"; }
mark() { echo $(($(wc -l <"$HIVE_LOG") + 1)); }

# --- spawned, ready, stopped on request ---
spawn_ok rbee-test-worker-local 0
log=$(cat "$HIVE_LOG")
assert_contains "$log" "spawned worker '$W_ID' (pid $W_PID, port $W_PORT, cpu device 0 CPU-0, model '$MODEL', installed worker 'rbee-test-worker-local')" \
	"the log says which worker was spawned, with pid, port, backend, device and model"
assert_contains "$log" "worker '$W_ID' (pid $W_PID, port $W_PORT) is ready" "and when it became ready"
assert_contains "$(grep -F "spawned worker '$W_ID'" "$HIVE_LOG")" "rbee-hive info: " "at info level"
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}")
assert_contains "$out" "[DONE]" "the worker is deleted"
assert_contains "$(cat "$HIVE_LOG")" \
	"stopped worker '$W_ID' (pid $W_PID, port $W_PORT, model '$MODEL') on request: killed by signal 15" \
	"the log says it was stopped on request, and how it ended"

# --- exited by itself, with its status ---
spawn_ok rbee-test-dies 0
WAIT_S=10 wait_for log_has "worker '$W_ID' (pid $W_PID, port $W_PORT, model '$MODEL') exited with status 5" ||
	fail "the log does not say that worker $W_ID exited: $(tail -n 5 "$HIVE_LOG")"
ok "the log says a worker exited by itself, with its exit status"
dead_id=$W_ID dead_pid=$W_PID
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$dead_pid}")
assert_contains "$out" "[DONE]" "the exited worker's entry is deleted"
assert_contains "$(cat "$HIVE_LOG")" "removed worker '$dead_id' (pid $dead_pid, exited: exited with status 5) from the registry" \
	"the log says its entry was removed"

# --- killed by a signal ---
spawn_ok rbee-test-worker-local 0
kill -KILL "$W_PID"
WAIT_S=10 wait_for log_has "worker '$W_ID' (pid $W_PID, port $W_PORT, model '$MODEL') killed by signal 9" ||
	fail "the log does not say that worker $W_ID was killed: $(tail -n 5 "$HIVE_LOG")"
ok "the log says a worker was killed by a signal"

# --- failed health checks, and healthy again ---
spawn_ok rbee-test-worker-local 0
kill -STOP "$W_PID"
WAIT_S=20 wait_for log_has "worker '$W_ID' (pid $W_PID) is unhealthy: 3 health checks failed in a row" ||
	fail "the log does not say that worker $W_ID failed its health checks: $(tail -n 5 "$HIVE_LOG")"
ok "the log says a worker failed its health checks"
kill -CONT "$W_PID"
WAIT_S=10 wait_for log_has "worker '$W_ID' (pid $W_PID) is healthy again" || fail "not healthy again"
ok "and when it is healthy again"
kept_id=$W_ID kept_pid=$W_PID kept_port=$W_PORT

# --- --keep-workers, re-adoption, stopped at shutdown ---
stop_hive TERM
kill -0 "$kept_pid" || fail "--keep-workers did not keep worker $kept_pid"
m=$(mark)
start_hive --catalog "$T/catalog"
assert_contains "$(log_from "$m")" \
	"re-adopted worker '$kept_id' (pid $kept_pid, port $kept_port, cpu device 0 CPU-0, model '$MODEL'): ready" \
	"the next hive's log says which worker it re-adopted, with pid, port, device and model"
m=$(mark)
stop_hive TERM
gone "$kept_pid" || wait_for bash -c "[ ! -e /proc/$kept_pid ] || grep -q ' Z ' /proc/$kept_pid/stat" ||
	fail "the re-adopted worker survived SIGTERM"
assert_contains "$(log_from "$m")" "stopped worker '$kept_id' (pid $kept_pid, port $kept_port, model '$MODEL') at hive shutdown" \
	"the log says which worker was stopped at shutdown"
pass
