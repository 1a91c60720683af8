#!/bin/bash
# A source mirror (--source-mirror): (a) a worker whose file source is on a dead port and whose
# git sources are at example.invalid installs from the mirror's file and bundles (a branch with
# '/' in its name is encoded %2F); (b) a mirror file with the wrong content is a clear error
# naming both hashes and the path, with nothing installed; (f) a bundle that lacks the tag or
# commit is a clear error naming the bundle and the ref.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/mirror/mirror_lib.sh"

mirror_catalog
make_repo "$T/repo"
m="$T/mirror"
mkdir -p "$m"
echo DATA1 >"$m/data.txt"
git -C "$T/repo" bundle create -q "$m/src.tag-v1.bundle" refs/tags/v1
git -C "$T/repo" bundle create -q "$m/br.branch-rel%2F1.bundle" refs/heads/rel/1
git -C "$T/repo" bundle create -q "$m/old.commit-$V1.bundle" refs/tags/v1
chmod 700 "$m" # only the hive reads the mirror: the build user gets a copy
# (a)
add_worker mirrored "\"data.txt::http://127.0.0.1:9/data.txt\" \
	\"src::git+https://example.invalid/x.git#tag=v1\" \
	\"br::git+https://example.invalid/y.git#branch=rel/1\" \
	\"old::git+https://example.invalid/z.git#commit=$V1\"" "$(sha "$m/data.txt") SKIP SKIP SKIP"
# (b)
echo good >"$T/good.txt"
echo evil >"$m/bad.txt"
add_worker badmirror '"bad.txt::http://127.0.0.1:9/bad.txt"' "$(sha "$T/good.txt")"
# (f)
cp "$m/src.tag-v1.bundle" "$m/src.tag-v9.bundle"
add_worker notag '"src::git+https://example.invalid/x.git#tag=v9"' SKIP
cp "$m/src.tag-v1.bundle" "$m/src.commit-$V2.bundle"
add_worker nocommit "\"src::git+https://example.invalid/x.git#commit=$V2\"" SKIP

start_hive --catalog "$cat" --source-mirror "$m"

out=$(install_stream mirrored)
assert_contains "$out" "'data.txt' from the source mirror: $m/data.txt" "the file's origin is narrated"
assert_contains "$out" "'src' from the source mirror: $m/src.tag-v1.bundle" "the tag bundle's origin is narrated"
assert_contains "$out" "'br' from the source mirror: $m/br.branch-rel%2F1.bundle" \
	"a branch with '/' is looked for %2F-encoded"
assert_contains "$out" "'old' from the source mirror: $m/old.commit-$V1.bundle" "the commit bundle"
assert_contains "$out" "data: [DONE]" "install from the mirror succeeds"
assert_eq "$(installed mirrored)" "data=DATA1 git=v1" "package() saw the mirror's file and the tag's checkout"
assert_contains "$(cat "$RBEE_HOME/workers/mirrored/build.log")" "from the source mirror: $m/src.tag-v1.bundle" \
	"build.log says where each source came from"
assert_eq "$(ls "$RBEE_HOME/cache/sources" | wc -l)" 0 "nothing from the mirror is copied into the cache"

out=$(install_stream badmirror)
assert_contains "$out" "[ERROR] source 'bad.txt' in the source mirror does not match the PKGBUILD: '$m/bad.txt' has sha256 $(sha "$m/bad.txt"), the PKGBUILD expects $(sha "$T/good.txt")" \
	"a wrong mirror file names the path and both hashes"
assert_not_contains "$out" "fetching 'bad.txt' from" "no fallback to the network"
assert_nothing_installed badmirror

out=$(install_stream notag)
assert_contains "$out" "[ERROR] the git bundle '$m/src.tag-v9.bundle' does not hold the tag 'v9' (refs/tags/v9)" \
	"a bundle without the tag names the bundle and the ref"
assert_nothing_installed notag
out=$(install_stream nocommit)
assert_contains "$out" "[ERROR] the git bundle '$m/src.commit-$V2.bundle' does not hold commit '$V2'" \
	"a bundle without the commit names the bundle and the commit"
assert_nothing_installed nocommit

assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive still answers /health"
pass
