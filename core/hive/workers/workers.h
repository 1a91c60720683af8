/*
 * workers.h - the process registry: every worker this hive spawned, from its registration
 * (before the process starts) until it is stopped, and what became of it.
 *
 * The registry is the only place that reaps worker processes, and it reaps them one pid at a
 * time (waitpid(pid, WNOHANG) under its lock; never waitpid(-1), other modules own other
 * children). It is persisted to RBEE_HOME/state/workers.json (rb_fs_write_atomic: written,
 * fsynced, renamed) by a writer thread, off the registry's lock, changes batched for
 * RBEE_REGISTRY_BATCH_MS (default 50); a started process (pid and start time) is written at
 * once, and rb_workers_set_ready and rb_workers_stop return only once their change is on disk,
 * so what a client is told survives a SIGKILL. A hive that restarts, even after SIGKILL, finds
 * its workers again: an entry whose pid is alive with the recorded start time (/proc/<pid>/stat)
 * is re-adopted, any other (and any entry that had already ended) is reported once in the
 * hive's log and dropped. A re-adopted worker is not our child; it is watched with /proc instead
 * of waitpid and stopped the same way. The hive's log (info level) names every worker spawned,
 * ready, re-adopted, stopped (on request, at shutdown, or because its spawn failed) and how each
 * one ended; at debug level, every registry write with the changes it holds.
 *
 * A monitor thread keeps the states current: it notices exits (every 250 ms), checks the health
 * path of every ready worker every RBEE_HEALTH_INTERVAL_MS (default 5000), all of them at once,
 * each request bounded by its own 2 s timeout, and marks a worker unhealthy after
 * RB_WORKER_HEALTH_FAILURES failures in a row (healthy again at the next success).
 *
 * States: starting (registered, process starting or loading) -> ready <-> unhealthy; any live
 * state -> exited (the process ended by itself) or stopped (we stopped it). Entries that were
 * stopped on request leave the registry; exited ones stay listed (at most
 * RB_WORKERS_KEEP_EXITED) so an operator sees how a worker died, until deleted or until the
 * hive stops: only live entries are handed to the next hive.
 */
#ifndef RB_WORKERS_H
#define RB_WORKERS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

#include "jobs/jobs.h"
#include "models/models.h"
#include "rb_err.h"

struct rb_hive;

#define RB_WORKER_ID_MAX 129           /* a plain id (rb_id_valid) */
#define RB_WORKER_HEALTH_FAILURES 3    /* failed checks in a row before "unhealthy" */
#define RB_WORKERS_KEEP_EXITED 64      /* exited entries kept for inspection */
#define RB_WORKER_STOP_GRACE_MS 10000  /* default of RBEE_STOP_GRACE_MS */

enum rb_worker_state {
	RB_WORKER_STARTING = 0,
	RB_WORKER_READY,
	RB_WORKER_UNHEALTHY,
	RB_WORKER_EXITED,
	RB_WORKER_STOPPED,
};

/* "starting", "ready", "unhealthy", "exited", "stopped". */
const char *rb_worker_state_name(enum rb_worker_state state);
/* Starting, ready or unhealthy: a process that (as far as we know) runs. */
bool rb_worker_state_live(enum rb_worker_state state);

/* One registry entry. Functions below hand out copies, so a caller never holds the lock. */
struct rb_worker {
	char id[RB_WORKER_ID_MAX];          /* "<installed id>-<6 hex>", also the log's name */
	char installed_id[RB_WORKER_ID_MAX]; /* the installed worker it runs */
	char backend[64];
	uint32_t device;                    /* the backend's device index */
	char device_id[32];                 /* "GPU-0", "CPU-0" */
	char model[RB_MODEL_ID_MAX];
	pid_t pid;                          /* 0 until the process started */
	unsigned long long start_time;      /* /proc/<pid>/stat start time, its identity */
	uint16_t port;                      /* 0 until one is claimed */
	char url[64];                       /* "http://127.0.0.1:<port>" */
	char health_path[128];              /* "/health" unless the launch template says */
	char log_path[PATH_MAX];
	enum rb_worker_state state;
	time_t started_at;                  /* wall clock of registration */
	bool adopted;                       /* re-adopted after a hive restart: not our child */
	bool reaped;                        /* our child, already waited for */
	int wait_status;                    /* when reaped */
	char reason[256];                   /* why exited or unhealthy, "" otherwise */
	int health_failures;                /* consecutive failed health checks */
	bool stopping;                      /* a stop is in progress */
};

