/*
 * installable.h - whether a catalog entry can be installed on this node, decided before anything
 * is fetched. One set of checks for worker_install (which refuses with the first failure) and
 * worker_catalog_list (which reports "installable" and "not_installable_because" per entry):
 *
 *   - the entry names a worker_type, and its platforms/architectures include this node's;
 *   - the backend plugin of its worker_type is loaded and available;
 *   - every makedepends name that maps to a command (cmake, git, gcc, cargo, rust -> rustc,
 *     pkgconf -> pkg-config, make, ninja; see rb_makedepend_command) is on the PATH builds use,
 *     and, when the hive is root, executable by the build user (a uid without groups: "other"
 *     permission bits on the file and every directory above it; a rustup cargo under /root is
 *     not). Unknown names (gcc-libs, openssl...) are not checked;
 *   - with the PKGBUILD (install only): the entry's version is the PKGBUILD's pkgver.
 */
#ifndef RB_INSTALLABLE_H
#define RB_INSTALLABLE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "rb_err.h"

struct rb_hive;

/* The entry's platforms and architectures include this node's: else RB_EUNAVAIL "worker 'x'
 * supports linux/macos on x86_64/aarch64; this node is linux riscv64". Missing lists allow any. */
int rb_installable_platform(struct json_object *entry, const char *id, struct rb_err *err);
/* The backend plugin `backend` is loaded and available: else RB_EUNAVAIL "backend 'cuda' is not
 * available on this node: <why>". */
int rb_installable_backend(struct rb_hive *hive, const char *backend, struct rb_err *err);

/* The command a makedepends name stands for ("rust" -> "rustc"), NULL for names that are not
 * checked; *debian (may be NULL) gets the Debian package that provides it. */
const char *rb_makedepend_command(const char *name, const char **debian);
/* The PATH a build searches: `path` when set and not empty, else the default
 * "/usr/local/bin:/usr/bin:/bin" (what rb_proc and bash use without one). */
const char *rb_installable_path(const char *path);
/* Every mapped command of names[0..n) is on `path` (and runnable by the build user when the hive
 * is root): else RB_EUNAVAIL "worker 'x' needs 'cargo' to build, which is not on this node's PATH
 * (...): install it (Debian: apt-get install cargo)". */
int rb_installable_tools(const char *id, const char *const *names, size_t n, const char *path,
			 struct rb_err *err);
/* The same for the entry's "makedepends" array. */
int rb_installable_entry_tools(struct json_object *entry, const char *id, const char *path,
			       struct rb_err *err);

/* All the checks that need only the entry, in the order install makes them (worker_type,
 * platform, backend, makedepends on `path`): 0, or the first failure. */
int rb_installable_entry(struct rb_hive *hive, struct json_object *entry, const char *path,
			 struct rb_err *err);
/* The entry's "version" equals the PKGBUILD's pkgver: else RB_EINVAL "catalog entry 'x' says
 * version A but its PKGBUILD's pkgver is B: fix the catalog". */
int rb_installable_version(struct json_object *entry, const char *id, const char *pkgver,
			   struct rb_err *err);

/* Add "installable": bool and "not_installable_because": string|null to each entry of a catalog
 * list (the hive's own PATH, as builds get it). */
void rb_installable_annotate(struct rb_hive *hive, struct json_object *entries);
/* The same for one entry (worker_catalog_get). */
void rb_installable_annotate_one(struct rb_hive *hive, struct json_object *entry);

#endif
