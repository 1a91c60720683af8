/*
 * routes_info.c - what the node is and has: /health, /v1/info, /v1/capabilities,
 * /v1/backends, and /v1/shutdown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backends.h"
#include "install/install.h"
#include "hive.h"
#include "rb_buf.h"
#include "rb_json.h"
#include "rb_proc.h"
#include "routes.h"

/* Device lists are re-probed (by the refresher thread, never here) when older than this, so
 * free memory stays roughly current; a request answers the last result at once. */
#define DEVICE_MAX_AGE_MS 5000

enum MHD_Result rb_route_health(struct rb_request *req)
{
	return rb_reply_text(req, 200, "text/plain", "ok");
}

enum MHD_Result rb_route_info(struct rb_request *req)
{
	struct rb_hive *h = rb_req_hive(req);
	struct json_object *o = json_object_new_object();
	char started[32];
	struct tm tm;
	gmtime_r(&h->started_at, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rb_json_add_str(o, "hive_id", h->cfg.hive_id);
	rb_json_add_str(o, "version", RBEE_VERSION);
	rb_json_add_str(o, "hostname", h->hostname);
	rb_json_add_str(o, "bind", h->cfg.bind);
	rb_json_add_int(o, "port", h->cfg.port);
	rb_json_add_int(o, "uptime_s", rb_hive_uptime_s(h));
	rb_json_add_str(o, "started_at", started);
	rb_json_add_str(o, "catalog", rb_catalog_source(h));
	rb_json_add_bool(o, "auth_required", h->cfg.token[0] != '\0');
	struct json_object *p = json_object_new_object();
	rb_json_add_str(p, "home", h->paths.home);
	rb_json_add_str(p, "workers", h->paths.workers);
	rb_json_add_str(p, "models", h->paths.models);
	rb_json_add_str(p, "logs", h->paths.logs);
	rb_json_add_str(p, "plugins", h->cfg.plugin_dir);
	json_object_object_add(o, "paths", p);
	return rb_reply_json(req, 200, o);
}

static struct json_object *capabilities_json(struct rb_hive *hive)
{
	struct rb_backend_info *list;
	size_t n = rb_backends_list(hive, &list);
	struct json_object *devs = json_object_new_array();
	long long oldest = 0;
	time_t oldest_at = 0;
	for (size_t i = 0; i < n; i++) {
		if (list[i].probed_ms && (!oldest || list[i].probed_ms < oldest))
			oldest = list[i].probed_ms, oldest_at = list[i].probed_at;
		if (list[i].state != RB_BACKEND_AVAILABLE)
			continue;
		for (size_t d = 0; d < list[i].ndevices; d++)
			json_object_array_add(devs, rb_backend_device_json(&list[i], d));
	}
	rb_backends_list_free(list, n);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "devices", devs);
	/* How current the list is: the oldest probe result in it; "probing" until the first round
	 * after start has landed (the list is empty or partial until then). */
	rb_json_add_bool(o, "probing", !rb_backends_ready(hive));
	rb_backend_probed_json(o, oldest, oldest_at);
	return o;
}

static struct json_object *backends_json(struct rb_hive *hive)
{
	struct rb_backend_info *list;
	size_t n = rb_backends_list(hive, &list);
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, rb_backend_info_json(&list[i]));
	rb_backends_list_free(list, n);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "backends", arr);
	rb_json_add_bool(o, "probing", !rb_backends_ready(hive));
	return o;
}

/*
 * Right after start the first probe round has not landed, and a list now would be empty or
 * partial: the answer waits for the round instead (at most rb_backends_ready_limit_ms, then it
 * says "probing": true). It must not wait on the server thread, which serves other
 * connections too: it is a deferred answer (a stream of one JSON body) whose fill looks again
 * every FIRST_ROUND_POLL_MS until the round is in. Only requests in that window pay this.
 */
#define FIRST_ROUND_POLL_MS 20

struct first_round {
	struct rb_hive *hive;
	long long deadline;
	struct json_object *(*build)(struct rb_hive *hive);
};

static long long first_round_fill(void *cls, struct rb_stream *st, struct rb_buf *out,
				  size_t want, bool *ended)
{
	struct first_round *w = cls;
	(void)st;
	(void)want;
	long long now = rb_now_ms();
	if (!rb_backends_ready(w->hive) && now < w->deadline)
		return now + FIRST_ROUND_POLL_MS;
	struct json_object *o = w->build(w->hive);
	const char *s = rb_json_compact(o);
	rb_utf8_sanitize(s, strlen(s), out);
	json_object_put(o);
	*ended = true;
	return 0;
}

static void first_round_release(void *cls)
{
	free(cls);
}

static const struct rb_stream_ops first_round_ops = {
	.fill = first_round_fill,
	.release = first_round_release,
	.content_type = "application/json",
};

static enum MHD_Result reply_probed(struct rb_request *req,
				    struct json_object *(*build)(struct rb_hive *hive))
{
	struct rb_hive *hive = rb_req_hive(req);
	rb_backends_refresh(hive, DEVICE_MAX_AGE_MS);
	if (rb_backends_ready(hive))
		return rb_reply_json(req, 200, build(hive));
	struct first_round *w = malloc(sizeof(*w));
	if (!w)
		return rb_reply_errf(req, RB_EINTERNAL, "out of memory");
	*w = (struct first_round){ hive, rb_now_ms() + rb_backends_ready_limit_ms(hive), build };
	return rb_reply_stream(req, &first_round_ops, w, NULL);
}

enum MHD_Result rb_route_capabilities(struct rb_request *req)
{
	return reply_probed(req, capabilities_json);
}

enum MHD_Result rb_route_backends(struct rb_request *req)
{
	return reply_probed(req, backends_json);
}

enum MHD_Result rb_route_shutdown(struct rb_request *req)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "status", "shutting_down");
	enum MHD_Result r = rb_reply_json(req, 202, o);
	rb_hive_request_shutdown(rb_req_hive(req));
	return r;
}
