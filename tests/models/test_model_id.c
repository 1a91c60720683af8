/* Model ids: what is accepted, what is refused with the accepted forms, and the store's
 * directory names that map back to the exact id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "models/models.h"

static void splits_org_repo_and_file(void **state)
{
	(void)state;
	struct rb_model_ref r;
	assert_int_equal(rb_model_id_parse("TheBloke/Llama-2-7B-GGUF", &r, NULL), 0);
	assert_string_equal(r.org, "TheBloke");
	assert_string_equal(r.repo, "Llama-2-7B-GGUF");
	assert_string_equal(r.file, "");
	assert_int_equal(rb_model_id_parse("org/repo:model.Q4_K_M.gguf", &r, NULL), 0);
	assert_string_equal(r.org, "org");
	assert_string_equal(r.repo, "repo");
	assert_string_equal(r.file, "model.Q4_K_M.gguf");
}

static void refuses_bad_ids_showing_the_forms(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "llama", "https://huggingface.co/org/repo", "hf.co/org/repo", "org/repo/extra",
		"org/", "/repo", "org/repo:", "../etc/passwd", "org/..", "org/.hidden",
		"org/repo:a:b", "org/repo:dir/file.gguf", "org name/repo", "org/repo:file gguf",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		struct rb_model_ref r;
		struct rb_err err = RB_ERR_INIT;
		int rc = rb_model_id_parse(bad[i], &r, &err);
		if (rc != -RB_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_non_null(strstr(err.msg, "'org/repo' or 'org/repo:file.gguf'"));
	}
	struct rb_err err = RB_ERR_INIT;
	struct rb_model_ref r;
	rb_model_id_parse("https://huggingface.co/a/b", &r, &err);
	assert_non_null(strstr(err.msg, "URLs are not accepted"));
	rb_model_id_parse("llama3", &r, &err);
	assert_non_null(strstr(err.msg, "no '/'"));
}

static void directory_names_round_trip(void **state)
{
	(void)state;
	static const char *const ids[] = {
		"org/repo", "org/repo:file.gguf", "a-b_c.d/e-f:g-h.Q4_K_M.gguf", "x/y:z", NULL,
	};
	for (size_t i = 0; ids[i]; i++) {
		char dir[RB_MODEL_ID_MAX + 8], back[RB_MODEL_ID_MAX];
		assert_int_equal(rb_model_id_to_dirname(ids[i], dir, sizeof(dir)), 0);
		assert_null(strchr(dir, '/'));
		assert_null(strchr(dir, ':'));
		assert_int_equal(rb_model_dirname_to_id(dir, back, sizeof(back)), 0);
		assert_string_equal(back, ids[i]);
	}
	char dir[64];
	assert_int_equal(rb_model_id_to_dirname("org/repo:f", dir, sizeof(dir)), 0);
	assert_string_equal(dir, "org@repo+f");
	/* Ids that differ only where another scheme would blur them stay apart. */
	char a[64], b[64];
	rb_model_id_to_dirname("a-/b", a, sizeof(a));
	rb_model_id_to_dirname("a/-b", b, sizeof(b));
	assert_string_not_equal(a, b);
}

static void foreign_directory_names_are_not_ids(void **state)
{
	(void)state;
	static const char *const names[] = {
		"plain", "a@b@c", "a+b", ".deleting-1-2", "a@", "@b", "a@b+", "a@b+c+d", NULL,
	};
	for (size_t i = 0; names[i]; i++) {
		char id[RB_MODEL_ID_MAX];
		if (rb_model_dirname_to_id(names[i], id, sizeof(id)) == 0)
			fail_msg("'%s' was taken for model '%s'", names[i], id);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(splits_org_repo_and_file),
		cmocka_unit_test(refuses_bad_ids_showing_the_forms),
		cmocka_unit_test(directory_names_round_trip),
		cmocka_unit_test(foreign_directory_names_are_not_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
