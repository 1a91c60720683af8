/*
 * table.c - human output: plain text tables fitted to the terminal, text from the hive made
 * safe for a terminal, and type-checked reads of the hive's JSON (linked with client.c alone
 * into the jobs tests' client, so everything client.c needs lives here).
 *
 * Every string the hive sends may come from a catalog, a hub or a worker: before it reaches a
 * terminal, control characters (C0 but newline and tab, DEL, C1), invalid UTF-8 and bidi
 * overrides become '?', so an entry cannot move the cursor, retitle the window, rewrite what
 * was printed or hide text.
 *
 * Columns are sized to their content. When the table is wider than the output's width (the
 * terminal's, or COLUMNS when set; unlimited when stdout is a pipe or a file, so that grep and
 * awk see one row per line), long cells wrap onto continuation lines (see fit_widths),
 * breaking at a space, else after '/', '-', '_', '.', ':' or ',', near the end of the line.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "rb_json.h"

/* ---- text from the hive, made safe for a terminal ---- */

/* The length of the valid UTF-8 sequence at s (n bytes left), and its code point; 0 when the
 * bytes there are not one (overlong forms, surrogates and values past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xE0) == 0xC0) {
		len = 2, c = s[0] & 0x1F, min = 0x80;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3, c = s[0] & 0x0F, min = 0x800;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* Code points that must not reach a terminal: controls, and the bidi controls that reorder
 * what is shown ("Trojan Source"). */
static bool unsafe_cp(uint32_t c, bool keep_lines)
{
	if (c == '\n' || c == '\t')
		return !keep_lines;
	return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
	       (c >= 0x2066 && c <= 0x2069) || c == 0x200E || c == 0x200F || c == 0x061C;
}

void cli_clean_add(struct rb_buf *out, const char *text, size_t len, bool keep_lines)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_seq(s + i, len - i, &cp);
		if (n == 0) {
			rb_buf_addch(out, '?');
			i++;
		} else if (unsafe_cp(cp, keep_lines)) {
			rb_buf_addch(out, cp == '\n' || cp == '\t' || cp == '\r' ? ' ' : '?');
			i += n;
		} else {
			rb_buf_add(out, s + i, n);
			i += n;
		}
	}
}

char *cli_clean(const char *text, bool keep_lines)
{
	struct rb_buf b = RB_BUF_INIT;
	cli_clean_add(&b, text ? text : "", text ? strlen(text) : 0, keep_lines);
	return rb_buf_detach(&b, NULL);
}

void cli_put_clean(FILE *out, const char *text, size_t len, bool keep_lines)
{
	struct rb_buf b = RB_BUF_INIT;
	cli_clean_add(&b, text, len, keep_lines);
	fwrite(b.data, 1, b.len, out);
	rb_buf_release(&b);
}

void cli_print_json(FILE *out, struct json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
	/* json-c escapes C0 controls in strings, but not DEL, C1 or bidi controls, and passes bytes
	 * that are not UTF-8 through: escape those too (they can only be inside strings). */
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), i = 0;
	struct rb_buf b = RB_BUF_INIT;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_seq(s + i, len - i, &cp);
		if (n == 0) {
			rb_buf_adds(&b, "\\ufffd");
			i++;
		} else if (unsafe_cp(cp, true)) {
			rb_buf_addf(&b, "\\u%04x", (unsigned)cp);
			i += n;
		} else {
			rb_buf_add(&b, s + i, n);
			i += n;
		}
	}
	fprintf(out, "%s\n", b.data);
	rb_buf_release(&b);
}

void cli_json_clean(struct json_object *o)
{
	if (json_object_is_type(o, json_type_string)) {
		const char *v = json_object_get_string(o);
		int len = json_object_get_string_len(o);
		struct rb_buf b = RB_BUF_INIT;
		cli_clean_add(&b, v, (size_t)len, true);
		if (b.len != (size_t)len || memcmp(b.data, v, b.len))
			json_object_set_string_len(o, b.data, (int)b.len);
		rb_buf_release(&b);
	} else if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++)
			cli_json_clean(json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			(void)key;
			cli_json_clean(val);
		}
	}
}

/* ---- type-checked reads of the hive's JSON ---- */

static char bad_answer[512];

static const char *type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a fraction";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "something else";
}

static void note_bad(const char *key, struct json_object *v, const char *want)
{
	if (bad_answer[0])
		return;
	snprintf(bad_answer, sizeof(bad_answer), "%s%s%s is %s where %s was expected",
		 key ? "field '" : "", key ? key : "a value", key ? "'" : "", type_name(v), want);
}

const char *cli_bad_answer(void)
{
	return bad_answer[0] ? bad_answer : NULL;
}

/* The field `key` of `o` when it has type `t`; NULL when absent or null. Another type is noted
 * (reading on as absent), and so is an `o` that is not an object. */
