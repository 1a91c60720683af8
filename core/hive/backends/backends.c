/*
 * backends.c - finding, checking, probing and calling backend plugins.
 *
 * A plugin's code first runs in a probe child (`rbee-hive --probe-plugin PATH`, a fresh exec of
 * this binary): it dlopens the file (running its ELF constructors), checks the descriptor
 * (symbol, ABI major, size, flags, name), says "loaded", then runs probe and enumerate and prints
 * JSON the daemon parses. The daemon dlopens a plugin only after such a child survived loading
 * it, so a plugin whose constructor crashes or hangs costs a "broken" entry, not the hive. A
 * crash or hang in probe becomes a "broken" state with the reason too.
 *
 * Probes never run on request or job threads: one refresher thread loads the hwloc topology and
 * runs the first round as soon as the hive starts (the server does not wait for it: until it
 * lands every backend is "probing", and rb_backends_get waits for it, bounded), then re-probes
 * every RBEE_PROBE_INTERVAL_S (default 30 s), when a reader finds the devices older than it
 * asked (rb_backends_refresh only wakes it), and at SIGHUP. Readers get the last result at once.
 *
 * One file per plugin: the daemon opens the plugin file once per round and hands that open file
 * to the probe child (--probe-fd), and dlopens the same open file after the child survived; a
 * loaded plugin keeps its file open and every later probe child loads it from there. So probe,
 * build_env, verify and spawn always run the same code. A plugin file replaced on disk after
 * the daemon loaded it is not reloaded (SIGHUP included): the backend keeps working with the
 * loaded code and says "changed on disk; restart the hive to load it" (a reload would have to
 * unmap code other threads may be running, and leave a plugin's own threads behind).
 */
#include "backends.h"

#include <dirent.h>
#include <dlfcn.h>
#include <hwloc.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hive.h"
#include "host.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "topology.h"

#define PROBE_TIMEOUT_MS_DEFAULT 15000
#define PROBE_INTERVAL_S_DEFAULT 30
/* What the probe child prints on a line of its own once the plugin is loaded and checked. */
#define PROBE_LOADED_MARK "rbee-probe: loaded"
/* The ABI 1.0 descriptor ends with the spawn pointer. */
#define DESCRIPTOR_MIN_SIZE (offsetof(struct rbee_backend, spawn) + sizeof(void *))
/* Whether a descriptor of d->struct_size bytes has `member` (appended in a later minor). */
#define DESC_HAS(d, member) \
	((d)->struct_size >= offsetof(struct rbee_backend, member) + sizeof((d)->member))
/* How long past the probe time limit rb_backends_get waits for the first round. */
#define FIRST_ROUND_SLACK_MS 5000
/* The children of a round share one deadline but are read one after another: one read after
 * a hung plugin used it up has usually finished long ago and only its pipe is left to read.
 * It gets this much, so it is not called "timed out" for the hung one's time (a hung child
 * read late lives this much past its limit). */
#define PROBE_LATE_READ_MS 250

struct plugin {
	void *dl;                         /* NULL until a probe child survived loading it */
	const struct rbee_backend *desc;  /* NULL until then, or when loading failed */
	void *state;                      /* what its init stored in the daemon */
	int fd;                           /* the file loaded in the daemon (held open), else -1 */
	bool changed;                     /* that file is no longer the one at info.path */
	bool blocked;                     /* RBEE_BACKEND_BLOCKLIST: never loaded nor probed */
	bool load_ok;                     /* the last probe child got past loading it */
	struct rb_backend_info info;      /* the last probe; devices owned here */
};

struct rb_backends {
	struct rb_hive *hive;
	pthread_mutex_t lock;         /* guards every plugin's info, and first_done */
	pthread_cond_t first_cond;    /* signalled when the first round landed */
	bool first_done;
	pthread_mutex_t refresh_lock; /* one probe round at a time */
	struct plugin *v;
	size_t n;
	int probe_timeout_ms;
	char self_exe[PATH_MAX];
	/* What probe children run with: the hive's environment without secrets, plus the hive's
	 * topology exported as XML, so each child reads it in a millisecond instead of
	 * rediscovering the machine. */
	struct rb_env probe_env;
	char topology_xml[PATH_MAX];
	/* The refresher thread; wake_lock guards the flags below. */
	pthread_t refresher;
	bool refresher_started;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	bool want_all;      /* SIGHUP: every plugin, those that failed to load too */
	bool want_loaded;   /* a reader found the devices stale */
	atomic_bool stop;   /* shutting down: running probes are stopped */
	int interval_ms;    /* periodic re-probe; 0 = only on demand */
};

void rb_backend_info_release(struct rb_backend_info *info)
{
	free(info->devices);
	info->devices = NULL;
	info->ndevices = 0;
	free(info->attrs);
	info->attrs = NULL;
	info->nattrs = 0;
}

/* ---- checking a plugin file ------------------------------------------------------------- */

/* "rbee_backend_cuda.so" -> "cuda"; 0 when the file name does not follow the convention. */
static int name_from_path(const char *path, char *name, size_t len)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t plen = strlen(RBEE_BACKEND_SYMBOL_PREFIX), blen = strlen(base);
	if (strncmp(base, RBEE_BACKEND_SYMBOL_PREFIX, plen) != 0 || blen <= plen + 3 ||
	    strcmp(base + blen - 3, ".so") != 0)
		return 0;
	size_t n = blen - plen - 3;
	if (n >= len)
		return 0;
	memcpy(name, base + plen, n);
	name[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '_'))
			return 0;
	return 1;
}

int rb_backend_check(const struct rbee_backend *d, const char *expected_name, struct rb_err *err)
{
	if (d->abi_major != RBEE_BACKEND_ABI_MAJOR)
		return rb_err_set(err, RB_EINVAL,
				  "built for backend ABI %u, this hive speaks ABI %u: rebuild the "
				  "plugin against this hive's rbee/backend.h",
				  d->abi_major, RBEE_BACKEND_ABI_MAJOR);
	if (d->struct_size < DESCRIPTOR_MIN_SIZE)
		return rb_err_set(err, RB_EINVAL,
				  "descriptor size %u is smaller than the ABI %u.0 descriptor (%zu bytes)",
				  d->struct_size, RBEE_BACKEND_ABI_MAJOR, (size_t)DESCRIPTOR_MIN_SIZE);
	if (d->flags != 0)
		return rb_err_set(err, RB_EINVAL, "reserved flags field is 0x%x, must be 0", d->flags);
	if (!d->name || strcmp(d->name, expected_name) != 0)
		return rb_err_set(err, RB_EINVAL, "descriptor names backend '%s' but the file is for '%s'",
				  d->name ? d->name : "(null)", expected_name);
	return 0;
}

