/*
 * cuda.c - the cuda backend: NVIDIA GPUs through the CUDA driver, loaded at run time.
 *
 * probe/enumerate run in the hive's time-limited probe process: they open libcuda.so.1 (and
 * libnvidia-ml.so.1 when present) with dlopen, so a node without the driver simply reports
 * "not available". GPUs are numbered in PCI bus id order, as nvidia-smi numbers them, whatever
 * CUDA_DEVICE_ORDER says; workers are pinned by UUID, so the numbering never reaches CUDA.
 * build_env/verify/spawn run in the daemon and only use the enumerated device records.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hwloc.h>
#include <rbee/backend.h>

#include "build_jobs.h"
#include "cuda_internal.h"

#define CUDA_SCORE 100
#define CUDA_MAX_GPUS 1024

/* An open driver and what the probe learnt from it. */
struct cuda_session {
	struct cuda_driver cu;
	struct cuda_nvml nv;
	int count;
	char driver_version[32]; /* NVML's "550.54.15", else "CUDA 12.4" */
	char cuda_version[16];   /* "12.4", "" unknown */
	int nvml_driver;         /* driver_version came from NVML */
};

/* Set the probe answer; returns `state` == available ? 0 : -1 for the caller's convenience. */
static int answer(struct rbee_probe_result *out, enum rbee_probe_state state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int answer(struct rbee_probe_result *out, enum rbee_probe_state state, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	out->state = state;
	out->score = state == RBEE_PROBE_AVAILABLE ? CUDA_SCORE : 0;
	return state == RBEE_PROBE_AVAILABLE ? 0 : -1;
}

/* Driver and CUDA versions: NVML's driver version when NVML works, else the CUDA version. */
static void read_versions(const struct rbee_host *host, struct cuda_session *s)
{
	char why[RBEE_REASON_MAX], nvml_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "";
	int v = 0;

	if (s->cu.cuDriverGetVersion(&v) == CUDA_SUCCESS && v > 0)
		snprintf(s->cuda_version, sizeof(s->cuda_version), "%d.%d", v / 1000, v % 1000 / 10);
	if (cuda_nvml_open(&s->nv, why, sizeof(why)) != 0) {
		host->log(host->call, RBEE_LOG_WARN, "%s: driver version and free memory come from "
			  "the CUDA driver instead", why);
	} else if (s->nv.nvmlSystemGetDriverVersion(nvml_version, sizeof(nvml_version)) == NVML_SUCCESS) {
		/* Real versions are short ("550.54.15"); a longer answer is cut to fit. */
		nvml_version[sizeof(s->driver_version) - 1] = '\0';
		memcpy(s->driver_version, nvml_version, sizeof(s->driver_version));
		s->nvml_driver = s->driver_version[0] != '\0';
	}
	if (!s->driver_version[0] && s->cuda_version[0])
		snprintf(s->driver_version, sizeof(s->driver_version), "CUDA %s", s->cuda_version);
}

static void session_close(struct cuda_session *s)
{
	cuda_nvml_close(&s->nv);
	cuda_driver_close(&s->cu);
}

/* Open the driver, initialize it and count the GPUs. Returns 0 with the session open and `out`
 * answered "available", or -1 with nothing open and `out` saying why not. */
static int session_open(const struct rbee_host *host, struct cuda_session *s,
			struct rbee_probe_result *out)
{
	char why[RBEE_REASON_MAX], err[96];
	CUresult rc;

	memset(s, 0, sizeof(*s));
	switch (cuda_driver_open(&s->cu, why, sizeof(why))) {
	case CUDA_OPEN_OK: break;
	case CUDA_OPEN_MISSING: return answer(out, RBEE_PROBE_UNAVAILABLE, "%s", why);
	case CUDA_OPEN_BROKEN: return answer(out, RBEE_PROBE_BROKEN, "%s", why);
	}
	rc = s->cu.cuInit(0);
	if (rc == CUDA_ERROR_NO_DEVICE) {
		answer(out, RBEE_PROBE_UNAVAILABLE, "no NVIDIA GPU found");
		goto fail;
	}
	if (rc != CUDA_SUCCESS) {
		answer(out, RBEE_PROBE_BROKEN, "cuInit failed: %s; check \"nvidia-smi\" and the "
		       "nvidia kernel modules", cuda_error_text(&s->cu, rc, err, sizeof(err)));
		goto fail;
	}
	rc = s->cu.cuDeviceGetCount(&s->count);
	if (rc != CUDA_SUCCESS) {
		answer(out, RBEE_PROBE_BROKEN, "cuDeviceGetCount failed: %s",
		       cuda_error_text(&s->cu, rc, err, sizeof(err)));
		goto fail;
	}
	if (s->count == 0) {
		answer(out, RBEE_PROBE_UNAVAILABLE, "no NVIDIA GPU found");
		goto fail;
	}
	if (s->count < 0 || s->count > CUDA_MAX_GPUS) {
		answer(out, RBEE_PROBE_BROKEN, "cuDeviceGetCount reported %d GPUs", s->count);
		goto fail;
	}
	read_versions(host, s);
	return answer(out, RBEE_PROBE_AVAILABLE, "%d GPU%s%s%s%s%s", s->count,
		      s->count == 1 ? "" : "s", s->nvml_driver ? ", driver " : "",
		      s->nvml_driver ? s->driver_version : "", s->cuda_version[0] ? ", CUDA " : "",
		      s->cuda_version);
fail:
	session_close(s);
	return -1;
}

static int cuda_probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	struct cuda_session s;

	if (session_open(host, &s, out) == 0)
		session_close(&s);
	return RBEE_OK;
}

