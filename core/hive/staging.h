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
 * At start the hive takes an exclusive flock on state/hive.lock. When it gets it, no other hive
 * works in this home, and every leftover is removed, after the processes still working in it
 * (an interrupted build's make or cc, which outlive the hive) are killed. Either way it then holds a shared lock for
 * as long as it runs, so that a second hive started on the same home leaves this one's work
 * alone. Unfinished model downloads (models/<id>/<file>.part) are not leftovers: the next
 * download of the model resumes them.
 */
#ifndef RB_STAGING_H
#define RB_STAGING_H

struct rb_hive;

/* Name of the symlink in an install's stage that points to its build directory outside. */
#define RB_STAGING_OUTSIDE_LINK "outside"

/* Take the claim and clean up as described above. Problems are logged, never fatal: a hive
 * that cannot clean its staging directory still works. Returns the number of leftovers
 * removed. */
int rb_staging_claim(struct rb_hive *hive);

#endif
