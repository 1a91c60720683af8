# jobs_stream.sh - submit and stream: the event format, history for late and repeated
# clients, Last-Event-ID resume, the job list, and 404/409 answers.
. "$RBEE_SRC/tests/lib.sh"
export RBEE_ENABLE_TEST_OPS=1
HIVE_BIN="$BIN/rbee-hive-test" # test_sleep: only in the tests' build of the hive
start_hive

# events TEXT: the stream without comments (keep-alives, the opening one) and blank lines.
events() { grep -v -e '^:' -e '^$' <<<"$1" || true; }

# --- submit answers 201 with the job id and its stream URL
resp=$(curl -s -w ' %{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{"operation":"hive_check","hive_id":"localhost"}' \
	"$HIVE_URL/v1/jobs")
code=${resp##* }
body=${resp% *}
assert_eq "$code" 201 "submit answers 201"
id=$(jq -r .job_id <<<"$body")
[[ "$id" =~ ^job-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
	fail "job id is not job-<uuid v4>: $id"
ok "job id is job-<uuid v4>"
assert_eq "$(jq -r .sse_url <<<"$body")" "/v1/jobs/$id/stream" "sse_url names the stream"

# --- the stream: SSE, ids, narration, data, one terminal, last
hdrs=$(curl -s -o "$T/first.sse" -D - --max-time 30 "$HIVE_URL/v1/jobs/$id/stream")
assert_contains "$hdrs" "Content-Type: text/event-stream" "stream is text/event-stream"
first=$(cat "$T/first.sse")
assert_contains "$first" "data: checking hive 'localhost'" "narration is a data: line"
assert_contains "$first" "data: cache directory '$RBEE_HOME': writable" "narrates the cache check"
assert_contains "$first" "data: backend 'cpu'" "narrates each backend"
assert_contains "$first" "data: catalog " "narrates the catalog"
summary=$(job_data "$first")
assert_eq "$(jq -r .ok <<<"$summary")" true "event: data carries the summary"
assert_eq "$(jq -r .cache.writable <<<"$summary")" true "summary: cache writable"
assert_eq "$(grep -c '^data: \[\(DONE\|ERROR\|CANCELLED\)' <<<"$first")" 1 "exactly one terminal event"
assert_eq "$(grep '^data: ' <<<"$first" | tail -n 1)" "data: [DONE]" "[DONE] is the last event"
ids=$(grep '^id: ' <<<"$first" | cut -d' ' -f2)
n_events=$(grep -c '^data: ' <<<"$first")
assert_eq "$(wc -l <<<"$ids" | tr -d ' ')" "$n_events" "every event has an id"
assert_eq "$(sort -n <<<"$ids" | uniq)" "$ids" "ids increase"

# --- a late client and a repeated client get the whole history
again=$(stream "$id")
assert_eq "$(events "$again")" "$(events "$first")" "a late client gets the same events"

# --- Last-Event-ID resumes after that event
resumed=$(curl -s --max-time 30 -H 'Last-Event-ID: 3' "$HIVE_URL/v1/jobs/$id/stream")
expect=$(events "$first" | awk '/^id: /{keep = ($2 > 3)} keep')
assert_eq "$(events "$resumed")" "$expect" "Last-Event-ID: 3 resumes with event 4"
after_end=$(curl -s --max-time 10 -H "Last-Event-ID: $(tail -n 1 <<<"$ids")" "$HIVE_URL/v1/jobs/$id/stream")
assert_eq "$(events "$after_end")" "" "resuming after the terminal sends nothing and ends"
res=$(curl -s -w ' %{http_code}' -H 'Last-Event-ID: abc' "$HIVE_URL/v1/jobs/$id/stream")
assert_eq "${res##* }" 400 "a malformed Last-Event-ID is a 400"

# --- two clients on one running job receive identical events
id2=$(submit '{"operation":"test_sleep","seconds":1,"lines":20}')
stream "$id2" >"$T/a.sse" &
pa=$!
track $pa
stream "$id2" >"$T/b.sse" &
pb=$!
track $pb
wait $pa $pb
a=$(cat "$T/a.sse")
b=$(cat "$T/b.sse")
assert_contains "$a" "data: line 20 of 20" "first client saw the narration"
assert_contains "$a" "event: progress" "progress events are streamed"
assert_eq "$(events "$b")" "$(events "$a")" "two clients get identical events"
assert_eq "$(grep '^data: ' <<<"$a" | tail -n 1)" "data: [DONE]" "the slow job ends [DONE]"
progress=$(awk '/^event: progress$/{getline; sub(/^data: /,""); print; exit}' <<<"$a")
assert_eq "$(jq -r 'has("stage") and has("bytes_done") and has("bytes_total") and has("rate_bps")' <<<"$progress")" \
	true "progress JSON has stage, bytes_done, bytes_total, rate_bps"

# --- a failing job: [ERROR] with its message, state failed
out=$(run_job '{"operation":"test_sleep","seconds":0,"fail":"disk on fire"}')
assert_eq "$(grep '^data: ' <<<"$out" | tail -n 1)" "data: [ERROR] disk on fire" "a failure ends [ERROR] <message>"

# --- the job list
list=$(curl -sf "$HIVE_URL/v1/jobs")
assert_eq "$(jq -r --arg id "$id" '.jobs[] | select(.job_id == $id) | .state' <<<"$list")" done "list shows the done job"
assert_eq "$(jq -r --arg id "$id" '.jobs[] | select(.job_id == $id) | .operation' <<<"$list")" hive_check "list shows the operation"
assert_contains "$(jq -r '.jobs[] | select(.error == "disk on fire") | .state' <<<"$list")" failed "failed job has its error"
for f in created_at started_at finished_at; do
	v=$(jq -r --arg id "$id" ".jobs[] | select(.job_id == \$id) | .$f" <<<"$list")
	[[ "$v" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]] || fail "$f is not RFC 3339: $v"
done
ok "timestamps are RFC 3339"

# --- unknown and finished jobs
res=$(http GET /v1/jobs/job-00000000-0000-4000-8000-000000000000/stream)
assert_eq "${res%% *}" 404 "stream of an unknown job is 404"
assert_contains "$(jq -r .error <<<"${res#* }")" "no job 'job-00000000-0000-4000-8000-000000000000'" "404 names the job"
res=$(http DELETE /v1/jobs/job-nope)
assert_eq "${res%% *}" 404 "cancel of an unknown job is 404"
assert_eq "$(jq -r .code <<<"${res#* }")" not_found "404 body is JSON with a code"
res=$(http DELETE "/v1/jobs/$id")
assert_eq "${res%% *}" 409 "cancel of a finished job is 409"
assert_contains "$(jq -r .error <<<"${res#* }")" "already finished (done)" "409 says why"
pass
