/*
 * test/fake_provider/fake_provider.c
 *	  A local stand-in for Yahoo Finance, Alpha Vantage, Finnhub and Polygon.
 *
 * It answers on 127.0.0.1 the same paths as the real providers, in their
 * formats, from fixture files, and misbehaves on request. Built on
 * libmicrohttpd's poll loop in one thread: a request that must wait
 * (injected latency, SLOW, HANG) is suspended and a timer thread resumes
 * it when its time comes, so waits never hold up other requests. A thread
 * per connection, as before, cost the benchmarks' 2 shared cores a
 * sleeping thread's wake-ups for every request. Not libmicrohttpd's epoll
 * loop (0.9.75): with 128 or more connections busy it sometimes stopped
 * reading requests that had arrived (all connections with unread data,
 * its thread asleep in epoll_wait) until the clients timed out, 10 s.
 * Not MHD_USE_TURBO either: no help with that, and "experimental".
 *
 *	fake_provider --fixtures DIR [--port N] [--latency-ms N] [--key KEY]
 *		[--redirect-to URL]
 *
 * Prints "PORT <n>" on stdout once listening (port 0 picks a free one) and
 * runs until SIGTERM or SIGINT.
 *
 * Routes (the provider's own paths):
 *	/v8/finance/chart/SYM			yahoo
 *	/query?function=GLOBAL_QUOTE&symbol=SYM&apikey=K	alphavantage
 *	/api/v1/quote?symbol=SYM (X-Finnhub-Token or token=)	finnhub
 *	/v2/aggs/ticker/SYM/prev (Authorization: Bearer or apiKey=)	polygon
 *	/v2/last/trade/SYM		polygon_last
 * and their history endpoints, from DIR/<provider>_history (alphavantage_daily,
 * alphavantage_intraday) with the provider's own errors as fallback:
 *	/v8/finance/chart/SYM?period1=...	yahoo_history
 *	/query?function=TIME_SERIES_DAILY|WEEKLY|MONTHLY	alphavantage_daily
 *	/query?function=TIME_SERIES_INTRADAY	alphavantage_intraday
 *	/api/v1/stock/candle?symbol=SYM		finnhub_history
 *	/v2/aggs/ticker/SYM/range/...	polygon_history; with cursor=C the
 *				fixture SYM@C (a next page)
 *	/_count					provider requests served so far
 *
 * What a symbol gets, first match wins:
 *	HANG*		no answer until the client gives up (or we stop)
 *	RESET*		the connection is reset (TCP RST) without an answer
 *	TRUNC*		a success body cut in half (Content-Length says more);
 *				for history, TRUNC<SYM> is <SYM>'s fixture cut
 *	HUGE*		a 3 MB JSON body
 *	DOWN*		503 with an HTML page
 *	GARBAGE*	200 "application/json" that is HTML
 *	RETRY*		the provider's rate-limit answer plus Retry-After: 7
 *	SLOW*		a synthetic success after 1.5 s
 *	SYN*		a synthetic success: price from the symbol, time now
 *	ECHOKEY		an error echoing the key it was sent (for masking tests)
 *	ECHOBIN		the same in a body that is not UTF-8 (stored hex-encoded)
 *	REDIRECT*	302 to the same path and query at --redirect-to URL
 *				(default http://127.0.0.1:1)
 *	a fixture	DIR/<provider>/<SYM>.<status>.<json|txt>
 *	otherwise	DIR/<provider>/_unknown.<status>.<ext>: the provider's
 *				answer for an unknown symbol
 * With --key, a request without the key gets _nokey.*, a wrong key
 * _badkey.* (where the provider has such an answer).
 * --latency-ms delays every provider answer.
 */
#define _GNU_SOURCE
#include <glob.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *fixtures = NULL;
static const char *api_key = NULL;
static const char *redirect_to = "http://127.0.0.1:1";
static int	latency_ms = 0;
static atomic_long requests_served = 0;

/* HANG: this long without an answer, unless we stop first */
#define HANG_MS 60000

