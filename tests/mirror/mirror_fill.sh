#!/bin/bash
# rbee-hive --fill-mirror DIR ID...: from a local http.server (a file, and a repository over
# dumb http at a tag, a commit and a branch) into an empty directory, in the foreground without
# a home or a port; a second run finds everything there; a source that cannot be fetched makes
# it exit non-zero naming it. Then a hive with only that mirror installs --offline with the
# server gone.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/mirror/mirror_lib.sh"

mirror_catalog
serve_repo
add_worker filled "\"data.txt::$WWW_URL/data.txt\" \"src::git+$WWW_URL/x.git#tag=v1\" \
	\"old::git+$WWW_URL/x.git#commit=$V1\" \"br::git+$WWW_URL/x.git#branch=rel/1\"" \
	"$(sha "$T/www/data.txt") SKIP SKIP SKIP"
add_worker broken "\"data.txt::$WWW_URL/data.txt\" \"gone.txt::$WWW_URL/gone.txt\"" \
	"$(sha "$T/www/data.txt") $(sha "$T/www/data.txt")"
f="$T/filled"

set +e
out=$(RBEE_HOME="$T/nohome" "$BIN/rbee-hive" --catalog "$cat" --fill-mirror "$f" filled 2>&1)
rc=$?
set -e
[ "$rc" = 0 ] || echo "--fill-mirror said: $out" >&2
assert_eq "$rc" 0 "--fill-mirror succeeds"
assert_contains "$out" "filled: data.txt: downloaded '$WWW_URL/data.txt' (sha256 $(sha "$T/www/data.txt") ok)" \
	"one line for the file"
assert_contains "$out" "filled: src.tag-v1.bundle: cloned '$WWW_URL/x.git' at tag 'v1' and bundled it" \
	"one line for the tag"
assert_contains "$out" "filled: old.commit-$V1.bundle: cloned" "one line for the commit"
assert_contains "$out" "filled: br.branch-rel%2F1.bundle: cloned" "one line for the branch"
assert_eq "$(ls "$f" | sort | tr '\n' ' ')" "br.branch-rel%2F1.bundle data.txt old.commit-$V1.bundle src.tag-v1.bundle " \
	"the mirror holds exactly the four sources"
assert_contains "$(git bundle list-heads "$f/br.branch-rel%2F1.bundle")" "refs/heads/rel/1" "the branch bundle holds the branch"
assert_eq "$(stat -c %a "$f/src.tag-v1.bundle")" 644 "mirror files are 0644"
[ ! -e "$T/nohome" ] || fail "--fill-mirror created a hive home"
ok "--fill-mirror needs no RBEE_HOME"
left=$(find /var/tmp /tmp -maxdepth 1 -name 'rbee-fill-filled-*' 2>/dev/null | wc -l)
assert_eq "$left" 0 "no work directory is left"

out=$("$BIN/rbee-hive" --catalog "$cat" --fill-mirror "$f" filled 2>&1)
assert_contains "$out" "filled: data.txt: already in the mirror" "a second run keeps the file"
assert_contains "$out" "filled: src.tag-v1.bundle: already in the mirror" "and the bundles"

set +e
out=$("$BIN/rbee-hive" --catalog "$cat" --fill-mirror "$T/other" broken 2>&1)
rc=$?
set -e
assert_ne "$rc" 0 "a source that cannot be fetched fails --fill-mirror"
assert_contains "$out" "broken: FAILED: source 'gone.txt::$WWW_URL/gone.txt': fetching" "naming the source"
assert_contains "$out" "1 of the sources failed" "and how many failed"
assert_eq "$(ls "$T/other")" data.txt "the others are in the mirror"

set +e
out=$("$BIN/rbee-hive" --fill-mirror "$T/x" 2>&1)
rc=$?
set -e
assert_eq "$rc" 2 "--fill-mirror without worker ids is a usage error"
assert_contains "$out" "needs the ids of the workers" "saying what is missing"

kill "$WWW_PID"
wait "$WWW_PID" 2>/dev/null || true
start_hive --catalog "$cat" --source-mirror "$f"
out=$(run_job '{"operation":"worker_install","worker_id":"filled","offline":true}')
assert_contains "$out" "'src' from the source mirror: $f/src.tag-v1.bundle" "the offline install uses the filled mirror"
assert_contains "$out" "data: [DONE]" "and succeeds without the server"
assert_eq "$(installed filled)" "data=DATA1 git=v1" "built from the filled mirror"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive still answers /health"
pass
