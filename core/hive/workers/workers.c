/*
 * workers.c - the process registry (see workers.h): entries, reaping and stopping, queries and
 * their JSON, and persistence. Changes are saved by a writer thread, off the lock: it snapshots
 * the entries under the lock and writes, fsyncs and renames workers.json without it, one file
 * for every change made meanwhile (see "persistence" below for what is on disk when).
 * The monitor thread (workers_monitor.c) sees the registry only through the calls of
 * workers_internal.h's "monitor's view"; workers.json's format is in workers_file.c.
 */
#include "workers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hive.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_procfs.h"
#include "workers_internal.h"

#define DEFAULT_PORT_LO 9300
#define DEFAULT_PORT_HI 9999
#define DEFAULT_HEALTH_MS 5000
#define REGISTRY_FILE "workers.json"
#define DEFAULT_BATCH_MS 50       /* a change no one waits for waits this long for others */
#define KILL_WAIT_MS 5000         /* after SIGKILL, how long to wait for the end */
#define STOP_POLL_FIRST_US 1000  /* a stop looks for the end after 1 ms, then doubling ... */
#define STOP_POLL_MAX_US 20000    /* ... up to this */

static const char *const state_names[] = { "starting", "ready", "unhealthy", "exited", "stopped" };

const char *rb_worker_state_name(enum rb_worker_state state)
{
	return (unsigned)state < sizeof(state_names) / sizeof(state_names[0]) ? state_names[state]
									       : "unknown";
}

bool rb_worker_state_live(enum rb_worker_state state)
{
	return state == RB_WORKER_STARTING || state == RB_WORKER_READY ||
	       state == RB_WORKER_UNHEALTHY;
}

/* ---- configuration ----------------------------------------------------------------------- */

/* An integer environment variable within [lo, hi]; `def` when unset. */
static int env_int(const char *name, int def, int lo, int hi, int *out, struct rb_err *err)
{
	const char *v = getenv(name);
	*out = def;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return rb_err_set(err, RB_EINVAL, "invalid %s '%s': give a whole number from %d to %d",
				  name, v, lo, hi);
	*out = (int)x;
	return 0;
}

static int parse_port_range(struct rb_workers *ws, struct rb_err *err)
{
	const char *v = getenv("RBEE_WORKER_PORTS");
	ws->port_lo = DEFAULT_PORT_LO;
	ws->port_hi = DEFAULT_PORT_HI;
	if (!v || !*v)
		return 0;
	unsigned lo, hi;
	char tail;
	if (sscanf(v, "%u-%u%c", &lo, &hi, &tail) != 2 || lo == 0 || lo > hi || hi > 65535)
		return rb_err_set(err, RB_EINVAL,
				  "invalid RBEE_WORKER_PORTS '%s': give a port range 'LO-HI' with "
				  "1 <= LO <= HI <= 65535, e.g. '9300-9999'", v);
	ws->port_lo = (uint16_t)lo;
	ws->port_hi = (uint16_t)hi;
	return 0;
}

int rb_workers_grace_ms(struct rb_hive *hive)
{
	return hive->workers ? hive->workers->grace_ms : RB_WORKER_STOP_GRACE_MS;
}

void rb_workers_port_range(struct rb_hive *hive, uint16_t *lo, uint16_t *hi)
{
	*lo = hive->workers->port_lo;
	*hi = hive->workers->port_hi;
}

/* ---- persistence ------------------------------------------------------------------------- */

/* What is on disk when: every change marks the registry dirty (gen + 1) and the writer thread
 * saves a snapshot soon after, batching the changes of RBEE_REGISTRY_BATCH_MS (default 50 ms)
 * into one file. Two kinds of change do not wait for the batch:
 *  - a worker's process started (its pid and start time, what re-adoption needs) is written at
 *    once: a hive killed after that write re-adopts the worker; the window in which a SIGKILL
 *    loses a worker that runs is fork to rename, as long as one write, as it always was;
 *  - what a client is told: rb_workers_set_ready (spawn's [DONE]) and rb_workers_stop (a stop
 *    done) return only once the file holding their change is renamed into place (written by
 *    the waiting thread itself when no write is under way), so an acknowledged spawn is
 *    re-adopted and an acknowledged stop never comes back. When that file cannot be written
 *    (after WRITE_ATTEMPTS tries) they fail with RB_EIO ("cannot save the worker registry
 *    ..."), never acknowledging what is not on disk; the registry stays in memory, and the
 *    next write that succeeds holds it all.
 * Anything else (registration, port, health, an exit the monitor saw) may be lost by a
 * SIGKILL within the batch, which is harmless: an entry without a pid is skipped at load, and
 * a process that is not alive with its recorded start time is never re-adopted. */

