/*
 * verdict.h - pure evaluation of a Job object and of migrate-runner's
 * outcome record (object in, verdict out, no I/O).
 */
#ifndef WFJ_VERDICT_H
#define WFJ_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum job_verdict { JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED };

struct job_state {
	enum job_verdict verdict;
	char reason[64];   /* condition reason, e.g. BackoffLimitExceeded */
	char message[256]; /* condition message */
	int64_t active, succeeded, failed, ready;
	int suspended;
};

/*
 * lib/jobstatus.h's rule: a terminal condition (Complete/SuccessCriteriaMet
 * -> succeeded, Failed/FailureTarget -> failed), else the counters the API
 * defines (succeeded >= completions, failed > backoffLimit), else running
 * (suspended: running with suspended set). "0 active" is not "done", and
 * a pod that failed before a retry succeeded does not make the Job failed.
 */
void job_evaluate(const cJSON *job, struct job_state *out);

/* One short line describing a running Job ("active 1, failed 0"). */
void job_describe(const struct job_state *st, char *buf, size_t len);

#endif
