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

/* Take numa node, cpuset and nodeset from a non-I/O object (a package, group or NUMA node).
 * The root object means the PCI device is attached to no part of the machine in particular
 * (the kernel's numa_node is -1): locality stays unknown rather than "the whole machine". An
 * object spanning several NUMA nodes gives CPUs and nodes, but no single node. */
static void from_object(const struct rbee_host *host, hwloc_obj_t obj, struct rbee_device *dev)
{
	if (!obj->parent || !obj->cpuset || !obj->nodeset || hwloc_bitmap_iszero(obj->cpuset))
		return;
	dev->numa_node = hwloc_bitmap_weight(obj->nodeset) == 1 ? hwloc_bitmap_first(obj->nodeset)
								 : -1;
	list_string(host, obj->cpuset, dev->cpuset, sizeof(dev->cpuset), "cpuset");
	list_string(host, obj->nodeset, dev->nodeset, sizeof(dev->nodeset), "nodeset");
}

/* The kernel's view: /sys/bus/pci/devices/<id>/numa_node: the node, -1 when the kernel does
 * not know it (it says -1), -2 when the file cannot be read. */
static int sysfs_numa_node(const struct rbee_device *dev)
{
	char path[128], buf[32];
	FILE *f;
	long n = -2;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node", dev->pci_bus_id);
	f = fopen(path, "r");
	if (!f)
		return -2;
	if (fgets(buf, sizeof(buf), f))
		n = strtol(buf, NULL, 10);
	fclose(f);
	if (n == -1)
		return -1;
	return n >= 0 && n < 4096 ? (int)n : -2;
}

void cuda_locate(const struct rbee_host *host, const struct cuda_pci *pci, struct rbee_device *dev)
{
	hwloc_topology_t topo = host->topology(host->call);
	int here = !topo || hwloc_topology_is_thissystem(topo);
	hwloc_obj_t obj = NULL;
	int node;

	if (topo)
		obj = hwloc_get_pcidev_by_busid(topo, pci->domain, pci->bus, pci->dev, 0);
	if (obj) {
		obj = hwloc_get_non_io_ancestor_obj(topo, obj);
		if (obj)
			from_object(host, obj, dev);
		/* On this machine the kernel has the last word on the node: when it says -1 the GPU
		 * has no NUMA node, whatever object hwloc hung it under. */
		if (here && sysfs_numa_node(dev) == -1) {
			dev->numa_node = -1;
			dev->nodeset[0] = '\0';
		}
		return;
	}
	/* No I/O objects (hwloc built without PCI support, or filtered): ask the kernel, which
	 * only describes this machine. */
	if (!here)
		return;
	node = sysfs_numa_node(dev);
	if (node < 0)
		return;
	dev->numa_node = node;
	obj = topo ? hwloc_get_numanode_obj_by_os_index(topo, (unsigned)node) : NULL;
	if (obj)
		from_object(host, obj, dev);
}
