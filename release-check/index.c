/*
 * index.c - the store's indexes: chained hash tables keyed by (kind,
 * string), one per key (uid else name, name, owner's name).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

static size_t hash_key(unsigned kind, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ kind; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 29));
}

/* Doubling keeps chains short; when that fails the chains just grow. */
static void ht_grow(struct htab *t, int which)
{
	size_t nb = t->nb * 2, i;
	struct vobj **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (i = 0; i < t->nb; i++) {
		struct vobj *o = t->b[i], *next;
		for (; o; o = next) {
			size_t j = hash_key(o->kind, o->key[which]) & (nb - 1);
			next = o->hnext[which];
			o->hnext[which] = b[j];
			b[j] = o;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

void rc_ht_add(struct verdict_store *st, int which, struct vobj *o)
{
	struct htab *t = &st->h[which];
	size_t i;

	if (!o->key[which])
		return;
	if (t->n >= t->nb)
		ht_grow(t, which);
	i = hash_key(o->kind, o->key[which]) & (t->nb - 1);
	o->hnext[which] = t->b[i];
	t->b[i] = o;
	t->n++;
}

void rc_ht_del(struct verdict_store *st, int which, struct vobj *o)
{
	struct htab *t = &st->h[which];
	struct vobj **pp;

	if (!o->key[which])
		return;
	for (pp = &t->b[hash_key(o->kind, o->key[which]) & (t->nb - 1)]; *pp; pp = &(*pp)->hnext[which]) {
		if (*pp == o) {
			*pp = o->hnext[which];
			t->n--;
			return;
		}
	}
}

/* The objects of a kind whose key is key: for (o = rc_ht_first(..); o; o = rc_ht_next(o, ..)). */
static struct vobj *ht_match(struct vobj *o, int which, unsigned kind, const char *key)
{
	for (; o; o = o->hnext[which])
		if (o->kind == kind && o->key[which] && strcmp(o->key[which], key) == 0)
			return o;
	return NULL;
}

struct vobj *rc_ht_first(const struct verdict_store *st, int which, unsigned kind, const char *key)
{
	const struct htab *t = &st->h[which];
	return key ? ht_match(t->b[hash_key(kind, key) & (t->nb - 1)], which, kind, key) : NULL;
}

struct vobj *rc_ht_next(struct vobj *o, int which, const char *key)
{
	return ht_match(o->hnext[which], which, o->kind, key);
}

/*
 * The object of a kind owned by ref (uid when both have one, else name);
 * of several, the first stored, as a scan of a list would find.
 */
const struct vobj *rc_find_owner_obj(const struct verdict_store *st, unsigned kind, const cJSON *ref)
{
	const char *uid, *name = json_str(ref, "name");
	struct vobj *o = rc_ht_first(st, H_NAME, kind, name), *best = NULL;

	if (!o)
		return NULL;
	uid = json_str(ref, "uid");
	for (; o; o = rc_ht_next(o, H_NAME, name)) {
		if (uid && o->uid && strcmp(uid, o->uid) != 0)
			continue;
		if (!best || o->seq < best->seq)
			best = o;
	}
	return best;
}

const cJSON *rc_find_owner(const struct verdict_store *st, unsigned kind, const cJSON *ref)
{
	const struct vobj *o = rc_find_owner_obj(st, kind, ref);
	return o ? o->obj : NULL;
}
