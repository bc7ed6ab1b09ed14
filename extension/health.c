/*-------------------------------------------------------------------------
 *
 * extension/health.c
 *	  Provider health and the circuit breaker, in shared memory.
 *
 * Health lives in shared memory, not in a table: a failing md_price raises
 * an error and rolls its transaction back, yet its failure must still
 * count; and a row updated by every fetch would serialise all callers of a
 * provider on its lock. The price of that is that health starts afresh
 * when the server restarts, and exists only when marketdata is in
 * shared_preload_libraries (otherwise every provider is always admitted).
 *
 * A *slot* is one provider of one database. A *failure* is an unavailable
 * or malformed answer; an answer about the symbol (a price, unknown
 * symbol, no data) is a success; rate limiting and refused keys leave the
 * count alone. After marketdata.circuit_breaker_failures failures in a row
 * the circuit *opens*: the provider is skipped for
 * marketdata.circuit_breaker_cooldown. Then one fetch is let through
 * (half-open): success closes the circuit, failure opens it again. A
 * rate-limited provider is skipped until its Retry-After has passed.
 *
 * The slot also holds our own request budget for the provider
 * (rate_limit_per_minute, a token bucket): in shared memory, so every
 * scheduler process of the database draws from the one budget.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "fetch_outcome.h"
#include "health.h"
#include "shmem.h"
#include "status_row.h"

#define HEALTH_SLOTS 128
#define LATENCY_RING 256
#define ERROR_LEN 256

typedef struct HealthSlot
{
	Oid			dboid;			/* InvalidOid: free */
	char		provider[NAMEDATALEN];
	int			consecutive_failures;
	TimestampTz last_success_at;
	TimestampTz last_error_at;
	int			last_error_class;
	char		last_error[ERROR_LEN];
	TimestampTz open_until;		/* circuit open before this time */
	TimestampTz rate_limited_until;
	int64		requests;
	int64		failures;
	double		tokens;			/* our request budget: a token bucket */
	TimestampTz tokens_at;		/* last refill, 0: full */
	int			nlatencies;
	int			next_latency;
	float4		latencies[LATENCY_RING];	/* ms, newest LATENCY_RING */
} HealthSlot;

typedef struct HealthShared
{
	HealthSlot	slots[HEALTH_SLOTS];
} HealthShared;

static HealthShared *health = NULL;
static LWLock *health_lock = NULL;

void
md_health_init(void)
{
	md_shmem_add("marketdata health", sizeof(HealthShared), (void **) &health,
				 &health_lock, NULL);
}

/* the provider's slot in this database; create it when asked. Lock held. */
static HealthSlot *
find_slot(const char *provider, bool create)
{
	HealthSlot *free_slot = NULL;
	int			i;

	for (i = 0; i < HEALTH_SLOTS; i++)
	{
		HealthSlot *s = &health->slots[i];

		if (s->dboid == MyDatabaseId && strcmp(s->provider, provider) == 0)
			return s;
		if (s->dboid == InvalidOid && free_slot == NULL)
			free_slot = s;
	}
	if (!create || free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(HealthSlot));
	free_slot->dboid = MyDatabaseId;
	strlcpy(free_slot->provider, provider, NAMEDATALEN);
	return free_slot;
}

bool
md_health_admit(MdFetch *f)
{
	HealthSlot *s;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz open_until = 0;
	TimestampTz rate_until = 0;
	bool		admit = true;

	if (health == NULL)
		return true;
	LWLockAcquire(health_lock, LW_EXCLUSIVE);
	s = find_slot(f->provider, false);
	if (s != NULL)
	{
		if (now < s->rate_limited_until)
		{
			admit = false;
			rate_until = s->rate_limited_until;
		}
		else if (md_circuit_breaker_failures > 0 &&
				 s->consecutive_failures >= md_circuit_breaker_failures)
		{
			if (now < s->open_until)
			{
				admit = false;
				open_until = s->open_until;
			}
			else
			{
				/* half-open: this fetch is the trial, the others keep out */
				s->open_until = now + (int64) md_circuit_breaker_cooldown * USECS_PER_SEC;
			}
		}
	}
	LWLockRelease(health_lock);

	if (rate_until != 0)
	{
		int			wait = (int) ((rate_until - now + USECS_PER_SEC - 1) / USECS_PER_SEC);

		md_fetch_rate_limited(f, Max(wait, 1), "waiting for the provider's retry time");
	}
	else if (open_until != 0)
		md_fetch_fail(f, MD_UNAVAILABLE,
					  "provider %s unavailable: circuit breaker open after %d failures in a row",
					  f->provider, md_circuit_breaker_failures);
	return admit;
}

