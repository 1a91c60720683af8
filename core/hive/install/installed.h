/*
 * installed.h - the installed-worker store: RBEE_HOME/workers/<id>/.
 *
 * Layout of one installed worker (written only by install.c, via a staging directory and a
 * rename, so a reader never sees half of one):
 *
 *   workers/<id>/metadata.json     the record (below)
 *   workers/<id>/PKGBUILD          the exact PKGBUILD that was built
 *   workers/<id>/PKGBUILD.sha256   its sha256, "<hex>  PKGBUILD\n" (sha256sum -c format)
 *   workers/<id>/build.log         the whole install's output
 *   workers/<id>/pkg/              the package tree ($pkgdir), e.g. pkg/usr/bin/<binary>
 *
 * metadata.json: id, worker_type, version, pkgname, pkgver, pkgrel, binary_name, binary_path
 * (absolute), install_dir, size, sha256 (of the binary), installed_at (ISO 8601 UTC),
 * catalog_source, pkgbuild_sha256, launch (the catalog entry's launch template or null), and
 * name / description / implementation copied from the catalog entry.
 *
 * Two per-id locks (flock, in workers/.locks/; names starting with '.' are never worker ids, so
 * listings skip them):
 *   <id>.install  the long one: held by an install for its whole run (and by a removal), so one
 *                 install of an id runs at a time; it records the holding job's id;
 *   <id>.lock     the short one: held only while workers/<id> changes (an install's commit, a
 *                 removal's rename) and while a spawn registers its worker. A spawn during an
 *                 install therefore runs the version installed now; the install's commit then
 *                 sees the running worker and refuses.
 * Order: .install before .lock.
 */
#ifndef RB_INSTALLED_H
#define RB_INSTALLED_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rb_err.h"

struct rb_hive;

/* One installed worker, as the spawn code needs it. */
struct rb_installed {
	char id[129];
	char worker_type[32];        /* backend: "cpu", "cuda", "metal"... */
	char version[64];
	char dir[PATH_MAX];          /* workers/<id> */
	char root[PATH_MAX];         /* workers/<id>/pkg: the package tree */
	char binary_path[PATH_MAX];  /* absolute */
	char binary_name[128];
	char sha256[65];             /* of the binary at install time */
	uint64_t size;
	struct json_object *launch;  /* launch template ({"args":[...],...}) or NULL; owned by meta */
	struct json_object *meta;    /* the whole metadata.json (owned) */
};

void rb_installed_release(struct rb_installed *w);

/* Read one installed worker. RB_ENOTFOUND "worker 'x' is not installed"; a record that cannot
 * be read is RB_EIO naming the file and saying to reinstall. */
int rb_installed_get(struct rb_hive *hive, const char *id, struct rb_installed *out,
		     struct rb_err *err);

/* The first installed worker (by id order) whose worker_type is `type`; RB_ENOTFOUND
 * "no 'cuda' worker is installed" otherwise. For `worker_spawn --worker cuda`. */
int rb_installed_find_by_type(struct rb_hive *hive, const char *type, struct rb_installed *out,
			      struct rb_err *err);

/* Every installed worker's metadata as a JSON array sorted by id. A worker whose record
 * cannot be read appears as {"id":..,"error":..} rather than vanishing. */
int rb_installed_list(struct rb_hive *hive, struct json_object **out, struct rb_err *err);

/* Remove an installed worker: refused (RB_ECONFLICT) while an install of it runs or a spawned
 * worker uses it. The directory disappears in one rename (under the short lock), then is
 * deleted (after it). */
int rb_installed_remove(struct rb_hive *hive, const char *id, struct rb_err *err);

/*
 * Hook for the process registry (workers.h): true when a live worker (starting, ready or
 * unhealthy) was spawned from installed worker `id`, so it must not be removed or replaced
 * under it. A spawn registers its worker while holding the short per-id lock, so a removal or
 * an install's commit holding that lock sees it.
 */
bool rb_installed_in_use(struct rb_hive *hive, const char *id);

/* Take the short per-id lock (workers/.locks/<id>.lock). Its holders keep it only for a rename
 * or a registry entry, so this waits for it up to RB_INSTALLED_LOCK_WAIT_MS, then fails with
 * RB_ECONFLICT "worker 'x' is being replaced or removed by another job ...". *fd receives the
 * lock to pass to rb_installed_unlock. */
#define RB_INSTALLED_LOCK_WAIT_MS 5000
int rb_installed_lock(struct rb_hive *hive, const char *id, int *fd, struct rb_err *err);
/* Take the long install lock (workers/.locks/<id>.install) without waiting, recording job_id
 * (NULL: nobody, as for a removal) as its holder. When held: RB_ECONFLICT "worker 'x' is already
 * being installed by job J: wait for it to finish, or cancel it (DELETE /v1/jobs/J)", or "...
 * is being installed or removed by another job" when the holder is not known. */
#define RB_INSTALLED_HOLDER_MAX 130
int rb_installed_install_lock(struct rb_hive *hive, const char *id, const char *job_id, int *fd,
			      struct rb_err *err);
/* Let go of either lock. */
void rb_installed_unlock(int fd);

/* Fill a record from a parsed metadata.json (takes a reference on meta). Used by get and by
 * the install to describe the worker it just staged. */
int rb_installed_from_json(struct json_object *meta, const char *dir, struct rb_installed *out,
			   struct rb_err *err);

/* Operation handlers (op_workers.c), rows of the table in ops.c. */
struct rb_job;

#endif
