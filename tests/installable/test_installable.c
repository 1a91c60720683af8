/*
 * test_installable.c - what decides whether a catalog entry can be installed here, before
 * anything is fetched (core/hive/install/installable.c), and that every SHIPPED catalog entry agrees
 * with its PKGBUILD, read with the hive's own catalog and PKGBUILD readers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "install/installable.h"
#include "install/pkgbuild.h"
#include "rb_catalog_dir.h"
#include "rb_fs.h"

/* ---- makedepends names -> commands ---- */

static void test_mapping(void **state)
{
	(void)state;
	const char *deb = NULL;
	assert_string_equal(rb_makedepend_command("cargo", &deb), "cargo");
	assert_string_equal(deb, "cargo");
	assert_string_equal(rb_makedepend_command("rust", &deb), "rustc");
	assert_string_equal(deb, "rustc");
	assert_string_equal(rb_makedepend_command("pkgconf", &deb), "pkg-config");
	assert_string_equal(rb_makedepend_command("ninja", &deb), "ninja");
	assert_string_equal(deb, "ninja-build");
	for (const char *const *n = (const char *const[]){ "cmake", "git", "gcc", "make", NULL }; *n; n++)
		assert_string_equal(rb_makedepend_command(*n, NULL), *n);
	/* Libraries and unknown names are not checked. */
	assert_null(rb_makedepend_command("gcc-libs", NULL));
	assert_null(rb_makedepend_command("openssl", NULL));
	assert_null(rb_makedepend_command("no-such-tool-xyz", NULL));
	assert_string_equal(rb_installable_path(NULL), "/usr/local/bin:/usr/bin:/bin");
	assert_string_equal(rb_installable_path(""), "/usr/local/bin:/usr/bin:/bin");
}

/* ---- tools on a PATH we make ---- */

struct tmp {
	char dir[256];  /* 0755: reachable by anybody */
	char bin[300];  /* dir/bin */
	char priv[300]; /* dir/priv (0700) /bin */
};

static void put_exec(const char *dir, const char *name)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\nexit 0\n", f);
	fclose(f);
	assert_int_equal(chmod(p, 0755), 0);
}

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/rbee-installable.XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	chmod(t->dir, 0755);
	snprintf(t->bin, sizeof(t->bin), "%s/bin", t->dir);
	snprintf(t->priv, sizeof(t->priv), "%s/priv", t->dir);
	mkdir(t->bin, 0755);
	mkdir(t->priv, 0700);
	chmod(t->priv, 0700);
	char pb[400];
	snprintf(pb, sizeof(pb), "%s/bin", t->priv);
	mkdir(pb, 0755);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;
	struct rb_err err = RB_ERR_INIT;
	rb_fs_rm_rf(t->dir, &err);
	free(t);
	return 0;
}

static void test_tools_found_and_missing(void **state)
{
	struct tmp *t = *state;
	put_exec(t->bin, "cmake");
	put_exec(t->bin, "git");
	struct rb_err err = RB_ERR_INIT;
	/* Unknown names and library names are not checked; found tools pass. */
	const char *ok[] = { "cmake", "git", "gcc-libs", "openssl", "no-such-tool-xyz" };
	assert_int_equal(rb_installable_tools("w", ok, 5, t->bin, &err), 0);

	const char *need[] = { "cmake", "cargo" };
	assert_int_equal(rb_installable_tools("llm-worker-rbee-cpu", need, 2, t->bin, &err),
			 -RB_EUNAVAIL);
	char want[1024];
	snprintf(want, sizeof(want), "worker 'llm-worker-rbee-cpu' needs 'cargo' to build, which is "
		 "not on this node's PATH (%s): install it (Debian: apt-get install cargo)", t->bin);
	assert_string_equal(err.msg, want);

	/* Several, each named once (pkgconf and pkg-config are one command). */
	const char *more[] = { "rust", "cargo", "pkgconf", "pkg-config", "cmake" };
	rb_err_clear(&err);
	assert_int_equal(rb_installable_tools("w", more, 5, t->bin, &err), -RB_EUNAVAIL);
	assert_non_null(strstr(err.msg, "needs 'rustc', 'cargo', 'pkg-config' to build, which are not"));
	assert_non_null(strstr(err.msg, "install them (Debian: apt-get install rustc cargo pkgconf)"));

	/* Once it is there, it passes: nothing is cached. */
	put_exec(t->bin, "cargo");
	assert_int_equal(rb_installable_tools("w", need, 2, t->bin, &err), 0);

	/* A file that is not executable is not a tool. */
	char p[512];
	snprintf(p, sizeof(p), "%s/make", t->bin);
	FILE *f = fopen(p, "w");
	fclose(f);
	const char *mk[] = { "make" };
	assert_int_equal(rb_installable_tools("w", mk, 1, t->bin, &err), -RB_EUNAVAIL);
}

