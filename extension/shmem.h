/*-------------------------------------------------------------------------
 *
 * extension/shmem.h
 *	  Every shared-memory struct of marketdata, through one hook chain.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SHMEM_H
#define MD_SHMEM_H

#include "storage/lwlock.h"

/*
 * Reserve a struct of size bytes named name, from _PG_init while the library
 * is preloaded; a lock (not NULL) also reserves one LWLock (tranche name).
 * Once shared memory exists, *ptr points at the struct and *lock at its
 * LWLock, and init (when not NULL) runs on the struct the first time, its
 * memory zeroed.
 */
extern void md_shmem_add(const char *name, Size size, void **ptr, LWLock **lock,
						 void (*init) (void *ptr));

#endif							/* MD_SHMEM_H */
