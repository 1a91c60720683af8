#!/usr/bin/env bash
# Every way a spawn or a stop can go wrong ends clearly and leaves nothing running: a port taken
# by someone else, a worker that cannot bind, crashes while starting, never becomes ready, is
# cancelled while loading, ignores SIGTERM, dies later; preflight refusals; foreign pids.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

make_spawn_catalog "$T/catalog"
add_variant "$T/catalog" rbee-test-crash cpu 30 --crash-on-start
add_variant "$T/catalog" rbee-test-failbind cpu 30 --fail-bind
add_variant "$T/catalog" rbee-test-slow cpu 1 --slow-start-ms 20000
add_variant "$T/catalog" rbee-test-slow-load cpu 60 --slow-start-ms 20000
add_variant "$T/catalog" rbee-test-stubborn cpu 30 --ignore-sigterm
add_variant "$T/catalog" rbee-test-dies cpu 30 --die-after-ms 1500
start_fake_hub
export RBEE_STOP_GRACE_MS=700 RBEE_HEALTH_INTERVAL_MS=300
start_hive --catalog "$T/catalog"
for w in rbee-test-worker-local rbee-test-crash rbee-test-failbind rbee-test-slow \
	 rbee-test-slow-load rbee-test-stubborn rbee-test-dies; do
	install "$w"
done
download "$MODEL"
lo=${RBEE_WORKER_PORTS%-*}
started_id() { sed -n "s/^data: starting '\([^']*\)'.*/\1/p" <<<"$1" | tail -n 1; }
no_process() { ! pgrep -f -- "--worker-id $1" >/dev/null; }

# --- a port somebody else listens on is skipped (the first port of the range, here) ---
python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', $lo)); s.listen(); time.sleep(120)" &
squatter=$!
track $squatter
wait_for bash -c "! python3 -c 'import socket; socket.socket().bind((\"127.0.0.1\", $lo))'" ||
	fail "the squatter did not take port $lo"
spawn_ok rbee-test-worker-local
assert_ne "$W_PORT" "$lo" "a port taken by another program is not handed out"
assert_eq "$W_PORT" "$((lo + 1))" "the next port of the range is"
run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}" >/dev/null
kill "$squatter"

# --- a worker that cannot bind its port: retried on other ports, then a clear error ---
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"rbee-test-failbind\"")
assert_contains "$out" "could not bind port" "a bind failure is recognised"
assert_contains "$out" "attempt 3 of 3" "and retried on other ports"
assert_contains "$out" "[ERROR]" "until the attempts run out"
assert_contains "$out" "Address already in use" "the error quotes the worker's log"
assert_eq "$(grep -c '^=== rbee-hive' "$RBEE_HOME"/logs/rbee-test-failbind-*.log)" 3 \
	"each attempt is one start in the same log"

# --- crash while starting: at once, with the exit status and the log's last lines ---
t0=$(date +%s%N)
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"rbee-test-crash\"")
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
err=$(grep '^data: \[ERROR\]' <<<"$out")
assert_contains "$err" "exited with status 3 before it became ready" "a crash fails with its exit status"
assert_contains "$err" "crashing on start as asked" "and the last lines of its log"
assert_contains "$out" "data:   | rbee-test-worker: crashing on start" "the log lines are narrated too"
[ "$elapsed_ms" -lt 5000 ] || fail "the crash took ${elapsed_ms} ms to be reported"
ok "the crash is reported at once (${elapsed_ms} ms), not at the ready timeout"
assert_eq "$(worker_count)" 0 "a failed spawn leaves no registry entry"