static struct json_object *field_of(struct json_object *o, const char *key, enum json_type t,
				    const char *want)
{
	struct json_object *v;
	if (!o)
		return NULL;
	if (!json_object_is_type(o, json_type_object)) {
		note_bad(NULL, o, "an object");
		return NULL;
	}
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	if (!json_object_is_type(v, t)) {
		note_bad(key, v, want);
		return NULL;
	}
	return v;
}

const char *cli_jstr(struct json_object *o, const char *key)
{
	struct json_object *v = field_of(o, key, json_type_string, "a string");
	return v ? json_object_get_string(v) : NULL;
}

int64_t cli_jint(struct json_object *o, const char *key, int64_t def)
{
	struct json_object *v = field_of(o, key, json_type_int, "an integer");
	return v ? json_object_get_int64(v) : def;
}

bool cli_jbool(struct json_object *o, const char *key, bool def)
{
	struct json_object *v = field_of(o, key, json_type_boolean, "a boolean");
	return v ? json_object_get_boolean(v) : def;
}

struct json_object *cli_jarr(struct json_object *o, const char *key)
{
	return field_of(o, key, json_type_array, "an array");
}

struct json_object *cli_jobj(struct json_object *o, const char *key)
{
	return field_of(o, key, json_type_object, "an object");
}

size_t cli_jlen(struct json_object *arr)
{
	return json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
}

struct json_object *cli_jat(struct json_object *arr, size_t i)
{
	if (i >= cli_jlen(arr))
		return NULL;
	struct json_object *v = json_object_array_get_idx(arr, i);
	if (!json_object_is_type(v, json_type_object)) {
		note_bad(NULL, v, "an object");
		return NULL;
	}
	return v;
}

const char *cli_jstr_at(struct json_object *arr, size_t i)
{
	if (i >= cli_jlen(arr))
		return NULL;
	struct json_object *v = json_object_array_get_idx(arr, i);
	if (!json_object_is_type(v, json_type_string)) {
		if (v)
			note_bad(NULL, v, "a string");
		return NULL;
	}
	return json_object_get_string(v);
}

int cli_answer_verdict(int rc)
{
	if (!bad_answer[0] || rc != CLI_OK)
		return rc;
	fprintf(stderr, "rbee: the hive's answer is malformed: %s (is this an rbee hive of the same "
		"version?)\n", bad_answer);
	return CLI_FAILED;
}

/* Narrowest a wrapped column may become; the last column goes under its row instead of
 * becoming narrower than MIN_PROSE_WIDTH. */
#define MIN_WRAP_WIDTH 12
#define MIN_PROSE_WIDTH 24
#define BELOW_INDENT 4
#define GAP 2

struct cli_table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major, nrows rows (row 0 = headers) */
	size_t *width;
};

/* How a table is laid out for one output. */
struct fit {
	size_t limit; /* the output's width; 0: unlimited */
	size_t *w;    /* each column's width */
	bool below;   /* the last column goes on lines of its own under each row */
};

/* Out of memory in the CLI: say so and leave (never abort(), whatever the hive sent). */
static void *need(void *p)
{
	if (!p) {
		fputs("rbee: out of memory\n", stderr);
		exit(CLI_FAILED);
	}
	return p;
}

struct cli_table *cli_table_new(const char *const *headers)
{
	struct cli_table *t = need(calloc(1, sizeof(*t)));
	while (headers[t->ncols])
		t->ncols++;
	t->width = need(calloc(t->ncols, sizeof(size_t)));
	cli_table_add(t, headers);
	return t;
}

/* Display width of UTF-8 text: count code points, not bytes. */
static size_t text_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		if (cap > SIZE_MAX / sizeof(char *) / (t->ncols ? t->ncols : 1))
			need(NULL);
		t->cells = need(realloc(t->cells, cap * t->ncols * sizeof(char *)));
		t->cap = cap;
	}
	for (size_t c = 0; c < t->ncols; c++) {
		const char *v = cells[c] && *cells[c] ? cells[c] : "-";
		/* One line per cell (tabs and newlines would break the columns), and nothing a
		 * terminal would act on. */
		char *copy = need(cli_clean(v, false));
		t->cells[t->nrows * t->ncols + c] = copy;
		size_t w = text_width(copy);
		if (w > t->width[c])
			t->width[c] = w;
	}
	t->nrows++;
}

int cli_term_width(int fd)
{
	const char *env = getenv("COLUMNS");
	if (env && *env) {
		char *end;
		long n = strtol(env, &end, 10);
		if (*end == '\0' && n >= 20 && n <= 10000)
			return (int)n;
	}
	struct winsize ws;
	if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 0;
}

