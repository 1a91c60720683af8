/*
 * hive.c - small facts about the running hive shared by routes and operations.
 */
#include "hive.h"

#include <signal.h>
#include <unistd.h>

#include "rb_proc.h"

long long rb_hive_uptime_s(const struct rb_hive *hive)
{
	return (rb_now_ms() - hive->started_ms) / 1000;
}

void rb_hive_request_shutdown(struct rb_hive *hive)
{
	(void)hive;
	/* main() waits for SIGTERM/SIGINT with sigwait(); this joins the same clean path. */
	kill(getpid(), SIGTERM);
}
