/*-------------------------------------------------------------------------
 *
 * extension/guc.h
 *	  The marketdata.* settings; all defined in guc.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_GUC_H
#define MD_GUC_H

#define MD_MAX_AVERAGE_WINDOWS 16
#define MD_MAX_WINDOW 1000

/* parsed marketdata.average_windows */
extern int	md_average_window_count;
extern int	md_average_windows[MD_MAX_AVERAGE_WINDOWS];

extern int	md_max_future_skew;

extern void md_define_gucs(void);

#endif							/* MD_GUC_H */
