/*-------------------------------------------------------------------------
 *
 * worker/price_event.h
 *	  Decoding of a Kafka price event into a price row.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_PRICE_EVENT_H
#define MD_PRICE_EVENT_H

#include "sink.h"

/*
 * Decode one message (len bytes, not NUL-terminated) into row. Returns NULL
 * when the row was filled (the caller still runs md_sink_check_row), else a
 * palloc'd reason for the dead letter. Never raises for bad input it can
 * recognise; anything it cannot is caught by the consumer's message-by-
 * message retry.
 */
extern char *md_price_event_decode(const char *data, size_t len, MdPriceRow *row);

#endif							/* MD_PRICE_EVENT_H */
