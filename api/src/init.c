/*
 * api/src/init.c
 *	Start-up of the REST API: settings (settings.c), the database
 *	registration, per-worker set-up and tear-down, the seccomp allow-list.
 *	The top of the module: it calls every part's set-up, none calls it.
 */

#include <sys/types.h>

#include <kore/seccomp.h>

#include "api.h"

void	kore_parent_configure(int, char **);
void	kore_worker_configure(void);
void	kore_worker_teardown(void);
void	kore_seccomp_hook(void);

/* Syscalls our libraries need beyond Kore's own worker sandbox. */
static struct sock_filter filter_api[] = {
	KORE_SYSCALL_ALLOW(getrusage),
	KORE_SYSCALL_ALLOW(sysinfo),
	KORE_SYSCALL_ALLOW(socket),
	KORE_SYSCALL_ALLOW(connect),
	KORE_SYSCALL_ALLOW(getsockopt),
	KORE_SYSCALL_ALLOW(setsockopt),
	KORE_SYSCALL_ALLOW(getpeername),
	KORE_SYSCALL_ALLOW(getsockname),
	KORE_SYSCALL_ALLOW(poll),
	KORE_SYSCALL_ALLOW(ppoll),
	KORE_SYSCALL_ALLOW(sendto),
	KORE_SYSCALL_ALLOW(recvfrom),
	KORE_SYSCALL_ALLOW(uname),
	KORE_SYSCALL_ALLOW(getrandom),
	KORE_SYSCALL_ALLOW(rt_sigaction),
	KORE_SYSCALL_ALLOW(newfstatat),
	KORE_SYSCALL_ALLOW(openat),
	KORE_SYSCALL_ALLOW(clock_gettime),
	/* libpq over TCP (OpenSSL's start-up reads a directory) */
	KORE_SYSCALL_ALLOW(getdents64),
	KORE_SYSCALL_ALLOW(getppid),
	/* a database host by name: glibc's resolver sends A and AAAA at once */
	KORE_SYSCALL_ALLOW(sendmmsg),
};

void
kore_seccomp_hook(void)
{
	kore_seccomp_filter("marketdata-api", filter_api,
	    KORE_FILTER_LEN(filter_api));
}

/* In the parent, before the workers are forked: they inherit all this. */
void
kore_parent_configure(int argc, char **argv)
{
	(void)argc;
	(void)argv;

	api_settings_load();
	api_metrics_init();
	api_ratelimit_init();
}

void
kore_worker_configure(void)
{
	pgsql_conn_max = api_cfg.db_conn_max;
	/* Kore buffers a body before any handler runs: no more than we read */
	http_body_max = api_cfg.body_max;
	kore_pgsql_register(API_DB_PRIMARY, api_cfg.db_url);
	kore_pgsql_register(API_DB_READ, api_cfg.db_read_url);

	api_db_init();
	api_lcache_init();
	api_stream_init();
	api_redis_init();
	api_shutdown_init();
	api_metrics_worker_init();
}

void
kore_worker_teardown(void)
{
	api_stream_shutdown();
	api_redis_close();
}
