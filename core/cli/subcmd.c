/*
 * subcmd.c - the shape every `rbee <group> <command> [id]` level shares: a table of commands
 * with aliases, one optional positional argument, and --help at each level.
 */
#include <string.h>

#include "cli.h"
#include "rb_json.h"

bool cli_is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h") || !strcmp(arg, "help");
}

const char *cli_str_or(struct json_object *obj, const char *key, const char *def)
{
	const char *s = cli_jstr(obj, key);
	return s ? s : def;
}

/* Print `text` reflowed (any run of whitespace is one space) into lines of at most `width`
 * columns, each starting with `indent` spaces. */
static void print_wrapped(FILE *out, const char *text, int indent, size_t width)
{
	size_t col = 0;
	while (*text) {
		while (*text == ' ' || *text == '\n')
			text++;
		size_t n = strcspn(text, " \n");
		if (!n)
			break;
		if (col && col + 1 + n > width) {
			fputc('\n', out);
			col = 0;
		}
		if (!col) {
			fprintf(out, "%*s", indent, "");
			col = (size_t)indent;
		} else {
			fputc(' ', out);
			col++;
		}
		fwrite(text, 1, n, out);
		col += n;
		text += n;
	}
	if (col)
		fputc('\n', out);
}

static void subcmd_usage(const char *group, const struct cli_subcmd *s, FILE *out)
{
	fprintf(out, "usage: rbee %s %s%s%s%s%s\n\n", group, s->name, s->alias ? " | " : "",
		s->alias ? s->alias : "", s->args[0] ? " " : "", s->args);
	print_wrapped(out, s->help, 2, 78);
	fputs("\noptions: --json (print the result JSON only), --hive URL, --help\n", out);
}

static int run_subcmd(struct cli *cli, const char *group, const struct cli_subcmd *s,
		      const char *arg_what, int argc, char **argv)
{
	const char *arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			subcmd_usage(group, s, stdout);
			return CLI_OK;
		}
		if (argv[i][0] == '-' || arg || !s->args[0]) {
			fprintf(stderr, "rbee: unexpected argument '%s' for 'rbee %s %s'\n\n", argv[i],
				group, s->name);
			subcmd_usage(group, s, stderr);
			return CLI_USAGE;
		}
		arg = argv[i];
	}
	if (s->args[0] && !arg) {
		fprintf(stderr, "rbee: 'rbee %s %s' needs %s\n\n", group, s->name, arg_what);
		subcmd_usage(group, s, stderr);
		return CLI_USAGE;
	}
	return s->run(cli, arg);
}

int cli_subcmd_dispatch(struct cli *cli, const char *group, const struct cli_subcmd *table,
			void (*usage)(FILE *out), const char *arg_what, int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (cli_is_help(argv[1])) {
		usage(stdout);
		return CLI_OK;
	}
	for (const struct cli_subcmd *s = table; s->name; s++)
		if (!strcmp(argv[1], s->name) || (s->alias && !strcmp(argv[1], s->alias)))
			return run_subcmd(cli, group, s, arg_what, argc - 1, argv + 1);
	fprintf(stderr, "rbee: unknown command 'rbee %s %s'\n\n", group, argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
