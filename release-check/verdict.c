/*
 * verdict.c - objects of a release in, verdict out (see verdict.h).
 *
 * Pure: reads only the cJSON trees and the options. Every field may be
 * missing or of the wrong type (the fuzzer sees to it): read through the
 * json_* helpers, which return NULL/defaults.
 *
 * The rules judge one object at a time (eval_*); the store around them
 * (second half of the file) keeps the objects indexed and each one's row
 * cached, and re-judges only what an event changed: a 1000-pod release
 * re-judged whole after each of its ~1000 watch events cost 13 s of CPU
 * (issue #6).
 */
#include "verdict.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

const char *const verdict_kind_key[VERDICT_NKINDS] = {
    VERDICT_KEY_RELEASES,   VERDICT_KEY_DEPLOYMENTS, VERDICT_KEY_REPLICASETS, VERDICT_KEY_STATEFULSETS,
    VERDICT_KEY_DAEMONSETS, VERDICT_KEY_JOBS,        VERDICT_KEY_PODS,
};

/* ---- the store's object ----------------------------------------------------- */

enum { H_ID, H_NAME, H_OWNER, NHASH }; /* indexes: uid (else name), name, owner's name */

struct vobj {
	const cJSON *obj; /* own, or the caller's (verdict_eval) */
	cJSON *own;
	struct vobj *prev, *next;   /* the kind's objects in insertion order (next: also the dead list) */
	struct vobj *hnext[NHASH];  /* hash chains */
	const char *key[NHASH];     /* into obj; NULL: not in that index */
	struct vobj *dnext;         /* dirty queue */
	struct vobj *gprev, *gnext; /* graced list: rows with fails_at_ms */
	struct verdict_row *row;    /* cached; NULL: no row */
	uint64_t seq;               /* insertion order across the store: "first" as in a list */
	uint64_t sig;               /* hash of what other objects' rows read of this one */
	int64_t first_seen_ms;      /* when row->grace_key was first seen */
	unsigned char kind, dirty, stale, removed, graced, considered;
};

struct htab {
	struct vobj **b;
	size_t nb, n;
};

struct verdict_store {
	struct vobj *head[VERDICT_NKINDS], *tail[VERDICT_NKINDS];
	size_t count[VERDICT_NKINDS];
	struct htab h[NHASH];
	struct vobj *dhead[VERDICT_NKINDS], *dtail[VERDICT_NKINDS]; /* dirty: FIFO per kind */
	struct vobj *dead, *graced;
	uint64_t seq;
	struct verdict_row *release_row; /* NULL: none (yet) */
	int release_dirty;
	unsigned char release_considered; /* always 0: the record is not a workload */
	int64_t helm_created_ms;          /* creation of the newest release record, 0 = unknown */
	int64_t helm_revision;
	char helm_status[32];
	size_t nfailed, nprogressing, nconsidered;
};

struct eval {
	struct verdict_store *st;
	const struct verdict_opts *opts;
	int64_t pull_grace_ms;
	const struct vobj *cur; /* being judged (its first-seen time) */
	struct verdict_row row; /* its row, when has_row */
	int has_row;
	int considered; /* it counts as a workload or pod */
};

/* ---- small helpers --------------------------------------------------------- */

/*
 * Copy a cluster-supplied string for display: control characters (newlines,
 * ESC of terminal escape sequences) become spaces, so a message cannot
 * break the one-line format or drive the terminal.
 */
static void clean_copy(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	if (!cap)
		return;
	for (; src && *src && n + 1 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		dst[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[n] = '\0';
}

static void fmt(char *dst, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *dst, size_t cap, const char *f, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, f);
	vsnprintf(tmp, sizeof(tmp), f, ap);
	va_end(ap);
	clean_copy(dst, cap, tmp);
}

static const char *nz(const char *s) { return s ? s : ""; }

static const cJSON *arr(const cJSON *doc, const char *key)
{
	const cJSON *a = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, key) : NULL;
	return cJSON_IsArray(a) ? a : NULL;
}

