/*-------------------------------------------------------------------------
 *
 * worker/consumer.c
 *	  The Kafka consumer: topics of md.kafka_subscriptions into md.prices,
 *	  exactly once (design invariant 4).
 *
 * The loop: read the subscriptions (every second), assign new ones at
 * their stored offsets, then for each take a batch of up to
 * marketdata.consumer_batch_size messages (waiting at most
 * marketdata.consumer_batch_ms for a batch to fill) and store it in one
 * transaction (consumer_batch.c). When every queue is empty the worker
 * sleeps on its latch and on a pipe that librdkafka writes to when a
 * message arrives. Broker outages are librdkafka's to ride out: it
 * reconnects, fetching resumes at the offsets it had, and the status says
 * "Kafka unreachable" meanwhile.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "consumer_batch.h"
#include "kafka_conf.h"
#include "subscription.h"
#include "worker.h"

#define SYNC_EVERY_MS 1000
#define STATUS_EVERY_MS 1000
#define MAX_POLL_WAIT_MS 100

static MdWorkerSlot *slot = NULL;
static char *consumer_identity = NULL;	/* md_kafka_identity() of the handles */
static TimestampTz last_sync = 0;
static TimestampTz last_status = 0;
static int64 lag = 0;			/* as last counted */

/* messages taken from librdkafka and not yet given back */
static rd_kafka_message_t **msgs = NULL;
static int	msgs_capacity = 0;
static int	nheld = 0;

PGDLLEXPORT void md_consumer_main(Datum main_arg);

static void
release_messages(void)
{
	int			i;

	for (i = 0; i < nheld; i++)
		rd_kafka_message_destroy(msgs[i]);
	nheld = 0;
}

static void
at_exit(int code, Datum arg)
{
	/*
	 * The process is ending: the handles are not destroyed. Destroying a
	 * consumer waits for its group coordinator and in-flight requests, up
	 * to socket.timeout.ms (60 s) while Kafka is down, and nothing needs
	 * flushing: the offsets that count are in md.kafka_offsets.
	 */
	release_messages();
}

static void
ensure_capacity(void)
{
	if (msgs_capacity >= md_consumer_batch_size)
		return;
	msgs = msgs == NULL ?
		MemoryContextAlloc(TopMemoryContext, sizeof(*msgs) * md_consumer_batch_size) :
		repalloc(msgs, sizeof(*msgs) * md_consumer_batch_size);
	msgs_capacity = md_consumer_batch_size;
}

/*
 * Take one batch of a subscription: what is queued now, then, once there is
 * a first message, more until the batch is full or batch_ms has passed.
 */
static int
take_batch(MdSubscription *sub)
{
	int			size = md_consumer_batch_size;
	TimestampTz deadline;

	nheld = md_subscription_poll(sub, msgs, size, 0);
	if (nheld == 0 || nheld == size)
		return nheld;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), md_consumer_batch_ms);
	while (nheld < size)
	{
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (remaining <= 0)
			break;
		nheld += md_subscription_poll(sub, msgs + nheld, size - nheld,
									  (int) Min(remaining, MAX_POLL_WAIT_MS));
		CHECK_FOR_INTERRUPTS();
	}
	return nheld;
}

/* One batch from every subscription; true when one of them had more. */
static bool
consume_round(int64 *processed)
{
	bool		more = false;
	int			i;

	ensure_capacity();
	md_subscriptions_clear_wait_fd();
	for (i = 0; i < md_subscription_count; i++)
	{
		MdSubscription *sub = md_subscriptions[i];
		int			n;

		if (sub->unusable)
			continue;
		if (!md_subscription_assign(sub))
		{
			/* serve its logs and errors all the same */
			nheld = md_subscription_poll(sub, msgs, msgs_capacity, 0);
			release_messages();
			continue;
		}
		n = take_batch(sub);
		if (n > 0)
		{
			MdBatchResult r = md_consumer_store_batch(sub, msgs, n);

			sub->down = false;
			*processed += r.messages;
			more |= (n == md_consumer_batch_size);
		}
		release_messages();
	}
	return more;
}

