/*
 * rb_sse.c - Server-Sent Events writer and incremental parser (see rb_sse.h).
 */
#include "rb_sse.h"

#include <inttypes.h>
#include <string.h>

#include "rb_json.h"

static const char *const markers[] = { "[DONE]", "[ERROR]", "[CANCELLED]" };
#define NMARKERS (sizeof(markers) / sizeof(markers[0]))

/* The marker that starts at s (n bytes left), or NULL. */
static const char *marker_at(const char *s, size_t n)
{
	if (n < 6 || s[0] != '[')
		return NULL;
	for (size_t m = 0; m < NMARKERS; m++) {
		size_t ml = strlen(markers[m]);
		if (n >= ml && !memcmp(s, markers[m], ml))
			return markers[m];
	}
	return NULL;
}

/* Append one data line's text: valid UTF-8 only, no NUL, markers defused (as "(DONE)" for
 * text, as "\u005bDONE]" for JSON). */
static void add_safe(struct rb_buf *out, const char *s, size_t len, bool json)
{
	struct rb_buf clean = RB_BUF_INIT;
	if (!rb_utf8_valid(s, len)) {
		rb_utf8_sanitize(s, len, &clean);
		s = clean.data;
		len = clean.len;
	}
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		const char *m;
		if (s[i] == '\0') {
			rb_buf_add(out, s + start, i - start);
			start = i + 1;
		} else if (s[i] == '[' && (m = marker_at(s + i, len - i))) {
			size_t ml = strlen(m);
			rb_buf_add(out, s + start, i - start);
			if (json) {
				rb_buf_adds(out, "\\u005b");
				rb_buf_add(out, m + 1, ml - 1);
			} else {
				rb_buf_addch(out, '(');
				rb_buf_add(out, m + 1, ml - 2);
				rb_buf_addch(out, ')');
			}
			i += ml - 1;
			start = i + 1;
		}
	}
	rb_buf_add(out, s + start, len - start);
	rb_buf_release(&clean);
}

static void write_event(struct rb_buf *out, uint64_t id, const char *event, const char *data,
			size_t len, bool json)
{
	if (id)
		rb_buf_addf(out, "id: %" PRIu64 "\n", id);
	if (event && *event) {
		rb_buf_adds(out, "event: ");
		add_safe(out, event, strcspn(event, "\r\n"), false);
		rb_buf_addch(out, '\n');
	}
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && data[i] != '\n' && data[i] != '\r')
			continue;
		rb_buf_adds(out, "data: ");
		add_safe(out, data + start, i - start, json);
		rb_buf_addch(out, '\n');
		if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	rb_buf_addch(out, '\n');
}

void rb_sse_write_event(struct rb_buf *out, uint64_t id, const char *event, const char *data,
			size_t len)
{
	write_event(out, id, event, data, len, false);
}

void rb_sse_write_json_event(struct rb_buf *out, uint64_t id, const char *event,
			     const char *json, size_t len)
{
	write_event(out, id, event, json, len, true);
}

void rb_sse_write_terminal(struct rb_buf *out, uint64_t id, enum rb_sse_terminal kind,
			   const char *message)
{
	if (id)
		rb_buf_addf(out, "id: %" PRIu64 "\n", id);
	switch (kind) {
	case RB_SSE_DONE:
		rb_buf_adds(out, "data: [DONE]\n\n");
		return;
	case RB_SSE_CANCELLED:
		rb_buf_adds(out, "data: [CANCELLED]\n\n");
		return;
	case RB_SSE_ERROR:
	case RB_SSE_NOT_TERMINAL:
		break;
	}
	struct rb_buf one = RB_BUF_INIT;
	rb_buf_adds(&one, message && *message ? message : "failed without a message");
	for (size_t i = 0; i < one.len; i++)
		if (one.data[i] == '\n' || one.data[i] == '\r')
			one.data[i] = ' ';
	rb_buf_adds(out, "data: [ERROR] ");
	add_safe(out, one.data, one.len, false);
	rb_buf_adds(out, "\n\n");
	rb_buf_release(&one);
}

enum rb_sse_terminal rb_sse_terminal_of(const struct rb_sse_event *ev, const char **message)
{
	if (strcmp(ev->type, "message") != 0 || memchr(ev->data, '\n', ev->data_len))
		return RB_SSE_NOT_TERMINAL;
	if (!strcmp(ev->data, "[DONE]"))
		return RB_SSE_DONE;
	if (!strcmp(ev->data, "[CANCELLED]"))
		return RB_SSE_CANCELLED;
	if (strncmp(ev->data, "[ERROR]", 7) != 0 || (ev->data[7] && ev->data[7] != ' '))
		return RB_SSE_NOT_TERMINAL;
	if (message) {
		const char *m = ev->data + 7;
		while (*m == ' ')
			m++;
		*message = m;
	}
	return RB_SSE_ERROR;
}

