/*
 * pkgbuild.c - the PKGBUILD metadata reader (see pkgbuild.h): a small lexer for the bash subset
 * PKGBUILDs use at top level, a table of the variables assigned so far, and the extraction of
 * the fields rbee needs. Nothing here runs the file or touches the filesystem.
 */
#include "pkgbuild.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rb_buf.h"

/* --- string vectors --- */

int rb_strv_push(struct rb_strv *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 8;
		char **v = cap < SIZE_MAX / sizeof(*v) ? realloc(sv->v, cap * sizeof(*v)) : NULL;
		if (!v)
			return -1;
		sv->v = v;
		sv->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy)
		return -1;
	sv->v[sv->n++] = copy;
	sv->v[sv->n] = NULL;
	return 0;
}

void rb_strv_release(struct rb_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

static int strv_append(struct rb_strv *dst, const struct rb_strv *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (rb_strv_push(dst, src->v[i]))
			return -1;
	return 0;
}

/* --- variables assigned so far --- */

struct var {
	char *name;
	bool is_array;
	struct rb_strv vals; /* a scalar has exactly one value */
	char *bad;           /* why the value is unknown (names the line), or NULL */
	int line;            /* line of the last assignment */
};

struct vars {
	struct var *v;
	size_t n, cap;
};

static struct var *var_find(struct vars *vs, const char *name, size_t len)
{
	for (size_t i = 0; i < vs->n; i++)
		if (strlen(vs->v[i].name) == len && !memcmp(vs->v[i].name, name, len))
			return &vs->v[i];
	return NULL;
}

/* The variable `name`, added when new. NULL when out of memory or past RB_PKGBUILD_MAX_VARS
 * (*too_many tells which). */
static struct var *var_get(struct vars *vs, const char *name, bool *too_many)
{
	struct var *v = var_find(vs, name, strlen(name));
	*too_many = false;
	if (v)
		return v;
	if (vs->n >= RB_PKGBUILD_MAX_VARS) {
		*too_many = true;
		return NULL;
	}
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 32;
		struct var *nv = realloc(vs->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		vs->v = nv;
		vs->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return NULL;
	v = &vs->v[vs->n++];
	memset(v, 0, sizeof(*v));
	v->name = copy;
	return v;
}

static void vars_release(struct vars *vs)
{
	for (size_t i = 0; i < vs->n; i++) {
		free(vs->v[i].name);
		free(vs->v[i].bad);
		rb_strv_release(&vs->v[i].vals);
	}
	free(vs->v);
}

/* --- the lexer --- */

struct lexer {
	const char *s;
	size_t len, pos;
	int line;
	struct vars vars;
	unsigned functions;
	struct rb_err *err;
	/* Set when the current assignment cannot be resolved (a lazily reported problem). */
	char bad[RB_ERR_MSG_MAX];
	/* Heredoc delimiters waiting for the end of the current line (function bodies only). */
	char heredoc[4][64];
	bool heredoc_strip[4];
	int nheredoc;
	/* The expansion budget: bytes produced by expansions and `+=` so far (see pkgbuild.h). */
	size_t expanded;
	/* Memory ran out while building a value: the parse fails (never an abort). */
	bool oom;
};

static int peek(const struct lexer *lx, size_t ahead)
{
	return lx->pos + ahead < lx->len ? (unsigned char)lx->s[lx->pos + ahead] : -1;
}

static void advance(struct lexer *lx, size_t n)
{
	while (n-- && lx->pos < lx->len)
		if (lx->s[lx->pos++] == '\n')
			lx->line++;
}

static bool is_name_start(int c)
{
	return c == '_' || isalpha(c);
}

static bool is_name_char(int c)
{
	return c == '_' || isalnum(c);
}

/* Characters that end an unquoted word. */
static bool is_word_end(int c)
{
	return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' ||
	       c == '<' || c == '>' || c == '(' || c == ')';
}

/* Remember a problem that makes the current assignment unreadable (reported only when used). */
static void mark_bad(struct lexer *lx, const char *fmt, const char *what)
{
	if (lx->bad[0])
		return;
	char msg[RB_ERR_MSG_MAX - 32];
	snprintf(msg, sizeof(msg), fmt, what);
	snprintf(lx->bad, sizeof(lx->bad), "line %d: %s", lx->line, msg);
}

static int syntax_error(struct lexer *lx, int line, const char *what)
{
	return rb_err_set(lx->err, RB_EINVAL, "PKGBUILD line %d: %s", line, what);
}

static int out_of_memory(struct lexer *lx)
{
	return rb_err_set(lx->err, RB_EINTERNAL, "PKGBUILD line %d: out of memory while reading it",
			  lx->line);
}

/* Charge `n` bytes of expansion output to the budget; an error once it is spent. */
static int charge(struct lexer *lx, size_t n)
{
	if (n <= RB_PKGBUILD_MAX_EXPANSION - lx->expanded && lx->expanded <= RB_PKGBUILD_MAX_EXPANSION) {
		lx->expanded += n;
		return 0;
	}
	lx->expanded = RB_PKGBUILD_MAX_EXPANSION + 1;
	char what[200];
	snprintf(what, sizeof(what),
		 "variable expansions produce more than %u KiB (does a value expand itself, such as "
		 "a=\"$a$a\"?); rbee refuses PKGBUILDs whose metadata grows this large",
		 RB_PKGBUILD_MAX_EXPANSION >> 10);
	return syntax_error(lx, lx->line, what);
}

/* --- expansion --- */

/* A word being built; in array context a splicing expansion ends the current word. */
struct word {
	struct rb_buf buf;
	bool exists;   /* quotes or text seen: "" is a word, nothing is not */
	bool split;    /* array context: unquoted expansions split on blanks */
	struct rb_strv *out;
	struct lexer *lx; /* lx->oom is set when memory runs out */
};

static void word_push(struct word *w)
{
	if (w->exists && rb_strv_push(w->out, w->buf.data))
		w->lx->oom = true;
	rb_buf_reset(&w->buf);
	w->exists = false;
}

static void word_addn(struct word *w, const char *s, size_t n)
{
	if (rb_buf_try_add(&w->buf, s, n))
		w->lx->oom = true;
}

static void word_adds(struct word *w, const char *s)
{
	word_addn(w, s, strlen(s));
}

static void word_addch(struct word *w, char c)
{
	word_addn(w, &c, 1);
}

/* Add the values of an expansion: joined by spaces, or one word each when splicing. */
static void word_add_values(struct word *w, const struct rb_strv *vals, bool splice)
{
	for (size_t i = 0; i < vals->n; i++) {
		if (i > 0) {
			if (splice)
				word_push(w);
			else
				word_addch(w, ' ');
		}
		word_adds(w, vals->v[i]);
		w->exists = true;
	}
}

/* Add an unquoted scalar: in array context bash splits it on blanks. */
static void word_add_unquoted(struct word *w, const char *val)
{
	if (!w->split) {
		word_adds(w, val);
		w->exists = w->exists || *val;
		return;
	}
	for (const char *p = val; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n') {
			word_push(w);
			continue;
		}
		word_addch(w, *p);
		w->exists = true;
	}
}

/* A variable's value joins the word: as is inside double quotes, else word-split. */
static void word_add_value(struct word *w, const char *val, bool quoted)
{
	if (quoted) {
		word_adds(w, val);
		w->exists = true;
	} else {
		word_add_unquoted(w, val);
	}
}

/* Look a variable up for expansion; marks the assignment bad when it cannot be known. */
static struct var *lookup(struct lexer *lx, const char *name, size_t len)
{
	struct var *v = var_find(&lx->vars, name, len);
	char shown[96];
	snprintf(shown, sizeof(shown), "%.*s", (int)(len > 64 ? 64 : len), name);
	if (!v) {
		mark_bad(lx, "'$%s' is not set before this line (rbee expands only variables the "
			     "PKGBUILD assigned earlier, and CARCH)", shown);
		return NULL;
	}
	if (v->bad) {
		if (!lx->bad[0])
			snprintf(lx->bad, sizeof(lx->bad), "%s", v->bad);
		return NULL;
	}
	return v;
}

/* Parse `${...}` (pos at '$'). Supports name, name[@], name[*], name[N]. */
static int expand_braced(struct lexer *lx, struct word *w, bool quoted)
{
	int line = lx->line;
	size_t start = lx->pos + 2, end = start;
	while (end < lx->len && lx->s[end] != '}' && lx->s[end] != '\n')
		end++;
	if (end >= lx->len || lx->s[end] != '}')
		return syntax_error(lx, line, "unterminated '${'");
	const char *body = lx->s + start;
	size_t blen = end - start, nlen = 0;
	while (nlen < blen && is_name_char((unsigned char)body[nlen]))
		nlen++;
	advance(lx, end + 1 - lx->pos);
	const char *rest = body + nlen;
	size_t rlen = blen - nlen;
	long index = 0;
	bool all = false;
	if (nlen == 0 || !is_name_start((unsigned char)body[0]) ||
	    (rlen && !(rlen >= 3 && rest[0] == '[' && rest[rlen - 1] == ']'))) {
		char shown[160];
		snprintf(shown, sizeof(shown), "${%.*s}", (int)(blen > 120 ? 120 : blen), body);
		mark_bad(lx, "expansion '%s' is not supported (only ${name}, ${name[@]} and "
			     "${name[N]} can be read without running the PKGBUILD)", shown);
		return 0;
	}
	if (rlen) {
		if (rlen == 3 && (rest[1] == '@' || rest[1] == '*')) {
			all = true;
		} else {
			char *e;
			index = strtol(rest + 1, &e, 10);
			if (e != rest + rlen - 1 || index < 0) {
				mark_bad(lx, "array index in '%s' is not a plain number", "${...}");
				return 0;
			}
		}
	}
	struct var *v = lookup(lx, body, nlen);
	if (!v)
		return 0;
	if (all) {
		/* Each element costs at least a byte, so ("${a[@]}" "${a[@]}") cannot double for free. */
		for (size_t i = 0; i < v->vals.n; i++)
			if (charge(lx, strlen(v->vals.v[i]) + 1))
				return -RB_EINVAL;
		word_add_values(w, &v->vals, w->split);
		return 0;
	}
	const char *val = (size_t)index < v->vals.n ? v->vals.v[index] : "";
	if (charge(lx, strlen(val) + 1))
		return -RB_EINVAL;
	word_add_value(w, val, quoted);
	return 0;
}

/* Parse an expansion starting at '$'. */
static int expand(struct lexer *lx, struct word *w, bool quoted)
{
	int c1 = peek(lx, 1);
	if (c1 == '{')
		return expand_braced(lx, w, quoted);
	if (c1 == '(' || c1 == '\'') {
		mark_bad(lx, "%s cannot be read without running the PKGBUILD",
			 c1 == '(' ? "command substitution '$(...)'" : "ANSI-C quoting $'...'");
		/* Skip it so the lexer stays in step. */
		if (c1 == '\'') {
			advance(lx, 2);
			while (lx->pos < lx->len && lx->s[lx->pos] != '\'')
				advance(lx, lx->s[lx->pos] == '\\' ? 2 : 1);
			advance(lx, 1);
			return 0;
		}
		int depth = 0, line = lx->line;
		advance(lx, 1);
		do {
			int c = peek(lx, 0);
			if (c < 0)
				return syntax_error(lx, line, "unterminated '$('");
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			advance(lx, 1);
		} while (depth > 0);
		return 0;
	}
	if (!is_name_start(c1)) {
		if (c1 >= 0 && !is_word_end(c1) && c1 != '"') {
			char shown[3] = { '$', (char)c1, 0 };
			mark_bad(lx, "special parameter '%s' cannot be read without running the PKGBUILD",
				 shown);
			advance(lx, 2);
			return 0;
		}
		word_addch(w, '$'); /* a lone '$' is literal */
		w->exists = true;
		advance(lx, 1);
		return 0;
	}
	size_t start = lx->pos + 1, end = start;
	while (end < lx->len && is_name_char((unsigned char)lx->s[end]))
		end++;
	advance(lx, end - lx->pos);
	struct var *v = lookup(lx, lx->s + start, end - start);
	if (!v)
		return 0;
	const char *val = v->vals.n ? v->vals.v[0] : "";
	if (charge(lx, strlen(val) + 1))
		return -RB_EINVAL;
	word_add_value(w, val, quoted);
	return 0;
}

static int read_single_quoted(struct lexer *lx, struct word *w)
{
	int line = lx->line;
	advance(lx, 1);
	while (lx->pos < lx->len && lx->s[lx->pos] != '\'') {
		word_addch(w, lx->s[lx->pos]);
		advance(lx, 1);
	}
	if (lx->pos >= lx->len)
		return syntax_error(lx, line, "unterminated single quote");
	advance(lx, 1);
	w->exists = true;
	return 0;
}

static int read_double_quoted(struct lexer *lx, struct word *w)
{
	int line = lx->line;
	advance(lx, 1);
	w->exists = true;
	for (;;) {
		int c = peek(lx, 0);
		if (c < 0)
			return syntax_error(lx, line, "unterminated double quote");
		if (c == '"') {
			advance(lx, 1);
			return 0;
		}
		if (c == '\\') {
			int n = peek(lx, 1);
			if (n == '\n') {
				advance(lx, 2); /* line continuation */
				continue;
			}
			if (n == '$' || n == '`' || n == '"' || n == '\\') {
				word_addch(w, (char)n);
				advance(lx, 2);
				continue;
			}
			word_addch(w, '\\');
			advance(lx, 1);
			continue;
		}
		if (c == '`') {
			mark_bad(lx, "%s cannot be read without running the PKGBUILD",
				 "command substitution `...`");
			advance(lx, 1);
			while (peek(lx, 0) >= 0 && peek(lx, 0) != '`')
				advance(lx, 1);
			advance(lx, 1);
			continue;
		}
		if (c == '$') {
			int rc = expand(lx, w, true);
			if (rc)
				return rc;
			continue;
		}
		word_addch(w, (char)c);
		advance(lx, 1);
	}
}

/* Read one shell word at pos into w (which may push several words when splicing). */
static int read_word(struct lexer *lx, struct word *w)
{
	for (;;) {
		int c = peek(lx, 0);
		if (is_word_end(c))
			break;
		int rc = 0;
		if (c == '\'') {
			rc = read_single_quoted(lx, w);
		} else if (c == '"') {
			rc = read_double_quoted(lx, w);
		} else if (c == '$') {
			rc = expand(lx, w, false);
		} else if (c == '`') {
			mark_bad(lx, "%s cannot be read without running the PKGBUILD",
				 "command substitution `...`");
			advance(lx, 1);
			while (peek(lx, 0) >= 0 && peek(lx, 0) != '`')
				advance(lx, 1);
			advance(lx, 1);
		} else if (c == '\\') {
			int n = peek(lx, 1);
			if (n != '\n' && n >= 0) {
				word_addch(w, (char)n);
				w->exists = true;
			}
			advance(lx, n >= 0 ? 2 : 1);
		} else {
			word_addch(w, (char)c);
			w->exists = true;
			advance(lx, 1);
		}
		if (rc)
			return rc;
		if (lx->oom)
			return out_of_memory(lx);
	}
	return 0;
}

/* Skip blanks and line continuations (not newlines). */
static void skip_blanks(struct lexer *lx)
{
	for (;;) {
		int c = peek(lx, 0);
		if (c == ' ' || c == '\t' || c == '\r')
			advance(lx, 1);
		else if (c == '\\' && peek(lx, 1) == '\n')
			advance(lx, 2);
		else
			return;
	}
}

static void skip_comment(struct lexer *lx)
{
	while (peek(lx, 0) >= 0 && peek(lx, 0) != '\n')
		advance(lx, 1);
}

/* --- assignments --- */

/* Parse `( words... )` (pos at '('). */
static int read_array(struct lexer *lx, struct rb_strv *out)
{
	int line = lx->line;
	advance(lx, 1);
	struct word w = { RB_BUF_INIT, false, true, out, lx };
	int rc = 0;
	for (;;) {
		skip_blanks(lx);
		int c = peek(lx, 0);
		if (c < 0) {
			rc = syntax_error(lx, line, "array is not closed with ')'");
			break;
		}
		if (c == '\n') {
			advance(lx, 1);
			continue;
		}
		if (c == '#') {
			skip_comment(lx);
			continue;
		}
		if (c == ')') {
			advance(lx, 1);
			break;
		}
		if (is_word_end(c)) {
			char what[64];
			snprintf(what, sizeof(what), "unexpected '%c' inside an array", c);
			rc = syntax_error(lx, lx->line, what);
			break;
		}
		rc = read_word(lx, &w);
		if (rc)
			break;
		word_push(&w);
		if (lx->oom) {
			rc = out_of_memory(lx);
			break;
		}
	}
	rb_buf_release(&w.buf);
	return rc;
}

/* Parse the value after `name=` / `name+=` and store it. */
static int assign(struct lexer *lx, const char *name, bool append)
{
	int line = lx->line;
	struct rb_strv vals = RB_STRV_INIT;
	bool is_array = peek(lx, 0) == '(';
	lx->bad[0] = '\0';
	int rc;
	if (is_array) {
		rc = read_array(lx, &vals);
	} else {
		struct word w = { RB_BUF_INIT, true, false, &vals, lx };
		rc = read_word(lx, &w);
		if (!rc)
			word_push(&w);
		rb_buf_release(&w.buf);
		if (!rc && lx->oom)
			rc = out_of_memory(lx);
	}
	if (rc) {
		rb_strv_release(&vals);
		return rc;
	}
	bool too_many;
	struct var *v = var_get(&lx->vars, name, &too_many);
	if (!v) {
		rb_strv_release(&vals);
		if (!too_many)
			return out_of_memory(lx);
		char what[160];
		snprintf(what, sizeof(what), "more than %d variables are assigned; rbee refuses "
			 "PKGBUILDs this large", RB_PKGBUILD_MAX_VARS);
		return syntax_error(lx, line, what);
	}
	if (lx->bad[0] || (append && v->bad)) {
		if (!lx->bad[0])
			snprintf(lx->bad, sizeof(lx->bad), "%s", v->bad);
		char *bad = strdup(lx->bad);
		if (!bad) {
			rb_strv_release(&vals);
			return out_of_memory(lx);
		}
		free(v->bad);
		v->bad = bad;
	} else if (append) {
		if (!is_array && !v->is_array && v->vals.n) {
			/* scalar += scalar concatenates: the copy is charged to the budget, so a long
			 * run of a+=x lines cannot turn into quadratic copying */
			struct rb_buf cat = RB_BUF_INIT;
			rc = charge(lx, strlen(v->vals.v[0]) + strlen(vals.v[0]));
			if (!rc && (rb_buf_try_add(&cat, v->vals.v[0], strlen(v->vals.v[0])) ||
				    rb_buf_try_add(&cat, vals.v[0], strlen(vals.v[0]))))
				rc = out_of_memory(lx);
			if (!rc) {
				rb_strv_release(&v->vals);
				if (rb_strv_push(&v->vals, cat.data))
					rc = out_of_memory(lx);
			}
			rb_buf_release(&cat);
		} else {
			if (strv_append(&v->vals, &vals))
				rc = out_of_memory(lx);
			v->is_array = v->is_array || is_array;
		}
		if (rc) {
			rb_strv_release(&vals);
			return rc;
		}
	} else {
		free(v->bad);
		v->bad = NULL;
		rb_strv_release(&v->vals);
		v->vals = vals;
		vals = (struct rb_strv)RB_STRV_INIT;
		v->is_array = is_array;
	}
	v->line = line;
	rb_strv_release(&vals);
	return 0;
}

/* --- function bodies: skipped unread, honouring quotes, comments and heredocs --- */

static void queue_heredoc(struct lexer *lx)
{
	/* pos is after "<<" */
	bool strip = peek(lx, 0) == '-';
	if (strip)
		advance(lx, 1);
	skip_blanks(lx);
	char delim[64];
	size_t n = 0;
	while (!is_word_end(peek(lx, 0)) && n + 1 < sizeof(delim)) {
		int c = peek(lx, 0);
		if (c != '\'' && c != '"' && c != '\\')
			delim[n++] = (char)c;
		advance(lx, 1);
	}
	delim[n] = '\0';
	if (n && lx->nheredoc < 4) {
		memcpy(lx->heredoc[lx->nheredoc], delim, n + 1);
		lx->heredoc_strip[lx->nheredoc++] = strip;
	}
}

/* At the start of a line after one that opened heredocs: skip their bodies. */
static void skip_heredocs(struct lexer *lx)
{
	for (int i = 0; i < lx->nheredoc; i++) {
		while (lx->pos < lx->len) {
			size_t eol = lx->pos;
			while (eol < lx->len && lx->s[eol] != '\n')
				eol++;
			size_t b = lx->pos;
			if (lx->heredoc_strip[i])
				while (b < eol && lx->s[b] == '\t')
					b++;
			bool end = eol - b == strlen(lx->heredoc[i]) &&
				   !memcmp(lx->s + b, lx->heredoc[i], eol - b);
			advance(lx, eol + 1 - lx->pos);
			if (end)
				break;
		}
	}
	lx->nheredoc = 0;
}

static int skip_quoted_simple(struct lexer *lx, char q, bool escapes)
{
	int line = lx->line;
	advance(lx, 1);
	while (lx->pos < lx->len && lx->s[lx->pos] != q)
		advance(lx, escapes && lx->s[lx->pos] == '\\' ? 2 : 1);
	if (lx->pos >= lx->len)
		return syntax_error(lx, line, q == '`' ? "unterminated '`'" : "unterminated quote");
	advance(lx, 1);
	return 0;
}

/* One level of nesting while skipping a function body: shell text closed by `close` ('}' or
 * ')'), or a double-quoted string (close == '"'). */
struct skip_level {
	char close;
	int depth; /* unquoted `open` characters seen and not yet closed at this level */
	int line;  /* where it opened, for messages */
};

/*
 * Skip shell text up to the `close` ('}' or ')') that balances at depth 0, consuming it. The
 * nesting of $(...), ${...} and "..." is kept on an explicit stack of at most
 * RB_PKGBUILD_MAX_DEPTH levels, so no input can exhaust the thread's stack; deeper nesting is
 * refused naming the line.
 */
static int skip_shell(struct lexer *lx, char close)
{
	struct skip_level stack[RB_PKGBUILD_MAX_DEPTH];
	int top = 0;
	stack[0] = (struct skip_level){ close, 0, lx->line };
	bool word_start = true;
	while (lx->pos < lx->len) {
		struct skip_level *lv = &stack[top];
		int c = peek(lx, 0), rc = 0;
		bool next_start = false;
		char push = 0;
		if (lv->close == '"') {
			/* inside double quotes: only \, $(, ` and the closing quote matter */
			if (c == '"') {
				advance(lx, 1);
				top--;
			} else if (c == '\\') {
				advance(lx, 2);
			} else if (c == '$' && peek(lx, 1) == '(') {
				advance(lx, 2);
				push = ')';
			} else if (c == '`') {
				rc = skip_quoted_simple(lx, '`', true);
			} else {
				advance(lx, 1);
			}
		} else if (c == '\\') {
			advance(lx, 2);
		} else if (c == '\'') {
			rc = skip_quoted_simple(lx, '\'', false);
		} else if (c == '"') {
			advance(lx, 1);
			push = '"';
		} else if (c == '`') {
			rc = skip_quoted_simple(lx, '`', true);
		} else if (c == '#' && word_start) {
			skip_comment(lx);
		} else if (c == '$' && (peek(lx, 1) == '(' || peek(lx, 1) == '{')) {
			push = peek(lx, 1) == '(' ? ')' : '}';
			advance(lx, 2);
		} else if (c == '$' && peek(lx, 1) == '\'') {
			advance(lx, 1);
			rc = skip_quoted_simple(lx, '\'', true);
		} else if (c == '<' && peek(lx, 1) == '<' && peek(lx, 2) != '<') {
			advance(lx, 2);
			queue_heredoc(lx);
		} else if (c == '\n') {
			advance(lx, 1);
			if (lx->nheredoc)
				skip_heredocs(lx);
			next_start = true;
		} else {
			char open = lv->close == '}' ? '{' : '(';
			if (c == open) {
				lv->depth++;
			} else if (c == lv->close) {
				if (lv->depth == 0) {
					advance(lx, 1);
					if (top == 0)
						return 0;
					top--;
					word_start = false;
					continue;
				}
				lv->depth--;
			}
			next_start = strchr(" \t;&|(){}", c) != NULL;
			advance(lx, 1);
		}
		if (rc)
			return rc;
		if (push) {
			if (top + 1 >= RB_PKGBUILD_MAX_DEPTH) {
				char what[160];
				snprintf(what, sizeof(what), "a function body nests $(...), ${...} and quotes "
					 "more than %d levels deep; rbee refuses it", RB_PKGBUILD_MAX_DEPTH);
				return syntax_error(lx, lx->line, what);
			}
			stack[++top] = (struct skip_level){ push, 0, lx->line };
			next_start = push != '"';
		}
		word_start = next_start;
	}
	const struct skip_level *lv = &stack[top];
	return syntax_error(lx, lv->line, lv->close == '"' ? "unterminated double quote"
					  : lv->close == '}' && top == 0 ? "function body is not closed with '}'"
					  : lv->close == '}' ? "'${' is not closed with '}'"
							     : "'(' is not closed with ')'");
}

static void note_function(struct lexer *lx, const char *name)
{
	static const char *const fns[] = { "prepare", "build", "check", "package" };
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(name, fns[i]))
			lx->functions |= 1u << i;
}

