/*
 * install.h - the worker_install pipeline: catalog entry -> PKGBUILD -> sources -> build
 * phases -> package tree -> verify -> atomic install into RBEE_HOME/workers/<id>/.
 *
 * Stages are narrated and reported as `progress` events: fetching, verifying, building,
 * packaging, installing. Everything is built under hive->paths.staging (same filesystem as
 * paths.workers) and reaches workers/<id> by one rename at the very end; an earlier install of
 * the id is swapped out by the same rename (RENAME_EXCHANGE where the filesystem has it) and
 * only then deleted. A failure or cancel at any point removes the staging directory and leaves
 * an earlier install untouched. Installs and removals of one id exclude each other (flock).
 * See docs/INSTALL-PIPELINE.md for the whole story, including the build sandbox.
 */
#ifndef RB_INSTALL_H
#define RB_INSTALL_H

#include <json-c/json.h>
#include <stdbool.h>

#include "jobs/jobs.h"
#include "rb_err.h"

/* The parts of this subsystem the rest of the hive uses; the others (build.h, pkgbuild.h,
 * sources.h, installable.h, verify.h) are its inside. */
#include "catalog.h"   /* the worker catalog: directory or HTTP */
#include "installed.h" /* installed workers: lookup, locks, in-use */
#include "mirror.h"    /* rbee-hive --fill-mirror */
#include "staging.h"   /* one hive per RBEE_HOME; leftovers cleared at start */

struct rb_hive;
struct rb_job;

/* Install catalog worker `id`. On success *result is the installed record (metadata.json)
 * with the verify report under "verify". Refuses before fetching anything when the entry's
 * platforms/architectures exclude this node or its backend is not available here. `offline`:
 * sources only from the source mirror or the node cache, every one checked before any build
 * directory exists, never the network (docs/MIRROR.md). */
int rb_install_worker(struct rb_job *job, const char *id, bool offline,
		      struct json_object **result, struct rb_err *err);

/* The operations of this subsystem, rows for the table (rb_ops_add; jobs/ops.h):
 * - worker_catalog_list: `event: data` {"workers":[...]}, narration "N workers in catalog ...".
 *   Each entry also gets "installable" (bool) and "not_installable_because" (the reason
 *   worker_install would refuse it before fetching anything, or null): see installable.h.
 * - worker_catalog_get {worker_id}: the entry, with the same two fields. */
extern const struct rb_op rb_catalog_ops[];
/* - worker_install {worker_id, offline?}: the installed record and its verify report
 *   ("offline", when present, is a boolean: checked at submit).
 * - worker_list_installed: {"workers":[record...]}; worker_installed_get {worker_id}: the record.
 * - worker_remove {worker_id}: {"worker_id","removed":true}.
 * - worker_verify {worker_id}: the report; the job fails when a check failed. */
extern const struct rb_op rb_install_ops[];

#endif
