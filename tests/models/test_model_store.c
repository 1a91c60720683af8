/* The model store against the fake hub: choose, download, verify, register, list, get,
 * delete; ids with '/' and ':' round-trip; failures leave nothing registered; one writer. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gguf_writer.h"
#include "hive.h"
#include "hub_fixture.h"
#include "models/models.h"
#include "rb_json.h"

static struct rb_hive *hv;

struct events {
	struct rb_buf said;
	int progress;
	bool stop;
};

static void ev_say(void *arg, const char *line)
{
	struct events *e = arg;
	rb_buf_addf(&e->said, "%s\n", line);
}

static void ev_progress(void *arg, const char *stage, uint64_t done, uint64_t total, double r)
{
	struct events *e = arg;
	(void)stage, (void)done, (void)total, (void)r;
	e->progress++;
}

static bool ev_stop(void *arg)
{
	return ((struct events *)arg)->stop;
}

static int download(const char *id, struct events *e, struct rb_model_record *rec,
		    struct rb_err *err)
{
	struct rb_model_events ev = { ev_say, ev_progress, ev_stop, e };
	return rb_models_download(hv, id, &ev, rec, err);
}

static int setup(void **state)
{
	(void)state;
	if (hub_start())
		return -1;
	struct gw w;
	gw_tiny_model(&w);
	hub_put("org/tiny-GGUF/tiny.Q8_0.gguf", w.b.data, w.b.len);
	rb_buf_add(&w.b, "padding to make this file differ", 32);
	hub_put("org/tiny-GGUF/tiny.Q4_K_M.gguf", w.b.data, w.b.len);
	hub_put("org/tiny-GGUF/README.md", "# tiny\n", 7);
	hub_put("org/text/notes.txt", "not a model\n", 12);
	hub_put("org/safetensors/model.safetensors", NULL, 100);
	hub_put("org/big/big.Q4_K_M.gguf", NULL, 4u << 20);
	rb_buf_release(&w.b);
	hv = calloc(1, sizeof(*hv));
	snprintf(hv->paths.models, sizeof(hv->paths.models), "%s/models", hub.dir);
	setenv("HF_ENDPOINT", hub.url, 1);
	unsetenv("HF_TOKEN");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hub_stop();
	free(hv);
	return 0;
}

static int reset(void **state)
{
	(void)state;
	return hub_reset();
}

static void downloads_the_preferred_file_and_registers_it(void **state)
{
	(void)state;
	struct events e = { RB_BUF_INIT, 0, false };
	struct rb_model_record rec;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(download("org/tiny-GGUF", &e, &rec, &err), 0);
	assert_string_equal(rec.id, "org/tiny-GGUF");
	assert_string_equal(rec.file, "tiny.Q4_K_M.gguf");
	assert_true(rec.sha256_verified);
	assert_true(rec.is_gguf);
	assert_string_equal(rec.gguf.architecture, "llama");
	assert_string_equal(rec.gguf.quantization, "Q4_K_M");
	assert_int_equal(rec.gguf.context_length, 4096);
	assert_string_equal(rec.name, "Tiny Llama");
	assert_non_null(strstr(e.said.data, "chose 'tiny.Q4_K_M.gguf' (Q4_K_M"));
	assert_true(e.progress > 0);
	char meta[700];
	snprintf(meta, sizeof(meta), "%s/models/org@tiny-GGUF/metadata.json", hub.dir);
	assert_true(rb_fs_exists(meta));
	rb_buf_release(&e.said);
}

static void present_model_returns_at_once(void **state)
{
	(void)state;
	struct events e = { RB_BUF_INIT, 0, false };
	struct rb_model_record rec;
	assert_int_equal(download("org/tiny-GGUF", &e, &rec, NULL), 0);
	assert_non_null(strstr(e.said.data, "already present"));
	assert_int_equal(hub_log_count("\"method\": \"GET\""), 0);
	rb_buf_release(&e.said);
}

static void list_and_get_keep_ids_with_slash_and_colon(void **state)
{
	(void)state;
	struct events e = { RB_BUF_INIT, 0, false };
	struct rb_model_record rec;
	assert_int_equal(download("org/tiny-GGUF:tiny.Q8_0.gguf", &e, &rec, NULL), 0);
	assert_string_equal(rec.gguf.quantization, "Q4_K_M"); /* what the header says */
	struct json_object *list;
	assert_int_equal(rb_models_list(hv, &list, NULL), 0);
	struct json_object *arr = json_object_object_get(list, "models");
	assert_int_equal(json_object_array_length(arr), 2);
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 0), "id"), "org/tiny-GGUF");
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 1), "id"),
			    "org/tiny-GGUF:tiny.Q8_0.gguf");
	assert_string_equal(rb_json_str(json_object_array_get_idx(arr, 1), "status"), "ready");
	json_object_put(list);
	assert_int_equal(rb_models_get(hv, "org/tiny-GGUF:tiny.Q8_0.gguf", &rec, NULL), 0);
	assert_string_equal(rec.file, "tiny.Q8_0.gguf");
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_models_get(hv, "org/other", &rec, &err), -RB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "model 'org/other' is not in this hive"));
	rb_buf_release(&e.said);
}

