#!/usr/bin/env bash
# A real worker, offline, end to end: the SHIPPED llama-cpp-server-cpu entry is built through the
# hive's own install path from a source mirror (--offline: nothing from the network), a tiny
# random-weight llama GGUF made with llama.cpp's gguf-py from the same source is served by the
# local hub and downloaded through the hive, the worker is spawned on CPU device 0 and answers
# /completion, /v1/chat/completions and a streamed chat, with the device's thread count; then it
# is stopped, the model and the worker are deleted, and nothing is left.
#
# Needs the mirror scripts/offline-sources.sh fills (RBEE_TEST_MIRROR=DIR; scripts/test.sh does
# this at set-up) and python3-numpy; takes ~15 minutes on 2 cores (the build). Label `real`:
# scripts/test.sh runs it as its own stage, after the suite.
. "$RBEE_SRC/tests/lib.sh"
RBEE="$BIN/rbee"
if [ -z "${RBEE_TEST_MIRROR:-}" ]; then
	echo "SKIP: RBEE_TEST_MIRROR is not set (scripts/offline-sources.sh DIR fills a mirror)"
	exit 77
fi
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (builds and workers run as uids of their own)"; exit 77; }
ID=llama-cpp-server-cpu
SHIPPED="$RBEE_SRC/packaging/catalog"
ver=$(jq -r .version "$SHIPPED/workers/$ID.json")
bundle="$RBEE_TEST_MIRROR/llama.cpp.tag-v$ver.bundle"
[ -f "$bundle" ] || fail "the mirror has no '$bundle': run scripts/offline-sources.sh '$RBEE_TEST_MIRROR'"

# --- the model: llama.cpp's gguf-py and tokenizer, from the same source as the server ---
git -c advice.detachedHead=false clone -q --branch "v$ver" "$bundle" "$T/src"
mkdir -p "$T/hub/rbee/tiny-llama-GGUF"
# Debian's python3-numpy is for Debian's python3: prefer it when another python3 comes first.
py=python3
"$py" -c 'import numpy, yaml' 2>/dev/null || py=/usr/bin/python3
"$py" "$RBEE_SRC/tests/real/make_tiny_llama.py" "$T/src" "$T/hub/rbee/tiny-llama-GGUF/tiny-llama-f32.gguf" \
	|| fail "cannot make the tiny GGUF"
MODEL=rbee/tiny-llama-GGUF
python3 "$RBEE_SRC/tests/models/fake_hub.py" --root "$T/hub" --port-file "$T/hub.port" >>"$T/hub.log" 2>&1 &
track $!
export HF_ENDPOINT="http://127.0.0.1:$(wait_port_file "$T/hub.port")"

# --- the hive: the shipped catalog, the mirror, no network for sources ---
_port_lo=$((20000 + (RANDOM % 120) * 100))
export RBEE_WORKER_PORTS="$_port_lo-$((_port_lo + 99))"
start_hive --catalog "$SHIPPED" --source-mirror "$RBEE_TEST_MIRROR"

# --- install: the operator's command, offline ---
started=$SECONDS
"$RBEE" worker install "$ID" --offline >"$T/install.log" 2>&1 || fail "install failed: $(tail -n 15 "$T/install.log")"
took=$((SECONDS - started))
out=$(cat "$T/install.log")
assert_contains "$out" "from the source mirror" "the source came from the mirror"
assert_contains "$out" "%" "the build's own progress was shown"
echo "# install of $ID took ${took}s on $(nproc) CPUs"
bin=$(jq -r .binary_path "$RBEE_HOME/workers/$ID/metadata.json")
[ -x "$bin" ] || fail "no installed llama-server at $bin"
ok "llama-server is installed"
assert_eq "$(ldd "$bin" | grep -c 'libllama\|libggml' || true)" 0 "it depends on no build-tree library"

# --- the model, through the hive ---
"$RBEE" model download "$MODEL" >"$T/download.log" 2>&1 || fail "download failed: $(tail -n 5 "$T/download.log")"
ok "the model was downloaded through the hive"