/* Open the plugin named by `path` from open file `fd` (-1: from path itself). */
static int open_plugin(const char *path, int fd, void **dl_out, const struct rbee_backend **desc_out,
		       char *name, size_t name_len, struct rb_err *err)
{
	*dl_out = NULL;
	*desc_out = NULL;
	if (!name_from_path(path, name, name_len))
		return rb_err_set(err, RB_EINVAL,
				  "'%s' is not named rbee_backend_<name>.so (name: a-z 0-9 _)", path);
	char fdpath[64];
	if (fd >= 0)
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	void *dl = dlopen(fd >= 0 ? fdpath : path, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		return rb_err_set(err, RB_EIO, "cannot load: %s", dlerror());
	char sym[128];
	snprintf(sym, sizeof(sym), "%s%s%s", RBEE_BACKEND_SYMBOL_PREFIX, name, RBEE_BACKEND_SYMBOL_SUFFIX);
	dlerror();
	const struct rbee_backend *d = dlsym(dl, sym);
	if (!d) {
		dlclose(dl);
		return rb_err_set(err, RB_EINVAL, "no exported symbol '%s'", sym);
	}
	int rc = rb_backend_check(d, name, err);
	if (rc) {
		dlclose(dl);
		return rc;
	}
	*dl_out = dl;
	*desc_out = d;
	return 0;
}

int rb_backend_open(const char *path, void **dl_out, const struct rbee_backend **desc_out,
		    char *name, size_t name_len, struct rb_err *err)
{
	return open_plugin(path, -1, dl_out, desc_out, name, name_len, err);
}

/* ---- device JSON (the API's shape and the probe child's wire format) -------------------- */

struct json_object *rb_device_json(const char *backend, const struct rbee_device *d)
{
	struct json_object *o = json_object_new_object();
	bool gpu = !strcmp(d->device_type, "gpu");
	char cc[16];
	rb_json_add_str(o, "id", d->id);
	rb_json_add_str(o, "name", d->name);
	rb_json_add_str(o, "device_type", d->device_type);
	json_object_object_add(o, "vram_gb",
			       json_object_new_double(gpu ? (double)(d->memory_total >> 20) / 1024.0 : 0.0));
	if (d->cc_major >= 0) {
		snprintf(cc, sizeof(cc), "%d.%d", d->cc_major, d->cc_minor);
		rb_json_add_str(o, "compute_capability", cc);
	} else {
		json_object_object_add(o, "compute_capability", NULL);
	}
	rb_json_add_str(o, "backend", backend);
	rb_json_add_int(o, "index", d->index);
	rb_json_add_str(o, "uuid", d->uuid[0] ? d->uuid : NULL);
	rb_json_add_str(o, "pci_bus_id", d->pci_bus_id[0] ? d->pci_bus_id : NULL);
	rb_json_add_int(o, "memory_total_bytes", (int64_t)d->memory_total);
	rb_json_add_int(o, "memory_free_bytes", (int64_t)d->memory_free);
	rb_json_add_str(o, "driver_version", d->driver_version[0] ? d->driver_version : NULL);
	if (d->numa_node >= 0)
		rb_json_add_int(o, "numa_node", d->numa_node);
	else
		json_object_object_add(o, "numa_node", NULL);
	rb_json_add_str(o, "cpuset", d->cpuset[0] ? d->cpuset : NULL);
	rb_json_add_str(o, "nodeset", d->nodeset[0] ? d->nodeset : NULL);
	if (!gpu) {
		rb_json_add_int(o, "cores", d->cores);
		rb_json_add_int(o, "pus", d->pus);
	}
	if (d->cc_major >= 0) {
		rb_json_add_int(o, "cc_major", d->cc_major);
		rb_json_add_int(o, "cc_minor", d->cc_minor);
	}
	return o;
}

/* {"key": "value", ...} of device i. */
static struct json_object *attrs_json(const struct rb_device_attr *a, size_t n, size_t i)
{
	struct json_object *o = json_object_new_object();
	for (size_t k = 0; k < n; k++)
		if (a[k].device == i)
			rb_json_add_str(o, a[k].key, a[k].value);
	return o;
}

struct json_object *rb_backend_device_json(const struct rb_backend_info *info, size_t i)
{
	struct json_object *o = rb_device_json(info->name, &info->devices[i]);
	json_object_object_add(o, "attributes", attrs_json(info->attrs, info->nattrs, i));
	return o;
}

void rb_backend_probed_json(struct json_object *o, long long probed_ms, time_t probed_at)
{
	if (!probed_ms) {
		json_object_object_add(o, "probed_at", NULL);
		json_object_object_add(o, "probe_age_ms", NULL);
		return;
	}
	char at[32];
	struct tm tm;
	gmtime_r(&probed_at, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rb_json_add_str(o, "probed_at", at);
	long long age = rb_now_ms() - probed_ms;
	rb_json_add_int(o, "probe_age_ms", age > 0 ? age : 0);
}

/* The facts of device i from the probe child's JSON, checked again (the child is not trusted:
 * a fact breaking a rule is dropped with a warning). */
static void attrs_from_json(struct json_object *o, size_t i, struct rb_backend_info *info,
			    size_t *cap)
{
	struct json_object *a;
	if (!json_object_object_get_ex(o, "attributes", &a) || !json_object_is_type(a, json_type_object))
		return;
	json_object_object_foreach(a, key, val) {
		struct rb_err err = RB_ERR_INIT;
		if (!json_object_is_type(val, json_type_string))
			rb_err_set(&err, RB_EINVAL, "value of key is not a string");
		else
			rb_device_attr_set(&info->attrs, &info->nattrs, cap, (uint32_t)i, key,
					   json_object_get_string(val), &err);
		if (err.code)
			rb_warn("backend '%s': fact of device %zu dropped: %s", info->name, i, err.msg);
	}
}

static void device_from_json(struct json_object *o, struct rbee_device *d)
{
	memset(d, 0, sizeof(*d));
	d->struct_size = sizeof(*d);
	d->index = (uint32_t)rb_json_int(o, "index", 0);
	rb_json_copy_str(d->id, sizeof(d->id), o, "id");
	rb_json_copy_str(d->name, sizeof(d->name), o, "name");
	rb_json_copy_str(d->device_type, sizeof(d->device_type), o, "device_type");
	rb_json_copy_str(d->uuid, sizeof(d->uuid), o, "uuid");
	rb_json_copy_str(d->pci_bus_id, sizeof(d->pci_bus_id), o, "pci_bus_id");
	rb_json_copy_str(d->driver_version, sizeof(d->driver_version), o, "driver_version");
	rb_json_copy_str(d->cpuset, sizeof(d->cpuset), o, "cpuset");
	rb_json_copy_str(d->nodeset, sizeof(d->nodeset), o, "nodeset");
	d->memory_total = (uint64_t)rb_json_int(o, "memory_total_bytes", 0);
	d->memory_free = (uint64_t)rb_json_int(o, "memory_free_bytes", 0);
	d->cc_major = (int32_t)rb_json_int(o, "cc_major", -1);
	d->cc_minor = (int32_t)rb_json_int(o, "cc_minor", -1);
	d->numa_node = (int32_t)rb_json_int(o, "numa_node", -1);
	d->cores = (uint32_t)rb_json_int(o, "cores", 0);
	d->pus = (uint32_t)rb_json_int(o, "pus", 0);
}

const char *rb_backend_state_name(enum rb_backend_state s)
{
	switch (s) {
	case RB_BACKEND_AVAILABLE: return "available";
	case RB_BACKEND_UNAVAILABLE: return "unavailable";
	case RB_BACKEND_PROBING: return "probing";
	default: return "broken";
	}
}
#define state_name rb_backend_state_name

struct json_object *rb_backend_info_json(const struct rb_backend_info *info)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "name", info->name);
	rb_json_add_str(o, "version", info->version[0] ? info->version : NULL);
	rb_json_add_str(o, "description", info->description[0] ? info->description : NULL);
	char path[sizeof(info->path)];
	rb_host_clean_str(path, sizeof(path), info->path);
	rb_json_add_str(o, "path", path);
	rb_json_add_str(o, "state", state_name(info->state));
	rb_json_add_str(o, "reason", info->reason);
	rb_json_add_int(o, "score", info->score);
	rb_backend_probed_json(o, info->probed_ms, info->probed_at);
	rb_json_add_bool(o, "changed_on_disk", info->changed_on_disk);
	struct json_object *devs = json_object_new_array();
	for (size_t i = 0; i < info->ndevices; i++)
		json_object_array_add(devs, rb_backend_device_json(info, i));
	json_object_object_add(o, "devices", devs);
	return o;
}

