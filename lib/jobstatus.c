/*
 * jobstatus.c - what a Job's status means (see jobstatus.h). Read from the
 * Kubernetes API reference of batch/v1 Job: JobSpec completions,
 * parallelism, completionMode, backoffLimit (default 6),
 * backoffLimitPerIndex; JobStatus active, succeeded, failed, ready,
 * conditions (Complete, Failed, SuccessCriteriaMet, FailureTarget,
 * Suspended).
 */
#include "jobstatus.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

#define DEFAULT_BACKOFF_LIMIT 6

/* A counter: missing, not a number, negative or absurd = unknown (-1). */
static int64_t counter(const cJSON *job, const char *path)
{
	int64_t v = json_int(job, path, -1);
	return (v < 0 || v > 1000000000) ? -1 : v;
}

static int by_condition(const cJSON *job, struct jobstatus *out)
{
	static const struct {
		const char *type;
		enum jobstatus_phase phase;
	} terminal[] = {
	    {"Failed", JOBSTATUS_FAILED},
	    {"FailureTarget", JOBSTATUS_FAILED},
	    {"Complete", JOBSTATUS_SUCCEEDED},
	    {"SuccessCriteriaMet", JOBSTATUS_SUCCEEDED},
	};
	size_t i;

	for (i = 0; i < sizeof(terminal) / sizeof(terminal[0]); i++) {
		const cJSON *c = json_condition(job, terminal[i].type);
		const char *r = json_str(c, "reason"), *m = json_str(c, "message");
		if (!json_condition_true(job, terminal[i].type))
			continue;
		out->phase = terminal[i].phase;
		out->by = JOBSTATUS_BY_CONDITION;
		snprintf(out->reason, sizeof(out->reason), "%s", r ? r : terminal[i].type);
		snprintf(out->message, sizeof(out->message), "%s", m ? m : "");
		return 1;
	}
	return 0;
}

static int by_counters(const cJSON *job, struct jobstatus *out)
{
	int per_index = json_path(job, "spec.backoffLimitPerIndex") != NULL;
	int work_queue = out->completions < 0;

	if (out->succeeded >= 0 &&
	    (work_queue ? out->succeeded >= 1 && out->active == 0 : out->succeeded >= out->completions)) {
		out->phase = JOBSTATUS_SUCCEEDED;
		snprintf(out->reason, sizeof(out->reason), "Completed");
		if (work_queue)
			snprintf(out->message, sizeof(out->message),
			         "%lld succeeded, 0 active (status counters; no Complete condition)",
			         (long long)out->succeeded);
		else
			snprintf(out->message, sizeof(out->message),
			         "%lld succeeded of %lld completions (status counters; no Complete condition)",
			         (long long)out->succeeded, (long long)out->completions);
	} else if (!per_index && out->failed >= 0 && out->failed > out->backoff_limit) {
		out->phase = JOBSTATUS_FAILED;
		snprintf(out->reason, sizeof(out->reason), "BackoffLimitExceeded");
		snprintf(out->message, sizeof(out->message),
		         "%lld failed pods > backoffLimit %lld (status counters; no Failed condition)",
		         (long long)out->failed, (long long)out->backoff_limit);
	} else {
		return 0;
	}
	out->by = JOBSTATUS_BY_COUNTERS;
	return 1;
}

void jobstatus_eval(const cJSON *job, struct jobstatus *out)
{
	memset(out, 0, sizeof(*out));
	out->active = counter(job, "status.active");
	out->succeeded = counter(job, "status.succeeded");
	out->failed = counter(job, "status.failed");
	out->ready = counter(job, "status.ready");
	out->completions = counter(job, "spec.completions");
	/*
	 * completions unset: 1 unless parallelism is set on a NonIndexed Job
	 * (a work queue). The API server defaults both to 1 when both are
	 * unset, so this only matters for objects not from it.
	 */
	if (out->completions < 0 &&
	    (!json_path(job, "spec.parallelism") ||
	     (json_str(job, "spec.completionMode") && strcmp(json_str(job, "spec.completionMode"), "Indexed") == 0)))
		out->completions = 1;
	out->backoff_limit = counter(job, "spec.backoffLimit");
	if (out->backoff_limit < 0)
		out->backoff_limit = DEFAULT_BACKOFF_LIMIT;
	out->phase = JOBSTATUS_RUNNING;
	if (by_condition(job, out))
		return;
	/* a suspended Job's counters are of before it was suspended */
	if (json_bool(job, "spec.suspend") || json_condition_true(job, "Suspended")) {
		out->phase = JOBSTATUS_SUSPENDED;
		snprintf(out->reason, sizeof(out->reason), "Suspended");
		snprintf(out->message, sizeof(out->message), "the Job is suspended (spec.suspend)");
		return;
	}
	by_counters(job, out);
}

const char *jobstatus_phase_name(enum jobstatus_phase p)
{
	switch (p) {
	case JOBSTATUS_SUCCEEDED: return "succeeded";
	case JOBSTATUS_FAILED: return "failed";
	case JOBSTATUS_SUSPENDED: return "suspended";
	case JOBSTATUS_RUNNING: break;
	}
	return "running";
}
