/*
 * store.c - the incremental store of release-check's evaluator (see
 * verdict.h): the objects of a watch, pruned and indexed, each one's row
 * cached; an update re-judges only the objects an event changed and the
 * ones whose rows read them, so one watch event costs O(1) however large
 * the release: a 1000-pod release re-judged whole after each of its ~1000
 * watch events cost 13 s of CPU (issue #6).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

static void summarize(struct verdict_result *r)
{
	size_t i, nfail = 0, nprog = 0;
	const struct verdict_row *first_fail = NULL, *first_prog = NULL;

	for (i = 0; i < r->nrows; i++) {
		const struct verdict_row *row = &r->rows[i];
		if (row->status == ROW_FAILED) {
			if (!nfail++)
				first_fail = row;
		} else if (row->status == ROW_PROGRESSING) {
			if (!nprog++)
				first_prog = row;
			if (row->fails_at_ms > 0 && (!r->recheck_at_ms || row->fails_at_ms < r->recheck_at_ms))
				r->recheck_at_ms = row->fails_at_ms;
		}
	}
	if (first_fail) {
		r->verdict = VERDICT_FAILED;
		rc_fmt(r->summary, sizeof(r->summary), "%s/%s: %s%s", first_fail->kind, first_fail->name,
		       first_fail->reason, nfail > 1 ? " (and more)" : "");
	} else if (first_prog) {
		r->verdict = VERDICT_PROGRESSING;
		rc_fmt(r->summary, sizeof(r->summary), "waiting for %zu object%s, e.g. %s/%s: %s", nprog,
		       nprog == 1 ? "" : "s", first_prog->kind, first_prog->name, first_prog->reason);
	} else if (!r->nconsidered && r->nskipped) {
		/*
		 * Only workloads that never roll out by design (paused,
		 * suspended): they are decided, with their note; waiting for
		 * them would only wait out the timeout.
		 */
		r->verdict = VERDICT_HEALTHY;
		rc_fmt(r->summary, sizeof(r->summary),
		       "nothing to wait for: %zu workload%s paused or suspended, not counted", r->nskipped,
		       r->nskipped == 1 ? "" : "s");
	} else if (!r->nconsidered) {
		/*
		 * Nothing selected: the objects may not exist yet
		 * (kubernetes#75227), or the selector is wrong. Never a vacuous
		 * success.
		 */
		r->verdict = VERDICT_PROGRESSING;
		rc_clean_copy(r->summary, sizeof(r->summary), "no workloads or pods match the selector yet");
	} else {
		r->verdict = VERDICT_HEALTHY;
		rc_fmt(r->summary, sizeof(r->summary), "%zu object%s ready", r->nconsidered,
		       r->nconsidered == 1 ? "" : "s");
	}
}

struct verdict_store *verdict_store_new(void)
{
	struct verdict_store *st = calloc(1, sizeof(*st));
	size_t i;

	if (!st)
		return NULL;
	st->helm_revision = -1;
	st->release_dirty = 1;
	for (i = 0; i < NHASH; i++) {
		st->h[i].nb = 64; /* a power of two */
		st->h[i].b = calloc(st->h[i].nb, sizeof(*st->h[i].b));
		if (!st->h[i].b) {
			verdict_store_free(st);
			return NULL;
		}
	}
	return st;
}

static void obj_free(struct vobj *o)
{
	cJSON_Delete(o->own);
	free(o->row);
	free(o);
}

void verdict_store_free(struct verdict_store *st)
{
	struct vobj *o, *next;
	size_t k;

	if (!st)
		return;
	for (k = 0; k < VERDICT_NKINDS; k++)
		for (o = st->head[k]; o; o = next) {
			next = o->next;
			obj_free(o);
		}
	for (o = st->dead; o; o = next) {
		next = o->next;
		obj_free(o);
	}
	for (k = 0; k < NHASH; k++)
		free(st->h[k].b);
	free(st->release_row);
	free(st);
}

size_t verdict_store_count(const struct verdict_store *st, enum verdict_kind k)
{
	return (unsigned)k < VERDICT_NKINDS ? st->count[k] : 0;
}

/*
 * A hash of what the rows of other objects read of obj (see propagate):
 * when a modification leaves it alone (a Deployment's or ReplicaSet's
 * status counts as pods turn Ready) the pods need no new look.
 */
static uint64_t obj_sig(unsigned kind, const cJSON *obj)
{
	uint64_t h = 1469598103934665603ULL;

	h = rc_sig_str(h, json_str(obj, "metadata.name"));
	h = rc_sig_str(h, json_str(obj, "metadata.uid"));
	return verdict_kinds[kind].hooks->sig ? verdict_kinds[kind].hooks->sig(h, obj) : h;
}

