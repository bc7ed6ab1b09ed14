/*-------------------------------------------------------------------------
 *
 * worker/relay_ticks.c
 *	  The outbox relay's work: ticks of md.outbox through a Kafka producer
 *	  (design invariant 3). The loop that drives it is relay.c.
 *
 * The sink writes a price event into md.outbox in the same transaction as
 * the price, with that transaction's id (xact). The relay publishes by
 * *ticks*, as PgQ does: a tick is the rows of the transactions visible in
 * a new snapshot and not in the previous tick's, sent in (xact, id) order
 * with an idempotent producer (acks=all), keyed by symbol so one symbol's
 * events stay in one partition and in order. Once every row of a tick and
 * of all ticks before it has its delivery report, one INSERT into
 * md.outbox_published records the tick's snapshot: a row is published
 * when its transaction is visible there. Marking costs one row per batch,
 * not an UPDATE per event, and a transaction committing late (its id lower
 * than rows already sent) simply falls into the next tick.
 *
 * Kafka down: messages wait inside librdkafka (at most
 * marketdata.relay_batch_size of them), the outbox grows, nothing is lost;
 * librdkafka reconnects and the backlog drains. Messages never time out
 * (message.timeout.ms = 0), so a failed delivery report means a fatal
 * producer error: the relay then drops the producer and sends everything
 * after the recorded snapshot again from a new one, still in order.
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
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "guc.h"
#include "kafka_conf.h"
#include "relay_ticks.h"
#include "spi_util.h"
#include "worker.h"

#define ADOPT_SQL "SELECT md._outbox_adopt()::text"
/* a new snapshot, and where its tick starts: the oldest transaction that
 * was running at the previous tick and has ended since, else the previous
 * tick's xmax */
#define TICK_SQL \
	"SELECT s::text, coalesce(" \
	"  (SELECT min(x) FROM pg_catalog.pg_snapshot_xip($1::pg_snapshot) x" \
	"   WHERE pg_catalog.pg_visible_in_snapshot(x, s))," \
	"  pg_catalog.pg_snapshot_xmax($1::pg_snapshot))" \
	" FROM pg_catalog.pg_current_snapshot() s"
#define ROWS_SQL \
	"SELECT xact, id, symbol, payload FROM md.outbox" \
	" WHERE (xact, id) > ($1, $2)" \
	"   AND xact < pg_catalog.pg_snapshot_xmax($3::pg_snapshot)" \
	"   AND pg_catalog.pg_visible_in_snapshot(xact, $3::pg_snapshot)" \
	"   AND NOT pg_catalog.pg_visible_in_snapshot(xact, $4::pg_snapshot)" \
	" ORDER BY xact, id LIMIT $5"
#define THROUGH_SQL \
	"SELECT md._outbox_snapshot_through($1::pg_snapshot, $2::pg_snapshot, $3)::text"
#define RECORD_SQL \
	"INSERT INTO md.outbox_published (snapshot, system_identifier)" \
	" SELECT $1::pg_snapshot, system_identifier FROM pg_catalog.pg_control_system()"
/*
 * The backlog and the retention are planned with their values each time
 * (SPI_execute_with_args, no kept plan): a generic plan guesses that a
 * third of the outbox matches "xact >= $1" or "created_at < $1" and scans
 * all of it, an hour of events, every second.
 */
#define BACKLOG_SQL "SELECT count(*) FROM md._outbox_pending($1::pg_snapshot)"
#define RETENTION_SQL \
	"DELETE FROM md.outbox" \
	" WHERE created_at < $1 AND pg_catalog.pg_visible_in_snapshot(xact, $2::pg_snapshot)"
#define PROGRESS_RETENTION_SQL \
	"DELETE FROM md.outbox_published" \
	" WHERE id < (SELECT max(id) FROM md.outbox_published)"

/* ticks in flight at once; a full ring waits for delivery reports */
#define MAX_TICKS 256
#define LEARN_TOPIC_TIMEOUT_MS 200

typedef struct Tick
{
	char	   *snapshot;		/* in TopMemoryContext */
	int64		outstanding;	/* sent, no delivery report yet */
	int64		rows;
	bool		read_done;		/* every row of the tick handed over */
} Tick;

/* everything the relay keeps from one loop to the next */
struct MdRelay
{
	MdWorkerSlot *slot;
	rd_kafka_t *producer;
	rd_kafka_topic_t *producer_rkt; /* marketdata.kafka_topic's handle */
	char	   *producer_identity;	/* md_kafka_identity() it was made for */
	char	   *producer_topic;
	bool		reset_wanted;	/* a fatal producer error happened */

	/* ticks[seq % MAX_TICKS] for tick_head <= seq < tick_tail */
	Tick		ticks[MAX_TICKS];
	uint64		tick_head;
	uint64		tick_tail;
	int64		in_flight;		/* sum of the ticks' outstanding */
	int64		delivered;		/* delivery reports since last asked */