static int streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* A label or annotation value. */
static const char *meta_map(const cJSON *obj, const char *map, const char *key)
{
	const cJSON *m = json_path(obj, map);
	const cJSON *v = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A non-negative decimal integer written as a string ("12"), else -1. */
static int64_t parse_uint(const char *s)
{
	int64_t v = 0;

	if (!s || !*s || strlen(s) > 15)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static int64_t time_of(const cJSON *obj, const char *path)
{
	int64_t ms;
	return json_parse_time(json_str(obj, path), &ms) == 0 ? ms : 0;
}

/* A count from status/spec: missing, negative or absurd reads as def. */
static int64_t count(const cJSON *obj, const char *path, int64_t def)
{
	int64_t v = json_int(obj, path, def);
	return (v < 0 || v > 1000000000) ? def : v;
}

/*
 * The controller owner reference (controller: true), else the first owner
 * reference that names a kind, else NULL.
 */
static const cJSON *owner_ref(const cJSON *obj)
{
	const cJSON *refs = json_path(obj, "metadata.ownerReferences");
	const cJSON *r, *first = NULL;

	if (!cJSON_IsArray(refs))
		return NULL;
	cJSON_ArrayForEach (r, refs) {
		if (!json_str(r, "kind"))
			continue;
		if (json_bool(r, "controller"))
			return r;
		if (!first)
			first = r;
	}
	return first;
}

/* ---- the store's indexes: chained hash tables keyed by (kind, string) ------------ */

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

static void ht_add(struct verdict_store *st, int which, struct vobj *o)
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

static void ht_del(struct verdict_store *st, int which, struct vobj *o)
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

/* The objects of a kind whose key is key: for (o = ht_first(..); o; o = ht_next(o, ..)). */
static struct vobj *ht_match(struct vobj *o, int which, unsigned kind, const char *key)
{
	for (; o; o = o->hnext[which])
		if (o->kind == kind && o->key[which] && strcmp(o->key[which], key) == 0)
			return o;
	return NULL;
}

static struct vobj *ht_first(const struct verdict_store *st, int which, unsigned kind, const char *key)
{
	const struct htab *t = &st->h[which];
	return key ? ht_match(t->b[hash_key(kind, key) & (t->nb - 1)], which, kind, key) : NULL;
}

static struct vobj *ht_next(struct vobj *o, int which, const char *key)
{
	return ht_match(o->hnext[which], which, o->kind, key);
}

/*
 * The object of a kind owned by ref (uid when both have one, else name);
 * of several, the first stored, as a scan of a list would find.
 */
static const cJSON *find_owner(const struct verdict_store *st, unsigned kind, const cJSON *ref)
{
	const char *uid = json_str(ref, "uid"), *name = json_str(ref, "name");
	struct vobj *o, *best = NULL;

	for (o = ht_first(st, H_NAME, kind, name); o; o = ht_next(o, H_NAME, name)) {
		const char *ouid = json_str(o->obj, "metadata.uid");
		if (uid && ouid && strcmp(uid, ouid) != 0)
			continue;
		if (!best || o->seq < best->seq)
			best = o;
	}
	return best ? best->obj : NULL;
}

static int owned_by(const cJSON *obj, const cJSON *owner)
{
	const cJSON *ref = owner_ref(obj);
	const char *uid = json_str(ref, "uid"), *ouid = json_str(owner, "metadata.uid");

	if (!ref || !streq(json_str(ref, "name"), json_str(owner, "metadata.name")))
		return 0;
	return !(uid && ouid && strcmp(uid, ouid) != 0);
}

/* metadata.generation > status.observedGeneration: the controller lags. */
static int generation_pending(const cJSON *obj, int64_t *gen, int64_t *obs)
{
	*gen = json_int(obj, "metadata.generation", 0);
	*obs = json_int(obj, "status.observedGeneration", -1);
	return *gen > 0 && *obs < *gen;
}

/* The object's row (one per object at most). */
static struct verdict_row *add_row(struct eval *ev, const char *kind, const cJSON *obj)
{
	struct verdict_row *row = &ev->row;

	ev->has_row = 1;
	memset(row, 0, sizeof(*row));
	clean_copy(row->kind, sizeof(row->kind), kind);
	clean_copy(row->name, sizeof(row->name), json_str(obj, "metadata.name"));
	if (!row->name[0])
		clean_copy(row->name, sizeof(row->name), "(unnamed)");
	row->ready = row->desired = -1;
	row->status = ROW_PROGRESSING;
	return row;
}

static void set_events(struct verdict_row *row, const char *kind, const char *name)
{
	clean_copy(row->events_kind, sizeof(row->events_kind), kind);
	clean_copy(row->events_name, sizeof(row->events_name), name);
}

static void set_logs(struct verdict_row *row, const char *pod, const char *container, int previous)
{
	clean_copy(row->log_pod, sizeof(row->log_pod), pod);
	clean_copy(row->log_container, sizeof(row->log_container), container);
	row->log_previous = container ? previous : 0;
}

/* ---- Helm release record ---------------------------------------------------- */

/*
 * The newest sh.helm.release.v1.NAME.vN Secret by its "version" label. Only
 * labels are read: the payload (values, often with credentials) is never
 * decoded.
 */
static void eval_release(struct eval *ev)
{
	const char *rel = ev->opts->release;
	const cJSON *best = NULL;
	const struct vobj *o;
	int64_t best_v = -1;
	struct verdict_row *row;
	const char *st;

	ev->st->helm_revision = -1;
	ev->st->helm_status[0] = '\0';
	ev->st->helm_created_ms = 0;
	if (!rel)
		return;
	for (o = ev->st->head[VERDICT_RELEASES]; o; o = o->next) {
		const cJSON *s = o->obj;
		int64_t v;
		if (!streq(meta_map(s, "metadata.labels", "owner"), "helm") ||
		    !streq(meta_map(s, "metadata.labels", "name"), rel))
			continue;
		v = parse_uint(meta_map(s, "metadata.labels", "version"));
		if (v > best_v) {
			best_v = v;
			best = s;
		}
	}
	row = add_row(ev, "Release", NULL);
	if (!row)
		return;
	clean_copy(row->name, sizeof(row->name), rel);
	if (!best) {
		row->status = ROW_OK;
		clean_copy(row->state, sizeof(row->state), "Absent");
		fmt(row->reason, sizeof(row->reason),
		    "no Helm release record (Secret sh.helm.release.v1.%s.v*); checking the selector only", rel);
		return;
	}
	st = nz(meta_map(best, "metadata.labels", "status"));
	ev->st->helm_revision = best_v;
	clean_copy(ev->st->helm_status, sizeof(ev->st->helm_status), st);
	ev->st->helm_created_ms = time_of(best, "metadata.creationTimestamp");
	clean_copy(row->state, sizeof(row->state), st[0] ? st : "unknown");
	if (strcmp(st, "deployed") == 0) {
		row->status = ROW_OK;
		fmt(row->reason, sizeof(row->reason), "revision %lld deployed", (long long)best_v);
	} else if (strcmp(st, "failed") == 0) {
		row->status = ROW_FAILED;
		fmt(row->reason, sizeof(row->reason), "Helm marked revision %lld failed (see `helm history %s`)",
		    (long long)best_v, rel);
	} else if (strncmp(st, "pending-", 8) == 0) {
		fmt(row->reason, sizeof(row->reason), "Helm is still applying revision %lld (%s)", (long long)best_v,
		    st);
	} else if (strcmp(st, "uninstalling") == 0 || strcmp(st, "uninstalled") == 0) {
		row->status = ROW_FAILED;
		fmt(row->reason, sizeof(row->reason), "the release is %s (revision %lld)", st, (long long)best_v);
	} else {
		/* superseded as newest, unknown: a record being rewritten; wait */
		fmt(row->reason, sizeof(row->reason), "revision %lld has status \"%s\"", (long long)best_v, st);
	}
}

/* ---- workloads ------------------------------------------------------------- */

static void eval_deployment(struct eval *ev, const cJSON *d)
{
	struct verdict_row *row = add_row(ev, "Deployment", d);
	int64_t gen, obs, desired, updated, replicas, available;
	const cJSON *prog;

	if (!row)
		return;
	desired = count(d, "spec.replicas", 1);
	updated = count(d, "status.updatedReplicas", 0);
	replicas = count(d, "status.replicas", 0);
	available = count(d, "status.availableReplicas", 0);
	row->desired = desired;
	row->ready = available < updated ? available : updated;
	set_events(row, "Deployment", row->name);
	ev->considered++;

	if (generation_pending(d, &gen, &obs)) {
		/* conditions, including ProgressDeadlineExceeded, are of an older spec */
		clean_copy(row->state, sizeof(row->state), "Pending");
		fmt(row->reason, sizeof(row->reason), "waiting for the controller to observe generation %lld",
		    (long long)gen);
		return;
	}
	prog = json_condition(d, "Progressing");
	if (streq(json_str(prog, "status"), "False") && streq(json_str(prog, "reason"), "ProgressDeadlineExceeded")) {
		row->status = ROW_FAILED;
		clean_copy(row->state, sizeof(row->state), "ProgressDeadlineExceeded");
		fmt(row->reason, sizeof(row->reason), "%s",
		    json_str(prog, "message") ? json_str(prog, "message")
		                              : "the rollout made no progress within progressDeadlineSeconds");
		return;
	}
	if (json_bool(d, "spec.paused")) {
		clean_copy(row->state, sizeof(row->state), "Paused");
		fmt(row->reason, sizeof(row->reason), "the rollout is paused (kubectl rollout resume)");
		return;
	}
	clean_copy(row->state, sizeof(row->state), "RollingOut");
	if (updated < desired)
		fmt(row->reason, sizeof(row->reason), "%lld of %lld replicas updated", (long long)updated,
		    (long long)desired);
	else if (replicas > updated)
		fmt(row->reason, sizeof(row->reason), "%lld old replicas pending termination",
		    (long long)(replicas - updated));
	else if (available < updated)
		fmt(row->reason, sizeof(row->reason), "%lld of %lld updated replicas available", (long long)available,
		    (long long)updated);
	else {
		row->status = ROW_OK;
		clean_copy(row->state, sizeof(row->state), "Available");
		fmt(row->reason, sizeof(row->reason), "%lld of %lld replicas updated and available",
		    (long long)available, (long long)desired);
		return;
	}
	/* e.g. quota or admission rejecting pods: say so, keep waiting */
	if (json_condition_true(d, "ReplicaFailure")) {
		const cJSON *rf = json_condition(d, "ReplicaFailure");
		size_t n = strlen(row->reason);
		clean_copy(row->state, sizeof(row->state), "ReplicaFailure");
		fmt(row->reason + n, sizeof(row->reason) - n, "; %s", nz(json_str(rf, "message")));
	}
}

/* A ReplicaSet that no Deployment owns is a workload of its own. */
static void eval_replicaset(struct eval *ev, const cJSON *rs)
{
	struct verdict_row *row;
	int64_t gen, obs, desired, available;

	if (owner_ref(rs))
		return;
	row = add_row(ev, "ReplicaSet", rs);
	if (!row)
		return;
	desired = count(rs, "spec.replicas", 1);
	available = count(rs, "status.availableReplicas", 0);
	row->desired = desired;
	row->ready = available;
	set_events(row, "ReplicaSet", row->name);
	ev->considered++;
	if (generation_pending(rs, &gen, &obs)) {
		clean_copy(row->state, sizeof(row->state), "Pending");
		fmt(row->reason, sizeof(row->reason), "waiting for the controller to observe generation %lld",
		    (long long)gen);
	} else if (available < desired) {
		clean_copy(row->state, sizeof(row->state), "Scaling");
		fmt(row->reason, sizeof(row->reason), "%lld of %lld replicas available", (long long)available,
		    (long long)desired);
	} else {
		row->status = ROW_OK;
		clean_copy(row->state, sizeof(row->state), "Available");
		fmt(row->reason, sizeof(row->reason), "%lld of %lld replicas available", (long long)available,
		    (long long)desired);
	}
}

static void eval_statefulset(struct eval *ev, const cJSON *s)
{
	struct verdict_row *row = add_row(ev, "StatefulSet", s);
	int64_t gen, obs, desired, ready, updated, replicas, partition, available;
	const char *cur, *upd, *strategy;

	if (!row)
		return;
	desired = count(s, "spec.replicas", 1);
	ready = count(s, "status.readyReplicas", 0);
	updated = count(s, "status.updatedReplicas", 0);
	replicas = count(s, "status.replicas", 0);
	/* availableReplicas (minReadySeconds) exists since 1.22; older servers: ready */
	available = count(s, "status.availableReplicas", ready);
	partition = count(s, "spec.updateStrategy.rollingUpdate.partition", 0);
	strategy = nz(json_str(s, "spec.updateStrategy.type"));
	cur = json_str(s, "status.currentRevision");
	upd = json_str(s, "status.updateRevision");
	row->desired = desired;
	row->ready = ready;
	set_events(row, "StatefulSet", row->name);
	ev->considered++;
	clean_copy(row->state, sizeof(row->state), "RollingOut");

	if (generation_pending(s, &gen, &obs)) {
		clean_copy(row->state, sizeof(row->state), "Pending");
		fmt(row->reason, sizeof(row->reason), "waiting for the controller to observe generation %lld",
		    (long long)gen);
		return;
	}
	if (strcmp(strategy, "OnDelete") != 0) {
		if (partition > 0) {
			/* only ordinals >= partition move to the update revision */
			int64_t want = desired > partition ? desired - partition : 0;
			if (updated < want) {
				fmt(row->reason, sizeof(row->reason),
				    "%lld of %lld pods at ordinal >= %lld (partition) updated", (long long)updated,
				    (long long)want, (long long)partition);
				return;
			}
		} else if (updated < desired) {
			fmt(row->reason, sizeof(row->reason), "%lld of %lld pods updated", (long long)updated,
			    (long long)desired);
			return;
		} else if (cur && upd && strcmp(cur, upd) != 0) {
			fmt(row->reason, sizeof(row->reason), "rolling out revision %s", upd);
			return;
		}
	}
	if (replicas > desired) {
		fmt(row->reason, sizeof(row->reason), "scaling down: %lld pods, %lld desired", (long long)replicas,
		    (long long)desired);
		return;
	}
	if (ready < desired || available < desired) {
		fmt(row->reason, sizeof(row->reason), "%lld of %lld pods ready",
		    (long long)(ready < available ? ready : available), (long long)desired);
		return;
	}
	row->status = ROW_OK;
	clean_copy(row->state, sizeof(row->state), "Available");
	if (partition > 0)
		fmt(row->reason, sizeof(row->reason), "%lld of %lld pods ready, ordinals >= %lld updated",
		    (long long)ready, (long long)desired, (long long)partition);
	else
		fmt(row->reason, sizeof(row->reason), "%lld of %lld pods ready", (long long)ready, (long long)desired);
}

static void eval_daemonset(struct eval *ev, const cJSON *d)
{
	struct verdict_row *row = add_row(ev, "DaemonSet", d);
	int64_t gen, obs, desired, updated, available;

	if (!row)
		return;
	desired = count(d, "status.desiredNumberScheduled", 0);
	updated = count(d, "status.updatedNumberScheduled", 0);
	available = count(d, "status.numberAvailable", 0);
	row->desired = desired;
	row->ready = available;
	set_events(row, "DaemonSet", row->name);
	ev->considered++;
	clean_copy(row->state, sizeof(row->state), "RollingOut");
	if (generation_pending(d, &gen, &obs)) {
		clean_copy(row->state, sizeof(row->state), "Pending");
		fmt(row->reason, sizeof(row->reason), "waiting for the controller to observe generation %lld",
		    (long long)gen);
	} else if (!streq(json_str(d, "spec.updateStrategy.type"), "OnDelete") && updated < desired) {
		fmt(row->reason, sizeof(row->reason), "%lld of %lld nodes updated", (long long)updated,
		    (long long)desired);
	} else if (available < desired) {
		fmt(row->reason, sizeof(row->reason), "%lld of %lld nodes available", (long long)available,
		    (long long)desired);
	} else {
		row->status = ROW_OK;
		clean_copy(row->state, sizeof(row->state), "Available");
		fmt(row->reason, sizeof(row->reason), "%lld of %lld nodes available", (long long)available,
		    (long long)desired);
	}
}

/* Job: Complete/SuccessCriteriaMet ok, Failed/FailureTarget failed. */
static int job_finished(const cJSON *job, int *failed)
{
	*failed = 0;
	if (json_condition_true(job, "Complete") || json_condition_true(job, "SuccessCriteriaMet"))
		return 1;
	if (json_condition_true(job, "Failed") || json_condition_true(job, "FailureTarget")) {
		*failed = 1;
		return 1;
	}
	return 0;
}

/*
 * The container of a Job's pods that failed last (largest finishedAt of a
 * terminated state with a non-zero exit code, current or last state): its
 * logs say why the Job failed.
 */
static void job_log_target(const struct eval *ev, const cJSON *job, struct verdict_row *row)
{
	static const char *const lists[] = {"status.initContainerStatuses", "status.containerStatuses"};
	const char *name = json_str(job, "metadata.name");
	struct vobj *p;
	uint64_t best_seq = 0;
	int64_t best = -1;

	/* of equal times the first pod stored wins, as in a scan of a list */
	for (p = ht_first(ev->st, H_OWNER, VERDICT_PODS, name); p; p = ht_next(p, H_OWNER, name)) {
		const cJSON *pod = p->obj;
		size_t l;
		if (!owned_by(pod, job))
			continue;
		for (l = 0; l < 2; l++) {
			const cJSON *cs, *list = json_path(pod, lists[l]);
			if (!cJSON_IsArray(list))
				continue;
			cJSON_ArrayForEach (cs, list) {
				static const char *const states[] = {"state.terminated", "lastState.terminated"};
				size_t k;
				for (k = 0; k < 2; k++) {
					const cJSON *t = json_path(cs, states[k]);
					int64_t at;
					if (!t || json_int(t, "exitCode", 0) == 0)
						continue;
					at = time_of(t, "finishedAt");
					if (at > best || (at == best && p->seq < best_seq)) {
						best = at;
						best_seq = p->seq;
						set_logs(row, json_str(pod, "metadata.name"), json_str(cs, "name"),
						         (int)k);
						set_events(row, "Pod", json_str(pod, "metadata.name"));
					}
				}
			}
		}
	}
}

static void eval_job(struct eval *ev, const cJSON *job)
{
	const cJSON *ref = owner_ref(job);
	struct verdict_row *row = add_row(ev, "Job", job);
	int64_t completions, succeeded, failed_pods, active, created;
	int failed;

	if (!row)
		return;
	completions = count(job, "spec.completions", 1);
	succeeded = count(job, "status.succeeded", 0);
	failed_pods = count(job, "status.failed", 0);
	active = count(job, "status.active", 0);
	row->desired = completions;
	row->ready = succeeded;
	set_events(row, "Job", row->name);

	if (ref && streq(json_str(ref, "kind"), "CronJob")) {
		/* a scheduled run is not part of rolling the release out */
		row->status = ROW_IGNORED;
		clean_copy(row->state, sizeof(row->state), "Scheduled");
		fmt(row->reason, sizeof(row->reason), "run of CronJob %s", nz(json_str(ref, "name")));
		return;
	}
	created = time_of(job, "metadata.creationTimestamp");
	if (ev->st->helm_created_ms && created && created < ev->st->helm_created_ms) {
		/*
		 * Created before the current revision's release record (Helm
		 * writes it before it applies anything): a Job of an earlier
		 * revision - kept by Helm for hooks without a delete policy,
		 * or by helm.sh/resource-policy: keep until its TTL. Its fate
		 * is that revision's, not this one's: a migration that failed
		 * in revision N must not fail the fixed revision N+1.
		 */
		row->status = ROW_IGNORED;
		clean_copy(row->state, sizeof(row->state), "Superseded");
		fmt(row->reason, sizeof(row->reason), "Job of an earlier Helm revision");
		return;
	}
	ev->considered++;
	if (job_finished(job, &failed) && !failed) {
		row->status = ROW_OK;
		clean_copy(row->state, sizeof(row->state), "Complete");
		if (failed_pods)
			fmt(row->reason, sizeof(row->reason), "succeeded after %lld failed attempt%s",
			    (long long)failed_pods, failed_pods == 1 ? "" : "s");
		else
			fmt(row->reason, sizeof(row->reason), "succeeded");
		return;
	}
	if (failed) {
		const cJSON *c = json_condition(job, json_condition_true(job, "Failed") ? "Failed" : "FailureTarget");
		row->status = ROW_FAILED;
		clean_copy(row->state, sizeof(row->state), "Failed");
		fmt(row->reason, sizeof(row->reason), "Job failed: %s%s%s", nz(json_str(c, "reason")),
		    json_str(c, "message") ? ": " : "", nz(json_str(c, "message")));
		job_log_target(ev, job, row);
		return;
	}
	if (json_bool(job, "spec.suspend")) {
		clean_copy(row->state, sizeof(row->state), "Suspended");
		fmt(row->reason, sizeof(row->reason), "the Job is suspended");
		return;
	}
	clean_copy(row->state, sizeof(row->state), "Running");
	fmt(row->reason, sizeof(row->reason), "%lld active, %lld succeeded, %lld failed", (long long)active,
	    (long long)succeeded, (long long)failed_pods);
}

/* ---- pods ------------------------------------------------------------------ */

enum pod_fail {
	PF_NONE = 0,
	PF_CRASH,  /* crash loop / non-zero exit: a Job's retries decide for its pods */
	PF_IMAGE,  /* image pull, graced */
	PF_CONFIG, /* container config/create errors, graced */
	PF_FATAL,  /* InvalidImageName: never heals */
};

struct pod_finding {
	enum pod_fail cls;
	char state[VERDICT_STATE_LEN];
	char reason[VERDICT_REASON_LEN];
	const char *container;
	int previous; /* logs of the previous instance */
	int logs;     /* the container ran: logs exist */
};

static enum pod_fail waiting_class(const char *why)
{
	if (!why)
		return PF_NONE;
	if (strcmp(why, "CrashLoopBackOff") == 0)
		return PF_CRASH;
	if (strcmp(why, "InvalidImageName") == 0 || strcmp(why, "ErrImageNeverPull") == 0)
		return PF_FATAL;
	if (strcmp(why, "ErrImagePull") == 0 || strcmp(why, "ImagePullBackOff") == 0)
		return PF_IMAGE;
	if (strcmp(why, "CreateContainerConfigError") == 0 || strcmp(why, "CreateContainerError") == 0 ||
	    strcmp(why, "RunContainerError") == 0)
		return PF_CONFIG;
	return PF_NONE;
}

/* "exit 1 (Error)" of the last terminated instance, into buf. */
static void last_exit(const cJSON *cs, char *buf, size_t cap)
{
	const cJSON *t = json_path(cs, "lastState.terminated");
	buf[0] = '\0';
	if (!t)
		return;
	fmt(buf, cap, "last exit %lld%s%s%s, %lld restarts", (long long)json_int(t, "exitCode", 0),
	    json_str(t, "reason") ? " (" : "", nz(json_str(t, "reason")), json_str(t, "reason") ? ")" : "",
	    (long long)json_int(cs, "restartCount", 0));
}

/*
 * Inspect one container status for a fail-fast state. init: an init
 * container that must finish (not a restartPolicy: Always sidecar).
 */
static int inspect_container(const cJSON *cs, int init, int never_restart, struct pod_finding *f)
{
	const char *name = nz(json_str(cs, "name"));
	const cJSON *w = json_path(cs, "state.waiting");
	const cJSON *t = json_path(cs, "state.terminated");
	const char *what = init ? "init container" : "container";

	if (w) {
		const char *why = json_str(w, "reason");
		enum pod_fail cls = waiting_class(why);
		char ex[128];

		if (cls == PF_NONE)
			return 0;
		f->cls = cls;
		f->container = json_str(cs, "name");
		clean_copy(f->state, sizeof(f->state), init ? "Init:" : "");
		clean_copy(f->state + strlen(f->state), sizeof(f->state) - strlen(f->state), why);
		if (cls == PF_CRASH) {
			last_exit(cs, ex, sizeof(ex));
			fmt(f->reason, sizeof(f->reason), "%s \"%s\" is crash-looping%s%s%s", what, name,
			    ex[0] ? " (" : "", ex, ex[0] ? ")" : "");
			f->previous = 1;
			f->logs = 1;
		} else {
			fmt(f->reason, sizeof(f->reason), "%s \"%s\": %s%s%s", what, name, nz(why),
			    json_str(w, "message") ? ": " : "", nz(json_str(w, "message")));
		}
		return 1;
	}
	if (t && json_int(t, "exitCode", 0) != 0 && (init || never_restart)) {
		/*
		 * An init container that exited non-zero (the wait-for-job gate
		 * saw its Job fail) or a container that will not be restarted.
		 */
		f->cls = PF_CRASH;
		f->container = json_str(cs, "name");
		f->logs = 1;
		clean_copy(f->state, sizeof(f->state), init ? "Init:Error" : "Error");
		fmt(f->reason, sizeof(f->reason), "%s \"%s\" failed: exit %lld%s%s%s%s%s", what, name,
		    (long long)json_int(t, "exitCode", 0), json_str(t, "reason") ? " (" : "", nz(json_str(t, "reason")),
		    json_str(t, "reason") ? ")" : "", json_str(t, "message") ? ": " : "", nz(json_str(t, "message")));
		return 1;
	}
	return 0;
}

/* restartPolicy Always of an init container = a sidecar (1.28+). */
static int is_sidecar(const cJSON *pod, const char *name)
{
	const cJSON *ics = json_path(pod, "spec.initContainers"), *c;

	if (!cJSON_IsArray(ics) || !name)
		return 0;
	cJSON_ArrayForEach (c, ics) {
		if (streq(json_str(c, "name"), name))
			return streq(json_str(c, "restartPolicy"), "Always");
	}
	return 0;
}

/* The first fail-fast state of the pod's containers, init containers first. */
static int pod_find_failure(const cJSON *pod, struct pod_finding *f)
{
	const cJSON *list, *cs;
	int never = streq(json_str(pod, "spec.restartPolicy"), "Never");

	memset(f, 0, sizeof(*f));
	list = json_path(pod, "status.initContainerStatuses");
	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach (cs, list) {
			int side = is_sidecar(pod, json_str(cs, "name"));
			if (inspect_container(cs, !side, never, f))
				return 1;
		}
	}
	list = json_path(pod, "status.containerStatuses");
	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach (cs, list) {
			if (inspect_container(cs, 0, never, f))
				return 1;
		}
	}
	return 0;
}

