/*
 * rb_server.c - the shared HTTP server layer (see rb_server.h): libmicrohttpd with its internal
 * epoll thread pool, the guards, routing, JSON errors, and streams as suspended connections.
 *
 * A stream and its wakers meet under the stream's lock:
 *   reader (pool thread)           waker (any thread)
 *   seq = st->wake_seq             lock; st->wake_seq++;
 *   fill() -> nothing              if (st->suspended) { st->suspended = false;
 *   lock;                                                MHD_resume_connection(); }
 *   if seq == st->wake_seq:        unlock
 *       st->suspended = true;
 *       MHD_suspend_connection();
 *   unlock; return 0
 * so a wake that comes while fill runs is never lost (the reader fills again instead of
 * suspending). Lock order: a producer's own lock (a job's), or the server's stream lock
 * (slock: slots, timers, watches), then a stream's lock, then libmicrohttpd's. fill runs with
 * none of them held.
 *
 * The stream thread waits in one epoll set for the client sockets of every stream (a suspended
 * connection's socket is not looked at by libmicrohttpd), the inotify descriptor of the watched
 * files and an eventfd (new deadlines, stop), with the nearest deadline of the timer heap as
 * its timeout. Streams are found from an event by slot and generation, never by pointer, so an
 * event for a stream freed meanwhile finds nothing.
 */
#include "rb_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rb_http_guard.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_mhd_headers.h"
#include "rb_proc.h"
#include "rb_sse.h"

/* An oversized body of unknown length (chunked) is read and dropped up to this many times the
 * limit, so an ordinary client gets its 413; past that the connection is closed. */
#define DRAIN_FACTOR 8
/* rb_server_close: after the draining streams, how long the others get to end. */
#define CLOSE_WAIT_MS 1000
#define TAG_EVENTFD UINT64_MAX
#define TAG_INOTIFY (UINT64_MAX - 1)
#define NO_HEAP SIZE_MAX
/* A stream's HTTP/1.0 send buffer (in its libmicrohttpd response, so 10 000 streams hold
 * 10 000 of them): events larger than it go out in pieces (rb_job_poll_events cuts them). */
#define STREAM_BLOCK 128
/* A pool thread's stream scratch buffer larger than this is freed before its next use. */
#define SCRATCH_KEEP (64 * 1024)

struct watch {
	int wd;
	struct rb_stream *head;
};

struct rb_stream {
	struct rb_server *srv;
	struct MHD_Connection *conn;
	const struct rb_stream_ops *ops;
	void *cls;
	int sock;
	bool watched; /* sock is in the stream thread's epoll set (under srv->slock) */
	/* reader side (one pool thread at a time) */
	struct rb_buf out;
	size_t sent;
	bool ended;
	long long last_sent_ms;
	/* under lock */
	pthread_mutex_t lock;
	bool suspended;
	unsigned wake_seq;
	atomic_bool gone; /* the client hung up */
	/* The client shut its sending side (EPOLLRDHUP): it either half-closed (shutdown
	 * SHUT_WR after its request, which is legal: it still reads) or closed. A write tells the
	 * two apart: a closed socket answers it with a reset (EPOLLERR/EPOLLHUP, or EPIPE in
	 * libmicrohttpd's send), a half-closed one takes it. The reader sends one at once. */
	atomic_bool probe;
	/* under srv->slock */
	uint32_t slot;
	long long due_ms;
	size_t heap_i;
	int wd; /* -1: no file watched */
	struct rb_stream *wprev, *wnext;
};

struct rb_server {
	struct rb_server_config cfg;
	struct MHD_Daemon *daemon;
	uint16_t port;
	unsigned max_connections;
	bool bind_any, bind_loopback;
	/* streams */
	pthread_mutex_t slock;
	pthread_cond_t scond; /* a stream was freed */
	struct rb_stream **slots;
	uint32_t *gens;
	uint32_t nslots, *free_slots, nfree;
	struct rb_stream **heap;
	size_t nheap, cap_heap;
	struct watch *watches;
	size_t nwatches;
	unsigned long nstreams, ndraining;
	atomic_ulong nsuspended, nwakes;
	atomic_bool closing;
	int epfd, evfd, infd;
	pthread_t loop;
	bool loop_started;
	bool loop_exit; /* under slock */
};

/* Per-request state kept by MHD between the calls of one request. */
struct conn_state {
	struct rb_buf body;
	bool too_big;
	bool answered; /* a reply was queued before the body was read: ignore the rest */
	size_t drained; /* bytes of an oversized chunked body read and dropped */
	bool has_body;  /* a body was announced (Content-Length > 0 or Transfer-Encoding) */
	bool guarded;   /* the guards already passed on the first call */
};

static void oom(void)
{
	fputs("out of memory\n", stderr);
	abort();
}

/* ---- answers --------------------------------------------------------------------------- */

static const char *allowed_origin(const struct rb_server *srv, struct MHD_Connection *conn)
{
	const char *o = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	return o && rb_list_has(srv->cfg.allowed_origins, o, strlen(o)) ? o : NULL;
}

static void add_cors(const struct rb_server *srv, struct MHD_Response *r, const char *origin)
{
	MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
	if (srv->cfg.cors_credentials) {
		MHD_add_response_header(r, "Access-Control-Allow-Credentials", "true");
		MHD_add_response_header(r, "Access-Control-Expose-Headers", "Content-Length");
	}
	MHD_add_response_header(r, "Vary", "Origin");
}

/* Every answer: no caching where configured, and for an allowed browser origin the CORS
 * headers that let its page read the answer. Takes r. */
