/*-------------------------------------------------------------------------
 *
 * extension/http.c
 *	  Concurrent HTTP GETs over the libcurl multi interface.
 *
 * One CURLM per process, created on first use and released at process
 * exit, so connections to a provider are kept alive from one call to the
 * next. A *transfer* is a request in flight: its easy handle, its header
 * list and its body buffer. Transfers of a group wait in a queue until the
 * group has a free slot. A finished transfer's easy handle is reset and
 * kept for the next one, sparing libcurl a handle's allocations and
 * teardown per request.
 *
 * Body bytes arrive in a libcurl callback, which must not ereport (a
 * longjmp through libcurl would corrupt it): the buffer is malloc'd there
 * and copied into palloc memory when the transfer is done. A *run* is a
 * set of requests started together; the caller pulls their answers
 * (md_http_next) and decides when to wait. If anything raises while
 * transfers are in flight (an interrupt, out of memory, the caller's own
 * error), they are freed when the run's memory context goes (a reset
 * callback), or by md_http_end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "http.h"

/* longest wait inside libcurl before we check for interrupts again */
#define WAIT_SLICE_MS 100

#define MD_USER_AGENT "marketdata/" MD_EXTVERSION " (PostgreSQL extension; libcurl)"

/* name the libcurl call that failed: these are our bugs, not the far side's */
#define CURL_SETOPT(easy, option, value) \
	do { \
		CURLcode	setopt_rc_ = curl_easy_setopt((easy), (option), (value)); \
		if (setopt_rc_ != CURLE_OK) \
			elog(ERROR, "curl_easy_setopt(%s) failed: %s", #option, \
				 curl_easy_strerror(setopt_rc_)); \
	} while (0)

typedef struct MdHttpRun MdHttpRun;

typedef struct Transfer
{
	MdHttpRun  *run;
	MdHttpRequest *request;
	CURL	   *easy;			/* NULL until started and after finishing */
	struct curl_slist *headers;
	char	   *buf;			/* malloc'd body bytes */
	size_t		len;
	size_t		cap;			/* the size cap */
	size_t		alloc;			/* bytes malloc'd at buf */
	bool		too_large;
	char		refused[INET6_ADDRSTRLEN];	/* a private address not
											 * connected to, "" if none */
	char		errbuf[CURL_ERROR_SIZE];
	int			next_in_group;	/* queue link, -1 at the end */
} Transfer;

struct MdHttpRun
{
	Transfer   *transfers;
	int			ntransfers;
	int			ngroups;
	const int  *limits;
	int		   *active;			/* per group: transfers in flight */
	int		   *head;			/* per group: next waiting transfer, -1 */
	int			in_flight;
	size_t		max_body;
	MemoryContext cxt;			/* the caller's: results are allocated here */
	MdHttpRequest **finished;	/* completed, not yet handed out */
	int			nfinished;
	int			next_out;		/* finished[next_out..nfinished-1] wait */
	bool		turned;			/* libcurl did what it could since the last wait */
	MemoryContextCallback abandon;	/* frees the transfers if never ended */
};

static CURLM *multi = NULL;

/* easy handles of finished transfers, reset, for the next ones */
#define MAX_SPARE_HANDLES 1024
static CURL *spare[MAX_SPARE_HANDLES];
static int	nspare = 0;

static void
http_cleanup(int code, Datum arg)
{
	while (nspare > 0)
		curl_easy_cleanup(spare[--nspare]);
	if (multi != NULL)
	{
		curl_multi_cleanup(multi);
		multi = NULL;
	}
	curl_global_cleanup();
}

static CURLM *
get_multi(void)
{
	if (multi == NULL)
	{
		CURLcode	rc = curl_global_init(CURL_GLOBAL_DEFAULT);

		if (rc != CURLE_OK)
			elog(ERROR, "curl_global_init failed: %s", curl_easy_strerror(rc));
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "curl_multi_init failed");
		on_proc_exit(http_cleanup, (Datum) 0);
	}
	return multi;
}

const char *
md_http_user_agent(void)
{
	return MD_USER_AGENT;
}

char *
md_http_escape(const char *text)
{
	/* since libcurl 7.82 the handle argument may be NULL */
	char	   *escaped = curl_easy_escape(NULL, text, (int) strlen(text));
	char	   *result;

	if (escaped == NULL)
		elog(ERROR, "curl_easy_escape failed");
	result = pstrdup(escaped);
	curl_free(escaped);
	return result;
}

