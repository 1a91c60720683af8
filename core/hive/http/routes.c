/*
 * routes.c - the hive's HTTP routes (SPEC section 3), one row each.
 * needs_token: the bearer token is required when one is configured. Everything but /health
 * needs it: job lists, build output and worker logs can hold paths, hashes and secrets.
 */
#include "routes.h"

static const struct rb_route routes[] = {
	{ "GET", "/health", false, rb_route_health },
	{ "GET", "/v1/info", true, rb_route_info },
	{ "GET", "/v1/capabilities", true, rb_route_capabilities },
	{ "GET", "/capabilities", true, rb_route_capabilities },
	{ "GET", "/v1/backends", true, rb_route_backends },
	{ "POST", "/v1/jobs", true, rb_route_jobs_submit },
	{ "GET", "/v1/jobs", true, rb_route_jobs_list },
	{ "GET", "/v1/jobs/*/stream", true, rb_route_job_stream },
	{ "DELETE", "/v1/jobs/*", true, rb_route_job_cancel },
	{ "GET", "/v1/workers", true, rb_route_workers_list },
	{ "GET", "/v1/workers/*/logs", true, rb_route_worker_logs },
	{ "GET", "/v1/heartbeats/stream", true, rb_route_heartbeats },
	{ "POST", "/v1/shutdown", true, rb_route_shutdown },
	{ NULL, NULL, false, NULL },
};

/* The server knows no route by name: it is handed this table. (Job streams finish their last
 * events before it closes connections: they are streams that drain, see routes_jobs.c.) */
const struct rb_server_routes rb_hive_routes = { routes };
