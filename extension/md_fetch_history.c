/*-------------------------------------------------------------------------
 *
 * extension/md_fetch_history.c
 *	  md_fetch_history(): a provider's history of one symbol, now.
 *
 * One row per page (kind 'page': its outcome), followed by the page's
 * bars and corporate events. A page the provider could not give, or gave
 * malformed, is a page row with an error class and no bars, not an error:
 * the other pages come back and every raw response is kept. Only bad
 * arguments raise. Nothing but md.raw_responses is written: storing bars
 * is the backfill's job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "history.h"
#include "provider.h"
#include "symbol.h"

#define HISTORY_COLUMNS 14

/* the first enabled failover provider that has history */
static char *
default_provider(void)
{
	ListCell   *lc;

	foreach(lc, md_providers_load())
	{
		MdProviderInfo *p = lfirst(lc);

		if (p->enabled && p->failover && p->impl != NULL && md_history_lookup(p->name) != NULL)
			return p->name;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("no provider to fetch history from"),
			 errdetail("No provider in md.providers with history is enabled for failover.")));
}

static void
put_row(ReturnSetInfo *rsinfo, Datum *values, bool *nulls)
{
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static void
return_page(ReturnSetInfo *rsinfo, MdHistoryPage *p, int pageno)
{
	Datum		values[HISTORY_COLUMNS];
	bool		nulls[HISTORY_COLUMNS];
	bool		ok = (p->fetch.cls == MD_OK);
	int			i;

	memset(nulls, true, sizeof(nulls));
	values[0] = Int32GetDatum(pageno);
	nulls[0] = false;
	values[1] = CStringGetTextDatum("page");
	nulls[1] = false;
	values[2] = TimestampTzGetDatum(p->from);
	nulls[2] = false;
	values[8] = NumericGetDatum(int64_to_numeric(p->nbars));
	nulls[8] = false;
	if (p->fetch.currency != NULL)
	{
		values[9] = CStringGetTextDatum(p->fetch.currency);
		nulls[9] = false;
	}
	if (!ok)
	{
		values[10] = CStringGetTextDatum(md_error_class_word(p->fetch.cls));
		values[11] = CStringGetTextDatum(p->fetch.message);
		nulls[10] = nulls[11] = false;
	}
	values[12] = Int32GetDatum((int32) p->fetch.http_status);
	nulls[12] = (p->fetch.http_status == 0);
	values[13] = Int64GetDatum(p->fetch.raw_response_id);
	nulls[13] = (p->fetch.raw_response_id == 0);
	put_row(rsinfo, values, nulls);

	for (i = 0; i < p->nbars; i++)
	{
		MdBar	   *b = &p->bars[i];

		values[1] = CStringGetTextDatum("bar");
		values[2] = TimestampTzGetDatum(b->ts);
		values[3] = NumericGetDatum(b->open);
		values[4] = NumericGetDatum(b->high);
		values[5] = NumericGetDatum(b->low);
		values[6] = NumericGetDatum(b->close);
		nulls[3] = nulls[4] = nulls[5] = nulls[6] = false;
		nulls[7] = (b->volume == NULL);
		if (b->volume != NULL)
			values[7] = NumericGetDatum(b->volume);
		nulls[8] = true;
		put_row(rsinfo, values, nulls);
	}
	memset(nulls + 3, true, sizeof(bool) * 5);
	for (i = 0; i < p->nevents; i++)
	{
		MdEvent    *e = &p->events[i];

		values[1] = CStringGetTextDatum(e->kind == MD_EVENT_SPLIT ? "split" : "dividend");
		values[2] = TimestampTzGetDatum(e->ts);
		values[8] = NumericGetDatum(e->value);
		nulls[8] = false;
		put_row(rsinfo, values, nulls);
	}
}

PG_FUNCTION_INFO_V1(md_fetch_history);

/* md_fetch_history(symbol, interval, from, to, provider DEFAULT NULL) */
Datum
md_fetch_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *symbol_text;
	char	   *symbol;
	char	   *provider;
	MdBarStep	step;
	MdHistoryPage *pages;
	int			npages;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null",
							i == 0 ? "symbol" : (i == 1 ? "interval" : (i == 2 ? "from" : "to")))));
	symbol_text = PG_GETARG_TEXT_PP(0);
	symbol = md_symbol_normalize_or_error(VARDATA_ANY(symbol_text),
										  VARSIZE_ANY_EXHDR(symbol_text));
	if (!md_bar_step(PG_GETARG_INTERVAL_P(1), &step))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interval must be a whole number of minutes, days, weeks or months")));
	if (TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(2)) || TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the history range must be finite")));
	provider = PG_ARGISNULL(4) ? default_provider() : text_to_cstring(PG_GETARG_TEXT_PP(4));
	pages = md_history_fetch(symbol, provider, step, PG_GETARG_TIMESTAMPTZ(2),
							 PG_GETARG_TIMESTAMPTZ(3), &npages);
	for (i = 0; i < npages; i++)
		return_page(rsinfo, &pages[i], i + 1);
	PG_RETURN_VOID();
}
