/*
 * mhd_static.c - the baseline for bench/catalog.sh: a bare libmicrohttpd server that answers
 * every request with the bytes of one file, held in memory, using the same threading mode as
 * rbee-catalog (internal polling threads, epoll, one thread per CPU) and keep-alive like it (the
 * answer is queued on libmicrohttpd's second call). Whatever rbee-catalog spends beyond this is
 * its own overhead.
 *
 *   mhd_static FILE PORT_FILE [THREADS]    (listens on 127.0.0.1, any free port)
 *
 * Built by bench/catalog.sh: cc -O2 mhd_static.c $(pkg-config --cflags --libs libmicrohttpd)
 */
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct MHD_Response *body;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	(void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
	/* Answered on the second call, as rbee-catalog does: queueing on the first makes
	 * libmicrohttpd close the connection, and the baseline must keep it alive too. */
	static int seen;
	if (!*state) {
		*state = &seen;
		return MHD_YES;
	}
	return MHD_queue_response(c, MHD_HTTP_OK, body);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: mhd_static FILE PORT_FILE [THREADS]\n");
		return 2;
	}
	size_t len;
	char *data = slurp(argv[1], &len);
	if (!data) {
		perror(argv[1]);
		return 1;
	}
	body = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(body, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = argc > 3 ? (unsigned)atoi(argv[3]) : (unsigned)(cpus > 0 ? cpus : 4);
	/* Signals go to sigwait() below only: block them before any server thread exists. */
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, answer, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "mhd_static: cannot listen\n");
		return 1;
	}
	FILE *pf = fopen(argv[2], "w");
	if (!pf)
		return 1;
	fprintf(pf, "%u\n", (unsigned)MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
	fclose(pf);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	MHD_destroy_response(body);
	return 0;
}
