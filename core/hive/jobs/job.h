/*
 * job.h - what an operation handler sees of the job engine.
 *
 * A job is one operation run in the background from submit to its terminal event. Its handler
 * narrates (plain text lines), reports progress, emits its JSON result, registers the child
 * processes it starts so a cancel can stop them, and polls for cancellation at safe points.
 * The engine turns the handler's return into exactly one terminal event:
 *   0 -> [DONE];  -RB_ECANCELLED or a cancelled job -> [CANCELLED];  else [ERROR] <err.msg>.
 * Handlers must clean up their own partial files before returning from a failure or cancel.
 */
#ifndef RB_JOB_H
#define RB_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "rb_err.h"

struct rb_hive;
struct rb_job;

/* The hive the job runs in. */
struct rb_hive *rb_job_hive(struct rb_job *job);
/* "job-<uuid>". */
const char *rb_job_id(struct rb_job *job);

/* Narrate: one `data:` event per line of the formatted text (ANSI escapes are stripped). */
void rb_job_say(struct rb_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Narrate raw text that may hold several lines (e.g. build output). */
void rb_job_say_raw(struct rb_job *job, const char *text, size_t len);
/* `event: progress` {"stage":..,"bytes_done":..,"bytes_total":..,"rate_bps":..}. total 0 =
 * unknown. The engine rate-limits: calls closer than 200 ms apart with the same stage are
 * coalesced (the last one wins), except when done == total. */
void rb_job_progress(struct rb_job *job, const char *stage, uint64_t done, uint64_t total,
		     double rate_bps);
/* `event: data` with the operation's result. Takes ownership of `result`. */
void rb_job_data(struct rb_job *job, struct json_object *result);

/* True once DELETE /v1/jobs/{id} asked to stop (or the hive is shutting down). */
bool rb_job_cancelled(struct rb_job *job);
/* Register a child process group (pgid == pid of a child started with new_pgroup) for the
 * cancel to SIGTERM/SIGKILL; unregister it after reaping. */
void rb_job_add_child(struct rb_job *job, pid_t pgid);
void rb_job_remove_child(struct rb_job *job, pid_t pgid);

/* Adapter for rb_proc_pump's stop callback and rb_download's should_stop: arg is the job. */
bool rb_job_should_stop(void *job);

#endif
