# jobs_concurrency.sh - 100 jobs submitted at once, each followed by its own stream, all end
# [DONE] while the pool (--max-jobs 4) runs only four at a time. (Queueing itself is checked
# by jobs_cancel.sh and the engine unit test, where it is deterministic.)
. "$RBEE_SRC/tests/lib.sh"
start_hive --max-jobs 4

mkdir -p "$T/out"
# One client: submit hive_check, follow its stream to the end, keep the stream.
cat >"$T/client.sh" <<'EOS'
id=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary '{"operation":"hive_check"}' "$1/v1/jobs" | jq -r .job_id) || exit 1
curl -sN --max-time 60 "$1/v1/jobs/$id/stream" >"$2/$id.sse"
EOS
seq 100 | xargs -P 100 -I{} bash "$T/client.sh" "$HIVE_URL" "$T/out" || fail "a client failed"
assert_eq "$(ls "$T/out" | wc -l | tr -d ' ')" 100 "100 jobs were submitted and streamed"
done_count=0
for f in "$T/out"/*.sse; do
	last=$(grep '^data: ' "$f" | tail -n 1)
	[ "$last" = "data: [DONE]" ] || fail "$(basename "$f" .sse) ended with '$last'"
	done_count=$((done_count + 1))
done
assert_eq "$done_count" 100 "all 100 streams end [DONE]"
list=$(curl -sf "$HIVE_URL/v1/jobs")
assert_eq "$(jq '[.jobs[] | select(.state == "done")] | length' <<<"$list")" 100 "the list shows 100 done jobs"
pass