void rc_mark_dirty(struct verdict_store *st, struct vobj *o)
{
	if (o->dirty || o->removed)
		return;
	o->dirty = 1;
	o->dnext = NULL;
	if (st->dtail[o->kind])
		st->dtail[o->kind]->dnext = o;
	else
		st->dhead[o->kind] = o;
	st->dtail[o->kind] = o;
}

/* Mark the objects with owner key `owner` dirty. */
void rc_mark_owned(struct verdict_store *st, unsigned kind, const char *owner)
{
	struct vobj *p;
	for (p = rc_ht_first(st, H_OWNER, kind, owner); p; p = rc_ht_next(p, H_OWNER, owner))
		rc_mark_dirty(st, p);
}

/*
 * o changed (appeared, went, or what obj_sig covers changed): mark the
 * objects whose rows read it (each kind's propagate hook says which).
 */
static void propagate(struct verdict_store *st, struct vobj *o)
{
	const struct rc_kind_hooks *h = verdict_kinds[o->kind].hooks;
	if (h->propagate)
		h->propagate(st, o);
}

static void notify(struct verdict_store *st, struct vobj *o)
{
	const struct rc_kind_hooks *h = verdict_kinds[o->kind].hooks;
	if (h->notify)
		h->notify(st, o);
}

/* sig: obj_sig of o->obj, which the caller computed */
static void index_obj(struct verdict_store *st, struct vobj *o, uint64_t sig)
{
	size_t i;

	o->uid = json_str(o->obj, "metadata.uid");
	o->ref = rc_owner_ref(o->obj);
	o->key[H_NAME] = json_str(o->obj, "metadata.name");
	o->key[H_ID] = o->uid && o->uid[0] ? o->uid : o->key[H_NAME]; /* rc_obj_id */
	o->key[H_OWNER] = json_str(o->ref, "name");
	for (i = 0; i < NHASH; i++)
		rc_ht_add(st, (int)i, o);
	o->sig = sig;
}

static void unindex_obj(struct verdict_store *st, struct vobj *o)
{
	size_t i;
	for (i = 0; i < NHASH; i++)
		rc_ht_del(st, (int)i, o);
}

/* Append obj (owned: the store frees it) as a new object. */
int rc_store_add(struct verdict_store *st, unsigned kind, const cJSON *obj, cJSON *owned)
{
	struct vobj *o = calloc(1, sizeof(*o));

	if (!o)
		return -1;
	o->obj = obj;
	o->own = owned;
	o->kind = (unsigned char)kind;
	o->seq = ++st->seq;
	o->prev = st->tail[kind];
	if (o->prev)
		o->prev->next = o;
	else
		st->head[kind] = o;
	st->tail[kind] = o;
	st->count[kind]++;
	index_obj(st, o, obj_sig(kind, obj));
	rc_mark_dirty(st, o);
	propagate(st, o);
	notify(st, o);
	return 0;
}

static struct vobj *store_find(const struct verdict_store *st, unsigned kind, const cJSON *obj)
{
	const char *id = rc_obj_id(obj);
	struct vobj *o = rc_ht_first(st, H_ID, kind, id), *best = o;

	for (; o; o = rc_ht_next(o, H_ID, id))
		if (o->seq < best->seq)
			best = o;
	return best;
}

int verdict_store_put(struct verdict_store *st, enum verdict_kind k, const cJSON *obj)
{
	cJSON *pr;

	if ((unsigned)k >= VERDICT_NKINDS || !cJSON_IsObject(obj))
		return 0;
	pr = verdict_prune(k, obj);
	if (!pr)
		return -1;
	return verdict_store_put_owned(st, k, pr);
}

int verdict_store_put_owned(struct verdict_store *st, enum verdict_kind k, cJSON *pr)
{
	struct vobj *o;
	uint64_t sig;
	int changed;

	if ((unsigned)k >= VERDICT_NKINDS || !cJSON_IsObject(pr)) {
		cJSON_Delete(pr);
		return 0;
	}
	o = store_find(st, k, pr);
	if (!o) {
		if (rc_store_add(st, k, pr, pr) < 0) {
			cJSON_Delete(pr);
			return -1;
		}
		return 0;
	}
	/* in place: the position in the kind's order stays */
	sig = obj_sig(k, pr);
	if (sig != o->sig || verdict_kinds[k].hooks->always_propagate)
		propagate(st, o); /* the readers of the old version */
	notify(st, o);
	unindex_obj(st, o);
	cJSON_Delete(o->own);
	o->obj = o->own = pr;
	o->stale = 0;
	changed = sig != o->sig;
	index_obj(st, o, sig);
	rc_mark_dirty(st, o);
	if (changed || verdict_kinds[k].hooks->always_propagate)
		propagate(st, o);
	notify(st, o);
	return 0;
}

