/*
 * server.c - libmicrohttpd wiring: request bodies (size-limited), routing, auth, JSON replies.
 */
#include "server.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive.h"
#include "rb_buf.h"
#include "rb_json.h"
#include "rb_log.h"
#include "routes.h"

struct rb_server {
	struct MHD_Daemon *daemon;
};

/* Seconds a connection may sit without sending or receiving a byte (slow or stalled clients,
 * idle keep-alive connections): RBEE_HTTP_TIMEOUT_S, 1..86400, default 60. Streams are exempt
 * (rb_reply_stream). */
#define HTTP_TIMEOUT_DEFAULT_S 60u

/* Per-request state kept by MHD between the calls of one request. */
struct conn_state {
	struct rb_buf body;
	bool too_big;
	bool answered; /* a reply was queued before the body was read (413): ignore the rest */
	size_t drained; /* bytes of an oversized chunked body read and dropped */
};

/* An oversized body of unknown length (chunked) is read and dropped up to this many times the
 * limit, so an ordinary client gets its 413; past that the connection is closed (MHD cannot
 * answer in the middle of a body, and a hostile client need never end it). */
#define DRAIN_FACTOR 8

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result rb_reply_stream(struct rb_request *req, MHD_ContentReaderCallback reader, void *cls,
				MHD_ContentReaderFreeCallback free_cls)
{
	struct MHD_Response *r =
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, RB_STREAM_CHUNK, reader, cls, free_cls);
	if (!r) {
		free_cls(cls);
		return rb_reply_errf(req, RB_EINTERNAL, "cannot create the stream response");
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* no proxy buffering */
	/* A stream may be quiet between its keep-alives: only the idle timeout is lifted, the
	 * request itself was complete. */
	MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
	return queue(req->conn, 200, r);
}

enum MHD_Result rb_reply_text(struct rb_request *req, unsigned status, const char *content_type,
			      const char *text)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (r)
		MHD_add_response_header(r, "Content-Type", content_type);
	return queue(req->conn, status, r);
}

enum MHD_Result rb_reply_json(struct rb_request *req, unsigned status, struct json_object *obj)
{
	const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE);
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
	json_object_put(obj);
	if (r)
		MHD_add_response_header(r, "Content-Type", "application/json");
	return queue(req->conn, status, r);
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, int code, const char *msg)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "error", msg);
	rb_json_add_str(o, "code", rb_errc_slug(code));
	const char *s = rb_json_compact(o);
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
	json_object_put(o);
	if (r) {
		MHD_add_response_header(r, "Content-Type", "application/json");
		if (code == RB_EUNAUTH)
			MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"rbee-hive\"");
	}
	return queue(conn, (unsigned)rb_errc_http_status(code), r);
}

enum MHD_Result rb_reply_err(struct rb_request *req, const struct rb_err *err)
{
	return reply_error(req->conn, err->code ? err->code : RB_EINTERNAL,
			   err->msg[0] ? err->msg : "internal error");
}

