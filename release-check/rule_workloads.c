/*
 * rule_workloads.c - Deployment, ReplicaSet (not owned by a Deployment),
 * StatefulSet and DaemonSet: rolled out or not.
 */
#include <string.h>

#include "internal.h"
#include "json.h"

/*
 * Healthy only when every signal agrees: the controller observed the
 * current generation, and the updated, ready and available counts each
 * equal the desired count, with no condition that contradicts them. A
 * count the status does not carry is unknown, never 0: the API omits
 * zero counts, so with desired > 0 a missing one cannot prove anything
 * (with desired 0, once the generation is observed, it is the omitted 0).
 */
struct counts {
	int64_t desired, updated, ready, available, total; /* -1: unknown */
	int skip_updated;    /* OnDelete, partition reached: the updated count does not decide */
	int scale_down_word; /* StatefulSet: more pods than desired, all updated, is a scale-down */
	const char *unit;    /* "replicas", "pods", "nodes" */
};

static void read_counts(const cJSON *o, struct counts *c, const char *updated, const char *ready, const char *available,
                        const char *total)
{
	c->updated = updated ? rc_count(o, updated, -1) : c->desired;
	c->ready = rc_count(o, ready, -1);
	c->available = available ? rc_count(o, available, -1) : c->ready;
	c->total = total ? rc_count(o, total, -1) : -1;
	if (c->desired == 0) { /* omitted zeros */
		c->updated = c->updated < 0 ? 0 : c->updated;
		c->ready = c->ready < 0 ? 0 : c->ready;
		c->available = c->available < 0 ? 0 : c->available;
	}
}

static int unknown(struct verdict_row *row, const char *what)
{
	rc_fmt(row->reason, sizeof(row->reason), "the status does not report the %s count yet (unknown, not 0)", what);
	return 0;
}

static int short_of(struct verdict_row *row, int64_t n, int64_t of, const char *unit, const char *what)
{
	rc_fmt(row->reason, sizeof(row->reason), "%lld of %lld %s %s", (long long)n, (long long)of, unit, what);
	return 0;
}

/* The READY column: ready pods, or fewer when fewer are available; 0 while unknown. */
static void ready_column(const struct counts *c, struct verdict_row *row)
{
	row->desired = c->desired;
	row->ready = c->ready < 0 ? 0 : (c->available >= 0 && c->available < c->ready ? c->available : c->ready);
}

/* 1 when the counts say rolled out; else why not (the first missing or short count), into the row. */
static int counts_complete(const struct counts *c, struct verdict_row *row)
{
	const char *u = c->unit;

	ready_column(c, row);
	if (!c->skip_updated) {
		if (c->updated < 0)
			return unknown(row, "updated");
		if (c->updated < c->desired)
			return short_of(row, c->updated, c->desired, u, "updated");
		if (c->total > c->updated && !(c->scale_down_word && c->updated == c->desired)) {
			rc_fmt(row->reason, sizeof(row->reason), "%lld old %s pending termination",
			       (long long)(c->total - c->updated), u);
			return 0;
		}
	}
	/*
	 * More pods than desired, all of them updated (a scale-down, or the
	 * surge of a rollout not yet taken back): the API's "complete" is
	 * status.replicas == spec.replicas, so not yet (it was healthy while
	 * a Deployment scaled 3 -> 2, or to 0, still had its 3 pods).
	 */
	if (c->total > c->desired) {
		rc_fmt(row->reason, sizeof(row->reason), "scaling down: %lld %s, %lld desired", (long long)c->total, u,
		       (long long)c->desired);
		return 0;
	}
	if (c->ready < 0)
		return unknown(row, "ready");
	if (c->ready < c->desired)
		return short_of(row, c->ready, c->desired, u, "ready");
	if (c->available < 0)
		return unknown(row, "available");
	if (c->available < c->desired)
		return short_of(row, c->available, c->desired, u, "available");
	return 1;
}

static int generation_wait(const cJSON *o, struct verdict_row *row)
{
	int64_t gen, obs;

	if (!rc_generation_pending(o, &gen, &obs))
		return 0;
	/* conditions, including ProgressDeadlineExceeded, are of an older spec */
	rc_clean_copy(row->state, sizeof(row->state), "Pending");
	rc_fmt(row->reason, sizeof(row->reason), "waiting for the controller to observe generation %lld",
	       (long long)gen);
	return 1;
}

