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

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* a status function's rows: materialized, put one by one */
static inline ReturnSetInfo *
md_status_rows(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, 0);
	return (ReturnSetInfo *) fcinfo->resultinfo;
}

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