enum MHD_Result rb_reply_errf(struct rb_request *req, int code, const char *fmt, ...)
{
	char msg[RB_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply_error(req->conn, code, msg);
}

const char *rb_request_header(struct rb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *rb_request_query(struct rb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

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
static const char *auth_failure(struct rb_hive *hive, struct MHD_Connection *conn)
{
	if (!hive->cfg.token[0])
		return NULL;
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return "this hive requires a bearer token: send 'Authorization: Bearer <token>' "
		       "(rbee reads RBEE_API_TOKEN)";
	if (!token_equal(h + 7, hive->cfg.token))
		return "the bearer token was refused: it is not this hive's token (check "
		       "RBEE_API_TOKEN against the hive's --token-file)";
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

static enum MHD_Result dispatch(struct rb_hive *hive, struct MHD_Connection *conn, const char *url,
				const char *method, struct conn_state *st)
{
	char store[1024];
	struct rb_request req = { .hive = hive, .conn = conn, .method = method, .url = url,
				  .body = st->body.data, .body_len = st->body.len };
	bool path_found = false;
	for (const struct rb_route *r = rb_routes; r->method; r++) {
		const char *params[RB_ROUTE_MAX_PARAMS] = { 0 };
		if (!route_match(r->pattern, url, store, sizeof(store), params))
			continue;
		path_found = true;
		if (strcmp(r->method, method) != 0 &&
		    !(strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0))
			continue;
		const char *why = r->needs_token ? auth_failure(hive, conn) : NULL;
		if (why)
			return reply_error(conn, RB_EUNAUTH, why);
		if (st->too_big) {
			char msg[128];
			snprintf(msg, sizeof(msg), "request body larger than %zu bytes", hive->cfg.max_body);
			return reply_error(conn, RB_ETOOBIG, msg);
		}
		memcpy(req.params, params, sizeof(params));
		return r->handler(&req);
	}
	if (path_found) {
		char msg[256];
		snprintf(msg, sizeof(msg), "method %s not allowed on '%s'", method, url);
		return reply_error(conn, RB_EMETHOD, msg);
	}
	char msg[512];
	snprintf(msg, sizeof(msg), "no route '%s'", url);
	return reply_error(conn, RB_ENOTFOUND, msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	(void)version;
	struct rb_hive *hive = cls;
	struct conn_state *st = *con_cls;
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		rb_buf_init(&st->body);
		*con_cls = st;
		/* Refuse a declared oversized body before reading it: the answer goes out at once
		 * and MHD closes the connection instead of reading the body. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > hive->cfg.max_body) {
			st->too_big = st->answered = true;
			return dispatch(hive, conn, url, method, st);
		}
		return MHD_YES;
	}
	if (st->answered) {
		*data_size = 0;
		return MHD_YES;
	}
	if (*data_size) {
		if (!st->too_big && st->body.len + *data_size <= hive->cfg.max_body) {
			rb_buf_add(&st->body, data, *data_size);
		} else {
			st->too_big = true; /* answer 413 at the end */
			rb_buf_release(&st->body);
			st->drained += *data_size;
			if (st->drained / DRAIN_FACTOR > hive->cfg.max_body) {
				rb_warn("http: closing a connection that sent a %s %s body past %zu "
					"bytes (the limit is %zu)", method, url, st->drained,
					hive->cfg.max_body);
				return MHD_NO;
			}
		}
		*data_size = 0;
		return MHD_YES;
	}
	return dispatch(hive, conn, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct conn_state *st = *con_cls;
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

static unsigned http_timeout_s(void)
{
	const char *v = getenv("RBEE_HTTP_TIMEOUT_S");
	if (!v || !*v)
		return HTTP_TIMEOUT_DEFAULT_S;
	char *end;
	unsigned long x = strtoul(v, &end, 10);
	if (*end || x < 1 || x > 86400 || *v == '-') {
		rb_warn("ignoring RBEE_HTTP_TIMEOUT_S='%s': use a number of seconds from 1 to 86400",
			v);
		return HTTP_TIMEOUT_DEFAULT_S;
	}
	return (unsigned)x;
}

/* Bind and listen ourselves rather than through MHD, so the port (with --port 0) is known
 * before any server thread runs, and a failure says exactly why (EADDRINUSE, EACCES...). */
static int open_listener(struct rb_config *cfg, bool *ipv6, struct rb_err *err)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	if (inet_pton(AF_INET, cfg->bind, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(cfg->port);
		slen = sizeof(*sin);
		*ipv6 = false;
	} else if (inet_pton(AF_INET6, cfg->bind, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(cfg->port);
		slen = sizeof(*sin6);
		*ipv6 = true;
	} else {
		return rb_err_set(err, RB_EINVAL,
				  "invalid --bind address '%s': give an IPv4 or IPv6 address", cfg->bind);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rb_err_set(err, RB_EIO, "cannot create a socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (*ipv6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, 128) != 0) {
		int e = errno;
		close(fd);
		return rb_err_set(err, RB_EIO, "cannot listen on %s port %u: %s (choose another with "
				  "--port / --bind)", cfg->bind, cfg->port, strerror(e));
	}
	slen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
		cfg->port = ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port : sin->sin_port);
	return fd;
}

int rb_server_start(struct rb_hive *hive, struct rb_err *err)
{
	bool ipv6 = false;
	int fd = open_listener(&hive->cfg, &ipv6, err);
	if (fd < 0)
		return fd;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ERROR_LOG | MHD_USE_POLL | (ipv6 ? MHD_USE_IPv6 : 0);
	struct rb_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		close(fd);
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	}
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, hive,
				       MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				       MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				       MHD_OPTION_NOTIFY_COMPLETED, on_completed, hive,
				       MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
				       MHD_OPTION_CONNECTION_TIMEOUT, http_timeout_s(),
				       MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
				       MHD_OPTION_END);
	if (!srv->daemon) {
		close(fd);
		free(srv);
		return rb_err_set(err, RB_EIO, "cannot start the HTTP server on %s port %u",
				  hive->cfg.bind, hive->cfg.port);
	}
	hive->server = srv;
	return 0;
}

void rb_server_stop(struct rb_hive *hive)
{
	if (!hive->server)
		return;
	rb_route_job_streams_drain(2000);
	MHD_stop_daemon(hive->server->daemon);
	free(hive->server);
	hive->server = NULL;
}
