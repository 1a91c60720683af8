/*
 * main.c - rbee-catalog: serves a worker catalog directory over HTTP (SPEC section 5).
 *
 * The directory is loaded once at start and again on SIGHUP (a failed reload keeps serving
 * the previous catalog). SIGTERM and SIGINT stop it cleanly. All signals are taken
 * synchronously by the main thread with sigwait(); the server threads never see them.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rb_err.h"
#include "rb_fs.h"
#include "rb_http_guard.h"
#include "rb_log.h"
#include "serve.h"
#include "store.h"

#define DEFAULT_PORT 8787
#define EXIT_USAGE 2

struct options {
	const char *bind;
	unsigned port;
	const char *dir;          /* NULL: the shipped catalog */
	const char *port_file;    /* NULL: none */
	unsigned threads;
	const char *allowed_origins; /* NULL: the Hono catalog's (CAT_DEFAULT_ORIGINS) */
	const char *allowed_hosts;   /* NULL: none besides the server's own names */
	char default_dir[PATH_MAX];
};

#define DEFAULT_PER_IP 64u
#define DEFAULT_TIMEOUT_S 10u

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rbee-catalog [--dir DIR] [--port N] [--bind ADDR] [--port-file FILE]\n"
		"\n"
		"Serve a worker catalog directory (workers/<id>.json + pkgbuilds/<id>.PKGBUILD):\n"
		"  GET /health, GET /workers, GET /workers/{id}, GET /workers/{id}/PKGBUILD\n"
		"\n"
		"  --dir DIR         catalog directory (default: the catalog shipped with rbee,\n"
		"                    <prefix>/" RBEE_CATALOG_RELDIR ")\n"
		"  --port N          port to listen on (default %d; 0 = any free port)\n"
		"  --bind ADDR       address to listen on (default 127.0.0.1)\n"
		"  --port-file FILE  write the bound port to FILE once listening\n"
		"  --threads N       server threads (default: one per CPU)\n"
		"  --allowed-origins LIST  comma-separated browser origins that get CORS headers\n"
		"                    (RBEE_ALLOWED_ORIGINS; default: the Hive UI, queen and keeper\n"
		"                    on localhost and 127.0.0.1 ports 7836, 8500, 8501; '*' = any)\n"
		"  --allowed-hosts LIST    extra Host names to answer to besides the bind address,\n"
		"                    the hostname and localhost (RBEE_ALLOWED_HOSTS; '*' = any)\n"
		"  --help, --version\n"
		"\n"
		"environment: RBEE_HTTP_TIMEOUT_S (idle connections, default %u s),\n"
		"RBEE_HTTP_MAX_PER_IP (connections from one address, default %u).\n"
		"SIGHUP reloads the directory; malformed entries are logged and skipped.\n",
		DEFAULT_PORT, DEFAULT_TIMEOUT_S, DEFAULT_PER_IP);
}

/* <exe dir>/../share/rbee/catalog when it exists (build tree, relocated install), else the
 * compiled-in install path. */
static void default_catalog_dir(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/../%s", exe, RBEE_CATALOG_RELDIR);
			if (rb_fs_is_dir(out))
				return;
		}
	}
	snprintf(out, len, "%s", RBEE_CATALOG_DIR);
}