	char	   *published;		/* the recorded snapshot, NULL before adopt */
	char	   *read_upto;		/* the newest tick's snapshot */
	/* where the newest tick, while not read to its end, goes on */
	uint64		cursor_xact;
	int64		cursor_id;
	char	   *tick_prev;		/* the snapshot before the newest tick */
};

static SPIPlanPtr adopt_plan = NULL;
static SPIPlanPtr tick_plan = NULL;
static SPIPlanPtr rows_plan = NULL;
static SPIPlanPtr through_plan = NULL;
static SPIPlanPtr record_plan = NULL;
static SPIPlanPtr progress_plan = NULL;

static char *
keep(char *old, const char *text)
{
	if (old != NULL)
		pfree(old);
	return text == NULL ? NULL : MemoryContextStrdup(TopMemoryContext, text);
}

/* librdkafka callbacks: they run inside rd_kafka_poll(), in our thread */

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	MdRelay    *r = (MdRelay *) opaque;
	uint64		seq = (uint64) (uintptr_t) msg->_private;

	if (seq >= r->tick_head && seq < r->tick_tail)
	{
		r->ticks[seq % MAX_TICKS].outstanding--;
		r->in_flight--;
	}
	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		r->delivered++;
	else
	{
		md_worker_set_error(r->slot, rd_kafka_err2str(msg->err));
		r->reset_wanted = true;
	}
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	MdRelay    *r = (MdRelay *) opaque;
	char		buf[512];

	/* transport errors are normal while Kafka is down: librdkafka retries */
	md_worker_set_error(r->slot, reason);
	if (rd_kafka_fatal_error(rk, buf, sizeof(buf)) != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		elog(WARNING, "marketdata relay: fatal Kafka error: %s", buf);
		r->reset_wanted = true;
	}
}

/* Forget every tick in flight: reading starts again from the record. */
static void
forget_ticks(MdRelay *r)
{
	for (; r->tick_head < r->tick_tail; r->tick_head++)
		r->ticks[r->tick_head % MAX_TICKS].snapshot =
			keep(r->ticks[r->tick_head % MAX_TICKS].snapshot, NULL);
	r->in_flight = 0;
	r->read_upto = keep(r->read_upto, r->published);
}

void
md_relay_drop_producer(MdRelay *r)
{
	if (r->producer == NULL)
		return;
	/* drop what is queued: unpublished rows are sent again from the outbox */
	rd_kafka_purge(r->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(r->producer, 0);
	rd_kafka_topic_destroy(r->producer_rkt);
	r->producer_rkt = NULL;
	rd_kafka_destroy(r->producer);
	r->producer = NULL;
	forget_ticks(r);
	r->published = keep(r->published, NULL);
	r->read_upto = keep(r->read_upto, NULL);
	r->reset_wanted = false;
}

static void
destroy_at_exit(int code, Datum arg)
{
	md_relay_drop_producer((MdRelay *) DatumGetPointer(arg));
}

/*
 * Ask for the topic's partitions now. librdkafka 2.0 asks for an unknown
 * topic's metadata only at its next one-second scan, and holds the first
 * messages back until then. Bounded: with Kafka down this gives up.
 */
static void
learn_topic(rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
	const rd_kafka_metadata_t *metadata;

	if (rd_kafka_metadata(rk, 0, rkt, &metadata, LEARN_TOPIC_TIMEOUT_MS) ==
		RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_metadata_destroy(metadata);
}

static void
create_producer(MdRelay *r)
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
	rd_kafka_conf_set_opaque(conf, r);
	r->producer = md_kafka_new(RD_KAFKA_PRODUCER, conf);
	r->producer_rkt = rd_kafka_topic_new(r->producer, md_kafka_topic, NULL);
	if (r->producer_rkt == NULL)
	{
		rd_kafka_destroy(r->producer);
		r->producer = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not make the Kafka topic handle \"%s\": %s", md_kafka_topic,
						rd_kafka_err2str(rd_kafka_last_error()))));
	}
	learn_topic(r->producer, r->producer_rkt);

	r->producer_identity = keep(r->producer_identity, md_kafka_identity());
	r->producer_topic = keep(r->producer_topic, md_kafka_topic);
}

bool
md_relay_ensure_producer(MdRelay *r)
{
	bool		configured = md_kafka_bootstrap_servers[0] != '\0';

	if (r->producer != NULL &&
		(!configured || r->reset_wanted ||
		 strcmp(r->producer_identity, md_kafka_identity()) != 0 ||
		 strcmp(r->producer_topic, md_kafka_topic) != 0))
		md_relay_drop_producer(r);
	if (configured && r->producer == NULL)
		create_producer(r);
	return r->producer != NULL;
}

