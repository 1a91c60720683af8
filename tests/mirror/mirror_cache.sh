#!/bin/bash
# The node cache ($RBEE_HOME/cache/sources): a file and git sources (a tag, a commit) served by
# a local http.server (the repository over dumb http) are kept after the first install (0644
# files in a 0755 directory; a branch is not kept); a cached file with the wrong content is
# fetched again and replaced; once the server is gone a reinstall and an --offline install
# succeed from the cache alone.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/mirror/mirror_lib.sh"

mirror_catalog
serve_repo
add_worker cached "\"data.txt::$WWW_URL/data.txt\" \"src::git+$WWW_URL/x.git#tag=v1\" \
	\"old::git+$WWW_URL/x.git#commit=$V1\"" "$(sha "$T/www/data.txt") SKIP SKIP"
add_worker branchy "\"br::git+$WWW_URL/x.git#branch=rel/1\" \"head::git+$WWW_URL/x.git\"" "SKIP SKIP"
start_hive --catalog "$cat"
c="$RBEE_HOME/cache/sources"

out=$(install_stream cached)
assert_contains "$out" "data: [DONE]" "first install over the network"
assert_contains "$out" "fetching 'data.txt' from '$WWW_URL/data.txt'" "the file came from the server"
assert_contains "$out" "kept 'data.txt' in the node cache: $c/data.txt" "the file is kept"
assert_contains "$out" "kept 'src' in the node cache: $c/src.tag-v1.bundle" "the tag is kept as a bundle"
assert_contains "$out" "kept 'old' in the node cache: $c/old.commit-$V1.bundle" "the commit is kept as a bundle"
assert_eq "$(stat -c %a "$c/data.txt") $(stat -c %a "$c/src.tag-v1.bundle") $(stat -c %a "$c")" \
	"644 644 755" "cache files are 0644 in a 0755 directory"
assert_eq "$(stat -c %u "$c/src.tag-v1.bundle")" "$(id -u)" "the bundle belongs to the hive's user"
assert_contains "$(git bundle list-heads "$c/src.tag-v1.bundle")" "refs/tags/v1" "the bundle holds the tag"
assert_eq "$(ls -A "$c" | grep -c rbee-tmp || true)" 0 "no temporary file is left in the cache"

out=$(install_stream branchy)
assert_contains "$out" "data: [DONE]" "branch sources install"
assert_eq "$(ls "$c" | grep -c -e '^br' -e '^head' || true)" 0 "branch and default-branch clones are not kept"

# A cached bundle serves only the URL it was cloned from (its .origin record), and only while its
# sha256 is the recorded one: another PKGBUILD's "src" at tag v1 from another URL cannot plant a
# bundle that this worker would build from.
mkdir -p "$T/evilrepo"
git -C "$T/evilrepo" init -q
echo EVIL >"$T/evilrepo/hello"
git -C "$T/evilrepo" add hello
git -C "$T/evilrepo" -c user.name=t -c user.email=t@t commit -qm evil
git -C "$T/evilrepo" tag v1
git clone -q --bare "$T/evilrepo" "$T/www/evil.git"
git -C "$T/www/evil.git" update-server-info
add_worker poison "\"src::git+$WWW_URL/evil.git#tag=v1\"" SKIP
assert_contains "$(cat "$c/src.tag-v1.bundle.origin")" "url $WWW_URL/x.git" "the cached bundle records its URL"
out=$(install_stream poison)
assert_contains "$out" "the node cache's '$c/src.tag-v1.bundle' was not made from '$WWW_URL/evil.git': cloning it" \
	"a bundle cached from another URL is not used"
assert_contains "$out" "data: [DONE]" "the other worker installs from its own URL"
assert_eq "$(installed poison)" "data=none git=EVIL" "with its own content"
out=$(install_stream cached)
assert_contains "$out" "was not made from '$WWW_URL/x.git': cloning it" "and its bundle is not used for the first worker"
assert_eq "$(installed cached)" "data=DATA1 git=v1" "which still builds from its own URL"
git -C "$T/evilrepo" bundle create -q "$c/src.tag-v1.bundle" refs/tags/v1
out=$(install_stream cached)
assert_contains "$out" "the node cache's '$c/src.tag-v1.bundle' cannot be used ('$c/src.tag-v1.bundle' has sha256" \
	"a cached bundle that is not the recorded one is a miss"
assert_contains "$out" "cloning again" "and cloned again"
assert_eq "$(installed cached)" "data=DATA1 git=v1" "from its own URL"

echo corrupt >"$c/data.txt"
bad=$(sha "$c/data.txt")
out=$(install_stream cached)
assert_contains "$out" "the node cache's '$c/data.txt' has sha256 $bad, the PKGBUILD expects $(sha "$T/www/data.txt"): fetching it again" \
	"a wrong cached file is a miss"
assert_contains "$out" "fetching 'data.txt' from '$WWW_URL/data.txt'" "it is fetched again"
assert_contains "$out" "data: [DONE]" "and the install succeeds"
assert_eq "$(sha "$c/data.txt")" "$(sha "$T/www/data.txt")" "the cache holds the right file again"

kill "$WWW_PID"
wait "$WWW_PID" 2>/dev/null || true
curl -sf "$WWW_URL/data.txt" -o /dev/null && fail "the server still answers"
out=$(install_stream cached)
assert_contains "$out" "'data.txt' from the node cache: $c/data.txt" "reinstall: the file from the cache"
assert_contains "$out" "'src' from the node cache: $c/src.tag-v1.bundle" "reinstall: the tag from the cache"
assert_contains "$out" "'old' from the node cache: $c/old.commit-$V1.bundle" "reinstall: the commit from the cache"
assert_not_contains "$out" "fetching 'data.txt' from" "nothing is fetched again"
assert_contains "$out" "data: [DONE]" "the reinstall succeeds without the server"
assert_eq "$(installed cached)" "data=DATA1 git=v1" "built from the cached sources"

rm -rf "$RBEE_HOME/workers/cached"
out=$(run_job '{"operation":"worker_install","worker_id":"cached","offline":true}')
assert_contains "$out" "data: [DONE]" "--offline succeeds from the cache"
assert_eq "$(installed cached)" "data=DATA1 git=v1" "offline install built from the cached sources"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive still answers /health"
pass