/* pos after the function name (and optional "()"): skip to '{' and past the body. */
static int skip_function(struct lexer *lx, const char *name)
{
	int line = lx->line;
	for (;;) {
		skip_blanks(lx);
		int c = peek(lx, 0);
		if (c == '\n') {
			advance(lx, 1);
		} else if (c == '#') {
			skip_comment(lx);
		} else {
			break;
		}
	}
	if (peek(lx, 0) != '{') {
		char what[200];
		snprintf(what, sizeof(what), "function '%s' must have a body in '{ ... }'", name);
		return syntax_error(lx, line, what);
	}
	advance(lx, 1);
	int rc = skip_shell(lx, '}');
	if (!rc)
		note_function(lx, name);
	return rc;
}

/* --- statements --- */

static bool is_fn_name_char(int c)
{
	return is_name_char(c) || c == '-' || c == '.' || c == ':' || c == '+' || c == '@';
}

/* After an assignment or function: only blanks, ';', a comment or a newline may follow. */
static int end_of_statement(struct lexer *lx, bool *more_assignments)
{
	skip_blanks(lx);
	int c = peek(lx, 0);
	*more_assignments = false;
	if (c < 0 || c == '\n' || c == ';' || c == '#')
		return 0;
	if (is_name_start(c)) {
		*more_assignments = true; /* a=1 b=2 */
		return 0;
	}
	char what[96];
	snprintf(what, sizeof(what), "unexpected '%c' after an assignment", c);
	return syntax_error(lx, lx->line, what);
}

