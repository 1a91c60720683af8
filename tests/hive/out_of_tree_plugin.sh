#!/usr/bin/env bash
# The ABI from outside: install rbee into a prefix, build the example backend against the
# installed header through pkg-config only, and have the installed hive load it.
. "$RBEE_SRC/tests/lib.sh"

cmake --install "$RBEE_BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || fail "cmake --install failed"
pc_dir=$(dirname "$(find "$T/prefix" -name rbee-backend.pc | head -1)")
[ -n "$pc_dir" ] || fail "no rbee-backend.pc installed"
ok "the pkg-config file is installed"
cflags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags rbee-backend)
assert_eq "$(cd "$(echo "$cflags" | sed "s/^ *-I//; s/ *$//")" && pwd -P)" "$(cd "$T/prefix/include" && pwd -P)" "pkg-config points at the installed header"

mkdir -p "$T/plugins"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden $cflags \
	"$RBEE_SRC/examples/backend-hello/hello.c" -o "$T/plugins/rbee_backend_hello.so" \
	|| fail "the example backend does not build against the installed header"
ok "the example backend builds out of tree"

# The installed hive finds its own plugins relative to its executable, and ours by path.
BIN="$T/prefix/bin"
RBEE_BACKEND_PATH="$T/plugins" start_hive
b=$(curl -sf "$HIVE_URL/v1/backends")
assert_eq "$(jq -r '.backends[] | select(.name=="hello") | .state' <<<"$b")" available "the hive loads it"
assert_eq "$(jq -r '.backends[] | select(.name=="cpu") | .state' <<<"$b")" available \
	"the installed hive finds its installed plugins"
assert_eq "$(curl -sf "$HIVE_URL/v1/capabilities" | jq -r '[.devices[] | select(.backend=="hello")][0].name')" \
	"Hello Accelerator" "its devices are listed"
assert_contains "$(curl -sf "$HIVE_URL/v1/info" | jq -r .catalog)" "$T/prefix/share/rbee/catalog" \
	"the installed hive defaults to the installed catalog"
pass
