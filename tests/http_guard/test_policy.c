/*
 * test_policy.c - rb_http_guard: which Host names a server answers to (DNS rebinding), the
 * allow-lists for origins and hosts, JSON content types and numeric settings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rb_http_guard.h"

static void lists_match_whole_items_case_insensitively(void **state)
{
	(void)state;
	const char *l = " http://localhost:8500 ,https://UI.example/ ";
	assert_true(rb_list_has(l, "http://localhost:8500", strlen("http://localhost:8500")));
	assert_true(rb_list_has(l, "https://ui.example", strlen("https://ui.example")));
	assert_true(rb_list_has(l, "https://ui.example/", strlen("https://ui.example/")));
	assert_false(rb_list_has(l, "http://localhost:850", strlen("http://localhost:850")));
	assert_false(rb_list_has(l, "http://localhost:85000", strlen("http://localhost:85000")));
	assert_false(rb_list_has(l, "null", 4));
	assert_false(rb_list_has("", "x", 1));
	assert_false(rb_list_has(NULL, "x", 1));
	assert_true(rb_list_has("a, *", "anything", 8));
}

static void a_loopback_bind_answers_to_loopback_names_only(void **state)
{
	(void)state;
	struct rb_host_policy p = { .bind = "127.0.0.1", .bind_loopback = true,
				    .hostname = "node7", .allowed_hosts = "gpu.lan" };
	const char *yes[] = { "127.0.0.1:7835", "localhost:7835", "LOCALHOST.", "[::1]:7835",
			      "node7", "Node7:1", "gpu.lan:7835", "127.0.0.1" };
	const char *no[] = { "evil.example:7835", "127.0.0.2:7835", "10.0.0.1", "localhost.evil",
			     "[::2]:7835", "[::1", ":7835", "", "node7.evil", "[evil]:1" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(rb_host_allowed(&p, yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(rb_host_allowed(&p, no[i]));
}

static void a_wildcard_bind_answers_to_address_literals(void **state)
{
	(void)state;
	struct rb_host_policy p = { .bind = "0.0.0.0", .bind_any = true, .hostname = "" };
	assert_true(rb_host_allowed(&p, "192.0.2.7:7835"));
	assert_true(rb_host_allowed(&p, "[2001:db8::1]:7835"));
	assert_true(rb_host_allowed(&p, "localhost"));
	assert_false(rb_host_allowed(&p, "attacker.example"));
	struct rb_host_policy q = { .bind = "192.0.2.7", .hostname = "" };
	assert_true(rb_host_allowed(&q, "192.0.2.7:1"));
	assert_false(rb_host_allowed(&q, "192.0.2.8:1"));
	assert_false(rb_host_allowed(&q, "localhost"));
	assert_true(rb_address_is_any("::"));
	assert_true(rb_address_is_loopback("127.3.4.5"));
	assert_false(rb_address_is_loopback("128.0.0.1"));
}

static void json_content_types(void **state)
{
	(void)state;
	assert_true(rb_is_json_type("application/json"));
	assert_true(rb_is_json_type(" Application/JSON; charset=utf-8"));
	assert_false(rb_is_json_type("text/plain"));
	assert_false(rb_is_json_type("application/jsonp"));
	assert_false(rb_is_json_type("application/x-www-form-urlencoded"));
	assert_false(rb_is_json_type(NULL));
}

static void numbers_from_the_environment(void **state)
{
	(void)state;
	unsetenv("RB_TEST_N");
	assert_int_equal(rb_env_uint("RB_TEST_N", 1, 10, 5), 5);
	setenv("RB_TEST_N", "7", 1);
	assert_int_equal(rb_env_uint("RB_TEST_N", 1, 10, 5), 7);
	const char *bad[] = { "11", "0", "-1", "7x", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("RB_TEST_N", bad[i], 1);
		assert_int_equal(rb_env_uint("RB_TEST_N", 1, 10, 5), 5);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lists_match_whole_items_case_insensitively),
		cmocka_unit_test(a_loopback_bind_answers_to_loopback_names_only),
		cmocka_unit_test(a_wildcard_bind_answers_to_address_literals),
		cmocka_unit_test(json_content_types),
		cmocka_unit_test(numbers_from_the_environment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