/*
 * Requests waiting for their answer, suspended, in order of due time.
 * Handlers add (in libmicrohttpd's thread), the timer thread resumes;
 * stopping is read and set under the lock so that nothing is suspended
 * once main has resumed everything to stop (libmicrohttpd refuses to stop
 * with suspended connections).
 */
typedef struct Waiting
{
	struct MHD_Connection *conn;
	struct timespec due;		/* CLOCK_MONOTONIC */
	struct Waiting *next;
} Waiting;

static pthread_mutex_t waiting_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t waiting_changed;
static Waiting *waiting_head = NULL;
static Waiting *waiting_tail = NULL;
static bool stopping = false;

/* handler states (*state): the request is read; it waited its time */
static int	state_read;
static int	state_waited;

static bool
before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * Suspend conn for ms milliseconds; false when we are stopping (answer
 * now). Due times mostly come in order (one latency for all), so the
 * common insert is at the tail.
 */
static bool
wait_then_answer(struct MHD_Connection *conn, int ms)
{
	Waiting    *w = malloc(sizeof(Waiting));
	Waiting   **at;

	clock_gettime(CLOCK_MONOTONIC, &w->due);
	w->due.tv_sec += ms / 1000;
	w->due.tv_nsec += (long) (ms % 1000) * 1000000L;
	if (w->due.tv_nsec >= 1000000000L)
	{
		w->due.tv_sec++;
		w->due.tv_nsec -= 1000000000L;
	}
	w->conn = conn;
	w->next = NULL;
	pthread_mutex_lock(&waiting_lock);
	if (stopping)
	{
		pthread_mutex_unlock(&waiting_lock);
		free(w);
		return false;
	}
	MHD_suspend_connection(conn);
	if (waiting_tail == NULL || !before(&w->due, &waiting_tail->due))
	{
		if (waiting_tail != NULL)
			waiting_tail->next = w;
		else
			waiting_head = w;
		waiting_tail = w;
	}
	else
	{
		for (at = &waiting_head; !before(&w->due, &(*at)->due); at = &(*at)->next)
			;
		w->next = *at;
		*at = w;
	}
	if (waiting_head == w)
		pthread_cond_signal(&waiting_changed);
	pthread_mutex_unlock(&waiting_lock);
	return true;
}

/* resume the first waiting request; called with the lock held */
static void
resume_first(void)
{
	Waiting    *w = waiting_head;

	waiting_head = w->next;
	if (waiting_head == NULL)
		waiting_tail = NULL;
	MHD_resume_connection(w->conn);
	free(w);
}

