#!/usr/bin/env bash
# A third party meets the SDK as `cmake --install` leaves it: the header, rbee-backend.pc, the
# author's guide and the example plugin with its Makefile. The example is built from its
# installed copy with nothing but the installed tree (pkg-config finds only the installed .pc,
# whose -I must point at the installed header), exports only its descriptor, and the installed
# hive loads it through RBEE_BACKEND_PATH: available in /v1/backends, its devices in
# /v1/capabilities, and the probe's three answers as the guide describes them. The installed
# hive finds its own plugins and catalog relative to its executable.
. "$RBEE_SRC/tests/lib.sh"
command -v make >/dev/null || fail "make is needed to build the installed example"
command -v pkg-config >/dev/null || fail "pkg-config is needed to build the installed example"

# Where the build installs, relative to the prefix (tests/sdk/CMakeLists.txt passes them).
libdir=${RBEE_INSTALL_LIBDIR:?run through ctest} includedir=${RBEE_INSTALL_INCLUDEDIR:?run through ctest}
docdir=${RBEE_INSTALL_DOCDIR:?run through ctest} datadir=${RBEE_INSTALL_DATADIR:?run through ctest}

# --- install into a temporary DESTDIR under a prefix that is not the configured one
DESTDIR="$T/dest" cmake --install "$RBEE_BUILD" --prefix /opt/rbee >"$T/install.log" 2>&1 ||
	fail "cmake --install failed: $(tail -n 20 "$T/install.log")"
root="$T/dest/opt/rbee"
for f in "$includedir/rbee/backend.h" "$libdir/pkgconfig/rbee-backend.pc" "$docdir/PLUGIN-SDK.md" \
	"$docdir/examples/backend-hello/hello.c" "$docdir/examples/backend-hello/Makefile" bin/rbee-hive; do
	[ -s "$root/$f" ] || fail "not installed: $f"
done
ok "the header, rbee-backend.pc, PLUGIN-SDK.md and the example are installed"
cmp -s "$RBEE_SRC/include/rbee/backend.h" "$root/$includedir/rbee/backend.h" || fail "the installed header is not the source's"
ok "the installed header is the one the hive was built with"
grep -q 'RBEE_BACKEND_PATH' "$root/$docdir/PLUGIN-SDK.md" || fail "the installed guide does not say how to load a plugin"
ok "the installed guide says how to load a plugin"

# --- pkg-config sees only the installed tree
pcdir="$root/$libdir/pkgconfig"
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_LIBDIR="$pcdir"
assert_eq "$(pkg-config --variable=pcfiledir rbee-backend)" "$pcdir" "pkg-config reads the installed rbee-backend.pc"
cflags=$(pkg-config --cflags rbee-backend)
assert_not_contains "$cflags" "$RBEE_SRC" "its Cflags do not point into the source tree"
assert_not_contains "$cflags" "$RBEE_BUILD" "nor into the build tree"
inc=$(pkg-config --variable=includedir rbee-backend)
assert_eq "$(realpath "$inc")" "$(realpath "$root/$includedir")" "its includedir is the installed include folder"
assert_eq "$(realpath "$(pkg-config --variable=docdir rbee-backend)")" "$(realpath "$root/$docdir")" \
	"its docdir is where the guide and examples are"
assert_eq "$(realpath "$(pkg-config --variable=backenddir rbee-backend)")" \
	"$(realpath "$root/$libdir/rbee/backends")" "its backenddir is the installed hive's plugin directory"

# --- build the installed example from a copy, with its own Makefile, strict warnings, and the
# dependency list to prove which header the compiler read
cp -r "$root/$docdir/examples/backend-hello" "$T/hello"
make -C "$T/hello" CC=cc CFLAGS="-O2 -Wall -Wextra -Werror -pedantic -MD" >"$T/make.log" 2>&1 ||
	fail "the installed example does not build: $(cat "$T/make.log")"