static void set_ok(struct verdict_row *row, const char *unit, const char *note)
{
	row->status = ROW_OK;
	rc_clean_copy(row->state, sizeof(row->state), "Available");
	rc_fmt(row->reason, sizeof(row->reason), "%lld of %lld %s updated, ready and available%s",
	       (long long)row->ready, (long long)row->desired, unit, note ? note : "");
}

/*
 * The secondary counts the controller writes in the same update as the
 * main ones (unavailableReplicas, currentNumberScheduled, ...). With
 * complete main counts they agree; when they do not (a status written by
 * another controller, or by hand), a signal says some pods are still
 * missing: not healthy. A "zero" count may be omitted (the API omits
 * zeros); an "at least desired" one is read only when present.
 */
struct also {
	const char *path;
	int zero; /* 1: must be 0; 0: when present, at least the desired count */
	const char *what;
};

static const struct also also_deployment[] = {{"status.unavailableReplicas", 1, "unavailable"}, {NULL, 0, NULL}};
static const struct also also_replicaset[] = {{"status.fullyLabeledReplicas", 0, "with the template's labels"},
                                              {NULL, 0, NULL}};
static const struct also also_statefulset[] = {{"status.currentReplicas", 0, "at the current revision"},
                                               {NULL, 0, NULL}};
static const struct also also_daemonset[] = {
    {"status.numberUnavailable", 1, "unavailable"}, {"status.currentNumberScheduled", 0, "scheduled"}, {NULL, 0, NULL}};

static int disagrees(const cJSON *o, const struct also *a, const struct counts *c, struct verdict_row *row)
{
	for (; a->path; a++) {
		int64_t v = rc_count(o, a->path, a->zero ? 0 : -1);
		if (a->zero && v > 0) {
			rc_fmt(row->reason, sizeof(row->reason), "%lld %s %s (%s)", (long long)v, c->unit, a->what,
			       a->path);
			return 1;
		}
		if (!a->zero && v >= 0 && v < c->desired) {
			rc_fmt(row->reason, sizeof(row->reason), "%lld of %lld %s %s (%s)", (long long)v,
			       (long long)c->desired, c->unit, a->what, a->path);
			return 1;
		}
	}
	return 0;
}

/* A condition that contradicts complete counts (Available=False, ReplicaFailure=True): 1, and why. */
static int contradicted(const cJSON *o, struct verdict_row *row)
{
	const cJSON *c;

	if (json_condition_true(o, "ReplicaFailure")) {
		c = json_condition(o, "ReplicaFailure");
		rc_clean_copy(row->state, sizeof(row->state), "ReplicaFailure");
	} else if (rc_streq(json_str(json_condition(o, "Available"), "status"), "False")) {
		c = json_condition(o, "Available");
		rc_clean_copy(row->state, sizeof(row->state), "Unavailable");
	} else {
		return 0;
	}
	rc_fmt(row->reason, sizeof(row->reason), "condition %s=%s: %s", rc_nz(json_str(c, "type")),
	       rc_nz(json_str(c, "status")),
	       json_str(c, "message") ? json_str(c, "message") : rc_nz(json_str(c, "reason")));
	return 1;
}

int64_t rc_newest_revision(const struct verdict_store *st, const char *deployment)
{
	struct vobj *rs;
	int64_t cur = -1;

	for (rs = rc_ht_first(st, H_OWNER, VERDICT_REPLICASETS, deployment); rs;
	     rs = rc_ht_next(rs, H_OWNER, deployment)) {
		int64_t v = rc_parse_uint(rc_meta(rs->obj, "metadata.annotations", RC_REVISION));
		if (v > cur)
			cur = v;
	}
	return cur;
}

/*
 * A status without updatedReplicas (older or other controllers): the
 * current ReplicaSet's counts - the one owned by the Deployment whose
 * revision annotation is the Deployment's (else the newest).
 */
