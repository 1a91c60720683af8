/*
 * rb_download.c - resumable, verified downloads with libcurl (see rb_download.h).
 *
 * One `struct dl` lives for the whole call. Each attempt is one curl transfer asking for the
 * bytes after what the part file holds; the header callback tracks the response that is
 * currently arriving (statuses reset it, so the headers of redirects do not leak into the final
 * answer), and the write callback judges that response once, at its first body byte, before a
 * byte reaches the file. The part file and the running hash always describe the same bytes.
 */
#include "rb_download.h"
#include "rb_buf.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rb_sha256.h"

#define DL_BUFFER_SIZE (512 * 1024)
#define DL_PROGRESS_INTERVAL_S 0.25
#define DL_BACKOFF_MAX_MS 30000
#define DL_ERRBODY_MAX 200

/* The response being received (reset at every status line). */
struct dl_resp {
	long status;
	bool has_range;         /* Content-Range: bytes a-b/n */
	uint64_t range_start;
	uint64_t range_total;   /* 0 = '*' or absent */
	bool has_length;
	uint64_t length;        /* Content-Length */
	bool judged;            /* the first body byte was seen and the response judged */
	bool keep_body;         /* body goes to the file (2xx); else a little is kept for messages */
	char errbody[DL_ERRBODY_MAX + 1];
	size_t errbody_len;
};

struct dl {
	const struct rb_download_opts *o;
	int fd;
	struct rb_sha256 *hash;
	uint64_t size;           /* bytes in the part file, all of them hashed */
	uint64_t total;          /* size of the whole file when known, else 0 */
	struct dl_resp resp;
	char linked_etag[65];    /* first 64-hex X-Linked-Etag seen in any response */
	char etag[65];           /* first 64-hex ETag seen in any response */
	/* Why the last attempt stopped early from inside a callback. */
	bool stop_requested;
	int write_errno;
	bool range_mismatch;
	bool too_long;           /* the body went past expect_size */
	bool restarted;          /* the server ignored Range in this attempt */
	/* Progress. */
	double t_start, t_last;
	uint64_t bytes_at_start, bytes_at_last;
	double rate;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note(struct dl *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct dl *d, const char *fmt, ...)
{
	if (!d->o->on_note)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->o->on_note(d->o->arg, line);
}

static bool stop_now(struct dl *d)
{
	if (!d->stop_requested && d->o->should_stop && d->o->should_stop(d->o->arg))
		d->stop_requested = true;
	return d->stop_requested;
}

/* --- the part file ------------------------------------------------------------------------ */

/* Start the hash over the first `size` bytes already in the part file. */
static int hash_existing(struct dl *d, struct rb_err *err)
{
	if (d->size >= (1ull << 30)) {
		char h[32];
		rb_human_bytes(d->size, h, sizeof(h));
		note(d, "checking the %s already downloaded", h);
	}
	unsigned char *buf = malloc(1 << 20);
	if (!buf)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	uint64_t off = 0;
	int rc = 0;
	while (off < d->size) {
		size_t want = d->size - off < (1u << 20) ? (size_t)(d->size - off) : (1u << 20);
		ssize_t n = pread(d->fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = rb_err_set(err, RB_EIO, "cannot read '%s': %s", d->o->part_path,
					n < 0 ? strerror(errno) : "file shrank while reading");
			break;
		}
		rb_sha256_update(d->hash, buf, (size_t)n);
		off += (uint64_t)n;
		if (stop_now(d)) {
			rc = rb_err_set(err, RB_ECANCELLED, "download of '%s' cancelled", d->o->url);
			break;
		}
	}
	free(buf);
	return rc;
}

/* Empty the part file and the hash: the next bytes start the file over. */
static int restart_part(struct dl *d)
{
	if (ftruncate(d->fd, 0) != 0) {
		d->write_errno = errno;
		return -1;
	}
	rb_sha256_free(d->hash);
	d->hash = rb_sha256_new();
	if (!d->hash) {
		d->write_errno = ENOMEM;
		return -1;
	}
	d->size = 0;
	d->bytes_at_start = d->bytes_at_last = 0;
	return 0;
}

static int append(struct dl *d, const char *p, size_t n)
{
	size_t left = n;
	while (left) {
		ssize_t w = pwrite(d->fd, p, left, (off_t)d->size);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			d->write_errno = errno;
			return -1;
		}
		rb_sha256_update(d->hash, p, (size_t)w);
		d->size += (uint64_t)w;
		p += w;
		left -= (size_t)w;
	}
	return 0;
}

