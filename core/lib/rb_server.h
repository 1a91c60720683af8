/*
 * rb_server.h - the one HTTP server layer of rbee-hive and rbee-catalog, on libmicrohttpd.
 *
 * What it does for every request before a route runs (in this order):
 *   400  ambiguous framing: two Content-Length headers, Content-Length beside
 *        Transfer-Encoding, two Host headers (request smuggling)
 *   403  a Host header that is not one of the server's names (DNS rebinding)
 *   403  an Origin header (a browser) not in allowed_origins, when origin_guard is set; without
 *        it such an origin is answered, but without CORS headers (its page cannot read them)
 *   404/405 unknown route or method (OPTIONS answers CORS preflights: 204)
 *   401  no or wrong bearer token, when one is configured and the route needs it
 *   413  a body over max_body
 *   415  a body that is not declared `Content-Type: application/json`
 * A server whose routes take no body (max_body 0) answers a request that announces one at once,
 * without reading it (the connection then closes).
 *
 * Threads: libmicrohttpd's internal epoll threads, a pool of `threads` (default: one per CPU,
 * at most RB_SERVER_MAX_THREADS), plus one stream thread (below). Handlers must not block for
 * long: a request holds its pool thread while its handler runs.
 *
 * Streams (rb_reply_stream) hold no thread: when a stream has nothing to send, its connection
 * is suspended (MHD_suspend_connection) until a producer calls rb_stream_wake, a deadline the
 * stream asked for comes, a watched file changes (inotify), or the client hangs up. The stream
 * thread waits for the last three in one epoll set: every stream's socket (while suspended,
 * libmicrohttpd does not look at it), the inotify descriptor, and a timer heap. A client's FIN
 * (EPOLLRDHUP) does not end its stream: a client may half-close (shutdown(SHUT_WR) after its
 * request) and still read. The stream writes at once instead (an SSE comment), which a client
 * that closed answers with a reset (EPOLLERR/EPOLLHUP): that ends the stream. A deferred
 * answer (no keep-alive) cannot write before it is ready: its client is noticed then. When the
 * inotify queue overflows, every stream watching a file is woken (events were dropped).
 *
 * Limits: at most `max_connections` at once (default RB_SERVER_MAX_CONNECTIONS, cut to what
 * the open-file limit leaves: rb_server_open raises the soft RLIMIT_NOFILE to the hard one and
 * says in the log when connections had to be cut), at most per_ip from one client address.
 * A connection that has not sent its request headers within header_timeout_s is closed, and one
 * idle (or stalled in its body) for timeout_s. Streams are exempt from both.
 */
#ifndef RB_SERVER_H
#define RB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "rb_buf.h"
#include "rb_err.h"

struct rb_server;
struct rb_stream;

#define RB_ROUTE_MAX_PARAMS 3
#define RB_SERVER_MAX_CONNECTIONS 16384u
#define RB_SERVER_MAX_THREADS 16u
/* Descriptors kept free for everything else a daemon opens (files, pipes, plugins). */
#define RB_SERVER_FD_RESERVE 256u

struct rb_request {
	void *app;                                /* the server's rb_server_config.app */
	struct rb_server *server;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;                          /* path only */
	const char *params[RB_ROUTE_MAX_PARAMS];  /* the '*' segments, URL-decoded */
	const char *body;                         /* NUL-terminated */
	size_t body_len;
};

typedef enum MHD_Result (*rb_route_fn)(struct rb_request *req);

struct rb_route {
	const char *method;  /* "GET" (HEAD too), "POST", "DELETE" */
	const char *pattern; /* "/v1/jobs/ * /stream" without spaces: '*' matches one segment */
	bool needs_token;
	rb_route_fn handler;
};

struct rb_server_config {
	const char *name;            /* in messages: "hive", "catalog server" */
	const char *bind;            /* an IPv4 or IPv6 address literal */
	uint16_t port;               /* 0 = any free port (rb_server_port says which) */
	const struct rb_route *routes; /* terminated by a NULL method; kept by reference */
	void *app;                   /* handed to every route as req->app */
	/* Optional: answers a path no route has (default: 404 "no route '<path>'"). */
	rb_route_fn no_route;
	/* Optional: the 405 message for a path whose routes take other methods. */
	void (*method_message)(const struct rb_request *req, char *msg, size_t len);
	const char *token;           /* the bearer token; NULL or "" = none */
	const char *token_missing;   /* the 401 messages (defaults are generic) */
	const char *token_wrong;
	const char *realm;           /* WWW-Authenticate realm */
	const char *allowed_origins; /* rb_list_has list of CORS origins */
	const char *allowed_hosts;   /* extra Host names */
	const char *hostname;        /* this machine's name, "" when unknown */
	const char *host_hint;       /* the end of the 403 Host message */
	const char *origin_hint;     /* the end of the 403 Origin message (origin_guard) */
	bool origin_guard;           /* 403 for an Origin not in the list */
	bool no_store;               /* Cache-Control: no-store on every answer */
	bool cors_credentials;       /* CORS answers also allow credentials, expose Content-Length */
	bool allow_on_405;           /* a 405 carries Allow: allow_methods */
	const char *allow_methods;   /* "GET, HEAD, OPTIONS" */
	const char *allow_headers;   /* preflight Access-Control-Allow-Headers */
	size_t max_body;             /* 0: routes take no body */
	unsigned per_ip;             /* connections from one address (0: RB_SERVER_PER_IP) */
	unsigned timeout_s;          /* idle or stalled connection, once its headers are in */
	unsigned header_timeout_s;   /* until the headers are in, and between requests */
	unsigned threads;            /* the polling pool (0: one per CPU) */
	unsigned max_connections;    /* 0: RB_SERVER_MAX_CONNECTIONS */
	unsigned drain_ms;           /* rb_server_close: how long draining streams may finish */
	/* Bytes of libmicrohttpd memory per connection: request headers, response headers and
	 * the send buffer (0: libmicrohttpd's 32 KiB). About half of it is touched, so it is
	 * most of what an open stream costs. */
	size_t conn_memory;
};

