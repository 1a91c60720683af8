/*
 * cpu_info.c - what the kernel says about this machine's CPUs and memory: /proc/cpuinfo and
 * the per-node meminfo files. hwloc gives the structure; these give ISA flags and free memory,
 * which hwloc does not.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"

/* Copy the value of the first "key<spaces>: value" line of /proc/cpuinfo. */
static int cpuinfo_value(const char *key, char *buf, size_t len)
{
	char line[8192];
	size_t klen = strlen(key);
	FILE *f = fopen("/proc/cpuinfo", "r");
	int rc = -1;

	buf[0] = '\0';
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *colon;

		if (strncmp(line, key, klen) != 0 || !strchr(" \t:", line[klen]))
			continue;
		colon = strchr(line + klen, ':');
		if (!colon)
			continue;
		colon += strspn(colon + 1, " \t") + 1;
		colon[strcspn(colon, "\r\n")] = '\0';
		snprintf(buf, len, "%s", colon);
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

int cpu_flags(char *buf, size_t len)
{
	if (cpuinfo_value("flags", buf, len) == 0)
		return 0;
	return cpuinfo_value("Features", buf, len);
}

int cpu_has_flag(const char *flags, const char *flag)
{
	size_t n = strlen(flag);

	for (const char *p = strstr(flags, flag); p; p = strstr(p + 1, flag)) {
		if ((p == flags || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return 1;
	}
	return 0;
}

void cpu_flags_of_interest(const char *flags, char *out, size_t len)
{
	static const char *const interesting[] = {
		/* x86 */
		"sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f",
		"avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16",
		"avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
		/* arm64 */
		"asimd", "asimdhp", "asimddp", "fphp", "i8mm", "bf16", "sve", "sve2",
	};
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(interesting) / sizeof(interesting[0]); i++) {
		if (!cpu_has_flag(flags, interesting[i]) || used >= len)
			continue;
		used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "",
					 interesting[i]);
	}
}

int cpu_model_name(char *buf, size_t len)
{
	return cpuinfo_value("model name", buf, len);
}

int cpu_node_memory(unsigned os_index, uint64_t *total, uint64_t *available)
{
	static const char *const parts[] = { "MemFree:", "Active(file):", "Inactive(file):",
					     "SReclaimable:" };
	char path[96], line[256], key[64];
	uint64_t kb, sum = 0, tot = 0;
	unsigned node;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%u/meminfo", os_index);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %u %63s %" SCNu64, &node, key, &kb) != 3)
			continue;
		if (strcmp(key, "MemTotal:") == 0)
			tot = kb * 1024;
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (strcmp(key, parts[i]) == 0)
				sum += kb * 1024;
	}
	fclose(f);
	if (tot == 0)
		return -1;
	*total = tot;
	*available = sum < tot ? sum : tot;
	return 0;
}