/* The recorded snapshot, once per producer: reading starts from it. */
static void
adopt(MdRelay *r)
{
	md_worker_begin("marketdata relay: reading the published snapshot");
	md_spi_run(md_spi_plan(&adopt_plan, ADOPT_SQL, 0, NULL), NULL, NULL,
			   false, 1, SPI_OK_SELECT, "adopting the outbox");
	r->published = keep(r->published, SPI_getvalue(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1));
	md_worker_commit();
	r->read_upto = keep(r->read_upto, r->published);
}

/* Open a new tick after read_upto; false when the ring is full. */
static bool
start_tick(MdRelay *r)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	Tick	   *t;

	if (r->tick_tail - r->tick_head >= MAX_TICKS)
		return false;
	args[0] = CStringGetTextDatum(r->read_upto);
	md_spi_run(md_spi_plan(&tick_plan, TICK_SQL, 1, argtypes), args, NULL,
			   true, 1, SPI_OK_SELECT, "taking a snapshot of the outbox");
	t = &r->ticks[r->tick_tail % MAX_TICKS];
	t->snapshot = keep(t->snapshot, SPI_getvalue(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1));
	t->outstanding = 0;
	t->rows = 0;
	t->read_done = false;
	r->cursor_xact = U64FromFullTransactionId(
		DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 2, &isnull)));
	r->cursor_id = 0;
	r->tick_prev = keep(r->tick_prev, r->read_upto);
	r->read_upto = keep(r->read_upto, t->snapshot);
	r->tick_tail++;
	return true;
}

/*
 * End the newest tick before transaction x: its record becomes the
 * previous snapshot plus the transactions below x, and the next tick takes
 * the rest. A tick is then at most about relay_batch_size rows (one
 * transaction is never split), so a crash sends at most that many again.
 */
static void
end_tick_before(MdRelay *r, Tick *t, uint64 x)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, XID8OID};
	Datum		args[3];

	args[0] = CStringGetTextDatum(r->tick_prev);
	args[1] = CStringGetTextDatum(t->snapshot);
	args[2] = FullTransactionIdGetDatum(FullTransactionIdFromU64(x));
	md_spi_run(md_spi_plan(&through_plan, THROUGH_SQL, 3, argtypes), args, NULL,
			   true, 1, SPI_OK_SELECT, "ending a tick");
	t->snapshot = keep(t->snapshot, SPI_getvalue(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1));
	r->read_upto = keep(r->read_upto, t->snapshot);
	t->read_done = true;
}

/*
 * Hand the newest tick's next rows, in (xact, id) order, to the producer,
 * at most until the window is full; returns how many.
 */
