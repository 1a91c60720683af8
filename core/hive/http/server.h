/*
 * server.h - the hive's HTTP server: the shared server layer (rb_server.h: routing, guards,
 * JSON errors, limits, streams) configured from the hive's flags, serving the route table it is
 * started with (the hive's is in routes.c). Routes get the hive as req->app (rb_req_hive).
 */
#ifndef RB_HIVE_SERVER_H
#define RB_HIVE_SERVER_H

#include "rb_server.h"

struct rb_hive;

/* What the server serves, handed to it by whoever starts it (the hive's: rb_hive_routes in
 * routes.h, wired in main.c), so this layer calls no route by name. */
struct rb_server_routes {
	const struct rb_route *table; /* terminated by a NULL method */
};

/* The hive a route runs for. */
static inline struct rb_hive *rb_req_hive(const struct rb_request *req)
{
	return (struct rb_hive *)req->app;
}

/* Start listening on cfg.bind:cfg.port (port 0 = any; the bound port is stored back in
 * cfg.port), serving `routes` (kept by reference: it must outlive the server). Environment:
 * RBEE_HTTP_TIMEOUT_S (1..86400, default 60: a connection idle or stalled in its body once its
 * headers are in), RBEE_HTTP_HEADER_TIMEOUT_S (default 10, or RBEE_HTTP_TIMEOUT_S when lower:
 * until the headers are in, and between requests), RBEE_HTTP_MAX_PER_IP (default 128). */
int rb_server_start(struct rb_hive *hive, const struct rb_server_routes *routes,
		    struct rb_err *err);
/* Stop serving. Job streams (call rb_jobs_shutdown first, which gives every job its terminal
 * event) get up to 2 s to send their last events; the other streams end, connections close. */
void rb_server_stop(struct rb_hive *hive);

#endif
