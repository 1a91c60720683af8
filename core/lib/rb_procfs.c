/*
 * rb_procfs.c - reading /proc/<pid>/stat and /proc/<pid>/status (see rb_procfs.h).
 */
#include "rb_procfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read a small /proc file into buf (NUL-terminated). Returns its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

int rb_procfs_stat(pid_t pid, struct rb_procfs_stat *out)
{
	char path[64], buf[1024];
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	/* "pid (comm) state ppid pgrp ..." where comm may contain ") ": the last ')' ends it. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	memset(out, 0, sizeof(*out));
	out->state = *p;
	/* Fields after comm, numbered from 3 (state). start_time is field 22. */
	int field = 3;
	char *save = NULL;
	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 4)
			out->ppid = (pid_t)atoi(tok);
		else if (field == 5)
			out->pgrp = (pid_t)atoi(tok);
		else if (field == 22) {
			out->start_time = strtoull(tok, NULL, 10);
			return 0;
		}
	}
	return -1;
}

bool rb_procfs_alive(pid_t pid, unsigned long long start_time)
{
	struct rb_procfs_stat st;
	if (rb_procfs_stat(pid, &st) != 0 || st.state == 'Z' || st.state == 'X')
		return false;
	return start_time == 0 || st.start_time == start_time;
}

int rb_procfs_rss(pid_t pid, uint64_t *bytes)
{
	char path[64], buf[4096];
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "\nVmRSS:");
	if (!p)
		return -1; /* kernel threads and zombies have none */
	unsigned long long kib;
	if (sscanf(p + 7, " %llu kB", &kib) != 1)
		return -1;
	*bytes = (uint64_t)kib * 1024;
	return 0;
}
