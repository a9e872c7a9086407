/* Unit tests: lib/json.c - lookups and RFC 3339 time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
