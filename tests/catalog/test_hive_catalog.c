/*
 * test_hive_catalog.c - the hive's catalog source (core/hive/install/catalog.c) in directory and
 * file:// mode against tests/catalog/fixtures/catalog, reference resolution in both modes, and
 * the errors for a catalog that is missing or unreachable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "install/catalog.h"
#include "hive.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "rb_json.h"

static char fixture[4096];

static struct rb_hive *hive_with(const char *catalog)
{
	static struct rb_hive hive;
	memset(&hive, 0, sizeof(hive));
	snprintf(hive.cfg.catalog, sizeof(hive.cfg.catalog), "%s", catalog);
	return &hive;
}

static void contains(const char *msg, const char *expect)
{
	if (!strstr(msg, expect))
		fail_msg("message '%s' lacks '%s'", msg, expect);
}

static void warn_count(void *arg, const char *msg)
{
	(void)msg;
	(*(int *)arg)++;
}

static void directory_lists_valid_entries_sorted(void **s)
{
	(void)s;
	struct json_object *arr;
	struct rb_err err = RB_ERR_INIT;
	int warnings = 0;
	assert_int_equal(rb_catalog_list_warn(hive_with(fixture), &arr, warn_count, &warnings, &err), 0);
	assert_int_equal(json_object_array_length(arr), 3);
	assert_int_equal(warnings, 4); /* broken, missing-field, wrong-id, no-pkgbuild */
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 0), "id"), "test-worker-a");
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 1), "id"), "test-worker-b");
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 2), "id"), "test-worker-remote");
	/* pkgbuild_url as rbee-catalog serves it: the route, or the remote URL as written */
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 1), "pkgbuild_url"),
			    "/workers/test-worker-b/PKGBUILD");
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 2), "pkgbuild_url"),
			    "https://example.invalid/pkgbuilds/remote.PKGBUILD");
	json_object_put(arr);
}

static void file_url_is_directory_mode(void **s)
{
	(void)s;
	char url[4200];
	snprintf(url, sizeof(url), "file://%s", fixture);
	struct json_object *arr;
	assert_int_equal(rb_catalog_list(hive_with(url), &arr, NULL), 0);
	assert_int_equal(json_object_array_length(arr), 3);
	json_object_put(arr);
	char expect[4200];
	snprintf(expect, sizeof(expect), "directory '%s'", fixture);
	assert_string_equal(rb_catalog_source(hive_with(url)), expect);
}

static void get_known_unknown_and_malformed(void **s)
{
	(void)s;
	struct rb_hive *h = hive_with(fixture);
	struct json_object *e;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_get(h, "test-worker-b", &e, &err), 0);
	assert_string_equal(rb_json_str(e, "x_vendor_note"), "unknown fields pass through");
	json_object_put(e);
	assert_int_equal(rb_catalog_get(h, "nope", &e, &err), -RB_ENOTFOUND);
	contains(err.msg, "worker 'nope' not found in catalog '");
	assert_null(e);
	assert_int_equal(rb_catalog_get(h, "../workers/test-worker-a", &e, &err), -RB_ENOTFOUND);
	assert_int_equal(rb_catalog_get(h, "missing-field", &e, &err), -RB_EUNAVAIL);
	contains(err.msg, "missing-field.json' is malformed: field 'platforms' is missing");
}

static void pkgbuild_text_comes_from_the_named_file(void **s)
{
	(void)s;
	struct rb_buf text = RB_BUF_INIT, want = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	char path[4200];
	snprintf(path, sizeof(path), "%s/pkgbuilds/custom-b.PKGBUILD", fixture);
	assert_int_equal(rb_fs_read_file(path, 1 << 20, &want, &err), 0);
	assert_int_equal(rb_catalog_pkgbuild(hive_with(fixture), "test-worker-b", &text, &err), 0);
	assert_string_equal(text.data, want.data);
	assert_int_equal(rb_catalog_pkgbuild(hive_with(fixture), "nope", &text, &err), -RB_ENOTFOUND);
	rb_buf_release(&text);
	rb_buf_release(&want);
}

