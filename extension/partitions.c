/*-------------------------------------------------------------------------
 *
 * extension/partitions.c
 *	  Monthly partitions of md.prices, created as prices arrive.
 *
 * md.prices is partitioned by range of ts, one partition per UTC month,
 * named md.prices_YYYYMM. The SQL function md._ensure_price_partition()
 * creates one (SECURITY DEFINER, serialised by an advisory lock). This file
 * remembers which months exist so a batch costs no catalog look-up; the
 * memory is forgotten whenever md.prices' relcache entry is invalidated,
 * which happens when a partition is attached, detached or dropped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

#include "partitions.h"
#include "spi_util.h"

#define MAX_KNOWN_MONTHS 256

static int	known_months[MAX_KNOWN_MONTHS];
static int	known_count = 0;
static Oid	prices_relid = InvalidOid;
static bool callback_registered = false;
static SPIPlanPtr ensure_plan = NULL;

static void
forget_months(Datum arg, Oid relid)
{
	/* a partition attached, detached or dropped invalidates the parent */
	if (relid == InvalidOid || relid == prices_relid)
		known_count = 0;
}

static bool
month_known(int month)
{
	int			i;

	for (i = 0; i < known_count; i++)
		if (known_months[i] == month)
			return true;
	return false;
}

static void
remember_month(int month)
{
	if (known_count == MAX_KNOWN_MONTHS)
		known_count = 0;
	known_months[known_count++] = month;
}

/* months since year 0, in UTC */
static int
month_of(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return tm.tm_year * 12 + (tm.tm_mon - 1);
}

static void
create_month(TimestampTz ts)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1] = {TimestampTzGetDatum(ts)};

	md_spi_run(md_spi_plan(&ensure_plan, "SELECT md._ensure_price_partition($1)",
						   1, argtypes),
			   args, NULL, false, 1, SPI_OK_SELECT, "creating a partition of md.prices");
}

void
md_partitions_ensure(const TimestampTz *ts, int n)
{
	int			i;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(forget_months, (Datum) 0);
		callback_registered = true;
	}
	/* the extension may have been dropped and created again */
	prices_relid = get_relname_relid("prices", get_namespace_oid("md", false));
	for (i = 0; i < n; i++)
	{
		int			month = month_of(ts[i]);

		if (month_known(month))
			continue;
		create_month(ts[i]);
		remember_month(month);
	}
}
