/*-------------------------------------------------------------------------
 *
 * extension/marketdata.c
 *	  Module entry: settings now, background workers later.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;
	md_define_gucs();
}
