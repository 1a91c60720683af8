/*
 * serve.c - rbee-catalog's routes on the shared server layer (rb_server.h: guards, routing,
 * JSON errors, limits, keep-alive; see serve.h for the API).
 *
 * Each request takes the store lock for reading just long enough to find and queue its
 * prepared response; a reload takes it for writing to swap the pointer. Responses are
 * reference-counted by libmicrohttpd, so freeing the old store never cuts a transfer short.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rb_json.h"
#include "rb_server.h"

#define JSON_TYPE "application/json"
#define ALLOWED "GET, HEAD, OPTIONS"
#define WORKERS_PREFIX "/workers/"

struct cat_server {
	struct rb_server *http;
	pthread_rwlock_t lock;
	struct cat_store *store;           /* guarded by lock */
	struct MHD_Response *health;       /* fixed answers, built once */
	struct MHD_Response *worker_404;
	struct cat_body health_body, worker_404_body;
	char hostname[256];
	char *allowed_origins, *allowed_hosts;
};

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

static enum MHD_Result prepared(struct rb_request *req, unsigned status,
				struct MHD_Response *shared, const struct cat_body *b)
{
	return rb_reply_shared(req, status, shared, b->data, b->len, b->type, b->location);
}

static enum MHD_Result reply_no_route(struct rb_request *req)
{
	char msg[1024];
	snprintf(msg, sizeof(msg),
		 "no route '%s %s' (routes: GET /health, /workers, /workers/{id}, "
		 "/workers/{id}/PKGBUILD)", req->method, req->url);
	return rb_reply_status(req, MHD_HTTP_NOT_FOUND, "not_found", msg);
}

static void method_message(const struct rb_request *req, char *msg, size_t len)
{
	snprintf(msg, len, "method '%s' is not allowed on '%s' (the catalog is read-only: use GET)",
		 req->method, req->url);
}

static enum MHD_Result route_health(struct rb_request *req)
{
	struct cat_server *srv = req->app;
	return prepared(req, MHD_HTTP_OK, srv->health, &srv->health_body);
}

static enum MHD_Result route_workers(struct rb_request *req)
{
	struct cat_server *srv = req->app;
	pthread_rwlock_rdlock(&srv->lock);
	const struct cat_store *s = srv->store;
	enum MHD_Result ret = prepared(req, MHD_HTTP_OK, s->workers, &s->workers_body);
	pthread_rwlock_unlock(&srv->lock);
	return ret;
}

/* GET /workers/{id}[/PKGBUILD], or (pkgbuild < 0) a path below an entry that is no route:
 * still "Worker not found" for an unknown id, so path tricks in ids
 * ("/workers/..%2F..%2Fetc%2Fpasswd") get the same 404 as any unknown id. */
static enum MHD_Result reply_entry(struct rb_request *req, const char *id, size_t len,
				   int pkgbuild)
{
	struct cat_server *srv = req->app;
	pthread_rwlock_rdlock(&srv->lock);
	const struct cat_store *s = srv->store;
	enum MHD_Result ret;
	long i = cat_store_find(s, id, len);
	if (i < 0)
		ret = prepared(req, MHD_HTTP_NOT_FOUND, srv->worker_404, &srv->worker_404_body);
	else if (pkgbuild < 0)
		ret = reply_no_route(req);
	else if (!pkgbuild)
		ret = prepared(req, MHD_HTTP_OK, s->entries[i], &s->entry_bodies[i]);
	else
		ret = prepared(req, s->dir.items[i].pkgbuild_path ? MHD_HTTP_OK : MHD_HTTP_FOUND,
			       s->pkgbuilds[i], &s->pkgbuild_bodies[i]);
	pthread_rwlock_unlock(&srv->lock);
	return ret;
}

static enum MHD_Result route_entry(struct rb_request *req)
{
	return reply_entry(req, req->params[0], strlen(req->params[0]), 0);
}

static enum MHD_Result route_pkgbuild(struct rb_request *req)
{
	return reply_entry(req, req->params[0], strlen(req->params[0]), 1);
}

/* A path no route has: below /workers/{id} it is judged by the id (reply_entry), with any
 * method; elsewhere 404. */
static enum MHD_Result route_none(struct rb_request *req)
{
	const char *url = req->url;
	if (strncmp(url, WORKERS_PREFIX, strlen(WORKERS_PREFIX)))
		return reply_no_route(req);
	const char *id = url + strlen(WORKERS_PREFIX);
	size_t len = strcspn(id, "/");
	if (len == 0)
		return reply_no_route(req);
	if (!strcmp(req->method, MHD_HTTP_METHOD_OPTIONS))
		return rb_reply_preflight(req);
	return reply_entry(req, id, len, -1);
}

static const struct rb_route routes[] = {
	{ "GET", "/health", false, route_health },
	{ "GET", "/workers", false, route_workers },
	{ "GET", "/workers/*", false, route_entry },
	{ "GET", "/workers/*/PKGBUILD", false, route_pkgbuild },
	{ NULL, NULL, false, NULL },
};

/* bind:port as a socket address; IPv6 when the address has a ':'. */
static int check_addr(const char *bind, struct rb_err *err)
{
	struct in6_addr a6;
	struct in_addr a4;
	if (strchr(bind, ':') ? inet_pton(AF_INET6, bind, &a6) == 1
			      : inet_pton(AF_INET, bind, &a4) == 1)
		return 0;
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

int cat_server_start(struct cat_server **out, const struct cat_server_opts *o,
		     struct cat_store *store, struct rb_err *err)
{
	int rc = check_addr(o->bind, err);
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
	if (gethostname(srv->hostname, sizeof(srv->hostname) - 1) != 0)
		srv->hostname[0] = '\0';
	srv->allowed_origins = strdup(o->allowed_origins ? o->allowed_origins : "");
	srv->allowed_hosts = strdup(o->allowed_hosts ? o->allowed_hosts : "");
	if (!srv->allowed_origins || !srv->allowed_hosts)
		abort();
	struct rb_server_config c = {
		.name = "catalog server",
		.bind = o->bind,
		.port = o->port,
		.routes = routes,
		.app = srv,
		.no_route = route_none,
		.method_message = method_message,
		.allowed_origins = srv->allowed_origins,
		.allowed_hosts = srv->allowed_hosts,
		.hostname = srv->hostname,
		.host_hint = "use its address, or add the name to --allowed-hosts "
			     "(RBEE_ALLOWED_HOSTS)",
		.cors_credentials = true,
		.allow_on_405 = true,
		.allow_methods = ALLOWED,
		.allow_headers = "Content-Type, Authorization",
		.max_body = 0, /* no route takes a body */
		.per_ip = o->per_ip,
		.timeout_s = o->timeout_s,
		.header_timeout_s = o->timeout_s,
		.threads = o->threads,
	};
	rc = rb_server_open(&c, &srv->http, err);
	if (rc) {
		cat_server_stop(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

uint16_t cat_server_port(const struct cat_server *srv)
{
	return rb_server_port(srv->http);
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
	if (srv->http)
		rb_server_close(srv->http);
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
