#!/usr/bin/env bash
# The hive loads plugins from RBEE_BACKEND_PATH, records every refusal with its reason, and
# survives a plugin whose probe crashes or hangs.
. "$RBEE_SRC/tests/lib.sh"

export RBEE_BACKEND_PATH="$RBEE_BUILD/tests/loader/plugins"
# A crash report under ASan on a loaded machine takes seconds, and a round starts all ~18
# fixture probes at once with one deadline: the shipped cpu probe must fit in it on 2 cores.
export RBEE_PROBE_TIMEOUT_MS=10000
start_hive

backends=$(curl -sf "$HIVE_URL/v1/backends")
state() { jq -r --arg n "$1" '.backends[] | select(.name == $n) | .state' <<<"$backends"; }
reason() { jq -r --arg n "$1" '.backends[] | select(.name == $n) | .reason' <<<"$backends"; }

assert_eq "$(state testgood)" available "a good plugin is available"
assert_eq "$(reason testgood)" "test plugin ready" "its probe reason is kept"
assert_eq "$(state badabi)" broken "wrong ABI major is broken"
assert_contains "$(reason badabi)" "built for backend ABI 2" "and says which ABI"
assert_contains "$(reason badsize)" "descriptor size 16" "a too small descriptor is refused"
assert_contains "$(reason badflags)" "reserved flags" "non-zero flags are refused"
assert_contains "$(reason badname)" "names backend 'somethingelse'" "a name mismatch is refused"
assert_contains "$(reason nosym)" "no exported symbol" "a missing symbol is refused"
assert_eq "$(state testunavail)" unavailable "not available here is not an error"
assert_eq "$(reason testunavail)" "needs hardware this node lacks" "with the plugin's reason"
assert_eq "$(state testcrash)" broken "a crashing probe is broken"
# The plain build reports SIGSEGV; under AddressSanitizer its handler turns the crash into an
# abort or an exit status first. Either way the probe "crashed" and says how.
assert_contains "$(reason testcrash)" "probe crashed: " "and says how it ended"
assert_eq "$(state testhang)" broken "a hanging probe is broken"
assert_contains "$(reason testhang)" "timed out" "after the time limit"
assert_eq "$(state cpu)" available "the shipped cpu plugin loads beside them"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive survived all of them"

caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_eq "$(jq -r '[.devices[] | select(.id == "TEST-0")] | length' <<<"$caps")" 1 \
	"an available plugin's devices are in /v1/capabilities"
assert_eq "$(jq -r '[.devices[] | select(.backend == "testunavail")] | length' <<<"$caps")" 0 \
	"unavailable backends contribute no devices"

# No probe child may outlive its time limit. A refresh round may be probing the hanging plugin
# again right now (the request above can start one), so give that child its limit, no more.
hung() { pgrep -f -- "--probe-plugin .*rbee_backend_testhang.so" | wc -l; }
none_hung() { [ "$(hung)" -eq 0 ]; }
WAIT_S=$((RBEE_PROBE_TIMEOUT_MS / 1000 + 2)) wait_for none_hung || true
assert_eq "$(hung)" 0 "the hung probe was killed within its time limit"

stop_hive
RBEE_BACKEND_BLOCKLIST="testgood, testcrash" start_hive
backends=$(curl -sf "$HIVE_URL/v1/backends")
assert_eq "$(state testgood)" unavailable "a blocklisted plugin is not used"
assert_eq "$(reason testgood)" "blocked by RBEE_BACKEND_BLOCKLIST" "and says why"
assert_eq "$(state testcrash)" unavailable "the list takes several names"

out=$("$BIN/rbee" hive backends)
assert_contains "$out" "testhang" "rbee hive backends lists every plugin"
assert_contains "$out" "broken" "with its state"
pass