/* --- curl callbacks ---------------------------------------------------------------------- */

/* 64 hex digits from an ETag value (quotes, W/ and spaces stripped), lower-cased, or "". */
static void etag_sha256(const char *v, size_t len, char out[65])
{
	out[0] = '\0';
	while (len && isspace((unsigned char)*v))
		v++, len--;
	while (len && isspace((unsigned char)v[len - 1]))
		len--;
	if (len >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/')
		v += 2, len -= 2;
	if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
		v++, len -= 2;
	if (len != 64)
		return;
	for (size_t i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)v[i])) {
			out[0] = '\0';
			return;
		}
		out[i] = (char)tolower((unsigned char)v[i]);
	}
	out[64] = '\0';
}

static bool header_is(const char *line, size_t len, const char *name, const char **val,
		      size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || line[n] != ':' || strncasecmp(line, name, n))
		return false;
	*val = line + n + 1;
	*vlen = len - n - 1;
	while (*vlen && (**val == ' ' || **val == '\t'))
		(*val)++, (*vlen)--;
	while (*vlen && ((*val)[*vlen - 1] == '\r' || (*val)[*vlen - 1] == '\n'))
		(*vlen)--;
	return true;
}

static void parse_content_range(struct dl_resp *r, const char *v, size_t len)
{
	char tmp[128];
	if (len >= sizeof(tmp))
		return;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	unsigned long long a, b, t;
	if (sscanf(tmp, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
		r->has_range = true;
		r->range_start = a;
		r->range_total = t;
	} else if (sscanf(tmp, "bytes %llu-%llu/*", &a, &b) == 2) {
		r->has_range = true;
		r->range_start = a;
		r->range_total = 0;
	} else if (sscanf(tmp, "bytes */%llu", &t) == 1) {
		r->range_total = t; /* a 416's statement of the file size */
	}
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct dl *d = arg;
	size_t len = size * nmemb;
	const char *v;
	size_t vlen;
	char hex[65];
	if (len > 5 && !strncmp(line, "HTTP/", 5)) {
		memset(&d->resp, 0, sizeof(d->resp));
		const char *sp = memchr(line, ' ', len);
		if (sp)
			d->resp.status = strtol(sp + 1, NULL, 10);
	} else if (header_is(line, len, "Content-Range", &v, &vlen)) {
		parse_content_range(&d->resp, v, vlen);
	} else if (header_is(line, len, "Content-Length", &v, &vlen)) {
		char tmp[32];
		if (vlen && vlen < sizeof(tmp)) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			char *end;
			unsigned long long x = strtoull(tmp, &end, 10);
			if (*end == '\0') {
				d->resp.has_length = true;
				d->resp.length = x;
			}
		}
	} else if (header_is(line, len, "X-Linked-Etag", &v, &vlen)) {
		etag_sha256(v, vlen, hex);
		if (hex[0] && !d->linked_etag[0])
			memcpy(d->linked_etag, hex, sizeof(hex));
	} else if (header_is(line, len, "ETag", &v, &vlen)) {
		etag_sha256(v, vlen, hex);
		if (hex[0] && !d->etag[0])
			memcpy(d->etag, hex, sizeof(hex));
	}
	return len;
}

