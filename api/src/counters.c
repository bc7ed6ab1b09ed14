/*
 * api/src/counters.c
 *	The counters behind Prometheus /metrics, shared by all workers, and
 *	their text (metrics.c serves it).
 *
 * The counters live in one anonymous shared mapping made by the parent
 * before it forks the workers, so whichever worker answers /metrics
 * reports all of them. Workers add with atomic operations; each worker
 * also refreshes its own memory and CPU use there once a second.
 */

#include <sys/mman.h>
#include <sys/resource.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

#define MAX_WORKERS	64

static const int statuses[] = {
	200, 202, 400, 401, 403, 404, 405, 409, 413, 429, 500, 502, 503, 0
};
#define NSTATUS		(sizeof(statuses) / sizeof(statuses[0]))

/* latency buckets, microseconds */
static const u_int64_t buckets[] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000
};
#define NBUCKET		(sizeof(buckets) / sizeof(buckets[0]))

static const char *route_names[ROUTE_COUNT] = {
	"/prices/latest", "/prices/poll", "/prices/poll/{job_id}",
	"/prices/history", "/prices/average", "/prices/bars", "/health",
	"/health/ready", "/metrics", "/openapi.json", "/prices/stream",
	"/stream/token", "/", "other"
};

static const char *counter_names[MC_COUNT][2] = {
	{ "md_api_cache_hits_total", "answers of /prices/latest from Redis" },
	{ "md_api_cache_misses_total", "answers of /prices/latest not in Redis" },
	{ "md_api_rate_limited_total", "requests refused with 429" },
	{ "md_api_auth_failures_total", "requests refused with 401" },
	{ "md_api_database_errors_total", "database queries that failed" },
	{ "md_api_redis_errors_total", "Redis commands that failed or could not be sent" },
	{ "md_api_price_queries_total", "database calls made for /prices/latest (one per flight)" },
	{ "md_api_flight_joins_total", "cache misses that waited for another request's database call" },
	{ "md_api_rate_limit_fail_open_total", "requests let through because the rate limiter was unavailable" },
	{ "md_api_rate_limit_leased_total", "requests passed on a token the worker had leased, without asking Redis" },
	{ "md_api_cache_local_hits_total", "cache hits answered from the worker's own cache (also in md_api_cache_hits_total)" },
	{ "md_api_cache_invalidations_total", "prices published by the sink that dropped the worker's cached answers of a symbol" },
	{ "md_api_redis_timeouts_total", "Redis commands unanswered within MD_API_REDIS_TIMEOUT (the connection is dropped, Redis counts as down)" },
	{ "md_api_stream_events_total", "price events sent to stream clients" },
	{ "md_api_stream_conflated_total", "price events of full stream clients replaced by a newer price of their symbol before they were sent" },
	{ "md_api_stream_slow_closed_total", "stream clients closed for staying full past MD_API_STREAM_SLOW_MS" },
};

struct worker_usage {
	pid_t		pid;
	u_int64_t	rss_bytes;
	u_int64_t	cpu_user_us;
	u_int64_t	cpu_sys_us;
};

struct shared_metrics {
	u_int64_t		requests[ROUTE_COUNT][NSTATUS];
	u_int64_t		hist[ROUTE_COUNT][NBUCKET + 1];
	u_int64_t		sum_us[ROUTE_COUNT];
	u_int64_t		counters[MC_COUNT];
	int64_t			streams_open;
	struct worker_usage	workers[MAX_WORKERS];
};

static struct shared_metrics	*m;

static void
rusage_timer(void *unused, u_int64_t now)
{
	(void)unused;
	(void)now;
	api_metrics_rusage();
}

void
api_metrics_init(void)
{
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		fatal("mmap of the metrics: %s", errno_s);
	memset(m, 0, sizeof(*m));
}

void
api_metrics_request(int route, int status, u_int64_t us)
{
	size_t	i;

	for (i = 0; i < NSTATUS - 1; i++) {
		if (statuses[i] == status)
			break;
	}
	__atomic_add_fetch(&m->requests[route][i], 1, __ATOMIC_RELAXED);
	for (i = 0; i < NBUCKET; i++) {
		if (us <= buckets[i])
			break;
	}
	__atomic_add_fetch(&m->hist[route][i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->sum_us[route], us, __ATOMIC_RELAXED);
}

void
api_metrics_count(int counter)
{
	__atomic_add_fetch(&m->counters[counter], 1, __ATOMIC_RELAXED);
}

void
api_metrics_rusage(void)
{
	struct worker_usage	*w;
	struct rusage		 ru;
	FILE			*fp;
	long			 pages, rss;

	if (worker == NULL)
		return;
	w = &m->workers[worker->id % MAX_WORKERS];
	w->pid = getpid();
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		w->cpu_user_us = (u_int64_t)ru.ru_utime.tv_sec * 1000000 +
		    ru.ru_utime.tv_usec;
		w->cpu_sys_us = (u_int64_t)ru.ru_stime.tv_sec * 1000000 +
		    ru.ru_stime.tv_usec;
	}
	if ((fp = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(fp, "%ld %ld", &pages, &rss) == 2)
			w->rss_bytes = (u_int64_t)rss * sysconf(_SC_PAGESIZE);
		fclose(fp);
	}
}

