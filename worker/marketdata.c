/*-------------------------------------------------------------------------
 *
 * worker/marketdata.c
 *	  Module entry: settings, shared memory, the launcher.
 *
 * The top of the library: the one file that wires both layers, the
 * extension's shared state (extension/) and the workers (worker/). It
 * lives here because worker/ may call extension/, never the reverse.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "cache_stats.h"
#include "guc.h"
#include "health.h"
#include "kept_responses.h"
#include "wake.h"
#include "worker.h"

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
	md_wake_init();
	md_worker_state_init();
	md_cache_stats_init();
	md_health_init();
	md_kept_responses_init();
	md_launcher_register();
}
