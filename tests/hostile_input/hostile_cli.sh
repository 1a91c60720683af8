#!/usr/bin/env bash
# The keeper CLI against hostile answers:
#   - strings with terminal escape sequences (from a catalog, a hub or a worker, passed on by a
#     hive): `rbee` output - tables, fields, narration, progress, errors, logs - holds no control
#     character, no C1 control and no bidi override; --json stays valid JSON with them escaped;
#   - answers with the wrong JSON types: `rbee` exits 1 with an error saying what was wrong, never
#     abort()s or crashes.
# The answers come from a fake hive (fake_hive.py); then the real hive passes a hub's file name
# with escape sequences into a job error, and a catalog description into a table.
. "$RBEE_SRC/tests/lib.sh"
HERE="$RBEE_SRC/tests/hostile_input"
RBEE="$BIN/rbee"

# has_controls FILE: true when FILE holds a C0 control (but newline and tab), DEL, a C1 control
# (UTF-8 C2 80-9F) or a bidi control (U+202A-202E, U+2066-2069).
has_controls() {
	LC_ALL=C grep -qaP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]' "$1"
}

start_fake_hive() {
	rm -f "$T/fake.port"
	python3 "$HERE/fake_hive.py" --mode "$1" --port-file "$T/fake.port" >>"$T/fake-hive.log" 2>&1 &
	FAKE_PID=$!
	track $FAKE_PID
	export RBEE_HIVE_URL="http://127.0.0.1:$(wait_port_file "$T/fake.port")"
}

# --- 1. escape sequences everywhere ---
start_fake_hive escape
n=0
for cmd in "hive status" "hive devices" "hive backends" "hive check" "model list" "model get org/m" \
	"model download org/m" "worker available" "worker list" "worker get w" \
	"worker process list" "worker logs w"; do
	n=$((n + 1))
	rc=0
	# shellcheck disable=SC2086
	"$RBEE" $cmd >"$T/out.$n" 2>&1 || rc=$?
	[ "$rc" -lt 128 ] || fail "rbee $cmd died with status $rc"
	if has_controls "$T/out.$n"; then
		od -c "$T/out.$n" | head -20 >&2
		fail "rbee $cmd printed control characters"
	fi
	[ -s "$T/out.$n" ] || fail "rbee $cmd printed nothing"
	ok "rbee $cmd prints the hive's strings without control characters"
done
assert_contains "$(cat "$T/out.1")" "node?]0;pwned??[2J?[31mred?[0m" "the text around them is still shown"
assert_contains "$(cat "$T/out.7")" "failed?]0;pwned" "the job's [ERROR] message is cleaned"
assert_contains "$(cat "$T/out.7")" "narration?]0;pwned" "and its narration"
assert_contains "$(cat "$T/out.12")" "line one?]0;pwned" "and a worker's log"
"$RBEE" --json model list >"$T/json.out" 2>/dev/null || fail "rbee --json model list failed"
has_controls "$T/json.out" && fail "--json printed raw control characters"
assert_eq "$(jq -r '.models[0].id | test("\u001b")' "$T/json.out")" true \
	"--json keeps the hive's data, with control characters escaped as JSON"
kill "$FAKE_PID"

# --- 2. wrong JSON types ---
start_fake_hive types
for cmd in "hive status" "hive devices" "hive backends" "hive check" "model list" "model get x" \
	"worker available" "worker list" "worker get w" "worker process list"; do
	rc=0
	# shellcheck disable=SC2086
	out=$("$RBEE" $cmd 2>&1) || rc=$?
	assert_eq "$rc" 1 "rbee $cmd exits 1 on an answer of the wrong shape (not an abort)"
	[[ "$out" == *"malformed"* || "$out" == *"without a device list"* || "$out" == *"without a backend list"* ]] ||
		fail "rbee $cmd: no error saying the answer was wrong: $out"
	ok "rbee $cmd says the answer was wrong"
done
out=$("$RBEE" hive backends 2>&1) || true
assert_contains "$out" "malformed: field 'devices' is a string where an array was expected" \
	"the error names the field and both types"
kill "$FAKE_PID"

# --- 3. through the real hive: a hub's file name, a catalog's description ---
HUB_ROOT="$T/hub"
mkdir -p "$HUB_ROOT/org/esc"
printf 'x' >"$HUB_ROOT/org/esc/$(printf 'evil\033]0;pwned\007\033[2J.txt')"
python3 "$RBEE_SRC/tests/models/fake_hub.py" --root "$HUB_ROOT" --port-file "$T/hub.port" \
	>>"$T/hub.log" 2>&1 &
track $!
export HF_ENDPOINT="http://127.0.0.1:$(wait_port_file "$T/hub.port")"
CAT="$T/catalog"
mkdir -p "$CAT/workers" "$CAT/pkgbuilds"
jq -n '{ id: "esc-worker", implementation: "x", worker_type: "cpu", version: "1.0",
	platforms: ["linux"], architectures: ["x86_64", "aarch64"], name: "esc",
	description: "desc \u001b]0;pwned\u0007\u001b[2J end", license: "MIT", build_system: "cc",
	source: { type: "tarball", url: "https://example.invalid/x.tar.gz" }, build: { bin: "x" },
	depends: [], makedepends: [], binary_name: "x", install_path: "/usr/bin/x",
	supported_formats: ["gguf"], max_context_length: 4096, supports_streaming: false,
	supports_batching: false }' >"$CAT/workers/esc-worker.json"
printf 'pkgname=esc-worker\npkgver=1.0\npkgrel=1\narch=(any)\n' >"$CAT/pkgbuilds/esc-worker.PKGBUILD"
start_hive --catalog "$CAT"
"$RBEE" model download org/esc >"$T/real.1" 2>&1 || true
has_controls "$T/real.1" && fail "a hub file name reached the terminal raw: $(od -c "$T/real.1" | head)"
assert_contains "$(cat "$T/real.1")" "evil?]0;pwned" "a hub's file name is shown cleaned in the job's error"
"$RBEE" worker available >"$T/real.2" 2>&1 || true
has_controls "$T/real.2" && fail "a catalog description reached the terminal raw"
assert_contains "$(cat "$T/real.2")" "desc ?]0;pwned??[2J end" \
	"a catalog's description is shown without control characters"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"
pass
