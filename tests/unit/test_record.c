/* Unit tests: lib/record.c - the one outcome-record codec, encode and decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/record.c"

static void round_trip(void **state)
{
	struct rec_outcome o = {
	    .reason = REC_SIGNALED,
	    .exit_code = 137,
	    .signal = 9,
	    .started_ms = 1700000000000LL,
	    .finished_ms = 1700000012300LL,
	    .job = "app-migrate-12",
	    .pod = "app-migrate-12-x7k2p",
	    .attempt = 2,
	    .output_tail = "line one\nline \"two\" \xc3\xa9",
	};
	struct rec_view v;
	char *j = rec_json(&o, 1);

	(void)state;
	assert_non_null(j);
	assert_int_equal(rec_decode(j, strlen(j), &v), 0);
	assert_false(v.succeeded);
	assert_string_equal(v.reason, "Signaled");
	assert_int_equal(v.exit_code, 137);
	assert_int_equal(v.signal, 9);
	assert_true(v.duration > 12.29 && v.duration < 12.31);
	assert_string_equal(v.started_at, "2023-11-14T22:13:20Z");
	assert_string_equal(v.finished_at, "2023-11-14T22:13:32Z");
	assert_string_equal(v.job, "app-migrate-12");
	assert_string_equal(v.pod, "app-migrate-12-x7k2p");
	assert_int_equal(v.attempt, 2);
	assert_string_equal(v.output_tail, o.output_tail);
	assert_int_equal(rec_parse_attempt(j), 2);
	free(j);

	/* success: no signal (null), no tail on the stdout line, job and pod may be null */
	o = (struct rec_outcome){.reason = REC_EXITED, .started_ms = 1, .finished_ms = 1, .attempt = 1};
	j = rec_json(&o, 0);
	assert_null(strstr(j, "outputTail"));
	assert_non_null(strstr(j, "\"signal\":null"));
	assert_int_equal(rec_decode(j, strlen(j), &v), 0);
	assert_true(v.succeeded);
	assert_int_equal(v.signal, -1);
	assert_string_equal(v.job, "");
	assert_string_equal(v.output_tail, "");
	free(j);

	/* every reason has its name; a lost lock is its own */
	o.reason = REC_LOCK_LOST;
	o.exit_code = 75;
	j = rec_json(&o, 1);
	assert_int_equal(rec_decode(j, strlen(j), &v), 0);
	assert_false(v.succeeded);
	assert_string_equal(v.reason, "LockLost");
	free(j);
	assert_string_equal(rec_reason_name((enum rec_reason)99), "Unknown");
}

static void capped_and_trimmed(void **state)
{
	static char tail[9000];
	struct rec_outcome o = {.reason = REC_EXITED, .exit_code = 1, .attempt = 1, .output_tail = tail};
	struct rec_view v;
	char *j;

	(void)state;
	for (size_t i = 0; i < sizeof(tail) - 1; i++)
		tail[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
	j = rec_json_capped(&o, 4096);
	assert_true(strlen(j) <= 4096);
	assert_int_equal(rec_decode(j, strlen(j), &v), 0);
	/* the newest output is kept, from a line start */
	assert_true(strlen(v.output_tail) > 3000);
	assert_string_equal(v.output_tail + strlen(v.output_tail) - 10, tail + sizeof(tail) - 11);
	free(j);
}

static void not_a_record(void **state)
{
	struct rec_view v;
	const char *bad[] = {"", "not json", "[1]", "{}", "{\"status\":\"running\"}", "{\"status\":5}"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rec_decode(bad[i], strlen(bad[i]), &v), -1);
	/* not NUL-terminated: only len bytes are read */
	assert_int_equal(rec_decode("{\"status\":\"failed\"}garbage", 19, &v), 0);
	assert_int_equal(rec_parse_attempt(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(capped_and_trimmed),
	    cmocka_unit_test(not_a_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
