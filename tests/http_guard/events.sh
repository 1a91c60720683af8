#!/usr/bin/env bash
# A job stream has one terminal line, the last: catalog strings in a job's result and a failure
# message that read "[DONE]" or "[ERROR] x" do not end the stream early for any client (those
# of the Rust hive take any line holding a marker as the end), and the result still means the
# same (the JSON escape \u005b stands for the "[").
. "$RBEE_SRC/tests/lib.sh"

cp -r "$RBEE_SRC/tests/catalog/fixtures/catalog" "$T/cat"
desc='done? [DONE] failed? [ERROR] boom [CANCELLED]'
jq --arg d "$desc" '.description = $d' "$RBEE_SRC/tests/catalog/fixtures/catalog/workers/test-worker-a.json" \
	>"$T/cat/workers/test-worker-a.json"
export RBEE_ENABLE_TEST_OPS=1
HIVE_BIN="$BIN/rbee-hive-test" # test_sleep: only in the tests' build of the hive
start_hive --catalog "$T/cat"

out=$(run_job '{"operation":"worker_catalog_get","worker_id":"test-worker-a"}')
markers=$(grep -c -e '\[DONE\]' -e '\[ERROR\]' -e '\[CANCELLED\]' <<<"$out" || true)
assert_eq "$markers" 1 "one line of the stream holds a marker"
assert_eq "$(grep '^data: ' <<<"$out" | tail -n 1)" "data: [DONE]" "the terminal, last"
assert_eq "$(job_data "$out" | jq -r .description)" "$desc" "the result's description is unchanged"

out=$(run_job '{"operation":"test_sleep","seconds":0,"fail":"step [DONE] then [ERROR] x"}')
markers=$(grep -c -e '\[DONE\]' -e '\[ERROR\]' <<<"$out" || true)
assert_eq "$markers" 1 "a failure message holding markers is one terminal line"
assert_eq "$(grep '^data: ' <<<"$out" | tail -n 1)" "data: [ERROR] step (DONE) then (ERROR) x" \
	"whose message has them defused"
assert_eq "$(curl -s "$HIVE_URL/v1/jobs" | jq -r '.jobs[0].state')" failed "the job is listed as failed"

# The keeper reads the result to its end and shows the description as it is.
set +e
cli=$("$BIN/rbee" worker get test-worker-a 2>&1); rc=$?
set -e
assert_eq "$rc" 0 "rbee reads the result to its end"
assert_contains "$cli" "$desc" "and shows the description as it is"

assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers"
pass
