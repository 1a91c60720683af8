/*
 * spawn.c - worker_spawn: preflight, port, launch plan, fork/exec with binding, readiness
 * (see spawn.h).
 */
#include "spawn.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/mempolicy.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "hive.h"
#include "install/install.h"
#include "jobs/jobs.h"
#include "models/models.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_procfs.h"
#include "rb_sha256.h"
#include "backends/backends.h"

#define LONG_BITS (8 * sizeof(unsigned long))
#define MAX_NUMA_NODES 1024       /* bits of the set_mempolicy node mask */
#define MAX_CPUS 65536            /* refuse absurd CPU numbers in a list */
#define POLL_FIRST_MS 1           /* readiness: waits between polls grow from this ... */
#define POLL_SHARE 8              /* ... as 1/8 of the time waited so far ... */
#define POLL_MAX_MS 500           /* ... up to this */
#define HEALTH_REQ_MS 1000        /* one readiness request */
#define NARRATE_EVERY_MS 5000     /* "still loading" lines */
#define LOG_TAIL_LINES 8          /* log lines quoted when a start fails */
#define LOG_TAIL_BYTES 8192

/* Everything one spawn works with, from preflight to ready. */
/* Whom a worker runs as. A worker is a program a catalog built: when the hive is root it never
 * runs as root, but as a uid of its own, RBEE_WORKER_UIDS' first + (its port - the first worker
 * port): ports are unique among live workers, so uids are too, with no allocation to keep.
 * Supplementary groups: video and render, which own GPU device nodes that are not open to all. */
#define WORKER_UIDS_DEFAULT "1879048448-1879049471" /* 0x70000100 + 1024, after the build uids */
#define WORKER_GROUPS_MAX 4
struct worker_user {
	bool drop;
	uid_t uid;
	gid_t groups[WORKER_GROUPS_MAX];
	int ngroups;
};

struct spawn {
	struct rb_hive *hive;
	struct rb_job *job;
	const struct rb_spawn_request *req;
	struct rb_backend_info backend;
	const struct rbee_device *device;
	struct rb_installed installed;
	struct rb_model_record model;
	struct rb_worker w;           /* the registry entry as we know it */
	bool registered;
	int ready_timeout_ms;
	struct rb_plan plan;
	struct worker_user user;
};

