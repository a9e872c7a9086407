/*
 * test_rc_captured.c - release-check's verdicts on objects captured from
 * the real control plane (kube-apiserver, kube-controller-manager,
 * kube-scheduler v1.37.2 and the node agent: tests/realkube/capture.py).
 *
 * Each tests/unit/captured/<case>.json holds one state of a namespace as
 * the API server listed it ("objects", verdict_eval's input), the moment
 * it was taken ("capturedAtMs") and the judgements Kubernetes semantics
 * call for ("judge": the verdict and some rows, when release-check first
 * saw the state firstSeenSecondsAgo before). INDEX names every case, so a
 * lost file fails here rather than shrinking the table. MG_CAPTURED_DIR
 * points the test at another directory (test_capture.py: a fresh capture).
 *
 * Every judgement is also made from the pruned objects and through the
 * incremental store: the rules must read on real objects only what
 * verdict_prune keeps.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/json.c"
#include "rc_sources.h"
#include "verdict_compare.h"

#define MAX_FILE (4 << 20)
#define MAX_CASES 256

static char DIR_PATH[512];
static char NAMES[MAX_CASES][128];
static size_t NNAMES;
static struct first_seen_table FS;

static const char *captured_dir(void)
{
	const char *env = getenv("MG_CAPTURED_DIR");
	const char *slash = strrchr(__FILE__, '/');

	if (env && *env)
		snprintf(DIR_PATH, sizeof(DIR_PATH), "%s", env);
	else if (slash)
		snprintf(DIR_PATH, sizeof(DIR_PATH), "%.*s/captured", (int)(slash - __FILE__), __FILE__);
	else
		snprintf(DIR_PATH, sizeof(DIR_PATH), "captured");
	return DIR_PATH;
}

/* The whole file, NUL-terminated (the caller frees it); NULL when unreadable. */
static char *cap_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n = 0, got;

	if (!f)
		return NULL;
	buf = malloc(MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	while (n < MAX_FILE && (got = fread(buf + n, 1, MAX_FILE - n, f)) > 0)
		n += got;
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* INDEX: one case name a line. */
static void cap_read_index(void)
{
	char path[700], *text, *line, *save = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/INDEX", captured_dir());
	text = cap_slurp(path, &len);
	if (!text)
		fail_msg("cannot read %s (capture it: python3 tests/realkube/capture.py)", path);
	NNAMES = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!*line)
			continue;
		assert_true(NNAMES < MAX_CASES);
		assert_true(strlen(line) < sizeof(NAMES[0]));
		snprintf(NAMES[NNAMES++], sizeof(NAMES[0]), "%s", line);
	}
	free(text);
}

static int cap_in_index(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NNAMES; i++)
		if (strlen(NAMES[i]) == len && strncmp(NAMES[i], name, len) == 0)
			return 1;
	return 0;
}

static const struct verdict_row *cap_find_row(const struct verdict_result *r, const char *kind, const char *name)
{
	size_t i;

	for (i = 0; i < r->nrows; i++)
		if (strcmp(r->rows[i].kind, kind) == 0 && strcmp(r->rows[i].name, name) == 0)
			return &r->rows[i];
	return NULL;
}

static void cap_judge(const cJSON *objects, int64_t now, struct verdict_result *r, struct verdict_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->now_ms = now;
	o->pull_grace_ms = -1;
	o->first_seen = first_seen_lookup;
	o->first_seen_ctx = &FS;
	assert_int_equal(verdict_eval(objects, o, r), 0);
}

/* The same judgement from the pruned objects and from the store; 0 or 1 with why. */
static int cap_other_paths_differ(const cJSON *objects, const struct verdict_opts *o, const struct verdict_result *want,
                                  char *why, size_t len)
{
	cJSON *pruned = vc_pruned(objects);
	struct verdict_store *st;
	struct verdict_result got;
	struct verdict_counts cnt;
	size_t k;
	int bad;

	assert_non_null(pruned);
	assert_int_equal(verdict_eval(pruned, o, &got), 0);
	bad = vc_differ(want, &got, why, len);
	verdict_result_free(&got);
	cJSON_Delete(pruned);
	if (bad)
		return 1;
	if (!vc_comparable(objects))
		return 0;
	st = verdict_store_new();
	assert_non_null(st);
	for (k = 0; k < VERDICT_NKINDS; k++) {
		const cJSON *it;
		cJSON_ArrayForEach (it, rc_arr(objects, verdict_kinds[k].key)) {
			assert_int_equal(verdict_store_put(st, (enum verdict_kind)k, it), 0);
			assert_int_equal(verdict_store_update(st, o, NULL, NULL, &cnt), 0);
		}
	}
	assert_int_equal(verdict_store_result(st, &got), 0);
	bad = vc_differ(want, &got, why, len);
	verdict_result_free(&got);
	verdict_store_free(st);
	return bad;
}

#define ADD(...)                                                                                                       \
	do {                                                                                                           \
		if (*blen < bsize)                                                                                     \
			*blen += (size_t)snprintf(bad + *blen, bsize - *blen, __VA_ARGS__);                            \
	} while (0)

