/*
 * workers_monitor.c - watching and stopping worker processes: reaping (one pid at a time,
 * never waitpid(-1)), liveness of re-adopted workers through /proc, health checks, stopping a
 * process group with a grace period, and the monitor thread that does it all in the
 * background (see workers.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hive.h"
#include "rb_http.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_procfs.h"
#include "workers_internal.h"

#define MONITOR_TICK_MS 250       /* exit detection latency */
#define HEALTH_TIMEOUT_MS 2000    /* one health request */
#define KILL_WAIT_MS 5000         /* after SIGKILL, how long to wait for the end */
#define STOP_POLL_US 20000

/* ---- reaping ----------------------------------------------------------------------------- */

/* Record how a live entry's process ended, and say so in the hive's log: stopped by the hive
 * (on request, at shutdown, or because its spawn failed) or ended by itself. */
static void ended(struct rb_workers *ws, struct rb_worker *w, const char *how)
{
	bool stopped = w->stopping;
	const char *why = !stopped                                        ? NULL
			  : ws->stopping                                  ? "at hive shutdown"
			  : w->state == RB_WORKER_STARTING && !w->adopted ? "before it became ready "
									    "(its spawn failed or was cancelled)"
									  : "on request";
	w->state = stopped ? RB_WORKER_STOPPED : RB_WORKER_EXITED;
	snprintf(w->reason, sizeof(w->reason), "%s", how);
	if (stopped)
		rb_info("stopped worker '%s' (pid %d, port %u, model '%s') %s: %s", w->id, (int)w->pid,
			w->port, w->model, why, how);
	else
		rb_warn("worker '%s' (pid %d, port %u, model '%s') %s; its log: '%s'", w->id,
			(int)w->pid, w->port, w->model, how, w->log_path);
	rb_workers_save_locked(ws);
}

/* Our child: has it ended? waitid(WNOWAIT) looks without reaping, so while the leader is a
 * zombie its pid (the group id) cannot be reused, and whatever it left in its process group
 * can be killed safely before the reap. */
static bool reap_child(struct rb_workers *ws, struct rb_worker *w)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
		if (errno != ECHILD)
			return false;
		/* Not our child after all (cannot happen unless someone else reaped it). */
		w->adopted = true;
		return false;
	}
	if (si.si_pid != w->pid)
		return false; /* still running */
	kill(-w->pid, SIGKILL); /* stragglers in its group; harmless when none */
	int status = 0;
	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
	w->reaped = true;
	w->wait_status = status;
	char how[96];
	ended(ws, w, rb_proc_status_str(status, how, sizeof(how)));
	return true;
}

bool rb_workers_reap_locked(struct rb_workers *ws, struct rb_worker *w)
{
	if (!rb_worker_state_live(w->state))
		return true;
	if (w->pid <= 0)
		return false; /* registered, not started yet */
	if (!w->adopted && reap_child(ws, w))
		return true;
	if (w->adopted && !rb_procfs_alive(w->pid, w->start_time)) {
		ended(ws, w, "ended (exit status unknown: it was re-adopted, not our child)");
		return true;
	}
	return false;
}

/* ---- stopping ---------------------------------------------------------------------------- */

/* Wait (polling, without the lock) until none of `ids` is live or `deadline_ms` passes.
 * Returns the number still live. */
static size_t wait_ended(struct rb_workers *ws, char (*ids)[RB_WORKER_ID_MAX], size_t n,
			 long long deadline_ms)
{
	for (;;) {
		size_t live = 0;
		pthread_mutex_lock(&ws->lock);
		for (size_t i = 0; i < n; i++) {
			struct rb_worker *w = rb_workers_find_locked(ws, ids[i]);
			live += w && w->pid > 0 && !rb_workers_reap_locked(ws, w);
		}
		pthread_mutex_unlock(&ws->lock);
		if (!live || rb_now_ms() >= deadline_ms)
			return live;
		usleep(STOP_POLL_US);
	}
}