static int refuse_statement(struct lexer *lx, const char *word)
{
	char what[400];
	snprintf(what, sizeof(what),
		 "'%s' is a command; rbee reads PKGBUILDs without running them, so the top level may "
		 "only assign variables and define functions (use _<arch> arrays instead of "
		 "conditionals)",
		 word);
	return syntax_error(lx, lx->line, what);
}

/* `name=value` or `name+=value` (pos at '=' or '+'). Further assignments on the line (a=1 b=2)
 * are left for the caller's loop: nothing here recurses, whatever the line holds. */
static int assignment(struct lexer *lx, const char *name)
{
	bool append = peek(lx, 0) == '+';
	advance(lx, append ? 2 : 1);
	int rc = assign(lx, name, append);
	bool more;
	if (!rc)
		rc = end_of_statement(lx, &more);
	return rc;
}

/* One top-level statement starting at a name-ish word ("export"/"readonly" prefixes loop). */
static int statement(struct lexer *lx)
{
	char word[128];
	size_t n;
next:
	n = 0;
	/* A variable name first (so "a+=" is an assignment), then the wider function-name set. */
	while (is_name_char(peek(lx, 0)) && n + 1 < sizeof(word)) {
		word[n++] = (char)peek(lx, 0);
		advance(lx, 1);
	}
	bool plain = n > 0 && is_name_start((unsigned char)word[0]);
	if (plain && (peek(lx, 0) == '=' || (peek(lx, 0) == '+' && peek(lx, 1) == '='))) {
		word[n] = '\0';
		return assignment(lx, word);
	}
	while (is_fn_name_char(peek(lx, 0)) && n + 1 < sizeof(word)) {
		word[n++] = (char)peek(lx, 0);
		advance(lx, 1);
	}
	word[n] = '\0';
	if (n == 0) {
		char c[2] = { (char)peek(lx, 0), 0 };
		return refuse_statement(lx, c);
	}
	if (!strcmp(word, "function")) {
		skip_blanks(lx);
		n = 0;
		while (is_fn_name_char(peek(lx, 0)) && n + 1 < sizeof(word)) {
			word[n++] = (char)peek(lx, 0);
			advance(lx, 1);
		}
		word[n] = '\0';
		skip_blanks(lx);
		if (peek(lx, 0) == '(' && peek(lx, 1) == ')')
			advance(lx, 2);
		return n ? skip_function(lx, word) : refuse_statement(lx, "function");
	}
	if (!strcmp(word, "export") || !strcmp(word, "readonly")) {
		skip_blanks(lx);
		if (!is_name_start(peek(lx, 0)))
			return refuse_statement(lx, word);
		goto next;
	}
	skip_blanks(lx);
	if (peek(lx, 0) == '(') {
		advance(lx, 1);
		skip_blanks(lx);
		if (peek(lx, 0) != ')')
			return refuse_statement(lx, word);
		advance(lx, 1);
		return skip_function(lx, word);
	}
	return refuse_statement(lx, word);
}

