/*
 * test_pkgbuild_budgets.c - the PKGBUILD reader's budgets: input built to exhaust the stack, the
 * heap or the CPU is refused with a message naming the budget, and honest input just under a
 * budget still reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "install/pkgbuild.h"
#include "rb_buf.h"

#define HEAD "pkgname=w\npkgver=1.0\npkgrel=1\narch=('x86_64')\n"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse `text`; returns rc, message in err. Each parse must end within 5 s (no hang). */
static int parse(const struct rb_buf *text, struct rb_err *err)
{
	struct rb_pkgbuild pb;
	double t0 = now_s();
	int rc = rb_pkgbuild_parse(text->data, text->len, "x86_64", &pb, err);
	rb_pkgbuild_release(&pb);
	double took = now_s() - t0;
	if (took > 5.0)
		fail_msg("the parse took %.1f s", took);
	return rc;
}

static void expect_refused(const struct rb_buf *text, const char *needle)
{
	struct rb_err err = RB_ERR_INIT;
	int rc = parse(text, &err);
	if (rc != -RB_EINVAL || !strstr(err.msg, needle))
		fail_msg("expected RB_EINVAL with '%s', got %d: '%s'", needle, rc, err.msg);
}

static void expect_read(const struct rb_buf *text)
{
	struct rb_err err = RB_ERR_INIT;
	int rc = parse(text, &err);
	if (rc)
		fail_msg("expected the PKGBUILD to read, got %d: '%s'", rc, err.msg);
}

/* 800 KB of `a=1 a=1 ...` on one line: the reader used to recurse once per assignment. */
static void test_long_line_of_assignments_reads(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD);
	while (t.len < 800u << 10)
		rb_buf_adds(&t, "a=1 ");
	rb_buf_adds(&t, "\n");
	expect_read(&t);
	rb_buf_release(&t);
}

/* `export export ... a=1`: the prefix used to recurse too. */
static void test_long_run_of_export_reads(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD);
	while (t.len < 800u << 10)
		rb_buf_adds(&t, "export ");
	rb_buf_adds(&t, "a=1\n");
	expect_read(&t);
	rb_buf_release(&t);
}

/* 26 lines of a="$a$a" ask for 2^26 times the first value: refused by the expansion budget. */
static void test_doubling_value_is_refused(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD "a=0123456789abcdef\n");
	for (int i = 0; i < 26; i++)
		rb_buf_adds(&t, "a=\"$a$a\"\n");
	expect_refused(&t, "variable expansions produce more than 1024 KiB");
	/* and the line is named: 16 bytes doubled passes 1 MiB of output at the 16th line */
	struct rb_err err = RB_ERR_INIT;
	parse(&t, &err);
	assert_non_null(strstr(err.msg, "PKGBUILD line "));
	rb_buf_release(&t);
}

/* Doubling an array of empty strings costs no bytes of text: each element is charged. */
static void test_doubling_array_of_empty_strings_is_refused(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD "a=('' '')\n");
	for (int i = 0; i < 40; i++)
		rb_buf_adds(&t, "a=(\"${a[@]}\" \"${a[@]}\")\n");
	expect_refused(&t, "variable expansions produce more than");
	rb_buf_release(&t);
}

/* a+=x a hundred thousand times would copy the growing value each time (quadratic). */
static void test_long_run_of_scalar_appends_is_refused(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD "a=x\n");
	for (int i = 0; i < 100000; i++)
		rb_buf_adds(&t, "a+=xxxxxxxx\n");
	expect_refused(&t, "variable expansions produce more than");
	rb_buf_release(&t);
}

/* Ordinary use of expansions stays far inside the budget. */
static void test_ordinary_expansions_read(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD "_base=https://example.org/releases\n");
	for (int i = 0; i < 2000; i++)
		rb_buf_addf(&t, "_v%d=\"$_base/$pkgname-$pkgver-%d\"\n", i % 500, i);
	rb_buf_adds(&t, "a=x\n");
	for (int i = 0; i < 1000; i++)
		rb_buf_adds(&t, "a+=y\n");
	expect_read(&t);
	rb_buf_release(&t);
}

static void nested_subst(struct rb_buf *t, size_t levels)
{
	rb_buf_adds(t, HEAD "build() {\n  x=");
	for (size_t i = 0; i < levels; i++)
		rb_buf_adds(t, "$(");
	rb_buf_adds(t, "true");
	for (size_t i = 0; i < levels; i++)
		rb_buf_adds(t, ")");
	rb_buf_adds(t, "\n}\n");
}

/* 600 KB of nested $( in a function body: skip_shell used to recurse per level. */
static void test_deep_nesting_in_a_function_is_refused(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	nested_subst(&t, 300u << 10);
	expect_refused(&t, "more than 64 levels deep");
	rb_buf_release(&t);
	/* the same through double quotes: "$("$("$(... */
	rb_buf_adds(&t, HEAD "build() {\n  x=");
	while (t.len < 600u << 10)
		rb_buf_adds(&t, "\"$(");
	rb_buf_adds(&t, "\n}\n");
	expect_refused(&t, "more than 64 levels deep");
	rb_buf_release(&t);
}

/* Nesting just inside the budget reads, and the function is found. */
static void test_nesting_inside_the_budget_reads(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	nested_subst(&t, RB_PKGBUILD_MAX_DEPTH - 1);
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_pkgbuild_parse(t.data, t.len, "x86_64", &pb, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_true(pb.functions & RB_PKG_FN_BUILD);
	rb_pkgbuild_release(&pb);
	rb_buf_release(&t);
}

/* Unbalanced nesting still reports where it opened, not a crash. */
static void test_unterminated_nesting_names_the_line(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD "build() {\n  x=\"$(echo\n}\n");
	expect_refused(&t, "'(' is not closed with ')'");
	rb_buf_release(&t);
}

/* Thousands of distinct variables would make every lookup a long scan. */
static void test_too_many_variables_are_refused(void **state)
{
	(void)state;
	struct rb_buf t = RB_BUF_INIT;
	rb_buf_adds(&t, HEAD);
	for (int i = 0; i < 50000; i++)
		rb_buf_addf(&t, "v%d=1\n", i);
	expect_refused(&t, "more than 1024 variables are assigned");
	rb_buf_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_line_of_assignments_reads),
		cmocka_unit_test(test_long_run_of_export_reads),
		cmocka_unit_test(test_doubling_value_is_refused),
		cmocka_unit_test(test_doubling_array_of_empty_strings_is_refused),
		cmocka_unit_test(test_long_run_of_scalar_appends_is_refused),
		cmocka_unit_test(test_ordinary_expansions_read),
		cmocka_unit_test(test_deep_nesting_in_a_function_is_refused),
		cmocka_unit_test(test_nesting_inside_the_budget_reads),
		cmocka_unit_test(test_unterminated_nesting_names_the_line),
		cmocka_unit_test(test_too_many_variables_are_refused),
	};
	/* RBEE_TEST_FILTER=<pattern> runs some (to see each fail alone against an old reader). */
	if (getenv("RBEE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("RBEE_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