/* Unlink o; the next update reports its row gone and frees it. */
static void store_remove(struct verdict_store *st, struct vobj *o)
{
	unsigned k = o->kind;

	propagate(st, o);
	notify(st, o);
	unindex_obj(st, o);
	if (o->prev)
		o->prev->next = o->next;
	else
		st->head[k] = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		st->tail[k] = o->prev;
	st->count[k]--;
	o->removed = 1;
	o->next = st->dead;
	st->dead = o;
}

void verdict_store_delete(struct verdict_store *st, enum verdict_kind k, const cJSON *obj)
{
	struct vobj *o = (unsigned)k < VERDICT_NKINDS ? store_find(st, k, obj) : NULL;
	if (o)
		store_remove(st, o);
}

void verdict_store_relist_begin(struct verdict_store *st, enum verdict_kind k)
{
	struct vobj *o;
	for (o = (unsigned)k < VERDICT_NKINDS ? st->head[k] : NULL; o; o = o->next)
		o->stale = 1;
}

void verdict_store_relist_end(struct verdict_store *st, enum verdict_kind k)
{
	struct vobj *o, *next;

	for (o = (unsigned)k < VERDICT_NKINDS ? st->head[k] : NULL; o; o = next) {
		next = o->next;
		if (o->stale)
			store_remove(st, o);
	}
}

static int row_differs(const struct verdict_row *a, const struct verdict_row *b)
{
	return a->status != b->status || a->ready != b->ready || a->desired != b->desired ||
	       strcmp(a->state, b->state) != 0 || strcmp(a->reason, b->reason) != 0;
}

/*
 * The row just judged (ev) replaces *slot: counts, since_ms, and the
 * change report. -1: out of memory (nothing changed).
 */
static int settle(struct eval *ev, struct verdict_row **slot, unsigned char *considered, unsigned char *skipped,
                  verdict_change_fn changed, void *ctx)
{
	struct verdict_store *st = ev->st;
	struct verdict_row *old = *slot, *cur = old;
	int fresh = 0, differs;

	if (ev->has_row && !cur) {
		cur = malloc(sizeof(*cur));
		if (!cur)
			return -1;
		fresh = 1;
	}
	if (old) {
		st->nfailed -= old->status == ROW_FAILED;
		st->nprogressing -= old->status == ROW_PROGRESSING;
	}
	st->nconsidered -= *considered;
	*considered = ev->has_row && ev->considered;
	st->nconsidered += *considered;
	st->nskipped -= *skipped;
	*skipped = ev->has_row && ev->skipped;
	st->nskipped += *skipped;
	if (!ev->has_row) {
		if (old) {
			if (changed)
				changed(ctx, old, 1);
			free(old);
			*slot = NULL;
		}
		return 0;
	}
	differs = fresh || row_differs(old, &ev->row);
	ev->row.since_ms = (fresh || old->status != ev->row.status || strcmp(old->state, ev->row.state) != 0)
	                       ? ev->opts->now_ms
	                       : old->since_ms;
	memcpy(cur, &ev->row, sizeof(*cur));
	*slot = cur;
	st->nfailed += cur->status == ROW_FAILED;
	st->nprogressing += cur->status == ROW_PROGRESSING;
	if (differs && changed)
		changed(ctx, cur, 0);
	return 0;
}

static void graced_set(struct verdict_store *st, struct vobj *o, int on)
{
	if (on == o->graced)
		return;
	if (on) {
		o->gprev = NULL;
		o->gnext = st->graced;
		if (st->graced)
			st->graced->gprev = o;
		st->graced = o;
	} else {
		if (o->gprev)
			o->gprev->gnext = o->gnext;
		else
			st->graced = o->gnext;
		if (o->gnext)
			o->gnext->gprev = o->gprev;
	}
	o->graced = (unsigned char)on;
}

static int judge(struct eval *ev, struct vobj *o, verdict_change_fn changed, void *ctx)
{
	const struct rc_kind_hooks *h = verdict_kinds[o->kind].hooks;

	if (!h->judge)
		return 0; /* e.g. release records: read by the release row */
	ev->cur = o;
	ev->has_row = 0;
	ev->considered = 0;
	ev->skipped = 0;
	h->judge(ev, o->obj);
	/* a grace key not in the last row starts its grace now */
	if (!ev->has_row || !ev->row.grace_key[0])
		o->first_seen_ms = 0;
	else if (!o->row || strcmp(o->row->grace_key, ev->row.grace_key) != 0)
		o->first_seen_ms = ev->opts->now_ms;
	if (settle(ev, &o->row, &o->considered, &o->skipped, changed, ctx) < 0)
		return -1;
	graced_set(ev->st, o, o->row && o->row->fails_at_ms > 0);
	return 0;
}

