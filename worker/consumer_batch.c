/*-------------------------------------------------------------------------
 *
 * worker/consumer_batch.c
 *	  One batch of Kafka messages stored in one transaction (design
 *	  invariant 4): prices through the set-based sink, dead letters, and
 *	  the next offset of every partition in md.kafka_offsets. A crash at any
 *	  point either keeps all three or none, and the consumer starts again
 *	  from the stored offsets, so no price is lost or counted twice.
 *
 * A *message* becomes either a price row or a *dead letter* (a message we
 * keep with the reason it could not be ingested): not JSON, a field
 * missing or wrong, a source that is not a provider in md.providers, or
 * larger than marketdata.consumer_max_message_size. Those reasons are found
 * without raising. Should the batch still fail as a whole with an error
 * about data (a constraint we did not foresee), it is rolled back to a
 * savepoint and retried message by message, each in its own
 * subtransaction, so only the guilty messages become dead letters. Errors
 * that are not about the data (out of disk or memory, shutdown,
 * serialization, I/O) are not caught: the worker stops without storing
 * anything and starts again from the stored offsets.
 *
 * A *gap* is a range of offsets the broker deleted (retention) before we
 * consumed them: librdkafka then goes on from the oldest message kept.
 * A partition's first message past its stored offset is such a jump only
 * if the broker's low watermark is past the stored offset too (compaction
 * and transaction markers leave holes that are not lost data); the range
 * is stored in md.kafka_gaps in the batch's transaction and logged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "provider.h"
#include "sink.h"
#include "spi_util.h"
#include "consumer_batch.h"
#include "price_event.h"
#include "worker.h"

#define DEAD_LETTERS_SQL \
	"INSERT INTO md.dead_letters (source, topic, partition, \"offset\", key, payload, reason)" \
	" SELECT 'kafka', $1, p, o, k, v, r FROM ROWS FROM (pg_catalog.unnest($2::int4[])," \
	"   pg_catalog.unnest($3::int8[]), pg_catalog.unnest($4::bytea[])," \
	"   pg_catalog.unnest($5::bytea[]), pg_catalog.unnest($6::text[])) AS u(p, o, k, v, r)"
#define OFFSETS_SQL \
	"INSERT INTO md.kafka_offsets AS o" \
	"  (topic, group_id, partition, next_offset, high_watermark, last_message_at, updated_at)" \
	" SELECT $1, $2, p, n, h, t, pg_catalog.now() FROM ROWS FROM" \
	"   (pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[])," \
	"    pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::timestamptz[])) AS u(p, n, h, t)" \
	" ON CONFLICT (topic, group_id, partition) DO UPDATE SET" \
	"   next_offset = EXCLUDED.next_offset, high_watermark = EXCLUDED.high_watermark," \
	"   last_message_at = EXCLUDED.last_message_at, updated_at = EXCLUDED.updated_at"

#define GAPS_SQL \
	"INSERT INTO md.kafka_gaps (topic, group_id, partition, first_offset, last_offset)" \
	" SELECT $1, $2, p, f, l FROM ROWS FROM (pg_catalog.unnest($3::int4[])," \
	"   pg_catalog.unnest($4::int8[]), pg_catalog.unnest($5::int8[])) AS u(p, f, l)"

#define GAP_WATERMARK_TIMEOUT_MS 1000

static SPIPlanPtr gaps_plan = NULL;
static SPIPlanPtr dead_letters_plan = NULL;
static SPIPlanPtr offsets_plan = NULL;

/* the dead letters of a batch, written by one statement */
typedef struct DeadLetters
{
	int			n;
	Datum	   *partition;
	Datum	   *offset;
	Datum	   *key;
	bool	   *key_null;
	Datum	   *payload;
	Datum	   *reason;
} DeadLetters;

static Datum
bytes_datum(const void *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}

