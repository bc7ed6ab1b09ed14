/*-------------------------------------------------------------------------
 *
 * extension/provider_sandbox.c
 *	  The sandbox: deterministic synthetic prices, no network.
 *
 * It lets `make run` show the whole flow on a machine without internet;
 * md.providers has it with failover = false, so it is used only when
 * named. A symbol's price is a seeded random walk of its log price: one
 * step per UTC day since 2020-01-01, and within a day a Brownian bridge of
 * one step per minute between that day's and the next day's level, so the
 * path is continuous and the same everywhere for the same symbol and
 * minute. The price is stamped with the start of the current minute.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "fetch_outcome.h"

/* 2020-01-01 00:00 UTC as seconds since the Unix epoch */
#define SANDBOX_ORIGIN 1577836800
#define MINUTES_PER_DAY 1440
#define DAILY_SIGMA 0.015
#define MINUTE_SIGMA 0.0006

/* a splitmix64 step: a well-mixed 64-bit value from a seed and an index */
static uint64
mix(uint64 seed, uint64 i)
{
	uint64		z = seed + (i + 1) * UINT64CONST(0x9E3779B97F4A7C15);

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* a step of unit variance: uniform on [-sqrt 3, sqrt 3] */
static double
step(uint64 seed, uint64 i)
{
	double		u = (double) (mix(seed, i) >> 11) / (double) (UINT64CONST(1) << 53);

	return (u - 0.5) * 2.0 * sqrt(3.0);
}

/* the log price at the start of day d */
static double
day_level(uint64 seed, double base, int64 d)
{
	double		level = log(base);
	int64		k;

	for (k = 0; k < d; k++)
		level += DAILY_SIGMA * step(seed, (uint64) k);
	return level;
}

static void
sandbox_answer(MdFetch *f)
{
	uint64		seed = hash_bytes_extended((const unsigned char *) f->symbol,
										   strlen(f->symbol), 20200101);
	double		base = 10.0 + (double) (seed % 49000) / 100.0;
	int64		now_s = (int64) (GetCurrentTimestamp() / USECS_PER_SEC) +
		(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	int64		minutes = Max(0, (now_s - SANDBOX_ORIGIN) / 60);
	int64		d = minutes / MINUTES_PER_DAY;
	int			m = (int) (minutes % MINUTES_PER_DAY);
	uint64		minute_seed = mix(seed ^ UINT64CONST(0x5A5A5A5A), (uint64) d);
	double		today = day_level(seed, base, d);
	double		tomorrow = today + DAILY_SIGMA * step(seed, (uint64) d);
	double		walk = 0.0;
	double		whole = 0.0;
	double		level;
	double		price;
	int			j;

	for (j = 0; j < MINUTES_PER_DAY; j++)
	{
		if (j == m)
			walk = whole;
		whole += MINUTE_SIGMA * step(minute_seed, (uint64) j);
	}
	/* the bridge: the walk pinned to 0 at both ends of the day */
	level = today + (tomorrow - today) * m / MINUTES_PER_DAY +
		walk - whole * m / MINUTES_PER_DAY;
	price = exp(level);

	f->ts = (TimestampTz) (SANDBOX_ORIGIN + minutes * 60 -
						   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) * USECS_PER_SEC;
	md_fetch_set_price(f,
					   DatumGetNumeric(DirectFunctionCall2(numeric_round,
														   DirectFunctionCall1(float8_numeric, Float8GetDatum(price)),
														   Int32GetDatum(4))),
					   "USD");
	f->volume = int64_to_numeric((int64) (1000 + mix(seed, (uint64) minutes) % 100000));
	f->responded = true;
	f->url = psprintf("sandbox:%s", f->symbol);
	f->http_status = 200;
	f->latency_ms = 0;
	f->body = psprintf("{\"symbol\":\"%s\",\"price\":%s,\"t\":" INT64_FORMAT ",\"model\":\"seeded random walk\"}",
					   f->symbol, numeric_normalize(f->price),
					   (int64) (SANDBOX_ORIGIN + minutes * 60));
	f->body_len = strlen(f->body);
}

const MdProvider md_provider_sandbox = {
	.name = "sandbox",
	.needs_key = false,
	.answer = sandbox_answer,
};
