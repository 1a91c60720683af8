/* test_pkgbuild.c - the PKGBUILD metadata reader: what it reads, and what it refuses. */
#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "install/pkgbuild.h"
#include "rb_fs.h"

static int parse(const char *text, const char *carch, struct rb_pkgbuild *pb, struct rb_err *err)
{
	return rb_pkgbuild_parse(text, strlen(text), carch, pb, err);
}

/* Fail the test with the reader's message when rc is not 0. */
static void assert_ok(int rc, const struct rb_err *err)
{
	if (rc)
		fail_msg("unexpected failure %d: %s", rc, err->msg);
}

/* Parse text that must fail; return the message. */
static const char *parse_fails(const char *text, struct rb_err *err)
{
	struct rb_pkgbuild pb;
	int rc = parse(text, "x86_64", &pb, err);
	rb_pkgbuild_release(&pb);
	assert_int_equal(rc, -RB_EINVAL);
	return err->msg;
}

#define HEAD "pkgname=w\npkgver=1.0\npkgrel=1\narch=('x86_64')\n"

static void test_reads_a_typical_pkgbuild(void **state)
{
	(void)state;
	const char *text =
		"# Maintainer: someone <a@b>\n"
		"pkgname=llm-worker\n"
		"pkgver=0.3.1\n"
		"pkgrel=2\n"
		"pkgdesc=\"An LLM worker (CPU)\"\n"
		"arch=('x86_64' 'aarch64')\n"
		"url='https://example.org/w'\n"
		"license=(MIT)\n"
		"depends=('gcc-libs')\n"
		"makedepends=(cmake git)\n"
		"source=(\"https://example.org/$pkgname-$pkgver.tar.gz\")\n"
		"sha256sums=('0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef')\n"
		"\n"
		"build() {\n"
		"  cd \"$srcdir/$pkgname-$pkgver\"\n"
		"  make\n"
		"}\n"
		"package() {\n"
		"  install -Dm755 w \"$pkgdir/usr/bin/w\"\n"
		"}\n";
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	assert_ok(parse(text, "x86_64", &pb, &err), &err);
	assert_string_equal(pb.pkgname, "llm-worker");
	assert_string_equal(pb.pkgver, "0.3.1");
	assert_string_equal(pb.pkgrel, "2");
	assert_string_equal(pb.pkgdesc, "An LLM worker (CPU)");
	assert_string_equal(pb.url, "https://example.org/w");
	assert_int_equal(pb.arch.n, 2);
	assert_string_equal(pb.arch.v[1], "aarch64");
	assert_string_equal(pb.license.v[0], "MIT");
	assert_int_equal(pb.makedepends.n, 2);
	assert_string_equal(pb.source.v[0], "https://example.org/llm-worker-0.3.1.tar.gz");
	assert_int_equal(pb.sha256sums.n, 1);
	assert_int_equal(pb.functions, RB_PKG_FN_BUILD | RB_PKG_FN_PACKAGE);
	assert_true(rb_pkgbuild_supports_arch(&pb, "aarch64"));
	assert_false(rb_pkgbuild_supports_arch(&pb, "riscv64"));
	assert_null(pb.epoch);
	rb_pkgbuild_release(&pb);
}

static void test_quotes_and_escapes(void **state)
{
	(void)state;
	const char *text = HEAD
		"pkgdesc='single $pkgname \"kept\"'\n"
		"url=\"dq \\\"q\\\" \\$x \\\\ \\a ${pkgname}\"\n"
		"license=(un\\ quoted 'a'\"b\"c \"\")\n";
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	assert_ok(parse(text, "x86_64", &pb, &err), &err);
	assert_string_equal(pb.pkgdesc, "single $pkgname \"kept\"");
	assert_string_equal(pb.url, "dq \"q\" $x \\ \\a w");
	assert_int_equal(pb.license.n, 3);
	assert_string_equal(pb.license.v[0], "un quoted");
	assert_string_equal(pb.license.v[1], "abc");
	assert_string_equal(pb.license.v[2], "");
	rb_pkgbuild_release(&pb);
}