static void changed_locked(struct rb_workers *ws, bool urgent)
{
	if (ws->gen == ws->saved_gen)
		ws->dirty_since_ms = rb_now_ms();
	ws->gen++;
	ws->urgent |= urgent;
	pthread_cond_signal(&ws->dirty);
}

static void timed_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, long long until_ms)
{
	struct timespec ts = { .tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000L };
	pthread_cond_timedwait(cond, lock, &ts);
}

/* A write that fails (disk full, I/O error, a rename refused) is tried WRITE_ATTEMPTS times,
 * WRITE_RETRY_FIRST_MS apart, then doubling; what still fails is reported to those waiting
 * for it (see wait_saved_locked) and left dirty: the entries stay in memory, and the writer
 * thread tries again every REGISTRY_RETRY_MS until a write succeeds, which then holds every
 * change made meanwhile. */
#define WRITE_ATTEMPTS 3
#define WRITE_RETRY_FIRST_MS 50
#define REGISTRY_RETRY_MS 2000

/* The reason at the end of a write's error ("cannot write '<tmp>': <reason>"): what tells one
 * failure from another, where the temporary file's name changes with every try. */
static const char *failure_reason(const char *msg)
{
	const char *p = strrchr(msg, ':');
	return p ? p + 1 : msg;
}

/* Save what the registry holds now: a snapshot under the lock, written, fsynced and renamed
 * without it. One writer at a time (`writing`): the writer thread, or a thread that waits for
 * its change to be on disk and finds nobody writing, which then writes itself rather than
 * wake the writer and wait for it. Called and returns with the lock held. */
static void write_once_locked(struct rb_workers *ws)
{
	ws->writing = true;
	uint64_t gen = ws->gen, changes = gen - ws->saved_gen;
	bool was_failing = ws->failing;
	char was_why[sizeof(ws->fail_why)];
	memcpy(was_why, ws->fail_why, sizeof(was_why));
	ws->urgent = false;
	size_t n = ws->n;
	struct rb_worker *v = malloc((n ? n : 1) * sizeof(*v));
	if (v && n)
		memcpy(v, ws->v, n * sizeof(*v));
	pthread_mutex_unlock(&ws->lock);
	struct rb_err err = RB_ERR_INIT;
	int rc = 0;
	for (int attempt = 1, delay_ms = WRITE_RETRY_FIRST_MS; attempt <= WRITE_ATTEMPTS;
	     attempt++, delay_ms *= 2) {
		rb_err_clear(&err);
		rc = v ? rb_workers_file_write(ws->path, v, n, &err)
		       : rb_err_set(&err, RB_EINTERNAL, "out of memory");
		if (!rc)
			break;
		/* Said once per failure, not once per retry of a disk that stays full. */
		if (!was_failing || strcmp(failure_reason(was_why), failure_reason(err.msg)))
			rb_error("cannot save the worker registry '%s' (attempt %d of %d%s): %s",
				 ws->path, attempt, WRITE_ATTEMPTS,
				 attempt < WRITE_ATTEMPTS ? ", retrying" : "", err.msg);
		else
			rb_debug("worker registry '%s' still cannot be saved: %s", ws->path, err.msg);
		if (attempt < WRITE_ATTEMPTS)
			usleep((useconds_t)delay_ms * 1000);
	}
	free(v);
	pthread_mutex_lock(&ws->lock);
	ws->writes++;
	if (rc) {
		ws->failing = true;
		ws->failed_gen = gen;
		ws->failed_writes++;
		ws->retry_at_ms = rb_now_ms() + REGISTRY_RETRY_MS;
		snprintf(ws->fail_why, sizeof(ws->fail_why), "%s", err.msg);
		if (!was_failing)
			rb_error("the worker registry '%s' is not saved: a restarted hive would not find "
				 "the workers it lists; the hive keeps them in memory and tries again "
				 "every %d ms", ws->path, REGISTRY_RETRY_MS);
	} else {
		if (was_failing)
			rb_info("the worker registry '%s' is saved again (%llu failed write(s) before): "
				"it holds every change made meanwhile", ws->path,
				(unsigned long long)ws->failed_writes);
		ws->failing = false;
		ws->failed_writes = 0;
		ws->fail_why[0] = '\0';
		ws->saved_gen = gen;
		rb_debug("worker registry: write %llu of '%s' (%zu entries) holds %llu change(s), "
			 "%llu in all", (unsigned long long)ws->writes, ws->path, n,
			 (unsigned long long)changes, (unsigned long long)gen);
	}
	ws->writing = false;
	if (ws->gen != gen && !rc)
		ws->dirty_since_ms = rb_now_ms(); /* made while writing: batch from now */
	pthread_cond_signal(&ws->dirty);
	pthread_cond_broadcast(&ws->saved);
}

