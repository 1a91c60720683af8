/*
 * rb_sse.c - Server-Sent Events writer and incremental parser (see rb_sse.h).
 */
#include "rb_sse.h"

#include <inttypes.h>
#include <string.h>

/* A line longer than this is cut: the rest of it is dropped rather than buffered forever. */
#define SSE_LINE_MAX (16u << 20)

void rb_sse_write_event(struct rb_buf *out, uint64_t id, const char *event, const char *data,
			size_t len)
{
	if (id)
		rb_buf_addf(out, "id: %" PRIu64 "\n", id);
	if (event && *event)
		rb_buf_addf(out, "event: %s\n", event);
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && data[i] != '\n' && data[i] != '\r')
			continue;
		rb_buf_adds(out, "data: ");
		rb_buf_add(out, data + start, i - start);
		rb_buf_addch(out, '\n');
		if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	rb_buf_addch(out, '\n');
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
		rb_buf_add(&p->data, val, vlen);
		rb_buf_addch(&p->data, '\n');
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
			size_t room = SSE_LINE_MAX - p->line.len;
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
