/*
 * rbee-test-worker - a tiny worker that follows the rbee worker contract, for tests.
 *
 *   rbee-test-worker --worker-id ID --model PATH --model-ref REF --backend B --device N
 *                    --port P --hive-url URL [test switches]
 *
 * It serves GET /health -> 200 "ok" (anything else 404) on 127.0.0.1:P with plain sockets.
 * Test switches, for the process supervisor's tests:
 *   --slow-start-ms N    wait N ms before listening
 *   --crash-on-start     exit with status 3 before listening
 *   --fail-bind          report the port as taken and exit with status 4
 *   --ignore-sigterm     keep running on SIGTERM (only SIGKILL stops it)
 *   --die-after-ms N     exit with status 5 N ms after it started listening
 * `--version` prints "rbee-test-worker 1.0"; `--help` prints this usage. Plain C, no deps, so
 * the test catalog's PKGBUILD can build it with `cc` alone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VERSION "1.0"

struct opts {
	const char *worker_id, *model, *model_ref, *backend, *device, *hive_url;
	int port;
	long slow_start_ms, die_after_ms;
	int crash_on_start, fail_bind, ignore_sigterm;
};

static void usage(FILE *out)
{
	fputs("usage: rbee-test-worker --worker-id ID --model PATH --model-ref REF --backend B\n"
	      "                        --device N --port P --hive-url URL\n"
	      "                        [--slow-start-ms N] [--crash-on-start] [--fail-bind]\n"
	      "                        [--ignore-sigterm] [--die-after-ms N]\n"
	      "       rbee-test-worker --version | --help\n", out);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Returns 0, or 2 for a usage error (already reported). */
static int parse(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **str = !strcmp(a, "--worker-id") ? &o->worker_id
				   : !strcmp(a, "--model")     ? &o->model
				   : !strcmp(a, "--model-ref") ? &o->model_ref
				   : !strcmp(a, "--backend")   ? &o->backend
				   : !strcmp(a, "--device")    ? &o->device
				   : !strcmp(a, "--hive-url")  ? &o->hive_url
							       : NULL;
		if (!strcmp(a, "--crash-on-start") || !strcmp(a, "--fail-bind") ||
		    !strcmp(a, "--ignore-sigterm")) {
			*(a[2] == 'c' ? &o->crash_on_start : a[2] == 'f' ? &o->fail_bind
									: &o->ignore_sigterm) = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "rbee-test-worker: '%s' needs a value (or is unknown)\n", a);
			return 2;
		}
		const char *v = argv[++i];
		if (str)
			*str = v;
		else if (!strcmp(a, "--port"))
			o->port = atoi(v);
		else if (!strcmp(a, "--slow-start-ms"))
			o->slow_start_ms = atol(v);
		else if (!strcmp(a, "--die-after-ms"))
			o->die_after_ms = atol(v);
		else {
			fprintf(stderr, "rbee-test-worker: unknown option '%s'\n", a);
			return 2;
		}
	}
	if (o->port <= 0 || o->port > 65535) {
		fputs("rbee-test-worker: --port is required (1-65535)\n", stderr);
		return 2;
	}
	return 0;
}

static void answer(int fd)
{
	char req[2048];
	ssize_t n = recv(fd, req, sizeof(req) - 1, 0);
	if (n <= 0)
		return;
	req[n] = '\0';
	int health = !strncmp(req, "GET /health ", 12) || !strncmp(req, "GET /health?", 12);
	const char *resp = health ? "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				    "Content-Length: 2\r\nConnection: close\r\n\r\nok"
				  : "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
				    "Content-Length: 9\r\nConnection: close\r\n\r\nnot found";
	ssize_t w = send(fd, resp, strlen(resp), MSG_NOSIGNAL);
	(void)w;
	printf("%.*s\n", (int)strcspn(req, "\r\n"), req);
	fflush(stdout);
}

static int listen_on(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s, 16) != 0) {
		fprintf(stderr, "rbee-test-worker: cannot listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return -1;
	}
	return s;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		puts("rbee-test-worker " VERSION);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	struct opts o = { 0 };
	if (parse(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("rbee-test-worker %s: worker %s, model %s, backend %s, device %s, port %d\n", VERSION,
	       o.worker_id ? o.worker_id : "-", o.model ? o.model : "-", o.backend ? o.backend : "-",
	       o.device ? o.device : "-", o.port);
	if (o.ignore_sigterm)
		signal(SIGTERM, SIG_IGN);
	if (o.crash_on_start) {
		fputs("rbee-test-worker: crashing on start as asked (--crash-on-start)\n", stderr);
		return 3;
	}
	if (o.slow_start_ms > 0)
		sleep_ms(o.slow_start_ms);
	if (o.fail_bind) {
		fprintf(stderr, "rbee-test-worker: cannot listen on 127.0.0.1:%d: Address already in "
			"use (--fail-bind)\n", o.port);
		return 4;
	}
	int s = listen_on(o.port);
	if (s < 0)
		return 1;
	printf("listening on 127.0.0.1:%d\n", o.port);
	long long deadline = o.die_after_ms > 0 ? now_ms() + o.die_after_ms : 0;
	for (;;) {
		int wait = 1000;
		if (deadline) {
			long long left = deadline - now_ms();
			if (left <= 0) {
				fputs("rbee-test-worker: exiting as asked (--die-after-ms)\n", stderr);
				return 5;
			}
			wait = left < 1000 ? (int)left : 1000;
		}
		struct pollfd p = { s, POLLIN, 0 };
		if (poll(&p, 1, wait) <= 0)
			continue;
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		answer(c);
		close(c);
	}
}
