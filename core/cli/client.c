/*
 * client.c - the keeper's hive client: JSON GETs, and the one generic job runner every
 * operation command uses (submit, follow the SSE stream, show narration and progress, render
 * the result), plus `rbee hive check`.
 *
 * Following a job survives a dropped connection: the runner reconnects with Last-Event-ID
 * (bounded retries with backoff) and skips any event it already handled, so no line is shown
 * twice. Ctrl-C asks the hive to cancel the job (DELETE /v1/jobs/{id}) and waits for the
 * [CANCELLED] terminal; a second Ctrl-C leaves at once.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_sse.h"

#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 60000L
#define MAX_BODY (16u << 20)
/* No byte (not even a keep-alive, sent every 15 s) for this long: the connection is dead. */
#define STREAM_SILENCE_S 45L
#define MAX_RECONNECTS 5
/* Plain progress lines (no TTY, or NO_COLOR): at most one per stage this often. */
#define PLAIN_PROGRESS_MS 2000

/* ---- plain requests ---- */

struct http_result {
	long status;       /* 0 when no response came */
	struct rb_buf body;
	char reason[CURL_ERROR_SIZE + 64]; /* why no response came */
};

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
	struct rb_buf *b = arg;
	size_t n = size * nmemb;
	if (b->len + n > MAX_BODY || rb_buf_try_add(b, p, n))
		return 0;
	return n;
}

/* The headers every request to the hive carries; `extra` may be NULL. */
static struct curl_slist *base_headers(struct cli *cli, const char *extra)
{
	struct curl_slist *h = NULL;
	if (cli->token) {
		struct rb_buf auth = RB_BUF_INIT;
		rb_buf_addf(&auth, "Authorization: Bearer %s", cli->token);
		h = curl_slist_append(h, auth.data);
		rb_buf_release(&auth);
	}
	if (extra)
		h = curl_slist_append(h, extra);
	return h;
}

