/*
 * routes.h - every HTTP route handler of the hive, by the module that implements it.
 * The table that maps methods and paths to them is in routes.c.
 */
#ifndef RB_ROUTES_H
#define RB_ROUTES_H

#include "server.h"

/* The hive's routes, for rb_server_start (main.c). */
extern const struct rb_server_routes rb_hive_routes;

/* routes_info.c: node facts */
enum MHD_Result rb_route_health(struct rb_request *req);
enum MHD_Result rb_route_info(struct rb_request *req);
enum MHD_Result rb_route_capabilities(struct rb_request *req);
enum MHD_Result rb_route_backends(struct rb_request *req);
enum MHD_Result rb_route_shutdown(struct rb_request *req);

/* routes_jobs.c: the job engine (POST /v1/jobs, streams, cancel, list) */
enum MHD_Result rb_route_jobs_submit(struct rb_request *req);
enum MHD_Result rb_route_jobs_list(struct rb_request *req);
enum MHD_Result rb_route_job_stream(struct rb_request *req);
enum MHD_Result rb_route_job_cancel(struct rb_request *req);

/* routes_workers.c: the process registry (worker spawn issue) */
enum MHD_Result rb_route_workers_list(struct rb_request *req);
enum MHD_Result rb_route_worker_logs(struct rb_request *req);
enum MHD_Result rb_route_heartbeats(struct rb_request *req);

#endif
