/*
 * jobs.h - the job engine: what the daemon and the job routes see of it.
 *
 * The engine owns every job from submit to its retirement: a bounded pool of worker threads
 * (cfg.max_jobs) runs queued jobs in submit order; each job keeps its events (narration,
 * progress, data, one terminal) with increasing ids so any number of streams, opened at any
 * time, replay the history and then follow live. Finished jobs stay listed for a while (the
 * last RB_JOBS_KEEP_FINISHED, whose events hold at most RB_JOBS_KEEP_BYTES together, for at
 * most RB_JOBS_KEEP_SECONDS), then are freed; a stream still open on a retired job keeps it
 * alive through its reference.
 *
 * Handlers see only job.h. Operations are looked up in the table of ops.h; operations named
 * "test_*" exist only in the tests' build of the hive (rbee-hive-test), and there only when it
 * was started with RBEE_ENABLE_TEST_OPS=1.
 */
#ifndef RB_JOBS_H
#define RB_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "job.h"
#include "ops.h"
#include "rb_buf.h"
#include "rb_err.h"

struct rb_hive;

/* "job-" + a UUID v4 + NUL. */
#define RB_JOB_ID_MAX 41

#define RB_JOBS_KEEP_FINISHED 200   /* finished jobs listed at most */
#define RB_JOBS_KEEP_SECONDS 3600   /* ... and for at most this long after they finished */
#define RB_JOBS_KEEP_BYTES (64u << 20) /* ... and their events at most this much together */
#define RB_JOBS_MAX_ACTIVE 1024     /* queued + running; beyond that submit is refused (503) */
#define RB_JOB_MAX_EVENTS 10000     /* events kept per job ... */
#define RB_JOB_MAX_EVENT_BYTES (4u << 20) /* ... and bytes; beyond either, middle ones drop */
#define RB_JOB_KILL_GRACE_MS 3000   /* cancel: SIGTERM, then SIGKILL after this */

/* Start the engine (hive->jobs): its worker threads and the housekeeping thread. Call
 * before the HTTP server starts. */
int rb_jobs_init(struct rb_hive *hive, struct rb_err *err);
/*
 * Stopping, in this order:
 *   rb_jobs_shutdown(hive);  cancel every job and wait for the engine's threads. Open streams
 *                            then receive their jobs' terminal events and end, which lets the
 *                            server stop promptly. Submits are refused from here on (503);
 *                            lists, streams and cancels still answer.
 *   rb_server_stop(hive);
 *   rb_jobs_free(hive);      drop the engine (jobs still referenced by a stream live on).
 * Both are safe when rb_jobs_init was never called or failed, and rb_jobs_free shuts down
 * first if that was not done.
 */
void rb_jobs_shutdown(struct rb_hive *hive);
void rb_jobs_free(struct rb_hive *hive);

/* Whether test-only operations (test_*) are enabled in this hive. */
bool rb_jobs_test_ops_enabled(const struct rb_hive *hive);
/* Whether `op` may be submitted here (false for test-only operations unless enabled). */
bool rb_jobs_op_available(const struct rb_hive *hive, const struct rb_op *op);

/* Parse and validate a POST /v1/jobs body: a JSON object with a known "operation", every field
 * the operation needs with the right type, and a "hive_id" (optional) equal to this hive's id.
 * On success *op and *req (caller puts) are set; on failure RB_EINVAL with a message for the
 * client, and nothing is created. */
int rb_jobs_parse_request(struct rb_hive *hive, const char *body, size_t len,
			  const struct rb_op **op, struct json_object **req, struct rb_err *err);

/* Create a job for a validated request (takes ownership of `req`) and queue it. Fills `id`.
 * RB_EUNAVAIL when the engine is shutting down or RB_JOBS_MAX_ACTIVE jobs are active. */
int rb_jobs_submit(struct rb_hive *hive, const struct rb_op *op, struct json_object *req,
		   char id[RB_JOB_ID_MAX], struct rb_err *err);

/* Find a job by id and take a reference (NULL when unknown or already retired). */
struct rb_job *rb_jobs_get(struct rb_hive *hive, const char *id);
/* Drop a reference taken by rb_jobs_get. */
void rb_job_unref(struct rb_job *job);

/* Cancel: a queued job ends at once, a running one is flagged, its registered child process
 * groups get SIGTERM (SIGKILL after RB_JOB_KILL_GRACE_MS), and its terminal is [CANCELLED].
 * RB_ENOTFOUND for an unknown id, RB_ECONFLICT when the job already finished. */
int rb_jobs_cancel(struct rb_hive *hive, const char *id, struct rb_err *err);

/* {"jobs":[{job_id, operation, state, created_at, started_at, finished_at, error, events},..]},
 * newest first. Timestamps are RFC 3339 UTC, null when not reached yet. */
struct json_object *rb_jobs_list_json(struct rb_hive *hive);

/*
 * Stream reading. Append to `out` the SSE text of the job's events whose id is above *cursor
 * (at most about `max_bytes`, always at least one event), and advance *cursor. When there are
 * none, wait up to timeout_ms for one (0: do not wait). Sets *ended once the terminal event has
 * been appended (or was already passed by *cursor). Returns the number of events appended.
 */
size_t rb_job_read_events(struct rb_job *job, uint64_t *cursor, size_t max_bytes, int timeout_ms,
			  struct rb_buf *out, bool *ended);

/* The same without waiting, for a stream that holds no thread, and exact: at most max_bytes
 * are appended, the last event cut where they end; *skip (0 to start) counts the bytes of the
 * event after *cursor already handed out, so a stream keeps no copy of what did not fit.
 * *due_ms is set to when a held-back progress event comes due (rb_now_ms clock), 0 when none
 * is. Returns the number of events appended whole. */
size_t rb_job_poll_events(struct rb_job *job, uint64_t *cursor, size_t *skip, size_t max_bytes,
			  struct rb_buf *out, bool *ended, long long *due_ms);

/*
 * Push instead of waiting: a watcher's wake(arg) runs whenever the job stores an event, and
 * when a progress event is held back (it comes due later: see rb_job_poll_events). It runs
 * under the job's lock, so it must only signal (rb_stream_wake) and never call back into the
 * job. After rb_job_unwatch returns, wake is not running and will not run for that watcher.
 */
struct rb_job_waiter {
	void (*wake)(void *arg);
	void *arg;
	struct rb_job_waiter *prev, *next; /* the job's, under its lock */
};
void rb_job_watch(struct rb_job *job, struct rb_job_waiter *w);
void rb_job_unwatch(struct rb_job *job, struct rb_job_waiter *w);

#endif
