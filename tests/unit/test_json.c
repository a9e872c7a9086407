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
	assert_int_equal(json_condition_true(j, "Complete"), 1);
	assert_int_equal(json_condition_true(j, "Failed"), 0);
	assert_null(json_condition(j, "complete")); /* case-sensitive */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(paths),
	    cmocka_unit_test(parse_strict),
	    cmocka_unit_test(times),
	    cmocka_unit_test(value_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
