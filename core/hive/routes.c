/*
 * routes.c - the hive's HTTP routes (SPEC section 3), one row each.
 * needs_token: the bearer token is required when one is configured (mutations only; reads are
 * open so dashboards and health checks need no secret).
 */
#include "routes.h"

const struct rb_route rb_routes[] = {
	{ "GET", "/health", false, rb_route_health },
	{ "GET", "/v1/info", false, rb_route_info },
	{ "GET", "/v1/capabilities", false, rb_route_capabilities },
	{ "GET", "/capabilities", false, rb_route_capabilities },
	{ "GET", "/v1/backends", false, rb_route_backends },
	{ "POST", "/v1/jobs", true, rb_route_jobs_submit },
	{ "GET", "/v1/jobs", false, rb_route_jobs_list },
	{ "GET", "/v1/jobs/*/stream", false, rb_route_job_stream },
	{ "DELETE", "/v1/jobs/*", true, rb_route_job_cancel },
	{ "GET", "/v1/workers", false, rb_route_workers_list },
	{ "GET", "/v1/workers/*/logs", false, rb_route_worker_logs },
	{ "GET", "/v1/heartbeats/stream", false, rb_route_heartbeats },
	{ "POST", "/v1/shutdown", true, rb_route_shutdown },
	{ NULL, NULL, false, NULL },
};
