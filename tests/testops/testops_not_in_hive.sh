#!/usr/bin/env bash
# The production rbee-hive carries no test operation: no test_sleep symbol or string, and a
# submit of test_sleep is an unknown operation even with RBEE_ENABLE_TEST_OPS=1. The tests'
# build (rbee-hive-test) does run it, so the same submit proves the difference.
. "$RBEE_SRC/tests/lib.sh"

hive="$BIN/rbee-hive"
syms=$(nm "$hive" 2>/dev/null | grep -ci 'test_sleep\|test_validate\|register_test_ops' || true)
assert_eq "$syms" 0 "rbee-hive has no test_sleep symbol"
n=$(strings -a "$hive" | grep -c 'test_sleep' || true)
assert_eq "$n" 0 "rbee-hive has no 'test_sleep' string"
# The check itself sees the operation where it is linked.
n=$(strings -a "$BIN/rbee-hive-test" | grep -c 'test_sleep' || true)
assert_ne "$n" 0 "rbee-hive-test carries test_sleep (the check can see it)"

export RBEE_ENABLE_TEST_OPS=1
start_hive
body='{"operation":"test_sleep","seconds":0}'
out=$(http POST /v1/jobs "$body")
assert_eq "${out%% *}" 400 "rbee-hive refuses test_sleep with RBEE_ENABLE_TEST_OPS=1"
assert_contains "$out" "unknown operation 'test_sleep'" "as an unknown operation"
assert_eq "$(curl -sf "$HIVE_URL/v1/jobs" | jq '.jobs | length')" 0 "no job was created"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "rbee-hive still answers /health"
stop_hive

HIVE_BIN="$BIN/rbee-hive-test" start_hive
out=$(run_job "$body")
assert_contains "$out" "[DONE]" "rbee-hive-test runs test_sleep"
pass
