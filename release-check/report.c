/*
 * report.c - the names of verdicts and row statuses, and the JSON form of
 * rows and results.
 */
#include "internal.h"
#include "json.h"

const char *verdict_name(enum verdict v)
{
	switch (v) {
	case VERDICT_HEALTHY: return "healthy";
	case VERDICT_FAILED: return "failed";
	case VERDICT_PROGRESSING: break;
	}
	return "progressing";
}

const char *verdict_status_name(enum verdict_status s)
{
	switch (s) {
	case ROW_OK: return "ok";
	case ROW_FAILED: return "failed";
	case ROW_IGNORED: return "ignored";
	case ROW_PROGRESSING: break;
	}
	return "progressing";
}

cJSON *verdict_row_json(const struct verdict_row *row, int64_t now_ms)
{
	cJSON *o = cJSON_CreateObject();
	int ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "kind", row->kind);
	ok = ok && cJSON_AddStringToObject(o, "name", row->name);
	ok = ok && cJSON_AddStringToObject(o, "verdict", verdict_status_name(row->status));
	ok = ok && cJSON_AddStringToObject(o, "state", row->state);
	ok = ok && cJSON_AddStringToObject(o, "reason", row->reason);
	if (ok && row->exit_code >= 0)
		ok = ok && cJSON_AddNumberToObject(o, "exitCode", (double)row->exit_code);
	if (ok && row->desired >= 0) {
		/* a count the status does not report yet is absent, never -1 */
		if (row->ready >= 0)
			ok = ok && cJSON_AddNumberToObject(o, "ready", (double)row->ready);
		ok = ok && cJSON_AddNumberToObject(o, "desired", (double)row->desired);
	}
	/* on the caller's clock: only the distance to its "now" means anything */
	if (ok && row->fails_at_ms > 0 && now_ms > 0)
		ok = ok && cJSON_AddNumberToObject(o, row->grace_ok ? "readyInSeconds" : "failsInSeconds",
		                                   (double)(row->fails_at_ms > now_ms ? row->fails_at_ms - now_ms : 0) /
		                                       1000.0);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *verdict_result_json(const struct verdict_result *r)
{
	cJSON *o = cJSON_CreateObject(), *objs = NULL;
	size_t i;
	int ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "verdict", verdict_name(r->verdict));
	ok = ok && cJSON_AddStringToObject(o, "summary", r->summary);
	if (ok && r->helm_revision >= 0) {
		cJSON *h = cJSON_AddObjectToObject(o, "helm");
		ok = h && cJSON_AddNumberToObject(h, "revision", (double)r->helm_revision) &&
		     cJSON_AddStringToObject(h, "status", r->helm_status);
	}
	ok = ok && (objs = cJSON_AddArrayToObject(o, "objects")) != NULL;
	for (i = 0; ok && i < r->nrows; i++) {
		cJSON *row = verdict_row_json(&r->rows[i], r->now_ms);
		ok = row != NULL;
		if (ok)
			cJSON_AddItemToArray(objs, row);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
