/*
 * api/src/settings.c
 *	The REST API's settings, read from the environment once.
 *
 * Every setting is an environment variable MD_API_* (or REDIS_URL),
 * documented in docs/configuration.md under "REST API settings". Kore's
 * own configuration (api/conf/api.conf) holds only HTTP matters: routes,
 * validators, body and header limits.
 */

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

struct api_settings	api_cfg;

static const char *
env_str(const char *name, const char *def)
{
	const char	*v;

	v = getenv(name);
	if (v == NULL || *v == '\0')
		return (def);
	return (v);
}

static int
env_int(const char *name, int def, int lo, int hi)
{
	const char	*v;
	char		*end;
	long		 n;

	if ((v = env_str(name, NULL)) == NULL)
		return (def);
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi)
		fatal("%s: \"%s\" is not an integer from %d to %d",
		    name, v, lo, hi);
	return ((int)n);
}

/* REDIS_URL is redis://host:port (no password, no database number). */
static void
redis_url(const char *url)
{
	const char	*p, *colon;
	char		*end;
	long		 port;

	if (strncmp(url, "redis://", 8) != 0)
		fatal("REDIS_URL: \"%s\" is not redis://host:port", url);
	p = url + 8;
	if ((colon = strrchr(p, ':')) == NULL || colon == p)
		fatal("REDIS_URL: \"%s\" has no host:port", url);
	api_cfg.redis_host = kore_malloc(colon - p + 1);
	memcpy(api_cfg.redis_host, p, colon - p);
	api_cfg.redis_host[colon - p] = '\0';
	port = strtol(colon + 1, &end, 10);
	if ((*end != '\0' && *end != '/') || port < 1 || port > 65535)
		fatal("REDIS_URL: bad port in \"%s\"", url);
	api_cfg.redis_port = (int)port;
}

/* The JWT secret: MD_API_JWT_SECRET_FILE wins over MD_API_JWT_SECRET. */
static void
jwt_secret(void)
{
	const char	*path, *s;
	char		 buf[4096];
	ssize_t		 n;
	int		 fd;

	if ((path = env_str("MD_API_JWT_SECRET_FILE", NULL)) != NULL) {
		if ((fd = open(path, O_RDONLY)) == -1)
			fatal("MD_API_JWT_SECRET_FILE: %s: %s", path, errno_s);
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			fatal("MD_API_JWT_SECRET_FILE: %s is empty", path);
		/* a trailing newline is not part of the secret */
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		buf[n] = '\0';
		s = buf;
	} else {
		s = env_str("MD_API_JWT_SECRET", NULL);
	}
	if (s == NULL)
		return;
	if (strlen(s) < 32)
		fatal("the JWT secret must have at least 32 bytes");
	api_cfg.jwt_secret = kore_strdup(s);
	api_cfg.jwt_secret_len = strlen(s);
	explicit_bzero(buf, sizeof(buf));
}

