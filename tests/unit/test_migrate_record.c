/* Unit tests: migrate-runner/store.c (pruning, ConfigMap store) with lib/record.c's JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/record.c"
#include "../../migrate-runner/store.c"
#include "../../migrate-runner/tail.c"
#include "test_migrate_fake_kube.h"

#define CM "/api/v1/namespaces/ns1/configmaps/outcomes"

static struct rec_outcome sample(void)
{
	struct rec_outcome o = {
	    .reason = REC_EXITED,
	    .exit_code = 0,
	    .signal = 0,
	    .started_ms = 1700000000000LL,
	    .finished_ms = 1700000012300LL,
	    .job = "app-migrate-12",
	    .pod = "app-migrate-12-x7k2p",
	    .attempt = 1,
	    .output_tail = "done",
	};
	return o;
}

static void json_fields(void **state)
{
	struct rec_outcome o = sample();
	char *s = rec_json(&o, 1);

	(void)state;
	assert_string_equal(s, "{\"status\":\"succeeded\",\"reason\":\"Exited\",\"exitCode\":0,\"signal\":null,"
	                       "\"startedAt\":\"2023-11-14T22:13:20Z\",\"finishedAt\":\"2023-11-14T22:13:32Z\","
	                       "\"durationSeconds\":12.3,\"job\":\"app-migrate-12\",\"pod\":\"app-migrate-12-x7k2p\","
	                       "\"attempt\":1,\"outputTail\":\"done\"}");
	free(s);
	o.reason = REC_SIGNALED;
	o.exit_code = 137;
	o.signal = 9;
	o.job = NULL;
	o.attempt = 0;
	s = rec_json(&o, 0);
	assert_non_null(strstr(s, "\"status\":\"failed\",\"reason\":\"Signaled\",\"exitCode\":137,\"signal\":9"));
	assert_non_null(strstr(s, "\"job\":null"));
	assert_non_null(strstr(s, "\"attempt\":1"));
	assert_null(strstr(s, "outputTail"));
	free(s);
	o.reason = REC_EXITED;
	o.exit_code = 3;
	s = rec_json(&o, 0);
	assert_non_null(strstr(s, "\"status\":\"failed\""));
	free(s);
	assert_string_equal(rec_reason_name(REC_LOCK_TIMEOUT), "LockTimeout");
	assert_string_equal(rec_reason_name(REC_DEPENDENCY_TIMEOUT), "DependencyTimeout");
	assert_string_equal(rec_reason_name(REC_TIMED_OUT), "TimedOut");
	assert_string_equal(rec_reason_name(REC_EXEC_FAILED), "ExecFailed");
	assert_string_equal(rec_reason_name((enum rec_reason)99), "Unknown");
}

static void capped_keeps_newest_output(void **state)
{
	struct rec_outcome o = sample();
	char *big = malloc(20000), *s;
	size_t n = 0;
	cJSON *j;
	const char *tail;

	(void)state;
	/* control characters expand 6x when escaped */
	for (int i = 0; n < 19000; i++)
		n += (size_t)snprintf(big + n, 20000 - n, "\x1b[31mline %d\x1b[0m\n", i);
	n += (size_t)snprintf(big + n, 20000 - n, "the last line");
	o.output_tail = big;
	for (size_t cap = 512; cap <= 4096; cap += 1792) {
		s = rec_json_capped(&o, cap);
		assert_non_null(s);
		assert_true(strlen(s) <= cap);
		j = json_parse(s, strlen(s));
		assert_non_null(j);
		tail = json_str(j, "outputTail");
		assert_non_null(tail);
		assert_true(strlen(tail) > 0);
		assert_non_null(strstr(tail, "the last line"));
		cJSON_Delete(j);
		free(s);
	}
	/* small enough: unchanged */
	o.output_tail = "short";
	s = rec_json_capped(&o, 4096);
	assert_non_null(strstr(s, "\"outputTail\":\"short\""));
	free(s);
	free(big);
}

static void attempts(void **state)
{
	(void)state;
	assert_int_equal(rec_parse_attempt(NULL), 0);
	assert_int_equal(rec_parse_attempt("not json"), 0);
	assert_int_equal(rec_parse_attempt("[1]"), 0);
	assert_int_equal(rec_parse_attempt("{\"status\":\"failed\",\"attempt\":3}"), 3);
	assert_int_equal(rec_parse_attempt("{\"attempt\":3}"), 0); /* no status: not a record */
	assert_int_equal(rec_parse_attempt("{\"status\":\"failed\",\"attempt\":-3}"), 0);
	assert_int_equal(rec_parse_attempt("{\"status\":\"failed\",\"attempt\":\"3\"}"), 0);
}

