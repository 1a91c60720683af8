#!/usr/bin/env bash
# worker_spawn without `worker`: the highest-scoring available backend that has an installed,
# intact worker and a device the model fits on, narrated ("chose backend X (score N) over ...").
# A backend without a probe is available with score 0: used when named, never chosen. The
# plugin state init made in the daemon reaches verify and spawn (host->plugin_state).
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

mkdir -p "$T/plugins"
cp "$RBEE_BUILD/tests/loader/sdk/score/"rbee_backend_test{high,low,big,noprobe}.so "$T/plugins/"
export RBEE_BACKEND_PATH="$T/plugins" RBEE_BACKEND_BLOCKLIST=cpu,cuda,metal
make_spawn_catalog "$T/catalog"
for b in high low big noprobe; do add_variant "$T/catalog" "rbee-test-$b" "test$b" 30; done
start_fake_hub
start_hive --catalog "$T/catalog"

backends=$(curl -sf "$HIVE_URL/v1/backends")
assert_eq "$(jq -r '.backends[] | select(.name == "testnoprobe") | "\(.state) \(.score)"' <<<"$backends")" \
	"available 0" "a plugin without probe is available with score 0"
assert_contains "$(jq -r '.backends[] | select(.name == "testnoprobe") | .reason' <<<"$backends")" \
	"the plugin has no probe: assumed available, score 0 (used only when a spawn names it)" "and says so"
for b in high low big noprobe; do install "rbee-test-$b"; done
download "$MODEL"

out=$(run_job '{"operation":"worker_verify","worker_id":"rbee-test-high"}')
assert_contains "$out" "plugin state" "verify runs the plugin's own check"
assert_contains "$out" "made by init of testhigh" "with the state its init made in the daemon"

spawn_named_none() { spawn "\"model\":\"$MODEL\""; }
out=$(spawn_named_none)
[[ "$out" == *"data: [DONE]"* ]] || fail "spawn without worker failed: $(tail -n 5 <<<"$out")"
W_JSON=$(job_data "$out")
W_PID=$(jq -r .pid <<<"$W_JSON")
assert_eq "$(jq -r .backend <<<"$W_JSON")" testhigh "the highest-scoring backend that can run it is chosen"
assert_contains "$out" "chose backend testhigh (score 90) over testlow (score 10); passed over testbig (score 95: model '$MODEL' does not fit on device 0 (SCORE-0))" \
	"the choice is narrated, with why a higher score was passed over"
assert_contains "$out" "not ranked (score 0, used only when named): testnoprobe" "score 0 is never chosen"
assert_contains "$(tr '\0' '\n' <"/proc/$W_PID/environ")" "RBEE_TEST_PLUGIN_STATE=made by init of testhigh" \
	"spawn gets the plugin state too"
run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}" >/dev/null
wait_for gone "$W_PID" || fail "the worker was not stopped"

out=$(run_job '{"operation":"worker_remove","worker_id":"rbee-test-high"}')
[[ "$out" == *"data: [DONE]"* ]] || fail "worker_remove failed: $(tail -n 3 <<<"$out")"
out=$(spawn_named_none)
assert_eq "$(jq -r .backend <<<"$(job_data "$out")")" testlow "without testhigh's worker, testlow is chosen"
assert_contains "$out" "chose backend testlow (score 10); passed over testbig (score 95: model '$MODEL' does not fit on device 0 (SCORE-0)); testhigh (score 90: no 'testhigh' worker is installed)" \
	"saying why each better one was passed over"
W_PID=$(jq -r .pid <<<"$(job_data "$out")")
run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}" >/dev/null
wait_for gone "$W_PID" || fail "the worker was not stopped"
# The keeper sends no "worker" when --worker is not given, so the hive chooses.
cli=$("$BIN/rbee" --json worker spawn --model "$MODEL" 2>"$T/cli.err") || fail "rbee worker spawn without --worker failed: $(cat "$T/cli.err")"
assert_eq "$(jq -r .backend <<<"$cli")" testlow "rbee worker spawn without --worker lets the hive choose"
W_PID=$(jq -r .pid <<<"$cli")
run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}" >/dev/null
wait_for gone "$W_PID" || fail "the worker was not stopped"

run_job '{"operation":"worker_remove","worker_id":"rbee-test-low"}' >/dev/null
out=$(spawn_named_none)
assert_contains "$out" "[ERROR] no backend can run this spawn: testbig (score 95: model '$MODEL' does not fit" \
	"with no candidate left the spawn is refused"
assert_contains "$out" "not ranked (score 0): testnoprobe: name one with 'worker'" "naming what could be named"
assert_eq "$(worker_count)" 0 "nothing was registered"

spawn_ok rbee-test-noprobe 0
assert_eq "$(jq -r .backend <<<"$W_JSON")" testnoprobe "a score-0 backend runs when named"
run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}" >/dev/null
wait_for gone "$W_PID" || fail "the worker was not stopped"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"
pass
