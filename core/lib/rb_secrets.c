/*
 * rb_secrets.c - the secret policy (see rb_secrets.h).
 */
#include "rb_secrets.h"

#include <fnmatch.h>
#include <stddef.h>

static const char *const patterns[] = { "RBEE_API_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
					"*_TOKEN", "*SECRET*", "*PASSWORD*", "*_API_KEY",
					"AWS_*KEY*", "SSH_AUTH_SOCK", NULL };

const char *const *rb_secret_env_patterns(void)
{
	return patterns;
}

bool rb_secret_env_name(const char *name)
{
	if (!name || !*name)
		return false;
	for (size_t i = 0; patterns[i]; i++)
		if (fnmatch(patterns[i], name, FNM_CASEFOLD) == 0)
			return true;
	return false;
}
