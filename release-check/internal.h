/*
 * internal.h - what the files of release-check's evaluator share, and no
 * one else: the store's object and indexes, the judging context, the
 * per-kind hooks and the field helpers the rules read through.
 *
 * Files (each one concern; verdict.h is the public API):
 *   verdict.c        the table of kinds (one entry per kind), verdict_eval
 *   fields.c         reading fields of API objects, filling rows
 *   index.c          the store's hash indexes (uid, name, owner)
 *   store.c          the incremental store: put/delete/relist, update
 *   prune.c          what the rules read of each kind (verdict_prune)
 *   report.c         names and the JSON form of rows and results
 *   first_seen.c     the caller's bounded first-seen table
 *   rule_release.c   the Helm release record; which Jobs are current
 *   rule_workloads.c Deployment, ReplicaSet, StatefulSet, DaemonSet
 *   rule_job.c       Job (the condition/counter rule is lib/jobstatus.c)
 *   rule_pod.c       Pod
 */
#ifndef RC_INTERNAL_H
#define RC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "verdict.h"

enum { H_ID, H_NAME, H_OWNER, NHASH }; /* indexes: uid (else name), name, owner's name */

struct vobj {
	const cJSON *obj; /* own, or the caller's (verdict_eval) */
	cJSON *own;
	struct vobj *prev, *next;   /* the kind's objects in insertion order (next: also the dead list) */
	struct vobj *hnext[NHASH];  /* hash chains */
	const char *key[NHASH];     /* into obj; NULL: not in that index */
	const cJSON *ref;           /* rc_owner_ref(obj), read once when indexed */
	const char *uid;            /* metadata.uid of obj, likewise */
	struct vobj *dnext;         /* dirty queue */
	struct vobj *gprev, *gnext; /* graced list: rows with fails_at_ms */
	struct verdict_row *row;    /* cached; NULL: no row */
	uint64_t seq;               /* insertion order across the store: "first" as in a list */
	uint64_t sig;               /* hash of what other objects' rows read of this one */
	int64_t first_seen_ms;      /* when row->grace_key was first seen */
	unsigned char kind, dirty, stale, removed, graced, considered, skipped;
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
	unsigned char release_considered, release_skipped; /* always 0: the record is not a workload */
	int release_missing;                               /* a release was expected and has no record */
	int64_t now_ms;                                    /* of the last update */
	int64_t helm_revision;
	char helm_status[32];
	size_t nfailed, nprogressing, nconsidered, nskipped;
};

struct eval {
	struct verdict_store *st;
	const struct verdict_opts *opts;
	int64_t pull_grace_ms;
	const struct vobj *cur; /* being judged (its first-seen time) */
	struct verdict_row row; /* its row, when has_row */
	int has_row;
	int considered; /* it counts as a workload or pod */
	int skipped;    /* not counted by design (paused, suspended): decided, not waited for */
};

/* ---- the per-kind hooks (the table is verdict_kinds[], verdict.c) --------------- */

struct rc_kind_hooks {
	/* judge one object into ev->row (ev->has_row); NULL: no row of its own */
	void (*judge)(struct eval *ev, const cJSON *obj);
	/* hash of what other objects' rows read of obj (see rc_store propagate); NULL: only the identity */
	uint64_t (*sig)(uint64_t h, const cJSON *obj);
	/* o appeared, went or changed what sig covers: mark the objects whose rows read it */
	void (*propagate)(struct verdict_store *st, struct vobj *o);
	/* o was put or removed: mark the rows that read any of it (cheap: O(1) objects); may be NULL */
	void (*notify)(struct verdict_store *st, struct vobj *o);
	const struct json_keep *keep; /* what verdict_prune keeps */
	int always_propagate;         /* every change is read by others (pods: their Job's log target) */
};

#define RC_REVISION "deployment.kubernetes.io/revision" /* annotation of Deployments and their ReplicaSets */

/* ---- fields.c ---------------------------------------------------------------- */