/* libcurl's body callback: no ereport, no palloc here */
static size_t
write_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nmemb;
	size_t		take = n;

	if (t->len + n > t->cap)
	{
		take = t->cap - t->len;
		t->too_large = true;
	}
	if (t->len + take + 1 > t->alloc)
	{
		size_t		want = Max(t->alloc * 2, t->len + take + 1);
		char	   *grown;

		want = Max(want, 4096);
		grown = realloc(t->buf, want);
		if (grown == NULL)
			return 0;			/* libcurl stops with CURLE_WRITE_ERROR */
		t->buf = grown;
		t->alloc = want;
	}
	memcpy(t->buf + t->len, data, take);
	t->len += take;
	t->buf[t->len] = '\0';
	/* less than n makes libcurl stop the transfer with CURLE_WRITE_ERROR */
	return t->too_large ? 0 : n;
}

/*
 * Loopback, "this network", private, shared (CGN), link-local, multicast
 * and reserved addresses, IPv4 (also mapped into IPv6) and IPv6: where a
 * provider never is, and where a base_url must not send our keys.
 */
static bool
private_address(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
	{
		uint32		a = ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr);

		return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
			(a >> 22) == (100 << 2 | 1) ||	/* 100.64.0.0/10 */
			(a >> 16) == (169 << 8 | 254) ||
			(a >> 20) == (172 << 4 | 1) ||	/* 172.16.0.0/12 */
			(a >> 16) == (192 << 8 | 168) ||
			(a >> 28) >= 14;	/* multicast 224/4, reserved 240/4 */
	}
	if (sa->sa_family == AF_INET6)
	{
		const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
		const uint8 *b = a->s6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a))
		{
			struct sockaddr_in v4 = {.sin_family = AF_INET};

			memcpy(&v4.sin_addr, b + 12, 4);
			return private_address((const struct sockaddr *) &v4);
		}
		return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) ||
			(b[0] & 0xfe) == 0xfc ||	/* unique local fc00::/7 */
			(b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||	/* fe80::/10 */
			(b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) ||	/* site-local */
			b[0] == 0xff;		/* multicast */
	}
	return true;				/* no other family reaches a provider */
}

/*
 * libcurl's socket opener: refuses private addresses unless allowed,
 * checked on the address libcurl is about to connect to, so a host name
 * that resolves to one is refused too. No ereport here.
 */
