#!/usr/bin/env bash
# A plugin that defines its own function under the name of a hive-internal one (rb_fs_exists)
# gets its own function when the real rbee-hive loads it: the hive exports none of its symbols
# (tests/exports/interpose_plugin.c says what happened in its probe reason).
. "$RBEE_SRC/tests/lib.sh"

export RBEE_BACKEND_PATH="$RBEE_BUILD/tests/exports/plugins"
[ -f "$RBEE_BACKEND_PATH/rbee_backend_interpose.so" ] || fail "the interpose test plugin is not built"
start_hive # the production rbee-hive (HIVE_BIN unset)

backends=$(curl -sf "$HIVE_URL/v1/backends")
field() { jq -r --arg n interpose --arg f "$1" '.backends[] | select(.name == $n) | .[$f]' <<<"$backends"; }
assert_eq "$(field state)" available "the plugin loaded and its probe answered"
assert_eq "$(field reason)" "rb_fs_exists resolved to the plugin's own" \
	"its call of its own rb_fs_exists reached its own function, not the hive's"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive still answers"
pass
