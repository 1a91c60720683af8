/*
 * jobs.c - the job engine (see jobs.h for the daemon's view, job.h for the handlers').
 *
 * Locking: the engine lock guards the queue, the job list and the counters; each job's lock
 * guards its state, events and children. Lock order is engine, then job; never the reverse.
 * A job is freed when its last reference goes: the job list holds one, a worker running it
 * one, and each open stream one.
 */
#include "jobs.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "hive.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_sse.h"

/* Events at the start of a job that are never dropped (what it set out to do). */
#define HEAD_KEEP 50
/* A narration line longer than this is cut (build tools can print megabytes on one line). */
#define LINE_MAX_BYTES 8192
/* Progress events of one stage closer together than this are coalesced. */
#define PROGRESS_INTERVAL_MS 200
/* How often the housekeeping thread looks at the jobs. */
#define HOUSEKEEPING_MS 250

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED };

static const char *const state_names[] = {
	[JOB_QUEUED] = "queued", [JOB_RUNNING] = "running", [JOB_DONE] = "done",
	[JOB_FAILED] = "failed", [JOB_CANCELLED] = "cancelled",
};

/* One stored event: its SSE text, ready to send. */
struct job_event {
	uint64_t id;
	size_t len;
	char text[];
};

struct pending_progress {
	bool valid;
	char stage[64];
	uint64_t done, total;
	double rate_bps;
	long long due_ms; /* when it may be sent */
};

struct rb_job {
	/* Set at creation, read-only afterwards. */
	char id[RB_JOB_ID_MAX];
	const struct rb_op *op;
	struct json_object *req;
	struct rb_hive *hive;
	atomic_int refs;
	atomic_bool cancel; /* read by handlers without the lock */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every new event */
	struct rb_job_waiter *waiters; /* woken with it (streams without a thread) */
	enum job_state state;
	long long created_ms, started_ms, finished_ms; /* wall clock, 0 = not yet */
	long long finished_mono_ms;                    /* for retention */
	long long cancel_mono_ms;                      /* when the cancel came, for SIGKILL */
	bool killed;                                   /* SIGKILL already sent */
	char *error;                                   /* failed: the message */

	struct job_event **ev; /* ids strictly increasing */
	size_t nev, cap_ev, ev_bytes;
	uint64_t next_id;
	uint64_t dropped;     /* events dropped so far; ev[HEAD_KEEP] is then the marker */
	uint64_t terminal_id; /* 0 until the terminal event exists */
	struct pending_progress pend;
	char last_stage[64];
	long long last_progress_ms;

	pid_t *children;
	size_t nchildren, cap_children;

	/* Guarded by the engine lock. */
	struct rb_job *next_queued;
};

struct rb_jobs {
	struct rb_hive *hive;
	pthread_mutex_t lock;
	pthread_cond_t work;  /* a job was queued, or stopping */
	pthread_cond_t house; /* wakes the housekeeper early (stopping) */
	bool stopping;
	bool house_exit;
	struct rb_job *queue_head, *queue_tail;
	struct rb_job **all; /* oldest first */
	size_t nall, cap_all;
	size_t nactive, nrunning;
	pthread_t *workers;
	int nworkers;
	pthread_t housekeeper;
	bool housekeeper_started;
};

/* ---- time and ids ---- */

static long long wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC with milliseconds, or JSON null for 0. */
static struct json_object *time_json(long long ms)
{
	if (!ms)
		return NULL;
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char buf[40], out[48];
	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, sizeof(out), "%s.%03dZ", buf, (int)(ms % 1000));
	return json_object_new_string(out);
}