/* The first container that terminated non-zero (for an unowned Failed pod). */
static const char *failed_container(const cJSON *pod)
{
	static const char *const lists[] = {"status.initContainerStatuses", "status.containerStatuses"};
	size_t l;

	for (l = 0; l < 2; l++) {
		const cJSON *cs, *list = json_path(pod, lists[l]);
		if (!cJSON_IsArray(list))
			continue;
		cJSON_ArrayForEach (cs, list) {
			if (json_path(cs, "state.terminated") && json_int(cs, "state.terminated.exitCode", 0) != 0)
				return json_str(cs, "name");
		}
	}
	return NULL;
}

/* ready/desired of a pod: its containers */
static void pod_counts(const cJSON *pod, struct verdict_row *row)
{
	const cJSON *list = json_path(pod, "status.containerStatuses"), *cs;
	const cJSON *spec = json_path(pod, "spec.containers");

	row->ready = 0;
	row->desired = cJSON_IsArray(spec) ? cJSON_GetArraySize(spec) : 0;
	if (!cJSON_IsArray(list))
		return;
	if (!row->desired)
		row->desired = cJSON_GetArraySize(list);
	cJSON_ArrayForEach (cs, list) {
		if (json_bool(cs, "ready"))
			row->ready++;
	}
}

/* Not ready yet: a short state and why, into the row. */
static void pod_progress(const cJSON *pod, struct verdict_row *row)
{
	const cJSON *sched = json_condition(pod, "PodScheduled");
	const cJSON *list, *cs;
	const char *waiting = NULL, *notready = NULL;

	if (streq(json_str(sched, "status"), "False")) {
		const char *why = json_str(sched, "reason");
		/*
		 * Unschedulable may heal (cluster autoscaler, nodes freeing up):
		 * keep waiting and say why; --timeout decides.
		 */
		clean_copy(row->state, sizeof(row->state), why ? why : "Pending");
		fmt(row->reason, sizeof(row->reason), "%s",
		    json_str(sched, "message") ? json_str(sched, "message") : "waiting to be scheduled");
		return;
	}
	list = json_path(pod, "status.initContainerStatuses");
	if (cJSON_IsArray(list) && !json_condition_true(pod, "Initialized")) {
		int64_t total = 0, done = 0;
		cJSON_ArrayForEach (cs, list) {
			total++;
			if (json_int(cs, "state.terminated.exitCode", 1) == 0 && json_path(cs, "state.terminated"))
				done++;
			else if (is_sidecar(pod, json_str(cs, "name")) && json_bool(cs, "started"))
				done++;
			else if (!waiting)
				waiting = json_str(cs, "name");
		}
		if (total && done < total) {
			fmt(row->state, sizeof(row->state), "Init:%lld/%lld", (long long)done, (long long)total);
			fmt(row->reason, sizeof(row->reason), "waiting for init container \"%s\"", nz(waiting));
			return;
		}
	}
	list = json_path(pod, "status.containerStatuses");
	waiting = NULL;
	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach (cs, list) {
			if (json_bool(cs, "ready"))
				continue;
			if (!notready)
				notready = json_str(cs, "name");
			if (!waiting)
				waiting = json_str(cs, "state.waiting.reason");
		}
	}
	if (waiting) {
		clean_copy(row->state, sizeof(row->state), waiting);
		fmt(row->reason, sizeof(row->reason), "container \"%s\" is waiting: %s", nz(notready), waiting);
	} else if (notready) {
		clean_copy(row->state, sizeof(row->state), "NotReady");
		fmt(row->reason, sizeof(row->reason), "container \"%s\" is not ready", notready);
	} else {
		const cJSON *rc = json_condition(pod, "Ready");
		clean_copy(row->state, sizeof(row->state),
		           json_str(pod, "status.phase") ? json_str(pod, "status.phase") : "Pending");
		fmt(row->reason, sizeof(row->reason), "pod is not Ready%s%s", json_str(rc, "message") ? ": " : "",
		    nz(json_str(rc, "message")));
	}
}

