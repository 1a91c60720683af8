/*
 * config.h - turning flags and environment into a hive configuration and its paths.
 */
#ifndef RB_CONFIG_H
#define RB_CONFIG_H

#include <stdio.h>

#include "hive.h"
#include "rb_err.h"

enum rb_config_action { RB_CONFIG_RUN, RB_CONFIG_HELP, RB_CONFIG_VERSION, RB_CONFIG_PROBE,
			 RB_CONFIG_FILL_MIRROR };

/* Defaults, then environment (RBEE_PORT, RBEE_CATALOG_URL, RBEE_API_TOKEN), then flags. For
 * RB_CONFIG_PROBE, *probe_path is the plugin to probe. Errors are usage errors. */
int rb_config_parse(struct rb_config *cfg, int argc, char **argv, enum rb_config_action *action,
		    const char **probe_path, struct rb_err *err);
/* Refuse unsafe combinations: a non-loopback bind without a token (unless --insecure-no-auth). */
int rb_config_check(const struct rb_config *cfg, struct rb_err *err);
/* Resolve the cache root and create its subdirectories. */
int rb_paths_init(struct rb_paths *paths, struct rb_err *err);
void rb_config_usage(FILE *out);
/* <prefix>/<reldir> where prefix is the directory above the running executable's bin/, if that
 * directory exists; else `fallback`. */
void rb_config_exe_relative(const char *reldir, const char *fallback, char *out, size_t len);

#endif
