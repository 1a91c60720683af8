/*
 * table.c - plain text tables for human output, fitted to the terminal.
 *
 * Columns are sized to their content. When the table is wider than the output's width (the
 * terminal's, or COLUMNS when set; unlimited when stdout is a pipe or a file, so that grep and
 * awk see one row per line), long cells wrap onto continuation lines (see fit_widths),
 * breaking at a space, else after '/', '-', '_', '.', ':' or ',', near the end of the line.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

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

struct cli_table *cli_table_new(const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));
	if (!t)
		abort();
	while (headers[t->ncols])
		t->ncols++;
	t->width = calloc(t->ncols, sizeof(size_t));
	if (!t->width)
		abort();
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
		t->cap = t->cap ? t->cap * 2 : 8;
		t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
		if (!t->cells)
			abort();
	}
	for (size_t c = 0; c < t->ncols; c++) {
		const char *v = cells[c] && *cells[c] ? cells[c] : "-";
		char *copy = strdup(v);
		if (!copy)
			abort();
		/* One line per cell: tabs and newlines would break the columns. */
		for (char *p = copy; *p; p++)
			if (*p == '\n' || *p == '\t' || *p == '\r')
				*p = ' ';
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
	const char **rest = calloc(t->ncols, sizeof(*rest));
	if (!rest)
		abort();
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
	f.w = calloc(t->ncols, sizeof(*f.w));
	if (!f.w)
		abort();
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

