/*-------------------------------------------------------------------------
 *
 * extension/status_row.h
 *	  Columns of the status functions (md._worker_status, md._cache_status,
 *	  md._provider_health): what was never set reads as NULL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_STATUS_ROW_H
#define MD_STATUS_ROW_H

#include "utils/builtins.h"
#include "utils/timestamp.h"

/* a time, NULL when it is 0 (never happened) */
static inline void
md_status_time(Datum *values, bool *nulls, int i, TimestampTz t)
{
	values[i] = TimestampTzGetDatum(t);
	nulls[i] = (t == 0);
}

/* a text, NULL when it is empty */
static inline void
md_status_text(Datum *values, bool *nulls, int i, const char *s)
{
	nulls[i] = (s[0] == '\0');
	if (!nulls[i])
		values[i] = CStringGetTextDatum(s);
}

#endif							/* MD_STATUS_ROW_H */
