/*
 * rb_sse.h - Server-Sent Events: the writer the hive's streams use and the incremental parser
 * the keeper CLI reads them with (the text/event-stream format of the WHATWG HTML standard).
 *
 * Writer: one event is an optional `id:` line, an optional `event:` line, one `data:` line per
 * line of the payload (a payload holding "a\nb" becomes `data: a` and `data: b`, which a reader
 * joins back with "\n"), then a blank line. Comments (`: keep-alive`) are ignored by readers and
 * keep idle connections alive through proxies.
 *
 * Parser: feed it bytes in any split (one byte at a time works); it calls back once per
 * complete event. Lines may end in LF, CRLF or CR, even when the CR and LF of one CRLF arrive in
 * different reads. Events without data are not delivered (as in browsers), but an `id:` they
 * carry still updates the last event id. As in browsers, an id counts only once its event is
 * complete, so after a dropped connection the last id is that of the last whole event. A line
 * is kept up to RB_SSE_LINE_MAX bytes and an event's data up to RB_SSE_EVENT_MAX (the rest is
 * dropped), so a hostile server cannot make the reader grow without bound.
 */
#ifndef RB_SSE_H
#define RB_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rb_buf.h"

#define RB_SSE_LINE_MAX (16u << 20)
#define RB_SSE_EVENT_MAX (32u << 20)

/*
 * Terminal markers. A job stream ends with exactly one event whose data is "[DONE]",
 * "[CANCELLED]" or "[ERROR] <message>" (SPEC section 3); clients of the Rust hive take any data
 * line that merely contains a marker as the end. So only rb_sse_write_terminal may write a
 * marker: every other writer defuses them, and readers use rb_sse_terminal_of.
 */
struct rb_sse_event;

enum rb_sse_terminal { RB_SSE_NOT_TERMINAL, RB_SSE_DONE, RB_SSE_ERROR, RB_SSE_CANCELLED };

/* Append one event to `out`. id 0 = no `id:` line; event NULL or "" = no `event:` line (the
 * reader sees type "message"). `data` of `len` bytes is split at LF, CRLF and CR. The text is
 * made safe: ill-formed UTF-8 becomes U+FFFD, NUL bytes are dropped, and a terminal marker in
 * it is defused ("[DONE]" is written "(DONE)"). */
void rb_sse_write_event(struct rb_buf *out, uint64_t id, const char *event, const char *data,
			size_t len);
/* The same for a JSON payload (one line): markers inside its strings are written with the
 * escape "\u005b" for their "[", so the JSON still means exactly the same. */
void rb_sse_write_json_event(struct rb_buf *out, uint64_t id, const char *event,
			     const char *json, size_t len);
/* The one terminal event of a job stream: `kind`, and for RB_SSE_ERROR the message (one line;
 * line breaks become spaces and markers inside it are defused). */
void rb_sse_write_terminal(struct rb_buf *out, uint64_t id, enum rb_sse_terminal kind,
			   const char *message);
/* Whether a parsed event is a terminal: an unnamed event whose data is exactly "[DONE]" or
 * "[CANCELLED]", or starts with "[ERROR]" (then *message, if not NULL, points at the message
 * after it, "" when none). Anything else, including a marker inside a longer line or a named
 * event, is not. */
enum rb_sse_terminal rb_sse_terminal_of(const struct rb_sse_event *ev, const char **message);
/* Append an event that carries only `id: <id>` (0 included): readers deliver nothing for it
 * but take its id as the last event id, so a stream can tell a client where it stands before
 * it has sent any event ("id: 7\n\n"). */
void rb_sse_write_id(struct rb_buf *out, uint64_t id);
/* Append a comment line and the blank line that ends it: ": text\n\n". */
void rb_sse_write_comment(struct rb_buf *out, const char *text);

/* One parsed event; the strings live until the callback returns. */
struct rb_sse_event {
	const char *type;    /* the `event:` field, "message" when absent */
	const char *data;    /* the data lines joined with "\n", NUL-terminated */
	size_t data_len;
	const char *last_id; /* the stream's last event id so far ("" when none was seen) */
	bool has_id;         /* this event carried its own `id:` line */
};

/* Return 0 to go on; anything else stops rb_sse_parser_feed, which returns that value. */
typedef int (*rb_sse_event_fn)(void *arg, const struct rb_sse_event *ev);

struct rb_sse_parser {
	rb_sse_event_fn on_event;
	void *arg;
	struct rb_buf line;    /* the line being assembled */
	struct rb_buf data;    /* data lines of the event being assembled, each ending in "\n" */
	struct rb_buf type;    /* `event:` of the event being assembled */
	struct rb_buf id_buf;  /* the `id:` seen last, committed to last_id at the blank line */
	struct rb_buf last_id; /* the id of the last delivered event; persists across events */
	bool has_id;           /* the event being assembled has an `id:` line */
	bool has_data;         /* ... has at least one `data:` line */
	bool after_cr;         /* the previous byte was a CR: a following LF belongs to it */
	bool bom_checked;      /* a leading UTF-8 BOM was looked for */
	bool data_full;        /* the event's data reached its cap; more data lines are dropped */
	size_t comments;       /* comment lines seen (keep-alives), for callers that care */
};

void rb_sse_parser_init(struct rb_sse_parser *p, rb_sse_event_fn on_event, void *arg);
void rb_sse_parser_release(struct rb_sse_parser *p);
/* Feed bytes. Returns 0, or the first non-zero value a callback returned (the bytes after
 * the event that stopped are not consumed and the parser must not be fed again). */
int rb_sse_parser_feed(struct rb_sse_parser *p, const char *buf, size_t len);
/* Forget a partially received event (e.g. after a dropped connection, before reconnecting).
 * The last event id is kept. */
void rb_sse_parser_reset(struct rb_sse_parser *p);

#endif