static int make_job_id(char id[RB_JOB_ID_MAX], struct rb_err *err)
{
	unsigned char u[16];
	size_t got = 0;
	while (got < sizeof(u)) {
		ssize_t n = getrandom(u + got, sizeof(u) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return rb_err_set(err, RB_EINTERNAL, "cannot get random bytes for a job id: %s",
					  strerror(errno));
		got += (size_t)n;
	}
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(id, RB_JOB_ID_MAX,
		 "job-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
	return 0;
}

/* ---- the event log of one job (job lock held) ---- */

static void oom(void)
{
	fputs("rbee-hive: out of memory\n", stderr);
	abort();
}

/* What an event's data is; it decides how the text is made safe (see rb_sse.h). */
enum ev_kind { EV_TEXT, EV_JSON, EV_TERMINAL_DONE, EV_TERMINAL_ERROR, EV_TERMINAL_CANCELLED };

/* One event as SSE text. Only the EV_TERMINAL_* kinds can carry a terminal marker: in any
 * other event a "[DONE]" or "[ERROR]" is defused by the writer, and bytes that are not UTF-8
 * become U+FFFD. */
static struct job_event *event_new(uint64_t id, const char *event, const char *data, size_t len,
				   enum ev_kind kind)
{
	struct rb_buf b = RB_BUF_INIT;
	switch (kind) {
	case EV_TEXT:
		rb_sse_write_event(&b, id, event, data, len);
		break;
	case EV_JSON:
		rb_sse_write_json_event(&b, id, event, data, len);
		break;
	case EV_TERMINAL_DONE:
		rb_sse_write_terminal(&b, id, RB_SSE_DONE, NULL);
		break;
	case EV_TERMINAL_ERROR:
		rb_sse_write_terminal(&b, id, RB_SSE_ERROR, data);
		break;
	case EV_TERMINAL_CANCELLED:
		rb_sse_write_terminal(&b, id, RB_SSE_CANCELLED, NULL);
		break;
	}
	struct job_event *e = malloc(sizeof(*e) + b.len + 1);
	if (!e)
		oom();
	e->id = id;
	e->len = b.len;
	memcpy(e->text, b.data, b.len + 1);
	rb_buf_release(&b);
	return e;
}

static void drop_events_locked(struct rb_job *job);

/* Wake whoever waits for the job's events: threads on the condition, streams by their
 * waiter. */
static void notify_locked(struct rb_job *job)
{
	pthread_cond_broadcast(&job->cond);
	for (struct rb_job_waiter *w = job->waiters; w; w = w->next)
		w->wake(w->arg);
}

/* Store one event and wake the streams. No event follows the terminal. */
static void append_locked(struct rb_job *job, const char *event, const char *data, size_t len,
			  enum ev_kind kind)
{
	if (job->terminal_id)
		return;
	struct job_event *e = event_new(job->next_id++, event, data, len, kind);
	if (job->nev == job->cap_ev) {
		size_t cap = job->cap_ev ? job->cap_ev * 2 : 64;
		struct job_event **p = realloc(job->ev, cap * sizeof(*p));
		if (!p)
			oom();
		job->ev = p;
		job->cap_ev = cap;
	}
	job->ev[job->nev++] = e;
	job->ev_bytes += e->len;
	if (job->nev > RB_JOB_MAX_EVENTS || job->ev_bytes > RB_JOB_MAX_EVENT_BYTES)
		drop_events_locked(job);
	notify_locked(job);
}

/*
 * Over a bound: drop the oldest events after the first HEAD_KEEP (down to 90% of the bounds,
 * so this runs rarely) and put one narration marker in their place. The marker takes the id
 * of the last dropped event, so ids stay strictly increasing and a stream that resumes inside
 * the dropped range is told what it missed. The newest event is never dropped.
 */
static void drop_events_locked(struct rb_job *job)
{
	size_t first = HEAD_KEEP + (job->dropped ? 1 : 0); /* first droppable index */
	size_t end = first;
	size_t nev = job->nev, bytes = job->ev_bytes;
	while (end + 1 < job->nev &&
	       (nev > RB_JOB_MAX_EVENTS * 9 / 10 || bytes > RB_JOB_MAX_EVENT_BYTES / 10 * 9)) {
		bytes -= job->ev[end]->len;
		nev--;
		end++;
	}
	if (end == first)
		return;
	uint64_t marker_id = job->ev[end - 1]->id;
	for (size_t i = first; i < end; i++)
		free(job->ev[i]);
	job->dropped += end - first;
	if (first > HEAD_KEEP) { /* the old marker goes too */
		bytes -= job->ev[HEAD_KEEP]->len;
		free(job->ev[HEAD_KEEP]);
	}
	memmove(job->ev + HEAD_KEEP + 1, job->ev + end, (job->nev - end) * sizeof(*job->ev));
	job->nev = HEAD_KEEP + 1 + (job->nev - end);

	char text[96];
	snprintf(text, sizeof(text), "... %" PRIu64 " earlier lines dropped ...", job->dropped);
	struct job_event *m = event_new(marker_id, NULL, text, strlen(text), EV_TEXT);
	job->ev[HEAD_KEEP] = m;
	job->ev_bytes = bytes + m->len;
}

static void emit_progress_locked(struct rb_job *job, const char *stage, uint64_t done,
				 uint64_t total, double rate_bps)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "stage", stage);
	json_object_object_add(o, "bytes_done", json_object_new_uint64(done));
	json_object_object_add(o, "bytes_total", json_object_new_uint64(total));
	json_object_object_add(o, "rate_bps",
			       json_object_new_uint64(rate_bps > 0 ? (uint64_t)(rate_bps + 0.5) : 0));
	const char *s = rb_json_compact(o);
	append_locked(job, "progress", s, strlen(s), EV_JSON);
	json_object_put(o);
	snprintf(job->last_stage, sizeof(job->last_stage), "%s", stage);
	job->last_progress_ms = rb_now_ms();
}

/* Send a coalesced progress event that is held back: before any other event (order), or
 * once its time has come (`force` false). */
static void flush_progress_locked(struct rb_job *job, bool force)
{
	if (!job->pend.valid || (!force && rb_now_ms() < job->pend.due_ms))
		return;
	job->pend.valid = false;
	emit_progress_locked(job, job->pend.stage, job->pend.done, job->pend.total,
			     job->pend.rate_bps);
}

/* Make one narration line safe and readable: the text after the last CR (what a terminal
 * would show), without ANSI escape sequences or control characters, cut at LINE_MAX_BYTES,
 * and with the terminal markers defused so no client mistakes a line for the end. */
