/*-------------------------------------------------------------------------
 *
 * extension/cache_stats.c
 *	  Counters of the Redis write-through, shared by every process.
 *
 * Every backend and worker that commits new latest prices writes them to
 * Redis (redis.c) and counts here the writes and failures, which
 * md._cache_status() reads for the md.cache_status view.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "storage/spin.h"

#include "cache_stats.h"
#include "shmem.h"
#include "status_row.h"

typedef struct MdCacheStats
{
	slock_t		mutex;
	int64		writes;
	int64		failures;
	char		last_error[MD_CACHE_ERROR_LEN];
	TimestampTz last_error_at;
	TimestampTz last_write_at;
} MdCacheStats;

static MdCacheStats *cache_stats = NULL;

/* this process's last failure, not yet taken */
static char my_failure[MD_CACHE_ERROR_LEN];
static bool my_failure_new = false;

static void
cache_stats_init(void *ptr)
{
	SpinLockInit(&((MdCacheStats *) ptr)->mutex);
}

void
md_cache_stats_init(void)
{
	md_shmem_add("marketdata cache stats", sizeof(MdCacheStats), (void **) &cache_stats,
				 NULL, cache_stats_init);
}

void
md_cache_count_writes(int n)
{
	TimestampTz now = GetCurrentTimestamp();

	if (cache_stats == NULL)
		return;
	SpinLockAcquire(&cache_stats->mutex);
	cache_stats->writes += n;
	cache_stats->last_write_at = now;
	SpinLockRelease(&cache_stats->mutex);
}

void
md_cache_count_failure(const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	strlcpy(my_failure, error, sizeof(my_failure));
	my_failure_new = true;
	if (cache_stats == NULL)
		return;
	SpinLockAcquire(&cache_stats->mutex);
	cache_stats->failures++;
	strlcpy(cache_stats->last_error, error, sizeof(cache_stats->last_error));
	cache_stats->last_error_at = now;
	SpinLockRelease(&cache_stats->mutex);
}

const char *
md_cache_take_failure(void)
{
	if (!my_failure_new)
		return NULL;
	my_failure_new = false;
	return my_failure;
}

PG_FUNCTION_INFO_V1(md_cache_status);

/* md._cache_status() -> (writes, failures, last_write_at, last_error, last_error_at) */
Datum
md_cache_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	MdCacheStats copy;
	Datum		values[5];
	bool		nulls[5] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(&copy, 0, sizeof(copy));
	if (cache_stats != NULL)
	{
		SpinLockAcquire(&cache_stats->mutex);
		memcpy(&copy, cache_stats, sizeof(copy));
		SpinLockRelease(&cache_stats->mutex);
	}
	values[0] = Int64GetDatum(copy.writes);
	values[1] = Int64GetDatum(copy.failures);
	md_status_time(values, nulls, 2, copy.last_write_at);
	md_status_text(values, nulls, 3, copy.last_error);
	md_status_time(values, nulls, 4, copy.last_error_at);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
