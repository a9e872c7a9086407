/*
 * verdict.c - what a Job's status means, and what a record says.
 */
#include "verdict.h"

#include <stdio.h>
#include <string.h>

#include "jobstatus.h"
#include "json.h"

/* lib/jobstatus.c is the one rule (release-check judges Jobs by it too). */
void job_evaluate(const cJSON *job, struct job_state *out)
{
	struct jobstatus js;

	memset(out, 0, sizeof(*out));
	jobstatus_eval(job, &js);
	/* for display: a missing counter is shown as 0 (it decided nothing) */
	out->active = js.active < 0 ? 0 : js.active;
	out->succeeded = js.succeeded < 0 ? 0 : js.succeeded;
	out->failed = js.failed < 0 ? 0 : js.failed;
	out->ready = js.ready < 0 ? 0 : js.ready;
	out->suspended = js.phase == JOBSTATUS_SUSPENDED;
	out->verdict = js.phase == JOBSTATUS_SUCCEEDED ? JOB_SUCCEEDED
	               : js.phase == JOBSTATUS_FAILED  ? JOB_FAILED
	                                               : JOB_RUNNING;
	if (out->verdict != JOB_RUNNING) {
		snprintf(out->reason, sizeof(out->reason), "%s", js.reason);
		snprintf(out->message, sizeof(out->message), "%s", js.message);
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
