/*
 * fuzz_verdict.c - the release-check evaluator over arbitrary JSON.
 *
 * Input: a document in verdict_eval's shape ({"deployments":[...],
 * "pods":[...], ...}); every field may be missing or of any type. Evaluated
 * twice (default grace without a first-seen table, zero grace with one) and
 * rendered as the JSON report, so every row and string path runs. The
 * same document pruned (verdict_prune), and fed to the incremental store
 * object by object, must give the same rows.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/json.c"
#include "../../release-check/verdict.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct first_seen_table fs;

static int same(const struct verdict_result *a, const struct verdict_result *b)
{
	size_t i;

	if (a->verdict != b->verdict || a->nrows != b->nrows || a->nconsidered != b->nconsidered ||
	    a->recheck_at_ms != b->recheck_at_ms || strcmp(a->summary, b->summary) != 0)
		return 0;
	for (i = 0; i < a->nrows; i++) {
		const struct verdict_row *x = &a->rows[i], *y = &b->rows[i];
		if (strcmp(x->name, y->name) || x->status != y->status || x->ready != y->ready ||
		    x->desired != y->desired || strcmp(x->state, y->state) || strcmp(x->reason, y->reason) ||
		    strcmp(x->log_container, y->log_container) || strcmp(x->grace_key, y->grace_key) ||
		    x->fails_at_ms != y->fails_at_ms)
			return 0;
	}
	return 1;
}

/* Objects the store can tell apart: objects with a uid or name of their own. */
static int comparable(const cJSON *doc)
{
	size_t k;
	for (k = 0; k < VERDICT_NKINDS; k++) {
		const cJSON *it, *jt;
		cJSON_ArrayForEach (it, arr(doc, verdict_kind_key[k])) {
			if (!cJSON_IsObject(it) || !obj_id(it))
				return 0;
			for (jt = it->next; jt; jt = jt->next)
				if (obj_id(jt) && strcmp(obj_id(it), obj_id(jt)) == 0)
					return 0;
		}
	}
	return 1;
}

static void check_other_paths(const cJSON *doc, const struct verdict_opts *o, const struct verdict_result *want)
{
	struct verdict_result got;
	struct verdict_store *st;
	cJSON *pruned = cJSON_CreateObject();
	size_t k;

	for (k = 0; pruned && k < VERDICT_NKINDS; k++) {
		const cJSON *a = arr(doc, verdict_kind_key[k]), *it;
		cJSON *pa = a ? cJSON_AddArrayToObject(pruned, verdict_kind_key[k]) : NULL;
		if (!pa)
			continue;
		cJSON_ArrayForEach (it, a)
			cJSON_AddItemToArray(pa, verdict_prune((enum verdict_kind)k, it));
	}
	if (pruned && verdict_eval(pruned, o, &got) == 0 && !same(want, &got))
		abort();
	verdict_result_free(&got);
	cJSON_Delete(pruned);

	if (!comparable(doc) || !(st = verdict_store_new()))
		return;
	/* pods before their owners: every lookup changes on the way */
	for (k = VERDICT_NKINDS; k-- > 0;) {
		const cJSON *it;
		cJSON_ArrayForEach (it, arr(doc, verdict_kind_key[k])) {
			if (verdict_store_put(st, (enum verdict_kind)k, it) < 0 ||
			    verdict_store_update(st, o, NULL, NULL, NULL) < 0)
				goto out;
		}
	}
	if (verdict_store_update(st, o, NULL, NULL, NULL) == 0 && verdict_store_result(st, &got) == 0 &&
	    !same(want, &got))
		abort();
	verdict_result_free(&got);
out:
	verdict_store_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *doc = json_parse((const char *)data, size);
	struct verdict_opts o;
	struct verdict_result r;
	size_t i;

	if (!doc)
		return 0;
	memset(&o, 0, sizeof(o));
	o.release = "app";
	o.now_ms = 1704067800000LL;
	o.pull_grace_ms = -1;
	if (verdict_eval(doc, &o, &r) == 0) {
		cJSON *j = verdict_result_json(&r);
		char *s = j ? cJSON_PrintUnformatted(j) : NULL;
		free(s);
		cJSON_Delete(j);
		for (i = 0; i < r.nrows; i++) {
			/* rows are NUL-terminated and single-line */
			if (memchr(r.rows[i].reason, '\n', strlen(r.rows[i].reason)) || r.rows[i].status > ROW_IGNORED)
				abort();
		}
		if (r.verdict == VERDICT_HEALTHY && r.nconsidered == 0)
			abort();
		check_other_paths(doc, &o, &r);
	}
	verdict_result_free(&r);

	memset(&fs, 0, sizeof(fs));
	o.pull_grace_ms = 0;
	o.first_seen = first_seen_lookup;
	o.first_seen_ctx = &fs;
	if (verdict_eval(doc, &o, &r) == 0)
		first_seen_record(&fs, &r, o.now_ms);
	verdict_result_free(&r);
	cJSON_Delete(doc);
	return 0;
}