/* One GPU as read, with its PCI location for sorting and locality. */
struct cuda_gpu {
	struct rbee_device dev;
	struct cuda_pci pci;
};

static int by_bus_id(const void *a, const void *b)
{
	return strcmp(((const struct cuda_gpu *)a)->dev.pci_bus_id,
		      ((const struct cuda_gpu *)b)->dev.pci_bus_id);
}

/* Read every GPU the driver counts into `gpus`; a GPU that cannot be read is reported and
 * skipped. Returns how many were read. */
static int read_all(const struct rbee_host *host, const struct cuda_session *s,
		    struct cuda_gpu *gpus)
{
	char why[RBEE_REASON_MAX];
	int n = 0;

	for (int i = 0; i < s->count; i++) {
		struct cuda_gpu *g = &gpus[n];

		memset(g, 0, sizeof(*g));
		g->dev.struct_size = sizeof(g->dev);
		g->dev.cc_major = g->dev.cc_minor = g->dev.numa_node = -1;
		snprintf(g->dev.device_type, sizeof(g->dev.device_type), "gpu");
		snprintf(g->dev.driver_version, sizeof(g->dev.driver_version), "%s", s->driver_version);
		if (cuda_read_gpu(host, &s->cu, &s->nv, i, &g->dev, &g->pci, why, sizeof(why)) != 0) {
			host->log(host->call, RBEE_LOG_ERROR, "skipping a GPU: %s", why);
			continue;
		}
		n++;
	}
	return n;
}

static int cuda_enumerate(const struct rbee_host *host)
{
	struct rbee_probe_result probe = { 0 };
	struct cuda_session s;
	struct cuda_gpu *gpus;
	int n, rc = RBEE_OK;

	if (session_open(host, &s, &probe) != 0)
		return host->fail(host->call, RBEE_ERR_UNAVAILABLE, "%s", probe.reason);
	gpus = calloc((size_t)s.count, sizeof(*gpus));
	if (!gpus) {
		rc = host->fail(host->call, RBEE_ERR_NOMEM, "out of memory listing %d GPUs", s.count);
		goto out;
	}
	n = read_all(host, &s, gpus);
	if (n == 0) {
		rc = host->fail(host->call, RBEE_ERR_FAILED, "none of the %d GPUs the driver counts "
				"could be read (see the log)", s.count);
		goto out;
	}
	qsort(gpus, (size_t)n, sizeof(*gpus), by_bus_id);
	for (int i = 0; i < n && rc == RBEE_OK; i++) {
		gpus[i].dev.index = (uint32_t)i;
		snprintf(gpus[i].dev.id, sizeof(gpus[i].dev.id), "GPU-%d", i);
		cuda_locate(host, &gpus[i].pci, &gpus[i].dev);
		rc = host->device_add(host->call, &gpus[i].dev);
	}
out:
	free(gpus);
	session_close(&s);
	return rc;
}