static void file_that_is_not_gguf_is_stored_without_facts(void **state)
{
	(void)state;
	struct events e = { RB_BUF_INIT, 0, false };
	struct rb_model_record rec;
	assert_int_equal(download("org/text:notes.txt", &e, &rec, NULL), 0);
	assert_false(rec.is_gguf);
	struct json_object *o = rb_model_record_json(&rec);
	assert_string_equal(rb_json_str(o, "format"), "unknown");
	assert_null(json_object_object_get(o, "architecture"));
	json_object_put(o);
	assert_non_null(strstr(e.said.data, "stored without GGUF facts"));
	rb_buf_release(&e.said);
}

static void wrong_hash_registers_nothing(void **state)
{
	(void)state;
	struct events e = { RB_BUF_INIT, 0, false };
	struct rb_model_record rec;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(hub_control("{\"wrong_hash\":[\"org/big/big.Q4_K_M.gguf\"]}"), 0);
	assert_int_equal(download("org/big", &e, &rec, &err), -RB_EIO);
	assert_non_null(strstr(err.msg, "sha256"));
	assert_int_equal(rb_models_get(hv, "org/big", &rec, NULL), -RB_ENOTFOUND);
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/models/org@big", hub.dir);
	assert_false(rb_fs_exists(dir));
	rb_buf_release(&e.said);
}

static void hub_errors_are_distinct_and_leave_nothing(void **state)
{
	(void)state;
	struct events e = { RB_BUF_INIT, 0, false };
	struct rb_model_record rec;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(download("org/nope", &e, &rec, &err), -RB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "model 'org/nope' not found on http://127.0.0.1:"));
	assert_int_equal(download("org/tiny-GGUF:nope.gguf", &e, &rec, &err), -RB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "'tiny.Q4_K_M.gguf'"));
	assert_int_equal(download("org/safetensors", &e, &rec, &err), -RB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "'model.safetensors'"));
	assert_int_equal(hub_control("{\"private\":[\"org/big\"]}"), 0);
	assert_int_equal(download("org/big", &e, &rec, &err), -RB_EDENIED);
	assert_non_null(strstr(err.msg, "access denied to 'org/big'"));
	assert_non_null(strstr(err.msg, "set HF_TOKEN"));
	struct json_object *list;
	rb_models_list(hv, &list, NULL);
	assert_null(strstr(rb_json_compact(list), "org/nope"));
	assert_null(strstr(rb_json_compact(list), "org/big"));
	json_object_put(list);
	rb_buf_release(&e.said);
}

