/*-------------------------------------------------------------------------
 *
 * extension/redis.h
 *	  Redis write-through of new latest prices, at commit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_REDIS_H
#define MD_REDIS_H

/* true when marketdata.redis_url is set */
extern bool md_redis_enabled(void);

/* Queue a new latest price for Redis; written when the transaction commits. */
extern void md_redis_queue_price(const char *provider, const char *symbol,
								 const char *json, const char *event);

#endif							/* MD_REDIS_H */