/* the timer thread: resume each waiting request when it is due */
static void *
resume_due(void *arg)
{
	(void) arg;
	pthread_mutex_lock(&waiting_lock);
	while (!stopping)
	{
		struct timespec now;

		if (waiting_head == NULL)
		{
			pthread_cond_wait(&waiting_changed, &waiting_lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (before(&now, &waiting_head->due))
		{
			pthread_cond_timedwait(&waiting_changed, &waiting_lock, &waiting_head->due);
			continue;
		}
		while (waiting_head != NULL && !before(&now, &waiting_head->due))
			resume_first();
	}
	pthread_mutex_unlock(&waiting_lock);
	return NULL;
}

/* stop waiting: every suspended request is resumed (HANG ones then close) */
static void
stop_waiting(pthread_t timer)
{
	pthread_mutex_lock(&waiting_lock);
	stopping = true;
	while (waiting_head != NULL)
		resume_first();
	pthread_cond_signal(&waiting_changed);
	pthread_mutex_unlock(&waiting_lock);
	pthread_join(timer, NULL);
}

static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
send_body(struct MHD_Connection *conn, unsigned status, const char *type,
		  char *body, size_t len, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	int			ret;

	MHD_add_response_header(r, "Content-Type", type);
	if (retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* read a fixture "<provider>/<name>.<status>.<ext>"; false when none */
static bool
load_fixture(const char *provider, const char *name, char **body, size_t *len,
			 unsigned *status, const char **type)
{
	char		pattern[4096];
	glob_t		g;
	FILE	   *f;
	char	   *file;
	char	   *dot;
	long		size;

	/* exactly NAME.<3-digit status>.<ext>: OCDO must not find OCDO.L */
	snprintf(pattern, sizeof(pattern), "%s/%s/%s.[0-9][0-9][0-9].*", fixtures, provider, name);
	if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0)
	{
		globfree(&g);
		return false;
	}
	file = g.gl_pathv[0];
	dot = strrchr(file, '.');
	*type = (dot && strcmp(dot, ".json") == 0) ? "application/json;charset=utf-8" : "text/plain";
	*status = 200;
	if (dot)
	{
		char	   *prev = dot - 1;

		while (prev > file && *prev != '.')
			prev--;
		if (*prev == '.')
			*status = (unsigned) atoi(prev + 1);
	}
	f = fopen(file, "rb");
	globfree(&g);
	if (f == NULL)
		return false;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	*body = malloc(size + 1);
	*len = fread(*body, 1, size, f);
	fclose(f);
	return true;
}

/* the provider of a fixture directory: "polygon" for polygon_history */
static const char *
base_provider(const char *provider)
{
	static char base[64];
	size_t		len = strcspn(provider, "_");

	snprintf(base, sizeof(base), "%.*s", (int) len, provider);
	return base;
}

static unsigned long
hash(const char *s)
{
	unsigned long h = 5381;

	while (*s)
		h = h * 33 + (unsigned char) *s++;
	return h;
}

/* a success in the provider's format: price from the symbol, time now */
static char *
synthetic(const char *provider, const char *sym)
{
	double		price = 100.0 + (double) (hash(sym) % 10000) / 100.0;
	long		now = (long) time(NULL);
	char	   *body = NULL;
	char		day[16];
	struct tm	tm;

	gmtime_r(&(time_t) {now}, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	if (strcmp(provider, "yahoo") == 0)
		asprintf(&body, "{\"chart\":{\"result\":[{\"meta\":{\"currency\":\"USD\",\"symbol\":\"%s\","
				 "\"exchangeName\":\"NMS\",\"instrumentType\":\"EQUITY\",\"regularMarketTime\":%ld,"
				 "\"gmtoffset\":-18000,\"timezone\":\"EST\",\"exchangeTimezoneName\":\"America/New_York\","
				 "\"regularMarketPrice\":%.2f,\"regularMarketVolume\":123456,\"chartPreviousClose\":%.2f,"
				 "\"dataGranularity\":\"1d\",\"range\":\"1d\"},\"timestamp\":[%ld],\"indicators\":{\"quote\":"
				 "[{\"open\":[%.2f],\"high\":[%.2f],\"low\":[%.2f],\"close\":[%.2f],\"volume\":[123456]}]}}],"
				 "\"error\":null}}",
				 sym, now, price, price - 1, now - 3600, price - 1, price + 1, price - 2, price);
	else if (strcmp(provider, "alphavantage") == 0)
		asprintf(&body, "{\n    \"Global Quote\": {\n        \"01. symbol\": \"%s\",\n"
				 "        \"02. open\": \"%.4f\",\n        \"03. high\": \"%.4f\",\n"
				 "        \"04. low\": \"%.4f\",\n        \"05. price\": \"%.4f\",\n"
				 "        \"06. volume\": \"1000\",\n        \"07. latest trading day\": \"%s\",\n"
				 "        \"08. previous close\": \"%.4f\",\n        \"09. change\": \"1.0000\",\n"
				 "        \"10. change percent\": \"1.0000%%\"\n    }\n}",
				 sym, price - 1, price + 1, price - 2, price, day, price - 1);
	else if (strcmp(provider, "finnhub") == 0)
		asprintf(&body, "{\"c\":%.2f,\"d\":1,\"dp\":0.9,\"h\":%.2f,\"l\":%.2f,\"o\":%.2f,\"pc\":%.2f,\"t\":%ld}",
				 price, price + 1, price - 2, price - 1, price - 1, now);
	else if (strcmp(provider, "polygon") == 0)
		asprintf(&body, "{\"ticker\":\"%s\",\"queryCount\":1,\"resultsCount\":1,\"adjusted\":true,"
				 "\"results\":[{\"T\":\"%s\",\"v\":1000.0,\"vw\":%.4f,\"o\":%.2f,\"c\":%.2f,\"h\":%.2f,"
				 "\"l\":%.2f,\"t\":%ld000,\"n\":10}],\"status\":\"OK\",\"request_id\":\"fake\",\"count\":1}",
				 sym, sym, price, price - 1, price, price + 1, price - 2, now - 60);
	else
		asprintf(&body, "{\"request_id\":\"fake\",\"results\":{\"T\":\"%s\",\"p\":%.2f,\"s\":100,"
				 "\"t\":%ld123456789,\"y\":%ld123456000,\"q\":1},\"status\":\"OK\"}",
				 sym, price, now - 1, now - 1);
	return body;
}

struct Truncated
{
	char	   *body;
	size_t		len;
};

static ssize_t
truncated_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct Truncated *t = cls;
	size_t		half = t->len / 2;

	if (pos >= half)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (max > half - pos)
		max = half - pos;
	memcpy(buf, t->body + pos, max);
	return (ssize_t) max;
}

static void
truncated_free(void *cls)
{
	struct Truncated *t = cls;

	free(t->body);
	free(t);
}

/* the key the client sent, as the provider expects it */
static const char *
sent_key(struct MHD_Connection *conn, const char *provider)
{
	const char *k = NULL;

	if (strcmp(provider, "alphavantage") == 0)
		k = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "apikey");
	else if (strcmp(provider, "finnhub") == 0)
	{
		k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Finnhub-Token");
		if (k == NULL)
			k = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
	}
	else if (starts(provider, "polygon"))
	{
		k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
		if (k != NULL && starts(k, "Bearer "))
			k += 7;
		else
			k = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "apiKey");
	}
	return k;
}

static int
answer_fixture(struct MHD_Connection *conn, const char *provider, const char *name,
			   const char *retry_after)
{
	char	   *body;
	size_t		len;
	unsigned	status;
	const char *type;

	if (!load_fixture(provider, name, &body, &len, &status, &type))
		return send_body(conn, 500, "text/plain", strdup("fake: no fixture\n"),
						 strlen("fake: no fixture\n"), NULL);
	return send_body(conn, status, type, body, len, retry_after);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_size, void **state)
{
	char		sym[256] = "";
	const char *provider = NULL;
	const char *base;
	const char *function;
	const char *page = NULL;
	const char *arg;
	const char *key;
	char	   *body;
	char		name[600];

	(void) cls;
	(void) version;
	(void) upload_data;
	(void) upload_size;
	if (strcmp(method, "GET") != 0)
		return MHD_NO;
	/*
	 * Answer on the second call, as libmicrohttpd intends: a response
	 * queued on the first call (before the request is known to be read)
	 * gets "Connection: close", so every request paid a new connection
	 * where real providers keep it alive.
	 */
	if (*state == NULL)
	{
		*state = &state_read;
		return MHD_YES;
	}

	if (strcmp(url, "/_count") == 0)
	{
		asprintf(&body, "%ld\n", atomic_load(&requests_served));
		return send_body(conn, 200, "text/plain", body, strlen(body), NULL);
	}
	if (sscanf(url, "/v8/finance/chart/%255[^/]", sym) == 1)
		provider = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "period1") != NULL
			? "yahoo_history" : "yahoo";
	else if (strcmp(url, "/query") == 0 &&
			 (function = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "function")) != NULL &&
			 (strcmp(function, "GLOBAL_QUOTE") == 0 || starts(function, "TIME_SERIES_")) &&
			 (arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "symbol")) != NULL)
	{
		provider = strcmp(function, "GLOBAL_QUOTE") == 0 ? "alphavantage"
			: (strcmp(function, "TIME_SERIES_INTRADAY") == 0 ? "alphavantage_intraday"
			   : "alphavantage_daily");
		snprintf(sym, sizeof(sym), "%s", arg);
	}
	else if ((strcmp(url, "/api/v1/quote") == 0 || strcmp(url, "/api/v1/stock/candle") == 0) &&
			 (arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "symbol")) != NULL)
	{
		provider = strcmp(url, "/api/v1/quote") == 0 ? "finnhub" : "finnhub_history";
		snprintf(sym, sizeof(sym), "%s", arg);
	}
	else if (sscanf(url, "/v2/aggs/ticker/%255[^/]", sym) == 1 &&
			 strncmp(url + strlen("/v2/aggs/ticker/") + strlen(sym), "/prev", 6) == 0)
		provider = "polygon";
	else if (sscanf(url, "/v2/aggs/ticker/%255[^/]", sym) == 1 &&
			 strncmp(url + strlen("/v2/aggs/ticker/") + strlen(sym), "/range/", 7) == 0)
	{
		provider = "polygon_history";
		page = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cursor");
	}
	else if (sscanf(url, "/v2/last/trade/%255[^/]", sym) == 1)
		provider = "polygon_last";
	else
		return send_body(conn, 404, "text/plain", strdup("not found\n"), 10, NULL);

	base = base_provider(provider);
	if (page != NULL)
		snprintf(name, sizeof(name), "%s@%s", sym, page);
	else
		snprintf(name, sizeof(name), "%s", sym);

	/* first its wait (suspended): latency, SLOW's 1.5 s, HANG's minute */
	if (*state == &state_read)
	{
		int			ms = latency_ms + (starts(sym, "SLOW") ? 1500 : 0) +
			(starts(sym, "HANG") ? HANG_MS : 0);

		atomic_fetch_add(&requests_served, 1);
		*state = &state_waited;
		if (ms > 0 && wait_then_answer(conn, ms))
			return MHD_YES;
	}

	/* the client gave up long ago; we close without an answer */
	if (starts(sym, "HANG"))
		return MHD_NO;
	if (starts(sym, "RESET"))
	{
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct linger lin = {1, 0};

		/* linger 0: close sends RST instead of FIN */
		if (ci != NULL)
			setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
		return MHD_NO;
	}

	if (api_key != NULL && strcmp(base, "yahoo") != 0)
	{
		const char *file_provider = base;
		char	   *dummy;
		size_t		dlen;
		unsigned	dstatus;
		const char *dtype;

		key = sent_key(conn, base);
		if ((key == NULL || key[0] == '\0') &&
			load_fixture(file_provider, "_nokey", &dummy, &dlen, &dstatus, &dtype))
			return send_body(conn, dstatus, dtype, dummy, dlen, NULL);
		if (key != NULL && key[0] != '\0' && strcmp(key, api_key) != 0 &&
			load_fixture(file_provider, "_badkey", &dummy, &dlen, &dstatus, &dtype))
			return send_body(conn, dstatus, dtype, dummy, dlen, NULL);
	}

	if (strcmp(sym, "ECHOKEY") == 0)
	{
		key = sent_key(conn, base);
		asprintf(&body, "{\"error\":\"Invalid API call with apikey %s\",\"Error Message\":\"the apikey %s is not valid\"}",
				 key ? key : "(none)", key ? key : "(none)");
		/* Alpha Vantage's errors come with 200 */
		return send_body(conn, strcmp(base, "alphavantage") == 0 ? 200 : 401,
						 "application/json", body, strlen(body), NULL);
	}
	if (strcmp(sym, "ECHOBIN") == 0)
	{
		size_t		len;

		key = sent_key(conn, base);
		len = asprintf(&body, "\xff\xfe bad key %s\x01", key ? key : "(none)");
		return send_body(conn, strcmp(base, "alphavantage") == 0 ? 200 : 401,
						 "application/octet-stream", body, len, NULL);
	}
	if (starts(sym, "REDIRECT"))
	{
		struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		char	   *location;
		int			ret;

		/* the path (libmicrohttpd hands it over without the query) */
		asprintf(&location, "%s%s?symbol=%s", redirect_to, url, sym);
		MHD_add_response_header(r, "Location", location);
		ret = MHD_queue_response(conn, 302, r);
		MHD_destroy_response(r);
		free(location);
		return ret;
	}
	if (starts(sym, "TRUNC"))
	{
		struct Truncated *t = malloc(sizeof(*t));
		struct MHD_Response *r;
		int			ret;

		/* a history answer: its fixture cut (TRUNC<SYM> serves <SYM>'s) */
		if (strcmp(base, provider) != 0 &&
			load_fixture(provider, sym + 5, &t->body, &t->len, &(unsigned) {0}, &(const char *) {NULL}))
			;
		else
		{
			t->body = synthetic(strcmp(provider, "polygon_last") == 0 ? provider : base, sym);
			t->len = strlen(t->body);
		}
		r = MHD_create_response_from_callback(t->len, 4096, truncated_reader, t, truncated_free);
		MHD_add_response_header(r, "Content-Type", "application/json");
		ret = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (starts(sym, "HUGE"))
	{
		size_t		len = 3 * 1024 * 1024;

		body = malloc(len);
		memset(body, ' ', len);
		memcpy(body, "{\"padding\":\"", 12);
		memset(body + 12, 'x', len - 14);
		memcpy(body + len - 2, "\"}", 2);
		return send_body(conn, 200, "application/json", body, len, NULL);
	}
	if (starts(sym, "DOWN"))
	{
		body = strdup("<html><body><h1>503 Service Unavailable</h1></body></html>\n");
		return send_body(conn, 503, "text/html", body, strlen(body), NULL);
	}
	if (starts(sym, "GARBAGE"))
	{
		body = strdup("<html><body>Oops, something went wrong.</body></html>\n");
		return send_body(conn, 200, "application/json", body, strlen(body), NULL);
	}
	if (starts(sym, "RETRY"))
		return answer_fixture(conn, base, "RATELIMIT", "7");
	if (starts(sym, "SYN") || starts(sym, "SLOW"))
	{
		body = synthetic(strcmp(provider, "polygon_last") == 0 ? provider : base, sym);
		return send_body(conn, 200, "application/json;charset=utf-8", body, strlen(body), NULL);
	}
	{
		char	   *fbody;
		size_t		flen;
		unsigned	fstatus;
		const char *ftype;

		/* a history answer may fall back on its provider's errors */
		if (load_fixture(provider, name, &fbody, &flen, &fstatus, &ftype) ||
			(strcmp(base, provider) != 0 &&
			 (load_fixture(base, name, &fbody, &flen, &fstatus, &ftype) ||
			  load_fixture(provider, "_unknown", &fbody, &flen, &fstatus, &ftype))))
			return send_body(conn, fstatus, ftype, fbody, flen, NULL);
	}
	return answer_fixture(conn, base, "_unknown", NULL);
}

