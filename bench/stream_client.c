/*
 * bench/stream_client.c
 *	N SSE clients of GET /prices/stream for bench/stream.sh, on one
 *	libcurl multi handle: client i follows symbols S{(10i + j) mod M},
 *	j = 0..9, so each of the M symbols has 10N/M followers.
 *
 *	stream_client URL KEY CLIENTS SYMBOLS SECONDS LATEST_FILE
 *
 * Latency of an event is its receipt time minus its market time, which
 * the load (bench/stream_ingest.sql) sets to clock_timestamp() just
 * before its commit: so it is commit-to-receipt plus the commit itself.
 * After SECONDS the clients stop reading; then LATEST_FILE (one
 * "symbol timestamp" line per symbol, the database's latest) is compared
 * with the newest price each client saw of each of its symbols.
 * LATEST_FILE "-": a burst, no check; the clients stop once no event came
 * for 3 s. Prints: clients connected, events, events/s from the first
 * event to the last, p50/p99/max latency (ms), and the clients missing a
 * newest price.
 */

#define _GNU_SOURCE		/* strptime, timegm */

#include <curl/curl.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PER_CLIENT	10
#define HIST_MAX	100000		/* 0.1 ms buckets: 10 s */

struct client {
	CURL		*easy;
	char		*buf;
	size_t		 len, cap;
	char		 symbols[PER_CLIENT][16];
	char		 newest[PER_CLIENT][40];	/* market time text */
	int		 status;
};

static unsigned long	 hist[HIST_MAX + 1];
static unsigned long	 events;
static double		 first_event, last_event;

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* 2026-11-20T15:30:00.123456Z in seconds */
static double
iso_s(const char *s)
{
	struct tm	 tm;
	char		*p;
	double		 t;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return (-1);
	t = (double)timegm(&tm);
	if (*p == '.')
		t += strtod(p, NULL);
	return (t);
}

static void
event(struct client *c, char *block)
{
	char		*data, *nl;
	json_t		*root;
	json_error_t	 err;
	const char	*sym, *ts;
	double		 lat;
	long		 b;
	int		 j;

	if (strncmp(block, "id: ", 4) != 0 || (data = strstr(block, "\ndata: ")) == NULL)
		return;
	data += 7;
	if ((nl = strchr(data, '\n')) != NULL)
		*nl = '\0';
	if ((root = json_loads(data, 0, &err)) == NULL)
		return;
	sym = json_string_value(json_object_get(root, "symbol"));
	ts = json_string_value(json_object_get(root, "timestamp"));
	if (sym != NULL && ts != NULL) {
		last_event = now_s();
		if (first_event == 0)
			first_event = last_event;
		lat = last_event - iso_s(ts);
		b = (long)(lat * 10000);
		hist[b < 0 ? 0 : b > HIST_MAX ? HIST_MAX : b]++;
		events++;
		for (j = 0; j < PER_CLIENT; j++) {
			if (!strcmp(c->symbols[j], sym))
				snprintf(c->newest[j], sizeof(c->newest[j]), "%s", ts);
		}
	}
	json_decref(root);
}

static size_t
on_data(char *ptr, size_t size, size_t n, void *arg)
{
	struct client	*c = arg;
	size_t		 len = size * n, off;
	char		*end;

	if (c->len + len + 1 > c->cap) {
		c->cap = (c->len + len + 1) * 2;
		c->buf = realloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, ptr, len);
	c->len += len;
	c->buf[c->len] = '\0';
	off = 0;
	while ((end = strstr(c->buf + off, "\n\n")) != NULL) {
		*end = '\0';
		event(c, c->buf + off);
		off = end + 2 - c->buf;
	}
	memmove(c->buf, c->buf + off, c->len - off + 1);
	c->len -= off;
	return (len);
}

static double
percentile(double q)
{
	unsigned long	seen = 0, want = (unsigned long)(events * q);
	long		i;

	for (i = 0; i <= HIST_MAX; i++) {
		seen += hist[i];
		if (seen > want)
			return (i / 10.0);
	}
	return (HIST_MAX / 10.0);
}

int
main(int argc, char **argv)
{
	CURLM		*multi;
	struct client	*clients;
	struct curl_slist *hdrs = NULL;
	char		 url[2048], hdr[128], line[128], sym[64], ts[64];
	int		 n, nsym, secs, i, j, running, connected = 0, missing = 0;
	double		 start, first;
	FILE		*fp;

	if (argc != 7) {
		fprintf(stderr, "usage: stream_client URL KEY CLIENTS SYMBOLS SECONDS LATEST_FILE\n");
		return (2);
	}
	n = atoi(argv[3]);
	nsym = atoi(argv[4]);
	secs = atoi(argv[5]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
	snprintf(hdr, sizeof(hdr), "X-API-Key: %s", argv[2]);
	hdrs = curl_slist_append(hdrs, hdr);
	clients = calloc(n, sizeof(*clients));
	for (i = 0; i < n; i++) {
		struct client	*c = &clients[i];
		int		 off;

		off = snprintf(url, sizeof(url), "%s/prices/stream?symbols=", argv[1]);
		for (j = 0; j < PER_CLIENT; j++) {
			snprintf(c->symbols[j], sizeof(c->symbols[j]), "S%d",
			    (i * PER_CLIENT + j) % nsym + 1);
			off += snprintf(url + off, sizeof(url) - off, "%s%s",
			    j ? "," : "", c->symbols[j]);
		}
		c->easy = curl_easy_init();
		curl_easy_setopt(c->easy, CURLOPT_URL, url);
		curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
		curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
		curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L);
		curl_multi_add_handle(multi, c->easy);
	}
	start = now_s();
	first = 0;
	do {
		curl_multi_perform(multi, &running);
		curl_multi_poll(multi, NULL, 0, 100, NULL);
		if (connected < n) {
			connected = 0;
			for (i = 0; i < n; i++) {
				long	code = 0;

				curl_easy_getinfo(clients[i].easy, CURLINFO_RESPONSE_CODE, &code);
				connected += (code == 200);
			}
			if (connected == n && first == 0) {
				first = now_s();
				fprintf(stderr, "stream_client: %d connected in %.1f s\n", n, first - start);
			}
		}
		if (!strcmp(argv[6], "-") && events > 0 &&
		    now_s() - last_event > 3)
			break;
	} while (running > 0 && now_s() - start < secs);

	if (strcmp(argv[6], "-") && (fp = fopen(argv[6], "r")) != NULL) {
		while (fgets(line, sizeof(line), fp) != NULL) {
			if (sscanf(line, "%63s %63s", sym, ts) != 2)
				continue;
			for (i = 0; i < n; i++)
				for (j = 0; j < PER_CLIENT; j++)
					if (!strcmp(clients[i].symbols[j], sym) &&
					    strcmp(clients[i].newest[j], ts))
						missing++;
		}
		fclose(fp);
	} else {
		missing = -1;
	}
	printf("clients %d connected %d events %lu rate %.0f p50 %.1f p99 %.1f max %.1f missing %d\n",
	    n, connected, events, last_event > first_event ?
	    events / (last_event - first_event) : 0.0,
	    percentile(0.50), percentile(0.99), percentile(0.999999), missing);
	return (0);
}
