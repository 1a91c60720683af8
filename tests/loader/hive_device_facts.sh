#!/usr/bin/env bash
# ABI 1.2 seen from a plugin: device facts (host->device_attr) reach /v1/capabilities,
# /v1/backends and `rbee hive devices --json`, refused ones with their reason in the log;
# host->path() answers in the probe child; init's state comes back through
# host->plugin_state(); the hwloc version is declared. A plugin built for ABI 1.1 still loads,
# and the host never reads descriptor members past its struct_size.
. "$RBEE_SRC/tests/lib.sh"

mkdir -p "$T/plugins"
cp "$RBEE_BUILD/tests/loader/sdk/attrs/"rbee_backend_test{attrs,old11}.so "$T/plugins/"
export RBEE_BACKEND_PATH="$T/plugins" RBEE_BACKEND_BLOCKLIST=cuda,metal
start_hive --plugin-dir "$T/plugins"

backends=$(curl -sf "$HIVE_URL/v1/backends")
b() { jq -r --arg n "$1" ".backends[] | select(.name == \$n) | $2" <<<"$backends"; }
assert_eq "$(b testattrs .state)" available "the ABI 1.2 plugin is available"
assert_contains "$(b testattrs .reason)" "home=$RBEE_HOME " "host->path(\"home\") answers in the probe child"
assert_contains "$(b testattrs .reason)" "plugins=$T/plugins " "so does path(\"plugins\") (--plugin-dir)"
assert_contains "$(b testattrs .reason)" "hwloc=same-major" "the declared hwloc API major matches the plugin's"
assert_contains "$(b testattrs .reason)" "state=from-init" "init's state is handed back in probe"
assert_eq "$(b testattrs '.devices[0].attributes | tojson')" \
	'{"gfx_target":"gfx90a","xnack":"on","marketing.name":"Instinct™ MI210"}' \
	"the device's facts are in /v1/backends, in the order set"

caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_eq "$(jq -r '.devices[] | select(.backend == "testattrs") | .attributes.gfx_target' <<<"$caps")" gfx90a \
	"and in /v1/capabilities"
assert_eq "$(jq -r '.devices[] | select(.backend == "testold11") | .attributes | tojson' <<<"$caps")" '{}' \
	"a device without facts has an empty attributes object"
json=$("$BIN/rbee" hive devices --json)
assert_eq "$(jq -r '.devices[] | select(.id == "GPU-0") | .attributes.xnack' <<<"$json")" on \
	"rbee hive devices --json shows them"

log=$(cat "$HIVE_LOG")
assert_contains "$log" "host service device_attr refused: device 'GPU-0': key 'Bad Key' is not a-z 0-9 . _ - starting with a letter" \
	"a key breaking the syntax is refused with the rule"
assert_contains "$log" "device 'GPU-0': value of key 'bad_value' is not well-formed UTF-8" \
	"a value that is not UTF-8 is refused"
assert_eq "$(b testattrs '.devices | length')" 1 "a refused fact costs only the fact"

assert_eq "$(b testold11 .state)" available "an ABI 1.1 plugin still loads (its init member is never read)"
assert_eq "$(b testold11 .reason)" "an ABI 1.1 plugin" "with its own reason"
assert_eq "$(b testold11 '.devices[0].id')" OLD-0 "and its device"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"
pass
