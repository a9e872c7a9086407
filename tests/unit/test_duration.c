/* Unit tests: lib/duration.c - strict parsing, never a silent default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../lib/duration.c"

static void accepts(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;
	} ok[] = {
	    {"0", 0},  {"90s", 90000},    {"5m", 300000},   {"1h30m", 5400000}, {"250ms", 250}, {"1h2m3s4ms", 3723004},
	    {"0s", 0}, {"24h", 86400000}, {"1m30s", 90000},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int64_t ms = -1;
		assert_int_equal(dur_parse(ok[i].in, &ms, NULL, 0), 0);
		assert_int_equal(ms, ok[i].ms);
	}
}

static void rejects(void **state)
{
	static const char *const bad[] = {
	    "",    "10",  "abc", "5 m", "-5s",  "1.5s", "5x", "s", "1m1h", "1s1s", "1ms1s", "5mm", "99999999999999999h",
	    "1h ", " 1h", "1d",  "5M",  "1e3s",
	};
	size_t i;
	char err[128];
	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = 42;
		err[0] = '\0';
		assert_int_equal(dur_parse(bad[i], &ms, err, sizeof(err)), -1);
		assert_int_equal(ms, 42);
		assert_non_null(strstr(err, "invalid duration"));
	}
}

static void formats(void **state)
{
	char b[32];
	(void)state;
	assert_string_equal(dur_format(0, b, sizeof(b)), "0s");
	assert_string_equal(dur_format(90000, b, sizeof(b)), "1m30s");
	assert_string_equal(dur_format(3600000, b, sizeof(b)), "1h");
	assert_string_equal(dur_format(1500, b, sizeof(b)), "1.500s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(accepts),
	    cmocka_unit_test(rejects),
	    cmocka_unit_test(formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
