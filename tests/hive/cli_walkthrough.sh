#!/usr/bin/env bash
# cli_walkthrough.sh - what an operator meets in `rbee`, beyond the per-feature tests: help at
# every level fits 80 columns and is per command; tables wrap to COLUMNS (or the terminal) and
# stay one row per line when piped; summaries are not printed twice (hive check, worker verify,
# worker install, model delete); empty lists print no bare header; a bad --hive URL is a usage
# error; a refused token says which token; the progress bar fits the terminal.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
export RBEE_ENABLE_TEST_OPS=1
HIVE_BIN="$BIN/rbee-hive-test" # test_sleep: only in the tests' build of the hive
RBEE="$BIN/rbee"
CLIENT="$RBEE_TEST_BIN/rbee-test-job-client"

# widest FILE: the longest line of FILE, in characters.
widest() { awk '{ if (length($0) > w) w = length($0) } END { print w + 0 }' "$1"; }

start_source_server
make_test_catalog "$T/catalog"
start_hive --catalog "$T/catalog"

# --- help: every level, per command, within 80 columns
for args in "--help" "worker --help" "model --help" "hive --help" \
	"worker available --help" "worker list --help" "worker get --help" "worker install --help" \
	"worker remove --help" "worker verify --help" "model download --help" "model list --help" \
	"model get --help" "model delete --help" "hive status --help" "hive devices --help" \
	"hive backends --help" "hive check --help"; do
	# shellcheck disable=SC2086 # the words are the arguments
	"$RBEE" $args >"$T/help" || fail "'rbee $args' exits $?"
	[ "$(widest "$T/help")" -le 80 ] || fail "'rbee $args' is wider than 80 columns: $(cat "$T/help")"
done
ok "--help at every level exits 0 and fits 80 columns"
assert_contains "$("$RBEE" hive status --help)" "usage: rbee hive status" "hive commands have their own help"
assert_contains "$("$RBEE" hive devices --help)" "compute capability" "which says what the command shows"
rc=0
"$RBEE" hive status extra >/dev/null 2>"$T/err" || rc=$?
assert_eq "$rc" 2 "an extra argument to a hive command is a usage error"
assert_contains "$(cat "$T/err")" "unexpected argument 'extra' for 'rbee hive status'" "naming it"

# --- tables: wrapped to COLUMNS, one row per line when piped
"$RBEE" hive backends >"$T/piped"
assert_eq "$(wc -l <"$T/piped")" "$(($(curl -sf "$HIVE_URL/v1/backends" | jq '.backends | length') + 1))" \
	"piped, a table is one line per row"
COLUMNS=60 "$RBEE" hive backends >"$T/narrow"
[ "$(widest "$T/narrow")" -le 60 ] || fail "backends table wider than COLUMNS=60: $(cat "$T/narrow")"
ok "with COLUMNS=60 the backends table fits 60 columns"
reason=$(curl -sf "$HIVE_URL/v1/backends" | jq -r '.backends[] | select(.name=="metal") | .reason')
assert_contains "$(tr -s ' \n' ' ' <"$T/narrow")" "$reason" "and a wrapped reason loses no word"
COLUMNS=76 "$RBEE" worker available >"$T/cat" 2>/dev/null
[ "$(widest "$T/cat")" -le 76 ] || fail "catalog table wider than COLUMNS=76: $(cat "$T/cat")"
assert_contains "$(cat "$T/cat")" $'\n    test worker built with cc' \
	"a description too long for its column goes on its own indented line"
assert_contains "$(cat "$T/cat")" $'\nrbee-test-worker-local ' "ids are not broken"

# --- empty lists: a hint, no bare header
out=$("$RBEE" model list 2>/dev/null)
assert_contains "$out" "no models" "an empty model list says so"
assert_not_contains "$out" "STATUS" "without a header over nothing"

