/* test_build_progress.c - reading a build tool's progress out of its output lines
 * (rb_build_progress_parse): real cmake/make, ninja and cargo lines, and lines that only look
 * like progress. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "install/build.h"

static bool parse(const char *line, uint64_t *done, uint64_t *total)
{
	*done = *total = 12345; /* untouched on failure */
	return rb_build_progress_parse(line, strlen(line), done, total);
}

static void expect(const char *line, uint64_t done, uint64_t total)
{
	uint64_t d, t;
	if (!parse(line, &d, &t))
		fail_msg("no progress read from '%s'", line);
	if (d != done || t != total)
		fail_msg("'%s': read %llu/%llu, expected %llu/%llu", line, (unsigned long long)d,
			 (unsigned long long)t, (unsigned long long)done, (unsigned long long)total);
}

static void expect_none(const char *line)
{
	uint64_t d, t;
	if (parse(line, &d, &t))
		fail_msg("progress %llu/%llu read from '%s', which has none", (unsigned long long)d,
			 (unsigned long long)t, line);
	assert_int_equal(d, 12345);
	assert_int_equal(t, 12345);
}

static void test_cmake_make(void **state)
{
	(void)state;
	expect("[  0%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o", 0, 100);
	expect("[  4%] Building CXX object ggml/src/CMakeFiles/ggml-base.dir/ggml.cpp.o", 4, 100);
	expect("[ 42%] Linking CXX shared library ../../bin/libggml-base.so", 42, 100);
	expect("[100%] Built target llama-server", 100, 100);
	expect("[ 57%]", 57, 100);
	/* colour (CLICOLOR_FORCE) and indentation */
	expect("\x1b[32m[ 12%] \x1b[0m\x1b[32mBuilding C object x.o\x1b[0m", 12, 100);
	expect("\x1b[1m\x1b[32m[ 13%]\x1b[0m Built target ggml", 13, 100);
	expect("   [ 42%] Building C object x.o", 42, 100);
}

static void test_ninja(void **state)
{
	(void)state;
	expect("[1/456] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o", 1, 456);
	expect("[123/456] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o", 123, 456);
	expect("[456/456] Linking CXX executable bin/llama-server", 456, 456);
	expect("[0/1] Re-running CMake...", 0, 1);
	expect("[1000000000/1000000000] at the limit", 1000000000ULL, 1000000000ULL);
}

static void test_cargo(void **state)
{
	(void)state;
	expect("    Building [=======>                  ] 34/123: serde, syn, proc-macro2", 34, 123);
	expect("    Building [                          ] 0/123: serde", 0, 123);
	expect("    Building [=========================>] 123/123", 123, 123);
	/* the bar redrawn with carriage returns in one "line": the last figures win */
	expect("    Building [==>   ] 3/10: a\r    Building [====> ] 5/10: b\r\x1b[K   Compiling c v1.0",
	       5, 10);
	expect("   Compiling serde v1.0.0\r    Building [=====>] 9/10: llm-worker", 9, 10);
}

static void test_not_progress(void **state)
{
	(void)state;
	expect_none("");
	expect_none("make[2]: Entering directory '/build/src'");
	expect_none("-- Configuring done (0.4s)");
	expect_none("   Compiling serde v1.0.200");
	expect_none("    Finished `release` profile [optimized] target(s) in 1m 02s");
	expect_none("note: [ 42%] is not at the start of this line");
	expect_none("gcc: warning: [1/2] inside");
	expect_none("[");
	expect_none("[]");
	expect_none("[%]");
	expect_none("[ %]");
	expect_none("[/]");
	expect_none("[info] starting");
	expect_none("[2024-05-01 12:00:00] log line");
}

static void test_hostile(void **state)
{
	(void)state;
	expect_none("[ 999%] Building more than everything");
	expect_none("[101%] Built");
	expect_none("[ 42% Building without the bracket");
	expect_none("[ 42%");
	expect_none("[ 42%]Building glued on");
	expect_none("[-5%] negative");
	expect_none("[ 4 2%] split");
	expect_none("[5/3] more done than there is");
	expect_none("[0/0] nothing at all");
	expect_none("[7/0] divide by zero");
	expect_none("[1/2 missing bracket");
	expect_none("[1/2");
	expect_none("[ 1/2] padded count");
	expect_none("[-1/2] negative");
	expect_none("[1/-2] negative");
	expect_none("[1000000001/1000000001] above the limit");
	expect_none("[99999999999/99999999999] eleven digits");
	expect_none("[18446744073709551617/18446744073709551617] wraps a uint64");
	expect_none("[00000000000000000000000000000000000000001/2] endless zeros");
	expect_none("[100000000000000000000000000000000000000%] huge percent");
	expect_none("    Building [==>   ] 5/4: more done than there is");
	expect_none("    Building [==>   ] 3/: cut");
	expect_none("    Building [==>   ] /4: cut");
	expect_none("    Building [==x   ] 3/4: not a bar");
	expect_none("    Building [==>    3/4: no bracket");
	expect_none("    Building [==>]3/4: glued");
	expect_none("    Building [==>] 3/4x: glued after");
	expect_none("    Building 3/4");
	expect_none("    Buildings [==>] 3/4");
	expect_none("\x1b[");
	expect_none("\x1b[32");
	expect_none("\r\r\r");
	/* a line of nothing but a huge run of digits, and an unterminated colour escape */
	char big[4096];
	big[0] = '[';
	memset(big + 1, '9', sizeof(big) - 3);
	big[sizeof(big) - 2] = '%';
	big[sizeof(big) - 1] = '\0';
	expect_none(big);
	/* length-bounded: the progress must not be read past `len` */
	uint64_t d = 0, t = 0;
	assert_false(rb_build_progress_parse("[ 42%] x", 5, &d, &t));
	assert_true(rb_build_progress_parse("[ 42%] x", 6, &d, &t));
	assert_int_equal(d, 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmake_make),
		cmocka_unit_test(test_ninja),
		cmocka_unit_test(test_cargo),
		cmocka_unit_test(test_not_progress),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
