/*-------------------------------------------------------------------------
 *
 * extension/sandbox_walk.c
 *	  The sandbox's deterministic random walk, for its prices and bars.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"

#include "sandbox_walk.h"

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

void
md_walk_start(MdWalk *w, const char *symbol, int64 day)
{
	int64		k;

	w->seed = hash_bytes_extended((const unsigned char *) symbol, strlen(symbol), 20200101);
	w->day = day;
	w->today = log(10.0 + (double) (w->seed % 49000) / 100.0);
	for (k = 0; k < day; k++)
		w->today += DAILY_SIGMA * step(w->seed, (uint64) k);
	w->tomorrow = w->today + DAILY_SIGMA * step(w->seed, (uint64) day);
}

void
md_walk_next_day(MdWalk *w)
{
	w->day++;
	w->today = w->tomorrow;
	w->tomorrow = w->today + DAILY_SIGMA * step(w->seed, (uint64) w->day);
}

void
md_walk_minutes(const MdWalk *w, double levels[MINUTES_PER_DAY])
{
	uint64		minute_seed = mix(w->seed ^ UINT64CONST(0x5A5A5A5A), (uint64) w->day);
	double		whole = 0.0;
	int			j;

	for (j = 0; j < MINUTES_PER_DAY; j++)
	{
		levels[j] = whole;
		whole += MINUTE_SIGMA * step(minute_seed, (uint64) j);
	}
	/* the bridge: the walk pinned to 0 at both ends of the day */
	for (j = 0; j < MINUTES_PER_DAY; j++)
		levels[j] = w->today + (w->tomorrow - w->today) * j / MINUTES_PER_DAY +
			levels[j] - whole * j / MINUTES_PER_DAY;
}

int64
md_walk_volume(const MdWalk *w, int64 minute)
{
	return (int64) (1000 + mix(w->seed, (uint64) minute) % 100000);
}