/* ---- the probe child -------------------------------------------------------------------- */

/* The probe child's protocol goes to a copy of the stdout it was started with; fd 1 itself is
 * pointed at stderr before the plugin is loaded, so whatever a plugin (or a library it loads)
 * prints lands in the hive's log under the plugin's name instead of breaking the protocol. */
static FILE *protocol_channel(void)
{
	int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return stdout;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return stdout;
	}
	fflush(stdout);
	if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		fclose(f);
		return stdout;
	}
	return f;
}

static void emit(FILE *proto, struct json_object *o)
{
	fprintf(proto, "%s\n", rb_json_compact(o));
	fflush(proto);
}

/* host->path() in the probe child: RBEE_HOME (the daemon sets it to its own cache root) and
 * the daemon's plugin directory (--plugin-dir). Nothing is created. */
static void probe_paths(struct rb_hive *hive, const struct rb_config *cfg)
{
	struct rb_buf root = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	if (rb_fs_cache_root(&root, &err) == 0 && root.len + 16 < sizeof(hive->paths.home)) {
		struct rb_paths *p = &hive->paths;
		snprintf(p->home, sizeof(p->home), "%s", root.data);
		snprintf(p->workers, sizeof(p->workers), "%s/workers", root.data);
		snprintf(p->models, sizeof(p->models), "%s/models", root.data);
		snprintf(p->logs, sizeof(p->logs), "%s/logs", root.data);
		snprintf(p->state, sizeof(p->state), "%s/state", root.data);
	}
	rb_buf_release(&root);
	if (cfg)
		snprintf(hive->cfg.plugin_dir, sizeof(hive->cfg.plugin_dir), "%s", cfg->plugin_dir);
}

int rb_backends_probe_main(const struct rb_config *cfg, const char *path)
{
	rb_log_init("rbee-hive probe", RB_LOG_WARN);
	FILE *proto = protocol_channel();
	struct rb_err err = RB_ERR_INIT;
	char name[64];
	char text[RBEE_REASON_MAX];
	void *dl;
	const struct rbee_backend *d;
	struct json_object *o = json_object_new_object();
	if (open_plugin(path, cfg ? cfg->probe_fd : -1, &dl, &d, name, sizeof(name), &err)) {
		rb_json_add_bool(o, "loaded", false);
		rb_json_add_str(o, "state", "broken");
		rb_host_clean_str(text, sizeof(text), err.msg);
		rb_json_add_str(o, "reason", text);
		emit(proto, o);
		json_object_put(o);
		return 0;
	}
	/* The constructors ran and the descriptor is sound: from here a crash is the probe's. */
	fprintf(proto, "%s\n", PROBE_LOADED_MARK);
	fflush(proto);
	rb_json_add_bool(o, "loaded", true);
	struct rb_hive *hive = calloc(1, sizeof(*hive));
	if (!hive)
		return 1;
	probe_paths(hive, cfg);
	hive->topology = rb_topology_load(&err);
	if (!hive->topology)
		rb_warn("%s", err.msg);
	struct rbee_call call = { .hive = hive, .plugin_name = name, .relay = proto };
	struct rbee_host host;
	rb_host_init(&host, &call);
	struct rbee_probe_result pr;
	memset(&pr, 0, sizeof(pr));
	pr.state = RBEE_PROBE_AVAILABLE;
	bool init_failed = false;
	if (DESC_HAS(d, init) && d->init) {
		void *state = NULL;
		int rc = d->init(&host, &state);
		call.plugin_state = state;
		if (rc != RBEE_OK) {
			init_failed = true;
			pr.state = RBEE_PROBE_BROKEN;
			snprintf(pr.reason, sizeof(pr.reason), "init failed: %s",
				 call.err.msg[0] ? call.err.msg : "no reason given");
		}
	}
	if (init_failed) {
		/* nothing more of it runs */
	} else if (!d->probe) {
		/* No probe: available, but never ranked (docs/BACKENDS.md, "Scores"). */
		snprintf(pr.reason, sizeof(pr.reason), "the plugin has no probe: assumed available, "
			 "score 0 (used only when a spawn names it)");
	} else {
		int rc = d->probe(&host, &pr);
		if (rc != RBEE_OK) {
			pr.state = RBEE_PROBE_BROKEN;
			snprintf(pr.reason, sizeof(pr.reason), "probe failed: %s",
				 call.err.msg[0] ? call.err.msg : "no reason given");
		}
	}
	pr.reason[sizeof(pr.reason) - 1] = '\0';
	if (pr.state == RBEE_PROBE_AVAILABLE && d->enumerate) {
		call.enumerating = true;
		int rc = d->enumerate(&host);
		call.enumerating = false;
		if (rc != RBEE_OK || call.device_refused) {
			/* A refused device (a duplicate id or index...) refuses the whole list: which of
			 * two "GPU-0" a spawn means cannot be guessed. */
			pr.state = RBEE_PROBE_BROKEN;
			snprintf(pr.reason, sizeof(pr.reason), "device enumeration failed: %s",
				 call.err.msg[0] ? call.err.msg : "no reason given");
		}
	}
	if (pr.state > RBEE_PROBE_BROKEN)
		pr.state = RBEE_PROBE_BROKEN;
	rb_json_add_str(o, "name", name);
	rb_host_clean_str(text, sizeof(text), d->version);
	rb_json_add_str(o, "version", d->version ? text : NULL);
	rb_host_clean_str(text, sizeof(text), d->description);
	rb_json_add_str(o, "description", d->description ? text : NULL);
	rb_json_add_str(o, "state", state_name((enum rb_backend_state)pr.state));
	rb_host_clean_str(pr.reason, sizeof(pr.reason), pr.reason);
	rb_json_add_str(o, "reason", pr.reason);
	rb_json_add_int(o, "score", pr.score);
	struct json_object *devs = json_object_new_array();
	for (size_t i = 0; pr.state == RBEE_PROBE_AVAILABLE && i < call.ndevices; i++) {
		struct json_object *dev = rb_device_json(name, &call.devices[i]);
		json_object_object_add(dev, "attributes", attrs_json(call.attrs, call.nattrs, i));
		json_object_array_add(devs, dev);
	}
	json_object_object_add(o, "devices", devs);
	emit(proto, o);
	json_object_put(o);
	if (DESC_HAS(d, fini) && d->fini && !init_failed)
		d->fini(call.plugin_state);
	rb_call_release(&call);
	rb_topology_free(hive->topology);
	free(hive);
	/* No dlclose: a driver library may have registered atexit handlers. */
	return 0;
}

