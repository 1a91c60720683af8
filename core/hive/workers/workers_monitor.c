/*
 * workers_monitor.c - the monitor thread: it notices exits (every MONITOR_TICK_MS) and checks
 * the health path of every worker that should answer (every health interval), all of them at
 * once: one libcurl multi handle, each request bounded by HEALTH_TIMEOUT_MS, so a wedged worker
 * (it accepts and never answers) delays nobody else's check, and exits are still noticed every
 * tick while a round waits for it. It sees the registry only through the "monitor's view" of
 * workers_internal.h.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rb_log.h"
#include "rb_proc.h"
#include "workers_internal.h"

#define MONITOR_TICK_MS 250       /* exit detection latency */
#define HEALTH_TIMEOUT_MS 2000    /* one health request */
#define HEALTH_MAX_BODY 65536     /* a health answer larger than this fails the check */

struct rb_monitor {
	struct rb_workers *ws;
	int health_ms;
	pthread_t thread;
	pthread_mutex_t lock;     /* guards stop */
	pthread_cond_t wake;
	bool stop;
	CURLM *multi;             /* the current round's, for curl_multi_wakeup at stop */
};

static bool stopped(struct rb_monitor *m)
{
	pthread_mutex_lock(&m->lock);
	bool s = m->stop;
	pthread_mutex_unlock(&m->lock);
	return s;
}

/* ---- one round of health checks ---------------------------------------------------------- */

struct check {
	struct rb_health_target *t;
	CURL *easy;
	size_t body;
	bool overflow;
	char curl_err[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct check *c = arg;
	size_t n = size * nmemb;
	(void)p;
	if (c->body + n > HEALTH_MAX_BODY) {
		c->overflow = true;
		return 0;
	}
	c->body += n;
	return n;
}

static CURL *check_start(struct check *c)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, c->t->url);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)HEALTH_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)HEALTH_TIMEOUT_MS);
	return e;
}

/* The verdict on one finished request, in the words rb_http_request uses. */
static void check_done(struct check *c, CURLcode cc)
{
	struct rb_health_target *t = c->t;
	long status = 0;
	if (cc == CURLE_WRITE_ERROR && c->overflow)
		snprintf(t->why, sizeof(t->why), "response from '%s' is larger than %d bytes", t->url,
			 HEALTH_MAX_BODY);
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		snprintf(t->why, sizeof(t->why), "'%s' did not answer within %d ms", t->url,
			 HEALTH_TIMEOUT_MS);
	else if (cc != CURLE_OK)
		snprintf(t->why, sizeof(t->why), "cannot reach '%s': %s", t->url,
			 c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc));
	else if (curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
		 status < 200 || status > 299)
		snprintf(t->why, sizeof(t->why), "'%s' answered HTTP %ld", t->url, status);
	else
		t->ok = true;
	t->checked = true;
}

/* How a round ended: with a verdict on every request that ran, stopped with the monitor, or
 * failed on the hive's side (its HTTP client), which says nothing about the workers. */
enum round_end { ROUND_DONE, ROUND_STOPPED, ROUND_HIVE_FAILED };

