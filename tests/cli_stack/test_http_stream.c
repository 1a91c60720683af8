/*
 * test_http_stream.c - rb_http_stream, the streamed request the CLI's followers run on: body
 * bytes handed over as they come with the status, the request headers sent, a stop from the
 * body callback, a silent connection counted dead, no server at all; and rb_http_escape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rb_buf.h"
#include "rb_http.h"

/* A one-connection server: reads the request, sends `reply`, then waits `hold_s` before
 * closing (a silent connection). */
struct server {
	int fd;
	int port;
	const char *reply;
	int hold_s;
	char request[4096];
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	size_t got = 0;
	while (got < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
		ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		s->request[got] = '\0';
	}
	ssize_t w = write(c, s->reply, strlen(s->reply));
	(void)w;
	if (s->hold_s)
		sleep((unsigned)s->hold_s);
	close(c);
	return NULL;
}

static void server_start(struct server *s, const char *reply, int hold_s)
{
	memset(s, 0, sizeof(*s));
	s->reply = reply;
	s->hold_s = hold_s;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 1), 0);
	socklen_t len = sizeof(a);
	getsockname(s->fd, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

struct got {
	struct rb_buf body;
	long status;
	int stop_after; /* stop once this many bytes came (0: never) */
};

static int on_body(void *arg, long status, const char *p, size_t n)
{
	struct got *g = arg;
	g->status = status;
	rb_buf_add(&g->body, p, n);
	return g->stop_after && g->body.len >= (size_t)g->stop_after;
}

static const char STREAM[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			     "Connection: close\r\n\r\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n";

static void streams_the_body_with_its_status_and_sends_the_headers(void **state)
{
	(void)state;
	struct server s;
	server_start(&s, STREAM, 0);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs/x/stream", s.port);
	const char *headers[] = { "Authorization: Bearer tok", "Last-Event-ID: 7", NULL };
	struct got g = { RB_BUF_INIT, 0, 0 };
	struct rb_http_stream hs = { .url = url, .headers = headers, .on_body = on_body, .arg = &g };
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_http_stream(&hs, &err), 0);
	server_stop(&s);
	assert_int_equal(hs.status, 200);
	assert_int_equal(g.status, 200);
	assert_false(hs.stopped);
	assert_string_equal(g.body.data, "id: 1\ndata: a\n\nid: 2\ndata: b\n\n");
	assert_non_null(strstr(s.request, "GET /v1/jobs/x/stream HTTP/1.1\r\n"));
	assert_non_null(strstr(s.request, "\r\nAuthorization: Bearer tok\r\n"));
	assert_non_null(strstr(s.request, "\r\nLast-Event-ID: 7\r\n"));
	rb_buf_release(&g.body);
}

static void the_body_callback_stops_the_transfer(void **state)
{
	(void)state;
	struct server s;
	server_start(&s, STREAM, 0);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	struct got g = { RB_BUF_INIT, 0, 1 };
	struct rb_http_stream hs = { .url = url, .on_body = on_body, .arg = &g };
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_http_stream(&hs, &err), 0);
	server_stop(&s);
	assert_true(hs.stopped);
	rb_buf_release(&g.body);
}

static void a_silent_connection_is_dead_and_an_error_status_is_told(void **state)
{
	(void)state;
	struct server s;
	server_start(&s, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\n{\"error\":", 10);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	struct got g = { RB_BUF_INIT, 0, 0 };
	/* curl averages the speed over its last 5 s, so "silent for 1 s" is seen within ~7 s. */
	struct rb_http_stream hs = { .url = url, .silence_s = 1, .on_body = on_body, .arg = &g };
	struct rb_err err = RB_ERR_INIT;
	assert_int_not_equal(rb_http_stream(&hs, &err), 0);
	assert_int_equal(err.code, RB_ETIMEDOUT);
	server_stop(&s);
	assert_int_equal(hs.status, 401); /* a response had begun */
	assert_int_equal(g.status, 401);
	assert_string_equal(g.body.data, "{\"error\":");
	assert_non_null(strstr(err.msg, "sent nothing for 1 s"));
	rb_buf_release(&g.body);
}

static void no_server_is_unavailable(void **state)
{
	(void)state;
	struct server s;
	server_start(&s, "", 0);
	int port = s.port;
	/* Let the thread's accept end: connect once, then close the listener. */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	connect(c, (struct sockaddr *)&a, sizeof(a));
	ssize_t w = write(c, "\r\n\r\n", 4);
	(void)w;
	close(c);
	server_stop(&s);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	struct got g = { RB_BUF_INIT, 0, 0 };
	struct rb_http_stream hs = { .url = url, .on_body = on_body, .arg = &g };
	struct rb_err err = RB_ERR_INIT;
	assert_int_not_equal(rb_http_stream(&hs, &err), 0);
	assert_int_equal(err.code, RB_EUNAVAIL);
	assert_int_equal(hs.status, 0);
	assert_non_null(strstr(err.msg, "cannot reach 'http://127.0.0.1:"));
	rb_buf_release(&g.body);
}

static void escape_keeps_unreserved_characters_only(void **state)
{
	(void)state;
	struct rb_buf b = RB_BUF_INIT;
	rb_http_escape(&b, "rbee-test_1.x~Z");
	assert_string_equal(b.data, "rbee-test_1.x~Z");
	rb_buf_reset(&b);
	rb_http_escape(&b, "a/b?c=d&e f#\xc3\xa9%");
	assert_string_equal(b.data, "a%2Fb%3Fc%3Dd%26e%20f%23%C3%A9%25");
	rb_buf_release(&b);
}

int main(void)
{
	rb_http_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(streams_the_body_with_its_status_and_sends_the_headers),
		cmocka_unit_test(the_body_callback_stops_the_transfer),
		cmocka_unit_test(a_silent_connection_is_dead_and_an_error_status_is_told),
		cmocka_unit_test(no_server_is_unavailable),
		cmocka_unit_test(escape_keeps_unreserved_characters_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