static void test_multiline_arrays_and_comments(void **state)
{
	(void)state;
	const char *text = "pkgname=w # trailing comment\n"
			   "pkgver=1.0\\\n"
			   ".2\n"
			   "pkgrel=1; arch=(\n"
			   "  x86_64   # the usual one\n"
			   "  # a whole comment line with a ) in it\n"
			   "  aarch64\n"
			   ")\n"
			   "depends=(a#b 'c d'\n"
			   "\t e)\n"
			   "depends+=(f)\n";
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	assert_ok(parse(text, "x86_64", &pb, &err), &err);
	assert_string_equal(pb.pkgname, "w");
	assert_string_equal(pb.pkgver, "1.0.2");
	assert_int_equal(pb.arch.n, 2);
	assert_int_equal(pb.depends.n, 4);
	assert_string_equal(pb.depends.v[0], "a#b");
	assert_string_equal(pb.depends.v[1], "c d");
	assert_string_equal(pb.depends.v[3], "f");
	rb_pkgbuild_release(&pb);
}

static void test_expands_earlier_variables(void **state)
{
	(void)state;
	const char *text = "_tag=b4567\n"
			   "_name=llama\n"
			   "pkgname=${_name}-server\n"
			   "pkgver=${_tag#b}\n" /* operators are refused... */
			   "pkgver=0.${_tag}\n" /* ...but a later plain assignment wins */
			   "pkgrel=1\n"
			   "arch=(x86_64)\n"
			   "_files=(a.c b.c)\n"
			   "source=(\"x-$CARCH.tgz\" \"${_files[@]}\" ${_files[1]})\n"
			   "sha256sums=(SKIP SKIP SKIP SKIP)\n";
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	assert_ok(parse(text, "x86_64", &pb, &err), &err);
	assert_string_equal(pb.pkgname, "llama-server");
	assert_string_equal(pb.pkgver, "0.b4567");
	assert_int_equal(pb.source.n, 4);
	assert_string_equal(pb.source.v[0], "x-x86_64.tgz");
	assert_string_equal(pb.source.v[1], "a.c");
	assert_string_equal(pb.source.v[2], "b.c");
	assert_string_equal(pb.source.v[3], "b.c");
	rb_pkgbuild_release(&pb);
}

static void test_arch_specific_arrays(void **state)
{
	(void)state;
	const char *text = "pkgname=w\npkgver=1\npkgrel=1\narch=(x86_64 aarch64)\n"
			   "source=(common.patch)\nsha256sums=(" /* 64 x 'a' */
			   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa)\n"
			   "source_x86_64=(w-amd64.tgz)\n"
			   "sha256sums_x86_64=(bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb)\n"
			   "source_aarch64=(w-arm64.tgz w-extra.tgz)\n"
			   "sha256sums_aarch64=(SKIP SKIP)\n"
			   "depends_x86_64=(libx86)\n";
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	assert_ok(parse(text, "x86_64", &pb, &err), &err);
	assert_int_equal(pb.source.n, 2);
	assert_string_equal(pb.source.v[1], "w-amd64.tgz");
	assert_string_equal(pb.sha256sums.v[1],
			    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	assert_string_equal(pb.depends.v[0], "libx86");
	rb_pkgbuild_release(&pb);
	assert_ok(parse(text, "aarch64", &pb, &err), &err);
	assert_int_equal(pb.source.n, 3);
	assert_string_equal(pb.source.v[2], "w-extra.tgz");
	assert_int_equal(pb.depends.n, 0);
	rb_pkgbuild_release(&pb);
}

static void test_functions_are_detected_not_run(void **state)
{
	(void)state;
	const char *text = HEAD
		"prepare() { echo '}' \"}\" \\} ${x} $(echo \"}\"); }\n"
		"function check {\n"
		"  cat <<EOF\n"
		"  } unbalanced { in a heredoc\n"
		"EOF\n"
		"  # a comment with }\n"
		"  case $x in a) echo a;; esac\n"
		"}\n"
		"package_helper ( )\n"
		"{\n"
		"  :\n"
		"}\n"
		"pkgdesc=after\n";
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	assert_ok(parse(text, "x86_64", &pb, &err), &err);
	assert_int_equal(pb.functions, RB_PKG_FN_PREPARE | RB_PKG_FN_CHECK);
	assert_string_equal(pb.pkgdesc, "after");
	rb_pkgbuild_release(&pb);
}

