/*
 * cmd_worker_process.c - `rbee worker spawn | process | logs`: starting workers, the hive's
 * process registry, and worker logs.
 *
 *   spawn --model <id> [--worker <cpu|cuda|metal|id>] [--device N]   worker_spawn
 *   process list | ls                                              worker_process_list
 *   process get | show <pid>                                       worker_process_get
 *   process delete | rm | stop <pid>                               worker_process_delete
 *   logs <worker-id> [--tail N] [--follow]     GET /v1/workers/{id}/logs (SSE when following)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rb_buf.h"
#include "rb_http.h"
#include "rb_json.h"
#include "rb_sse.h"

/* "--name value" or "--name=value"; advances *i past what it used. NULL when not this option. */
static const char *option(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	*missing = false;
	if (!strncmp(a, name, n) && a[n] == '=')
		return a + n + 1;
	if (strcmp(a, name))
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static int parse_u32(const char *what, const char *v, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (!*v || *v == '-' || *end || errno || x > max) {
		fprintf(stderr, "rbee: invalid %s '%s': give a whole number from 0 to %lu\n", what, v,
			max);
		return -1;
	}
	*out = x;
	return 0;
}

static const char *uptime(long long s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s >= 86400)
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s / 3600 % 24);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
	return buf;
}

/* ---- spawn ------------------------------------------------------------------------------- */

static void spawn_usage(FILE *out)
{
	fputs("usage: rbee worker spawn --model <id> [--worker <cpu|cuda|metal|id>] [--device N]\n"
	      "\n"
	      "Start an installed worker with a downloaded model on one device and wait until\n"
	      "it answers its health check. --worker names a backend (the first installed\n"
	      "worker of that type) or an installed worker id; without it the hive chooses\n"
	      "the highest-scoring backend with an installed worker and room for the model.\n"
	      "--device is the backend's device number (default 0, see 'rbee hive devices').\n",
	      out);
}

static void render_spawn(struct cli *cli, struct json_object *res)
{
	(void)cli;
	printf("worker %s is %s\n", cli_str_or(res, "worker_id", "?"), cli_str_or(res, "status", "?"));
	printf("  pid      %lld\n", (long long)cli_jint(res, "pid", 0));
	printf("  url      %s\n", cli_str_or(res, "url", "-"));
	printf("  model    %s\n", cli_str_or(res, "model", "-"));
	printf("  device   %s %lld (%s)\n", cli_str_or(res, "backend", "?"),
	       (long long)cli_jint(res, "device", 0), cli_str_or(res, "device_id", "-"));
	printf("  log      %s\n", cli_str_or(res, "log_path", "-"));
}

int cli_worker_spawn(struct cli *cli, int argc, char **argv)
{
	const char *model = NULL, *worker = NULL, *device = NULL;
	for (int i = 1; i < argc; i++) {
		bool missing;
		const char *v;
		if (cli_is_help(argv[i])) {
			spawn_usage(stdout);
			return CLI_OK;
		} else if ((v = option(argc, argv, &i, "--model", &missing))) {
			model = v;
		} else if ((v = option(argc, argv, &i, "--worker", &missing))) {
			worker = v;
		} else if ((v = option(argc, argv, &i, "--device", &missing))) {
			device = v;
		} else {
			if (missing)
				fprintf(stderr, "rbee: '%s' needs a value\n\n", argv[i]);
			else
				fprintf(stderr, "rbee: unexpected argument '%s'\n\n", argv[i]);
			spawn_usage(stderr);
			return CLI_USAGE;
		}
	}
	unsigned long dev = 0;
	if (!model) {
		fprintf(stderr, "rbee: 'rbee worker spawn' needs --model\n\n");
		spawn_usage(stderr);
		return CLI_USAGE;
	}
	if (device && parse_u32("device", device, 0xffffffffUL, &dev))
		return CLI_USAGE;
	struct json_object *op = cli_op_new("worker_spawn");
	rb_json_add_str(op, "model", model);
	if (worker)
		rb_json_add_str(op, "worker", worker);
	rb_json_add_int(op, "device", (int64_t)dev);
	return cli_run_job(cli, op, render_spawn);
}

/* ---- process ----------------------------------------------------------------------------- */

static void process_usage(FILE *out)
{
	fputs("usage: rbee worker process <command>\n"
	      "\n"
	      "  list | ls                  workers this hive spawned: state, memory, uptime\n"
	      "  get | show <pid>           one worker\n"
	      "  delete | rm | stop <pid>   stop a worker: SIGTERM to its process group,\n"
	      "                             SIGKILL after the hive's grace period\n"
	      "\n"
	      "Only pids this hive spawned are accepted.\n",
	      out);
}

