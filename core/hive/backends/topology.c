#include "topology.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <hwloc.h>

#define LONG_BITS (8 * sizeof(unsigned long))

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

int rb_topology_parse_list(const char *list, unsigned long *mask, size_t nbits, int *max,
			   struct rb_err *err)
{
	memset(mask, 0, (nbits + LONG_BITS - 1) / LONG_BITS * sizeof(unsigned long));
	*max = -1;
	for (const char *p = list; *p;) {
		char *end;
		if (!isdigit((unsigned char)*p))
			goto bad;
		unsigned long a = strtoul(p, &end, 10), b = a;
		p = end;
		if (*p == '-') {
			if (!isdigit((unsigned char)p[1]))
				goto bad;
			b = strtoul(p + 1, &end, 10);
			p = end;
		}
		if (b < a || b >= nbits)
			goto bad;
		for (unsigned long i = a; i <= b; i++)
			mask[i / LONG_BITS] |= 1ul << (i % LONG_BITS);
		if ((int)b > *max)
			*max = (int)b;
		if (*p == ',')
			p++;
		else if (*p)
			goto bad;
	}
	return 0;
bad:
	return rb_err_set(err, RB_EINVAL, "invalid CPU or NUMA node list '%s' in the launch plan: "
			  "expected numbers and ranges like '0-3,8' below %zu", list, nbits);
}
