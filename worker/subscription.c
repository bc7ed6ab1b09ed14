/*-------------------------------------------------------------------------
 *
 * worker/subscription.c
 *	  The consumer's subscriptions: one librdkafka consumer per enabled row
 *	  of md.kafka_subscriptions, its partitions assigned at stored offsets.
 *
 * md.kafka_offsets is the truth about what was consumed, so partitions are
 * assigned by hand (rd_kafka_assign) at the next offsets stored there, not
 * through Kafka's group protocol: there is one consumer worker per database
 * and nothing to balance, no rebalance can hand a partition over between
 * our transaction and Kafka's, and librdkafka never chooses a start offset
 * on its own. A partition seen for the first time starts at the low
 * watermark (start_position earliest) or the high watermark (latest); that
 * start is stored at once, so a crash before the first message does not
 * move a "latest" start forward past messages produced meanwhile.
 *
 * The topic this database's relay publishes to (marketdata.kafka_topic) is
 * never consumed here: its events are this database's own prices, and
 * reading them back would only make each price a round trip that the sink
 * deduplicates (and muddy the lag). Such a row says so in its error; other
 * databases' consumers read that topic as usual.
 *
 * Every handle's consumer queue writes a byte to one pipe when it turns
 * non-empty, so the worker sleeps on its latch and that pipe together.
 * librdkafka's logs and errors are forwarded to the same queue and served
 * by rd_kafka_consume_batch_queue() in this process's own thread.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "spi_util.h"
#include "subscription.h"
#include "kafka_conf.h"
#include "worker.h"

#define SUBSCRIPTIONS_SQL \
	"SELECT id, topic, group_id, start_position = 'latest'" \
	" FROM md.kafka_subscriptions WHERE enabled ORDER BY id"
#define ERROR_SQL \
	"UPDATE md.kafka_subscriptions SET error = $2" \
	" WHERE id = $1 AND error IS DISTINCT FROM $2"
#define STORED_SQL \
	"SELECT partition, next_offset, coalesce(high_watermark, -1)" \
	" FROM md.kafka_offsets WHERE topic = $1 AND group_id = $2"
#define START_SQL \
	"INSERT INTO md.kafka_offsets (topic, group_id, partition, next_offset, high_watermark)" \
	" SELECT $1, $2, p, o, h FROM ROWS FROM (pg_catalog.unnest($3::int4[])," \
	"   pg_catalog.unnest($4::int8[]), pg_catalog.unnest($5::int8[])) AS u(p, o, h)" \
	" ON CONFLICT (topic, group_id, partition) DO NOTHING"
#define WATERMARK_SQL \
	"UPDATE md.kafka_offsets o SET high_watermark = u.h" \
	" FROM ROWS FROM (pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[]))" \
	"   AS u(p, h)" \
	" WHERE o.topic = $1 AND o.group_id = $2 AND o.partition = u.p"

#define ASSIGN_RETRY_MS 2000
#define METADATA_TIMEOUT_MS 500
#define WATERMARK_TIMEOUT_MS 1000
#define PROBE_TIMEOUT_MS 100

MdSubscription *md_subscriptions[MD_MAX_SUBSCRIPTIONS];
int			md_subscription_count = 0;
MdWorkerSlot *md_subscription_slot = NULL;

static SPIPlanPtr subscriptions_plan = NULL;
static SPIPlanPtr error_plan = NULL;
static SPIPlanPtr stored_plan = NULL;
static SPIPlanPtr start_plan = NULL;
static SPIPlanPtr watermark_plan = NULL;

static int	wake_pipe[2] = {-1, -1};

/* librdkafka callbacks: they run inside md_subscription_poll, in our thread */

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	MdSubscription *sub = (MdSubscription *) opaque;

	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		sub->down = true;
	/* transport errors are normal while Kafka is down: librdkafka retries */
	strlcpy(sub->problem, reason, sizeof(sub->problem));
	if (md_subscription_slot != NULL)
		md_worker_set_error(md_subscription_slot, reason);
	elog(LOG, "marketdata consumer: Kafka error on topic \"%s\": %s", sub->topic, reason);
}

