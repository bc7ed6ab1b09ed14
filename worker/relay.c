/*-------------------------------------------------------------------------
 *
 * worker/relay.c
 *	  The outbox relay: publishes md.outbox to Kafka (design invariant 3).
 *
 * The sink writes a price event into md.outbox in the same transaction as
 * the price. The relay sends pending rows in id order with an idempotent
 * producer (acks=all), keyed by symbol so one symbol's events stay in one
 * partition and in order, and marks a row published only when its delivery
 * report says Kafka has it. Kafka down: messages wait inside librdkafka (at
 * most marketdata.relay_batch_size of them), the outbox grows, nothing is
 * lost; librdkafka reconnects and the backlog drains. Messages never time
 * out (message.timeout.ms = 0), so a failed delivery report means a fatal
 * producer error: the relay then drops the producer and sends every
 * unpublished row again from a new one, still in order.
 *
 * librdkafka runs threads of its own; its logs, errors and delivery reports
 * are all served by rd_kafka_poll() in this process's thread, so no
 * PostgreSQL call is ever made from a librdkafka thread.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/ipc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "../extension/guc.h"
#include "../extension/spi_util.h"
#include "kafka_conf.h"
#include "worker.h"

#define CLAIM_SQL \
	"SELECT id, symbol, payload::text FROM md.outbox" \
	" WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
#define BACKLOG_SQL \
	"SELECT count(*) FROM md.outbox WHERE published_at IS NULL"
#define MARK_SQL \
	"UPDATE md.outbox SET published_at = now(), attempts = attempts + 1" \
	" WHERE id = ANY($1)"
#define RETENTION_SQL \
	"DELETE FROM md.outbox" \
	" WHERE published_at < now() - $1 * interval '1 second'"

#define RETENTION_EVERY_MS 10000
/* delivery reports marked at the latest once this many are waiting */
#define MARK_AT_LEAST 20000
#define BACKLOG_EVERY_MS 1000

static rd_kafka_t *producer = NULL;
static char *producer_servers = NULL;	/* the configuration it was made with */
static char *producer_topic = NULL;

static int64 last_sent_id = 0;	/* highest outbox id handed to librdkafka */
static int	in_flight = 0;		/* sent, no delivery report yet */
static bool reset_wanted = false;	/* a fatal producer error happened */

/* delivery reports gathered by the poll, stored by the next transaction */
static int64 *delivered = NULL;
static int	ndelivered = 0;
static int	delivered_cap = 0;

static MdWorkerSlot *slot = NULL;

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr backlog_plan = NULL;
static SPIPlanPtr mark_plan = NULL;
static SPIPlanPtr retention_plan = NULL;

PGDLLEXPORT void md_relay_main(Datum main_arg);

/* librdkafka callbacks: they run inside rd_kafka_poll(), in our thread */

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	in_flight--;
	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (ndelivered == delivered_cap)
		{
			delivered_cap = Max(delivered_cap * 2, 1024);
			delivered = repalloc_huge(delivered, sizeof(int64) * delivered_cap);
		}
		delivered[ndelivered++] = (int64) (intptr_t) msg->_private;
	}
	else
	{
		md_worker_set_error(slot, rd_kafka_err2str(msg->err));
		reset_wanted = true;
	}
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	char		buf[512];

	/* transport errors are normal while Kafka is down: librdkafka retries */
	md_worker_set_error(slot, reason);
	if (rd_kafka_fatal_error(rk, buf, sizeof(buf)) != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		elog(WARNING, "marketdata relay: fatal Kafka error: %s", buf);
		reset_wanted = true;
	}
}

static void
destroy_producer(void)
{
	if (producer == NULL)
		return;
	/* drop what is queued: unpublished rows are sent again from the outbox */
	rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(producer, 0);
	rd_kafka_destroy(producer);
	producer = NULL;
	in_flight = 0;
	last_sent_id = 0;
	ndelivered = 0;
	reset_wanted = false;
}

static void
destroy_at_exit(int code, Datum arg)
{
	destroy_producer();
}

static void
create_producer(void)
{
	rd_kafka_conf_t *conf = md_kafka_conf_new("marketdata-relay");

	md_kafka_conf_set(conf, "enable.idempotence", "true");
	md_kafka_conf_set(conf, "acks", "all");
	md_kafka_conf_set(conf, "message.timeout.ms", "0");
	md_kafka_conf_set(conf, "linger.ms", "5");
	/* room in librdkafka's queue for the whole window */
	md_kafka_conf_set(conf, "queue.buffering.max.messages",
					  psprintf("%d", Max(md_relay_batch_size, 100000)));
	md_kafka_conf_set(conf, "partitioner", "murmur2_random");
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	producer = md_kafka_new(RD_KAFKA_PRODUCER, conf);

	if (producer_servers)
		pfree(producer_servers);
	if (producer_topic)
		pfree(producer_topic);
	producer_servers = MemoryContextStrdup(TopMemoryContext, md_kafka_bootstrap_servers);
	producer_topic = MemoryContextStrdup(TopMemoryContext, md_kafka_topic);
	last_sent_id = 0;
	in_flight = 0;
}

/* A producer for the current settings, or none when Kafka is not configured. */
static bool
ensure_producer(void)
{
	bool		configured = md_kafka_bootstrap_servers[0] != '\0';

	if (producer != NULL &&
		(!configured || reset_wanted ||
		 strcmp(producer_servers, md_kafka_bootstrap_servers) != 0 ||
		 strcmp(producer_topic, md_kafka_topic) != 0))
		destroy_producer();
	if (configured && producer == NULL)
		create_producer();
	return producer != NULL;
}

