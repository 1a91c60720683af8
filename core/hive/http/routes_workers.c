/*
 * routes_workers.c - the process registry over HTTP: GET /v1/workers (JSON),
 * GET /v1/workers/{worker_id}/logs?tail=N[&follow=1] and GET /v1/heartbeats/stream (SSE).
 *
 * The two streams are MHD callback responses that block in their connection's own thread
 * (libmicrohttpd runs one per connection). Both wait in short slices and look at the socket
 * between them, so a client that left, or a server that is stopping (MHD shuts the sockets
 * down), ends the stream within a slice even when there is nothing to send. What a stream holds
 * is bounded: it reads the log RB_STREAM_CHUNK at a time as the client takes it, and an
 * unfinished line at most FOLLOW_LINE_MAX. A plain tail is sent from the file as it goes.
 */
#include "routes.h"

#include <errno.h>
#include <fcntl.h>
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
#include "rb_proc.h"
#include "rb_sse.h"
#include "workers/workers.h"

#define HEARTBEAT_MS 1000
#define SLICE_MS 100             /* how often a waiting stream looks at its socket */
#define FOLLOW_POLL_MS 250       /* log follow: how often the file is looked at */
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
	int sock;               /* the connection's socket, to notice it closing */
	struct rb_buf out;      /* text not yet handed to MHD */
	size_t sent;
	bool ended;             /* after `out` drains, end the response */
	/* follow */
	char worker_id[RB_WORKER_ID_MAX];
	char path[PATH_MAX];
	off_t offset;           /* how far the log has been read */
	struct rb_buf partial;  /* a line not finished yet */
	long long last_sent_ms;
	/* heartbeat */
	unsigned long beats;
};

/* Sleep up to ms in slices; false when the connection went away meanwhile. */
static bool wait_connected(struct stream *st, int ms)
{
	for (int waited = 0; waited < ms; waited += SLICE_MS) {
		if (rb_socket_gone(st->sock))
			return false;
		usleep((useconds_t)(ms - waited < SLICE_MS ? ms - waited : SLICE_MS) * 1000);
	}
	return !rb_socket_gone(st->sock);
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	rb_buf_release(&st->out);
	rb_buf_release(&st->partial);
	free(st);
}

static struct stream *stream_new(struct rb_request *req)
{
	struct stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->hive = req->hive;
	st->sock = rb_request_socket(req);
	rb_buf_init(&st->out);
	rb_buf_init(&st->partial);
	st->last_sent_ms = rb_now_ms();
	return st;
}

