/*
 * rb_procfs.h - what Linux's /proc says about one process: its state letter, its start time
 * (the identity that survives pid reuse), its parent and group, and its resident memory.
 *
 * A pid alone does not name a process for long: once the process is reaped the number can be
 * given to another one. The pair (pid, start time) does, which is how the hive recognises its
 * workers again after a restart. All readers return -1 when the process does not exist (or
 * /proc cannot be read), so callers treat "unknown" as "gone".
 */
#ifndef RB_PROCFS_H
#define RB_PROCFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct rb_procfs_stat {
	char state;                    /* 'R', 'S', 'D', 'Z' (zombie), 'T'... */
	pid_t ppid;
	pid_t pgrp;
	unsigned long long start_time; /* clock ticks after boot (field 22 of /proc/<pid>/stat) */
};

/* Parse /proc/<pid>/stat (the command name may hold spaces and parentheses). */
int rb_procfs_stat(pid_t pid, struct rb_procfs_stat *out);

/* True when `pid` exists, is not a zombie, and started at `start_time` (0: any start time). */
bool rb_procfs_alive(pid_t pid, unsigned long long start_time);

/* Resident set size in bytes (VmRSS of /proc/<pid>/status). */
int rb_procfs_rss(pid_t pid, uint64_t *bytes);

#endif
