/*
 * serve.c - rbee-catalog's routes over libmicrohttpd (see serve.h).
 *
 * libmicrohttpd runs a pool of polling threads (epoll where available). Each request takes the
 * store lock for reading just long enough to find and queue its prepared response; a reload
 * takes it for writing to swap the pointer. Responses are reference-counted by libmicrohttpd,
 * so freeing the old store never cuts a transfer short.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rb_http_guard.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_mhd_headers.h"

#define JSON_TYPE "application/json"
#define CONNECTION_LIMIT 1000u
#define ALLOWED "GET, HEAD, OPTIONS"
#define WORKERS_PREFIX "/workers/"

struct cat_server {
	struct MHD_Daemon *daemon;
	pthread_rwlock_t lock;
	struct cat_store *store;           /* guarded by lock */
	struct MHD_Response *health;       /* fixed answers, built once */
	struct MHD_Response *worker_404;
	struct cat_body health_body, worker_404_body;
	uint16_t port;
	char bind[64];
	char hostname[256];
	bool bind_any, bind_loopback;
	char *allowed_origins, *allowed_hosts;
};

/* R_UNDER: below /workers/{id} but not a route; still "Worker not found" for unknown ids, so
 * path tricks in ids ("/workers/..%2F..%2Fetc%2Fpasswd") get the same 404 as any unknown id. */
enum route { R_NONE, R_HEALTH, R_WORKERS, R_ENTRY, R_PKGBUILD, R_UNDER };

static struct MHD_Response *fixed_json(const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	if (!r)
		abort();
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE);
	return r;
}

static void keep_body(struct cat_body *b, const char *text)
{
	b->data = strdup(text);
	if (!b->data)
		abort();
	b->len = strlen(text);
	b->type = JSON_TYPE;
}

/* ---- guards and CORS --------------------------------------------------------------------- */


/* The request's Origin when it is allowed, else NULL. */
static const char *allowed_origin(const struct cat_server *srv, struct MHD_Connection *c)
{
	const char *o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
	return o && rb_list_has(srv->allowed_origins, o, strlen(o)) ? o : NULL;
}

static void add_cors(struct MHD_Response *r, const char *origin)
{
	MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
	MHD_add_response_header(r, "Access-Control-Allow-Credentials", "true");
	MHD_add_response_header(r, "Access-Control-Expose-Headers", "Content-Length");
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
}

/* Queue a prepared (shared) response; an allowed browser origin gets its own copy with the
 * CORS headers, since a shared response cannot carry per-request headers. */
static enum MHD_Result queue_prepared(const struct cat_server *srv, struct MHD_Connection *c,
				      unsigned status, struct MHD_Response *shared,
				      const struct cat_body *body)
{
	const char *origin = allowed_origin(srv, c);
	if (!origin || !body->data)
		return MHD_queue_response(c, status, shared);
	struct MHD_Response *r =
		MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, body->type);
	if (body->location)
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, body->location);
	add_cors(r, origin);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Whether a Host header names this server (rb_host_allowed's rules). */
static bool host_allowed(const struct cat_server *srv, const char *header)
{
	struct rb_host_policy p = { .bind = srv->bind, .bind_any = srv->bind_any,
				    .bind_loopback = srv->bind_loopback, .hostname = srv->hostname,
				    .allowed_hosts = srv->allowed_hosts };
	return rb_host_allowed(&p, header);
}

/* NULL when the request may go on, else why not (with its status in *status). */
static const char *guard_failure(const struct cat_server *srv, struct MHD_Connection *c,
				 unsigned *status, char *msg, size_t len)
{
	*status = MHD_HTTP_BAD_REQUEST;
	const char *why = rb_mhd_framing_failure(c);
	if (why)
		return why;
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (host && !host_allowed(srv, host)) {
		*status = MHD_HTTP_FORBIDDEN;
		snprintf(msg, len, "Host '%.200s' is not a name of this catalog server: use its "
			 "address, or add the name to --allowed-hosts (RBEE_ALLOWED_HOSTS)", host);
		return msg;
	}
	return NULL;
}

/* OPTIONS on a route: a CORS preflight, 204 (with the CORS headers for an allowed origin). */
static enum MHD_Result reply_preflight(const struct cat_server *srv, struct MHD_Connection *c)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, ALLOWED);
	const char *origin = allowed_origin(srv, c);
	if (origin) {
		add_cors(r, origin);
		MHD_add_response_header(r, "Access-Control-Allow-Methods", ALLOWED);
		MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type, Authorization");
		MHD_add_response_header(r, "Access-Control-Max-Age", "600");
	}
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
	MHD_destroy_response(r);
	return ret;
}