/* Signal every listed entry that is still live. */
static void signal_all(struct rb_workers *ws, char (*ids)[RB_WORKER_ID_MAX], size_t n, int sig)
{
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < n; i++) {
		struct rb_worker *w = rb_workers_find_locked(ws, ids[i]);
		/* pid 0: never started. kill(-0) would hit the hive's own group. */
		if (w && w->pid > 0 && !rb_workers_reap_locked(ws, w)) {
			if (sig == SIGKILL)
				rb_warn("worker '%s' (pid %d) did not stop within %d ms of SIGTERM: "
					"sending SIGKILL", w->id, (int)w->pid, ws->grace_ms);
			kill(-w->pid, sig);
		}
	}
	pthread_mutex_unlock(&ws->lock);
}

/* SIGTERM to each group, SIGKILL after grace_ms, then wait for the end. Returns how many
 * are still live afterwards (0 unless a process is stuck in the kernel). */
static size_t stop_ids(struct rb_workers *ws, char (*ids)[RB_WORKER_ID_MAX], size_t n,
		       int grace_ms)
{
	signal_all(ws, ids, n, SIGTERM);
	size_t live = wait_ended(ws, ids, n, rb_now_ms() + grace_ms);
	if (!live)
		return 0;
	signal_all(ws, ids, n, SIGKILL);
	return wait_ended(ws, ids, n, rb_now_ms() + KILL_WAIT_MS);
}

int rb_workers_stop(struct rb_hive *hive, const char *id, int grace_ms, struct rb_worker *out,
		    struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	char ids[1][RB_WORKER_ID_MAX];
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = rb_workers_find_locked(ws, id);
	int rc = 0;
	if (!w)
		rc = rb_err_set(err, RB_ENOTFOUND, "worker '%s' is not in this hive's registry", id);
	else if (w->stopping)
		rc = rb_err_set(err, RB_ECONFLICT, "worker '%s' is already being stopped", id);
	else
		w->stopping = true;
	/* Nothing to stop when it already ended: its entry is only dropped. */
	if (!rc && !rb_worker_state_live(w->state))
		rb_info("removed worker '%s' (pid %d, %s: %s) from the registry", id, (int)w->pid,
			rb_worker_state_name(w->state), w->reason);
	pthread_mutex_unlock(&ws->lock);
	if (rc)
		return rc;
	snprintf(ids[0], sizeof(ids[0]), "%s", id);
	size_t stuck = stop_ids(ws, ids, 1, grace_ms);
	pthread_mutex_lock(&ws->lock);
	w = rb_workers_find_locked(ws, id);
	if (w && stuck) {
		w->stopping = false;
		rc = rb_err_set(err, RB_EIO,
				"worker '%s' (pid %d) did not end even after SIGKILL (stuck in the "
				"kernel?): the monitor keeps watching it", id, (int)w->pid);
	} else if (w) {
		if (out)
			*out = *w;
		rb_workers_remove_locked(ws, w);
		rb_workers_save_locked(ws);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

void rb_workers_stop_all(struct rb_workers *ws)
{
	pthread_mutex_lock(&ws->lock);
	char (*ids)[RB_WORKER_ID_MAX] = malloc((ws->n ? ws->n : 1) * sizeof(*ids));
	size_t n = 0;
	for (size_t i = 0; ids && i < ws->n; i++)
		if (rb_worker_state_live(ws->v[i].state) && !ws->v[i].stopping) {
			ws->v[i].stopping = true;
			memcpy(ids[n++], ws->v[i].id, RB_WORKER_ID_MAX);
		}
	pthread_mutex_unlock(&ws->lock);
	if (!ids)
		return;
	rb_info("stopping %zu worker(s) (SIGTERM, SIGKILL after %d ms)", n, ws->grace_ms);
	size_t stuck = stop_ids(ws, ids, n, ws->grace_ms);
	if (stuck)
		rb_error("%zu worker(s) did not end even after SIGKILL", stuck);
	free(ids);
}

/* ---- health ------------------------------------------------------------------------------ */

/* One worker the monitor checks, copied out so the request runs without the lock. */
struct probe {
	char id[RB_WORKER_ID_MAX];
	pid_t pid;
	char url[64 + 128];
	bool ok;
	char why[160];
};

static void check_health(struct probe *p)
{
	struct rb_http_resp resp;
	struct rb_err err = RB_ERR_INIT;
	rb_http_resp_init(&resp);
	if (rb_http_request("GET", p->url, NULL, NULL, 0, HEALTH_TIMEOUT_MS, 65536, &resp, &err)) {
		snprintf(p->why, sizeof(p->why), "%s", err.msg);
	} else if (resp.status < 200 || resp.status > 299) {
		snprintf(p->why, sizeof(p->why), "'%s' answered HTTP %ld", p->url, resp.status);
	} else {
		p->ok = true;
	}
	rb_http_resp_release(&resp);
}

/* Ready and unhealthy workers, and re-adopted ones that were still starting when the last
 * hive stopped (nobody else will ever declare them ready). */
static struct probe *health_candidates(struct rb_workers *ws, size_t *n)
{
	struct probe *v = calloc(ws->n ? ws->n : 1, sizeof(*v));
	*n = 0;
	for (size_t i = 0; v && i < ws->n; i++) {
		struct rb_worker *w = &ws->v[i];
		bool check = w->state == RB_WORKER_READY || w->state == RB_WORKER_UNHEALTHY ||
			     (w->state == RB_WORKER_STARTING && w->adopted);
		if (!check || w->stopping || w->pid <= 0 || !w->port)
			continue;
		struct probe *p = &v[(*n)++];
		snprintf(p->id, sizeof(p->id), "%s", w->id);
		p->pid = w->pid;
		snprintf(p->url, sizeof(p->url), "%s%s", w->url, w->health_path);
	}
	return v;
}

static void apply_health(struct rb_workers *ws, const struct probe *p)
{
	struct rb_worker *w = rb_workers_find_locked(ws, p->id);
	if (!w || w->pid != p->pid || w->stopping || rb_workers_reap_locked(ws, w))
		return;
	enum rb_worker_state before = w->state;
	if (p->ok) {
		w->health_failures = 0;
		w->state = RB_WORKER_READY;
		w->reason[0] = '\0';
		if (before != RB_WORKER_READY)
			rb_info("worker '%s' (pid %d) is healthy again", w->id, (int)w->pid);
	} else if (++w->health_failures >= RB_WORKER_HEALTH_FAILURES &&
		   before != RB_WORKER_STARTING) {
		w->state = RB_WORKER_UNHEALTHY;
		snprintf(w->reason, sizeof(w->reason), "%d health checks failed in a row: %s",
			 w->health_failures, p->why);
		if (before != RB_WORKER_UNHEALTHY)
			rb_warn("worker '%s' (pid %d) is unhealthy: %s", w->id, (int)w->pid, w->reason);
	}
	if (w->state != before)
		rb_workers_save_locked(ws);
}

/* Check every candidate's health path; called with the lock held, drops it meanwhile. */
static void health_round(struct rb_workers *ws)
{
	size_t n;
	struct probe *v = health_candidates(ws, &n);
	if (!v || !n) {
		free(v);
		return;
	}
	pthread_mutex_unlock(&ws->lock);
	for (size_t i = 0; i < n; i++)
		check_health(&v[i]);
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < n && !ws->stopping; i++)
		apply_health(ws, &v[i]);
	free(v);
}

/* ---- the monitor thread ------------------------------------------------------------------ */

static void timed_wait(struct rb_workers *ws, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&ws->wake, &ws->lock, &ts);
}

