/*
 * first_seen.c - a small bounded table of when the caller first saw each
 * grace key (verdict.h).
 */
#include <string.h>

#include "internal.h"

int64_t first_seen_lookup(const void *table, const char *grace_key)
{
	const struct first_seen_table *t = table;
	size_t i;

	for (i = 0; t && i < t->n; i++)
		if (strcmp(t->e[i].key, grace_key) == 0)
			return t->e[i].ms;
	return 0;
}

void first_seen_record(struct first_seen_table *t, const struct verdict_result *r, int64_t now_ms)
{
	size_t i, j, k = 0;

	/* drop keys the result no longer has */
	for (i = 0; i < t->n; i++) {
		int keep = 0;
		for (j = 0; j < r->nrows && !keep; j++)
			keep = strcmp(r->rows[j].grace_key, t->e[i].key) == 0;
		if (keep) {
			if (k != i)
				t->e[k] = t->e[i];
			k++;
		}
	}
	t->n = k;
	for (j = 0; j < r->nrows; j++) {
		const char *key = r->rows[j].grace_key;
		if (!key[0] || first_seen_lookup(t, key))
			continue;
		if (t->n == FIRST_SEEN_MAX)
			break; /* full: unseen keys read as "now", the server's clock still counts */
		rc_clean_copy(t->e[t->n].key, sizeof(t->e[t->n].key), key);
		t->e[t->n].ms = now_ms;
		t->n++;
	}
}