/* Watermarks into md.kafka_offsets, outage probes; returns the total lag. */
static int64
refresh_status(void)
{
	int64		lag = 0;
	int			i;

	for (i = 0; i < md_subscription_count; i++)
	{
		MdSubscription *sub = md_subscriptions[i];

		if (sub->unusable)
			continue;
		if (sub->down)
			md_subscription_probe(sub);
		md_subscription_store_watermarks(sub);
		lag += md_subscription_lag(sub);
	}
	return lag;
}

static const char *
state_word(int64 processed)
{
	static char state[MD_WORKER_STATE_LEN];
	int			i;

	if (md_subscription_count == 0)
		return "idle: no subscriptions";
	for (i = 0; i < md_subscription_count && md_subscriptions[i]->unusable; i++)
		;
	if (i == md_subscription_count)
		return "idle: no subscription to consume";
	for (i = 0; i < md_subscription_count; i++)
		if (md_subscriptions[i]->down)
			return "Kafka unreachable";
	for (i = 0; i < md_subscription_count; i++)
		if (md_subscriptions[i]->npartitions == 0 && !md_subscriptions[i]->unusable)
		{
			snprintf(state, sizeof(state), "assigning: %s", md_subscriptions[i]->problem);
			return state;
		}
	return processed > 0 ? "consuming" : "caught up";
}

/*
 * Queues empty: messages wake the loop through the pipe; else the next
 * subscription sync, status refresh or assignment retry.
 */
static long
next_deadline(void)
{
	long		ms = Min(md_worker_ms_until(last_sync, SYNC_EVERY_MS),
						 md_worker_ms_until(last_status, STATUS_EVERY_MS));
	int			i;

	for (i = 0; i < md_subscription_count; i++)
		if (md_subscriptions[i]->npartitions == 0)
			ms = Min(ms, TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														 md_subscriptions[i]->next_assign_at));
	return ms;
}

static void
consumer_start(MdWorkerSlot *worker_slot)
{
	slot = worker_slot;
	md_subscription_slot = slot;
	/* ISO-8601 times without a zone in events are UTC */
	SetConfigOption("timezone", "UTC", PGC_SUSET, PGC_S_OVERRIDE);
	on_proc_exit(at_exit, (Datum) 0);
}

static void
consumer_not_ready(void)
{
	md_subscriptions_drop_all();
}

static long
consumer_loop(MdWorkerSlot *worker_slot, MemoryContext loop_context, int *fd)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		processed = 0;
	bool		more;
	char	   *identity;

	if (md_kafka_bootstrap_servers[0] == '\0')
	{
		md_worker_set_state(slot, "idle: Kafka not configured");
		md_subscriptions_drop_all();
		return MD_WORKER_NO_DEADLINE;	/* a reload sets the latch */
	}
	identity = md_kafka_identity();
	if (consumer_identity == NULL || strcmp(consumer_identity, identity) != 0)
	{
		md_subscriptions_drop_all();
		if (consumer_identity)
			pfree(consumer_identity);
		consumer_identity = MemoryContextStrdup(TopMemoryContext, identity);
		last_sync = 0;
	}
	if (TimestampDifferenceExceeds(last_sync, now, SYNC_EVERY_MS))
	{
		md_subscriptions_sync();
		last_sync = now;
	}
	more = consume_round(&processed);
	if (TimestampDifferenceExceeds(last_status, now, STATUS_EVERY_MS))
	{
		lag = refresh_status();
		last_status = now;
	}
	md_worker_set_state(slot, state_word(processed));
	md_worker_loop_done(slot, processed, lag);
	*fd = md_subscriptions_wait_fd();
	return more ? 0 : next_deadline();
}

static const MdWorkerOps consumer_ops = {
	.kind = "consumer",
	.start = consumer_start,
	.not_ready = consumer_not_ready,
	.loop = consumer_loop,
};

void
md_consumer_main(Datum main_arg)
{
	md_worker_run(&consumer_ops);
}