static CURL *new_handle(const char *method, const char *url, struct curl_slist *headers)
{
	CURL *c = curl_easy_init();
	if (!c) {
		fputs("rbee: cannot create an HTTP client (out of memory)\n", stderr);
		exit(CLI_FAILED);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	return c;
}

/* One request with a JSON (or no) body. Returns 0 when the hive answered (any status). */
static int hive_call(struct cli *cli, const char *method, const char *path, const char *body,
		     struct http_result *res)
{
	struct rb_buf url = RB_BUF_INIT;
	rb_buf_addf(&url, "%s%s", cli->hive_url, path);
	struct curl_slist *h = base_headers(cli, body ? "Content-Type: application/json" : NULL);
	CURL *c = new_handle(method, url.data, h);
	char errbuf[CURL_ERROR_SIZE] = "";
	rb_buf_init(&res->body);
	res->status = 0;
	res->reason[0] = '\0';
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &res->body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	CURLcode cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
	else
		snprintf(res->reason, sizeof(res->reason), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	rb_buf_release(&url);
	return cc == CURLE_OK ? 0 : -1;
}

static int unreachable(struct cli *cli, const char *reason)
{
	fprintf(stderr,
		"rbee: cannot reach the hive at '%s': %s; is rbee-hive running? (set --hive or "
		"RBEE_HIVE_URL)\n",
		cli->hive_url, reason);
	return CLI_UNREACHABLE;
}

/* A non-2xx answer: show the hive's {"error"} message (or what came instead) and pick the exit
 * status. A 400 means the request was refused for its content: a usage error. */
static int http_failure(struct cli *cli, const char *method, const char *path,
			const struct http_result *res)
{
	struct json_object *o = rb_json_parse(res->body.data, res->body.len, NULL);
	const char *msg = rb_json_str(o, "error"); /* any other type: no message */
	if (res->status == 401 && cli->token) /* the hive cannot tell "wrong" from "missing" */
		fprintf(stderr,
			"rbee: the hive at '%s' refused the bearer token in RBEE_API_TOKEN; set it to "
			"the token the hive was started with (its --token-file or RBEE_API_TOKEN)\n",
			cli->hive_url);
	else if (msg) {
		fputs("rbee: ", stderr);
		cli_put_clean(stderr, msg, strlen(msg), true);
		fputc('\n', stderr);
	} else
		fprintf(stderr, "rbee: the hive answered %s %s with HTTP %ld and no error message\n",
			method, path, res->status);
	json_object_put(o);
	return res->status == 400 ? CLI_USAGE : CLI_FAILED;
}

int cli_get_json(struct cli *cli, const char *path, struct json_object **out)
{
	struct http_result res;
	*out = NULL;
	if (hive_call(cli, "GET", path, NULL, &res)) {
		rb_buf_release(&res.body);
		return unreachable(cli, res.reason);
	}
	int rc = CLI_OK;
	if (res.status < 200 || res.status > 299) {
		rc = http_failure(cli, "GET", path, &res);
	} else {
		struct rb_err err = RB_ERR_INIT;
		*out = rb_json_parse(res.body.data, res.body.len, &err);
		if (*out && !cli->json)
			cli_json_clean(*out); /* shown to humans: nothing a terminal would act on */
		if (!*out) {
			fprintf(stderr, "rbee: the hive at '%s' answered GET %s with something that is not JSON: %s\n",
				cli->hive_url, path, err.msg);
			rc = CLI_FAILED;
		}
	}
	rb_buf_release(&res.body);
	return rc;
}

struct json_object *cli_op_new(const char *name)
{
	struct json_object *o = json_object_new_object();
	const char *hive_id = getenv("RBEE_HIVE_ID");
	rb_json_add_str(o, "operation", name);
	rb_json_add_str(o, "hive_id", hive_id && *hive_id ? hive_id : "localhost");
	return o;
}

/* ---- Ctrl-C ---- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	if (interrupted) {
		static const char msg[] = "\nrbee: interrupted again: leaving without waiting for the hive\n";
		ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
		_exit(CLI_FAILED);
	}
	interrupted = 1;
}

/* ---- progress display ---- */

struct progress {
	bool tty;            /* redraw one line on stderr */
	bool shown;          /* a bar is on screen */
	char line[256];      /* the bar as last drawn */
	size_t stats_w;      /* the widest figures drawn beside the bar */
	char plain_stage[64];
	long long plain_ms;  /* when the last plain line was printed */
};

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fmt_eta(double seconds, char *buf, size_t len)
{
	long long s = (long long)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, len, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
}

/* Cut `s` to at most `max` bytes without splitting a UTF-8 sequence. */
static void cut_utf8(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

/* "downloading [#######-------]  45%  1.2 GiB/2.7 GiB  12.3 MiB/s  ETA 0:12" (bar) or
 * "downloading:  45%  1.2 GiB/2.7 GiB  12.3 MiB/s  ETA 0:12" (plain), fitted into `width`
 * columns when width > 0: the bar shrinks, then goes, and the line is cut last. `*stats_w`
 * (the widest figures so far) keeps the bar from changing length as the figures do. */
static void format_progress(const char *stage, uint64_t done, uint64_t total, uint64_t rate,
			    bool bar, size_t width, size_t *stats_w, char *out, size_t len)
{
	char d[32], t[32], r[32], eta[32] = "", stats[160];
	rb_human_bytes(done, d, sizeof(d));
	rb_human_bytes(total, t, sizeof(t));
	if (!strcmp(stage, "building")) { /* build steps (or percent as n/100), not bytes */
		snprintf(d, sizeof(d), "%" PRIu64, done);
		snprintf(t, sizeof(t), "%" PRIu64, total);
	}
	rb_human_bytes(rate, r, sizeof(r));
	if (total == 0) {
		if (rate)
			snprintf(out, len, "%s  %s  %s/s", stage, d, r);
		else if (done)
			snprintf(out, len, "%s  %s", stage, d);
		else
			snprintf(out, len, "%s", stage);
		if (width)
			cut_utf8(out, width);
		return;
	}
	if (done > total)
		done = total;
	int pct = (int)(done * 100.0 / (double)total);
	if (rate && done < total)
		fmt_eta((double)(total - done) / (double)rate, eta, sizeof(eta));
	snprintf(stats, sizeof(stats), " %3d%%  %s/%s%s%s%s%s%s", pct, d, t, rate ? "  " : "",
		 rate ? r : "", rate ? "/s" : "", eta[0] ? "  ETA " : "", eta);
	size_t cells = bar ? 30 : 0;
	if (stats_w && strlen(stats) > *stats_w)
		*stats_w = strlen(stats);
	/* "stage [" + "]" + the figures */
	size_t fixed = strlen(stage) + 3 + (stats_w ? *stats_w : strlen(stats));
	if (bar && width)
		cells = width >= fixed + 10 ? (width - fixed < 30 ? width - fixed : 30) : 0;
	char cellbuf[31];
	size_t filled = (size_t)((double)done * (double)cells / (double)total);
	for (size_t i = 0; i < cells; i++)
		cellbuf[i] = i < filled ? '#' : '-';
	cellbuf[cells] = '\0';
	if (cells)
		snprintf(out, len, "%s [%s]%s", stage, cellbuf, stats);
	else
		snprintf(out, len, "%s:%s", stage, stats);
	if (width)
		cut_utf8(out, width);
}

static void bar_clear(struct progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
}

static void bar_redraw(struct progress *p)
{
	if (p->shown) {
		fprintf(stderr, "\r%s\033[K", p->line);
		fflush(stderr);
	}
}

static void show_progress(struct progress *p, struct json_object *o)
{
	char stage[64];
	const char *st = cli_jstr(o, "stage");
	char *clean = cli_clean(st ? st : "working", false);
	snprintf(stage, sizeof(stage), "%s", clean);
	cut_utf8(stage, sizeof(stage) - 1);
	free(clean);
	/* Negative or fractional figures from a confused hive read as 0. */
	int64_t d = cli_jint(o, "bytes_done", 0), t = cli_jint(o, "bytes_total", 0);
	int64_t rt = cli_jint(o, "rate_bps", 0);
	uint64_t done = d > 0 ? (uint64_t)d : 0, total = t > 0 ? (uint64_t)t : 0;
	uint64_t rate = rt > 0 ? (uint64_t)rt : 0;
	bool finished = total && done >= total;
	if (p->tty) {
		/* One column short of the terminal: a line that fills it exactly would wrap on some
		 * terminals, and "\r" then redraws only its last row. */
		int cols = cli_term_width(STDERR_FILENO);
		format_progress(stage, done, total, rate, true, cols > 1 ? (size_t)cols - 1 : 79,
				&p->stats_w, p->line, sizeof(p->line));
		p->shown = true;
		bar_redraw(p);
		if (finished) { /* a completed bar stays on screen as a line of its own */
			fputc('\n', stderr);
			p->shown = false;
		}
		return;
	}
	long long now = mono_ms();
	if (!strcmp(stage, p->plain_stage) && now - p->plain_ms < PLAIN_PROGRESS_MS && !finished)
		return;
	char line[256];
	format_progress(stage, done, total, rate, false, 0, NULL, line, sizeof(line));
	fprintf(stderr, "%s\n", line);
	snprintf(p->plain_stage, sizeof(p->plain_stage), "%s", stage);
	p->plain_ms = finished ? 0 : now;
}

/* ---- following a job ---- */

enum terminal { T_NONE, T_DONE, T_ERROR, T_CANCELLED };

struct run {
	struct cli *cli;
	char job_id[128];
	struct rb_sse_parser parser;
	uint64_t last_id;          /* the newest event handled */
	bool progressed;           /* events arrived during this connection */
	enum terminal terminal;
	char *error;               /* [ERROR] message */
	struct json_object *data;  /* the last `event: data` */
	struct progress progress;
	long status;               /* HTTP status of the current stream response */
	struct rb_buf err_body;    /* its body, when it is not a stream */
	bool cancel_sent;
	bool hold;                 /* hold narration back (cli_run_job_summary) */
	struct rb_buf held;        /* the narration held back, one line each */
};

static void narrate(struct run *r, const char *line)
{
	if (r->hold && !r->cli->json) {
		cli_clean_add(&r->held, line, strlen(line), true);
		rb_buf_addch(&r->held, '\n');
		return;
	}
	FILE *out = r->cli->json ? stderr : stdout;
	bar_clear(&r->progress);
	cli_put_clean(out, line, strlen(line), true);
	fputc('\n', out);
	fflush(out);
	bar_redraw(&r->progress);
}

static int on_event(void *arg, const struct rb_sse_event *ev)
{
	struct run *r = arg;
	if (ev->has_id) {
		char *end;
		uint64_t id = strtoull(ev->last_id, &end, 10);
		if (*end == '\0' && id <= r->last_id)
			return 0; /* seen before the reconnect */
		if (*end == '\0')
			r->last_id = id;
	}
	r->progressed = true;
	if (r->terminal != T_NONE)
		return 0;
	enum rb_sse_terminal kind;
	const char *m = "";
	if (!strcmp(ev->type, "progress")) {
		struct json_object *o = rb_json_parse(ev->data, ev->data_len, NULL);
		if (o)
			show_progress(&r->progress, o);
		json_object_put(o);
	} else if (!strcmp(ev->type, "data")) {
		struct rb_err err = RB_ERR_INIT;
		struct json_object *o = rb_json_parse(ev->data, ev->data_len, &err);
		if (!o) {
			narrate(r, "rbee: warning: the job's result is not valid JSON; ignoring it");
			return 0;
		}
		json_object_put(r->data);
		r->data = o;
	} else if ((kind = rb_sse_terminal_of(ev, &m)) == RB_SSE_DONE) {
		r->terminal = T_DONE;
	} else if (kind == RB_SSE_CANCELLED) {
		r->terminal = T_CANCELLED;
	} else if (kind == RB_SSE_ERROR) {
		r->terminal = T_ERROR;
		free(r->error);
		r->error = strdup(*m ? m : "the job failed without a message");
	} else {
		narrate(r, ev->data);
	}
	return 0;
}

static size_t on_stream_bytes(char *p, size_t size, size_t nmemb, void *arg)
{
	struct run *r = arg;
	size_t n = size * nmemb;
	if (r->status != 200) {
		if (r->err_body.len + n <= MAX_BODY && rb_buf_try_add(&r->err_body, p, n))
			return 0;
		return n;
	}
	rb_sse_parser_feed(&r->parser, p, n);
	return n;
}

static size_t on_stream_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct run *r = arg;
	size_t n = size * nmemb;
	int code;
	/* Each response starts with its status line; remember the status for the body. */
	if (n > 5 && !strncmp(p, "HTTP/", 5) && sscanf(p, "HTTP/%*s %d", &code) == 1)
		r->status = code;
	return n;
}

/* Polled by libcurl about once a second even while idle: a Ctrl-C stops the transfer so the
 * runner can send the cancel. */
static int on_xfer(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct run *r = arg;
	(void)a, (void)b, (void)c, (void)d;
	return interrupted && !r->cancel_sent;
}

/* One connection to the job's stream, from after r->last_id, until the hive closes it, it
 * drops, or a Ctrl-C. Returns 0 when a response came (see r->status), else -1 and `reason`. */
static int stream_once(struct run *r, char *reason, size_t reason_len)
{
	struct rb_buf url = RB_BUF_INIT, resume = RB_BUF_INIT;
	rb_buf_addf(&url, "%s/v1/jobs/%s/stream", r->cli->hive_url, r->job_id);
	if (r->last_id)
		rb_buf_addf(&resume, "Last-Event-ID: %" PRIu64, r->last_id);
	struct curl_slist *h = base_headers(r->cli, "Accept: text/event-stream");
	if (resume.len)
		h = curl_slist_append(h, resume.data);
	CURL *c = new_handle("GET", url.data, h);
	char errbuf[CURL_ERROR_SIZE] = "";
	r->status = 0;
	r->progressed = false;
	rb_buf_reset(&r->err_body);
	rb_sse_parser_reset(&r->parser);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream_bytes);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_stream_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STREAM_SILENCE_S);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(c);
	int rc = 0;
	if (cc != CURLE_OK && r->terminal == T_NONE) {
		snprintf(reason, reason_len, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
		rc = r->status ? 0 : -1;
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	rb_buf_release(&url);
	rb_buf_release(&resume);
	return rc;
}

/* DELETE /v1/jobs/{id} after a Ctrl-C. Returns 0 when the runner should wait for the
 * terminal event, else the exit status. */
static int send_cancel(struct run *r)
{
	struct http_result res;
	char path[192];
	r->cancel_sent = true;
	snprintf(path, sizeof(path), "/v1/jobs/%s", r->job_id);
	bar_clear(&r->progress);
	fprintf(stderr, "rbee: cancelling job '%s' on the hive (Ctrl-C again to leave at once)\n",
		r->job_id);
	int rc = 0;
	if (hive_call(r->cli, "DELETE", path, NULL, &res))
		rc = unreachable(r->cli, res.reason);
	else if (res.status != 200 && res.status != 409) /* 409: it just finished, show how */
		rc = http_failure(r->cli, "DELETE", path, &res);
	rb_buf_release(&res.body);
	return rc;
}

static void backoff_sleep(int attempt)
{
	long long ms = 250LL << (attempt < 5 ? attempt : 5); /* 0.5 s, 1 s, 2 s, 4 s, 8 s */
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL); /* a Ctrl-C cuts it short, which is what we want */
}

/* Follow the stream until the terminal event. Returns 0, or an exit status. */
static int follow(struct run *r)
{
	int attempts = 0;
	char reason[CURL_ERROR_SIZE + 64];
	while (r->terminal == T_NONE) {
		if (interrupted && !r->cancel_sent) {
			int rc = send_cancel(r);
			if (rc)
				return rc;
		}
		reason[0] = '\0';
		int got = stream_once(r, reason, sizeof(reason));
		if (r->terminal != T_NONE)
			break;
		if (interrupted && !r->cancel_sent)
			continue; /* the Ctrl-C stopped the transfer: cancel, then follow on */
		if (got == 0 && r->status == 404 && r->last_id) {
			fprintf(stderr, "rbee: the hive no longer knows job '%s' (was it restarted?)\n",
				r->job_id);
			return CLI_FAILED;
		}
		if (got == 0 && r->status != 200) {
			struct http_result res = { .status = r->status, .body = r->err_body };
			return http_failure(r->cli, "GET", "/v1/jobs/{id}/stream", &res);
		}
		if (r->progressed)
			attempts = 0;
		if (++attempts > MAX_RECONNECTS) {
			bar_clear(&r->progress);
			fprintf(stderr,
				"rbee: lost the connection to the hive at '%s' while following job "
				"'%s': %s; the job may still be running there\n",
				r->cli->hive_url, r->job_id, reason[0] ? reason : "the stream ended early");
			return CLI_UNREACHABLE;
		}
		bar_clear(&r->progress);
		fprintf(stderr, "rbee: connection to the hive lost (%s); reconnecting (%d of %d)\n",
			reason[0] ? reason : "the stream ended early", attempts, MAX_RECONNECTS);
		backoff_sleep(attempts);
	}
	return 0;
}

static void print_json(FILE *out, struct json_object *o)
{
	cli_print_json(out, o);
}

/* Submit; on success fill r->job_id. Returns 0 or an exit status. */
static int submit(struct run *r, struct json_object *op)
{
	struct http_result res;
	const char *body = rb_json_compact(op);
	if (hive_call(r->cli, "POST", "/v1/jobs", body, &res)) {
		rb_buf_release(&res.body);
		return unreachable(r->cli, res.reason);
	}
	int rc = 0;
	if (res.status < 200 || res.status > 299) {
		rc = http_failure(r->cli, "POST", "/v1/jobs", &res);
	} else {
		struct json_object *o = rb_json_parse(res.body.data, res.body.len, NULL);
		const char *id = rb_json_str(o, "job_id");
		if (!id || !rb_id_valid(id)) {
			fprintf(stderr, "rbee: the hive at '%s' accepted the job but sent no usable "
					"job id\n",
				r->cli->hive_url);
			rc = CLI_FAILED;
		} else {
			snprintf(r->job_id, sizeof(r->job_id), "%s", id);
		}
		json_object_put(o);
	}
	rb_buf_release(&res.body);
	return rc;
}

/* Show the outcome: the result (rendered, or raw JSON with --json), then the verdict. */
static int conclude(struct run *r, cli_render_fn render)
{
	bar_clear(&r->progress);
	if (!r->data && r->held.len) /* no result to show instead: the narration says what happened */
		fwrite(r->held.data, 1, r->held.len, stdout);
	fflush(stdout);
	if (r->data) {
		if (r->cli->json) {
			print_json(stdout, r->data); /* control characters escaped */
		} else if (render) {
			cli_json_clean(r->data);
			render(r->cli, r->data);
			fflush(stdout);
		} else {
			print_json(stdout, r->data);
		}
	}
	switch (r->terminal) {
	case T_DONE:
		return cli_answer_verdict(CLI_OK);
	case T_CANCELLED:
		fprintf(stderr, "rbee: job '%s' was cancelled\n", r->job_id);
		return CLI_FAILED;
	default:
		fputs("rbee: ", stderr);
		if (r->error)
			cli_put_clean(stderr, r->error, strlen(r->error), true);
		else
			fputs("the job failed", stderr);
		fputc('\n', stderr);
		return CLI_FAILED;
	}
}

/* Submit, follow, conclude; `hold` holds narration back (see cli_run_job_summary). */
static int run_job(struct cli *cli, struct json_object *op, cli_render_fn render, bool hold)
{
	struct run r = { .cli = cli, .hold = hold };
	r.progress.tty = cli->tty;
	rb_buf_init(&r.err_body);
	rb_buf_init(&r.held);
	rb_sse_parser_init(&r.parser, on_event, &r);
	struct sigaction sa = { .sa_handler = on_sigint }, old;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old);

	int rc = submit(&r, op);
	if (!rc)
		rc = follow(&r);
	if (!rc)
		rc = conclude(&r, render);

	sigaction(SIGINT, &old, NULL);
	rb_sse_parser_release(&r.parser);
	rb_buf_release(&r.err_body);
	rb_buf_release(&r.held);
	json_object_put(r.data);
	free(r.error);
	json_object_put(op);
	return rc;
}

