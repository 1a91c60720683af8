/*
 * cmd_model.c - `rbee model ...`: the hive's model catalog (SPEC sections 6 and 9).
 *
 *   download <id>          model_download (a progress bar on a TTY; Ctrl-C cancels, and the
 *                          next download resumes where it stopped)
 *   list | ls              model_list
 *   get | show <id>        model_get
 *   delete | rm <id>       model_delete
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rb_json.h"

static void usage(FILE *out)
{
	fputs("usage: rbee model <command> [args]\n"
	      "\n"
	      "  download <id>         download a model from the Hugging Face hub into the hive\n"
	      "  list | ls             the models the hive has (and unfinished downloads)\n"
	      "  get | show <id>       one model: file, size, sha256, GGUF facts\n"
	      "  delete | rm <id>      delete a model, or an unfinished download of it\n"
	      "\n"
	      "ids: 'org/repo' (the hive picks a GGUF file by quantization: Q4_K_M, Q5_K_M,\n"
	      "     Q4_0, Q5_0, Q8_0, F16, else the smallest) or 'org/repo:file.gguf'\n"
	      "the hive downloads from HF_ENDPOINT (default https://huggingface.co) with\n"
	      "HF_TOKEN, both from the hive's own environment\n"
	      "\n"
	      "options: --json (print the result JSON only), --hive URL, --help\n",
	      out);
}

/* "6.74B", "125.0M", or NULL when unknown. */
static const char *params_str(struct json_object *m, char *buf, size_t len)
{
	int64_t n = cli_jint(m, "parameter_count", 0);
	if (n <= 0)
		return NULL;
	if (n >= 1000000000)
		snprintf(buf, len, "%.2fB", (double)n / 1e9);
	else if (n >= 1000000)
		snprintf(buf, len, "%.1fM", (double)n / 1e6);
	else
		snprintf(buf, len, "%" PRId64, n);
	return buf;
}

static const char *int_str(struct json_object *m, const char *key, char *buf, size_t len)
{
	int64_t n = cli_jint(m, key, 0);
	if (n <= 0)
		return NULL;
	snprintf(buf, len, "%" PRId64, n);
	return buf;
}

/* ---- renderers ---- */

static void render_list(struct cli *cli, struct json_object *res)
{
	(void)cli;
	struct json_object *list = cli_jarr(res, "models");
	static const char *const hdr[] = { "ID", "STATUS", "QUANT", "ARCH", "PARAMS", "CONTEXT",
					   "SIZE", "ADDED", NULL };
	struct cli_table *t = cli_table_new(hdr);
	size_t n = cli_jlen(list);
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = cli_jat(list, i);
		char size[32], params[32], ctx[32], added[16] = "";
		rb_human_bytes((unsigned long long)cli_jint(m, "size", 0), size, sizeof(size));
		/* The day is enough in a list ('get' has the time): "2026-11-27T05:19:08Z". */
		snprintf(added, sizeof(added), "%.10s", cli_str_or(m, "added_at", ""));
		const char *row[] = { cli_jstr(m, "id"), cli_jstr(m, "status"),
				      cli_jstr(m, "quantization"), cli_jstr(m, "architecture"),
				      params_str(m, params, sizeof(params)),
				      int_str(m, "context_length", ctx, sizeof(ctx)), size,
				      added, NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (n == 0)
		puts("(no models: download one with 'rbee model download <org/repo>')");
}

static void field(const char *label, const char *value)
{
	printf("%-15s %s\n", label, value && *value ? value : "-");
}

static void render_record(struct cli *cli, struct json_object *m)
{
	(void)cli;
	char size[32], params[32], ctx[32], tensors[32], ver[32];
	unsigned long long bytes = (unsigned long long)cli_jint(m, "size", 0);
	rb_human_bytes(bytes, size, sizeof(size));
	snprintf(size + strlen(size), sizeof(size) - strlen(size), " (%llu bytes)", bytes);
	bool gguf = !strcmp(cli_str_or(m, "format", ""), "gguf");
	field("id", cli_jstr(m, "id"));
	field("name", cli_jstr(m, "name"));
	field("status", cli_str_or(m, "status", "ready"));
	field("file", cli_jstr(m, "file"));
	field("path", cli_jstr(m, "path"));
	field("size", size);
	field("sha256", cli_jstr(m, "sha256"));
	field("verified", cli_jbool(m, "sha256_verified", false) ?
				  "yes: the sha256 matches the hub's" :
				  "no: the hub announced no sha256 for this file");
	field("format", gguf ? "GGUF" : "not GGUF (no facts read)");
	if (gguf) {
		field("architecture", cli_jstr(m, "architecture"));
		field("parameters", params_str(m, params, sizeof(params)));
		field("quantization", cli_jstr(m, "quantization"));
		field("context length", int_str(m, "context_length", ctx, sizeof(ctx)));
		field("tensors", int_str(m, "tensor_count", tensors, sizeof(tensors)));
		field("gguf version", int_str(m, "gguf_version", ver, sizeof(ver)));
	}
	field("source", cli_jstr(m, "source_url"));
	field("added at", cli_jstr(m, "added_at"));
}

/* The hive's narration already said "deleted model 'x' (N freed)"; --json still prints the
 * result. */
static void render_deleted(struct cli *cli, struct json_object *res)
{
	(void)cli;
	(void)res;
}

/* ---- commands ---- */

static struct json_object *op_with(const char *name, const char *key, const char *id)
{
	struct json_object *op = cli_op_new(name);
	if (id)
		rb_json_add_str(op, key, id);
	return op;
}

static int cmd_download(struct cli *cli, const char *id)
{
	return cli_run_job(cli, op_with("model_download", "model", id), render_record);
}

static int cmd_list(struct cli *cli, const char *id)
{
	(void)id;
	return cli_run_job(cli, op_with("model_list", NULL, NULL), render_list);
}

static int cmd_get(struct cli *cli, const char *id)
{
	return cli_run_job(cli, op_with("model_get", "id", id), render_record);
}

static int cmd_delete(struct cli *cli, const char *id)
{
	return cli_run_job(cli, op_with("model_delete", "id", id), render_deleted);
}

static const struct cli_subcmd subcmds[] = {
	{ "download", NULL, "<id>",
	  "download a model into the hive: 'org/repo' picks a GGUF by quantization preference,\n"
	  "  'org/repo:file.gguf' takes that file. The sha256 is checked against the hub's before\n"
	  "  the model is registered; Ctrl-C cancels and the next download resumes. A model\n"
	  "  already present is returned at once", cmd_download },
	{ "list", "ls", "", "list the hive's models, and unfinished downloads as 'partial'", cmd_list },
	{ "get", "show", "<id>", "show one model: path, size, sha256 and its GGUF facts", cmd_get },
	{ "delete", "rm", "<id>",
	  "delete a model (or an unfinished download of it); refused while a worker uses it or\n"
	  "  a download of it runs", cmd_delete },
	{ NULL, NULL, NULL, NULL, NULL },
};

int cli_model(struct cli *cli, int argc, char **argv)
{
	return cli_subcmd_dispatch(cli, "model", subcmds, usage,
				   "a model id ('org/repo' or 'org/repo:file.gguf')", argc, argv);
}
