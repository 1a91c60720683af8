#!/usr/bin/env bash
# `rbee worker logs --follow` on the CLI's one client stack (issue 13): against a hive started
# with a token it sends the token (refused without it, with the reason), and when its connection
# is cut it reconnects and keeps printing new lines, none of those shown before again.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"
RBEE="$BIN/rbee"
TOKEN=tok-logs-follow

make_spawn_catalog "$T/catalog"
start_fake_hub
RBEE_API_TOKEN=$TOKEN start_hive --catalog "$T/catalog"
HIVE_TOKEN=$TOKEN
install rbee-test-worker-local
download "$MODEL"
spawn_ok cpu 0

# poke TAG: make the worker log a line holding TAG and a number of its own (so no two lines of
# the log are alike and a line shown twice can be told).
pokes=0
poke() { pokes=$((pokes + 1)); curl -sf "http://127.0.0.1:$W_PORT/health?$1-$pokes" >/dev/null; }
# seen TAG FILE: poke until FILE shows TAG (the follower may still be connecting).
seen() { poke "$1"; sleep 0.2; grep -q "$1" "$2"; }

# --- the token
rc=0
out=$(timeout 10 "$RBEE" worker logs "$W_ID" --follow --tail 5 2>&1) || rc=$?
assert_eq "$rc" 1 "without the token --follow is refused (exit 1)"
assert_contains "$out" "token" "and says a token is needed"
rc=0
out=$(RBEE_API_TOKEN=wrong timeout 10 "$RBEE" worker logs "$W_ID" --follow --tail 5 2>&1) || rc=$?
assert_eq "$rc" 1 "with a wrong token --follow is refused (exit 1)"
assert_contains "$out" "bearer token" "and says the token was refused"
out=$(RBEE_API_TOKEN=$TOKEN timeout 10 "$RBEE" worker logs "$W_ID" --tail 50)
assert_contains "$out" "listening on 127.0.0.1:$W_PORT" "a plain tail works with the token"

# --- follow through a proxy that cuts the log stream on demand
python3 "$RBEE_SRC/tests/fixtures/cut_proxy.py" "$HIVE_PORT" "$T/proxy.port" "/logs" \
	>>"$T/proxy.log" 2>&1 &
proxy_pid=$!
track $proxy_pid
proxy="http://127.0.0.1:$(wait_port_file "$T/proxy.port")"
RBEE_API_TOKEN=$TOKEN RBEE_HIVE_URL=$proxy "$RBEE" worker logs "$W_ID" --follow --tail 0 \
	>"$T/follow.txt" 2>"$T/follow.err" &
follow_pid=$!
track $follow_pid
WAIT_S=10 wait_for seen before-cut "$T/follow.txt" || fail "--follow with the token shows no new line: $(cat "$T/follow.err")"
ok "--follow with the token shows new lines"
kill -USR1 $proxy_pid
WAIT_S=5 wait_for grep -q "cut 1" "$T/proxy.log" || fail "the proxy did not cut the stream: $(cat "$T/proxy.log")"
WAIT_S=10 wait_for grep -q "reconnecting" "$T/follow.err" || fail "the follower did not reconnect: $(cat "$T/follow.err")"
ok "the follower says it reconnects"
kill -0 $follow_pid 2>/dev/null || fail "the follower left after the cut: $(cat "$T/follow.err")"
WAIT_S=15 wait_for seen after-cut "$T/follow.txt" || fail "no new line after the reconnect: $(cat "$T/follow.err")"
ok "new lines are shown after the reconnect"
# A second cut: the retry budget was renewed by the events that came.
kill -USR1 $proxy_pid
WAIT_S=5 wait_for bash -c "[ \$(grep -c '^cut 1' '$T/proxy.log') -ge 2 ]" || fail "no second cut: $(cat "$T/proxy.log")"
WAIT_S=15 wait_for seen after-second-cut "$T/follow.txt" || fail "no new line after the second reconnect: $(cat "$T/follow.err")"
ok "and again after a second cut"
assert_eq "$(grep -c reconnecting "$T/follow.err")" 2 "one reconnect per cut"
assert_eq "$(sort "$T/follow.txt" | uniq -d)" "" "no line is shown twice (a reconnect does not repeat the log)"
shown=$(grep -o 'before-cut-[0-9]*' "$T/follow.txt" | tr '\n' ' ')
logged=$(grep -o 'before-cut-[0-9]*' "$RBEE_HOME/logs/$W_ID.log" | tail -n "$(wc -w <<<"$shown")" | tr '\n' ' ')
assert_eq "$shown" "$logged" "the lines shown before the cut are the log's, in order"

# --- the worker ends: the follower ends with it
out=$(RBEE_API_TOKEN=$TOKEN "$RBEE" worker process delete "$W_PID")
assert_contains "$out" "stopped" "the worker is stopped"
rc=0
WAIT_S=10 wait_for bash -c "! kill -0 $follow_pid 2>/dev/null" || fail "--follow did not end with the worker"
wait $follow_pid || rc=$?
assert_eq "$rc" 0 "--follow exits 0 when the worker ends"
assert_contains "$(cat "$T/follow.err")" "$W_ID" "and says the worker is over"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers /health"
pass
