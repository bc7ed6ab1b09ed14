/*-------------------------------------------------------------------------
 *
 * worker/kafka_conf.c
 *	  The librdkafka set-up the relay and the consumer share.
 *
 * librdkafka runs threads of its own. Its logs are queued (log.queue) and
 * served by rd_kafka_poll() or the consumer queue in the worker's thread,
 * so on_log may call elog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "guc.h"
#include "secrets.h"
#include "kafka_conf.h"

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* syslog levels: errors and worse are worth a line, the rest is debug */
	elog(level <= 3 ? LOG : DEBUG1, "%s: kafka %s: %s", rd_kafka_name(rk), fac, buf);
}

void
md_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[256];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka setting %s: %s", name, errstr)));
	}
}

/* one property of marketdata.kafka_config_file; its value may be a secret */
static void
set_from_file(const char *name, const char *value, void *arg)
{
	rd_kafka_conf_t *conf = arg;
	char		errstr[256];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka setting %s in \"%s\"", name, md_kafka_config_file),
				 errdetail("librdkafka: %s", md_mask_secret(errstr, value)),
				 errhint("Check marketdata.kafka_config_file.")));
	}
}

char *
md_kafka_identity(void)
{
	return psprintf("%s\n%s", md_kafka_bootstrap_servers, md_kafka_config_file);
}

rd_kafka_conf_t *
md_kafka_conf_new(const char *client_id)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	/* first, so that the settings below, which we rely on, win */
	if (md_kafka_config_file[0] != '\0')
		md_secrets_file_read(md_kafka_config_file, "marketdata.kafka_config_file",
							 set_from_file, conf);
	md_kafka_conf_set(conf, "bootstrap.servers", md_kafka_bootstrap_servers);
	md_kafka_conf_set(conf, "client.id", client_id);
	md_kafka_conf_set(conf, "reconnect.backoff.ms", "100");
	md_kafka_conf_set(conf, "reconnect.backoff.max.ms", "2000");
	md_kafka_conf_set(conf, "log.queue", "true");
	rd_kafka_conf_set_log_cb(conf, on_log);
	return conf;
}

rd_kafka_t *
md_kafka_try_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
				 size_t errstr_size)
{
	rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, errstr_size);

	if (rk == NULL)
	{
		/* rd_kafka_new takes conf over only when it succeeds */
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_set_log_queue(rk, NULL);
	return rk;
}

rd_kafka_t *
md_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
	char		errstr[512];
	rd_kafka_t *rk = md_kafka_try_new(type, conf, errstr, sizeof(errstr));

	if (rk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not create the Kafka %s: %s",
						type == RD_KAFKA_PRODUCER ? "producer" : "consumer", errstr)));
	return rk;
}