static void counts_from_replicaset(struct eval *ev, const cJSON *d, struct counts *c)
{
	const char *name = json_str(d, "metadata.name");
	int64_t want = rc_parse_uint(rc_meta(d, "metadata.annotations", RC_REVISION));
	const cJSON *cur = NULL;
	struct vobj *rs;

	if (want < 0)
		want = rc_newest_revision(ev->st, name);
	for (rs = rc_ht_first(ev->st, H_OWNER, VERDICT_REPLICASETS, name); rs; rs = rc_ht_next(rs, H_OWNER, name))
		if (!cur && want >= 0 && rc_owned_by(rs->obj, d) &&
		    rc_parse_uint(rc_meta(rs->obj, "metadata.annotations", RC_REVISION)) == want)
			cur = rs->obj;
	if (!cur)
		return;
	c->updated = rc_count(cur, "status.replicas", -1);
	c->ready = rc_count(cur, "status.readyReplicas", -1);
	c->available = rc_count(cur, "status.availableReplicas", -1);
}

/* e.g. quota or admission rejecting pods: say so while waiting */
static void replica_failure_note(const cJSON *d, struct verdict_row *row)
{
	size_t n = strlen(row->reason);

	if (!json_condition_true(d, "ReplicaFailure"))
		return;
	rc_clean_copy(row->state, sizeof(row->state), "ReplicaFailure");
	rc_fmt(row->reason + n, sizeof(row->reason) - n, "; %s",
	       rc_nz(json_str(json_condition(d, "ReplicaFailure"), "message")));
}

static int deployment_stalled(const cJSON *d, struct verdict_row *row)
{
	const cJSON *prog = json_condition(d, "Progressing");

	if (!rc_streq(json_str(prog, "status"), "False") ||
	    !rc_streq(json_str(prog, "reason"), "ProgressDeadlineExceeded"))
		return 0;
	row->status = ROW_FAILED;
	rc_clean_copy(row->state, sizeof(row->state), "ProgressDeadlineExceeded");
	rc_fmt(row->reason, sizeof(row->reason), "%s",
	       json_str(prog, "message") ? json_str(prog, "message")
	                                 : "the rollout made no progress within progressDeadlineSeconds");
	return 1;
}

void rc_rule_deployment(struct eval *ev, const cJSON *d)
{
	struct verdict_row *row = rc_add_row(ev, "Deployment", d);
	struct counts c = {0};

	if (!row)
		return;
	rc_set_events(row, "Deployment", row->name);
	c.desired = rc_count(d, "spec.replicas", 1);
	c.unit = "replicas";
	row->desired = c.desired;
	if (json_bool(d, "spec.paused")) {
		int64_t gen, obs;
		/*
		 * A rollout that ran out of its progress deadline and was then
		 * paused keeps ProgressDeadlineExceeded (the controller does not
		 * overwrite it with DeploymentPaused): it failed, paused or not.
		 */
		if (!rc_generation_pending(d, &gen, &obs) && deployment_stalled(d, row)) {
			ev->considered++;
			return;
		}
		/* by design: nothing rolls out until someone resumes it */
		row->status = ROW_IGNORED;
		ev->skipped = 1;
		rc_clean_copy(row->state, sizeof(row->state), "Paused");
		rc_fmt(row->reason, sizeof(row->reason),
		       "paused (spec.paused): not rolled out until `kubectl rollout resume`; not counted");
		return;
	}
	ev->considered++;
	if (generation_wait(d, row) || deployment_stalled(d, row))
		return;
	read_counts(d, &c, "status.updatedReplicas", "status.readyReplicas", "status.availableReplicas",
	            "status.replicas");
	if (c.updated < 0 && c.desired > 0)
		counts_from_replicaset(ev, d, &c);
	rc_clean_copy(row->state, sizeof(row->state), "RollingOut");
	if (!counts_complete(&c, row)) {
		replica_failure_note(d, row);
		return;
	}
	if (contradicted(d, row) || disagrees(d, also_deployment, &c, row))
		return;
	set_ok(row, c.unit, NULL);
}

