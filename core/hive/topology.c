#include "topology.h"

#include <hwloc.h>

void *rb_topology_load(struct rb_err *err)
{
	hwloc_topology_t topo;
	if (hwloc_topology_init(&topo) != 0) {
		rb_err_set(err, RB_EINTERNAL, "hwloc: cannot initialise a topology");
		return NULL;
	}
	/* PCI devices are needed for GPU locality; bridges and misc objects are not. On Linux
	 * they come from sysfs; the libpciaccess-based "pci" component would only add a config
	 * space scan (slow, and it leaks on every load), so it is left out. */
	hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	hwloc_topology_set_components(topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
	if (hwloc_topology_load(topo) != 0) {
		hwloc_topology_destroy(topo);
		rb_err_set(err, RB_EIO, "hwloc: cannot load the topology of this node");
		return NULL;
	}
	return topo;
}

void rb_topology_free(void *topology)
{
	if (topology)
		hwloc_topology_destroy((hwloc_topology_t)topology);
}
