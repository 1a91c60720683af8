/*
 * test_spawn_units.c - the pieces of worker spawn that need no hive: hwloc list parsing for
 * the binding, the memory margin, port probing, and /proc reading (start time, zombies, RSS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rb_procfs.h"
#include "workers/spawn.h"
#include "backends/topology.h"

#define LB (8 * sizeof(unsigned long))

static bool bit(const unsigned long *m, unsigned i)
{
	return m[i / LB] & (1ul << (i % LB));
}

static void list_with_ranges_and_singles_sets_exactly_those_bits(void **state)
{
	(void)state;
	unsigned long m[4];
	int max;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_topology_parse_list("0-3,8,70-71", m, 128, &max, &err), 0);
	assert_int_equal(max, 71);
	for (unsigned i = 0; i < 128; i++)
		assert_int_equal(bit(m, i), i <= 3 || i == 8 || i == 70 || i == 71);
	assert_int_equal(rb_topology_parse_list("", m, 128, &max, &err), 0);
	assert_int_equal(max, -1);
}

static void malformed_or_out_of_range_lists_are_refused_naming_the_list(void **state)
{
	(void)state;
	static const char *const bad[] = { "a", "1-", "-3", "3-1", "1,,2", "1;2", "0-128", "1 2",
					   NULL };
	unsigned long m[2];
	int max;
	for (size_t i = 0; bad[i]; i++) {
		struct rb_err err = RB_ERR_INIT;
		assert_int_equal(rb_topology_parse_list(bad[i], m, 128, &max, &err), -RB_EINVAL);
		assert_non_null(strstr(err.msg, bad[i]));
	}
}

static void a_model_needs_its_size_plus_ten_percent_plus_512_mib(void **state)
{
	(void)state;
	assert_int_equal(rb_spawn_needed_bytes(0), 512ull << 20);
	assert_int_equal(rb_spawn_needed_bytes(10ull << 30), (11ull << 30) + (512ull << 20));
}

static void a_port_with_a_listener_is_not_free_and_is_once_closed(void **state)
{
	(void)state;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s, 1), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	uint16_t port = ntohs(a.sin_port);
	assert_false(rb_spawn_port_free(port));
	close(s);
	assert_true(rb_spawn_port_free(port));
}

static void proc_stat_reads_our_own_identity(void **state)
{
	(void)state;
	struct rb_procfs_stat st;
	assert_int_equal(rb_procfs_stat(getpid(), &st), 0);
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.pgrp, getpgrp());
	assert_true(st.start_time > 0);
	assert_true(rb_procfs_alive(getpid(), st.start_time));
	assert_true(rb_procfs_alive(getpid(), 0));
	assert_false(rb_procfs_alive(getpid(), st.start_time + 1));
	uint64_t rss = 0;
	assert_int_equal(rb_procfs_rss(getpid(), &rss), 0);
	assert_true(rss > 0);
	assert_int_equal(rb_procfs_stat(0, &st), -1);
}

static void a_zombie_is_not_alive(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	struct rb_procfs_stat st;
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	/* Wait until it is a zombie, without reaping it. */
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(rb_procfs_stat(pid, &st), 0);
	assert_int_equal(st.state, 'Z');
	assert_false(rb_procfs_alive(pid, 0));
	uint64_t rss;
	assert_int_equal(rb_procfs_rss(pid, &rss), -1);
	waitpid(pid, NULL, 0);
	assert_int_equal(rb_procfs_stat(pid, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(list_with_ranges_and_singles_sets_exactly_those_bits),
		cmocka_unit_test(malformed_or_out_of_range_lists_are_refused_naming_the_list),
		cmocka_unit_test(a_model_needs_its_size_plus_ten_percent_plus_512_mib),
		cmocka_unit_test(a_port_with_a_listener_is_not_free_and_is_once_closed),
		cmocka_unit_test(proc_stat_reads_our_own_identity),
		cmocka_unit_test(a_zombie_is_not_alive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
