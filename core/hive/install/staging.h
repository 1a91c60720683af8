/*
 * staging.h - the hive's claim on RBEE_HOME/staging, and the removal of what an interrupted
 * hive left there.
 *
 * Work in progress never sits under a final name: installs build in
 * staging/install-<id>-<job>/ (with, when the build user cannot enter RBEE_HOME, the build
 * directory in /var/tmp/rbee-build-<id>-<random>, named by the symlink `outside` in the stage),
 * removals park the old tree in staging/remove-<id>-<pid>/, and model deletes in
 * models/.deleting-<pid>-<n>/. A hive killed in the middle (kill -9, power loss) leaves those
 * behind; nothing in them is ever needed again, because final names only change by rename.
 *
 * Before anything else, the hive takes an exclusive flock on state/hive.lock and holds it for as
 * long as it runs: one hive per home. A second hive started on the same home is refused at once
 * ("another rbee-hive (pid 123, port 7835) already uses RBEE_HOME ..."; the holder writes its
 * pid, and its port once bound, into the file), before it reads the worker registry, so it never
 * re-adopts, nor stops, the first one's workers. The kernel drops the lock when its holder dies,
 * kill -9 included, so there is never a stale lock. Holding it, the hive kills every process of
 * the build uid range (rb_sandbox_startup: what an interrupted hive's builds left) and removes
 * every leftover, after the processes still working in it are killed. Unfinished model
 * downloads (models/<id>/<file>.part) are not leftovers: the next download of the model resumes
 * them.
 */
#ifndef RB_STAGING_H
#define RB_STAGING_H

struct rb_hive;

/* Name of the symlink in an install's stage that points to its build directory outside. */
#define RB_STAGING_OUTSIDE_LINK "outside"

#include "rb_err.h"

/* Take the lock and clean up as described above. Fails with RB_ECONFLICT when another hive
 * holds the home, and for invalid build settings; a leftover that cannot be removed is only
 * logged. */
int rb_staging_claim(struct rb_hive *hive, struct rb_err *err);
/* Add the bound port to the lock file, for the message a second hive prints. */
void rb_staging_note_port(unsigned port);

#endif