static void names_and_keys(void **state)
{
	(void)state;
	assert_true(rec_valid_key("App_migrate-12.x"));
	assert_false(rec_valid_key(".."));
	assert_false(rec_valid_key("a/b"));
	assert_false(rec_valid_key(""));
}

static char *rec_value(const char *finished, int attempt)
{
	char *s = malloc(256);
	snprintf(s, 256, "{\"status\":\"succeeded\",\"finishedAt\":\"%s\",\"attempt\":%d}", finished, attempt);
	return s;
}

static void prune_oldest(void **state)
{
	cJSON *cm = cJSON_Parse("{\"metadata\":{\"name\":\"x\"},\"data\":{\"foreign\":\"keep me\"}}");
	const char *times[] = {"2024-01-05T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z",
	                       "2024-01-04T00:00:00Z"};
	char key[16];
	size_t pruned = 99;
	const cJSON *data;

	(void)state;
	for (int i = 0; i < 4; i++) {
		char *v = rec_value(times[i], 1);
		snprintf(key, sizeof(key), "job-%d", i);
		assert_int_equal(rec_cm_put(cm, key, v, 100, 1 << 20, &pruned), 0);
		assert_int_equal(pruned, 0);
		free(v);
	}
	/* 6 keys with the new one; at most 4: job-1 (Jan 1) and job-2 (Jan 3) go */
	{
		char *v = rec_value("2024-01-02T00:00:00Z", 1);
		assert_int_equal(rec_cm_put(cm, "job-new", v, 4, 1 << 20, &pruned), 0);
		free(v);
	}
	assert_int_equal(pruned, 2);
	data = cJSON_GetObjectItemCaseSensitive(cm, "data");
	assert_int_equal(cJSON_GetArraySize(data), 4);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(data, "foreign"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(data, "job-new")); /* even though older */
	assert_non_null(cJSON_GetObjectItemCaseSensitive(data, "job-0"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(data, "job-3"));
	assert_null(cJSON_GetObjectItemCaseSensitive(data, "job-1"));
	/* replace in place, and a byte budget */
	{
		char *v = rec_value("2024-02-01T00:00:00Z", 2);
		assert_int_equal(rec_cm_put(cm, "job-0", v, 100, 130, &pruned), 0);
		free(v);
	}
	assert_int_equal(pruned, 2); /* job-new and job-3 */
	assert_int_equal(cJSON_GetArraySize(data), 2);
	assert_int_equal(rec_parse_attempt(cJSON_GetObjectItemCaseSensitive(data, "job-0")->valuestring), 2);
	cJSON_Delete(cm);
	/* no data yet, or data of the wrong type */
	cm = cJSON_Parse("{\"data\":5}");
	assert_int_equal(rec_cm_put(cm, "k", "v", 1, 100, NULL), 0);
	assert_string_equal(json_str(cm, "data.k"), "v");
	cJSON_Delete(cm);
	assert_int_equal(rec_cm_put(NULL, "k", "v", 1, 100, NULL), -1);
}

/*
 * Issue 15 item 16: a hostile server sends data with duplicate keys. The
 * newer duplicate comes first in the document, so pruning by key name
 * freed the other duplicate and then read its key (ASan: use after free).
 * Like Go's decoder we keep the last duplicate of a key.
 */
static void prune_duplicate_keys(void **state)
{
	const char *doc = "{\"data\":{"
	                  "\"dup\":\"{\\\"status\\\":\\\"failed\\\",\\\"finishedAt\\\":\\\"2024-01-09T00:00:00Z\\\"}\","
	                  "\"dup\":\"{\\\"status\\\":\\\"failed\\\",\\\"finishedAt\\\":\\\"2024-01-01T00:00:00Z\\\"}\","
	                  "\"mine\":\"x\",\"mine\":\"y\",\"other\":\"not a record\",\"other\":\"still not\"}}";
	cJSON *cm = cJSON_Parse(doc);
	const cJSON *data, *item;
	size_t pruned = 99, n = 0;
	char *v = rec_value("2024-02-01T00:00:00Z", 1);

	(void)state;
	assert_non_null(cm);
	assert_int_equal(rec_cm_put(cm, "mine", v, 1, 1 << 20, &pruned), 0);
	data = cJSON_GetObjectItemCaseSensitive(cm, "data");
	cJSON_ArrayForEach (item, data) {
		n++;
		assert_true(strcmp(item->string, "mine") == 0 || strcmp(item->string, "other") == 0);
	}
	assert_int_equal(n, 2); /* each key once; both "dup" records pruned */
	assert_string_equal(json_str(cm, "data.mine"), v);
	assert_string_equal(json_str(cm, "data.other"), "still not");
	cJSON_Delete(cm);
	/* with room to spare, only the duplicates go */
	cm = cJSON_Parse(doc);
	assert_int_equal(rec_cm_put(cm, "new", v, 100, 1 << 20, &pruned), 0);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cm, "data")), 4);
	assert_non_null(strstr(json_str(cm, "data.dup"), "2024-01-01"));
	cJSON_Delete(cm);
	free(v);
}

