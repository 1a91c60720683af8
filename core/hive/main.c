/*
 * main.c - rbee-hive: parse the configuration, start the subsystems in order, wait for a
 * signal, and stop them in reverse order.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "config.h"
#include "hive.h"
#include "hive_ops.h"
#include "http/routes.h"
#include "install/install.h"
#include "jobs/jobs.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "workers/workers.h"

static int write_port_file(const struct rb_config *cfg)
{
	if (!cfg->port_file[0])
		return 0;
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u\n", cfg->port);
	struct rb_err err = RB_ERR_INIT;
	if (rb_fs_write_atomic(cfg->port_file, buf, (size_t)n, 0644, &err)) {
		rb_error("%s", err.msg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct rb_hive hive;
	struct rb_err err = RB_ERR_INIT;
	enum rb_config_action action;
	const char *probe_path = NULL;

	memset(&hive, 0, sizeof(hive));
	rb_log_init("rbee-hive", RB_LOG_INFO);
	/* glibc gives up to 8 malloc arenas per CPU, one per thread that allocates: the hive's
	 * 30-odd threads then spread small allocations over many partly used heaps. One arena per
	 * CPU (2 to 8) is enough for them and keeps the idle and the 10 000-stream RSS lower
	 * (bench/jobs.sh: about 1 MiB each). MALLOC_ARENA_MAX, when set, decides instead. */
	if (!getenv("MALLOC_ARENA_MAX")) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		mallopt(M_ARENA_MAX, cpus < 2 ? 2 : cpus > 8 ? 8 : (int)cpus);
	}
	if (rb_config_parse(&hive.cfg, argc, argv, &action, &probe_path, &err)) {
		fprintf(stderr, "rbee-hive: %s\n", err.msg);
		return 2;
	}
	switch (action) {
	case RB_CONFIG_HELP:
		rb_config_usage(stdout);
		return 0;
	case RB_CONFIG_VERSION:
		printf("rbee-hive %s (backend ABI %d.%d)\n", RBEE_VERSION, RBEE_BACKEND_ABI_MAJOR,
		       RBEE_BACKEND_ABI_MINOR);
		return 0;
	case RB_CONFIG_PROBE:
		return rb_backends_probe_main(&hive.cfg, probe_path);
	case RB_CONFIG_FILL_MIRROR:
		return rb_mirror_fill_main(&hive.cfg);
	case RB_CONFIG_RUN:
		break;
	}
	if (rb_config_check(&hive.cfg, &err) || rb_paths_init(&hive.paths, &err)) {
		rb_error("%s", err.msg);
		return 2;
	}
	/* One hive per home, before anything reads or changes it (staging.h). */
	if (rb_staging_claim(&hive, &err)) {
		rb_error("%s", err.msg);
		return 1;
	}

	/* Signals are taken by sigwait() below; every thread started from here inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit (ulimit -f) a write fails with EFBIG, reported by whatever wrote,
	 * instead of the signal killing the hive. */
	signal(SIGXFSZ, SIG_IGN);

	/* libcurl and libcrypto are loaded and initialised at their first use (rb_libs.c): a
	 * hive that never downloads never maps them. */
	hive.started_at = time(NULL);
	hive.started_ms = rb_now_ms();
	if (gethostname(hive.hostname, sizeof(hive.hostname) - 1) != 0)
		snprintf(hive.hostname, sizeof(hive.hostname), "unknown");
	/* The hwloc topology is loaded by the backend registry's refresher thread, with the first
	 * probe round: the server answers /health without waiting for either (backends.h). */

	/* The model store asks the process registry before deleting a model, the installed-worker
	 * store before removing or replacing a worker (hive.h). */
	hive.model_in_use = rb_workers_uses_model;
	hive.installed_in_use = rb_workers_uses_installed;

	int rc = 1;
	if (rb_hive_register_ops()) {
		rb_error("the operation table refused a row (a duplicate or incomplete operation)");
		goto out;
	}
	if (rb_backends_init(&hive, &err) || rb_jobs_init(&hive, &err) ||
	    rb_workers_init(&hive, &err) || rb_server_start(&hive, &rb_hive_routes, &err)) {
		rb_error("%s", err.msg);
		goto out;
	}
	rb_staging_note_port(hive.cfg.port);
	if (write_port_file(&hive.cfg))
		goto out;
	/* Listening: now the topology and the first probe round, on the refresher thread. */
	rb_backends_start(&hive);
	rb_info("listening on http://%s:%u (hive '%s', cache '%s', catalog %s)", hive.cfg.bind,
		hive.cfg.port, hive.cfg.hive_id, hive.paths.home, rb_catalog_source(&hive));

	for (;;) {
		int sig;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			rb_info("SIGHUP: re-probing backends");
			rb_backends_refresh(&hive, 0);
			continue;
		}
		rb_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	rc = 0;
out:
	/* A start that failed never stops workers it did not start (it started none: re-adopted
	 * ones belong to the next hive that starts here). */
	if (rc)
		hive.cfg.keep_workers = true;
	/* Jobs first: cancelling them ends their streams, so the server can stop promptly. */
	rb_jobs_shutdown(&hive);
	rb_server_stop(&hive);
	rb_jobs_free(&hive);
	/* Workers last: no job can spawn one any more and no route reads the registry. */
	rb_workers_shutdown(&hive);
	rb_backends_free(&hive);
	rb_topology_free(hive.topology);
	rb_info("stopped");
	return rc;
}
