#!/usr/bin/env bash
# scripts/check-includes.sh finds what it is there to find: a cycle added to a copy of the real
# tree, a longer cycle through .c files, and it applies its rules (a module split over several
# files by a private *_internal.h is one module; that header is refused from another folder; a
# quoted include is looked up next to its file first, and an ambiguous one is an error).
. "$RBEE_SRC/tests/lib.sh"

check="$RBEE_SRC/scripts/check-includes.sh"
run_check() { # run_check ROOT: sets out and rc
	rc=0
	out=$(bash "$check" "$1" 2>&1) || rc=$?
}

# 1. The real tree, with jobs.h <- ops.h added to the existing ops.h <- jobs.h.
cp -r "$RBEE_SRC/core" "$RBEE_SRC/plugins" "$T/"
line=$(($(wc -l <"$T/core/hive/jobs/ops.h") + 1))
echo '#include "jobs.h"' >>"$T/core/hive/jobs/ops.h"
run_check "$T"
assert_eq "$rc" 1 "a cycle added to a copy of the tree fails the check"
assert_contains "$out" "cycle: core/hive/jobs/jobs -> core/hive/jobs/ops -> core/hive/jobs/jobs" \
	"and names the cycle's modules"
assert_contains "$out" "core/hive/jobs/ops -> core/hive/jobs/jobs: core/hive/jobs/ops.h:$line includes \"jobs.h\"" \
	"and the file and line that close it"
assert_contains "$out" "core/hive/jobs/jobs -> core/hive/jobs/ops: core/hive/jobs/jobs.h:" "and the other edge"

# 1b. The real tree again, with the job engine (the bottom subsystem) reaching up into the
# install subsystem: no two modules include each other, but the folders now do.
rm -rf "$T/core" "$T/plugins"
cp -r "$RBEE_SRC/core" "$RBEE_SRC/plugins" "$T/"
echo '#include "install/install.h"' >>"$T/core/hive/jobs/jobs.c"
run_check "$T"
assert_eq "$rc" 1 "a subsystem cycle added to a copy of the tree fails the check"
assert_contains "$out" "cycle: core/hive/install -> core/hive/jobs -> core/hive/install" \
	"and names the two folders"
assert_contains "$out" "core/hive/jobs -> core/hive/install: core/hive/jobs/jobs.c:" \
	"and the file that closes it"
rm -rf "$T/core" "$T/plugins"
run_check "$RBEE_SRC"
assert_eq "$rc" 0 "the real tree has no module or subsystem cycle"

# 2. Synthetic trees for the rules.
mk() { mkdir -p "$(dirname "$1")"; printf '%s\n' "${@:2}" >"$1"; }
S="$T/s1"
mk "$S/core/a/a.h" '#include "b.h"'
mk "$S/core/a/a.c" '#include "a.h"'
mk "$S/core/b/b.h" ''
mk "$S/core/b/b.c" '#include "b.h"' '#include "c.h"'
mk "$S/core/c/c.h" ''
mk "$S/core/c/c.c" '#include "c.h"' '#include "a.h"'
run_check "$S"
assert_eq "$rc" 1 "a cycle through three modules fails"
assert_contains "$out" "cycle: core/a/a -> core/b/b -> core/c/c -> core/a/a" "and lists all three"
assert_contains "$out" "core/c/c -> core/a/a: core/c/c.c:2 includes \"a.h\"" \
	"an edge made by a .c is reported with its file"
rm "$S/core/c/c.c"
mk "$S/core/c/c.c" '#include "c.h"'
run_check "$S"
assert_eq "$rc" 0 "without the closing edge the tree passes"
assert_contains "$out" "no cycle" "and says so"

