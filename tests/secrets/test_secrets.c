/*
 * test_secrets.c - the secret policy (rb_secret_env_name): which variable names are secrets, in
 * any case, and that the scrubbed environment children start from (rb_env_from_environ_scrubbed)
 * drops exactly those.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/host.h"
#include "rb_secrets.h"

static const char *const secrets[] = {
	"RBEE_API_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GITHUB_TOKEN", "hf_token",
	"Rbee_Api_Token", "MY_SECRET", "SECRET", "client_secret_file", "DB_PASSWORD", "PASSWORD",
	"mysql_password_x", "OPENAI_API_KEY", "aws_secret_access_key", "AWS_ACCESS_KEY_ID",
	"AWS_SESSION_TOKEN", "SSH_AUTH_SOCK", "ssh_auth_sock", NULL,
};

static const char *const plain[] = {
	"PATH", "HOME", "LANG", "RBEE_HOME", "RBEE_PORT", "HF_ENDPOINT", "TOKEN", "TOKENIZER_DIR",
	"MY_TOKEN_FILE_X", "CUDA_VISIBLE_DEVICES", "API_KEY", "AWS_REGION", "SSH_AGENT_PID", "KEYS",
	NULL,
};

static void names_that_are_secrets(void **state)
{
	(void)state;
	for (size_t i = 0; secrets[i]; i++)
		if (!rb_secret_env_name(secrets[i]))
			fail_msg("'%s' is not treated as a secret", secrets[i]);
}

static void names_that_are_not(void **state)
{
	(void)state;
	for (size_t i = 0; plain[i]; i++)
		if (rb_secret_env_name(plain[i]))
			fail_msg("'%s' is treated as a secret", plain[i]);
	assert_false(rb_secret_env_name(NULL));
	assert_false(rb_secret_env_name(""));
}

static void patterns_are_listed(void **state)
{
	(void)state;
	size_t n = 0;
	for (const char *const *p = rb_secret_env_patterns(); *p; p++, n++)
		assert_true(rb_secret_env_name(*p[0] == '*' ? "X_TOKEN" : *p));
	assert_true(n >= 9);
}

/* What builds, verify probes, probe children and workers inherit applies the policy. */
static void scrubbed_environment_drops_exactly_the_secrets(void **state)
{
	(void)state;
	for (size_t i = 0; secrets[i]; i++)
		setenv(secrets[i], "s3cr3t", 1);
	for (size_t i = 0; plain[i]; i++)
		setenv(plain[i], "plain-value", 1);
	struct rb_env env;
	rb_env_init(&env);
	rb_env_from_environ_scrubbed(&env);
	for (size_t i = 0; secrets[i]; i++)
		if (rb_env_get(&env, secrets[i]))
			fail_msg("'%s' survived the scrub", secrets[i]);
	for (size_t i = 0; plain[i]; i++) {
		const char *v = rb_env_get(&env, plain[i]);
		if (!v || strcmp(v, "plain-value"))
			fail_msg("'%s' was dropped by the scrub", plain[i]);
	}
	for (const char *const *e = rb_env_envp(&env); *e; e++)
		assert_null(strstr(*e, "s3cr3t"));
	rb_env_release(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_that_are_secrets),
		cmocka_unit_test(names_that_are_not),
		cmocka_unit_test(patterns_are_listed),
		cmocka_unit_test(scrubbed_environment_drops_exactly_the_secrets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