static const char *human(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

/* ---- preflight --------------------------------------------------------------------------- */

/* `worker` names a backend, or an installed worker whose worker_type is the backend. */
static int resolve_backend(struct spawn *s, bool *by_type, struct rb_err *err)
{
	const char *name = s->req->worker;
	struct rb_err e2 = RB_ERR_INIT;
	*by_type = rb_backends_get(s->hive, name, &s->backend, &e2) == 0;
	if (*by_type)
		return 0;
	int rc = rb_installed_get(s->hive, name, &s->installed, err);
	if (rc == -RB_ENOTFOUND)
		return rb_err_set(err, RB_ENOTFOUND,
				  "'%s' is neither a backend of this hive nor an installed worker: give "
				  "cpu, cuda, metal or an installed worker id (see 'rbee worker list')",
				  name);
	if (rc)
		return rc;
	rc = rb_backends_get(s->hive, s->installed.worker_type, &s->backend, err);
	if (rc == -RB_ENOTFOUND)
		return rb_err_set(err, RB_EUNAVAIL,
				  "worker '%s' needs backend '%s', which this hive has no plugin for "
				  "(see 'rbee hive backends')", name, s->installed.worker_type);
	return rc;
}

static int check_backend(struct spawn *s, struct rb_err *err)
{
	if (s->backend.state == RB_BACKEND_AVAILABLE)
		return 0;
	return rb_err_set(err, RB_EUNAVAIL, "backend '%s' is %s on this node: %s (see 'rbee hive "
			  "backends')", s->backend.name,
			  s->backend.state == RB_BACKEND_UNAVAILABLE ? "not available"
								     : rb_backend_state_name(s->backend.state),
			  s->backend.reason[0] ? s->backend.reason : "no reason given");
}

/* ---- the binary's sha256, remembered ---------------------------------------------------- */

/* Hashing a worker binary (hundreds of MiB for some) at every spawn costs more than the rest
 * of the spawn. A digest is remembered by the file's identity: device, inode, size, mtime and
 * ctime (which no one can set back: any write or chmod moves it), and reused while all five
 * are the same. A file changed within SHA_RACY_S of its hashing is not remembered, since a
 * filesystem with coarse timestamps could hide a later change in the same tick. */
#define SHA_CACHE_SLOTS 32
#define SHA_RACY_S 2

struct sha_slot {
	char path[PATH_MAX];
	struct stat st;
	char hex[65];
	unsigned long long used;
};

static struct {
	pthread_mutex_t lock;
	struct sha_slot slot[SHA_CACHE_SLOTS];
	unsigned long long tick;
	unsigned long long hits, misses; /* for the debug log */
} sha_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool same_identity(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static bool sha_cached(const char *path, const struct stat *st, char hex[65])
{
	bool hit = false;
	pthread_mutex_lock(&sha_cache.lock);
	for (size_t i = 0; i < SHA_CACHE_SLOTS && !hit; i++)
		if ((hit = sha_cache.slot[i].path[0] && !strcmp(sha_cache.slot[i].path, path) &&
			   same_identity(&sha_cache.slot[i].st, st))) {
			memcpy(hex, sha_cache.slot[i].hex, 65);
			sha_cache.slot[i].used = ++sha_cache.tick;
		}
	unsigned long long hits = hit ? ++sha_cache.hits : sha_cache.hits;
	unsigned long long misses = hit ? sha_cache.misses : ++sha_cache.misses;
	pthread_mutex_unlock(&sha_cache.lock);
	rb_debug("sha256 of '%s': %s (%llu hits, %llu misses)", path,
		 hit ? "remembered" : "computed", hits, misses);
	return hit;
}

static void sha_remember(const char *path, const struct stat *st, const char hex[65])
{
	if (strlen(path) >= PATH_MAX || st->st_ctim.tv_sec + SHA_RACY_S >= time(NULL))
		return;
	pthread_mutex_lock(&sha_cache.lock);
	struct sha_slot *c = &sha_cache.slot[0];
	for (size_t i = 0; i < SHA_CACHE_SLOTS; i++) {
		struct sha_slot *s = &sha_cache.slot[i];
		if (!strcmp(s->path, path)) {
			c = s; /* the same path's older digest goes */
			break;
		}
		if (s->used < c->used)
			c = s;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->st = *st;
	memcpy(c->hex, hex, 65);
	c->used = ++sha_cache.tick;
	pthread_mutex_unlock(&sha_cache.lock);
}

/* The sha256 of `path`, whose stat() is `st`: remembered, or computed and remembered when the
 * file did not change while it was read. */
static int binary_sha256(const char *path, const struct stat *st, char hex[65],
			 struct rb_err *err)
{
	if (sha_cached(path, st, hex))
		return 0;
	int rc = rb_sha256_file(path, hex, err);
	struct stat after;
	if (!rc && stat(path, &after) == 0 && same_identity(&after, st))
		sha_remember(path, st, hex);
	return rc;
}

/* The installed binary is still what was installed: present, executable, same sha256. */
static int check_installed(struct spawn *s, struct rb_err *err)
{
	const struct rb_installed *w = &s->installed;
	struct stat st;
	if (stat(w->binary_path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    access(w->binary_path, X_OK) != 0)
		return rb_err_set(err, RB_EIO, "installed worker '%s' is damaged: its binary '%s' is "
				  "missing or not executable; reinstall it ('rbee worker install %s')",
				  w->id, w->binary_path, w->id);
	if (!w->sha256[0])
		return 0;
	char hex[65];
	int rc = binary_sha256(w->binary_path, &st, hex, err);
	if (rc)
		return rc;
	if (strcasecmp(hex, w->sha256))
		return rb_err_set(err, RB_EIO, "installed worker '%s' was modified: its binary '%s' "
				  "has sha256 %.12s..., not %.12s... as installed; reinstall it ('rbee "
				  "worker install %s')", w->id, w->binary_path, hex, w->sha256, w->id);
	return 0;
}

/* Whether a model of `size` bytes fits on d, as check_fit decides (unknown figures do not rule
 * a device out). */
static bool fits(const struct rbee_device *d, uint64_t size)
{
	uint64_t need = rb_spawn_needed_bytes(size);
	if (!d->memory_free)
		return !d->memory_total || need <= d->memory_total;
	return need <= d->memory_free;
}

static int by_score(const void *a, const void *b)
{
	const struct rb_backend_info *x = a, *y = b;
	return x->score != y->score ? (y->score > x->score ? 1 : -1) : strcmp(x->name, y->name);
}

/* No `worker` given: the highest-scoring available backend (score > 0) that has an installed,
 * intact worker and the requested device, on which the model fits. Says what it chose over
 * what, and why each higher-ranked one was passed over. */
static int choose_backend(struct spawn *s, struct rb_err *err)
{
	struct rb_backend_info *list;
	rb_backends_wait_ready(s->hive, -1);
	size_t n = rb_backends_list(s->hive, &list);
	qsort(list, n, sizeof(*list), by_score);
	struct rb_model_record model;
	struct rb_err merr = RB_ERR_INIT;
	bool have_model = rb_models_get(s->hive, s->req->model, &model, &merr) == 0;
	struct rb_buf skipped = RB_BUF_INIT, over = RB_BUF_INIT, unranked = RB_BUF_INIT;
	size_t chosen = n;
	char why[256];
	for (size_t i = 0; i < n; i++) {
		struct rb_backend_info *b = &list[i];
		if (b->state != RB_BACKEND_AVAILABLE)
			continue;
		if (b->score <= 0) {
			rb_buf_addf(&unranked, "%s%s", unranked.len ? ", " : "", b->name);
			continue;
		}
		if (chosen < n) {
			rb_buf_addf(&over, "%s%s (score %d)", over.len ? ", " : "", b->name, b->score);
			continue;
		}
		struct rb_err e = RB_ERR_INIT;
		const struct rbee_device *dev = NULL;
		for (size_t d = 0; d < b->ndevices && !dev; d++)
			if (b->devices[d].index == s->req->device)
				dev = &b->devices[d];
		why[0] = '\0';
		if (rb_installed_find_by_type(s->hive, b->name, &s->installed, &e) != 0) {
			snprintf(why, sizeof(why), "no '%s' worker is installed", b->name);
		} else if (check_installed(s, &e) != 0) {
			snprintf(why, sizeof(why), "%s", e.msg);
		} else if (!dev) {
			snprintf(why, sizeof(why), "it has no device %u", s->req->device);
		} else if (have_model && !fits(dev, model.size)) {
			snprintf(why, sizeof(why), "model '%s' does not fit on device %u (%s)",
				 model.id, dev->index, dev->id);
		}
		if (why[0]) {
			rb_installed_release(&s->installed);
			memset(&s->installed, 0, sizeof(s->installed));
			rb_buf_addf(&skipped, "%s%s (score %d: %s)", skipped.len ? "; " : "", b->name,
				    b->score, why);
			continue;
		}
		chosen = i;
	}
	int rc = 0;
	if (chosen < n) {
		s->backend = list[chosen];
		list[chosen].devices = NULL; /* moved */
		list[chosen].ndevices = 0;
		list[chosen].attrs = NULL;
		list[chosen].nattrs = 0;
		rb_job_say(s->job, "chose backend %s (score %d)%s%s%s%s", s->backend.name,
			   s->backend.score, over.len ? " over " : "", over.len ? over.data : "",
			   skipped.len ? "; passed over " : "", skipped.len ? skipped.data : "");
		if (unranked.len)
			rb_job_say(s->job, "not ranked (score 0, used only when named): %s", unranked.data);
	} else {
		rc = rb_err_set(err, RB_EUNAVAIL, "no backend can run this spawn%s%s%s%s: name one "
				"with 'worker' (see 'rbee hive backends' and 'rbee worker list')",
				skipped.len ? ": " : " (no available backend has a score above 0)",
				skipped.len ? skipped.data : "",
				unranked.len ? "; not ranked (score 0): " : "",
				unranked.len ? unranked.data : "");
	}
	rb_buf_release(&skipped);
	rb_buf_release(&over);
	rb_buf_release(&unranked);
	rb_backends_list_free(list, n);
	return rc;
}

static int resolve_worker(struct spawn *s, struct rb_err *err)
{
	bool by_type = true;
	if (!s->req->worker || !*s->req->worker) {
		int rc = choose_backend(s, err);
		if (!rc)
			rb_job_say(s->job, "worker '%s' %s (backend '%s') is installed and intact",
				   s->installed.id, s->installed.version, s->backend.name);
		return rc;
	}
	int rc = resolve_backend(s, &by_type, err);
	if (!rc)
		rc = check_backend(s, err);
	if (!rc && by_type)
		rc = rb_installed_find_by_type(s->hive, s->backend.name, &s->installed, err);
	if (rc == -RB_ENOTFOUND && by_type)
		return rb_err_set(err, RB_ENOTFOUND, "no '%s' worker is installed: install one first "
				  "(see 'rbee worker available')", s->backend.name);
	if (!rc)
		rc = check_installed(s, err);
	if (!rc && by_type)
		rb_job_say(s->job, "using '%s', the first installed '%s' worker (name an installed "
			   "worker id to choose another)", s->installed.id, s->backend.name);
	if (!rc)
		rb_job_say(s->job, "worker '%s' %s (backend '%s') is installed and intact",
			   s->installed.id, s->installed.version, s->backend.name);
	return rc;
}

static int resolve_device(struct spawn *s, struct rb_err *err)
{
	for (size_t i = 0; i < s->backend.ndevices; i++)
		if (s->backend.devices[i].index == s->req->device) {
			s->device = &s->backend.devices[i];
			return 0;
		}
	struct rb_buf list = RB_BUF_INIT;
	for (size_t i = 0; i < s->backend.ndevices; i++)
		rb_buf_addf(&list, "%s%u (%s)", i ? ", " : "", s->backend.devices[i].index,
			    s->backend.devices[i].id);
	rb_err_set(err, RB_ENOTFOUND, "device %u does not exist for backend '%s' (its devices: %s; "
		   "see 'rbee hive devices')", s->req->device, s->backend.name,
		   list.len ? list.data : "none");
	rb_buf_release(&list);
	return -RB_ENOTFOUND;
}

uint64_t rb_spawn_needed_bytes(uint64_t size)
{
	return size + size * RB_SPAWN_FIT_MARGIN_PCT / 100 + RB_SPAWN_FIT_MARGIN_BYTES;
}

static int check_fit(struct spawn *s, struct rb_err *err)
{
	const struct rbee_device *d = s->device;
	char a[32], b[32], c[32], t[32];
	uint64_t need = rb_spawn_needed_bytes(s->model.size);
	const char *what = !strcmp(d->device_type, "gpu") ? "VRAM" : "memory";
	if (!d->memory_total && !d->memory_free) {
		rb_job_say(s->job, "device %s reports no memory figures; not checking that the model "
			   "fits", d->id);
		return 0;
	}
	if (!d->memory_free) {
		/* 0 is "unknown" in the ABI (struct rbee_device): not "full". Only the total can
		 * rule the model out. */
		if (need > d->memory_total)
			return rb_err_set(err, RB_ECONFLICT,
					  "model '%s' (%s) does not fit on %s device %u (%s): it needs %s "
					  "(the model + %d%% + %llu MiB margin) but the device has only %s "
					  "of %s in all",
					  s->model.id, human(s->model.size, a, sizeof(a)), s->backend.name,
					  d->index, d->id, human(need, b, sizeof(b)), RB_SPAWN_FIT_MARGIN_PCT,
					  RB_SPAWN_FIT_MARGIN_BYTES >> 20,
					  human(d->memory_total, t, sizeof(t)), what);
		rb_job_say(s->job, "device %s reports its free %s as unknown; skipping the free-memory "
			   "check (the model needs %s of its %s in all)", d->id, what,
			   human(need, b, sizeof(b)), human(d->memory_total, t, sizeof(t)));
		return 0;
	}
	if (need > d->memory_free)
		return rb_err_set(err, RB_ECONFLICT,
				  "model '%s' (%s) does not fit on %s device %u (%s): it needs %s "
				  "(the model + %d%% + %llu MiB margin) but only %s of %s %s is free",
				  s->model.id, human(s->model.size, a, sizeof(a)), s->backend.name,
				  d->index, d->id, human(need, b, sizeof(b)), RB_SPAWN_FIT_MARGIN_PCT,
				  RB_SPAWN_FIT_MARGIN_BYTES >> 20, human(d->memory_free, c, sizeof(c)),
				  human(d->memory_total, t, sizeof(t)), what);
	rb_job_say(s->job, "model '%s' (%s) fits on %s (%s): needs %s of %s free %s", s->model.id,
		   human(s->model.size, a, sizeof(a)), d->id, d->name, human(need, b, sizeof(b)),
		   human(d->memory_free, c, sizeof(c)), what);
	return 0;
}

/* ---- registration and port --------------------------------------------------------------- */

/* "<installed id>-<6 hex digits>", a plain id of at most 128 characters. */
static void make_id(struct spawn *s)
{
	unsigned char r[3] = { 0 };
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		unsigned x = (unsigned)rb_now_ms() ^ (unsigned)getpid();
		memcpy(r, &x, sizeof(r));
	}
	snprintf(s->w.id, sizeof(s->w.id), "%.120s-%02x%02x%02x", s->installed.id, r[0], r[1], r[2]);
}

/* Register the worker (state starting) while holding the installed worker's short lock, so a
 * worker_remove or an install's commit either ran before (and the get below fails or finds
 * another install) or sees the entry and refuses. */
static int register_worker(struct spawn *s, struct rb_err *err)
{
	struct rb_worker *w = &s->w;
	memset(w, 0, sizeof(*w));
	make_id(s);
	snprintf(w->installed_id, sizeof(w->installed_id), "%s", s->installed.id);
	snprintf(w->backend, sizeof(w->backend), "%s", s->backend.name);
	w->device = s->device->index;
	snprintf(w->device_id, sizeof(w->device_id), "%s", s->device->id);
	snprintf(w->model, sizeof(w->model), "%s", s->req->model);
	const char *hp = s->installed.launch ? rb_json_str(s->installed.launch, "health_path") : NULL;
	snprintf(w->health_path, sizeof(w->health_path), "%s", hp && hp[0] == '/' ? hp : "/health");
	if ((size_t)snprintf(w->log_path, sizeof(w->log_path), "%s/%s.log", s->hive->paths.logs,
			     w->id) >= sizeof(w->log_path))
		return rb_err_set(err, RB_EINVAL, "log path too long under '%s'", s->hive->paths.logs);
	w->started_at = time(NULL);
	w->state = RB_WORKER_STARTING;
	int lock;
	int rc = rb_installed_lock(s->hive, s->installed.id, &lock, err);
	if (rc)
		return rc;
	struct rb_installed again;
	rc = rb_installed_get(s->hive, s->installed.id, &again, err);
	if (!rc) {
		/* An install's commit may have swapped workers/<id> since it was read and checked. */
		bool same = !strcmp(again.sha256, s->installed.sha256) &&
			    !strcmp(again.binary_path, s->installed.binary_path);
		rb_installed_release(&again);
		rc = same ? rb_workers_add(s->hive, w, err)
			  : rb_err_set(err, RB_ECONFLICT, "worker '%s' was reinstalled while this "
				       "spawn started: spawn it again", s->installed.id);
	}
	rb_installed_unlock(lock);
	s->registered = rc == 0;
	return rc;
}

bool rb_spawn_port_free(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* SO_REUSEADDR as servers set it: a listener still makes bind fail, a port whose last
	 * connections linger in TIME_WAIT does not. */
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	if (!ok)
		return false;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true; /* no IPv6 here: nothing can listen on it */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_ANY_INIT };
	ok = bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0 || errno == EADDRNOTAVAIL;
	close(fd);
	return ok;
}

/* The first port of the range, from the rotating hint on, that no live worker holds and that
 * nobody listens on; `avoid` (a port a worker just failed to bind) is skipped. */
static int claim_port(struct spawn *s, uint16_t avoid, struct rb_err *err)
{
	uint16_t lo, hi;
	rb_workers_port_range(s->hive, &lo, &hi);
	unsigned span = (unsigned)hi - lo + 1;
	uint16_t p = rb_workers_next_port_hint(s->hive);
	for (unsigned i = 0; i < span; i++, p = p >= hi ? lo : (uint16_t)(p + 1)) {
		if (p == avoid || !rb_spawn_port_free(p))
			continue;
		struct rb_err e2 = RB_ERR_INIT;
		if (rb_workers_claim_port(s->hive, s->w.id, p, &e2) == 0) {
			s->w.port = p;
			snprintf(s->w.url, sizeof(s->w.url), "http://127.0.0.1:%u", p);
			return 0;
		}
	}
	return rb_err_set(err, RB_EUNAVAIL, "no free port for the worker in %u-%u (all %u are in "
			  "use): stop some workers or widen RBEE_WORKER_PORTS", lo, hi, span);
}

/* ---- launch plan ------------------------------------------------------------------------- */

/* Where workers reach the hive: its own address, loopback when it listens on all. */
static void hive_url(struct rb_hive *hive, char *out, size_t len)
{
	const char *b = hive->cfg.bind;
	if (!b[0] || !strcmp(b, "0.0.0.0"))
		b = "127.0.0.1";
	else if (!strcmp(b, "::"))
		b = "::1";
	snprintf(out, len, strchr(b, ':') ? "http://[%s]:%u" : "http://%s:%u", b, hive->cfg.port);
}

static int make_plan(struct spawn *s, struct rb_err *err)
{
	char url[128];
	hive_url(s->hive, url, sizeof(url));
	rb_plan_release(&s->plan);
	rb_env_from_environ_scrubbed(&s->plan.env);
	s->plan.launch = s->installed.launch;
	struct rbee_worker_info wi = {
		.worker_id = s->installed.id, .binary_path = s->installed.binary_path,
		.install_dir = s->installed.root, .worker_type = s->installed.worker_type,
	};
	struct rbee_spawn_request r = {
		.struct_size = sizeof(r),
		.worker = &wi,
		.device = s->device,
		.instance_id = s->w.id,
		.model_id = s->model.id,
		.model_path = s->model.path,
		.port = s->w.port,
		.hive_url = url,
	};
	int rc = rb_backend_spawn(s->hive, s->backend.name, s->job, &r, &s->plan, err);
	/* {threads} counts the CPUs of the binding the plugin chose (host.h). */
	return rc ? rc : rb_plan_finish(&s->plan, &r, err);
}

/* ---- binding, applied between fork and exec ---------------------------------------------- */

/* Prepared before fork, read-only in the child. */
struct binding {
	cpu_set_t *cpus;          /* NULL: no CPU binding */
	size_t cpus_size;
	unsigned long nodes[MAX_NUMA_NODES / LONG_BITS];
	bool bind_memory;
	char note[256];           /* written to the log when memory binding is not possible */
	const struct worker_user *user; /* whom to become after binding */
};

static void binding_release(struct binding *b)
{
	if (b->cpus)
		CPU_FREE(b->cpus);
	b->cpus = NULL;
}

static int binding_prepare(const struct rb_plan *plan, struct binding *b, struct rb_err *err)
{
	memset(b, 0, sizeof(*b));
	int max;
	if (plan->cpuset[0]) {
		unsigned long *m = calloc(MAX_CPUS / LONG_BITS, sizeof(unsigned long));
		if (!m)
			return rb_err_set(err, RB_EINTERNAL, "out of memory");
		int rc = rb_topology_parse_list(plan->cpuset, m, MAX_CPUS, &max, err);
		if (!rc && max >= 0) {
			b->cpus = CPU_ALLOC((size_t)max + 1);
			b->cpus_size = CPU_ALLOC_SIZE((size_t)max + 1);
			if (b->cpus) {
				CPU_ZERO_S(b->cpus_size, b->cpus);
				for (int i = 0; i <= max; i++)
					if (m[i / LONG_BITS] & (1ul << (i % LONG_BITS)))
						CPU_SET_S((size_t)i, b->cpus_size, b->cpus);
			}
		}
		free(m);
		if (rc)
			return rc;
	}
	if (plan->nodeset[0]) {
		int rc = rb_topology_parse_list(plan->nodeset, b->nodes, MAX_NUMA_NODES, &max, err);
		if (rc) {
			binding_release(b);
			return rc;
		}
		b->bind_memory = max >= 0;
		snprintf(b->note, sizeof(b->note), "rbee-hive: note: memory not bound to NUMA "
			 "node(s) %s: set_mempolicy(MPOL_BIND) is ", plan->nodeset);
	}
	return 0;
}

static void write_all(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Child side: async-signal-safe calls only. A CPU binding that fails fails the start; a
 * memory policy the kernel does not offer or allow (no NUMA support, seccomp'd container) is
 * noted in the worker's log, which is stderr by now. */
static int drop_to(const struct worker_user *u);

static int apply_binding(void *arg)
{
	const struct binding *b = arg;
	if (b->cpus && sched_setaffinity(0, b->cpus_size, b->cpus) != 0)
		return errno;
	if (b->bind_memory &&
	    syscall(SYS_set_mempolicy, MPOL_BIND, b->nodes, (unsigned long)MAX_NUMA_NODES + 1) != 0) {
		int e = errno;
		if (e != ENOSYS && e != EPERM)
			return e;
		write_all(2, b->note);
		write_all(2, e == ENOSYS ? "not supported by this kernel\n" : "not permitted here\n");
	}
	return b->user && b->user->drop ? drop_to(b->user) : 0;
}

/* ---- the worker's user ------------------------------------------------------------------- */

/* Whether uid (with gid = uid and `u`'s groups) has the permission bits `want` on `st`. */
static bool user_may(const struct worker_user *u, const struct stat *st, unsigned want)
{
	unsigned bits = st->st_mode & 7;
	if (st->st_uid == u->uid) {
		bits = (st->st_mode >> 6) & 7;
	} else {
		bool member = st->st_gid == (gid_t)u->uid;
		for (int i = 0; i < u->ngroups && !member; i++)
			member = st->st_gid == u->groups[i];
		if (member)
			bits = (st->st_mode >> 3) & 7;
	}
	return (bits & want) == want;
}

/* Whether the worker's user can reach `path` (search every directory above it) and has `want`
 * on it; else why not, in `why`. */
static bool user_reaches(const struct worker_user *u, const char *path, unsigned want,
			 char *why, size_t len)
{
	char dir[PATH_MAX];
	struct stat st;
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir) || stat(path, &st) != 0) {
		snprintf(why, len, "'%s' cannot be read", path);
		return false;
	}
	if (!user_may(u, &st, want)) {
		snprintf(why, len, "'%s' has mode %04o", path, (unsigned)(st.st_mode & 07777));
		return false;
	}
	for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
		*slash = '\0';
		const char *d = dir[0] ? dir : "/";
		if (stat(d, &st) != 0 || !user_may(u, &st, 1)) {
			snprintf(why, len, "directory '%s' (mode %04o) cannot be searched by others", d,
				 (unsigned)(st.st_mode & 07777));
			return false;
		}
	}
	return true;
}

/* The uid range from RBEE_WORKER_UIDS ("FIRST-LAST", or "none": workers run as the hive's
 * user); 0 and *none, or an error. */
static int worker_uid_range(uid_t *first, unsigned *count, bool *none, struct rb_err *err)
{
	const char *v = getenv("RBEE_WORKER_UIDS");
	*none = false;
	if (v && !strcmp(v, "none")) {
		*none = true;
		return 0;
	}
	if (!v || !*v)
		v = WORKER_UIDS_DEFAULT;
	char *end;
	errno = 0;
	unsigned long a = strtoul(v, &end, 10), b = 0;
	bool ok = !errno && end != v && *end == '-' && isdigit((unsigned char)end[1]);
	if (ok) {
		const char *s2 = end + 1;
		b = strtoul(s2, &end, 10);
		ok = !errno && !*end && a >= 1000 && b >= a && b < 0xFFFFFFFEul;
	}
	if (!ok)
		return rb_err_set(err, RB_EINVAL, "RBEE_WORKER_UIDS='%s' is not a uid range "
				  "FIRST-LAST above 1000 (for example %s), nor 'none'", v,
				  WORKER_UIDS_DEFAULT);
	*first = (uid_t)a;
	*count = (unsigned)(b - a + 1);
	return 0;
}

/* Decide whom the worker runs as (after its port is claimed) and check that user can run its
 * binary and read its model, so a spawn fails here with a reason rather than in exec. */
static int choose_user(struct spawn *s, struct rb_err *err)
{
	struct worker_user *u = &s->user;
	memset(u, 0, sizeof(*u));
	if (geteuid() != 0)
		return 0; /* an unprivileged hive: its workers run as it does */
	uid_t first = 0;
	unsigned count = 0;
	bool none;
	int rc = worker_uid_range(&first, &count, &none, err);
	if (rc)
		return rc;
	if (none) {
		rb_job_say(s->job, "warning: the worker runs as root (RBEE_WORKER_UIDS=none)");
		return 0;
	}
	uint16_t lo, hi;
	rb_workers_port_range(s->hive, &lo, &hi);
	unsigned span = (unsigned)hi - lo + 1;
	if (count < span)
		return rb_err_set(err, RB_EINVAL, "RBEE_WORKER_UIDS holds %u uids but "
				  "RBEE_WORKER_PORTS %u ports: each worker's uid follows its port, so "
				  "give it at least %u", count, span, span);
	u->uid = first + (uid_t)(s->w.port - lo);
	struct passwd pw, *pres = NULL;
	char buf[4096];
	if (getpwuid_r(u->uid, &pw, buf, sizeof(buf), &pres) == 0 && pres)
		return rb_err_set(err, RB_EINVAL, "worker uid %u is the account '%s': workers need "
				  "uids no account uses; set RBEE_WORKER_UIDS to a free range",
				  (unsigned)u->uid, pw.pw_name);
	static const char *const groups[] = { "video", "render" };
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		struct group gr, *gres = NULL;
		if (getgrnam_r(groups[i], &gr, buf, sizeof(buf), &gres) == 0 && gres &&
		    u->ngroups < WORKER_GROUPS_MAX)
			u->groups[u->ngroups++] = gr.gr_gid;
	}
	u->drop = true;
	char why[PATH_MAX + 128];
	if (!user_reaches(u, s->installed.binary_path, 5, why, sizeof(why)))
		return rb_err_set(err, RB_EUNAVAIL, "worker '%s' would run as uid %u, which cannot "
				  "execute '%s': %s; keep RBEE_HOME where other users can search it "
				  "(the shipped unit uses /var/cache/rbee)", s->installed.id,
				  (unsigned)u->uid, s->installed.binary_path, why);
	if (s->model.path[0] && !user_reaches(u, s->model.path, 4, why, sizeof(why)))
		return rb_err_set(err, RB_EUNAVAIL, "worker '%s' would run as uid %u, which cannot "
				  "read the model '%s': %s; keep RBEE_HOME where other users can search "
				  "it (the shipped unit uses /var/cache/rbee)", s->installed.id,
				  (unsigned)u->uid, s->model.path, why);
	return 0;
}