static void test_missing_required_fields(void **state)
{
	(void)state;
	struct rb_err err = RB_ERR_INIT;
	assert_non_null(strstr(parse_fails("pkgver=1\npkgrel=1\narch=(any)\n", &err),
			       "does not set 'pkgname'"));
	assert_non_null(strstr(parse_fails("pkgname=w\npkgrel=1\narch=(any)\n", &err),
			       "does not set 'pkgver'"));
	assert_non_null(strstr(parse_fails("pkgname=w\npkgver=1\narch=(any)\n", &err),
			       "does not set 'pkgrel'"));
	assert_non_null(strstr(parse_fails("pkgname=w\npkgver=1\npkgrel=1\n", &err),
			       "does not set 'arch'"));
}

static void test_refuses_what_needs_running_naming_the_line(void **state)
{
	(void)state;
	struct rb_err err = RB_ERR_INIT;
	const char *m = parse_fails(HEAD "if true; then pkgdesc=x; fi\n", &err);
	assert_non_null(strstr(m, "line 5"));
	assert_non_null(strstr(m, "'if' is a command"));
	m = parse_fails(HEAD "pkgdesc=$(uname -m)\n", &err);
	assert_non_null(strstr(m, "'pkgdesc' cannot be read: line 5: command substitution"));
	m = parse_fails("pkgname=w\npkgver=$undefined\npkgrel=1\narch=(any)\n", &err);
	assert_non_null(strstr(m, "line 2: '$undefined' is not set"));
	m = parse_fails(HEAD "pkgdesc='open\n", &err);
	assert_non_null(strstr(m, "line 5: unterminated single quote"));
	m = parse_fails(HEAD "source=(a b\n", &err);
	assert_non_null(strstr(m, "line 5: array is not closed"));
	m = parse_fails(HEAD "build() {\n echo hi\n", &err);
	assert_non_null(strstr(m, "line 5: function body is not closed"));
	m = parse_fails("pkgname=w\npkgver=1-2\npkgrel=1\narch=(any)\n", &err);
	assert_non_null(strstr(m, "line 2: invalid pkgver '1-2'"));
	m = parse_fails("pkgname=(a b)\npkgver=1\npkgrel=1\narch=(any)\n", &err);
	assert_non_null(strstr(m, "split packages"));
}

static void test_unreadable_variables_only_matter_when_used(void **state)
{
	(void)state;
	const char *text = HEAD "_commit=$(git rev-parse HEAD)\n_x=${pkgver%.*}\n";
	struct rb_pkgbuild pb;
	struct rb_err err = RB_ERR_INIT;
	assert_ok(parse(text, "x86_64", &pb, &err), &err);
	rb_pkgbuild_release(&pb);
	const char *m = parse_fails(HEAD "_x=${pkgver%.*}\nurl=https://x/$_x\n", &err);
	assert_non_null(strstr(m, "'url' cannot be read: line 5: expansion '${pkgver%.*}'"));
}

static void test_sources_and_checksums_must_pair(void **state)
{
	(void)state;
	struct rb_err err = RB_ERR_INIT;
	const char *m = parse_fails(HEAD "source=(a b)\nsha256sums=(SKIP)\n", &err);
	assert_non_null(strstr(m, "line 6: 'sha256sums' has 1 entry but 'source' lists 2 sources"));
	m = parse_fails(HEAD "source_x86_64=(a)\n", &err);
	assert_non_null(strstr(m, "no 'sha256sums_x86_64'"));
}

static void test_source_entries(void **state)
{
	(void)state;
	struct rb_source s;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_source_parse("https://h/x/w-1.tar.gz?raw=1", &s, &err), 0);
	assert_int_equal(s.kind, RB_SOURCE_HTTP);
	assert_string_equal(s.name, "w-1.tar.gz");
	assert_int_equal(rb_source_parse("src.tgz::https://h/dl/123", &s, &err), 0);
	assert_string_equal(s.name, "src.tgz");
	assert_string_equal(s.url, "https://h/dl/123");
	assert_int_equal(rb_source_parse("git+https://github.com/ggml-org/llama.cpp.git#tag=b4567", &s,
					 &err), 0);
	assert_int_equal(s.kind, RB_SOURCE_GIT);
	assert_string_equal(s.name, "llama.cpp");
	assert_string_equal(s.url, "https://github.com/ggml-org/llama.cpp.git");
	assert_string_equal(s.ref_kind, "tag");
	assert_string_equal(s.ref, "b4567");
	assert_int_equal(rb_source_parse("repo::git+file:///srv/r#commit=abc123", &s, &err), 0);
	assert_string_equal(s.name, "repo");
	assert_string_equal(s.ref_kind, "commit");
	assert_int_equal(rb_source_parse("fix.patch", &s, &err), 0);
	assert_int_equal(s.kind, RB_SOURCE_LOCAL);
	assert_int_equal(rb_source_parse("file:///tmp/a.zip", &s, &err), 0);
	assert_int_equal(s.kind, RB_SOURCE_FILE_URL);
	assert_int_equal(rb_source_parse("ftp://h/a.tgz", &s, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "unsupported URL scheme"));
	assert_int_equal(rb_source_parse("git+https://h/r.git#rev=1", &s, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "unknown fragment '#rev=1'"));
	assert_int_equal(rb_source_parse("..::https://h/a", &s, &err), -RB_EINVAL);
	assert_int_equal(rb_source_parse("a/b::https://h/a", &s, &err), -RB_EINVAL);
	assert_int_equal(rb_source_archive_type("a.tar.zst"), 't');
	assert_int_equal(rb_source_archive_type("a.TGZ"), 't');
	assert_int_equal(rb_source_archive_type("a.zip"), 'z');
	assert_int_equal(rb_source_archive_type("a.patch"), 0);
}

