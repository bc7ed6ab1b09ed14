/*-------------------------------------------------------------------------
 *
 * extension/guc.h
 *	  The marketdata.* settings; all defined in guc.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_GUC_H
#define MD_GUC_H

#define MD_MAX_AVERAGE_WINDOWS 16
#define MD_MAX_WINDOW 1000
/* scheduler processes per database (marketdata.scheduler_workers) */
#define MD_MAX_SCHEDULER_WORKERS 8

/* parsed marketdata.average_windows */
extern int	md_average_window_count;
extern int	md_average_windows[MD_MAX_AVERAGE_WINDOWS];

extern int	md_max_future_skew;

/* workers */
extern char *md_databases;
extern int	md_job_run_retention;
/* retention (worker/retention.c, md._retention_step): seconds, 0 = for ever */
/* marketdata.raw_response_bodies: which responses keep their body */
#define MD_BODIES_ALL		0
#define MD_BODIES_ERRORS	1
extern int	md_raw_response_bodies;
extern int	md_raw_response_retention;
extern int	md_raw_response_error_retention;
extern int	md_dead_letter_retention;
extern int	md_price_retention;
extern int	md_bar_retention;
extern int	md_kafka_gap_retention;
extern int	md_retention_batch_size;
extern int	md_backfill_share;
extern int	md_backfill_max_retries;
extern int	md_retention_interval;
extern int	md_scheduler_workers;

/* Kafka: an empty bootstrap list means Kafka is not used */
extern char *md_kafka_bootstrap_servers;
extern char *md_kafka_topic;
extern char *md_kafka_config_file;
extern int	md_outbox_retention;
extern int	md_relay_batch_size;
extern int	md_consumer_batch_size;
extern int	md_consumer_batch_ms;
extern int	md_consumer_max_message_size;

/* Redis write-through: an empty URL means no cache writes */
extern char *md_redis_url;
extern int	md_redis_ttl;
extern int	md_redis_timeout;

/* providers over HTTP (http.c, fetch.c) */
extern int	md_http_timeout;	/* ms */
extern int	md_http_connect_timeout;	/* ms */
extern int	md_http_max_response_size;	/* bytes */
extern bool md_allow_private_provider_urls;
extern char *md_secrets_file;
extern int	md_circuit_breaker_failures;
extern int	md_circuit_breaker_cooldown;	/* s */

typedef enum MdPolygonEndpoint
{
	MD_POLYGON_PREV,			/* /v2/aggs/ticker/T/prev: previous close */
	MD_POLYGON_LAST_TRADE		/* /v2/last/trade/T: last trade (paid plans) */
} MdPolygonEndpoint;
extern int	md_polygon_endpoint;

extern void md_define_gucs(void);

#endif							/* MD_GUC_H */
