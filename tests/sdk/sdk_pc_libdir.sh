#!/usr/bin/env bash
# rbee-backend.pc finds its prefix from where it lies, so it must climb as many folders as the
# libdir has: GNUInstallDirs picks lib/x86_64-linux-gnu on Debian for the prefix /usr, where a
# fixed "../.." pointed the includedir at /usr/lib/include. Configure a tree with such a libdir
# (only configure: the "sdk" install component needs no build), install the component into a
# DESTDIR, and build the installed example against it.
. "$RBEE_SRC/tests/lib.sh"
command -v pkg-config >/dev/null || fail "pkg-config is needed"

cmake -S "$RBEE_SRC" -B "$T/cfg" -DRBEE_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
	-DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu >"$T/configure.log" 2>&1 ||
	fail "configure failed: $(tail -n 20 "$T/configure.log")"
DESTDIR="$T/dest" cmake --install "$T/cfg" --component sdk >"$T/install.log" 2>&1 ||
	fail "installing the sdk component failed: $(cat "$T/install.log")"
root="$T/dest/usr"
[ -s "$root/lib/x86_64-linux-gnu/pkgconfig/rbee-backend.pc" ] || fail "rbee-backend.pc is not in the multiarch libdir"
[ -s "$root/include/rbee/backend.h" ] || fail "the header is not installed with the sdk component"
[ -s "$root/share/doc/rbee/examples/backend-hello/hello.c" ] || fail "the example is not installed with the sdk component"
ok "the sdk component installs the header, the .pc in lib/x86_64-linux-gnu/pkgconfig and the example"
[ ! -e "$root/bin/rbee-hive" ] || fail "the sdk component installed the programs too"
ok "and nothing else"

export PKG_CONFIG_PATH="$root/lib/x86_64-linux-gnu/pkgconfig" PKG_CONFIG_LIBDIR="$root/lib/x86_64-linux-gnu/pkgconfig"
assert_eq "$(realpath -m "$(pkg-config --variable=includedir rbee-backend)")" "$root/include" \
	"includedir is PREFIX/include, three folders above the .pc"
assert_eq "$(realpath -m "$(pkg-config --variable=backenddir rbee-backend)")" \
	"$root/lib/x86_64-linux-gnu/rbee/backends" "backenddir is in the multiarch libdir"
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden $(pkg-config --cflags rbee-backend) \
	"$root/share/doc/rbee/examples/backend-hello/hello.c" -o "$T/rbee_backend_hello.so" 2>"$T/cc.log" ||
	fail "the example does not build against the installed .pc: $(cat "$T/cc.log")"
ok "the installed example builds with its Cflags"
pass
