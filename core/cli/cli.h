/*
 * cli.h - the keeper CLI's shared pieces: global options, the hive client, output.
 *
 * Exit statuses (SPEC section 9): 0 success, 1 the job failed or was cancelled, 2 usage error,
 * 3 hive unreachable.
 */
#ifndef RB_CLI_H
#define RB_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "rb_buf.h"
#include "rb_http.h"
#include "rb_sse.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

struct cli {
	const char *hive_url; /* --hive / RBEE_HIVE_URL / http://localhost:7835 (no trailing /) */
	bool json;            /* --json: print the result JSON only */
	bool color;           /* stdout is a TTY and NO_COLOR is unset */
	bool tty;             /* stderr is a TTY: progress bars */
	const char *token;    /* RBEE_API_TOKEN, sent as bearer when set */
};

/* The one client stack (client.c) every command uses; each request carries the bearer token
 * when the CLI has one. */

/* One request to the hive (rb_http_request): `path` with its query, `body` JSON or NULL. Returns
 * 0 when the hive answered (any status; resp filled), else -1 with why in `reason`. */
int cli_request(struct cli *cli, const char *method, const char *path, const char *body,
		struct rb_http_resp *resp, char *reason, size_t reason_len);
/* Print "cannot reach the hive at ..." and return CLI_UNREACHABLE. */
int cli_unreachable(struct cli *cli, const char *reason);
/* A non-2xx answer: print the hive's {"error"} message (or what came instead) and return the
 * exit status (CLI_USAGE for 400, else CLI_FAILED). */
int cli_http_failure(struct cli *cli, const char *method, const char *path, long status,
		     const struct rb_buf *body);

/* Following an SSE stream of the hive (rb_http_stream + rb_sse) through dropped connections:
 * up to 5 reconnects with backoff (0.5 s to 8 s), the budget renewed whenever events arrive,
 * 45 s without a byte (keep-alives included) counting as a drop. A reconnect sends
 * Last-Event-ID when the stream carried ids, and goes to resume_path when one is given. */
struct cli_stream {
	const char *path;         /* the first connection: hive path with its query */
	const char *resume_path;  /* reconnects (NULL: path) */
	const char *what;         /* for messages: "job 'x'" */
	const char *what_path;    /* for error messages: "/v1/jobs/{id}/stream" */
	const char *lost_hint;    /* appended to the "lost the connection" message, or NULL */
	bool first_must_answer;   /* no answer to the first connection: unreachable, no retry */
	rb_sse_event_fn on_event; /* each event (0 to go on) */
	bool (*ended)(void *arg); /* the stream's last event was seen: stop (NULL: never) */
	int (*before_connect)(void *arg); /* non-zero: stop following with that exit status */
	int (*poll)(void *arg);   /* ~1/s during a transfer; non-zero stops it (then reconnects) */
	void (*on_lost)(void *arg); /* before a reconnect message (to clear a progress bar) */
	void *arg;
};
/* Returns 0 once ended() says so, else the exit status after printing why. */
int cli_follow(struct cli *cli, struct cli_stream *s);

/* Plain GET of a hive route returning JSON. On failure prints the error and returns the exit
 * status (CLI_UNREACHABLE when the hive cannot be reached); on success *out holds the JSON. */
int cli_get_json(struct cli *cli, const char *path, struct json_object **out);

/* Submit an operation (takes ownership of `op`), stream its events to the terminal, and return
 * the exit status. The last `event: data` result is handed to `render` (unless --json, which
 * prints it raw); render may be NULL (the JSON is then printed pretty). Implemented in
 * client.c (the job engine issue). */
typedef void (*cli_render_fn)(struct cli *cli, struct json_object *result);
int cli_run_job(struct cli *cli, struct json_object *op, cli_render_fn render);
/* Like cli_run_job, for a short job whose rendered result already says what its narration says
 * (hive check, worker verify): the narration is held back and shown only when the job ends
 * without a result, so nothing is printed twice. With --json, narration goes to stderr as in
 * cli_run_job. */
int cli_run_job_summary(struct cli *cli, struct json_object *op, cli_render_fn render);
/* Build {"operation": name, "hive_id": "localhost"} to add fields to. */
struct json_object *cli_op_new(const char *name);