static void directory_resolve_stays_inside(void **s)
{
	(void)s;
	struct rb_hive *h = hive_with(fixture);
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_resolve(h, "pkgbuilds/custom-b.PKGBUILD", &out, &err), 0);
	contains(out.data, "/tests/catalog/fixtures/catalog/pkgbuilds/custom-b.PKGBUILD");
	assert_int_equal(out.data[0], '/');
	assert_int_equal(rb_catalog_resolve(h, "../CMakeLists.txt", &out, &err), -RB_EINVAL);
	assert_int_equal(rb_catalog_resolve(h, "/etc/passwd", &out, &err), -RB_EINVAL);
	assert_int_equal(rb_catalog_resolve(h, "sources/none.tar.gz", &out, &err), -RB_ENOTFOUND);
	assert_int_equal(rb_catalog_resolve(h, "https://example.org/a.tar.gz", &out, &err), 0);
	assert_string_equal(out.data, "https://example.org/a.tar.gz");
	rb_buf_release(&out);
}

static void directory_resolve_refuses_symlink_escapes(void **s)
{
	(void)s;
	char dir[] = "/tmp/rbee-catalog-test.XXXXXX", link[256];
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/out", dir);
	assert_int_equal(symlink("/etc", link), 0);
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_resolve(hive_with(dir), "out/hostname", &out, &err), -RB_EINVAL);
	contains(err.msg, "leads out of the catalog directory");
	unlink(link);
	rmdir(dir);
	rb_buf_release(&out);
}

static void http_resolve_against_catalog_url(void **s)
{
	(void)s;
	struct rb_hive *h = hive_with("http://catalog.example:8787/rbee/");
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_resolve(h, "sources/w.tar.gz", &out, &err), 0);
	assert_string_equal(out.data, "http://catalog.example:8787/rbee/sources/w.tar.gz");
	assert_int_equal(rb_catalog_resolve(h, "/workers/w/PKGBUILD", &out, &err), 0);
	assert_string_equal(out.data, "http://catalog.example:8787/workers/w/PKGBUILD");
	assert_int_equal(rb_catalog_resolve(h, "git+https://x/y.git#tag=v1", &out, &err), 0);
	assert_string_equal(out.data, "git+https://x/y.git#tag=v1");
	assert_int_equal(rb_catalog_resolve(h, "../secret", &out, &err), -RB_EINVAL);
	assert_string_equal(rb_catalog_source(h), "http://catalog.example:8787/rbee/");
	rb_buf_release(&out);
}

static void missing_directory_is_unavailable(void **s)
{
	(void)s;
	struct rb_hive *h = hive_with("/nonexistent/rbee-catalog");
	struct json_object *o;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_list(h, &o, &err), -RB_EUNAVAIL);
	contains(err.msg, "cannot read the worker catalog directory '/nonexistent/rbee-catalog'");
	assert_int_equal(rb_catalog_get(h, "x", &o, &err), -RB_EUNAVAIL);
	contains(err.msg, "'/nonexistent/rbee-catalog' is not a worker catalog");
}

static void unreachable_server_is_unavailable(void **s)
{
	(void)s;
	struct rb_hive *h = hive_with("http://127.0.0.1:1");
	struct json_object *o;
	struct rb_buf text = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_list(h, &o, &err), -RB_EUNAVAIL);
	contains(err.msg, "cannot reach the worker catalog at 'http://127.0.0.1:1': ");
	assert_int_equal(rb_catalog_get(h, "x", &o, &err), -RB_EUNAVAIL);
	assert_int_equal(rb_catalog_pkgbuild(h, "x", &text, &err), -RB_EUNAVAIL);
	rb_buf_release(&text);
}

int main(void)
{
	const char *src = getenv("RBEE_SRC");
	snprintf(fixture, sizeof(fixture), "%s/tests/catalog/fixtures/catalog", src ? src : ".");
	rb_http_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(directory_lists_valid_entries_sorted),
		cmocka_unit_test(file_url_is_directory_mode),
		cmocka_unit_test(get_known_unknown_and_malformed),
		cmocka_unit_test(pkgbuild_text_comes_from_the_named_file),
		cmocka_unit_test(directory_resolve_stays_inside),
		cmocka_unit_test(directory_resolve_refuses_symlink_escapes),
		cmocka_unit_test(http_resolve_against_catalog_url),
		cmocka_unit_test(missing_directory_is_unavailable),
		cmocka_unit_test(unreachable_server_is_unavailable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
