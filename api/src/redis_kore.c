/*
 * api/src/redis_kore.c
 *	hiredis's asynchronous API on Kore's event loop, after hiredis's own
 *	adapters/ headers: the adapter tells us which events hiredis wants, we
 *	register the socket with Kore's epoll (level-triggered) and hand
 *	readiness back to redisAsyncHandleRead/Write. Nothing else: the
 *	connections and commands are redis.c's.
 */

#include <sys/epoll.h>

#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "api.h"

static void
rk_update(struct api_redis_kore *r)
{
	if (r->events == 0) {
		if (r->registered) {
			kore_platform_disable_read(r->fd);
			r->registered = 0;
		}
		return;
	}
	kore_platform_event_schedule(r->fd, r->events, 0, r);
	r->registered = 1;
}

static void
rk_add_read(void *p)
{
	struct api_redis_kore	*r = p;

	r->events |= EPOLLIN;
	rk_update(r);
}

static void
rk_del_read(void *p)
{
	struct api_redis_kore	*r = p;

	r->events &= ~EPOLLIN;
	rk_update(r);
}

static void
rk_add_write(void *p)
{
	struct api_redis_kore	*r = p;

	r->events |= EPOLLOUT;
	rk_update(r);
}

static void
rk_del_write(void *p)
{
	struct api_redis_kore	*r = p;

	r->events &= ~EPOLLOUT;
	rk_update(r);
}

static void
rk_cleanup(void *p)
{
	struct api_redis_kore	*r = p;

	r->events = 0;
	rk_update(r);
}

/* Kore calls this when the socket is ready (or failed: err). */
static void
rk_handle(void *p, int err)
{
	struct api_redis_kore	*r = p;
	int			 flags = r->evt.flags;

	r->evt.flags = 0;
	if (r->ac == NULL)
		return;
	if ((flags & KORE_EVENT_WRITE) && r->ac != NULL)
		redisAsyncHandleWrite(r->ac);
	/* an error is found out by reading */
	if (((flags & KORE_EVENT_READ) || err) && r->ac != NULL)
		redisAsyncHandleRead(r->ac);
}

void
api_redis_kore_attach(struct api_redis_kore *r, redisAsyncContext *ac)
{
	memset(r, 0, sizeof(*r));
	r->evt.type = 100;
	r->evt.handle = rk_handle;
	r->ac = ac;
	r->fd = ac->c.fd;
	ac->ev.data = r;
	ac->ev.addRead = rk_add_read;
	ac->ev.delRead = rk_del_read;
	ac->ev.addWrite = rk_add_write;
	ac->ev.delWrite = rk_del_write;
	ac->ev.cleanup = rk_cleanup;
	/* the connect completes when the socket becomes writable */
	rk_add_write(r);
}