/* A ReplicaSet that no Deployment owns is a workload of its own. */
void rc_rule_replicaset(struct eval *ev, const cJSON *rs)
{
	struct verdict_row *row;
	struct counts c = {0};

	if (rc_owner_ref(rs))
		return;
	row = rc_add_row(ev, "ReplicaSet", rs);
	if (!row)
		return;
	rc_set_events(row, "ReplicaSet", row->name);
	ev->considered++;
	c.desired = rc_count(rs, "spec.replicas", 1);
	c.unit = "replicas";
	row->desired = c.desired;
	if (generation_wait(rs, row))
		return;
	read_counts(rs, &c, NULL, "status.readyReplicas", "status.availableReplicas", "status.replicas");
	c.skip_updated = 1; /* a ReplicaSet has one template: every pod is of it */
	rc_clean_copy(row->state, sizeof(row->state), "Scaling");
	if (!counts_complete(&c, row) || contradicted(rs, row) || disagrees(rs, also_replicaset, &c, row))
		return;
	set_ok(row, c.unit, NULL);
}

/* partition P: only ordinals >= P must be at the update revision; 0 and why when they are not. */
static int statefulset_partition(int64_t partition, struct counts *c, struct verdict_row *row, char *note, size_t cap)
{
	int64_t want = c->desired > partition ? c->desired - partition : 0;

	rc_fmt(note, cap, ", ordinals >= %lld updated (partition)", (long long)partition);
	/*
	 * A partition at or above the replica count holds every pod back on
	 * purpose: nothing is to be updated, whatever the updated count says
	 * (even none: a status without revision fields).
	 */
	if (want == 0 || c->updated >= want) {
		c->skip_updated = 1;
		return 1;
	}
	ready_column(c, row);
	if (c->updated < 0)
		return unknown(row, "updated");
	rc_fmt(row->reason, sizeof(row->reason), "%lld of %lld pods at ordinal >= %lld (partition) updated",
	       (long long)c->updated, (long long)want, (long long)partition);
	return 0;
}

/*
 * StatefulSet. RollingUpdate: every pod at the update revision
 * (currentRevision == updateRevision when the status has both; older
 * controllers without them: the counters). OnDelete: pods change only
 * when deleted, so only ready pods count (with a note).
 */
void rc_rule_statefulset(struct eval *ev, const cJSON *s)
{
	struct verdict_row *row = rc_add_row(ev, "StatefulSet", s);
	const char *cur = json_str(s, "status.currentRevision"), *upd = json_str(s, "status.updateRevision");
	int ondelete = rc_streq(json_str(s, "spec.updateStrategy.type"), "OnDelete");
	int64_t partition = rc_count(s, "spec.updateStrategy.rollingUpdate.partition", 0);
	struct counts c = {0};
	char note[128] = "";

	if (!row)
		return;
	rc_set_events(row, "StatefulSet", row->name);
	ev->considered++;
	c.desired = rc_count(s, "spec.replicas", 1);
	c.unit = "pods";
	c.scale_down_word = 1;
	row->desired = c.desired;
	rc_clean_copy(row->state, sizeof(row->state), "RollingOut");
	if (generation_wait(s, row))
		return;
	/* availableReplicas (minReadySeconds) exists since 1.22; older servers: ready */
	read_counts(s, &c, "status.updatedReplicas", "status.readyReplicas",
	            json_path(s, "status.availableReplicas") ? "status.availableReplicas" : NULL, "status.replicas");
	/*
	 * The controller writes updatedReplicas in the same update as
	 * updateRevision, and the API omits it when 0: beside the revision
	 * its absence is that 0 (as a real server sends a partition not
	 * reached yet), not an unknown.
	 */
	if (c.updated < 0 && upd)
		c.updated = 0;
	c.skip_updated = ondelete;
	if (ondelete)
		rc_clean_copy(note, sizeof(note),
		              " (updateStrategy OnDelete: pods update when deleted; ready pods counted)");
	else if (partition > 0 && !statefulset_partition(partition, &c, row, note, sizeof(note)))
		return;
	if (!counts_complete(&c, row))
		return;
	if (!ondelete && partition <= 0 && cur && upd && strcmp(cur, upd) != 0) {
		rc_fmt(row->reason, sizeof(row->reason), "rolling out revision %s", upd);
		return;
	}
	/* currentReplicas: pods at currentRevision, which a partition or OnDelete keeps behind on purpose */
	if (!ondelete && partition <= 0 && disagrees(s, also_statefulset, &c, row))
		return;
	set_ok(row, c.unit, note[0] ? note : NULL);
}

