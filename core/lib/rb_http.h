/*
 * rb_http.h - HTTP client requests (libcurl) for the hive, the CLI and the catalog.
 *
 * Bodies are collected in memory up to a limit; large transfers use rb_download.h instead.
 * Transport errors become RB_EUNAVAIL with curl's words and the URL ("cannot reach
 * 'http://x/workers': Couldn't connect to server"); HTTP statuses are returned, not judged.
 * Call rb_http_global_init() once from main() before starting threads.
 */
#ifndef RB_HTTP_H
#define RB_HTTP_H

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

/* Turn a URL into the file path it names for file:// URLs, or NULL when it is not one. */
const char *rb_http_file_url_path(const char *url);

#endif