static int lex_all(struct lexer *lx)
{
	for (;;) {
		int c = peek(lx, 0);
		if (c < 0)
			return 0;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';') {
			advance(lx, 1);
			continue;
		}
		if (c == '\\' && peek(lx, 1) == '\n') {
			advance(lx, 2);
			continue;
		}
		if (c == '#') {
			skip_comment(lx);
			continue;
		}
		int rc = statement(lx);
		if (rc)
			return rc;
	}
}

/* --- extracting the fields --- */

struct extract {
	struct lexer *lx;
	const char *carch;
	struct rb_err *err;
};

/* A variable rbee reads: NULL when unset; an error when it could not be read. */
static int field_var(struct extract *ex, const char *name, struct var **out)
{
	*out = var_find(&ex->lx->vars, name, strlen(name));
	if (*out && (*out)->bad)
		return rb_err_set(ex->err, RB_EINVAL, "PKGBUILD field '%s' cannot be read: %s", name,
				  (*out)->bad);
	return 0;
}

static int field_scalar(struct extract *ex, const char *name, bool required, char **out)
{
	struct var *v;
	int rc = field_var(ex, name, &v);
	if (rc)
		return rc;
	if (!v || v->vals.n == 0 || (!v->vals.v[0][0] && required)) {
		if (required)
			return rb_err_set(ex->err, RB_EINVAL,
					  "PKGBUILD does not set '%s', which is required "
					  "(e.g. %s=... on a line of its own)", name, name);
		return 0;
	}
	if (v->is_array && v->vals.n != 1)
		return rb_err_set(ex->err, RB_EINVAL,
				  "PKGBUILD line %d: '%s' must be one value, not an array of %zu%s",
				  v->line, name, v->vals.n,
				  !strcmp(name, "pkgname") ? " (split packages are not supported)" : "");
	*out = strdup(v->vals.v[0]);
	if (!*out)
		return rb_err_set(ex->err, RB_EINTERNAL, "out of memory reading the PKGBUILD");
	return 0;
}