/*
 * When a graced state started, as best known: the earlier of when the
 * caller first saw it and when the pod turned not-Ready (or started) on the
 * server's clock, so a check started late does not wait the full grace
 * again.
 */
static int64_t grace_since(const struct eval *ev, const cJSON *pod, const char *key)
{
	const cJSON *rc = json_condition(pod, "Ready");
	int64_t local = ev->opts->first_seen ? ev->opts->first_seen(ev->opts->first_seen_ctx, key)
	                : (ev->cur && ev->cur->row && strcmp(ev->cur->row->grace_key, key) == 0)
	                    ? ev->cur->first_seen_ms
	                    : 0;
	int64_t server = 0;

	if (local <= 0 || local > ev->opts->now_ms)
		local = ev->opts->now_ms;
	if (rc && streq(json_str(rc, "status"), "False"))
		server = time_of(rc, "lastTransitionTime");
	if (!server)
		server = time_of(pod, "status.startTime");
	if (!server)
		server = time_of(pod, "metadata.creationTimestamp");
	return (server > 0 && server < local) ? server : local;
}

static void eval_pod(struct eval *ev, const cJSON *pod)
{
	struct verdict_row *row = add_row(ev, "Pod", pod);
	const cJSON *ref = owner_ref(pod), *owner = NULL, *deploy = NULL;
	const char *okind = json_str(ref, "kind"), *oname = json_str(ref, "name");
	const char *phase = nz(json_str(pod, "status.phase"));
	const char *defer = NULL; /* why a failure does not count (yet) */
	char deferbuf[160];
	struct pod_finding f;

	if (!row)
		return;
	set_events(row, "Pod", row->name);
	pod_counts(pod, row);
	if (json_str(pod, "metadata.deletionTimestamp")) {
		row->status = ROW_IGNORED;
		clean_copy(row->state, sizeof(row->state), "Terminating");
		fmt(row->reason, sizeof(row->reason), "being deleted");
		return;
	}
	if (streq(okind, "ReplicaSet") && (owner = find_owner(ev->st, VERDICT_REPLICASETS, ref)) != NULL) {
		const cJSON *dref = owner_ref(owner);
		int64_t rev = parse_uint(meta_map(owner, "metadata.annotations", "deployment.kubernetes.io/revision"));
		int64_t cur = -1, gen, obs;
		struct vobj *rs;

		if (dref && streq(json_str(dref, "kind"), "Deployment")) {
			deploy = find_owner(ev->st, VERDICT_DEPLOYMENTS, dref);
			if (deploy)
				cur = parse_uint(
				    meta_map(deploy, "metadata.annotations", "deployment.kubernetes.io/revision"));
			if (cur < 0) {
				/* no Deployment in view: the newest sibling ReplicaSet is current */
				const char *dname = json_str(dref, "name");
				for (rs = ht_first(ev->st, H_OWNER, VERDICT_REPLICASETS, dname); rs;
				     rs = ht_next(rs, H_OWNER, dname)) {
					int64_t v = parse_uint(meta_map(rs->obj, "metadata.annotations",
					                                "deployment.kubernetes.io/revision"));
					if (v > cur)
						cur = v;
				}
			}
			if (rev >= 0 && cur >= 0 && rev < cur) {
				row->status = ROW_IGNORED;
				clean_copy(row->state, sizeof(row->state), "Superseded");
				fmt(row->reason, sizeof(row->reason),
				    "pod of ReplicaSet %s (revision %lld, current %lld)", nz(oname), (long long)rev,
				    (long long)cur);
				return;
			}
			if (deploy && generation_pending(deploy, &gen, &obs)) {
				fmt(deferbuf, sizeof(deferbuf),
				    "not counted until Deployment %s's controller observes generation %lld",
				    nz(json_str(deploy, "metadata.name")), (long long)gen);
				defer = deferbuf;
			}
		}
	}

	if (strcmp(phase, "Succeeded") == 0) {
		row->status = ROW_OK;
		clean_copy(row->state, sizeof(row->state), "Completed");
		fmt(row->reason, sizeof(row->reason), "succeeded");
		return;
	}
	if (streq(okind, "Job")) {
		const cJSON *job = find_owner(ev->st, VERDICT_JOBS, ref);
		int failed;
		if (job && job_finished(job, &failed)) {
			row->status = ROW_IGNORED;
			clean_copy(row->state, sizeof(row->state), phase[0] ? phase : "Finished");
			fmt(row->reason, sizeof(row->reason), "pod of finished Job %s", nz(oname));
			return;
		}
	}
	if (strcmp(phase, "Failed") == 0) {
		const char *why = json_str(pod, "status.reason");
		const char *msg = json_str(pod, "status.message");
		clean_copy(row->state, sizeof(row->state), why ? why : "Failed");
		if (ref) {
			/* evicted, preempted, node shutdown: the controller makes a new pod */
			row->status = ROW_IGNORED;
			fmt(row->reason, sizeof(row->reason), "%s; %s %s %s", msg ? msg : "pod failed", nz(okind),
			    nz(oname), streq(okind, "Job") ? "decides whether to retry" : "replaces it");
			return;
		}
		row->status = ROW_FAILED;
		fmt(row->reason, sizeof(row->reason), "pod failed%s%s%s%s", why ? ": " : "", nz(why), msg ? ": " : "",
		    nz(msg));
		set_logs(row, row->name, failed_container(pod), 0);
		return;
	}

	if (pod_find_failure(pod, &f)) {
		size_t n;

		clean_copy(row->state, sizeof(row->state), f.state);
		clean_copy(row->reason, sizeof(row->reason), f.reason);
		n = strlen(row->reason);
		if (f.cls == PF_CRASH && streq(okind, "Job")) {
			/* backoffLimit: the Job retries, its conditions decide */
			fmt(row->reason + n, sizeof(row->reason) - n, "; Job %s decides", nz(oname));
			return;
		}
		if (f.cls == PF_IMAGE || f.cls == PF_CONFIG) {
			const char *uid = json_str(pod, "metadata.uid");
			int64_t since;

			fmt(row->grace_key, sizeof(row->grace_key), "%s/%s/%s", uid && uid[0] ? uid : row->name,
			    nz(f.container), f.cls == PF_IMAGE ? "image" : "config");
			since = grace_since(ev, pod, row->grace_key);
			row->fails_at_ms = since + ev->pull_grace_ms;
			if (ev->opts->now_ms < row->fails_at_ms && !defer) {
				/* stable text: the countdown is fails_at_ms, not a changing reason */
				fmt(row->reason + n, sizeof(row->reason) - n, " (fails if it persists %llds)",
				    (long long)(ev->pull_grace_ms / 1000));
				return;
			}
			if (!defer)
				fmt(row->reason + n, sizeof(row->reason) - n, " (for %llds)",
				    (long long)((ev->opts->now_ms - since) / 1000));
		}
		if (defer) {
			fmt(row->reason + n, sizeof(row->reason) - n, "; %s", defer);
			row->fails_at_ms = 0;
			return;
		}
		row->status = ROW_FAILED;
		set_logs(row, row->name, f.logs ? f.container : NULL, f.previous);
		return;
	}
	if (json_condition_true(pod, "Ready")) {
		row->status = ROW_OK;
		clean_copy(row->state, sizeof(row->state), "Ready");
		fmt(row->reason, sizeof(row->reason), "ready");
		return;
	}
	pod_progress(pod, row);
}

