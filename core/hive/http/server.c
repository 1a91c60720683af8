/*
 * server.c - the hive on the shared server layer (rb_server.c): its names, its token, its
 * browser policy and its limits, from the hive's configuration and environment.
 */
#include "server.h"

#include <stdlib.h>

#include "hive.h"
#include "rb_http_guard.h"

#define HTTP_TIMEOUT_DEFAULT_S 60u
#define HTTP_HEADER_TIMEOUT_DEFAULT_S 10u
#define STREAM_DRAIN_MS 2000u
/* libmicrohttpd's memory per connection (RBEE_HTTP_CONN_MEMORY, bytes): request and response
 * headers and the send buffer; most of what an open stream costs (10 000 streams: ~50 MiB).
 * 4 KiB takes request headers up to about 3 KiB (larger: 431). */
#define HTTP_CONN_MEMORY_DEFAULT 4096u

int rb_server_start(struct rb_hive *hive, const struct rb_server_routes *routes,
		    struct rb_err *err)
{
	unsigned timeout_s = rb_env_uint("RBEE_HTTP_TIMEOUT_S", 1, 86400, HTTP_TIMEOUT_DEFAULT_S);
	struct rb_server_config c = {
		.name = "hive",
		.bind = hive->cfg.bind,
		.port = hive->cfg.port,
		.routes = routes->table,
		.app = hive,
		.token = hive->cfg.token,
		.token_missing = "this hive requires a bearer token: send 'Authorization: Bearer "
				 "<token>' (rbee reads RBEE_API_TOKEN)",
		.token_wrong = "the bearer token was refused: it is not this hive's token (check "
			       "RBEE_API_TOKEN against the hive's --token-file)",
		.realm = "rbee-hive",
		.allowed_origins = hive->cfg.allowed_origins,
		.allowed_hosts = hive->cfg.allowed_hosts,
		.hostname = hive->hostname,
		.host_hint = "use its address, or add the name to --allowed-hosts "
			     "(RBEE_ALLOWED_HOSTS)",
		.origin_hint = "add it to --allowed-origins (RBEE_ALLOWED_ORIGINS) if that page may "
			       "drive this hive",
		.origin_guard = true,
		.no_store = true,
		.allow_methods = "GET, HEAD, POST, DELETE, OPTIONS",
		.allow_headers = "Authorization, Content-Type, Last-Event-ID",
		.max_body = hive->cfg.max_body,
		.per_ip = rb_env_uint("RBEE_HTTP_MAX_PER_IP", 1, RB_SERVER_MAX_CONNECTIONS,
				      RB_SERVER_PER_IP),
		.timeout_s = timeout_s,
		.header_timeout_s = rb_env_uint("RBEE_HTTP_HEADER_TIMEOUT_S", 1, 86400,
						timeout_s < HTTP_HEADER_TIMEOUT_DEFAULT_S
							? timeout_s : HTTP_HEADER_TIMEOUT_DEFAULT_S),
		.drain_ms = STREAM_DRAIN_MS,
		.conn_memory = (size_t)rb_env_uint("RBEE_HTTP_CONN_MEMORY", 4096, 1u << 20,
						   HTTP_CONN_MEMORY_DEFAULT),
	};
	int rc = rb_server_open(&c, &hive->server, err);
	if (rc)
		return rc;
	hive->cfg.port = rb_server_port(hive->server);
	return 0;
}

void rb_server_stop(struct rb_hive *hive)
{
	if (!hive->server)
		return;
	rb_server_close(hive->server);
	hive->server = NULL;
}