int
main(int argc, char **argv)
{
	int			port = 0;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	sigset_t	set;
	int			sig;
	pthread_condattr_t cattr;
	pthread_t	timer;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc)
			fixtures = argv[++i];
		else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (strcmp(argv[i], "--latency-ms") == 0 && i + 1 < argc)
			latency_ms = atoi(argv[++i]);
		else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			api_key = argv[++i];
		else if (strcmp(argv[i], "--redirect-to") == 0 && i + 1 < argc)
			redirect_to = argv[++i];
		else
		{
			fprintf(stderr, "usage: %s --fixtures DIR [--port N] [--latency-ms N] [--key KEY] [--redirect-to URL]\n", argv[0]);
			return 2;
		}
	}
	if (fixtures == NULL)
	{
		fprintf(stderr, "%s: --fixtures is required\n", argv[0]);
		return 2;
	}

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&waiting_changed, &cattr);
	pthread_create(&timer, NULL, resume_due, NULL);

	{
		struct sockaddr_in addr = {0};

		addr.sin_family = AF_INET;
		addr.sin_port = htons((uint16_t) port);
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
							 (uint16_t) port, NULL, NULL, handle, NULL,
							 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
							 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1024,
							 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120,
							 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 1024,
							 MHD_OPTION_END);
	}
	if (d == NULL)
	{
		fprintf(stderr, "fake_provider: could not listen on 127.0.0.1:%d\n", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("PORT %u\n", info ? (unsigned) info->port : (unsigned) port);
	fflush(stdout);

	sigwait(&set, &sig);
	stop_waiting(timer);
	MHD_stop_daemon(d);
	return 0;
}