static void clean_line(const char *in, size_t len, struct rb_buf *out)
{
	while (len && in[len - 1] == '\r')
		len--;
	for (size_t i = len; i > 0; i--)
		if (in[i - 1] == '\r') {
			in += i;
			len -= i;
			break;
		}
	rb_buf_reset(out);
	for (size_t i = 0; i < len && out->len < LINE_MAX_BYTES; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == 0x1b) { /* ESC: skip a CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST) or pair */
			if (i + 1 < len && in[i + 1] == '[') {
				i += 2;
				while (i < len && !((unsigned char)in[i] >= 0x40 && (unsigned char)in[i] <= 0x7e))
					i++;
			} else if (i + 1 < len && in[i + 1] == ']') {
				i += 2;
				while (i < len && in[i] != '\a' && !(in[i] == 0x1b && i + 1 < len && in[i + 1] == '\\'))
					i++;
				if (i < len && in[i] == 0x1b)
					i++;
			} else {
				i++;
			}
			continue;
		}
		if (c < 0x20 && c != '\t')
			continue;
		if (c == 0x7f)
			continue;
		rb_buf_addch(out, (char)c);
	}
	if (out->len >= LINE_MAX_BYTES)
		rb_buf_adds(out, " [line cut]");
	static const char *const markers[] = { "[DONE]", "[ERROR]", "[CANCELLED]" };
	for (size_t m = 0; m < 3; m++)
		for (char *p = strstr(out->data, markers[m]); p; p = strstr(p, markers[m])) {
			p[0] = '(';
			p[strlen(markers[m]) - 1] = ')';
		}
}

static void say_locked(struct rb_job *job, const char *text, size_t len)
{
	struct rb_buf line = RB_BUF_INIT;
	flush_progress_locked(job, true);
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != '\n')
			continue;
		if (i == len && start == len && len > 0)
			break; /* text ending in "\n": no empty last line */
		clean_line(text + start, i - start, &line);
		append_locked(job, NULL, line.data, line.len, EV_TEXT);
		start = i + 1;
	}
	rb_buf_release(&line);
}

/* ---- job.h: what handlers call ---- */

struct rb_hive *rb_job_hive(struct rb_job *job)
{
	return job->hive;
}

const char *rb_job_id(struct rb_job *job)
{
	return job->id;
}

void rb_job_say_raw(struct rb_job *job, const char *text, size_t len)
{
	pthread_mutex_lock(&job->lock);
	say_locked(job, text, len);
	pthread_mutex_unlock(&job->lock);
}

void rb_job_say(struct rb_job *job, const char *fmt, ...)
{
	struct rb_buf b = RB_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	rb_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	rb_job_say_raw(job, b.data, b.len);
	rb_buf_release(&b);
}

void rb_job_progress(struct rb_job *job, const char *stage, uint64_t done, uint64_t total,
		     double rate_bps)
{
	if (!stage || !*stage)
		stage = "working";
	pthread_mutex_lock(&job->lock);
	long long now = rb_now_ms();
	bool complete = total > 0 && done == total;
	if (!complete && !strcmp(stage, job->last_stage) &&
	    now - job->last_progress_ms < PROGRESS_INTERVAL_MS) {
		struct pending_progress *p = &job->pend;
		bool was_pending = p->valid;
		p->valid = true;
		snprintf(p->stage, sizeof(p->stage), "%s", stage);
		p->done = done;
		p->total = total;
		p->rate_bps = rate_bps;
		p->due_ms = job->last_progress_ms + PROGRESS_INTERVAL_MS;
		if (!was_pending) /* a stream learns when it comes due (its due time stays) */
			notify_locked(job);
	} else {
		job->pend.valid = false; /* superseded */
		emit_progress_locked(job, stage, done, total, rate_bps);
	}
	pthread_mutex_unlock(&job->lock);
}

void rb_job_data(struct rb_job *job, struct json_object *result)
{
	const char *s = result ? rb_json_compact(result) : "null";
	pthread_mutex_lock(&job->lock);
	flush_progress_locked(job, true);
	append_locked(job, "data", s, strlen(s), EV_JSON);
	pthread_mutex_unlock(&job->lock);
	json_object_put(result);
}

bool rb_job_cancelled(struct rb_job *job)
{
	return atomic_load(&job->cancel);
}

bool rb_job_should_stop(void *job)
{
	return rb_job_cancelled(job);
}

void rb_job_add_child(struct rb_job *job, pid_t pgid)
{
	if (pgid <= 0)
		return;
	pthread_mutex_lock(&job->lock);
	if (job->nchildren == job->cap_children) {
		size_t cap = job->cap_children ? job->cap_children * 2 : 4;
		pid_t *p = realloc(job->children, cap * sizeof(*p));
		if (!p)
			oom();
		job->children = p;
		job->cap_children = cap;
	}
	job->children[job->nchildren++] = pgid;
	/* Started after the cancel came: stop it at once as well. */
	if (atomic_load(&job->cancel))
		kill(-pgid, job->killed ? SIGKILL : SIGTERM);
	pthread_mutex_unlock(&job->lock);
}

void rb_job_remove_child(struct rb_job *job, pid_t pgid)
{
	pthread_mutex_lock(&job->lock);
	for (size_t i = 0; i < job->nchildren; i++)
		if (job->children[i] == pgid) {
			job->children[i] = job->children[--job->nchildren];
			break;
		}
	pthread_mutex_unlock(&job->lock);
}

/* ---- job lifetime ---- */

