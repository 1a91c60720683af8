/*
 * cuda_numa.c - where a GPU sits: the CPUs and NUMA node closest to its PCI slot, from the
 * host's hwloc topology, so a worker on that GPU can be bound next to it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <hwloc.h>

#include "cuda_internal.h"

/* Copy a bitmap as an hwloc list string; "" (unknown) when it does not fit, because a
 * truncated list would bind to the wrong CPUs. */
static void list_string(const struct rbee_host *host, hwloc_const_bitmap_t set, char *out,
			size_t len, const char *what)
{
	int n = hwloc_bitmap_list_snprintf(out, len, set);

	if (n < 0 || (size_t)n >= len) {
		host->log(host->call, RBEE_LOG_WARN, "%s list is longer than %zu bytes; not binding",
			  what, len - 1);
		out[0] = '\0';
	}
}

/* Take numa node, cpuset and nodeset from a non-I/O object (a package, group or NUMA node). */
static void from_object(const struct rbee_host *host, hwloc_obj_t obj, struct rbee_device *dev)
{
	int first;

	if (!obj->cpuset || !obj->nodeset || hwloc_bitmap_iszero(obj->cpuset))
		return;
	first = hwloc_bitmap_first(obj->nodeset);
	dev->numa_node = first >= 0 ? first : -1;
	list_string(host, obj->cpuset, dev->cpuset, sizeof(dev->cpuset), "cpuset");
	list_string(host, obj->nodeset, dev->nodeset, sizeof(dev->nodeset), "nodeset");
}

/* The kernel's view: /sys/bus/pci/devices/<id>/numa_node, -1 when unknown. */
static int sysfs_numa_node(const struct rbee_device *dev)
{
	char path[128], buf[32];
	FILE *f;
	long n = -1;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node", dev->pci_bus_id);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		n = strtol(buf, NULL, 10);
	fclose(f);
	return n >= 0 && n < 4096 ? (int)n : -1;
}

void cuda_locate(const struct rbee_host *host, const struct cuda_pci *pci, struct rbee_device *dev)
{
	hwloc_topology_t topo = host->topology(host->call);
	hwloc_obj_t obj = NULL;
	int node;

	if (topo)
		obj = hwloc_get_pcidev_by_busid(topo, pci->domain, pci->bus, pci->dev, 0);
	if (obj) {
		obj = hwloc_get_non_io_ancestor_obj(topo, obj);
		if (obj)
			from_object(host, obj, dev);
		return;
	}
	/* No I/O objects (hwloc built without PCI support, or filtered): ask the kernel, which
	 * only describes this machine. */
	if (topo && !hwloc_topology_is_thissystem(topo))
		return;
	node = sysfs_numa_node(dev);
	if (node < 0)
		return;
	dev->numa_node = node;
	obj = topo ? hwloc_get_numanode_obj_by_os_index(topo, (unsigned)node) : NULL;
	if (obj)
		from_object(host, obj, dev);
}
