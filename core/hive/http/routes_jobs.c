/*
 * routes_jobs.c - the HTTP face of the job engine: POST /v1/jobs, GET /v1/jobs,
 * GET /v1/jobs/{id}/stream (SSE), DELETE /v1/jobs/{id}.
 *
 * A stream holds no thread (rb_server.h): its fill hands over the job's events past its cursor
 * and, when there are none, the server suspends the connection. The job wakes the stream
 * through its waiter when it stores an event (or holds a progress event back: fill then asks
 * to be woken when it comes due); the server adds the keep-alive comment after
 * STREAM_KEEPALIVE_MS of silence, notices a client that hangs up, and calls stream_release,
 * which drops the stream's waiter and its reference to the job. Job streams drain: after
 * rb_jobs_shutdown each gets its terminal event and ends by itself, and rb_server_stop waits
 * for that before it closes connections.
 */
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive.h"
#include "jobs/jobs.h"
#include "rb_buf.h"
#include "rb_json.h"
#include "rb_proc.h"

#define STREAM_KEEPALIVE_MS 15000

struct stream {
	struct rb_job *job; /* one reference */
	uint64_t cursor;    /* id of the last event queued for sending whole */
	size_t skip;        /* bytes of the next event already queued */
	struct rb_job_waiter waiter;
	bool watching;
};

enum MHD_Result rb_route_jobs_submit(struct rb_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	const struct rb_op *op;
	struct json_object *request;
	if (rb_jobs_parse_request(rb_req_hive(req), req->body, req->body_len, &op, &request, &err))
		return rb_reply_err(req, &err);
	char id[RB_JOB_ID_MAX];
	if (rb_jobs_submit(rb_req_hive(req), op, request, id, &err))
		return rb_reply_err(req, &err);
	char url[96];
	snprintf(url, sizeof(url), "/v1/jobs/%s/stream", id);
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "job_id", id);
	rb_json_add_str(o, "sse_url", url);
	return rb_reply_json(req, 201, o);
}

enum MHD_Result rb_route_jobs_list(struct rb_request *req)
{
	return rb_reply_json(req, 200, rb_jobs_list_json(rb_req_hive(req)));
}

enum MHD_Result rb_route_job_cancel(struct rb_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	const char *id = req->params[0];
	if (rb_jobs_cancel(rb_req_hive(req), id, &err))
		return rb_reply_err(req, &err);
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "job_id", id);
	rb_json_add_str(o, "status", "cancelled");
	return rb_reply_json(req, 200, o);
}

static void stream_wake(void *arg)
{
	rb_stream_wake(arg);
}

/* Hand over the events past the cursor; with none, say when a held-back one comes due. */
static long long stream_fill(void *cls, struct rb_stream *rs, struct rb_buf *out, size_t want,
			     bool *ended)
{
	struct stream *st = cls;
	if (!st->watching) { /* before the first look, so no event can slip in between */
		st->waiter.wake = stream_wake;
		st->waiter.arg = rs;
		rb_job_watch(st->job, &st->waiter);
		st->watching = true;
	}
	long long due = 0;
	/* Exactly what the connection takes at once, so the text is sent in the same call and a
	 * stream holds none of it, not even the rest of an event larger than that. */
	rb_job_poll_events(st->job, &st->cursor, &st->skip,
			   want < RB_STREAM_CHUNK ? want : RB_STREAM_CHUNK, out, ended, &due);
	return due;
}

static void stream_release(void *cls)
{
	struct stream *st = cls;
	if (st->watching)
		rb_job_unwatch(st->job, &st->waiter);
	rb_job_unref(st->job);
	free(st);
}

static const struct rb_stream_ops job_stream_ops = {
	.fill = stream_fill,
	.release = stream_release,
	.keepalive_ms = STREAM_KEEPALIVE_MS,
	.drains = true,
};

/* Last-Event-ID: the id of the last event the client has; absent means from the start. */
static int parse_last_event_id(const char *v, uint64_t *out, struct rb_err *err)
{
	*out = 0;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || *end || errno)
		return rb_err_set(err, RB_EINVAL,
				  "invalid Last-Event-ID '%s': send the number of the last `id:` "
				  "received, or no header to start from the beginning",
				  v);
	*out = x;
	return 0;
}

enum MHD_Result rb_route_job_stream(struct rb_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	const char *id = req->params[0];
	uint64_t cursor;
	if (parse_last_event_id(rb_request_header(req, "Last-Event-ID"), &cursor, &err))
		return rb_reply_err(req, &err);
	struct rb_job *job = rb_jobs_get(rb_req_hive(req), id);
	if (!job)
		return rb_reply_errf(req, RB_ENOTFOUND,
				     "no job '%s' on this hive (finished jobs are kept for %d minutes)",
				     id, RB_JOBS_KEEP_SECONDS / 60);
	struct stream *st = calloc(1, sizeof(*st));
	if (!st) {
		rb_job_unref(job);
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	}
	st->job = job;
	st->cursor = cursor;
	/* A first comment gets the headers out at once, even for a job still queued. */
	char first[RB_JOB_ID_MAX + 8];
	snprintf(first, sizeof(first), ": %s\n\n", rb_job_id(job));
	return rb_reply_stream(req, &job_stream_ops, st, first);
}
