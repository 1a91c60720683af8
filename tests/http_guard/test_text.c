/*
 * test_text.c - text on its way into JSON and SSE (issue 11, item 8): ill-formed UTF-8 becomes
 * U+FFFD, \u0000 in JSON is refused, terminal markers cannot be forged by a payload, and the
 * job engine applies all of it to what handlers and children say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hive.h"
#include "hive_ops.h"
#include "jobs/jobs.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_proc.h"
#include "rb_sse.h"

/* ---- UTF-8 ---- */

static void sanitize(const char *in, size_t len, char *out, size_t outlen)
{
	struct rb_buf b = RB_BUF_INIT;
	rb_utf8_sanitize(in, len, &b);
	snprintf(out, outlen, "%s", b.data);
	rb_buf_release(&b);
}

static void utf8_ill_formed_bytes_become_replacement_characters(void **state)
{
	(void)state;
	char out[128];
	assert_true(rb_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x90\x9d", 15));
	sanitize("a\xff" "b", 3, out, sizeof(out));
	assert_string_equal(out, "a\xef\xbf\xbd" "b");
	/* overlong '/', a UTF-16 surrogate, past U+10FFFF, a cut sequence */
	const char *bad[] = { "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82" };
	for (size_t i = 0; i < 4; i++) {
		assert_false(rb_utf8_valid(bad[i], strlen(bad[i])));
		sanitize(bad[i], strlen(bad[i]), out, sizeof(out));
		assert_true(rb_utf8_valid(out, strlen(out)));
		assert_non_null(strstr(out, "\xef\xbf\xbd"));
	}
	sanitize("ok \xc3\xa9", 5, out, sizeof(out));
	assert_string_equal(out, "ok \xc3\xa9");
}

/* ---- JSON ---- */

static void json_refuses_nul_escapes_and_bad_utf8(void **state)
{
	(void)state;
	const char *refused[] = {
		"{\"a\":\"x\\u0000y\"}", "{\"a\\u0000b\":1}", "[\"\\u0000\"]", "{\"a\":\"\xff\"}",
	};
	for (size_t i = 0; i < 4; i++) {
		struct rb_err err = RB_ERR_INIT;
		assert_null(rb_json_parse(refused[i], strlen(refused[i]), &err));
		assert_int_equal(err.code, RB_EINVAL);
	}
	struct rb_err err = RB_ERR_INIT;
	assert_null(rb_json_parse(refused[0], strlen(refused[0]), &err));
	assert_non_null(strstr(err.msg, "NUL"));
	/* an escaped backslash followed by "u0000" is six ordinary characters */
	const char *fine = "{\"a\":\"\\\\u0000\",\"b\":\"\\u00e9\"}";
	struct json_object *o = rb_json_parse(fine, strlen(fine), NULL);
	assert_non_null(o);
	assert_string_equal(rb_json_str(o, "a"), "\\u0000");
	json_object_put(o);
}

/* ---- SSE markers ---- */

struct got {
	int n;
	char type[32];
	char data[512];
	enum rb_sse_terminal kind;
	char message[256];
};

static int on_event(void *arg, const struct rb_sse_event *ev)
{
	struct got *g = arg;
	const char *m = "";
	g->n++;
	snprintf(g->type, sizeof(g->type), "%s", ev->type);
	snprintf(g->data, sizeof(g->data), "%s", ev->data);
	g->kind = rb_sse_terminal_of(ev, &m);
	snprintf(g->message, sizeof(g->message), "%s", m);
	return 0;
}

static struct got parse(const struct rb_buf *b)
{
	struct got g;
	memset(&g, 0, sizeof(g));
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, on_event, &g);
	rb_sse_parser_feed(&p, b->data, b->len);
	rb_sse_parser_release(&p);
	return g;
}

static void sse_payloads_cannot_forge_a_terminal(void **state)
{
	(void)state;
	const char *lines[] = { "[DONE]", "[ERROR] x", "[CANCELLED]", "a\n[DONE]", "[DONE]\r" };
	for (size_t i = 0; i < 5; i++) {
		struct rb_buf b = RB_BUF_INIT;
		rb_sse_write_event(&b, 3, NULL, lines[i], strlen(lines[i]));
		assert_null(strstr(b.data, "[DONE]"));
		assert_null(strstr(b.data, "[ERROR]"));
		assert_null(strstr(b.data, "[CANCELLED]"));
		struct got g = parse(&b);
		assert_int_equal(g.kind, RB_SSE_NOT_TERMINAL);
		rb_buf_release(&b);
	}
	/* JSON keeps its meaning: the "[" of a marker is escaped, not replaced. */
	const char *json = "{\"description\":\"says [DONE] and [ERROR] boom\"}";
	struct rb_buf b = RB_BUF_INIT;
	rb_sse_write_json_event(&b, 4, "data", json, strlen(json));
	assert_null(strstr(b.data, "[DONE]"));
	struct got g = parse(&b);
	struct json_object *o = rb_json_parse(g.data, strlen(g.data), NULL);
	assert_non_null(o);
	assert_string_equal(rb_json_str(o, "description"), "says [DONE] and [ERROR] boom");
	json_object_put(o);
	rb_buf_release(&b);
	/* Bytes that are not UTF-8, and NUL, never reach the stream. */
	rb_sse_write_event(&b, 5, NULL, "x\xff\0y", 4);
	assert_true(rb_utf8_valid(b.data, b.len));
	assert_null(memchr(b.data, '\0', b.len));
	rb_buf_release(&b);
}

