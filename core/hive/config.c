/*
 * config.c - flags, environment and paths of the hive.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_log.h"

void rb_config_usage(FILE *out)
{
	fputs("usage: rbee-hive [options]\n"
	      "\n"
	      "The rbee node daemon: loads backend plugins, enumerates devices, runs jobs (install,\n"
	      "download, spawn...) and supervises worker processes.\n"
	      "\n"
	      "options:\n"
	      "  --port N            listen port (RBEE_PORT; default 7835; 0 = any free port)\n"
	      "  --bind ADDR         listen address (default 127.0.0.1)\n"
	      "  --hive-id ID        this hive's id in requests (default localhost)\n"
	      "  --catalog SRC       worker catalog: http(s):// URL, file:// URL or directory\n"
	      "                      (RBEE_CATALOG_URL; default: the catalog shipped with rbee)\n"
	      "  --token-file FILE   bearer token for every route but /health (or RBEE_API_TOKEN)\n"
	      "  --allowed-origins L comma-separated browser origins that may call the hive\n"
	      "                      (RBEE_ALLOWED_ORIGINS; default none, '*' = any)\n"
	      "  --allowed-hosts L   comma-separated extra Host names to answer to, besides the\n"
	      "                      bind address, the hostname and localhost (RBEE_ALLOWED_HOSTS)\n"
	      "  --insecure-no-auth  allow a non-loopback --bind without a token\n"
	      "  --keep-workers      leave workers running at shutdown, for re-adoption\n"
	      "  --plugin-dir DIR    backend plugin directory (RBEE_BACKEND_PATH dirs come first)\n"
	      "  --max-jobs N        jobs running at once (default 8)\n"
	      "  --port-file FILE    write the bound port to FILE once listening\n"
	      "  --source-mirror DIR take PKGBUILD sources from DIR before the network\n"
	      "                      (RBEE_SOURCE_MIRROR; layout in docs/MIRROR.md)\n"
	      "  --fill-mirror DIR ID...  fetch the sources of catalog workers ID... into DIR\n"
	      "                      (a mirror for nodes without internet), then exit\n"
	      "  --help, --version\n"
	      "\n"
	      "environment (each is described in the README's configuration table):\n"
	      "  RBEE_HOME                cache root (else $XDG_CACHE_HOME/rbee, ~/.cache/rbee)\n"
	      "  RBEE_PORT, RBEE_CATALOG_URL, RBEE_API_TOKEN   as the flags above\n"
	      "  RBEE_SOURCE_MIRROR       as --source-mirror\n"
	      "  RBEE_BACKEND_PATH, RBEE_BACKEND_BLOCKLIST, RBEE_PROBE_TIMEOUT_MS   plugins\n"
	      "  HF_ENDPOINT, HF_TOKEN, RBEE_DOWNLOAD_STALL_S, RBEE_DOWNLOAD_RETRIES   models\n"
	      "  RBEE_BUILD_UIDS          uid range for builds when run as root (1879048192-1879048447)\n"
	      "  RBEE_BUILD_CPU_S, RBEE_BUILD_FSIZE_MB, RBEE_BUILD_NOFILE, RBEE_BUILD_NPROC,\n"
	      "  RBEE_BUILD_TIMEOUT_S, RBEE_BUILD_LOG_MAX_MB   build limits (see README)\n"
	      "  RBEE_WORKER_UIDS         uid range for workers when run as root, or 'none'\n"
	      "                           (1879048448-1879049471)\n"
	      "  RBEE_WORKER_PORTS, RBEE_READY_TIMEOUT_S, RBEE_STOP_GRACE_MS,\n"
	      "  RBEE_HEALTH_INTERVAL_MS  workers\n"
	      "  RBEE_HTTP_TIMEOUT_S, RBEE_HTTP_HEADER_TIMEOUT_S, RBEE_HTTP_MAX_PER_IP   HTTP clients\n"
	      "  RBEE_LOG                 debug | info | warn | error\n",
	      out);
}

void rb_config_exe_relative(const char *reldir, const char *fallback, char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/'); /* strip the program name */
		if (slash) {
			*slash = '\0';
			slash = strrchr(exe, '/'); /* strip bin/ */
			if (slash) {
				*slash = '\0';
				char cand[PATH_MAX];
				if ((size_t)snprintf(cand, sizeof(cand), "%s/%s", exe, reldir) < sizeof(cand) &&
				    rb_fs_is_dir(cand)) {
					snprintf(out, len, "%s", cand);
					return;
				}
			}
		}
	}
	snprintf(out, len, "%s", fallback);
}

