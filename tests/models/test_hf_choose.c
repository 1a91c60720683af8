/* The hub listing parser and the quantization chooser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "models/hf.h"
#include "rb_buf.h"

/* A listing of "name:size" items in the model-info format ("siblings"). */
static void listing(struct rb_hf_listing *l, const char *const *files)
{
	struct rb_buf j = RB_BUF_INIT;
	rb_buf_adds(&j, "{\"id\":\"o/r\",\"siblings\":[");
	for (size_t i = 0; files[i]; i++) {
		char name[256];
		unsigned long long size = 0;
		const char *colon = strrchr(files[i], ':');
		snprintf(name, sizeof(name), "%.*s", (int)(colon - files[i]), files[i]);
		sscanf(colon + 1, "%llu", &size);
		rb_buf_addf(&j, "%s{\"rfilename\":\"%s\",\"size\":%llu}", i ? "," : "", name, size);
	}
	rb_buf_adds(&j, "]}");
	assert_int_equal(rb_hf_parse_listing(j.data, j.len, l, NULL), 0);
	rb_buf_release(&j);
}

/* The chosen file's path, or the error message. */
static const char *choose(const char *const *files, const char **quant)
{
	static char out[RB_ERR_MSG_MAX];
	struct rb_hf_listing l;
	struct rb_hf_choice c;
	struct rb_err err = RB_ERR_INIT;
	listing(&l, files);
	if (rb_hf_choose_gguf("o/r", &l, &c, &err) == 0) {
		snprintf(out, sizeof(out), "%s", l.files[c.index].path);
		*quant = c.quant;
	} else {
		snprintf(out, sizeof(out), "error: %s", err.msg);
		*quant = NULL;
	}
	rb_hf_listing_release(&l);
	return out;
}

static void prefers_q4_k_m_whatever_the_order(void **state)
{
	(void)state;
	const char *q;
	const char *const files[] = { "README.md:10", "m.F16.gguf:100", "m.Q8_0.gguf:50",
				      "m.Q4_K_M.gguf:30", "m.Q5_K_M.gguf:35", NULL };
	assert_string_equal(choose(files, &q), "m.Q4_K_M.gguf");
	assert_string_equal(q, "Q4_K_M");
}

static void follows_the_preference_order(void **state)
{
	(void)state;
	const char *q;
	const char *const a[] = { "m.F16.gguf:100", "m.Q8_0.gguf:50", "m.Q5_0.gguf:40", NULL };
	assert_string_equal(choose(a, &q), "m.Q5_0.gguf");
	const char *const b[] = { "m.F16.gguf:100", "m.Q8_0.gguf:50", NULL };
	assert_string_equal(choose(b, &q), "m.Q8_0.gguf");
	const char *const c[] = { "m-f16.gguf:100", "m-Q6_K.gguf:50", NULL };
	assert_string_equal(choose(c, &q), "m-f16.gguf");
	assert_string_equal(q, "F16");
}

static void matches_case_insensitively_and_as_a_whole_token(void **state)
{
	(void)state;
	const char *q;
	const char *const a[] = { "model-q4_k_m.gguf:10", "model-q8_0.gguf:5", NULL };
	assert_string_equal(choose(a, &q), "model-q4_k_m.gguf");
	/* BF16 is not F16, and Q4_0_4_4 is not Q4_0. */
	const char *const b[] = { "m-BF16.gguf:10", "m-Q4_0_4_4.gguf:5", "m-Q6_K.gguf:7", NULL };
	assert_string_equal(choose(b, &q), "m-Q4_0_4_4.gguf");
	assert_null(q);
	/* IQ4_XS contains no preferred token either. */
	const char *const c[] = { "m-IQ4_XS.gguf:4", "m-Q4_0.gguf:6", NULL };
	assert_string_equal(choose(c, &q), "m-Q4_0.gguf");
}

static void falls_back_to_the_smallest_gguf(void **state)
{
	(void)state;
	const char *q;
	const char *const files[] = { "a-Q6_K.gguf:600", "b-Q3_K_S.gguf:300", "c-Q2_K.gguf:200",
				      "tiny.bin:1", NULL };
	assert_string_equal(choose(files, &q), "c-Q2_K.gguf");
	assert_null(q);
}

static void picks_the_smallest_of_equal_preference(void **state)
{
	(void)state;
	const char *q;
	const char *const files[] = { "big/m-Q4_K_M.gguf:900", "m-Q4_K_M.gguf:400", NULL };
	assert_string_equal(choose(files, &q), "m-Q4_K_M.gguf");
}

static void never_picks_shards_or_projectors(void **state)
{
	(void)state;
	const char *q;
	const char *const a[] = { "m-Q4_K_M-00001-of-00002.gguf:10", "m-Q4_K_M-00002-of-00002.gguf:10",
				  "mmproj-m-f16.gguf:5", "m-Q8_0.gguf:50", NULL };
	assert_string_equal(choose(a, &q), "m-Q8_0.gguf");
	const char *const b[] = { "m-Q4_K_M-00001-of-00002.gguf:10",
				  "m-Q4_K_M-00002-of-00002.gguf:10", NULL };
	const char *msg = choose(b, &q);
	assert_non_null(strstr(msg, "error: 'o/r' has only split GGUF files"));
}

