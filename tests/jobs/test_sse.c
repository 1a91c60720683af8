/*
 * test_sse.c - the SSE writer and the incremental parser (core/lib/rb_sse.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rb_sse.h"

/* ---- writer ---- */

static void write_event(uint64_t id, const char *event, const char *data, char *out, size_t len)
{
	struct rb_buf b = RB_BUF_INIT;
	rb_sse_write_event(&b, id, event, data, strlen(data));
	snprintf(out, len, "%s", b.data);
	rb_buf_release(&b);
}

static void writer_plain_line_is_one_data_line(void **state)
{
	(void)state;
	char out[256];
	write_event(0, NULL, "hello world", out, sizeof(out));
	assert_string_equal(out, "data: hello world\n\n");
}

static void writer_puts_id_and_event_first(void **state)
{
	(void)state;
	char out[256];
	write_event(42, "progress", "{\"stage\":\"x\"}", out, sizeof(out));
	assert_string_equal(out, "id: 42\nevent: progress\ndata: {\"stage\":\"x\"}\n\n");
}

static void writer_empty_event_name_means_message(void **state)
{
	(void)state;
	char out[256];
	write_event(7, "", "x", out, sizeof(out));
	assert_string_equal(out, "id: 7\ndata: x\n\n");
}

static void writer_splits_multi_line_data_at_lf_crlf_and_cr(void **state)
{
	(void)state;
	char out[256];
	write_event(1, NULL, "a\nb\r\nc\rd", out, sizeof(out));
	assert_string_equal(out, "id: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
}

static void writer_keeps_empty_lines_and_empty_data(void **state)
{
	(void)state;
	char out[256];
	write_event(0, NULL, "", out, sizeof(out));
	assert_string_equal(out, "data: \n\n");
	write_event(0, NULL, "a\n\nb\n", out, sizeof(out));
	assert_string_equal(out, "data: a\ndata: \ndata: b\ndata: \n\n");
}

static void writer_comment(void **state)
{
	(void)state;
	struct rb_buf b = RB_BUF_INIT;
	rb_sse_write_comment(&b, "keep-alive");
	assert_string_equal(b.data, ": keep-alive\n\n");
	rb_buf_release(&b);
}

/* ---- parser ---- */

/* Every event the parser delivered, as "type|id|has_id|data" lines. */
struct seen {
	struct rb_buf log;
	int count;
	int stop_after; /* return 1 from the callback after this many (0 = never) */
};

static int record(void *arg, const struct rb_sse_event *ev)
{
	struct seen *s = arg;
	rb_buf_addf(&s->log, "%s|%s|%d|%s\n", ev->type, ev->last_id, ev->has_id, ev->data);
	assert_int_equal(strlen(ev->data), ev->data_len);
	s->count++;
	return s->stop_after && s->count >= s->stop_after;
}

/* Parse `text` fed in pieces of `step` bytes (0 = two pieces split at `split`). */
static void parse_in_pieces(const char *text, size_t step, size_t split, struct seen *s,
			    size_t *comments)
{
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, s);
	size_t len = strlen(text);
	if (step == 0) {
		assert_int_equal(rb_sse_parser_feed(&p, text, split), 0);
		assert_int_equal(rb_sse_parser_feed(&p, text + split, len - split), 0);
	} else {
		for (size_t i = 0; i < len; i += step)
			assert_int_equal(rb_sse_parser_feed(&p, text + i, len - i < step ? len - i : step), 0);
	}
	if (comments)
		*comments = p.comments;
	rb_sse_parser_release(&p);
}

static const char stream_text[] =
	": job-1\n\n"
	"id: 1\ndata: first line\n\n"
	"id: 2\r\nevent: progress\r\ndata: {\"stage\":\"downloading\"}\r\n\r\n"
	": keep-alive\n\n"
	"id: 3\revent: data\rdata: {\"a\":\rdata: 1}\r\r"
	"id: 4\ndata:no space\ndata\n\n"
	"id: 5\ndata:  two spaces\nretry: 10\nbogus: x\n\n"
	"id: 6\ndata: [DONE]\n\n";

static const char stream_expect[] =
	"message|1|1|first line\n"
	"progress|2|1|{\"stage\":\"downloading\"}\n"
	"data|3|1|{\"a\":\n1}\n"
	"message|4|1|no space\n\n"
	"message|5|1| two spaces\n"
	"message|6|1|[DONE]\n";

static void parser_reads_a_whole_stream(void **state)
{
	(void)state;
	struct seen s = { RB_BUF_INIT, 0, 0 };
	size_t comments;
	parse_in_pieces(stream_text, strlen(stream_text), 0, &s, &comments);
	assert_string_equal(s.log.data, stream_expect);
	assert_int_equal(s.count, 6);
	assert_int_equal(comments, 2);
	rb_buf_release(&s.log);
}

static void parser_splits_at_every_byte_boundary_give_the_same_events(void **state)
{
	(void)state;
	size_t len = strlen(stream_text);
	for (size_t split = 0; split <= len; split++) {
		struct seen s = { RB_BUF_INIT, 0, 0 };
		parse_in_pieces(stream_text, 0, split, &s, NULL);
		if (strcmp(s.log.data, stream_expect) != 0)
			fail_msg("split at byte %zu gave:\n%s", split, s.log.data);
		rb_buf_release(&s.log);
	}
}

static void parser_fed_one_byte_at_a_time(void **state)
{
	(void)state;
	for (size_t step = 1; step <= 7; step++) {
		struct seen s = { RB_BUF_INIT, 0, 0 };
		parse_in_pieces(stream_text, step, 0, &s, NULL);
		assert_string_equal(s.log.data, stream_expect);
		rb_buf_release(&s.log);
	}
}