static struct rb_job *job_new(struct rb_hive *hive, const struct rb_op *op, struct json_object *req)
{
	struct rb_job *job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	job->op = op;
	job->req = req;
	job->hive = hive;
	atomic_init(&job->refs, 1);
	atomic_init(&job->cancel, false);
	pthread_mutex_init(&job->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&job->cond, &ca);
	pthread_condattr_destroy(&ca);
	job->state = JOB_QUEUED;
	job->created_ms = wall_ms();
	job->next_id = 1;
	return job;
}

static void job_ref(struct rb_job *job)
{
	atomic_fetch_add(&job->refs, 1);
}

void rb_job_unref(struct rb_job *job)
{
	if (!job || atomic_fetch_sub(&job->refs, 1) != 1)
		return;
	for (size_t i = 0; i < job->nev; i++)
		free(job->ev[i]);
	free(job->ev);
	free(job->children);
	free(job->error);
	json_object_put(job->req);
	pthread_cond_destroy(&job->cond);
	pthread_mutex_destroy(&job->lock);
	free(job);
}

static bool finished(enum job_state s)
{
	return s == JOB_DONE || s == JOB_FAILED || s == JOB_CANCELLED;
}

/* Turn a handler's outcome into the job's final state and its one terminal event. A job whose
 * cancel was requested ends [CANCELLED] whatever the handler returned: the client was already
 * told so. Job lock held. */
static void finish_locked(struct rb_job *job, int rc, const struct rb_err *err)
{
	flush_progress_locked(job, true);
	if (atomic_load(&job->cancel) || rc == -RB_ECANCELLED) {
		job->state = JOB_CANCELLED;
		append_locked(job, NULL, NULL, 0, EV_TERMINAL_CANCELLED);
	} else if (rc == 0) {
		job->state = JOB_DONE;
		append_locked(job, NULL, NULL, 0, EV_TERMINAL_DONE);
	} else {
		job->state = JOB_FAILED;
		/* The message may quote build output: one line, UTF-8 only (GET /v1/jobs lists it
		 * as JSON). */
		struct rb_buf msg = RB_BUF_INIT;
		const char *m = err && err->msg[0] ? err->msg : "";
		rb_utf8_sanitize(m, strlen(m), &msg);
		if (!msg.len)
			rb_buf_addf(&msg, "operation '%s' failed", job->op->name);
		for (size_t i = 0; i < msg.len; i++) /* the terminal is one line */
			if (msg.data[i] == '\n' || msg.data[i] == '\r')
				msg.data[i] = ' ';
		job->error = strdup(msg.data);
		append_locked(job, NULL, msg.data, msg.len, EV_TERMINAL_ERROR);
		rb_buf_release(&msg);
	}
	job->terminal_id = job->next_id - 1;
	job->finished_ms = wall_ms();
	job->finished_mono_ms = rb_now_ms();
}

static void log_finish(struct rb_job *job)
{
	long long ms = job->finished_ms - (job->started_ms ? job->started_ms : job->created_ms);
	if (job->state == JOB_FAILED)
		rb_warn("job %s (%s) failed after %lld ms: %s", job->id, job->op->name, ms, job->error);
	else
		rb_info("job %s (%s) %s after %lld ms", job->id, job->op->name,
			state_names[job->state], ms);
}

/* ---- the worker pool ---- */

/* Run a job taken off the queue. Returns false when a cancel ended it before it started. */
static bool run_job(struct rb_job *job)
{
	pthread_mutex_lock(&job->lock);
	if (job->state != JOB_QUEUED) { /* cancelled between the queue and here */
		pthread_mutex_unlock(&job->lock);
		return false;
	}
	job->state = JOB_RUNNING;
	job->started_ms = wall_ms();
	pthread_mutex_unlock(&job->lock);

	struct rb_err err = RB_ERR_INIT;
	int rc = job->op->run(job, job->req, &err);

	pthread_mutex_lock(&job->lock);
	finish_locked(job, rc, &err);
	job->nchildren = 0; /* the handler reaped them; nothing more to signal */
	pthread_mutex_unlock(&job->lock);
	log_finish(job);
	return true;
}

static void *worker_main(void *arg)
{
	struct rb_jobs *jobs = arg;
	pthread_mutex_lock(&jobs->lock);
	for (;;) {
		while (!jobs->queue_head && !jobs->stopping)
			pthread_cond_wait(&jobs->work, &jobs->lock);
		struct rb_job *job = jobs->queue_head;
		if (!job)
			break; /* stopping and nothing left */
		jobs->queue_head = job->next_queued;
		if (!jobs->queue_head)
			jobs->queue_tail = NULL;
		job->next_queued = NULL;
		jobs->nrunning++;
		job_ref(job);
		pthread_mutex_unlock(&jobs->lock);
		bool ran = run_job(job);
		rb_job_unref(job);
		pthread_mutex_lock(&jobs->lock);
		jobs->nrunning--;
		if (ran) /* a cancel before the start counted the job out itself */
			jobs->nactive--;
	}
	pthread_mutex_unlock(&jobs->lock);
	return NULL;
}

/* ---- housekeeping: SIGKILL after the grace period, retirement of old jobs ---- */

