/*
 * routes_workers.c - the process registry over HTTP: GET /v1/workers (JSON),
 * GET /v1/workers/{worker_id}/logs?tail=N[&follow=1] and GET /v1/heartbeats/stream (SSE).
 *
 * The two streams hold no thread (rb_server.h): each fill hands over what is ready and says
 * when to be asked again, and the server suspends the connection in between. Heartbeats come
 * from a deadline a second after the previous beat. A follow is woken by inotify when the log
 * is written, truncated or replaced, or closed by a writer (a worker that exits closes it);
 * whether the worker still runs is looked at on each wake and at least every
 * WORKER_CHECK_MS (the registry sends no notice of a change). What a stream holds is bounded:
 * it reads the log RB_STREAM_CHUNK at a time as the client takes it, and an unfinished line at
 * most FOLLOW_LINE_MAX. A plain tail is sent from the file as it goes.
 *
 * A follow resumes without loss: each line's event has as its `id:` the log offset just after
 * the line (the stream also opens with an id-only event for where it starts), and a follow
 * sent with Last-Event-ID continues from that offset, whatever its tail. An offset beyond the
 * log's size means the log was truncated or replaced: the stream then says so in an
 * `event: warning` and follows the log from its start (docs/WORKERS.md).
 */
#include "routes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hive.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_sse.h"
#include "workers/workers.h"

#define HEARTBEAT_MS 1000
#define WORKER_CHECK_MS 1000     /* follow: the worker's state is looked at least this often */
#define FOLLOW_POLL_MS 250       /* follow without inotify (no watch could be set): poll */
#define KEEPALIVE_MS 15000
#define TAIL_DEFAULT 100
#define TAIL_MAX 100000
#define TAIL_MAX_BYTES (16u << 20)
/* follow: a log line longer than this goes out in pieces of this size, so a worker printing
 * without newlines cannot make the stream buffer grow (or rescan) without bound. */
#define FOLLOW_LINE_MAX (64u << 10)

/* ---- shared stream plumbing -------------------------------------------------------------- */

struct stream {
	struct rb_hive *hive;
	/* follow */
	char worker_id[RB_WORKER_ID_MAX];
	char path[PATH_MAX];
	off_t offset;           /* how far the log has been read */
	struct rb_buf partial;  /* a line not finished yet */
	ino_t ino;              /* the log file watched (0: none yet) */
	bool no_watch;          /* no inotify watch could be set: poll */
	/* heartbeat */
	unsigned long beats;
	long long next_beat_ms;
};

static void stream_release(void *cls)
{
	struct stream *st = cls;
	rb_buf_release(&st->partial);
	free(st);
}

static struct stream *stream_new(struct rb_request *req)
{
	struct stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->hive = rb_req_hive(req);
	rb_buf_init(&st->partial);
	return st;
}

/* ---- GET /v1/workers --------------------------------------------------------------------- */

enum MHD_Result rb_route_workers_list(struct rb_request *req)
{
	if (!rb_req_hive(req)->workers)
		return rb_reply_errf(req, RB_EUNAVAIL, "the worker registry is not running");
	return rb_reply_json(req, 200, rb_workers_list_json(rb_req_hive(req)));
}

/* ---- GET /v1/heartbeats/stream ----------------------------------------------------------- */

static struct json_object *heartbeat_json(struct rb_hive *hive)
{
	struct json_object *o = json_object_new_object(), *list = rb_workers_list_json(hive), *arr;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	rb_json_add_str(o, "hive_id", hive->cfg.hive_id);
	rb_json_add_str(o, "hostname", hive->hostname);
	rb_json_add_str(o, "version", RBEE_VERSION);
	rb_json_add_int(o, "port", hive->cfg.port);
	rb_json_add_int(o, "uptime_s", rb_hive_uptime_s(hive));
	rb_json_add_str(o, "timestamp", when);
	json_object_object_add(o, "counts", rb_workers_counts_json(hive));
	if (json_object_object_get_ex(list, "workers", &arr))
		json_object_object_add(o, "workers", json_object_get(arr));
	json_object_put(list);
	return o;
}

/* The first beat goes out at once; each later one a second after the previous. */
static long long heartbeat_fill(void *cls, struct rb_stream *rs, struct rb_buf *out, size_t want,
			       bool *ended)
{
	(void)rs;
	(void)want;
	struct stream *st = cls;
	long long now = rb_now_ms();
	if (st->beats && now < st->next_beat_ms)
		return st->next_beat_ms;
	if (!st->hive->workers) {
		*ended = true;
		return 0;
	}
	struct json_object *o = heartbeat_json(st->hive);
	const char *s = rb_json_compact(o);
	rb_sse_write_json_event(out, 0, "heartbeat", s, strlen(s));
	json_object_put(o);
	st->beats++;
	st->next_beat_ms = now + HEARTBEAT_MS;
	return 0;
}

