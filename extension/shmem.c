/*-------------------------------------------------------------------------
 *
 * extension/shmem.c
 *	  Every shared-memory struct of marketdata, through one hook chain.
 *
 * A *part* is one struct (provider health, kept responses, worker slots,
 * wake-ups, cache counters). Each file adds its part from _PG_init; the
 * first addition installs the request and start-up hooks, which then
 * serve every part, so the chain of PostgreSQL's hooks holds marketdata
 * once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "shmem.h"

#define MAX_PARTS 8

typedef struct ShmemPart
{
	const char *name;
	Size		size;
	void	  **ptr;
	LWLock	  **lock;
	void		(*init) (void *ptr);
} ShmemPart;

static ShmemPart parts[MAX_PARTS];
static int	nparts = 0;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
request_shmem(void)
{
	int			i;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	for (i = 0; i < nparts; i++)
	{
		RequestAddinShmemSpace(MAXALIGN(parts[i].size));
		if (parts[i].lock != NULL)
			RequestNamedLWLockTranche(parts[i].name, 1);
	}
}

static void
startup_shmem(void)
{
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (i = 0; i < nparts; i++)
	{
		ShmemPart  *p = &parts[i];
		bool		found;
		void	   *ptr = ShmemInitStruct(p->name, p->size, &found);

		if (!found)
		{
			memset(ptr, 0, p->size);
			if (p->init != NULL)
				p->init(ptr);
		}
		*p->ptr = ptr;
		if (p->lock != NULL)
			*p->lock = &(GetNamedLWLockTranche(p->name))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
md_shmem_add(const char *name, Size size, void **ptr, LWLock **lock,
			 void (*init) (void *ptr))
{
	if (!process_shared_preload_libraries_in_progress)
		elog(ERROR, "marketdata shared memory must be reserved from _PG_init");
	if (nparts == MAX_PARTS)
		elog(ERROR, "too many marketdata shared-memory parts");
	if (nparts == 0)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = request_shmem;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = startup_shmem;
	}
	parts[nparts++] = (ShmemPart) {name, size, ptr, lock, init};
}
