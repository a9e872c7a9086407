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

void job_describe(const struct job_state *st, char *buf, size_t len)
{
	if (st->suspended)
		snprintf(buf, len, "suspended");
	else
		snprintf(buf, len, "running (active %lld, succeeded %lld, failed %lld)", (long long)st->active,
		         (long long)st->succeeded, (long long)st->failed);
}
