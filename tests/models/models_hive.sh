#!/usr/bin/env bash
# The hive's model operations end to end against the fake hub: download (chosen by
# quantization), list, get, delete; already present; a dropped connection resumed with only the
# rest asked; a wrong hash registers nothing; 404 and 403 say different things; a cancelled
# download and a hive killed mid-download both resume; bad ids are refused at submit.
. "$RBEE_SRC/tests/lib.sh"
HERE="$RBEE_SRC/tests/models"
RBEE="$BIN/rbee"

# --- the fake hub ---
HUB_ROOT="$T/hub"
HUB_LOG="$T/hub-requests.log"
mkdir -p "$HUB_ROOT/org/tiny-GGUF" "$HUB_ROOT/org/big-GGUF" "$HUB_ROOT/org/secret" "$HUB_ROOT/org/text"
python3 "$HERE/make_gguf.py" "$HUB_ROOT/org/tiny-GGUF/tiny.Q8_0.gguf" --ftype 7
python3 "$HERE/make_gguf.py" "$HUB_ROOT/org/tiny-GGUF/tiny.Q4_K_M.gguf" --ftype 15 --ctx 2048
python3 "$HERE/make_gguf.py" "$HUB_ROOT/org/big-GGUF/big.Q5_K_M.gguf" --ftype 17 --pad-mib 16
python3 "$HERE/make_gguf.py" "$HUB_ROOT/org/secret/s.Q4_0.gguf" --ftype 2
echo "plain text" >"$HUB_ROOT/org/text/notes.txt"
echo "# readme" >"$HUB_ROOT/org/tiny-GGUF/README.md"
python3 "$HERE/fake_hub.py" --root "$HUB_ROOT" --port-file "$T/hub.port" --log "$HUB_LOG" \
	--token hf_right >>"$T/hub.log" 2>&1 &
track $!
HUB_URL="http://127.0.0.1:$(wait_port_file "$T/hub.port")"
hub_control() { curl -sf -X POST --data-binary "$1" "$HUB_URL/_control" >/dev/null; }
ranges() { jq -r 'select(.path | startswith("/cdn/")) | .range // "none"' "$HUB_LOG" | tr '\n' ' '; }

export HF_ENDPOINT="$HUB_URL"
start_hive
BIG_SIZE=$(stat -c %s "$HUB_ROOT/org/big-GGUF/big.Q5_K_M.gguf")

# --- libcurl and libcrypto are loaded at the first download, not before (rb_libs.c) ---
mapped() { grep -oE "lib(curl|crypto)\.so[^ ]*" "/proc/$HIVE_PID/maps" | sort -u | tr '\n' ' '; }
run_job '{"operation":"hive_check"}' >/dev/null
assert_eq "$(mapped)" "" "an idle hive maps neither libcurl nor libcrypto"

# --- download, list, get ---
out=$("$RBEE" model download org/tiny-GGUF 2>&1) || fail "download failed: $out"
assert_contains "$(mapped)" "libcurl.so" "the first download loads libcurl"
assert_contains "$(mapped)" "libcrypto.so" "and libcrypto, for its sha256"
assert_contains "$out" "chose 'tiny.Q4_K_M.gguf' (Q4_K_M" "the preferred quantization is chosen"
assert_contains "$out" "matches the hub's" "the sha256 is verified"
json=$("$RBEE" --json model get org/tiny-GGUF)
assert_eq "$(jq -r .quantization <<<"$json")" "Q4_K_M" "get shows the GGUF file type"
assert_eq "$(jq -r .context_length <<<"$json")" "2048" "get shows the context length"
assert_eq "$(jq -r .architecture <<<"$json")" "llama" "get shows the architecture"
assert_eq "$(jq -r .sha256 <<<"$json")" "$(sha256sum "$HUB_ROOT/org/tiny-GGUF/tiny.Q4_K_M.gguf" | cut -d' ' -f1)" \
	"the recorded sha256 is the file's"
assert_eq "$(cmp "$(jq -r .path <<<"$json")" "$HUB_ROOT/org/tiny-GGUF/tiny.Q4_K_M.gguf" && echo same)" same \
	"the stored file is the hub's"
"$RBEE" model download org/tiny-GGUF:tiny.Q8_0.gguf >/dev/null 2>&1 || fail "named download failed"
"$RBEE" model download org/text:notes.txt >/dev/null 2>&1 || fail "non-GGUF download failed"
list=$("$RBEE" --json model list)
assert_eq "$(jq -r '[.models[].id] | join(" ")' <<<"$list")" \
	"org/text:notes.txt org/tiny-GGUF org/tiny-GGUF:tiny.Q8_0.gguf" "list keeps ids with '/' and ':'"
assert_eq "$(jq -r '.models[0].format + " " + (.models[0].architecture // "null")' <<<"$list")" "unknown null" \
	"a non-GGUF file is stored without facts"
table=$("$RBEE" model list)
assert_contains "$table" "org/tiny-GGUF:tiny.Q8_0.gguf" "the table lists the models"
assert_contains "$table" "Q8_0" "the table shows quantizations"

# --- already present: at once, nothing fetched ---
: >"$HUB_LOG"
out=$(run_job '{"operation":"model_download","model":"org/tiny-GGUF"}')
assert_contains "$out" "already present" "a present model is returned at once"
assert_contains "$out" "[DONE]" "and the job succeeds"
assert_eq "$(wc -l <"$HUB_LOG")" "0" "without asking the hub"

