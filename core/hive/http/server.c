/*
 * server.c - libmicrohttpd wiring: request bodies (size-limited), routing, auth, JSON replies,
 * and the guards every request passes before a route sees it (in this order):
 *
 *   400  a request with two Content-Length headers, Content-Length beside Transfer-Encoding,
 *        or two Host headers (request smuggling)
 *   403  a Host header that is not one of this hive's names (DNS rebinding: a web page whose
 *        name was re-pointed at this address must not be answered)
 *   403  an Origin header (a browser) that is not in --allowed-origins (none by default)
 *   404/405 unknown route or method (OPTIONS answers CORS preflights of allowed origins: 204)
 *   401  no or wrong bearer token, when one is configured (every route but /health)
 *   413  a body over the limit
 *   415  a body that is not declared `Content-Type: application/json` (a browser can send
 *        text/plain or a form to any address without asking first)
 *
 * Connections: at most CONNECTION_LIMIT, at most RBEE_HTTP_MAX_PER_IP from one client address;
 * a connection that has not sent its request headers within RBEE_HTTP_HEADER_TIMEOUT_S is
 * closed, and one idle (or stalled in its body) for RBEE_HTTP_TIMEOUT_S. Streams are exempt.
 */
#include "server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <poll.h>
#include <strings.h>
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
#include "rb_http_guard.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_mhd_headers.h"

struct rb_server {
	struct MHD_Daemon *daemon;
	const struct rb_server_routes *routes;
	unsigned header_timeout_s; /* until a request's headers are in, and between requests */
	unsigned timeout_s;        /* once they are (a body that stalls) */
	bool bind_any;             /* bound to 0.0.0.0 or :: */
	bool bind_loopback;        /* bound to a loopback address */
};

/* Seconds a connection may sit without sending or receiving a byte once its request headers
 * are in (a stalled body): RBEE_HTTP_TIMEOUT_S, 1..86400, default 60. Before that (slowloris,
 * idle keep-alive connections): RBEE_HTTP_HEADER_TIMEOUT_S, default 10 or RBEE_HTTP_TIMEOUT_S
 * when that is lower. Streams are exempt (rb_reply_stream). */
#define HTTP_TIMEOUT_DEFAULT_S 60u
#define HTTP_HEADER_TIMEOUT_DEFAULT_S 10u
/* Connections at once, and from one client address (RBEE_HTTP_MAX_PER_IP), so one client
 * cannot take every slot: each connection is a thread. */
#define CONNECTION_LIMIT 1000u
#define PER_IP_DEFAULT 128u

/* Per-request state kept by MHD between the calls of one request. */
struct conn_state {
	struct rb_buf body;
	bool too_big;
	bool answered; /* a reply was queued before the body was read (413): ignore the rest */
	size_t drained; /* bytes of an oversized chunked body read and dropped */
	bool has_body;  /* a body was announced (Content-Length > 0 or Transfer-Encoding) */
};

/* An oversized body of unknown length (chunked) is read and dropped up to this many times the
 * limit, so an ordinary client gets its 413; past that the connection is closed (MHD cannot
 * answer in the middle of a body, and a hostile client need never end it). */
#define DRAIN_FACTOR 8


static bool origin_allowed(const struct rb_hive *hive, const char *origin)
{
	return rb_list_has(hive->cfg.allowed_origins, origin, strlen(origin));
}

/* Every answer: no caching, and for a browser origin that is allowed, the CORS headers that
 * let its page read the answer. */
static enum MHD_Result queue(struct rb_hive *hive, struct MHD_Connection *conn, unsigned status,
			     struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Cache-Control", "no-store");
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if (origin && origin_allowed(hive, origin)) {
		MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
		MHD_add_response_header(r, "Vary", "Origin");
	}
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
	return queue(req->hive, req->conn, 200, r);
}

enum MHD_Result rb_reply_text(struct rb_request *req, unsigned status, const char *content_type,
			      const char *text)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (r)
		MHD_add_response_header(r, "Content-Type", content_type);
	return queue(req->hive, req->conn, status, r);
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

/* {"error": msg, "code": slug} with an explicit status (for the guards' 415, which has no
 * rb_err code). */
static enum MHD_Result reply_status(struct rb_hive *hive, struct MHD_Connection *conn,
				    unsigned status, const char *slug, const char *msg)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "error", msg);
	rb_json_add_str(o, "code", slug);
	struct MHD_Response *r = json_response(o);
	if (r && status == 401)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"rbee-hive\"");
	return queue(hive, conn, status, r);
}

