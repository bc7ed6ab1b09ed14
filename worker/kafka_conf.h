/*-------------------------------------------------------------------------
 *
 * worker/kafka_conf.h
 *	  The librdkafka set-up the relay and the consumer share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_KAFKA_CONF_H
#define MD_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>

/*
 * A configuration for marketdata.kafka_bootstrap_servers with the
 * properties of marketdata.kafka_config_file (TLS, SASL...), then our
 * client id, short reconnect back-off, and logs queued for rd_kafka_poll()
 * in our own thread (never elog on a librdkafka thread).
 */
extern rd_kafka_conf_t *md_kafka_conf_new(const char *client_id);

/* what a client was made for: a change means making it anew (palloc'd) */
extern char *md_kafka_identity(void);

/* set one property; a bad one frees conf and raises an error */
extern void md_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value);

/* the handle for conf (consumed), its logs routed to its main queue */
extern rd_kafka_t *md_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf);

/* the same, NULL with errstr set (and conf destroyed) where that ERRORs */
extern rd_kafka_t *md_kafka_try_new(rd_kafka_type_t type, rd_kafka_conf_t *conf,
									char *errstr, size_t errstr_size);

#endif							/* MD_KAFKA_CONF_H */
