/*
 * client.c - the keeper's hive client: JSON GETs, and the one generic job runner every
 * operation command uses (submit, follow the SSE stream, show narration and progress, render
 * the result), plus `rbee hive check`.
 *
 * Every request of the CLI goes through here, on librbcore's client stack: cli_request
 * (rb_http_request) and cli_follow (rb_http_stream + rb_sse's parser), each with the bearer
 * token when the CLI has one. cli_follow survives a dropped connection: it reconnects (bounded
 * retries with backoff, the budget renewed whenever events arrive) with Last-Event-ID when the
 * stream carries ids; the job runner skips any event it already handled, so no line is shown
 * twice, and the log follower reconnects at the end of the log. Ctrl-C asks the hive to
 * cancel the job (DELETE /v1/jobs/{id}) and waits for the [CANCELLED] terminal; a second
 * Ctrl-C leaves at once.
 */
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
#include "rb_http.h"
#include "rb_json.h"
#include "rb_sse.h"

#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 60000L
#define MAX_BODY (64u << 20) /* a log tail is up to 16 MiB */
/* No byte (not even a keep-alive, sent every 15 s) for this long: the connection is dead. */
#define STREAM_SILENCE_S 45L
#define MAX_RECONNECTS 5
/* Plain progress lines (no TTY, or NO_COLOR): at most one per stage this often. */
#define PLAIN_PROGRESS_MS 2000

/* ---- plain requests (rb_http) ---- */

/* The headers every request to the hive carries: the bearer token when the CLI has one, then
 * up to two more. `auth` holds the token's header text. */
static const char *const *hive_headers(struct cli *cli, struct rb_buf *auth, const char *list[4],
				       const char *extra1, const char *extra2)
{
	size_t n = 0;
	if (cli->token) {
		rb_buf_reset(auth);
		rb_buf_addf(auth, "Authorization: Bearer %s", cli->token);
		list[n++] = auth->data;
	}
	if (extra1)
		list[n++] = extra1;
	if (extra2)
		list[n++] = extra2;
	list[n] = NULL;
	return list;
}

/* rb_http says "cannot reach 'URL': why"; the CLI names the hive itself, so keep the why. */
static void set_reason(char *reason, size_t len, const char *url, const struct rb_err *err)
{
	const char *m = err->msg;
	size_t ul = strlen(url);
	if (!strncmp(m, "cannot reach '", 14) && !strncmp(m + 14, url, ul) &&
	    !strncmp(m + 14 + ul, "': ", 3))
		m += 14 + ul + 3;
	snprintf(reason, len, "%s", m);
}

int cli_request(struct cli *cli, const char *method, const char *path, const char *body,
		struct rb_http_resp *resp, char *reason, size_t reason_len)
{
	struct rb_buf url = RB_BUF_INIT, auth = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	const char *list[4];
	rb_buf_addf(&url, "%s%s", cli->hive_url, path);
	const char *const *h = hive_headers(cli, &auth, list,
					    body ? "Content-Type: application/json" : NULL, NULL);
	int rc = rb_http_request(method, url.data, h, body, body ? strlen(body) : 0,
				 REQUEST_TIMEOUT_MS, MAX_BODY, resp, &err);
	if (rc)
		set_reason(reason, reason_len, url.data, &err);
	rb_buf_release(&url);
	rb_buf_release(&auth);
	return rc ? -1 : 0;
}

int cli_unreachable(struct cli *cli, const char *reason)
{
	fprintf(stderr,
		"rbee: cannot reach the hive at '%s': %s; is rbee-hive running? (set --hive or "
		"RBEE_HIVE_URL)\n",
		cli->hive_url, reason);
	return CLI_UNREACHABLE;
}

int cli_http_failure(struct cli *cli, const char *method, const char *path, long status,
		     const struct rb_buf *body)
{
	struct json_object *o = rb_json_parse(body->data, body->len, NULL);
	const char *msg = rb_json_str(o, "error"); /* any other type: no message */
	if (status == 401 && cli->token) /* the hive cannot tell "wrong" from "missing" */
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
			method, path, status);
	json_object_put(o);
	return status == 400 ? CLI_USAGE : CLI_FAILED;
}

