# jobs_validation.sh - every bad submit is a 4xx JSON error at once, and creates no job;
# test-only operations do not exist without RBEE_ENABLE_TEST_OPS=1; submits need the token
# when one is configured.
. "$RBEE_SRC/tests/lib.sh"
start_hive

njobs() { curl -sf ${HIVE_TOKEN:+-H "Authorization: Bearer $HIVE_TOKEN"} "$HIVE_URL/v1/jobs" | jq '.jobs | length'; }

# refused BODY STATUS NEEDLE WHAT
refused() {
	local res
	res=$(curl -s -o "$T/r.body" -w '%{http_code}' --max-time 10 -X POST \
		-H 'Content-Type: application/json' --data-binary "$1" "$HIVE_URL/v1/jobs")
	assert_eq "$res" "$2" "$4: HTTP $2"
	assert_contains "$(jq -r .error "$T/r.body")" "$3" "$4: message"
	[ "$(jq -r .code "$T/r.body")" != null ] || fail "$4: no error code in $(cat "$T/r.body")"
}

before=$(njobs)
refused '' 400 "empty request body" "empty body"
refused '{"operation":"hive_check"' 400 "not valid JSON" "malformed JSON"
refused '{"operation":"hive_check"} x' 400 "not valid JSON" "trailing garbage"
refused '[1,2]' 400 "must be a JSON object" "an array"
refused '"hive_check"' 400 "must be a JSON object" "a string"
refused '{}' 400 "missing field 'operation'" "no operation"
refused '{"operation":42}' 400 "field 'operation' must be a string" "mistyped operation"
refused '{"operation":"make_coffee"}' 400 "unknown operation 'make_coffee'" "unknown operation"
refused '{"operation":"worker_install"}' 400 "needs field 'worker_id'" "missing field"
refused '{"operation":"worker_install","worker_id":7}' 400 "'worker_id' must be a string" "mistyped field"
refused '{"operation":"worker_install","worker_id":"../../etc"}' 400 "invalid worker_id" "path in an id"
refused '{"operation":"worker_process_get","pid":"1"}' 400 "'pid' must be an integer" "string for a number"
refused '{"operation":"worker_spawn","model":"https://x/m.gguf","worker":"cpu"}' 400 "invalid model id" "URL as model id"
refused '{"operation":"hive_check","hive_id":"elsewhere"}' 400 "this is hive 'localhost', not 'elsewhere'" "foreign hive_id"
refused '{"operation":"hive_check","hive_id":5}' 400 "'hive_id' must be a string" "mistyped hive_id"
refused '{"operation":"test_sleep","seconds":1}' 400 "unknown operation 'test_sleep'" "test op without RBEE_ENABLE_TEST_OPS"

# A 2 MiB body: 413 before the handler, whether announced by Content-Length or chunked.
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big.json"
printf '{"operation":"hive_check"}' >>"$T/big.json"
code=$(curl -s -o "$T/r.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$HIVE_URL/v1/jobs")
assert_eq "$code" 413 "a 2 MiB body is 413"
assert_eq "$(jq -r .code "$T/r.body")" too_large "413 body is JSON"
code=$(curl -s -o "$T/r.body" -w '%{http_code}' -X POST -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' \
	--data-binary @"$T/big.json" "$HIVE_URL/v1/jobs")
assert_eq "$code" 413 "a 2 MiB chunked body is 413"

assert_eq "$(njobs)" "$before" "no refused submit created a job"
assert_eq "$(ls "$RBEE_HOME/state" 2>/dev/null | grep -c scratch || true)" 0 "nothing left in the state directory"

# The same valid request goes through.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{"operation":"hive_check"}' "$HIVE_URL/v1/jobs")
assert_eq "$code" 201 "a valid submit is accepted"
assert_eq "$(njobs)" "$((before + 1))" "and creates one job"
stop_hive

# With a token: everything but /health needs it (submits, cancels, streams, lists).
RBEE_API_TOKEN=s3cret-token start_hive
HIVE_TOKEN=s3cret-token
code=$(curl -s -o "$T/r.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{"operation":"hive_check"}' "$HIVE_URL/v1/jobs")
assert_eq "$code" 401 "submit without the token is 401"
code=$(curl -s -o "$T/r.body" -w '%{http_code}' -X POST -H 'Authorization: Bearer wrong' -H 'Content-Type: application/json' \
	--data-binary '{"operation":"hive_check"}' "$HIVE_URL/v1/jobs")
assert_eq "$code" 401 "submit with a wrong token is 401"
assert_eq "$(njobs)" 0 "unauthorized submits created nothing"
id=$(curl -sf -X POST -H 'Authorization: Bearer s3cret-token' -H 'Content-Type: application/json' --data-binary '{"operation":"hive_check"}' \
	"$HIVE_URL/v1/jobs" | jq -r .job_id)
code=$(curl -s -o /dev/null -w '%{http_code}' "$HIVE_URL/v1/jobs/$id/stream")
assert_eq "$code" 401 "its stream without the token is 401"
code=$(curl -s -o /dev/null -w '%{http_code}' "$HIVE_URL/v1/jobs")
assert_eq "$code" 401 "the job list without the token is 401"
out=$(stream "$id")
assert_eq "$(grep '^data: ' <<<"$out" | tail -n 1)" "data: [DONE]" "with the token the job runs and streams"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$HIVE_URL/v1/jobs/$id")
assert_eq "$code" 401 "cancel without the token is 401"
pass