/* Copy an array field and, when `arch_variant`, its _<CARCH> variant after it. */
static int field_array(struct extract *ex, const char *name, bool arch_variant,
		       struct rb_strv *out)
{
	struct var *v;
	int rc = field_var(ex, name, &v);
	if (rc)
		return rc;
	if (v && strv_append(out, &v->vals))
		return rb_err_set(ex->err, RB_EINTERNAL, "out of memory reading the PKGBUILD");
	if (!arch_variant)
		return 0;
	char vname[96];
	snprintf(vname, sizeof(vname), "%s_%s", name, ex->carch);
	rc = field_var(ex, vname, &v);
	if (rc)
		return rc;
	if (v && strv_append(out, &v->vals))
		return rb_err_set(ex->err, RB_EINTERNAL, "out of memory reading the PKGBUILD");
	return 0;
}

static bool chars_ok(const char *s, const char *extra, bool alnum)
{
	for (; *s; s++)
		if (!(alnum && isalnum((unsigned char)*s)) && !strchr(extra, *s))
			return false;
	return true;
}

/* Checks the values rbee relies on (names used in paths, versions in metadata). */
static int check_values(struct extract *ex, struct rb_pkgbuild *pb)
{
	struct var *v;
	int line;
#define LINE_OF(name) (v = var_find(&ex->lx->vars, name, strlen(name)), line = v ? v->line : 0)
	if (pb->pkgname[0] == '-' || pb->pkgname[0] == '.' || !chars_ok(pb->pkgname, "@._+-", true))
		return LINE_OF("pkgname"), rb_err_set(ex->err, RB_EINVAL,
			"PKGBUILD line %d: invalid pkgname '%s': use letters, digits and @._+- "
			"(not starting with '-' or '.')", line, pb->pkgname);
	if (!chars_ok(pb->pkgver, "._+~", true))
		return LINE_OF("pkgver"), rb_err_set(ex->err, RB_EINVAL,
			"PKGBUILD line %d: invalid pkgver '%s': use letters, digits and ._+~ (no "
			"hyphens, colons, slashes or spaces)", line, pb->pkgver);
	char *e;
	strtoul(pb->pkgrel, &e, 10);
	if (!isdigit((unsigned char)pb->pkgrel[0]) || (*e && (*e != '.' || !isdigit((unsigned char)e[1]) ||
							      !chars_ok(e + 1, "", true))))
		return LINE_OF("pkgrel"), rb_err_set(ex->err, RB_EINVAL,
			"PKGBUILD line %d: invalid pkgrel '%s': use a number such as 1 or 2.1", line,
			pb->pkgrel);
	if (pb->epoch && !chars_ok(pb->epoch, "0123456789", false))
		return LINE_OF("epoch"), rb_err_set(ex->err, RB_EINVAL,
			"PKGBUILD line %d: invalid epoch '%s': use a number", line, pb->epoch);
	if (pb->arch.n == 0)
		return rb_err_set(ex->err, RB_EINVAL,
				  "PKGBUILD does not set 'arch', which is required (e.g. arch=('x86_64' "
				  "'aarch64') or arch=('any'))");
	for (size_t i = 0; i < pb->arch.n; i++)
		if (!pb->arch.v[i][0] || !chars_ok(pb->arch.v[i], "_", true))
			return LINE_OF("arch"), rb_err_set(ex->err, RB_EINVAL,
				"PKGBUILD line %d: invalid arch '%s'", line, pb->arch.v[i]);
#undef LINE_OF
	return 0;
}

