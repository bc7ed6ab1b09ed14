/*-------------------------------------------------------------------------
 *
 * extension/sandbox_walk.h
 *	  The sandbox's deterministic random walk, for its prices and bars.
 *
 * A symbol's log price takes one step per UTC day since 2020-01-01, and
 * within a day follows a Brownian bridge of one step per minute between
 * that day's and the next day's level: continuous, and the same
 * everywhere for the same symbol and minute.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SANDBOX_WALK_H
#define MD_SANDBOX_WALK_H

/* 2020-01-01 00:00 UTC as seconds since the Unix epoch */
#define SANDBOX_ORIGIN 1577836800
#define MINUTES_PER_DAY 1440

typedef struct MdWalk
{
	uint64		seed;
	int64		day;			/* days since SANDBOX_ORIGIN */
	double		today;			/* log price at the start of day */
	double		tomorrow;		/* and of the next day */
} MdWalk;

/* the walk of symbol at the start of day (>= 0) */
extern void md_walk_start(MdWalk *w, const char *symbol, int64 day);

/* on to the next day */
extern void md_walk_next_day(MdWalk *w);

/* the log price at the start of each minute of the walk's day */
extern void md_walk_minutes(const MdWalk *w, double levels[MINUTES_PER_DAY]);

/* a minute's volume (minute counted from SANDBOX_ORIGIN) */
extern int64 md_walk_volume(const MdWalk *w, int64 minute);

#endif							/* MD_SANDBOX_WALK_H */