static void no_gguf_names_what_the_repo_has(void **state)
{
	(void)state;
	const char *q;
	const char *const files[] = { "config.json:1", "model.safetensors:100", NULL };
	const char *msg = choose(files, &q);
	assert_non_null(strstr(msg, "'o/r' has no usable .gguf file"));
	assert_non_null(strstr(msg, "'model.safetensors'"));
	assert_non_null(strstr(msg, "'org/repo:file.gguf'"));
	const char *const none[] = { NULL };
	assert_non_null(strstr(choose(none, &q), "no files"));
}

static void parses_tree_listings_and_lfs_hashes(void **state)
{
	(void)state;
	const char *tree =
		"[{\"type\":\"directory\",\"path\":\"sub\"},"
		"{\"type\":\"file\",\"path\":\"m.gguf\",\"size\":7,\"lfs\":{\"oid\":"
		"\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"size\":7}},"
		"{\"type\":\"file\",\"path\":\"README.md\",\"size\":3}]";
	struct rb_hf_listing l;
	assert_int_equal(rb_hf_parse_listing(tree, strlen(tree), &l, NULL), 0);
	assert_int_equal(l.n, 2);
	const struct rb_hf_file *f = rb_hf_listing_find(&l, "m.gguf");
	assert_non_null(f);
	assert_int_equal(f->size, 7);
	assert_string_equal(f->sha256, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(rb_hf_listing_find(&l, "README.md")->sha256, "");
	rb_hf_listing_release(&l);
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_hf_parse_listing("{\"x\":1}", 7, &l, &err), -RB_EUNAVAIL);
	assert_int_equal(rb_hf_parse_listing("<html>", 6, &l, &err), -RB_EINVAL);
}

static void hub_from_environment(void **state)
{
	(void)state;
	struct rb_hf_hub hub;
	struct rb_err err = RB_ERR_INIT;
	unsetenv("HF_TOKEN");
	unsetenv("HF_ENDPOINT");
	assert_int_equal(rb_hf_hub_from_env(&hub, &err), 0);
	assert_string_equal(hub.endpoint, "https://huggingface.co");
	assert_null(hub.headers[0]);
	setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
	setenv("HF_TOKEN", "hf_abc\n", 1);
	assert_int_equal(rb_hf_hub_from_env(&hub, &err), 0);
	assert_string_equal(hub.endpoint, "http://127.0.0.1:9");
	assert_string_equal(hub.headers[0], "Authorization: Bearer hf_abc");
	char url[256];
	rb_hf_resolve_url(&hub, "o", "r", "f.gguf", url, sizeof(url));
	assert_string_equal(url, "http://127.0.0.1:9/o/r/resolve/main/f.gguf");
	setenv("HF_TOKEN", "a\r\nX-Evil: 1", 1);
	assert_int_equal(rb_hf_hub_from_env(&hub, &err), -RB_EINVAL);
	assert_null(strstr(err.msg, "Evil")); /* the token is never echoed */
	setenv("HF_ENDPOINT", "ftp://x", 1);
	assert_int_equal(rb_hf_hub_from_env(&hub, &err), -RB_EINVAL);
	unsetenv("HF_TOKEN");
	unsetenv("HF_ENDPOINT");
}

static void status_errors_are_distinct(void **state)
{
	(void)state;
	struct rb_hf_hub hub;
	struct rb_err err = RB_ERR_INIT;
	setenv("HF_ENDPOINT", "http://hub.test", 1);
	rb_hf_hub_from_env(&hub, NULL);
	assert_int_equal(rb_hf_status_error(&hub, "o/r", 404, &err), -RB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "model 'o/r' not found on http://hub.test"));
	assert_int_equal(rb_hf_status_error(&hub, "o/r", 401, &err), -RB_EDENIED);
	assert_non_null(strstr(err.msg, "access denied to 'o/r'"));
	assert_non_null(strstr(err.msg, "set HF_TOKEN to a token that can read it"));
	assert_int_equal(rb_hf_status_error(&hub, "o/r", 502, &err), -RB_EUNAVAIL);
	unsetenv("HF_ENDPOINT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prefers_q4_k_m_whatever_the_order),
		cmocka_unit_test(follows_the_preference_order),
		cmocka_unit_test(matches_case_insensitively_and_as_a_whole_token),
		cmocka_unit_test(falls_back_to_the_smallest_gguf),
		cmocka_unit_test(picks_the_smallest_of_equal_preference),
		cmocka_unit_test(never_picks_shards_or_projectors),
		cmocka_unit_test(no_gguf_names_what_the_repo_has),
		cmocka_unit_test(parses_tree_listings_and_lfs_hashes),
		cmocka_unit_test(hub_from_environment),
		cmocka_unit_test(status_errors_are_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