static enum MHD_Result queue(const struct rb_server *srv, struct MHD_Connection *conn,
			     unsigned status, struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	if (srv->cfg.no_store)
		MHD_add_response_header(r, "Cache-Control", "no-store");
	const char *origin = allowed_origin(srv, conn);
	if (origin)
		add_cors(srv, r, origin);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A JSON answer made from obj (taken), with every string UTF-8: json-c copies bytes that are
 * not UTF-8 (build output, log lines) as they are, which no JSON reader accepts. */
static struct MHD_Response *json_response(struct json_object *obj)
{
	const char *s = rb_json_compact(obj);
	size_t len = strlen(s);
	struct MHD_Response *r;
	if (rb_utf8_valid(s, len)) {
		r = MHD_create_response_from_buffer(len, (void *)s, MHD_RESPMEM_MUST_COPY);
	} else {
		struct rb_buf clean = RB_BUF_INIT;
		rb_utf8_sanitize(s, len, &clean);
		r = MHD_create_response_from_buffer(clean.len, clean.data, MHD_RESPMEM_MUST_COPY);
		rb_buf_release(&clean);
	}
	json_object_put(obj);
	if (r)
		MHD_add_response_header(r, "Content-Type", "application/json");
	return r;
}

static enum MHD_Result error_reply(const struct rb_server *srv, struct MHD_Connection *conn,
				   unsigned status, const char *slug, const char *msg)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "error", msg);
	rb_json_add_str(o, "code", slug);
	struct MHD_Response *r = json_response(o);
	if (r && status == 405 && srv->cfg.allow_on_405)
		MHD_add_response_header(r, "Allow", srv->cfg.allow_methods);
	if (r && status == 401) {
		char realm[128];
		snprintf(realm, sizeof(realm), "Bearer realm=\"%s\"",
			 srv->cfg.realm ? srv->cfg.realm : "rbee");
		MHD_add_response_header(r, "WWW-Authenticate", realm);
	}
	return queue(srv, conn, status, r);
}

static enum MHD_Result error_code(const struct rb_server *srv, struct MHD_Connection *conn,
				  int code, const char *msg)
{
	return error_reply(srv, conn, (unsigned)rb_errc_http_status(code), rb_errc_slug(code), msg);
}

enum MHD_Result rb_reply_status(struct rb_request *req, unsigned status, const char *slug,
				const char *msg)
{
	return error_reply(req->server, req->conn, status, slug, msg);
}

enum MHD_Result rb_reply_json(struct rb_request *req, unsigned status, struct json_object *obj)
{
	return queue(req->server, req->conn, status, json_response(obj));
}

enum MHD_Result rb_reply_text(struct rb_request *req, unsigned status, const char *content_type,
			      const char *text)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (r)
		MHD_add_response_header(r, "Content-Type", content_type);
	return queue(req->server, req->conn, status, r);
}

enum MHD_Result rb_reply_fd(struct rb_request *req, unsigned status, const char *content_type,
			    int fd, uint64_t offset, uint64_t len)
{
	struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(len, fd, offset);
	if (!r) {
		close(fd);
		return rb_reply_errf(req, RB_EINTERNAL, "cannot create the response");
	}
	MHD_add_response_header(r, "Content-Type", content_type);
	return queue(req->server, req->conn, status, r);
}

enum MHD_Result rb_reply_shared(struct rb_request *req, unsigned status,
				struct MHD_Response *shared, const char *body, size_t len,
				const char *content_type, const char *location)
{
	const struct rb_server *srv = req->server;
	if (!srv->cfg.no_store && (!body || !allowed_origin(srv, req->conn)))
		return MHD_queue_response(req->conn, status, shared);
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", content_type);
	if (location)
		MHD_add_response_header(r, "Location", location);
	return queue(srv, req->conn, status, r);
}

enum MHD_Result rb_reply_err(struct rb_request *req, const struct rb_err *err)
{
	return error_code(req->server, req->conn, err->code ? err->code : RB_EINTERNAL,
			  err->msg[0] ? err->msg : "internal error");
}

