/*
 * A health round that fails on the hive's side says nothing about the workers (workers_monitor.c).
 *
 *  - rb_health_verdicts, the pure rule: a failed round counts against nobody; a request the
 *    hive could not even make (unchecked) counts against nobody; every finished one counts.
 *  - the monitor itself, with the registry's side stubbed here and curl_multi_perform
 *    interposed: when it fails, rounds go on and no worker is ever charged; when it works, the
 *    same harness does see a worker's failed check (so the first case can fail).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "workers/workers_internal.h"

/* ---- the pure rule ---------------------------------------------------------------------- */

static struct rb_health_target target(const char *id, bool checked, bool ok)
{
	struct rb_health_target t;
	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	t.checked = checked;
	t.ok = ok;
	if (checked && !ok)
		snprintf(t.why, sizeof(t.why), "'%s' answered HTTP 500", id);
	return t;
}

static void failed_round_charges_nobody(void **state)
{
	(void)state;
	struct rb_health_target t[3] = { target("a", true, false), target("b", true, true),
					 target("c", false, false) };
	assert_int_equal(rb_health_verdicts(t, 3, true), 0);
}

static void unchecked_requests_are_not_verdicts(void **state)
{
	(void)state;
	struct rb_health_target t[4] = { target("a", false, false), target("b", true, false),
					 target("c", false, false), target("d", true, true) };
	size_t k = rb_health_verdicts(t, 4, false);
	assert_int_equal(k, 2);
	assert_string_equal(t[0].id, "b");
	assert_false(t[0].ok);
	assert_string_equal(t[0].why, "'b' answered HTTP 500");
	assert_string_equal(t[1].id, "d");
	assert_true(t[1].ok);
}

static void every_finished_check_counts(void **state)
{
	(void)state;
	struct rb_health_target t[2] = { target("a", true, false), target("b", true, true) };
	assert_int_equal(rb_health_verdicts(t, 2, false), 2);
	assert_string_equal(t[0].id, "a");
	assert_string_equal(t[1].id, "b");
	assert_int_equal(rb_health_verdicts(t, 0, false), 0);
}

/* ---- the monitor, with the registry stubbed and curl_multi_perform interposed ------------ */

static atomic_bool perform_fails;
static atomic_int rounds, performs, charged, healthy_seen;
static char url[64];

/* Linked with -Wl,--wrap=curl_multi_perform: the monitor's calls come here. */
CURLMcode __real_curl_multi_perform(CURLM *multi, int *running);
CURLMcode __wrap_curl_multi_perform(CURLM *multi, int *running);
CURLMcode __wrap_curl_multi_perform(CURLM *multi, int *running)
{
	atomic_fetch_add(&performs, 1);
	if (atomic_load(&perform_fails))
		return CURLM_INTERNAL_ERROR;
	return __real_curl_multi_perform(multi, running);
}

void rb_workers_reap_all(struct rb_workers *ws)
{
	(void)ws;
}

struct rb_health_target *rb_workers_health_targets(struct rb_workers *ws, size_t *n)
{
	(void)ws;
	struct rb_health_target *t = calloc(2, sizeof(*t));
	assert_non_null(t);
	for (int i = 0; i < 2; i++) {
		snprintf(t[i].id, sizeof(t[i].id), "w%d", i);
		t[i].pid = 1000 + i;
		snprintf(t[i].url, sizeof(t[i].url), "%s", url);
	}
	*n = 2;
	atomic_fetch_add(&rounds, 1);
	return t;
}

void rb_workers_health_record(struct rb_workers *ws, const struct rb_health_target *t, size_t n)
{
	(void)ws;
	for (size_t i = 0; i < n; i++) {
		if (t[i].ok)
			atomic_fetch_add(&healthy_seen, 1);
		else
			atomic_fetch_add(&charged, 1);
	}
}

/* A port nothing listens on: a real check of it fails at once (connection refused). */
static void closed_port_url(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", ntohs(a.sin_port));
	close(s);
}

/* Run the monitor until it has begun `want` rounds (or 10 s passed). */
static void run_monitor(int want)
{
	atomic_store(&rounds, 0);
	atomic_store(&performs, 0);
	atomic_store(&charged, 0);
	atomic_store(&healthy_seen, 0);
	closed_port_url();
	struct rb_workers *ws = calloc(1, sizeof(*ws));
	struct rb_monitor *m = NULL;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_monitor_start(ws, 100, &m, &err), 0);
	for (int i = 0; i < 1000 && atomic_load(&rounds) < want; i++)
		usleep(10000);
	rb_monitor_stop(m);
	free(ws);
	assert_true(atomic_load(&rounds) >= want);
	assert_true(atomic_load(&performs) >= want - 1);
}

static void perform_failure_charges_no_worker(void **state)
{
	(void)state;
	atomic_store(&perform_fails, true);
	run_monitor(4);
	/* Rounds went on (retried), and none of them counted against the two workers. */
	assert_int_equal(atomic_load(&charged), 0);
	assert_int_equal(atomic_load(&healthy_seen), 0);
}

static void a_real_failed_check_is_charged(void **state)
{
	(void)state;
	atomic_store(&perform_fails, false);
	run_monitor(3);
	/* Every completed round charged both workers (refused connections). */
	assert_true(atomic_load(&charged) >= 2 * (atomic_load(&rounds) - 1));
	assert_int_equal(atomic_load(&healthy_seen), 0);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failed_round_charges_nobody),
		cmocka_unit_test(unchecked_requests_are_not_verdicts),
		cmocka_unit_test(every_finished_check_counts),
		cmocka_unit_test(perform_failure_charges_no_worker),
		cmocka_unit_test(a_real_failed_check_is_charged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