void rb_sse_write_id(struct rb_buf *out, uint64_t id)
{
	rb_buf_addf(out, "id: %" PRIu64 "\n\n", id);
}

void rb_sse_write_comment(struct rb_buf *out, const char *text)
{
	rb_buf_addf(out, ": %s\n\n", text);
}

void rb_sse_parser_init(struct rb_sse_parser *p, rb_sse_event_fn on_event, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->on_event = on_event;
	p->arg = arg;
	rb_buf_init(&p->line);
	rb_buf_init(&p->data);
	rb_buf_init(&p->type);
	rb_buf_init(&p->id_buf);
	rb_buf_init(&p->last_id);
}

void rb_sse_parser_release(struct rb_sse_parser *p)
{
	rb_buf_release(&p->line);
	rb_buf_release(&p->data);
	rb_buf_release(&p->type);
	rb_buf_release(&p->id_buf);
	rb_buf_release(&p->last_id);
}

static void clear_event(struct rb_sse_parser *p)
{
	rb_buf_reset(&p->data);
	rb_buf_reset(&p->type);
	p->has_id = false;
	p->has_data = false;
	p->data_full = false;
}

void rb_sse_parser_reset(struct rb_sse_parser *p)
{
	clear_event(p);
	rb_buf_reset(&p->id_buf);
	rb_buf_add(&p->id_buf, p->last_id.data, p->last_id.len);
	rb_buf_reset(&p->line);
	p->after_cr = false;
	p->bom_checked = false;
}

/* A blank line: deliver the assembled event, if it has data. */
static int dispatch(struct rb_sse_parser *p)
{
	int rc = 0;
	rb_buf_reset(&p->last_id);
	rb_buf_add(&p->last_id, p->id_buf.data, p->id_buf.len);
	if (p->has_data) {
		/* The last data line's "\n" is not part of the payload. */
		if (p->data.len)
			rb_buf_truncate(&p->data, p->data.len - 1);
		struct rb_sse_event ev = {
			.type = p->type.len ? p->type.data : "message",
			.data = p->data.data,
			.data_len = p->data.len,
			.last_id = p->last_id.data,
			.has_id = p->has_id,
		};
		rc = p->on_event ? p->on_event(p->arg, &ev) : 0;
	}
	clear_event(p);
	return rc;
}

/* One complete line (without its end). */
static int process_line(struct rb_sse_parser *p, const char *line, size_t len)
{
	if (len == 0)
		return dispatch(p);
	if (line[0] == ':') {
		p->comments++;
		return 0;
	}
	const char *colon = memchr(line, ':', len);
	size_t nlen = colon ? (size_t)(colon - line) : len;
	const char *val = colon ? colon + 1 : line + len;
	size_t vlen = (size_t)(line + len - val);
	if (vlen && *val == ' ') {
		val++;
		vlen--;
	}
	if (nlen == 4 && !memcmp(line, "data", 4)) {
		if (p->data.len + vlen + 1 > RB_SSE_EVENT_MAX)
			p->data_full = true;
		if (!p->data_full) {
			rb_buf_add(&p->data, val, vlen);
			rb_buf_addch(&p->data, '\n');
		}
		p->has_data = true;
	} else if (nlen == 5 && !memcmp(line, "event", 5)) {
		rb_buf_reset(&p->type);
		rb_buf_add(&p->type, val, vlen);
	} else if (nlen == 2 && !memcmp(line, "id", 2) && !memchr(val, '\0', vlen)) {
		rb_buf_reset(&p->id_buf);
		rb_buf_add(&p->id_buf, val, vlen);
		p->has_id = true;
	}
	/* "retry" and unknown fields are ignored. */
	return 0;
}

int rb_sse_parser_feed(struct rb_sse_parser *p, const char *buf, size_t len)
{
	size_t i = 0;
	if (!p->bom_checked && len) {
		/* The BOM may only be skipped when it arrives whole; a split one is vanishingly rare
		 * and the hive never sends it. */
		if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
			i = 3;
		p->bom_checked = true;
	}
	while (i < len) {
		char c = buf[i];
		if (c == '\n' && p->after_cr) {
			p->after_cr = false;
			i++;
			continue;
		}
		p->after_cr = false;
		if (c != '\n' && c != '\r') {
			size_t run = i;
			while (run < len && buf[run] != '\n' && buf[run] != '\r')
				run++;
			size_t room = RB_SSE_LINE_MAX - p->line.len;
			rb_buf_add(&p->line, buf + i, run - i < room ? run - i : room);
			i = run;
			continue;
		}
		i++;
		p->after_cr = c == '\r';
		int rc = process_line(p, p->line.data, p->line.len);
		rb_buf_reset(&p->line);
		if (rc)
			return rc;
	}
	return 0;
}
