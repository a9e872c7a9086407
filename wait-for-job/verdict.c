/*
 * verdict.c - what a Job's status means, and what a record says.
 */
#include "verdict.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

static void copy_cond(const cJSON *job, const char *type, struct job_state *out)
{
	const cJSON *c = json_condition(job, type);
	const char *r = json_str(c, "reason");
	const char *m = json_str(c, "message");

	snprintf(out->reason, sizeof(out->reason), "%s", r ? r : type);
	snprintf(out->message, sizeof(out->message), "%s", m ? m : "");
}

void job_evaluate(const cJSON *job, struct job_state *out)
{
	memset(out, 0, sizeof(*out));
	out->active = json_int(job, "status.active", 0);
	out->succeeded = json_int(job, "status.succeeded", 0);
	out->failed = json_int(job, "status.failed", 0);
	out->ready = json_int(job, "status.ready", 0);
	out->suspended = json_condition_true(job, "Suspended") || json_bool(job, "spec.suspend");
	out->verdict = JOB_RUNNING;
	/*
	 * FailureTarget/SuccessCriteriaMet come first (1.31+): the Job is
	 * decided while its pods are still terminating.
	 */
	if (json_condition_true(job, "Failed")) {
		out->verdict = JOB_FAILED;
		copy_cond(job, "Failed", out);
	} else if (json_condition_true(job, "FailureTarget")) {
		out->verdict = JOB_FAILED;
		copy_cond(job, "FailureTarget", out);
	} else if (json_condition_true(job, "Complete")) {
		out->verdict = JOB_SUCCEEDED;
		copy_cond(job, "Complete", out);
	} else if (json_condition_true(job, "SuccessCriteriaMet")) {
		out->verdict = JOB_SUCCEEDED;
		copy_cond(job, "SuccessCriteriaMet", out);
	}
}

void record_evaluate(const cJSON *configmap, const char *key, struct record_state *out)
{
	const cJSON *data = json_path(configmap, "data");
	const cJSON *v = cJSON_IsObject(data) ? cJSON_GetObjectItemCaseSensitive(data, key) : NULL;
	const char *status, *s;
	const cJSON *n;
	cJSON *rec;

	memset(out, 0, sizeof(*out));
	out->exit_code = out->signal = -1;
	out->duration = -1;
	if (!cJSON_IsString(v))
		return;
	rec = json_parse(v->valuestring, strlen(v->valuestring));
	if (!rec)
		return;
	status = json_str(rec, "status");
	if (status && strcmp(status, "succeeded") == 0)
		out->verdict = JOB_SUCCEEDED;
	else if (status && strcmp(status, "failed") == 0)
		out->verdict = JOB_FAILED;
	else
		goto out; /* unknown status: not a record we understand */
	out->present = 1;
	if ((s = json_str(rec, "reason")))
		snprintf(out->reason, sizeof(out->reason), "%s", s);
	out->exit_code = json_int(rec, "exitCode", -1);
	out->signal = json_int(rec, "signal", -1);
	n = cJSON_GetObjectItemCaseSensitive(rec, "durationSeconds");
	if (cJSON_IsNumber(n))
		out->duration = n->valuedouble;
	if ((s = json_str(rec, "finishedAt")))
		snprintf(out->finished_at, sizeof(out->finished_at), "%s", s);
	if ((s = json_str(rec, "outputTail")))
		snprintf(out->output_tail, sizeof(out->output_tail), "%s", s);
out:
	cJSON_Delete(rec);
}

void job_describe(const struct job_state *st, char *buf, size_t len)
{
	if (st->suspended)
		snprintf(buf, len, "suspended");
	else
		snprintf(buf, len, "running (active %lld, succeeded %lld, failed %lld)", (long long)st->active,
		         (long long)st->succeeded, (long long)st->failed);
}