/* ---- the store ------------------------------------------------------------------ */

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
		fmt(r->summary, sizeof(r->summary), "%s/%s: %s%s", first_fail->kind, first_fail->name,
		    first_fail->reason, nfail > 1 ? " (and more)" : "");
	} else if (first_prog) {
		r->verdict = VERDICT_PROGRESSING;
		fmt(r->summary, sizeof(r->summary), "waiting for %zu object%s, e.g. %s/%s: %s", nprog,
		    nprog == 1 ? "" : "s", first_prog->kind, first_prog->name, first_prog->reason);
	} else if (!r->nconsidered) {
		/*
		 * Nothing selected: the objects may not exist yet
		 * (kubernetes#75227), or the selector is wrong. Never a vacuous
		 * success.
		 */
		r->verdict = VERDICT_PROGRESSING;
		fmt(r->summary, sizeof(r->summary), "no workloads or pods match the selector yet");
	} else {
		r->verdict = VERDICT_HEALTHY;
		fmt(r->summary, sizeof(r->summary), "%zu object%s ready", r->nconsidered,
		    r->nconsidered == 1 ? "" : "s");
	}
}

/* The order of the rows: the release, workloads, bare ReplicaSets, Jobs, pods. */
static const enum verdict_kind row_order[VERDICT_NKINDS - 1] = {
    VERDICT_DEPLOYMENTS, VERDICT_STATEFULSETS, VERDICT_DAEMONSETS, VERDICT_REPLICASETS, VERDICT_JOBS, VERDICT_PODS};

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

