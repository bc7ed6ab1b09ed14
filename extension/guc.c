/*-------------------------------------------------------------------------
 *
 * extension/guc.c
 *	  Every marketdata.* setting, defined in one place.
 *
 * Each setting is described in docs/configuration.md. Settings that change
 * what is stored for everybody are superuser-only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "bars.h"
#include "guc.h"

static char *average_windows_string = NULL;
static char *bar_intervals_string = NULL;

int			md_average_window_count = 1;
int			md_average_windows[MD_MAX_AVERAGE_WINDOWS] = {5};
int			md_max_future_skew = 60;
char	   *md_databases = NULL;
int			md_job_run_retention = 7 * 86400;
int			md_raw_response_retention = 7 * 86400;
int			md_raw_response_bodies = MD_BODIES_ALL;
int			md_raw_response_error_retention = 30 * 86400;
int			md_dead_letter_retention = 30 * 86400;
int			md_price_retention = 0;
int			md_bar_retention = 0;
int			md_kafka_gap_retention = 90 * 86400;
int			md_retention_batch_size = 10000;
int			md_backfill_share = 50;
int			md_backfill_max_retries = 10;
int			md_retention_interval = 60;
int			md_scheduler_workers = 1;
char	   *md_kafka_bootstrap_servers = NULL;
char	   *md_kafka_topic = NULL;
char	   *md_kafka_config_file = NULL;
int			md_outbox_retention = 3600;
int			md_relay_batch_size = 10000;
int			md_consumer_batch_size = 20000;
int			md_consumer_batch_ms = 100;
int			md_consumer_max_message_size = 65536;
char	   *md_redis_url = NULL;
int			md_redis_ttl = 300;
int			md_redis_timeout = 100;
int			md_http_timeout = 10000;
int			md_http_connect_timeout = 3000;
int			md_http_max_response_size = 1024 * 1024;
bool		md_allow_private_provider_urls = false;
char	   *md_secrets_file = NULL;
int			md_circuit_breaker_failures = 5;
int			md_circuit_breaker_cooldown = 30;
int			md_polygon_endpoint = MD_POLYGON_PREV;

static const struct config_enum_entry raw_response_bodies_options[] = {
	{"all", MD_BODIES_ALL, false},
	{"errors", MD_BODIES_ERRORS, false},
	{NULL, 0, false}
};

static const struct config_enum_entry polygon_endpoint_options[] = {
	{"prev", MD_POLYGON_PREV, false},
	{"last_trade", MD_POLYGON_LAST_TRADE, false},
	{NULL, 0, false}
};

typedef struct WindowList
{
	int			count;
	int			windows[MD_MAX_AVERAGE_WINDOWS];
} WindowList;

/*
 * Parse "5, 20,50" into a sorted list without duplicates; false with a
 * detail message when the text is not such a list.
 */
static bool
parse_window_list(const char *text, WindowList *list)
{
	const char *p = text;

	list->count = 0;
	while (*p)
	{
		char	   *end;
		long		value;
		int			i;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		errno = 0;
		value = strtol(p, &end, 10);
		if (end == p || errno != 0 || value < 1 || value > MD_MAX_WINDOW)
		{
			GUC_check_errdetail("Each window must be an integer from 1 to %d.",
								MD_MAX_WINDOW);
			return false;
		}
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == ',')
			p++;
		else if (*p != '\0')
		{
			GUC_check_errdetail("Windows are separated by commas.");
			return false;
		}
		for (i = 0; i < list->count && list->windows[i] != value; i++)
			;
		if (i < list->count)
			continue;
		if (list->count == MD_MAX_AVERAGE_WINDOWS)
		{
			GUC_check_errdetail("At most %d windows.", MD_MAX_AVERAGE_WINDOWS);
			return false;
		}
		/* insertion keeps the list sorted */
		for (i = list->count; i > 0 && list->windows[i - 1] > value; i--)
			list->windows[i] = list->windows[i - 1];
		list->windows[i] = (int) value;
		list->count++;
	}
	if (list->count == 0)
	{
		GUC_check_errdetail("At least one window is needed.");
		return false;
	}
	return true;
}

static bool
check_average_windows(char **newval, void **extra, GucSource source)
{
	/* GUC "extra" data is released by the GUC machinery with free() */
	WindowList *list = malloc(sizeof(WindowList));

	if (list == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		return false;
	}
	if (!parse_window_list(*newval, list))
	{
		free(list);
		return false;
	}
	*extra = list;
	return true;
}