/* Sorted, unique CUDA architectures (cc * 10) of the devices; returns how many. */
static size_t device_archs(const struct rbee_device *devices, size_t n, int *archs)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		int arch = devices[i].cc_major * 10 + devices[i].cc_minor;
		size_t j;

		if (devices[i].cc_major < 0 || devices[i].cc_minor < 0)
			continue;
		for (j = count; j > 0 && archs[j - 1] > arch; j--)
			;
		if (j > 0 && archs[j - 1] == arch)
			continue;
		memmove(&archs[j + 1], &archs[j], (count - j) * sizeof(*archs));
		archs[j] = arch;
		count++;
	}
	return count;
}

/* "80;90" and "8.0;9.0" from sorted architectures. */
static void arch_lists(const int *archs, size_t n, char *cmake, size_t cmakelen, char *torch,
		       size_t torchlen)
{
	size_t c = 0, t = 0;

	cmake[0] = torch[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *sep = i ? ";" : "";

		if (c < cmakelen)
			c += (size_t)snprintf(cmake + c, cmakelen - c, "%s%d", sep, archs[i]);
		if (t < torchlen)
			t += (size_t)snprintf(torch + t, torchlen - t, "%s%d.%d", sep, archs[i] / 10,
					      archs[i] % 10);
	}
}

/* Set every NAME, VALUE pair of `vars` (NULL-terminated) in the build environment. */
static int set_all(const struct rbee_host *host, struct rbee_env *env, const char *const *vars)
{
	for (; vars[0]; vars += 2) {
		if (host->env_set(env, vars[0], vars[1]) != RBEE_OK)
			return host->fail(host->call, RBEE_ERR_NOMEM, "cannot set \"%s\" in the build "
					  "environment", vars[0]);
	}
	return RBEE_OK;
}

static int cuda_build_env(const struct rbee_host *host, const struct rbee_device *devices,
			  size_t ndevices, struct rbee_env *env)
{
	char nvcc[4096], home[4096], path[8192], cmake[256], torch[256], top[16];
	const char *old_path = host->getenv(host->call, "PATH");
	int archs[64];
	size_t narchs;
	unsigned jobs;
	int rc;

	if (ndevices == 0)
		return host->fail(host->call, RBEE_ERR_UNAVAILABLE, "no NVIDIA GPU was found on this "
				  "node, so there are no CUDA architectures to build for");
	narchs = device_archs(devices, ndevices < 64 ? ndevices : 64, archs);
	if (narchs == 0)
		return host->fail(host->call, RBEE_ERR_UNAVAILABLE, "no GPU of this node reported a "
				  "compute capability, so there are no CUDA architectures to build for");
	rc = cuda_find_nvcc(host, nvcc, sizeof(nvcc), home, sizeof(home));
	if (rc == RBEE_OK)
		rc = cuda_check_nvcc_targets(host, nvcc, archs, narchs);
	if (rc != RBEE_OK)
		return rc;
	arch_lists(archs, narchs, cmake, sizeof(cmake), torch, sizeof(torch));
	snprintf(top, sizeof(top), "%d", archs[narchs - 1]);
	if (snprintf(path, sizeof(path), "%s/bin:%s", home,
		     old_path && *old_path ? old_path : "/usr/local/bin:/usr/bin:/bin") >= (int)sizeof(path))
		return host->fail(host->call, RBEE_ERR_INVALID, "PATH is longer than %zu bytes: "
				  "cannot prepend \"%s/bin\" to it", sizeof(path) - 1, home);
	jobs = rbee_plugin_build_jobs(host);
	host->log(host->call, RBEE_LOG_INFO, "building for CUDA architectures %s with %u jobs",
		  cmake, jobs);
	rc = rbee_plugin_set_parallelism(host, env, jobs);
	if (rc != RBEE_OK)
		return rc;
	const char *const vars[] = {
		"CUDA_HOME", home, "CUDA_PATH", home, "CUDACXX", nvcc, "PATH", path,
		"CMAKE_CUDA_ARCHITECTURES", cmake, "CUDAARCHS", cmake, "CUDA_COMPUTE_CAP", top,
		"TORCH_CUDA_ARCH_LIST", torch, NULL,
	};
	return set_all(host, env, vars);
}