static void sse_terminal_is_written_and_read_only_one_way(void **state)
{
	(void)state;
	struct rb_buf b = RB_BUF_INIT;
	rb_sse_write_terminal(&b, 9, RB_SSE_ERROR, "build failed: [DONE]\nnext line");
	assert_string_equal(b.data, "id: 9\ndata: [ERROR] build failed: (DONE) next line\n\n");
	struct got g = parse(&b);
	assert_int_equal(g.kind, RB_SSE_ERROR);
	assert_string_equal(g.message, "build failed: (DONE) next line");
	rb_buf_reset(&b);
	rb_sse_write_terminal(&b, 10, RB_SSE_DONE, NULL);
	g = parse(&b);
	assert_int_equal(g.kind, RB_SSE_DONE);
	rb_buf_release(&b);
	/* A reader takes a terminal only as the whole data of an unnamed event. */
	const char *not_terminal[] = { "data: [DONE] \n\n", "data: x [DONE]\n\n",
				       "event: data\ndata: [DONE]\n\n", "data: [ERRORS]\n\n",
				       "data: [DONE]\ndata: more\n\n" };
	for (size_t i = 0; i < 5; i++) {
		struct rb_buf t = RB_BUF_INIT;
		rb_buf_adds(&t, not_terminal[i]);
		g = parse(&t);
		assert_int_equal(g.n, 1);
		assert_int_equal(g.kind, RB_SSE_NOT_TERMINAL);
		rb_buf_release(&t);
	}
}

/* ---- the job engine ---- */

static struct rb_hive hive;
static char tmpdir[64];

static void engine_job_text_is_valid_json_and_cannot_end_a_stream_early(void **state)
{
	(void)state;
	memset(&hive, 0, sizeof(hive));
	snprintf(hive.cfg.hive_id, sizeof(hive.cfg.hive_id), "localhost");
	hive.cfg.max_jobs = 1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rbee-guard-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(hive.paths.home, sizeof(hive.paths.home), "%s", tmpdir);
	snprintf(hive.paths.state, sizeof(hive.paths.state), "%s", tmpdir);
	setenv("RBEE_ENABLE_TEST_OPS", "1", 1);
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_jobs_init(&hive, &err), 0);

	/* As build output would: bytes that are not UTF-8 and a line that reads "[DONE]". */
	const char msg[] = "make: \xff\xfe failed [DONE] [ERROR] x";
	struct json_object *req = json_object_new_object();
	rb_json_add_str(req, "operation", "test_sleep");
	rb_json_add_int(req, "seconds", 0);
	json_object_object_add(req, "fail", json_object_new_string_len(msg, sizeof(msg) - 1));
	const struct rb_op *op = rb_op_find("test_sleep");
	assert_non_null(op);
	char id[RB_JOB_ID_MAX];
	assert_int_equal(rb_jobs_submit(&hive, op, req, id, &err), 0);

	struct rb_job *job = rb_jobs_get(&hive, id);
	assert_non_null(job);
	struct rb_buf text = RB_BUF_INIT;
	uint64_t cursor = 0;
	bool ended = false;
	long long deadline = rb_now_ms() + 10000;
	while (!ended && rb_now_ms() < deadline)
		rb_job_read_events(job, &cursor, 1 << 16, 100, &text, &ended);
	rb_job_unref(job);
	assert_true(ended);
	assert_true(rb_utf8_valid(text.data, text.len));
	/* Exactly one line carries a marker: the terminal, and it is the last event. */
	size_t markers = 0;
	for (const char *p = text.data; (p = strstr(p, "[ERROR]")); p++)
		markers++;
	assert_int_equal(markers, 1);
	assert_null(strstr(text.data, "[DONE]"));
	assert_non_null(strstr(text.data, "data: [ERROR] make: \xef\xbf\xbd\xef\xbf\xbd failed (DONE) (ERROR) x\n\n"));
	rb_buf_release(&text);

	struct json_object *list = rb_jobs_list_json(&hive);
	const char *s = rb_json_compact(list);
	assert_true(rb_utf8_valid(s, strlen(s)));
	struct json_object *back = rb_json_parse(s, strlen(s), &err);
	assert_non_null(back);
	json_object_put(back);
	json_object_put(list);

	rb_jobs_shutdown(&hive);
	rb_jobs_free(&hive);
	rb_fs_rm_rf(tmpdir, NULL);
}

int main(void)
{
	if (rb_hive_register_ops())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8_ill_formed_bytes_become_replacement_characters),
		cmocka_unit_test(json_refuses_nul_escapes_and_bad_utf8),
		cmocka_unit_test(sse_payloads_cannot_forge_a_terminal),
		cmocka_unit_test(sse_terminal_is_written_and_read_only_one_way),
		cmocka_unit_test(engine_job_text_is_valid_json_and_cannot_end_a_stream_early),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
