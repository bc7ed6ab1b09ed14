/*-------------------------------------------------------------------------
 *
 * worker/relay.c
 *	  The outbox relay's loop: publishes md.outbox to Kafka (design
 *	  invariant 3; the ticks themselves are relay_ticks.c).
 *
 * Each iteration: a producer for the current settings (none while Kafka
 * is not configured), the recorded snapshot once per producer, delivery
 * reports served, the outbox read on while the window has room, finished
 * ticks recorded; the backlog counted every second and old rows deleted
 * every ten. While rows are in flight the loop goes on at once, waiting
 * inside librdkafka for delivery reports rather than sleeping; caught up,
 * it waits for a commit's wake-up or the next count, whichever is first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "guc.h"
#include "relay_ticks.h"
#include "worker.h"

#define RETENTION_EVERY_MS 10000
#define BACKLOG_EVERY_MS 1000

static MdRelay *relay = NULL;
static TimestampTz last_retention = 0;
static TimestampTz last_backlog = 0;
static int64 backlog = 0;

PGDLLEXPORT void md_relay_main(Datum main_arg);

static void
relay_start(MdWorkerSlot *slot)
{
	relay = md_relay_create(slot);
}

static void
relay_not_ready(void)
{
	md_relay_drop_producer(relay);
}

static long
relay_loop(MdWorkerSlot *slot, MemoryContext loop_context, int *fd)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		in_flight;
	bool		more;

	if (!md_relay_ensure_producer(relay))
	{
		md_worker_set_state(slot, "idle: Kafka not configured");
		return MD_WORKER_NO_DEADLINE;	/* a reload sets the latch */
	}
	md_relay_adopt(relay);
	md_relay_poll(relay, 0);
	more = md_relay_send_pending(relay);
	md_relay_poll(relay, 0);
	(void) md_relay_record_published(relay);
	if (TimestampDifferenceExceeds(last_backlog, now, BACKLOG_EVERY_MS))
	{
		backlog = md_relay_count_backlog(relay);
		last_backlog = now;
	}
	in_flight = md_relay_in_flight(relay);
	md_worker_set_state(slot, in_flight > 0 ? "publishing" : "caught up");
	md_worker_loop_done(slot, md_relay_take_delivered(relay), backlog);
	if (TimestampDifferenceExceeds(last_retention, now, RETENTION_EVERY_MS))
	{
		md_relay_apply_retention(relay);
		last_retention = now;
	}
	/*
	 * While rows are in flight: go on at once when there is more to send;
	 * otherwise wait inside librdkafka for the next delivery report (at
	 * most 10 ms, then the latch is looked at again), not for a fixed
	 * sleep.
	 */
	if (in_flight > 0 || more)
	{
		if (!more || in_flight >= md_relay_batch_size)
			md_relay_poll(relay, 10);
		return 0;
	}
	/* caught up: a commit's wake-up sets the latch, else the next count */
	return Min(md_worker_ms_until(last_backlog, BACKLOG_EVERY_MS),
			   md_worker_ms_until(last_retention, RETENTION_EVERY_MS));
}

static const MdWorkerOps relay_ops = {
	.kind = "relay",
	.start = relay_start,
	.not_ready = relay_not_ready,
	.loop = relay_loop,
};

void
md_relay_main(Datum main_arg)
{
	md_worker_run(&relay_ops);
}