static void
ensure_pipe(void)
{
	if (wake_pipe[0] >= 0)
		return;
	if (pipe(wake_pipe) != 0 ||
		fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK) != 0)
		elog(ERROR, "could not create the consumer's wake-up pipe: %m");
}

int
md_subscriptions_wait_fd(void)
{
	ensure_pipe();
	return wake_pipe[0];
}

void
md_subscriptions_clear_wait_fd(void)
{
	char		buf[64];

	while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/* one setting taken from the row: a bad value is the row's error, not ours */
static bool
set_row_value(rd_kafka_conf_t *conf, const char *name, const char *value,
			  MdSubscription *sub)
{
	char		errstr[256];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
		return true;
	snprintf(sub->problem, sizeof(sub->problem), "invalid %s: %s", name, errstr);
	return false;
}

/*
 * The subscription's consumer handle; false with sub->problem set when the
 * row cannot be used (librdkafka refused it). Such a subscription stays
 * listed, unusable, until its row changes: the others go on.
 */
static bool
create_handle(MdSubscription *sub)
{
	rd_kafka_conf_t *conf;
	char		errstr[512];
	rd_kafka_resp_err_t err;

	ensure_pipe();
	conf = md_kafka_conf_new("marketdata-consumer");
	if (!set_row_value(conf, "group.id", sub->group_id, sub))
	{
		rd_kafka_conf_destroy(conf);
		return false;
	}
	/* offsets live in md.kafka_offsets; Kafka only hears of them afterwards */
	md_kafka_conf_set(conf, "enable.auto.commit", "false");
	md_kafka_conf_set(conf, "enable.auto.offset.store", "false");
	/* a stored offset gone by retention: go on from the oldest message kept */
	md_kafka_conf_set(conf, "auto.offset.reset", "earliest");
	md_kafka_conf_set(conf, "enable.partition.eof", "false");
	/* a subscription to a missing topic waits for it, it never creates it */
	md_kafka_conf_set(conf, "allow.auto.create.topics", "false");
	md_kafka_conf_set(conf, "fetch.wait.max.ms", "100");
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_opaque(conf, sub);
	sub->rk = md_kafka_try_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (sub->rk == NULL)
	{
		snprintf(sub->problem, sizeof(sub->problem),
				 "could not create the Kafka consumer: %s", errstr);
		return false;
	}

	/* logs, errors and messages all arrive on the consumer queue */
	err = rd_kafka_poll_set_consumer(sub->rk);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		sub->queue = rd_kafka_queue_get_consumer(sub->rk);
	if (sub->queue == NULL)
	{
		snprintf(sub->problem, sizeof(sub->problem), "no consumer queue for group \"%s\": %s",
				 sub->group_id, rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ?
												 err : RD_KAFKA_RESP_ERR__UNKNOWN_GROUP));
		return false;
	}
	rd_kafka_queue_io_event_enable(sub->queue, wake_pipe[1], "m", 1);
	return true;
}

static void
drop(MdSubscription *sub)
{
	if (sub->queue != NULL)
		rd_kafka_queue_destroy(sub->queue);
	/* no consumer close: it may wait for a broker that is down */
	if (sub->rk != NULL)
		rd_kafka_destroy_flags(sub->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	pfree(sub->topic);
	pfree(sub->group_id);
	if (sub->next_offset)
		pfree(sub->next_offset);
	if (sub->high_watermark)
		pfree(sub->high_watermark);
	pfree(sub);
}

void
md_subscriptions_drop_all(void)
{
	int			i;

	for (i = 0; i < md_subscription_count; i++)
		drop(md_subscriptions[i]);
	md_subscription_count = 0;
}

/* the row says why it cannot be consumed, or nothing once it can */
static void
record_error(MdSubscription *sub)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(sub->id), (Datum) 0};

	if (sub->unusable)
		args[1] = CStringGetTextDatum(sub->problem);
	md_spi_run(md_spi_plan(&error_plan, ERROR_SQL, 2, argtypes), args,
			   sub->unusable ? NULL : " n", false, 0, SPI_OK_UPDATE,
			   "recording a subscription's error");
}