static void test_checksum_rules(void **state)
{
	(void)state;
	struct rb_source file, git;
	struct rb_err err = RB_ERR_INIT;
	const char *h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	assert_int_equal(rb_source_parse("https://h/a.tgz", &file, &err), 0);
	assert_int_equal(rb_source_parse("git+https://h/r.git", &git, &err), 0);
	assert_int_equal(rb_source_check_sha256(&file, h, h, &err), 0);
	assert_int_equal(rb_source_check_sha256(&file,
		"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", h, &err), 0);
	assert_int_equal(rb_source_check_sha256(&git, "SKIP", NULL, &err), 0);
	assert_int_equal(rb_source_check_sha256(&file, "SKIP", h, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "accepted only for git sources"));
	assert_int_equal(rb_source_check_sha256(&file, "abc", h, &err), -RB_EINVAL);
	assert_int_equal(rb_source_check_sha256(&git, h, NULL, &err), -RB_EINVAL);
	const char *other = "0000000000000000000000000000000000000000000000000000000000000000";
	assert_int_equal(rb_source_check_sha256(&file, other, h, &err), -RB_EIO);
	assert_non_null(strstr(err.msg, other));
	assert_non_null(strstr(err.msg, h));
	assert_non_null(strstr(err.msg, "'a.tgz'"));
}

/* Every PKGBUILD the project ships must read cleanly (they use git sources and prepare()). */
static void test_shipped_pkgbuilds_read(void **state)
{
	(void)state;
	const char *src = getenv("RBEE_SRC");
	if (!src)
		skip();
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/packaging/catalog/pkgbuilds", src);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".PKGBUILD"))
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct rb_buf text = RB_BUF_INIT;
		struct rb_err err = RB_ERR_INIT;
		assert_ok(rb_fs_read_file(path, 1 << 20, &text, &err), &err);
		for (int a = 0; a < 2; a++) {
			struct rb_pkgbuild pb;
			int rc = rb_pkgbuild_parse(text.data, text.len, a ? "aarch64" : "x86_64", &pb, &err);
			if (rc)
				fail_msg("%s: %s", de->d_name, err.msg);
			assert_true(pb.functions & RB_PKG_FN_PACKAGE);
			for (size_t i = 0; i < pb.source.n; i++) {
				struct rb_source s;
				assert_ok(rb_source_parse(pb.source.v[i], &s, &err), &err);
			}
			rb_pkgbuild_release(&pb);
		}
		rb_buf_release(&text);
		n++;
	}
	closedir(d);
	assert_true(n > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_a_typical_pkgbuild),
		cmocka_unit_test(test_quotes_and_escapes),
		cmocka_unit_test(test_multiline_arrays_and_comments),
		cmocka_unit_test(test_expands_earlier_variables),
		cmocka_unit_test(test_arch_specific_arrays),
		cmocka_unit_test(test_functions_are_detected_not_run),
		cmocka_unit_test(test_missing_required_fields),
		cmocka_unit_test(test_refuses_what_needs_running_naming_the_line),
		cmocka_unit_test(test_unreadable_variables_only_matter_when_used),
		cmocka_unit_test(test_sources_and_checksums_must_pair),
		cmocka_unit_test(test_source_entries),
		cmocka_unit_test(test_checksum_rules),
		cmocka_unit_test(test_shipped_pkgbuilds_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