# --- worker install and verify: each check shown once
out=$("$RBEE" worker install rbee-test-worker 2>/dev/null) || fail "install failed: $out"
assert_eq "$(grep -c 'libraries' <<<"$out")" 1 "install shows each check as it runs, not again"
assert_not_contains "$out" "CHECK " "no table of checks after the install"
assert_contains "$out" "8 of 8 checks passed: can run on this node" "and sums them up in one line"
out=$("$RBEE" worker verify rbee-test-worker 2>&1) || fail "verify failed: $out"
assert_eq "$(grep -c 'libraries' <<<"$out")" 1 "verify prints each check once"
assert_contains "$out" "can run on this node" "with the verdict"
rc=0
"$RBEE" worker verify rbee-test-nobody >"$T/out" 2>"$T/err" || rc=$?
assert_eq "$rc" 1 "verify of a worker that is not installed exits 1"
assert_contains "$(cat "$T/err")" "'rbee-test-nobody' is not installed" "and says so"

# --- hive check: the summary once
out=$("$RBEE" hive check)
assert_eq "$(grep -c "cache directory '$RBEE_HOME'" <<<"$out")" 1 "hive check shows the cache once"
assert_contains "$out" "verdict   ok" "with its verdict"

# --- model delete says it once (the fake download needs no hub: a stored model is enough)
mkdir -p "$RBEE_HOME/models/org@m"
echo data >"$RBEE_HOME/models/org@m/m.gguf"
jq -n --arg p "$RBEE_HOME/models/org@m/m.gguf" \
	'{id: "org/m", name: "m", file: "m.gguf", path: $p, size: 5, sha256: "x", source_url: "x",
	  added_at: "2026-01-01T00:00:00Z", format: "unknown"}' >"$RBEE_HOME/models/org@m/metadata.json"
if "$RBEE" --json model get org/m >/dev/null 2>&1; then
	out=$("$RBEE" model delete org/m 2>&1) || fail "delete failed: $out"
	assert_eq "$(grep -c "deleted model 'org/m'" <<<"$out")" 1 "model delete says it once"
else
	fail "the hive does not read a hand-made model record: $("$RBEE" model get org/m 2>&1)"
fi

# --- the hive URL
rc=0
"$RBEE" --hive ftp://example.org hive status 2>"$T/err" || rc=$?
assert_eq "$rc" 2 "a --hive URL that is not http(s) is a usage error"
assert_contains "$(cat "$T/err")" "invalid hive URL 'ftp://example.org' (from --hive)" "naming it"
rc=0
RBEE_HIVE_URL="127.0.0.1:$HIVE_PORT" "$RBEE" hive status >/dev/null || rc=$?
assert_eq "$rc" 0 "HOST:PORT without a scheme works"

# --- the progress bar on a terminal fits it, and is plain lines otherwise
rc=0
env -u NO_COLOR COLUMNS=70 script -qec "$CLIENT '{\"operation\":\"test_sleep\",\"seconds\":2}'" \
	/dev/null >"$T/tty" || rc=$?
assert_eq "$rc" 0 "a job on a terminal succeeds"
tr '\r' '\n' <"$T/tty" | sed 's/\x1b\[K//g' | grep '^sleeping' >"$T/tty.lines"
assert_contains "$(cat "$T/tty.lines")" "sleeping [" "a bar is drawn on a terminal"
[ "$(widest "$T/tty.lines")" -lt 70 ] || fail "the bar is wider than the terminal: $(cat "$T/tty.lines")"
ok "and it fits in 69 of 70 columns"
assert_eq "$(grep -o '\[[#-]*\]' "$T/tty.lines" | awk 'NR > 1 && length($0) > prev { grew = 1 }
	{ prev = length($0) } END { print grew + 0 }')" 0 "the bar never grows back as the figures change"
"$CLIENT" '{"operation":"test_sleep","seconds":1}' >/dev/null 2>"$T/plain"
assert_not_contains "$(cat "$T/plain")" "[" "piped, progress has no bar"

# --- a refused token names the token
stop_hive
RBEE_API_TOKEN=right-token start_hive --catalog "$T/catalog"
rc=0
RBEE_API_TOKEN=wrong-token "$RBEE" model list >/dev/null 2>"$T/err" || rc=$?
assert_eq "$rc" 1 "a wrong token exits 1"
assert_contains "$(cat "$T/err")" "refused the bearer token in RBEE_API_TOKEN" "and says the token was refused"
rc=0
"$RBEE" model list >/dev/null 2>"$T/err" || rc=$?
assert_contains "$(cat "$T/err")" "requires a bearer token" "no token: the hive's message says one is needed"
pass