/* uid, else name: what identifies an object across events */
static const char *obj_id(const cJSON *obj)
{
	const char *uid = json_str(obj, "metadata.uid");
	return uid && uid[0] ? uid : json_str(obj, "metadata.name");
}

static uint64_t sig_str(uint64_t h, const char *s)
{
	h = (h ^ (s ? 1u : 2u)) * 1099511628211ULL;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static uint64_t sig_int(uint64_t h, int64_t v) { return (h ^ (uint64_t)v) * 1099511628211ULL; }

/*
 * A hash of what the rows of other objects read of obj (see propagate):
 * when a modification leaves it alone (a Deployment's or ReplicaSet's
 * status counts as pods turn Ready) the pods need no new look.
 */
static uint64_t obj_sig(unsigned kind, const cJSON *obj)
{
	uint64_t h = 1469598103934665603ULL;
	const cJSON *ref = owner_ref(obj);
	int64_t gen, obs;
	int failed = 0;

	h = sig_str(h, json_str(obj, "metadata.name"));
	h = sig_str(h, json_str(obj, "metadata.uid"));
	switch (kind) {
	case VERDICT_DEPLOYMENTS:
		h = sig_str(h, meta_map(obj, "metadata.annotations", "deployment.kubernetes.io/revision"));
		h = sig_int(h, generation_pending(obj, &gen, &obs) ? gen : -1);
		break;
	case VERDICT_REPLICASETS:
		h = sig_str(h, meta_map(obj, "metadata.annotations", "deployment.kubernetes.io/revision"));
		h = sig_str(h, json_str(ref, "kind"));
		h = sig_str(h, json_str(ref, "name"));
		h = sig_str(h, json_str(ref, "uid"));
		break;
	case VERDICT_JOBS: h = sig_int(h, job_finished(obj, &failed) + failed); break;
	default: break;
	}
	return h;
}

static void mark_dirty(struct verdict_store *st, struct vobj *o)
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
static void mark_owned(struct verdict_store *st, unsigned kind, const char *owner)
{
	struct vobj *p;
	for (p = ht_first(st, H_OWNER, kind, owner); p; p = ht_next(p, H_OWNER, owner))
		mark_dirty(st, p);
}

/*
 * o changed (appeared, went, or what obj_sig covers changed): mark the
 * objects whose rows read it. A pod reads its ReplicaSet, that one's
 * Deployment and sibling ReplicaSets (the current revision), and its Job;
 * a Job reads its pods (the log target of a failure); the release record
 * is read by the release row and hook Jobs (handled in the update).
 */
static void propagate(struct verdict_store *st, struct vobj *o)
{
	struct vobj *rs;

	switch (o->kind) {
	case VERDICT_RELEASES: st->release_dirty = 1; break;
	case VERDICT_PODS:
		for (rs = ht_first(st, H_NAME, VERDICT_JOBS, o->key[H_OWNER]); rs;
		     rs = ht_next(rs, H_NAME, o->key[H_OWNER]))
			mark_dirty(st, rs);
		break;
	case VERDICT_REPLICASETS:
		mark_owned(st, VERDICT_PODS, o->key[H_NAME]);
		for (rs = ht_first(st, H_OWNER, VERDICT_REPLICASETS, o->key[H_OWNER]); rs;
		     rs = ht_next(rs, H_OWNER, o->key[H_OWNER]))
			mark_owned(st, VERDICT_PODS, rs->key[H_NAME]);
		break;
	case VERDICT_DEPLOYMENTS:
		for (rs = ht_first(st, H_OWNER, VERDICT_REPLICASETS, o->key[H_NAME]); rs;
		     rs = ht_next(rs, H_OWNER, o->key[H_NAME]))
			mark_owned(st, VERDICT_PODS, rs->key[H_NAME]);
		break;
	case VERDICT_JOBS: mark_owned(st, VERDICT_PODS, o->key[H_NAME]); break;
	default: break;
	}
}

static void index_obj(struct verdict_store *st, struct vobj *o)
{
	size_t i;

	o->key[H_ID] = obj_id(o->obj);
	o->key[H_NAME] = json_str(o->obj, "metadata.name");
	o->key[H_OWNER] = json_str(owner_ref(o->obj), "name");
	for (i = 0; i < NHASH; i++)
		ht_add(st, (int)i, o);
	o->sig = obj_sig(o->kind, o->obj);
}

static void unindex_obj(struct verdict_store *st, struct vobj *o)
{
	size_t i;
	for (i = 0; i < NHASH; i++)
		ht_del(st, (int)i, o);
}

/* Append obj (owned: the store frees it) as a new object. */
static int store_add(struct verdict_store *st, unsigned kind, const cJSON *obj, cJSON *owned)
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
	index_obj(st, o);
	mark_dirty(st, o);
	propagate(st, o);
	return 0;
}

