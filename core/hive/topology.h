/*
 * topology.h - the node's hwloc topology, loaded once with PCI devices included.
 *
 * hwloc honours HWLOC_XMLFILE and HWLOC_SYNTHETIC, which is how tests give the hive (and the
 * plugins, which read it through host->topology()) several NUMA nodes and GPU locality.
 */
#ifndef RB_TOPOLOGY_H
#define RB_TOPOLOGY_H


#include "rb_err.h"

/* Returns an hwloc_topology_t, or NULL with *err set. */
void *rb_topology_load(struct rb_err *err);
void rb_topology_free(void *topology);

#endif