static int fk_put_count;
static void concurrent_writer(const char *path)
{
	cJSON *cm = cJSON_Duplicate(fk_get(path), 1);
	cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");

	if (fk_put_count++ > 0) {
		cJSON_Delete(cm);
		return;
	}
	/* another runner recorded its Job in between our GET and PUT */
	cJSON_AddStringToObject(data, "other-job", "{\"status\":\"failed\",\"finishedAt\":\"2024-01-01T00:00:00Z\"}");
	fk_put_raw(path, cm);
}

static void store_create_update_conflict(void **state)
{
	struct kube_error err;
	struct rec_store_opts o = {"outcomes", "job-a", 10, 100000, 0};
	char *val = NULL;
	cJSON *cm;

	(void)state;
	fk_reset();
	assert_int_equal(rec_load(&fk_client, "outcomes", "job-a", 0, &val, &err), KUBE_OK);
	assert_null(val);
	assert_int_equal(rec_store(&fk_client, &o, "{\"attempt\":1}", &err), KUBE_OK);
	cm = fk_get(CM);
	assert_non_null(cm);
	assert_string_equal(json_str(cm, "data.job-a"), "{\"attempt\":1}");
	assert_string_equal(json_str(cm, "metadata.name"), "outcomes");
	assert_int_equal(rec_load(&fk_client, "outcomes", "job-a", 0, &val, &err), KUBE_OK);
	assert_string_equal(val, "{\"attempt\":1}");
	free(val);
	assert_int_equal(rec_load(&fk_client, "outcomes", "job-zz", 0, &val, &err), KUBE_OK);
	assert_null(val);

	/* 409s re-read and retry */
	fk_conflicts = 3;
	assert_int_equal(rec_store(&fk_client, &o, "{\"attempt\":2}", &err), KUBE_OK);
	assert_string_equal(json_str(fk_get(CM), "data.job-a"), "{\"attempt\":2}");

	/* a concurrent writer's key survives our retry */
	fk_put_count = 0;
	fk_before_put = concurrent_writer;
	o.key = "job-b";
	assert_int_equal(rec_store(&fk_client, &o, "{\"attempt\":1}", &err), KUBE_OK);
	fk_before_put = NULL;
	cm = fk_get(CM);
	assert_non_null(json_str(cm, "data.other-job"));
	assert_non_null(json_str(cm, "data.job-a"));
	assert_non_null(json_str(cm, "data.job-b"));

	/* endless conflicts give up with a message */
	fk_conflicts = 1000;
	assert_int_equal(rec_store(&fk_client, &o, "{}", &err), KUBE_ETIMEOUT);
	assert_non_null(strstr(err.message, "concurrently"));
	fk_conflicts = 0;

	/* errors are returned, not hidden */
	fk_forbidden = 1;
	assert_int_equal(rec_store(&fk_client, &o, "{}", &err), KUBE_EFORBIDDEN);
	assert_int_equal(rec_load(&fk_client, "outcomes", "job-a", 0, &val, &err), KUBE_EFORBIDDEN);
	fk_reset();
}

static void termination_file(void **state)
{
	char path[] = "/tmp/mr-unit-XXXXXX";
	int fd = mkstemp(path);
	char buf[64] = "";
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(rec_write_file(path, 0, "{\"a\":1}"), 0);
	f = fopen(path, "r");
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "{\"a\":1}");
	unlink(path);
	assert_int_equal(rec_write_file(path, 0, "{}"), ENOENT); /* default path: must exist */
	assert_int_equal(rec_write_file(path, 1, "{}"), 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_fields),      cmocka_unit_test(capped_keeps_newest_output),
	    cmocka_unit_test(attempts),         cmocka_unit_test(names_and_keys),
	    cmocka_unit_test(prune_oldest),     cmocka_unit_test(store_create_update_conflict),
	    cmocka_unit_test(termination_file), cmocka_unit_test(prune_duplicate_keys),
	};
	log_init("test", LOG_TEXT, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