/* Each source array (common, _<arch>) needs a checksum array of the same length. */
static int check_counts(struct extract *ex, const char *carch)
{
	for (int pass = 0; pass < 2; pass++) {
		char sname[64], cname[64];
		snprintf(sname, sizeof(sname), pass ? "source_%s" : "source", carch);
		snprintf(cname, sizeof(cname), pass ? "sha256sums_%s" : "sha256sums", carch);
		struct var *s = var_find(&ex->lx->vars, sname, strlen(sname));
		struct var *c = var_find(&ex->lx->vars, cname, strlen(cname));
		size_t ns = s ? s->vals.n : 0, nc = c ? c->vals.n : 0;
		if (ns == nc)
			continue;
		if (!c)
			return rb_err_set(ex->err, RB_EINVAL,
					  "PKGBUILD line %d: '%s' lists %zu source%s but there is no "
					  "'%s' (add one sha256 per source; 'SKIP' only for git sources)",
					  s->line, sname, ns, ns == 1 ? "" : "s", cname);
		return rb_err_set(ex->err, RB_EINVAL,
				  "PKGBUILD line %d: '%s' has %zu entr%s but '%s' lists %zu source%s "
				  "(one sha256 per source, in the same order)",
				  c->line, cname, nc, nc == 1 ? "y" : "ies", sname, ns, ns == 1 ? "" : "s");
	}
	return 0;
}

