/*-------------------------------------------------------------------------
 *
 * extension/cache_stats.h
 *	  Counters of the Redis write-through, shared by every process
 *	  (md.cache_status).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_CACHE_STATS_H
#define MD_CACHE_STATS_H

#define MD_CACHE_ERROR_LEN 256

/* shared memory set-up, from _PG_init */
extern void md_cache_stats_init(void);

extern void md_cache_count_writes(int n);
extern void md_cache_count_failure(const char *error);

/*
 * The last failure this process counted since it last asked, or NULL: a
 * worker repeats it in its own status. Valid until the next failure.
 */
extern const char *md_cache_take_failure(void);

#endif							/* MD_CACHE_STATS_H */
