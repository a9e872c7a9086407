/* Unit tests: lib/json.c - lookups and RFC 3339 time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>

#include "../../lib/json.c"

static void paths(void **state)
{
	const char *s =
	    "{\"metadata\":{\"name\":\"x\",\"Name\":\"y\"},\"status\":{\"active\":2,\"ok\":true,"
	    "\"conditions\":[{\"type\":\"Failed\",\"status\":\"False\"},{\"type\":\"Complete\",\"status\":\"True\"}]}}";
	cJSON *j = json_parse(s, strlen(s));
	(void)state;
	assert_non_null(j);
	assert_string_equal(json_str(j, "metadata.name"), "x");
	assert_null(json_str(j, "metadata.missing"));
	assert_null(json_str(j, "status.active")); /* not a string */
	assert_int_equal(json_int(j, "status.active", -1), 2);
	assert_int_equal(json_int(j, "status.nope", -1), -1);
	assert_int_equal(json_bool(j, "status.ok"), 1);
	assert_null(json_path(j, "metadata.name.deeper"));
	assert_null(json_path(j, "metadata..name"));
	assert_null(json_path(j, ".metadata"));
	assert_null(json_path(j, "meta"));           /* a prefix of a key */
	assert_null(json_path(j, "metadata.nam"));   /* a prefix of a key */
	assert_null(json_path(j, "metadata.names")); /* a key is a prefix of it */
	assert_null(json_path(j, "status.active.x"));
	assert_ptr_equal(json_path(j, ""), j);
	assert_string_equal(json_str(j, "metadata.Name"), "y"); /* case-sensitive */
	assert_int_equal(json_condition_true(j, "Complete"), 1);
	assert_int_equal(json_condition_true(j, "Failed"), 0);
	assert_null(json_condition(j, "complete")); /* case-sensitive */
	cJSON_Delete(j);
}

/* A key with a dot in it is one key, never two segments; the first of duplicates wins. */
static void path_keys(void **state)
{
	const char *s = "{\"a.b\":1,\"a\":{\"b\":2,\"b\":3,\"bb\":4},\"\":{\"x\":5},\"ab\":6}";
	cJSON *j = json_parse(s, strlen(s));
	(void)state;
	assert_non_null(j);
	assert_int_equal(json_int(j, "a.b", -1), 2);
	assert_int_equal(json_int(j, "a.bb", -1), 4);
	assert_int_equal(json_int(j, "ab", -1), 6);
	assert_null(json_path(j, "a.b.c"));
	assert_null(json_path(j, ".x")); /* the empty key is not a segment */
	assert_null(json_path(NULL, "a"));
	cJSON_Delete(j);
}

static void parse_strict(void **state)
{
	cJSON *j;
	(void)state;
	assert_null(json_parse("{\"a\":1} x", 9));
	assert_null(json_parse("{\"a\":", 5));
	j = json_parse("{\"a\":1}\n", 8);
	assert_non_null(j);
	cJSON_Delete(j);
	/* length is honoured: no read past len */
	j = json_parse("{\"a\":1}garbage", 7);
	assert_non_null(j);
	cJSON_Delete(j);
}

/*
 * Issue 15 item 10: "[0,0,0,...]" costs ~80 bytes of tree per 2 bytes of
 * input; the value count is checked before cJSON allocates anything.
 */
static void value_cap(void **state)
{
	size_t n = 8u << 20, i; /* 8 MB: 4M values, over JSON_MAX_VALUES */
	char *dense = malloc(n + 2);
	int toobig = 0;
	cJSON *j;
	(void)state;

	assert_non_null(dense);
	dense[0] = '[';
	for (i = 1; i < n; i += 2)
		memcpy(dense + i, "0,", 2);
	dense[n - 1] = '0';
	dense[n] = ']';
	dense[n + 1] = '\0';
	assert_true(json_count_values(dense, n + 1) > JSON_MAX_VALUES);
	assert_null(json_parse_capped(dense, n + 1, JSON_MAX_VALUES, &toobig));
	assert_int_equal(toobig, 1);
	assert_null(json_parse(dense, n + 1));
	free(dense);
	/* commas, brackets and braces inside strings are not values */
	{
		static const char tricky[] = "{\"a\":\"[,{\\\",\",\"b\":[1,2]}"; /* object, "a", "b", 1, 2 */
		assert_int_equal(json_count_values(tricky, strlen(tricky)), 5);
	}
	j = json_parse_capped("{\"a\":[1,2,3]}", 13, 5, &toobig);
	assert_non_null(j);
	assert_int_equal(toobig, 0);
	cJSON_Delete(j);
	assert_null(json_parse_capped("{\"a\":[1,2,3]}", 13, 4, &toobig));
	assert_int_equal(toobig, 1);
}