static const struct rb_stream_ops heartbeat_ops = {
	.fill = heartbeat_fill,
	.release = stream_release,
};

enum MHD_Result rb_route_heartbeats(struct rb_request *req)
{
	if (!rb_req_hive(req)->workers)
		return rb_reply_errf(req, RB_EUNAVAIL, "the worker registry is not running");
	struct stream *st = stream_new(req);
	if (!st)
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	return rb_reply_stream(req, &heartbeat_ops, st, NULL);
}

/* ---- GET /v1/workers/{id}/logs ----------------------------------------------------------- */

/* Open the log and find where its last `lines` lines start (at most TAIL_MAX_BYTES before its
 * end): *start, and *end the size it had. Returns the open descriptor, or -1 and *err. */
static int open_tail(const char *path, long lines, off_t *start, off_t *end, struct rb_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO, "cannot read log '%s': %s",
			   path, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		rb_err_set(err, RB_EIO, "cannot read log '%s': not a regular file", path);
		return -1;
	}
	*end = sb.st_size;
	off_t pos = sb.st_size;
	long found = 0;
	bool done = lines == 0;
	/* Read backwards in blocks: the N-th newline from the end (the one ending the file
	 * aside) starts the last N lines. */
	while (pos > 0 && !done && (size_t)(sb.st_size - pos) < TAIL_MAX_BYTES) {
		char block[8192];
		size_t n = pos > (off_t)sizeof(block) ? sizeof(block) : (size_t)pos;
		pos -= (off_t)n;
		if (pread(fd, block, n, pos) != (ssize_t)n)
			break;
		for (size_t i = n; i-- > 0;)
			if (block[i] == '\n' && (pos + (off_t)i != sb.st_size - 1) &&
			    ++found == lines) {
				pos += (off_t)i + 1;
				done = true;
				break;
			}
	}
	*start = lines ? pos : sb.st_size;
	return fd;
}

/* Emit complete lines of `text` (read from the log at st->offset) as data events, each with
 * the log offset just after it as its id; keep an unfinished last line for later, up to
 * FOLLOW_LINE_MAX (a longer one goes out in pieces, each with the offset after the piece).
 * Each byte is looked at once. */
static void emit_lines(struct stream *st, struct rb_buf *out, const char *text, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] != '\n' && st->partial.len + (i - start) < FOLLOW_LINE_MAX)
			continue;
		rb_buf_add(&st->partial, text + start, i - start);
		start = text[i] == '\n' ? i + 1 : i;
		rb_sse_write_event(out, (uint64_t)st->offset + start, NULL, st->partial.data,
				   st->partial.len);
		rb_buf_reset(&st->partial);
	}
	rb_buf_add(&st->partial, text + start, len - start);
}

/* Whether the worker still runs, and if not, why it is over. */
static bool worker_running(struct stream *st, char *why, size_t len)
{
	struct rb_worker w;
	struct rb_err err = RB_ERR_INIT;
	if (!st->hive->workers || rb_workers_poll(st->hive, st->worker_id, &w, &err)) {
		snprintf(why, len, "worker '%s' is not running", st->worker_id);
		return false;
	}
	if (rb_worker_state_live(w.state))
		return true;
	snprintf(why, len, "worker '%s' %s", w.id, w.reason[0] ? w.reason
							 : rb_worker_state_name(w.state));
	return false;
}

/* Watch the log (again, when it was replaced by another file): inotify wakes the stream when
 * it changes. Without a watch the stream polls. */
static void watch_log(struct stream *st, struct rb_stream *rs, ino_t ino)
{
	if (st->no_watch || ino == st->ino)
		return;
	struct rb_err err = RB_ERR_INIT;
	if (rb_stream_watch_file(rs, st->path, &err)) {
		rb_warn("logs: following '%s' by polling every %d ms: %s", st->worker_id,
			FOLLOW_POLL_MS, err.msg);
		st->no_watch = true;
		return;
	}
	st->ino = ino;
}