static int cuda_verify(const struct rbee_host *host, const struct rbee_worker_info *worker,
		       const struct rbee_device *devices, size_t ndevices, struct rbee_report *report)
{
	char detail[512];
	size_t len = 0, no_uuid = 0, no_cc = 0;
	int wrong_type = worker->worker_type && *worker->worker_type &&
			 strcmp(worker->worker_type, "cuda") != 0;

	detail[0] = '\0';
	for (size_t i = 0; i < ndevices; i++) {
		no_uuid += devices[i].uuid[0] == '\0';
		no_cc += devices[i].cc_major < 0;
		if (len < sizeof(detail))
			len += (size_t)snprintf(detail + len, sizeof(detail) - len, "%s%s %s (%d.%d)",
						i ? ", " : "", devices[i].id, devices[i].name,
						devices[i].cc_major, devices[i].cc_minor);
	}
	if (host->report_check(report, "gpu present", ndevices > 0,
			       ndevices ? detail : "no NVIDIA GPU on this node") != RBEE_OK ||
	    host->report_check(report, "gpu identity", ndevices > 0 && no_uuid == 0 && no_cc == 0,
			       no_uuid || no_cc ? "a GPU lacks a UUID or compute capability, so a "
			       "worker cannot be pinned to it" : "every GPU has a UUID and compute "
			       "capability") != RBEE_OK ||
	    host->report_check(report, "worker type", !wrong_type,
			       wrong_type ? "the worker is not a cuda worker" : "cuda") != RBEE_OK)
		return host->fail(host->call, RBEE_ERR_NOMEM, "cannot add to the verify report");
	return RBEE_OK;
}

static int cuda_spawn(const struct rbee_host *host, const struct rbee_spawn_request *req,
		      struct rbee_plan *plan)
{
	const struct rbee_device *dev = req->device;
	int rc;

	if (!dev->uuid[0])
		return host->fail(host->call, RBEE_ERR_INVALID, "GPU \"%s\" has no UUID, so the worker "
				  "cannot be pinned to it with CUDA_VISIBLE_DEVICES", dev->id);
	rc = host->plan_default_argv(plan, req);
	if (rc == RBEE_OK)
		rc = host->plan_env(plan, "CUDA_VISIBLE_DEVICES", dev->uuid);
	if (rc == RBEE_OK)
		rc = host->plan_env(plan, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
	if (rc == RBEE_OK && dev->cpuset[0])
		rc = host->plan_bind_cpus(plan, dev->cpuset);
	if (rc == RBEE_OK && dev->nodeset[0])
		rc = host->plan_bind_memory(plan, dev->nodeset);
	return rc;
}

RBEE_BACKEND_DEFINE(cuda) = {
	RBEE_BACKEND_HEADER("cuda"),
	.version = RBEE_VERSION,
	.description = "NVIDIA GPUs through the CUDA driver (libcuda.so.1, loaded at run time)",
	.probe = cuda_probe,
	.enumerate = cuda_enumerate,
	.build_env = cuda_build_env,
	.verify = cuda_verify,
	.spawn = cuda_spawn,
};
