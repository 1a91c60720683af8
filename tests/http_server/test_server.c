/*
 * test_server.c - the shared HTTP server layer (core/lib/rb_server.c) on its own: its guards
 * and JSON errors (what the hive and rbee-catalog both answer), and streams as suspended
 * connections: woken from another thread, woken by a deadline, by a file change, ended by a
 * client that hangs up while suspended, and ended by rb_server_close (libmicrohttpd panics
 * when it is stopped with a connection still suspended).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rb_proc.h"
#include "rb_server.h"

/* ---- a raw client ---- */

static int connect_to(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	return s;
}

/* Read into buf until `marker` is in it, the peer closes, or timeout_ms passes. */
static size_t read_until(int s, char *buf, size_t cap, const char *marker, int timeout_ms)
{
	size_t len = 0;
	long long end = rb_now_ms() + timeout_ms;
	buf[0] = '\0';
	while ((!marker || !strstr(buf, marker)) && len + 1 < cap) {
		long long left = end - rb_now_ms();
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = recv(s, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return len;
}

/* One request on a fresh connection, the whole answer (Connection: close). */
static void request(uint16_t port, const char *text, char *out, size_t cap)
{
	int s = connect_to(port);
	assert_int_equal(send(s, text, strlen(text), 0), (ssize_t)strlen(text));
	read_until(s, out, cap, NULL, 3000);
	close(s);
}

static const char *body_of(const char *answer)
{
	const char *b = strstr(answer, "\r\n\r\n");
	return b ? b + 4 : "";
}

/* Open a stream: GET `path` with HTTP/1.`minor`, half-closed after the request when asked, and
 * read until `first` (which must come) into buf. */
static int open_stream(uint16_t port, const char *path, int minor, bool half_close,
		       const char *first, char *buf, size_t cap)
{
	int s = connect_to(port);
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.%d\r\nHost: 127.0.0.1\r\n\r\n", path,
			 minor);
	assert_int_equal(send(s, req, (size_t)n, 0), n);
	if (half_close)
		assert_int_equal(shutdown(s, SHUT_WR), 0);
	read_until(s, buf, cap, first, 3000);
	assert_non_null(strstr(buf, first));
	return s;
}

/* ---- the server under test ---- */

static atomic_int released;
static atomic_int filled;
static struct rb_stream *_Atomic waiting; /* the "push" stream, once it waits */
static atomic_int pushed;                 /* events pushed to it */
static char watched[256];
static char watched2[256]; /* the "/file2" stream's file */
static char watch_error[512];

/* Sends "data: pushed N" for each push; waits (no deadline) in between. */
static long long push_fill(void *cls, struct rb_stream *st, struct rb_buf *out, size_t want,
			   bool *ended)
{
	(void)want;
	(void)ended;
	int *sent = cls;
	atomic_fetch_add(&filled, 1);
	int now = atomic_load(&pushed);
	while (*sent < now)
		rb_buf_addf(out, "data: pushed %d\n\n", ++*sent);
	atomic_store(&waiting, st);
	return 0;
}

static void push_release(void *cls)
{
	atomic_store(&waiting, NULL);
	free(cls);
	atomic_fetch_add(&released, 1);
}

/* Wait up to max_ms for `want` streams to have been released, and check that they were. */
static void wait_released(int want, int max_ms)
{
	for (int i = 0; i < max_ms / 10 && atomic_load(&released) < want; i++)
		usleep(10 * 1000);
	assert_int_equal(atomic_load(&released), want);
}

/* Sends "data: tick N" every 100 ms by its own deadline, three times, then ends. */
static long long tick_fill(void *cls, struct rb_stream *st, struct rb_buf *out, size_t want,
			   bool *ended)
{
	(void)st;
	(void)want;
	long long *next = cls; /* next[0]: due, next[1]: ticks sent */
	long long now = rb_now_ms();
	if (now < next[0])
		return next[0];
	rb_buf_addf(out, "data: tick %lld\n\n", ++next[1]);
	next[0] = now + 100;
	*ended = next[1] == 3;
	return 0;
}

static void tick_release(void *cls)
{
	free(cls);
	atomic_fetch_add(&released, 1);
}

struct file_follow {
	const char *path;
	off_t seen;
};

/* Sends "data: changed" whenever the watched file was written since the last look. */
static long long file_fill(void *cls, struct rb_stream *st, struct rb_buf *out, size_t want,
			   bool *ended)
{
	(void)want;
	(void)ended;
	struct file_follow *ff = cls;
	off_t *seen = &ff->seen;
	struct rb_err err = RB_ERR_INIT;
	if (*seen < 0) { /* no cmocka assert off the test's thread: checked by the test */
		if (rb_stream_watch_file(st, ff->path, &err))
			snprintf(watch_error, sizeof(watch_error), "%s", err.msg);
		*seen = 0;
	}
	int fd = open(ff->path, O_RDONLY);
	off_t size = lseek(fd, 0, SEEK_END);
	close(fd);
	if (size != *seen) {
		*seen = size;
		rb_buf_adds(out, "data: changed\n\n");
	}
	return 0;
}

static const struct rb_stream_ops push_ops = { .fill = push_fill, .release = push_release };
static const struct rb_stream_ops tick_ops = { .fill = tick_fill, .release = tick_release };
static const struct rb_stream_ops file_ops = { .fill = file_fill, .release = tick_release,
					       .keepalive_ms = 60000 };

static enum MHD_Result route_push(struct rb_request *req)
{
	int *sent = calloc(1, sizeof(*sent));
	return rb_reply_stream(req, &push_ops, sent, ": hello\n\n");
}

static enum MHD_Result route_tick(struct rb_request *req)
{
	long long *next = calloc(2, sizeof(*next));
	return rb_reply_stream(req, &tick_ops, next, NULL);
}

static enum MHD_Result reply_file(struct rb_request *req, const char *path)
{
	struct file_follow *ff = malloc(sizeof(*ff));
	ff->path = path;
	ff->seen = -1;
	return rb_reply_stream(req, &file_ops, ff, ": watching\n\n");
}

static enum MHD_Result route_file(struct rb_request *req)
{
	return reply_file(req, watched);
}

static enum MHD_Result route_file2(struct rb_request *req)
{
	return reply_file(req, watched2);
}

static enum MHD_Result route_echo(struct rb_request *req)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "len", json_object_new_int((int)req->body_len));
	return rb_reply_json(req, 200, o);
}