static void escalate_kills(struct rb_jobs *jobs, long long now)
{
	for (size_t i = 0; i < jobs->nall; i++) {
		struct rb_job *job = jobs->all[i];
		pthread_mutex_lock(&job->lock);
		if (job->state == JOB_RUNNING && atomic_load(&job->cancel) && !job->killed &&
		    now - job->cancel_mono_ms >= RB_JOB_KILL_GRACE_MS) {
			for (size_t c = 0; c < job->nchildren; c++) {
				rb_warn("job %s: process group %d still running %d ms after the "
					"cancel, killing it",
					job->id, (int)job->children[c], RB_JOB_KILL_GRACE_MS);
				kill(-job->children[c], SIGKILL);
			}
			job->killed = true;
		}
		pthread_mutex_unlock(&job->lock);
	}
}

/* Drop finished jobs beyond the newest RB_JOBS_KEEP_FINISHED, beyond RB_JOBS_KEEP_BYTES of
 * their events together, or older than RB_JOBS_KEEP_SECONDS. Engine lock held. */
static void retire_jobs(struct rb_jobs *jobs, long long now)
{
	size_t kept_finished = 0, kept_bytes = 0, out = jobs->nall;
	/* Walk newest to oldest, compacting the survivors towards the end. */
	for (size_t i = jobs->nall; i-- > 0;) {
		struct rb_job *job = jobs->all[i];
		pthread_mutex_lock(&job->lock);
		bool done = finished(job->state);
		bool old = done && now - job->finished_mono_ms > (long long)RB_JOBS_KEEP_SECONDS * 1000;
		size_t bytes = job->ev_bytes;
		pthread_mutex_unlock(&job->lock);
		if (done && (old || kept_finished >= RB_JOBS_KEEP_FINISHED ||
			     (kept_finished && kept_bytes + bytes > RB_JOBS_KEEP_BYTES))) {
			rb_job_unref(job);
			continue;
		}
		kept_finished += done;
		kept_bytes += done ? bytes : 0;
		jobs->all[--out] = job;
	}
	if (out) {
		memmove(jobs->all, jobs->all + out, (jobs->nall - out) * sizeof(*jobs->all));
		jobs->nall -= out;
	}
}

static void *housekeeper_main(void *arg)
{
	struct rb_jobs *jobs = arg;
	pthread_mutex_lock(&jobs->lock);
	while (!jobs->house_exit) {
		long long now = rb_now_ms();
		escalate_kills(jobs, now);
		retire_jobs(jobs, now);
		struct timespec ts = rb_time_after_ms(CLOCK_MONOTONIC, HOUSEKEEPING_MS);
		pthread_cond_timedwait(&jobs->house, &jobs->lock, &ts);
	}
	pthread_mutex_unlock(&jobs->lock);
	return NULL;
}

/* ---- jobs.h ---- */

static void engine_destroy(struct rb_jobs *jobs)
{
	for (size_t i = 0; i < jobs->nall; i++)
		rb_job_unref(jobs->all[i]);
	free(jobs->all);
	free(jobs->workers);
	pthread_cond_destroy(&jobs->work);
	pthread_cond_destroy(&jobs->house);
	pthread_mutex_destroy(&jobs->lock);
	free(jobs);
}

int rb_jobs_init(struct rb_hive *hive, struct rb_err *err)
{
	struct rb_jobs *jobs = calloc(1, sizeof(*jobs));
	if (!jobs)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	jobs->hive = hive;
	pthread_mutex_init(&jobs->lock, NULL);
	pthread_cond_init(&jobs->work, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&jobs->house, &ca);
	pthread_condattr_destroy(&ca);
	int n = hive->cfg.max_jobs > 0 ? hive->cfg.max_jobs : 8;
	jobs->workers = calloc((size_t)n, sizeof(*jobs->workers));
	if (!jobs->workers) {
		engine_destroy(jobs);
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	}
	hive->jobs = jobs;
	int e = 0;
	/* Default stacks: handlers (builds, downloads) are ordinary code, not tuned for less. */
	for (; jobs->nworkers < n; jobs->nworkers++)
		if ((e = pthread_create(&jobs->workers[jobs->nworkers], NULL, worker_main, jobs)))
			break;
	if (!e && !(e = pthread_create(&jobs->housekeeper, NULL, housekeeper_main, jobs)))
		jobs->housekeeper_started = true;
	if (e) {
		rb_jobs_shutdown(hive);
		rb_jobs_free(hive);
		return rb_err_set(err, RB_EINTERNAL, "cannot start the job threads: %s", strerror(e));
	}
	if (rb_jobs_test_ops_enabled(hive))
		rb_warn("RBEE_ENABLE_TEST_OPS=1: test-only operations are enabled; never use this in "
			"production");
	return 0;
}

