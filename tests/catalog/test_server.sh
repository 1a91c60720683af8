# rbee-catalog against the test catalog: the SPEC section 5 API, 404s (path tricks included),
# 405s, skipped malformed entries, SIGHUP reload, clean SIGTERM, and bad command lines.
. "$RBEE_SRC/tests/lib.sh"

cp -r "$RBEE_SRC/tests/catalog/fixtures/catalog" "$T/cat"
# An entry whose PKGBUILD is a symlink out of the catalog: must be skipped, never served.
jq '.id = "escape" | del(.launch)' "$T/cat/workers/test-worker-a.json" >"$T/cat/workers/escape.json"
ln -s /etc/passwd "$T/cat/pkgbuilds/escape.PKGBUILD"
start_catalog "$T/cat"
C=$CATALOG_URL

# get PATH [curl args...]: prints "STATUS CONTENT_TYPE" and leaves the body in $T/body.
get() {
	local path=$1
	shift
	curl -s -o "$T/body" -w '%{http_code} %{content_type}' "$@" "$C$path"
}

# --- health and listing
out=$(get /health)
assert_eq "$out" "200 application/json" "GET /health is JSON"
assert_eq "$(jq -r '.status + " " + .service' "$T/body")" "ok worker-catalog" "health names the service"
assert_eq "$(jq -r .version "$T/body")" "$("$BIN/rbee-catalog" --version | awk '{print $2}')" \
	"health carries the version"

out=$(get /workers)
assert_eq "$out" "200 application/json" "GET /workers is JSON"
assert_eq "$(jq -r '[.workers[].id] | join(",")' "$T/body")" "test-worker-a,test-worker-b,test-worker-remote" \
	"valid entries listed, sorted by id, malformed ones left out"
cp "$T/body" "$T/workers.json"

# Every served entry is its file, field for field, with pkgbuild_url as the catalog route.
for id in test-worker-a test-worker-b; do
	want=$(jq -S --arg id "$id" '.pkgbuild_url = "/workers/\($id)/PKGBUILD"' "$T/cat/workers/$id.json")
	got=$(jq -S --arg id "$id" '.workers[] | select(.id == $id)' "$T/workers.json")
	assert_eq "$got" "$want" "$id served with the fields of its file"
	out=$(get "/workers/$id")
	assert_eq "$out" "200 application/json" "GET /workers/$id"
	assert_eq "$(jq -S . "$T/body")" "$want" "GET /workers/$id is the same entry"
done
assert_eq "$(jq -r '.workers[] | select(.id == "test-worker-b") | .x_vendor_note' "$T/workers.json")" \
	"unknown fields pass through" "unknown fields are kept"

# --- PKGBUILDs
out=$(get /workers/test-worker-a/PKGBUILD)
assert_eq "$out" "200 text/plain; charset=utf-8" "PKGBUILD is text/plain"
cmp -s "$T/body" "$T/cat/pkgbuilds/test-worker-a.PKGBUILD" || fail "PKGBUILD differs from the file"
ok "PKGBUILD bytes are the file's"
get /workers/test-worker-b/PKGBUILD >/dev/null
cmp -s "$T/body" "$T/cat/pkgbuilds/custom-b.PKGBUILD" || fail "relative pkgbuild_url not followed"
ok "a relative pkgbuild_url is served at the route"
out=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$C/workers/test-worker-remote/PKGBUILD")
assert_eq "$out" "302 https://example.invalid/pkgbuilds/remote.PKGBUILD" "a remote PKGBUILD is a redirect"
out=$(curl -s -o "$T/body" -w '%{http_code}' -I "$C/workers")
assert_eq "$out" "200" "HEAD /workers works"

# --- 404s, path tricks included
for path in /workers/nope /workers/nope/PKGBUILD /workers/..%2F..%2Fetc%2Fpasswd \
	/workers/..%2F..%2Fetc%2Fpasswd/PKGBUILD /workers/%2e%2e/PKGBUILD /workers/escape \
	/workers/escape/PKGBUILD /workers/broken; do
	out=$(get "$path")
	assert_eq "$out" "404 application/json" "GET $path is 404"
	assert_eq "$(cat "$T/body")" '{"error":"Worker not found"}' "GET $path says Worker not found"
done
assert_not_contains "$(curl -s "$C/workers/..%2F..%2Fetc%2Fpasswd/PKGBUILD")" "root:" "no file leaks"
for path in /nope /workers/ /workers/test-worker-a/other /health/x \
	/workers/test-worker-a%2F..%2F..%2Fetc%2Fpasswd; do
	out=$(get "$path")
	assert_eq "$out" "404 application/json" "GET $path is 404"
	assert_eq "$(jq -r .code "$T/body")" "not_found" "GET $path names the code"
