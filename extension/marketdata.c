/*-------------------------------------------------------------------------
 *
 * extension/marketdata.c
 *	  Module entry: settings, provider health in shared memory, and
 *	  background workers later.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "guc.h"
#include "health.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;
	md_define_gucs();
	md_health_init();
}
