/*
 * rule_release.c - the Helm release record (a Secret), read by labels only.
 */
#include <string.h>

#include "internal.h"
#include "json.h"

/*
 * The newest sh.helm.release.v1.NAME.vN Secret by its "version" label. Only
 * labels are read: the payload (values, often with credentials) is never
 * decoded.
 */
void rc_rule_release(struct eval *ev)
{
	const char *rel = ev->opts->release;
	const cJSON *best = NULL;
	const struct vobj *o;
	int64_t best_v = -1;
	struct verdict_row *row;
	const char *st;

	ev->st->helm_revision = -1;
	ev->st->helm_status[0] = '\0';
	ev->st->helm_created_ms = 0;
	if (!rel)
		return;
	for (o = ev->st->head[VERDICT_RELEASES]; o; o = o->next) {
		const cJSON *s = o->obj;
		int64_t v;
		if (!rc_streq(rc_meta(s, "metadata.labels", "owner"), "helm") ||
		    !rc_streq(rc_meta(s, "metadata.labels", "name"), rel))
			continue;
		v = rc_parse_uint(rc_meta(s, "metadata.labels", "version"));
		if (v > best_v) {
			best_v = v;
			best = s;
		}
	}
	row = rc_add_row(ev, "Release", NULL);
	if (!row)
		return;
	rc_clean_copy(row->name, sizeof(row->name), rel);
	if (!best) {
		row->status = ROW_OK;
		rc_clean_copy(row->state, sizeof(row->state), "Absent");
		rc_fmt(row->reason, sizeof(row->reason),
		       "no Helm release record (Secret sh.helm.release.v1.%s.v*); checking the selector only", rel);
		return;
	}
	st = rc_nz(rc_meta(best, "metadata.labels", "status"));
	ev->st->helm_revision = best_v;
	rc_clean_copy(ev->st->helm_status, sizeof(ev->st->helm_status), st);
	ev->st->helm_created_ms = rc_time_of(best, "metadata.creationTimestamp");
	rc_clean_copy(row->state, sizeof(row->state), st[0] ? st : "unknown");
	if (strcmp(st, "deployed") == 0) {
		row->status = ROW_OK;
		rc_fmt(row->reason, sizeof(row->reason), "revision %lld deployed", (long long)best_v);
	} else if (strcmp(st, "failed") == 0) {
		row->status = ROW_FAILED;
		rc_fmt(row->reason, sizeof(row->reason), "Helm marked revision %lld failed (see `helm history %s`)",
		       (long long)best_v, rel);
	} else if (strncmp(st, "pending-", 8) == 0) {
		rc_fmt(row->reason, sizeof(row->reason), "Helm is still applying revision %lld (%s)", (long long)best_v,
		       st);
	} else if (strcmp(st, "uninstalling") == 0 || strcmp(st, "uninstalled") == 0) {
		row->status = ROW_FAILED;
		rc_fmt(row->reason, sizeof(row->reason), "the release is %s (revision %lld)", st, (long long)best_v);
	} else {
		/* superseded as newest, unknown: a record being rewritten; wait */
		rc_fmt(row->reason, sizeof(row->reason), "revision %lld has status \"%s\"", (long long)best_v, st);
	}
}

/* The release row reads every record (and the Jobs read the release: see the update). */
void rc_prop_release(struct verdict_store *st, struct vobj *o)
{
	(void)o;
	st->release_dirty = 1;
}