static MdSubscription *
find(int64 id, const char *topic, const char *group_id, bool from_latest)
{
	int			i;

	for (i = 0; i < md_subscription_count; i++)
	{
		MdSubscription *sub = md_subscriptions[i];

		/* marketdata.kafka_topic changed by a reload: judged again */
		if (sub->id == id && strcmp(sub->topic, topic) == 0 &&
			strcmp(sub->group_id, group_id) == 0 && sub->from_latest == from_latest &&
			sub->relay_topic == (strcmp(topic, md_kafka_topic) == 0))
			return sub;
	}
	return NULL;
}

void
md_subscriptions_sync(void)
{
	uint64		i;
	int			j,
				kept;

	md_worker_begin("marketdata consumer: reading subscriptions");
	md_spi_run(md_spi_plan(&subscriptions_plan, SUBSCRIPTIONS_SQL, 0, NULL),
			   NULL, NULL, true, 0, SPI_OK_SELECT, "reading md.kafka_subscriptions");
	for (j = 0; j < md_subscription_count; j++)
		md_subscriptions[j]->seen = false;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		char	   *topic = SPI_getvalue(tuple, desc, 2);
		char	   *group_id = SPI_getvalue(tuple, desc, 3);
		bool		latest = DatumGetBool(SPI_getbinval(tuple, desc, 4, &isnull));
		MdSubscription *sub = find(id, topic, group_id, latest);

		if (sub == NULL)
		{
			if (md_subscription_count == MD_MAX_SUBSCRIPTIONS)
			{
				elog(WARNING, "marketdata consumer: more than %d subscriptions; topic \"%s\" waits",
					 MD_MAX_SUBSCRIPTIONS, topic);
				continue;
			}
			sub = MemoryContextAllocZero(TopMemoryContext, sizeof(MdSubscription));
			sub->id = id;
			sub->topic = MemoryContextStrdup(TopMemoryContext, topic);
			sub->group_id = MemoryContextStrdup(TopMemoryContext, group_id);
			sub->from_latest = latest;
			md_subscriptions[md_subscription_count++] = sub;
			if (strcmp(topic, md_kafka_topic) == 0)
			{
				sub->relay_topic = true;
				sub->unusable = true;
				snprintf(sub->problem, sizeof(sub->problem),
						 "not consumed: this database's relay publishes its own prices to it "
						 "(marketdata.kafka_topic)");
				elog(LOG, "marketdata consumer: topic \"%s\" is the relay's own; not consumed",
					 topic);
			}
			else if (create_handle(sub))
			{
				strlcpy(sub->problem, "not assigned yet", sizeof(sub->problem));
				elog(LOG, "marketdata consumer: subscribed to topic \"%s\" (group \"%s\")",
					 topic, group_id);
			}
			else
			{
				sub->unusable = true;
				if (md_subscription_slot != NULL)
					md_worker_set_error(md_subscription_slot, sub->problem);
				ereport(WARNING,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("marketdata consumer: subscription %lld (topic \"%s\") cannot be used: %s",
								(long long) id, topic, sub->problem),
						 errhint("Correct or delete the row of md.kafka_subscriptions.")));
			}
			record_error(sub);
		}
		sub->seen = true;
	}
	md_worker_commit();

	/* disabled, deleted or changed rows: their handles go */
	kept = 0;
	for (j = 0; j < md_subscription_count; j++)
	{
		MdSubscription *sub = md_subscriptions[j];

		if (sub->seen)
			md_subscriptions[kept++] = sub;
		else
		{
			elog(LOG, "marketdata consumer: unsubscribed from topic \"%s\" (group \"%s\")",
				 sub->topic, sub->group_id);
			drop(sub);
		}
	}
	md_subscription_count = kept;
}

