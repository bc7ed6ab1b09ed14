/*-------------------------------------------------------------------------
 *
 * extension/marketdata.c
 *	  Module entry: settings, shared memory (worker state, provider
 *	  health) and the launcher.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "guc.h"
#include "health.h"
#include "kept_responses.h"
#include "../worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;
	md_define_gucs();
	/* workers and shared state need the library preloaded */
	if (!process_shared_preload_libraries_in_progress)
		return;
	md_worker_state_request();
	md_health_init();
	md_kept_responses_init();
	md_launcher_register();
}
