/*-------------------------------------------------------------------------
 *
 * extension/history_page.c
 *	  One page of history: the bars a parser reads, checked as a whole.
 *
 * A page is all or nothing: the first inconsistent bar (high below low,
 * a negative price or volume) or a time given twice rejects the whole
 * page as malformed, so nothing half-parsed is ever stored. A bar without
 * prices (Yahoo's null entries) is skipped, not stored as zeros; bars
 * outside the asked range (Yahoo's live bar after the end) are dropped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

#include "fetch_outcome.h"
#include "history.h"
#include "json_util.h"

bool
md_bar_step(const Interval *interval, MdBarStep *step)
{
	if (interval->month > 0 && interval->day == 0 && interval->time == 0)
	{
		step->unit = MD_UNIT_MONTH;
		step->count = interval->month;
		return true;
	}
	if (interval->month == 0 && interval->day > 0 && interval->time == 0)
	{
		step->unit = interval->day % 7 == 0 ? MD_UNIT_WEEK : MD_UNIT_DAY;
		step->count = interval->day % 7 == 0 ? interval->day / 7 : interval->day;
		return true;
	}
	/* '24 hours' is a day of bars at every provider */
	if (interval->month == 0 && interval->day == 0 && interval->time > 0 &&
		interval->time % USECS_PER_DAY == 0)
	{
		step->unit = MD_UNIT_DAY;
		step->count = (int) (interval->time / USECS_PER_DAY);
		return true;
	}
	if (interval->month == 0 && interval->day == 0 && interval->time > 0 &&
		interval->time % USECS_PER_MINUTE == 0 && interval->time / USECS_PER_MINUTE <= INT_MAX)
	{
		step->unit = MD_UNIT_MINUTE;
		step->count = (int) (interval->time / USECS_PER_MINUTE);
		return true;
	}
	return false;
}

int64
md_bar_step_usecs(MdBarStep step)
{
	switch (step.unit)
	{
		case MD_UNIT_MINUTE:
			return step.count * USECS_PER_MINUTE;
		case MD_UNIT_DAY:
			return step.count * USECS_PER_DAY;
		case MD_UNIT_WEEK:
			return step.count * 7 * USECS_PER_DAY;
		case MD_UNIT_MONTH:
			break;
	}
	return 0;
}

int64
md_epoch_seconds(TimestampTz ts)
{
	return ts / USECS_PER_SEC + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

void
md_history_bars_alloc(MdHistoryPage *p, int n)
{
	p->bars = palloc(sizeof(MdBar) * Max(n, 1));
	p->nbars = 0;
}

void
md_history_malformed(MdHistoryPage *p, const char *problem)
{
	md_fetch_malformed(&p->fetch, problem);
	p->nbars = 0;
	p->nevents = 0;
	p->next_path = NULL;
}

static bool
negative(Numeric n)
{
	return n != NULL && !md_numeric_positive(n) && !md_numeric_is_zero(n);
}

bool
md_history_add_bar(MdHistoryPage *p, TimestampTz ts, Numeric open, Numeric high,
				   Numeric low, Numeric close, Numeric volume)
{
	MdBar	   *bar;

	if (open == NULL || high == NULL || low == NULL || close == NULL)
	{
		p->nskipped++;
		return true;
	}
	if (negative(open) || negative(high) || negative(low) || negative(close))
	{
		md_history_malformed(p, "a bar has a negative price");
		return false;
	}
	if (negative(volume))
	{
		md_history_malformed(p, "a bar has a negative volume");
		return false;
	}
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(high),
											 NumericGetDatum(low))) < 0)
	{
		md_history_malformed(p, "a bar has its high below its low");
		return false;
	}
	bar = &p->bars[p->nbars++];
	bar->ts = ts;
	bar->open = open;
	bar->high = high;
	bar->low = low;
	bar->close = close;
	bar->volume = volume;
	return true;
}

void
md_history_add_event(MdHistoryPage *p, TimestampTz ts, MdEventKind kind, Numeric value)
{
	p->events = p->nevents == 0 ? palloc(sizeof(MdEvent) * 8)
		: (p->nevents % 8 == 0 ? repalloc(p->events, sizeof(MdEvent) * (p->nevents + 8))
		   : p->events);
	p->events[p->nevents].ts = ts;
	p->events[p->nevents].kind = kind;
	p->events[p->nevents].value = value;
	p->nevents++;
}

static int
bar_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const MdBar *) a)->ts;
	TimestampTz y = ((const MdBar *) b)->ts;

	return x < y ? -1 : (x > y ? 1 : 0);
}

bool
md_history_finish_page(MdHistoryPage *p)
{
	int			kept = 0;
	int			i;
	bool		minor;

	if (p->fetch.cls != MD_OK)
		return false;
	/* Polygon with sort=desc and Alpha Vantage answer newest first */
	if (p->nbars > 1)
		qsort(p->bars, p->nbars, sizeof(MdBar), bar_cmp);
	for (i = 1; i < p->nbars; i++)
		if (p->bars[i].ts == p->bars[i - 1].ts)
		{
			md_history_malformed(p, "two bars at the same time");
			return false;
		}
	minor = md_currency_major(&p->fetch.currency);
	for (i = 0; i < p->nbars; i++)
	{
		MdBar		bar = p->bars[i];

		if (bar.ts < p->from || bar.ts >= p->to)
		{
			p->ndropped++;
			continue;
		}
		if (minor)
		{
			bar.open = md_minor_to_major(bar.open);
			bar.high = md_minor_to_major(bar.high);
			bar.low = md_minor_to_major(bar.low);
			bar.close = md_minor_to_major(bar.close);
		}
		p->bars[kept++] = bar;
	}
	p->nbars = kept;
	if (minor)
		for (i = 0; i < p->nevents; i++)
			if (p->events[i].kind == MD_EVENT_DIVIDEND)
				p->events[i].value = md_minor_to_major(p->events[i].value);
	return true;
}

void
md_history_read_arrays(MdHistoryPage *p, JsonbValue *times, const char *times_name,
					   JsonbContainer *columns, const char *const names[5])
{
	JsonbValue *cols[5];
	int			n = md_json_array_size(times);
	int			i;
	int			c;

	if (n < 0)
	{
		md_history_malformed(p, psprintf("%s is not an array", times_name));
		return;
	}
	md_history_bars_alloc(p, n);
	if (n == 0)
		return;
	for (c = 0; c < 5; c++)
	{
		cols[c] = columns ? md_json_get(columns, names[c], NULL) : NULL;
		if (md_json_array_size(cols[c]) != n)
		{
			md_history_malformed(p, psprintf("%s is not an array as long as %s", names[c], times_name));
			return;
		}
	}
	for (i = 0; i < n; i++)
	{
		Numeric		v[5];
		TimestampTz ts;

		if (!md_json_epoch(md_json_elem(times, i), 1, &ts))
		{
			md_history_malformed(p, psprintf("an element of %s is not epoch seconds", times_name));
			return;
		}
		for (c = 0; c < 5; c++)
			if (!md_json_number_or_null(md_json_elem(cols[c], i), &v[c]))
			{
				md_history_malformed(p, psprintf("an element of %s is not a number", names[c]));
				return;
			}
		if (!md_history_add_bar(p, ts, v[0], v[1], v[2], v[3], v[4]))
			return;
	}
}