/* The first body byte of a response: decide where its body goes. Returns false to abort. */
static bool judge_response(struct dl *d)
{
	struct dl_resp *r = &d->resp;
	r->judged = true;
	if (r->status == 206) {
		if (!r->has_range || r->range_start != d->size) {
			d->range_mismatch = true;
			return false;
		}
		r->keep_body = true;
		if (r->range_total)
			d->total = r->range_total;
		else if (r->has_length)
			d->total = d->size + r->length;
	} else if (r->status >= 200 && r->status < 300) {
		if (d->size > 0) {
			note(d, "the server ignored the request to resume; downloading from the start");
			d->restarted = true;
			if (restart_part(d) != 0)
				return false;
		}
		r->keep_body = true;
		d->total = r->has_length ? r->length : d->o->expect_size;
	}
	return true;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct dl *d = arg;
	size_t n = size * nmemb;
	if (!d->resp.judged && !judge_response(d))
		return 0;
	if (!d->resp.keep_body) {
		size_t room = DL_ERRBODY_MAX - d->resp.errbody_len;
		size_t k = n < room ? n : room;
		memcpy(d->resp.errbody + d->resp.errbody_len, p, k);
		d->resp.errbody_len += k;
		d->resp.errbody[d->resp.errbody_len] = '\0';
		return n;
	}
	/* A file larger than announced can never verify: stop before it fills the disk. */
	if (d->o->expect_size && d->size + n > d->o->expect_size) {
		d->too_long = true;
		return 0;
	}
	return append(d, p, n) == 0 ? n : 0;
}

static void report(struct dl *d, bool final)
{
	if (!d->o->on_progress)
		return;
	double t = now_s();
	double dt = t - d->t_last;
	if (!final && dt < DL_PROGRESS_INTERVAL_S)
		return;
	if (final) {
		double all = t - d->t_start;
		uint64_t got = d->size >= d->bytes_at_start ? d->size - d->bytes_at_start : 0;
		d->rate = all > 0 ? (double)got / all : 0;
	} else if (dt > 0) {
		uint64_t got = d->size >= d->bytes_at_last ? d->size - d->bytes_at_last : 0;
		double inst = (double)got / dt;
		d->rate = d->rate > 0 ? 0.7 * d->rate + 0.3 * inst : inst;
	}
	d->t_last = t;
	d->bytes_at_last = d->size;
	uint64_t total = d->total ? d->total : final ? d->size : 0;
	d->o->on_progress(d->o->arg, d->size, total, d->rate);
}

static int on_xfer(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		   curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct dl *d = arg;
	if (stop_now(d))
		return 1;
	report(d, false);
	return 0;
}

/* --- attempts ---------------------------------------------------------------------------- */

/* One transfer from d->size onwards. Returns curl's code; d->resp holds the final response. */
static CURLcode attempt(struct dl *d, char *curl_err)
{
	CURL *c = curl_easy_init();
	if (!c)
		return CURLE_OUT_OF_MEMORY;
	struct curl_slist *hl = NULL;
	for (size_t i = 0; d->o->headers && d->o->headers[i]; i++)
		hl = curl_slist_append(hl, d->o->headers[i]);
	char range[48];
	long stall = d->o->stall_timeout_s > 0 ? d->o->stall_timeout_s : 30;
	memset(&d->resp, 0, sizeof(d->resp));
	d->range_mismatch = false;
	d->restarted = false;
	curl_err[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, d->o->url);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)DL_BUFFER_SIZE);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, stall);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
	if (d->size > 0) {
		/* CURLOPT_RANGE rather than RESUME_FROM: curl would fail a 200 answer itself, and we
		 * want to start over instead. */
		snprintf(range, sizeof(range), "%" PRIu64 "-", d->size);
		curl_easy_setopt(c, CURLOPT_RANGE, range);
	}
	CURLcode cc = curl_easy_perform(c);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return cc;
}

static bool curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

/* What the server said besides its status, for messages: the start of an error body. */
static const char *errbody(struct dl *d)
{
	char *s = d->resp.errbody;
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return s;
}

enum verdict { V_DONE, V_RETRY, V_FAIL };

