/*
 * routes_jobs.c - the HTTP face of the job engine: POST /v1/jobs, GET /v1/jobs,
 * GET /v1/jobs/{id}/stream (SSE), DELETE /v1/jobs/{id}.
 *
 * A stream is an MHD callback response. libmicrohttpd runs one thread per connection, so the
 * callback may block: it waits on the job's condition variable for the next events, sends a
 * keep-alive comment after STREAM_KEEPALIVE_MS of silence, and ends the response right after
 * the terminal event. It waits in slices of STREAM_SLICE_MS and looks at the socket between
 * them, so a client that goes away (or a server that stops) ends the stream within a slice;
 * MHD then calls stream_free, which drops the stream's reference to the job.
 */
#include "routes.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hive.h"
#include "jobs/jobs.h"
#include "rb_buf.h"
#include "rb_json.h"
#include "rb_proc.h"
#include "rb_sse.h"

#define STREAM_KEEPALIVE_MS 15000
#define STREAM_SLICE_MS 250

/* Job streams whose response MHD has not released yet (see rb_route_job_streams_drain). */
static atomic_int open_streams;

struct stream {
	struct rb_job *job; /* one reference */
	uint64_t cursor;    /* id of the last event queued for sending */
	struct rb_buf out;  /* SSE text not yet handed to MHD */
	size_t sent;        /* bytes of `out` already handed over */
	bool ended;         /* the terminal event is in `out` */
	int sock;           /* the connection's socket, to notice the client leaving */
	long long quiet_since_ms; /* when something was last handed over */
};

enum MHD_Result rb_route_jobs_submit(struct rb_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	const struct rb_op *op;
	struct json_object *request;
	if (rb_jobs_parse_request(req->hive, req->body, req->body_len, &op, &request, &err))
		return rb_reply_err(req, &err);
	char id[RB_JOB_ID_MAX];
	if (rb_jobs_submit(req->hive, op, request, id, &err))
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
	return rb_reply_json(req, 200, rb_jobs_list_json(req->hive));
}

enum MHD_Result rb_route_job_cancel(struct rb_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	const char *id = req->params[0];
	if (rb_jobs_cancel(req->hive, id, &err))
		return rb_reply_err(req, &err);
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "job_id", id);
	rb_json_add_str(o, "status", "cancelled");
	return rb_reply_json(req, 200, o);
}

/* MHD content reader: hand over pending SSE text, fetching (and waiting for) more as needed. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *st = cls;
	while (st->sent == st->out.len) {
		if (st->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		rb_buf_reset(&st->out);
		st->sent = 0;
		size_t n = rb_job_read_events(st->job, &st->cursor, RB_STREAM_CHUNK, STREAM_SLICE_MS,
					      &st->out, &st->ended);
		if (n || st->ended)
			continue; /* hand it over, or end once it has been */
		if (rb_socket_gone(st->sock))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (rb_now_ms() - st->quiet_since_ms >= STREAM_KEEPALIVE_MS)
			rb_sse_write_comment(&st->out, "keep-alive");
	}
	st->quiet_since_ms = rb_now_ms();
	size_t n = st->out.len - st->sent;
	if (n > max)
		n = max;
	memcpy(buf, st->out.data + st->sent, n);
	st->sent += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	rb_job_unref(st->job);
	rb_buf_release(&st->out);
	free(st);
	atomic_fetch_sub(&open_streams, 1);
}

void rb_route_job_streams_drain(int max_ms)
{
	for (int waited = 0; atomic_load(&open_streams) > 0 && waited < max_ms; waited += 10)
		usleep(10 * 1000);
}

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
	struct rb_job *job = rb_jobs_get(req->hive, id);
	if (!job)
		return rb_reply_errf(req, RB_ENOTFOUND,
				     "no job '%s' on this hive (finished jobs are kept for %d minutes)",
				     id, RB_JOBS_KEEP_SECONDS / 60);
	struct stream *st = calloc(1, sizeof(*st));
	if (!st) {
		rb_job_unref(job);
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	}
	atomic_fetch_add(&open_streams, 1);
	st->job = job;
	st->cursor = cursor;
	st->sock = rb_request_socket(req);
	st->quiet_since_ms = rb_now_ms();
	rb_buf_init(&st->out);
	/* A first comment gets the headers out at once, even for a job still queued. */
	rb_buf_addf(&st->out, ": %s\n\n", rb_job_id(job));
	return rb_reply_stream(req, stream_read, st, stream_free);
}