# A module split over several .c files by its private header: calls back and forth inside it
# are no cycle; x_more.c (no header of its own) belongs to x.
S="$T/s2"
mk "$S/core/x/x.h" ''
mk "$S/core/x/x_internal.h" '#include "x.h"'
mk "$S/core/x/x.c" '#include "x.h"' '#include "x_internal.h"'
mk "$S/core/x/x_more.c" '#include "x_internal.h"' '#include "y.h"'
mk "$S/core/y/y.h" ''
mk "$S/core/y/y.c" '#include "y.h"'
run_check "$S"
assert_eq "$rc" 0 "the files of one module with a private header are one module"
mk "$S/core/y/y.c" '#include "y.h"' '#include "x.h"'
run_check "$S"
assert_eq "$rc" 1 "a cycle through a module's extra .c file is still found"
assert_contains "$out" "core/x/x -> core/y/y: core/x/x_more.c:2 includes \"y.h\"" \
	"and charged to the module that file belongs to"
mk "$S/core/y/y.c" '#include "y.h"' '#include "../x/x_internal.h"'
run_check "$S"
assert_contains "$out" "core/y/y.c:2: includes the private header core/x/x_internal.h of another folder" \
	"a private header included from another folder is refused"
assert_ne "$rc" 0 "and fails the check"

# Lookup: next to the including file first, so two folders may each have a store.h; a third
# folder naming store.h cannot say which, and that is an error, not a silent pick.
S="$T/s3"
mk "$S/core/p/store.h" ''
mk "$S/core/p/main.c" '#include "store.h"'
mk "$S/core/q/store.h" ''
mk "$S/core/q/main.c" '#include "store.h"'
run_check "$S"
assert_eq "$rc" 0 "a header next to its includer is found first"
mk "$S/core/r/r.c" '#include "store.h"'
run_check "$S"
assert_eq "$rc" 2 "an include that matches headers of two folders is an error"
assert_contains "$out" "core/r/r.c: #include \"store.h\" is ambiguous" "naming the include"
# Subsystems (folders below a program's folder) form layers: a cycle between two folders is
# refused even when no two modules include each other; the program's own top files are not in
# any subsystem.
S="$T/s4"
mk "$S/core/p/x/a.c" '#include "y/b.h"'
mk "$S/core/p/y/b.h" ''
mk "$S/core/p/y/c.c" '#include "x/d.h"'
mk "$S/core/p/x/d.h" ''
mk "$S/core/p/main.c" '#include "x/d.h"' '#include "y/b.h"'
mk "$S/core/p/ctx.h" ''
run_check "$S"
assert_eq "$rc" 1 "folders that include each other fail"
assert_contains "$out" "cycle: core/p/x -> core/p/y -> core/p/x" "named as a subsystem cycle"
assert_contains "$out" "core/p/y -> core/p/x: core/p/y/c.c:1 includes \"x/d.h\"" "with its edge"
rm "$S/core/p/y/c.c"
mk "$S/core/p/y/c.c" '#include "ctx.h"'
run_check "$S"
assert_eq "$rc" 0 "layered folders, all using the top folder's context header, pass"
# One way into a subsystem: outside files include its one header (x/x.h), never its inside.
S="$T/s5"
mk "$S/core/p/x/x.h" '#include "part.h"'
mk "$S/core/p/x/part.h" ''
mk "$S/core/p/x/x.c" '#include "x.h"'
mk "$S/core/p/y/y.c" '#include "x/x.h"'
mk "$S/core/p/main.c" '#include "x/x.h"' '#include "y/y.h"'
mk "$S/core/p/y/y.h" ''
run_check "$S"
assert_eq "$rc" 0 "a folder used through its one header passes (that header may include its parts)"
mk "$S/core/p/y/y.c" '#include "x/x.h"' '#include "x/part.h"'
run_check "$S"
assert_eq "$rc" 1 "a folder entered through a second header fails"
assert_contains "$out" "core/p/x is included from outside through 2 headers (part.h from core/p/y/y.c:2, x.h from" \
	"naming each header and where it is included"
assert_contains "$out" "include only core/p/x/x.h there" "and the one to use"
run_check "$T/nowhere"
assert_eq "$rc" 2 "a root without core/ is a usage error"
pass
