/*
 * rule_pod.c - a pod of the release: ready, progressing, failed fast on
 * what will not heal by itself, or ignored (terminating, superseded, of a
 * finished Job).
 */
#include <string.h>

#include "internal.h"
#include "json.h"

enum pod_fail {
	PF_NONE = 0,
	PF_CRASH,  /* crash loop / non-zero exit: a Job's retries decide for its pods */
	PF_IMAGE,  /* image pull that may heal (registry timeout, rate limit): graced */
	PF_CONFIG, /* CreateContainerConfigError: a later manifest may create the ConfigMap/Secret: graced */
	PF_FATAL,  /* never heals: invalid or refused image, a container that cannot be created */
};

struct pod_finding {
	enum pod_fail cls;
	char state[VERDICT_STATE_LEN];
	char reason[VERDICT_REASON_LEN];
	const char *container;
	int previous; /* logs of the previous instance */
	int logs;     /* the container ran: logs exist */
};

/*
 * What a registry says when waiting will not help: the image or tag does
 * not exist, or the credentials may not pull it (containerd, CRI-O and
 * Docker word it so). Timeouts, 429s and 5xx are not among them: graced.
 */
static int pull_refused(const char *msg)
{
	static const char *const words[] = {"not found", "unauthorized", "denied", "manifest unknown", "name unknown"};
	size_t i;

	for (i = 0; msg && i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(msg, words[i]))
			return 1;
	return 0;
}

static enum pod_fail waiting_class(const char *why, const char *msg)
{
	static const char *const fatal[] = {"InvalidImageName", "ErrImageNeverPull", "CreateContainerError",
	                                    "RunContainerError"};
	size_t i;

