/*-------------------------------------------------------------------------
 *
 * extension/sink.h
 *	  The one idempotent ingest path for prices.
 *
 * Every price, from the scheduler, a synchronous md_price fetch, the Kafka
 * consumer or md_ingest_price(s), enters through md_sink_ingest(). It
 * inserts into md.prices with ON CONFLICT DO NOTHING; only rows really
 * inserted move md.latest_prices and md.symbol_averages, so replays and
 * duplicates never count twice.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SINK_H
#define MD_SINK_H

#include "datatype/timestamp.h"
#include "utils/numeric.h"

#include "symbol_meta.h"

typedef struct MdPriceRow
{
	char	   *symbol;			/* normalised by md_sink_check_row */
	char	   *provider;
	Numeric		price;
	TimestampTz ts;				/* the market's time of the price */
	Numeric		volume;			/* NULL when unknown */
	char	   *currency;		/* NULL when unknown */
	int64		raw_response_id;	/* 0 when none */
	const MdSymbolMeta *meta;	/* NULL when nothing is known */
} MdPriceRow;

typedef struct MdPriceBatch
{
	int			nrows;
	int			capacity;
	MdPriceRow *rows;

	/*
	 * true when the rows were just observed at their provider (a fetch):
	 * then md.latest_prices.fetched_at advances even for a price we had.
	 */
	bool		observed_now;

	/*
	 * true (the default) when new rows become price events in md.outbox
	 * (Kafka configured); the Kafka consumer sets it false, since its rows
	 * came from Kafka and publishing them again would echo every event.
	 */
	bool		publish;
} MdPriceBatch;

extern MdPriceBatch *md_batch_create(int capacity, bool observed_now);
extern MdPriceRow *md_batch_add(MdPriceBatch *batch);

/*
 * Check and normalise one row in place. Returns NULL when the row is good,
 * else a palloc'd reason (the Kafka consumer keeps it with a dead letter).
 * Provider existence is checked by md_sink_ingest for the whole batch.
 */
extern char *md_sink_check_row(MdPriceRow *row);

/*
 * Ingest a batch whose rows passed md_sink_check_row. Raises an error for
 * an unknown provider. Returns the number of rows that were new.
 */
extern int	md_sink_ingest(MdPriceBatch *batch);

#endif							/* MD_SINK_H */
