#!/usr/bin/env bash
# A model id the store refuses is refused at submit already: a 400 with the store's own
# message, no job created, nothing under models/, and the hive keeps answering.
. "$RBEE_SRC/tests/lib.sh"
start_hive
before=$(curl -sf "$HIVE_URL/v1/jobs" | jq '.jobs | length')
msg="'metadata.json' is a name the model store uses itself"
for body in '{"operation":"model_download","model":"org/repo:metadata.json"}' \
	    '{"operation":"model_get","id":"org/repo:metadata.json"}' \
	    '{"operation":"model_delete","id":"org/repo:download.json"}' \
	    '{"operation":"worker_spawn","model":"org/repo:m.gguf.part","worker":"cpu"}'; do
	out=$(http POST /v1/jobs "$body")
	assert_eq "${out%% *}" 400 "400 at submit: $body"
	assert_contains "$out" "invalid model id" "the store's message: $body"
	assert_contains "$out" "(metadata.json, download.json, *.part)" "names the store's own files: $body"
done
out=$(http POST /v1/jobs '{"operation":"model_get","id":"org/repo:metadata.json"}')
assert_contains "$out" "$msg" "says which name is the store's"
assert_eq "$(curl -sf "$HIVE_URL/v1/jobs" | jq '.jobs | length')" "$before" "no job was created"
left=$(find "$RBEE_HOME/models" -mindepth 1 2>/dev/null | wc -l)
assert_eq "$left" 0 "nothing under models/"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "hive still answers /health"
pass
