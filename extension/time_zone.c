/*-------------------------------------------------------------------------
 *
 * extension/time_zone.c
 *	  Whether PostgreSQL knows a time zone by that name: md.symbols' check
 *	  (md._time_zone_ok) and the symbols learned from providers.
 *
 * pg_tzset caches each zone it has loaded, so a check costs a hash look-up;
 * scanning pg_timezone_names reads the whole zone database each time
 * (35 ms, once per md.symbols row inserted).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"

#include "time_zone.h"

bool
md_time_zone_known(const char *name)
{
	pg_tz	   *tz;

	if (name == NULL || name[0] == '\0')
		return false;
	tz = pg_tzset(name);
	return tz != NULL && pg_tz_acceptable(tz);
}

PG_FUNCTION_INFO_V1(md_time_zone_ok);

Datum
md_time_zone_ok(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(md_time_zone_known(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}
