# jobs_cancel.sh - DELETE /v1/jobs/{id}: the child process group stops (SIGTERM, SIGKILL
# when it ignores that), partial files go, the stream ends [CANCELLED]; queued jobs end at once;
# shutdown cancels what runs.
. "$RBEE_SRC/tests/lib.sh"
export RBEE_ENABLE_TEST_OPS=1
HIVE_BIN="$BIN/rbee-hive-test" # test_sleep: only in the tests' build of the hive
start_hive --max-jobs 1

# follow ID NAME: stream a job into $T/NAME.sse in the background; sets FOLLOW_PID.
follow() {
	stream "$1" >"$T/$2.sse" &
	FOLLOW_PID=$!
	track $FOLLOW_PID
}

# child_pid NAME: wait for the job's "started 'sleep N' with pid P" line, print P.
child_pid() {
	WAIT_S=10 wait_for grep -q "started 'sleep" "$T/$1.sse" || fail "the job did not start its child"
	sed -n "s/^data: started 'sleep [0-9]*' with pid \([0-9]*\).*/\1/p" "$T/$1.sse"
}

gone() { ! kill -0 "$1" 2>/dev/null; }

# --- a running job: SIGTERM stops its child, scratch file removed, [CANCELLED]
id=$(submit '{"operation":"test_sleep","seconds":60}')
follow "$id" run
pid=$(child_pid run)
kill -0 "$pid" || fail "the sleep child $pid is not running"
ok "the job's child runs (pid $pid)"
scratch=$(sed -n "s/^data: scratch file '\(.*\)'$/\1/p" "$T/run.sse")
[ -f "$scratch" ] || fail "no scratch file '$scratch'"
ok "the job holds a scratch file"
queued=$(submit '{"operation":"test_sleep","seconds":60}') # waits: one slot only
t0=$(date +%s%N)
res=$(http DELETE "/v1/jobs/$id")
assert_eq "${res%% *}" 200 "cancel answers 200"
assert_eq "$(jq -c . <<<"${res#* }")" "{\"job_id\":\"$id\",\"status\":\"cancelled\"}" "cancel answers the job id and status"
wait $FOLLOW_PID
ms=$((($(date +%s%N) - t0) / 1000000))
ok "the stream ended ${ms} ms after the cancel"
assert_contains "$(cat "$T/run.sse")" "(pid $pid) killed by signal 15" "SIGTERM stopped the child (no SIGKILL needed)"
assert_eq "$(grep '^data: ' "$T/run.sse" | tail -n 1)" "data: [CANCELLED]" "the terminal is [CANCELLED]"
assert_eq "$(grep -c '^data: \[' "$T/run.sse")" 1 "exactly one terminal"
gone "$pid" || fail "the sleep child $pid still runs"
ok "the child process is gone"
[ ! -e "$scratch" ] || fail "the scratch file '$scratch' was left behind"
ok "the partial file was removed"
res=$(http DELETE "/v1/jobs/$id")
assert_eq "${res%% *}" 409 "cancelling again is 409"

# --- the queued job got the slot; cancel it while it runs, then a queued one at once
follow "$queued" q
pid=$(child_pid q)
third=$(submit '{"operation":"test_sleep","seconds":60}')
res=$(http DELETE "/v1/jobs/$third")
assert_eq "${res%% *}" 200 "cancel of a queued job answers 200"
out=$(STREAM_MAX_S=5 stream "$third")
assert_contains "$out" "data: queued: all 1 job slots are busy" "a queued job says why it waits"
assert_eq "$(grep '^data: ' <<<"$out" | tail -n 1)" "data: [CANCELLED]" "a queued job ends [CANCELLED] at once"
assert_not_contains "$out" "started 'sleep" "a cancelled queued job never starts"
state=$(curl -sf "$HIVE_URL/v1/jobs" | jq -r --arg id "$third" '.jobs[] | select(.job_id == $id) | "\(.state) \(.started_at)"')
assert_eq "$state" "cancelled null" "it is listed cancelled, never started"
http DELETE "/v1/jobs/$queued" >/dev/null
wait $FOLLOW_PID
gone "$pid" || fail "child $pid still runs"
ok "second job's child is gone too"

# --- a child that ignores SIGTERM is killed after the grace period
id=$(submit '{"operation":"test_sleep","seconds":60,"stubborn":1}')
follow "$id" stubborn
pid=$(child_pid stubborn)
sleep 0.2 # let the shell set up its trap and exec sleep
t0=$(date +%s%N)
http DELETE "/v1/jobs/$id" >/dev/null
wait $FOLLOW_PID
ms=$((($(date +%s%N) - t0) / 1000000))
# Only the lower bound is a fact: the grace period; a loaded machine may add to it.
[ $ms -ge 2500 ] || fail "a SIGTERM-deaf child was stopped after $ms ms, before the ~3 s grace"
assert_contains "$(cat "$T/stubborn.sse")" "killed by signal 9" "a SIGTERM-deaf child is SIGKILLed after the grace ($ms ms)"
gone "$pid" || fail "the deaf child $pid still runs"
assert_eq "$(grep '^data: ' "$T/stubborn.sse" | tail -n 1)" "data: [CANCELLED]" "and the job ends [CANCELLED]"

# --- shutdown cancels running jobs and ends their streams
id=$(submit '{"operation":"test_sleep","seconds":60}')
follow "$id" shutdown
pid=$(child_pid shutdown)
stop_hive
wait $FOLLOW_PID
assert_eq "$(grep '^data: ' "$T/shutdown.sse" | tail -n 1)" "data: [CANCELLED]" "hive shutdown ends running jobs [CANCELLED]"
gone "$pid" || fail "child $pid outlived the hive"
ok "no child outlives the hive"
pass
