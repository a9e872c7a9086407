/* Unit tests: migrate-runner/tail.c - the bounded output tail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/record.c"
#include "../../migrate-runner/tail.c"

static char *text(struct tail *t, size_t max)
{
	char *s = tail_text(t, max);
	assert_non_null(s);
	return s;
}

static void keeps_last_lines(void **state)
{
	struct tail *t = tail_new(3, 64);
	char *s;

	(void)state;
	assert_non_null(t);
	s = text(t, 100);
	assert_string_equal(s, "");
	free(s);
	tail_feed(t, 0, "one\ntwo\nthr", 11);
	tail_feed(t, 0, "ee\nfour\n", 8);
	s = text(t, 100);
	assert_string_equal(s, "two\nthree\nfour");
	free(s);
	tail_feed(t, 0, "five", 4); /* unterminated: only after flush */
	s = text(t, 100);
	assert_string_equal(s, "two\nthree\nfour");
	free(s);
	tail_flush(t);
	s = text(t, 100);
	assert_string_equal(s, "three\nfour\nfive");
	free(s);
	tail_free(t);
}

static void streams_never_spliced(void **state)
{
	struct tail *t = tail_new(10, 64);
	char *s;

	(void)state;
	tail_feed(t, 0, "stdout-a", 8);
	tail_feed(t, 1, "stderr-a\nstderr-b", 17);
	tail_feed(t, 0, "-end\n", 5);
	tail_flush(t);
	s = text(t, 1000);
	assert_string_equal(s, "stderr-a\nstdout-a-end\nstderr-b");
	free(s);
	tail_feed(t, 2, "ignored\n", 8); /* bad stream index */
	tail_free(t);
}

static void long_lines_are_cut(void **state)
{
	struct tail *t = tail_new(2, 8);
	char *s;

	(void)state;
	tail_feed(t, 0, "0123456789abcdef\nok\n", 20);
	s = text(t, 100);
	assert_string_equal(s, "01234567\nok");
	free(s);
	tail_free(t);
	assert_null(tail_new(0, 10));
	assert_null(tail_new(10, 2));
}

static void invalid_utf8_and_nul(void **state)
{
	struct tail *t = tail_new(4, 64);
	char *s;
	const char in[] = "caf\xc3\xa9 \xff\xfe x\0y \xe2\x82 \xed\xa0\x80\n";

	(void)state;
	tail_feed(t, 1, in, sizeof(in) - 1);
	s = text(t, 100);
	/* é kept; 0xff 0xfe, NUL, truncated 3-byte seq, surrogate -> '?' */
	assert_string_equal(s, "caf\xc3\xa9 ?? x?y ?? ???");
	free(s);
	tail_free(t);
}

static void byte_cap_from_the_front(void **state)
{
	struct tail *t = tail_new(10, 64);
	char *s;
	char buf[64];

	(void)state;
	tail_feed(t, 0, "aaaa\nbbbb\ncccc\n", 15);
	s = text(t, 9);
	assert_string_equal(s, "bbbb\ncccc"); /* whole lines first */
	free(s);
	s = text(t, 3);
	assert_string_equal(s, "ccc"); /* no line fits: the newest bytes */
	free(s);
	/* never split a UTF-8 character */
	snprintf(buf, sizeof(buf), "x\xc3\xa9\xc3\xa9");
	assert_int_equal(rec_trim_front(buf, 3), 2);
	assert_string_equal(buf, "\xc3\xa9");
	snprintf(buf, sizeof(buf), "short");
	assert_int_equal(rec_trim_front(buf, 10), 5);
	tail_free(t);
}

static void many_lines_fast(void **state)
{
	struct tail *t = tail_new(20, 1024);
	char line[64];
	char *s;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		tail_feed(t, i % 2, line, (size_t)n);
	}
	s = text(t, 4096);
	assert_non_null(strstr(s, "line 199999"));
	assert_null(strstr(s, "line 199979\n"));
	assert_non_null(strstr(s, "line 199980"));
	free(s);
	tail_free(t);
}

