/*
 * cpu.c - the cpu backend: the node's own processors, one device per NUMA node.
 *
 * CPU device N is the NUMA node with hwloc logical index N: its cpuset, its local memory, the
 * cores and hardware threads inside it. A worker spawned on it is bound to that node's CPUs and
 * memory, so a two-socket machine runs two workers without remote memory traffic. NUMA nodes
 * without CPUs (HBM or CXL memory, a GPU's memory) are not CPU devices and are skipped, keeping
 * the other nodes' numbers. Always available when hwloc works: it is the fallback backend, so
 * its score is low.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <hwloc.h>
#include <rbee/backend.h>

#include "build_jobs.h"
#include "cpu_internal.h"

#define CPU_SCORE 10

/* Counts of one object type in the whole topology (0 when hwloc does not know it). */
static unsigned count_of(hwloc_topology_t topo, hwloc_obj_type_t type)
{
	int n = hwloc_get_nbobjs_by_type(topo, type);

	return n > 0 ? (unsigned)n : 0;
}

static int cpu_probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	hwloc_topology_t topo = host->topology(host->call);
	char flags[4096], isa[256];
	unsigned packages, nodes, cores, pus;

	if (!topo) {
		out->state = RBEE_PROBE_BROKEN;
		snprintf(out->reason, sizeof(out->reason), "hwloc could not load this node's "
			 "topology; see the hive log");
		return RBEE_OK;
	}
	packages = count_of(topo, HWLOC_OBJ_PACKAGE);
	nodes = count_of(topo, HWLOC_OBJ_NUMANODE);
	cores = count_of(topo, HWLOC_OBJ_CORE);
	pus = count_of(topo, HWLOC_OBJ_PU);
	cpu_flags(flags, sizeof(flags));
	cpu_flags_of_interest(flags, isa, sizeof(isa));
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = CPU_SCORE;
	snprintf(out->reason, sizeof(out->reason), "%u package%s, %u NUMA node%s, %u cores, %u PUs",
		 packages, packages == 1 ? "" : "s", nodes, nodes == 1 ? "" : "s", cores, pus);
	if (isa[0] && strlen(out->reason) + 2 + strlen(isa) < sizeof(out->reason)) {
		strcat(out->reason, ", ");
		strcat(out->reason, isa);
	}
	return RBEE_OK;
}

/* hwloc list string of a bitmap into out; fails rather than truncate (a cut list binds to the
 * wrong CPUs). */
static int list_string(const struct rbee_host *host, hwloc_const_bitmap_t set, char *out,
		       size_t len, const char *what, unsigned node)
{
	int n = hwloc_bitmap_list_snprintf(out, len, set);

	if (n < 0 || (size_t)n >= len)
		return host->fail(host->call, RBEE_ERR_FAILED, "the %s of NUMA node %u does not fit "
				  "in %zu bytes", what, node, len - 1);
	return RBEE_OK;
}

/* The package holding most of a NUMA node: its ancestor, else the first one overlapping it. */
static hwloc_obj_t package_of(hwloc_topology_t topo, hwloc_obj_t node)
{
	hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, node);

	while (!pkg && (pkg = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pkg)))
		if (hwloc_bitmap_intersects(pkg->cpuset, node->cpuset))
			return pkg;
	return pkg;
}

/* Marketing name of the CPUs of a node: hwloc's CPUModel, else /proc/cpuinfo on this system. */
static void model_name(hwloc_topology_t topo, hwloc_obj_t node, char *out, size_t len)
{
	hwloc_obj_t pkg = package_of(topo, node);
	const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;

	out[0] = '\0';
	if (model)
		snprintf(out, len, "%s", model);
	else if (hwloc_topology_is_thissystem(topo))
		cpu_model_name(out, len);
}

/* Describe NUMA node `node` as CPU device `index`. */
static int describe_node(const struct rbee_host *host, hwloc_topology_t topo, hwloc_obj_t node,
			 struct rbee_device *dev)
{
	uint64_t total = 0, available = 0;
	int here = hwloc_topology_is_thissystem(topo);
	int rc;

