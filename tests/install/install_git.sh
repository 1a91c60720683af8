#!/bin/bash
# git sources: `git+file://...#tag=` and `#commit=` are cloned at that ref (as the build user
# when the hive is root), with sha256sums 'SKIP'; a checksum other than SKIP is refused.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
command -v git >/dev/null || { echo "git is not installed: skipping"; exit 0; }

start_source_server
make_test_catalog "$T/catalog"

# A repository holding the worker's source, readable by the build user (the hive may be root
# and build as nobody, so $T must be searchable).
chmod 711 "$T"
repo="$T/repo"
mkdir -p "$repo"
tar -xzf "$RBEE_TEST_BIN/rbee-test-worker-1.0.tar.gz" -C "$repo" --strip-components=1
git -C "$repo" init -q
git -C "$repo" -c user.name=t -c user.email=t@t add .
git -C "$repo" -c user.name=t -c user.email=t@t commit -qm v1
git -C "$repo" tag v1.0
first=$(git -C "$repo" rev-parse HEAD)
echo '#error "not the pinned commit"' >>"$repo/rbee-test-worker.c"
git -C "$repo" -c user.name=t -c user.email=t@t commit -qam broken
chmod -R o+rX "$repo"
# git refuses repositories owned by another user ("dubious ownership"): give it to the build user.
if [ "$(id -u)" = 0 ]; then chown -R "${RBEE_BUILD_USER:-nobody}" "$repo"; fi

add_entry() { # id ref sum
	sed "s/\"id\": \"rbee-test-worker\"/\"id\": \"$1\"/" \
		"$T/catalog/workers/rbee-test-worker.json" >"$T/catalog/workers/$1.json"
	sed -e "s|^pkgname=.*|pkgname=$1|" -e "s|^source=.*|source=(\"src::git+file://$repo#$2\")|" \
	    -e "s|^sha256sums=.*|sha256sums=('$3')|" -e 's|\$srcdir/\$pkgname-\$pkgver|$srcdir/src|g' \
	    "$T/catalog/pkgbuilds/rbee-test-worker.PKGBUILD" >"$T/catalog/pkgbuilds/$1.PKGBUILD"
}
add_entry rbee-test-git-tag tag=v1.0 SKIP
add_entry rbee-test-git-commit "commit=$first" SKIP
add_entry rbee-test-git-head "" SKIP
sed -i 's|#")|")|' "$T/catalog/pkgbuilds/rbee-test-git-head.PKGBUILD"
add_entry rbee-test-git-sum tag=v1.0 0000000000000000000000000000000000000000000000000000000000000000
start_hive --catalog "$T/catalog"

out=$(install_stream rbee-test-git-tag)
assert_contains "$out" "cloning 'file://$repo' at tag 'v1.0'" "tag clone narrated"
assert_contains "$out" "data: [DONE]" "install from a git tag"
out=$(install_stream rbee-test-git-commit)
assert_contains "$out" "at commit '$first'" "commit checkout narrated"
assert_contains "$out" "data: [DONE]" "install from a git commit"
out=$(install_stream rbee-test-git-head)
assert_contains "$out" "not the pinned commit" "the default branch is the newest commit"
assert_contains "$out" "[ERROR] build() failed" "which does not build"
assert_nothing_installed rbee-test-git-head
out=$(install_stream rbee-test-git-sum)
assert_contains "$out" "[ERROR] source 'src' is a git source: its sha256sums entry must be 'SKIP'" \
	"a checksum for a git source is refused"
assert_nothing_installed rbee-test-git-sum
pass