enum MHD_Result rb_reply_errf(struct rb_request *req, int code, const char *fmt, ...)
{
	char msg[RB_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_code(req->server, req->conn, code, msg);
}

enum MHD_Result rb_reply_preflight(struct rb_request *req)
{
	const struct rb_server *srv = req->server;
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Allow", srv->cfg.allow_methods);
	const char *origin = allowed_origin(srv, req->conn);
	if (origin) {
		if (srv->cfg.cors_credentials)
			add_cors(srv, r, origin);
		MHD_add_response_header(r, "Access-Control-Allow-Methods", srv->cfg.allow_methods);
		MHD_add_response_header(r, "Access-Control-Allow-Headers", srv->cfg.allow_headers);
		MHD_add_response_header(r, "Access-Control-Max-Age", "600");
	}
	if (srv->cfg.cors_credentials) { /* its CORS headers are in already */
		enum MHD_Result ret = MHD_queue_response(req->conn, 204, r);
		MHD_destroy_response(r);
		return ret;
	}
	return queue(srv, req->conn, 204, r);
}

const char *rb_request_header(struct rb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *rb_request_query(struct rb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- guards and routing ------------------------------------------------------------------ */

/* Constant-time comparison: the time taken does not depend on where the strings differ. */
static bool token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < lb; i++)
		diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
	return diff == 0;
}

/* NULL when the request may go on, else why not: no token sent, or the wrong one. */
static const char *auth_failure(const struct rb_server *srv, struct MHD_Connection *conn)
{
	const char *token = srv->cfg.token;
	if (!token || !token[0])
		return NULL;
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return srv->cfg.token_missing ? srv->cfg.token_missing
					      : "a bearer token is required: send 'Authorization: "
						"Bearer <token>'";
	if (!token_equal(h + 7, token))
		return srv->cfg.token_wrong ? srv->cfg.token_wrong : "the bearer token was refused";
	return NULL;
}

/* Match "/v1/jobs/abc/stream" against "/v1/jobs/ * /stream", capturing segments. Captures are
 * copied into `store` (one NUL-terminated string after another). */
static bool route_match(const char *pattern, const char *path, char *store, size_t store_len,
			const char **params)
{
	size_t used = 0;
	int np = 0;
	while (*pattern && *path) {
		if (*pattern == '*') {
			const char *end = strchr(path, '/');
			size_t n = end ? (size_t)(end - path) : strlen(path);
			if (n == 0 || np >= RB_ROUTE_MAX_PARAMS || used + n + 1 > store_len)
				return false;
			memcpy(store + used, path, n);
			store[used + n] = '\0';
			params[np++] = store + used;
			used += n + 1;
			pattern++;
			path += n;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

static bool host_allowed(const struct rb_server *srv, const char *header)
{
	struct rb_host_policy p = { .bind = srv->cfg.bind, .bind_any = srv->bind_any,
				    .bind_loopback = srv->bind_loopback,
				    .hostname = srv->cfg.hostname ? srv->cfg.hostname : "",
				    .allowed_hosts = srv->cfg.allowed_hosts };
	return rb_host_allowed(&p, header);
}

static bool origin_refused(const struct rb_server *srv, struct MHD_Connection *conn)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	return srv->cfg.origin_guard && origin &&
	       !rb_list_has(srv->cfg.allowed_origins, origin, strlen(origin));
}

/* The refusals that come before routing (see rb_server.h). */
static enum MHD_Result guard_failure(const struct rb_server *srv, struct MHD_Connection *conn,
				     bool *refused)
{
	char msg[512];
	*refused = true;
	const char *why = rb_mhd_framing_failure(conn);
	if (why)
		return error_reply(srv, conn, 400, "invalid_request", why);
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	if (host && !host_allowed(srv, host)) {
		snprintf(msg, sizeof(msg), "Host '%.200s' is not a name of this %s: %s", host,
			 srv->cfg.name, srv->cfg.host_hint);
		return error_reply(srv, conn, 403, "forbidden", msg);
	}
	if (origin_refused(srv, conn)) {
		const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
		snprintf(msg, sizeof(msg), "requests from the web origin '%.200s' are not allowed: %s",
			 origin, srv->cfg.origin_hint);
		return error_reply(srv, conn, 403, "forbidden", msg);
	}
	*refused = false;
	return MHD_YES;
}

static enum MHD_Result dispatch(struct rb_server *srv, struct MHD_Connection *conn,
				const char *url, const char *method, struct conn_state *st)
{
	bool refused = false;
	enum MHD_Result gr = st->guarded ? MHD_YES : guard_failure(srv, conn, &refused);
	if (refused)
		return gr;
	char store[1024];
	struct rb_request req = { .app = srv->cfg.app, .server = srv, .conn = conn,
				  .method = method, .url = url, .body = st->body.data,
				  .body_len = st->body.len };
	bool path_found = false;
	for (const struct rb_route *r = srv->cfg.routes; r->method; r++) {
		const char *params[RB_ROUTE_MAX_PARAMS] = { 0 };
		if (!route_match(r->pattern, url, store, sizeof(store), params))
			continue;
		path_found = true;
		if (!strcmp(method, "OPTIONS"))
			return rb_reply_preflight(&req);
		if (strcmp(r->method, method) != 0 &&
		    !(strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0))
			continue;
		const char *why = r->needs_token ? auth_failure(srv, conn) : NULL;
		if (why)
			return error_code(srv, conn, RB_EUNAUTH, why);
		if (srv->cfg.max_body && st->too_big) {
			char msg[128];
			snprintf(msg, sizeof(msg), "request body larger than %zu bytes",
				 srv->cfg.max_body);
			return error_code(srv, conn, RB_ETOOBIG, msg);
		}
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
		if (srv->cfg.max_body && (st->has_body || st->body.len) && !rb_is_json_type(ct)) {
			char msg[384];
			snprintf(msg, sizeof(msg),
				 "a request body must be sent as 'Content-Type: application/json', not "
				 "'%.200s'", ct ? ct : "(none)");
			return error_reply(srv, conn, 415, "unsupported_media_type", msg);
		}
		memcpy(req.params, params, sizeof(params));
		return r->handler(&req);
	}
	if (path_found) {
		char msg[256];
		if (srv->cfg.method_message)
			srv->cfg.method_message(&req, msg, sizeof(msg));
		else
			snprintf(msg, sizeof(msg), "method %s not allowed on '%s'", method, url);
		return error_code(srv, conn, RB_EMETHOD, msg);
	}
	if (srv->cfg.no_route)
		return srv->cfg.no_route(&req);
	char msg[512];
	snprintf(msg, sizeof(msg), "no route '%s'", url);
	return error_code(srv, conn, RB_ENOTFOUND, msg);
}

/* What the first call of a request decides from its headers alone: answer now (before any
 * body is read, after which MHD closes the connection) when a guard refuses, the body is
 * declared too big or not JSON, or the routes take no body at all. */
static bool answer_before_body(const struct rb_server *srv, struct MHD_Connection *conn,
			       struct conn_state *st)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
	unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
	st->has_body = declared > 0 || te;
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	if (rb_mhd_framing_failure(conn) || (host && !host_allowed(srv, host)) ||
	    origin_refused(srv, conn))
		return true;
	if (!srv->cfg.max_body)
		return st->has_body;
	if (declared > srv->cfg.max_body)
		st->too_big = true;
	return st->too_big ||
	       (st->has_body && !rb_is_json_type(MHD_lookup_connection_value(
						 conn, MHD_HEADER_KIND, "Content-Type")));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	(void)version;
	struct rb_server *srv = cls;
	struct conn_state *st = *con_cls;
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		rb_buf_init(&st->body);
		*con_cls = st;
		/* The headers are in: the shorter timeout for them no longer applies. */
		if (srv->cfg.timeout_s != srv->cfg.header_timeout_s)
			MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
						  srv->cfg.timeout_s);
		/* Refuse before reading the body: the answer goes out at once and MHD closes the
		 * connection instead of reading what follows. */
		if (answer_before_body(srv, conn, st)) {
			st->answered = true;
			return dispatch(srv, conn, url, method, st);
		}
		st->guarded = true; /* answer_before_body found no guard refusing: not again */
		return MHD_YES;
	}
	if (st->answered) {
		*data_size = 0;
		return MHD_YES;
	}
	if (*data_size) {
		if (!st->too_big && st->body.len + *data_size <= srv->cfg.max_body) {
			rb_buf_add(&st->body, data, *data_size);
		} else {
			st->too_big = true; /* answer 413 at the end */
			rb_buf_release(&st->body);
			st->drained += *data_size;
			if (st->drained / DRAIN_FACTOR > srv->cfg.max_body) {
				rb_warn("http: closing a connection that sent a %s %s body past %zu "
					"bytes (the limit is %zu)", method, url, st->drained,
					srv->cfg.max_body);
				return MHD_NO;
			}
		}
		*data_size = 0;
		return MHD_YES;
	}
	return dispatch(srv, conn, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct rb_server *srv = cls;
	struct conn_state *st = *con_cls;
	/* Waiting for the next request on a kept-alive connection: the header timeout again,
	 * also after a stream, which lifted the timeout of its connection (even when the two
	 * timeouts are equal: then only the stream changed it). */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
					  srv->cfg.header_timeout_s);
	if (st) {
		rb_buf_release(&st->body);
		free(st);
		*con_cls = NULL;
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	rb_warn("http: %s", line);
}

/* ---- streams: timers, watches, wakes (slock held) --------------------------------------- */

static bool heap_less(struct rb_server *srv, size_t a, size_t b)
{
	return srv->heap[a]->due_ms < srv->heap[b]->due_ms;
}

static void heap_swap(struct rb_server *srv, size_t a, size_t b)
{
	struct rb_stream *t = srv->heap[a];
	srv->heap[a] = srv->heap[b];
	srv->heap[b] = t;
	srv->heap[a]->heap_i = a;
	srv->heap[b]->heap_i = b;
}

static void heap_fix(struct rb_server *srv, size_t i)
{
	while (i > 0 && heap_less(srv, i, (i - 1) / 2)) {
		heap_swap(srv, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < srv->nheap && heap_less(srv, l, m))
			m = l;
		if (r < srv->nheap && heap_less(srv, r, m))
			m = r;
		if (m == i)
			return;
		heap_swap(srv, i, m);
		i = m;
	}
}

static void heap_remove(struct rb_server *srv, struct rb_stream *st)
{
	size_t i = st->heap_i;
	if (i == NO_HEAP)
		return;
	st->heap_i = NO_HEAP;
	if (i != --srv->nheap) {
		srv->heap[i] = srv->heap[srv->nheap];
		srv->heap[i]->heap_i = i;
		heap_fix(srv, i);
	}
}

/* Ask for a wake at due_ms (0: none). Returns whether it is now the nearest deadline. */
static bool timer_set(struct rb_server *srv, struct rb_stream *st, long long due_ms)
{
	if (!due_ms) {
		heap_remove(srv, st);
		return false;
	}
	st->due_ms = due_ms;
	if (st->heap_i == NO_HEAP) {
		if (srv->nheap == srv->cap_heap) {
			size_t cap = srv->cap_heap ? srv->cap_heap * 2 : 64;
			struct rb_stream **h = realloc(srv->heap, cap * sizeof(*h));
			if (!h)
				oom();
			srv->heap = h;
			srv->cap_heap = cap;
		}
		st->heap_i = srv->nheap;
		srv->heap[srv->nheap++] = st;
	}
	heap_fix(srv, st->heap_i);
	return st->heap_i == 0;
}

static void poke_loop(struct rb_server *srv)
{
	uint64_t one = 1;
	ssize_t n = write(srv->evfd, &one, sizeof(one));
	(void)n; /* a full counter still wakes the loop */
}

static void watch_leave(struct rb_server *srv, struct rb_stream *st)
{
	if (st->wd < 0)
		return;
	for (size_t i = 0; i < srv->nwatches; i++) {
		struct watch *w = &srv->watches[i];
		if (w->wd != st->wd)
			continue;
		if (st->wprev)
			st->wprev->wnext = st->wnext;
		else
			w->head = st->wnext;
		if (st->wnext)
			st->wnext->wprev = st->wprev;
		if (!w->head) {
			inotify_rm_watch(srv->infd, w->wd);
			*w = srv->watches[--srv->nwatches];
		}
		break;
	}
	st->wd = -1;
	st->wprev = st->wnext = NULL;
}

/* The waker's half of the handshake (see the top of this file). */
void rb_stream_wake(struct rb_stream *st)
{
	pthread_mutex_lock(&st->lock);
	st->wake_seq++;
	if (st->suspended) {
		st->suspended = false;
		atomic_fetch_sub(&st->srv->nsuspended, 1);
		atomic_fetch_add(&st->srv->nwakes, 1);
		MHD_resume_connection(st->conn);
	}
	pthread_mutex_unlock(&st->lock);
}

int rb_stream_watch_file(struct rb_stream *st, const char *path, struct rb_err *err)
{
	struct rb_server *srv = st->srv;
	pthread_mutex_lock(&srv->slock);
	int wd = inotify_add_watch(srv->infd, path,
				   IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVE_SELF |
					   IN_DELETE_SELF);
	if (wd < 0) {
		int e = errno;
		pthread_mutex_unlock(&srv->slock);
		return rb_err_set(err, RB_EIO, "cannot watch '%s' for changes: %s%s", path,
				  strerror(e), e == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
	}
	if (wd != st->wd) {
		watch_leave(srv, st);
		struct watch *w = NULL;
		for (size_t i = 0; i < srv->nwatches; i++)
			if (srv->watches[i].wd == wd)
				w = &srv->watches[i];
		if (!w) {
			struct watch *p = realloc(srv->watches, (srv->nwatches + 1) * sizeof(*p));
			if (!p)
				oom();
			srv->watches = p;
			w = &srv->watches[srv->nwatches++];
			w->wd = wd;
			w->head = NULL;
		}
		st->wd = wd;
		st->wprev = NULL;
		st->wnext = w->head;
		if (w->head)
			w->head->wprev = st;
		w->head = st;
	}
	pthread_mutex_unlock(&srv->slock);
	return 0;
}

/* Wake every stream watching wd; on IN_IGNORED (the watch is gone) forget it. */
static void watch_fired(struct rb_server *srv, int wd, bool ignored)
{
	for (size_t i = 0; i < srv->nwatches; i++) {
		struct watch *w = &srv->watches[i];
		if (w->wd != wd)
			continue;
		for (struct rb_stream *s = w->head, *next; s; s = next) {
			next = s->wnext;
			if (ignored) {
				s->wd = -1;
				s->wprev = s->wnext = NULL;
			}
			rb_stream_wake(s);
		}
		if (ignored)
			*w = srv->watches[--srv->nwatches];
		return;
	}
}

/* Wake every stream that watches a file (slock held). */
static void watches_all_fired(struct rb_server *srv)
{
	for (size_t i = 0; i < srv->nwatches; i++)
		for (struct rb_stream *s = srv->watches[i].head; s; s = s->wnext)
			rb_stream_wake(s);
}

/* Drain the inotify descriptor (slock held). When its queue overflowed
 * (fs.inotify.max_queued_events), events were dropped, of any watch: every watching stream is
 * woken to look again, or a follow whose event was dropped would wait for its next deadline. */
static void inotify_drain(struct rb_server *srv)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	bool overflow = false;
	while ((len = read(srv->infd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *e = (const void *)p;
			if (e->mask & IN_Q_OVERFLOW)
				overflow = true;
			else
				watch_fired(srv, e->wd, e->mask & IN_IGNORED);
			p += sizeof(*e) + e->len;
		}
	if (overflow)
		watches_all_fired(srv);
}

/* An event on a stream's socket (slock held). EPOLLHUP or EPOLLERR: the connection is gone
 * (a reset, or both directions shut). EPOLLRDHUP alone: the client sent its FIN, which a
 * client that only half-closed sends too; the stream is woken to write (see probe), and a
 * client that really left answers that write with a reset, which comes back here. */
static void socket_event(struct rb_server *srv, struct rb_stream *st, uint32_t events)
{
	if (events & (EPOLLHUP | EPOLLERR)) {
		atomic_store(&st->gone, true);
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, st->sock, NULL);
		st->watched = false;
	} else {
		atomic_store(&st->probe, true);
	}
	rb_stream_wake(st);
}

static struct rb_stream *slot_stream(struct rb_server *srv, uint64_t tag)
{
	uint32_t slot = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
	if (slot >= srv->nslots || srv->gens[slot] != gen)
		return NULL;
	return srv->slots[slot];
}

static void *loop_main(void *arg)
{
	struct rb_server *srv = arg;
	struct epoll_event evs[64];
	pthread_mutex_lock(&srv->slock);
	while (!srv->loop_exit) {
		long long now = rb_now_ms();
		int timeout = -1;
		if (srv->nheap) {
			long long d = srv->heap[0]->due_ms - now;
			timeout = d <= 0 ? 0 : d > 60000 ? 60000 : (int)d;
		}
		pthread_mutex_unlock(&srv->slock);
		int n = epoll_wait(srv->epfd, evs, 64, timeout);
		pthread_mutex_lock(&srv->slock);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_EVENTFD) {
				uint64_t v;
				ssize_t r = read(srv->evfd, &v, sizeof(v));
				(void)r;
			} else if (tag == TAG_INOTIFY) {
				inotify_drain(srv);
			} else {
				struct rb_stream *st = slot_stream(srv, tag);
				if (st)
					socket_event(srv, st, evs[i].events);
			}
		}
		now = rb_now_ms();
		while (srv->nheap && srv->heap[0]->due_ms <= now) {
			struct rb_stream *st = srv->heap[0];
			heap_remove(srv, st);
			rb_stream_wake(st);
		}
	}
	pthread_mutex_unlock(&srv->slock);
	return NULL;
}