	memset(dev, 0, sizeof(*dev));
	dev->struct_size = sizeof(*dev);
	dev->index = node->logical_index;
	dev->cc_major = dev->cc_minor = -1;
	dev->numa_node = (int32_t)node->os_index;
	snprintf(dev->id, sizeof(dev->id), "CPU-%u", node->logical_index);
	snprintf(dev->device_type, sizeof(dev->device_type), "cpu");
	model_name(topo, node, dev->name, sizeof(dev->name));
	dev->memory_total = node->attr ? node->attr->numanode.local_memory : 0;
	dev->memory_free = dev->memory_total;
	if (here && cpu_node_memory(node->os_index, &total, &available) == 0) {
		if (dev->memory_total == 0)
			dev->memory_total = total;
		dev->memory_free = available < dev->memory_total ? available : dev->memory_total;
	}
	dev->cores = (uint32_t)hwloc_get_nbobjs_inside_cpuset_by_type(topo, node->cpuset,
								       HWLOC_OBJ_CORE);
	dev->pus = (uint32_t)hwloc_get_nbobjs_inside_cpuset_by_type(topo, node->cpuset,
								     HWLOC_OBJ_PU);
	rc = list_string(host, node->cpuset, dev->cpuset, sizeof(dev->cpuset), "cpuset",
			 node->os_index);
	if (rc == RBEE_OK)
		rc = list_string(host, node->nodeset, dev->nodeset, sizeof(dev->nodeset), "nodeset",
				 node->os_index);
	return rc;
}

static int cpu_enumerate(const struct rbee_host *host)
{
	hwloc_topology_t topo = host->topology(host->call);
	hwloc_obj_t node = NULL;
	struct rbee_device dev;
	int rc = RBEE_OK;

	if (!topo)
		return host->fail(host->call, RBEE_ERR_UNAVAILABLE, "hwloc could not load this node's "
				  "topology");
	while (rc == RBEE_OK && (node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node))) {
		if (!node->cpuset || hwloc_bitmap_iszero(node->cpuset)) {
			host->log(host->call, RBEE_LOG_DEBUG, "NUMA node %u has memory but no CPUs: "
				  "not a CPU device", node->os_index);
			continue;
		}
		rc = describe_node(host, topo, node, &dev);
		if (rc == RBEE_OK)
			rc = host->device_add(host->call, &dev);
	}
	return rc;
}

static int cpu_build_env(const struct rbee_host *host, const struct rbee_device *devices,
			 size_t ndevices, struct rbee_env *env)
{
	char flags[4096], isa[256];
	struct utsname uts;
	unsigned n = rbee_plugin_build_jobs(host);

	(void)devices;
	(void)ndevices;
	cpu_flags(flags, sizeof(flags));
	cpu_flags_of_interest(flags, isa, sizeof(isa));
	if (uname(&uts) != 0)
		snprintf(uts.machine, sizeof(uts.machine), "unknown");
	const char *const vars[] = { "RBEE_CPU_FEATURES", isa, "RBEE_ARCH", uts.machine, NULL };

	host->log(host->call, RBEE_LOG_INFO, "building with %u jobs for %s (%s)", n, uts.machine,
		  isa[0] ? isa : "no extra ISA features");
	/* Parallelism: the operator's setting, when the hive was started with one, wins. */
	int rc = rbee_plugin_set_parallelism(host, env, n);

	if (rc != RBEE_OK)
		return rc;
	for (const char *const *v = vars; v[0]; v += 2) {
		if (host->env_set(env, v[0], v[1]) != RBEE_OK)
			return host->fail(host->call, RBEE_ERR_NOMEM, "cannot set \"%s\" in the build "
					  "environment", v[0]);
	}
	return RBEE_OK;
}

/* The "isa level" check: the x86-64 level the binary declares against this CPU's, and AVX2
 * code in a binary that declares less (built with -mavx2 or -march=native without
 * `-z x86-64-v3`: glibc lets it start, and it dies of SIGILL on a CPU without AVX2). */
static int check_isa(const struct rbee_host *host, const struct rbee_worker_info *worker,
		     struct rbee_report *report)
{
	char flags[4096], why[512], detail[512];
	const char *missing = NULL;
	int need = 0, avx2 = 0, have, ok;

