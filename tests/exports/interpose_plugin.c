/*
 * interpose_plugin.c - a plugin built the way a third party may build one: default symbol
 * visibility, so its functions are interposable. It defines its own rb_fs_exists(), a name the
 * hive also uses internally (core/lib/rb_fs.c). If the hive exported its rb_* symbols, the
 * dynamic linker would bind this plugin's call to the hive's function (the executable comes
 * first in the lookup scope) and the probe would report "the hive's". A hive that exports only
 * the ABI leaves the plugin its own function.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <rbee/backend.h>

#define SENTINEL "rbee-interpose-sentinel: no such file"

/* The plugin's own helper: true only for its sentinel (the hive's would look for a file). */
bool rb_fs_exists(const char *path);
bool rb_fs_exists(const char *path)
{
	return path && strcmp(path, SENTINEL) == 0;
}

static int probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 1;
	snprintf(out->reason, sizeof(out->reason), "rb_fs_exists resolved to %s",
		 rb_fs_exists(SENTINEL) ? "the plugin's own" : "the hive's");
	return RBEE_OK;
}

RBEE_BACKEND_DEFINE(interpose) = { RBEE_BACKEND_HEADER("interpose"), .version = "1.0",
				   .description = "exports test: a plugin with its own rb_fs_exists",
				   .probe = probe };