# --- a dropped connection is resumed asking only for the rest ---
: >"$HUB_LOG"
hub_control '{"drop_once":{"org/big-GGUF/big.Q5_K_M.gguf":4194304}}'
out=$("$RBEE" model download org/big-GGUF 2>&1) || fail "download after a drop failed: $out"
assert_contains "$out" "retry 1 of" "the drop is narrated as a retry"
assert_eq "$(ranges)" "none bytes=4194304- " "after the drop only the rest was asked for"
"$RBEE" model delete org/big-GGUF >/dev/null || fail "delete failed"

# --- cancel keeps the part; the next download resumes ---
: >"$HUB_LOG"
hub_control '{"stall_once":{"org/big-GGUF/big.Q5_K_M.gguf":[3000000,20]}}'
job=$(submit '{"operation":"model_download","model":"org/big-GGUF"}')
WAIT_S=15 wait_for test -s "$RBEE_HOME/models/org@big-GGUF/big.Q5_K_M.gguf.part" || fail "no part file"
curl -sf -X DELETE "$HIVE_URL/v1/jobs/$job" >/dev/null || fail "cancel refused"
out=$(stream "$job")
assert_contains "$out" "[CANCELLED]" "the download is cancelled"
assert_eq "$("$RBEE" --json model list | jq -r '.models[] | select(.id=="org/big-GGUF") | .status')" \
	"partial" "the cancelled download is listed as partial"
"$RBEE" model get org/big-GGUF >/dev/null 2>&1 && fail "get of a partial model succeeded"
part=$(stat -c %s "$RBEE_HOME/models/org@big-GGUF/big.Q5_K_M.gguf.part")
out=$("$RBEE" model download org/big-GGUF 2>&1) || fail "resume after cancel failed: $out"
assert_contains "$out" "resuming 'big.Q5_K_M.gguf'" "the next download resumes"
assert_contains "$(ranges)" "bytes=$part-" "from the part's size"
"$RBEE" model delete org/big-GGUF >/dev/null || fail "delete failed"

# --- the hive killed mid-download resumes after a restart ---
: >"$HUB_LOG"
hub_control '{"stall_once":{"org/big-GGUF/big.Q5_K_M.gguf":[5000000,20]}}'
job=$(submit '{"operation":"model_download","model":"org/big-GGUF"}')
WAIT_S=15 wait_for test -s "$RBEE_HOME/models/org@big-GGUF/big.Q5_K_M.gguf.part" || fail "no part file"
sleep 0.5
stop_hive KILL
part=$(stat -c %s "$RBEE_HOME/models/org@big-GGUF/big.Q5_K_M.gguf.part")
start_hive
out=$("$RBEE" model download org/big-GGUF 2>&1) || fail "download after restart failed: $out"
assert_contains "$(ranges)" "bytes=$part-" "after the restart the download resumed at $part bytes"
assert_eq "$("$RBEE" --json model get org/big-GGUF | jq -r .size)" "$BIG_SIZE" "and completed"

# --- a wrong hash registers nothing ---
"$RBEE" model delete org/big-GGUF >/dev/null || fail "delete failed"
hub_control '{"wrong_hash":["org/big-GGUF/big.Q5_K_M.gguf"]}'
out=$("$RBEE" model download org/big-GGUF 2>&1) && fail "a wrong hash was accepted"
assert_contains "$out" "sha256" "the mismatch is reported"
assert_eq "$("$RBEE" --json model list | jq -r '[.models[].id] | index("org/big-GGUF")')" "null" \
	"nothing is registered"
[ ! -e "$RBEE_HOME/models/org@big-GGUF" ] || fail "the model's directory was left behind"
ok "its directory is gone"
hub_control '{"wrong_hash":[]}'

# --- 404 and 401/403 are distinct ---
out=$("$RBEE" model download org/nothing-here 2>&1) && fail "a missing repo downloaded"
assert_contains "$out" "model 'org/nothing-here' not found on $HUB_URL" "404 says not found"
hub_control '{"private":["org/secret"]}'
out=$("$RBEE" model download org/secret 2>&1) && fail "a private repo downloaded"
assert_contains "$out" "access denied to 'org/secret'" "401 says access denied"
assert_contains "$out" "set HF_TOKEN" "and names HF_TOKEN"
assert_not_contains "$out" "not found" "and is not a not-found"

# --- bad ids are refused at submit; the CLI says usage ---
resp=$(http POST /v1/jobs '{"operation":"model_download","model":"https://huggingface.co/a/b"}')
assert_contains "$resp" "400 " "a URL is refused with 400"
assert_contains "$resp" "org/repo:file.gguf" "showing the accepted forms"
set +e
"$RBEE" model download llama >/dev/null 2>&1
rc=$?
set -e
assert_eq "$rc" "2" "an id without '/' is a usage error"

# --- delete ---
"$RBEE" model delete org/tiny-GGUF >/dev/null || fail "delete failed"
out=$("$RBEE" model get org/tiny-GGUF 2>&1) && fail "a deleted model is still there"
assert_contains "$out" "not in this hive" "a deleted model is gone"
out=$("$RBEE" model delete org/tiny-GGUF 2>&1) && fail "deleting twice succeeded"
assert_contains "$out" "not in this hive" "deleting it again says so"
[ -f "$HUB_ROOT/org/tiny-GGUF/tiny.Q4_K_M.gguf" ] && ok "the hub's file is untouched"

pass
