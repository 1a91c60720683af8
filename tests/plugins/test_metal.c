/*
 * test_metal.c - the metal backend off macOS: it loads, passes the ABI checks and says it is
 * not available here, with nothing else to call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_host.h"

static void off_macos_metal_is_unavailable(void **state)
{
	struct th *th = th_new("metal", TH_TOPO_NONE, NULL);
	struct rbee_probe_result r;

	(void)state;
	assert_int_equal(th_probe(th, &r), RBEE_OK);
	assert_int_equal(r.state, RBEE_PROBE_UNAVAILABLE);
	assert_int_equal(r.score, 0);
	assert_string_equal(r.reason, "requires macOS on Apple silicon");
	assert_null(th->be->enumerate);
	assert_null(th->be->verify);
	assert_null(th->be->spawn); /* the host's default argv, no binding */
	assert_int_equal(th->call.ndevices, 0);
	th_free(th);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(off_macos_metal_is_unavailable),
	};

	return cmocka_run_group_tests_name("metal backend", tests, NULL, NULL);
}
