#include "rb_http.h"
#include "rb_libs.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

void rb_http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void rb_http_resp_init(struct rb_http_resp *r)
{
	r->status = 0;
	rb_buf_init(&r->body);
	rb_buf_init(&r->content_type);
}

void rb_http_resp_release(struct rb_http_resp *r)
{
	rb_buf_release(&r->body);
	rb_buf_release(&r->content_type);
	r->status = 0;
}

struct sink {
	struct rb_buf *buf;
	size_t max;
	int overflow;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	if (s->buf->len + n > s->max) {
		s->overflow = 1;
		return 0;
	}
	rb_buf_add(s->buf, p, n);
	return n;
}

int rb_http_request(const char *method, const char *url, const char *const *headers,
		    const char *body, size_t body_len, long timeout_ms, size_t max_body,
		    struct rb_http_resp *resp, struct rb_err *err)
{
	CURL *c = curl_easy_init();
	if (!c)
		return rb_err_set(err, RB_EINTERNAL, "cannot create an HTTP client%s%s",
				  rb_libs_error()[0] ? ": " : "", rb_libs_error());
	struct curl_slist *hl = NULL;
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	rb_buf_reset(&resp->body);
	rb_buf_reset(&resp->content_type);
	resp->status = 0;
	struct sink s = { &resp->body, max_body ? max_body : (64u << 20), 0 };
	char curl_err[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms > 0 && timeout_ms < 10000 ? timeout_ms : 10000L);
	if (timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (!strcmp(method, "GET"))
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	CURLcode cc = curl_easy_perform(c);
	int rc = 0;
	if (cc == CURLE_WRITE_ERROR && s.overflow) {
		rc = rb_err_set(err, RB_ETOOBIG, "response from '%s' is larger than %zu bytes", url, s.max);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		rc = rb_err_set(err, RB_ETIMEDOUT, "'%s' did not answer within %ld ms", url, timeout_ms);
	} else if (cc != CURLE_OK) {
		rc = rb_err_set(err, RB_EUNAVAIL, "cannot reach '%s': %s", url,
				curl_err[0] ? curl_err : curl_easy_strerror(cc));
	} else {
		char *ct = NULL;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
		if (ct)
			rb_buf_adds(&resp->content_type, ct);
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rc;
}

struct stream_state {
	struct rb_http_stream *s;
	int stop;
};

static size_t on_stream_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream_state *st = arg;
	size_t n = size * nmemb;
	int code;
	/* Each response (a redirect's too) starts with its status line. */
	if (n > 5 && !strncmp(p, "HTTP/", 5) && sscanf(p, "HTTP/%*s %d", &code) == 1)
		st->s->status = code;
	return n;
}

static size_t on_stream_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream_state *st = arg;
	size_t n = size * nmemb;
	if (st->s->on_body && st->s->on_body(st->s->arg, st->s->status, p, n)) {
		st->stop = 1;
		return 0;
	}
	return n;
}

static int on_stream_xfer(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct stream_state *st = arg;
	(void)a, (void)b, (void)c, (void)d;
	if (st->s->poll && st->s->poll(st->s->arg))
		st->stop = 1;
	return st->stop;
}

int rb_http_stream(struct rb_http_stream *s, struct rb_err *err)
{
	s->status = 0;
	s->stopped = false;
	CURL *c = curl_easy_init();
	if (!c)
		return rb_err_set(err, RB_EINTERNAL, "cannot create an HTTP client%s%s",
				  rb_libs_error()[0] ? ": " : "", rb_libs_error());
	struct curl_slist *hl = NULL;
	for (size_t i = 0; s->headers && s->headers[i]; i++)
		hl = curl_slist_append(hl, s->headers[i]);
	struct stream_state st = { s, 0 };
	char curl_err[CURL_ERROR_SIZE] = "";
	const char *method = s->method ? s->method : "GET";
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "GET"))
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_stream_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &st);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_stream_xfer);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &st);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 s->connect_timeout_ms > 0 ? s->connect_timeout_ms : 10000L);
	if (s->silence_s > 0) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->silence_s);
	}
	CURLcode cc = curl_easy_perform(c);
	int rc = 0;
	if (st.stop) {
		s->stopped = true;
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		rc = rb_err_set(err, RB_ETIMEDOUT, "'%s' sent nothing for %ld s", s->url, s->silence_s);
	} else if (cc != CURLE_OK) {
		rc = rb_err_set(err, RB_EUNAVAIL, "cannot reach '%s': %s", s->url,
				curl_err[0] ? curl_err : curl_easy_strerror(cc));
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rc;
}

void rb_http_escape(struct rb_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			rb_buf_addch(out, (char)ch);
		} else {
			rb_buf_addch(out, '%');
			rb_buf_addch(out, hex[ch >> 4]);
			rb_buf_addch(out, hex[ch & 15]);
		}
	}
}

const char *rb_http_file_url_path(const char *url)
{
	if (!strncmp(url, "file://", 7))
		return url + 7;
	return NULL;
}