static void
assign_average_windows(const char *newval, void *extra)
{
	WindowList *list = (WindowList *) extra;

	md_average_window_count = list->count;
	memcpy(md_average_windows, list->windows, sizeof(int) * list->count);
}

static bool
check_bar_intervals(char **newval, void **extra, GucSource source)
{
	/* GUC "extra" data is released by the GUC machinery with free() */
	MdBarLevels *levels = malloc(sizeof(MdBarLevels));

	if (levels == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		return false;
	}
	if (!md_bar_levels_parse(*newval, levels))
	{
		free(levels);
		return false;
	}
	*extra = levels;
	return true;
}

static void
assign_bar_intervals(const char *newval, void *extra)
{
	md_bar_levels = *(MdBarLevels *) extra;
}

void
md_define_gucs(void)
{
	DefineCustomStringVariable("marketdata.bar_intervals",
							   "Bar intervals the sink keeps in md.bars.",
							   "A comma-separated list of intervals, each a time (1 minute), whole days (1 day) or whole months (1 month); empty keeps no bars.",
							   &bar_intervals_string,
							   "1 minute, 1 hour, 1 day",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   check_bar_intervals,
							   assign_bar_intervals,
							   NULL);

	DefineCustomStringVariable("marketdata.average_windows",
							   "Moving-average windows kept in md.symbol_averages.",
							   "A comma-separated list of point counts, each from 1 to 1000.",
							   &average_windows_string,
							   "5",
							   PGC_SUSET,
							   0,
							   check_average_windows,
							   assign_average_windows,
							   NULL);

	DefineCustomIntVariable("marketdata.max_future_skew",
							"How far in the future a price's timestamp may be.",
							"Prices stamped later than now plus this are refused.",
							&md_max_future_skew,
							60,
							0,
							86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	DefineCustomStringVariable("marketdata.databases",
							   "Databases in which the marketdata workers run.",
							   "A comma-separated list; the launcher starts the workers in each.",
							   &md_databases,
							   "postgres",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.raw_response_retention",
							"How long md.raw_responses keeps successful responses.",
							"0 keeps them for ever.",
							&md_raw_response_retention,
							7 * 86400,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.raw_response_error_retention",
							"How long md.raw_responses keeps failed responses (those with an error class).",
							"0: as long as successful ones.",
							&md_raw_response_error_retention,
							30 * 86400,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.dead_letter_retention",
							"How long md.dead_letters keeps a dead letter.",
							"0 keeps them for ever.",
							&md_dead_letter_retention,
							30 * 86400,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.price_retention",
							"How long md.prices keeps a month after it ended (whole partitions are dropped).",
							"0 keeps prices for ever.",
							&md_price_retention,
							0,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.bar_retention",
							"How long md.bars keeps a month after it ended (whole partitions are dropped).",
							"0 keeps bars for ever.",
							&md_bar_retention,
							0,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.kafka_gap_retention",
							"How long md.kafka_gaps keeps a recorded gap.",
							"0 keeps them for ever.",
							&md_kafka_gap_retention,
							90 * 86400,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.backfill_share",
							"Percent of each provider's request budget that backfill jobs may use.",
							"The rest is left to live polling, which keeps priority.",
							&md_backfill_share,
							50,
							1,
							100,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.backfill_max_retries",
							"Rate-limited or unavailable answers in a row after which a backfill job fails.",
							"The request is sent again after 5 s, doubling to 5 min; 0: never give up.",
							&md_backfill_max_retries,
							10,
							0,
							1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.retention_batch_size",
							"Rows per table that one retention step deletes, in one transaction.",
							NULL,
							&md_retention_batch_size,
							10000,
							1,
							1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.retention_interval",
							"Pause of the retention worker between two runs.",
							NULL,
							&md_retention_interval,
							60,
							1,
							86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.job_run_retention",
							"How long md.job_runs keeps finished runs.",
							"0 keeps them for ever.",
							&md_job_run_retention,
							7 * 86400,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.scheduler_workers",
							"Scheduler processes per database.",
							"Each claims a share of the due jobs; providers' rate limits and concurrency are shared among them.",
							&md_scheduler_workers,
							1,
							1,
							MD_MAX_SCHEDULER_WORKERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("marketdata.kafka_bootstrap_servers",
							   "Kafka brokers the relay publishes to and the consumer reads from.",
							   "host:port,...; empty means Kafka is not used and no outbox rows are written.",
							   &md_kafka_bootstrap_servers,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("marketdata.kafka_config_file",
							   "File of librdkafka properties for every Kafka client of marketdata.",
							   "Lines \"name = value\" (TLS, SASL, ...); the file must not be readable by group or others.",
							   &md_kafka_config_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("marketdata.kafka_topic",
							   "Kafka topic of the price events the relay publishes.",
							   NULL,
							   &md_kafka_topic,
							   "price-events",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.outbox_retention",
							"How long published outbox rows are kept.",
							NULL,
							&md_outbox_retention,
							3600,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.relay_batch_size",
							"Most outbox rows the relay has in flight to Kafka.",
							NULL,
							&md_relay_batch_size,
							10000,
							1,
							100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.consumer_batch_size",
							"Most Kafka messages the consumer stores in one transaction.",
							NULL,
							&md_consumer_batch_size,
							20000,
							1,
							100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.consumer_batch_ms",
							"Longest time the consumer waits to fill a batch.",
							"A batch is stored when it is full or this long after its first message.",
							&md_consumer_batch_ms,
							100,
							1,
							10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.consumer_max_message_size",
							"Largest Kafka message the consumer tries to decode.",
							"A larger message becomes a dead letter, kept whole with the reason.",
							&md_consumer_max_message_size,
							65536,
							64,
							INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("marketdata.redis_url",
							   "Redis that new prices are written through to.",
							   "redis://host:port[/db]; empty means no cache writes.",
							   &md_redis_url,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.redis_ttl",
							"Time to live of the cached prices written to Redis.",
							NULL,
							&md_redis_ttl,
							300,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("marketdata.redis_timeout",
							"Longest wait for Redis when writing through.",
							"A slow or absent Redis costs a commit at most this, then is skipped with a growing back-off.",
							&md_redis_timeout,
							100,
							1,
							10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("marketdata.http_timeout",
							"Longest time one provider request may take.",
							"Connecting, sending and receiving the whole body; past it the request fails as unavailable.",
							&md_http_timeout,
							10000,
							100,
							600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("marketdata.http_connect_timeout",
							"Longest time to connect to a provider.",
							NULL,
							&md_http_connect_timeout,
							3000,
							100,
							600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("marketdata.http_max_response_size",
							"Largest provider response body read.",
							"A longer body fails the request as malformed; its first bytes are kept in md.raw_responses.",
							&md_http_max_response_size,
							1024 * 1024,
							1024,
							64 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL,
							NULL,
							NULL);

	DefineCustomBoolVariable("marketdata.allow_private_provider_urls",
							 "Lets providers be reached at loopback, link-local and private addresses.",
							 "Off: a provider base_url whose host is or resolves to such an address fails as unavailable without a connection, so a changed base_url cannot send our provider keys, or requests, into the internal network. Tests against a local fake provider turn it on.",
							 &md_allow_private_provider_urls,
							 false,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomStringVariable("marketdata.secrets_file",
							   "File holding provider API keys, one \"provider = key\" per line.",
							   "Must not be readable by group or others. Environment variables MARKETDATA_<PROVIDER>_KEY take precedence.",
							   &md_secrets_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomIntVariable("marketdata.circuit_breaker_failures",
							"Consecutive failures after which a provider is skipped for a cool-down.",
							"Failures are unavailable and malformed answers; 0 turns the circuit breaker off.",
							&md_circuit_breaker_failures,
							5,
							0,
							1000,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("marketdata.circuit_breaker_cooldown",
							"How long a provider whose circuit breaker opened is skipped.",
							"After it, one request is let through; success closes the breaker, failure opens it again.",
							&md_circuit_breaker_cooldown,
							30,
							1,
							86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	DefineCustomEnumVariable("marketdata.raw_response_bodies",
							 "Which provider responses keep their body in md.raw_responses.",
							 "all: every response; errors: only responses with an error class, "
							 "successes keep their metadata (status, latency, size, SHA-256).",
							 &md_raw_response_bodies,
							 MD_BODIES_ALL,
							 raw_response_bodies_options,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomEnumVariable("marketdata.polygon_endpoint",
							 "Which Polygon.io endpoint gives the latest price.",
							 "prev: previous day's close (every plan); last_trade: the last trade (paid plans).",
							 &md_polygon_endpoint,
							 MD_POLYGON_PREV,
							 polygon_endpoint_options,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	MarkGUCPrefixReserved("marketdata");
}