/* Judge a finished attempt: done, worth another try (why in *why), or failed (*err set). */
static enum verdict judge_attempt(struct dl *d, CURLcode cc, const char *curl_err, char *why,
				  size_t why_len, int *rc, struct rb_err *err)
{
	const char *url = d->o->url;
	long st = d->resp.status;
	if (d->stop_requested) {
		*rc = rb_err_set(err, RB_ECANCELLED, "download of '%s' cancelled", url);
		return V_FAIL;
	}
	if (d->write_errno) {
		int e = d->write_errno;
		bool full = e == ENOSPC || e == EDQUOT || e == EFBIG;
		char h[32];
		rb_human_bytes(d->size, h, sizeof(h));
		*rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s%s%s%s", d->o->part_path,
				 strerror(e), full ? " after " : "", full ? h : "",
				 full ? " (free disk space there, then try again)" : "");
		return V_FAIL;
	}
	if (d->too_long) {
		unlink(d->o->part_path);
		*rc = rb_err_set(err, RB_EIO, "'%s' sends more than the %" PRIu64 " bytes expected; "
				 "stopped and removed the partial file (did the file change on the "
				 "server? download it again)", url, d->o->expect_size);
		return V_FAIL;
	}
	if (d->range_mismatch) {
		snprintf(why, why_len, "the server sent bytes from %" PRIu64 " when %" PRIu64
			 " were asked; starting over", d->resp.range_start, d->size);
		if (restart_part(d) != 0)
			return judge_attempt(d, cc, curl_err, why, why_len, rc, err);
		return V_RETRY;
	}
	if (cc != CURLE_OK) {
		const char *what = curl_err[0] ? curl_err : curl_easy_strerror(cc);
		if (curl_retryable(cc)) {
			snprintf(why, why_len, "%s", cc == CURLE_OPERATION_TIMEDOUT ?
				 "the transfer stalled" : what);
			return V_RETRY;
		}
		*rc = rb_err_set(err, RB_EUNAVAIL, "cannot download '%s': %s", url, what);
		return V_FAIL;
	}
	if (st == 416) {
		uint64_t t = d->resp.range_total ? d->resp.range_total : d->o->expect_size;
		if (t && t == d->size) {
			d->total = t;
			return V_DONE;
		}
		if (t && d->size > t) {
			snprintf(why, why_len, "the partial file is longer than the file on the server; "
				 "starting over");
			if (restart_part(d) != 0)
				return judge_attempt(d, cc, curl_err, why, why_len, rc, err);
			return V_RETRY;
		}
		*rc = rb_err_set(err, RB_EIO, "'%s' refused the range from byte %" PRIu64 " (HTTP 416)",
				 url, d->size);
		return V_FAIL;
	}
	if (st == 404) {
		*rc = rb_err_set(err, RB_ENOTFOUND, "'%s' not found (HTTP 404)", url);
		return V_FAIL;
	}
	if (st == 401 || st == 403) {
		*rc = rb_err_set(err, RB_EDENIED, "access to '%s' denied (HTTP %ld)", url, st);
		return V_FAIL;
	}
	if (status_retryable(st)) {
		snprintf(why, why_len, "the server answered HTTP %ld", st);
		return V_RETRY;
	}
	if (st < 200 || st >= 300) {
		*rc = rb_err_set(err, RB_EIO, "'%s' answered HTTP %ld%s%s", url, st,
				 d->resp.errbody_len ? ": " : "", errbody(d));
		return V_FAIL;
	}
	if (st != 206 && !d->resp.judged && d->size > 0 && restart_part(d) != 0)
		return judge_attempt(d, cc, curl_err, why, why_len, rc, err); /* an empty file */
	if (d->total && d->size < d->total) {
		snprintf(why, why_len, "the connection closed early");
		return V_RETRY;
	}
	return V_DONE;
}

/* Sleep `ms`, waking every 100 ms to honour should_stop. False when stopped. */
static bool backoff_sleep(struct dl *d, int ms)
{
	while (ms > 0) {
		if (stop_now(d))
			return false;
		int step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return !stop_now(d);
}

static int transfer(struct dl *d, struct rb_download_result *res, struct rb_err *err)
{
	int max_retries = d->o->max_retries > 0 ? d->o->max_retries : 5;
	int base = d->o->backoff_ms > 0 ? d->o->backoff_ms : 1000;
	int failures = 0;
	char curl_err[CURL_ERROR_SIZE];
	for (;;) {
		uint64_t before = d->size;
		CURLcode cc = attempt(d, curl_err);
		res->http_status = d->resp.status;
		char why[300] = "";
		int rc = 0;
		enum verdict v = judge_attempt(d, cc, curl_err, why, sizeof(why), &rc, err);
		if (v == V_DONE)
			return 0;
		if (v == V_FAIL)
			return rc;
		if (d->size > before && !d->restarted)
			failures = 0; /* progress was made: only stalls in a row count */
		if (++failures > max_retries) {
			return rb_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? RB_ETIMEDOUT : RB_EUNAVAIL,
					  "giving up on '%s' after %d attempts: %s; the partial file "
					  "is kept and a new download resumes it",
					  d->o->url, failures, why);
		}
		int ms = base;
		for (int i = 1; i < failures && ms < DL_BACKOFF_MAX_MS; i++)
			ms *= 2;
		if (ms > DL_BACKOFF_MAX_MS)
			ms = DL_BACKOFF_MAX_MS;
		char at[32];
		rb_human_bytes(d->size, at, sizeof(at));
		note(d, "%s at %s; retry %d of %d in %.1f s", why, at, failures, max_retries,
		     ms / 1000.0);
		res->retries++;
		if (!backoff_sleep(d, ms))
			return rb_err_set(err, RB_ECANCELLED, "download of '%s' cancelled", d->o->url);
	}
}

