/*
 * cmd_worker.c - `rbee worker ...`: the catalog, installed workers, and the dispatch to the
 * process commands (spawn, process, logs: cmd_worker_process.c).
 *
 *   available | catalog        worker_catalog_list
 *   list | ls                  worker_list_installed
 *   get | show <id>            worker_installed_get, else worker_catalog_get
 *   download | install <id>    worker_install (build output streams live)
 *   remove | rm <id>           worker_remove
 *   verify <id>                worker_verify
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "rb_json.h"
#include "rb_sse.h"

static void usage(FILE *out)
{
	fputs("usage: rbee worker <command> [args]\n"
	      "\n"
	      "  available | catalog       workers the catalog offers for this hive\n"
	      "  list | ls                 workers installed on the hive\n"
	      "  get | show <id>           one worker: installed, else its catalog entry\n"
	      "  download | install <id>   build a worker from its PKGBUILD and install it\n"
	      "                            (--offline: sources from mirror/cache only)\n"
	      "  remove | rm <id>          remove an installed worker\n"
	      "  verify <id>               check an installed worker can run on this node\n"
	      "  spawn --model <id> --worker <cpu|cuda|metal|id> [--device N]\n"
	      "                            start a worker with a model on a device\n"
	      "  process list | get <pid> | delete <pid>\n"
	      "                            the running workers\n"
	      "  logs <worker-id>          a running worker's log\n"
	      "\n"
	      "options: --json (print the result JSON only), --hive URL, --help\n",
	      out);
}

/* "linux/macos" from a JSON array of strings. */
static const char *joined(struct json_object *o, const char *key, char *buf, size_t len)
{
	struct json_object *arr = cli_jarr(o, key);
	buf[0] = '\0';
	if (!arr)
		return NULL;
	size_t used = 0;
	for (size_t i = 0; i < cli_jlen(arr) && used < len; i++) {
		const char *v = cli_jstr_at(arr, i);
		int n = snprintf(buf + used, len - used, "%s%s", i ? "/" : "", v ? v : "?");
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

static struct json_object *list_of(struct json_object *res, const char *key)
{
	if (json_object_is_type(res, json_type_array))
		return res;
	return cli_jarr(res, key);
}

/* ---- renderers ---- */

static void render_catalog(struct cli *cli, struct json_object *res)
{
	(void)cli;
	struct json_object *list = list_of(res, "workers");
	/* "OK?": whether it can be installed here ("installable"). A short header keeps the ids
	 * whole in 76 columns; why not is in the second table. */
	static const char *const hdr[] = { "ID", "TYPE", "VERSION", "PLATFORMS", "ARCH", "OK?",
					   "DESCRIPTION", NULL };
	struct cli_table *t = cli_table_new(hdr);
	for (size_t i = 0; i < cli_jlen(list); i++) {
		struct json_object *e = cli_jat(list, i);
		char plats[128], archs[128];
		/* A hive without the field (older) leaves the column empty. */
		struct json_object *inst = NULL;
		json_object_object_get_ex(e, "installable", &inst);
		const char *row[] = { cli_jstr(e, "id"), cli_jstr(e, "worker_type"),
				      cli_jstr(e, "version"), joined(e, "platforms", plats, sizeof(plats)),
				      joined(e, "architectures", archs, sizeof(archs)),
				      !inst ? NULL : json_object_get_boolean(inst) ? "yes" : "no",
				      cli_str_or(e, "description", cli_jstr(e, "name")), NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (cli_jlen(list) == 0)
		puts("(the catalog has no workers)");
	/* Why not: too long for a column of the first table, so a table of its own (which wraps
	 * to the terminal as the first does). */
	static const char *const why_hdr[] = { "ID", "NOT INSTALLABLE HERE BECAUSE", NULL };
	struct cli_table *why_t = cli_table_new(why_hdr);
	size_t nwhy = 0;
	for (size_t i = 0; i < cli_jlen(list); i++) {
		struct json_object *e = cli_jat(list, i);
		const char *why = cli_jstr(e, "not_installable_because");
		if (why && !cli_jbool(e, "installable", true)) {
			const char *row[] = { cli_jstr(e, "id"), why, NULL };
			cli_table_add(why_t, row);
			nwhy++;
		}
	}
	if (nwhy) {
		putchar('\n');
		cli_table_print(why_t, stdout);
	}
	cli_table_free(why_t);
}

static void render_installed_list(struct cli *cli, struct json_object *res)
{
	(void)cli;
	struct json_object *list = list_of(res, "workers");
	static const char *const hdr[] = { "ID", "TYPE", "VERSION", "SIZE", "INSTALLED", "BINARY", NULL };
	struct cli_table *t = cli_table_new(hdr);
	for (size_t i = 0; i < cli_jlen(list); i++) {
		struct json_object *w = cli_jat(list, i);
		char size[32];
		const char *err = cli_jstr(w, "error");
		rb_human_bytes((unsigned long long)cli_jint(w, "size", 0), size, sizeof(size));
		const char *row[] = { cli_jstr(w, "id"), cli_jstr(w, "worker_type"),
				      err ? "damaged" : cli_jstr(w, "version"), err ? NULL : size,
				      cli_jstr(w, "installed_at"), err ? err : cli_jstr(w, "binary_path"),
				      NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (cli_jlen(list) == 0)
		puts("(no workers installed: see 'rbee worker available', then 'rbee worker install <id>')");
}

static void render_checks(struct json_object *report)
{
	struct json_object *checks = list_of(report, "checks");
	static const char *const hdr[] = { "CHECK", "RESULT", "DETAIL", NULL };
	struct cli_table *t = cli_table_new(hdr);
	for (size_t i = 0; i < cli_jlen(checks); i++) {
		struct json_object *c = cli_jat(checks, i);
		const char *row[] = { cli_jstr(c, "check"), cli_jbool(c, "ok", false) ? "ok" : "FAILED",
				      cli_jstr(c, "detail"), NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
}

static void render_verify(struct cli *cli, struct json_object *res)
{
	(void)cli;
	render_checks(res);
	printf("\nworker '%s': %s\n", cli_str_or(res, "worker_id", "?"),
	       cli_jbool(res, "ok", false) ? "can run on this node" : "NOT usable on this node");
}

static void field(const char *label, const char *value)
{
	printf("%-14s %s\n", label, value && *value ? value : "-");
}

/* One installed worker. `checks`: show its verify report as a table (`get`); else one line
 * (`install`, whose narration already listed each check as it ran). */
static void show_installed(struct cli *cli, struct json_object *w, bool checks)
{
	char size[32];
	rb_human_bytes((unsigned long long)cli_jint(w, "size", 0), size, sizeof(size));
	field("id", cli_jstr(w, "id"));
	field("status", "installed");
	field("type", cli_jstr(w, "worker_type"));
	field("version", cli_jstr(w, "version"));
	field("name", cli_jstr(w, "name"));
	field("binary", cli_jstr(w, "binary_path"));
	field("size", size);
	field("sha256", cli_jstr(w, "sha256"));
	field("installed at", cli_jstr(w, "installed_at"));
	field("from catalog", cli_jstr(w, "catalog_source"));
	field("directory", cli_jstr(w, "install_dir"));
	struct json_object *report = cli_jobj(w, "verify");
	if (!report)
		return;
	if (checks) {
		puts("");
		render_verify(cli, report);
		return;
	}
	struct json_object *list = list_of(report, "checks");
	size_t n = cli_jlen(list), passed = 0;
	for (size_t i = 0; i < n; i++)
		passed += cli_jbool(cli_jat(list, i), "ok", false);
	char line[96];
	snprintf(line, sizeof(line), "%zu of %zu checks passed: %s", passed, n,
		 cli_jbool(report, "ok", false) ? "can run on this node" : "NOT usable on this node");
	field("verified", line);
}

static void render_installed(struct cli *cli, struct json_object *w)
{
	show_installed(cli, w, true);
}

static void render_install(struct cli *cli, struct json_object *w)
{
	show_installed(cli, w, false);
}

static void render_entry(struct cli *cli, struct json_object *e)
{
	(void)cli;
	char plats[128], archs[128];
	field("id", cli_jstr(e, "id"));
	field("status", "available in the catalog (not installed)");
	field("type", cli_jstr(e, "worker_type"));
	field("version", cli_jstr(e, "version"));
	field("name", cli_jstr(e, "name"));
	field("description", cli_jstr(e, "description"));
	field("platforms", joined(e, "platforms", plats, sizeof(plats)));
	field("architectures", joined(e, "architectures", archs, sizeof(archs)));
	field("build system", cli_jstr(e, "build_system"));
	field("binary", cli_jstr(e, "binary_name"));
	field("license", cli_jstr(e, "license"));
	printf("\ninstall it with: rbee worker install %s\n", cli_str_or(e, "id", "<id>"));
}

/* ---- a quiet job, for `get`'s first look ---- */

struct quiet {
	struct json_object *data;
	char *error;
	int terminal; /* 0 none, 1 done, 2 error, 3 cancelled */
};

static int quiet_event(void *arg, const struct rb_sse_event *ev)
{
	struct quiet *q = arg;
	if (!strcmp(ev->type, "data")) {
		json_object_put(q->data);
		q->data = rb_json_parse(ev->data, ev->data_len, NULL);
		return 0;
	}
	const char *message = NULL;
	switch (rb_sse_terminal_of(ev, &message)) {
	case RB_SSE_DONE:
		q->terminal = 1;
		break;
	case RB_SSE_ERROR:
		q->terminal = 2;
		free(q->error);
		q->error = strdup(message ? message : "");
		break;
	case RB_SSE_CANCELLED:
		q->terminal = 3;
		break;
	case RB_SSE_NOT_TERMINAL:
		break;
	}
	return 0;
}

static bool quiet_ended(void *arg)
{
	return ((struct quiet *)arg)->terminal != 0;
}

/* Run a short operation without showing its narration. Returns 0 and fills q, or an exit
 * status after printing why (hive unreachable, refused). Takes ownership of op. */
static int run_quiet(struct cli *cli, struct json_object *op, struct quiet *q)
{
	struct rb_http_resp resp;
	char reason[512];
	rb_http_resp_init(&resp);
	const char *job = NULL;
	struct json_object *sub = NULL;
	int rc = CLI_OK;
	if (cli_request(cli, "POST", "/v1/jobs", rb_json_compact(op), &resp, reason,
			sizeof(reason))) {
		rc = cli_unreachable(cli, reason);
	} else if (resp.status != 200 && resp.status != 201 && resp.status != 202) {
		rc = cli_http_failure(cli, "POST", "/v1/jobs", resp.status, &resp.body);
	} else if (!(sub = rb_json_parse(resp.body.data, resp.body.len, NULL)) ||
		   !(job = cli_jstr(sub, "job_id")) || !rb_id_valid(job)) {
		fputs("rbee: the hive answered the submit without a job id\n", stderr);
		rc = CLI_FAILED;
	}
	if (!rc) {
		char path[192], what[160];
		snprintf(path, sizeof(path), "/v1/jobs/%s/stream", job);
		snprintf(what, sizeof(what), "job '%s'", job);
		struct cli_stream s = {
			.path = path,
			.what = what,
			.what_path = "/v1/jobs/{id}/stream",
			.on_event = quiet_event,
			.ended = quiet_ended,
			.arg = q,
		};
		rc = cli_follow(cli, &s);
	}
	json_object_put(sub);
	json_object_put(op);
	rb_http_resp_release(&resp);
	return rc;
}

/* ---- commands ---- */

static struct json_object *op_with_id(const char *name, const char *id)
{
	struct json_object *op = cli_op_new(name);
	if (id)
		rb_json_add_str(op, "worker_id", id);
	return op;
}

static int cmd_available(struct cli *cli, const char *id)
{
	(void)id;
	return cli_run_job(cli, op_with_id("worker_catalog_list", NULL), render_catalog);
}

static int cmd_list(struct cli *cli, const char *id)
{
	(void)id;
	return cli_run_job(cli, op_with_id("worker_list_installed", NULL), render_installed_list);
}

static int cmd_get(struct cli *cli, const char *id)
{
	struct quiet q = { NULL, NULL, 0 };
	int rc = run_quiet(cli, op_with_id("worker_installed_get", id), &q);
	if (!rc && q.terminal == 1 && q.data) {
		if (cli->json)
			cli_print_json(stdout, q.data);
		else {
			cli_json_clean(q.data);
			render_installed(cli, q.data);
		}
	} else if (!rc && q.terminal == 2 && q.error && strstr(q.error, "is not installed")) {
		rc = cli_run_job(cli, op_with_id("worker_catalog_get", id), render_entry);
	} else if (!rc) {
		char *clean = cli_clean(q.error ? q.error : "the job ended without a result", true);
		fprintf(stderr, "rbee: %s\n", clean);
		free(clean);
		rc = CLI_FAILED;
	}
	json_object_put(q.data);
	free(q.error);
	return rc;
}

/* `rbee worker install ID --offline`: worker_install {"offline": true}. */
static bool install_offline;

static int cmd_install(struct cli *cli, const char *id)
{
	struct json_object *op = op_with_id("worker_install", id);
	if (install_offline)
		rb_json_add_bool(op, "offline", true);
	return cli_run_job(cli, op, render_install);
}

/* The hive's narration already said "removed worker 'x'"; --json still prints the result. */
static void render_removed(struct cli *cli, struct json_object *res)
{
	(void)cli;
	(void)res;
}

static int cmd_remove(struct cli *cli, const char *id)
{
	return cli_run_job(cli, op_with_id("worker_remove", id), render_removed);
}

static int cmd_verify(struct cli *cli, const char *id)
{
	return cli_run_job_summary(cli, op_with_id("worker_verify", id), render_verify);
}

static const struct cli_subcmd subcmds[] = {
	{ "available", "catalog", "", "list the workers the catalog offers", cmd_available },
	{ "list", "ls", "", "list the workers installed on the hive", cmd_list },
	{ "get", "show", "<id>", "show an installed worker, or else its catalog entry", cmd_get },
	{ "download", "install", "<id>",
	  "fetch, build and install a worker from its catalog PKGBUILD; the build output streams "
	  "as it comes and Ctrl-C cancels the build. With --offline every source comes from the "
	  "hive's source mirror or node cache, never the network, and a missing one fails the "
	  "install before anything is built (docs/MIRROR.md)", cmd_install },
	{ "remove", "rm", "<id>", "remove an installed worker (refused while it runs)", cmd_remove },
	{ "verify", NULL, "<id>",
	  "check an installed worker: binary, ELF machine, libraries, --version probe, sha256, and "
	  "the backend's own checks (exit status 1 when one fails)", cmd_verify },
	{ NULL, NULL, NULL, NULL, NULL },
};

int cli_worker(struct cli *cli, int argc, char **argv)
{
	/* spawn, process and logs take options of their own (cmd_worker_process.c). */
	if (argc >= 2 && !strcmp(argv[1], "spawn"))
		return cli_worker_spawn(cli, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "process"))
		return cli_worker_process(cli, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "logs"))
		return cli_worker_logs(cli, argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "install") || !strcmp(argv[1], "download"))) {
		int kept = 2;
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--offline"))
				install_offline = true;
			else
				argv[kept++] = argv[i];
		}
		argc = kept;
	}
	return cli_subcmd_dispatch(cli, "worker", subcmds, usage, "a worker id", argc, argv);
}