static void cancelled_download_is_partial_then_resumed_or_deleted(void **state)
{
	(void)state;
	struct events e = { RB_BUF_INIT, 0, true };
	struct rb_model_record rec;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(hub_control("{\"stall_once\":{\"org/big/big.Q4_K_M.gguf\":[300000,2]}}"), 0);
	assert_int_equal(download("org/big", &e, &rec, &err), -RB_ECANCELLED);
	/* Cancel before any byte: nothing to keep but the listing knows it started. */
	e.stop = false;
	struct json_object *list;
	assert_int_equal(rb_models_delete(hv, "org/big", &(uint64_t){ 0 }, &err), 0);
	assert_int_equal(rb_models_delete(hv, "org/big", &(uint64_t){ 0 }, &err), -RB_ENOTFOUND);
	/* A real partial: a stall the download gives up on, then a resume. */
	setenv("RBEE_DOWNLOAD_STALL_S", "1", 1);
	setenv("RBEE_DOWNLOAD_RETRIES", "1", 1);
	assert_int_equal(hub_control("{\"stall_once\":{\"org/big/big.Q4_K_M.gguf\":[300000,3]}}"), 0);
	assert_int_equal(hub_control("{\"drop_once\":{}}"), 0);
	assert_int_equal(download("org/big", &e, &rec, &err), 0); /* one retry resumes it */
	unsetenv("RBEE_DOWNLOAD_STALL_S");
	unsetenv("RBEE_DOWNLOAD_RETRIES");
	assert_int_equal(hub_log_count("\"range\": \"bytes=300000-\""), 2);
	uint64_t freed = 0;
	assert_int_equal(rb_models_delete(hv, "org/big", &freed, &err), 0);
	assert_true(freed >= (4u << 20));
	assert_int_equal(rb_models_list(hv, &list, NULL), 0);
	assert_null(strstr(rb_json_compact(list), "org/big"));
	json_object_put(list);
	rb_buf_release(&e.said);
}

static void partial_download_is_listed_and_get_says_so(void **state)
{
	(void)state;
	char dir[700], part[800];
	snprintf(dir, sizeof(dir), "%s/models/org@big", hub.dir);
	snprintf(part, sizeof(part), "%s/big.Q4_K_M.gguf.part", dir);
	rb_fs_mkdir_p(dir, 0755, NULL);
	rb_fs_write_atomic(part, "abc", 3, 0644, NULL);
	struct json_object *list;
	assert_int_equal(rb_models_list(hv, &list, NULL), 0);
	assert_non_null(strstr(rb_json_compact(list),
			       "{\"id\":\"org/big\",\"status\":\"partial\",\"file\":\"big.Q4_K_M.gguf\""));
	json_object_put(list);
	struct rb_model_record rec;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_models_get(hv, "org/big", &rec, &err), -RB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "not fully downloaded"));
	uint64_t freed;
	assert_int_equal(rb_models_delete(hv, "org/big", &freed, &err), 0);
	assert_false(rb_fs_exists(dir));
}

struct racer {
	struct events e;
	struct rb_model_record rec;
	int rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	r->rc = download("org/big", &r->e, &r->rec, NULL);
	return NULL;
}

static void two_downloads_of_one_model_never_write_together(void **state)
{
	(void)state;
	struct racer a = { .e = { RB_BUF_INIT, 0, false }, .rc = -1 };
	struct racer b = { .e = { RB_BUF_INIT, 0, false }, .rc = -1 };
	setenv("RBEE_DOWNLOAD_STALL_S", "1", 1);
	assert_int_equal(hub_control("{\"stall_once\":{\"org/big/big.Q4_K_M.gguf\":[100000,2]}}"), 0);
	pthread_t ta, tb;
	pthread_create(&ta, NULL, race, &a);
	usleep(100 * 1000);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	unsetenv("RBEE_DOWNLOAD_STALL_S");
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_string_equal(a.rec.sha256, b.rec.sha256);
	assert_non_null(strstr(b.e.said.data, "waiting for it"));
	assert_int_equal(hub_log_count("\"path\": \"/cdn/org/big/big.Q4_K_M.gguf\""), 2);
	rb_buf_release(&a.e.said);
	rb_buf_release(&b.e.said);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(downloads_the_preferred_file_and_registers_it, reset),
		cmocka_unit_test_setup(present_model_returns_at_once, reset),
		cmocka_unit_test_setup(list_and_get_keep_ids_with_slash_and_colon, reset),
		cmocka_unit_test_setup(file_that_is_not_gguf_is_stored_without_facts, reset),
		cmocka_unit_test_setup(wrong_hash_registers_nothing, reset),
		cmocka_unit_test_setup(hub_errors_are_distinct_and_leave_nothing, reset),
		cmocka_unit_test_setup(cancelled_download_is_partial_then_resumed_or_deleted, reset),
		cmocka_unit_test_setup(partial_download_is_listed_and_get_says_so, reset),
		cmocka_unit_test_setup(two_downloads_of_one_model_never_write_together, reset),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