/* ---- the registry ----------------------------------------------------------------------- */

/* The most a probe child may print: its JSON is a few KiB per device. */
#define PROBE_OUT_MAX (4u << 20)

struct probe_run {
	const char *name; /* the plugin's (lives in the registry) */
	int fd;           /* the plugin file this round probes (the child gets it), or -1 */
	bool own_fd;      /* opened for this round: closed after it unless the daemon loads it */
	struct rb_proc proc;
	bool started;
	bool loaded;     /* the child said it loaded and checked the plugin */
	bool too_much;   /* it printed more than PROBE_OUT_MAX */
	struct rb_buf out;
	struct rb_err err;
	struct rb_backends *b;
};

static void probe_line(void *arg, const char *line, size_t len, bool is_err)
{
	struct probe_run *r = arg;
	struct rb_buf clean = RB_BUF_INIT;
	if (is_err) {
		/* The child's own log lines, and whatever the plugin printed on stdout or stderr. */
		rb_utf8_sanitize(line, len, &clean);
		rb_debug("backend '%s' probe output: %s", r->name, clean.data);
		rb_buf_release(&clean);
		return;
	}
	if (!r->loaded && len == strlen(PROBE_LOADED_MARK) && !memcmp(line, PROBE_LOADED_MARK, len)) {
		r->loaded = true;
		return;
	}
	size_t ml = strlen(RB_PROBE_LOG_MARK);
	if (r->loaded && len > ml + 2 && !memcmp(line, RB_PROBE_LOG_MARK " ", ml + 1) &&
	    line[ml + 1] >= '0' && line[ml + 1] <= '3') {
		/* host->log in the probe child, at the plugin's level and under its name. */
		enum rb_log_level level = (enum rb_log_level)(line[ml + 1] - '0');
		size_t skip = ml + 2 + (line[ml + 2] == ' ');
		rb_utf8_sanitize(line + skip, len - skip, &clean);
		rb_log(level, "backend '%s' (probe): %s", r->name, clean.data);
		rb_buf_release(&clean);
		return;
	}
	if (r->too_much || r->out.len + len > PROBE_OUT_MAX || rb_buf_try_add(&r->out, line, len))
		r->too_much = true;
}

static bool probe_should_stop(void *arg)
{
	struct probe_run *r = arg;
	return atomic_load(&r->b->stop);
}

/* Apply a probe child's result (or failure) to p->info. Called with the lock held. Returns true
 * when the child loaded the plugin and ended normally: only then may the daemon load it too. */
static bool apply_probe_result(struct plugin *p, struct probe_run *r, int rc, int status)
{
	struct rb_backend_info *info = &p->info;
	p->load_ok = r->loaded;
	rb_backend_info_release(info);
	info->score = 0;
	info->probed_ms = rb_now_ms();
	info->probed_at = time(NULL);
	info->state = RB_BACKEND_BROKEN;
	char st[64];
	const char *unloaded = p->desc ? "" : "; the plugin is not loaded into the hive";
	if (rc == -RB_ETIMEDOUT) {
		if (r->loaded)
			snprintf(info->reason, sizeof(info->reason), "probe timed out (a GPU driver may "
				 "be hung); it was stopped%s", unloaded);
		else
			snprintf(info->reason, sizeof(info->reason), "loading the plugin timed out in the "
				 "probe child (its constructors or a library it needs hang); it was "
				 "stopped%s", unloaded);
		return false;
	}
	if (rc) {
		snprintf(info->reason, sizeof(info->reason), "probe failed: %s", r->err.msg);
		return false;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (r->loaded)
			snprintf(info->reason, sizeof(info->reason), "probe crashed: %s",
				 rb_proc_status_str(status, st, sizeof(st)));
		else
			snprintf(info->reason, sizeof(info->reason), "probe crashed: %s while loading "
				 "the plugin (its constructors or a library it needs)%s",
				 rb_proc_status_str(status, st, sizeof(st)), unloaded);
		return false;
	}
	if (r->too_much) {
		snprintf(info->reason, sizeof(info->reason), "probe printed more than %u MiB",
			 PROBE_OUT_MAX >> 20);
		return false;
	}
	struct rb_err err = RB_ERR_INIT;
	struct json_object *o = rb_json_parse(r->out.data, r->out.len, &err);
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(info->reason, sizeof(info->reason), "probe answered garbage: %s (it sent: '%.80s')",
			 err.msg, r->out.data);
		json_object_put(o);
		return false;
	}
	if (!r->loaded || !rb_json_bool(o, "loaded", false)) {
		/* the child could not load it: nothing of it may run in the daemon */
		const char *why = rb_json_str(o, "reason");
		snprintf(info->reason, sizeof(info->reason), "not loaded: %s",
			 why ? why : "the probe gave no reason");
		json_object_put(o);
		return false;
	}
	const char *state = rb_json_str(o, "state");
	info->state = state && !strcmp(state, "available")     ? RB_BACKEND_AVAILABLE
		      : state && !strcmp(state, "unavailable") ? RB_BACKEND_UNAVAILABLE
							       : RB_BACKEND_BROKEN;
	rb_json_copy_str(info->reason, sizeof(info->reason), o, "reason");
	if (rb_json_str(o, "version"))
		rb_json_copy_str(info->version, sizeof(info->version), o, "version");
	if (rb_json_str(o, "description"))
		rb_json_copy_str(info->description, sizeof(info->description), o, "description");
	info->score = (int)rb_json_int(o, "score", 0);
	struct json_object *devs;
	if (json_object_object_get_ex(o, "devices", &devs) && json_object_is_type(devs, json_type_array)) {
		size_t n = json_object_array_length(devs);
		info->devices = n ? calloc(n, sizeof(*info->devices)) : NULL;
		size_t cap = 0;
		for (size_t i = 0; info->devices && i < n; i++) {
			device_from_json(json_object_array_get_idx(devs, i), &info->devices[i]);
			attrs_from_json(json_object_array_get_idx(devs, i), i, info, &cap);
		}
		info->ndevices = info->devices ? n : 0;
	}
	json_object_put(o);
	return true;
}