void
api_settings_load(void)
{
	const char	*v;

	v = env_str("MD_API_DATABASE_URL", NULL);
	if (v == NULL)
		fatal("MD_API_DATABASE_URL is not set (a libpq connection string)");
	api_cfg.db_url = kore_strdup(v);
	v = env_str("MD_API_DATABASE_READ_URL", NULL);
	api_cfg.db_read_url = kore_strdup(v != NULL ? v : api_cfg.db_url);

	redis_url(env_str("REDIS_URL", "redis://127.0.0.1:6379"));

	api_cfg.cache_ttl = env_int("MD_API_CACHE_TTL", 5, 0, 86400);
	api_cfg.bars_cache_ttl = env_int("MD_API_BARS_CACHE_TTL", 3600, 0,
	    86400 * 7);
	api_cfg.negative_ttl = env_int("MD_API_NEGATIVE_TTL", 10, 0, 3600);
	api_cfg.max_age = env_int("MD_API_MAX_AGE", 60, 1, 86400 * 365);
	api_cfg.key_cache_ttl = env_int("MD_API_KEY_CACHE_TTL", 10, 0, 3600);
	api_cfg.ready_cache_ms = env_int("MD_API_READY_CACHE_MS", 2000, 0,
	    60000);
	jwt_secret();
	api_cfg.jwt_role_claim =
	    kore_strdup(env_str("MD_API_JWT_ROLE_CLAIM", "role"));
	if ((v = env_str("MD_API_JWT_ISSUER", NULL)) != NULL)
		api_cfg.jwt_issuer = kore_strdup(v);
	if ((v = env_str("MD_API_JWT_AUDIENCE", NULL)) != NULL)
		api_cfg.jwt_audience = kore_strdup(v);
	api_cfg.jwt_max_lifetime = env_int("MD_API_JWT_MAX_LIFETIME", 86400, 60,
	    86400 * 366);

	api_cfg.rl_window = env_int("MD_API_RATE_WINDOW", 60, 1, 3600);
	api_cfg.rl_ipv6_prefix = env_int("MD_API_RATE_LIMIT_IPV6_PREFIX", 64,
	    16, 128);
	(void)snprintf(api_cfg.rl_ipv6_suffix, sizeof(api_cfg.rl_ipv6_suffix),
	    "/%d", api_cfg.rl_ipv6_prefix);
	api_cfg.rl_ip = env_int("MD_API_RATE_LIMIT_IP", 600, 0, INT_MAX);
	api_cfg.rl_role[ROLE_NONE] = 0;
	api_cfg.rl_role[ROLE_READER] =
	    env_int("MD_API_RATE_LIMIT_READER", 600, 0, INT_MAX);
	api_cfg.rl_role[ROLE_WRITER] =
	    env_int("MD_API_RATE_LIMIT_WRITER", 300, 0, INT_MAX);
	api_cfg.rl_role[ROLE_ADMIN] =
	    env_int("MD_API_RATE_LIMIT_ADMIN", 1200, 0, INT_MAX);
	v = env_str("MD_API_RATE_LIMIT_FAIL", "open");
	if (strcmp(v, "open") && strcmp(v, "closed"))
		fatal("MD_API_RATE_LIMIT_FAIL: \"%s\" is not open or closed", v);
	api_cfg.rl_fail_open = (strcmp(v, "open") == 0);
	api_cfg.rl_lease = env_int("MD_API_RATE_LEASE", 100, 1, 100000);
	api_cfg.local_cache_ms = env_int("MD_API_LOCAL_CACHE_MS", 1000, 0,
	    60000);
	api_cfg.redis_timeout_ms = env_int("MD_API_REDIS_TIMEOUT_MS", 500, 10,
	    60000);

	api_cfg.trusted_proxies =
	    kore_strdup(env_str("MD_API_TRUSTED_PROXIES", ""));
	api_cfg.metrics_local = env_int("MD_API_METRICS_LOCAL", 1, 0, 1);
	api_cfg.body_max = env_int("MD_API_BODY_MAX", 65536, 64, 1000000);
	api_cfg.shutdown_timeout = env_int("MD_API_SHUTDOWN_TIMEOUT", 20, 1,
	    3600);
	api_cfg.db_conn_max = env_int("MD_API_DATABASE_CONNECTIONS", 8, 1,
	    1000);

	api_cfg.stream_max_symbols = env_int("MD_API_STREAM_MAX_SYMBOLS", 100,
	    1, 10000);
	api_cfg.stream_heartbeat = env_int("MD_API_STREAM_HEARTBEAT", 15, 1,
	    3600);
	api_cfg.stream_idle_timeout = env_int("MD_API_STREAM_IDLE_TIMEOUT", 45,
	    2, 86400);
	api_cfg.stream_buffer = env_int("MD_API_STREAM_BUFFER", 65536, 1024,
	    64 * 1024 * 1024);
	api_cfg.stream_slow_ms = env_int("MD_API_STREAM_SLOW_MS", 5000, 10,
	    3600000);
	api_cfg.stream_replay_window = env_int("MD_API_STREAM_REPLAY_WINDOW",
	    300, 1, 86400);
	api_cfg.stream_max_per_key = env_int("MD_API_STREAM_MAX_PER_KEY", 20,
	    0, INT_MAX);
	api_cfg.stream_max_per_ip = env_int("MD_API_STREAM_MAX_PER_IP", 100,
	    0, INT_MAX);
	api_cfg.stream_token_ttl = env_int("MD_API_STREAM_TOKEN_TTL", 60, 1,
	    3600);
	api_cfg.db_prepare = env_int("MD_API_DATABASE_PREPARE", 1, 0, 1);
}
