/*
 * rb_secrets.h - the secret policy: which environment variables hold secrets of the hive that
 * no child may inherit and no plugin may read.
 *
 * One rule, used by every place that hands the hive's environment on: the scrubbed environment
 * of builds, verify probes, plugin probe children, source fetches, the mirror filler and workers
 * (rb_env_from_environ_scrubbed in core/hive/backends/host.c) and a plugin's getenv host service.
 */
#ifndef RB_SECRETS_H
#define RB_SECRETS_H

#include <stdbool.h>

/*
 * True when a variable of this name is a secret: RBEE_API_TOKEN, HF_TOKEN,
 * HUGGING_FACE_HUB_TOKEN, *_TOKEN, *SECRET*, *PASSWORD*, *_API_KEY, AWS_*KEY*, SSH_AUTH_SOCK,
 * in any case ("hf_token" is as secret as "HF_TOKEN"). NULL and "" are not names: false.
 */
bool rb_secret_env_name(const char *name);

/* The patterns above (fnmatch, case-insensitive), NULL-terminated: for messages and docs. */
const char *const *rb_secret_env_patterns(void);

#endif
