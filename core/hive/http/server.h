/*
 * server.h - the hive's HTTP server: routing, bodies, auth, JSON replies.
 *
 * libmicrohttpd runs one thread per connection, so a route handler may block (an SSE stream
 * waits on its job's condition variable inside the response callback). Every route is a row
 * of the table the server is started with (the hive's is in routes.c): method, path pattern
 * ('*' matches one segment and is captured in order), whether it needs the bearer token when
 * one is configured, and the handler. Before any route runs,
 * server.c refuses ambiguous framing, foreign Host and Origin headers, and bodies that are not
 * JSON (see the top of server.c).
 */
#ifndef RB_SERVER_H
#define RB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "rb_err.h"

struct rb_hive;

#define RB_ROUTE_MAX_PARAMS 3

struct rb_request {
	struct rb_hive *hive;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;                          /* path only */
	const char *params[RB_ROUTE_MAX_PARAMS];  /* the '*' segments, URL-decoded */
	const char *body;                         /* NUL-terminated */
	size_t body_len;
};

typedef enum MHD_Result (*rb_route_fn)(struct rb_request *req);

struct rb_route {
	const char *method;  /* "GET", "POST", "DELETE" */
	const char *pattern; /* "/v1/jobs/ * /stream" without spaces */
	bool needs_token;
	rb_route_fn handler;
};

/* What the server serves, handed to it by whoever starts it (the hive's: rb_hive_routes in
 * routes.h, wired in main.c), so this layer calls no route by name. */
struct rb_server_routes {
	const struct rb_route *table; /* terminated by a NULL method */
	/* Called by rb_server_stop before it closes the connections: wait up to max_ms for the
	 * streams still sending their last events. May be NULL. */
	void (*drain)(int max_ms);
};

/* Start listening on cfg.bind:cfg.port (port 0 = any; the bound port is stored back in
 * cfg.port), serving `routes` (kept by reference: it must outlive the server). */
int rb_server_start(struct rb_hive *hive, const struct rb_server_routes *routes,
		    struct rb_err *err);
/* Stop serving. Streams still sending their last events get up to 2 s to finish (routes->drain;
 * for job streams call rb_jobs_shutdown first, which gives every job its terminal event); other
 * connections close. */
void rb_server_stop(struct rb_hive *hive);

/* Replies. Each queues a response and returns MHD's result. */
enum MHD_Result rb_reply_json(struct rb_request *req, unsigned status, struct json_object *obj); /* takes obj */
enum MHD_Result rb_reply_text(struct rb_request *req, unsigned status, const char *content_type,
			      const char *text);
/* `len` bytes of the open file `fd` from `offset`, read as they are sent (nothing is buffered
 * whole, so a client that does not read costs no memory). Takes fd, also on failure. */
enum MHD_Result rb_reply_fd(struct rb_request *req, unsigned status, const char *content_type,
			    int fd, uint64_t offset, uint64_t len);
/* {"error": msg, "code": slug} with the status of the error code. */
enum MHD_Result rb_reply_err(struct rb_request *req, const struct rb_err *err);
enum MHD_Result rb_reply_errf(struct rb_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Largest piece a stream reader is asked for at once. */
#define RB_STREAM_CHUNK 16384
/* Answer 200 text/event-stream produced by `reader` (MHD's callback contract: it may block;
 * MHD_CONTENT_READER_END_OF_STREAM ends it). Its connection is exempt from the idle timeouts
 * (RBEE_HTTP_HEADER_TIMEOUT_S, RBEE_HTTP_TIMEOUT_S) that end connections whose client stalls
 * while sending a request or sits idle between requests; a reader therefore has to notice a
 * client that left itself (rb_request_socket_gone) while it waits for something to send.
 * `free_cls(cls)` runs when the stream ends, or at once if it cannot be created. */
enum MHD_Result rb_reply_stream(struct rb_request *req, MHD_ContentReaderCallback reader, void *cls,
				MHD_ContentReaderFreeCallback free_cls);

const char *rb_request_header(struct rb_request *req, const char *name);
/* The connection's socket (-1 if unknown), and whether its peer hung up or the server shut it
 * down (a stopping server does): what a waiting stream looks at between its waits. */
int rb_request_socket(struct rb_request *req);
bool rb_socket_gone(int sock);
const char *rb_request_query(struct rb_request *req, const char *name);

#endif