/* Cancel one job (engine and job locks held). Returns false when it already finished. */
static bool cancel_locked(struct rb_jobs *jobs, struct rb_job *job)
{
	if (finished(job->state))
		return false;
	if (atomic_exchange(&job->cancel, true))
		return true; /* already on its way */
	job->cancel_mono_ms = rb_now_ms();
	rb_info("job %s (%s): cancel requested while %s", job->id, job->op->name,
		state_names[job->state]);
	if (job->state == JOB_QUEUED) {
		struct rb_job **pp = &jobs->queue_head, *prev = NULL;
		while (*pp && *pp != job) {
			prev = *pp;
			pp = &(*pp)->next_queued;
		}
		if (*pp) {
			*pp = job->next_queued;
			if (jobs->queue_tail == job)
				jobs->queue_tail = prev;
			job->next_queued = NULL;
		}
		finish_locked(job, -RB_ECANCELLED, NULL);
		jobs->nactive--;
		log_finish(job);
		return true;
	}
	for (size_t i = 0; i < job->nchildren; i++)
		kill(-job->children[i], SIGTERM);
	return true;
}

void rb_jobs_shutdown(struct rb_hive *hive)
{
	struct rb_jobs *jobs = hive->jobs;
	if (!jobs)
		return;
	pthread_mutex_lock(&jobs->lock);
	if (jobs->stopping) {
		pthread_mutex_unlock(&jobs->lock);
		return;
	}
	jobs->stopping = true;
	size_t ncancelled = 0;
	for (size_t i = 0; i < jobs->nall; i++) {
		struct rb_job *job = jobs->all[i];
		pthread_mutex_lock(&job->lock);
		ncancelled += cancel_locked(jobs, job);
		pthread_mutex_unlock(&job->lock);
	}
	pthread_cond_broadcast(&jobs->work);
	pthread_mutex_unlock(&jobs->lock);
	if (ncancelled)
		rb_info("shutting down: cancelled %zu unfinished job(s)", ncancelled);

	for (int i = 0; i < jobs->nworkers; i++)
		pthread_join(jobs->workers[i], NULL);
	jobs->nworkers = 0;
	if (jobs->housekeeper_started) { /* kept running until here: it sends the SIGKILLs */
		pthread_mutex_lock(&jobs->lock);
		jobs->house_exit = true;
		pthread_cond_broadcast(&jobs->house);
		pthread_mutex_unlock(&jobs->lock);
		pthread_join(jobs->housekeeper, NULL);
		jobs->housekeeper_started = false;
	}
}

void rb_jobs_free(struct rb_hive *hive)
{
	if (!hive->jobs)
		return;
	rb_jobs_shutdown(hive);
	engine_destroy(hive->jobs);
	hive->jobs = NULL;
}

bool rb_jobs_test_ops_enabled(const struct rb_hive *hive)
{
	(void)hive;
	const char *v = getenv("RBEE_ENABLE_TEST_OPS");
	return v && !strcmp(v, "1");
}

bool rb_jobs_op_available(const struct rb_hive *hive, const struct rb_op *op)
{
	return strncmp(op->name, "test_", 5) != 0 || rb_jobs_test_ops_enabled(hive);
}

/* "hive_check, worker_catalog_list, ..." for the unknown-operation message. */
static void list_ops(const struct rb_hive *hive, struct rb_buf *out)
{
	for (const struct rb_op *op = rb_op_table(); op->name; op++) {
		if (!rb_jobs_op_available(hive, op))
			continue;
		if (out->len)
			rb_buf_adds(out, ", ");
		rb_buf_adds(out, op->name);
	}
}

/* The envelope of a request: "operation" names an available operation, "hive_id" is ours. */
static int check_envelope(struct rb_hive *hive, struct json_object *req, const struct rb_op **op,
			  struct rb_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, "operation", &v) || json_object_is_type(v, json_type_null))
		return rb_err_set(err, RB_EINVAL,
				  "missing field 'operation': name what to run, e.g. "
				  "{\"operation\":\"hive_check\"}");
	if (!json_object_is_type(v, json_type_string))
		return rb_err_set(err, RB_EINVAL, "field 'operation' must be a string");
	const char *name = json_object_get_string(v);
	*op = rb_op_find(name);
	if (!*op || !rb_jobs_op_available(hive, *op)) {
		struct rb_buf known = RB_BUF_INIT;
		list_ops(hive, &known);
		rb_err_set(err, RB_EINVAL, "unknown operation '%s': this hive runs %s", name,
			   known.data);
		rb_buf_release(&known);
		return -RB_EINVAL;
	}
	if (json_object_object_get_ex(req, "hive_id", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_string))
			return rb_err_set(err, RB_EINVAL, "field 'hive_id' must be a string");
		if (strcmp(json_object_get_string(v), hive->cfg.hive_id) != 0)
			return rb_err_set(err, RB_EINVAL,
					  "this is hive '%s', not '%s': send the job to that hive, or "
					  "leave 'hive_id' out",
					  hive->cfg.hive_id, json_object_get_string(v));
	}
	return 0;
}

/* "an array", "a string"... for messages about what came instead of an object. */
static const char *json_kind(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	case json_type_int:
	case json_type_double:
		return "a number";
	case json_type_boolean:
		return "a boolean";
	case json_type_null:
		return "null";
	case json_type_object:
		break;
	}
	return "an object";
}

