/*
 * record.c - the outcome record codec (see record.h and docs/design.md).
 */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"

static const char *const reason_names[] = {
    [REC_EXITED] = "Exited",
    [REC_SIGNALED] = "Signaled",
    [REC_TIMED_OUT] = "TimedOut",
    [REC_EXEC_FAILED] = "ExecFailed",
    [REC_LOCK_TIMEOUT] = "LockTimeout",
    [REC_DEPENDENCY_TIMEOUT] = "DependencyTimeout",
    [REC_LOCK_LOST] = "LockLost",
    [REC_CONFIG_ERROR] = "ConfigError",
};

const char *rec_reason_name(enum rec_reason r)
{
	if ((size_t)r < sizeof(reason_names) / sizeof(reason_names[0]))
		return reason_names[r];
	return "Unknown";
}

int rec_succeeded(const struct rec_outcome *o) { return o->reason == REC_EXITED && o->exit_code == 0; }

static cJSON *str_or_null(const char *s) { return s && *s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static char *render(const struct rec_outcome *o, const char *tail, int with_tail)
{
	char started[40], finished[40];
	cJSON *j = cJSON_CreateObject();
	char *out = NULL;
	double dur;

	if (!j)
		return NULL;
	json_format_time(o->started_ms, started, sizeof(started));
	json_format_time(o->finished_ms, finished, sizeof(finished));
	dur = o->finished_ms > o->started_ms ? (double)(o->finished_ms - o->started_ms) / 1000.0 : 0.0;
	if (!cJSON_AddStringToObject(j, "status", rec_succeeded(o) ? "succeeded" : "failed") ||
	    !cJSON_AddStringToObject(j, "reason", rec_reason_name(o->reason)) ||
	    !cJSON_AddNumberToObject(j, "exitCode", o->exit_code) ||
	    !cJSON_AddItemToObject(j, "signal", o->signal > 0 ? cJSON_CreateNumber(o->signal) : cJSON_CreateNull()) ||
	    !cJSON_AddStringToObject(j, "startedAt", started) || !cJSON_AddStringToObject(j, "finishedAt", finished) ||
	    !cJSON_AddNumberToObject(j, "durationSeconds", dur) ||
	    !cJSON_AddItemToObject(j, "job", str_or_null(o->job)) ||
	    !cJSON_AddItemToObject(j, "pod", str_or_null(o->pod)) ||
	    !cJSON_AddNumberToObject(j, "attempt", o->attempt > 0 ? o->attempt : 1))
		goto out;
	if (with_tail && !cJSON_AddStringToObject(j, "outputTail", tail ? tail : ""))
		goto out;
	out = cJSON_PrintUnformatted(j);
out:
	cJSON_Delete(j);
	return out;
}

size_t rec_trim_front(char *s, size_t max_bytes)
{
	size_t len = strlen(s), cut;

	if (len <= max_bytes)
		return len;
	cut = len - max_bytes;
	/* prefer to start at a whole line when one begins soon after the cut */
	if (s[cut - 1] != '\n') {
		size_t look = len - cut < 256 ? len - cut : 256;
		char *nl = memchr(s + cut, '\n', look);
		if (nl && (size_t)(nl + 1 - s) < len)
			cut = (size_t)(nl + 1 - s);
	}
	while (cut < len && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut++;
	memmove(s, s + cut, len - cut + 1);
	return len - cut;
}

char *rec_json(const struct rec_outcome *o, int with_tail) { return render(o, o->output_tail, with_tail); }

char *rec_json_capped(const struct rec_outcome *o, size_t max_bytes)
{
	char *tail = strdup(o->output_tail ? o->output_tail : "");
	char *out = NULL;
	size_t overhead;

	if (!tail)
		return NULL;
	/* the record without any tail: what the tail may add to */
	out = render(o, "", 1);
	if (!out) {
		free(tail);
		return NULL;
	}
	overhead = strlen(out);
	free(out);
	for (;;) {
		size_t len, tlen, room, keep;

		out = render(o, tail, 1);
		if (!out)
			break;
		len = strlen(out);
		tlen = strlen(tail);
		if (len <= max_bytes || tlen == 0)
			break;
		free(out);
		out = NULL;
		/*
		 * Escaping makes the tail longer in JSON than in bytes (\u001b is
		 * 6 bytes for 1): scale by the observed ratio, and always make
		 * progress.
		 */
		room = max_bytes > overhead ? max_bytes - overhead : 0;
		keep = (size_t)((double)tlen * (double)room / (double)(len - overhead));
		if (keep >= tlen)
			keep = tlen - 1;
		rec_trim_front(tail, keep);
	}
	free(tail);
	return out;
}

static void copy_str(const cJSON *rec, const char *key, char *buf, size_t len)
{
	const char *s = json_str(rec, key);

	snprintf(buf, len, "%s", s ? s : "");
}

int rec_decode(const char *value, size_t len, struct rec_view *out)
{
	cJSON *rec = json_parse(value, len);
	const char *status = rec && cJSON_IsObject(rec) ? json_str(rec, "status") : NULL;
	const cJSON *n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->exit_code = out->signal = -1;
	out->duration = -1;
	if (!status || (strcmp(status, "succeeded") != 0 && strcmp(status, "failed") != 0))
		goto out;
	out->succeeded = strcmp(status, "succeeded") == 0;
	copy_str(rec, "reason", out->reason, sizeof(out->reason));
	out->exit_code = json_int(rec, "exitCode", -1);
	out->signal = json_int(rec, "signal", -1);
	n = cJSON_GetObjectItemCaseSensitive(rec, "durationSeconds");
	if (cJSON_IsNumber(n))
		out->duration = n->valuedouble;
	copy_str(rec, "startedAt", out->started_at, sizeof(out->started_at));
	copy_str(rec, "finishedAt", out->finished_at, sizeof(out->finished_at));
	copy_str(rec, "job", out->job, sizeof(out->job));
	copy_str(rec, "pod", out->pod, sizeof(out->pod));
	out->attempt = json_int(rec, "attempt", 0);
	copy_str(rec, "outputTail", out->output_tail, sizeof(out->output_tail));
	rc = 0;
out:
	cJSON_Delete(rec);
	return rc;
}

int rec_parse_attempt(const char *value)
{
	struct rec_view v;

	if (!value || rec_decode(value, strlen(value), &v) != 0)
		return 0;
	return v.attempt > 0 && v.attempt < 1000000 ? (int)v.attempt : 0;
}
