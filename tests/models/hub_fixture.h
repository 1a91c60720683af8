/*
 * hub_fixture.h - runs tests/models/fake_hub.py for a cmocka test: a temporary directory with
 * the hub's repositories under root/, the hub's request log, and helpers to steer it.
 */
#ifndef HUB_FIXTURE_H
#define HUB_FIXTURE_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_http.h"

struct hub {
	char dir[256];   /* temporary directory of the test */
	char root[300];  /* repositories: root/<org>/<repo>/<file> */
	char log[300];   /* one JSON line per request */
	char url[64];
	pid_t pid;
};

static struct hub hub;

#define HUB_TOKEN "hf_test_token"

static int hub_start(void)
{
	const char *src = getenv("RBEE_SRC");
	char port_file[320], script[512];
	snprintf(hub.dir, sizeof(hub.dir), "/tmp/rbee-models-XXXXXX");
	if (!mkdtemp(hub.dir) || !src)
		return -1;
	snprintf(hub.root, sizeof(hub.root), "%s/root", hub.dir);
	snprintf(hub.log, sizeof(hub.log), "%s/hub.log", hub.dir);
	snprintf(port_file, sizeof(port_file), "%s/port", hub.dir);
	snprintf(script, sizeof(script), "%s/tests/models/fake_hub.py", src);
	mkdir(hub.root, 0755);
	rb_http_global_init();
	hub.pid = fork();
	if (hub.pid == 0) {
		execlp("python3", "python3", script, "--root", hub.root, "--port-file", port_file,
		       "--log", hub.log, "--token", HUB_TOKEN, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct rb_buf b = RB_BUF_INIT;
		if (rb_fs_read_file(port_file, 64, &b, NULL) == 0 && b.len) {
			snprintf(hub.url, sizeof(hub.url), "http://127.0.0.1:%s", b.data);
			rb_buf_release(&b);
			return 0;
		}
		rb_buf_release(&b);
		usleep(50 * 1000);
	}
	return -1;
}

static void hub_stop(void)
{
	if (hub.pid > 0) {
		kill(hub.pid, SIGTERM);
		waitpid(hub.pid, NULL, 0);
	}
	rb_fs_rm_rf(hub.dir, NULL);
}

/* POST /_control with a JSON body. */
static int hub_control(const char *json)
{
	char url[128];
	struct rb_http_resp r;
	snprintf(url, sizeof(url), "%s/_control", hub.url);
	rb_http_resp_init(&r);
	int rc = rb_http_request("POST", url, NULL, json, strlen(json), 5000, 0, &r, NULL);
	if (!rc && r.status != 200)
		rc = -1;
	rb_http_resp_release(&r);
	return rc;
}

/* Put `len` pseudo-random bytes (or `data` when not NULL) at root/<rel>. */
static void hub_put(const char *rel, const void *data, size_t len)
{
	char path[600], dir[600];
	snprintf(path, sizeof(path), "%s/%s", hub.root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	rb_fs_mkdir_p(dir, 0755, NULL);
	char *buf = malloc(len ? len : 1);
	if (data) {
		memcpy(buf, data, len);
	} else {
		unsigned x = 2463534242u;
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			buf[i] = (char)x;
		}
	}
	rb_fs_write_atomic(path, buf, len, 0644, NULL);
	free(buf);
}

/* Empty the request log. */
static void hub_log_reset(void)
{
	unlink(hub.log);
}

/* Back to a well-behaved hub: no private repos, drops, stalls, wrong hashes or ignored
 * Ranges, hashes announced; the request log emptied. */
static inline int hub_reset(void)
{
	int rc = hub_control("{\"private\":[],\"drop_once\":{},\"stall_once\":{},\"wrong_hash\":[],"
			     "\"ignore_range\":false,\"no_sha\":false}");
	hub_log_reset(); /* after: the control request itself is not part of a test's log */
	return rc;
}

/* cmocka group teardown that stops the hub. */
static inline int hub_teardown(void **state)
{
	(void)state;
	hub_stop();
	return 0;
}

/* How many logged requests contain `needle` (e.g. "\"range\": \"bytes=100-\""). */
static int hub_log_count(const char *needle)
{
	struct rb_buf b = RB_BUF_INIT;
	int n = 0;
	if (rb_fs_read_file(hub.log, 1 << 24, &b, NULL) == 0)
		for (const char *p = b.data; (p = strstr(p, needle)); p++)
			n++;
	rb_buf_release(&b);
	return n;
}

#endif