/* ---- streams: the reader ---------------------------------------------------------------- */

/* Copy what a stream has to send into MHD's buffer: first its own leftover, else what the
 * producer hands over, through the pool thread's scratch buffer. Whatever does not fit is kept
 * by the stream (an event larger than the buffer). So 10 000 streams that all get the same
 * history or terminal event at once hold nothing but MHD's own buffers: the old per-stream
 * send buffer made the hive's peak RSS there 22 MiB above its steady state. */
static ssize_t stream_send(struct rb_stream *st, char *buf, size_t max, struct rb_buf *from)
{
	const char *src = from == &st->out ? st->out.data + st->sent : from->data;
	size_t have = from == &st->out ? st->out.len - st->sent : from->len;
	size_t n = have < max ? have : max;
	memcpy(buf, src, n);
	if (from == &st->out) {
		st->sent += n;
		if (st->sent == st->out.len) { /* a waiting stream keeps no buffer */
			rb_buf_release(&st->out);
			st->sent = 0;
		}
	} else if (n < have) {
		rb_buf_add(&st->out, src + n, have - n);
	}
	st->last_sent_ms = rb_now_ms();
	return (ssize_t)n;
}

/* Watch the socket of a stream about to wait for the first time (slock held). Not before:
 * a stream that is answered at once (a finished job's history) never touches the stream
 * thread. A hang-up that came earlier is reported by the ADD itself (epoll reports the
 * socket's present state), before the stream suspends. */