/* Every text of a backend as valid UTF-8, whatever the child sent and wherever a copy cut it
 * (the path is kept as it is for dlopen; rb_backend_info_json cleans it on the way out). */
static void clean_info(struct rb_backend_info *info)
{
	rb_host_clean_str(info->version, sizeof(info->version), info->version);
	rb_host_clean_str(info->description, sizeof(info->description), info->description);
	rb_host_clean_str(info->reason, sizeof(info->reason), info->reason);
	for (size_t i = 0; i < info->ndevices; i++)
		rb_device_clean(&info->devices[i]);
}

static bool apply_probe(struct plugin *p, struct probe_run *r, int rc, int status)
{
	bool survived = apply_probe_result(p, r, rc, status);
	clean_info(&p->info);
	if (p->changed) {
		size_t n = strlen(p->info.reason);
		snprintf(p->info.reason + n, sizeof(p->info.reason) - n, "%s%s", n ? "; " : "",
			 "plugin file changed on disk since the hive loaded it: the loaded one is "
			 "still used; restart the hive to load the new one");
	}
	return survived;
}

/* Load a plugin into the daemon once a probe child survived loading it. Broken (with the
 * reason) when the daemon's own load fails. */
static void load_in_daemon(struct rb_backends *b, struct plugin *p, struct probe_run *r)
{
	struct rb_err err = RB_ERR_INIT;
	char name[64];
	void *dl;
	const struct rbee_backend *d;
	void *state = NULL;
	int rc = open_plugin(p->info.path, r->fd, &dl, &d, name, sizeof(name), &err);
	if (!rc && DESC_HAS(d, init) && d->init) {
		/* The probe child ran init too; here it must not touch GPU drivers (backend.h). */
		struct rbee_call call = { .hive = b->hive, .plugin_name = p->info.name };
		struct rbee_host host;
		rb_host_init(&host, &call);
		if (d->init(&host, &state) != RBEE_OK) {
			rc = rb_err_set(&err, RB_EIO, "init failed in the hive: %s",
					call.err.msg[0] ? call.err.msg : "no reason given");
			dlclose(dl);
		}
		rb_call_release(&call);
	}
	pthread_mutex_lock(&b->lock);
	if (rc) {
		rb_backend_info_release(&p->info);
		p->info.state = RB_BACKEND_BROKEN;
		snprintf(p->info.reason, sizeof(p->info.reason), "not loaded: %s", err.msg);
	} else {
		p->dl = dl;
		p->desc = d;
		p->state = state;
		p->fd = r->fd; /* kept: every later probe child loads this very file */
		r->own_fd = false;
		rb_host_clean_str(p->info.version, sizeof(p->info.version), d->version);
		rb_host_clean_str(p->info.description, sizeof(p->info.description), d->description);
	}
	clean_info(&p->info);
	pthread_mutex_unlock(&b->lock);
	if (rc)
		rb_warn("backend '%s' (%s): %s", p->info.name, p->info.path, p->info.reason);
}

/* In the probe child before exec: keep the plugin file open across it (async-signal-safe). */
static int inherit_fd(void *arg)
{
	int fd = *(int *)arg;
	return fcntl(fd, F_SETFD, 0) == 0 ? 0 : errno;
}

/* Probe the plugins selected by `mask` (NULL = all but blocked ones), all children at once;
 * load into the daemon those whose child survived loading them. Runs at start (before the
 * server) and on the refresher thread, never on a request or job thread. */
static void probe_plugins(struct rb_backends *b, const bool *mask)
{
	struct probe_run *runs = calloc(b->n, sizeof(*runs));
	if (!runs)
		return;
	for (size_t i = 0; i < b->n; i++) {
		rb_buf_init(&runs[i].out);
		runs[i].b = b;
		runs[i].name = b->v[i].info.name;
		runs[i].fd = -1;
		if (b->v[i].blocked || (mask && !mask[i]))
			continue;
		/* The file this round probes: the one loaded in the daemon, else opened now (and
		 * loaded from this same open file if its child survives). */
		runs[i].fd = b->v[i].fd;
		if (runs[i].fd < 0) {
			runs[i].fd = open(b->v[i].info.path, O_RDONLY | O_CLOEXEC);
			runs[i].own_fd = runs[i].fd >= 0;
		}
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", runs[i].fd);
		const char *argv[8];
		size_t k = 0;
		argv[k++] = b->self_exe;
		argv[k++] = "--plugin-dir";
		argv[k++] = b->hive->cfg.plugin_dir;
		if (runs[i].fd >= 0) { /* else the child tries the path and says why it fails */
			argv[k++] = "--probe-fd";
			argv[k++] = fd;
		}
		argv[k++] = "--probe-plugin";
		argv[k++] = b->v[i].info.path;
		argv[k] = NULL;
		struct rb_proc_opts o = { .argv = argv, .envp = rb_env_envp(&b->probe_env),
					  .new_pgroup = true, .die_with_parent = true,
					  .child_setup = runs[i].fd >= 0 ? inherit_fd : NULL,
					  .child_arg = &runs[i].fd, .setup_what = "keeping the plugin file open",
					  .setup_shares_memory = true };
		if (rb_proc_start(&o, &runs[i].proc, &runs[i].err) == 0)
			runs[i].started = true;
	}
	/* One deadline for the round: the children run at once but are read one after another,
	 * and none may outlive its time limit counted from its start. */
	long long deadline = rb_now_ms() + b->probe_timeout_ms;
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].blocked || (mask && !mask[i]))
			continue;
		int rc = -runs[i].err.code, status = 0;
		long long left = deadline - rb_now_ms();
		if (left < PROBE_LATE_READ_MS)
			left = PROBE_LATE_READ_MS;
		if (runs[i].started)
			rc = rb_proc_pump(&runs[i].proc, (int)left, probe_line,
					  probe_should_stop, &runs[i], &status, &runs[i].err);
		if (rc == -RB_ECANCELLED)
			continue; /* shutting down: the last result stays */
		pthread_mutex_lock(&b->lock);
		struct rb_backend_info *info = &b->v[i].info;
		/* The periodic refresh logs a backend only when what it says changed. */
		char before[sizeof(info->reason) + 64];
		snprintf(before, sizeof(before), "%d %zu %s", (int)info->state, info->ndevices, info->reason);
		bool survived = apply_probe(&b->v[i], &runs[i], rc, status);
		bool load = survived && !b->v[i].dl;
		char after[sizeof(before)];
		snprintf(after, sizeof(after), "%d %zu %s", (int)info->state, info->ndevices, info->reason);
		pthread_mutex_unlock(&b->lock);
		if (load)
			load_in_daemon(b, &b->v[i], &runs[i]);
		rb_log(info->state == RB_BACKEND_BROKEN ? RB_LOG_WARN
		       : strcmp(before, after) ? RB_LOG_INFO : RB_LOG_DEBUG,
		       "backend '%s': %s%s%s (%zu devices)", info->name, state_name(info->state),
		       info->reason[0] ? ": " : "", info->reason, info->ndevices);
	}
	for (size_t i = 0; i < b->n; i++) {
		rb_buf_release(&runs[i].out);
		if (runs[i].own_fd)
			close(runs[i].fd);
	}
	free(runs);
}

