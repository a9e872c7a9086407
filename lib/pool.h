/*
 * pool.h - a small-block allocator for cJSON's trees (cJSON_InitHooks).
 *
 * release-check builds and frees ~50 cJSON nodes and strings for every
 * watch event; musl's malloc and free were ~15 % of its CPU per event
 * (bench/RESULTS.md). Blocks of up to POOL_MAX_BLOCK bytes come from
 * slabs and go back to a free list of their size; larger ones go to
 * malloc. Memory is not returned to the system until pool_release: the
 * peak is what a process keeps, which is what bounds its RSS anyway.
 *
 * One thread only: the process that installs it must not touch cJSON
 * from another thread.
 */
#ifndef MG_POOL_H
#define MG_POOL_H

#include <stddef.h>

#define POOL_MAX_BLOCK 256

void *pool_alloc(size_t n);
void pool_free(void *p);
/* Route cJSON's allocations through the pool (a no-op in MG_SYSTEM_MALLOC builds). */
void pool_install(void);
/* Back to malloc/free for cJSON; frees the slabs. No pool block may be live. */
void pool_release(void);
/* Slab bytes held (for the tests). */
size_t pool_slab_bytes(void);

#endif