/* As root, builds run as a build uid with no groups: a tool below a directory only root may
 * enter (a rustup cargo in /root/.cargo/bin) is not one the build can run. */
static void test_tools_build_user(void **state)
{
	struct tmp *t = *state;
	if (geteuid() != 0)
		skip();
	char pb[400], path[900];
	snprintf(pb, sizeof(pb), "%s/bin", t->priv);
	put_exec(pb, "cargo");
	struct rb_err err = RB_ERR_INIT;
	const char *need[] = { "cargo" };
	assert_int_equal(rb_installable_tools("w", need, 1, pb, &err), -RB_EUNAVAIL);
	assert_non_null(strstr(err.msg, "the build user cannot run it"));
	char dirmode[512];
	snprintf(dirmode, sizeof(dirmode), "directory '%s' has mode 0700", t->priv);
	assert_non_null(strstr(err.msg, dirmode));
	/* A reachable one later on the PATH is what bash finds for the build user. */
	put_exec(t->bin, "cargo");
	snprintf(path, sizeof(path), "%s:%s", pb, t->bin);
	rb_err_clear(&err);
	assert_int_equal(rb_installable_tools("w", need, 1, path, &err), 0);
	/* A symlink into the private directory leads where the build user cannot go. */
	char link[512], target[512];
	snprintf(link, sizeof(link), "%s/rustc", t->bin);
	snprintf(target, sizeof(target), "%s/cargo", pb);
	assert_int_equal(symlink(target, link), 0);
	const char *rust[] = { "rust" };
	assert_int_equal(rb_installable_tools("w", rust, 1, t->bin, &err), -RB_EUNAVAIL);
	assert_non_null(strstr(err.msg, "the build user cannot run it"));
}

/* ---- version agreement ---- */

static void test_version(void **state)
{
	(void)state;
	struct rb_err err = RB_ERR_INIT;
	struct json_object *e = json_tokener_parse("{\"id\":\"x\",\"version\":\"b4467\"}");
	assert_int_equal(rb_installable_version(e, "x", "b4467", &err), 0);
	assert_int_equal(rb_installable_version(e, "x", "0.4.0", &err), -RB_EINVAL);
	assert_string_equal(err.msg, "catalog entry 'x' says version b4467 but its PKGBUILD's pkgver "
			    "is 0.4.0: fix the catalog");
	json_object_put(e);
}

/* ---- the shipped catalog ---- */

static void warn_fail(void *arg, const char *msg)
{
	(void)arg;
	fail_msg("%s", msg);
}

static void test_shipped_versions_agree(void **state)
{
	(void)state;
	const char *src = getenv("RBEE_SRC");
	assert_non_null(src);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/packaging/catalog", src);
	struct rb_catalog_dir cat;
	struct rb_err err = RB_ERR_INIT;
	rb_catalog_dir_init(&cat);
	if (rb_catalog_dir_load(&cat, dir, warn_fail, NULL, &err))
		fail_msg("%s", err.msg);
	assert_true(cat.n >= 6);
	for (size_t i = 0; i < cat.n; i++) {
		const struct rb_catalog_item *it = &cat.items[i];
		assert_non_null(it->pkgbuild_path);
		struct rb_buf text = RB_BUF_INIT;
		if (rb_fs_read_file(it->pkgbuild_path, 1u << 20, &text, &err))
			fail_msg("%s", err.msg);
		/* Read for each architecture the entry names, as a node of that kind would. */
		struct json_object *archs = json_object_object_get(it->entry, "architectures");
		for (size_t a = 0; a < json_object_array_length(archs); a++) {
			const char *carch = json_object_get_string(json_object_array_get_idx(archs, a));
			struct rb_pkgbuild pb;
			if (rb_pkgbuild_parse(text.data, text.len, carch, &pb, &err))
				fail_msg("%s: %s", it->pkgbuild_path, err.msg);
			if (rb_installable_version(it->entry, it->id, pb.pkgver, &err))
				fail_msg("%s", err.msg);
			assert_string_equal(pb.pkgname, it->id);
			rb_pkgbuild_release(&pb);
		}
		print_message("%s: version %s agrees with its PKGBUILD\n", it->id,
			      json_object_get_string(json_object_object_get(it->entry, "version")));
		rb_buf_release(&text);
	}
	rb_catalog_dir_release(&cat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapping),
		cmocka_unit_test_setup_teardown(test_tools_found_and_missing, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_tools_build_user, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_shipped_versions_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
