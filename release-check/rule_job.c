/*
 * rule_job.c - a Job of the release, and the container whose logs explain
 * its failure.
 */
#include <string.h>

#include "internal.h"
#include "jobstatus.h"
#include "json.h"

/* Finished by lib/jobstatus's rule (conditions, else the counters); *failed: it failed. */
int rc_job_finished(const cJSON *job, int *failed)
{
	struct jobstatus js;

	jobstatus_eval(job, &js);
	*failed = js.phase == JOBSTATUS_FAILED;
	return js.phase == JOBSTATUS_SUCCEEDED || js.phase == JOBSTATUS_FAILED;
}

/*
 * The migration's exit code: migrate-runner's termination message is its
 * JSON summary ({"exitCode": N, ...}), which says the command's code even
 * when the runner itself exited otherwise; else the container's own code.
 */
static int64_t migration_exit_code(const cJSON *terminated)
{
	const char *msg = json_str(terminated, "message");
	cJSON *summary = msg ? json_parse(msg, strlen(msg)) : NULL;
	int64_t code = json_int(summary, "exitCode", -1);

	cJSON_Delete(summary);
	return code >= 0 && code <= 255 ? code : json_int(terminated, "exitCode", -1);
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
	for (p = rc_ht_first(ev->st, H_OWNER, VERDICT_PODS, name); p; p = rc_ht_next(p, H_OWNER, name)) {
		const cJSON *pod = p->obj;
		size_t l;
		if (!rc_owned_by(pod, job))
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
					at = rc_time_of(t, "finishedAt");
					if (at > best || (at == best && p->seq < best_seq)) {
						best = at;
						best_seq = p->seq;
						rc_set_logs(row, json_str(pod, "metadata.name"), json_str(cs, "name"),
						            (int)k);
						rc_set_events(row, "Pod", json_str(pod, "metadata.name"));
						row->exit_code = migration_exit_code(t);
					}
				}
			}
		}
	}
}

/*
 * spec.suspend: the Job will not run until someone (or a queue such as
 * Kueue) resumes it, so waiting for it would wait out the timeout. Shown
 * with a note, not counted: the pods gated on it (wait-for-job) still
 * keep the release from being healthy.
 */
static void clean_suspended(struct verdict_row *row)
{
	row->status = ROW_IGNORED;
	rc_clean_copy(row->state, sizeof(row->state), "Suspended");
	rc_clean_copy(row->reason, sizeof(row->reason),
	              "suspended (spec.suspend): will not run until resumed; not counted");
}

/* A CronJob's run, or a kept Job of an earlier revision (rc_job_identity): shown, not counted. */
static int job_ignored(struct eval *ev, const cJSON *job, struct verdict_row *row)
{
	const cJSON *ref = rc_owner_ref(job);
	char why[VERDICT_REASON_LEN / 2];

	if (ref && rc_streq(json_str(ref, "kind"), "CronJob")) {
		/* a scheduled run is not part of rolling the release out */
		row->status = ROW_IGNORED;
		rc_clean_copy(row->state, sizeof(row->state), "Scheduled");
		rc_fmt(row->reason, sizeof(row->reason), "run of CronJob %s", rc_nz(json_str(ref, "name")));
		return 1;
	}
	if (rc_job_identity(ev, job, why, sizeof(why)) == RC_JOB_EARLIER) {
		/*
		 * Kept by Helm (helm.sh/resource-policy: keep, or a hook without
		 * a delete policy) until its TTL: its fate is that revision's. A
		 * migration that failed in revision N must not fail the fixed
		 * revision N+1.
		 */
		row->status = ROW_IGNORED;
		rc_clean_copy(row->state, sizeof(row->state), "Superseded");
		rc_fmt(row->reason, sizeof(row->reason), "%s; not counted", why);
		return 1;
	}
	return 0;
}

void rc_rule_job(struct eval *ev, const cJSON *job)
{
	struct verdict_row *row = rc_add_row(ev, "Job", job);
	struct jobstatus js;

	if (!row)
		return;
	jobstatus_eval(job, &js);
	row->desired = js.completions;
	row->ready = js.succeeded < 0 ? 0 : js.succeeded;
	rc_set_events(row, "Job", row->name);
	if (job_ignored(ev, job, row))
		return;
	if (js.phase == JOBSTATUS_SUSPENDED) {
		clean_suspended(row);
		ev->skipped = 1;
		return;
	}
	ev->considered++;
	switch (js.phase) {
	case JOBSTATUS_SUCCEEDED:
		row->status = ROW_OK;
		rc_clean_copy(row->state, sizeof(row->state), "Complete");
		if (js.failed > 0)
			rc_fmt(row->reason, sizeof(row->reason), "succeeded after %lld failed attempt%s",
			       (long long)js.failed, js.failed == 1 ? "" : "s");
		else
			rc_clean_copy(row->reason, sizeof(row->reason), "succeeded");
		if (js.by == JOBSTATUS_BY_COUNTERS)
			rc_fmt(row->reason + strlen(row->reason), sizeof(row->reason) - strlen(row->reason), " (%s)",
			       js.message);
		return;
	case JOBSTATUS_FAILED:
		row->status = ROW_FAILED;
		rc_clean_copy(row->state, sizeof(row->state), "Failed");
		rc_fmt(row->reason, sizeof(row->reason), "Job failed: %s%s%s", js.reason, js.message[0] ? ": " : "",
		       js.message);
		job_log_target(ev, job, row);
		return;
	case JOBSTATUS_SUSPENDED:
	case JOBSTATUS_RUNNING: break;
	}
	rc_clean_copy(row->state, sizeof(row->state), "Running");
	rc_fmt(row->reason, sizeof(row->reason), "%lld active, %lld succeeded, %lld failed",
	       (long long)(js.active < 0 ? 0 : js.active), (long long)(js.succeeded < 0 ? 0 : js.succeeded),
	       (long long)(js.failed < 0 ? 0 : js.failed));
}

/* ---- the store's hooks ------------------------------------------------------------ */

/* A pod reads whether its Job finished. */
uint64_t rc_sig_job(uint64_t h, const cJSON *obj)
{
	int failed = 0;
	return rc_sig_int(h, rc_job_finished(obj, &failed) + failed);
}

void rc_prop_job(struct verdict_store *st, struct vobj *o) { rc_mark_owned(st, VERDICT_PODS, o->key[H_NAME]); }