static void watch_socket_locked(struct rb_server *srv, struct rb_stream *st)
{
	if (st->watched || st->sock < 0)
		return;
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET,
				  .data.u64 = ((uint64_t)srv->gens[st->slot] << 32) | st->slot };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, st->sock, &ev) == 0)
		st->watched = true;
	else
		rb_warn("http: a stream will not notice its client leaving: epoll: %s",
			strerror(errno));
}

/* A pool thread's scratch buffer for stream_read, freed when the thread ends. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	rb_buf_release(p);
	free(p);
}

static void scratch_key_make(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static struct rb_buf *scratch_get(void)
{
	pthread_once(&scratch_once, scratch_key_make);
	struct rb_buf *b = pthread_getspecific(scratch_key);
	if (!b && (b = calloc(1, sizeof(*b))) != NULL) {
		rb_buf_init(b);
		if (pthread_setspecific(scratch_key, b) != 0) {
			free(b);
			b = NULL;
		}
	}
	return b;
}

static bool is_event_stream(const struct rb_stream_ops *ops)
{
	return !ops->content_type || !strcmp(ops->content_type, "text/event-stream");
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct rb_stream *st = cls;
	struct rb_server *srv = st->srv;
	struct rb_buf *scratch = scratch_get();
	if (!scratch)
		return MHD_CONTENT_READER_END_WITH_ERROR; /* out of memory */
	for (;;) {
		if (st->sent < st->out.len)
			return stream_send(st, buf, max, &st->out);
		if (st->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (atomic_load(&st->gone) || atomic_load(&srv->closing))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (scratch->cap > SCRATCH_KEEP)
			rb_buf_release(scratch);
		rb_buf_reset(scratch);
		pthread_mutex_lock(&st->lock);
		unsigned seq = st->wake_seq;
		pthread_mutex_unlock(&st->lock);
		/* After the sequence: a probe asked for after this is followed by a wake. */
		bool probe = atomic_exchange(&st->probe, false);
		bool ended = false;
		long long due = st->ops->fill(st->cls, st, scratch, max, &ended);
		st->ended = ended;
		if (scratch->len)
			return stream_send(st, buf, max, scratch); /* what goes out is the probe */
		if (ended)
			continue;
		/* An event stream probes with a comment. A deferred answer has nothing to probe
		 * with: a client that left is noticed when the answer is written. */
		if (probe && is_event_stream(st->ops)) {
			rb_sse_write_comment(scratch, "keep-alive");
			return stream_send(st, buf, max, scratch);
		}
		long long now = rb_now_ms();
		if (st->ops->keepalive_ms) {
			long long ka = st->last_sent_ms + st->ops->keepalive_ms;
			if (now >= ka) {
				rb_sse_write_comment(scratch, "keep-alive");
				return stream_send(st, buf, max, scratch);
			}
			if (!due || ka < due)
				due = ka;
		}
		pthread_mutex_lock(&srv->slock);
		watch_socket_locked(srv, st);
		bool nearest = timer_set(srv, st, due);
		pthread_mutex_unlock(&srv->slock);
		if (nearest)
			poke_loop(srv);
		pthread_mutex_lock(&st->lock);
		if (seq != st->wake_seq || atomic_load(&st->gone) || atomic_load(&srv->closing)) {
			pthread_mutex_unlock(&st->lock);
			continue;
		}
		st->suspended = true;
		atomic_fetch_add(&srv->nsuspended, 1);
		MHD_suspend_connection(st->conn);
		pthread_mutex_unlock(&st->lock);
		return 0;
	}
}