/* Big chunks skip lines that could not survive: same tail as byte by byte. */
static void big_chunks_same_as_bytes(void **state)
{
	char *in = malloc(200000), *a, *b;
	size_t n = 0, off = 0;
	unsigned seed = 7;
	struct tail *t1 = tail_new(5, 32), *t2 = tail_new(5, 32);

	(void)state;
	while (n < 199000) {
		size_t len;
		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % 70; /* some lines longer than a slot, some empty */
		for (size_t i = 0; i < len; i++)
			in[n + i] = (char)('a' + (n + i) % 26);
		n += len;
		in[n++] = '\n';
	}
	memcpy(in + n, "partial", 7); /* and an unfinished last line */
	n += 7;
	/* after every chunk, the ring equals the one fed byte by byte */
	while (off < n) {
		size_t chunk;
		seed = seed * 1103515245u + 12345u;
		chunk = 1 + (seed >> 16) % 9000;
		if (chunk > n - off)
			chunk = n - off;
		tail_feed(t1, 0, in + off, chunk);
		for (size_t i = 0; i < chunk; i++)
			tail_feed(t2, 0, in + off + i, 1); /* never skips */
		off += chunk;
		a = text(t1, 4096);
		b = text(t2, 4096);
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	tail_flush(t1);
	tail_flush(t2);
	a = text(t1, 4096);
	b = text(t2, 4096);
	assert_true(strlen(a) > 20);
	assert_string_equal(a, b);
	free(a);
	free(b);
	tail_free(t1);
	tail_free(t2);
	free(in);
}

static void redacts(const char *in, const char *want)
{
	char *got = tail_redact(in);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* Issue 15 item 14: obvious secrets never reach the record. */
static void secrets_are_redacted(void **state)
{
	struct tail *t = tail_new(5, 256);
	char *s;

	(void)state;
	redacts("connecting to postgres://app:hunter2@db:5432/app", "connecting to postgres://app:***@db:5432/app");
	redacts("postgresql://:pw@db/x and http://host/path", "postgresql://:***@db/x and http://host/path");
	redacts("PGPASSWORD=s3cr3t psql", "PGPASSWORD=*** psql");
	redacts("url?user=a&password=p4ss&x=1", "url?user=a&password=***&x=1");
	redacts("{\"token\": \"abc.def\", \"name\": \"n\"}", "{\"token\": \"***\", \"name\": \"n\"}");
	redacts("client_secret: xyz", "client_secret: ***");
	redacts("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***");
	redacts("header authorization=Basic dXNlcjpwYXNz", "header authorization=Basic ***");
	redacts("sent bearer abc123 to it", "sent bearer *** to it");
	redacts("API_KEY='k e y' done", "API_KEY='***' done");
	/* left alone */
	redacts("migrated 12 tables: ok; time=3s", "migrated 12 tables: ok; time=3s");
	redacts("see https://example.com:8443/x", "see https://example.com:8443/x");
	redacts("password=", "password=");
	redacts("", "");
	{
		const char *out = "ok\nDATABASE_URL=mysql://root:rootpw@db/app\n";
		tail_feed(t, 0, out, strlen(out));
	}
	s = tail_text(t, 4096);
	assert_null(strstr(s, "rootpw"));
	assert_non_null(strstr(s, "mysql://root:***@db/app"));
	free(s);
	tail_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(keeps_last_lines),         cmocka_unit_test(streams_never_spliced),
	    cmocka_unit_test(long_lines_are_cut),       cmocka_unit_test(invalid_utf8_and_nul),
	    cmocka_unit_test(byte_cap_from_the_front),  cmocka_unit_test(many_lines_fast),
	    cmocka_unit_test(big_chunks_same_as_bytes), cmocka_unit_test(secrets_are_redacted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
