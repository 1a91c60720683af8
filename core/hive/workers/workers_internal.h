/*
 * workers_internal.h - the process registry's insides. Three files, each relation one way:
 *
 *   workers.c          the registry: entries, reaping, stopping, queries, and persistence
 *                      through a writer thread. It starts and stops the monitor, nothing more.
 *   workers_monitor.c  the monitor thread: exit detection and concurrent health checks. It
 *                      sees the registry only through the four calls of "the monitor's view"
 *                      below; it never takes the registry's lock or touches an entry.
 *   workers_file.c     workers.json: entries to and from disk, no lock, no state.
 *
 * Nothing outside these files includes this header.
 */
#ifndef RB_WORKERS_INTERNAL_H
#define RB_WORKERS_INTERNAL_H

#include <pthread.h>

#include "workers.h"

struct rb_monitor;

struct rb_workers {
	struct rb_hive *hive;
	pthread_mutex_t lock;   /* guards everything below */
	bool stopping;          /* shutdown began: no new entries */
	struct rb_worker *v;    /* entries, in registration order */
	size_t n, cap;
	char path[PATH_MAX];    /* state/workers.json */
	int grace_ms;           /* RBEE_STOP_GRACE_MS */
	int health_ms;          /* RBEE_HEALTH_INTERVAL_MS */
	int batch_ms;           /* RBEE_REGISTRY_BATCH_MS */
	uint16_t port_lo, port_hi, port_next;
	struct rb_monitor *monitor;
	/* Persistence (workers.c): every change bumps `gen`; the writer thread saves a snapshot
	 * and sets `saved_gen` to the generation it holds. */
	pthread_t writer;
	bool writer_running, writer_stop;
	pthread_cond_t dirty;   /* wakes the writer */
	pthread_cond_t saved;   /* wakes those waiting for a generation to be on disk */
	uint64_t gen, saved_gen;
	bool urgent;            /* write now, without waiting for more changes to batch */
	bool writing;           /* a snapshot is being written (by the writer or a waiter) */
	long long dirty_since_ms;
	uint64_t writes;        /* files written, for the debug log */
	/* A write that failed after its retries (workers.c): `failed_gen` is the generation it
	 * held, `fail_why` why; `failing` until a write succeeds, retried at `retry_at_ms`. */
	bool failing;
	uint64_t failed_gen, failed_writes;
	long long retry_at_ms;
	char fail_why[RB_ERR_MSG_MAX];
};

/* ---- the monitor's view of the registry (workers.c) ------------------------------------- */

/* One worker due a health check, copied out so the request runs without the lock. */
struct rb_health_target {
	char id[RB_WORKER_ID_MAX];
	pid_t pid;
	char url[64 + 128];
	bool checked;           /* the request ran to an end: `ok` is the worker's verdict */
	bool ok;                /* the monitor's verdict ... */
	char why[160];          /* ... and why not */
};

/* Reap every live entry whose process has ended. */
void rb_workers_reap_all(struct rb_workers *ws);
/* Ready and unhealthy workers, and re-adopted ones still starting: a malloc'd array of *n
 * (NULL when none), or NULL while the hive shuts down. */
struct rb_health_target *rb_workers_health_targets(struct rb_workers *ws, size_t *n);
/* Apply the verdicts of one round: healthy again, or unhealthy after
 * RB_WORKER_HEALTH_FAILURES failures in a row. */
void rb_workers_health_record(struct rb_workers *ws, const struct rb_health_target *t, size_t n);

/* ---- workers_monitor.c ------------------------------------------------------------------ */

/* Start the monitor thread: every `tick_ms` rb_workers_reap_all, every `health_ms` a round of
 * health checks, all concurrent, each bounded by its own timeout. */
int rb_monitor_start(struct rb_workers *ws, int health_ms, struct rb_monitor **out,
		     struct rb_err *err);
void rb_monitor_stop(struct rb_monitor *m);
/* The verdicts of a round that count against the workers, moved to the front of `t`; returns
 * their number. Only a request that ran to an end (`checked`) says something about its worker;
 * one the hive could not even make does not, and when the round itself failed on the hive's
 * side (`hive_failed`: its HTTP client, curl_multi_perform/poll) none does: the round is
 * skipped, nobody is charged, the next round asks again. Pure: no lock, no I/O. */
size_t rb_health_verdicts(struct rb_health_target *t, size_t n, bool hive_failed);

/* ---- workers_file.c --------------------------------------------------------------------- */

/* Write `n` entries to `path` (atomic replace, fsynced). */
int rb_workers_file_write(const char *path, const struct rb_worker *v, size_t n,
			  struct rb_err *err);
/* The entries of `path` (*v malloc'd, NULL when none). A missing file is an empty registry;
 * a damaged one is set aside (workers.json.damaged-<time>, said in the log) and read as
 * empty; a damaged entry is dropped with a warning. -1 when out of memory. */
int rb_workers_file_read(const char *path, struct rb_worker **v, size_t *n);

#endif