static struct vobj *store_find(const struct verdict_store *st, unsigned kind, const cJSON *obj)
{
	const char *id = obj_id(obj);
	struct vobj *o = ht_first(st, H_ID, kind, id), *best = o;

	for (; o; o = ht_next(o, H_ID, id))
		if (o->seq < best->seq)
			best = o;
	return best;
}

int verdict_store_put(struct verdict_store *st, enum verdict_kind k, const cJSON *obj)
{
	struct vobj *o;
	cJSON *pr;
	uint64_t sig;

	if ((unsigned)k >= VERDICT_NKINDS || !cJSON_IsObject(obj))
		return 0;
	pr = verdict_prune(k, obj);
	if (!pr)
		return -1;
	o = store_find(st, k, pr);
	if (!o) {
		if (store_add(st, k, pr, pr) < 0) {
			cJSON_Delete(pr);
			return -1;
		}
		return 0;
	}
	/* in place: the position in the kind's order stays */
	sig = obj_sig(k, pr);
	if (sig != o->sig || k == VERDICT_PODS || k == VERDICT_RELEASES)
		propagate(st, o); /* the readers of the old version */
	unindex_obj(st, o);
	cJSON_Delete(o->own);
	o->obj = o->own = pr;
	o->stale = 0;
	index_obj(st, o);
	mark_dirty(st, o);
	if (sig != o->sig || k == VERDICT_PODS || k == VERDICT_RELEASES)
		propagate(st, o);
	return 0;
}