/* DaemonSet: desiredNumberScheduled missing = not observed yet (unknown, never 0). */
void rc_rule_daemonset(struct eval *ev, const cJSON *d)
{
	struct verdict_row *row = rc_add_row(ev, "DaemonSet", d);
	int ondelete = rc_streq(json_str(d, "spec.updateStrategy.type"), "OnDelete");
	struct counts c = {0};

	if (!row)
		return;
	rc_set_events(row, "DaemonSet", row->name);
	ev->considered++;
	c.unit = "nodes";
	c.desired = rc_count(d, "status.desiredNumberScheduled", -1);
	rc_clean_copy(row->state, sizeof(row->state), "RollingOut");
	if (generation_wait(d, row))
		return;
	if (c.desired < 0) {
		rc_fmt(row->reason, sizeof(row->reason),
		       "the status does not report desiredNumberScheduled yet (unknown, not 0)");
		return;
	}
	read_counts(d, &c, "status.updatedNumberScheduled", "status.numberReady", "status.numberAvailable", NULL);
	c.skip_updated = ondelete;
	if (!counts_complete(&c, row) || disagrees(d, also_daemonset, &c, row))
		return;
	set_ok(row, c.unit,
	       ondelete ? " (updateStrategy OnDelete: pods update when deleted; ready pods counted)" : NULL);
}

/* ---- what pods read of their workloads (the store's hooks) ------------------------ */

/* A pod reads its Deployment's revision and pending generation. */
uint64_t rc_sig_deployment(uint64_t h, const cJSON *obj)
{
	int64_t gen, obs;

	h = rc_sig_str(h, rc_meta(obj, "metadata.annotations", RC_REVISION));
	h = rc_sig_template_jobs(h, obj);
	return rc_sig_int(h, rc_generation_pending(obj, &gen, &obs) ? gen : -1);
}

/* A pod reads its ReplicaSet's revision and owner. */
uint64_t rc_sig_replicaset(uint64_t h, const cJSON *obj)
{
	const cJSON *ref = rc_owner_ref(obj);

	h = rc_sig_str(h, rc_meta(obj, "metadata.annotations", RC_REVISION));
	h = rc_sig_str(h, json_str(ref, "kind"));
	h = rc_sig_str(h, json_str(ref, "name"));
	return rc_sig_str(h, json_str(ref, "uid"));
}

/* A workload's pod template says which Jobs are current (rc_job_identity): every Job reads it. */
void rc_prop_workload(struct verdict_store *st, struct vobj *o)
{
	struct vobj *j;

	(void)o;
	for (j = st->head[VERDICT_JOBS]; j; j = j->next)
		rc_mark_dirty(st, j);
}

/* The pods of a Deployment's ReplicaSets, and the Jobs. */
void rc_prop_deployment(struct verdict_store *st, struct vobj *o)
{
	struct vobj *rs;

	rc_prop_workload(st, o);
	for (rs = rc_ht_first(st, H_OWNER, VERDICT_REPLICASETS, o->key[H_NAME]); rs;
	     rs = rc_ht_next(rs, H_OWNER, o->key[H_NAME]))
		rc_mark_owned(st, VERDICT_PODS, rs->key[H_NAME]);
}

/* Its pods and its siblings' pods (which ReplicaSet is current). */
void rc_prop_replicaset(struct verdict_store *st, struct vobj *o)
{
	struct vobj *rs;

	rc_mark_owned(st, VERDICT_PODS, o->key[H_NAME]);
	for (rs = rc_ht_first(st, H_OWNER, VERDICT_REPLICASETS, o->key[H_OWNER]); rs;
	     rs = rc_ht_next(rs, H_OWNER, o->key[H_OWNER]))
		rc_mark_owned(st, VERDICT_PODS, rs->key[H_NAME]);
}

/* Its Deployment reads its counts when the Deployment's status lacks them (older controllers). */
void rc_notify_replicaset(struct verdict_store *st, struct vobj *o)
{
	struct vobj *d;

	for (d = rc_ht_first(st, H_NAME, VERDICT_DEPLOYMENTS, o->key[H_OWNER]); d;
	     d = rc_ht_next(d, H_NAME, o->key[H_OWNER]))
		rc_mark_dirty(st, d);
}