static int
send_tick_rows(MdRelay *r, Tick *t, uint64 seq)
{
	Oid			argtypes[5] = {XID8OID, INT8OID, TEXTOID, TEXTOID, INT4OID};
	Datum		args[5];
	int64		wanted = md_relay_batch_size - r->in_flight;
	rd_kafka_message_t *msgs;
	uint64		last_xact = r->cursor_xact;
	uint64		n;
	uint64		i;
	bool		cut = false;
	bool		isnull;

	if (wanted <= 0)
		return 0;
	args[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(r->cursor_xact));
	args[1] = Int64GetDatum(r->cursor_id);
	args[2] = CStringGetTextDatum(t->snapshot);
	args[3] = CStringGetTextDatum(r->tick_prev);
	args[4] = Int32GetDatum((int32) wanted);
	md_spi_run(md_spi_plan(&rows_plan, ROWS_SQL, 5, argtypes), args, NULL,
			   true, 0, SPI_OK_SELECT, "reading the outbox");
	n = SPI_processed;
	msgs = palloc0(sizeof(rd_kafka_message_t) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		text	   *symbol = DatumGetTextPP(SPI_getbinval(tuple, desc, 3, &isnull));
		text	   *payload = DatumGetTextPP(SPI_getbinval(tuple, desc, 4, &isnull));
		uint64		xact = U64FromFullTransactionId(
			DatumGetFullTransactionId(SPI_getbinval(tuple, desc, 1, &isnull)));

		if (t->rows + (int64) i >= md_relay_batch_size && xact != last_xact)
		{
			cut = true;
			break;
		}
		msgs[i].key = VARDATA_ANY(symbol);
		msgs[i].key_len = VARSIZE_ANY_EXHDR(symbol);
		msgs[i].payload = VARDATA_ANY(payload);
		msgs[i].len = VARSIZE_ANY_EXHDR(payload);
		msgs[i]._private = (void *) (uintptr_t) seq;
		last_xact = xact;
	}
	/* one call for the lot: librdkafka then locks the topic once, not per message */
	if (i > 0)
	{
		HeapTuple	last = SPI_tuptable->vals[i - 1];
		int			queued = rd_kafka_produce_batch(r->producer_rkt, RD_KAFKA_PARTITION_UA,
													RD_KAFKA_MSG_F_COPY, msgs, (int) i);

		t->outstanding += queued;
		t->rows += queued;
		r->in_flight += queued;
		if ((uint64) queued != i)
		{
			uint64		k;

			/*
			 * librdkafka's queue holds the whole window, so this is no
			 * passing "queue full"; and later messages may have been queued
			 * after a refused one. Start again from the record, in order,
			 * as after a fatal error.
			 */
			for (k = 0; k < i; k++)
				if (msgs[k].err != RD_KAFKA_RESP_ERR_NO_ERROR)
				{
					md_worker_set_error(r->slot, rd_kafka_err2str(msgs[k].err));
					break;
				}
			r->reset_wanted = true;
			return 0;
		}
		r->cursor_xact = last_xact;
		r->cursor_id = DatumGetInt64(SPI_getbinval(last, SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (cut)
		end_tick_before(r, t, U64FromFullTransactionId(
			DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
													1, &isnull))));
	else if (n < (uint64) wanted)
		t->read_done = true;
	return (int) i;
}

bool
md_relay_send_pending(MdRelay *r)
{
	bool		started = false;
	Tick	   *t = NULL;

	md_worker_begin("marketdata relay: reading the outbox");
	while (r->in_flight < md_relay_batch_size)
	{
		t = r->tick_tail > r->tick_head ? &r->ticks[(r->tick_tail - 1) % MAX_TICKS] : NULL;
		if (t == NULL || t->read_done)
		{
			if (started)
				break;
			/* a tick that found nothing is dropped: the next one covers it */
			if (t != NULL && t->rows == 0)
				r->tick_tail--;
			if (!start_tick(r))
			{
				t = NULL;
				break;
			}
			started = true;
			t = &r->ticks[(r->tick_tail - 1) % MAX_TICKS];
		}
		if (send_tick_rows(r, t, r->tick_tail - 1) == 0 && !t->read_done)
			break;				/* librdkafka's queue is full */
	}
	md_worker_commit();
	return t != NULL && !t->read_done;
}

int64
md_relay_record_published(MdRelay *r)
{
	const char *done = NULL;
	int64		rows = 0;

	while (r->tick_head < r->tick_tail)
	{
		Tick	   *t = &r->ticks[r->tick_head % MAX_TICKS];

		if (!t->read_done || t->outstanding > 0)
			break;
		if (t->rows > 0)
			done = t->snapshot;
		rows += t->rows;
		r->tick_head++;
	}
	if (done != NULL)
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(done)};

		md_worker_begin("marketdata relay: recording published events");
		md_spi_run(md_spi_plan(&record_plan, RECORD_SQL, 1, argtypes), args, NULL,
				   false, 0, SPI_OK_INSERT, "recording the published snapshot");
		md_worker_commit();
		r->published = keep(r->published, done);
	}
	return rows;
}

int64
md_relay_count_backlog(MdRelay *r)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(r->published)};
	int64		backlog;
	bool		isnull;

	md_worker_begin("marketdata relay: counting the outbox");
	if (SPI_execute_with_args(BACKLOG_SQL, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "marketdata relay: counting the outbox failed");
	backlog = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	md_worker_commit();
	return backlog;
}

void
md_relay_apply_retention(MdRelay *r)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, TEXTOID};
	Datum		args[2];

	args[0] = TimestampTzGetDatum(GetCurrentTimestamp() -
								  (TimestampTz) md_outbox_retention * USECS_PER_SEC);
	args[1] = CStringGetTextDatum(r->published);
	md_worker_begin("marketdata relay: deleting old published events");
	if (SPI_execute_with_args(RETENTION_SQL, 2, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "marketdata relay: outbox retention failed");
	md_spi_run(md_spi_plan(&progress_plan, PROGRESS_RETENTION_SQL, 0, NULL), NULL, NULL,
			   false, 0, SPI_OK_DELETE, "outbox progress retention");
	md_worker_commit();
}

MdRelay *
md_relay_create(MdWorkerSlot *slot)
{
	MdRelay    *r = MemoryContextAllocZero(TopMemoryContext, sizeof(MdRelay));

	r->slot = slot;
	on_proc_exit(destroy_at_exit, PointerGetDatum(r));
	return r;
}

void
md_relay_adopt(MdRelay *r)
{
	if (r->published == NULL)
		adopt(r);
}

void
md_relay_poll(MdRelay *r, int timeout_ms)
{
	rd_kafka_poll(r->producer, timeout_ms);
}

int64
md_relay_take_delivered(MdRelay *r)
{
	int64		n = r->delivered;

	r->delivered = 0;
	return n;
}

int64
md_relay_in_flight(MdRelay *r)
{
	return r->in_flight;
}
