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
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rb_json.h"
#include "rb_log.h"

#define JSON_TYPE "application/json"
#define CONNECTION_TIMEOUT_S 30
#define ALLOWED "GET, HEAD"
#define WORKERS_PREFIX "/workers/"

struct cat_server {
	struct MHD_Daemon *daemon;
	pthread_rwlock_t lock;
	struct cat_store *store;           /* guarded by lock */
	struct MHD_Response *health;       /* fixed answers, built once */
	struct MHD_Response *worker_404;
	uint16_t port;
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

/* {"error": msg, "code": slug} with `status`; built per request (errors are rare). */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *slug,
				   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *slug,
				   const char *fmt, ...)
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

static enum MHD_Result reply_no_route(struct MHD_Connection *c, const char *method,
				      const char *url)
{
	return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found",
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
		ret = MHD_queue_response(c, MHD_HTTP_OK, s->workers);
	else if (i < 0)
		ret = MHD_queue_response(c, MHD_HTTP_NOT_FOUND, srv->worker_404);
	else if (route == R_UNDER)
		ret = reply_no_route(c, method, url);
	else if (route == R_ENTRY)
		ret = MHD_queue_response(c, MHD_HTTP_OK, s->entries[i]);
	else
		ret = MHD_queue_response(c, s->dir.items[i].pkgbuild_path ? MHD_HTTP_OK : MHD_HTTP_FOUND,
					 s->pkgbuilds[i]);
	pthread_rwlock_unlock(&srv->lock);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	struct cat_server *srv = cls;
	const char *id = NULL;
	size_t len = 0;
	enum route route = parse_route(url, &id, &len);
	if (route == R_NONE)
		return reply_no_route(c, method, url);
	if (route != R_UNDER && strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
				   "method '%s' is not allowed on '%s' (the catalog is read-only: use GET)",
				   method, url);
	if (route == R_HEALTH)
		return MHD_queue_response(c, MHD_HTTP_OK, srv->health);
	return reply_entry(srv, c, route, id, len, method, url);
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

static struct MHD_Response *health_response(void)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "status", "ok");
	rb_json_add_str(o, "service", "worker-catalog");
	rb_json_add_str(o, "version", RBEE_VERSION);
	struct MHD_Response *r = fixed_json(rb_json_compact(o));
	json_object_put(o);
	return r;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n < 256 ? (unsigned)n : 4;
}

int cat_server_start(struct cat_server **out, const char *bind, uint16_t port,
		     unsigned threads, struct cat_store *store, struct rb_err *err)
{
	struct sockaddr_storage ss;
	bool v6;
	int rc = make_addr(bind, port, &ss, &v6, err);
	if (rc) {
		cat_store_free(store);
		return rc;
	}
	struct cat_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		abort();
	pthread_rwlock_init(&srv->lock, NULL);
	srv->store = store;
	srv->health = health_response();
	srv->worker_404 = fixed_json("{\"error\":\"Worker not found\"}");
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
			 (v6 ? MHD_USE_IPv6 : 0);
	srv->daemon = MHD_start_daemon(
		flags, port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
		threads ? threads : default_threads(), MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
	if (!srv->daemon) {
		cat_server_stop(srv);
		return rb_err_set(err, RB_EIO,
				  "cannot listen on %s port %u (is another process using it? see the "
				  "log line above)",
				  bind, (unsigned)port);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : port;
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
	pthread_rwlock_destroy(&srv->lock);
	free(srv);
}