static void
add_dead_letter(DeadLetters *dl, rd_kafka_message_t *msg, const char *reason)
{
	int			i = dl->n++;

	dl->partition[i] = Int32GetDatum(msg->partition);
	dl->offset[i] = Int64GetDatum(msg->offset);
	dl->key_null[i] = (msg->key == NULL);
	dl->key[i] = msg->key ? bytes_datum(msg->key, msg->key_len) : (Datum) 0;
	dl->payload[i] = bytes_datum(msg->payload ? msg->payload : "", msg->payload ? msg->len : 0);
	dl->reason[i] = CStringGetTextDatum(reason);
}

static ArrayType *
array_of(Datum *values, bool *nulls, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};

	switch (type)
	{
		case INT4OID:
			return construct_md_array(values, nulls, 1, dims, lbs, type, 4, true, TYPALIGN_INT);
		case INT8OID:
		case TIMESTAMPTZOID:
			return construct_md_array(values, nulls, 1, dims, lbs, type, 8,
									  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		default:
			return construct_md_array(values, nulls, 1, dims, lbs, type, -1, false, TYPALIGN_INT);
	}
}

static void
write_dead_letters(MdSubscription *sub, DeadLetters *dl)
{
	Oid			argtypes[6] = {TEXTOID, INT4ARRAYOID, INT8ARRAYOID, BYTEAARRAYOID,
	BYTEAARRAYOID, TEXTARRAYOID};
	Datum		args[6];

	if (dl->n == 0)
		return;
	args[0] = CStringGetTextDatum(sub->topic);
	args[1] = PointerGetDatum(array_of(dl->partition, NULL, dl->n, INT4OID));
	args[2] = PointerGetDatum(array_of(dl->offset, NULL, dl->n, INT8OID));
	args[3] = PointerGetDatum(array_of(dl->key, dl->key_null, dl->n, BYTEAOID));
	args[4] = PointerGetDatum(array_of(dl->payload, NULL, dl->n, BYTEAOID));
	args[5] = PointerGetDatum(array_of(dl->reason, NULL, dl->n, TEXTOID));
	md_spi_run(md_spi_plan(&dead_letters_plan, DEAD_LETTERS_SQL, 6, argtypes), args, NULL,
			   false, 0, SPI_OK_INSERT, "storing dead letters");
}