static enum MHD_Result reply_error(struct rb_hive *hive, struct MHD_Connection *conn, int code,
				   const char *msg)
{
	return reply_status(hive, conn, (unsigned)rb_errc_http_status(code), rb_errc_slug(code), msg);
}

enum MHD_Result rb_reply_json(struct rb_request *req, unsigned status, struct json_object *obj)
{
	return queue(req->hive, req->conn, status, json_response(obj));
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
	return queue(req->hive, req->conn, status, r);
}

enum MHD_Result rb_reply_err(struct rb_request *req, const struct rb_err *err)
{
	return reply_error(req->hive, req->conn, err->code ? err->code : RB_EINTERNAL,
			   err->msg[0] ? err->msg : "internal error");
}

enum MHD_Result rb_reply_errf(struct rb_request *req, int code, const char *fmt, ...)
{
	char msg[RB_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply_error(req->hive, req->conn, code, msg);
}

const char *rb_request_header(struct rb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int rb_request_socket(struct rb_request *req)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

bool rb_socket_gone(int sock)
{
	if (sock < 0)
		return false;
	struct pollfd p = { .fd = sock, .events = POLLRDHUP };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
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

/* ---- the guards ------------------------------------------------------------------------ */


/* Whether a Host header names this hive (rb_host_allowed's rules). */
static bool host_allowed(struct rb_hive *hive, const char *header)
{
	const struct rb_server *srv = hive->server;
	struct rb_host_policy p = { .bind = hive->cfg.bind, .bind_any = srv->bind_any,
				    .bind_loopback = srv->bind_loopback,
				    .hostname = hive->hostname,
				    .allowed_hosts = hive->cfg.allowed_hosts };
	return rb_host_allowed(&p, header);
}

/* The refusals that come before routing (see the top of this file). */
static enum MHD_Result guard_failure(struct rb_hive *hive, struct MHD_Connection *conn,
				     bool *refused)
{
	char msg[512];
	*refused = true;
	const char *why = rb_mhd_framing_failure(conn);
	if (why)
		return reply_status(hive, conn, 400, "invalid_request", why);
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	if (host && !host_allowed(hive, host)) {
		snprintf(msg, sizeof(msg),
			 "Host '%.200s' is not a name of this hive: use its address, or add the name "
			 "to --allowed-hosts (RBEE_ALLOWED_HOSTS)", host);
		return reply_status(hive, conn, 403, "forbidden", msg);
	}
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if (origin && !origin_allowed(hive, origin)) {
		snprintf(msg, sizeof(msg),
			 "requests from the web origin '%.200s' are not allowed: add it to "
			 "--allowed-origins (RBEE_ALLOWED_ORIGINS) if that page may drive this hive",
			 origin);
		return reply_status(hive, conn, 403, "forbidden", msg);
	}
	*refused = false;
	return MHD_YES;
}

/* OPTIONS: a CORS preflight. Allowed origins get the methods and headers the hive takes. */
static enum MHD_Result reply_preflight(struct rb_hive *hive, struct MHD_Connection *conn)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Allow", "GET, HEAD, POST, DELETE, OPTIONS");
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if (origin && origin_allowed(hive, origin)) {
		MHD_add_response_header(r, "Access-Control-Allow-Methods",
					"GET, HEAD, POST, DELETE, OPTIONS");
		MHD_add_response_header(r, "Access-Control-Allow-Headers",
					"Authorization, Content-Type, Last-Event-ID");
		MHD_add_response_header(r, "Access-Control-Max-Age", "600");
	}
	return queue(hive, conn, 204, r);
}

static enum MHD_Result dispatch(struct rb_hive *hive, struct MHD_Connection *conn, const char *url,
				const char *method, struct conn_state *st)
{
	bool refused;
	enum MHD_Result gr = guard_failure(hive, conn, &refused);
	if (refused)
		return gr;
	char store[1024];
	struct rb_request req = { .hive = hive, .conn = conn, .method = method, .url = url,
				  .body = st->body.data, .body_len = st->body.len };
	bool path_found = false;
	for (const struct rb_route *r = hive->server->routes->table; r->method; r++) {
		const char *params[RB_ROUTE_MAX_PARAMS] = { 0 };
		if (!route_match(r->pattern, url, store, sizeof(store), params))
			continue;
		path_found = true;
		if (!strcmp(method, "OPTIONS"))
			return reply_preflight(hive, conn);
		if (strcmp(r->method, method) != 0 &&
		    !(strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0))
			continue;
		const char *why = r->needs_token ? auth_failure(hive, conn) : NULL;
		if (why)
			return reply_error(hive, conn, RB_EUNAUTH, why);
		if (st->too_big) {
			char msg[128];
			snprintf(msg, sizeof(msg), "request body larger than %zu bytes", hive->cfg.max_body);
			return reply_error(hive, conn, RB_ETOOBIG, msg);
		}
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
		if ((st->has_body || st->body.len) && !rb_is_json_type(ct)) {
			char msg[384];
			snprintf(msg, sizeof(msg),
				 "a request body must be sent as 'Content-Type: application/json', not "
				 "'%.200s'", ct ? ct : "(none)");
			return reply_status(hive, conn, 415, "unsupported_media_type", msg);
		}
		memcpy(req.params, params, sizeof(params));
		return r->handler(&req);
	}
	if (path_found) {
		char msg[256];
		snprintf(msg, sizeof(msg), "method %s not allowed on '%s'", method, url);
		return reply_error(hive, conn, RB_EMETHOD, msg);
	}
	char msg[512];
	snprintf(msg, sizeof(msg), "no route '%s'", url);
	return reply_error(hive, conn, RB_ENOTFOUND, msg);
}

/* What the first call of a request decides from its headers alone: answer now (before any
 * body is read, after which MHD closes the connection) when a guard refuses, or the body is
 * declared too big or not JSON. */
static bool answer_before_body(struct rb_hive *hive, struct MHD_Connection *conn,
			       struct conn_state *st)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
	unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
	st->has_body = declared > 0 || te;
	if (declared > hive->cfg.max_body)
		st->too_big = true;
	if (st->too_big || rb_mhd_framing_failure(conn))
		return true;
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if ((host && !host_allowed(hive, host)) || (origin && !origin_allowed(hive, origin)))
		return true;
	return st->has_body &&
	       !rb_is_json_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"));
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
		/* The headers are in: the shorter timeout for them no longer applies. */
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
					  hive->server->timeout_s);
		/* Refuse before reading the body: the answer goes out at once and MHD closes the
		 * connection instead of reading what follows. */
		if (answer_before_body(hive, conn, st)) {
			st->answered = true;
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
	struct rb_hive *hive = cls;
	struct conn_state *st = *con_cls;
	/* Waiting for the next request on a kept-alive connection: the header timeout again. */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && hive->server)
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
					  hive->server->header_timeout_s);
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