static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	Transfer   *t = (Transfer *) clientp;

	if (!md_allow_private_provider_urls && private_address(&address->addr))
	{
		const void *in = address->family == AF_INET6
			? (const void *) &((struct sockaddr_in6 *) &address->addr)->sin6_addr
			: (const void *) &((struct sockaddr_in *) &address->addr)->sin_addr;

		if (inet_ntop(address->family, in, t->refused, sizeof(t->refused)) == NULL)
			strlcpy(t->refused, "?", sizeof(t->refused));
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/* an easy handle with every option at its default */
static CURL *
take_handle(void)
{
	CURL	   *easy = nspare > 0 ? spare[--nspare] : curl_easy_init();

	if (easy == NULL)
		elog(ERROR, "curl_easy_init failed");
	return easy;
}

/*
 * Free what libcurl and malloc hold for a transfer; safe to call twice.
 * keep_handle: the transfer finished normally, its handle may serve again
 * (not after an error of ours, whatever state it was left in).
 */
static void
release_transfer(Transfer *t, bool keep_handle)
{
	if (t->easy != NULL)
	{
		if (multi != NULL)
			curl_multi_remove_handle(multi, t->easy);
		if (keep_handle && nspare < MAX_SPARE_HANDLES)
		{
			curl_easy_reset(t->easy);
			spare[nspare++] = t->easy;
		}
		else
			curl_easy_cleanup(t->easy);
		t->easy = NULL;
	}
	if (t->headers != NULL)
	{
		curl_slist_free_all(t->headers);
		t->headers = NULL;
	}
	if (t->buf != NULL)
	{
		free(t->buf);
		t->buf = NULL;
	}
}

static void
start_transfer(MdHttpRun *run, Transfer *t)
{
	MdHttpRequest *req = t->request;
	CURLMcode	mrc;

	t->cap = run->max_body;
	t->easy = take_handle();
	if (req->headers != NULL)
	{
		char	  **h;

		for (h = req->headers; *h != NULL; h++)
		{
			struct curl_slist *list = curl_slist_append(t->headers, *h);

			if (list == NULL)
				elog(ERROR, "curl_slist_append failed");
			t->headers = list;
		}
		CURL_SETOPT(t->easy, CURLOPT_HTTPHEADER, t->headers);
	}
	CURL_SETOPT(t->easy, CURLOPT_URL, req->url);
	CURL_SETOPT(t->easy, CURLOPT_PRIVATE, t);
	CURL_SETOPT(t->easy, CURLOPT_WRITEFUNCTION, write_body);
	CURL_SETOPT(t->easy, CURLOPT_WRITEDATA, t);
	CURL_SETOPT(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	CURL_SETOPT(t->easy, CURLOPT_USERAGENT, MD_USER_AGENT);
	CURL_SETOPT(t->easy, CURLOPT_NOSIGNAL, 1L);
	CURL_SETOPT(t->easy, CURLOPT_TIMEOUT_MS, (long) md_http_timeout);
	CURL_SETOPT(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) md_http_connect_timeout);
	CURL_SETOPT(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	/*
	 * No redirects: libcurl would send our key headers to whatever host
	 * the Location names, over plain http too. A redirect is the
	 * provider's error (md_fetch_transport_failed).
	 */
	CURL_SETOPT(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
	t->refused[0] = '\0';
	CURL_SETOPT(t->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	CURL_SETOPT(t->easy, CURLOPT_OPENSOCKETDATA, t);
	CURL_SETOPT(t->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	CURL_SETOPT(t->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	/* any encoding libcurl can decode; the size cap applies to decoded bytes */
	CURL_SETOPT(t->easy, CURLOPT_ACCEPT_ENCODING, "");
	mrc = curl_multi_add_handle(multi, t->easy);
	if (mrc != CURLM_OK)
		elog(ERROR, "curl_multi_add_handle failed: %s", curl_multi_strerror(mrc));
	run->active[req->group]++;
	run->in_flight++;
}

/* start waiting transfers of group g while it has free slots */
static void
start_group(MdHttpRun *run, int g)
{
	while (run->head[g] >= 0 && run->active[g] < run->limits[g])
	{
		Transfer   *t = &run->transfers[run->head[g]];

		run->head[g] = t->next_in_group;
		start_transfer(run, t);
	}
}

/* Retry-After as seconds: a number, or an HTTP date (RFC 9110) */
static int
retry_after_seconds(CURL *easy)
{
	struct curl_header *h;
	char	   *end;
	long		secs;
	time_t		when;

	if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return -1;
	errno = 0;
	secs = strtol(h->value, &end, 10);
	if (end != h->value && *end == '\0' && errno == 0 && secs >= 0)
		return (int) Min(secs, 86400 * 7);
	when = curl_getdate(h->value, NULL);
	if (when < 0)
		return -1;
	return (int) Max(0, Min((long) (when - time(NULL)), 86400 * 7));
}

/* collect a finished transfer's results into its request and free it */
static void
finish_transfer(Transfer *t, CURLcode result)
{
	MdHttpRun  *run;
	MdHttpRequest *req = t->request;
	curl_off_t	total_us = 0;
	long		status = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	req->status = status;
	req->latency_ms = (double) total_us / 1000.0;
	req->retry_after = retry_after_seconds(t->easy);
	req->curl_code = (int) result;
	req->too_large = t->too_large;
	if (result != CURLE_OK && t->refused[0] != '\0')
	{
		req->error = psprintf("refused to connect to the private address %s "
							  "(marketdata.allow_private_provider_urls is off)",
							  t->refused);
		req->error_detail = pstrdup(req->error);
	}
	else if (result != CURLE_OK)
	{
		/* libcurl's fixed text: stable, and never holding a URL */
		req->error = pstrdup(curl_easy_strerror(result));
		req->error_detail = pstrdup(t->errbuf[0] ? t->errbuf : req->error);
	}
	req->body_len = (int) t->len;
	req->body = palloc(t->len + 1);
	if (t->len > 0)
		memcpy(req->body, t->buf, t->len);
	req->body[t->len] = '\0';

	release_transfer(t, true);
	run = t->run;
	run->active[req->group]--;
	run->in_flight--;
}

static void
perform(void)
{
	int			still_running;
	CURLMcode	mrc;

	mrc = curl_multi_perform(multi, &still_running);
	if (mrc != CURLM_OK)
		elog(ERROR, "curl_multi_perform failed: %s", curl_multi_strerror(mrc));
}

/*
 * Let libcurl read and write what it can without waiting, collect the
 * finished transfers (each into the queue of its own run, to be handed
 * out) and start the next requests of their groups, then let libcurl send
 * those.
 */
static void
turn(MdHttpRun *run)
{
	int			queued;
	bool		finished = false;
	CURLMsg    *msg;
	MemoryContext old = MemoryContextSwitchTo(run->cxt);

	perform();
	while ((msg = curl_multi_info_read(multi, &queued)) != NULL)
	{
		Transfer   *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t) != CURLE_OK)
			elog(ERROR, "curl_easy_getinfo(CURLINFO_PRIVATE) failed");
		finish_transfer(t, msg->data.result);
		start_group(t->run, t->request->group);
		t->run->finished[t->run->nfinished++] = t->request;
		finished = true;
	}
	/* the requests just started go out now, not after the caller's work */
	if (finished && run->in_flight > 0)
		perform();
	run->turned = true;
	MemoryContextSwitchTo(old);
}

/* free every transfer still held: the run ends, or its memory goes */
static void
release_run(void *arg)
{
	MdHttpRun  *run = (MdHttpRun *) arg;
	int			i;

	for (i = 0; i < run->ntransfers; i++)
		release_transfer(&run->transfers[i], false);
	run->in_flight = 0;
	run->nfinished = run->next_out = 0;
}

MdHttpRun *
md_http_start(MdHttpRequest *requests, int nrequests, const int *group_limits,
			  int ngroups)
{
	MdHttpRun  *run;
	int		   *tail;
	int			g;
	int			i;

	run = palloc0(sizeof(MdHttpRun));
	run->cxt = CurrentMemoryContext;
	if (nrequests <= 0)
		return run;
	get_multi();

	/*
	 * Keep every connection this run may open for the next run. libcurl's
	 * default cache holds 4 per easy handle still added, so as a run drains
	 * it closed all but a few, and each run opened (and the provider
	 * accepted) its connections anew.
	 */
	{
		long		keep = 0;
		CURLMcode	mrc;

		for (i = 0; i < ngroups; i++)
			keep += Max(group_limits[i], 0);
		mrc = curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, Max(keep, 1L));
		if (mrc != CURLM_OK)
			elog(ERROR, "curl_multi_setopt(CURLMOPT_MAXCONNECTS) failed: %s",
				 curl_multi_strerror(mrc));
	}

	run->finished = palloc(sizeof(MdHttpRequest *) * nrequests);
	run->transfers = palloc0(sizeof(Transfer) * nrequests);
	run->ntransfers = nrequests;
	run->ngroups = ngroups;
	run->limits = group_limits;
	run->active = palloc0(sizeof(int) * ngroups);
	run->head = palloc(sizeof(int) * ngroups);
	run->max_body = (size_t) md_http_max_response_size;
	tail = palloc(sizeof(int) * ngroups);
	for (i = 0; i < ngroups; i++)
	{
		if (group_limits[i] < 1)
			elog(ERROR, "group %d has no concurrency", i);
		run->head[i] = tail[i] = -1;
	}

	/* queue each group's requests in the order given */
	for (i = 0; i < nrequests; i++)
	{
		Transfer   *t = &run->transfers[i];

		g = requests[i].group;
		if (g < 0 || g >= ngroups)
			elog(ERROR, "request %d names group %d of %d", i, g, ngroups);
		t->run = run;
		t->request = &requests[i];
		t->next_in_group = -1;
		requests[i].status = 0;
		requests[i].body = NULL;
		requests[i].body_len = 0;
		requests[i].too_large = false;
		requests[i].curl_code = 0;
		requests[i].error = NULL;
		requests[i].error_detail = NULL;
		requests[i].retry_after = -1;
		requests[i].latency_ms = 0;
		if (tail[g] < 0)
			run->head[g] = i;
		else
			run->transfers[tail[g]].next_in_group = i;
		tail[g] = i;
	}

	/* an error before md_http_end: the transfers go with the memory */
	run->abandon.func = release_run;
	run->abandon.arg = run;
	MemoryContextRegisterResetCallback(run->cxt, &run->abandon);

	for (g = 0; g < run->ngroups; g++)
		start_group(run, g);
	return run;
}

MdHttpRequest *
md_http_next(MdHttpRun *run, long timeout_ms)
{
	TimestampTz deadline = 0;

	if (timeout_ms > 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	for (;;)
	{
		long		wait_ms = WAIT_SLICE_MS;
		CURLMcode	mrc;

		if (run->next_out < run->nfinished)
			return run->finished[run->next_out++];
		run->nfinished = run->next_out = 0;
		if (run->in_flight == 0)
			return NULL;
		CHECK_FOR_INTERRUPTS();
		if (!run->turned)
		{
			turn(run);
			continue;
		}
		/* libcurl did all it could: wait for the network */
		if (timeout_ms == 0)
			return NULL;
		if (timeout_ms > 0)
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

			if (left <= 0)
				return NULL;
			wait_ms = Min(wait_ms, left);
		}
		mrc = curl_multi_poll(multi, NULL, 0, (int) wait_ms, NULL);
		if (mrc != CURLM_OK)
			elog(ERROR, "curl_multi_poll failed: %s", curl_multi_strerror(mrc));
		run->turned = false;
	}
}

bool
md_http_finished(MdHttpRun *run)
{
	return run->in_flight == 0 && run->next_out == run->nfinished;
}

void
md_http_pump(MdHttpRun *run)
{
	if (run->in_flight > 0)
		turn(run);
}

void
md_http_end(MdHttpRun *run)
{
	if (run->abandon.func == NULL)
		return;
	release_run(run);
	/* nothing is left to free when the memory goes */
	run->ntransfers = 0;
}
