#!/usr/bin/env bash
# Hostile downloads against the real hive and the fake hub (tests/models/fake_hub.py):
#   - under `ulimit -f` a model download fails with EFBIG and a clear job error instead of
#     SIGXFSZ killing the hive; the part is kept (docs/MODELS.md) and a later download resumes;
#   - a hub that announces no size and sends an endless body is stopped at
#     RBEE_MAX_MODEL_BYTES: an error, the part removed, no model registered;
#   - a hub that announces more than RBEE_MAX_MODEL_BYTES is refused before any transfer.
# After each, the hive still answers /health and nothing is left in the store.
. "$RBEE_SRC/tests/lib.sh"
MODELS="$RBEE_SRC/tests/models"
RBEE="$BIN/rbee"

HUB_ROOT="$T/hub"
HUB_LOG="$T/hub-requests.log"
mkdir -p "$HUB_ROOT/org/big-GGUF" "$HUB_ROOT/org/endless-GGUF"
python3 "$MODELS/make_gguf.py" "$HUB_ROOT/org/big-GGUF/big.Q4_K_M.gguf" --ftype 15 --pad-mib 8
python3 "$MODELS/make_gguf.py" "$HUB_ROOT/org/endless-GGUF/e.Q4_K_M.gguf" --ftype 15
python3 "$MODELS/fake_hub.py" --root "$HUB_ROOT" --port-file "$T/hub.port" --log "$HUB_LOG" \
	>>"$T/hub.log" 2>&1 &
track $!
HUB_URL="http://127.0.0.1:$(wait_port_file "$T/hub.port")"
hub_control() { curl -sf -X POST --data-binary "$1" "$HUB_URL/_control" >/dev/null; }
export HF_ENDPOINT="$HUB_URL"
BIG_SIZE=$(stat -c %s "$HUB_ROOT/org/big-GGUF/big.Q4_K_M.gguf")

# start_limited_hive BLOCKS: the hive under `ulimit -f BLOCKS` (1024-byte blocks), as start_hive.
start_limited_hive() {
	HIVE_LAUNCHER=(bash -c 'ulimit -f "$1" && shift && exec "$@"' limit "$1")
	start_hive
	HIVE_LAUNCHER=()
}
healthy() {
	assert_eq "$(curl -sf --max-time 5 "$HIVE_URL/health" || echo down)" ok "$1"
	kill -0 "$HIVE_PID" 2>/dev/null || fail "$1: the hive process is gone"
}
store_dir() { echo "$RBEE_HOME/models/$1"; }

# --- 1. a file size limit: EFBIG, not SIGXFSZ ---
start_limited_hive 4096
rc=0
out=$("$RBEE" model download org/big-GGUF 2>&1) || rc=$?
assert_eq "$rc" 1 "the download under ulimit -f fails as a job (exit 1), not a dead hive (exit 3)"
assert_contains "$out" "File too large after 4.0 MiB" "the error says the write failed with EFBIG, and where"
assert_contains "$out" "file size limit of this process (ulimit -f" "and names the limit to raise"
healthy "the hive survives the file size limit (SIGXFSZ ignored)"
part="$(store_dir org@big-GGUF)/big.Q4_K_M.gguf.part"
assert_eq "$(stat -c %s "$part" 2>/dev/null || echo none)" $((4096 * 1024)) \
	"the part is kept at the limit, as docs/MODELS.md says for a full disk"
assert_eq "$(jq -r '.models | length' <<<"$("$RBEE" --json model list)")" 1 "only as a partial download"
assert_eq "$(jq -r '.models[0].status' <<<"$("$RBEE" --json model list)")" partial "listed as partial"
stop_hive
# Without the limit the next download resumes from the part.
start_hive
: >"$HUB_LOG"
out=$("$RBEE" model download org/big-GGUF 2>&1) || fail "the resumed download failed: $out"
assert_contains "$out" "resuming 'big.Q4_K_M.gguf' at 4.0 MiB" "a later download resumes the kept part"
assert_contains "$(cat "$HUB_LOG")" "bytes=4194304-" "asking only for the rest"
assert_eq "$(stat -c %s "$(store_dir org@big-GGUF)/big.Q4_K_M.gguf")" "$BIG_SIZE" "and completes the model"
stop_hive

# --- 2. no size announced, an endless body: stopped at RBEE_MAX_MODEL_BYTES ---
hub_control '{"no_size": true, "no_sha": true, "endless": {"org/endless-GGUF/e.Q4_K_M.gguf": 67108864}}'
RBEE_MAX_MODEL_BYTES=2M start_hive
rc=0
out=$("$RBEE" model download org/endless-GGUF 2>&1) || rc=$?
assert_eq "$rc" 1 "a body without end is refused"
assert_contains "$out" "the hub sends more than 2.0 MiB (2097152 bytes), the most RBEE_MAX_MODEL_BYTES allows" \
	"the error names the cap and the knob"
assert_contains "$out" "removed the partial file" "and says the part is gone"
healthy "the hive is healthy after the endless body"
assert_eq "$(find "$RBEE_HOME/models" -name '*.part' | wc -l)" 0 "no part file is left"
assert_eq "$(find "$RBEE_HOME/models" -name metadata.json | grep -c endless || true)" 0 "no model was registered"
assert_eq "$(jq -r '[.models[] | select(.id | startswith("org/endless"))] | length' \
	<<<"$("$RBEE" --json model list)")" 0 "the model list does not show it"
stop_hive

# --- 3. announced, but more than the cap: refused before a byte is fetched ---
hub_control '{"no_size": false, "no_sha": false, "endless": {}}'
rm -rf "$RBEE_HOME/models/org@big-GGUF"
: >"$HUB_LOG"
RBEE_MAX_MODEL_BYTES=1MiB start_hive
rc=0
out=$("$RBEE" model download org/big-GGUF 2>&1) || rc=$?
assert_eq "$rc" 1 "a model larger than the cap is refused"
assert_contains "$out" "more than RBEE_MAX_MODEL_BYTES allows (1.0 MiB)" "naming the cap"
assert_eq "$(grep -c '"/cdn/' "$HUB_LOG" || true)" 0 "before any byte was asked for"
healthy "the hive is healthy after the refusal"
assert_eq "$(find "$RBEE_HOME/models" -name '*.part' | wc -l)" 0 "nothing is left in the store"
stop_hive

# --- 4. the cap does not get in the way of an honest download under it ---
RBEE_MAX_MODEL_BYTES=64M start_hive
"$RBEE" model download org/big-GGUF >/dev/null 2>&1 || fail "a model under the cap downloads"
ok "a model under the cap downloads"
pass