	if (cpu_elf_isa_level(worker->binary_path, &need, &avx2, why, sizeof(why)) != 0)
		return host->report_check(report, "isa level", 0, why);
	if (need <= 1 && !avx2)
		return host->report_check(report, "isa level", 1, need ? "x86-64 baseline" :
					  "the binary declares no x86-64 level");
	cpu_flags(flags, sizeof(flags));
	have = cpu_isa_level(flags, &missing);
	if (have == 0) /* not an x86 CPU: the host's ELF machine check covers it */
		return host->report_check(report, "isa level", 1, "not checked: this CPU is not x86");
	if (need <= 2) { /* declares at most v2, but its code uses AVX2 */
		const char *declared = need == 2 ? "x86-64-v2" : need ? "x86-64 baseline" :
					   "no x86-64 level";

		if (have < need) {
			snprintf(detail, sizeof(detail), "needs x86-64-v%d but this CPU is x86-64-v%d "
				 "(no \"%s\"): rebuild the worker for this CPU", need, have,
				 missing ? missing : "?");
			return host->report_check(report, "isa level", 0, detail);
		}
		if (cpu_has_flag(flags, "avx2")) {
			snprintf(detail, sizeof(detail), "needs avx2 (its code uses AVX2 instructions, "
				 "though it declares %s), this CPU has avx2", declared);
			return host->report_check(report, "isa level", 1, detail);
		}
		/* A byte scan cannot tell code built for AVX2 from code that picks AVX2 at run time
		 * (glibc's string functions, Rust's memchr): warn, do not refuse. */
		snprintf(detail, sizeof(detail), "needs avx2 unless it picks it at run time (its "
			 "code uses AVX2 instructions, though it declares %s), and this CPU has no "
			 "\"avx2\": a worker built with -mavx2 or -march=native dies of SIGILL here",
			 declared);
		host->log(host->call, RBEE_LOG_WARN, "%s: %s", worker->binary_path, detail);
		return host->report_check(report, "isa level", 1, detail);
	}
	ok = need <= 4 && have >= need;
	if (ok)
		snprintf(detail, sizeof(detail), "needs x86-64-v%d, this CPU has x86-64-v%d", need, have);
	else if (need > 4)
		snprintf(detail, sizeof(detail), "needs an x86-64 level newer than v4 (%d), which this "
			 "plugin does not know: rebuild the worker for this CPU", need);
	else
		snprintf(detail, sizeof(detail), "needs x86-64-v%d but this CPU is x86-64-v%d (no \"%s\"): "
			 "rebuild the worker for this CPU", need, have, missing ? missing : "?");
	return host->report_check(report, "isa level", ok, detail);
}

static int cpu_verify(const struct rbee_host *host, const struct rbee_worker_info *worker,
		      const struct rbee_device *devices, size_t ndevices, struct rbee_report *report)
{
	char detail[128];
	uint64_t memory = 0;
	int wrong_type = worker->worker_type && *worker->worker_type &&
			 strcmp(worker->worker_type, "cpu") != 0;

	for (size_t i = 0; i < ndevices; i++)
		memory += devices[i].memory_total;
	snprintf(detail, sizeof(detail), "%zu NUMA node%s, %.1f GiB", ndevices,
		 ndevices == 1 ? "" : "s", (double)memory / (1024.0 * 1024 * 1024));
	if (host->report_check(report, "cpu devices", ndevices > 0 && memory > 0,
			       ndevices ? detail : "no CPU device with memory was found") != RBEE_OK ||
	    host->report_check(report, "worker type", !wrong_type,
			       wrong_type ? "the worker is not a cpu worker" : "cpu") != RBEE_OK ||
	    check_isa(host, worker, report) != RBEE_OK)
		return host->fail(host->call, RBEE_ERR_NOMEM, "cannot add to the verify report");
	return RBEE_OK;
}

static int cpu_spawn(const struct rbee_host *host, const struct rbee_spawn_request *req,
		     struct rbee_plan *plan)
{
	const struct rbee_device *dev = req->device;
	uint32_t threads = dev->cores ? dev->cores : dev->pus;
	char n[16];
	int rc = host->plan_default_argv(plan, req);

	if (rc == RBEE_OK && dev->cpuset[0])
		rc = host->plan_bind_cpus(plan, dev->cpuset);
	if (rc == RBEE_OK && dev->nodeset[0])
		rc = host->plan_bind_memory(plan, dev->nodeset);
	if (rc == RBEE_OK && threads) {
		/* One thread per physical core: SMT siblings share the FPUs inference saturates. */
		snprintf(n, sizeof(n), "%u", threads);
		rc = host->plan_env(plan, "OMP_NUM_THREADS", n);
	}
	return rc;
}

RBEE_BACKEND_DEFINE(cpu) = {
	RBEE_BACKEND_HEADER("cpu"),
	.version = RBEE_VERSION,
	.description = "the node's CPUs, one device per NUMA node, bound to its cores and memory",
	.probe = cpu_probe,
	.enumerate = cpu_enumerate,
	.build_env = cpu_build_env,
	.verify = cpu_verify,
	.spawn = cpu_spawn,
};
