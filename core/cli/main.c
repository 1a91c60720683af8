/*
 * main.c - rbee, the keeper CLI: global options, then one of `worker`, `model`, `hive`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rb_http.h"

void cli_usage_main(FILE *out)
{
	fputs("usage: rbee [--hive URL] [--json] <command> ...\n"
	      "\n"
	      "The rbee keeper: manage the workers and models of an rbee hive.\n"
	      "\n"
	      "commands:\n"
	      "  worker   available | list | get | install | remove | verify\n"
	      "           spawn | process list | get | delete | logs\n"
	      "  model    download | list | get | delete\n"
	      "  hive     status | devices | backends | check\n"
	      "\n"
	      "options (before or after the command):\n"
	      "  --hive URL   the hive to talk to (default http://localhost:7835)\n"
	      "  --json       print the result as JSON only\n"
	      "  --help       help for any command: rbee worker --help\n"
	      "  --version\n"
	      "\n"
	      "environment:\n"
	      "  RBEE_HIVE_URL   the hive's URL (as --hive)\n"
	      "  RBEE_API_TOKEN  the bearer token of a hive started with a token\n"
	      "  RBEE_HIVE_ID    the id of a hive started with --hive-id (default localhost)\n"
	      "  NO_COLOR        progress as plain lines, not a redrawn bar (as when piped)\n"
	      "  COLUMNS         the width tables wrap to (default: the terminal's)\n"
	      "\n"
	      "exit status: 0 success, 1 the job failed or was cancelled, 2 usage error,\n"
	      "3 the hive is unreachable\n",
	      out);
}

/* Take the global options out of argv wherever they stand (up to a "--"), so that
 * `rbee --json worker list` and `rbee worker list --json` mean the same. */
static int take_global_options(struct cli *cli, int *argc, char **argv)
{
	int out = 1;
	bool rest = false;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (!rest && !strcmp(a, "--")) {
			rest = true;
			continue;
		}
		if (!rest && !strcmp(a, "--json")) {
			cli->json = true;
			continue;
		}
		if (!rest && !strcmp(a, "--hive")) {
			if (i + 1 >= *argc) {
				fputs("rbee: '--hive' needs a URL\n", stderr);
				return CLI_USAGE;
			}
			cli->hive_url = argv[++i];
			continue;
		}
		if (!rest && !strncmp(a, "--hive=", 7)) {
			cli->hive_url = a + 7;
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	*argc = out;
	return CLI_OK;
}

int main(int argc, char **argv)
{
	static char url[2048];
	struct cli cli = { 0 };
	const char *env = getenv("RBEE_HIVE_URL");
	cli.hive_url = env && *env ? env : "http://localhost:7835";
	cli.token = getenv("RBEE_API_TOKEN");
	if (cli.token && !*cli.token)
		cli.token = NULL;
	int rc = take_global_options(&cli, &argc, argv);
	if (rc)
		return rc;
	const char *scheme = strstr(cli.hive_url, "://");
	if (!*cli.hive_url || (scheme && strncmp(cli.hive_url, "http://", 7) &&
			       strncmp(cli.hive_url, "https://", 8))) {
		fprintf(stderr, "rbee: invalid hive URL '%s' (from %s): use http://HOST:PORT, "
				"https://HOST:PORT or HOST:PORT\n",
			cli.hive_url, cli.hive_url == env ? "RBEE_HIVE_URL" : "--hive");
		return CLI_USAGE;
	}
	/* Accept "host:port" and trailing slashes. */
	snprintf(url, sizeof(url), "%s%s", strstr(cli.hive_url, "://") ? "" : "http://", cli.hive_url);
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		url[--n] = '\0';
	cli.hive_url = url;
	const char *nc = getenv("NO_COLOR");
	cli.color = isatty(STDOUT_FILENO) && !(nc && *nc);
	cli.tty = isatty(STDERR_FILENO) && !(nc && *nc);

	if (argc < 2) {
		cli_usage_main(stderr);
		return CLI_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		cli_usage_main(stdout);
		return CLI_OK;
	}
	if (!strcmp(cmd, "--version")) {
		printf("rbee %s\n", RBEE_VERSION);
		return CLI_OK;
	}
	rb_http_global_init();
	/* A command that read an answer of the wrong shape fails, saying what was wrong. */
	if (!strcmp(cmd, "worker"))
		return cli_answer_verdict(cli_worker(&cli, argc - 1, argv + 1));
	if (!strcmp(cmd, "model"))
		return cli_answer_verdict(cli_model(&cli, argc - 1, argv + 1));
	if (!strcmp(cmd, "hive"))
		return cli_answer_verdict(cli_hive(&cli, argc - 1, argv + 1));
	fprintf(stderr, "rbee: unknown command '%s' (see rbee --help)\n", cmd);
	return CLI_USAGE;
}
