/*
 * build_jobs.c - build parallelism shared by the cpu and cuda backends (see build_jobs.h).
 */
#include "build_jobs.h"

#include <hwloc.h>
#include <stdio.h>
#include <unistd.h>

unsigned rbee_plugin_build_jobs(const struct rbee_host *host)
{
	hwloc_topology_t topo = host->topology(host->call);
	long n = 0;

	if (topo) {
		hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(topo);
		hwloc_bitmap_t bound = hwloc_bitmap_alloc();

		n = allowed ? hwloc_bitmap_weight(allowed) : 0;
		/* build_env runs in the daemon: a hive started under taskset builds on its CPUs. */
		if (bound && allowed && hwloc_topology_is_thissystem(topo) &&
		    hwloc_get_cpubind(topo, bound, HWLOC_CPUBIND_PROCESS) == 0) {
			hwloc_bitmap_and(bound, bound, allowed);
			if (hwloc_bitmap_weight(bound) > 0)
				n = hwloc_bitmap_weight(bound);
		}
		hwloc_bitmap_free(bound);
		if (n <= 0)
			n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	}
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

int rbee_plugin_set_parallelism(const struct rbee_host *host, struct rbee_env *env, unsigned n)
{
	char jobs[16], makeflags[24];

	snprintf(jobs, sizeof(jobs), "%u", n);
	snprintf(makeflags, sizeof(makeflags), "-j%u", n);
	const char *const vars[] = {
		"MAKEFLAGS", makeflags, "CMAKE_BUILD_PARALLEL_LEVEL", jobs, "CARGO_BUILD_JOBS", jobs,
		NULL,
	};
	for (const char *const *v = vars; v[0]; v += 2) {
		const char *mine = host->getenv(host->call, v[0]);

		if (mine)
			host->log(host->call, RBEE_LOG_INFO, "keeping %s=\"%s\" from the hive's "
				  "environment (not %s)", v[0], mine, v[1]);
		if (host->env_set(env, v[0], mine ? mine : v[1]) != RBEE_OK)
			return host->fail(host->call, RBEE_ERR_NOMEM, "cannot set \"%s\" in the build "
					  "environment", v[0]);
	}
	return RBEE_OK;
}