static bool blocked(const char *name)
{
	const char *list = getenv("RBEE_BACKEND_BLOCKLIST");
	size_t n = strlen(name);
	while (list && *list) {
		const char *comma = strchr(list, ',');
		size_t len = comma ? (size_t)(comma - list) : strlen(list);
		while (len && *list == ' ')
			list++, len--;
		while (len && list[len - 1] == ' ')
			len--;
		if (len == n && !strncmp(list, name, n))
			return true;
		list = comma ? comma + 1 : NULL;
	}
	return false;
}

static struct plugin *find_plugin(struct rb_backends *b, const char *name)
{
	for (size_t i = 0; i < b->n; i++)
		if (!strcmp(b->v[i].info.name, name))
			return &b->v[i];
	return NULL;
}

/* Load one candidate file into the registry (first of a name wins). */
static void add_candidate(struct rb_backends *b, const char *path)
{
	char name[64];
	if (!name_from_path(path, name, sizeof(name)))
		return;
	if (find_plugin(b, name)) {
		rb_info("backend '%s': '%s' ignored, an earlier directory provides it", name, path);
		return;
	}
	struct plugin *v = realloc(b->v, (b->n + 1) * sizeof(*v));
	if (!v)
		return;
	b->v = v;
	struct plugin *p = &b->v[b->n++];
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	snprintf(p->info.name, sizeof(p->info.name), "%s", name);
	snprintf(p->info.path, sizeof(p->info.path), "%s", path);
	if (blocked(name)) {
		p->blocked = true;
		p->info.state = RB_BACKEND_UNAVAILABLE;
		snprintf(p->info.reason, sizeof(p->info.reason), "blocked by RBEE_BACKEND_BLOCKLIST");
		return;
	}
	/* Nothing of it runs here yet: probe_plugins loads it in a child first. */
	p->info.state = RB_BACKEND_PROBING;
	snprintf(p->info.reason, sizeof(p->info.reason), "the first probe is running (the hive "
		 "just started)");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_dir(struct rb_backends *b, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		rb_debug("plugin directory '%s': %s", dir, strerror(errno));
		return;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char tmp[64];
		if (!name_from_path(de->d_name, tmp, sizeof(tmp)))
			continue;
		char **v = realloc(names, (n + 1) * sizeof(*v));
		if (!v)
			break;
		names = v;
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (names[i] && (size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < sizeof(path))
			add_candidate(b, path);
		free(names[i]);
	}
	free(names);
}

/* RBEE_PROBE_INTERVAL_S: seconds between background re-probes (0: only on demand). */
static int probe_interval_ms(void)
{
	const char *v = getenv("RBEE_PROBE_INTERVAL_S");
	if (!v || !*v)
		return PROBE_INTERVAL_S_DEFAULT * 1000;
	char *end;
	long x = strtol(v, &end, 10);
	if (*end || x < 0 || x > 86400) {
		rb_warn("ignoring RBEE_PROBE_INTERVAL_S='%s': give seconds from 0 (only on demand and "
			"SIGHUP) to 86400", v);
		return PROBE_INTERVAL_S_DEFAULT * 1000;
	}
	return (int)x * 1000;
}

/* One probe round: every plugin that is not blocked (`all`), else those loaded in the daemon or
 * whose last probe child got past loading them (a plugin whose loading crashed is retried only
 * at SIGHUP). */
/* Whether the file at p->info.path is still the one the daemon loaded (held open in p->fd). */
static void check_changed(struct plugin *p)
{
	struct stat held, now;
	if (p->fd < 0 || p->changed || fstat(p->fd, &held) != 0)
		return;
	bool same = stat(p->info.path, &now) == 0 && now.st_dev == held.st_dev &&
		    now.st_ino == held.st_ino && now.st_size == held.st_size &&
		    now.st_mtim.tv_sec == held.st_mtim.tv_sec &&
		    now.st_mtim.tv_nsec == held.st_mtim.tv_nsec;
	if (same)
		return;
	p->changed = true;
	p->info.changed_on_disk = true;
	rb_warn("backend '%s': '%s' changed on disk since the hive loaded it; the loaded plugin "
		"stays in use (probes included) until the hive is restarted", p->info.name,
		p->info.path);
}

static void refresh_now(struct rb_backends *b, bool all)
{
	pthread_mutex_lock(&b->refresh_lock);
	bool *mask = calloc(b->n, sizeof(bool));
	bool any = false;
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; mask && i < b->n; i++) {
		mask[i] = !b->v[i].blocked && (all || b->v[i].desc || b->v[i].load_ok);
		any |= mask[i];
		if (mask[i])
			check_changed(&b->v[i]);
	}
	pthread_mutex_unlock(&b->lock);
	if (any)
		probe_plugins(b, mask);
	free(mask);
	pthread_mutex_unlock(&b->refresh_lock);
}

/* The hwloc topology (loaded here, off the start path) and what probe children get of it: the
 * topology as XML, so each child reads it in a millisecond instead of rediscovering the node. */
static void load_topology(struct rb_backends *b)
{
	struct rb_hive *hive = b->hive;
	struct rb_err err = RB_ERR_INIT;
	void *topo = rb_topology_load(&err);
	if (!topo)
		rb_warn("%s; CPU topology and GPU locality will be missing", err.msg);
	/* Published before any backend is available: plugin calls in the daemon (the only
	 * readers) start only from an available backend, under b->lock. */
	pthread_mutex_lock(&b->lock);
	hive->topology = topo;
	pthread_mutex_unlock(&b->lock);
	if (!topo)
		return;
	snprintf(b->topology_xml, sizeof(b->topology_xml), "%s/topology.xml", hive->paths.state);
	if (hwloc_topology_export_xml(topo, b->topology_xml, 0) == 0) {
		rb_env_set(&b->probe_env, "HWLOC_XMLFILE", b->topology_xml);
		rb_env_set(&b->probe_env, "HWLOC_THISSYSTEM",
			   hwloc_topology_is_thissystem(topo) ? "1" : "0");
		rb_env_set(&b->probe_env, "HWLOC_SYNTHETIC", NULL);
	} else {
		rb_debug("cannot export the topology to '%s': %s", b->topology_xml, strerror(errno));
		b->topology_xml[0] = '\0';
	}
}

/* Start-up's work, off the start path: the topology, then the first round of every plugin. */
static void first_round(struct rb_backends *b)
{
	if (!b->hive->topology)
		load_topology(b);
	refresh_now(b, true);
	pthread_mutex_lock(&b->lock);
	b->first_done = true;
	pthread_cond_broadcast(&b->first_cond);
	pthread_mutex_unlock(&b->lock);
	rb_info("first probe round done in %lld ms after start", rb_now_ms() - b->hive->started_ms);
}

