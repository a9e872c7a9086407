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
#include "../unit/rc_sources.h"
#include "../unit/verdict_compare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct first_seen_table fs;

static void check_other_paths(const cJSON *doc, const struct verdict_opts *o, const struct verdict_result *want)
{
	struct verdict_result got;
	struct verdict_store *st;
	cJSON *pruned = vc_pruned(doc);
	char why[4096];
	size_t k;

	if (pruned && verdict_eval(pruned, o, &got) == 0 && vc_differ(want, &got, why, sizeof(why)))
		abort();
	verdict_result_free(&got);
	cJSON_Delete(pruned);

	if (!vc_comparable(doc) || !(st = verdict_store_new()))
		return;
	/* pods before their owners: every lookup changes on the way */
	for (k = VERDICT_NKINDS; k-- > 0;) {
		const cJSON *it;
		cJSON_ArrayForEach (it, rc_arr(doc, verdict_kinds[k].key)) {
			if (verdict_store_put(st, (enum verdict_kind)k, it) < 0 ||
			    verdict_store_update(st, o, NULL, NULL, NULL) < 0)
				goto out;
		}
	}
	if (verdict_store_update(st, o, NULL, NULL, NULL) == 0 && verdict_store_result(st, &got) == 0 &&
	    vc_differ(want, &got, why, sizeof(why)))
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