static void stream_free(void *cls)
{
	struct rb_stream *st = cls;
	struct rb_server *srv = st->srv;
	st->ops->release(st->cls); /* no producer wakes it from here on */
	pthread_mutex_lock(&srv->slock);
	heap_remove(srv, st);
	watch_leave(srv, st);
	if (st->watched)
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, st->sock, NULL);
	srv->gens[st->slot]++;
	srv->slots[st->slot] = NULL;
	srv->free_slots[srv->nfree++] = st->slot;
	srv->nstreams--;
	if (st->ops->drains)
		srv->ndraining--;
	pthread_cond_broadcast(&srv->scond);
	pthread_mutex_unlock(&srv->slock);
	if (st->suspended) /* cannot be: a suspended connection is never closed by MHD */
		atomic_fetch_sub(&srv->nsuspended, 1);
	rb_buf_release(&st->out);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* Register a new stream in a slot (slock held). */
static void slot_add(struct rb_server *srv, struct rb_stream *st)
{
	if (!srv->nfree) {
		uint32_t cap = srv->nslots ? srv->nslots * 2 : 64;
		struct rb_stream **s = realloc(srv->slots, cap * sizeof(*s));
		uint32_t *g = s ? realloc(srv->gens, cap * sizeof(*g)) : NULL;
		uint32_t *f = g ? realloc(srv->free_slots, cap * sizeof(*f)) : NULL;
		if (!f)
			oom();
		srv->slots = s;
		srv->gens = g;
		srv->free_slots = f;
		for (uint32_t i = cap; i-- > srv->nslots;) {
			s[i] = NULL;
			g[i] = 0;
			f[srv->nfree++] = i;
		}
		srv->nslots = cap;
	}
	st->slot = srv->free_slots[--srv->nfree];
	srv->slots[st->slot] = st;
	srv->nstreams++;
	if (st->ops->drains)
		srv->ndraining++;
}