static int parse_port(const char *s, uint16_t *out, struct rb_err *err)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > 65535)
		return rb_err_set(err, RB_EINVAL, "invalid port '%s': give 0-65535", s);
	*out = (uint16_t)v;
	return 0;
}

/* Copy a setting that must not be cut short (a token, an allow-list): too long is an error. */
static int copy_setting(const char *what, const char *v, char *out, size_t len, struct rb_err *err)
{
	if (strlen(v) >= len)
		return rb_err_set(err, RB_EINVAL, "%s is %zu bytes long; the limit is %zu", what,
				  strlen(v), len - 1);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int read_token_file(const char *path, char *out, size_t len, struct rb_err *err)
{
	struct rb_buf b = RB_BUF_INIT;
	int rc = rb_fs_read_file(path, 4096, &b, err);
	if (rc) {
		rb_buf_release(&b);
		return rb_err_prefix(err, "--token-file");
	}
	while (b.len && isspace((unsigned char)b.data[b.len - 1]))
		rb_buf_truncate(&b, b.len - 1);
	if (b.len == 0 || b.len >= len) {
		rb_buf_release(&b);
		return rb_err_set(err, RB_EINVAL, "token file '%s' is empty or longer than %zu bytes",
				  path, len - 1);
	}
	memcpy(out, b.data, b.len + 1);
	rb_buf_release(&b);
	/* Builds and workers run as other users of this machine: a token they can read is no
	 * token. Refused rather than warned about, since a warning scrolls by unread. */
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & 0044)) {
		memset(out, 0, len);
		return rb_err_set(err, RB_EINVAL,
				  "token file '%s' is readable by other users (mode %04o): "
				  "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
	}
	return 0;
}