done

# --- 405s
for m in POST PUT DELETE PATCH; do
	out=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$m" "$C/workers/test-worker-a")
	assert_eq "$out" "405" "$m /workers/test-worker-a is 405"
	assert_eq "$(jq -r .code "$T/body")" "method_not_allowed" "$m answer is JSON"
	assert_contains "$(tr -d '\r' <"$T/headers")" "Allow: GET, HEAD" "$m answer has Allow"
done
out=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{"x":1}' "$C/workers")
assert_eq "$out" "405" "POST /workers with a body is 405"

# --- the log names every skipped entry and why
log=$(cat "$T/catalog.log")
assert_contains "$log" "workers/broken.json': malformed JSON" "malformed JSON reported"
assert_contains "$log" "workers/missing-field.json': field 'platforms' is missing" "missing field reported"
assert_contains "$log" "workers/wrong-id.json': field 'id' is 'someone-else' but must be 'wrong-id'" \
	"id/file mismatch reported"
assert_contains "$log" "workers/no-pkgbuild.json': no PKGBUILD" "missing PKGBUILD reported"
assert_contains "$log" "workers/escape.json': no PKGBUILD: 'pkgbuilds/escape.PKGBUILD' leads out of the catalog" \
	"symlink escape reported"
assert_not_contains "$log" "README" "non-JSON files are ignored"

# --- SIGHUP reload: one entry added, one removed
jq '.id = "test-worker-c"' "$T/cat/workers/test-worker-a.json" >"$T/cat/workers/test-worker-c.json"
cp "$T/cat/pkgbuilds/test-worker-a.PKGBUILD" "$T/cat/pkgbuilds/test-worker-c.PKGBUILD"
rm "$T/cat/workers/test-worker-b.json"
kill -HUP "$CATALOG_PID"
wait_for curl -sf "$C/workers/test-worker-c" || fail "reload did not add test-worker-c"
ok "SIGHUP picks up a new entry"
assert_eq "$(get /workers/test-worker-b)" "404 application/json" "SIGHUP drops a removed entry"
assert_eq "$(curl -s "$C/workers" | jq -r '[.workers[].id] | join(",")')" \
	"test-worker-a,test-worker-c,test-worker-remote" "the listing is rebuilt"

# A reload that cannot read the directory keeps the previous catalog.
mv "$T/cat" "$T/cat.away"
kill -HUP "$CATALOG_PID"
WAIT_S=5 wait_for grep -q "reload failed, still serving the previous catalog" "$T/catalog.log" ||
	fail "failed reload not logged"
ok "a failed reload is logged"
assert_eq "$(curl -s "$C/workers" | jq '.workers | length')" "3" "and the old catalog is still served"
mv "$T/cat.away" "$T/cat"

# --- clean SIGTERM
kill -TERM "$CATALOG_PID"
rc=0
wait "$CATALOG_PID" || rc=$?
assert_eq "$rc" "0" "SIGTERM exits 0"
assert_contains "$(cat "$T/catalog.log")" "received SIGTERM, shutting down" "shutdown is logged"

# --- command line errors
rc=0
"$BIN/rbee-catalog" --port nope >"$T/usage.out" 2>&1 || rc=$?
assert_eq "$rc" "2" "bad --port is a usage error"
assert_contains "$(cat "$T/usage.out")" "invalid --port 'nope'" "and says which flag"
rc=0
"$BIN/rbee-catalog" --bind not-an-address --port 0 --dir "$T/cat" >"$T/bind.out" 2>&1 || rc=$?
assert_eq "$rc" "1" "a bad --bind address fails"
assert_contains "$(cat "$T/bind.out")" "invalid --bind address 'not-an-address'" "and names it"
rc=0
"$BIN/rbee-catalog" --dir "$T/none" --port 0 >"$T/dir.out" 2>&1 || rc=$?
assert_eq "$rc" "1" "a missing --dir fails"
assert_contains "$(cat "$T/dir.out")" "cannot open the catalog directory '$T/none'" "and names it"
start_catalog "$T/cat"
port=${CATALOG_URL##*:}
rc=0
timeout 10 "$BIN/rbee-catalog" --dir "$T/cat" --port "$port" >"$T/busy.out" 2>&1 || rc=$?
assert_eq "$rc" "1" "a port in use fails"
assert_contains "$(cat "$T/busy.out")" "cannot listen on 127.0.0.1 port $port" "and says so"
assert_contains "$("$BIN/rbee-catalog" --help)" "--port-file FILE" "--help lists the flags"
pass