int rb_server_start(struct rb_hive *hive, const struct rb_server_routes *routes,
		    struct rb_err *err)
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
	srv->routes = routes;
	srv->timeout_s = rb_env_uint("RBEE_HTTP_TIMEOUT_S", 1, 86400, HTTP_TIMEOUT_DEFAULT_S);
	srv->header_timeout_s = rb_env_uint("RBEE_HTTP_HEADER_TIMEOUT_S", 1, 86400,
					 srv->timeout_s < HTTP_HEADER_TIMEOUT_DEFAULT_S
						 ? srv->timeout_s : HTTP_HEADER_TIMEOUT_DEFAULT_S);
	unsigned per_ip = rb_env_uint("RBEE_HTTP_MAX_PER_IP", 1, CONNECTION_LIMIT, PER_IP_DEFAULT);
	srv->bind_any = rb_address_is_any(hive->cfg.bind);
	srv->bind_loopback = rb_address_is_loopback(hive->cfg.bind);
	hive->server = srv; /* the guards read it from the first request on */
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, hive,
				       MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				       MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				       MHD_OPTION_NOTIFY_COMPLETED, on_completed, hive,
				       MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
				       MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
				       MHD_OPTION_CONNECTION_TIMEOUT, srv->header_timeout_s,
				       MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
				       MHD_OPTION_END);
	if (!srv->daemon) {
		close(fd);
		free(srv);
		hive->server = NULL;
		return rb_err_set(err, RB_EIO, "cannot start the HTTP server on %s port %u",
				  hive->cfg.bind, hive->cfg.port);
	}
	return 0;
}

void rb_server_stop(struct rb_hive *hive)
{
	if (!hive->server)
		return;
	if (hive->server->routes->drain)
		hive->server->routes->drain(2000);
	MHD_stop_daemon(hive->server->daemon);
	free(hive->server);
	hive->server = NULL;
}