int rb_jobs_parse_request(struct rb_hive *hive, const char *body, size_t len,
			  const struct rb_op **op, struct json_object **req, struct rb_err *err)
{
	*op = NULL;
	*req = NULL;
	size_t i = 0;
	while (i < len && strchr(" \t\r\n", body[i]))
		i++;
	if (i == len)
		return rb_err_set(err, RB_EINVAL,
				  "empty request body: send a JSON object such as "
				  "{\"operation\":\"hive_check\"}");
	struct rb_err perr = RB_ERR_INIT;
	struct json_object *obj = rb_json_parse(body, len, &perr);
	if (!obj && len - i >= 4 && !strncmp(body + i, "null", 4)) /* parsed, but no object */
		return rb_err_set(err, RB_EINVAL,
				  "request body must be a JSON object with an 'operation' field, not null");
	if (!obj) {
		if (err)
			*err = perr;
		return rb_err_prefix(err, "request body is not valid JSON");
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rb_err_set(err, RB_EINVAL,
			   "request body must be a JSON object with an 'operation' field, not %s",
			   json_kind(obj));
		json_object_put(obj);
		return -RB_EINVAL;
	}
	int rc = check_envelope(hive, obj, op, err);
	if (!rc)
		rc = rb_op_validate(hive, *op, obj, err);
	if (rc) {
		json_object_put(obj);
		*op = NULL;
		return rc;
	}
	*req = obj;
	return 0;
}

static int list_add(struct rb_jobs *jobs, struct rb_job *job)
{
	if (jobs->nall == jobs->cap_all) {
		size_t cap = jobs->cap_all ? jobs->cap_all * 2 : 64;
		struct rb_job **p = realloc(jobs->all, cap * sizeof(*p));
		if (!p)
			return -1;
		jobs->all = p;
		jobs->cap_all = cap;
	}
	jobs->all[jobs->nall++] = job;
	return 0;
}

/* Put an admitted job at the end of the queue; when every slot is busy, its first narration
 * line says so. Engine lock held. */
static void enqueue_locked(struct rb_jobs *jobs, struct rb_job *job)
{
	size_t waiting = jobs->nactive - jobs->nrunning;
	jobs->nactive++;
	if (jobs->nrunning + waiting >= (size_t)jobs->nworkers) {
		char line[200];
		snprintf(line, sizeof(line),
			 "queued: all %d job slots are busy (see --max-jobs); %zu job(s) wait ahead "
			 "of this one",
			 jobs->nworkers, waiting);
		pthread_mutex_lock(&job->lock);
		say_locked(job, line, strlen(line));
		pthread_mutex_unlock(&job->lock);
	}
	if (jobs->queue_tail)
		jobs->queue_tail->next_queued = job;
	else
		jobs->queue_head = job;
	jobs->queue_tail = job;
	pthread_cond_signal(&jobs->work);
}

int rb_jobs_submit(struct rb_hive *hive, const struct rb_op *op, struct json_object *req,
		   char id[RB_JOB_ID_MAX], struct rb_err *err)
{
	struct rb_jobs *jobs = hive->jobs;
	if (!jobs) {
		json_object_put(req);
		return rb_err_set(err, RB_EUNAVAIL, "the job engine is not running");
	}
	struct rb_job *job = job_new(hive, op, req);
	if (!job) {
		json_object_put(req);
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	}
	if (make_job_id(job->id, err)) {
		rb_job_unref(job);
		return -err->code;
	}
	pthread_mutex_lock(&jobs->lock);
	int rc = 0;
	if (jobs->stopping)
		rc = rb_err_set(err, RB_EUNAVAIL, "the hive is shutting down: submit the job again "
						  "once it is back");
	else if (jobs->nactive >= RB_JOBS_MAX_ACTIVE)
		rc = rb_err_set(err, RB_EUNAVAIL,
				"too many jobs: %zu are queued or running (limit %d); wait for some "
				"to finish or cancel them",
				jobs->nactive, RB_JOBS_MAX_ACTIVE);
	else if (list_add(jobs, job))
		rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
	if (rc) {
		pthread_mutex_unlock(&jobs->lock);
		rb_job_unref(job);
		return rc;
	}
	enqueue_locked(jobs, job);
	memcpy(id, job->id, RB_JOB_ID_MAX);
	pthread_mutex_unlock(&jobs->lock);
	rb_info("job %s: %s submitted", id, op->name);
	return 0;
}

struct rb_job *rb_jobs_get(struct rb_hive *hive, const char *id)
{
	struct rb_jobs *jobs = hive->jobs;
	struct rb_job *found = NULL;
	if (!jobs || !id)
		return NULL;
	pthread_mutex_lock(&jobs->lock);
	for (size_t i = 0; i < jobs->nall; i++)
		if (!strcmp(jobs->all[i]->id, id)) {
			found = jobs->all[i];
			job_ref(found);
			break;
		}
	pthread_mutex_unlock(&jobs->lock);
	return found;
}

int rb_jobs_cancel(struct rb_hive *hive, const char *id, struct rb_err *err)
{
	struct rb_jobs *jobs = hive->jobs;
	int rc = 0;
	if (!jobs)
		return rb_err_set(err, RB_ENOTFOUND, "no job '%s' on this hive", id);
	pthread_mutex_lock(&jobs->lock);
	struct rb_job *job = NULL;
	for (size_t i = 0; i < jobs->nall && !job; i++)
		if (!strcmp(jobs->all[i]->id, id))
			job = jobs->all[i];
	if (!job) {
		rc = rb_err_set(err, RB_ENOTFOUND,
				"no job '%s' on this hive (finished jobs are kept for %d minutes)", id,
				RB_JOBS_KEEP_SECONDS / 60);
	} else {
		pthread_mutex_lock(&job->lock);
		if (!cancel_locked(jobs, job))
			rc = rb_err_set(err, RB_ECONFLICT, "job '%s' already finished (%s): nothing to cancel",
					id, state_names[job->state]);
		pthread_mutex_unlock(&job->lock);
	}
	pthread_mutex_unlock(&jobs->lock);
	return rc;
}

