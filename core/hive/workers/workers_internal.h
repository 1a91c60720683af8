/*
 * workers_internal.h - the process registry's insides, shared by workers.c (entries,
 * persistence, queries) and workers_monitor.c (reaping, stopping, the monitor thread).
 * Nothing outside those two files includes it.
 */
#ifndef RB_WORKERS_INTERNAL_H
#define RB_WORKERS_INTERNAL_H

#include <pthread.h>

#include "workers.h"

struct rb_workers {
	struct rb_hive *hive;
	pthread_mutex_t lock;   /* guards everything below */
	pthread_cond_t wake;    /* wakes the monitor early (shutdown) */
	pthread_t monitor;
	bool monitor_running;
	bool stopping;          /* shutdown began: no new entries */
	struct rb_worker *v;    /* entries, in registration order */
	size_t n, cap;
	char path[PATH_MAX];    /* state/workers.json */
	int grace_ms;           /* RBEE_STOP_GRACE_MS */
	int health_ms;          /* RBEE_HEALTH_INTERVAL_MS */
	uint16_t port_lo, port_hi, port_next;
};

/* With the lock held. */
struct rb_worker *rb_workers_find_locked(struct rb_workers *ws, const char *id);
void rb_workers_save_locked(struct rb_workers *ws);
void rb_workers_remove_locked(struct rb_workers *ws, struct rb_worker *w);
/* If the process of a live entry has ended, reap it (our child) and record how it ended:
 * state exited (or stopped when a stop is in progress), wait status, reason; persist.
 * Returns true when the entry is not live (any more). */
bool rb_workers_reap_locked(struct rb_workers *ws, struct rb_worker *w);

/* workers_monitor.c */
int rb_workers_monitor_start(struct rb_workers *ws, struct rb_err *err);
void rb_workers_monitor_stop(struct rb_workers *ws);
/* Stop every live worker at once (shutdown). */
void rb_workers_stop_all(struct rb_workers *ws);

#endif