plugin="$T/hello/rbee_backend_hello.so"
[ -f "$plugin" ] || fail "make did not produce rbee_backend_hello.so: $(cat "$T/make.log")"
ok "the installed example builds with its Makefile and pkg-config (-Wall -Wextra -Werror -pedantic)"
hdr=$(tr ' \\' '\n\n' <"$T/hello/rbee_backend_hello.d" | grep 'rbee/backend\.h$' || true)
assert_eq "$(realpath "$hdr")" "$(realpath "$root/$includedir/rbee/backend.h")" \
	"the compiler read the installed rbee/backend.h"
assert_eq "$(nm -D --defined-only "$plugin" | awk '{print $3}')" rbee_backend_hello_descriptor \
	"the plugin exports only its descriptor"

# --- the probe on its own, as the guide's step 6 shows it
probe() { "$root/bin/rbee-hive" --probe-plugin "$plugin" 2>>"$T/probe.log" | tail -n 1; }
out=$(HELLO_DEVICES=0 probe)
assert_eq "$(jq -r '.state + ": " + .reason' <<<"$out")" "unavailable: no hello accelerator (HELLO_DEVICES=0)" \
	"--probe-plugin: HELLO_DEVICES=0 is unavailable, with the plugin's reason"
out=$(HELLO_DEVICES=x probe)
assert_eq "$(jq -r '.state + ": " + .reason' <<<"$out")" \
	"broken: probe failed: HELLO_DEVICES='x' is not a number from 0 to 8" \
	"a failing probe is broken with its host->fail() message"

# --- the installed hive loads it from RBEE_BACKEND_PATH
mkdir -p "$T/plugins"
cp "$plugin" "$T/plugins/"
export RBEE_BACKEND_PATH="$T/plugins" HELLO_DEVICES=2
HIVE_BIN="$root/bin/rbee-hive" start_hive
backends=$(curl -sf "$HIVE_URL/v1/backends") || fail "GET /v1/backends failed"
hello() { jq -r ".backends[] | select(.name == \"hello\") | $1" <<<"$backends"; }
assert_eq "$(hello .state)" available "/v1/backends: hello is available"
assert_eq "$(hello .path)" "$T/plugins/rbee_backend_hello.so" "loaded from RBEE_BACKEND_PATH"
assert_eq "$(hello .version)" 1.0.0 "with its version"
assert_eq "$(hello .score)" 20 "and its score"
assert_eq "$(hello .reason)" "2 pretend accelerators" "and its reason"
assert_eq "$(hello '[.devices[].id] | join(",")')" HELLO-0,HELLO-1 "and both its devices"
caps=$(curl -sf "$HIVE_URL/v1/capabilities") || fail "GET /v1/capabilities failed"
dev() { jq -r --arg id "$1" ".devices[] | select(.id == \$id) | $2" <<<"$caps"; }
assert_eq "$(dev HELLO-1 .backend)" hello "/v1/capabilities lists HELLO-1 on backend hello"
assert_eq "$(dev HELLO-1 .index)" 1 "as device 1"
assert_eq "$(dev HELLO-1 .name)" "Hello Accelerator" "with its name"
assert_eq "$(dev HELLO-1 .memory_total_bytes)" $((8 << 30)) "and its memory"
cpu_path=$(jq -r '.backends[] | select(.name == "cpu") | .state + " " + .path' <<<"$backends")
assert_eq "$cpu_path" "available $root/$libdir/rbee/backends/rbee_backend_cpu.so" \
	"the installed hive finds its own plugins in the installed plugin directory"
assert_contains "$(curl -sf "$HIVE_URL/v1/info" | jq -r .catalog)" "'$root/$datadir/rbee/catalog'" \
	"and defaults to the installed catalog"
assert_contains "$(RBEE_HIVE_URL=$HIVE_URL "$root/bin/rbee" hive backends)" "2 pretend accelerators" \
	"the installed rbee shows it in 'rbee hive backends'"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive answers /health"
stop_hive
probes() { pgrep -f -- "--probe-plugin $T/" | wc -l; }
assert_eq "$(probes)" 0 "no probe child is left behind"
pass