static ArrayType *
int4_array(int32 *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int32GetDatum(values[i]);
	return construct_array(d, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

static ArrayType *
int8_array(int64 *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return construct_array(d, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* How many partitions the topic has, or -1 with sub->problem set. */
static int
partition_count(MdSubscription *sub)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(sub->rk, sub->topic, NULL);
	const rd_kafka_metadata_t *metadata;
	rd_kafka_resp_err_t err;
	int			n = -1;

	if (rkt == NULL)
	{
		snprintf(sub->problem, sizeof(sub->problem), "invalid topic: %s",
				 rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	err = rd_kafka_metadata(sub->rk, 0, rkt, &metadata, METADATA_TIMEOUT_MS);
	rd_kafka_topic_destroy(rkt);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		snprintf(sub->problem, sizeof(sub->problem), "no metadata for topic: %s",
				 rd_kafka_err2str(err));
		return -1;
	}
	if (metadata->topic_cnt != 1 || metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
		snprintf(sub->problem, sizeof(sub->problem), "topic not available: %s",
				 metadata->topic_cnt == 1 ? rd_kafka_err2str(metadata->topics[0].err) : "no answer");
	else if (metadata->topics[0].partition_cnt == 0)
		snprintf(sub->problem, sizeof(sub->problem), "topic has no partitions");
	else
		n = metadata->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(metadata);
	return n;
}

bool
md_subscription_assign(MdSubscription *sub)
{
	TimestampTz now = GetCurrentTimestamp();
	int			n;
	int64	   *next;
	int64	   *high;
	int32	   *new_parts;
	int64	   *new_next;
	int64	   *new_high;
	int			nnew = 0;
	int			p;
	uint64		i;
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t err;

	if (sub->npartitions > 0 || now < sub->next_assign_at)
		return sub->npartitions > 0;
	sub->next_assign_at = TimestampTzPlusMilliseconds(now, ASSIGN_RETRY_MS);

	n = partition_count(sub);
	if (n <= 0)
		return false;
	next = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * n);
	high = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * n);
	for (p = 0; p < n; p++)
		next[p] = high[p] = -1;

	/* the stored offsets */
	md_worker_begin("marketdata consumer: reading stored offsets");
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		Datum		args[2] = {CStringGetTextDatum(sub->topic),
		CStringGetTextDatum(sub->group_id)};

		md_spi_run(md_spi_plan(&stored_plan, STORED_SQL, 2, argtypes), args, NULL,
				   true, 0, SPI_OK_SELECT, "reading md.kafka_offsets");
	}
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int			part = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));

		if (part < n)
		{
			next[part] = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
			high[part] = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		}
	}
	md_worker_commit();

	/* partitions seen for the first time: resolve and store their start */
	new_parts = palloc(sizeof(int32) * n);
	new_next = palloc(sizeof(int64) * n);
	new_high = palloc(sizeof(int64) * n);
	for (p = 0; p < n; p++)
	{
		int64_t		lo,
					hi;

		if (next[p] >= 0)
			continue;
		err = rd_kafka_query_watermark_offsets(sub->rk, sub->topic, p, &lo, &hi,
											   WATERMARK_TIMEOUT_MS);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			snprintf(sub->problem, sizeof(sub->problem),
					 "no watermarks for partition %d: %s", p, rd_kafka_err2str(err));
			pfree(next);
			pfree(high);
			return false;
		}
		new_parts[nnew] = p;
		new_next[nnew] = sub->from_latest ? hi : lo;
		new_high[nnew] = hi;
		next[p] = new_next[nnew];
		high[p] = hi;
		nnew++;
	}
	if (nnew > 0)
	{
		Oid			argtypes[5] = {TEXTOID, TEXTOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
		Datum		args[5];

		md_worker_begin("marketdata consumer: storing start offsets");
		args[0] = CStringGetTextDatum(sub->topic);
		args[1] = CStringGetTextDatum(sub->group_id);
		args[2] = PointerGetDatum(int4_array(new_parts, nnew));
		args[3] = PointerGetDatum(int8_array(new_next, nnew));
		args[4] = PointerGetDatum(int8_array(new_high, nnew));
		md_spi_run(md_spi_plan(&start_plan, START_SQL, 5, argtypes), args, NULL,
				   false, 0, SPI_OK_INSERT, "storing start offsets");
		md_worker_commit();
	}

	list = rd_kafka_topic_partition_list_new(n);
	for (p = 0; p < n; p++)
		rd_kafka_topic_partition_list_add(list, sub->topic, p)->offset = next[p];
	err = rd_kafka_assign(sub->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		snprintf(sub->problem, sizeof(sub->problem), "assign failed: %s",
				 rd_kafka_err2str(err));
		pfree(next);
		pfree(high);
		return false;
	}
	sub->next_offset = next;
	sub->high_watermark = high;
	sub->npartitions = n;
	sub->problem[0] = '\0';
	sub->down = false;
	elog(LOG, "marketdata consumer: topic \"%s\": %d partitions assigned at stored offsets",
		 sub->topic, n);
	return true;
}

