#!/usr/bin/env bash
# The node-facts routes, JSON errors for unknown routes and methods, and `rbee hive`.
. "$RBEE_SRC/tests/lib.sh"
start_hive --hive-id node-a

assert_eq "$(curl -sf "$HIVE_URL/health")" ok "GET /health answers ok"
assert_eq "$(curl -s -o /dev/null -w '%{content_type}' "$HIVE_URL/health")" text/plain "as text/plain"

info=$(curl -sf "$HIVE_URL/v1/info")
assert_eq "$(jq -r .hive_id <<<"$info")" node-a "/v1/info has the hive id"
assert_eq "$(jq -r .port <<<"$info")" "$HIVE_PORT" "and the bound port"
assert_eq "$(jq -r .paths.home <<<"$info")" "$RBEE_HOME" "and the cache root from RBEE_HOME"
assert_contains "$(jq -r .catalog <<<"$info")" "share/rbee/catalog" "and the shipped catalog as default"
assert_eq "$(jq -r '.uptime_s >= 0' <<<"$info")" true "and an uptime"
for d in workers models logs; do
	[ -d "$RBEE_HOME/$d" ] || fail "cache subdirectory $d not created"
done
ok "the cache layout exists"

caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_eq "$(jq -r '.devices[0].id' <<<"$caps")" CPU-0 "CPU NUMA node 0 is device CPU-0"
assert_eq "$(jq -r '.devices[0] | has("name") and has("device_type") and has("vram_gb") and has("compute_capability")' <<<"$caps")" \
	true "devices have the Rust hive's fields"
assert_eq "$(jq -r '.devices[0].memory_total_bytes > 0' <<<"$caps")" true "and memory in bytes"
assert_eq "$(curl -sf "$HIVE_URL/capabilities" | jq -r '.devices | length')" \
	"$(jq -r '.devices | length' <<<"$caps")" "/capabilities is the same as /v1/capabilities"

r=$(http GET /nope)
assert_eq "${r%% *}" 404 "unknown route is 404"
assert_eq "$(jq -r .code <<<"${r#* }")" not_found "with a JSON error"
r=$(http DELETE /v1/info)
assert_eq "${r%% *}" 405 "wrong method is 405"
assert_contains "$(jq -r .error <<<"${r#* }")" "method DELETE not allowed" "with a JSON error"
r=$(http GET /v1/jobs/../../etc/passwd/stream)
assert_ne "${r%% *}" 200 "path tricks do not match a route"

# The CLI against it.
out=$("$BIN/rbee" hive status)
assert_contains "$out" "node-a" "rbee hive status shows the hive id"
out=$("$BIN/rbee" hive devices)
assert_contains "$out" "CPU-0" "rbee hive devices shows a table"
assert_contains "$out" "MEMORY" "with headers"
out=$("$BIN/rbee" --json hive devices | jq -r '.devices[0].id')
assert_eq "$out" CPU-0 "--json before the command prints JSON"
out=$("$BIN/rbee" hive backends --json | jq -r '.backends[] | select(.name=="metal") | .reason')
assert_eq "$out" "requires macOS on Apple silicon" "--json after the command, metal is not here"
set +e
"$BIN/rbee" hive frobnicate >/dev/null 2>&1; rc=$?
assert_eq "$rc" 2 "unknown subcommand is a usage error"
"$BIN/rbee" hive --help >/dev/null; rc=$?
assert_eq "$rc" 0 "--help at the hive level"
"$BIN/rbee" --help >/dev/null; rc=$?
assert_eq "$rc" 0 "--help at the top level"
err=$("$BIN/rbee" --hive http://127.0.0.1:1 hive status 2>&1); rc=$?
set -e
assert_eq "$rc" 3 "an unreachable hive is exit status 3"
assert_contains "$err" "127.0.0.1:1" "and the message names the URL"

stop_hive TERM
grep -q "shutting down" "$HIVE_LOG" || fail "SIGTERM did not shut down cleanly"
ok "SIGTERM shuts the hive down cleanly"
pass