static int parse_uint(const char *flag, const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max) {
		fprintf(stderr, "rbee-catalog: invalid %s '%s': use a number from 0 to %u\n", flag, s,
			max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}


/* 0: run; 1: exit 0 (help/version printed); -1: usage error (message printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
	enum { O_PORT = 256, O_BIND, O_DIR, O_PORT_FILE, O_THREADS, O_HELP, O_VERSION, O_ORIGINS,
	       O_HOSTS };
	static const struct option longs[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "bind", required_argument, NULL, O_BIND },
		{ "dir", required_argument, NULL, O_DIR },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "allowed-origins", required_argument, NULL, O_ORIGINS },
		{ "allowed-hosts", required_argument, NULL, O_HOSTS },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			if (parse_uint("--port", optarg, 65535, &o->port))
				return -1;
			break;
		case O_BIND: o->bind = optarg; break;
		case O_DIR: o->dir = optarg; break;
		case O_PORT_FILE: o->port_file = optarg; break;
		case O_ORIGINS: o->allowed_origins = optarg; break;
		case O_HOSTS: o->allowed_hosts = optarg; break;
		case O_THREADS:
			if (parse_uint("--threads", optarg, 256, &o->threads))
				return -1;
			break;
		case 'h':
		case O_HELP: usage(stdout); return 1;
		case O_VERSION: printf("rbee-catalog %s\n", RBEE_VERSION); return 1;
		default:
			fprintf(stderr, "rbee-catalog: unknown or incomplete option '%s' (see --help)\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rbee-catalog: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -1;
	}
	const char *v;
	if (!o->allowed_origins && (v = getenv("RBEE_ALLOWED_ORIGINS")) && *v)
		o->allowed_origins = v;
	if (!o->allowed_hosts && (v = getenv("RBEE_ALLOWED_HOSTS")) && *v)
		o->allowed_hosts = v;
	return 0;
}

static void log_loaded(const char *what, const struct cat_store *s)
{
	rb_info("%s %zu worker%s from '%s' (%zu skipped, %zu bytes for GET /workers)", what,
		s->dir.n, s->dir.n == 1 ? "" : "s", s->dir.root, s->dir.skipped, s->workers_bytes);
}

static void reload(struct cat_server *srv, const char *dir)
{
	struct rb_err err = RB_ERR_INIT;
	struct cat_store *s;
	if (cat_store_load(&s, dir, &err)) {
		rb_error("reload failed, still serving the previous catalog: %s", err.msg);
		return;
	}
	log_loaded("reloaded", s);
	cat_server_swap(srv, s);
}

/* Wait for signals: HUP reloads, TERM/INT return. */
static void signal_loop(struct cat_server *srv, const sigset_t *set, const char *dir)
{
	for (;;) {
		int sig;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(srv, dir);
			continue;
		}
		rb_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
		return;
	}
}

static int write_port_file(const char *path, uint16_t port)
{
	char text[16];
	int n = snprintf(text, sizeof(text), "%u\n", (unsigned)port);
	struct rb_err err = RB_ERR_INIT;
	if (rb_fs_write_atomic(path, text, (size_t)n, 0644, &err)) {
		rb_error("cannot write the port file: %s", err.msg);
		return -1;
	}
	return 0;
}

static int run(struct options *o, const sigset_t *set)
{
	struct rb_err err = RB_ERR_INIT;
	struct cat_store *store;
	struct cat_server *srv;
	const char *dir = o->dir ? o->dir : o->default_dir;
	if (cat_store_load(&store, dir, &err)) {
		rb_error("cannot serve the catalog: %s", err.msg);
		return 1;
	}
	log_loaded("loaded", store);
	struct cat_server_opts so = {
		.bind = o->bind,
		.port = (uint16_t)o->port,
		.threads = o->threads,
		.allowed_origins = o->allowed_origins ? o->allowed_origins : CAT_DEFAULT_ORIGINS,
		.allowed_hosts = o->allowed_hosts ? o->allowed_hosts : "",
		.per_ip = rb_env_uint("RBEE_HTTP_MAX_PER_IP", 1, 1000, DEFAULT_PER_IP),
		.timeout_s = rb_env_uint("RBEE_HTTP_TIMEOUT_S", 1, 86400, DEFAULT_TIMEOUT_S),
	};
	if (cat_server_start(&srv, &so, store, &err)) {
		rb_error("%s", err.msg);
		return 1;
	}
	int rc = 0;
	rb_info("listening on http://%s%s%s:%u", strchr(o->bind, ':') ? "[" : "", o->bind,
		strchr(o->bind, ':') ? "]" : "", (unsigned)cat_server_port(srv));
	if (o->port_file && write_port_file(o->port_file, cat_server_port(srv)))
		rc = 1;
	else
		signal_loop(srv, set, dir);
	cat_server_stop(srv);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = { .bind = "127.0.0.1", .port = DEFAULT_PORT };
	rb_log_init("rbee-catalog", RB_LOG_INFO);
	int p = parse_args(argc, argv, &o);
	if (p)
		return p > 0 ? 0 : EXIT_USAGE;
	default_catalog_dir(o.default_dir, sizeof(o.default_dir));

	/* Block the signals before any thread exists, so every server thread inherits the mask
	 * and only sigwait() in the main thread receives them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return run(&o, &set);
}
