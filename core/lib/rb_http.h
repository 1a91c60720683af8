/*
 * rb_http.h - HTTP client requests (libcurl) for the hive, the CLI and the catalog.
 *
 * Bodies are collected in memory up to a limit; large transfers use rb_download.h instead.
 * Transport errors become RB_EUNAVAIL with curl's words and the URL ("cannot reach
 * 'http://x/workers': Couldn't connect to server"); HTTP statuses are returned, not judged.
 * Call rb_http_global_init() once from main() before starting threads.
 *
 * rb_http_stream is the same request for a response that goes on (an SSE stream): the body is
 * handed over as it arrives instead of being collected, and the connection counts as dead when
 * no byte (not even a keep-alive comment) came for `silence_s` seconds. The CLI's job and log
 * followers are built on it (with rb_sse's parser); they reconnect themselves.
 */
#ifndef RB_HTTP_H
#define RB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "rb_buf.h"
#include "rb_err.h"

struct rb_http_resp {
	long status;               /* HTTP status, 0 when no response */
	struct rb_buf body;        /* response body */
	struct rb_buf content_type;
};

void rb_http_global_init(void);
void rb_http_resp_init(struct rb_http_resp *r);
void rb_http_resp_release(struct rb_http_resp *r);

/* method "GET"/"POST"/"DELETE"; headers NULL-terminated "Name: value" list or NULL; body may be
 * NULL. timeout_ms bounds the whole request; max_body bounds the collected body (RB_ETOOBIG). */
int rb_http_request(const char *method, const char *url, const char *const *headers,
		    const char *body, size_t body_len, long timeout_ms, size_t max_body,
		    struct rb_http_resp *resp, struct rb_err *err);

/* Body bytes of a stream as they arrive; `status` is the response's HTTP status (its body is
 * an error's when it is not 2xx). Return 0 to go on, anything else to stop the transfer. */
typedef int (*rb_http_body_fn)(void *arg, long status, const char *p, size_t n);
/* Called about once a second while the transfer runs, even when nothing arrives; return
 * non-zero to stop it (e.g. after a Ctrl-C). */
typedef int (*rb_http_poll_fn)(void *arg);

struct rb_http_stream {
	const char *method;         /* NULL: "GET" */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
	long connect_timeout_ms;    /* 0: 10 s */
	long silence_s;             /* no byte for this long: the connection is dead (0: no limit);
				     * curl averages speed over 5 s, so it is seen up to ~5 s later */
	rb_http_body_fn on_body;
	rb_http_poll_fn poll;       /* may be NULL */
	void *arg;
	long status;                /* out: the HTTP status, 0 when no response came */
	bool stopped;               /* out: on_body or poll stopped the transfer */
};

/* Run one streamed request. Returns 0 when the server ended the response, or when on_body or
 * poll stopped it (s->stopped); else RB_EUNAVAIL (RB_ETIMEDOUT for silence) with curl's words,
 * s->status saying whether a response had begun before the connection was lost. */
int rb_http_stream(struct rb_http_stream *s, struct rb_err *err);

/* Percent-encode `s` for use as one path segment or query value (RFC 3986 unreserved
 * characters stay), appended to `out`. */
void rb_http_escape(struct rb_buf *out, const char *s);

/* Turn a URL into the file path it names for file:// URLs, or NULL when it is not one. */
const char *rb_http_file_url_path(const char *url);

#endif
