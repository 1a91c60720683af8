#!/usr/bin/env bash
# Hostile backend plugins in RBEE_BACKEND_PATH against the real hive:
#   - an ELF constructor that segfaults (it runs at dlopen, before any descriptor check) and one
#     that never returns: the hive starts, /v1/backends lists both as broken with the reason, the
#     shipped cpu plugin works beside them, and a SIGHUP re-probe survives them too;
#   - probing never runs on a request thread: /v1/capabilities and /v1/backends answer at once
#     while a plugin's probe takes seconds, and the refresher re-probes in the background (on
#     its interval and at SIGHUP).
. "$RBEE_SRC/tests/lib.sh"
export RBEE_BACKEND_PATH="$RBEE_BUILD/tests/hostile_input/plugins"
export RBEE_PROBE_TIMEOUT_MS=5000 # one deadline for the whole round: cpu must fit beside the hang under ASan

# --- 1. constructors that crash or hang ---
RBEE_BACKEND_BLOCKLIST=slowprobe start_hive
backends=$(curl -sf "$HIVE_URL/v1/backends")
state() { jq -r --arg n "$1" '.backends[] | select(.name == $n) | .state' <<<"$backends"; }
reason() { jq -r --arg n "$1" '.backends[] | select(.name == $n) | .reason' <<<"$backends"; }
assert_eq "$(state ctorcrash)" broken "a plugin whose constructor segfaults is broken"
assert_contains "$(reason ctorcrash)" "probe crashed: " "the reason says the probe child crashed"
assert_contains "$(reason ctorcrash)" "while loading the plugin (its constructors" "while loading it"
assert_contains "$(reason ctorcrash)" "not loaded into the hive" "and that the hive did not load it"
assert_eq "$(state ctorhang)" broken "a plugin whose constructor hangs is broken"
assert_contains "$(reason ctorhang)" "loading the plugin timed out in the probe child" "after the probe's time limit"
assert_eq "$(state cpu)" available "the shipped cpu plugin works beside them"
caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_ne "$(jq -r '[.devices[] | select(.backend == "cpu")] | length' <<<"$caps")" 0 \
	"its devices are in /v1/capabilities"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive started and answers /health"
# The daemon never mapped them: only probe children did.
assert_eq "$(grep -c 'rbee_backend_ctor' "/proc/$HIVE_PID/maps" || true)" 0 \
	"neither plugin is mapped into the hive"
# SIGHUP re-probes every plugin, these too: the hive survives that as well.
kill -HUP "$HIVE_PID"
sleep 3
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive survives re-probing them at SIGHUP"
kill -0 "$HIVE_PID" || fail "the hive is gone after SIGHUP"
# The re-probe of the hanging plugin ends at its time limit (later under ASan and load).
no_hang_child() { [ "$(pgrep -f -- "--probe-plugin .*rbee_backend_ctorhang.so" | wc -l)" = 0 ]; }
WAIT_S=30 wait_for no_hang_child || true
assert_eq "$(pgrep -f -- "--probe-plugin .*rbee_backend_ctorhang.so" | wc -l)" 0 "no probe child is left"
out=$("$BIN/rbee" hive backends)
assert_contains "$out" "ctorcrash" "rbee hive backends lists it"
stop_hive

# --- 2. no probe on request threads ---
export HOSTILE_PROBE_SLEEP_MS=2500 HOSTILE_PROBE_COUNT="$T/probes" RBEE_PROBE_TIMEOUT_MS=8000
RBEE_PROBE_INTERVAL_S=3 RBEE_BACKEND_BLOCKLIST=ctorcrash,ctorhang start_hive
curl -sf "$HIVE_URL/v1/backends" >/dev/null # waits for the first round (start-up does not)
assert_eq "$(wc -l <"$T/probes")" 1 "the start probes the slow plugin once"
# Let the devices go stale (the routes used to re-probe them inline past 5 s), then read them
# while the background refresher is busy with the 2.5 s probe.
sleep 5.2
for route in capabilities backends capabilities backends; do
	t=$(curl -sf -o /dev/null -w '%{time_total}' "$HIVE_URL/v1/$route")
	awk -v t="$t" 'BEGIN { exit !(t < 0.5) }' || fail "/v1/$route took ${t}s: a probe ran on the request"
	ok "/v1/$route answers at once ($t s) with the last probe's result"
done
assert_eq "$(curl -sf "$HIVE_URL/v1/backends" | jq -r '.backends[] | select(.name == "slowprobe") | .state')" \
	available "the last result is served"
probes_at_least() { [ "$(wc -l <"$T/probes")" -ge "$1" ]; }
WAIT_S=15 wait_for probes_at_least 3 || fail "the refresher did not re-probe"
ok "the refresher re-probes in the background ($(wc -l <"$T/probes") probes)"
stop_hive

# SIGHUP triggers a refresh (no interval: on demand only).
: >"$T/probes"
RBEE_PROBE_INTERVAL_S=0 HOSTILE_PROBE_SLEEP_MS=10 RBEE_BACKEND_BLOCKLIST=ctorcrash,ctorhang start_hive
n=$(wc -l <"$T/probes")
kill -HUP "$HIVE_PID"
WAIT_S=5 wait_for probes_at_least $((n + 1)) || fail "SIGHUP did not re-probe"
ok "SIGHUP re-probes"
t=$(curl -s -o /dev/null -w '%{time_total}' "$HIVE_URL/v1/capabilities")
awk -v t="$t" 'BEGIN { exit !(t < 0.5) }' || fail "/v1/capabilities took ${t}s"
ok "still answers at once"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy at the end"
pass
