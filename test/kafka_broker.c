/*
 * test/kafka_broker.c
 *	A Kafka test broker: librdkafka's mock cluster on loopback.
 *
 * There is no Kafka broker package on Debian 12; the mock cluster speaks the
 * real Kafka protocol (produce, fetch, consumer groups, idempotence), so our
 * workers and kcat talk to it as to a real cluster.
 *
 *	kafka_broker [-b brokers] [-p partitions] [-f bootstrap-file] topic...
 *
 * Creates each topic, prints "BOOTSTRAP=host:port,..." on stdout (and into
 * the file, when given, for scripts that start it in the background), then
 * runs until SIGTERM or SIGINT. A broker outage is simulated without losing
 * the log or the ports: SIGUSR1 takes every broker down (connections are
 * dropped and refused), SIGUSR2 brings them back.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop = 0;
static volatile sig_atomic_t want_down = 0;
static volatile sig_atomic_t want_up = 0;

static void
on_stop(int sig)
{
	(void) sig;
	stop = 1;
}

static void
on_down(int sig)
{
	(void) sig;
	want_down = 1;
}

static void
on_up(int sig)
{
	(void) sig;
	want_up = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: kafka_broker [-b brokers] [-p partitions] [-f file] topic...\n");
	exit(2);
}

static void
write_bootstrap(const char *path, const char *bootstraps)
{
	char		tmp[4096];
	FILE	   *f;

	/* write then rename, so a reader never sees half a line */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%s\n", bootstraps) < 0 || fclose(f) != 0 ||
		rename(tmp, path) != 0)
	{
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	int			brokers = 1;
	int			partitions = 4;
	const char *file = NULL;
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mcluster;
	const char *bootstraps;
	int			opt;
	int			i;

	while ((opt = getopt(argc, argv, "b:p:f:")) != -1)
	{
		switch (opt)
		{
			case 'b':
				brokers = atoi(optarg);
				break;
			case 'p':
				partitions = atoi(optarg);
				break;
			case 'f':
				file = optarg;
				break;
			default:
				usage();
		}
	}
	if (brokers < 1 || partitions < 1)
		usage();

	conf = rd_kafka_conf_new();
	/* the handle only hosts the cluster; keep it quiet */
	if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		fprintf(stderr, "kafka_broker: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "kafka_broker: %s\n", errstr);
		return 1;
	}
	mcluster = rd_kafka_mock_cluster_new(rk, brokers);
	if (mcluster == NULL)
	{
		fprintf(stderr, "kafka_broker: could not create the mock cluster\n");
		return 1;
	}
	for (i = optind; i < argc; i++)
	{
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster, argv[i],
															 partitions, 1);

		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			fprintf(stderr, "kafka_broker: topic %s: %s\n", argv[i], rd_kafka_err2str(err));
			return 1;
		}
	}

	bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
	if (file != NULL)
		write_bootstrap(file, bootstraps);
	printf("BOOTSTRAP=%s\n", bootstraps);
	fflush(stdout);

	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	signal(SIGUSR1, on_down);
	signal(SIGUSR2, on_up);
	while (!stop)
	{
		if (want_down)
		{
			want_down = 0;
			rd_kafka_mock_broker_set_down(mcluster, -1);
			fprintf(stderr, "kafka_broker: brokers down\n");
		}
		if (want_up)
		{
			want_up = 0;
			rd_kafka_mock_broker_set_up(mcluster, -1);
			fprintf(stderr, "kafka_broker: brokers up\n");
		}
		usleep(50 * 1000);
	}

	rd_kafka_mock_cluster_destroy(mcluster);
	rd_kafka_destroy(rk);
	return 0;
}
