/* Placeholder until the worker spawn issue (6) lands: the process registry routes. */
#include "routes.h"

enum MHD_Result rb_route_workers_list(struct rb_request *req)
{
	return rb_reply_errf(req, RB_EUNAVAIL, "the worker process registry is not implemented yet");
}

enum MHD_Result rb_route_worker_logs(struct rb_request *req)
{
	return rb_reply_errf(req, RB_EUNAVAIL, "worker logs are not implemented yet");
}

enum MHD_Result rb_route_heartbeats(struct rb_request *req)
{
	return rb_reply_errf(req, RB_EUNAVAIL, "heartbeats are not implemented yet");
}
