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
 * is preloaded; with_lock also reserves one LWLock (tranche name). Once
 * shared memory exists, *ptr points at the struct, and init runs on it the
 * first time (memory zeroed; lock is its LWLock or NULL).
 */
extern void md_shmem_add(const char *name, Size size, bool with_lock, void **ptr,
						 void (*init) (void *ptr, LWLock *lock));

#endif							/* MD_SHMEM_H */