/* {"error": msg, "code": slug} with `status`; built per request (errors are rare). */
static enum MHD_Result reply_error(const struct cat_server *srv, struct MHD_Connection *c,
				   unsigned status, const char *slug, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static enum MHD_Result reply_error(const struct cat_server *srv, struct MHD_Connection *c,
				   unsigned status, const char *slug, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "error", msg);
	rb_json_add_str(o, "code", slug);
	struct MHD_Response *r = fixed_json(rb_json_compact(o));
	json_object_put(o);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, ALLOWED);
	const char *origin = allowed_origin(srv, c);
	if (origin)
		add_cors(r, origin);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Which route a path is; for /workers/{id}[/PKGBUILD] the id segment is returned in id/len. */
static enum route parse_route(const char *url, const char **id, size_t *len)
{
	if (!strcmp(url, "/health"))
		return R_HEALTH;
	if (!strcmp(url, "/workers"))
		return R_WORKERS;
	if (strncmp(url, WORKERS_PREFIX, strlen(WORKERS_PREFIX)))
		return R_NONE;
	*id = url + strlen(WORKERS_PREFIX);
	*len = strcspn(*id, "/");
	const char *rest = *id + *len;
	if (*len == 0)
		return R_NONE;
	if (!*rest)
		return R_ENTRY;
	if (!strcmp(rest, "/PKGBUILD"))
		return R_PKGBUILD;
	return R_UNDER;
}

static enum MHD_Result reply_no_route(const struct cat_server *srv, struct MHD_Connection *c,
				      const char *method, const char *url)
{
	return reply_error(srv, c, MHD_HTTP_NOT_FOUND, "not_found",
			   "no route '%s %s' (routes: GET /health, /workers, /workers/{id}, "
			   "/workers/{id}/PKGBUILD)",
			   method, url);
}

/* Queue the prepared answer for an entry route while holding the store. */
static enum MHD_Result reply_entry(struct cat_server *srv, struct MHD_Connection *c,
				   enum route route, const char *id, size_t len, const char *method,
				   const char *url)
{
	pthread_rwlock_rdlock(&srv->lock);
	const struct cat_store *s = srv->store;
	enum MHD_Result ret;
	long i = route == R_WORKERS ? 0 : cat_store_find(s, id, len);
	if (route == R_WORKERS)
		ret = queue_prepared(srv, c, MHD_HTTP_OK, s->workers, &s->workers_body);
	else if (i < 0)
		ret = queue_prepared(srv, c, MHD_HTTP_NOT_FOUND, srv->worker_404,
				     &srv->worker_404_body);
	else if (route == R_UNDER)
		ret = reply_no_route(srv, c, method, url);
	else if (route == R_ENTRY)
		ret = queue_prepared(srv, c, MHD_HTTP_OK, s->entries[i], &s->entry_bodies[i]);
	else
		ret = queue_prepared(srv, c,
				     s->dir.items[i].pkgbuild_path ? MHD_HTTP_OK : MHD_HTTP_FOUND,
				     s->pkgbuilds[i], &s->pkgbuild_bodies[i]);
	pthread_rwlock_unlock(&srv->lock);
	return ret;
}

/* Route a request and queue its answer. */
static enum MHD_Result answer(struct cat_server *srv, struct MHD_Connection *c, const char *url,
			      const char *method)
{
	const char *id = NULL;
	size_t len = 0;
	enum route route = parse_route(url, &id, &len);
	if (route == R_NONE)
		return reply_no_route(srv, c, method, url);
	if (!strcmp(method, MHD_HTTP_METHOD_OPTIONS))
		return reply_preflight(srv, c);
	if (route != R_UNDER && strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_error(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
				   "method '%s' is not allowed on '%s' (the catalog is read-only: use GET)",
				   method, url);
	if (route == R_HEALTH)
		return queue_prepared(srv, c, MHD_HTTP_OK, srv->health, &srv->health_body);
	return reply_entry(srv, c, route, id, len, method, url);
}

/* Whether the request announces a body (no route takes one). */
static bool has_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	return (cl && strcmp(cl, "0") != 0) ||
	       MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* The *state of a request that has its answer; more calls for it only drop what arrives. */
static char answered;

/*
 * libmicrohttpd calls this first with the headers, then (for a request without a body) once
 * more when the request is complete. An answer queued on the first call is an "early" one:
 * libmicrohttpd then does not read the rest of the request and closes the connection after
 * the answer. So only refusals, and requests that announce a body (which no route takes, and
 * which is then never read), are answered at once; a complete request without a body is
 * answered on the second call, and its connection stays open for the next request (HTTP/1.1
 * keep-alive, or HTTP/1.0 with Connection: keep-alive), within the same connection timeout
 * and per-IP limit as before.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	(void)version;
	(void)upload;
	struct cat_server *srv = cls;
	if (*state == &answered) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (!*state) {
		char msg[512];
		unsigned status;
		const char *why = guard_failure(srv, c, &status, msg, sizeof(msg));
		if (why) {
			*state = &answered;
			return reply_error(srv, c, status, status == MHD_HTTP_FORBIDDEN ? "forbidden"
										   : "invalid_request",
					   "%s", why);
		}
		if (has_body(c)) {
			*state = &answered;
			return answer(srv, c, url, method);
		}
		*state = srv;
		return MHD_YES;
	}
	if (*upload_size) { /* a body nobody announced cannot come: drop it all the same */
		*upload_size = 0;
		return MHD_YES;
	}
	*state = &answered;
	return answer(srv, c, url, method);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	rb_warn("http: %s", line);
}

