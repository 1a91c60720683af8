#!/usr/bin/env bash
# `rbee worker logs --follow` loses no line and shows none twice across a cut connection and a
# hive restart, while the worker keeps writing: on reconnect the CLI sends the id of the last
# line it showed (Last-Event-ID, a log offset) and the hive resumes right after it. At the end
# what the follower printed is the log, byte for byte.
. "$RBEE_SRC/tests/lib.sh"
RBEE="$BIN/rbee"

# A running worker the hive re-adopts from its registry; the test writes its log.
adopt_worker w-cli # sets W_PID
LOG="$RBEE_HOME/logs/w-cli.log"
printf 'first line\n' >"$LOG"
start_hive --keep-workers
assert_eq "$(curl -s "$HIVE_URL/v1/workers" | jq -r '.workers[0].state')" ready "the worker is adopted"

python3 "$RBEE_SRC/tests/fixtures/cut_proxy.py" "$HIVE_PORT" "$T/proxy.port" "/logs" \
	>>"$T/proxy.log" 2>&1 &
proxy_pid=$!
track $proxy_pid
proxy="http://127.0.0.1:$(wait_port_file "$T/proxy.port")"
RBEE_HIVE_URL=$proxy "$RBEE" worker logs w-cli --follow --tail 10 >"$T/follow.txt" \
	2>"$T/follow.err" &
follow_pid=$!
track $follow_pid
WAIT_S=10 wait_for grep -q "first line" "$T/follow.txt" ||
	fail "the follower shows no line: $(cat "$T/follow.err")"
ok "the follower shows the log"

# The worker writes a numbered line every 20 ms until told to stop, also while the follower is
# disconnected (its reconnects wait 0.5 s and more).
(i=0; while [ ! -e "$T/stop" ]; do i=$((i + 1)); printf 'line %d\n' $i >>"$LOG"; sleep 0.02; done) &
writer=$!
track $writer
shown() { wc -l <"$T/follow.txt"; }
# grows: wait until the follower showed 10 more lines.
grows() {
	local n; n=$(shown)
	WAIT_S=10 wait_for bash -c "[ \$(wc -l <'$T/follow.txt') -gt $((n + 10)) ]"
}

grows || fail "the follower does not show the new lines: $(cat "$T/follow.err")"
kill -USR1 $proxy_pid
WAIT_S=5 wait_for grep -q "cut 1" "$T/proxy.log" || fail "the proxy did not cut the stream"
WAIT_S=10 wait_for grep -q "reconnecting" "$T/follow.err" ||
	fail "the follower did not reconnect: $(cat "$T/follow.err")"
grows || fail "no new line after the reconnect: $(cat "$T/follow.err")"
ok "the follower reconnects after a cut and shows new lines"

# The hive restarts (on the same port, keeping its workers) while the worker writes on.
stop_hive TERM
sleep 1
start_hive --keep-workers --port "$HIVE_PORT"
WAIT_S=20 wait_for bash -c "[ \$(grep -c reconnecting '$T/follow.err') -ge 2 ]" ||
	fail "the follower did not reconnect after the restart: $(cat "$T/follow.err")"
grows || fail "no new line after the hive restarted: $(cat "$T/follow.err")"
ok "the follower goes on after the hive restarted"

touch "$T/stop"
wait $writer
kill "$W_PID"
rc=0
WAIT_S=15 wait_for bash -c "! kill -0 $follow_pid 2>/dev/null" || fail "--follow did not end with the worker"
wait $follow_pid || rc=$?
assert_eq "$rc" 0 "--follow exits 0 when the worker ends"
assert_contains "$(cat "$T/follow.err")" "w-cli" "and says the worker is over"
written=$(wc -l <"$LOG")
[ "$written" -gt 40 ] || fail "the worker wrote only $written lines"
assert_eq "$(sort "$T/follow.txt" | uniq -d)" "" "no line is shown twice"
diff "$LOG" "$T/follow.txt" >"$T/diff.txt" ||
	fail "what the follower printed is not the log ($written lines): $(head -20 "$T/diff.txt")"
ok "what the follower printed is the whole log, in order: $written lines, none lost"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers /health"
pass
