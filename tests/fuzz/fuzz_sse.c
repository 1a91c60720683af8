/*
 * fuzz_sse.c - the SSE parser (core/lib/rb_sse.c), as the keeper CLI feeds it.
 *
 * The first input byte chooses how the rest is split into reads (one byte at a time, fixed
 * chunks, or chunk sizes taken from the input), so CR/LF pairs and UTF-8 BOMs land across read
 * boundaries. Every delivered event is checked against the header's promises: data is
 * NUL-terminated at data_len, type and last_id are strings. A callback may stop the feed; the
 * parser is then reset and reused, as the CLI does after a dropped connection.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rb_sse.h"

struct seen {
	size_t events;
	unsigned stop_every; /* stop the feed at every Nth event (0 = never) */
	bool check_written;  /* the stream came from rb_sse_write_event(id 7, "progress") */
};

static int on_event(void *arg, const struct rb_sse_event *ev)
{
	struct seen *s = arg;
	if (!ev->type || !ev->data || !ev->last_id || ev->data[ev->data_len] != '\0' ||
	    strlen(ev->data) > ev->data_len)
		abort();
	(void)strlen(ev->type);
	(void)strlen(ev->last_id);
	if (s->check_written && (strcmp(ev->type, "progress") || strcmp(ev->last_id, "7") || !ev->has_id))
		abort();
	s->events++;
	return s->stop_every && s->events % s->stop_every == 0 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct seen s = { 0, (mode >> 4) & 3, false };
	struct rb_sse_parser parser;
	rb_sse_parser_init(&parser, on_event, &s);
	size_t off = 0, k = 0;
	while (off < n) {
		size_t chunk;
		switch (mode & 3) {
		case 0:
			chunk = n - off;
			break;
		case 1:
			chunk = 1;
			break;
		case 2:
			chunk = 1 + (mode >> 2) % 7;
			break;
		default:
			chunk = 1 + (unsigned char)p[k++ % n] % 64;
			break;
		}
		if (chunk > n - off)
			chunk = n - off;
		if (rb_sse_parser_feed(&parser, p + off, chunk) != 0)
			rb_sse_parser_reset(&parser); /* the rest of that read is dropped, as on reconnect */
		off += chunk;
	}
	rb_sse_parser_release(&parser);

	/* The writer: whatever the payload holds (blank lines, "event:", "id:"), the parser reads
	 * back exactly one event, of the type and id written: a payload cannot inject events. */
	if (mode & 0x40) {
		struct rb_buf out = RB_BUF_INIT;
		rb_sse_write_event(&out, 7, "progress", p, n);
		struct seen back = { 0, 0, true };
		rb_sse_parser_init(&parser, on_event, &back);
		rb_sse_parser_feed(&parser, out.data, out.len);
		rb_sse_parser_release(&parser);
		if (back.events != 1)
			abort();
		rb_buf_release(&out);
	}
	return 0;
}