int
md_subscription_poll(MdSubscription *sub, rd_kafka_message_t **msgs, int max,
					 int timeout_ms)
{
	ssize_t		n = rd_kafka_consume_batch_queue(sub->queue, timeout_ms, msgs, max);

	if (n < 0)
		elog(ERROR, "rd_kafka_consume_batch_queue failed: %s",
			 rd_kafka_err2str(rd_kafka_last_error()));
	return (int) n;
}

/*
 * Is Kafka back? A metadata request, which gives up after its timeout. Not
 * rd_kafka_query_watermark_offsets: while the leader is down its request
 * waits for socket.timeout.ms (60 s) whatever timeout it is given, and
 * the worker could not stop meanwhile.
 */
void
md_subscription_probe(MdSubscription *sub)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(sub->rk, sub->topic, NULL);
	const rd_kafka_metadata_t *metadata;

	if (rkt == NULL)
		return;
	if (rd_kafka_metadata(sub->rk, 0, rkt, &metadata, PROBE_TIMEOUT_MS) ==
		RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (metadata->topic_cnt == 1 &&
			metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
			metadata->topics[0].partition_cnt > 0 &&
			metadata->topics[0].partitions[0].leader >= 0)
		{
			sub->down = false;
			if (sub->npartitions > 0)
				sub->problem[0] = '\0';
		}
		rd_kafka_metadata_destroy(metadata);
	}
	rd_kafka_topic_destroy(rkt);
}

void
md_subscription_store_watermarks(MdSubscription *sub)
{
	int32	   *parts;
	int64	   *highs;
	int			nchanged = 0;
	int			p;
	Oid			argtypes[4] = {TEXTOID, TEXTOID, INT4ARRAYOID, INT8ARRAYOID};
	Datum		args[4];

	if (sub->npartitions == 0)
		return;
	parts = palloc(sizeof(int32) * sub->npartitions);
	highs = palloc(sizeof(int64) * sub->npartitions);
	for (p = 0; p < sub->npartitions; p++)
	{
		int64_t		lo,
					hi;

		if (rd_kafka_get_watermark_offsets(sub->rk, sub->topic, p, &lo, &hi) !=
			RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0 || hi == sub->high_watermark[p])
			continue;
		parts[nchanged] = p;
		highs[nchanged] = hi;
		nchanged++;
	}
	if (nchanged == 0)
		return;
	md_worker_begin("marketdata consumer: storing high watermarks");
	args[0] = CStringGetTextDatum(sub->topic);
	args[1] = CStringGetTextDatum(sub->group_id);
	args[2] = PointerGetDatum(int4_array(parts, nchanged));
	args[3] = PointerGetDatum(int8_array(highs, nchanged));
	md_spi_run(md_spi_plan(&watermark_plan, WATERMARK_SQL, 4, argtypes), args, NULL,
			   false, 0, SPI_OK_UPDATE, "storing high watermarks");
	md_worker_commit();
	for (p = 0; p < nchanged; p++)
		sub->high_watermark[parts[p]] = highs[p];
}

int64
md_subscription_lag(MdSubscription *sub)
{
	int64		lag = 0;
	int			p;

	for (p = 0; p < sub->npartitions; p++)
		if (sub->high_watermark[p] > sub->next_offset[p])
			lag += sub->high_watermark[p] - sub->next_offset[p];
	return lag;
}
