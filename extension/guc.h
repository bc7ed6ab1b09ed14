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

/* parsed marketdata.average_windows */
extern int	md_average_window_count;
extern int	md_average_windows[MD_MAX_AVERAGE_WINDOWS];

extern int	md_max_future_skew;

/* workers */
extern char *md_databases;

/* Kafka: an empty bootstrap list means Kafka is not used */
extern char *md_kafka_bootstrap_servers;
extern char *md_kafka_topic;
extern int	md_outbox_retention;
extern int	md_relay_batch_size;
extern int	md_consumer_batch_size;
extern int	md_consumer_batch_ms;
extern int	md_consumer_max_message_size;

/* Redis write-through: an empty URL means no cache writes */
extern char *md_redis_url;
extern int	md_redis_ttl;
extern int	md_redis_timeout;

extern void md_define_gucs(void);

#endif							/* MD_GUC_H */