enum MHD_Result rb_reply_stream(struct rb_request *req, const struct rb_stream_ops *ops,
				void *cls, const char *first)
{
	struct rb_server *srv = req->server;
	if (atomic_load(&srv->closing)) {
		ops->release(cls);
		return rb_reply_errf(req, RB_EUNAVAIL, "the %s is stopping", srv->cfg.name);
	}
	struct rb_stream *st = calloc(1, sizeof(*st));
	if (!st) {
		ops->release(cls);
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	}
	st->srv = srv;
	st->conn = req->conn;
	st->ops = ops;
	st->cls = cls;
	st->heap_i = NO_HEAP;
	st->wd = -1;
	st->last_sent_ms = rb_now_ms();
	rb_buf_init(&st->out);
	if (first)
		rb_buf_adds(&st->out, first);
	pthread_mutex_init(&st->lock, NULL);
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	st->sock = ci ? ci->connect_fd : -1;
	pthread_mutex_lock(&srv->slock);
	slot_add(srv, st);
	pthread_mutex_unlock(&srv->slock);
	/* The block size is the buffer of a response sent without chunks (HTTP/1.0): every
	 * stream has its own, so it is small (a chunked one is sent from the connection's). */
	struct MHD_Response *r =
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st,
						  stream_free);
	if (!r) {
		stream_free(st);
		return rb_reply_errf(req, RB_EINTERNAL, "cannot create the stream response");
	}
	MHD_add_response_header(r, "Content-Type",
				ops->content_type ? ops->content_type : "text/event-stream");
	MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* no proxy buffering */
	/* A stream may be quiet between its keep-alives: only the idle timeout is lifted, the
	 * request itself was complete. */
	MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
	return queue(srv, req->conn, 200, r);
}

void rb_server_get_stats(struct rb_server *srv, struct rb_server_stats *out)
{
	pthread_mutex_lock(&srv->slock);
	out->streams = srv->nstreams;
	pthread_mutex_unlock(&srv->slock);
	out->suspended = atomic_load(&srv->nsuspended);
	out->wakes = atomic_load(&srv->nwakes);
}

/* ---- start and stop --------------------------------------------------------------------- */

/* Bind and listen ourselves rather than through MHD, so the port (with port 0) is known before
 * any server thread runs, and a failure says exactly why (EADDRINUSE, EACCES...). */
static int open_listener(struct rb_server *srv, bool *ipv6, struct rb_err *err)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	const char *bind_addr = srv->cfg.bind;
	if (inet_pton(AF_INET, bind_addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(srv->cfg.port);
		slen = sizeof(*sin);
		*ipv6 = false;
	} else if (inet_pton(AF_INET6, bind_addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(srv->cfg.port);
		slen = sizeof(*sin6);
		*ipv6 = true;
	} else {
		return rb_err_set(err, RB_EINVAL,
				  "invalid --bind address '%s': give an IPv4 or IPv6 address", bind_addr);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return rb_err_set(err, RB_EIO, "cannot create a socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (*ipv6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, SOMAXCONN) != 0) {
		int e = errno;
		close(fd);
		return rb_err_set(err, RB_EIO, "cannot listen on %s port %u: %s (choose another with "
				  "--port / --bind)", bind_addr, srv->cfg.port, strerror(e));
	}
	slen = sizeof(ss);
	srv->port = srv->cfg.port;
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port : sin->sin_port);
	return fd;
}

/* The connection budget the open-file limit allows: the soft limit is raised to the hard one
 * first; each connection is one descriptor, and RB_SERVER_FD_RESERVE stay for the rest. */
static unsigned connection_budget(const char *name, unsigned wanted)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return wanted;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			rl.rlim_cur = was;
			rb_warn("http: cannot raise the open-file limit from %llu to %llu: %s",
				(unsigned long long)was, (unsigned long long)rl.rlim_max,
				strerror(errno));
		}
	}
	rlim_t fit = rl.rlim_cur > 2 * RB_SERVER_FD_RESERVE ? rl.rlim_cur - RB_SERVER_FD_RESERVE
							    : rl.rlim_cur / 2;
	if (rl.rlim_cur == RLIM_INFINITY || fit >= wanted)
		return wanted;
	unsigned n = fit > 0 ? (unsigned)fit : 1;
	rb_warn("http: the open-file limit (RLIMIT_NOFILE) is %llu, so this %s takes at most %u "
		"connections at once instead of %u; more are refused (closed) until some end. "
		"Raise it (ulimit -n, LimitNOFILE=) for more streams",
		(unsigned long long)rl.rlim_cur, name, n, wanted);
	return n;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 2;
}