int rb_config_parse(struct rb_config *cfg, int argc, char **argv, enum rb_config_action *action,
		    const char **probe_path, struct rb_err *err)
{
	enum { O_PORT = 256, O_BIND, O_HIVE_ID, O_CATALOG, O_TOKEN_FILE, O_INSECURE, O_KEEP,
	       O_PLUGIN_DIR, O_MAX_JOBS, O_PORT_FILE, O_HELP, O_VERSION, O_PROBE, O_ORIGINS,
	       O_HOSTS, O_SOURCE_MIRROR, O_FILL_MIRROR, O_PROBE_FD };
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "bind", required_argument, NULL, O_BIND },
		{ "hive-id", required_argument, NULL, O_HIVE_ID },
		{ "catalog", required_argument, NULL, O_CATALOG },
		{ "token-file", required_argument, NULL, O_TOKEN_FILE },
		{ "insecure-no-auth", no_argument, NULL, O_INSECURE },
		{ "keep-workers", no_argument, NULL, O_KEEP },
		{ "plugin-dir", required_argument, NULL, O_PLUGIN_DIR },
		{ "max-jobs", required_argument, NULL, O_MAX_JOBS },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "allowed-origins", required_argument, NULL, O_ORIGINS },
		{ "allowed-hosts", required_argument, NULL, O_HOSTS },
		{ "source-mirror", required_argument, NULL, O_SOURCE_MIRROR },
		{ "fill-mirror", required_argument, NULL, O_FILL_MIRROR },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ "probe-plugin", required_argument, NULL, O_PROBE },
		{ "probe-fd", required_argument, NULL, O_PROBE_FD },
		{ NULL, 0, NULL, 0 },
	};
	memset(cfg, 0, sizeof(*cfg));
	cfg->probe_fd = -1;
	*action = RB_CONFIG_RUN;
	snprintf(cfg->bind, sizeof(cfg->bind), "127.0.0.1");
	cfg->port = 7835;
	snprintf(cfg->hive_id, sizeof(cfg->hive_id), "localhost");
	cfg->max_jobs = 8;
	cfg->max_body = 1u << 20;
	rb_config_exe_relative(RBEE_PLUGIN_RELDIR, RBEE_PLUGIN_DIR, cfg->plugin_dir,
			       sizeof(cfg->plugin_dir));
	const char *v;
	if ((v = getenv("RBEE_PORT")) && *v && parse_port(v, &cfg->port, err))
		return rb_err_prefix(err, "RBEE_PORT");
	if ((v = getenv("RBEE_CATALOG_URL")) && *v)
		snprintf(cfg->catalog, sizeof(cfg->catalog), "%s", v);
	if ((v = getenv("RBEE_API_TOKEN")) && *v &&
	    copy_setting("RBEE_API_TOKEN", v, cfg->token, sizeof(cfg->token), err))
		return -RB_EINVAL;
	if ((v = getenv("RBEE_ALLOWED_ORIGINS")) && *v &&
	    copy_setting("RBEE_ALLOWED_ORIGINS", v, cfg->allowed_origins,
			 sizeof(cfg->allowed_origins), err))
		return -RB_EINVAL;
	if ((v = getenv("RBEE_SOURCE_MIRROR")) && *v &&
	    copy_setting("RBEE_SOURCE_MIRROR", v, cfg->source_mirror, sizeof(cfg->source_mirror),
			 err))
		return -RB_EINVAL;
	if ((v = getenv("RBEE_ALLOWED_HOSTS")) && *v &&
	    copy_setting("RBEE_ALLOWED_HOSTS", v, cfg->allowed_hosts, sizeof(cfg->allowed_hosts),
			 err))
		return -RB_EINVAL;

	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			if (parse_port(optarg, &cfg->port, err))
				return -RB_EINVAL;
			break;
		case O_BIND:
			snprintf(cfg->bind, sizeof(cfg->bind), "%s", optarg);
			break;
		case O_HIVE_ID:
			if (rb_id_check("hive id", optarg, err))
				return -RB_EINVAL;
			snprintf(cfg->hive_id, sizeof(cfg->hive_id), "%s", optarg);
			break;
		case O_CATALOG:
			snprintf(cfg->catalog, sizeof(cfg->catalog), "%s", optarg);
			break;
		case O_TOKEN_FILE:
			if (read_token_file(optarg, cfg->token, sizeof(cfg->token), err))
				return -RB_EINVAL;
			break;
		case O_INSECURE:
			cfg->insecure = true;
			break;
		case O_KEEP:
			cfg->keep_workers = true;
			break;
		case O_PLUGIN_DIR:
			snprintf(cfg->plugin_dir, sizeof(cfg->plugin_dir), "%s", optarg);
			break;
		case O_MAX_JOBS: {
			char *end;
			errno = 0;
			long n = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || n < 1 || n > 256)
				return rb_err_set(err, RB_EINVAL, "invalid --max-jobs '%s': give 1-256", optarg);
			cfg->max_jobs = (int)n;
			break;
		}
		case O_ORIGINS:
			if (copy_setting("--allowed-origins", optarg, cfg->allowed_origins,
					 sizeof(cfg->allowed_origins), err))
				return -RB_EINVAL;
			break;
		case O_HOSTS:
			if (copy_setting("--allowed-hosts", optarg, cfg->allowed_hosts,
					 sizeof(cfg->allowed_hosts), err))
				return -RB_EINVAL;
			break;
		case O_PORT_FILE:
			snprintf(cfg->port_file, sizeof(cfg->port_file), "%s", optarg);
			break;
		case O_SOURCE_MIRROR:
			if (copy_setting("--source-mirror", optarg, cfg->source_mirror,
					 sizeof(cfg->source_mirror), err))
				return -RB_EINVAL;
			break;
		case O_FILL_MIRROR:
			if (!*optarg || copy_setting("--fill-mirror", optarg, cfg->fill_mirror,
						     sizeof(cfg->fill_mirror), err))
				return rb_err_set(err, RB_EINVAL, "--fill-mirror needs a directory");
			*action = RB_CONFIG_FILL_MIRROR;
			break;
		case O_HELP:
			*action = RB_CONFIG_HELP;
			return 0;
		case O_VERSION:
			*action = RB_CONFIG_VERSION;
			return 0;
		case O_PROBE_FD: {
			/* The probe child (backends.c): the plugin file the daemon holds open, so the
			 * child loads the very file the daemon loaded or will load. */
			char *end;
			long fd = strtol(optarg, &end, 10);
			if (*end || fd < 3 || fd > 1 << 20)
				return rb_err_set(err, RB_EINVAL, "invalid --probe-fd '%s'", optarg);
			cfg->probe_fd = (int)fd;
			break;
		}
		case O_PROBE:
			*action = RB_CONFIG_PROBE;
			*probe_path = optarg;
			return 0;
		case ':':
			return rb_err_set(err, RB_EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return rb_err_set(err, RB_EINVAL, "unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (*action == RB_CONFIG_FILL_MIRROR) {
		if (optind >= argc)
			return rb_err_set(err, RB_EINVAL, "--fill-mirror DIR needs the ids of the "
					  "workers whose sources to fetch (rbee-hive --fill-mirror DIR "
					  "ID...)");
		cfg->fill_ids = argv + optind;
		cfg->fill_n = argc - optind;
	} else if (optind < argc) {
		return rb_err_set(err, RB_EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
	}
	/* The mirror must be there: a typo would otherwise only show as network fetches. */
	if (cfg->source_mirror[0] && *action == RB_CONFIG_RUN) {
		char absm[PATH_MAX];
		if (!realpath(cfg->source_mirror, absm) || !rb_fs_is_dir(absm))
			return rb_err_set(err, RB_EINVAL, "source mirror '%s' (--source-mirror or "
					  "RBEE_SOURCE_MIRROR) is not a directory", cfg->source_mirror);
		snprintf(cfg->source_mirror, sizeof(cfg->source_mirror), "%s", absm);
	}
	if (!cfg->catalog[0])
		rb_config_exe_relative(RBEE_CATALOG_RELDIR, RBEE_CATALOG_DIR, cfg->catalog,
				       sizeof(cfg->catalog));
	/* A relative catalog directory means relative to where the hive was started; pin it
	 * now so messages and later reads do not depend on the working directory. */
	char abs[PATH_MAX];
	if (!strstr(cfg->catalog, "://") && cfg->catalog[0] != '/' && realpath(cfg->catalog, abs))
		snprintf(cfg->catalog, sizeof(cfg->catalog), "%s", abs);
	return 0;
}

static bool is_loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

int rb_config_check(const struct rb_config *cfg, struct rb_err *err)
{
	if (!is_loopback(cfg->bind) && !cfg->token[0] && !cfg->insecure)
		return rb_err_set(err, RB_EINVAL,
				  "refusing to listen on '%s' without a token: anyone who can reach it "
				  "could run builds and workers here; set --token-file or "
				  "RBEE_API_TOKEN (or pass --insecure-no-auth on a trusted network)",
				  cfg->bind);
	return 0;
}

int rb_paths_init(struct rb_paths *p, struct rb_err *err)
{
	struct rb_buf root = RB_BUF_INIT;
	int rc = rb_fs_cache_root(&root, err);
	if (rc) {
		rb_buf_release(&root);
		return rc;
	}
	if (root.len + 16 >= sizeof(p->home)) {
		rb_buf_release(&root);
		return rb_err_set(err, RB_EINVAL, "cache directory path is too long");
	}
	snprintf(p->home, sizeof(p->home), "%s", root.data);
	rb_buf_release(&root);
	struct {
		char *dst;
		const char *sub;
		mode_t mode;
	} dirs[] = {
		{ p->workers, "workers", 0755 }, { p->models, "models", 0755 },
		{ p->logs, "logs", 0750 },       { p->state, "state", 0700 },
		{ p->staging, "staging", 0700 },
		{ p->sources, "cache/sources", 0755 },
	};
	if (rb_fs_mkdir_p(p->home, 0755, err))
		return rb_err_prefix(err, "cache directory");
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(dirs[i].dst, PATH_MAX, "%s/%s", p->home, dirs[i].sub);
		if (rb_fs_mkdir_p(dirs[i].dst, dirs[i].mode, err))
			return rb_err_prefix(err, "cache directory");
	}
	return 0;
}