static enum MHD_Result route_plain(struct rb_request *req)
{
	return rb_reply_text(req, 200, "text/plain", "ok");
}

static const struct rb_route routes[] = {
	{ "GET", "/plain", false, route_plain },
	{ "POST", "/echo", true, route_echo },
	{ "GET", "/push", false, route_push },
	{ "GET", "/tick", false, route_tick },
	{ "GET", "/file", false, route_file },
	{ "GET", "/file2", false, route_file2 },
	{ NULL, NULL, false, NULL },
};

static struct rb_server *start(bool bodies)
{
	struct rb_server_config c = {
		.name = "test server",
		.bind = "127.0.0.1",
		.routes = routes,
		.token = "s3cret",
		.realm = "test",
		.allowed_origins = "http://ok.example",
		.host_hint = "add it",
		.origin_hint = "allow it",
		.origin_guard = true,
		.no_store = true,
		.max_body = bodies ? 64 : 0,
		.threads = 2,
		.drain_ms = 500,
	};
	struct rb_server *srv = NULL;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_server_open(&c, &srv, &err), 0);
	return srv;
}

/* ---- guards and errors ---- */

static void errors_are_json_from_the_layer(void **state)
{
	(void)state;
	atomic_store(&released, 0);
	struct rb_server *srv = start(true);
	uint16_t port = rb_server_port(srv);
	char a[4096];

	request(port, "GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", a,
		sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 404"));
	assert_string_equal(body_of(a), "{\"error\":\"no route '/nowhere'\",\"code\":\"not_found\"}");
	assert_non_null(strstr(a, "Cache-Control: no-store"));

	request(port, "DELETE /plain HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", a,
		sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 405"));
	assert_string_equal(body_of(a), "{\"error\":\"method DELETE not allowed on '/plain'\","
					"\"code\":\"method_not_allowed\"}");

	request(port, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		      "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", a, sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 401"));
	assert_non_null(strstr(a, "WWW-Authenticate: Bearer realm=\"test\""));

	request(port, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		      "Authorization: Bearer s3cret\r\nContent-Type: application/json\r\n"
		      "Content-Length: 2\r\n\r\n{}", a, sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 200"));
	assert_string_equal(body_of(a), "{\"len\":2}");

	request(port, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		      "Authorization: Bearer s3cret\r\nContent-Type: text/plain\r\n"
		      "Content-Length: 2\r\n\r\n{}", a, sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 415"));

	request(port, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		      "Authorization: Bearer s3cret\r\nContent-Type: application/json\r\n"
		      "Content-Length: 100\r\n\r\n", a, sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 413"));
	assert_string_equal(body_of(a), "{\"error\":\"request body larger than 64 bytes\","
					"\"code\":\"too_large\"}");

	request(port, "GET /plain HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n", a,
		sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 403"));
	assert_string_equal(body_of(a), "{\"error\":\"Host 'evil.example' is not a name of this "
					"test server: add it\",\"code\":\"forbidden\"}");

	request(port, "GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
		      "Connection: close\r\n\r\n", a, sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 403"));

	request(port, "GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://ok.example\r\n"
		      "Connection: close\r\n\r\n", a, sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 200"));
	assert_non_null(strstr(a, "Access-Control-Allow-Origin: http://ok.example"));

	request(port, "GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n"
		      "Connection: close\r\n\r\n", a, sizeof(a));
	assert_non_null(strstr(a, "HTTP/1.1 400"));
	assert_non_null(strstr(body_of(a), "\"code\":\"invalid_request\""));
	rb_server_close(srv);
}

/* ---- streams ---- */

static void *pusher(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++) {
		while (!atomic_load(&waiting))
			usleep(1000);
		usleep(50 * 1000);
		atomic_fetch_add(&pushed, 1);
		rb_stream_wake(atomic_load(&waiting));
	}
	return NULL;
}

static void a_stream_waits_without_a_thread_and_wakes_on_push(void **state)
{
	(void)state;
	atomic_store(&released, 0);
	atomic_store(&pushed, 0);
	atomic_store(&filled, 0);
	struct rb_server *srv = start(false);
	char buf[8192];
	int s = open_stream(rb_server_port(srv), "/push", 1, false, ": hello", buf, sizeof(buf));
	assert_non_null(strstr(buf, "text/event-stream"));
	/* Nothing to send: the connection is suspended, and fill is not called again. */
	usleep(300 * 1000);
	struct rb_server_stats st;
	rb_server_get_stats(srv, &st);
	assert_int_equal(st.streams, 1);
	assert_int_equal(st.suspended, 1);
	int fills = atomic_load(&filled);
	usleep(300 * 1000);
	assert_int_equal(atomic_load(&filled), fills);
	pthread_t t;
	pthread_create(&t, NULL, pusher, NULL);
	long long t0 = rb_now_ms();
	read_until(s, buf, sizeof(buf), "pushed 3", 5000);
	assert_non_null(strstr(buf, "data: pushed 1"));
	assert_non_null(strstr(buf, "data: pushed 3"));
	assert_true(rb_now_ms() - t0 < 2000);
	pthread_join(t, NULL);
	/* The client hangs up while the stream waits (suspended: libmicrohttpd does not look at
	 * the socket): the stream still ends and is released. */
	usleep(100 * 1000);
	rb_server_get_stats(srv, &st);
	assert_int_equal(st.suspended, 1);
	close(s);
	wait_released(1, 2000);
	rb_server_get_stats(srv, &st);
	assert_int_equal(st.streams, 0);
	rb_server_close(srv);
}

static void a_stream_wakes_by_its_deadline(void **state)
{
	(void)state;
	atomic_store(&released, 0);
	struct rb_server *srv = start(false);
	int s = connect_to(rb_server_port(srv));
	const char *req = "GET /tick HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	send(s, req, strlen(req), 0);
	char buf[8192];
	long long t0 = rb_now_ms();
	size_t n = read_until(s, buf, sizeof(buf), NULL, 3000); /* HTTP/1.0: ends with a close */
	long long took = rb_now_ms() - t0;
	assert_true(n > 0);
	assert_non_null(strstr(buf, "data: tick 1\n\ndata: tick 2\n\ndata: tick 3\n\n"));
	assert_true(took >= 190 && took < 2000);
	wait_released(1, 1000);
	close(s);
	rb_server_close(srv);
}

static void a_stream_wakes_when_its_file_changes(void **state)
{
	(void)state;
	atomic_store(&released, 0);
	snprintf(watched, sizeof(watched), "/tmp/rb-server-test.%d", (int)getpid());
	int fd = open(watched, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	struct rb_server *srv = start(false);
	char buf[8192];
	int s = open_stream(rb_server_port(srv), "/file", 1, false, ": watching", buf, sizeof(buf));
	usleep(200 * 1000); /* waiting, suspended */
	assert_string_equal(watch_error, "");
	assert_int_equal(write(fd, "x\n", 2), 2);
	long long t0 = rb_now_ms();
	read_until(s, buf, sizeof(buf), "data: changed", 3000);
	assert_non_null(strstr(buf, "data: changed"));
	assert_true(rb_now_ms() - t0 < 500); /* no deadline was asked for: only inotify woke it */
	close(fd);
	unlink(watched);
	/* Stopping with the stream suspended: it is resumed, ended and released. */
	rb_server_close(srv);
	assert_int_equal(atomic_load(&released), 1);
	close(s);
}

/* A client that half-closes (shutdown(SHUT_WR) after its request: it has nothing more to say,
 * and still reads) keeps its stream: the FIN it sent is not a hang-up. */
static void a_half_closed_client_keeps_its_stream(void **state)
{
	(void)state;
	atomic_store(&released, 0);
	atomic_store(&pushed, 0);
	atomic_store(&waiting, NULL);
	struct rb_server *srv = start(false);
	char buf[8192];
	int s = open_stream(rb_server_port(srv), "/push", 1, true, ": hello", buf, sizeof(buf));
	usleep(300 * 1000); /* the FIN was seen while the stream waited */
	struct rb_server_stats st;
	rb_server_get_stats(srv, &st);
	assert_int_equal(st.streams, 1);
	assert_int_equal(atomic_load(&released), 0);
	pthread_t t;
	pthread_create(&t, NULL, pusher, NULL);
	read_until(s, buf, sizeof(buf), "pushed 3", 5000);
	pthread_join(t, NULL);
	assert_non_null(strstr(buf, "data: pushed 3"));
	/* Then it closes, everything read: no packet says so (its FIN went before), so the
	 * stream ends at its next write, which the closed socket answers with a reset. */
	close(s);
	usleep(100 * 1000);
	atomic_fetch_add(&pushed, 1);
	rb_stream_wake(atomic_load(&waiting));
	wait_released(1, 3000);
	rb_server_close(srv);
}

/* A client that closes (FIN, nothing unread: no reset) while its quiet stream waits is still
 * noticed at once, though its FIN alone looks like a half-close: the probe write is answered
 * with a reset. */
static void a_closed_client_of_a_quiet_stream_is_noticed(void **state)
{
	(void)state;
	atomic_store(&released, 0);
	snprintf(watched, sizeof(watched), "/tmp/rb-server-test.%d", (int)getpid());
	int fd = open(watched, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	close(fd);
	struct rb_server *srv = start(false);
	char buf[8192];
	int s = open_stream(rb_server_port(srv), "/file", 0, false, ": watching", buf, sizeof(buf));
	usleep(200 * 1000);
	/* everything sent was read: a close sends a FIN, not a reset */
	assert_int_equal(read_until(s, buf, sizeof(buf), "never", 100), 0);
	close(s);
	wait_released(1, 1000); /* its keep-alive is 60 s away */
	unlink(watched);
	rb_server_close(srv);
}

/* When the inotify queue overflows (more events than fs.inotify.max_queued_events before the
 * stream thread reads them), events are dropped, those of quiet files too: every watching
 * stream must look again. The server runs in a child that is stopped (SIGSTOP) while a busy
 * file gets enough events to overflow the queue; then the quiet file is written, its event
 * dropped. Its stream asked for no deadline, so only the overflow can wake it. */
static void an_inotify_overflow_wakes_every_watch(void **state)
{
	(void)state;
	long max_events = 16384;
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	if (f) {
		if (fscanf(f, "%ld", &max_events) != 1)
			max_events = 16384;
		fclose(f);
	}
	if (max_events > (1L << 20))
		skip(); /* too many writes to overflow it here */
	snprintf(watched, sizeof(watched), "/tmp/rb-server-test.%d.quiet", (int)getpid());
	snprintf(watched2, sizeof(watched2), "/tmp/rb-server-test.%d.busy", (int)getpid());
	close(open(watched, O_CREAT | O_TRUNC | O_WRONLY, 0600));
	close(open(watched2, O_CREAT | O_TRUNC | O_WRONLY, 0600));
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(pfd[0]);
		struct rb_server *srv = start(false);
		uint16_t port = rb_server_port(srv);
		if (write(pfd[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	uint16_t port = 0;
	assert_int_equal(read(pfd[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	close(pfd[0]);
	char buf[8192];
	int quiet = open_stream(port, "/file", 1, false, ": watching", buf, sizeof(buf));
	int busy = open_stream(port, "/file2", 1, false, ": watching", buf, sizeof(buf));
	usleep(300 * 1000); /* both watch their files and wait */
	assert_int_equal(kill(child, SIGSTOP), 0);
	int ws;
	assert_int_equal(waitpid(child, &ws, WUNTRACED), child);
	/* each round is two events (IN_MODIFY, IN_CLOSE_WRITE) that do not merge */
	for (long i = 0; i < max_events / 2 + 64; i++) {
		int fd = open(watched2, O_WRONLY | O_APPEND);
		assert_int_equal(write(fd, "b", 1), 1);
		close(fd);
	}
	int fd = open(watched, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "q\n", 2), 2);
	close(fd);
	assert_int_equal(kill(child, SIGCONT), 0);
	read_until(quiet, buf, sizeof(buf), "data: changed", 3000);
	bool woken = strstr(buf, "data: changed") != NULL;
	kill(child, SIGKILL);
	waitpid(child, &ws, 0);
	close(quiet);
	close(busy);
	unlink(watched);
	unlink(watched2);
	assert_true(woken);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(errors_are_json_from_the_layer),
		cmocka_unit_test(a_stream_waits_without_a_thread_and_wakes_on_push),
		cmocka_unit_test(a_stream_wakes_by_its_deadline),
		cmocka_unit_test(a_stream_wakes_when_its_file_changes),
		cmocka_unit_test(a_half_closed_client_keeps_its_stream),
		cmocka_unit_test(a_closed_client_of_a_quiet_stream_is_noticed),
		cmocka_unit_test(an_inotify_overflow_wakes_every_watch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