# --- spawn on CPU device 0 ---
out=$(STREAM_MAX_S=300 run_job "{\"operation\":\"worker_spawn\",\"model\":\"$MODEL\",\"worker\":\"$ID\",\"device\":0}")
[[ "$out" == *"data: [DONE]"* ]] || fail "spawn failed: $(grep -v '^$' <<<"$out" | tail -n 8)"
W=$(job_data "$out")
W_PID=$(jq -r .pid <<<"$W")
W_PORT=$(jq -r .port <<<"$W")
W_ID=$(jq -r .worker_id <<<"$W")
wurl="http://127.0.0.1:$W_PORT"
ok "spawned $W_ID (pid $W_PID, port $W_PORT)"

cpuset=$(curl -sf "$HIVE_URL/v1/capabilities" | jq -r '.devices[] | select(.id == "CPU-0") | .cpuset')
ncpu=$(python3 -c 'import sys
n = 0
for r in sys.argv[1].split(","):
    a, _, b = r.partition("-")
    n += int(b or a) - int(a) + 1
print(n)' "$cpuset")
args=$(tr '\0' ' ' <"/proc/$W_PID/cmdline")
assert_contains "$args" "--threads $ncpu " "llama-server runs with CPU-0's $ncpu thread(s)"
assert_contains "$args" "--threads-batch $ncpu" "and as many batch threads"
assert_eq "$(awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$W_PID/status")" "$cpuset" \
	"it is bound to CPU-0's cpuset"

# --- tokens ---
c=$(curl -sf --max-time 120 -H 'Content-Type: application/json' \
	--data-binary '{"prompt":"Once upon a time","n_predict":8,"ignore_eos":true}' "$wurl/completion") ||
	fail "/completion failed"
assert_eq "$(jq -r .tokens_predicted <<<"$c")" 8 "/completion generated 8 tokens"
assert_eq "$(jq -r '.content | type' <<<"$c")" string "and returned their text"

c=$(curl -sf --max-time 120 -H 'Content-Type: application/json' --data-binary \
	'{"messages":[{"role":"user","content":"Hello"}],"max_tokens":6,"ignore_eos":true}' \
	"$wurl/v1/chat/completions") || fail "/v1/chat/completions failed"
assert_eq "$(jq -r .usage.completion_tokens <<<"$c")" 6 "/v1/chat/completions generated 6 tokens"
assert_eq "$(jq -r '.choices[0].message.role' <<<"$c")" assistant "as the assistant's message"

s=$(curl -sfN --max-time 120 -H 'Content-Type: application/json' --data-binary \
	'{"messages":[{"role":"user","content":"Hello"}],"max_tokens":5,"ignore_eos":true,"stream":true}' \
	"$wurl/v1/chat/completions") || fail "streamed chat failed"
chunks=$(grep -c '^data: {.*"delta"' <<<"$s" || true)
[ "$chunks" -ge 5 ] || fail "the streamed chat sent $chunks delta chunks, expected at least 5: $s"
ok "the streamed chat sent $chunks chunks"
assert_contains "$s" "data: [DONE]" "and ended with [DONE]"

# --- stop and delete: nothing left ---
wuid=$(awk '/^Uid:/ {print $2}' "/proc/$W_PID/status")
out=$("$RBEE" worker process delete "$W_PID")
assert_contains "$out" "stopped" "the worker is stopped"
[ ! -e "/proc/$W_PID" ] || fail "pid $W_PID still exists"
assert_eq "$(pgrep -u "$wuid" | wc -l)" 0 "no process of the worker's uid $wuid is left"
out=$("$RBEE" model delete "$MODEL" 2>&1) || fail "model delete failed: $out"
out=$(run_job "{\"operation\":\"worker_remove\",\"worker_id\":\"$ID\"}")
assert_contains "$out" "[DONE]" "the installed worker is removed"
[ ! -e "$RBEE_HOME/workers/$ID" ] || fail "$RBEE_HOME/workers/$ID is still there"
assert_eq "$(ls -A "$RBEE_HOME/staging" 2>/dev/null | wc -l)" 0 "no staging directory is left"
assert_eq "$(ls -d /var/tmp/rbee-build-$ID-* 2>/dev/null | wc -l)" 0 "no build directory is left"
assert_eq "$(curl -sf "$HIVE_URL/v1/workers" | jq '.workers | length')" 0 "no worker is listed"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"
pass
