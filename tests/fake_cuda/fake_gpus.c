/*
 * fake_gpus.c - parser of the RBEE_FAKE_GPUS device list (see fake_gpus.h).
 */
#include "fake_gpus.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fake_env_int(const char *name, int def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < -1000000 || n > 1000000)
		return def;
	return (int)n;
}

int fake_parse_busid(const char *s, unsigned *domain, unsigned *bus, unsigned *dev, unsigned *fn)
{
	char tail;

	if (sscanf(s, "%x:%x:%x.%x%c", domain, bus, dev, fn, &tail) != 4)
		return -1;
	return (*bus > 0xff || *dev > 0x1f || *fn > 7) ? -1 : 0;
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* "GPU-" followed by 32 hex digits, dashes anywhere in between. */
static int parse_uuid(const char *s, unsigned char out[16])
{
	int n = 0;

	if (strncmp(s, "GPU-", 4) != 0)
		return -1;
	for (s += 4; *s; s++) {
		if (*s == '-')
			continue;
		if (n == 32 || hex_value(*s) < 0)
			return -1;
		if (n % 2 == 0)
			out[n / 2] = (unsigned char)(hex_value(*s) << 4);
		else
			out[n / 2] |= (unsigned char)hex_value(*s);
		n++;
	}
	return n == 32 ? 0 : -1;
}

/* Split `line` at '|' into at most `max` fields; returns the number of fields. */
static int split_fields(char *line, char **fields, int max)
{
	int n = 0;

	fields[n++] = line;
	for (char *p = line; *p; p++) {
		if (*p != '|')
			continue;
		*p = '\0';
		if (n == max)
			return max + 1;
		fields[n++] = p + 1;
	}
	return n;
}

static int parse_mib(const char *s, uint64_t *bytes)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*bytes = (uint64_t)v << 20;
	return 0;
}

static int parse_gpu(char *line, struct fake_gpu *g)
{
	char *f[6];
	char tail;

	if (split_fields(line, f, 6) != 6)
		return -1;
	snprintf(g->name, sizeof(g->name), "%s", f[0]);
	snprintf(g->uuid, sizeof(g->uuid), "%s", f[1]);
	if (parse_uuid(f[1], g->uuid_bytes) || fake_parse_busid(f[2], &g->domain, &g->bus, &g->dev, &g->fn))
		return -1;
	if (parse_mib(f[3], &g->total_bytes) || parse_mib(f[4], &g->free_bytes))
		return -1;
	if (sscanf(f[5], "%d.%d%c", &g->cc_major, &g->cc_minor, &tail) != 2)
		return -1;
	return 0;
}

static int parse_line(struct fake_system *sys, char *line)
{
	int major, minor;
	char tail;

	if (strncmp(line, "driver=", 7) == 0) {
		if (strlen(line + 7) >= sizeof(sys->driver_version))
			return -1;
		memcpy(sys->driver_version, line + 7, strlen(line + 7) + 1);
		return 0;
	}
	if (strncmp(line, "cuda=", 5) == 0) {
		if (sscanf(line + 5, "%d.%d%c", &major, &minor, &tail) != 2)
			return -1;
		sys->cuda_version = major * 1000 + minor * 10;
		return 0;
	}
	if (sys->ngpus == FAKE_MAX_GPUS)
		return -1;
	if (parse_gpu(line, &sys->gpus[sys->ngpus]))
		return -1;
	sys->ngpus++;
	return 0;
}

int fake_system_load(struct fake_system *sys)
{
	const char *path = getenv("RBEE_FAKE_GPUS");
	char line[512];
	int lineno = 0, rc = 0;
	FILE *f;

	memset(sys, 0, sizeof(*sys));
	snprintf(sys->driver_version, sizeof(sys->driver_version), "550.54.15");
	sys->cuda_version = 12040;
	if (!path || !*path)
		return 0;
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "fake cuda: cannot open RBEE_FAKE_GPUS \"%s\": %s\n", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		rc = parse_line(sys, line);
		if (rc)
			fprintf(stderr, "fake cuda: \"%s\" line %d: expected driver=V, cuda=M.m or "
				"name|GPU-uuid|bus id|total MiB|free MiB|cc\n", path, lineno);
	}
	fclose(f);
	return rc;
}
