/*
 * Unit tests: lib/pool.c, the small-block allocator under release-check's
 * cJSON trees. The sanitizer and valgrind builds of the binaries use the
 * system allocator (MG_SYSTEM_MALLOC), so this is where the pool itself
 * runs under ASan and memcheck.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/pool.c"

static int teardown(void **state)
{
	(void)state;
	pool_release();
	return 0;
}

/* Every size gets its own bytes, 8-aligned, intact until freed. */
static void sizes_and_contents(void **state)
{
	enum { N = 600 };
	unsigned char *p[N];
	size_t i, j;
	(void)state;

	for (i = 0; i < N; i++) {
		size_t n = i % (POOL_MAX_BLOCK + 40); /* 0 .. past the largest class: malloc'd */
		p[i] = pool_alloc(n);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 8, 0);
		memset(p[i], (int)(i & 0xff), n);
	}
	for (i = 0; i < N; i++) {
		size_t n = i % (POOL_MAX_BLOCK + 40);
		for (j = 0; j < n; j++)
			assert_int_equal(p[i][j], i & 0xff);
	}
	for (i = 0; i < N; i++)
		pool_free(p[i]);
	pool_free(NULL);
}

/* A freed block is reused by the next one of its size: the slabs stop growing. */
static void reuse(void **state)
{
	size_t i, held;
	void *a, *b;
	(void)state;

	a = pool_alloc(64);
	pool_free(a);
	b = pool_alloc(60); /* the same 8-byte class */
	assert_ptr_equal(a, b);
	pool_free(b);
	for (i = 0; i < 10000; i++)
		pool_free(pool_alloc(64));
	held = pool_slab_bytes();
	assert_true(held > 0);
	for (i = 0; i < 100000; i++) {
		void *x = pool_alloc(i % POOL_MAX_BLOCK), *y = pool_alloc(33);
		pool_free(x);
		pool_free(y);
	}
	assert_true(pool_slab_bytes() <= held + 2 * 64 * 1024);
}

/* Many blocks at once: new slabs, none overlapping. */
static void many_live(void **state)
{
	enum { N = 20000 };
	uint32_t **p = malloc(N * sizeof(*p));
	size_t i;
	(void)state;

	assert_non_null(p);
	for (i = 0; i < N; i++) {
		p[i] = pool_alloc(8 + (i % 5) * 8);
		assert_non_null(p[i]);
		p[i][0] = (uint32_t)i;
		p[i][1] = (uint32_t)~i;
	}
	assert_true(pool_slab_bytes() >= 64 * 1024 * 3);
	for (i = 0; i < N; i++) {
		assert_int_equal(p[i][0], (uint32_t)i);
		assert_int_equal(p[i][1], (uint32_t)~i);
		pool_free(p[i]);
	}
	free(p);
}

/* cJSON through the hooks: parse, edit, print, delete. */
static void cjson_trees(void **state)
{
	static const char doc[] =
	    "{\"metadata\":{\"name\":\"web-1\",\"labels\":{\"a\":\"b\"}},"
	    "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\",\"ready\":true}],"
	    "\"message\":\"a message longer than the largest pooled block, so that one string comes "
	    "from malloc: ..........................................................................."
	    "........................................................................................"
	    "...........................................................\"}}";
	cJSON_Hooks hooks = {pool_alloc, pool_free};
	cJSON *j;
	char *s;
	int round;
	(void)state;

	cJSON_InitHooks(&hooks);
	for (round = 0; round < 50; round++) {
		j = cJSON_Parse(doc);
		assert_non_null(j);
		assert_non_null(cJSON_AddStringToObject(j, "extra", "x"));
		s = cJSON_PrintUnformatted(j);
		assert_non_null(s);
		assert_non_null(strstr(s, "\"phase\":\"Running\""));
		assert_non_null(strstr(s, "\"extra\":\"x\""));
		cJSON_free(s);
		cJSON_Delete(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(sizes_and_contents, teardown),
	    cmocka_unit_test_teardown(reuse, teardown),
	    cmocka_unit_test_teardown(many_live, teardown),
	    cmocka_unit_test_teardown(cjson_trees, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