/* Compare the finished part with what was expected; remove it when it can never be right. */
static int verify(struct dl *d, struct rb_download_result *res, struct rb_err *err)
{
	const char *want = d->o->expect_sha256;
	if (!want && d->o->sha256_from_etag)
		want = d->linked_etag[0] ? d->linked_etag : d->etag[0] ? d->etag : NULL;
	if (want) {
		for (size_t i = 0; i < 64 && want[i]; i++)
			res->expected_sha256[i] = (char)tolower((unsigned char)want[i]);
		res->expected_sha256[strlen(want) < 64 ? strlen(want) : 64] = '\0';
	}
	if (d->o->expect_size && res->size != d->o->expect_size) {
		unlink(d->o->part_path);
		return rb_err_set(err, RB_EIO, "'%s' has %" PRIu64 " bytes but %" PRIu64
				  " were expected; the partial file was removed, download it again",
				  d->o->url, res->size, d->o->expect_size);
	}
	if (want && strcmp(res->sha256, res->expected_sha256)) {
		unlink(d->o->part_path);
		return rb_err_set(err, RB_EIO, "sha256 of '%s' is %s but the server announced %s; the "
				  "download was corrupted and removed, download it again",
				  d->o->url, res->sha256, res->expected_sha256);
	}
	return 0;
}

static int open_part(struct dl *d, struct rb_err *err)
{
	d->fd = open(d->o->part_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->fd < 0)
		return rb_err_set(err, RB_EIO, "cannot open '%s': %s", d->o->part_path, strerror(errno));
	struct stat st;
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return rb_err_set(err, RB_EIO, "'%s' is not a regular file", d->o->part_path);
	d->size = (uint64_t)st.st_size;
	d->hash = rb_sha256_new();
	if (!d->hash)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	return 0;
}

int rb_download(const struct rb_download_opts *opts, struct rb_download_result *res,
		struct rb_err *err)
{
	struct dl d = { .o = opts, .fd = -1 };
	memset(res, 0, sizeof(*res));
	if (!opts->url || !opts->part_path)
		return rb_err_set(err, RB_EINVAL, "download needs a url and a part file");
	if (opts->expect_sha256 && !rb_sha256_is_hex(opts->expect_sha256))
		return rb_err_set(err, RB_EINVAL, "expected sha256 '%s' is not 64 hex digits",
				  opts->expect_sha256);
	int rc = open_part(&d, err);
	if (!rc) {
		res->resumed_from = d.size;
		d.total = opts->expect_size;
		rc = hash_existing(&d, err);
	}
	if (!rc) {
		d.t_start = d.t_last = now_s();
		d.bytes_at_start = d.bytes_at_last = d.size;
		rc = transfer(&d, res, err);
	}
	if (!rc && fsync(d.fd) != 0)
		rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", opts->part_path, strerror(errno));
	if (!rc) {
		report(&d, true);
		res->size = d.size;
		rb_sha256_final_hex(d.hash, res->sha256);
		d.hash = NULL;
		rc = verify(&d, res, err);
	} else {
		res->size = d.size;
	}
	rb_sha256_free(d.hash);
	if (d.fd >= 0)
		close(d.fd);
	return rc;
}