/* Run every check of `t` at once. ROUND_HIVE_FAILED leaves the failure in `why`. */
static enum round_end run_checks(struct rb_monitor *m, struct rb_health_target *t, size_t n,
				 char *why, size_t why_len)
{
	struct check *c = calloc(n, sizeof(*c));
	CURLM *multi = curl_multi_init();
	enum round_end end = ROUND_DONE;
	if (!c || !multi) {
		snprintf(why, why_len, "cannot create an HTTP client (out of memory)");
		end = ROUND_HIVE_FAILED;
	}
	for (size_t i = 0; end == ROUND_DONE && i < n; i++) {
		c[i].t = &t[i];
		/* A request that cannot even be made is the hive's failure: left unchecked. */
		if (!(c[i].easy = check_start(&c[i])) || curl_multi_add_handle(multi, c[i].easy)) {
			if (c[i].easy)
				curl_easy_cleanup(c[i].easy);
			c[i].easy = NULL;
		}
	}
	if (end == ROUND_DONE) {
		pthread_mutex_lock(&m->lock);
		m->multi = multi;
		if (m->stop)
			end = ROUND_STOPPED;
		pthread_mutex_unlock(&m->lock);
	}
	long long next_reap = rb_now_ms() + MONITOR_TICK_MS;
	for (int running = 1; end == ROUND_DONE && running;) {
		CURLMcode mc = curl_multi_perform(multi, &running);
		if (mc != CURLM_OK) {
			snprintf(why, why_len, "curl_multi_perform: %s", curl_multi_strerror(mc));
			end = ROUND_HIVE_FAILED;
			break;
		}
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(multi, &left)))
			if (msg->msg == CURLMSG_DONE) {
				struct check *ck = NULL;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&ck);
				if (ck)
					check_done(ck, msg->data.result);
			}
		if (!running)
			break;
		long long now = rb_now_ms();
		if (now >= next_reap) {
			rb_workers_reap_all(m->ws); /* exits are not held up by a slow worker */
			next_reap = now + MONITOR_TICK_MS;
		}
		mc = curl_multi_poll(multi, NULL, 0, (int)(next_reap - now > 0 ? next_reap - now : 1),
				     NULL);
		if (mc != CURLM_OK) {
			snprintf(why, why_len, "curl_multi_poll: %s", curl_multi_strerror(mc));
			end = ROUND_HIVE_FAILED;
		} else if (stopped(m)) {
			end = ROUND_STOPPED;
		}
	}
	if (multi) {
		pthread_mutex_lock(&m->lock);
		m->multi = NULL;
		pthread_mutex_unlock(&m->lock);
	}
	for (size_t i = 0; c && i < n; i++)
		if (c[i].easy) {
			curl_multi_remove_handle(multi, c[i].easy);
			curl_easy_cleanup(c[i].easy);
		}
	if (multi)
		curl_multi_cleanup(multi);
	free(c);
	return end;
}

size_t rb_health_verdicts(struct rb_health_target *t, size_t n, bool hive_failed)
{
	if (hive_failed)
		return 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (t[i].checked) {
			if (k != i)
				t[k] = t[i];
			k++;
		}
	return k;
}

static void health_round(struct rb_monitor *m)
{
	size_t n;
	struct rb_health_target *t = rb_workers_health_targets(m->ws, &n);
	char why[CURL_ERROR_SIZE + 64] = "";
	enum round_end end = t ? run_checks(m, t, n, why, sizeof(why)) : ROUND_STOPPED;
	if (end == ROUND_HIVE_FAILED)
		rb_warn("worker health round skipped: the hive could not run its checks (%s); no "
			"worker is charged for it, the next round is in %d ms", why, m->health_ms);
	size_t k = end == ROUND_STOPPED ? 0 : rb_health_verdicts(t, n, end == ROUND_HIVE_FAILED);
	if (end == ROUND_DONE && k < n)
		rb_warn("%zu of %zu worker health check(s) could not be made (the hive could not "
			"create an HTTP client); they are not counted against their workers", n - k, n);
	if (k)
		rb_workers_health_record(m->ws, t, k);
	free(t);
}

/* ---- the thread -------------------------------------------------------------------------- */

/* Sleep `ms` unless stopped; false when stopped. */
static bool nap(struct rb_monitor *m, int ms)
{
	struct timespec ts = rb_time_after_ms(CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&m->lock);
	if (!m->stop)
		pthread_cond_timedwait(&m->wake, &m->lock, &ts);
	bool go = !m->stop;
	pthread_mutex_unlock(&m->lock);
	return go;
}

static void *monitor_main(void *arg)
{
	struct rb_monitor *m = arg;
	long long next_health = rb_now_ms(); /* re-adopted workers are checked at once */
	do {
		rb_workers_reap_all(m->ws);
		if (rb_now_ms() >= next_health) {
			health_round(m);
			next_health = rb_now_ms() + m->health_ms;
		}
	} while (nap(m, MONITOR_TICK_MS));
	return NULL;
}

int rb_monitor_start(struct rb_workers *ws, int health_ms, struct rb_monitor **out,
		     struct rb_err *err)
{
	struct rb_monitor *m = calloc(1, sizeof(*m));
	if (!m)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	m->ws = ws;
	m->health_ms = health_ms;
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	int e = pthread_create(&m->thread, NULL, monitor_main, m);
	if (e) {
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->wake);
		free(m);
		return rb_err_set(err, RB_EINTERNAL, "cannot start the worker monitor thread: %s",
				  strerror(e));
	}
	*out = m;
	return 0;
}

void rb_monitor_stop(struct rb_monitor *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->wake);
	if (m->multi)
		curl_multi_wakeup(m->multi);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	free(m);
}
