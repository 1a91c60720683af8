#!/usr/bin/env bash
# What a third-party plugin gets wrong must not break the hive's answers, and the hive says
# what was wrong: ill-formed UTF-8 in any plugin string, a plugin printing on stdout, duplicate
# device ids; a plugin's probe warning reaches the log at warn level under its name; a refused
# host service call carries a message the plugin can read.
. "$RBEE_SRC/tests/lib.sh"

# Only these fixtures (and the shipped plugins of the plugin directory).
mkdir -p "$T/plugins"
for n in testutf8 testlongfail testprints testdup; do
	cp "$RBEE_BUILD/tests/loader/plugins/rbee_backend_$n.so" "$T/plugins/"
done
export RBEE_BACKEND_PATH="$T/plugins"
export RBEE_PROBE_TIMEOUT_MS=8000
unset RBEE_LOG || true
start_hive

# Strict: the body must decode as UTF-8 and parse as JSON.
valid_json() { python3 -c 'import json,sys; json.loads(sys.stdin.buffer.read().decode("utf-8", "strict"))'; }
for route in /v1/backends /v1/capabilities /v1/info; do
	curl -sf "$HIVE_URL$route" >"$T/body" || fail "GET $route failed"
	valid_json <"$T/body" || fail "GET $route is not valid UTF-8 JSON: $(head -c 300 "$T/body" | od -c | head)"
	ok "GET $route is valid UTF-8 JSON"
done
"$BIN/rbee" hive backends >"$T/cli.txt" || fail "rbee hive backends failed: $(cat "$T/cli.txt")"
ok "rbee hive backends renders them"

backends=$(curl -sf "$HIVE_URL/v1/backends")
b() { jq -r --arg n "$1" ".backends[] | select(.name == \$n) | $2" <<<"$backends"; }
FFFD=$'\xef\xbf\xbd'

# b. ill-formed UTF-8 becomes U+FFFD; valid text cut by a fixed field loses the whole character.
assert_eq "$(b testutf8 .state)" available "a plugin with ill-formed UTF-8 strings still loads"
assert_eq "$(b testutf8 .reason)" "ready $FFFD$FFFD and $FFFD(" "its probe reason is cleaned"
assert_eq "$(b testutf8 .version)" "1.$FFFD" "its version is cleaned"
assert_eq "$(b testutf8 .description)" "bad $FFFD( description" "its description is cleaned"
assert_eq "$(b testutf8 '.devices[0].id')" "U8-$FFFD" "a device id is cleaned"
assert_eq "$(b testutf8 '.devices[0].name')" "Device $FFFD$FFFD cut" "a device name is cleaned (one U+FFFD per bad byte)"
# Counted in characters by jq, whatever the locale (bash's ${#s} counts bytes under C).
assert_eq "$(b testutf8 '.devices[1].name | length')" 63 \
	"a name cut inside a character keeps the 63 whole characters"
assert_eq "$(b testlongfail .state)" broken "a failing probe with a long message is broken"
reason=$(b testlongfail .reason)
assert_contains "$reason" "probe failed: éééé" "with the plugin's message, not 'answered garbage'"

# d. stdout of the plugin does not break the probe protocol; it goes to the log.
assert_eq "$(b testprints .state)" available "a plugin printing on stdout is available"
assert_eq "$(b testprints .reason)" "printed and still fine" "with its own reason"
assert_eq "$(b testprints '.devices[0].id')" "PRINT-0" "and its device"
assert_contains "$(cat "$HIVE_LOG")" "warn: backend 'testprints' (probe): fan speed is low on two lines" \
	"e. its probe warning is logged at warn level with its name"
assert_not_contains "$(cat "$HIVE_LOG")" "a debug line nobody sees" "its debug line stays below the default level"

# a. duplicate device ids refuse the device list, naming the id.
assert_eq "$(b testdup .state)" broken "a plugin reporting CPU-0 twice is broken"
assert_contains "$(b testdup .reason)" "duplicate device id: 'CPU-0'" "the reason names the duplicate id"
assert_eq "$(b testdup '.devices | length')" 0 "none of its devices is offered"
caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_eq "$(jq '[.devices[] | select(.backend == "testdup")] | length' <<<"$caps")" 0 \
	"nor in /v1/capabilities"
# c. the refusal carries a message the plugin read back (it logged it).
assert_contains "$(cat "$HIVE_LOG")" "backend 'testdup' (probe): device_add answered -1: host service device_add refused: duplicate device id: 'CPU-0'" \
	"the plugin reads why device_add refused"

assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy after all of them"
# A refresh round (a request above may start one) can be probing right now: give its children
# their time limit, no more.
probes() { pgrep -f -- "--probe-plugin $T/plugins" | wc -l; }
no_probes() { [ "$(probes)" -eq 0 ]; }
WAIT_S=$((RBEE_PROBE_TIMEOUT_MS / 1000 + 2)) wait_for no_probes || true
assert_eq "$(probes)" 0 "no probe child is left behind"
pass