static int extract_fields(struct lexer *lx, const char *carch, struct rb_pkgbuild *pb,
			  struct rb_err *err)
{
	struct extract ex = { lx, carch, err };
	int rc;
	if ((rc = field_scalar(&ex, "pkgname", true, &pb->pkgname)) ||
	    (rc = field_scalar(&ex, "pkgver", true, &pb->pkgver)) ||
	    (rc = field_scalar(&ex, "pkgrel", true, &pb->pkgrel)) ||
	    (rc = field_scalar(&ex, "epoch", false, &pb->epoch)) ||
	    (rc = field_scalar(&ex, "pkgdesc", false, &pb->pkgdesc)) ||
	    (rc = field_scalar(&ex, "url", false, &pb->url)) ||
	    (rc = field_array(&ex, "arch", false, &pb->arch)) ||
	    (rc = field_array(&ex, "license", false, &pb->license)) ||
	    (rc = field_array(&ex, "depends", true, &pb->depends)) ||
	    (rc = field_array(&ex, "makedepends", true, &pb->makedepends)) ||
	    (rc = field_array(&ex, "source", true, &pb->source)) ||
	    (rc = field_array(&ex, "sha256sums", true, &pb->sha256sums)) ||
	    (rc = field_array(&ex, "noextract", false, &pb->noextract)) ||
	    (rc = field_array(&ex, "rbee_options", false, &pb->rbee_options)) ||
	    (rc = check_values(&ex, pb)) || (rc = check_counts(&ex, carch)))
		return rc;
	return 0;
}

int rb_pkgbuild_parse(const char *text, size_t len, const char *carch, struct rb_pkgbuild *pb,
		      struct rb_err *err)
{
	memset(pb, 0, sizeof(*pb));
	if (!carch || !*carch || strlen(carch) >= sizeof(pb->carch) || !chars_ok(carch, "_", true))
		return rb_err_set(err, RB_EINTERNAL, "invalid CARCH '%s'", carch ? carch : "");
	snprintf(pb->carch, sizeof(pb->carch), "%s", carch);
	if (memchr(text, '\0', len))
		return rb_err_set(err, RB_EINVAL, "PKGBUILD holds a NUL byte: not a text file");
	struct lexer lx = { .s = text, .len = len, .line = 1, .err = err };
	bool too_many;
	struct var *cv = var_get(&lx.vars, "CARCH", &too_many);
	int rc = !cv || rb_strv_push(&cv->vals, carch) ? out_of_memory(&lx) : 0;
	if (!rc)
		rc = lex_all(&lx);
	if (!rc)
		rc = extract_fields(&lx, carch, pb, err);
	if (!rc)
		pb->functions = lx.functions;
	vars_release(&lx.vars);
	return rc;
}

void rb_pkgbuild_release(struct rb_pkgbuild *pb)
{
	free(pb->pkgname);
	free(pb->pkgver);
	free(pb->pkgrel);
	free(pb->epoch);
	free(pb->pkgdesc);
	free(pb->url);
	struct rb_strv *arrays[] = { &pb->arch, &pb->license, &pb->depends, &pb->makedepends,
				     &pb->source, &pb->sha256sums, &pb->noextract,
				     &pb->rbee_options };
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
		rb_strv_release(arrays[i]);
	memset(pb, 0, sizeof(*pb));
}

bool rb_pkgbuild_has_option(const struct rb_pkgbuild *pb, const char *opt)
{
	for (size_t i = 0; i < pb->rbee_options.n; i++)
		if (!strcmp(pb->rbee_options.v[i], opt))
			return true;
	return false;
}

bool rb_pkgbuild_supports_arch(const struct rb_pkgbuild *pb, const char *carch)
{
	for (size_t i = 0; i < pb->arch.n; i++)
		if (!strcmp(pb->arch.v[i], carch) || !strcmp(pb->arch.v[i], "any"))
			return true;
	return false;
}

const char *rb_pkg_fn_name(enum rb_pkg_fn fn)
{
	switch (fn) {
	case RB_PKG_FN_PREPARE:
		return "prepare";
	case RB_PKG_FN_BUILD:
		return "build";
	case RB_PKG_FN_CHECK:
		return "check";
	case RB_PKG_FN_PACKAGE:
		return "package";
	}
	return "?";
}

/* --- sources --- */

static int source_name_check(const char *entry, const char *name, struct rb_err *err)
{
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/') ||
	    name[0] == '-')
		return rb_err_set(err, RB_EINVAL,
				  "source '%s': '%s' is not a plain file name (use 'name::url' to "
				  "give it one)", entry, name);
	return 0;
}

