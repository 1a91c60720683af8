/*
 * build_jobs.h - build parallelism for backends that build with make, CMake or cargo (cpu,
 * cuda): compiled into each plugin, so nothing of it is exported.
 */
#ifndef RBEE_PLUGIN_BUILD_JOBS_H
#define RBEE_PLUGIN_BUILD_JOBS_H

#include <rbee/backend.h>

/* Hardware threads the build may use: the PUs of the cpuset the hive may use (the topology's
 * allowed cpuset, narrowed to the hive's CPU binding on this machine), else the topology's
 * PUs, else what the kernel says. Never 0. */
unsigned rbee_plugin_build_jobs(const struct rbee_host *host);

/* MAKEFLAGS=-jN, CMAKE_BUILD_PARALLEL_LEVEL=N and CARGO_BUILD_JOBS=N in `env`, each unless the
 * hive's own environment sets it: then the operator's value is kept, and narrated. */
int rbee_plugin_set_parallelism(const struct rbee_host *host, struct rbee_env *env, unsigned n);

#endif
