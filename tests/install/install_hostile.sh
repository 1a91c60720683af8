#!/bin/bash
# Install against a hostile catalog and PKGBUILD: an archive writing through a symlink another
# source left in $srcdir, a package whose binary is a symlink out of the package tree, a
# worker binary reading the hive's secrets during verify, git transports that run commands,
# and git+file:// sources from a catalog served over HTTP.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"

start_source_server
make_test_catalog "$T/catalog"
cat="$T/catalog"

# A world-writable directory outside everything, so that only the pipeline (not file
# permissions) stands between an archive and it, even when the build runs as 'nobody'.
outside=$(mktemp -d /tmp/rbee-outside.XXXXXX)
chmod 1777 "$outside"
trap 'rc=$?; rm -rf "$outside"; (exit $rc); _cleanup' EXIT

# 1. Two archives: the first leaves the symlink 'evil' -> $outside, the second holds
#    'evil/pwned'. tar only guards against the symlinks of the archive it extracts.
python3 - "$cat" "$outside" <<'PY'
import io, sys, tarfile
cat, outside = sys.argv[1], sys.argv[2]
with tarfile.open(cat + "/a-link.tar", "w") as t:
    ti = tarfile.TarInfo("evil"); ti.type = tarfile.SYMTYPE; ti.linkname = outside
    t.addfile(ti)
with tarfile.open(cat + "/b-file.tar", "w") as t:
    ti = tarfile.TarInfo("evil/pwned"); ti.size = 4
    t.addfile(ti, io.BytesIO(b"pwnd"))
PY
sa=$(sha256sum "$cat/a-link.tar" | cut -d' ' -f1)
sb=$(sha256sum "$cat/b-file.tar" | cut -d' ' -f1)
entry rbee-test-twoarchives true
pkgbuild rbee-test-twoarchives "a-link.tar b-file.tar" "$sa $sb" 'package() { :; }'

# 2. The binary is found through a symlink out of $pkgdir.
entry rbee-test-binlink true
pkgbuild rbee-test-binlink "" "" 'package() { ln -s /usr "$pkgdir/usr"; }'

# 3. The worker's --version prints the secrets it can see (verify runs it).
entry rbee-test-envprobe rbee-envprobe
pkgbuild rbee-test-envprobe "" "" '
build() { echo "build-env hf=${HF_TOKEN:-unset} gh=${github_token:-unset}"; }
package() {
	install -d "$pkgdir/usr/bin"
	printf "#!/bin/sh\necho \"probe-env hf=\${HF_TOKEN:-unset} gh=\${github_token:-unset} ssh=\${SSH_AUTH_SOCK:-unset}\"\n" >"$pkgdir/usr/bin/rbee-envprobe"
	chmod 755 "$pkgdir/usr/bin/rbee-envprobe"
}'

# 4. git transports that run commands, or options in disguise.
entry rbee-test-gitext true
pkgbuild rbee-test-gitext "\"x::git+ext::sh -c touch% $outside/pwned-ext\"" SKIP 'package() { :; }'
entry rbee-test-gitdash true
pkgbuild rbee-test-gitdash "\"x::git+ssh://-oProxyCommand=touch% $outside/pwned-ssh/x\"" SKIP \
	'package() { :; }'

# 5. The ordinary case still works: archives (tar and zip) land merged in $srcdir.
python3 - "$cat" <<'PY'
import io, sys, tarfile, zipfile
cat = sys.argv[1]
with zipfile.ZipFile(cat + "/z.zip", "w") as z:
    z.writestr("top/from-zip.txt", "z")
with tarfile.open(cat + "/t.tar", "w") as t:
    ti = tarfile.TarInfo("top/from-tar.txt"); ti.size = 1
    t.addfile(ti, io.BytesIO(b"t"))
PY
sz=$(sha256sum "$cat/z.zip" | cut -d' ' -f1)
st=$(sha256sum "$cat/t.tar" | cut -d' ' -f1)
entry rbee-test-archives true
pkgbuild rbee-test-archives "z.zip t.tar" "$sz $st" '
package() {
	test -f "$srcdir/top/from-zip.txt" && test -f "$srcdir/top/from-tar.txt"
	install -Dm755 /bin/true "$pkgdir/usr/bin/true"
}'

HF_TOKEN=hf-sekrit-123 github_token=gh-sekrit-456 SSH_AUTH_SOCK=/tmp/agent.sock \
	start_hive --catalog "$cat"

out=$(install_stream rbee-test-twoarchives)
assert_contains "$out" "[ERROR] archive 'b-file.tar' holds 'evil' as a directory, but \$srcdir already has a symlink there" \
	"an archive cannot write through another source's symlink"
[ ! -e "$outside/pwned" ] || fail "the archive wrote '$outside/pwned'"
ok "nothing was written outside the build directory"
assert_nothing_installed rbee-test-twoarchives

if command -v unzip >/dev/null; then
	out=$(install_stream rbee-test-archives)
	assert_contains "$out" "data: [DONE]" "a zip and a tar sharing a top directory are merged"
fi

out=$(install_stream rbee-test-binlink)
assert_contains "$out" "[ERROR] the worker binary 'usr/bin/true' resolves to '/usr/bin/true', outside the package tree" \
	"a binary reached through a symlink out of \$pkgdir is refused"
assert_nothing_installed rbee-test-binlink

out=$(install_stream rbee-test-envprobe)
assert_contains "$out" "data: [DONE]" "the env-probe worker installs"
assert_contains "$out" "build-env hf=unset gh=unset" "build() sees no secret"
assert_contains "$out" "probe-env hf=unset gh=unset ssh=unset" \
	"the verify probe (<worker> --version) sees none either"
assert_not_contains "$out" "sekrit" "no secret value appears anywhere in the stream"

out=$(install_stream rbee-test-gitext)
assert_contains "$out" "a git URL must start with https://, http://, git://, ssh:// or file://" \
	"an ext:: git transport is refused"
out=$(install_stream rbee-test-gitdash)
assert_contains "$out" "[ERROR] source 'x::git+ssh://-oProxyCommand" "an ssh host that is an option is refused"
sleep 0.2
[ -z "$(ls -A "$outside")" ] || fail "a git source ran a command: $(ls "$outside")"
ok "no git source ran a command"

# 6. git+file:// is a local catalog's privilege, like file://.
stop_hive
repo="$T/repo"
git init -q "$repo" && git -C "$repo" -c user.name=t -c user.email=t@t commit -q --allow-empty -m x
entry rbee-test-gitfile true
pkgbuild rbee-test-gitfile "\"src::git+file://$repo\"" SKIP 'package() { :; }'
start_catalog "$cat"
start_hive --catalog "$CATALOG_URL"
out=$(install_stream rbee-test-gitfile)
assert_contains "$out" "[ERROR] source 'file://$repo' is a git+file:// URL, which is accepted only from a local catalog directory" \
	"git+file:// from an HTTP catalog is refused"
assert_nothing_installed rbee-test-gitfile
pass