/* Child side, after the binding: become the worker's user for good. Raw syscalls: the child
 * shares the hive's memory until its exec (rb_proc_opts.setup_shares_memory), where glibc's
 * wrappers would try to change the credentials of every hive thread. */
static int drop_to(const struct worker_user *u)
{
	if (syscall(SYS_setgroups, (size_t)u->ngroups, u->groups) != 0 ||
	    syscall(SYS_setresgid, u->uid, u->uid, u->uid) != 0 ||
	    syscall(SYS_setresuid, u->uid, u->uid, u->uid) != 0)
		return errno ? errno : EPERM;
	if (syscall(SYS_setuid, 0) == 0)
		return EPERM; /* the drop did not stick */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return errno;
	return 0;
}

/* ---- starting the process ---------------------------------------------------------------- */

static int open_log(struct spawn *s, int *fd, struct rb_err *err)
{
	*fd = open(s->w.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (*fd < 0)
		return rb_err_set(err, RB_EIO, "cannot open worker log '%s': %s", s->w.log_path,
				  strerror(errno));
	/* A header per start: which command, when, bound where; retries append below. */
	struct rb_buf h = RB_BUF_INIT;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	rb_buf_addf(&h, "=== rbee-hive %s: starting worker '%s' on %s device %u (port %u)\n===",
		    when, s->w.id, s->backend.name, s->device->index, s->w.port);
	for (size_t i = 0; i < s->plan.argc; i++)
		rb_buf_addf(&h, " %s", s->plan.argv[i]);
	rb_buf_addf(&h, "\n");
	write_all(*fd, h.data);
	rb_buf_release(&h);
	return 0;
}

static void narrate_plan(struct spawn *s)
{
	const char *cvd = rb_env_get(&s->plan.env, "CUDA_VISIBLE_DEVICES");
	rb_job_say(s->job, "starting '%s' on port %u%s%s%s%s%s%s", s->w.id, s->w.port,
		   s->plan.cpuset[0] ? ", CPUs " : "", s->plan.cpuset,
		   s->plan.nodeset[0] ? ", memory on NUMA node(s) " : "", s->plan.nodeset,
		   cvd ? ", CUDA_VISIBLE_DEVICES=" : "", cvd ? cvd : "");
	if (s->user.drop)
		rb_job_say(s->job, "runs as uid %u (RBEE_WORKER_UIDS), never as root", (unsigned)s->user.uid);
	rb_job_say(s->job, "log: %s", s->w.log_path);
}

static int start_process(struct spawn *s, struct rb_err *err)
{
	struct binding b;
	int rc = binding_prepare(&s->plan, &b, err);
	if (rc)
		return rc;
	b.user = &s->user;
	int logfd;
	if ((rc = open_log(s, &logfd, err))) {
		binding_release(&b);
		return rc;
	}
	char what[400];
	snprintf(what, sizeof(what), "binding to CPUs '%s' and memory on NUMA node(s) '%s'",
		 s->plan.cpuset[0] ? s->plan.cpuset : "any", s->plan.nodeset[0] ? s->plan.nodeset : "any");
	struct rb_proc_opts o = {
		.argv = (const char *const *)s->plan.argv,
		.envp = rb_env_envp(&s->plan.env),
		.cwd = s->hive->paths.home,
		.out = RB_PROC_IO_FD, .out_fd = logfd,
		.err = RB_PROC_IO_MERGE,
		.new_pgroup = true,
		/* No die_with_parent: workers outlive a hive restart and are re-adopted. */
		.child_setup = apply_binding, .child_arg = &b, .setup_what = what,
		.setup_shares_memory = true,
	};
	struct rb_proc p;
	narrate_plan(s);
	rc = rb_proc_start(&o, &p, err);
	close(logfd);
	binding_release(&b);
	if (rc)
		return rb_err_prefix(err, "worker '%s'", s->w.id);
	struct rb_procfs_stat st = { 0 };
	rb_procfs_stat(p.pid, &st);
	s->w.pid = p.pid;
	s->w.start_time = st.start_time;
	return rb_workers_set_started(s->hive, s->w.id, p.pid, st.start_time, err);
}

/* ---- readiness --------------------------------------------------------------------------- */

/* The last lines of the worker's log (this start's part), joined with " | ". */
static void log_tail(struct spawn *s, struct rb_buf *out, bool narrate)
{
	struct rb_buf all = RB_BUF_INIT;
	int fd = open(s->w.log_path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		off_t end = lseek(fd, 0, SEEK_END);
		off_t from = end > LOG_TAIL_BYTES ? end - LOG_TAIL_BYTES : 0;
		char buf[LOG_TAIL_BYTES];
		ssize_t n = pread(fd, buf, sizeof(buf), from);
		if (n > 0)
			rb_buf_add(&all, buf, (size_t)n);
		close(fd);
	}
	/* Only what this start wrote: after the two header lines the hive put there last. */
	char *start = all.data, *h, *save = NULL;
	for (char *from = all.data; (h = strstr(from, "=== rbee-hive ")); from = h + 1)
		start = h;
	if (start != all.data || !strncmp(all.data, "=== rbee-hive ", 14)) {
		char *nl = strchr(start, '\n');
		nl = nl ? strchr(nl + 1, '\n') : NULL;
		start = nl ? nl + 1 : all.data + all.len;
	}
	const char *lines[LOG_TAIL_LINES];
	size_t n = 0;
	for (char *line = strtok_r(start, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (n == LOG_TAIL_LINES)
			memmove(lines, lines + 1, sizeof(lines[0]) * --n);
		lines[n++] = line;
	}
	for (size_t i = 0; i < n; i++) {
		if (narrate)
			rb_job_say(s->job, "  | %s", lines[i]);
		rb_buf_addf(out, "%s%s", i ? " | " : "", lines[i]);
	}
	if (!n)
		rb_buf_adds(out, "(the log is empty)");
	rb_buf_release(&all);
}

/* Did the worker end because its port was taken? Either the port is busy now, or the log
 * says so in the words of common servers and runtimes. */
static bool bind_failure(struct spawn *s, const char *tail)
{
	static const char *const words[] = { "address already in use", "eaddrinuse",
					     "couldn't bind", "could not bind", "failed to bind",
					     NULL };
	if (!rb_spawn_port_free(s->w.port))
		return true;
	for (size_t i = 0; words[i]; i++)
		if (strcasestr(tail, words[i]))
			return true;
	return false;
}

/* Whether something accepts connections on the worker's port (it listens on loopback): a
 * refused connect() costs microseconds, an HTTP request that finds nobody a lot more. */
static bool port_accepts(uint16_t port, int *e)
{
	/* Non-blocking: on loopback a port nobody listens on is refused at once, while a worker
	 * that listens but does not accept (loading, wedged) would leave a blocking connect()
	 * waiting for SYN retries once its backlog is full (a minute and more, past the ready
	 * timeout and cancel). EINPROGRESS: something listens; the request says the rest. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return true; /* cannot tell: let the request say */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != ECONNREFUSED;
	*e = errno;
	close(fd);
	return ok;
}

static bool healthy(struct spawn *s, char *why, size_t len)
{
	char url[256];
	snprintf(url, sizeof(url), "%s%s", s->w.url, s->w.health_path);
	int e;
	if (!port_accepts(s->w.port, &e)) {
		snprintf(why, len, "cannot reach '%s': %s", url, strerror(e));
		return false;
	}
	struct rb_http_resp r;
	struct rb_err err = RB_ERR_INIT;
	rb_http_resp_init(&r);
	bool ok = false;
	if (rb_http_request("GET", url, NULL, NULL, 0, HEALTH_REQ_MS, 65536, &r, &err))
		snprintf(why, len, "%s", err.msg);
	else if (!(ok = r.status >= 200 && r.status <= 299))
		snprintf(why, len, "'%s' answered HTTP %ld", url, r.status);
	rb_http_resp_release(&r);
	return ok;
}

enum wait_result { WAIT_READY, WAIT_EXITED, WAIT_FAILED };

/* Poll until ready, exited, timed out or cancelled. WAIT_EXITED leaves the tail of the log in
 * *tail and the error in *err; WAIT_FAILED means stop the worker and fail with *err. */
static enum wait_result wait_ready(struct spawn *s, struct rb_buf *tail, struct rb_err *err)
{
	long long t0 = rb_now_ms(), deadline = t0 + s->ready_timeout_ms, said = t0;
	char why[512] = "no answer yet";
	rb_job_progress(s->job, "loading", 0, 0, 0);
	for (;;) {
		struct rb_worker now;
		if (rb_workers_poll(s->hive, s->w.id, &now, err))
			return WAIT_FAILED;
		if (!rb_worker_state_live(now.state)) {
			log_tail(s, tail, true);
			rb_err_set(err, RB_EIO, "worker '%s' %s before it became ready; last lines of "
				   "its log '%s': %s", s->w.id, now.reason, s->w.log_path, tail->data);
			return WAIT_EXITED;
		}
		if (healthy(s, why, sizeof(why))) {
			if (rb_workers_set_ready(s->hive, s->w.id, err))
				return WAIT_FAILED;
			rb_job_progress(s->job, "ready", 0, 0, 0);
			rb_job_say(s->job, "worker '%s' is ready after %.1f s: %s", s->w.id,
				   (double)(rb_now_ms() - t0) / 1000, s->w.url);
			return WAIT_READY;
		}
		long long now_ms = rb_now_ms();
		if (rb_job_cancelled(s->job)) {
			rb_err_set(err, RB_ECANCELLED, "cancelled while worker '%s' was loading", s->w.id);
			return WAIT_FAILED;
		}
		if (now_ms >= deadline) {
			log_tail(s, tail, true);
			rb_err_set(err, RB_ETIMEDOUT, "worker '%s' did not become ready within %d s "
				   "(last health check: %s), so it was stopped; last lines of its log "
				   "'%s': %s", s->w.id, s->ready_timeout_ms / 1000, why, s->w.log_path,
				   tail->data);
			return WAIT_FAILED;
		}
		if (now_ms - said >= NARRATE_EVERY_MS) {
			rb_job_say(s->job, "still loading (%lld s)", (now_ms - t0) / 1000);
			said = now_ms;
		}
		rb_job_progress(s->job, "loading", 0, 0, 0);
		/* Late by at most an eighth of the wait: a worker ready in 10 ms is seen within 2 ms,
		 * one that loads for a minute is asked twice a second. */
		long long left = deadline - now_ms, delay = (now_ms - t0) / POLL_SHARE;
		delay = delay < POLL_FIRST_MS ? POLL_FIRST_MS : delay > POLL_MAX_MS ? POLL_MAX_MS : delay;
		usleep((useconds_t)(left < delay ? left : delay) * 1000);
	}
}

/* Start, and restart on another port when the worker could not bind its port. */
static int launch(struct spawn *s, struct rb_err *err)
{
	uint16_t avoid = 0;
	for (int attempt = 1;; attempt++) {
		struct rb_buf tail = RB_BUF_INIT;
		int rc = claim_port(s, avoid, err);
		if (!rc)
			rc = choose_user(s, err);
		if (!rc)
			rc = make_plan(s, err);
		if (!rc)
			rc = start_process(s, err);
		enum wait_result wr = rc ? WAIT_FAILED : wait_ready(s, &tail, err);
		bool retry = wr == WAIT_EXITED && attempt < RB_SPAWN_PORT_ATTEMPTS &&
			     bind_failure(s, tail.data);
		rb_buf_release(&tail);
		if (wr == WAIT_READY)
			return 0;
		if (!retry)
			return -err->code;
		rb_job_say(s->job, "worker '%s' could not bind port %u; retrying on another port "
			   "(attempt %d of %d)", s->w.id, s->w.port, attempt + 1,
			   RB_SPAWN_PORT_ATTEMPTS);
		avoid = s->w.port;
		rb_err_clear(err);
	}
}

/* ---- the whole spawn --------------------------------------------------------------------- */

static int ready_timeout(struct spawn *s, struct rb_err *err)
{
	int64_t secs = s->installed.launch ? rb_json_int(s->installed.launch, "ready_timeout_s", 0) : 0;
	const char *v = getenv("RBEE_READY_TIMEOUT_S");
	if (v && *v) {
		char *end;
		long x = strtol(v, &end, 10);
		if (*end || x < 1 || x > 86400)
			return rb_err_set(err, RB_EINVAL, "invalid RBEE_READY_TIMEOUT_S '%s': give "
					  "seconds from 1 to 86400", v);
		secs = x;
	}
	if (secs <= 0 || secs > 86400)
		secs = RB_SPAWN_READY_TIMEOUT_S;
	s->ready_timeout_ms = (int)secs * 1000;
	return 0;
}

static int preflight(struct spawn *s, struct rb_err *err)
{
	/* Free memory changes as workers come and go: a probe older than 2 s is redone. */
	rb_backends_refresh(s->hive, 2000);
	int rc = resolve_worker(s, err);
	if (!rc)
		rc = resolve_device(s, err);
	if (!rc)
		rc = ready_timeout(s, err);
	if (!rc)
		rc = register_worker(s, err);
	/* The model is looked up once registered, so a model_delete from here on refuses. */
	if (!rc)
		rc = rb_models_get(s->hive, s->req->model, &s->model, err);
	if (!rc)
		rc = check_fit(s, err);
	return rc;
}

static void spawn_release(struct spawn *s)
{
	rb_backend_info_release(&s->backend);
	rb_installed_release(&s->installed);
	rb_plan_release(&s->plan);
}

int rb_spawn_worker(struct rb_hive *hive, struct rb_job *job, const struct rb_spawn_request *req,
		    struct rb_worker *out, struct rb_err *err)
{
	struct spawn s;
	memset(&s, 0, sizeof(s));
	s.hive = hive;
	s.job = job;
	s.req = req;
	rb_plan_init(&s.plan);
	int rc = preflight(&s, err);
	if (!rc)
		rc = launch(&s, err);
	if (!rc)
		rc = rb_workers_poll(hive, s.w.id, out, err);
	if (rc && s.registered) {
		/* Nothing of a failed spawn stays: its process is stopped and its entry dropped. */
		struct rb_err e2 = RB_ERR_INIT;
		if (rb_workers_stop(hive, s.w.id, rb_workers_grace_ms(hive), NULL, &e2))
			rb_error("cleaning up after a failed spawn: %s", e2.msg);
	}
	spawn_release(&s);
	return rc;
}