/* Store the delivery reports gathered so far; returns how many. */
static int
mark_delivered(void)
{
	Datum	   *ids;
	Datum		args[1];
	Oid			argtypes[1] = {INT8ARRAYOID};
	int			i;

	int			n = ndelivered;

	if (ndelivered == 0)
		return 0;
	md_worker_begin("marketdata relay: marking published events");
	ids = palloc(sizeof(Datum) * ndelivered);
	for (i = 0; i < ndelivered; i++)
		ids[i] = Int64GetDatum(delivered[i]);
	args[0] = PointerGetDatum(construct_array(ids, ndelivered, INT8OID, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	md_spi_run(md_spi_plan(&mark_plan, MARK_SQL, 1, argtypes), args, NULL,
			   false, 0, SPI_OK_UPDATE, "marking outbox rows published");
	md_worker_commit();
	ndelivered = 0;
	return n;
}

/*
 * Hand the next pending rows, in id order, to the producer; returns how
 * many, and in *more whether the outbox may hold more to send right now.
 */
static int
send_pending(bool *more)
{
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		args[2];
	bool		isnull;
	uint64		i;
	int			sent = 0;
	int			wanted = md_relay_batch_size - in_flight;

	*more = false;
	if (wanted <= 0)
		return 0;
	md_worker_begin("marketdata relay: reading the outbox");
	args[0] = Int64GetDatum(last_sent_id);
	args[1] = Int32GetDatum(wanted);
	md_spi_run(md_spi_plan(&claim_plan, CLAIM_SQL, 2, argtypes), args, NULL,
			   true, 0, SPI_OK_SELECT, "reading the outbox");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int64		id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		char	   *symbol = SPI_getvalue(tuple, desc, 2);
		char	   *payload = SPI_getvalue(tuple, desc, 3);
		rd_kafka_resp_err_t err;

		err = rd_kafka_producev(producer,
								RD_KAFKA_V_TOPIC(producer_topic),
								RD_KAFKA_V_KEY(symbol, strlen(symbol)),
								RD_KAFKA_V_VALUE(payload, strlen(payload)),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_OPAQUE((void *) (intptr_t) id),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			/* queue full: the rest waits for the next round, in order */
			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				md_worker_set_error(slot, rd_kafka_err2str(err));
			break;
		}
		last_sent_id = id;
		in_flight++;
		sent++;
	}
	*more = (sent == wanted);
	md_worker_commit();
	return sent;
}

/* Rows not yet published, for md.worker_status. */
static int64
count_backlog(void)
{
	int64		backlog;
	bool		isnull;

	md_worker_begin("marketdata relay: counting the outbox");
	md_spi_run(md_spi_plan(&backlog_plan, BACKLOG_SQL, 0, NULL), NULL, NULL,
			   true, 1, SPI_OK_SELECT, "counting the outbox");
	backlog = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	md_worker_commit();
	return backlog;
}

static void
apply_retention(void)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(md_outbox_retention)};

	md_worker_begin("marketdata relay: deleting old published events");
	md_spi_run(md_spi_plan(&retention_plan, RETENTION_SQL, 1, argtypes), args, NULL,
			   false, 0, SPI_OK_DELETE, "outbox retention");
	md_worker_commit();
}

void
md_relay_main(Datum main_arg)
{
	MemoryContext loop_context;
	TimestampTz last_retention = 0;
	TimestampTz last_backlog = 0;
	int64		backlog = 0;

	slot = md_worker_start("relay");
	on_proc_exit(destroy_at_exit, (Datum) 0);
	delivered_cap = 1024;
	delivered = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * delivered_cap);
	loop_context = AllocSetContextCreate(TopMemoryContext, "marketdata relay loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old;
		long		timeout = 1000;

		old = MemoryContextSwitchTo(loop_context);
		if (!md_worker_extension_ready())
		{
			md_worker_set_state(slot, "waiting for CREATE EXTENSION");
			destroy_producer();
			timeout = 5000;
		}
		else if (!ensure_producer())
			md_worker_set_state(slot, "idle: Kafka not configured");
		else
		{
			int			published = 0;
			bool		more;
			TimestampTz now = GetCurrentTimestamp();

			/*
			 * Sending comes first: marking rows published is an UPDATE per
			 * row, several times the cost of handing a row to librdkafka,
			 * and marking each loop's reports before sending more held
			 * throughput to the UPDATE's rate (30,000 rows/s). Reports are
			 * marked when the window is full or the outbox has nothing
			 * more to send, or once MARK_AT_LEAST of them are waiting, so
			 * that a crash sends few rows twice.
			 */
			rd_kafka_poll(producer, 0);
			(void) send_pending(&more);
			if ((!more && in_flight < md_relay_batch_size) || ndelivered >= MARK_AT_LEAST)
				published = mark_delivered();
			if (TimestampDifferenceExceeds(last_backlog, now, BACKLOG_EVERY_MS))
			{
				backlog = count_backlog();
				last_backlog = now;
			}
			md_worker_set_state(slot, in_flight > 0 ? "publishing" : "caught up");
			md_worker_loop_done(slot, published, backlog);
			if (TimestampDifferenceExceeds(last_retention, now, RETENTION_EVERY_MS))
			{
				apply_retention();
				last_retention = now;
			}
			/*
			 * While rows are in flight: go on at once when there is more to
			 * send or reports to mark; otherwise wait inside librdkafka for
			 * the next delivery report (at most 10 ms, then the latch is
			 * looked at again), not for a fixed sleep.
			 */
			if (in_flight > 0 || ndelivered > 0)
			{
				timeout = 0;
				if (!more && (ndelivered == 0 || in_flight >= md_relay_batch_size))
					rd_kafka_poll(producer, 10);
			}
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);
		md_worker_wait(timeout);
	}
}
