/*
 * jobstatus.h - the one rule for what a Job's status means, shared by
 * wait-for-job and release-check (pure: object in, status out).
 *
 * 1. Conditions decide when there is a terminal one: Failed or
 *    FailureTarget = True -> failed (with its reason and message);
 *    Complete or SuccessCriteriaMet = True -> succeeded. FailureTarget and
 *    SuccessCriteriaMet (1.31+) come while the pods still terminate.
 * 2. Without one, the counters the API defines (objects written by older
 *    or other controllers): succeeded >= spec.completions (default 1; a
 *    NonIndexed Job with completions unset and parallelism set is a work
 *    queue: done when succeeded >= 1 and active == 0), or failed >
 *    spec.backoffLimit (default 6; not with backoffLimitPerIndex, where
 *    only the Failed condition knows).
 * 3. Otherwise suspended (spec.suspend true or Suspended = True) or
 *    running. A missing counter is unknown, never 0: it decides nothing,
 *    so "0 active" is never "done" (k8s-wait-for#17).
 */
#ifndef MG_JOBSTATUS_H
#define MG_JOBSTATUS_H

#include <stdint.h>

#include <cjson/cJSON.h>

enum jobstatus_phase {
	JOBSTATUS_RUNNING = 0,
	JOBSTATUS_SUCCEEDED,
	JOBSTATUS_FAILED,
	JOBSTATUS_SUSPENDED, /* spec.suspend, no terminal condition: will not run until resumed */
};

enum jobstatus_source {
	JOBSTATUS_BY_NONE = 0,  /* running / suspended */
	JOBSTATUS_BY_CONDITION, /* a terminal condition */
	JOBSTATUS_BY_COUNTERS,  /* the counters, no terminal condition */
};

struct jobstatus {
	enum jobstatus_phase phase;
	enum jobstatus_source by;
	char reason[64];   /* the condition's reason (else its type), or the counters' */
	char message[256]; /* the condition's message, or which counters decided */
	/* status counters, -1 when missing */
	int64_t active, succeeded, failed, ready;
	/* the spec the counters are compared with: completions -1 = a work queue */
	int64_t completions, backoff_limit;
};

/* Fill *out from job (NULL or not an object: running, counters unknown). */
void jobstatus_eval(const cJSON *job, struct jobstatus *out);

/* "succeeded", "failed", "suspended", "running" */
const char *jobstatus_phase_name(enum jobstatus_phase p);

#endif