static void *refresher_main(void *arg)
{
	struct rb_backends *b = arg;
	first_round(b);
	pthread_mutex_lock(&b->wake_lock);
	for (;;) {
		if (!b->want_all && !b->want_loaded && !atomic_load(&b->stop)) {
			if (b->interval_ms > 0) {
				struct timespec ts =
					rb_time_after_ms(CLOCK_MONOTONIC, b->interval_ms);
				if (pthread_cond_timedwait(&b->wake, &b->wake_lock, &ts) == ETIMEDOUT)
					b->want_loaded = true;
			} else {
				pthread_cond_wait(&b->wake, &b->wake_lock);
			}
		}
		if (atomic_load(&b->stop))
			break;
		if (!b->want_all && !b->want_loaded)
			continue;
		bool all = b->want_all;
		b->want_all = b->want_loaded = false;
		pthread_mutex_unlock(&b->wake_lock);
		refresh_now(b, all);
		pthread_mutex_lock(&b->wake_lock);
	}
	pthread_mutex_unlock(&b->wake_lock);
	return NULL;
}

/* Start the refresher with every signal blocked (the main thread takes them with sigwait). */
static void start_refresher(struct rb_backends *b)
{
	if (b->n == 0)
		return;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&b->refresher, NULL, refresher_main, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	b->refresher_started = rc == 0;
	if (rc)
		rb_warn("cannot start the backend refresher thread: %s; devices are re-probed only "
			"at SIGHUP", strerror(rc));
}

/* Stop the refresher: a probe in progress is stopped within about 100 ms (rb_proc_pump's
 * stop poll), its children killed as a group. */
static void stop_refresher(struct rb_backends *b)
{
	if (!b->refresher_started)
		return;
	pthread_mutex_lock(&b->wake_lock);
	atomic_store(&b->stop, true);
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->wake_lock);
	pthread_join(b->refresher, NULL);
	b->refresher_started = false;
}

int rb_backends_init(struct rb_hive *hive, struct rb_err *err)
{
	struct rb_backends *b = calloc(1, sizeof(*b));
	if (!b)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	b->hive = hive;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->refresh_lock, NULL);
	pthread_mutex_init(&b->wake_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->wake, &ca);
	pthread_cond_init(&b->first_cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&b->stop, false);
	const char *t = getenv("RBEE_PROBE_TIMEOUT_MS");
	b->probe_timeout_ms = t && atoi(t) > 0 ? atoi(t) : PROBE_TIMEOUT_MS_DEFAULT;
	b->interval_ms = probe_interval_ms();
	ssize_t n = readlink("/proc/self/exe", b->self_exe, sizeof(b->self_exe) - 1);
	if (n <= 0) {
		free(b);
		return rb_err_set(err, RB_EIO, "cannot find the hive's own executable: %s", strerror(errno));
	}
	b->self_exe[n] = '\0';
	rb_env_init(&b->probe_env);
	rb_env_from_environ_scrubbed(&b->probe_env);
	/* host->path() in probe children: the same cache root as this hive's. */
	rb_env_set(&b->probe_env, "RBEE_HOME", hive->paths.home);
	/* RBEE_BACKEND_PATH entries first (they override), then the plugin directory. */
	const char *path = getenv("RBEE_BACKEND_PATH");
	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);
		char dir[PATH_MAX];
		if (len && len < sizeof(dir)) {
			memcpy(dir, path, len);
			dir[len] = '\0';
			scan_dir(b, dir);
		}
		path = colon ? colon + 1 : NULL;
	}
	scan_dir(b, hive->cfg.plugin_dir);
	if (b->n == 0)
		rb_warn("no backend plugins found in '%s'%s", hive->cfg.plugin_dir,
			getenv("RBEE_BACKEND_PATH") ? " or RBEE_BACKEND_PATH" : "");
	hive->backends = b;
	if (b->n == 0)
		b->first_done = true; /* nothing to probe; the topology is only loaded for plugins */
	return 0;
}

void rb_backends_start(struct rb_hive *hive)
{
	struct rb_backends *b = hive->backends;
	if (!b || b->n == 0)
		return;
	start_refresher(b);
	if (!b->refresher_started)
		first_round(b); /* no thread: probe here, readers wait for it meanwhile */
}

void rb_backends_free(struct rb_hive *hive)
{
	struct rb_backends *b = hive->backends;
	if (!b)
		return;
	stop_refresher(b);
	for (size_t i = 0; i < b->n; i++) {
		struct plugin *p = &b->v[i];
		rb_backend_info_release(&p->info);
		if (p->desc && DESC_HAS(p->desc, fini) && p->desc->fini)
			p->desc->fini(p->state);
		if (p->dl)
			dlclose(p->dl);
		if (p->fd >= 0)
			close(p->fd);
	}
	free(b->v);
	rb_env_release(&b->probe_env);
	if (b->topology_xml[0])
		unlink(b->topology_xml);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->refresh_lock);
	pthread_mutex_destroy(&b->wake_lock);
	pthread_cond_destroy(&b->wake);
	pthread_cond_destroy(&b->first_cond);
	free(b);
	hive->backends = NULL;
}

void rb_backends_refresh(struct rb_hive *hive, int max_age_ms)
{
	struct rb_backends *b = hive->backends;
	if (!b || b->n == 0)
		return;
	bool stale = false;
	long long now = rb_now_ms();
	if (max_age_ms > 0) {
		pthread_mutex_lock(&b->lock);
		for (size_t i = 0; i < b->n && !stale; i++)
			stale = b->v[i].desc && now - b->v[i].info.probed_ms >= max_age_ms;
		pthread_mutex_unlock(&b->lock);
		if (!stale)
			return;
	}
	pthread_mutex_lock(&b->wake_lock);
	if (max_age_ms <= 0)
		b->want_all = true;
	else
		b->want_loaded = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->wake_lock);
	if (!b->refresher_started && max_age_ms <= 0)
		refresh_now(b, true); /* no thread (it could not start): SIGHUP still re-probes */
}

static int copy_info(const struct rb_backend_info *src, struct rb_backend_info *dst)
{
	*dst = *src;
	dst->devices = NULL;
	dst->attrs = NULL;
	dst->nattrs = 0;
	if (src->ndevices) {
		dst->devices = malloc(src->ndevices * sizeof(*dst->devices));
		if (!dst->devices) {
			dst->ndevices = 0;
			return -1;
		}
		memcpy(dst->devices, src->devices, src->ndevices * sizeof(*dst->devices));
	}
	if (src->nattrs) {
		dst->attrs = malloc(src->nattrs * sizeof(*dst->attrs));
		if (!dst->attrs)
			return -1;
		memcpy(dst->attrs, src->attrs, src->nattrs * sizeof(*dst->attrs));
		dst->nattrs = src->nattrs;
	}
	return 0;
}

bool rb_backends_ready(struct rb_hive *hive)
{
	struct rb_backends *b = hive->backends;
	if (!b)
		return true;
	pthread_mutex_lock(&b->lock);
	bool done = b->first_done;
	pthread_mutex_unlock(&b->lock);
	return done;
}

