/*-------------------------------------------------------------------------
 *
 * extension/partitions.c
 *	  Monthly partitions of md.prices and md.bars, created as prices arrive.
 *
 * md.prices is partitioned by range of ts, one partition per UTC month,
 * named md.prices_YYYYMM, md.bars likewise by bucket (md.bars_YYYYMM). The
 * SQL functions md._ensure_price_partition() and md._ensure_bar_partition()
 * create one (SECURITY DEFINER, serialised by a lock). This file remembers
 * which months exist so a batch costs no catalog look-up; the memory is
 * forgotten whenever the parent's relcache entry is invalidated, which
 * happens when a partition is attached, detached or dropped.
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

/* one time-partitioned table and the months known to have a partition */
typedef struct PartitionedTable
{
	const char *relname;		/* in schema md */
	const char *ensure_sql;		/* creates the partition of $1's month */
	int			months[MAX_KNOWN_MONTHS];
	int			count;
	Oid			relid;
	SPIPlanPtr	plan;
} PartitionedTable;

static PartitionedTable prices_table = {.relname = "prices", .ensure_sql = "SELECT md._ensure_price_partition($1)"};
static PartitionedTable bars_table = {.relname = "bars", .ensure_sql = "SELECT md._ensure_bar_partition($1)"};
static bool callback_registered = false;

static void
forget_months(Datum arg, Oid relid)
{
	/* a partition attached, detached or dropped invalidates the parent */
	if (relid == InvalidOid || relid == prices_table.relid)
		prices_table.count = 0;
	if (relid == InvalidOid || relid == bars_table.relid)
		bars_table.count = 0;
}

static bool
month_known(PartitionedTable *table, int month)
{
	int			i;

	for (i = 0; i < table->count; i++)
		if (table->months[i] == month)
			return true;
	return false;
}

static void
remember_month(PartitionedTable *table, int month)
{
	if (table->count == MAX_KNOWN_MONTHS)
		table->count = 0;
	table->months[table->count++] = month;
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
ensure_month(PartitionedTable *table, TimestampTz ts)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1] = {TimestampTzGetDatum(ts)};
	int			month = month_of(ts);

	if (month_known(table, month))
		return;
	md_spi_run(md_spi_plan(&table->plan, table->ensure_sql, 1, argtypes),
			   args, NULL, false, 1, SPI_OK_SELECT, "creating a partition");
	remember_month(table, month);
}

static void
start(PartitionedTable *table)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(forget_months, (Datum) 0);
		callback_registered = true;
	}
	/* the extension may have been dropped and created again */
	table->relid = get_relname_relid(table->relname, get_namespace_oid("md", false));
}

void
md_partitions_ensure(const TimestampTz *ts, int n)
{
	int			i;

	start(&prices_table);
	for (i = 0; i < n; i++)
		ensure_month(&prices_table, ts[i]);
}

void
md_bar_partitions_ensure(const TimestampTz *ts, int n, int64 span)
{
	int			i;

	start(&bars_table);
	for (i = 0; i < n; i++)
	{
		TimestampTz t;

		/* steps of 28 days visit every month, none is shorter */
		for (t = ts[i] - span; t < ts[i]; t += 28 * USECS_PER_DAY)
			ensure_month(&bars_table, t);
		ensure_month(&bars_table, ts[i]);
	}
}
