/*-------------------------------------------------------------------------
 *
 * worker/subscription.h
 *	  The consumer's subscriptions: one row of md.kafka_subscriptions, one
 *	  librdkafka consumer with its partitions assigned at stored offsets.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SUBSCRIPTION_H
#define MD_SUBSCRIPTION_H

#include <librdkafka/rdkafka.h>

#include "datatype/timestamp.h"

#define MD_MAX_SUBSCRIPTIONS 32

typedef struct MdSubscription
{
	int64		id;
	char	   *topic;
	char	   *group_id;
	bool		from_latest;	/* start_position of a new group */

	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;	/* the consumer queue: messages and events */

	/* per partition (ids 0..npartitions-1); npartitions 0 until assigned */
	int			npartitions;
	int64	   *next_offset;	/* as stored in md.kafka_offsets */
	int64	   *high_watermark; /* as stored; -1 unknown */

	bool		unusable;		/* no handle: the row cannot be consumed */
	bool		relay_topic;	/* marketdata.kafka_topic: not consumed */
	bool		down;			/* librdkafka said all brokers are down */
	bool		seen;			/* still in the table at the last sync */
	TimestampTz next_assign_at; /* when to try assigning again */
	char		problem[256];	/* why it is not assigned, for the status */
} MdSubscription;

extern MdSubscription *md_subscriptions[MD_MAX_SUBSCRIPTIONS];
/* the consumer's status slot, for Kafka's errors */
extern struct MdWorkerSlot *md_subscription_slot;
extern int	md_subscription_count;

/* Create the handles of new rows, drop those of removed or disabled ones. */
extern void md_subscriptions_sync(void);

/* Drop every handle (exit, Kafka no longer configured, servers changed). */
extern void md_subscriptions_drop_all(void);

/*
 * Assign the subscription's partitions at their stored offsets; never for
 * an unusable one (it has no handle).
 */
extern bool md_subscription_assign(MdSubscription *sub);

/*
 * Take up to max messages from the subscription's queue, waiting at most
 * timeout_ms; serves librdkafka's logs and errors in this thread.
 */
extern int	md_subscription_poll(MdSubscription *sub, rd_kafka_message_t **msgs,
								 int max, int timeout_ms);

/* Ask the broker whether it is back after an outage. */
extern void md_subscription_probe(MdSubscription *sub);

/* Store high watermarks librdkafka learnt since the last batch. */
extern void md_subscription_store_watermarks(MdSubscription *sub);

/* Total lag of the assigned partitions, as far as we know. */
extern int64 md_subscription_lag(MdSubscription *sub);

/* A file descriptor that becomes readable when any queue gets something. */
extern int	md_subscriptions_wait_fd(void);
extern void md_subscriptions_clear_wait_fd(void);

#endif							/* MD_SUBSCRIPTION_H */
