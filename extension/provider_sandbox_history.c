/*-------------------------------------------------------------------------
 *
 * extension/provider_sandbox_history.c
 *	  The sandbox's history: bars of the same walk as its prices.
 *
 * A bar's open is the walk at its start, its close the walk at its end,
 * its high and low the extremes of the minutes in between, its volume
 * the sum of the minutes' volumes: so every bar agrees with the prices
 * the sandbox quotes. Only whole bars that have ended are given; the walk
 * starts on 2020-01-01. Days, weeks and months are UTC ones.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "history.h"
#include "json_util.h"
#include "sandbox_walk.h"

/* a whole year of minute bars is 525600: more in one call is no sandbox */
#define SANDBOX_MAX_BARS 600000

static bool
sandbox_supports(MdBarStep step, const char **why)
{
	*why = "The sandbox serves whole minutes that divide a day, days, weeks and months.";
	return step.count > 0 && (step.unit != MD_UNIT_MINUTE || MINUTES_PER_DAY % step.count == 0);
}

/* a year per request, so that one request stays small */
static TimestampTz
sandbox_request_end(MdBarStep step, TimestampTz from, TimestampTz to)
{
	int64		span = (step.unit == MD_UNIT_MINUTE ? 365 : 366 * 10) * USECS_PER_DAY;

	return to - from <= span ? to : from + span;
}

static Numeric
price(double level)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_round,
											   DirectFunctionCall1(float8_numeric,
																   Float8GetDatum(exp(level))),
											   Int32GetDatum(4)));
}

/* the start of the bar after the one starting at t (UTC calendar) */
static int64
next_start_minute(MdBarStep step, int64 minute)
{
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz ts = UNIX_EPOCH_TIMESTAMPTZ + (SANDBOX_ORIGIN + minute * 60) * USECS_PER_SEC;

	switch (step.unit)
	{
		case MD_UNIT_MINUTE:
			return minute + step.count;
		case MD_UNIT_DAY:
			return minute + (int64) step.count * MINUTES_PER_DAY;
		case MD_UNIT_WEEK:
			return minute + (int64) step.count * 7 * MINUTES_PER_DAY;
		case MD_UNIT_MONTH:
			break;
	}
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "sandbox time out of range");
	tm.tm_mon += step.count;
	while (tm.tm_mon > 12)
	{
		tm.tm_mon -= 12;
		tm.tm_year++;
	}
	if (tm2timestamp(&tm, 0, NULL, &ts) != 0)
		elog(ERROR, "sandbox time out of range");
	return ((ts - UNIX_EPOCH_TIMESTAMPTZ) / USECS_PER_SEC - SANDBOX_ORIGIN) / 60;
}

/* the first bar start at or after minute */
static int64
first_start_minute(MdBarStep step, int64 minute)
{
	int64		start;

	switch (step.unit)
	{
		case MD_UNIT_MINUTE:
			return (minute + step.count - 1) / step.count * step.count;
		case MD_UNIT_DAY:
			return (minute + MINUTES_PER_DAY - 1) / MINUTES_PER_DAY * MINUTES_PER_DAY;
		case MD_UNIT_WEEK:
			/* weeks start on Monday; 2020-01-01 was a Wednesday */
			start = (minute + 2 * MINUTES_PER_DAY + 7 * MINUTES_PER_DAY - 1) /
				(7 * MINUTES_PER_DAY) * (7 * MINUTES_PER_DAY) - 2 * MINUTES_PER_DAY;
			return start;
		case MD_UNIT_MONTH:
			break;
	}
	for (start = 0; start < minute; start = next_start_minute(step, start))
		;
	return start;
}

static void
sandbox_history_answer(MdHistoryPage *p)
{
	MdFetch    *f = &p->fetch;
	int64		now_minute = ((GetCurrentTimestamp() - UNIX_EPOCH_TIMESTAMPTZ) / USECS_PER_SEC -
							  SANDBOX_ORIGIN) / 60;
	int64		from_minute = Max(0, ((p->from - UNIX_EPOCH_TIMESTAMPTZ) / USECS_PER_SEC -
									  SANDBOX_ORIGIN + 59) / 60);
	int64		to_minute = Min(now_minute, ((p->to - UNIX_EPOCH_TIMESTAMPTZ) / USECS_PER_SEC -
											 SANDBOX_ORIGIN) / 60);
	double		levels[MINUTES_PER_DAY];
	MdWalk		walk;
	int64		start;
	int			capacity = 64;

	f->responded = true;
	f->http_status = 200;
	f->latency_ms = 0;
	f->currency = pstrdup("USD");
	f->url = psprintf("sandbox:%s/history?from=" INT64_FORMAT "&to=" INT64_FORMAT,
					  f->symbol, md_epoch_seconds(p->from), md_epoch_seconds(p->to));
	md_history_bars_alloc(p, capacity);

	start = first_start_minute(p->step, from_minute);
	if (start < to_minute)
	{
		md_walk_start(&walk, f->symbol, start / MINUTES_PER_DAY);
		md_walk_minutes(&walk, levels);
	}
	while (start < to_minute && p->nbars < SANDBOX_MAX_BARS)
	{
		int64		end = next_start_minute(p->step, start);
		double		high;
		double		low;
		double		open;
		int64		volume = 0;
		int64		m;

		if (end > to_minute)
			break;
		open = high = low = levels[start % MINUTES_PER_DAY];
		for (m = start; m < end; m++)
		{
			double		level;

			if (m / MINUTES_PER_DAY != walk.day)
			{
				md_walk_next_day(&walk);
				md_walk_minutes(&walk, levels);
			}
			level = levels[m % MINUTES_PER_DAY];
			high = Max(high, level);
			low = Min(low, level);
			volume += md_walk_volume(&walk, m);
		}
		/* the close: the walk at the bar's end, the next bar's open */
		if (end / MINUTES_PER_DAY != walk.day)
		{
			md_walk_next_day(&walk);
			md_walk_minutes(&walk, levels);
		}
		high = Max(high, levels[end % MINUTES_PER_DAY]);
		low = Min(low, levels[end % MINUTES_PER_DAY]);
		if (p->nbars == capacity)
		{
			capacity *= 2;
			p->bars = repalloc(p->bars, sizeof(MdBar) * capacity);
		}
		md_history_add_bar(p, UNIX_EPOCH_TIMESTAMPTZ + (SANDBOX_ORIGIN + start * 60) * USECS_PER_SEC,
						   price(open), price(high), price(low),
						   price(levels[end % MINUTES_PER_DAY]), int64_to_numeric(volume));
		start = end;
	}
	f->body = psprintf("{\"symbol\":\"%s\",\"bars\":%d,\"model\":\"seeded random walk\"}",
					   f->symbol, p->nbars);
	f->body_len = strlen(f->body);
}

const MdHistoryProvider md_history_sandbox = {
	.name = "sandbox",
	.supports = sandbox_supports,
	.request_end = sandbox_request_end,
	.answer = sandbox_history_answer,
};
