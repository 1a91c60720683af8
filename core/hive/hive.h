/*
 * hive.h - the daemon's one context object: configuration, paths, and the subsystems.
 *
 * main() fills it from flags and environment, then starts the subsystems in order (backends
 * found, jobs, worker registry, HTTP server; then the backend refresher thread, which loads the
 * hwloc topology and runs the first probe round while the server already answers). Route and operation handlers receive it; there
 * is no global hive.
 */
#ifndef RB_HIVE_H
#define RB_HIVE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct rb_config {
	char bind[64];              /* --bind, default 127.0.0.1 */
	uint16_t port;              /* --port / RBEE_PORT, default 7835; 0 = any free port */
	char hive_id[64];           /* --hive-id, default "localhost" */
	char catalog[PATH_MAX];     /* --catalog / RBEE_CATALOG_URL: http(s) URL, file:// or directory */
	char token[1024];           /* from --token-file or RBEE_API_TOKEN; "" = no auth */
	char allowed_origins[1024]; /* --allowed-origins / RBEE_ALLOWED_ORIGINS: comma-separated
				       browser origins allowed to call (CORS); "" = none */
	char allowed_hosts[1024];   /* --allowed-hosts / RBEE_ALLOWED_HOSTS: extra Host header
				       names accepted (DNS rebinding guard); "*" = any */
	bool insecure;              /* --insecure-no-auth: allow non-loopback bind without token */
	bool keep_workers;          /* --keep-workers: leave workers running on shutdown */
	char port_file[PATH_MAX];   /* --port-file: write the bound port here once listening */
	char plugin_dir[PATH_MAX];  /* compiled-in plugin directory (--plugin-dir overrides) */
	int max_jobs;               /* concurrent jobs (--max-jobs), default 8 */
	size_t max_body;            /* request body limit in bytes, default 1 MiB */
	char source_mirror[PATH_MAX]; /* --source-mirror / RBEE_SOURCE_MIRROR: sources taken before
					 the network (docs/MIRROR.md); "" = none */
	char fill_mirror[PATH_MAX]; /* --fill-mirror DIR: fill DIR with the sources of ... */
	char **fill_ids;            /* ... these workers (argv), then exit */
	int fill_n;
	int probe_fd;               /* hidden --probe-fd N (probe children only), else -1 */
};

struct rb_paths {
	char home[PATH_MAX];    /* cache root */
	char workers[PATH_MAX]; /* home/workers: installed workers */
	char models[PATH_MAX];  /* home/models */
	char logs[PATH_MAX];    /* home/logs: worker logs */
	char state[PATH_MAX];   /* home/state: registry, job scratch */
	char staging[PATH_MAX]; /* home/staging: install and download staging (same filesystem) */
	char sources[PATH_MAX]; /* home/cache/sources: fetched sources, laid out as a mirror */
};

struct rb_backends;
struct rb_jobs;
struct rb_server;
struct rb_workers;

struct rb_hive {
	struct rb_config cfg;
	struct rb_paths paths;
	char hostname[256];
	time_t started_at;         /* wall clock, for /v1/info */
	long long started_ms;      /* monotonic, for uptime */
	void *topology;            /* hwloc_topology_t, NULL if it could not be loaded (or not yet:
				      the backend refresher loads it, backends.c) */
	struct rb_backends *backends;
	struct rb_jobs *jobs;
	struct rb_workers *workers; /* process registry (worker spawn issue) */
	struct rb_server *server;
	/* Asked by the model store before it deletes a model: whether a live worker uses it.
	 * main.c wires it to the process registry (rb_workers_uses_model), so the store needs
	 * nothing of the supervisor; NULL (a store without a registry, in tests): none does. */
	bool (*model_in_use)(struct rb_hive *hive, const char *model_id);
	/* The same for an installed worker, asked before it is removed or replaced
	 * (rb_workers_uses_installed); NULL: none is in use. */
	bool (*installed_in_use)(struct rb_hive *hive, const char *installed_id);
};

/* Ask main() to shut the hive down cleanly (as SIGTERM does). */
void rb_hive_request_shutdown(struct rb_hive *hive);

/* Seconds since start. */
long long rb_hive_uptime_s(const struct rb_hive *hive);

#endif
