#!/usr/bin/env bash
# Probes run on the registry's refresher thread only: the hive answers /health before the first
# probe round has finished (start-up does not wait on plugins; a job meanwhile waits for that
# round), and /v1/capabilities answers at once from the last result, saying how old it is,
# while a slow probe is re-running.
. "$RBEE_SRC/tests/lib.sh"

mkdir -p "$T/plugins"
cp "$RBEE_BUILD/tests/loader/sdk/slow/rbee_backend_testslow.so" "$T/plugins/"
export RBEE_BACKEND_PATH="$T/plugins" RBEE_BACKEND_BLOCKLIST=cuda,metal
export RBEE_TEST_PROBE_SLEEP_MS=4000 RBEE_PROBE_INTERVAL_S=1 RBEE_PROBE_TIMEOUT_MS=30000
slow_probes() { pgrep -f -- "--probe-plugin $T/plugins/rbee_backend_testslow.so" | wc -l; }

start_hive
assert_eq "$(slow_probes)" 1 "the hive answers /health while the first (slow) probe still runs"
assert_not_contains "$(cat "$HIVE_LOG")" "first probe round done" "the first round has not landed yet"
# Readers asking during the first round wait for it without holding a server thread: with more
# of them waiting than the server has threads (one per CPU, at most 16), /health still answers
# at once.
nwait=$(( $(nproc) < 16 ? $(nproc) + 2 : 18 ))
for i in $(seq "$nwait"); do
	curl -s -D "$T/early$i.head" --max-time 40 "$HIVE_URL/v1/backends" >"$T/early$i.json" &
	EARLY+=($!)
done
sleep 1
t=$(curl -sf -o /dev/null -w '%{time_total}' --max-time 10 "$HIVE_URL/health") || fail "/health failed while readers waited"
awk -v t="$t" 'BEGIN { exit !(t < 1.5) }' || fail "/health took ${t} s while $nwait readers waited for the first round"
ok "/health answers at once (${t} s) while $nwait readers wait for the first round"
assert_eq "$(slow_probes)" 1 "the first round was still running then"

# A job right now waits for the first round (bounded) instead of failing on "probing": this
# spawn gets as far as the installed workers.
out=$(run_job '{"operation":"worker_spawn","model":"org/tiny-GGUF","worker":"testslow"}')
assert_contains "$out" "[ERROR] no 'testslow' worker is installed" "a spawn during the first round waits for it"
assert_not_contains "$out" "probing" "and never sees the backend probing"

for pid in "${EARLY[@]}"; do wait "$pid" || fail "a reader that asked during the first round failed"; done
for i in $(seq "$nwait"); do
	assert_eq "$(jq -r '.backends[] | select(.name == "testslow") | .state' "$T/early$i.json")" available \
		"reader $i, which asked during the first round, got the round's answer"
	assert_eq "$(jq -r .probing "$T/early$i.json")" false "and not a probing list"
	grep -qi '^content-type: application/json' "$T/early$i.head" || fail "reader $i got no JSON content type"
done
ok "every reader got the whole first round as application/json"

# Readers wait (bounded) for the first round only: then they have the whole answer.
backends=$(curl -sf --max-time 20 "$HIVE_URL/v1/backends")
assert_eq "$(jq -r '.backends[] | select(.name == "testslow") | .state' <<<"$backends")" available \
	"after the first round the slow backend is available"
assert_eq "$(jq -r .probing <<<"$backends")" false "and the hive says it is no longer probing"
assert_contains "$(cat "$HIVE_LOG")" "first probe round done" "the first round is logged"

# From now on a round is almost always running (4 s probe, 1 s interval): each request made
# while one runs (a probe child before and after it) answers at once with the previous result
# and its age. "At once" is under 2 s, half the probe's time, so a loaded machine cannot fail it.
proven=0 aged=0
for _ in $(seq 30); do
	[ "$proven" -ge 4 ] && break
	wait_for bash -c "[ \$(pgrep -f -- '--probe-plugin $T/plugins/rbee_backend_testslow.so' | wc -l) -ge 1 ]" ||
		fail "no re-probe is running"
	t=$(curl -sf -o "$T/caps.json" -w '%{time_total}' "$HIVE_URL/v1/capabilities")
	if [ "$(slow_probes)" -ge 1 ]; then
		proven=$((proven + 1))
		awk -v t="$t" 'BEGIN { exit !(t < 2.0) }' ||
			fail "GET /v1/capabilities took $t s while a probe ran"
	fi
	assert_eq "$(jq -r '[.devices[] | select(.id == "SLOW-0")] | length' "$T/caps.json")" 1 \
		"the device of the backend being re-probed is served"
	age=$(jq -r .probe_age_ms "$T/caps.json")
	[[ "$age" =~ ^[0-9]+$ ]] || fail "probe_age_ms is not a number: $age"
	[ "$age" -ge 1000 ] && aged=$((aged + 1))
	jq -e '.probed_at | test("^[0-9-]+T[0-9:]+Z$")' "$T/caps.json" >/dev/null || fail "probed_at missing"
	sleep 0.3
done
[ "$proven" -ge 4 ] || fail "only $proven requests could be made during a probe"
ok "GET /v1/capabilities answers at once while a 4 s probe runs ($proven times)"
[ "$aged" -ge 1 ] || fail "no answer was older than 1 s: the result is not the cached one"
ok "the answer is the previous result, with its age (probe_age_ms >= 1000 seen $aged times)"

# SIGHUP asks for a round of every plugin; it never blocks the server either.
kill -HUP "$HIVE_PID"
t=$(curl -sf -o /dev/null -w '%{time_total}' "$HIVE_URL/health")
awk -v t="$t" 'BEGIN { exit !(t < 1.0) }' || fail "/health took $t s after SIGHUP"
ok "/health answers at once after SIGHUP"
stop_hive
assert_eq "$(slow_probes)" 0 "no probe child outlives the hive"
pass
