/*
 * sdk_plugin.c - fixture plugins for the SDK tests (ABI 1.2 and what came before), one .so per
 * KIND_* macro, each in a directory of its own (tests/loader/CMakeLists.txt):
 *
 *   KIND_SLOW     testslow: probe sleeps RBEE_TEST_PROBE_SLEEP_MS (a slow GPU driver)
 *   KIND_SCORE    SCORE_NAME: available with score SCORE, one device of MEM_MIB MiB free;
 *                 init stores a state that verify reports and spawn passes to the worker
 *   KIND_NOPROBE  testnoprobe: no probe at all, one device
 *   KIND_ATTRS    testattrs: device facts (host->device_attr), path() and plugin_state in the
 *                 probe child, the hwloc version the hive declares
 *   KIND_OLD11    testold11: a plugin built against ABI 1.1 (smaller descriptor)
 *   KIND_SWAP     testswap: says SWAP_VERSION in its reason (two builds of it)
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hwloc.h>
#include <rbee/backend.h>

__attribute__((unused)) static int add_device(const struct rbee_host *host, const char *id,
					      unsigned long long mem_mib)
{
	struct rbee_device d;
	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.name, sizeof(d.name), "SDK test device");
	snprintf(d.device_type, sizeof(d.device_type), "cpu");
	d.memory_total = d.memory_free = mem_mib << 20;
	d.cc_major = d.cc_minor = -1;
	d.numa_node = -1;
	return host->device_add(host->call, &d);
}

#if defined(KIND_SLOW)
static int probe_slow(const struct rbee_host *host, struct rbee_probe_result *out)
{
	const char *ms = host->getenv(host->call, "RBEE_TEST_PROBE_SLEEP_MS");
	long n = ms ? atol(ms) : 0;
	struct timespec ts = { n / 1000, (n % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 3;
	snprintf(out->reason, sizeof(out->reason), "slept %ld ms", n);
	return RBEE_OK;
}
static int enumerate_slow(const struct rbee_host *host)
{
	return add_device(host, "SLOW-0", 1024);
}
RBEE_BACKEND_DEFINE(testslow) = { RBEE_BACKEND_HEADER("testslow"), .probe = probe_slow,
				  .enumerate = enumerate_slow };

#elif defined(KIND_SCORE)
#define STR2(x) #x
#define STR(x) STR2(x)
#define DESCRIPTOR(n) RBEE_BACKEND_DEFINE(n)
struct state {
	char text[64];
};
static int init_score(const struct rbee_host *host, void **state)
{
	(void)host;
	struct state *s = calloc(1, sizeof(*s));
	if (!s)
		return RBEE_ERR_NOMEM;
	snprintf(s->text, sizeof(s->text), "made by init of %s", STR(SCORE_NAME));
	*state = s;
	return RBEE_OK;
}
static void fini_score(void *state)
{
	free(state);
}
static int probe_score(const struct rbee_host *host, struct rbee_probe_result *out)
{
	const struct state *s = host->plugin_state(host->call);
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = SCORE;
	snprintf(out->reason, sizeof(out->reason), "score %d (%s)", SCORE, s ? s->text : "no state");
	return RBEE_OK;
}
static int enumerate_score(const struct rbee_host *host)
{
	return add_device(host, "SCORE-0", MEM_MIB);
}
static int verify_score(const struct rbee_host *host, const struct rbee_worker_info *worker,
			const struct rbee_device *devices, size_t ndevices, struct rbee_report *report)
{
	(void)worker, (void)devices, (void)ndevices;
	const struct state *s = host->plugin_state(host->call);
	return host->report_check(report, "plugin state", s != NULL, s ? s->text : "none");
}
static int spawn_score(const struct rbee_host *host, const struct rbee_spawn_request *req,
		       struct rbee_plan *plan)
{
	const struct state *s = host->plugin_state(host->call);
	int rc = host->plan_default_argv(plan, req);
	return rc ? rc : host->plan_env(plan, "RBEE_TEST_PLUGIN_STATE", s ? s->text : "none");
}
DESCRIPTOR(SCORE_NAME) = { RBEE_BACKEND_HEADER(STR(SCORE_NAME)), .probe = probe_score,
			   .enumerate = enumerate_score, .verify = verify_score,
			   .spawn = spawn_score, .init = init_score, .fini = fini_score };

#elif defined(KIND_NOPROBE)
static int enumerate_noprobe(const struct rbee_host *host)
{
	return add_device(host, "NOPROBE-0", 65536);
}
RBEE_BACKEND_DEFINE(testnoprobe) = { RBEE_BACKEND_HEADER("testnoprobe"),
				     .enumerate = enumerate_noprobe };

#elif defined(KIND_ATTRS)
static int probe_attrs(const struct rbee_host *host, struct rbee_probe_result *out)
{
	const char *home = host->path(host->call, "home");
	const char *plugins = host->path(host->call, "plugins");
	unsigned hwloc_major = host->hwloc_api_version >> 16;
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 1;
	snprintf(out->reason, sizeof(out->reason), "home=%s plugins=%s hwloc=%s state=%s",
		 home ? home : "(none)", plugins ? plugins : "(none)",
		 hwloc_major == (HWLOC_API_VERSION >> 16) &&
				 hwloc_major == RBEE_BACKEND_HWLOC_API_MAJOR
			 ? "same-major"
			 : "other-major",
		 (const char *)host->plugin_state(host->call));
	return RBEE_OK;
}
static int init_attrs(const struct rbee_host *host, void **state)
{
	(void)host;
	*state = "from-init";
	return RBEE_OK;
}
static int enumerate_attrs(const struct rbee_host *host)
{
	int rc = add_device(host, "GPU-0", 16384);
	if (rc)
		return rc;
	host->device_attr(host->call, "GPU-0", "gfx_target", "gfx90a");
	host->device_attr(host->call, "GPU-0", "xnack", "on");
	host->device_attr(host->call, "GPU-0", "marketing.name", "Instinct\xe2\x84\xa2 MI210");
	/* Refused: a key with a space, a value that is not UTF-8. The device stays. */
	if (host->device_attr(host->call, "GPU-0", "Bad Key", "x") != RBEE_OK)
		host->log(host->call, RBEE_LOG_WARN, "%s", host->last_error(host->call));
	if (host->device_attr(host->call, "GPU-0", "bad_value", "\xff") != RBEE_OK)
		host->log(host->call, RBEE_LOG_WARN, "%s", host->last_error(host->call));
	return RBEE_OK;
}
RBEE_BACKEND_DEFINE(testattrs) = { RBEE_BACKEND_HEADER("testattrs"), .probe = probe_attrs,
				   .enumerate = enumerate_attrs, .init = init_attrs };