static struct json_object *job_json_locked(struct rb_job *job)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "job_id", job->id);
	rb_json_add_str(o, "operation", job->op->name);
	rb_json_add_str(o, "state", state_names[job->state]);
	json_object_object_add(o, "created_at", time_json(job->created_ms));
	json_object_object_add(o, "started_at", time_json(job->started_ms));
	json_object_object_add(o, "finished_at", time_json(job->finished_ms));
	rb_json_add_str(o, "error", job->error);
	json_object_object_add(o, "events", json_object_new_uint64(job->next_id - 1));
	return o;
}

struct json_object *rb_jobs_list_json(struct rb_hive *hive)
{
	struct rb_jobs *jobs = hive->jobs;
	struct json_object *arr = json_object_new_array();
	if (jobs)
		pthread_mutex_lock(&jobs->lock);
	for (size_t i = jobs ? jobs->nall : 0; i-- > 0;) {
		struct rb_job *job = jobs->all[i];
		pthread_mutex_lock(&job->lock);
		json_object_array_add(arr, job_json_locked(job));
		pthread_mutex_unlock(&job->lock);
	}
	if (jobs)
		pthread_mutex_unlock(&jobs->lock);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "jobs", arr);
	return o;
}

/* ---- stream reading ---- */

/* Index of the first event with id > cursor (ids are sorted). */
static size_t first_after(struct rb_job *job, uint64_t cursor)
{
	size_t lo = 0, hi = job->nev;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (job->ev[mid]->id <= cursor)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void deadline_in(struct timespec *ts, long long ms)
{
	*ts = rb_time_after_ms(CLOCK_MONOTONIC, ms);
}

size_t rb_job_poll_events(struct rb_job *job, uint64_t *cursor, size_t *skip, size_t max_bytes,
			  struct rb_buf *out, bool *ended, long long *due_ms)
{
	size_t count = 0, added = 0;
	*ended = false;
	pthread_mutex_lock(&job->lock);
	flush_progress_locked(job, false);
	for (size_t i = first_after(job, *cursor); i < job->nev && added < max_bytes; i++) {
		const struct job_event *ev = job->ev[i];
		size_t off = *skip < ev->len ? *skip : 0;
		size_t n = ev->len - off;
		if (added + n > max_bytes) { /* the part that fits; the rest next time */
			n = max_bytes - added;
			rb_buf_add(out, ev->text + off, n);
			*skip = off + n;
			added += n;
			break;
		}
		rb_buf_add(out, ev->text + off, n);
		added += n;
		*cursor = ev->id;
		*skip = 0;
		count++;
	}
	if (job->terminal_id && *cursor >= job->terminal_id)
		*ended = true;
	*due_ms = job->pend.valid ? job->pend.due_ms : 0;
	pthread_mutex_unlock(&job->lock);
	return count;
}

void rb_job_watch(struct rb_job *job, struct rb_job_waiter *w)
{
	pthread_mutex_lock(&job->lock);
	w->prev = NULL;
	w->next = job->waiters;
	if (job->waiters)
		job->waiters->prev = w;
	job->waiters = w;
	pthread_mutex_unlock(&job->lock);
}

void rb_job_unwatch(struct rb_job *job, struct rb_job_waiter *w)
{
	pthread_mutex_lock(&job->lock);
	if (w->prev)
		w->prev->next = w->next;
	else if (job->waiters == w)
		job->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	pthread_mutex_unlock(&job->lock);
}

size_t rb_job_read_events(struct rb_job *job, uint64_t *cursor, size_t max_bytes, int timeout_ms,
			  struct rb_buf *out, bool *ended)
{
	size_t count = 0;
	long long give_up = rb_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	*ended = false;
	pthread_mutex_lock(&job->lock);
	for (;;) {
		flush_progress_locked(job, false);
		size_t added = 0;
		for (size_t i = first_after(job, *cursor); i < job->nev; i++) {
			if (count && added + job->ev[i]->len > max_bytes)
				break;
			rb_buf_add(out, job->ev[i]->text, job->ev[i]->len);
			added += job->ev[i]->len;
			*cursor = job->ev[i]->id;
			count++;
		}
		if (job->terminal_id && *cursor >= job->terminal_id)
			*ended = true;
		long long now = rb_now_ms();
		if (count || *ended || now >= give_up)
			break;
		/* Wake for a new event, a held-back progress event coming due, or the time-out. */
		long long wait = give_up - now;
		if (job->pend.valid && job->pend.due_ms - now < wait)
			wait = job->pend.due_ms > now ? job->pend.due_ms - now : 1;
		struct timespec ts;
		deadline_in(&ts, wait);
		pthread_cond_timedwait(&job->cond, &job->lock, &ts);
	}
	pthread_mutex_unlock(&job->lock);
	return count;
}