/* Unlink o; the next update reports its row gone and frees it. */
static void store_remove(struct verdict_store *st, struct vobj *o)
{
	unsigned k = o->kind;

	propagate(st, o);
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
static int settle(struct eval *ev, struct verdict_row **slot, unsigned char *considered, verdict_change_fn changed,
                  void *ctx)
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
	ev->cur = o;
	ev->has_row = 0;
	ev->considered = 0;
	switch (o->kind) {
	case VERDICT_DEPLOYMENTS: eval_deployment(ev, o->obj); break;
	case VERDICT_REPLICASETS: eval_replicaset(ev, o->obj); break;
	case VERDICT_STATEFULSETS: eval_statefulset(ev, o->obj); break;
	case VERDICT_DAEMONSETS: eval_daemonset(ev, o->obj); break;
	case VERDICT_JOBS: eval_job(ev, o->obj); break;
	case VERDICT_PODS:
		eval_pod(ev, o->obj);
		ev->considered = ev->has_row && ev->row.status != ROW_IGNORED;
		break;
	default: return 0; /* release records: read by the release row */
	}
	/* a grace key not in the last row starts its grace now */
	if (!ev->has_row || !ev->row.grace_key[0])
		o->first_seen_ms = 0;
	else if (!o->row || strcmp(o->row->grace_key, ev->row.grace_key) != 0)
		o->first_seen_ms = ev->opts->now_ms;
	if (settle(ev, &o->row, &o->considered, changed, ctx) < 0)
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
	ev->pull_grace_ms = opts->pull_grace_ms < 0 ? VERDICT_DEFAULT_PULL_GRACE_MS : opts->pull_grace_ms;
	if (st->release_dirty) {
		int64_t created = st->helm_created_ms;
		ev->has_row = 0;
		eval_release(ev);
		if (settle(ev, &st->release_row, &st->release_considered, changed, ctx) < 0)
			rc = -1;
		else
			st->release_dirty = 0;
		if (st->helm_created_ms != created) /* Jobs compare with it */
			for (o = st->head[VERDICT_JOBS]; o; o = o->next)
				mark_dirty(st, o);
	}
	/* time alone changes a graced row once its grace is over */
	for (o = st->graced; o; o = o->gnext)
		if (o->row->fails_at_ms <= opts->now_ms)
			mark_dirty(st, o);
	/* in the order of the rows, so the changes are reported in it */
	for (i = 0; i < VERDICT_NKINDS && rc == 0; i++) {
		unsigned k = i < VERDICT_NKINDS - 1 ? row_order[i] : VERDICT_RELEASES;
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
		counts->verdict = st->nfailed                              ? VERDICT_FAILED
		                  : (st->nprogressing || !st->nconsidered) ? VERDICT_PROGRESSING
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
	for (i = 0; i < sizeof(row_order) / sizeof(row_order[0]); i++)
		for (o = st->head[row_order[i]]; o; o = o->next)
			n += o->row != NULL;
	if (n) {
		out->rows = malloc(n * sizeof(*out->rows));
		if (!out->rows)
			return -1;
	}
	if (st->release_row)
		out->rows[out->nrows++] = *st->release_row;
	for (i = 0; i < sizeof(row_order) / sizeof(row_order[0]); i++)
		for (o = st->head[row_order[i]]; o; o = o->next)
			if (o->row)
				out->rows[out->nrows++] = *o->row;
	summarize(out);
	return 0;
}

/* ---- pruning: what the rules read, per kind -------------------------------------------- */

/* A key to keep; sub: the keys to keep below it (of each element of an array), NULL: all of it. */
struct keep {
	const char *key;
	const struct keep *sub;
};

static const struct keep k_name[] = {{"name", NULL}, {NULL, NULL}};
static const struct keep k_owner[] = {
    {"kind", NULL}, {"name", NULL}, {"uid", NULL}, {"controller", NULL}, {NULL, NULL}};
static const struct keep k_annotations[] = {
    {"deployment.kubernetes.io/revision", NULL}, {"helm.sh/hook", NULL}, {NULL, NULL}};
static const struct keep k_meta[] = {
    {"name", NULL},
    {"uid", NULL},
    {"generation", NULL},
    {"creationTimestamp", NULL},
    {"deletionTimestamp", NULL},
    {"ownerReferences", k_owner},
    {"annotations", k_annotations},
    {NULL, NULL},
};
/* a Helm release Secret: labels only, never the payload (values, credentials) */
static const struct keep k_release_labels[] = {
    {"owner", NULL}, {"name", NULL}, {"version", NULL}, {"status", NULL}, {NULL, NULL}};
static const struct keep k_release_meta[] = {
    {"name", NULL}, {"uid", NULL}, {"creationTimestamp", NULL}, {"labels", k_release_labels}, {NULL, NULL}};
static const struct keep k_condition[] = {
    {"type", NULL}, {"status", NULL}, {"reason", NULL}, {"message", NULL}, {"lastTransitionTime", NULL}, {NULL, NULL}};

static const struct keep k_deploy_spec[] = {{"replicas", NULL}, {"paused", NULL}, {NULL, NULL}};
static const struct keep k_deploy_status[] = {{"observedGeneration", NULL}, {"replicas", NULL},
                                              {"updatedReplicas", NULL},    {"availableReplicas", NULL},
                                              {"conditions", k_condition},  {NULL, NULL}};
static const struct keep k_rs_spec[] = {{"replicas", NULL}, {NULL, NULL}};
static const struct keep k_rs_status[] = {
    {"observedGeneration", NULL}, {"availableReplicas", NULL}, {"conditions", k_condition}, {NULL, NULL}};
static const struct keep k_rolling[] = {{"partition", NULL}, {NULL, NULL}};
static const struct keep k_strategy[] = {{"type", NULL}, {"rollingUpdate", k_rolling}, {NULL, NULL}};
static const struct keep k_sts_spec[] = {{"replicas", NULL}, {"updateStrategy", k_strategy}, {NULL, NULL}};
static const struct keep k_sts_status[] = {
    {"observedGeneration", NULL}, {"replicas", NULL},          {"readyReplicas", NULL},
    {"updatedReplicas", NULL},    {"availableReplicas", NULL}, {"currentRevision", NULL},
    {"updateRevision", NULL},     {"conditions", k_condition}, {NULL, NULL}};
static const struct keep k_ds_spec[] = {{"updateStrategy", k_strategy}, {NULL, NULL}};
static const struct keep k_ds_status[] = {{"observedGeneration", NULL},     {"desiredNumberScheduled", NULL},
                                          {"updatedNumberScheduled", NULL}, {"numberAvailable", NULL},
                                          {"conditions", k_condition},      {NULL, NULL}};
static const struct keep k_job_spec[] = {{"completions", NULL}, {"suspend", NULL}, {NULL, NULL}};
static const struct keep k_job_status[] = {
    {"succeeded", NULL}, {"failed", NULL}, {"active", NULL}, {"conditions", k_condition}, {NULL, NULL}};

static const struct keep k_waiting[] = {{"reason", NULL}, {"message", NULL}, {NULL, NULL}};
static const struct keep k_terminated[] = {
    {"exitCode", NULL}, {"reason", NULL}, {"message", NULL}, {"finishedAt", NULL}, {NULL, NULL}};
static const struct keep k_cstate[] = {{"waiting", k_waiting}, {"terminated", k_terminated}, {NULL, NULL}};
static const struct keep k_cstatus[] = {
    {"name", NULL},      {"ready", NULL},         {"started", NULL}, {"restartCount", NULL},
    {"state", k_cstate}, {"lastState", k_cstate}, {NULL, NULL}};
static const struct keep k_init_container[] = {{"name", NULL}, {"restartPolicy", NULL}, {NULL, NULL}};
/* spec.containers: only how many (and names, for reading a dump) */
static const struct keep k_pod_spec[] = {
    {"containers", k_name}, {"initContainers", k_init_container}, {"restartPolicy", NULL}, {NULL, NULL}};
static const struct keep k_pod_status[] = {{"phase", NULL},
                                           {"reason", NULL},
                                           {"message", NULL},
                                           {"startTime", NULL},
                                           {"conditions", k_condition},
                                           {"containerStatuses", k_cstatus},
                                           {"initContainerStatuses", k_cstatus},
                                           {NULL, NULL}};

#define KIND_KEEP(spec, status)                                                                                        \
	{                                                                                                              \
		{"metadata", k_meta}, {"spec", spec}, {"status", status}, { NULL, NULL }                               \
	}
static const struct keep k_kinds[VERDICT_NKINDS][4] = {
    {{"metadata", k_release_meta}, {NULL, NULL}, {NULL, NULL}, {NULL, NULL}},
    KIND_KEEP(k_deploy_spec, k_deploy_status),
    KIND_KEEP(k_rs_spec, k_rs_status),
    KIND_KEEP(k_sts_spec, k_sts_status),
    KIND_KEEP(k_ds_spec, k_ds_status),
    KIND_KEEP(k_job_spec, k_job_status),
    KIND_KEEP(k_pod_spec, k_pod_status),
};

/*
 * Copy of v keeping only the keys of sub (recursively; in each element
 * of an array). A value of another type than expected is copied whole:
 * the rules read it exactly as they would the original.
 */
static cJSON *prune_value(const cJSON *v, const struct keep *sub)
{
	cJSON *out;
	const cJSON *e;

	if (!sub || (!cJSON_IsObject(v) && !cJSON_IsArray(v)))
		return cJSON_Duplicate(v, 1);
	if (cJSON_IsArray(v)) {
		out = cJSON_CreateArray();
		cJSON_ArrayForEach (e, v) {
			cJSON *c = out ? prune_value(e, sub) : NULL;
			if (!c) {
				cJSON_Delete(out);
				return NULL;
			}
			cJSON_AddItemToArray(out, c);
		}
		return out;
	}
	out = cJSON_CreateObject();
	for (; out && sub->key; sub++) {
		cJSON *c;
		/* the first of duplicate keys, as the getters read */
		e = cJSON_GetObjectItemCaseSensitive(v, sub->key);
		if (!e)
			continue;
		c = prune_value(e, sub->sub);
		if (!c || !cJSON_AddItemToObject(out, sub->key, c)) {
			cJSON_Delete(c);
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

cJSON *verdict_prune(enum verdict_kind k, const cJSON *obj)
{
	if ((unsigned)k >= VERDICT_NKINDS || !cJSON_IsObject(obj))
		return cJSON_CreateNull();
	return prune_value(obj, k_kinds[k]);
}

/* The pure form: a store over the document's objects (borrowed, not pruned). */
int verdict_eval(const cJSON *objects, const struct verdict_opts *opts, struct verdict_result *out)
{
	struct verdict_store *st = verdict_store_new();
	const cJSON *o;
	size_t k;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->helm_revision = -1;
	if (!st)
		return -1;
	for (k = 0; k < VERDICT_NKINDS && rc == 0; k++)
		cJSON_ArrayForEach (o, arr(objects, verdict_kind_key[k]))
			if ((rc = store_add(st, (unsigned)k, o, NULL)) < 0)
				break;
	if (rc == 0)
		rc = verdict_store_update(st, opts, NULL, NULL, NULL);
	if (rc == 0)
		rc = verdict_store_result(st, out);
	verdict_store_free(st);
	return rc;
}

void verdict_result_free(struct verdict_result *r)
{
	free(r->rows);
	r->rows = NULL;
	r->nrows = 0;
}

const char *verdict_name(enum verdict v)
{
	switch (v) {
	case VERDICT_HEALTHY: return "healthy";
	case VERDICT_FAILED: return "failed";
	case VERDICT_PROGRESSING: break;
	}
	return "progressing";
}

const char *verdict_status_name(enum verdict_status s)
{
	switch (s) {
	case ROW_OK: return "ok";
	case ROW_FAILED: return "failed";
	case ROW_IGNORED: return "ignored";
	case ROW_PROGRESSING: break;
	}
	return "progressing";
}

cJSON *verdict_row_json(const struct verdict_row *row)
{
	cJSON *o = cJSON_CreateObject();
	int ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "kind", row->kind);
	ok = ok && cJSON_AddStringToObject(o, "name", row->name);
	ok = ok && cJSON_AddStringToObject(o, "verdict", verdict_status_name(row->status));
	ok = ok && cJSON_AddStringToObject(o, "state", row->state);
	ok = ok && cJSON_AddStringToObject(o, "reason", row->reason);
	if (ok && row->desired >= 0) {
		ok = ok && cJSON_AddNumberToObject(o, "ready", (double)row->ready);
		ok = ok && cJSON_AddNumberToObject(o, "desired", (double)row->desired);
	}
	if (ok && row->fails_at_ms > 0) {
		char ts[32];
		ok = ok && cJSON_AddStringToObject(o, "failsAt", json_format_time(row->fails_at_ms, ts, sizeof(ts)));
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *verdict_result_json(const struct verdict_result *r)
{
	cJSON *o = cJSON_CreateObject(), *objs = NULL;
	size_t i;
	int ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "verdict", verdict_name(r->verdict));
	ok = ok && cJSON_AddStringToObject(o, "summary", r->summary);
	if (ok && r->helm_revision >= 0) {
		cJSON *h = cJSON_AddObjectToObject(o, "helm");
		ok = h && cJSON_AddNumberToObject(h, "revision", (double)r->helm_revision) &&
		     cJSON_AddStringToObject(h, "status", r->helm_status);
	}
	ok = ok && (objs = cJSON_AddArrayToObject(o, "objects")) != NULL;
	for (i = 0; ok && i < r->nrows; i++) {
		cJSON *row = verdict_row_json(&r->rows[i]);
		ok = row != NULL;
		if (ok)
			cJSON_AddItemToArray(objs, row);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- first-seen table -------------------------------------------------------- */

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
		clean_copy(t->e[t->n].key, sizeof(t->e[t->n].key), key);
		t->e[t->n].ms = now_ms;
		t->n++;
	}
}