/* The last path component of a URL or path, without query or fragment. */
static void url_basename(const char *url, char *out, size_t outlen)
{
	size_t end = strcspn(url, "?#");
	while (end > 0 && url[end - 1] == '/')
		end--;
	size_t start = end;
	while (start > 0 && url[start - 1] != '/')
		start--;
	snprintf(out, outlen, "%.*s", (int)(end - start), url + start);
}

static int git_fragment(const char *entry, struct rb_source *src, struct rb_err *err)
{
	char *hash = strchr(src->url, '#');
	if (!hash)
		return 0;
	*hash = '\0';
	const char *frag = hash + 1;
	const char *eq = strchr(frag, '=');
	static const char *const kinds[] = { "tag", "branch", "commit" };
	for (size_t i = 0; eq && i < 3; i++) {
		if (strlen(kinds[i]) == (size_t)(eq - frag) && !strncmp(frag, kinds[i], (size_t)(eq - frag))) {
			if (!eq[1] || strlen(eq + 1) >= sizeof(src->ref) || eq[1] == '-')
				break;
			snprintf(src->ref_kind, sizeof(src->ref_kind), "%s", kinds[i]);
			snprintf(src->ref, sizeof(src->ref), "%s", eq + 1);
			return 0;
		}
	}
	return rb_err_set(err, RB_EINVAL,
			  "source '%s': unknown fragment '#%s' (use #tag=..., #branch=... or "
			  "#commit=...)", entry, frag);
}

/* The git transports a source may use: a plain URL of a network or local repository. The
 * host part may not start with '-' (git would read it as an option of ssh). */
static bool git_url_ok(const char *url)
{
	static const char *const schemes[] = { "https://", "http://", "git://", "ssh://", "file://" };
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i]);
		if (!strncmp(url, schemes[i], n))
			return url[n] != '-';
	}
	return false;
}

int rb_source_parse(const char *entry, struct rb_source *src, struct rb_err *err)
{
	memset(src, 0, sizeof(*src));
	const char *rest = entry;
	const char *sep = strstr(entry, "::");
	if (sep) {
		if ((size_t)(sep - entry) >= sizeof(src->name))
			return rb_err_set(err, RB_EINVAL, "source '%s': name too long", entry);
		memcpy(src->name, entry, (size_t)(sep - entry));
		rest = sep + 2;
	}
	if (!*rest)
		return rb_err_set(err, RB_EINVAL, "source '%s' names no file or URL", entry);
	if (strlen(rest) >= sizeof(src->url))
		return rb_err_set(err, RB_EINVAL, "source '%.64s...': URL too long", entry);
	bool git = !strncmp(rest, "git+", 4);
	snprintf(src->url, sizeof(src->url), "%s", git ? rest + 4 : rest);
	bool has_scheme = strstr(src->url, "://") != NULL;
	if (git) {
		src->kind = RB_SOURCE_GIT;
		int rc = git_fragment(entry, src, err);
		if (rc)
			return rc;
		if (!git_url_ok(src->url))
			return rb_err_set(err, RB_EINVAL,
					  "source '%s': a git URL must start with https://, http://, "
					  "git://, ssh:// or file:// (other git transports, such as "
					  "'ext::', are refused)", entry);
	} else if (!strncmp(src->url, "http://", 7) || !strncmp(src->url, "https://", 8)) {
		src->kind = RB_SOURCE_HTTP;
	} else if (!strncmp(src->url, "file://", 7)) {
		src->kind = RB_SOURCE_FILE_URL;
	} else if (has_scheme) {
		return rb_err_set(err, RB_EINVAL,
				  "source '%s': unsupported URL scheme (rbee fetches http://, "
				  "https://, file:// and git+<url> sources)", entry);
	} else {
		src->kind = RB_SOURCE_LOCAL;
	}
	if (!src->name[0]) {
		url_basename(src->url, src->name, sizeof(src->name));
		size_t n = strlen(src->name);
		if (git && n > 4 && !strcmp(src->name + n - 4, ".git"))
			src->name[n - 4] = '\0';
	}
	return source_name_check(entry, src->name, err);
}

bool rb_source_is_vcs(const struct rb_source *src)
{
	return src->kind == RB_SOURCE_GIT;
}

int rb_source_check_sha256(const struct rb_source *src, const char *expected, const char *actual,
			   struct rb_err *err)
{
	if (!expected)
		return rb_err_set(err, RB_EINVAL, "source '%s' has no sha256sums entry", src->name);
	if (!strcmp(expected, "SKIP")) {
		if (rb_source_is_vcs(src))
			return 0;
		return rb_err_set(err, RB_EINVAL,
				  "source '%s' has sha256sum 'SKIP', which is accepted only for git "
				  "sources: put the file's sha256 in sha256sums", src->name);
	}
	if (strlen(expected) != 64 || strspn(expected, "0123456789abcdefABCDEF") != 64)
		return rb_err_set(err, RB_EINVAL,
				  "source '%s': sha256sums entry '%s' is not 64 hex digits", src->name,
				  expected);
	if (rb_source_is_vcs(src))
		return rb_err_set(err, RB_EINVAL,
				  "source '%s' is a git source: its sha256sums entry must be 'SKIP' "
				  "(pin it with #commit= or #tag= instead)", src->name);
	if (!actual || strcasecmp(expected, actual) != 0)
		return rb_err_set(err, RB_EIO,
				  "sha256 mismatch for source '%s': the PKGBUILD expects %s, the "
				  "file has %s (the download is corrupt or the PKGBUILD is out of date)",
				  src->name, expected, actual ? actual : "(nothing)");
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && !strcasecmp(s + n - m, suffix);
}

int rb_source_archive_type(const char *name)
{
	static const char *const tars[] = { ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz",
					    ".tar.zst", ".tzst", ".tar.bz2", ".tbz2", ".tar.lz",
					    ".tar.lzma", ".tar.Z" };
	for (size_t i = 0; i < sizeof(tars) / sizeof(tars[0]); i++)
		if (ends_with(name, tars[i]))
			return 't';
	if (ends_with(name, ".zip"))
		return 'z';
	return 0;
}