static void server_free(struct rb_server *srv)
{
	if (srv->loop_started) {
		pthread_mutex_lock(&srv->slock);
		srv->loop_exit = true;
		pthread_mutex_unlock(&srv->slock);
		poke_loop(srv);
		pthread_join(srv->loop, NULL);
	}
	if (srv->epfd >= 0)
		close(srv->epfd);
	if (srv->evfd >= 0)
		close(srv->evfd);
	if (srv->infd >= 0)
		close(srv->infd);
	free(srv->slots);
	free(srv->gens);
	free(srv->free_slots);
	free(srv->heap);
	free(srv->watches);
	pthread_cond_destroy(&srv->scond);
	pthread_mutex_destroy(&srv->slock);
	free(srv);
}

int rb_server_open(const struct rb_server_config *cfg, struct rb_server **out,
		    struct rb_err *err)
{
	struct rb_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	srv->cfg = *cfg;
	if (!srv->cfg.name)
		srv->cfg.name = "server";
	if (!srv->cfg.host_hint)
		srv->cfg.host_hint = "use its address, or add the name to --allowed-hosts";
	if (!srv->cfg.origin_hint)
		srv->cfg.origin_hint = "add it to --allowed-origins";
	if (!srv->cfg.allow_methods)
		srv->cfg.allow_methods = "GET, HEAD, OPTIONS";
	if (!srv->cfg.allow_headers)
		srv->cfg.allow_headers = "Authorization, Content-Type";
	if (!srv->cfg.timeout_s)
		srv->cfg.timeout_s = 60;
	if (!srv->cfg.header_timeout_s)
		srv->cfg.header_timeout_s = srv->cfg.timeout_s;
	unsigned threads = srv->cfg.threads ? srv->cfg.threads : default_threads();
	if (threads > RB_SERVER_MAX_THREADS)
		threads = RB_SERVER_MAX_THREADS;
	srv->max_connections = connection_budget(
		srv->cfg.name, srv->cfg.max_connections ? srv->cfg.max_connections
							: RB_SERVER_MAX_CONNECTIONS);
	unsigned per_ip = srv->cfg.per_ip ? srv->cfg.per_ip : RB_SERVER_PER_IP;
	srv->bind_any = rb_address_is_any(srv->cfg.bind);
	srv->bind_loopback = rb_address_is_loopback(srv->cfg.bind);
	pthread_mutex_init(&srv->slock, NULL);
	pthread_cond_init(&srv->scond, NULL);
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	srv->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (srv->epfd < 0 || srv->evfd < 0 || srv->infd < 0) {
		int e = errno;
		server_free(srv);
		return rb_err_set(err, RB_EIO, "cannot set up the stream events (epoll, eventfd, "
				  "inotify): %s", strerror(e));
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_EVENTFD };
	struct epoll_event iev = { .events = EPOLLIN, .data.u64 = TAG_INOTIFY };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->evfd, &ev) != 0 ||
	    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->infd, &iev) != 0 ||
	    pthread_create(&srv->loop, NULL, loop_main, srv) != 0) {
		int e = errno;
		server_free(srv);
		return rb_err_set(err, RB_EIO, "cannot start the stream thread: %s", strerror(e));
	}
	srv->loop_started = true;
	bool ipv6 = false;
	int fd = open_listener(srv, &ipv6, err);
	if (fd < 0) {
		server_free(srv);
		return fd;
	}
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
				       MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				       MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				       MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				       MHD_OPTION_THREAD_POOL_SIZE, threads,
				       MHD_OPTION_CONNECTION_LIMIT, srv->max_connections,
				       MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
				       MHD_OPTION_CONNECTION_TIMEOUT, srv->cfg.header_timeout_s,
				       MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				       srv->cfg.conn_memory ? srv->cfg.conn_memory : (size_t)32768,
				       MHD_OPTION_END);
	if (!srv->daemon) {
		close(fd);
		server_free(srv);
		return rb_err_set(err, RB_EIO, "cannot start the HTTP server on %s port %u",
				  cfg->bind, cfg->port);
	}
	*out = srv;
	return 0;
}

uint16_t rb_server_port(const struct rb_server *srv)
{
	return srv->port;
}

unsigned rb_server_max_connections(const struct rb_server *srv)
{
	return srv->max_connections;
}

/* Wait (slock held) until *count is 0 or max_ms passed. */
static void wait_zero(struct rb_server *srv, unsigned long *count, unsigned max_ms)
{
	struct timespec ts = rb_time_after_ms(CLOCK_REALTIME, max_ms);
	while (*count && pthread_cond_timedwait(&srv->scond, &srv->slock, &ts) != ETIMEDOUT)
		;
}

void rb_server_close(struct rb_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->slock);
	/* Streams that end by themselves (their producer was stopped first) send their last
	 * events; then every stream is told to end, and a suspended one resumed to hear it:
	 * libmicrohttpd cannot stop while a connection is suspended. */
	wait_zero(srv, &srv->ndraining, srv->cfg.drain_ms);
	atomic_store(&srv->closing, true);
	for (uint32_t i = 0; i < srv->nslots; i++)
		if (srv->slots[i])
			rb_stream_wake(srv->slots[i]);
	wait_zero(srv, &srv->nstreams, CLOSE_WAIT_MS);
	pthread_mutex_unlock(&srv->slock);
	MHD_stop_daemon(srv->daemon);
	server_free(srv);
}
