/*
 * hive_ops.c - every subsystem's operations added to the table, in SPEC section 4's order.
 */
#include "hive_ops.h"

#include <pthread.h>

#include "install/install.h"
#include "models/models.h"
#include "workers/workers.h"

static int rc = -RB_EINVAL;

static void register_all(void)
{
	const struct rb_op *const groups[] = {
		rb_hive_check_ops, rb_catalog_ops, rb_install_ops, rb_worker_ops, rb_model_ops,
	};
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if ((rc = rb_ops_add(groups[i])) != 0)
			return;
}

int rb_hive_register_ops(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_all);
	return rc;
}
