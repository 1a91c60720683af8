/*
 * job_client.c - rbee-test-job-client [--json] 'JSON': submit any operation through the
 * keeper's job runner (cli_run_job in core/cli/client.c) exactly as `rbee` does, and exit with
 * its status. Tests use it for operations `rbee` has no command for (test_sleep), to check
 * Ctrl-C cancelling and reconnecting. Hive URL and token come from RBEE_HIVE_URL and
 * RBEE_API_TOKEN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rb_http.h"
#include "rb_json.h"

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	const char *json = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			cli.json = true;
		else
			json = argv[i];
	}
	if (!json) {
		fputs("usage: rbee-test-job-client [--json] '{\"operation\":...}'\n", stderr);
		return CLI_USAGE;
	}
	cli.hive_url = getenv("RBEE_HIVE_URL") ? getenv("RBEE_HIVE_URL") : "http://localhost:7835";
	cli.token = getenv("RBEE_API_TOKEN");
	const char *nc = getenv("NO_COLOR"); /* as rbee's main() decides */
	cli.color = isatty(STDOUT_FILENO) && !(nc && *nc);
	cli.tty = isatty(STDERR_FILENO) && !(nc && *nc);
	struct rb_err err = RB_ERR_INIT;
	struct json_object *op = rb_json_parse(json, strlen(json), &err);
	if (!op) {
		fprintf(stderr, "rbee-test-job-client: %s\n", err.msg);
		return CLI_USAGE;
	}
	rb_http_global_init();
	return cli_run_job(&cli, op, NULL);
}
