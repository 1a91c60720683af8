/*
 * topology.h - the node's hwloc topology, loaded once with PCI devices included.
 *
 * hwloc honours HWLOC_XMLFILE and HWLOC_SYNTHETIC, which is how tests give the hive (and the
 * plugins, which read it through host->topology()) several NUMA nodes and GPU locality.
 */
#ifndef RB_TOPOLOGY_H
#define RB_TOPOLOGY_H

#include <stddef.h>

#include "rb_err.h"

/* Returns an hwloc_topology_t, or NULL with *err set. */
void *rb_topology_load(struct rb_err *err);
void rb_topology_free(void *topology);

/* Parse an hwloc list string ("0-3,8,10-11") into a bit mask of `nbits` bits (bit i of
 * mask[i / bits-per-long]). RB_EINVAL naming the list when it is malformed or names a bit
 * beyond nbits. *max receives the highest bit set (-1 for an empty list). Used for the cpuset
 * and nodeset of a launch plan (spawn.c) and for {threads} (host.c). */
int rb_topology_parse_list(const char *list, unsigned long *mask, size_t nbits, int *max,
			   struct rb_err *err);

#endif