void
md_health_record(const MdFetch *f)
{
	HealthSlot *s;
	TimestampTz now = GetCurrentTimestamp();

	if (health == NULL)
		return;
	LWLockAcquire(health_lock, LW_EXCLUSIVE);
	s = find_slot(f->provider, true);
	if (s != NULL)
	{
		s->requests++;
		if (f->latency_ms > 0 || f->http_status != 0)
		{
			s->latencies[s->next_latency] = (float4) f->latency_ms;
			s->next_latency = (s->next_latency + 1) % LATENCY_RING;
			s->nlatencies = Min(s->nlatencies + 1, LATENCY_RING);
		}
		switch (f->cls)
		{
			case MD_OK:
			case MD_UNKNOWN_SYMBOL:
			case MD_NO_DATA:
				s->consecutive_failures = 0;
				s->open_until = 0;
				s->last_success_at = now;
				break;
			case MD_UNAVAILABLE:
			case MD_MALFORMED:
				s->consecutive_failures++;
				if (md_circuit_breaker_failures > 0 &&
					s->consecutive_failures >= md_circuit_breaker_failures)
					s->open_until = now + (int64) md_circuit_breaker_cooldown * USECS_PER_SEC;
				break;
			case MD_RATE_LIMITED:
				s->rate_limited_until = now + (int64) f->retry_after * USECS_PER_SEC;
				break;
			case MD_AUTH_FAILED:
				break;
		}
		if (f->cls != MD_OK)
		{
			s->failures++;
			s->last_error_at = now;
			s->last_error_class = (int) f->cls;
			strlcpy(s->last_error, f->message ? f->message : "", ERROR_LEN);
		}
	}
	LWLockRelease(health_lock);
}

bool
md_health_take_token(const char *provider, int per_minute, int *wait_s)
{
	HealthSlot *s;
	TimestampTz now = GetCurrentTimestamp();
	double		rate = per_minute / 60.0e6;	/* tokens per microsecond */
	bool		taken = true;

	if (health == NULL)
		return true;
	LWLockAcquire(health_lock, LW_EXCLUSIVE);
	s = find_slot(provider, true);
	if (s != NULL)
	{
		if (s->tokens_at == 0)
			s->tokens = per_minute;
		else
			s->tokens = Min((double) per_minute, s->tokens + (now - s->tokens_at) * rate);
		s->tokens_at = now;
		if (s->tokens >= 1.0)
			s->tokens -= 1.0;
		else
		{
			taken = false;
			*wait_s = (int) ceil((1.0 - s->tokens) / rate / 1.0e6);
		}
	}
	LWLockRelease(health_lock);
	return taken;
}

static int
cmp_float4(const void *a, const void *b)
{
	float4		x = *(const float4 *) a;
	float4		y = *(const float4 *) b;

	return (x > y) - (x < y);
}

PG_FUNCTION_INFO_V1(md_provider_health);

/*
 * md._provider_health() -> setof (provider, consecutive_failures,
 * circuit_open_until, rate_limited_until, last_success_at, last_error_at,
 * last_error_class, last_error, requests, failures, p50_ms, p99_ms)
 */
Datum
md_provider_health(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = md_status_rows(fcinfo);
	int			i;

	if (health == NULL)
		PG_RETURN_VOID();

	LWLockAcquire(health_lock, LW_SHARED);
	for (i = 0; i < HEALTH_SLOTS; i++)
	{
		HealthSlot *s = &health->slots[i];
		Datum		values[12];
		bool		nulls[12] = {false};
		float4		sorted[LATENCY_RING];

		if (s->dboid != MyDatabaseId)
			continue;
		values[0] = CStringGetTextDatum(s->provider);
		values[1] = Int32GetDatum(s->consecutive_failures);
		values[2] = TimestampTzGetDatum(s->open_until);
		nulls[2] = (s->open_until == 0 || md_circuit_breaker_failures == 0 ||
					s->consecutive_failures < md_circuit_breaker_failures);
		md_status_time(values, nulls, 3, s->rate_limited_until);
		md_status_time(values, nulls, 4, s->last_success_at);
		md_status_time(values, nulls, 5, s->last_error_at);
		nulls[6] = nulls[7] = (s->last_error_at == 0);
		if (!nulls[6])
		{
			values[6] = CStringGetTextDatum(md_error_class_word((MdErrorClass) s->last_error_class));
			values[7] = CStringGetTextDatum(s->last_error);
		}
		values[8] = Int64GetDatum(s->requests);
		values[9] = Int64GetDatum(s->failures);
		nulls[10] = nulls[11] = (s->nlatencies == 0);
		if (s->nlatencies > 0)
		{
			int			n = s->nlatencies;

			memcpy(sorted, s->latencies, sizeof(float4) * n);
			qsort(sorted, n, sizeof(float4), cmp_float4);
			/* nearest rank */
			values[10] = Float8GetDatum(sorted[(int) ceil(0.50 * n) - 1]);
			values[11] = Float8GetDatum(sorted[(int) ceil(0.99 * n) - 1]);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(health_lock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(md_provider_health_reset);

/*
 * md._provider_health_reset(provider) -> boolean: the provider is asked
 * again at once: no failures in a row, circuit closed, no Retry-After, a
 * full request budget. Its counters and latencies stay (they are history).
 */
Datum
md_provider_health_reset(PG_FUNCTION_ARGS)
{
	char	   *provider = text_to_cstring(PG_GETARG_TEXT_PP(0));
	HealthSlot *s;

	if (health == NULL)
		PG_RETURN_BOOL(false);
	LWLockAcquire(health_lock, LW_EXCLUSIVE);
	s = find_slot(provider, false);
	if (s != NULL)
	{
		s->consecutive_failures = 0;
		s->open_until = 0;
		s->rate_limited_until = 0;
		s->tokens_at = 0;
	}
	LWLockRelease(health_lock);
	PG_RETURN_BOOL(s != NULL);
}