static void parser_crlf_split_between_reads_is_one_line_end(void **state)
{
	(void)state;
	struct seen s = { RB_BUF_INIT, 0, 0 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	rb_sse_parser_feed(&p, "data: a\r", 8);
	rb_sse_parser_feed(&p, "\ndata: b\r", 9);
	rb_sse_parser_feed(&p, "\n\r", 2);
	rb_sse_parser_feed(&p, "\n", 1); /* the LF of the blank line's CRLF: not another line */
	assert_string_equal(s.log.data, "message||0|a\nb\n");
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
}

static void parser_does_not_deliver_events_without_data_but_keeps_their_id(void **state)
{
	(void)state;
	struct seen s = { RB_BUF_INIT, 0, 0 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	const char *t = "id: 9\nevent: progress\n\ndata: x\n\n";
	rb_sse_parser_feed(&p, t, strlen(t));
	/* The second event has no id of its own and no event type: the type was reset. */
	assert_string_equal(s.log.data, "message|9|0|x\n");
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
}

/* An id-only event (0 included) as rb_sse_write_id writes it: nothing is delivered for it, but
 * its id is the last id, also for the next event without one of its own. */
static void writer_id_only_event_sets_the_last_id(void **state)
{
	(void)state;
	struct rb_buf b = RB_BUF_INIT;
	rb_sse_write_id(&b, 0);
	assert_string_equal(b.data, "id: 0\n\n");
	struct seen s = { RB_BUF_INIT, 0, 0 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	rb_sse_parser_feed(&p, b.data, b.len);
	assert_int_equal(s.count, 0);
	assert_string_equal(p.last_id.data, "0");
	rb_buf_reset(&b);
	rb_sse_write_id(&b, 42);
	rb_buf_adds(&b, "data: x\n\n");
	rb_sse_parser_feed(&p, b.data, b.len);
	assert_string_equal(s.log.data, "message|42|0|x\n");
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
	rb_buf_release(&b);
}

static void parser_holds_an_unfinished_event_until_the_blank_line(void **state)
{
	(void)state;
	struct seen s = { RB_BUF_INIT, 0, 0 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	rb_sse_parser_feed(&p, "id: 1\ndata: x\n", 14);
	assert_int_equal(s.count, 0);
	rb_sse_parser_feed(&p, "\n", 1);
	assert_int_equal(s.count, 1);
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
}

static void parser_reset_drops_a_partial_event_and_keeps_the_last_id(void **state)
{
	(void)state;
	struct seen s = { RB_BUF_INIT, 0, 0 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	const char *t = "id: 4\ndata: whole\n\nid: 5\ndata: half";
	rb_sse_parser_feed(&p, t, strlen(t));
	rb_sse_parser_reset(&p); /* the connection dropped mid-event */
	const char *u = "data: again\n\n";
	rb_sse_parser_feed(&p, u, strlen(u));
	assert_string_equal(s.log.data, "message|4|1|whole\nmessage|4|0|again\n");
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
}

static void parser_skips_a_leading_bom(void **state)
{
	(void)state;
	struct seen s = { RB_BUF_INIT, 0, 0 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	const char *t = "\xEF\xBB\xBF" "data: x\n\n";
	rb_sse_parser_feed(&p, t, strlen(t));
	assert_string_equal(s.log.data, "message||0|x\n");
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
}

static void parser_stops_when_the_callback_says_so(void **state)
{
	(void)state;
	struct seen s = { RB_BUF_INIT, 0, 1 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	const char *t = "data: a\n\ndata: b\n\n";
	assert_int_equal(rb_sse_parser_feed(&p, t, strlen(t)), 1);
	assert_int_equal(s.count, 1);
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
}

static void writer_output_parses_back_to_the_same_event(void **state)
{
	(void)state;
	const char *payload = "line one\nline two\r\nline three";
	struct rb_buf b = RB_BUF_INIT;
	rb_sse_write_event(&b, 12345678901ULL, "data", payload, strlen(payload));
	rb_sse_write_comment(&b, "keep-alive");
	struct seen s = { RB_BUF_INIT, 0, 0 };
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, record, &s);
	rb_sse_parser_feed(&p, b.data, b.len);
	assert_string_equal(s.log.data, "data|12345678901|1|line one\nline two\nline three\n");
	rb_sse_parser_release(&p);
	rb_buf_release(&s.log);
	rb_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writer_plain_line_is_one_data_line),
		cmocka_unit_test(writer_puts_id_and_event_first),
		cmocka_unit_test(writer_empty_event_name_means_message),
		cmocka_unit_test(writer_splits_multi_line_data_at_lf_crlf_and_cr),
		cmocka_unit_test(writer_keeps_empty_lines_and_empty_data),
		cmocka_unit_test(writer_comment),
		cmocka_unit_test(parser_reads_a_whole_stream),
		cmocka_unit_test(parser_splits_at_every_byte_boundary_give_the_same_events),
		cmocka_unit_test(parser_fed_one_byte_at_a_time),
		cmocka_unit_test(parser_crlf_split_between_reads_is_one_line_end),
		cmocka_unit_test(parser_does_not_deliver_events_without_data_but_keeps_their_id),
		cmocka_unit_test(writer_id_only_event_sets_the_last_id),
		cmocka_unit_test(parser_holds_an_unfinished_event_until_the_blank_line),
		cmocka_unit_test(parser_reset_drops_a_partial_event_and_keeps_the_last_id),
		cmocka_unit_test(parser_skips_a_leading_bom),
		cmocka_unit_test(parser_stops_when_the_callback_says_so),
		cmocka_unit_test(writer_output_parses_back_to_the_same_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