#define RB_SERVER_PER_IP 128u

/* Listen and serve. `cfg` is copied (the strings and routes it points to must outlive the
 * server). On failure nothing is left open. */
int rb_server_open(const struct rb_server_config *cfg, struct rb_server **out,
		    struct rb_err *err);
uint16_t rb_server_port(const struct rb_server *srv);
/* The connection budget in effect (after the open-file limit), for logs and tests. */
unsigned rb_server_max_connections(const struct rb_server *srv);
/* Stop: streams that drain (rb_stream_ops.drains) get up to cfg.drain_ms to end by themselves,
 * then every other stream is ended and the connections close. Frees srv. */
void rb_server_close(struct rb_server *srv);

/* ---- replies: each queues a response and returns libmicrohttpd's result ---- */

enum MHD_Result rb_reply_json(struct rb_request *req, unsigned status, struct json_object *obj); /* takes obj */
enum MHD_Result rb_reply_text(struct rb_request *req, unsigned status, const char *content_type,
			      const char *text);
/* `len` bytes of the open file `fd` from `offset`, read as they are sent. Takes fd. */
enum MHD_Result rb_reply_fd(struct rb_request *req, unsigned status, const char *content_type,
			    int fd, uint64_t offset, uint64_t len);
/* A response built once and shared by many requests (it cannot carry per-request headers: an
 * allowed browser origin gets a copy made from body/len/content_type/location instead). */
enum MHD_Result rb_reply_shared(struct rb_request *req, unsigned status,
				struct MHD_Response *shared, const char *body, size_t len,
				const char *content_type, const char *location);
/* {"error": msg, "code": slug} with the status of the error code. */
enum MHD_Result rb_reply_err(struct rb_request *req, const struct rb_err *err);
enum MHD_Result rb_reply_errf(struct rb_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* {"error": msg, "code": slug} with an explicit status and slug. */
enum MHD_Result rb_reply_status(struct rb_request *req, unsigned status, const char *slug,
				const char *msg);
/* 204 for an OPTIONS request (a CORS preflight). */
enum MHD_Result rb_reply_preflight(struct rb_request *req);

const char *rb_request_header(struct rb_request *req, const char *name);
const char *rb_request_query(struct rb_request *req, const char *name);

/* ---- streams ---- */

/* Largest piece a stream hands over at once. */
#define RB_STREAM_CHUNK 16384

struct rb_stream_ops {
	/* Append to `out` what is ready now, about `want` bytes (what the connection takes at
	 * once: more is held until sent), without blocking (on a pool thread). Set *ended
	 * when the stream is over once `out` is sent. Return when to be asked again even if
	 * nobody wakes the stream (rb_now_ms clock), or 0 for no deadline. */
	long long (*fill)(void *cls, struct rb_stream *st, struct rb_buf *out, size_t want,
			  bool *ended);
	/* The stream is over (ended, client gone, or server stopping): release cls. After this
	 * returns nothing may call rb_stream_wake for it any more. */
	void (*release)(void *cls);
	/* A comment (": keep-alive") goes out after this much silence; 0 = never. */
	int keepalive_ms;
	/* The stream ends by itself once its producer is stopped (job streams after
	 * rb_jobs_shutdown): rb_server_close lets it finish first. */
	bool drains;
	/* The answer's Content-Type; NULL: text/event-stream. Another type makes the stream a
	 * deferred answer: one body that fill writes when it is ready (keepalive_ms 0 then). */
	const char *content_type;
};

/* Answer 200 (by default text/event-stream) produced by ops->fill, starting with `first` (may be NULL).
 * ops->release(cls) runs when the stream ends, or before this returns if it cannot start. */
enum MHD_Result rb_reply_stream(struct rb_request *req, const struct rb_stream_ops *ops,
				void *cls, const char *first);
/* Something is ready for the stream (or may be): ask its fill again. Any thread, any lock
 * that fill does not take. */
void rb_stream_wake(struct rb_stream *st);
/* Wake the stream whenever the file at `path` is written, closed after writing, truncated,
 * moved or deleted (inotify). Calling it again moves the watch (after the file was
 * replaced). From fill only. */
int rb_stream_watch_file(struct rb_stream *st, const char *path, struct rb_err *err);

/* Counters for tests and benchmarks: streams open, suspended now, wakes so far. */
struct rb_server_stats {
	unsigned long streams, suspended, wakes;
};
void rb_server_get_stats(struct rb_server *srv, struct rb_server_stats *out);

#endif
