/*-------------------------------------------------------------------------
 *
 * worker/relay_ticks.h
 *	  The outbox relay's work: ticks of md.outbox through a Kafka producer.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_RELAY_TICKS_H
#define MD_RELAY_TICKS_H

#include "worker_state.h"

/* the relay's state: its producer and the ticks in flight */
typedef struct MdRelay MdRelay;

/* the state of this process's relay; its producer goes at exit */
extern MdRelay *md_relay_create(MdWorkerSlot *slot);

/* a producer for the current settings; false when Kafka is not configured */
extern bool md_relay_ensure_producer(MdRelay *r);
extern void md_relay_drop_producer(MdRelay *r);

/* read the recorded snapshot, once per producer: reading starts from it */
extern void md_relay_adopt(MdRelay *r);

/* serve librdkafka's callbacks (delivery reports), waiting up to timeout_ms */
extern void md_relay_poll(MdRelay *r, int timeout_ms);

/*
 * Read on: the newest tick to its end, or one new tick, while the window
 * has room; returns whether the newest tick has more to send right now.
 */
extern bool md_relay_send_pending(MdRelay *r);

/*
 * Record the newest snapshot whose tick and all ticks before it have
 * every delivery report; returns the rows thereby published.
 */
extern int64 md_relay_record_published(MdRelay *r);

/* rows not yet published, for md.worker_status */
extern int64 md_relay_count_backlog(MdRelay *r);

/* delete published rows older than marketdata.outbox_retention */
extern void md_relay_apply_retention(MdRelay *r);

/* delivery reports since the last call; messages without one yet */
extern int64 md_relay_take_delivered(MdRelay *r);
extern int64 md_relay_in_flight(MdRelay *r);

#endif							/* MD_RELAY_TICKS_H */