static void times(void **state)
{
	int64_t ms;
	char b[40];
	(void)state;
	assert_int_equal(json_parse_time("1970-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(json_parse_time("2024-02-29T12:34:56.789Z", &ms), 0);
	assert_int_equal(ms, 1709210096789LL);
	assert_int_equal(json_parse_time("2024-02-29T14:34:56+02:00", &ms), 0);
	assert_int_equal(ms, 1709210096000LL);
	assert_int_equal(json_parse_time("2024-02-29 12:34:56Z", &ms), -1);
	assert_int_equal(json_parse_time("2024-13-01T00:00:00Z", &ms), -1);
	assert_int_equal(json_parse_time("2024-01-01T00:00:00", &ms), -1);
	assert_int_equal(json_parse_time("2024-01-01T00:00:00Zjunk", &ms), -1);
	assert_int_equal(json_parse_time(NULL, &ms), -1);
	assert_string_equal(json_format_time(1709210096789LL, b, sizeof(b)), "2024-02-29T12:34:56Z");
}

/* ---- json_parse_kept --------------------------------------------------------- */

static const struct json_keep k_cond[] = {{"type", NULL}, {"status", NULL}, {NULL, NULL}};
static const struct json_keep k_meta[] = {{"name", NULL}, {"labels", NULL}, {NULL, NULL}};
static const struct json_keep k_status[] = {{"phase", NULL}, {"conditions", k_cond}, {"restarts", NULL}, {NULL, NULL}};
static const struct json_keep k_pod[] = {{"metadata", k_meta}, {"status", k_status}, {NULL, NULL}};

/* the reference: prune the full parse (release-check/prune.c's rule) */
static cJSON *ref_prune(const cJSON *v, const struct json_keep *sub)
{
	cJSON *out;
	const cJSON *e;

	if (!sub || (!cJSON_IsObject(v) && !cJSON_IsArray(v)))
		return cJSON_Duplicate(v, 1);
	out = cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject();
	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach (e, v)
			cJSON_AddItemToArray(out, ref_prune(e, sub));
		return out;
	}
	for (; sub->key; sub++)
		if ((e = cJSON_GetObjectItemCaseSensitive(v, sub->key)))
			cJSON_AddItemToObject(out, sub->key, ref_prune(e, sub->sub));
	return out;
}

static void assert_kept_like_pruned(const char *doc, const struct json_keep *keep)
{
	cJSON *full = json_parse(doc, strlen(doc)), *want, *got;
	char *a, *b;
	int toobig = -1;

	assert_non_null(full);
	want = ref_prune(full, keep);
	got = json_parse_kept(doc, strlen(doc), keep, 1000, &toobig);
	assert_non_null(got);
	assert_int_equal(toobig, 0);
	a = cJSON_PrintUnformatted(want);
	b = cJSON_PrintUnformatted(got);
	assert_string_equal(b, a);
	cJSON_free(a);
	cJSON_free(b);
	cJSON_Delete(full);
	cJSON_Delete(want);
	cJSON_Delete(got);
}

static void kept_equals_pruned(void **state)
{
	(void)state;
	/* a pod as the API server sends it: managedFields and spec are scanned, not built */
	assert_kept_like_pruned(
	    "{\"kind\":\"Pod\",\"metadata\":{\"managedFields\":[{\"manager\":\"kubelet\",\"fieldsV1\":{\"f:status\":"
	    "{\"f:conditions\":{\"k:{\\\"type\\\":\\\"Ready\\\"}\":{}}}}}],\"name\":\"web-1\",\"labels\":{\"a\":\"b\"}}"
	    ","
	    "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"x\",\"args\":[\"-v\",\"--q=\\\"1\\\"\"]}]},"
	    "\"status\":{\"restarts\":-1.5e3,\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"x\":[1,2]},"
	    "{\"type\":\"PodScheduled\",\"status\":\"True\"}],\"phase\":\"Running\"}}",
	    k_pod);
	/* the first of duplicate keys, as cJSON's getters read; keep's order */
	assert_kept_like_pruned("{\"status\":{\"phase\":\"A\",\"phase\":\"B\"},\"metadata\":{\"name\":\"n\"},"
	                        "\"status\":{\"phase\":\"C\"}}",
	                        k_pod);
	/* escaped keys and strings; unicode; a scalar where an object was expected is kept whole */
	assert_kept_like_pruned("{\"meta\\u0064ata\":{\"n\\u0061me\":\"\\u00e9\\ud83d\\ude00\\n\"},\"status\":7}",
	                        k_pod);
	/* arrays: each element pruned, non-objects whole */
	assert_kept_like_pruned("[{\"metadata\":{\"name\":\"a\",\"x\":1}},3,\"s\",null,[{\"status\":{}}],true,false]",
	                        k_pod);
	/* no keep: the whole value */
	assert_kept_like_pruned("{\"a\":[1,{\"b\":null}],\"c\":\"\"}", NULL);
	/* a key with a NUL is a shorter C string to cJSON */
	assert_kept_like_pruned("{\"metadata\":{\"name\\u0000x\":1}}", k_pod);
}

static void kept_refuses(void **state)
{
	static const char *bad[] = {
	    "{\"metadata\":{}} x",                    /* trailing garbage */
	    "{\"spec\":{\"a\":01},\"metadata\":{}}",  /* a leading zero, in a skipped value */
	    "{\"spec\":\"\\ud800\",\"metadata\":{}}", /* an unpaired surrogate, skipped */
	    "{\"spec\":\"\\udc00x\"}",                /* a lone low surrogate */
	    "{\"spec\":\"\\q\"}",                     /* an unknown escape */
	    "{\"spec\":[1,],\"metadata\":{}}",        /* a trailing comma */
	    "{\"spec\":tru}",                         /* a bad literal */
	    "{\"metadata\":{\"name\":\"x\"}",         /* unterminated */
	    "{\"metadata\" {}}",                      /* no colon */
	    "{\"spec\":1.}",                          /* no digits after the point */
	    "{\"spec\":1234567890123456789012345678901234567890123456789012345678901234}", /* > 63 chars */
	    "",
	};
	size_t i;
	char deep[2100];
	cJSON *j;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_parse_kept(bad[i], strlen(bad[i]), k_pod, 1000, NULL);
		if (j)
			fail_msg("accepted: %s", bad[i]);
	}
	/* cJSON's nesting limit (1000) holds in skipped values too */
	memset(deep, '[', 1001);
	memset(deep + 1001, ']', 1001);
	assert_null(json_parse_kept(deep, 2002, k_pod, 1000, NULL));
	assert_null(cJSON_ParseWithLength(deep, 2002));
	j = json_parse_kept(deep + 1, 2000, k_pod, 1000, NULL);
	assert_non_null(j);
	cJSON_Delete(j);
}

