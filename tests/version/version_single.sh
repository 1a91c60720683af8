#!/usr/bin/env bash
# Every version the programs report is CMake's project(VERSION) (RBEE_VERSION, from ctest):
# rbee-hive --version, /v1/info, the heartbeat stream, hive_check, the plugins' versions in
# /v1/backends, rbee --version, rbee-catalog --version and its /health, and the pkg-config file.
. "$RBEE_SRC/tests/lib.sh"
: "${RBEE_VERSION:?run through ctest (RBEE_VERSION unset)}"
V=$RBEE_VERSION

out=$("$BIN/rbee-hive" --version)
assert_eq "$(awk '{print $2}' <<<"$out")" "$V" "rbee-hive --version: $out"
out=$("$BIN/rbee" --version)
assert_eq "$out" "rbee $V" "rbee --version"
out=$("$BIN/rbee-catalog" --version)
assert_eq "$out" "rbee-catalog $V" "rbee-catalog --version"

pc="$RBEE_BUILD/packaging/rbee-backend.pc"
assert_eq "$(sed -n 's/^Version: //p' "$pc")" "$V" "pkg-config file Version"

mkdir -p "$T/cat/workers"
start_catalog "$T/cat"
assert_eq "$(curl -sf "$CATALOG_URL/health" | jq -r .version)" "$V" "rbee-catalog /health version"

start_hive
assert_eq "$(curl -sf "$HIVE_URL/v1/info" | jq -r .version)" "$V" "/v1/info version"
# Each in-tree plugin reports the build's version too.
vers=$(curl -sf "$HIVE_URL/v1/backends" | jq -r '[.. | objects | select(has("name") and has("version")) | .version] | unique | join(",")')
assert_eq "$vers" "$V" "/v1/backends plugin versions"
hb=$(curl -sN --max-time 3 "$HIVE_URL/v1/heartbeats/stream" | sed -n 's/^data: //p' | head -n 1) || true
assert_eq "$(jq -r .version <<<"$hb")" "$V" "heartbeat version"
s=$(run_job '{"operation":"hive_check"}')
assert_contains "$s" "(rbee-hive $V)" "hive_check narration names the version"
assert_eq "$(job_data "$s" | jq -r .version)" "$V" "hive_check result version"
assert_eq "$(curl -sf "$HIVE_URL/health")" "ok" "hive still answers /health"
pass