int cli_get_json(struct cli *cli, const char *path, struct json_object **out)
{
	struct rb_http_resp res;
	char reason[512];
	*out = NULL;
	rb_http_resp_init(&res);
	if (cli_request(cli, "GET", path, NULL, &res, reason, sizeof(reason))) {
		rb_http_resp_release(&res);
		return cli_unreachable(cli, reason);
	}
	int rc = CLI_OK;
	if (res.status < 200 || res.status > 299) {
		rc = cli_http_failure(cli, "GET", path, res.status, &res.body);
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
	rb_http_resp_release(&res);
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
	uint64_t last_id;          /* the newest event handled */
	enum terminal terminal;
	char *error;               /* [ERROR] message */
	struct json_object *data;  /* the last `event: data` */
	struct progress progress;
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

/* ---- following a stream (rb_http_stream + rb_sse), with reconnects ---- */

struct follower {
	struct cli *cli;
	struct cli_stream *s;
	struct rb_sse_parser parser;
	size_t events;        /* events delivered during this connection */
	struct rb_buf err_body; /* the body of a non-2xx answer */
};

static int count_event(void *arg, const struct rb_sse_event *ev)
{
	struct follower *f = arg;
	f->events++;
	return f->s->on_event(f->s->arg, ev);
}

static int follower_bytes(void *arg, long status, const char *p, size_t n)
{
	struct follower *f = arg;
	if (status < 200 || status > 299) {
		if (f->err_body.len + n <= MAX_BODY)
			rb_buf_add(&f->err_body, p, n);
		return 0;
	}
	rb_sse_parser_feed(&f->parser, p, n);
	return f->s->ended && f->s->ended(f->s->arg); /* the last event: no need to wait for EOF */
}

static int follower_poll(void *arg)
{
	struct follower *f = arg;
	return f->s->poll ? f->s->poll(f->s->arg) : 0;
}

static void backoff_sleep(int attempt)
{
	long long ms = 250LL << (attempt < 5 ? attempt : 5); /* 0.5 s, 1 s, 2 s, 4 s, 8 s */
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL); /* a Ctrl-C cuts it short, which is what we want */
}

int cli_follow(struct cli *cli, struct cli_stream *s)
{
	struct follower f = { .cli = cli, .s = s };
	struct rb_buf url = RB_BUF_INIT, auth = RB_BUF_INIT, resume = RB_BUF_INIT;
	rb_buf_init(&f.err_body);
	rb_sse_parser_init(&f.parser, count_event, &f);
	int attempts = 0, rc = 0;
	bool reconnect = false;
	char reason[512];
	for (;;) {
		if (s->ended && s->ended(s->arg))
			break;
		if (s->before_connect && (rc = s->before_connect(s->arg)))
			break;
		/* A reconnect resumes: after the last event id the stream carried (Last-Event-ID),
		 * and at resume_path (e.g. a log without a tail, since what was shown stays shown). */
		rb_buf_reset(&url);
		rb_buf_addf(&url, "%s%s", cli->hive_url,
			    reconnect && s->resume_path ? s->resume_path : s->path);
		rb_buf_reset(&resume);
		if (f.parser.last_id.len && f.parser.last_id.len <= 64) /* the hive's are numbers */
			rb_buf_addf(&resume, "Last-Event-ID: %s", f.parser.last_id.data);
		const char *list[4];
		struct rb_http_stream hs = {
			.url = url.data,
			.headers = hive_headers(cli, &auth, list, "Accept: text/event-stream",
						resume.len ? resume.data : NULL),
			.connect_timeout_ms = CONNECT_TIMEOUT_MS,
			.silence_s = STREAM_SILENCE_S,
			.on_body = follower_bytes,
			.poll = follower_poll,
			.arg = &f,
		};
		struct rb_err err = RB_ERR_INIT;
		f.events = 0;
		rb_buf_reset(&f.err_body);
		rb_sse_parser_reset(&f.parser);
		reason[0] = '\0';
		if (rb_http_stream(&hs, &err))
			set_reason(reason, sizeof(reason), url.data, &err);
		if (s->ended && s->ended(s->arg))
			break;
		if (hs.stopped)
			continue; /* poll stopped it (a Ctrl-C): before_connect says what next */
		if (hs.status == 404 && reconnect) {
			fprintf(stderr, "rbee: the hive no longer knows %s (was it restarted?)\n",
				s->what);
			rc = CLI_FAILED;
			break;
		}
		if (hs.status && (hs.status < 200 || hs.status > 299)) {
			rc = cli_http_failure(cli, "GET", s->what_path, hs.status, &f.err_body);
			break;
		}
		if (!hs.status && !reconnect && s->first_must_answer) {
			rc = cli_unreachable(cli, reason);
			break;
		}
		reconnect = true;
		if (f.events)
			attempts = 0;
		if (s->on_lost)
			s->on_lost(s->arg);
		if (++attempts > MAX_RECONNECTS) {
			fprintf(stderr,
				"rbee: lost the connection to the hive at '%s' while following %s: %s%s\n",
				cli->hive_url, s->what, reason[0] ? reason : "the stream ended early",
				s->lost_hint ? s->lost_hint : "");
			rc = CLI_UNREACHABLE;
			break;
		}
		fprintf(stderr, "rbee: connection to the hive lost (%s); reconnecting (%d of %d)\n",
			reason[0] ? reason : "the stream ended early", attempts, MAX_RECONNECTS);
		backoff_sleep(attempts);
	}
	rb_sse_parser_release(&f.parser);
	rb_buf_release(&f.err_body);
	rb_buf_release(&url);
	rb_buf_release(&auth);
	rb_buf_release(&resume);
	return rc;
}

/* ---- the job runner's hooks ---- */

/* DELETE /v1/jobs/{id} after a Ctrl-C. Returns 0 when the runner should wait for the
 * terminal event, else the exit status. */
static int send_cancel(struct run *r)
{
	struct rb_http_resp res;
	char path[192], reason[512];
	r->cancel_sent = true;
	snprintf(path, sizeof(path), "/v1/jobs/%s", r->job_id);
	bar_clear(&r->progress);
	fprintf(stderr, "rbee: cancelling job '%s' on the hive (Ctrl-C again to leave at once)\n",
		r->job_id);
	int rc = 0;
	rb_http_resp_init(&res);
	if (cli_request(r->cli, "DELETE", path, NULL, &res, reason, sizeof(reason)))
		rc = cli_unreachable(r->cli, reason);
	else if (res.status != 200 && res.status != 409) /* 409: it just finished, show how */
		rc = cli_http_failure(r->cli, "DELETE", path, res.status, &res.body);
	rb_http_resp_release(&res);
	return rc;
}

static bool job_ended(void *arg)
{
	return ((struct run *)arg)->terminal != T_NONE;
}

static int job_before_connect(void *arg)
{
	struct run *r = arg;
	return interrupted && !r->cancel_sent ? send_cancel(r) : 0;
}

/* Polled about once a second even while idle: a Ctrl-C stops the transfer so the cancel can
 * be sent. */
static int job_poll(void *arg)
{
	struct run *r = arg;
	return interrupted && !r->cancel_sent;
}

static void job_lost(void *arg)
{
	bar_clear(&((struct run *)arg)->progress);
}

/* Follow the job's stream until the terminal event. Returns 0, or an exit status. */
static int follow(struct run *r)
{
	char path[192], what[160];
	snprintf(path, sizeof(path), "/v1/jobs/%s/stream", r->job_id);
	snprintf(what, sizeof(what), "job '%s'", r->job_id);
	struct cli_stream s = {
		.path = path,
		.what = what,
		.what_path = "/v1/jobs/{id}/stream",
		.lost_hint = "; the job may still be running there",
		.on_event = on_event,
		.ended = job_ended,
		.before_connect = job_before_connect,
		.poll = job_poll,
		.on_lost = job_lost,
		.arg = r,
	};
	return cli_follow(r->cli, &s);
}

static void print_json(FILE *out, struct json_object *o)
{
	cli_print_json(out, o);
}

/* Submit; on success fill r->job_id. Returns 0 or an exit status. */
static int submit(struct run *r, struct json_object *op)
{
	struct rb_http_resp res;
	char reason[512];
	const char *body = rb_json_compact(op);
	rb_http_resp_init(&res);
	if (cli_request(r->cli, "POST", "/v1/jobs", body, &res, reason, sizeof(reason))) {
		rb_http_resp_release(&res);
		return cli_unreachable(r->cli, reason);
	}
	int rc = 0;
	if (res.status < 200 || res.status > 299) {
		rc = cli_http_failure(r->cli, "POST", "/v1/jobs", res.status, &res.body);
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
	rb_http_resp_release(&res);
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
	rb_buf_init(&r.held);
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