int cli_run_job(struct cli *cli, struct json_object *op, cli_render_fn render)
{
	return run_job(cli, op, render, false);
}

int cli_run_job_summary(struct cli *cli, struct json_object *op, cli_render_fn render)
{
	return run_job(cli, op, render, true);
}

/* ---- rbee hive check ---- */

/* client.c is also linked alone (with table.c) into the jobs tests' client, so it keeps its
 * own helper. */
static const char *str_or(struct json_object *o, const char *key, const char *def)
{
	const char *v = cli_jstr(o, key);
	return v ? v : def;
}

/* The backends table of the self-test report; returns how many are available. */
static size_t render_check_backends(struct json_object *list, size_t n)
{
	static const char *const hdr[] = { "BACKEND", "VERSION", "STATE", "DEVICES", "REASON", NULL };
	struct cli_table *t = cli_table_new(hdr);
	size_t navailable = 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *b = cli_jat(list, i);
		char ndev[16];
		snprintf(ndev, sizeof(ndev), "%lld", (long long)cli_jint(b, "devices", 0));
		navailable += !strcmp(str_or(b, "state", ""), "available");
		const char *row[] = { cli_jstr(b, "name"), cli_jstr(b, "version"),
				      cli_jstr(b, "state"), ndev, cli_jstr(b, "reason"), NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (n == 0)
		puts("no backend plugins were found: see 'rbee hive status' for the plugin directory");
	return navailable;
}

/* The self-test report. Its lines read like the hive's narration ("cache directory '...':
 * writable"), which cli_run_job_summary holds back so nothing shows twice. */
static void render_check(struct cli *cli, struct json_object *res)
{
	(void)cli;
	struct json_object *list = cli_jarr(res, "backends"), *cache = cli_jobj(res, "cache");
	struct json_object *catalog = cli_jobj(res, "catalog");
	size_t n = cli_jlen(list);
	printf("hive '%s' (rbee-hive %s)\n\n", str_or(res, "hive_id", "?"),
	       str_or(res, "version", "?"));
	size_t navailable = render_check_backends(list, n);
	char freeb[32] = "";
	if (cli_jint(cache, "free_bytes", -1) >= 0)
		rb_human_bytes((unsigned long long)cli_jint(cache, "free_bytes", 0), freeb, sizeof(freeb));
	if (cli_jbool(cache, "writable", false))
		printf("\ncache directory '%s': writable%s%s\n", str_or(cache, "path", "?"),
		       freeb[0] ? ", free " : "", freeb);
	else
		printf("\n%s\n", str_or(cache, "error", "the cache directory is NOT writable"));
	if (cli_jbool(catalog, "reachable", false))
		printf("catalog %s: reachable, %lld workers\n", str_or(catalog, "source", "?"),
		       (long long)cli_jint(catalog, "workers", 0));
	else
		printf("catalog %s: NOT reachable: %s (installed workers still run; fix the hive's "
		       "--catalog / RBEE_CATALOG_URL to install new ones)\n",
		       str_or(catalog, "source", "?"), str_or(catalog, "error", "no reason given"));
	printf("\nverdict   %s (%zu of %zu backends available)\n",
	       cli_jbool(res, "ok", false) ? "ok" : "FAILED", navailable, n);
}

int cli_hive_check(struct cli *cli, const char *arg)
{
	(void)arg;
	return cli_run_job_summary(cli, cli_op_new("hive_check"), render_check);
}