/* The providers named by the rows that are not in md.providers, as a set. */
static HTAB *
unknown_providers(MdPriceBatch *batch)
{
	HASHCTL		ctl;
	HTAB	   *names;
	HTAB	   *unknown;
	HASH_SEQ_STATUS seq;
	char	   *name;
	Datum	   *d;
	int			n = 0;
	int			i;
	ListCell   *lc;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = NAMEDATALEN;
	ctl.hcxt = CurrentMemoryContext;
	names = hash_create("marketdata consumer sources", 16, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	unknown = hash_create("marketdata consumer unknown providers", 16, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (i = 0; i < batch->nrows; i++)
		if (strlen(batch->rows[i].provider) < NAMEDATALEN)
			(void) hash_search(names, batch->rows[i].provider, HASH_ENTER, NULL);

	d = palloc(sizeof(Datum) * Max(hash_get_num_entries(names), 1));
	hash_seq_init(&seq, names);
	while ((name = hash_seq_search(&seq)) != NULL)
		d[n++] = CStringGetTextDatum(name);
	foreach(lc, md_providers_unknown(array_of(d, NULL, n, TEXTOID)))
		(void) hash_search(unknown, lfirst(lc), HASH_ENTER, NULL);
	return unknown;
}

/*
 * Decode messages into a batch of rows (first) and dead letters; rows
 * whose source is no provider become dead letters too.
 */
static MdPriceBatch *
decode(rd_kafka_message_t **msgs, int n, DeadLetters *dl)
{
	MdPriceBatch *batch = md_batch_create(n, false);
	rd_kafka_message_t **row_msg = palloc(sizeof(rd_kafka_message_t *) * Max(n, 1));
	HTAB	   *unknown;
	int			kept = 0;
	int			i;

	/* the prices came from Kafka: not published again */
	batch->publish = false;
	for (i = 0; i < n; i++)
	{
		rd_kafka_message_t *msg = msgs[i];
		MdPriceRow *row;
		char	   *reason;

		if (msg->len > (size_t) md_consumer_max_message_size)
		{
			add_dead_letter(dl, msg,
							psprintf("message of %zu bytes is larger than marketdata.consumer_max_message_size (%d bytes)",
									 msg->len, md_consumer_max_message_size));
			continue;
		}
		row = md_batch_add(batch);
		reason = md_price_event_decode(msg->payload ? msg->payload : "", msg->len, row);
		if (reason == NULL)
			reason = md_sink_check_row(row);
		if (reason != NULL)
		{
			add_dead_letter(dl, msg, reason);
			batch->nrows--;
			continue;
		}
		row_msg[batch->nrows - 1] = msg;
	}
	if (batch->nrows == 0)
		return batch;

	unknown = unknown_providers(batch);
	for (i = 0; i < batch->nrows; i++)
	{
		MdPriceRow *row = &batch->rows[i];

		if (strlen(row->provider) >= NAMEDATALEN ||
			hash_search(unknown, row->provider, HASH_FIND, NULL) != NULL)
		{
			add_dead_letter(dl, row_msg[i],
							psprintf("unknown source \"%.64s\": not a provider in md.providers",
									 row->provider));
			continue;
		}
		batch->rows[kept++] = *row;
	}
	batch->nrows = kept;
	return batch;
}

/* Errors about the messages, as opposed to the database's own trouble. */
static bool
is_about_data(ErrorData *edata)
{
	switch (ERRCODE_TO_CATEGORY(edata->sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:
		case ERRCODE_TRANSACTION_ROLLBACK:
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:
		case ERRCODE_OPERATOR_INTERVENTION:
		case ERRCODE_SYSTEM_ERROR:
			return false;
		default:
			return true;
	}
}

/*
 * Decode and ingest msgs inside a subtransaction. Returns the new prices,
 * or -1 after rolling back an error about data (its message in *error).
 */
static int
ingest_in_subxact(rd_kafka_message_t **msgs, int n, DeadLetters *dl,
				  MdSubscription *sub, bool write_letters, char **error)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int			dl_before = dl->n;
	int			inserted = -1;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		MdPriceBatch *batch = decode(msgs, n, dl);

		inserted = md_sink_ingest(batch);
		if (write_letters)
			write_dead_letters(sub, dl);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		if (!is_about_data(edata))
			ReThrowError(edata);
		dl->n = dl_before;
		*error = edata->message;
		inserted = -1;
	}
	PG_END_TRY();
	return inserted;
}

static void
write_offsets(MdSubscription *sub, int64 *next, TimestampTz *last_at, int64 *high)
{
	int			np = sub->npartitions;
	Datum	   *parts = palloc(sizeof(Datum) * np);
	Datum	   *offsets = palloc(sizeof(Datum) * np);
	Datum	   *highs = palloc(sizeof(Datum) * np);
	Datum	   *times = palloc(sizeof(Datum) * np);
	bool	   *time_nulls = palloc(sizeof(bool) * np);
	int			count = 0;
	int			p;
	Oid			argtypes[6] = {TEXTOID, TEXTOID, INT4ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[6];

	for (p = 0; p < np; p++)
	{
		if (next[p] == sub->next_offset[p])
			continue;
		parts[count] = Int32GetDatum(p);
		offsets[count] = Int64GetDatum(next[p]);
		highs[count] = Int64GetDatum(high[p]);
		times[count] = TimestampTzGetDatum(last_at[p]);
		time_nulls[count] = (last_at[p] == 0);
		count++;
	}
	if (count == 0)
		return;
	args[0] = CStringGetTextDatum(sub->topic);
	args[1] = CStringGetTextDatum(sub->group_id);
	args[2] = PointerGetDatum(array_of(parts, NULL, count, INT4OID));
	args[3] = PointerGetDatum(array_of(offsets, NULL, count, INT8OID));
	args[4] = PointerGetDatum(array_of(highs, NULL, count, INT8OID));
	args[5] = PointerGetDatum(array_of(times, time_nulls, count, TIMESTAMPTZOID));
	md_spi_run(md_spi_plan(&offsets_plan, OFFSETS_SQL, 6, argtypes), args, NULL,
			   false, 0, SPI_OK_INSERT, "storing offsets");
}

/*
 * Whether the jump of partition p from its stored offset to a message at
 * offset is a range the broker deleted; *last is then its last offset.
 */
static bool
deleted_range(MdSubscription *sub, int p, int64 stored, int64 offset, int64 *last)
{
	int64_t		lo,
				hi;

	if (stored < 0 || offset <= stored)
		return false;
	if (rd_kafka_query_watermark_offsets(sub->rk, sub->topic, p, &lo, &hi,
										 GAP_WATERMARK_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
		lo = offset;			/* cannot ask: the jump itself is what we know */
	if (lo <= stored)
		return false;
	*last = Min(lo, offset) - 1;
	return true;
}

static void
write_gaps(MdSubscription *sub, int n, Datum *parts, Datum *firsts, Datum *lasts)
{
	Oid			argtypes[5] = {TEXTOID, TEXTOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	Datum		args[5];

	if (n == 0)
		return;
	args[0] = CStringGetTextDatum(sub->topic);
	args[1] = CStringGetTextDatum(sub->group_id);
	args[2] = PointerGetDatum(array_of(parts, NULL, n, INT4OID));
	args[3] = PointerGetDatum(array_of(firsts, NULL, n, INT8OID));
	args[4] = PointerGetDatum(array_of(lasts, NULL, n, INT8OID));
	md_spi_run(md_spi_plan(&gaps_plan, GAPS_SQL, 5, argtypes), args, NULL,
			   false, 0, SPI_OK_INSERT, "storing gaps");
}

/* After the commit, Kafka hears of the offsets too (for external lag tools). */
static void
commit_to_kafka(MdSubscription *sub, int64 *next, bool *moved)
{
	rd_kafka_topic_partition_list_t *list;
	int			p;

	list = rd_kafka_topic_partition_list_new(sub->npartitions);
	for (p = 0; p < sub->npartitions; p++)
		if (moved[p])
			rd_kafka_topic_partition_list_add(list, sub->topic, p)->offset = next[p];
	if (list->cnt > 0)
		(void) rd_kafka_commit(sub->rk, list, 1);
	rd_kafka_topic_partition_list_destroy(list);
}

MdBatchResult
md_consumer_store_batch(MdSubscription *sub, rd_kafka_message_t **msgs, int n)
{
	MdBatchResult result;
	int			np = sub->npartitions;
	int64	   *next = palloc(sizeof(int64) * np);
	int64	   *high = palloc(sizeof(int64) * np);
	bool	   *moved = palloc0(sizeof(bool) * np);
	TimestampTz *last_at = palloc0(sizeof(TimestampTz) * np);
	rd_kafka_message_t **todo = palloc(sizeof(rd_kafka_message_t *) * Max(n, 1));
	DeadLetters dl;
	int			ntodo = 0;
	int			i;
	int			p;
	char	   *error = NULL;
	Datum	   *gap_part = palloc(sizeof(Datum) * np);
	Datum	   *gap_first = palloc(sizeof(Datum) * np);
	Datum	   *gap_last = palloc(sizeof(Datum) * np);
	int			ngaps = 0;

	memset(&result, 0, sizeof(result));
	memcpy(next, sub->next_offset, sizeof(int64) * np);

	/* which messages are new; where each partition goes on from */
	for (i = 0; i < n; i++)
	{
		rd_kafka_message_t *msg = msgs[i];
		int64		ts;

		if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			/* not a message: an event of the partition (librdkafka goes on) */
			strlcpy(sub->problem, rd_kafka_message_errstr(msg), sizeof(sub->problem));
			elog(LOG, "marketdata consumer: topic \"%s\" partition %d: %s",
				 sub->topic, msg->partition, rd_kafka_message_errstr(msg));
			continue;
		}
		p = msg->partition;
		if (p < 0 || p >= np)
			continue;			/* not one we assigned */
		/* stored already (a fetch from before a seek): never twice */
		if (msg->offset < next[p])
			continue;
		if (msg->offset > next[p] && ngaps < np)
		{
			int64		last;

			if (deleted_range(sub, p, next[p], msg->offset, &last))
			{
				ereport(WARNING,
						(errmsg("marketdata consumer: topic \"%s\" partition %d: offsets " INT64_FORMAT " to " INT64_FORMAT " were deleted by the broker before they were consumed",
								sub->topic, p, next[p], last),
						 errdetail("%lld messages are lost; they are recorded in md.kafka_gaps.",
								   (long long) (last - next[p] + 1))));
				gap_part[ngaps] = Int32GetDatum(p);
				gap_first[ngaps] = Int64GetDatum(next[p]);
				gap_last[ngaps] = Int64GetDatum(last);
				ngaps++;
			}
		}
		next[p] = msg->offset + 1;
		moved[p] = true;
		ts = rd_kafka_message_timestamp(msg, NULL);
		last_at[p] = ts >= 0 ?
			(TimestampTz) (ts * 1000) -
			(TimestampTz) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY :
			GetCurrentTimestamp();
		todo[ntodo++] = msg;
	}
	for (p = 0; p < np; p++)
	{
		int64_t		lo,
					hi;

		high[p] = sub->high_watermark[p];
		if (rd_kafka_get_watermark_offsets(sub->rk, sub->topic, p, &lo, &hi) ==
			RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0)
			high[p] = hi;
		high[p] = Max(high[p], next[p]);
	}
	if (ntodo == 0)
		return result;

	dl.n = 0;
	dl.partition = palloc(sizeof(Datum) * ntodo);
	dl.offset = palloc(sizeof(Datum) * ntodo);
	dl.key = palloc(sizeof(Datum) * ntodo);
	dl.key_null = palloc(sizeof(bool) * ntodo);
	dl.payload = palloc(sizeof(Datum) * ntodo);
	dl.reason = palloc(sizeof(Datum) * ntodo);

	md_worker_begin("marketdata consumer: storing a batch");
	result.new_prices = ingest_in_subxact(todo, ntodo, &dl, sub, true, &error);
	if (result.new_prices < 0)
	{
		/* the batch failed whole: message by message, the guilty ones out */
		elog(LOG, "marketdata consumer: a batch of %d messages from \"%s\" failed (%s); retrying one by one",
			 ntodo, sub->topic, error);
		result.one_by_one = true;
		result.new_prices = 0;
		dl.n = 0;
		for (i = 0; i < ntodo; i++)
		{
			int			inserted = ingest_in_subxact(&todo[i], 1, &dl, sub, false, &error);

			if (inserted < 0)
				add_dead_letter(&dl, todo[i], error);
			else
				result.new_prices += inserted;
		}
		write_dead_letters(sub, &dl);
	}
	write_gaps(sub, ngaps, gap_part, gap_first, gap_last);
	write_offsets(sub, next, last_at, high);
	md_worker_commit();

	memcpy(sub->next_offset, next, sizeof(int64) * np);
	memcpy(sub->high_watermark, high, sizeof(int64) * np);
	commit_to_kafka(sub, next, moved);
	result.messages = ntodo;
	result.dead_letters = dl.n;
	return result;
}