/* One case file: every judgement; returns the number of disagreements, described in bad. */
static int cap_run_case(const char *name, char *bad, size_t bsize, size_t *blen)
{
	char path[700];
	char *text;
	size_t len;
	cJSON *doc;
	const cJSON *objects, *judgements, *j, *now_item;
	int nbad = 0, njudged = 0;

	snprintf(path, sizeof(path), "%s/%s.json", captured_dir(), name);
	text = cap_slurp(path, &len);
	if (!text) {
		ADD("\n  %s: cannot read %s", name, path);
		return 1;
	}
	doc = json_parse(text, len);
	free(text);
	if (!doc) {
		ADD("\n  %s: not JSON", name);
		return 1;
	}
	objects = cJSON_GetObjectItemCaseSensitive(doc, "objects");
	judgements = cJSON_GetObjectItemCaseSensitive(doc, "judge");
	now_item = cJSON_GetObjectItemCaseSensitive(doc, "capturedAtMs");
	if (!cJSON_IsObject(objects) || !cJSON_IsArray(judgements) || !cJSON_IsNumber(now_item)) {
		ADD("\n  %s: no objects, judge or capturedAtMs", name);
		cJSON_Delete(doc);
		return 1;
	}
	cJSON_ArrayForEach (j, judgements) {
		const cJSON *seen = cJSON_GetObjectItemCaseSensitive(j, "firstSeenSecondsAgo");
		const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "verdict"));
		const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows"), *rw;
		int64_t now = (int64_t)now_item->valuedouble;
		int64_t ago = cJSON_IsNumber(seen) ? (int64_t)(seen->valuedouble * 1000) : 0;
		struct verdict_result r;
		struct verdict_opts o;
		char why[1024];

		if (!want || !cJSON_IsArray(rows) || cJSON_GetArraySize(rows) == 0) {
			ADD("\n  %s: a judgement without verdict or rows", name);
			nbad++;
			continue;
		}
		njudged++;
		memset(&FS, 0, sizeof(FS));
		if (ago > 0) { /* first seen then: that sighting starts the graces */
			cap_judge(objects, now - ago, &r, &o);
			first_seen_record(&FS, &r, now - ago);
			verdict_result_free(&r);
		}
		cap_judge(objects, now, &r, &o);
		if (strcmp(verdict_name(r.verdict), want) != 0) {
			ADD("\n  %s (seen %llds ago): %s (%s), want %s", name, (long long)(ago / 1000),
			    verdict_name(r.verdict), r.summary, want);
			nbad++;
		}
		cJSON_ArrayForEach (rw, rows) {
			const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rw, "kind"));
			const char *obj = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rw, "name"));
			const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rw, "status"));
			const struct verdict_row *got = kind && obj ? cap_find_row(&r, kind, obj) : NULL;

			if (!got || !st || strcmp(verdict_status_name(got->status), st) != 0) {
				ADD("\n  %s (seen %llds ago): %s %s is %s (%s: %s), want %s", name,
				    (long long)(ago / 1000), kind ? kind : "?", obj ? obj : "?",
				    got ? verdict_status_name(got->status) : "no row", got ? got->state : "",
				    got ? got->reason : "", st ? st : "?");
				nbad++;
			}
		}
		if (cap_other_paths_differ(objects, &o, &r, why, sizeof(why))) {
			ADD("\n  %s: pruned or incremental judgement differs: %s", name, why);
			nbad++;
		}
		verdict_result_free(&r);
	}
	if (!njudged && !nbad) {
		ADD("\n  %s: no judgement", name);
		nbad++;
	}
	cJSON_Delete(doc);
	return nbad;
}

/* INDEX and the directory agree, and the table is not empty. */
static void t_index_names_every_file(void **state)
{
	DIR *d;
	struct dirent *e;
	size_t nfiles = 0;

	(void)state;
	cap_read_index();
	assert_true(NNAMES > 0);
	d = opendir(captured_dir());
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		nfiles++;
		if (!cap_in_index(e->d_name, n - 5)) {
			closedir(d);
			fail_msg("%s/%s is not in INDEX", captured_dir(), e->d_name);
		}
	}
	closedir(d);
	if (nfiles != NNAMES)
		fail_msg("INDEX names %zu cases, %s holds %zu .json files (a case file is missing)", NNAMES,
		         captured_dir(), nfiles);
}

/* Every captured case gets the verdict Kubernetes semantics call for. */
static void t_captured_verdicts(void **state)
{
	static char bad[16384];
	size_t blen = 0, i;
	int nbad = 0;

	(void)state;
	bad[0] = '\0';
	cap_read_index();
	for (i = 0; i < NNAMES; i++)
		nbad += cap_run_case(NAMES[i], bad, sizeof(bad), &blen);
	if (nbad)
		fail_msg("%d disagreement(s) in %zu captured cases (%s):%s", nbad, NNAMES, captured_dir(), bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_index_names_every_file),
	    cmocka_unit_test(t_captured_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
