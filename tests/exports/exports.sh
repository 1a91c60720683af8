#!/usr/bin/env bash
# The programs export none of their own rb_* functions: a plugin (or anything else dlopen'ed
# into them) cannot bind to hive internals by name, and its own functions of the same names
# stay its own. rbee-hive is built with -fvisibility=hidden and without -rdynamic
# (core/CMakeLists.txt).
. "$RBEE_SRC/tests/lib.sh"

command -v nm >/dev/null || fail "nm (binutils) is needed to read the dynamic symbol table"
checked=0
for prog in rbee-hive rbee-hive-test rbee rbee-catalog; do
	[ -x "$BIN/$prog" ] || continue
	syms=$(nm -D --defined-only "$BIN/$prog" | awk '$3 ~ /^rb_/ { print $3 }' | sort)
	assert_eq "$syms" "" "$prog exports no rb_* symbol ($(wc -w <<<"$syms") found)"
	checked=$((checked + 1))
done
[ -x "$BIN/rbee-hive" ] || fail "no $BIN/rbee-hive to check"
assert_ne "$checked" 0 "at least rbee-hive was checked"
pass
