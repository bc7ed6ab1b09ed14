/*
 * api/src/shutdown.c
 *	Graceful shutdown of a worker.
 *
 * Kore 4.1 leaves its loop at once on SIGTERM/SIGQUIT, dropping requests
 * that wait for the database or Redis. We take those signals over in the
 * worker: *draining* starts, new requests get 503 with Connection: close,
 * keep-alive ends after each answer, and once no request and no database
 * query is left (or MD_API_SHUTDOWN_TIMEOUT passed) we hand Kore the
 * signal it would have had, so it tears down and exits as usual. The
 * parent waits for all workers before it exits.
 */

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

volatile sig_atomic_t	api_draining;

static volatile sig_atomic_t	drain_signal;
static u_int64_t		drain_deadline;
/* the parent at our start: in a container it is PID 1 itself */
static pid_t			parent_pid;

static void
on_signal(int sig)
{
	drain_signal = sig;
	api_draining = 1;
}

static void
drain_timer(void *unused, u_int64_t now)
{
	(void)unused;

	/* the parent is gone (killed): drain and go too */
	if (!api_draining && getppid() != parent_pid) {
		drain_signal = SIGQUIT;
		api_draining = 1;
	}
	if (!api_draining)
		return;
	if (drain_deadline == 0) {
		drain_deadline = now +
		    (u_int64_t)api_cfg.shutdown_timeout * 1000;
		/* every answer from now on closes its connection */
		http_keepalive_time = 0;
		kore_log(LOG_NOTICE, "draining: %u request(s) in flight",
		    http_request_count);
	}
	if ((http_request_count == 0 && api_db_active == 0) ||
	    now >= drain_deadline) {
		if (http_request_count > 0)
			kore_log(LOG_NOTICE, "shutdown timeout: dropping %u "
			    "request(s)", http_request_count);
		sig_recv = drain_signal;
	}
}

void
api_shutdown_init(void)
{
	struct sigaction	sa;

	parent_pid = getppid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	(void)sigfillset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGQUIT, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)kore_timer_add(drain_timer, 20, NULL, 0);
}
