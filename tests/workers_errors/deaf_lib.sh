# deaf_lib.sh - the deaf worker (rbee-test-deaf.py beside this file) in a test catalog made by
# make_spawn_catalog (tests/spawn/spawn_lib.sh); source after spawn_lib.sh.
#
#   add_deaf DIR ID TIMEOUT   catalog entry ID: the deaf worker, installed through worker_install
#                             from its PKGBUILD like any worker, ready_timeout_s TIMEOUT
add_deaf() {
	local dir=$1 id=$2 timeout=$3
	cp "$RBEE_SRC/tests/workers_errors/rbee-test-deaf.py" "$dir/rbee-test-deaf.py"
	local sha
	sha=$(sha256sum "$dir/rbee-test-deaf.py" | cut -d' ' -f1)
	jq --arg id "$id" --argjson t "$timeout" \
		'.id = $id | .implementation = "rbee-test-deaf" | .name = "rbee deaf test worker (" + $id + ")"
		 | .description = "listens and never accepts" | .source = {type: "tarball", url: "rbee-test-deaf.py"}
		 | .build = {bin: "rbee-test-deaf"} | .binary_name = "rbee-test-deaf"
		 | .install_path = "/usr/bin/rbee-test-deaf" | .launch.ready_timeout_s = $t' \
		"$dir/workers/rbee-test-worker-local.json" >"$dir/workers/$id.json"
	cat >"$dir/pkgbuilds/$id.PKGBUILD" <<PKG
# A worker that listens and never accepts (tests/workers_errors/rbee-test-deaf.py).
pkgname=$id
pkgver=1.0
pkgrel=1
pkgdesc="rbee deaf test worker"
arch=('x86_64' 'aarch64')
url="https://example.invalid/rbee-test-deaf"
license=('MIT')
source=("rbee-test-deaf.py")
sha256sums=('$sha')

package() {
	install -Dm755 "\$srcdir/rbee-test-deaf.py" "\$pkgdir/usr/bin/rbee-test-deaf"
}
PKG
}