/* Hand out what is pending; `fill` produces more (blocking) when nothing is. */
static ssize_t stream_give(struct stream *st, char *buf, size_t max,
			   void (*fill)(struct stream *st))
{
	while (st->sent == st->out.len) {
		if (st->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		rb_buf_reset(&st->out);
		st->sent = 0;
		fill(st);
	}
	size_t n = st->out.len - st->sent;
	if (n > max)
		n = max;
	memcpy(buf, st->out.data + st->sent, n);
	st->sent += n;
	return (ssize_t)n;
}

/* ---- GET /v1/workers --------------------------------------------------------------------- */

enum MHD_Result rb_route_workers_list(struct rb_request *req)
{
	if (!req->hive->workers)
		return rb_reply_errf(req, RB_EUNAVAIL, "the worker registry is not running");
	return rb_reply_json(req, 200, rb_workers_list_json(req->hive));
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

static void heartbeat_fill(struct stream *st)
{
	/* The first beat goes out at once; each later one a second after the previous. */
	if (st->beats++ && !wait_connected(st, HEARTBEAT_MS)) {
		st->ended = true;
		return;
	}
	if (!st->hive->workers) {
		st->ended = true;
		return;
	}
	struct json_object *o = heartbeat_json(st->hive);
	const char *s = rb_json_compact(o);
	rb_sse_write_json_event(&st->out, 0, "heartbeat", s, strlen(s));
	json_object_put(o);
}

static ssize_t heartbeat_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	return stream_give(cls, buf, max, heartbeat_fill);
}

enum MHD_Result rb_route_heartbeats(struct rb_request *req)
{
	if (!req->hive->workers)
		return rb_reply_errf(req, RB_EUNAVAIL, "the worker registry is not running");
	struct stream *st = stream_new(req);
	if (!st)
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	return rb_reply_stream(req, heartbeat_read, st, stream_free);
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

/* Emit complete lines of `text` as data events; keep an unfinished last line for later, up to
 * FOLLOW_LINE_MAX (a longer one goes out in pieces). Each byte is looked at once. */
static void emit_lines(struct stream *st, const char *text, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] != '\n' && st->partial.len + (i - start) < FOLLOW_LINE_MAX)
			continue;
		rb_buf_add(&st->partial, text + start, i - start);
		rb_sse_write_event(&st->out, 0, NULL, st->partial.data, st->partial.len);
		rb_buf_reset(&st->partial);
		start = text[i] == '\n' ? i + 1 : i;
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

/* Read what was appended since the last look (from the start again if the file shrank). */
static bool read_more(struct stream *st)
{
	int fd = open(st->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat sb;
	bool any = false;
	if (fstat(fd, &sb) == 0) {
		if (sb.st_size < st->offset)
			st->offset = 0;
		char buf[RB_STREAM_CHUNK];
		ssize_t n;
		/* One chunk per call: what a stream holds stays bounded however fast the log grows,
		 * and the caller looks at the socket between calls. */
		if ((n = pread(fd, buf, sizeof(buf), st->offset)) > 0) {
			emit_lines(st, buf, (size_t)n);
			st->offset += n;
			any = true;
		}
	}
	close(fd);
	return any;
}

static void follow_fill(struct stream *st)
{
	for (;;) {
		char why[320];
		/* Look at the worker before the file, so its last words are read before the end. */
		bool running = worker_running(st, why, sizeof(why));
		bool more = read_more(st);
		if (st->out.len) {
			st->last_sent_ms = rb_now_ms();
			return;
		}
		if (more && !rb_socket_gone(st->sock))
			continue; /* a chunk without a whole line: read on */
		if (!running) {
			if (st->partial.len)
				rb_sse_write_event(&st->out, 0, NULL, st->partial.data, st->partial.len);
			rb_sse_write_event(&st->out, 0, "end", why, strlen(why));
			st->ended = true;
			return;
		}
		if (rb_now_ms() - st->last_sent_ms >= KEEPALIVE_MS) {
			rb_sse_write_comment(&st->out, "keep-alive");
			st->last_sent_ms = rb_now_ms();
			return;
		}
		if (!wait_connected(st, FOLLOW_POLL_MS)) {
			st->ended = true;
			return;
		}
	}
}

static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	return stream_give(cls, buf, max, follow_fill);
}

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

enum MHD_Result rb_route_worker_logs(struct rb_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	const char *id = req->params[0], *follow = rb_request_query(req, "follow");
	long lines;
	char path[PATH_MAX];
	if (rb_id_check("worker_id", id, &err) || parse_tail(rb_request_query(req, "tail"), &lines,
							      &err))
		return rb_reply_err(req, &err);
	snprintf(path, sizeof(path), "%s/%s.log", req->hive->paths.logs, id);
	off_t start = 0, end = 0;
	int fd = open_tail(path, lines, &start, &end, &err);
	if (fd < 0) {
		if (err.code == RB_ENOTFOUND)
			return rb_reply_errf(req, RB_ENOTFOUND, "no log for worker '%s' on this hive "
					     "(see 'rbee worker process list')", id);
		return rb_reply_err(req, &err);
	}
	if (!follow || !strcmp(follow, "0") || !strcmp(follow, "false"))
		return rb_reply_fd(req, 200, "text/plain; charset=utf-8", fd, (uint64_t)start,
				   (uint64_t)(end - start));
	close(fd);
	struct stream *st = stream_new(req);
	if (!st)
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	snprintf(st->worker_id, sizeof(st->worker_id), "%s", id);
	snprintf(st->path, sizeof(st->path), "%s", path);
	st->offset = start; /* the tail is read like what follows it: a chunk at a time */
	rb_buf_addf(&st->out, ": following %s\n\n", id);
	return rb_reply_stream(req, follow_read, st, stream_free);
}
