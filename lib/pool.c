/*
 * pool.c - see pool.h. Each block has an 8-byte header before it: its
 * size class, or 0 for a block that came from malloc. Blocks are 8-byte
 * aligned, enough for cJSON's items (pointers, a double) and strings.
 */
#include "pool.h"

#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#define GRAIN 8
#define NCLASS (POOL_MAX_BLOCK / GRAIN + 1)
#define SLAB_BYTES (64 * 1024)

union header {
	size_t cls;
	double align; /* 8 bytes on every target we build */
};

struct freeblk {
	struct freeblk *next;
};

struct slab {
	struct slab *next;
	union header pad; /* the first block starts 8-aligned after it */
};

static struct freeblk *free_list[NCLASS];
static struct slab *slabs;
static char *cur, *end;
static size_t slab_bytes;

static void *carve(size_t cls)
{
	size_t need = sizeof(union header) + cls * GRAIN;
	union header *h;

	if ((size_t)(end - cur) < need) {
		struct slab *s = malloc(SLAB_BYTES);
		if (!s)
			return NULL;
		/* what is left of the old slab is given up: at most one block */
		s->next = slabs;
		slabs = s;
		slab_bytes += SLAB_BYTES;
		cur = (char *)(s + 1);
		end = (char *)s + SLAB_BYTES;
	}
	h = (union header *)(void *)cur;
	cur += need;
	h->cls = cls;
	return h + 1;
}

void *pool_alloc(size_t n)
{
	size_t cls = n ? (n + GRAIN - 1) / GRAIN : 1;
	union header *h;

	if (cls < NCLASS) {
		struct freeblk *b = free_list[cls];
		if (b) {
			free_list[cls] = b->next;
			return b;
		}
		return carve(cls);
	}
	if (n > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->cls = 0;
	return h + 1;
}

void pool_free(void *p)
{
	union header *h;
	struct freeblk *b;

	if (!p)
		return;
	h = (union header *)p - 1;
	if (h->cls == 0) {
		free(h);
		return;
	}
	b = p;
	b->next = free_list[h->cls];
	free_list[h->cls] = b;
}

void pool_install(void)
{
#ifndef MG_SYSTEM_MALLOC
	cJSON_Hooks hooks = {pool_alloc, pool_free};
	cJSON_InitHooks(&hooks);
#endif
}

void pool_release(void)
{
	size_t i;

	cJSON_InitHooks(NULL);
	while (slabs) {
		struct slab *s = slabs;
		slabs = s->next;
		free(s);
	}
	for (i = 0; i < NCLASS; i++)
		free_list[i] = NULL;
	cur = end = NULL;
	slab_bytes = 0;
}

size_t pool_slab_bytes(void) { return slab_bytes; }
