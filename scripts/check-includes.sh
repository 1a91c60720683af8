#!/usr/bin/env bash
# check-includes.sh [ROOT] - fail when the modules under ROOT/core and ROOT/plugins include each
# other in a cycle (ROOT: the source tree this script is in). Registered as the ctest test
# `include_cycles`, so CI fails on a new cycle; docs/CONTRIBUTING.md has the rule.
#
# A module is a .c and the .h of the same basename in the same folder (either may be alone:
# main.c, op_models.c, job.h are modules too). There is an edge A -> B when a file of A has
# `#include "..."` of a header of B. A quoted include is looked for next to the including file
# first, then as a unique path suffix among the headers under core/ and plugins/; one found
# nowhere there (a system or include/rbee header) is no edge, one that matches several headers
# is an error.
#
# X_internal.h is the private header of module X split over several .c files of one folder:
# the header and every .c of that folder without a header of its own that includes it belong to
# X (workers_monitor.c is part of the workers module; cpu_isa.c of cpu). Calls between those
# files are inside one module and no edge. Including an X_internal.h from another folder is an
# error of its own: the private header is the module's inside.
#
# Subsystems: a folder one level below a program's folder (core/hive/install, core/hive/jobs)
# is a subsystem, and subsystems may not include each other in a cycle either: the folders
# form layers (jobs at the bottom, http at the top). Files directly in a program's folder
# (main.c, hive.h: the composition and the context every part is handed) belong to no
# subsystem and are left to the module rule.
#
# Output: every cycle (the elementary cycles of each strongly connected component), each edge
# with the file and line that makes it; exit 1 when there is one, 2 on a usage or resolution
# error, 0 when both graphs are acyclic.
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
[ -d "$root/core" ] || { echo "check-includes: '$root' has no core/ folder" >&2; exit 2; }
exec python3 - "$root" <<'PY'
import os
import re
import sys

root = sys.argv[1]
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
MAX_CYCLES = 200  # per component; past that the component itself is the message

files = []
for top in ("core", "plugins"):
    for d, subdirs, names in os.walk(os.path.join(root, top)):
        subdirs.sort()
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                files.append(os.path.relpath(os.path.join(d, n), root))
fileset = set(files)
headers = [f for f in files if f.endswith(".h")]
errors = []

def stem(path):
    return os.path.splitext(path)[0]

def includes(path):
    out = []
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            m = INCLUDE.match(line)
            if m:
                out.append((lineno, m.group(1)))
    return out

def resolve(src, name):
    near = os.path.normpath(os.path.join(os.path.dirname(src), name))
    if near in fileset:
        return near
    hits = [h for h in headers if h == name or h.endswith("/" + name)]
    if len(hits) > 1:
        errors.append("%s: #include \"%s\" is ambiguous: %s" % (src, name, ", ".join(hits)))
        return None
    return hits[0] if hits else None

incs = {f: [(ln, name, resolve(f, name)) for ln, name in includes(f)] for f in files}

# Modules: a file's module is its path without the extension, except for the parts of a module
# with a private header (X_internal.h and the header-less .c files of its folder including it).
module = {f: stem(f) for f in files}
for h in headers:
    if not h.endswith("_internal.h"):
        continue
    owner = h[: -len("_internal.h")]
    module[h] = owner
    for f in files:
        if f.endswith(".c") and os.path.dirname(f) == os.path.dirname(h) and \
           stem(f) + ".h" not in fileset and any(t == h for _, _, t in incs[f]):
            module[f] = owner
for f in files:
    for ln, name, target in incs[f]:
        if target and target.endswith("_internal.h") and \
           os.path.dirname(target) != os.path.dirname(f):
            errors.append("%s:%d: includes the private header %s of another folder"
                          % (f, ln, target))

edges = {}  # (A, B) -> first "file:line includes name" that makes it
for f in files:
    for ln, name, target in incs[f]:
        if target is None:
            continue
        a, b = module[f], module[target]
        if a != b:
            edges.setdefault((a, b), "%s:%d includes \"%s\"" % (f, ln, name))
