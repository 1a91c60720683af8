# jobs_cli.sh - the keeper's job client: `rbee hive check`, --json, exit statuses 0/1/2/3,
# progress lines without a TTY, Ctrl-C cancelling on the hive, reconnecting with
# Last-Event-ID after a dropped connection, and the bearer token.
. "$RBEE_SRC/tests/lib.sh"
export RBEE_ENABLE_TEST_OPS=1
HIVE_BIN="$BIN/rbee-hive-test" # test_sleep: only in the tests' build of the hive
start_hive
CLIENT="$RBEE_TEST_BIN/rbee-test-job-client"

# run_cli OUT ERR CMD...: run, keep stdout/stderr in files, print the exit status.
run_cli() {
	local out=$1 err=$2 rc=0
	shift 2
	"$@" >"$out" 2>"$err" || rc=$?
	echo $rc
}

# --- rbee hive check
rc=$(run_cli "$T/out" "$T/err" "$BIN/rbee" hive check)
assert_eq "$rc" 0 "rbee hive check exits 0"
out=$(cat "$T/out")
assert_contains "$out" "cache directory '$RBEE_HOME': writable" "narration goes to stdout"
assert_contains "$out" "verdict   ok" "the summary is rendered"
assert_contains "$out" "cpu " "the summary lists the backends"

rc=$(run_cli "$T/out" "$T/err" "$BIN/rbee" hive check --json)
assert_eq "$rc" 0 "rbee hive check --json exits 0"
assert_eq "$(jq -r .ok "$T/out")" true "--json prints the result JSON, which parses"
assert_eq "$(jq -r '.backends | length > 0' "$T/out")" true "--json result has the backends"
assert_contains "$(cat "$T/err")" "cache directory" "--json sends narration to stderr"
rc=$(run_cli "$T/out" "$T/err" "$BIN/rbee" hive check extra)
assert_eq "$rc" 2 "an extra argument is a usage error (2)"
rc=$(run_cli "$T/out" "$T/err" "$BIN/rbee" hive check --help)
assert_eq "$rc" 0 "hive check --help exits 0"

# --- job failures and refused requests
rc=$(run_cli "$T/out" "$T/err" "$CLIENT" '{"operation":"test_sleep","seconds":0,"fail":"disk on fire"}')
assert_eq "$rc" 1 "a job ending [ERROR] exits 1"
assert_contains "$(cat "$T/err")" "rbee: disk on fire" "the error message is shown"
rc=$(run_cli "$T/out" "$T/err" "$CLIENT" '{"operation":"worker_install","worker_id":"../x"}')
assert_eq "$rc" 2 "a request the hive refuses (400) exits 2"
assert_contains "$(cat "$T/err")" "invalid worker_id '../x'" "the hive's message is shown"

# --- progress without a TTY: plain lines on stderr; the result on stdout
rc=$(run_cli "$T/out" "$T/err" "$CLIENT" '{"operation":"test_sleep","seconds":1,"lines":2}')
assert_eq "$rc" 0 "a successful job exits 0"
assert_contains "$(cat "$T/err")" "sleeping: 100%" "progress is a plain line when not a TTY"
assert_not_contains "$(cat "$T/err")" $'\r' "no carriage returns without a TTY"
assert_eq "$(grep -c '^line ' "$T/out")" 2 "narration on stdout"
assert_contains "$(cat "$T/out")" '"slept_s": 1' "the result is printed"

# --- Ctrl-C cancels the job on the hive
"$CLIENT" '{"operation":"test_sleep","seconds":60}' >"$T/int.out" 2>"$T/int.err" &
cpid=$!
track $cpid
WAIT_S=10 wait_for grep -q "started 'sleep" "$T/int.out" || fail "the job did not start"
spid=$(sed -n "s/^started 'sleep 60' with pid \([0-9]*\)$/\1/p" "$T/int.out")
kill -INT $cpid
rc=0
wait $cpid || rc=$?
assert_eq "$rc" 1 "Ctrl-C exits 1"
assert_contains "$(cat "$T/int.err")" "cancelling job" "Ctrl-C says it cancels"
assert_contains "$(cat "$T/int.err")" "was cancelled" "and waits for the [CANCELLED] terminal"
! kill -0 "$spid" 2>/dev/null || fail "the job's child $spid still runs after Ctrl-C"
ok "the job's child is gone"
state=$(curl -sf "$HIVE_URL/v1/jobs" | jq -r '[.jobs[] | select(.operation == "test_sleep")][0].state')
assert_eq "$state" cancelled "the hive lists the job cancelled"

# --- a dropped connection: reconnect with Last-Event-ID, no line lost or repeated
python3 "$RBEE_SRC/tests/fixtures/cut_proxy.py" "$HIVE_PORT" "$T/proxy.port" /stream --after-bytes 600 \
	>>"$T/proxy.log" 2>&1 &
track $!
proxy="http://127.0.0.1:$(wait_port_file "$T/proxy.port")"
rc=$(RBEE_HIVE_URL=$proxy run_cli "$T/out" "$T/err" "$CLIENT" '{"operation":"test_sleep","seconds":1,"lines":40}')
assert_eq "$rc" 0 "the job succeeds through a dropped connection"
assert_contains "$(cat "$T/proxy.log")" "cut 1" "the proxy cut the job stream mid-way"
assert_contains "$(cat "$T/err")" "reconnecting" "the client says it reconnects"
assert_eq "$(grep '^line ' "$T/out")" "$(seq -f 'line %g of 40' 1 40)" "every line once, in order"

# --- the bearer token
stop_hive
RBEE_API_TOKEN=tok-123 start_hive
rc=$(run_cli "$T/out" "$T/err" "$BIN/rbee" hive check)
assert_eq "$rc" 1 "without the token the submit is refused (exit 1)"
assert_contains "$(cat "$T/err")" "bearer token" "and says a token is needed"
rc=$(RBEE_API_TOKEN=tok-123 run_cli "$T/out" "$T/err" "$BIN/rbee" hive check)
assert_eq "$rc" 0 "with RBEE_API_TOKEN the check runs"

# --- the hive is down
stop_hive
rc=$(run_cli "$T/out" "$T/err" "$BIN/rbee" hive check)
assert_eq "$rc" 3 "an unreachable hive exits 3"
assert_contains "$(cat "$T/err")" "cannot reach the hive at '$HIVE_URL'" "names the hive URL"
assert_contains "$(cat "$T/err")" "is rbee-hive running? (set --hive or RBEE_HIVE_URL)" "says what to do"
pass
