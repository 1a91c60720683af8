#!/usr/bin/env bash
# A plugin file replaced on disk (an upgrade) after the hive loaded it: SIGHUP re-probes, but
# with the file the daemon loaded (held open), so probe and build/verify/spawn keep running the
# same code; the backend says the file changed and that a restart loads the new one. A restart
# does.
. "$RBEE_SRC/tests/lib.sh"

mkdir -p "$T/plugins"
cp "$RBEE_BUILD/tests/loader/sdk/swap1/rbee_backend_testswap.so" "$T/plugins/"
export RBEE_BACKEND_PATH="$T/plugins" RBEE_BACKEND_BLOCKLIST=cpu,cuda,metal RBEE_PROBE_INTERVAL_S=0
start_hive
swap() { curl -sf "$HIVE_URL/v1/backends" | jq -r ".backends[] | select(.name == \"testswap\") | $1"; }
assert_eq "$(swap .reason)" "swap build 1" "build 1 is loaded and probed"
assert_eq "$(swap .changed_on_disk)" false "its file is the loaded one"

# The upgrade: a new file renamed over the old one, as package managers do.
cp "$RBEE_BUILD/tests/loader/sdk/swap2/rbee_backend_testswap.so" "$T/plugins/.new.so"
mv "$T/plugins/.new.so" "$T/plugins/rbee_backend_testswap.so"
before=$(swap .probed_at)
sleep 1.1 # probed_at has a resolution of a second
kill -HUP "$HIVE_PID"
reprobed() { [ "$(swap .probed_at)" != "$before" ]; }
wait_for reprobed || fail "no probe round after SIGHUP"
assert_eq "$(swap .state)" available "after SIGHUP the backend still works"
assert_contains "$(swap .reason)" "swap build 1" "the probe ran the loaded build, not the file now on disk"
assert_contains "$(swap .reason)" "plugin file changed on disk since the hive loaded it" "it says the file changed"
assert_contains "$(swap .reason)" "restart the hive to load the new one" "and what to do"
assert_eq "$(swap .changed_on_disk)" true "/v1/backends flags it"
assert_eq "$(swap .version)" 1 "the version shown is the loaded one's"
assert_contains "$(cat "$HIVE_LOG")" "rbee_backend_testswap.so' changed on disk since the hive loaded it" \
	"the hive logs it"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"

stop_hive
start_hive
assert_eq "$(swap .reason)" "swap build 2" "a restart loads the new build"
assert_eq "$(swap .changed_on_disk)" false "and the flag is gone"
pass