/* Byte length of the first `chars` code points of s (or all of s). */
static size_t prefix_bytes(const char *s, size_t chars)
{
	size_t i = 0, n = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (n == chars)
				break;
			n++;
		}
	}
	return i;
}

/* How many bytes of s go on one line of at most `width` code points: all of it when it fits,
 * else up to the last space in the line's second half, else up to the last other break
 * character there, else exactly `width`. */
static size_t wrap_chunk(const char *s, size_t width)
{
	if (text_width(s) <= width)
		return strlen(s);
	size_t hard = prefix_bytes(s, width);
	for (const char *breaks = " "; breaks; breaks = *breaks == ' ' ? "/-_.:," : NULL)
		for (size_t i = hard; i > hard / 2; i--)
			if (strchr(breaks, s[i - 1]))
				return i;
	return hard;
}

/* Print `v` from column `start` (the cursor is at `*col`) in lines of at most `width` points;
 * returns what did not fit. */
static const char *put_chunk(FILE *out, const char *v, size_t width, size_t start, size_t *col)
{
	size_t len = wrap_chunk(v, width), shown = len;
	while (shown && v[shown - 1] == ' ')
		shown--;
	if (shown) {
		fprintf(out, "%*s", (int)(start - *col), "");
		fwrite(v, 1, shown, out);
		*col = start + text_width(v) - text_width(v + shown);
	}
	v += len;
	while (*v == ' ')
		v++;
	return v;
}

/* One row: every cell wider than its column's width `f->w[c]` continues on the next lines;
 * with f->below, the last cell goes on lines of its own, indented, under the others. */
static void print_row(struct cli_table *t, size_t r, const struct fit *f, FILE *out)
{
	size_t ncols = t->ncols - (f->below ? 1 : 0);
	const char **rest = need(calloc(t->ncols, sizeof(*rest)));
	for (size_t c = 0; c < t->ncols; c++)
		rest[c] = t->cells[r * t->ncols + c];
	for (bool more = true; more;) {
		size_t col = 0, start = 0; /* the cursor, and where column c starts */
		more = false;
		for (size_t c = 0; c < ncols; start += f->w[c] + GAP, c++) {
			rest[c] = put_chunk(out, rest[c], f->w[c], start, &col);
			more |= *rest[c] != '\0';
		}
		fputc('\n', out);
	}
	if (f->below && r > 0) { /* the header row leaves out the last column's name */
		const char *v = rest[t->ncols - 1];
		while (*v) {
			size_t col = 0;
			v = put_chunk(out, v, f->limit - BELOW_INDENT, BELOW_INDENT, &col);
			fputc('\n', out);
		}
	}
	free(rest);
}

/* Column widths that fit f->limit columns (0: no limit). First a long last column (prose: a
 * reason, a description, a path) wraps, down to MIN_PROSE_WIDTH; narrower than that, it goes
 * on lines of its own under each row. Then, if still too wide, one column wraps: the widest
 * that alone can make the table fit without going under MIN_WRAP_WIDTH, the first column (the
 * id) only as a last resort; else the table stays too wide (the terminal folds it). */
static void fit_widths(const struct cli_table *t, struct fit *f)
{
	size_t others = 0, last = t->ncols - 1;
	for (size_t c = 0; c < t->ncols; c++) {
		f->w[c] = t->width[c];
		if (c < last)
			others += f->w[c] + GAP;
	}
	size_t shown = others + f->w[last];
	if (!f->limit || shown <= f->limit)
		return;
	if (f->w[last] > MIN_PROSE_WIDTH && others + MIN_PROSE_WIDTH <= f->limit) {
		f->w[last] = f->limit - others;
		return;
	}
	if (f->w[last] > MIN_PROSE_WIDTH && last > 0) {
		f->below = true;
		shown = others - GAP;
		if (shown <= f->limit)
			return;
	}
	/* The first column is usually the id to copy: wrap it only when no other column can. */
	size_t ncols = t->ncols - (f->below ? 1 : 0), cut = shown - f->limit, pick = ncols;
	for (size_t c = 1; c < ncols; c++)
		if (f->w[c] >= cut + MIN_WRAP_WIDTH && (pick == ncols || f->w[c] > f->w[pick]))
			pick = c;
	if (pick == ncols && f->w[0] >= cut + MIN_WRAP_WIDTH)
		pick = 0;
	if (pick < ncols)
		f->w[pick] -= cut;
}

void cli_table_print(struct cli_table *t, FILE *out)
{
	if (t->nrows < 2)
		return; /* nothing but the headers: callers say "(none)" their own way */
	struct fit f = { .limit = (size_t)cli_term_width(fileno(out)) };
	f.w = need(calloc(t->ncols, sizeof(*f.w)));
	fit_widths(t, &f);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(t, r, &f, out);
	free(f.w);
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}

