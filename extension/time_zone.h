/*-------------------------------------------------------------------------
 *
 * extension/time_zone.h
 *	  Whether PostgreSQL knows a time zone by that name.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_TIME_ZONE_H
#define MD_TIME_ZONE_H

#include <stdbool.h>

/* true when AT TIME ZONE accepts the name as a full zone */
extern bool md_time_zone_known(const char *name);

#endif							/* MD_TIME_ZONE_H */
