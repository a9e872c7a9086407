/*
 * Unit tests: lib/watch.c framing and event decoding, lib/kube.c backoff,
 * Retry-After, Status classification and query escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/kubeconfig.c"
#include "../../lib/kube.c"
#include "../../lib/watch.c"

struct lines {
	char got[16][256];
	size_t n;
	int stop_at;
};

static int collect(void *ud, char *p, size_t len)
{
	struct lines *l = ud;
	assert_true(l->n < 16);
	assert_int_equal(strlen(p), len); /* NUL-terminated, no newline */
	snprintf(l->got[l->n++], sizeof(l->got[0]), "%s", p);
	return l->stop_at && (int)l->n == l->stop_at ? 7 : 0;
}

static void framing_split_anywhere(void **state)
{
	static const char stream[] = "{\"a\":1}\n{\"b\":\"\xc3\xa9t\xc3\xa9\"}\r\n\n{\"c\":3}\n{\"partial";
	size_t cut;
	(void)state;
	/* every split point, byte by byte and in two pieces, gives the same lines */
	for (cut = 0; cut <= sizeof(stream) - 1; cut++) {
		struct kbuf line = {.max = 1024};
		struct lines l = {0};
		assert_int_equal(watch_frame(&line, stream, cut, collect, &l), 0);
		assert_int_equal(watch_frame(&line, stream + cut, sizeof(stream) - 1 - cut, collect, &l), 0);
		assert_int_equal(l.n, 3);
		assert_string_equal(l.got[0], "{\"a\":1}");
		assert_string_equal(l.got[1], "{\"b\":\"\xc3\xa9t\xc3\xa9\"}"); /* UTF-8 split mid-character survives */
		assert_string_equal(l.got[2], "{\"c\":3}");
		assert_string_equal(line.data, "{\"partial");
		kbuf_free(&line);
	}
	{
		struct kbuf line = {.max = 1024};
		struct lines l = {0};
		size_t i;
		for (i = 0; i < sizeof(stream) - 1; i++)
			assert_int_equal(watch_frame(&line, stream + i, 1, collect, &l), 0);
		assert_int_equal(l.n, 3);
		kbuf_free(&line);
	}
}

static void framing_caps_and_stops(void **state)
{
	struct kbuf line = {.max = 16};
	struct lines l = {0};
	char big[64];
	(void)state;
	memset(big, 'x', sizeof(big));
	/* a line over the cap is refused, even when it arrives in small pieces */
	assert_int_equal(watch_frame(&line, big, 10, collect, &l), 0);
	assert_int_equal(watch_frame(&line, big, 10, collect, &l), -1);
	assert_int_equal(l.n, 0);
	kbuf_free(&line);
	/* exactly at the cap is fine */
	line.max = 16;
	assert_int_equal(watch_frame(&line, big, 16, collect, &l), 0);
	assert_int_equal(watch_frame(&line, "\n", 1, collect, &l), 0);
	assert_int_equal(l.n, 1);
	kbuf_free(&line);
	/* the callback's stop value is passed through, later lines are not read */
	line.max = 100;
	memset(&l, 0, sizeof(l));
	l.stop_at = 1;
	assert_int_equal(watch_frame(&line, "a\nb\n", 4, collect, &l), 7);
	assert_int_equal(l.n, 1);
	kbuf_free(&line);
}

struct seen {
	int n[5];
	char last_name[64];
	int stop;
};

static int record_cb(void *ctx, size_t idx, enum watch_event ev, const cJSON *obj)
{
	struct seen *s = ctx;
	const char *n = obj ? json_str(obj, "metadata.name") : NULL;
	(void)idx;
	s->n[ev]++;
	if (n)
		snprintf(s->last_name, sizeof(s->last_name), "%s", n);
	return s->stop;
}