void rc_clean_copy(char *dst, size_t cap, const char *src);
void rc_fmt(char *dst, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
const char *rc_nz(const char *s);
const cJSON *rc_arr(const cJSON *doc, const char *key);
int rc_streq(const char *a, const char *b);
const char *rc_meta(const cJSON *obj, const char *map, const char *key);
int64_t rc_parse_uint(const char *s);
int64_t rc_time_of(const cJSON *obj, const char *path);
int64_t rc_count(const cJSON *obj, const char *path, int64_t def);
const cJSON *rc_owner_ref(const cJSON *obj);
const cJSON *rc_ref_of(const struct eval *ev, const cJSON *obj);
int rc_owned_by(const cJSON *obj, const cJSON *owner);
int rc_generation_pending(const cJSON *obj, int64_t *gen, int64_t *obs);
struct verdict_row *rc_add_row(struct eval *ev, const char *kind, const cJSON *obj);
void rc_set_events(struct verdict_row *row, const char *kind, const char *name);
void rc_set_logs(struct verdict_row *row, const char *pod, const char *container, int previous);
const char *rc_obj_id(const cJSON *obj);
uint64_t rc_sig_str(uint64_t h, const char *s);
uint64_t rc_sig_int(uint64_t h, int64_t v);

/* ---- index.c ------------------------------------------------------------------ */

void rc_ht_add(struct verdict_store *st, int which, struct vobj *o);
void rc_ht_del(struct verdict_store *st, int which, struct vobj *o);
/* The objects of a kind whose key is key: for (o = rc_ht_first(..); o; o = rc_ht_next(o, ..)). */
struct vobj *rc_ht_first(const struct verdict_store *st, int which, unsigned kind, const char *key);
struct vobj *rc_ht_next(struct vobj *o, int which, const char *key);
const struct vobj *rc_find_owner_obj(const struct verdict_store *st, unsigned kind, const cJSON *ref);
const cJSON *rc_find_owner(const struct verdict_store *st, unsigned kind, const cJSON *ref);

/* ---- store.c ------------------------------------------------------------------- */

int rc_store_add(struct verdict_store *st, unsigned kind, const cJSON *obj, cJSON *owned);
void rc_mark_dirty(struct verdict_store *st, struct vobj *o);
void rc_mark_owned(struct verdict_store *st, unsigned kind, const char *owner);
unsigned rc_kind_at_rank(size_t rank); /* verdict.c: the kind whose rows come rank-th */

/* ---- the rules ------------------------------------------------------------------- */

void rc_rule_release(struct eval *ev);
void rc_rule_deployment(struct eval *ev, const cJSON *d);
void rc_rule_replicaset(struct eval *ev, const cJSON *rs);
void rc_rule_statefulset(struct eval *ev, const cJSON *s);
void rc_rule_daemonset(struct eval *ev, const cJSON *d);
void rc_rule_job(struct eval *ev, const cJSON *job);
void rc_rule_pod(struct eval *ev, const cJSON *pod);
uint64_t rc_sig_deployment(uint64_t h, const cJSON *obj);
uint64_t rc_sig_replicaset(uint64_t h, const cJSON *obj);
uint64_t rc_sig_job(uint64_t h, const cJSON *obj);
void rc_prop_release(struct verdict_store *st, struct vobj *o);
void rc_prop_deployment(struct verdict_store *st, struct vobj *o);
void rc_prop_replicaset(struct verdict_store *st, struct vobj *o);
void rc_notify_replicaset(struct verdict_store *st, struct vobj *o);
void rc_prop_job(struct verdict_store *st, struct vobj *o);
void rc_prop_pod(struct verdict_store *st, struct vobj *o);
int rc_job_finished(const cJSON *job, int *failed);
/* rule_release.c: whether a Job is the current revision's (why: one line) */
enum rc_job_identity { RC_JOB_UNKNOWN, RC_JOB_CURRENT, RC_JOB_EARLIER };
enum rc_job_identity rc_job_identity(const struct eval *ev, const cJSON *job, char *why, size_t cap);
uint64_t rc_sig_template_jobs(uint64_t h, const cJSON *workload); /* the Jobs its pod template waits for */
void rc_prop_workload(struct verdict_store *st, struct vobj *o);  /* they changed: every Job */
/* rule_workloads.c: the newest revision of the ReplicaSets owned by Deployment name (-1: none) */
int64_t rc_newest_revision(const struct verdict_store *st, const char *deployment);

extern const struct json_keep rc_keep_release[], rc_keep_deployment[], rc_keep_replicaset[], rc_keep_statefulset[],
    rc_keep_daemonset[], rc_keep_job[], rc_keep_pod[];

#endif
