/*
 * table.c - plain text tables for human output.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct cli_table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major, nrows+1 rows (row 0 = headers) */
	size_t *width;
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

void cli_table_print(struct cli_table *t, FILE *out)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];
			bool last = c + 1 == t->ncols;
			fputs(v, out);
			if (!last)
				fprintf(out, "%*s", (int)(t->width[c] - text_width(v) + 2), "");
		}
		fputc('\n', out);
	}
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

const char *cli_human_bytes(unsigned long long n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}
