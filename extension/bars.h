/*-------------------------------------------------------------------------
 *
 * extension/bars.h
 *	  OHLCV bars maintained by the sink (md.bars).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_BARS_H
#define MD_BARS_H

#include "postgres.h"

#include "datatype/timestamp.h"

#define MD_MAX_BAR_LEVELS 8

/* parsed marketdata.bar_intervals */
typedef struct MdBarLevels
{
	int			count;
	/* the longest a bar of any level can start before its prices (us) */
	int64		span;
} MdBarLevels;

extern MdBarLevels md_bar_levels;

/*
 * Parse marketdata.bar_intervals ("1 minute, 1 hour, 1 day"; empty: no
 * bars). False with a GUC detail message when the text is no such list.
 */
extern bool md_bar_levels_parse(const char *text, MdBarLevels *levels);

/*
 * Add the batch's new prices to the bars of their buckets at every stored
 * level. args are the sink's parameter arrays: symbols, providers, prices,
 * times, volumes; ts the n times. Call inside SPI, before the prices are
 * inserted: a price already in md.prices changes no bar.
 */
extern void md_bars_add(Datum *args, const TimestampTz *ts, int n);

/*
 * Take md_bars_add's advisory locks on the symbols of args[0] (a text[])
 * ahead of it, for work that must be ordered with the bars (they are
 * transaction locks: md_bars_add takes them again at no cost).
 */
extern void md_bars_lock(Datum *args);

#endif							/* MD_BARS_H */