void
api_metrics_render(struct kore_buf *b, int redis_up)
{
	u_int64_t	cum, n;
	size_t		r, i;
	int		first;

	kore_buf_appendf(b, "# HELP md_api_requests_total HTTP requests "
	    "answered, by route and status.\n"
	    "# TYPE md_api_requests_total counter\n");
	for (r = 0; r < ROUTE_COUNT; r++) {
		for (i = 0; i < NSTATUS; i++) {
			n = __atomic_load_n(&m->requests[r][i], __ATOMIC_RELAXED);
			if (n == 0)
				continue;
			if (statuses[i] != 0)
				kore_buf_appendf(b, "md_api_requests_total"
				    "{route=\"%s\",status=\"%d\"} %llu\n",
				    route_names[r], statuses[i],
				    (unsigned long long)n);
			else
				kore_buf_appendf(b, "md_api_requests_total"
				    "{route=\"%s\",status=\"other\"} %llu\n",
				    route_names[r], (unsigned long long)n);
		}
	}

	kore_buf_appendf(b, "# HELP md_api_request_duration_seconds Time "
	    "from the request's start to its answer, by route.\n"
	    "# TYPE md_api_request_duration_seconds histogram\n");
	for (r = 0; r < ROUTE_COUNT; r++) {
		cum = 0;
		first = 1;
		for (i = 0; i <= NBUCKET; i++)
			cum += m->hist[r][i];
		if (cum == 0)
			continue;
		cum = 0;
		for (i = 0; i < NBUCKET; i++) {
			cum += m->hist[r][i];
			kore_buf_appendf(b, "md_api_request_duration_seconds_bucket"
			    "{route=\"%s\",le=\"%g\"} %llu\n", route_names[r],
			    buckets[i] / 1e6, (unsigned long long)cum);
		}
		cum += m->hist[r][NBUCKET];
		kore_buf_appendf(b, "md_api_request_duration_seconds_bucket"
		    "{route=\"%s\",le=\"+Inf\"} %llu\n", route_names[r],
		    (unsigned long long)cum);
		kore_buf_appendf(b, "md_api_request_duration_seconds_sum"
		    "{route=\"%s\"} %.6f\n", route_names[r], m->sum_us[r] / 1e6);
		kore_buf_appendf(b, "md_api_request_duration_seconds_count"
		    "{route=\"%s\"} %llu\n", route_names[r],
		    (unsigned long long)cum);
		(void)first;
	}

	for (i = 0; i < MC_COUNT; i++) {
		kore_buf_appendf(b, "# HELP %s %s.\n# TYPE %s counter\n%s %llu\n",
		    counter_names[i][0], counter_names[i][1],
		    counter_names[i][0], counter_names[i][0],
		    (unsigned long long)__atomic_load_n(&m->counters[i],
		    __ATOMIC_RELAXED));
	}

	kore_buf_appendf(b, "# HELP md_api_redis_up 1 when this worker's "
	    "Redis connection is up.\n# TYPE md_api_redis_up gauge\n"
	    "md_api_redis_up %d\n", redis_up);
	kore_buf_appendf(b, "# HELP md_api_streams_open Open price streams "
	    "(SSE and WebSocket).\n# TYPE md_api_streams_open gauge\n"
	    "md_api_streams_open %lld\n", (long long)__atomic_load_n(
	    &m->streams_open, __ATOMIC_RELAXED));

	api_metrics_rusage();
	kore_buf_appendf(b, "# HELP process_resident_memory_bytes Resident "
	    "memory of each worker.\n"
	    "# TYPE process_resident_memory_bytes gauge\n");
	for (i = 0; i < MAX_WORKERS; i++) {
		if (m->workers[i].pid == 0)
			continue;
		kore_buf_appendf(b, "process_resident_memory_bytes"
		    "{worker=\"%zu\"} %llu\n", i,
		    (unsigned long long)m->workers[i].rss_bytes);
	}
	kore_buf_appendf(b, "# HELP process_cpu_seconds_total CPU time of "
	    "each worker.\n# TYPE process_cpu_seconds_total counter\n");
	for (i = 0; i < MAX_WORKERS; i++) {
		if (m->workers[i].pid == 0)
			continue;
		kore_buf_appendf(b, "process_cpu_seconds_total{worker=\"%zu\","
		    "mode=\"user\"} %.6f\n", i, m->workers[i].cpu_user_us / 1e6);
		kore_buf_appendf(b, "process_cpu_seconds_total{worker=\"%zu\","
		    "mode=\"system\"} %.6f\n", i, m->workers[i].cpu_sys_us / 1e6);
	}
}

void
api_metrics_streams(int delta)
{
	__atomic_add_fetch(&m->streams_open, delta, __ATOMIC_RELAXED);
}

void
api_metrics_worker_init(void)
{
	(void)kore_timer_add(rusage_timer, 1000, NULL, 0);
}