static void *monitor_main(void *arg)
{
	struct rb_workers *ws = arg;
	long long next_health = rb_now_ms(); /* re-adopted workers are checked at once */
	pthread_mutex_lock(&ws->lock);
	while (!ws->stopping) {
		for (size_t i = 0; i < ws->n; i++)
			rb_workers_reap_locked(ws, &ws->v[i]);
		if (rb_now_ms() >= next_health) {
			health_round(ws);
			next_health = rb_now_ms() + ws->health_ms;
		}
		if (!ws->stopping)
			timed_wait(ws, MONITOR_TICK_MS);
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

int rb_workers_monitor_start(struct rb_workers *ws, struct rb_err *err)
{
	int e = pthread_create(&ws->monitor, NULL, monitor_main, ws);
	if (e)
		return rb_err_set(err, RB_EINTERNAL, "cannot start the worker monitor thread: %s",
				  strerror(e));
	ws->monitor_running = true;
	return 0;
}

void rb_workers_monitor_stop(struct rb_workers *ws)
{
	pthread_mutex_lock(&ws->lock);
	ws->stopping = true;
	pthread_cond_broadcast(&ws->wake);
	pthread_mutex_unlock(&ws->lock);
	if (ws->monitor_running)
		pthread_join(ws->monitor, NULL);
	ws->monitor_running = false;
}