static void render_list(struct cli *cli, struct json_object *res)
{
	(void)cli;
	struct json_object *arr = cli_jarr(res, "workers");
	if (!cli_jlen(arr)) {
		puts("no workers (start one with 'rbee worker spawn')");
		return;
	}
	static const char *const head[] = { "WORKER", "PID", "STATE", "MODEL", "DEVICE", "PORT",
					    "UPTIME", "RSS", NULL };
	struct cli_table *t = cli_table_new(head);
	for (size_t i = 0; i < cli_jlen(arr); i++) {
		struct json_object *w = cli_jat(arr, i);
		char pid[16] = "-", dev[96], port[8] = "-", up[32], rss[32] = "-";
		if (cli_jint(w, "pid", 0) > 0)
			snprintf(pid, sizeof(pid), "%lld", (long long)cli_jint(w, "pid", 0));
		if (cli_jint(w, "port", 0) > 0)
			snprintf(port, sizeof(port), "%lld", (long long)cli_jint(w, "port", 0));
		snprintf(dev, sizeof(dev), "%s:%lld", cli_str_or(w, "backend", "?"),
			 (long long)cli_jint(w, "device", 0));
		if (cli_jint(w, "rss_bytes", -1) >= 0)
			rb_human_bytes((unsigned long long)cli_jint(w, "rss_bytes", 0), rss,
					sizeof(rss));
		const char *row[] = { cli_str_or(w, "worker_id", "?"), pid, cli_str_or(w, "state", "?"),
				      cli_str_or(w, "model", "-"), dev, port,
				      uptime(cli_jint(w, "uptime_s", -1), up, sizeof(up)), rss,
				      NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
}

static void render_one(struct cli *cli, struct json_object *w)
{
	(void)cli;
	char up[32], rss[32] = "-";
	if (cli_jint(w, "rss_bytes", -1) >= 0)
		rb_human_bytes((unsigned long long)cli_jint(w, "rss_bytes", 0), rss, sizeof(rss));
	printf("worker     %s\n", cli_str_or(w, "worker_id", "?"));
	printf("state      %s\n", cli_str_or(w, "state", "?"));
	if (cli_jstr(w, "reason"))
		printf("reason     %s\n", cli_jstr(w, "reason"));
	printf("pid        %lld\n", (long long)cli_jint(w, "pid", 0));
	printf("url        %s\n", cli_str_or(w, "url", "-"));
	printf("model      %s\n", cli_str_or(w, "model", "-"));
	printf("device     %s %lld (%s)\n", cli_str_or(w, "backend", "?"),
	       (long long)cli_jint(w, "device", 0), cli_str_or(w, "device_id", "-"));
	printf("installed  %s\n", cli_str_or(w, "installed_worker", "-"));
	printf("started    %s\n", cli_str_or(w, "started_at", "-"));
	printf("uptime     %s\n", uptime(cli_jint(w, "uptime_s", -1), up, sizeof(up)));
	printf("rss        %s\n", rss);
	printf("log        %s\n", cli_str_or(w, "log_path", "-"));
}

static void render_delete(struct cli *cli, struct json_object *res)
{
	(void)cli;
	printf("worker %s (pid %lld) %s%s%s\n", cli_str_or(res, "worker_id", "?"),
	       (long long)cli_jint(res, "pid", 0), cli_str_or(res, "status", "stopped"),
	       cli_jstr(res, "exit") ? ": " : "", cli_str_or(res, "exit", ""));
}

static int pid_command(struct cli *cli, const char *op_name, const char *pid_arg,
		       cli_render_fn render)
{
	unsigned long pid;
	if (parse_u32("pid", pid_arg, 0x3fffffffUL, &pid))
		return CLI_USAGE;
	struct json_object *op = cli_op_new(op_name);
	rb_json_add_int(op, "pid", (int64_t)pid);
	return cli_run_job_summary(cli, op, render);
}

int cli_worker_process(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		process_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	const char *sub = argv[1];
	bool list = !strcmp(sub, "list") || !strcmp(sub, "ls");
	bool get = !strcmp(sub, "get") || !strcmp(sub, "show");
	bool del = !strcmp(sub, "delete") || !strcmp(sub, "rm") || !strcmp(sub, "stop");
	if (argc > 2 && cli_is_help(argv[2])) {
		process_usage(stdout);
		return CLI_OK;
	}
	if (list && argc == 2)
		return cli_run_job_summary(cli, cli_op_new("worker_process_list"), render_list);
	if ((get || del) && argc == 3)
		return pid_command(cli, get ? "worker_process_get" : "worker_process_delete", argv[2],
				   get ? render_one : render_delete);
	if (list || get || del)
		fprintf(stderr, "rbee: 'rbee worker process %s' %s\n\n", sub,
			list ? "takes no arguments" : "needs exactly one pid");
	else
		fprintf(stderr, "rbee: unknown process command '%s'\n\n", sub);
	process_usage(stderr);
	return CLI_USAGE;
}

/* ---- logs -------------------------------------------------------------------------------- */

static void logs_usage(FILE *out)
{
	fputs("usage: rbee worker logs <worker-id> [--tail N] [--follow]\n"
	      "\n"
	      "Print the last N lines (default 100) of a worker's log, read through the hive.\n"
	      "--follow (-f) keeps printing new lines until the worker ends or Ctrl-C.\n",
	      out);
}

static int logs_tail(struct cli *cli, const char *path)
{
	struct rb_http_resp r;
	char reason[512];
	rb_http_resp_init(&r);
	int rc = CLI_OK;
	if (cli_request(cli, "GET", path, NULL, &r, reason, sizeof(reason)))
		rc = cli_unreachable(cli, reason);
	else if (r.status != 200)
		rc = cli_http_failure(cli, "GET", "/v1/workers/{id}/logs", r.status, &r.body);
	else
		cli_put_clean(stdout, r.body.data, r.body.len, true); /* a worker's output */
	rb_http_resp_release(&r);
	return rc;
}

struct follow {
	bool ended;
};

static int on_log_event(void *arg, const struct rb_sse_event *ev)
{
	struct follow *f = arg;
	bool end = !strcmp(ev->type, "end");
	if (end || !strcmp(ev->type, "warning")) {
		fputs(end ? "rbee: " : "rbee: warning: ", stderr);
		cli_put_clean(stderr, ev->data, ev->data_len, true);
		fputc('\n', stderr);
		f->ended = f->ended || end;
		return 0;
	}
	if (strcmp(ev->type, "message") != 0)
		return 0; /* a kind of event this CLI does not know: not a line of the log */
	cli_put_clean(stdout, ev->data, ev->data_len, true);
	fputc('\n', stdout);
	fflush(stdout);
	return 0;
}

static bool log_ended(void *arg)
{
	return ((struct follow *)arg)->ended;
}

/* Each line of the hive's log stream has an id (the log offset after it), which cli_follow
 * sends back as Last-Event-ID when it reconnects: the hive then resumes right after the last
 * line shown, so no line is lost or shown twice (see docs/WORKERS.md). The resume path asks
 * for tail=0, which a hive that sends no ids falls back to (nothing shown again, but lines
 * written while the connection was down are lost). */
static int logs_follow(struct cli *cli, const char *path, const char *resume_path,
		       const char *id)
{
	struct follow f = { .ended = false };
	char what[192];
	snprintf(what, sizeof(what), "the log of worker '%s'", id);
	struct cli_stream s = {
		.path = path,
		.resume_path = resume_path,
		.what = what,
		.what_path = "/v1/workers/{id}/logs",
		.first_must_answer = true,
		.on_event = on_log_event,
		.ended = log_ended,
		.arg = &f,
	};
	return cli_follow(cli, &s);
}

int cli_worker_logs(struct cli *cli, int argc, char **argv)
{
	const char *id = NULL, *tail = NULL;
	bool follow = false;
	for (int i = 1; i < argc; i++) {
		bool missing;
		const char *v;
		if (cli_is_help(argv[i])) {
			logs_usage(stdout);
			return CLI_OK;
		} else if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f")) {
			follow = true;
		} else if ((v = option(argc, argv, &i, "--tail", &missing)) ||
			   (v = option(argc, argv, &i, "-n", &missing))) {
			tail = v;
		} else if (!missing && argv[i][0] != '-' && !id) {
			id = argv[i];
		} else {
			fprintf(stderr, missing ? "rbee: '%s' needs a value\n\n"
						: "rbee: unexpected argument '%s'\n\n", argv[i]);
			logs_usage(stderr);
			return CLI_USAGE;
		}
	}
	unsigned long n = 100;
	if (!id) {
		fprintf(stderr, "rbee: 'rbee worker logs' needs a worker id (see 'rbee worker process "
			"list')\n\n");
		logs_usage(stderr);
		return CLI_USAGE;
	}
	if (tail && parse_u32("--tail", tail, 100000, &n))
		return CLI_USAGE;
	struct rb_buf path = RB_BUF_INIT, resume = RB_BUF_INIT;
	rb_buf_adds(&path, "/v1/workers/");
	rb_http_escape(&path, id);
	rb_buf_add(&resume, path.data, path.len);
	rb_buf_addf(&path, "/logs?tail=%lu%s", n, follow ? "&follow=1" : "");
	rb_buf_adds(&resume, "/logs?tail=0&follow=1");
	int rc = follow ? logs_follow(cli, path.data, resume.data, id) : logs_tail(cli, path.data);
	rb_buf_release(&path);
	rb_buf_release(&resume);
	return rc;
}