/* Wait until every change so far is on disk: 0, or RB_EIO when the write that holds them
 * failed (after its retries); the changes then stay in memory and the writer keeps trying.
 * `what` says what the caller's change was, for the message. */
static int wait_saved_locked(struct rb_workers *ws, const char *what, struct rb_err *err)
{
	uint64_t gen = ws->gen;
	while (ws->saved_gen < gen) {
		if (ws->writing)
			pthread_cond_wait(&ws->saved, &ws->lock);
		else if (ws->failed_gen >= gen)
			return rb_err_set(err, RB_EIO, "cannot save the worker registry '%s': %s; %s "
					  "(the hive keeps the registry in memory and tries to save it "
					  "again every %d s)", ws->path, ws->fail_why, what,
					  REGISTRY_RETRY_MS / 1000);
		else
			write_once_locked(ws);
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct rb_workers *ws = arg;
	pthread_mutex_lock(&ws->lock);
	for (;;) {
		while ((ws->saved_gen == ws->gen || ws->writing) && !ws->writer_stop)
			pthread_cond_wait(&ws->dirty, &ws->lock);
		if (ws->writing) {
			pthread_cond_wait(&ws->saved, &ws->lock); /* stopping: let it finish */
			continue;
		}
		if (ws->saved_gen == ws->gen)
			break; /* stopping, and everything is on disk */
		/* After a failed write the next try waits for REGISTRY_RETRY_MS, urgent or not. */
		long long due = ws->dirty_since_ms + ws->batch_ms;
		if (ws->failing && ws->retry_at_ms > due)
			due = ws->retry_at_ms;
		while ((ws->failing || !ws->urgent) && !ws->writer_stop && !ws->writing &&
		       ws->saved_gen != ws->gen && rb_now_ms() < due)
			timed_wait_until(&ws->dirty, &ws->lock, due);
		bool last = ws->writer_stop;
		if (ws->writing || ws->saved_gen == ws->gen ||
		    !(last || (!ws->failing && ws->urgent) || rb_now_ms() >= due))
			continue;
		write_once_locked(ws);
		if (last && ws->failed_gen == ws->gen) {
			/* The last write failed too: what it held is lost, and said so. */
			rb_error("the worker registry '%s' could not be saved before the hive stopped: "
				 "%s", ws->path, ws->fail_why);
			break;
		}
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

static int writer_start(struct rb_workers *ws, struct rb_err *err)
{
	int e = pthread_create(&ws->writer, NULL, writer_main, ws);
	if (e)
		return rb_err_set(err, RB_EINTERNAL, "cannot start the worker registry's writer "
				  "thread: %s", strerror(e));
	ws->writer_running = true;
	return 0;
}

/* Write what is left, then end the writer. */
static void writer_stop(struct rb_workers *ws)
{
	if (!ws->writer_running)
		return;
	pthread_mutex_lock(&ws->lock);
	ws->writer_stop = true;
	pthread_cond_signal(&ws->dirty);
	pthread_mutex_unlock(&ws->lock);
	pthread_join(ws->writer, NULL);
	ws->writer_running = false;
}

static int push_entry(struct rb_workers *ws, const struct rb_worker *w)
{
	if (ws->n == ws->cap) {
		size_t cap = ws->cap ? ws->cap * 2 : 16;
		struct rb_worker *v = realloc(ws->v, cap * sizeof(*v));
		if (!v)
			return -1;
		ws->v = v;
		ws->cap = cap;
	}
	ws->v[ws->n++] = *w;
	return 0;
}

static void remove_locked(struct rb_workers *ws, struct rb_worker *w)
{
	size_t i = (size_t)(w - ws->v);
	memmove(&ws->v[i], &ws->v[i + 1], (ws->n - i - 1) * sizeof(*w));
	ws->n--;
}

/* Keep at most RB_WORKERS_KEEP_EXITED exited entries: the oldest go first. */
static void prune_locked(struct rb_workers *ws)
{
	size_t exited = 0;
	for (size_t i = 0; i < ws->n; i++)
		exited += !rb_worker_state_live(ws->v[i].state);
	for (size_t i = 0; i < ws->n && exited > RB_WORKERS_KEEP_EXITED;) {
		if (!rb_worker_state_live(ws->v[i].state)) {
			remove_locked(ws, &ws->v[i]);
			exited--;
		} else {
			i++;
		}
	}
}

/* Re-adopt one persisted entry: true when its process still runs and it stays in the registry.
 * Every other entry is reported once here and dropped: a worker that ended (by itself, or
 * stopped, before or while the hive was down) is not listed by the next hive; its log stays. */
static bool adopt(struct rb_worker *w)
{
	if (!rb_worker_state_live(w->state)) {
		char st[96];
		if (w->state == RB_WORKER_EXITED)
			rb_info("worker '%s' (pid %d, model '%s') had %s before the last hive stopped: "
				"dropped from the registry; its log: '%s'", w->id, (int)w->pid, w->model,
				w->reaped ? rb_proc_status_str(w->wait_status, st, sizeof(st))
					  : w->reason[0] ? w->reason : "ended",
				w->log_path);
		return false;
	}
	if (w->pid > 0 && rb_procfs_alive(w->pid, w->start_time)) {
		w->adopted = true;
		w->health_failures = 0;
		rb_info("re-adopted worker '%s' (pid %d, port %u, %s device %u %s, model '%s'): %s",
			w->id, (int)w->pid, w->port, w->backend, w->device, w->device_id, w->model,
			rb_worker_state_name(w->state));
		return true;
	}
	rb_warn("worker '%s' (pid %d, port %u, model '%s') ended while the hive was not running "
		"(exit status unknown): dropped from the registry; its log: '%s'", w->id, (int)w->pid,
		w->port, w->model, w->log_path);
	return false;
}

static int load(struct rb_workers *ws)
{
	struct rb_worker *v;
	size_t n;
	if (rb_workers_file_read(ws->path, &v, &n))
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (v[i].pid == 0 && rb_worker_state_live(v[i].state))
			continue; /* registered, never started: the spawn died with the hive */
		if (adopt(&v[i]))
			rc = push_entry(ws, &v[i]);
	}
	free(v);
	return rc;
}

static struct rb_worker *find_locked(struct rb_workers *ws, const char *id)
{
	for (size_t i = 0; i < ws->n; i++)
		if (!strcmp(ws->v[i].id, id))
			return &ws->v[i];
	return NULL;
}

static struct rb_worker *find_pid_locked(struct rb_workers *ws, pid_t pid)
{
	/* Newest first: an exited entry may share its pid with a newer, live one. */
	for (size_t i = ws->n; i-- > 0;)
		if (ws->v[i].pid == pid)
			return &ws->v[i];
	return NULL;
}

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
	changed_locked(ws, false);
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

/* If the process of a live entry has ended, reap it (our child) and record how it ended. True
 * when the entry is not live (any more). */
static bool reap_locked(struct rb_workers *ws, struct rb_worker *w)
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
	useconds_t delay_us = STOP_POLL_FIRST_US;
	for (;;) {
		size_t live = 0;
		pthread_mutex_lock(&ws->lock);
		for (size_t i = 0; i < n; i++) {
			struct rb_worker *w = find_locked(ws, ids[i]);
			live += w && w->pid > 0 && !reap_locked(ws, w);
		}
		pthread_mutex_unlock(&ws->lock);
		if (!live || rb_now_ms() >= deadline_ms)
			return live;
		usleep(delay_us);
		delay_us = delay_us * 2 > STOP_POLL_MAX_US ? STOP_POLL_MAX_US : delay_us * 2;
	}
}

/* Signal every listed entry that is still live. */
static void signal_all(struct rb_workers *ws, char (*ids)[RB_WORKER_ID_MAX], size_t n, int sig)
{
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < n; i++) {
		struct rb_worker *w = find_locked(ws, ids[i]);
		/* pid 0: never started. kill(-0) would hit the hive's own group. */
		if (w && w->pid > 0 && !reap_locked(ws, w)) {
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
	struct rb_worker *w = find_locked(ws, id);
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
	w = find_locked(ws, id);
	if (w && stuck) {
		w->stopping = false;
		rc = rb_err_set(err, RB_EIO,
				"worker '%s' (pid %d) did not end even after SIGKILL (stuck in the "
				"kernel?): the monitor keeps watching it", id, (int)w->pid);
	} else if (w) {
		if (out)
			*out = *w;
		remove_locked(ws, w);
		changed_locked(ws, true);
		/* A stop is done once it is on disk; it is not reported done when it cannot be. */
		char what[RB_WORKER_ID_MAX + 160];
		snprintf(what, sizeof(what), "worker '%s' is stopped, but a restarted hive would "
			 "still find it listed there", id);
		rc = wait_saved_locked(ws, what, err);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

/* Stop every live worker at once (shutdown). */
static void stop_all(struct rb_workers *ws)
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

/* ---- life cycle -------------------------------------------------------------------------- */

static void workers_free(struct rb_workers *ws)
{
	pthread_mutex_destroy(&ws->lock);
	pthread_cond_destroy(&ws->dirty);
	pthread_cond_destroy(&ws->saved);
	free(ws->v);
	free(ws);
}

static int configure(struct rb_workers *ws, struct rb_err *err)
{
	int rc = env_int("RBEE_STOP_GRACE_MS", RB_WORKER_STOP_GRACE_MS, 0, 600000, &ws->grace_ms,
			 err);
	if (!rc)
		rc = env_int("RBEE_HEALTH_INTERVAL_MS", DEFAULT_HEALTH_MS, 100, 3600000,
			     &ws->health_ms, err);
	if (!rc)
		rc = env_int("RBEE_REGISTRY_BATCH_MS", DEFAULT_BATCH_MS, 0, 10000, &ws->batch_ms, err);
	if (!rc)
		rc = parse_port_range(ws, err);
	if (!rc && (size_t)snprintf(ws->path, sizeof(ws->path), "%s/%s", ws->hive->paths.state,
				    REGISTRY_FILE) >= sizeof(ws->path))
		rc = rb_err_set(err, RB_EINVAL, "state directory path too long: '%s'",
				ws->hive->paths.state);
	ws->port_next = ws->port_lo;
	return rc;
}

int rb_workers_init(struct rb_hive *hive, struct rb_err *err)
{
	struct rb_workers *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	ws->hive = hive;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ws->dirty, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&ws->saved, NULL);
	int rc = configure(ws, err);
	if (!rc)
		rc = rb_fs_mkdir_p(hive->paths.state, 0755, err);
	if (!rc)
		rc = rb_fs_mkdir_p(hive->paths.logs, 0755, err);
	if (!rc && load(ws))
		rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
	if (rc) {
		workers_free(ws);
		return rc;
	}
	prune_locked(ws);
	if ((rc = writer_start(ws, err))) {
		workers_free(ws);
		return rc;
	}
	/* What was dropped at load is gone from the file before anything else happens. */
	pthread_mutex_lock(&ws->lock);
	changed_locked(ws, true);
	/* A state directory that cannot be written does not stop the hive: said in the log,
	 * the writer keeps trying, and each spawn and stop says it cannot be saved. */
	wait_saved_locked(ws, "", NULL);
	pthread_mutex_unlock(&ws->lock);
	if ((rc = rb_monitor_start(ws, ws->health_ms, &ws->monitor, err))) {
		writer_stop(ws);
		workers_free(ws);
		return rc;
	}
	hive->workers = ws;
	return 0;
}

void rb_workers_shutdown(struct rb_hive *hive)
{
	struct rb_workers *ws = hive->workers;
	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	ws->stopping = true;
	pthread_mutex_unlock(&ws->lock);
	rb_monitor_stop(ws->monitor);
	ws->monitor = NULL;
	pthread_mutex_lock(&ws->lock);
	size_t live = 0;
	for (size_t i = 0; i < ws->n; i++)
		live += rb_worker_state_live(ws->v[i].state);
	pthread_mutex_unlock(&ws->lock);
	if (live && hive->cfg.keep_workers)
		rb_info("--keep-workers: leaving %zu worker(s) running; the next hive re-adopts them",
			live);
	else if (live)
		stop_all(ws);
	pthread_mutex_lock(&ws->lock);
	/* Only running workers are handed to the next hive: the stopped and exited ones were each
	 * logged when they ended, and nothing would ever remove them from a later listing. */
	for (size_t i = 0; i < ws->n;) {
		if (rb_worker_state_live(ws->v[i].state))
			i++;
		else
			remove_locked(ws, &ws->v[i]);
	}
	changed_locked(ws, true);
	pthread_mutex_unlock(&ws->lock);
	writer_stop(ws); /* writes the last state */
	hive->workers = NULL;
	workers_free(ws);
}

/* ---- entries ----------------------------------------------------------------------------- */

static int not_registered(const char *id, struct rb_err *err)
{
	return rb_err_set(err, RB_ENOTFOUND, "worker '%s' is not in this hive's registry", id);
}

int rb_workers_add(struct rb_hive *hive, const struct rb_worker *w, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	int rc = 0;
	pthread_mutex_lock(&ws->lock);
	if (ws->stopping)
		rc = rb_err_set(err, RB_EUNAVAIL, "the hive is shutting down: no new workers");
	else if (find_locked(ws, w->id))
		rc = rb_err_set(err, RB_ECONFLICT, "worker id '%s' is already taken", w->id);
	else {
		/* Pruned here, where no caller holds a pointer into the entries. */
		prune_locked(ws);
		if (push_entry(ws, w))
			rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
		else
			changed_locked(ws, false);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int rb_workers_claim_port(struct rb_hive *hive, const char *id, uint16_t port, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	int rc = 0;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = find_locked(ws, id);
	for (size_t i = 0; w && i < ws->n && !rc; i++)
		if (&ws->v[i] != w && ws->v[i].port == port && rb_worker_state_live(ws->v[i].state))
			rc = rb_err_set(err, RB_ECONFLICT, "port %u is held by worker '%s'", port,
					ws->v[i].id);
	if (!w) {
		rc = not_registered(id, err);
	} else if (!rc) {
		w->port = port;
		snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%u", port);
		changed_locked(ws, false);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

uint16_t rb_workers_next_port_hint(struct rb_hive *hive)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	uint16_t p = ws->port_next;
	ws->port_next = p >= ws->port_hi ? ws->port_lo : (uint16_t)(p + 1);
	pthread_mutex_unlock(&ws->lock);
	return p;
}

int rb_workers_set_started(struct rb_hive *hive, const char *id, pid_t pid,
			   unsigned long long start_time, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = find_locked(ws, id);
	if (w) {
		w->pid = pid;
		w->start_time = start_time;
		w->reaped = false;
		w->wait_status = 0;
		w->reason[0] = '\0';
		w->state = RB_WORKER_STARTING;
		rb_info("spawned worker '%s' (pid %d, port %u, %s device %u %s, model '%s', "
			"installed worker '%s'); its log: '%s'", w->id, (int)pid, w->port, w->backend,
			w->device, w->device_id, w->model, w->installed_id, w->log_path);
		changed_locked(ws, true); /* what re-adoption needs: written at once */
	}
	pthread_mutex_unlock(&ws->lock);
	return w ? 0 : not_registered(id, err);
}

int rb_workers_set_ready(struct rb_hive *hive, const char *id, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	int rc = 0;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = find_locked(ws, id);
	if (!w) {
		rc = not_registered(id, err);
	} else if (reap_locked(ws, w)) {
		rc = rb_err_set(err, RB_EIO, "worker '%s' ended just as it became ready: %s", id,
				w->reason);
	} else {
		w->state = RB_WORKER_READY;
		w->health_failures = 0;
		rb_info("worker '%s' (pid %d, port %u) is ready", w->id, (int)w->pid, w->port);
		changed_locked(ws, true);
		/* On disk before the spawn says it is done; not done when it cannot be: a worker a
		 * restarted hive would not find is not reported ready (the spawn then stops it). */
		char what[RB_WORKER_ID_MAX + 160];
		snprintf(what, sizeof(what), "worker '%s' is not reported ready, since a restarted "
			 "hive would not find it", id);
		rc = wait_saved_locked(ws, what, err);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int rb_workers_poll(struct rb_hive *hive, const char *id, struct rb_worker *out,
		    struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = find_locked(ws, id);
	if (w) {
		reap_locked(ws, w);
		*out = *w;
	}
	pthread_mutex_unlock(&ws->lock);
	return w ? 0 : not_registered(id, err);
}

int rb_workers_get_pid(struct rb_hive *hive, pid_t pid, struct rb_worker *out, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = pid > 0 ? find_pid_locked(ws, pid) : NULL;
	if (w) {
		reap_locked(ws, w);
		*out = *w;
	}
	pthread_mutex_unlock(&ws->lock);
	if (!w)
		return rb_err_set(err, RB_ENOTFOUND,
				  "pid %d is not a worker spawned by this hive: only pids listed by "
				  "'rbee worker process list' can be inspected or stopped", (int)pid);
	return 0;
}

int rb_workers_stop_pid(struct rb_hive *hive, pid_t pid, int grace_ms, struct rb_worker *out,
			struct rb_err *err)
{
	struct rb_worker w;
	int rc = rb_workers_get_pid(hive, pid, &w, err);
	return rc ? rc : rb_workers_stop(hive, w.id, grace_ms, out, err);
}

/* True when a live worker's installed-worker id (use_model false) or model id matches `id`. */
static bool any_live_uses(struct rb_hive *hive, bool use_model, const char *id)
{
	struct rb_workers *ws = hive ? hive->workers : NULL;
	bool used = false;
	if (!ws)
		return false;
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < ws->n && !used; i++)
		used = rb_worker_state_live(ws->v[i].state) &&
		       !strcmp(use_model ? ws->v[i].model : ws->v[i].installed_id, id);
	pthread_mutex_unlock(&ws->lock);
	return used;
}

bool rb_workers_uses_installed(struct rb_hive *hive, const char *installed_id)
{
	return any_live_uses(hive, false, installed_id);
}

bool rb_workers_uses_model(struct rb_hive *hive, const char *model_id)
{
	return any_live_uses(hive, true, model_id);
}

/* ---- the monitor's view ------------------------------------------------------------------ */

void rb_workers_reap_all(struct rb_workers *ws)
{
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < ws->n; i++)
		reap_locked(ws, &ws->v[i]);
	pthread_mutex_unlock(&ws->lock);
}

struct rb_health_target *rb_workers_health_targets(struct rb_workers *ws, size_t *n)
{
	pthread_mutex_lock(&ws->lock);
	struct rb_health_target *v = ws->stopping ? NULL : calloc(ws->n ? ws->n : 1, sizeof(*v));
	*n = 0;
	for (size_t i = 0; v && i < ws->n; i++) {
		struct rb_worker *w = &ws->v[i];
		/* Nobody else will ever declare a re-adopted starting worker ready. */
		bool check = w->state == RB_WORKER_READY || w->state == RB_WORKER_UNHEALTHY ||
			     (w->state == RB_WORKER_STARTING && w->adopted);
		if (!check || w->stopping || w->pid <= 0 || !w->port)
			continue;
		struct rb_health_target *t = &v[(*n)++];
		snprintf(t->id, sizeof(t->id), "%s", w->id);
		t->pid = w->pid;
		snprintf(t->url, sizeof(t->url), "%s%s", w->url, w->health_path);
	}
	pthread_mutex_unlock(&ws->lock);
	if (v && !*n) {
		free(v);
		v = NULL;
	}
	return v;
}

static bool apply_health(struct rb_workers *ws, const struct rb_health_target *t)
{
	struct rb_worker *w = find_locked(ws, t->id);
	if (!w || w->pid != t->pid || w->stopping || reap_locked(ws, w))
		return false;
	enum rb_worker_state before = w->state;
	if (t->ok) {
		w->health_failures = 0;
		w->state = RB_WORKER_READY;
		w->reason[0] = '\0';
		if (before != RB_WORKER_READY)
			rb_info("worker '%s' (pid %d) is healthy again", w->id, (int)w->pid);
	} else if (++w->health_failures >= RB_WORKER_HEALTH_FAILURES &&
		   before != RB_WORKER_STARTING) {
		w->state = RB_WORKER_UNHEALTHY;
		snprintf(w->reason, sizeof(w->reason), "%d health checks failed in a row: %s",
			 w->health_failures, t->why);
		if (before != RB_WORKER_UNHEALTHY)
			rb_warn("worker '%s' (pid %d) is unhealthy: %s", w->id, (int)w->pid, w->reason);
	}
	return w->state != before;
}

void rb_workers_health_record(struct rb_workers *ws, const struct rb_health_target *t, size_t n)
{
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < n && !ws->stopping; i++)
		if (apply_health(ws, &t[i]))
			changed_locked(ws, false); /* the round's changes go in one write */
	pthread_mutex_unlock(&ws->lock);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void add_time(struct json_object *o, const char *key, time_t t)
{
	char buf[32];
	struct tm tm;
	if (!t || !gmtime_r(&t, &tm)) {
		json_object_object_add(o, key, NULL);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rb_json_add_str(o, key, buf);
}

struct json_object *rb_worker_json(const struct rb_worker *w)
{
	struct json_object *o = json_object_new_object();
	bool live = rb_worker_state_live(w->state);
	rb_json_add_str(o, "worker_id", w->id);
	rb_json_add_str(o, "state", rb_worker_state_name(w->state));
	json_object_object_add(o, "pid", w->pid > 0 ? json_object_new_int(w->pid) : NULL);
	json_object_object_add(o, "port", w->port ? json_object_new_int(w->port) : NULL);
	rb_json_add_str(o, "url", w->url[0] ? w->url : NULL);
	rb_json_add_str(o, "model", w->model);
	rb_json_add_str(o, "backend", w->backend);
	rb_json_add_int(o, "device", w->device);
	rb_json_add_str(o, "device_id", w->device_id);
	rb_json_add_str(o, "installed_worker", w->installed_id);
	add_time(o, "started_at", w->started_at);
	json_object_object_add(o, "uptime_s", live && w->started_at
			       ? json_object_new_int64((int64_t)(time(NULL) - w->started_at)) : NULL);
	uint64_t rss;
	json_object_object_add(o, "rss_bytes", live && rb_procfs_rss(w->pid, &rss) == 0
			       ? json_object_new_int64((int64_t)rss) : NULL);
	/* No backend reports per-process device memory yet (NVML could; the plugin ABI has no
	 * call for it), so say "unknown" rather than guess. */
	json_object_object_add(o, "vram_bytes", NULL);
	char st[96];
	rb_json_add_str(o, "exit", w->reaped ? rb_proc_status_str(w->wait_status, st, sizeof(st))
					     : NULL);
	rb_json_add_str(o, "reason", w->reason[0] ? w->reason : NULL);
	rb_json_add_int(o, "health_failures", w->health_failures);
	rb_json_add_bool(o, "adopted", w->adopted);
	rb_json_add_str(o, "log_path", w->log_path);
	return o;
}

/* A copy of every entry, so JSON (which reads /proc) is built without the lock. */
static struct rb_worker *snapshot(struct rb_hive *hive, size_t *n)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *v = malloc((ws->n ? ws->n : 1) * sizeof(*v));
	*n = 0;
	if (v && ws->n) {
		memcpy(v, ws->v, ws->n * sizeof(*v));
		*n = ws->n;
	}
	pthread_mutex_unlock(&ws->lock);
	return v;
}

struct json_object *rb_workers_list_json(struct rb_hive *hive)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	size_t n = 0;
	struct rb_worker *v = hive->workers ? snapshot(hive, &n) : NULL;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, rb_worker_json(&v[i]));
	free(v);
	json_object_object_add(root, "workers", arr);
	return root;
}

struct json_object *rb_workers_counts_json(struct rb_hive *hive)
{
	int counts[5] = { 0 };
	size_t n = 0;
	struct rb_worker *v = hive->workers ? snapshot(hive, &n) : NULL;
	for (size_t i = 0; i < n; i++)
		counts[v[i].state]++;
	free(v);
	struct json_object *o = json_object_new_object();
	rb_json_add_int(o, "total", (int64_t)n);
	for (int s = 0; s < 5; s++)
		rb_json_add_int(o, state_names[s], counts[s]);
	return o;
}