#elif defined(KIND_OLD11)
/* Built against ABI 1.1: the descriptor ends before init. The member is set here only to show
 * that the host never reads past struct_size: calling it would crash the probe. */
static int init_must_not_run(const struct rbee_host *host, void **state)
{
	(void)host, (void)state;
	abort();
}
static int probe_old(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 2;
	snprintf(out->reason, sizeof(out->reason), "an ABI 1.1 plugin");
	return RBEE_OK;
}
static int enumerate_old(const struct rbee_host *host)
{
	return add_device(host, "OLD-0", 2048);
}
RBEE_BACKEND_DEFINE(testold11) = { .abi_major = 1, .abi_minor = 1,
				   .struct_size = offsetof(struct rbee_backend, init),
				   .name = "testold11", .probe = probe_old,
				   .enumerate = enumerate_old, .init = init_must_not_run };

#elif defined(KIND_SWAP)
static int probe_swap(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 1;
	snprintf(out->reason, sizeof(out->reason), "swap build %s", SWAP_VERSION);
	return RBEE_OK;
}
RBEE_BACKEND_DEFINE(testswap) = { RBEE_BACKEND_HEADER("testswap"), .version = SWAP_VERSION,
				  .probe = probe_swap };
#else
#error "define one KIND_*"
#endif