# --- never ready: stopped at the ready timeout ---
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"rbee-test-slow\"")
id=$(started_id "$out")
assert_contains "$out" "did not become ready within 1 s" "the ready timeout fails the spawn"
assert_contains "$out" "so it was stopped" "and says the worker was stopped"
no_process "$id" || fail "worker '$id' still runs after its ready timeout"
ok "the timed-out worker's process is gone"
assert_eq "$(worker_count)" 0 "and it is not listed"
assert_contains "$(cat "$HIVE_LOG")" "stopped worker '$id' (pid " "the hive log names the stopped worker"
assert_contains "$(grep -F "stopped worker '$id' (pid " "$HIVE_LOG")" "before it became ready (its spawn failed or was cancelled)" \
	"and says it was stopped because its spawn failed"

# --- cancelled while loading ---
job=$(submit "{\"operation\":\"worker_spawn\",\"model\":\"$MODEL\",\"worker\":\"rbee-test-slow-load\"}")
stream "$job" >"$T/cancel.txt" &
track $!
WAIT_S=10 wait_for grep -q '"stage":"loading"' "$T/cancel.txt" || fail "the slow worker never started loading"
id=$(started_id "$(cat "$T/cancel.txt")")
pgrep -f -- "--worker-id $id" >/dev/null || fail "no process for '$id' while loading"
http DELETE "/v1/jobs/$job" >/dev/null
WAIT_S=10 wait_for grep -q '\[CANCELLED\]' "$T/cancel.txt" || fail "the spawn was not cancelled"
ok "a spawn can be cancelled while the worker loads"
no_process "$id" || fail "worker '$id' survived the cancel"
ok "the cancelled worker's process is gone"

# --- SIGTERM ignored: SIGKILL after the grace period ---
spawn_ok rbee-test-stubborn
t0=$(date +%s%N)
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}")
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
assert_contains "$out" "killed by signal 9" "a worker ignoring SIGTERM is killed"
[ "$elapsed_ms" -ge 700 ] || fail "it was killed after ${elapsed_ms} ms, before the 700 ms grace"
ok "only after the grace period (${elapsed_ms} ms)"
gone "$W_PID" || fail "pid $W_PID still exists after the kill"
ok "and reaped"

# --- dies later: the monitor notices and keeps the exit status ---
spawn_ok rbee-test-dies
wait_for bash -c "curl -sf '$HIVE_URL/v1/workers' | jq -e '.workers[] | select(.state == \"exited\")'" ||
	fail "the monitor did not notice the exit"
w=$(curl -sf "$HIVE_URL/v1/workers" | jq '.workers[0]')
assert_eq "$(jq -r .exit <<<"$w")" "exited with status 5" "the exit status is kept"
gone "$W_PID" || fail "the dead worker $W_PID was not reaped"
ok "the dead worker was reaped by the monitor"
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}")
assert_contains "$out" "already exited" "deleting an exited worker only drops its entry"
assert_eq "$(worker_count)" 0 "which is then gone"

# --- foreign pids are refused and never signalled ---
sleep 300 &
foreign=$!
track $foreign
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$foreign}")
assert_contains "$out" "[ERROR] pid $foreign is not a worker spawned by this hive" "a foreign pid is refused"
kill -0 "$foreign" || fail "the foreign process was signalled"
ok "and not signalled"
out=$(run_job '{"operation":"worker_process_get","pid":1}')
assert_contains "$out" "[ERROR] pid 1 is not a worker spawned by this hive" "get refuses foreign pids too"
assert_contains "$(http POST /v1/jobs '{"operation":"worker_process_delete","pid":0}')" "400" \
	"pid 0 is refused at submit"
"$BIN/rbee" worker process delete "$foreign" >/dev/null 2>&1 && fail "the CLI accepted a foreign pid"
ok "rbee worker process delete exits non-zero for it"

# --- preflight refusals: each clear, nothing started ---
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"no-such-worker\"")
assert_contains "$out" "[ERROR] 'no-such-worker' is neither a backend of this hive nor an installed worker" \
	"an unknown worker is refused"
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"cpu\",\"device\":7")
assert_contains "$out" "[ERROR] device 7 does not exist for backend 'cpu'" "a missing device is refused"
assert_contains "$out" "0 (CPU-0)" "naming the devices there are"
out=$(spawn '"model":"org/not-downloaded","worker":"cpu"')
assert_contains "$out" "[ERROR]" "a model not in the store is refused"
assert_contains "$out" "org/not-downloaded" "naming the model"
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"metal\"")
assert_contains "$out" "[ERROR] backend 'metal' is not available on this node" "an unavailable backend is refused"
assert_contains "$(http POST /v1/jobs '{"operation":"worker_spawn","model":"org/m","worker":"a/b"}')" "400" \
	"a malformed worker name is refused at submit"
rc=0
"$BIN/rbee" worker spawn --worker cpu >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "rbee worker spawn without --model is a usage error"
assert_eq "$(worker_count)" 0 "no refusal left an entry"
pass
