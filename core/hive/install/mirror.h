/*
 * mirror.h - `rbee-hive --fill-mirror DIR ID...`: fill a source mirror on a machine with network
 * for nodes without it (docs/MIRROR.md).
 *
 * For each worker id, the PKGBUILD is taken from the catalog the options name (--catalog,
 * RBEE_CATALOG_URL), read for this machine's architecture, and every source that a node would
 * fetch from the network is put into DIR in the mirror layout (sources.h,
 * rb_sources_mirror_name): files downloaded and checked against sha256sums, git sources cloned
 * and bundled at their ref. The fetch code is the install's (sources.c), in the same sandbox:
 * as root, git runs as a build uid of RBEE_BUILD_UIDS. Runs in the foreground: no daemon, no
 * port, no RBEE_HOME.
 */
#ifndef RB_MIRROR_H
#define RB_MIRROR_H

#include "hive.h"

/* Prints one line per source on stdout and each failure on stderr. Returns the process exit
 * status: 0 when every source is in DIR, 1 when any failed (named on stderr). */
int rb_mirror_fill_main(const struct rb_config *cfg);

#endif
