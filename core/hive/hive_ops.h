/*
 * hive_ops.h - the hive's operations, put together: every subsystem's rows of the operation
 * table (jobs/ops.h), in the order SPEC section 4 lists them.
 *
 * The job engine knows no operation by name and no subsystem knows the table: this file, at
 * the top of the tree beside main.c, is the one place that names them all.
 */
#ifndef RB_HIVE_OPS_H
#define RB_HIVE_OPS_H

#include "jobs/jobs.h"

/* Add every operation of the hive to the table, once (later calls do nothing). main() calls it
 * before the job engine starts; so do the unit tests that submit jobs. 0, or -RB_EINVAL when a
 * row is refused (a programming error: the daemon does not start). */
int rb_hive_register_ops(void);

/* hive_check: the node's self-test (op_hive_check.c): backends, cache directory, catalog. */
extern const struct rb_op rb_hive_check_ops[];

#endif