	if (!why)
		return PF_NONE;
	if (strcmp(why, "CrashLoopBackOff") == 0)
		return PF_CRASH;
	/*
	 * containerd's "failed to reserve container name" is a race of a busy
	 * node that the kubelet's retry resolves: graced, unlike every other
	 * reason a container cannot be created.
	 */
	if (strcmp(why, "CreateContainerError") == 0 && msg && strstr(msg, "failed to reserve container name"))
		return PF_CONFIG;
	for (i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		if (strcmp(why, fatal[i]) == 0)
			return PF_FATAL;
	if (strcmp(why, "ErrImagePull") == 0 || strcmp(why, "ImagePullBackOff") == 0)
		return pull_refused(msg) ? PF_FATAL : PF_IMAGE;
	if (strcmp(why, "CreateContainerConfigError") == 0)
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
	rc_fmt(buf, cap, "last exit %lld%s%s%s, %lld restarts", (long long)json_int(t, "exitCode", 0),
	       json_str(t, "reason") ? " (" : "", rc_nz(json_str(t, "reason")), json_str(t, "reason") ? ")" : "",
	       (long long)json_int(cs, "restartCount", 0));
}

/*
 * Inspect one container status for a fail-fast state. init: an init
 * container that must finish (not a restartPolicy: Always sidecar).
 */
static int inspect_container(const cJSON *cs, int init, int never_restart, struct pod_finding *f)
{
	const char *name = rc_nz(json_str(cs, "name"));
	const cJSON *w = json_path(cs, "state.waiting");
	const cJSON *t = json_path(cs, "state.terminated");
	const char *what = init ? "init container" : "container";

	if (w) {
		const char *why = json_str(w, "reason");
		enum pod_fail cls = waiting_class(why, json_str(w, "message"));
		char ex[128];

		if (cls == PF_NONE)
			return 0;
		f->cls = cls;
		f->container = json_str(cs, "name");
		rc_clean_copy(f->state, sizeof(f->state), init ? "Init:" : "");
		rc_clean_copy(f->state + strlen(f->state), sizeof(f->state) - strlen(f->state), why);
		if (cls == PF_CRASH) {
			last_exit(cs, ex, sizeof(ex));
			rc_fmt(f->reason, sizeof(f->reason), "%s \"%s\" is crash-looping%s%s%s", what, name,
			       ex[0] ? " (" : "", ex, ex[0] ? ")" : "");
			f->previous = 1;
			f->logs = 1;
		} else {
			rc_fmt(f->reason, sizeof(f->reason), "%s \"%s\": %s%s%s", what, name, rc_nz(why),
			       json_str(w, "message") ? ": " : "", rc_nz(json_str(w, "message")));
		}
		return 1;
	}
	if (t && json_int(t, "exitCode", 0) != 0 && never_restart) {
		/*
		 * A container (or init container: the wait-for-job gate saw its
		 * Job fail) that will not be restarted. Under restartPolicy
		 * Always/OnFailure the kubelet retries it: only a crash loop
		 * (CrashLoopBackOff, above) says the retries do not help.
		 */
		f->cls = PF_CRASH;
		f->container = json_str(cs, "name");
		f->logs = 1;
		rc_clean_copy(f->state, sizeof(f->state), init ? "Init:Error" : "Error");
		rc_fmt(f->reason, sizeof(f->reason), "%s \"%s\" failed: exit %lld%s%s%s%s%s", what, name,
		       (long long)json_int(t, "exitCode", 0), json_str(t, "reason") ? " (" : "",
		       rc_nz(json_str(t, "reason")), json_str(t, "reason") ? ")" : "",
		       json_str(t, "message") ? ": " : "", rc_nz(json_str(t, "message")));
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
		if (rc_streq(json_str(c, "name"), name))
			return rc_streq(json_str(c, "restartPolicy"), "Always");
	}
	return 0;
}

/* The first fail-fast state of the pod's containers, init containers first. */
static int pod_find_failure(const cJSON *pod, struct pod_finding *f)
{
	const cJSON *list, *cs;
	int never = rc_streq(json_str(pod, "spec.restartPolicy"), "Never");

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

/* Restarts of all its containers: a restart starts a new stability window. */
static int64_t pod_restarts(const cJSON *pod)
{
	static const char *const lists[] = {"status.initContainerStatuses", "status.containerStatuses"};
	int64_t n = 0;
	size_t l;

	for (l = 0; l < 2; l++) {
		const cJSON *cs, *list = json_path(pod, lists[l]);
		if (!cJSON_IsArray(list))
			continue;
		cJSON_ArrayForEach (cs, list)
			n += rc_count(cs, "restartCount", 0);
	}
	return n;
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

	if (rc_streq(json_str(sched, "status"), "False")) {
		const char *why = json_str(sched, "reason");
		/*
		 * Unschedulable may heal (cluster autoscaler, nodes freeing up):
		 * keep waiting and say why; --timeout decides.
		 */
		rc_clean_copy(row->state, sizeof(row->state), why ? why : "Pending");
		rc_fmt(row->reason, sizeof(row->reason), "%s",
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
			rc_fmt(row->state, sizeof(row->state), "Init:%lld/%lld", (long long)done, (long long)total);
			rc_fmt(row->reason, sizeof(row->reason), "waiting for init container \"%s\"", rc_nz(waiting));
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
		rc_clean_copy(row->state, sizeof(row->state), waiting);
		rc_fmt(row->reason, sizeof(row->reason), "container \"%s\" is waiting: %s", rc_nz(notready), waiting);
	} else if (notready) {
		rc_clean_copy(row->state, sizeof(row->state), "NotReady");
		rc_fmt(row->reason, sizeof(row->reason), "container \"%s\" is not ready", notready);
	} else {
		const cJSON *rc = json_condition(pod, "Ready");
		rc_clean_copy(row->state, sizeof(row->state),
		              json_str(pod, "status.phase") ? json_str(pod, "status.phase") : "Pending");
		rc_fmt(row->reason, sizeof(row->reason), "pod is not Ready%s%s", json_str(rc, "message") ? ": " : "",
		       rc_nz(json_str(rc, "message")));
	}
}

/*
 * When the caller first saw the graced state key, on its own clock
 * (opts->now_ms: release-check's monotonic clock). Never a server
 * timestamp: compared with the CI machine's clock, a clock 60 s ahead
 * failed an ErrImagePull the instant it appeared (issue #14).
 */
static int64_t grace_since(const struct eval *ev, const char *key)
{
	int64_t local = ev->opts->first_seen ? ev->opts->first_seen(ev->opts->first_seen_ctx, key)
	                : (ev->cur && ev->cur->row && strcmp(ev->cur->row->grace_key, key) == 0)
	                    ? ev->cur->first_seen_ms
	                    : 0;

	return (local <= 0 || local > ev->opts->now_ms) ? ev->opts->now_ms : local;
}

/* Start (or continue) a grace on key: 1 while it runs, 0 once it is over. */
static int in_grace(struct eval *ev, struct verdict_row *row, const cJSON *pod, const char *what, int64_t grace)
{
	const char *uid = json_str(pod, "metadata.uid");
	int64_t since;

	rc_fmt(row->grace_key, sizeof(row->grace_key), "%s/%s", uid && uid[0] ? uid : row->name, what);
	since = grace_since(ev, row->grace_key);
	row->fails_at_ms = since + grace;
	return ev->opts->now_ms < row->fails_at_ms;
}

/* The pod of a superseded ReplicaSet (1: ignored), or why a failure of it waits (defer). */
static int pod_superseded(struct eval *ev, const cJSON *pod, struct verdict_row *row, char *defer, size_t cap)
{
	const cJSON *ref = rc_ref_of(ev, pod), *dref, *deploy;
	const struct vobj *owner;
	int64_t rev, cur, gen, obs;

	if (!rc_streq(json_str(ref, "kind"), "ReplicaSet") ||
	    !(owner = rc_find_owner_obj(ev->st, VERDICT_REPLICASETS, ref)))
		return 0;
	dref = owner->ref;
	if (!dref || !rc_streq(json_str(dref, "kind"), "Deployment"))
		return 0;
	rev = rc_parse_uint(rc_meta(owner->obj, "metadata.annotations", RC_REVISION));
	deploy = rc_find_owner(ev->st, VERDICT_DEPLOYMENTS, dref);
	cur = deploy ? rc_parse_uint(rc_meta(deploy, "metadata.annotations", RC_REVISION)) : -1;
	if (cur < 0) /* no Deployment in view: the newest sibling ReplicaSet is current */
		cur = rc_newest_revision(ev->st, json_str(dref, "name"));
	if (rev >= 0 && cur >= 0 && rev < cur) {
		row->status = ROW_IGNORED;
		rc_clean_copy(row->state, sizeof(row->state), "Superseded");
		rc_fmt(row->reason, sizeof(row->reason), "pod of ReplicaSet %s (revision %lld, current %lld)",
		       rc_nz(json_str(ref, "name")), (long long)rev, (long long)cur);
		return 1;
	}
	if (deploy && rc_generation_pending(deploy, &gen, &obs))
		rc_fmt(defer, cap, "not counted until Deployment %s's controller observes generation %lld",
		       rc_nz(json_str(deploy, "metadata.name")), (long long)gen);
	return 0;
}

/*
 * Terminating: a controller's pod is replaced (ignored); an unowned pod
 * being deleted will not come back (failed), unless it had finished.
 */
static int pod_terminating(const struct eval *ev, const cJSON *pod, struct verdict_row *row)
{
	if (!json_str(pod, "metadata.deletionTimestamp"))
		return 0;
	rc_clean_copy(row->state, sizeof(row->state), "Terminating");
	if (rc_ref_of(ev, pod) || rc_streq(json_str(pod, "status.phase"), "Succeeded")) {
		row->status = ROW_IGNORED;
		rc_clean_copy(row->reason, sizeof(row->reason), "being deleted");
	} else {
		row->status = ROW_FAILED;
		rc_clean_copy(row->reason, sizeof(row->reason),
		              "unowned pod being deleted: no controller will replace it");
	}
	return 1;
}

/* Succeeded, a pod of a finished Job, or Failed. */
static int pod_finished(struct eval *ev, const cJSON *pod, struct verdict_row *row)
{
	const cJSON *ref = rc_ref_of(ev, pod);
	const char *okind = json_str(ref, "kind"), *oname = json_str(ref, "name");
	const char *phase = rc_nz(json_str(pod, "status.phase"));
	const char *why = json_str(pod, "status.reason"), *msg = json_str(pod, "status.message");
	const cJSON *job;
	int failed;

	if (strcmp(phase, "Succeeded") == 0) {
		row->status = ROW_OK;
		rc_clean_copy(row->state, sizeof(row->state), "Completed");
		rc_clean_copy(row->reason, sizeof(row->reason), "succeeded");
		return 1;
	}
	if (rc_streq(okind, "Job") && (job = rc_find_owner(ev->st, VERDICT_JOBS, ref)) &&
	    rc_job_finished(job, &failed)) {
		row->status = ROW_IGNORED;
		rc_clean_copy(row->state, sizeof(row->state), phase[0] ? phase : "Finished");
		rc_fmt(row->reason, sizeof(row->reason), "pod of finished Job %s", rc_nz(oname));
		return 1;
	}
	if (strcmp(phase, "Failed") != 0)
		return 0;
	rc_clean_copy(row->state, sizeof(row->state), why ? why : "Failed");
	if (ref) {
		/* evicted, preempted, node shutdown: the controller makes a new pod */
		row->status = ROW_IGNORED;
		rc_fmt(row->reason, sizeof(row->reason), "%s; %s %s %s", msg ? msg : "pod failed", rc_nz(okind),
		       rc_nz(oname), rc_streq(okind, "Job") ? "decides whether to retry" : "replaces it");
		return 1;
	}
	row->status = ROW_FAILED;
	rc_fmt(row->reason, sizeof(row->reason), "pod failed%s%s%s%s", why ? ": " : "", rc_nz(why), msg ? ": " : "",
	       rc_nz(msg));
	rc_set_logs(row, row->name, failed_container(pod), 0);
	return 1;
}

/* A container in a fail-fast state: failed now, after its grace, or deferred. */
static void pod_failure(struct eval *ev, const cJSON *pod, const struct pod_finding *f, const char *defer,
                        struct verdict_row *row)
{
	const cJSON *ref = rc_ref_of(ev, pod);
	size_t n;

	rc_clean_copy(row->state, sizeof(row->state), f->state);
	rc_clean_copy(row->reason, sizeof(row->reason), f->reason);
	n = strlen(row->reason);
	if (f->cls == PF_CRASH && rc_streq(json_str(ref, "kind"), "Job")) {
		/* backoffLimit: the Job retries, its conditions decide */
		rc_fmt(row->reason + n, sizeof(row->reason) - n, "; Job %s decides", rc_nz(json_str(ref, "name")));
		return;
	}
	if (f->cls == PF_IMAGE || f->cls == PF_CONFIG) {
		char what[VERDICT_NAME_LEN + 16];
		rc_fmt(what, sizeof(what), "%s/%s", rc_nz(f->container), f->cls == PF_IMAGE ? "image" : "config");
		if (in_grace(ev, row, pod, what, ev->pull_grace_ms) && !defer) {
			/* stable text: the countdown is fails_at_ms, not a changing reason */
			rc_fmt(row->reason + n, sizeof(row->reason) - n, " (fails if it persists %llds)",
			       (long long)(ev->pull_grace_ms / 1000));
			return;
		}
		if (!defer)
			rc_fmt(row->reason + n, sizeof(row->reason) - n, " (for %llds)",
			       (long long)(ev->pull_grace_ms / 1000));
	}
	if (defer) {
		rc_fmt(row->reason + n, sizeof(row->reason) - n, "; %s", defer);
		row->fails_at_ms = 0;
		return;
	}
	row->status = ROW_FAILED;
	rc_set_logs(row, row->name, f->logs ? f->container : NULL, f->previous);
}

/*
 * The scheduler cannot place the pod. It may heal (cluster autoscaler,
 * nodes freeing up, a preemption: status.nominatedNodeName), so only
 * after the scheduling grace with no such sign does it fail.
 */
static int pod_unschedulable(struct eval *ev, const cJSON *pod, const char *defer, struct verdict_row *row)
{
	const cJSON *sched = json_condition(pod, "PodScheduled");
	int64_t grace = ev->opts->sched_grace_ms > 0 ? ev->opts->sched_grace_ms : VERDICT_DEFAULT_SCHED_GRACE_MS;

	if (!rc_streq(json_str(sched, "status"), "False") || !rc_streq(json_str(sched, "reason"), "Unschedulable") ||
	    json_str(pod, "status.nominatedNodeName") || defer)
		return 0;
	if (in_grace(ev, row, pod, "unschedulable", grace))
		return 0;
	row->status = ROW_FAILED;
	rc_clean_copy(row->state, sizeof(row->state), "Unschedulable");
	rc_fmt(row->reason, sizeof(row->reason), "unschedulable for %llds with no sign of a scale-up: %s",
	       (long long)(grace / 1000), rc_nz(json_str(sched, "message")));
	return 1;
}

/*
 * Ready; with a stability window (opts->min_ready_ms), only once it has
 * been Ready without a restart for that long on the caller's clock: a
 * container without a readiness probe is Ready the moment it starts, even
 * if it crashes a second later.
 */
static void pod_ready(struct eval *ev, const cJSON *pod, struct verdict_row *row)
{
	char what[48];

	rc_clean_copy(row->state, sizeof(row->state), "Ready");
	if (ev->opts->min_ready_ms > 0) {
		rc_fmt(what, sizeof(what), "ready/%lld", (long long)pod_restarts(pod));
		if (in_grace(ev, row, pod, what, ev->opts->min_ready_ms)) {
			row->grace_ok = 1;
			rc_fmt(row->reason, sizeof(row->reason), "ready, not yet for --min-ready %llds",
			       (long long)(ev->opts->min_ready_ms / 1000));
			return;
		}
		row->grace_key[0] = '\0';
		row->fails_at_ms = 0;
	}
	row->status = ROW_OK;
	rc_clean_copy(row->reason, sizeof(row->reason), "ready");
}

static void pod_judge(struct eval *ev, const cJSON *pod)
{
	struct verdict_row *row = rc_add_row(ev, "Pod", pod);
	char defer[160] = "";
	struct pod_finding f;

	if (!row)
		return;
	rc_set_events(row, "Pod", row->name);
	pod_counts(pod, row);
	if (pod_terminating(ev, pod, row) || pod_superseded(ev, pod, row, defer, sizeof(defer)) ||
	    pod_finished(ev, pod, row))
		return;
	if (pod_find_failure(pod, &f)) {
		pod_failure(ev, pod, &f, defer[0] ? defer : NULL, row);
		return;
	}
	if (json_condition_true(pod, "Ready")) {
		pod_ready(ev, pod, row);
		return;
	}
	if (pod_unschedulable(ev, pod, defer[0] ? defer : NULL, row))
		return;
	pod_progress(pod, row);
}
/* A pod counts unless ignored (terminating, superseded, of a finished Job). */
void rc_rule_pod(struct eval *ev, const cJSON *pod)
{
	pod_judge(ev, pod);
	ev->considered = ev->has_row && ev->row.status != ROW_IGNORED;
}

/* A Job reads its pods (the log target of its failure). */
void rc_prop_pod(struct verdict_store *st, struct vobj *o)
{
	struct vobj *j;

	for (j = rc_ht_first(st, H_NAME, VERDICT_JOBS, o->key[H_OWNER]); j; j = rc_ht_next(j, H_NAME, o->key[H_OWNER]))
		rc_mark_dirty(st, j);
}