/* bind:port as a socket address; IPv6 when the address has a ':'. */
static int make_addr(const char *bind, uint16_t port, struct sockaddr_storage *ss, bool *v6,
		     struct rb_err *err)
{
	memset(ss, 0, sizeof(*ss));
	*v6 = strchr(bind, ':') != NULL;
	if (*v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, bind, &a->sin6_addr) == 1)
			return 0;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, bind, &a->sin_addr) == 1)
			return 0;
	}
	return rb_err_set(err, RB_EINVAL,
			  "invalid --bind address '%s': use an IPv4 or IPv6 address such as "
			  "127.0.0.1 or ::1",
			  bind);
}

static struct MHD_Response *health_response(struct cat_body *body)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "status", "ok");
	rb_json_add_str(o, "service", "worker-catalog");
	rb_json_add_str(o, "version", RBEE_VERSION);
	struct MHD_Response *r = fixed_json(rb_json_compact(o));
	keep_body(body, rb_json_compact(o));
	json_object_put(o);
	return r;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n < 256 ? (unsigned)n : 4;
}

static bool is_any_address(const struct sockaddr_storage *ss, bool v6)
{
	if (v6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static bool is_loopback(const struct sockaddr_storage *ss, bool v6)
{
	if (v6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
}

int cat_server_start(struct cat_server **out, const struct cat_server_opts *o,
		     struct cat_store *store, struct rb_err *err)
{
	struct sockaddr_storage ss;
	bool v6;
	int rc = make_addr(o->bind, o->port, &ss, &v6, err);
	if (rc) {
		cat_store_free(store);
		return rc;
	}
	struct cat_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		abort();
	pthread_rwlock_init(&srv->lock, NULL);
	srv->store = store;
	srv->health = health_response(&srv->health_body);
	srv->worker_404 = fixed_json("{\"error\":\"Worker not found\"}");
	keep_body(&srv->worker_404_body, "{\"error\":\"Worker not found\"}");
	snprintf(srv->bind, sizeof(srv->bind), "%s", o->bind);
	if (gethostname(srv->hostname, sizeof(srv->hostname) - 1) != 0)
		srv->hostname[0] = '\0';
	srv->bind_any = is_any_address(&ss, v6);
	srv->bind_loopback = is_loopback(&ss, v6);
	srv->allowed_origins = strdup(o->allowed_origins ? o->allowed_origins : "");
	srv->allowed_hosts = strdup(o->allowed_hosts ? o->allowed_hosts : "");
	if (!srv->allowed_origins || !srv->allowed_hosts)
		abort();
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
			 (v6 ? MHD_USE_IPv6 : 0);
	srv->daemon = MHD_start_daemon(
		flags, o->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
		o->threads ? o->threads : default_threads(), MHD_OPTION_CONNECTION_TIMEOUT,
		o->timeout_s, MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip, MHD_OPTION_END);
	if (!srv->daemon) {
		cat_server_stop(srv);
		return rb_err_set(err, RB_EIO,
				  "cannot listen on %s port %u (is another process using it? see the "
				  "log line above)",
				  o->bind, (unsigned)o->port);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : o->port;
	*out = srv;
	return 0;
}

uint16_t cat_server_port(const struct cat_server *srv)
{
	return srv->port;
}

void cat_server_swap(struct cat_server *srv, struct cat_store *store)
{
	pthread_rwlock_wrlock(&srv->lock);
	struct cat_store *old = srv->store;
	srv->store = store;
	pthread_rwlock_unlock(&srv->lock);
	cat_store_free(old);
}

void cat_server_stop(struct cat_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	cat_store_free(srv->store);
	MHD_destroy_response(srv->health);
	MHD_destroy_response(srv->worker_404);
	free(srv->health_body.data);
	free(srv->worker_404_body.data);
	free(srv->allowed_origins);
	free(srv->allowed_hosts);
	pthread_rwlock_destroy(&srv->lock);
	free(srv);
}