int rb_backends_ready_limit_ms(struct rb_hive *hive)
{
	return hive->backends ? hive->backends->probe_timeout_ms + FIRST_ROUND_SLACK_MS : 0;
}

bool rb_backends_wait_ready(struct rb_hive *hive, int timeout_ms)
{
	struct rb_backends *b = hive->backends;
	if (!b)
		return true;
	if (timeout_ms < 0)
		timeout_ms = b->probe_timeout_ms + FIRST_ROUND_SLACK_MS;
	struct timespec ts = rb_time_after_ms(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&b->lock);
	if (!b->first_done)
		rb_debug("waiting up to %d ms for the first probe round", timeout_ms);
	while (!b->first_done)
		if (pthread_cond_timedwait(&b->first_cond, &b->lock, &ts) == ETIMEDOUT)
			break;
	bool done = b->first_done;
	pthread_mutex_unlock(&b->lock);
	return done;
}

int rb_backends_get(struct rb_hive *hive, const char *name, struct rb_backend_info *out,
		    struct rb_err *err)
{
	struct rb_backends *b = hive->backends;
	memset(out, 0, sizeof(*out));
	/* A job asking right after start gets the first round's answer, not "probing". */
	rb_backends_wait_ready(hive, -1);
	pthread_mutex_lock(&b->lock);
	struct plugin *p = find_plugin(b, name);
	if (p)
		copy_info(&p->info, out);
	pthread_mutex_unlock(&b->lock);
	if (!p)
		return rb_err_set(err, RB_ENOTFOUND,
				  "no backend plugin '%s' on this node (see 'rbee hive backends')", name);
	return 0;
}

size_t rb_backends_list(struct rb_hive *hive, struct rb_backend_info **out)
{
	struct rb_backends *b = hive->backends;
	*out = NULL;
	if (!b)
		return 0;
	pthread_mutex_lock(&b->lock);
	struct rb_backend_info *v = b->n ? calloc(b->n, sizeof(*v)) : NULL;
	size_t n = v ? b->n : 0;
	for (size_t i = 0; i < n; i++)
		copy_info(&b->v[i].info, &v[i]);
	pthread_mutex_unlock(&b->lock);
	*out = v;
	return n;
}

void rb_backends_list_free(struct rb_backend_info *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rb_backend_info_release(&list[i]);
	free(list);
}

/* ---- calls into plugins in the daemon ---------------------------------------------------- */

/* The loaded descriptor and a copy of its state; RB_EUNAVAIL unless it is available. */
static int usable(struct rb_hive *hive, const char *name, const struct rbee_backend **desc,
		  void **state, struct rb_backend_info *info, struct rb_err *err)
{
	int rc = rb_backends_get(hive, name, info, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&hive->backends->lock); /* the refresher may be loading it */
	struct plugin *p = find_plugin(hive->backends, name);
	*desc = p ? p->desc : NULL;
	*state = p ? p->state : NULL;
	pthread_mutex_unlock(&hive->backends->lock);
	if (!*desc || info->state != RB_BACKEND_AVAILABLE) {
		rc = rb_err_set(err, RB_EUNAVAIL, "backend '%s' is not available on this node: %s", name,
				info->reason[0] ? info->reason : state_name(info->state));
		rb_backend_info_release(info);
		return rc;
	}
	return 0;
}

static int call_result(struct rbee_call *call, int rc, const char *what, const char *name,
		       struct rb_err *err)
{
	if (rc == RBEE_OK)
		return 0;
	return rb_err_set(err, call->err.code ? call->err.code : RB_EIO, "backend '%s' %s: %s", name,
			  what, call->err.msg[0] ? call->err.msg : "failed without a reason");
}

/* One call into the plugin `name` on this thread: what op does between the host's setup and
 * release. op gets the loaded descriptor, the host table, the call (its err for a refusal of
 * its own) and the devices the last probe found. */
typedef int (*plugin_op_fn)(const struct rbee_backend *d, const struct rbee_host *host,
			    struct rbee_call *call, const struct rb_backend_info *info,
			    const void *arg);

/* Run op inside the plugin `name` when it is available: `call` (its operation's fields set by
 * the caller) gets the hive, the plugin's name and state; a failure is "backend 'name' what:
 * why" in err. */
static int with_plugin(struct rb_hive *hive, const char *name, struct rbee_call *call,
		       const char *what, plugin_op_fn op, const void *arg, struct rb_err *err)
{
	const struct rbee_backend *d;
	void *state;
	struct rb_backend_info info;
	int rc = usable(hive, name, &d, &state, &info, err);
	if (rc)
		return rc;
	call->hive = hive;
	call->plugin_name = name;
	call->plugin_state = state;
	struct rbee_host host;
	rb_host_init(&host, call);
	rc = call_result(call, op(d, &host, call, &info, arg), what, name, err);
	rb_call_release(call);
	rb_backend_info_release(&info);
	return rc;
}

static int build_env_op(const struct rbee_backend *d, const struct rbee_host *host,
			struct rbee_call *call, const struct rb_backend_info *info, const void *arg)
{
	(void)arg;
	return d->build_env ? d->build_env(host, info->devices, info->ndevices,
					   (struct rbee_env *)call->env)
			    : RBEE_OK;
}

int rb_backend_build_env(struct rb_hive *hive, const char *backend, struct rb_job *job,
			 struct rb_env *env, struct rb_err *err)
{
	struct rbee_call call = { .job = job, .env = env };
	return with_plugin(hive, backend, &call, "cannot build here", build_env_op, NULL, err);
}

static int verify_op(const struct rbee_backend *d, const struct rbee_host *host,
		     struct rbee_call *call, const struct rb_backend_info *info, const void *arg)
{
	return d->verify ? d->verify(host, arg, info->devices, info->ndevices,
				     (struct rbee_report *)call->report)
			 : RBEE_OK;
}

int rb_backend_verify(struct rb_hive *hive, const char *backend, struct rb_job *job,
		      const struct rbee_worker_info *worker, struct rb_report *report,
		      struct rb_err *err)
{
	struct rbee_call call = { .job = job, .report = report };
	return with_plugin(hive, backend, &call, "verification failed", verify_op, worker, err);
}

static int spawn_op(const struct rbee_backend *d, const struct rbee_host *host,
		    struct rbee_call *call, const struct rb_backend_info *info, const void *arg)
{
	(void)info;
	if (d->spawn)
		return d->spawn(host, arg, (struct rbee_plan *)call->plan);
	return rb_plan_default_argv(call->plan, arg, &call->err) ? RBEE_ERR_INVALID : RBEE_OK;
}

int rb_backend_spawn(struct rb_hive *hive, const char *backend, struct rb_job *job,
		     const struct rbee_spawn_request *req, struct rb_plan *plan, struct rb_err *err)
{
	struct rbee_call call = { .job = job, .plan = plan };
	return with_plugin(hive, backend, &call, "cannot plan the launch", spawn_op, req, err);
}