/* Tables: columns sized to content, header underlined, "-" for missing values. */
struct cli_table;
struct cli_table *cli_table_new(const char *const *headers);
void cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);
/* The width to fit output on `fd` to: COLUMNS when set (20..10000), else the terminal's, else
 * 0 (not a terminal: no limit). Tables wrap their widest column to it; progress bars shrink. */
int cli_term_width(int fd);

/* Subcommand entry points: argv[0] is the subcommand's own name ("hive", "worker", "model"). */
int cli_hive(struct cli *cli, int argc, char **argv);
int cli_worker(struct cli *cli, int argc, char **argv);
int cli_model(struct cli *cli, int argc, char **argv);

/* `rbee worker spawn | process | logs` (cmd_worker_process.c, the worker spawn issue): argv[0]
 * is "spawn", "process" or "logs". */
int cli_worker_spawn(struct cli *cli, int argc, char **argv);
int cli_worker_process(struct cli *cli, int argc, char **argv);
int cli_worker_logs(struct cli *cli, int argc, char **argv);

/* `rbee hive check`: runs the hive_check operation (client.c); `arg` is unused. */
int cli_hive_check(struct cli *cli, const char *arg);

/* One command of a `rbee <group>` level: `name | alias [args]`. `args` is "" (no argument) or
 * a placeholder such as "<id>" (exactly one argument). */
struct cli_subcmd {
	const char *name, *alias;
	const char *args;
	const char *help;
	int (*run)(struct cli *cli, const char *arg);
};
/* Run argv[1] of a group from its table (argv[0] is the group's name): --help at both levels,
 * usage errors for unknown commands and missing or extra arguments (`arg_what` says what the
 * argument is: "a worker id"). Returns the command's exit status. */
int cli_subcmd_dispatch(struct cli *cli, const char *group, const struct cli_subcmd *table,
			void (*usage)(FILE *out), const char *arg_what, int argc, char **argv);
bool cli_is_help(const char *arg);
/* A string field of a JSON object, or `def` when absent. */
const char *cli_str_or(struct json_object *obj, const char *key, const char *def);

/* Text from the hive made safe for a terminal (table.c): control characters (C0 except, with
 * keep_lines, newline and tab; DEL; C1), invalid UTF-8 and bidi controls become '?' (a newline,
 * tab or CR a space). Every string from the hive goes through one of these before it is shown. */
void cli_clean_add(struct rb_buf *out, const char *text, size_t len, bool keep_lines);
char *cli_clean(const char *text, bool keep_lines); /* malloc'd */
void cli_put_clean(FILE *out, const char *text, size_t len, bool keep_lines);
/* Print JSON pretty (--json): json-c escapes C0 controls; this escapes DEL, C1 and bidi
 * controls and invalid UTF-8 as well, so the output is as safe for a terminal as the tables. */
void cli_print_json(FILE *out, struct json_object *o);
/* Clean every string value of a JSON tree in place (before rendering it for humans). */
void cli_json_clean(struct json_object *o);

/* Type-checked reads of the hive's JSON (table.c). Absent or null: NULL / def. Present with
 * another type (or `o` not an object): read as absent, and the first such problem is noted;
 * cli_answer_verdict then turns a successful exit status into CLI_FAILED, saying what was wrong.
 * No read aborts, whatever the hive sent. */
const char *cli_jstr(struct json_object *o, const char *key);
int64_t cli_jint(struct json_object *o, const char *key, int64_t def);
bool cli_jbool(struct json_object *o, const char *key, bool def);
struct json_object *cli_jarr(struct json_object *o, const char *key);
struct json_object *cli_jobj(struct json_object *o, const char *key);
size_t cli_jlen(struct json_object *arr);                 /* 0 unless an array */
struct json_object *cli_jat(struct json_object *arr, size_t i); /* an object element, else NULL */
const char *cli_jstr_at(struct json_object *arr, size_t i);     /* a string element, else NULL */
const char *cli_bad_answer(void);
int cli_answer_verdict(int rc);

/* Print usage for a level on `out`. */
void cli_usage_main(FILE *out);

#endif