/* Read what was appended since the last look (from the start again if the file shrank). */
static bool read_more(struct stream *st, struct rb_stream *rs, struct rb_buf *out)
{
	int fd = open(st->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat sb;
	bool any = false;
	if (fstat(fd, &sb) == 0) {
		watch_log(st, rs, sb.st_ino); /* before reading: a write after it wakes us */
		if (sb.st_size < st->offset)
			st->offset = 0;
		char buf[RB_STREAM_CHUNK];
		ssize_t n;
		/* One chunk per call: what a stream holds stays bounded however fast the log grows. */
		if ((n = pread(fd, buf, sizeof(buf), st->offset)) > 0) {
			emit_lines(st, out, buf, (size_t)n);
			st->offset += n;
			any = true;
		}
	}
	close(fd);
	return any;
}

static long long follow_fill(void *cls, struct rb_stream *rs, struct rb_buf *out, size_t want,
			       bool *ended)
{
	(void)want; /* a chunk of the log at a time */
	struct stream *st = cls;
	for (;;) {
		char why[320];
		/* Look at the worker before the file, so its last words are read before the end. */
		bool running = worker_running(st, why, sizeof(why));
		bool more = read_more(st, rs, out);
		if (out->len)
			return 0;
		if (more)
			continue; /* a chunk without a whole line: read on (at most FOLLOW_LINE_MAX) */
		if (!running) {
			if (st->partial.len)
				rb_sse_write_event(out, (uint64_t)st->offset, NULL, st->partial.data,
						   st->partial.len);
			rb_sse_write_event(out, 0, "end", why, strlen(why));
			*ended = true;
			return 0;
		}
		return rb_now_ms() + (st->no_watch ? FOLLOW_POLL_MS : WORKER_CHECK_MS);
	}
}

static const struct rb_stream_ops follow_ops = {
	.fill = follow_fill,
	.release = stream_release,
	.keepalive_ms = KEEPALIVE_MS,
};

static int parse_tail(const char *v, long *out, struct rb_err *err)
{
	*out = TAIL_DEFAULT;
	if (!v)
		return 0;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < 0 || n > TAIL_MAX)
		return rb_err_set(err, RB_EINVAL, "invalid tail '%s': give a number of lines from 0 "
				  "to %d", v, TAIL_MAX);
	*out = n;
	return 0;
}

/* Last-Event-ID of a follow: the id of the last line the client has, which is the log offset
 * just after that line. Absent or empty: no resume (*resume false). */
static int parse_last_event_id(const char *v, bool *resume, off_t *out, struct rb_err *err)
{
	*resume = false;
	*out = 0;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || *end || errno || x > (unsigned long long)INT64_MAX)
		return rb_err_set(err, RB_EINVAL,
				  "invalid Last-Event-ID '%.64s': send the `id:` of the last log line "
				  "received (a byte offset in the log), or no header to start with the "
				  "tail", v);
	*resume = true;
	*out = (off_t)x;
	return 0;
}

enum MHD_Result rb_route_worker_logs(struct rb_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	const char *id = req->params[0], *follow = rb_request_query(req, "follow");
	bool following = follow && strcmp(follow, "0") && strcmp(follow, "false");
	bool resume = false;
	long lines;
	off_t resume_at = 0;
	char path[PATH_MAX];
	if (rb_id_check("worker_id", id, &err) ||
	    parse_tail(rb_request_query(req, "tail"), &lines, &err) ||
	    (following && parse_last_event_id(rb_request_header(req, "Last-Event-ID"), &resume,
					      &resume_at, &err)))
		return rb_reply_err(req, &err);
	snprintf(path, sizeof(path), "%s/%s.log", rb_req_hive(req)->paths.logs, id);
	off_t start = 0, end = 0;
	/* A resume starts after the client's last line, whatever the tail. */
	int fd = open_tail(path, resume ? 0 : lines, &start, &end, &err);
	if (fd < 0) {
		if (err.code == RB_ENOTFOUND)
			return rb_reply_errf(req, RB_ENOTFOUND, "no log for worker '%s' on this hive "
					     "(see 'rbee worker process list')", id);
		return rb_reply_err(req, &err);
	}
	if (!following)
		return rb_reply_fd(req, 200, "text/plain; charset=utf-8", fd, (uint64_t)start,
				   (uint64_t)(end - start));
	close(fd);
	struct stream *st = stream_new(req);
	if (!st)
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	snprintf(st->worker_id, sizeof(st->worker_id), "%s", id);
	snprintf(st->path, sizeof(st->path), "%s", path);
	struct rb_buf first = RB_BUF_INIT;
	rb_buf_addf(&first, ": following %s\n\n", id);
	if (resume && resume_at > end) {
		/* The hive never sends an id beyond what the log held: it was truncated or replaced
		 * since (or the id is made up). Its start is all that can be shown. */
		char why[RB_WORKER_ID_MAX + 192];
		snprintf(why, sizeof(why), "the log of worker '%s' is shorter (%lld bytes) than "
			 "Last-Event-ID %lld: it was truncated or replaced; following it from its "
			 "start", id, (long long)end, (long long)resume_at);
		rb_sse_write_event(&first, 0, "warning", why, strlen(why));
		resume_at = 0;
	}
	st->offset = resume ? resume_at : start; /* read like what follows: a chunk at a time */
	/* Where the stream starts, as an id without an event: a client cut off before the first
	 * line still resumes from here. */
	rb_sse_write_id(&first, (uint64_t)st->offset);
	enum MHD_Result rc = rb_reply_stream(req, &follow_ops, st, first.data);
	rb_buf_release(&first);
	return rc;
}