static void events_decoded(void **state)
{
	struct watch_spec spec = {.path = "/apis/batch/v1/namespaces/x/jobs", .what = "jobs.batch"};
	struct watch_opts o = {0};
	struct seen s = {0};
	struct kube_error err = {0};
	struct wrun r = {.opts = &o, .cb = record_cb, .ctx = &s, .err = &err};
	struct wstate w = {.spec = &spec, .run = &r};
	char l1[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\"}}}";
	char l2[] = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"15\"}}}";
	char l3[] = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"17\"}}}";
	char l4[] = "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\",\"resourceVersion\":\"18\"}}}";
	char gone[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\","
	              "\"message\":\"too old resource version: 1 (5)\"}}";
	char e500[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,\"message\":\"boom\"}}";
	char junk[] = "{\"type\":\"ADDED\",\"object\":";
	char notype[] = "{\"object\":{}}";
	(void)state;

	assert_int_equal(watch_line(&w, l1, strlen(l1)), 0);
	assert_string_equal(w.rv, "10");
	assert_int_equal(s.n[WATCH_ADDED], 1);
	assert_int_equal(watch_line(&w, l2, strlen(l2)), 0);
	assert_string_equal(w.rv, "15"); /* bookmarks advance the version, no callback */
	assert_int_equal(watch_line(&w, l3, strlen(l3)), 0);
	assert_int_equal(watch_line(&w, l4, strlen(l4)), 0);
	assert_int_equal(s.n[WATCH_MODIFIED], 1);
	assert_int_equal(s.n[WATCH_DELETED], 1);
	assert_string_equal(s.last_name, "c");
	assert_string_equal(w.rv, "18");

	assert_int_equal(watch_line(&w, gone, strlen(gone)), 1);
	assert_int_equal(w.gone, 1);
	assert_int_equal(w.bad_stream, 0);
	w.gone = 0;
	assert_int_equal(watch_line(&w, e500, strlen(e500)), 1);
	assert_int_equal(w.bad_stream, 1);
	assert_int_equal(w.last.http_status, 500);
	w.bad_stream = 0;
	assert_int_equal(watch_line(&w, junk, strlen(junk)), 1);
	assert_int_equal(w.bad_stream, 1);
	w.bad_stream = 0;
	assert_int_equal(watch_line(&w, notype, strlen(notype)), 1);
	assert_int_equal(w.bad_stream, 1);

	/* the callback stops the stream */
	s.stop = 1;
	assert_int_equal(watch_line(&w, l1, strlen(l1)), 1);
	assert_int_equal(r.stop, 1);
}

/* a spec with a keep: what the callback reads, plus what the watch reads itself */
struct taken {
	cJSON *kept[4];
	size_t n;
};

static int take_cb(void *ctx, size_t idx, enum watch_event ev, const cJSON *obj)
{
	struct taken *t = ctx;
	(void)idx;
	if (ev == WATCH_ADDED || ev == WATCH_MODIFIED) {
		cJSON *o = watch_take(obj);
		assert_non_null(o);
		assert_ptr_equal(o, obj);
		assert_null(watch_take(obj)); /* once */
		assert_true(t->n < 4);
		t->kept[t->n++] = o;
	}
	return 0;
}

static void events_kept_and_taken(void **state)
{
	static const struct json_keep k_meta[] = {{"name", NULL}, {NULL, NULL}};
	static const struct json_keep keep[] = {{"metadata", k_meta}, {NULL, NULL}};
	struct watch_spec spec = {.path = "/api/v1/namespaces/x/pods", .what = "pods", .keep = keep};
	struct watch_opts o = {0};
	struct taken t = {0};
	struct kube_error err = {0};
	struct wrun r = {.opts = &o, .cb = take_cb, .ctx = &t, .err = &err};
	struct wstate w = {.spec = &spec, .run = &r};
	char l1[] = "{\"type\":\"ADDED\",\"object\":{\"spec\":{\"x\":[1,2]},\"metadata\":{\"managedFields\":[{}],"
	            "\"name\":\"a\",\"resourceVersion\":\"10\"}}}";
	char bm[] = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"15\"}}}";
	char gone[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"message\":\"too old\"}}";
	char list[] = "{\"metadata\":{\"resourceVersion\":\"20\",\"continue\":\"\"},\"items\":[{\"metadata\":"
	              "{\"name\":\"b\",\"uid\":\"u\"}},{\"metadata\":{\"name\":\"c\"},\"status\":{}}]}";
	char *out;
	size_t i;
	(void)state;

	assert_int_equal(envelope_keeps(&w), 0);
	assert_int_equal(watch_line(&w, l1, strlen(l1)), 0);
	assert_string_equal(w.rv, "10"); /* the keep has no resourceVersion: the watch adds it */
	assert_int_equal(t.n, 1);
	out = cJSON_PrintUnformatted(t.kept[0]);
	assert_string_equal(out, "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\"}}");
	cJSON_free(out);
	assert_int_equal(watch_line(&w, bm, strlen(bm)), 0);
	assert_string_equal(w.rv, "15");
	assert_int_equal(watch_line(&w, gone, strlen(gone)), 1);
	assert_int_equal(w.gone, 1); /* an ERROR's code is read though the keep has none */
	/* a list: items kept, taken one by one while the list is walked */
	w.body.data = list;
	w.body.len = strlen(list);
	list_done(&r, &w);
	w.body.data = NULL;
	w.body.len = 0;
	assert_string_equal(w.rv, "20");
	assert_int_equal(t.n, 3);
	assert_string_equal(json_str(t.kept[1], "metadata.name"), "b");
	assert_null(json_path(t.kept[1], "metadata.uid"));
	assert_string_equal(json_str(t.kept[2], "metadata.name"), "c");
	assert_null(json_path(t.kept[2], "status"));
	for (i = 0; i < t.n; i++)
		cJSON_Delete(t.kept[i]);
	free(w.keeps);
}

static void backoff_bounds(void **state)
{
	struct kube_client kc;
	unsigned n;
	int64_t prev_max = 0;
	(void)state;
	memset(&kc, 0, sizeof(kc));
	kc.rng = 12345;
	for (n = 1; n < 40; n++) {
		int64_t lo = INT64_MAX, hi = 0;
		int i;
		for (i = 0; i < 200; i++) {
			int64_t d = kube_backoff_ms(&kc, n);
			if (d < lo)
				lo = d;
			if (d > hi)
				hi = d;
		}
		assert_true(lo >= 100);
		assert_true(hi <= KUBE_BACKOFF_CAP_MS);
		assert_true(hi >= prev_max / 2); /* grows, then stays capped */
		if (n >= 3)
			assert_true(hi > lo); /* jittered: many waiters spread out */
		prev_max = hi;
	}
	assert_true(prev_max > KUBE_BACKOFF_CAP_MS / 2);
}

static void retry_after(void **state)
{
	(void)state;
	assert_int_equal(kube_parse_retry_after(" 3\r\n", 4), 3000);
	assert_int_equal(kube_parse_retry_after("0", 1), 0);
	assert_int_equal(kube_parse_retry_after("99999999", 8), 3600000);
	assert_int_equal(kube_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 29), -1);
	assert_int_equal(kube_parse_retry_after("", 0), -1);
}

static void status_classification(void **state)
{
	struct kube_error e;
	static const char forbidden[] =
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"jobs.batch \\\"m\\\" is "
	    "forbidden: User \\\"system:serviceaccount:a:b\\\" cannot watch resource "
	    "\\\"jobs\\\"\",\"reason\":\"Forbidden\",\"code\":403}";
	static const struct {
		long status;
		enum kube_rc rc;
	} map[] = {{401, KUBE_EUNAUTHORIZED}, {403, KUBE_EFORBIDDEN},  {404, KUBE_ENOTFOUND}, {409, KUBE_ECONFLICT},
	           {410, KUBE_EGONE},         {422, KUBE_EINVALID},    {400, KUBE_EINVALID},  {429, KUBE_EUNAVAILABLE},
	           {500, KUBE_EUNAVAILABLE},  {503, KUBE_EUNAVAILABLE}};
	size_t i;
	(void)state;
	kube_http_error(403, forbidden, strlen(forbidden), &e);
	assert_int_equal(e.rc, KUBE_EFORBIDDEN);
	assert_string_equal(e.reason, "Forbidden");
	assert_non_null(strstr(e.message, "cannot watch resource \"jobs\""));
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		kube_http_error(map[i].status, "<html>not json", 14, &e);
		assert_int_equal(e.rc, map[i].rc);
		assert_int_equal(e.http_status, map[i].status);
		assert_non_null(strstr(e.message, "HTTP"));
	}
	assert_int_equal(kube_curl_error(CURLE_PEER_FAILED_VERIFICATION, "bad cert", "https://x", &e), KUBE_ETLS);
	assert_non_null(strstr(e.message, "TLS verification"));
	assert_int_equal(kube_curl_error(CURLE_COULDNT_CONNECT, "", "https://x", &e), KUBE_EUNAVAILABLE);
	/* issue 15 item 15: a redirect is the server's misconfiguration, a 204
	 * where a body was due is a protocol error, not "rejected" */
	kube_http_error(302, "", 0, &e);
	assert_int_equal(e.rc, KUBE_EREDIRECT);
	assert_non_null(strstr(e.message, "redirect"));
	kube_http_error(204, "", 0, &e);
	assert_int_equal(e.rc, KUBE_EPROTO);
	/* a malformed server URL is a configuration error at once */
	assert_int_equal(kube_curl_error(CURLE_URL_MALFORMAT, "", "https://a b", &e), KUBE_ECONFIG);
	/* a bad client key is not the CA's fault (issue 15 item 1) */
	assert_int_equal(kube_curl_error(CURLE_SSL_CERTPROBLEM, "Error parsing private key", "https://x", &e),
	                 KUBE_ETLS);
	assert_null(strstr(e.message, "certificate-authority"));
	assert_non_null(strstr(e.message, "client-key"));
}

/* The one result -> exit code mapping of wait-for-job and release-check. */
static void exit_code_mapping(void **state)
{
	static const struct {
		enum kube_rc rc;
		long status;
		const char *reason;
		unsigned flags;
		int code;
	} map[] = {
	    {KUBE_OK, 0, "", 0, 0},
	    {KUBE_ETIMEOUT, 0, "", 0, 2},
	    {KUBE_ETIMEOUT, 0, "Unavailable", 0, 69},
	    {KUBE_ETIMEOUT, 0, "", KUBE_EXIT_CHECK_ONCE, 69},
	    {KUBE_EFORBIDDEN, 403, "Forbidden", 0, 77},
	    {KUBE_EUNAUTHORIZED, 401, "", 0, 77},
	    {KUBE_ECONFIG, 0, "", 0, 78},
	    {KUBE_ENOCONFIG, 0, "", 0, 78},
	    {KUBE_ETLS, 0, "", 0, 78},
	    {KUBE_EINVALID, 400, "BadRequest", KUBE_EXIT_USER_SELECTOR, 64},
	    {KUBE_EINVALID, 400, "BadRequest", 0, 69},
	    {KUBE_EINVALID, 422, "Invalid", KUBE_EXIT_USER_SELECTOR, 69},
	    {KUBE_EREDIRECT, 302, "", KUBE_EXIT_USER_SELECTOR, 69},
	    {KUBE_EPROTO, 204, "", 0, 69},
	    {KUBE_EUNAVAILABLE, 503, "", 0, 69},
	    {KUBE_ETOOBIG, 0, "", 0, 69},
	    {KUBE_ENOTFOUND, 404, "", 0, 69},
	    {KUBE_ENOMEM, 0, "", 0, 69},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		struct kube_error e;
		memset(&e, 0, sizeof(e));
		e.rc = map[i].rc;
		e.http_status = map[i].status;
		snprintf(e.reason, sizeof(e.reason), "%s", map[i].reason);
		if (kube_exit_code(map[i].rc, &e, map[i].flags) != map[i].code)
			fail_msg("case %zu: rc %d status %ld -> %d, want %d", i, map[i].rc, map[i].status,
			         kube_exit_code(map[i].rc, &e, map[i].flags), map[i].code);
	}
}

/* Issue 15 item 11: API text cannot drive the terminal or forge log lines. */
static void sanitize(void **state)
{
	static const char status[] = "{\"kind\":\"Status\",\"message\":\"no\\u001b]0;pwned\\u0007\\nwait-for-job: job "
	                             "succeeded\",\"reason\":\"Bad\\u001b[31m\",\"code\":400}";
	char b[128];
	struct kube_error e;
	(void)state;
	assert_string_equal(log_safe("a\x1b[2Jb", b, sizeof(b)), "a\\x1b[2Jb");
	assert_string_equal(log_safe("csi\xc2\x9b"
	                             "31m",
	                             b, sizeof(b)),
	                    "csi\\x9b31m");
	assert_string_equal(log_safe("caf\xc3\xa9 \xe2\x9c\x93", b, sizeof(b)), "caf\xc3\xa9 \xe2\x9c\x93");
	assert_string_equal(log_safe("bad\xff\xc2", b, sizeof(b)), "bad\\xff\\xc2");
	assert_string_equal(log_safe("l1\nl2\r\x7f", b, sizeof(b)), "l1\\x0al2\\x0d\\x7f");
	log_sanitize(b, sizeof(b), "l1\n\tl2\x1b", 1);
	assert_string_equal(b, "l1\n\tl2\\x1b");
	log_sanitize(b, 6, "\x1b\x1b\x1b", 0); /* truncates, never overflows */
	assert_true(strlen(b) < 6);
	kube_http_error(400, status, strlen(status), &e);
	assert_null(strchr(e.message, '\x1b'));
	assert_null(strchr(e.message, '\n'));
	assert_null(strchr(e.reason, '\x1b'));
	assert_non_null(strstr(e.message, "\\x1b]0;pwned"));
}

static int64_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A kubeconfig in a fresh directory whose user runs this plugin script. */
static void plugin_client(char *dir, const char *script, struct kube_client **kc)
{
	struct kube_conn_opts o = {0};
	struct kube_error err;
	char p[256];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/plugin.sh", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(script, f);
	fclose(f);
	assert_int_equal(chmod(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/config", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	      "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
	      "users:\n- name: u\n  user:\n    exec: {command: ./plugin.sh}\n",
	      f);
	fclose(f);
	o.kubeconfig = p;
	assert_int_equal(kube_client_new(&o, kc, &err), KUBE_OK);
}

/*
 * Issue 15 item 2: the watch loop fetches an exec credential without
 * blocking (a plugin taking a second must not freeze the other streams),
 * and a plugin still running when the client is freed is killed.
 */
static void exec_refresh_async(void **state)
{
	char dir[64] = "/tmp/mg-async-XXXXXX", cmd[128];
	struct kube_client *kc;
	struct kube_error err;
	int64_t t0;
	int rc, calls = 0;
	(void)state;

	plugin_client(dir,
	              "#!/bin/sh\nsleep 1\nprintf '{\"kind\":\"ExecCredential\",\"apiVersion\":"
	              "\"client.authentication.k8s.io/v1beta1\",\"status\":{\"token\":\"async-tok\"}}'\n",
	              &kc);
	t0 = mono_now();
	assert_int_equal(kube_refresh_async(kc, &err), KUBE_PENDING);
	assert_true(mono_now() - t0 < 200);
	while ((rc = kube_refresh_async(kc, &err)) == KUBE_PENDING && mono_now() - t0 < 10000) {
		calls++;
		usleep(20000);
	}
	assert_int_equal(rc, KUBE_OK);
	assert_true(calls > 5); /* it did not block */
	assert_string_equal(kc->token, "async-tok");
	assert_int_equal(kube_refresh_async(kc, &err), KUBE_OK); /* nothing due */
	kube_client_free(kc);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);

	snprintf(dir, sizeof(dir), "/tmp/mg-async-XXXXXX");
	plugin_client(dir, "#!/bin/sh\nexec sleep 30\n", &kc);
	assert_int_equal(kube_refresh_async(kc, &err), KUBE_PENDING);
	t0 = mono_now();
	kube_client_free(kc); /* kills the plugin's group, reaps it */
	assert_true(mono_now() - t0 < 2000);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* PEM keys need their NUL inside the length (mbedTLS); DER keys must not get one. */
static void key_blob_len(void **state)
{
	static const char pem[] = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
	static const char der[] = "\x30\x77\x02\x01";
	(void)state;
	assert_int_equal(kube_key_blob_len(pem, strlen(pem)), strlen(pem) + 1);
	assert_int_equal(kube_key_blob_len(der, 4), 4);
	assert_int_equal(kube_key_blob_len("", 0), 0);
	assert_int_equal(kube_key_blob_len("Bag Attributes\n-----BEGIN PRIVATE KEY-----\n", 43), 44);
}

static void query_escape(void **state)
{
	char b[64];
	(void)state;
	assert_string_equal(kube_query_escape("app in (a,b),x!=y", b, sizeof(b)), "app%20in%20%28a%2Cb%29%2Cx%21%3Dy");
	assert_string_equal(kube_query_escape("metadata.name=m-1", b, sizeof(b)), "metadata.name%3Dm-1");
	assert_null(kube_query_escape("=====", b, 10));
}

static void kbuf_cap(void **state)
{
	struct kbuf b = {.max = 8};
	(void)state;
	assert_int_equal(kbuf_append(&b, "12345678", 8), 0);
	assert_int_equal(kbuf_append(&b, "9", 1), -1);
	assert_int_equal(b.toobig, 1);
	assert_int_equal(kbuf_append(&b, "", 0), -1); /* sticky until reset */
	kbuf_reset(&b);
	assert_int_equal(kbuf_append(&b, "ab", 2), 0);
	assert_string_equal(b.data, "ab");
	kbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(framing_split_anywhere),
	    cmocka_unit_test(framing_caps_and_stops),
	    cmocka_unit_test(events_decoded),
	    cmocka_unit_test(events_kept_and_taken),
	    cmocka_unit_test(backoff_bounds),
	    cmocka_unit_test(retry_after),
	    cmocka_unit_test(status_classification),
	    cmocka_unit_test(query_escape),
	    cmocka_unit_test(kbuf_cap),
	    cmocka_unit_test(exit_code_mapping),
	    cmocka_unit_test(key_blob_len),
	    cmocka_unit_test(sanitize),
	    cmocka_unit_test(exec_refresh_async),
	};
	log_init("test", LOG_TEXT, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