int verdict_store_update(struct verdict_store *st, const struct verdict_opts *opts, verdict_change_fn changed,
                         void *ctx, struct verdict_counts *counts)
{
	struct eval evs, *ev = &evs;
	struct vobj *o;
	size_t i;
	int rc = 0;

	memset(ev, 0, sizeof(*ev));
	ev->st = st;
	ev->opts = opts;
	st->now_ms = opts->now_ms;
	ev->pull_grace_ms = opts->pull_grace_ms < 0 ? VERDICT_DEFAULT_PULL_GRACE_MS : opts->pull_grace_ms;
	if (st->release_dirty) {
		int64_t rev = st->helm_revision;
		ev->has_row = 0;
		rc_rule_release(ev);
		if (settle(ev, &st->release_row, &st->release_considered, &st->release_skipped, changed, ctx) < 0)
			rc = -1;
		else
			st->release_dirty = 0;
		if (st->helm_revision != rev) /* which Jobs are current depends on it */
			for (o = st->head[VERDICT_JOBS]; o; o = o->next)
				rc_mark_dirty(st, o);
	}
	/* time alone changes a graced row once its grace is over */
	for (o = st->graced; o; o = o->gnext)
		if (o->row->fails_at_ms <= opts->now_ms)
			rc_mark_dirty(st, o);
	/* in the order of the rows, so the changes are reported in it */
	for (i = 0; i < VERDICT_NKINDS && rc == 0; i++) {
		unsigned k = rc_kind_at_rank(i);
		while ((o = st->dhead[k]) != NULL) {
			if (!o->removed && judge(ev, o, changed, ctx) < 0) {
				rc = -1; /* it stays queued: judged again next time */
				break;
			}
			st->dhead[k] = o->dnext;
			if (!st->dhead[k])
				st->dtail[k] = NULL;
			o->dirty = 0;
		}
	}
	/* the dirty list may still hold removed objects after a failure */
	while (rc == 0 && (o = st->dead) != NULL) {
		st->dead = o->next;
		graced_set(st, o, 0);
		st->nconsidered -= o->considered;
		st->nskipped -= o->skipped;
		if (o->row) {
			st->nfailed -= o->row->status == ROW_FAILED;
			st->nprogressing -= o->row->status == ROW_PROGRESSING;
			if (changed)
				changed(ctx, o->row, 1);
		}
		obj_free(o);
	}
	if (counts) {
		memset(counts, 0, sizeof(*counts));
		counts->nfailed = st->nfailed;
		counts->nprogressing = st->nprogressing;
		counts->nconsidered = st->nconsidered;
		counts->release_missing = st->release_missing;
		counts->verdict = st->nfailed                                                 ? VERDICT_FAILED
		                  : (st->nprogressing || (!st->nconsidered && !st->nskipped)) ? VERDICT_PROGRESSING
		                                                                              : VERDICT_HEALTHY;
		for (o = st->graced; o; o = o->gnext)
			if (o->row->status == ROW_PROGRESSING &&
			    (!counts->recheck_at_ms || o->row->fails_at_ms < counts->recheck_at_ms))
				counts->recheck_at_ms = o->row->fails_at_ms;
	}
	return rc;
}

int verdict_store_result(const struct verdict_store *st, struct verdict_result *out)
{
	const struct vobj *o;
	size_t n = st->release_row ? 1 : 0, i;

	memset(out, 0, sizeof(*out));
	out->helm_revision = st->helm_revision;
	memcpy(out->helm_status, st->helm_status, sizeof(out->helm_status));
	out->nconsidered = st->nconsidered;
	out->nskipped = st->nskipped;
	out->now_ms = st->now_ms;
	out->release_missing = st->release_missing;
	for (i = 0; i < VERDICT_NKINDS; i++)
		for (o = st->head[rc_kind_at_rank(i)]; o; o = o->next)
			n += o->row != NULL;
	if (n) {
		out->rows = malloc(n * sizeof(*out->rows));
		if (!out->rows)
			return -1;
	}
	if (st->release_row)
		out->rows[out->nrows++] = *st->release_row;
	for (i = 0; i < VERDICT_NKINDS; i++)
		for (o = st->head[rc_kind_at_rank(i)]; o; o = o->next)
			if (o->row)
				out->rows[out->nrows++] = *o->row;
	summarize(out);
	return 0;
}