static void kept_cap_counts_what_is_built(void **state)
{
	char big[64 * 1024];
	size_t n = 0;
	int toobig = -1;
	cJSON *j;
	(void)state;

	/* 10k values in a skipped array cost no memory and pass a cap of 10 */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "{\"spec\":[");
	for (int i = 0; i < 10000; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s0", i ? "," : "");
	n += (size_t)snprintf(big + n, sizeof(big) - n, "],\"metadata\":{\"name\":\"x\"}}");
	j = json_parse_kept(big, n, k_pod, 10, &toobig);
	assert_non_null(j);
	assert_int_equal(toobig, 0);
	assert_string_equal(json_str(j, "metadata.name"), "x");
	cJSON_Delete(j);
	/* the same array where it is kept is refused as too big */
	n = (size_t)snprintf(big, sizeof(big), "{\"status\":{\"restarts\":[");
	for (int i = 0; i < 10000; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s0", i ? "," : "");
	n += (size_t)snprintf(big + n, sizeof(big) - n, "]}}");
	j = json_parse_kept(big, n, k_pod, 100, &toobig);
	assert_null(j);
	assert_int_equal(toobig, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(paths),        cmocka_unit_test(path_keys),
	    cmocka_unit_test(parse_strict), cmocka_unit_test(times),
	    cmocka_unit_test(value_cap),    cmocka_unit_test(kept_equals_pruned),
	    cmocka_unit_test(kept_refuses), cmocka_unit_test(kept_cap_counts_what_is_built),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
