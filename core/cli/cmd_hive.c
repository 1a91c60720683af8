/*
 * cmd_hive.c - `rbee hive status | devices | backends | check`.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rb_json.h"

static void usage(FILE *out)
{
	fputs("usage: rbee hive <command>\n"
	      "\n"
	      "  status     the hive's identity, uptime, catalog and paths\n"
	      "  devices    the devices workers can run on (GPUs, CPU NUMA nodes)\n"
	      "  backends   the backend plugins and whether they can run here\n"
	      "  check      run the hive's self-test\n"
	      "\n"
	      "options: --json (print the hive's JSON only), --hive URL, --help\n",
	      out);
}

static void print_json(struct json_object *o)
{
	cli_print_json(stdout, o);
}

static int hive_status(struct cli *cli, const char *arg)
{
	(void)arg;
	struct json_object *info;
	int rc = cli_get_json(cli, "/v1/info", &info);
	if (rc)
		return rc;
	if (cli->json) {
		print_json(info);
	} else {
		struct json_object *paths = cli_jobj(info, "paths");
		long long up = (long long)cli_jint(info, "uptime_s", 0);
		printf("hive      %s (rbee-hive %s) on %s\n", cli_str_or(info, "hive_id", "?"),
		       cli_str_or(info, "version", "?"), cli_str_or(info, "hostname", "?"));
		printf("url       %s\n", cli->hive_url);
		printf("uptime    %lldd %02lldh %02lldm %02llds\n", up / 86400, up / 3600 % 24,
		       up / 60 % 60, up % 60);
		printf("auth      %s\n", cli_jbool(info, "auth_required", false) ? "token required" : "none");
		printf("catalog   %s\n", cli_str_or(info, "catalog", "?"));
		printf("cache     %s\n", cli_str_or(paths, "home", "?"));
		printf("plugins   %s\n", cli_str_or(paths, "plugins", "?"));
	}
	json_object_put(info);
	return CLI_OK;
}

static int hive_devices(struct cli *cli, const char *arg)
{
	(void)arg;
	struct json_object *caps, *devs;
	int rc = cli_get_json(cli, "/v1/capabilities", &caps);
	if (rc)
		return rc;
	if (cli->json) {
		print_json(caps);
		json_object_put(caps);
		return CLI_OK;
	}
	if (!(devs = cli_jarr(caps, "devices"))) {
		fputs("rbee: the hive answered /v1/capabilities without a device list\n", stderr);
		json_object_put(caps);
		return CLI_FAILED;
	}
	static const char *const hdr[] = { "ID", "BACKEND", "NAME", "MEMORY", "FREE", "CC", "NUMA",
					   "CPUS", "PCI", NULL };
	struct cli_table *t = cli_table_new(hdr);
	for (size_t i = 0; i < cli_jlen(devs); i++) {
		struct json_object *d = cli_jat(devs, i);
		char total[32], freeb[32], numa[16] = "";
		rb_human_bytes((unsigned long long)cli_jint(d, "memory_total_bytes", 0), total, sizeof(total));
		rb_human_bytes((unsigned long long)cli_jint(d, "memory_free_bytes", 0), freeb, sizeof(freeb));
		if (cli_jint(d, "numa_node", -1) >= 0)
			snprintf(numa, sizeof(numa), "%lld", (long long)cli_jint(d, "numa_node", -1));
		const char *row[] = { cli_jstr(d, "id"), cli_jstr(d, "backend"), cli_jstr(d, "name"),
				      total, freeb, cli_jstr(d, "compute_capability"), numa,
				      cli_jstr(d, "cpuset"), cli_jstr(d, "pci_bus_id"), NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (cli_jlen(devs) == 0)
		puts("(no devices: see 'rbee hive backends' for why)");
	json_object_put(caps);
	return CLI_OK;
}

static int hive_backends(struct cli *cli, const char *arg)
{
	(void)arg;
	struct json_object *o, *list;
	int rc = cli_get_json(cli, "/v1/backends", &o);
	if (rc)
		return rc;
	if (cli->json) {
		print_json(o);
		json_object_put(o);
		return CLI_OK;
	}
	if (!(list = cli_jarr(o, "backends"))) {
		fputs("rbee: the hive answered /v1/backends without a backend list\n", stderr);
		json_object_put(o);
		return CLI_FAILED;
	}
	static const char *const hdr[] = { "BACKEND", "VERSION", "STATE", "SCORE", "DEVICES", "REASON", NULL };
	struct cli_table *t = cli_table_new(hdr);
	for (size_t i = 0; i < cli_jlen(list); i++) {
		struct json_object *b = cli_jat(list, i), *devs = cli_jarr(b, "devices");
		char score[16], ndev[16];
		snprintf(score, sizeof(score), "%lld", (long long)cli_jint(b, "score", 0));
		snprintf(ndev, sizeof(ndev), "%zu", cli_jlen(devs));
		const char *row[] = { cli_jstr(b, "name"), cli_jstr(b, "version"),
				      cli_jstr(b, "state"), score, ndev, cli_jstr(b, "reason"), NULL };
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_object_put(o);
	return CLI_OK;
}

static const struct cli_subcmd subcmds[] = {
	{ "status", NULL, "",
	  "the hive's id, version and host, its URL and uptime, whether it requires a bearer token, "
	  "and its worker catalog, cache directory and plugin directory", hive_status },
	{ "devices", NULL, "",
	  "the devices workers can run on: GPUs (memory, compute capability, NUMA node, PCI bus id) "
	  "and CPU NUMA nodes, as the available backends enumerated them", hive_devices },
	{ "backends", NULL, "",
	  "each backend plugin with its state: available, unavailable (this node lacks what it "
	  "needs: the reason says what) or broken (the plugin itself failed)", hive_backends },
	{ "check", NULL, "",
	  "run the hive's self-test: each backend plugin's state, whether the cache directory is "
	  "writable, whether the worker catalog is reachable. Exit status 0 when the hive can work, "
	  "1 when a hard requirement fails", cli_hive_check },
	{ NULL, NULL, NULL, NULL, NULL },
};

int cli_hive(struct cli *cli, int argc, char **argv)
{
	return cli_subcmd_dispatch(cli, "hive", subcmds, usage, "nothing", argc, argv);
}