/* Start the registry (hive->workers): read the persisted entries, re-adopt the live ones,
 * start the writer and monitor threads. Configuration from the environment: RBEE_STOP_GRACE_MS,
 * RBEE_HEALTH_INTERVAL_MS, RBEE_REGISTRY_BATCH_MS (0-10000), RBEE_WORKER_PORTS ("LO-HI",
 * default 9300-9999). A damaged registry
 * file is kept aside as workers.json.damaged-<time> and the hive starts with an empty one. */
int rb_workers_init(struct rb_hive *hive, struct rb_err *err);
/* Stop the monitor; unless hive->cfg.keep_workers, stop every live worker (SIGTERM to each
 * process group at once, SIGKILL after the grace period, all reaped); drop every entry that
 * is not live; persist; free. Call
 * after the job engine and the HTTP server stopped, so nothing spawns or reads any more. */
void rb_workers_shutdown(struct rb_hive *hive);

/* The configured stop grace and worker port range. */
int rb_workers_grace_ms(struct rb_hive *hive);
void rb_workers_port_range(struct rb_hive *hive, uint16_t *lo, uint16_t *hi);

/* Register a worker about to be started (state starting, no pid yet). RB_EUNAVAIL while the
 * hive shuts down; RB_ECONFLICT when the id is taken. */
int rb_workers_add(struct rb_hive *hive, const struct rb_worker *w, struct rb_err *err);
/* Claim `port` for entry `id` (and its url): RB_ECONFLICT when another live entry holds it. */
int rb_workers_claim_port(struct rb_hive *hive, const char *id, uint16_t port,
			  struct rb_err *err);
/* Where the next port search starts (round robin over the range, so a port that was just
 * released and may sit in TIME_WAIT is not the first candidate), and advance it. */
uint16_t rb_workers_next_port_hint(struct rb_hive *hive);
/* Record that entry `id`'s process started. */
int rb_workers_set_started(struct rb_hive *hive, const char *id, pid_t pid,
			   unsigned long long start_time, struct rb_err *err);
/* Mark entry `id` ready (its health path answered); returns once that is on disk. */
int rb_workers_set_ready(struct rb_hive *hive, const char *id, struct rb_err *err);

/* Look at entry `id` now: reap its process if it ended, then copy it into *out.
 * RB_ENOTFOUND when no such entry. */
int rb_workers_poll(struct rb_hive *hive, const char *id, struct rb_worker *out,
		    struct rb_err *err);
/* Copy the entry of `pid`; RB_ENOTFOUND, naming the pid, when this hive did not spawn it. */
int rb_workers_get_pid(struct rb_hive *hive, pid_t pid, struct rb_worker *out,
		       struct rb_err *err);

/* Stop entry `id` (SIGTERM to its process group, SIGKILL after grace_ms, reaped; nothing to
 * do when it never started or already ended) and remove it from the registry; returns once the
 * removal is on disk. *out (may be
 * NULL) receives the entry as it ended (state stopped or exited, wait status when known). */
int rb_workers_stop(struct rb_hive *hive, const char *id, int grace_ms, struct rb_worker *out,
		    struct rb_err *err);
/* The same by pid, for worker_process_delete: refused (RB_ENOTFOUND) for any pid this hive
 * did not spawn, which is never signalled. */
int rb_workers_stop_pid(struct rb_hive *hive, pid_t pid, int grace_ms, struct rb_worker *out,
			struct rb_err *err);

/* JSON of one entry with live facts: state, pid, port, url, model, backend, device, uptime_s,
 * rss_bytes (from /proc, null when not running), vram_bytes (null: no backend reports it). */
struct json_object *rb_worker_json(const struct rb_worker *w);
/* {"workers":[...]} ordered by start. */
struct json_object *rb_workers_list_json(struct rb_hive *hive);
/* Counts by state, for the heartbeat: {"total","starting","ready","unhealthy","exited"}. */
struct json_object *rb_workers_counts_json(struct rb_hive *hive);

/* Whether a live entry runs installed worker `installed_id` / uses model `model_id`. */
bool rb_workers_uses_installed(struct rb_hive *hive, const char *installed_id);
bool rb_workers_uses_model(struct rb_hive *hive, const char *model_id);

/* The operations of this subsystem (op_spawn.c), rows for the table (rb_ops_add; jobs/ops.h):
 * - worker_spawn {"model","worker"?,"device"?}: {"worker_id","pid","port","url","status":"ready",
 *   "model","backend","device","device_id","installed_worker","log_path"}; with no "worker",
 *   the highest-scoring backend that can run the model there (spawn.c, narrated).
 * - worker_process_list: the registry's workers.
 * - worker_process_get {"pid"}: one worker; refused for pids this hive did not spawn.
 * - worker_process_delete {"pid"}: stop it; {"pid","worker_id","status":"stopped","exit"}.
 * A pid is checked at submit: 1 or more. */
extern const struct rb_op rb_worker_ops[];

#endif
