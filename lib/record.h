/*
 * record.h - the outcome record codec: the one place that writes and reads
 * the JSON migrate-runner stores and wait-for-job judges by
 * (docs/design.md "The outcome record"): status, reason, exitCode, signal,
 * startedAt, finishedAt, durationSeconds, job, pod, attempt, outputTail.
 * Never the command arguments, never a token. Pure: no I/O.
 */
#ifndef MG_RECORD_H
#define MG_RECORD_H

#include <stddef.h>
#include <stdint.h>

enum rec_reason {
	REC_EXITED,
	REC_SIGNALED,
	REC_TIMED_OUT,
	REC_EXEC_FAILED,
	REC_LOCK_TIMEOUT,
	REC_DEPENDENCY_TIMEOUT,
	REC_LOCK_LOST,    /* the Lease was taken or not renewed in time: the command was stopped */
	REC_CONFIG_ERROR, /* never stored: only the termination log and stdout */
};

struct rec_outcome {
	enum rec_reason reason;
	int exit_code;
	int signal;         /* 0 = none (JSON null) */
	int64_t started_ms; /* wall clock, ms since the epoch */
	int64_t finished_ms;
	const char *job; /* NULL = JSON null */
	const char *pod;
	int attempt;             /* >= 1 */
	const char *output_tail; /* NULL or "" = "" */
};

const char *rec_reason_name(enum rec_reason r);
/* 1 when the outcome is a success (exited 0). */
int rec_succeeded(const struct rec_outcome *o);

/* Compact one-line JSON; without outputTail when with_tail is 0. Caller frees; NULL on OOM. */
char *rec_json(const struct rec_outcome *o, int with_tail);
/*
 * Compact JSON of at most max_bytes (>= 512), obtained by dropping the
 * oldest part of outputTail. Caller frees; NULL on OOM.
 */
char *rec_json_capped(const struct rec_outcome *o, size_t max_bytes);

/*
 * The attempt number stored in a previous record value, or 0 when value is
 * NULL, not a record or has no attempt.
 */
int rec_parse_attempt(const char *value);

/*
 * Drop bytes from the front of the UTF-8 string s (in place) until
 * strlen(s) <= max_bytes, preferring a line boundary within the cut, never
 * splitting a character. Returns the new length.
 */
size_t rec_trim_front(char *s, size_t max_bytes);

/* A record value as read back. */
struct rec_view {
	int succeeded;     /* status "succeeded"; else it is "failed" */
	char reason[32];   /* Exited, Signaled, TimedOut, ... ("" when absent) */
	int64_t exit_code; /* -1 when absent or null */
	int64_t signal;    /* -1 when absent or null */
	double duration;   /* seconds, -1 when absent */
	char started_at[40], finished_at[40];
	char job[254], pod[254];
	int64_t attempt;        /* 0 when absent */
	char output_tail[4097]; /* the record keeps at most 4096 bytes */
};

/*
 * Decode a record value (len bytes, need not be NUL-terminated). Returns
 * 0, or -1 when it is not a record: not JSON, or a status other than
 * "succeeded"/"failed". Strings too long for out are cut.
 */
int rec_decode(const char *value, size_t len, struct rec_view *out);

#endif
