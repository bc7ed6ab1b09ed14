/*-------------------------------------------------------------------------
 *
 * worker/consumer_batch.h
 *	  One batch of Kafka messages stored in one transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_CONSUMER_BATCH_H
#define MD_CONSUMER_BATCH_H

#include "subscription.h"

typedef struct MdBatchResult
{
	int			messages;		/* messages stored (prices or dead letters) */
	int			new_prices;		/* rows really inserted into md.prices */
	int			dead_letters;
	bool		one_by_one;		/* the batch failed whole and was retried */
} MdBatchResult;

/*
 * Store n messages of one subscription: prices through the sink, dead
 * letters, and the next offset of each partition, in one transaction.
 */
extern MdBatchResult md_consumer_store_batch(MdSubscription *sub,
											 rd_kafka_message_t **msgs, int n);

#endif							/* MD_CONSUMER_BATCH_H */