def subsystem(path):
    parts = path.split("/")
    return "/".join(parts[:3]) if len(parts) > 3 and parts[0] == "core" else None

sub_edges = {}
for f in files:
    for ln, name, target in incs[f]:
        if target is None:
            continue
        a, b = subsystem(f), subsystem(target)
        if a and b and a != b:
            sub_edges.setdefault((a, b), "%s:%d includes \"%s\"" % (f, ln, name))

# One way in: the files outside a subsystem include one header of it, the one that says how to
# use it (install/install.h); its other headers are its inside.
entries = {}  # subsystem -> header -> first "file:line" including it from outside
for f in files:
    for ln, name, target in incs[f]:
        b = subsystem(target) if target else None
        if b and subsystem(f) != b:
            entries.setdefault(b, {}).setdefault(target, "%s:%d" % (f, ln))
facades = []
for b in sorted(entries):
    if len(entries[b]) > 1:
        own = b + "/" + os.path.basename(b) + ".h"
        facades.append("%s is included from outside through %d headers (%s); include only %s "
                       "there and keep the others inside the folder" % (
                           b, len(entries[b]),
                           ", ".join("%s from %s" % (os.path.basename(h), w)
                                     for h, w in sorted(entries[b].items())),
                           own if own in fileset else "one of them"))


def strongly_connected(nodes, succ):
    """Tarjan's strongly connected components (iterative); those of more than one node."""
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
    for start in nodes:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter[0]
                counter[0] += 1
                stack.append(v)
                on.add(v)
            if i < len(succ[v]):
                work.append((v, i + 1))
                w = succ[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comps


def cycles_in(comp, succ):
    """Elementary cycles of one component, each started at its smallest node (no repeats)."""
    members = set(comp)
    found = []
    for s in comp:
        allowed = {n for n in members if n >= s}
        path, stack_ = [s], [iter(x for x in succ[s] if x in allowed)]
        while stack_ and len(found) < MAX_CYCLES:
            w = next(stack_[-1], None)
            if w is None:
                stack_.pop()
                path.pop()
            elif w == s:
                found.append(list(path))
            elif w not in path:
                path.append(w)
                stack_.append(iter(x for x in succ[w] if x in allowed))
    return found


def report(kind, edges_):
    """Print the cycles of one graph; return how many."""
    nodes = sorted({n for e in edges_ for n in e})
    succ = {n: sorted(b for (a, b) in edges_ if a == n) for n in nodes}
    total = 0
    for comp in strongly_connected(nodes, succ):
        print("include cycle among %d %s: %s" % (len(comp), kind, " ".join(comp)))
        cyc = cycles_in(comp, succ)
        for c in cyc:
            total += 1
            print("  cycle: " + " -> ".join(c + [c[0]]))
            for a, b in zip(c, c[1:] + [c[0]]):
                print("    %s -> %s: %s" % (a, b, edges_[(a, b)]))
        if len(cyc) >= MAX_CYCLES:
            print("  (more cycles in this component not listed)")
    return total


for e in errors:
    print("check-includes: " + e)
nmod = report("modules", edges)
nsub = report("subsystems", sub_edges)
for m in facades:
    print("check-includes: " + m)
if nmod or nsub or facades:
    print("check-includes: %d include cycle(s) between modules, %d between subsystem folders, "
          "%d subsystem(s) entered through more than one header; a module (a folder) may "
          "include only modules (folders) that do not include it back, and a folder only "
          "through its one header (docs/CONTRIBUTING.md)" % (nmod, nsub, len(facades)))
    sys.exit(1)
if errors:
    sys.exit(2)
print("check-includes: %d modules, %d include edges, %d subsystems, %d subsystem edges, no cycle, "
      "one header into each subsystem"
      % (len(set(module.values())), len(edges), len({n for e in sub_edges for n in e}),
         len(sub_edges)))
PY
