/*
 * test_release_main.c - release-check's main.c: options, the object store
 * fed by watch events (pruning, relists), change lines. (The verdict rules: test_verdict.c;
 * the whole binary against kubesim: tests/e2e/test_release_check.py.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/duration.c"
#include "../../lib/cli.c"
#include "../../lib/names.c"
#include "../../lib/kubeconfig.c"
#include "../../lib/kube.c"
#include "../../lib/watch.c"
#include "rc_sources.h"
#include "../../release-check/main.c"

static int parse(struct opts *o, ...)
{
	char *argv[32];
	int argc = 0, rc;
	va_list ap;
	const char *a;
	FILE *saved = stderr;

	argv[argc++] = (char *)"release-check";
	va_start(ap, o);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	optind = 0; /* glibc: reinitialise getopt */
	stderr = fopen("/dev/null", "w");
	rc = parse_args(argc, argv, o);
	fclose(stderr);
	stderr = saved;
	return rc;
}

static void t_defaults(void **state)
{
	struct opts o;
	(void)state;
	assert_int_equal(parse(&o, "app", NULL), -1);
	assert_string_equal(o.release, "app");
	assert_int_equal(o.timeout_ms, 600000);
	assert_int_equal(o.pull_grace_ms, 60000);
	assert_int_equal(o.logs, 20);
	assert_int_equal(o.chunk, 500); /* kubectl's --chunk-size */
	assert_int_equal(o.json, 0);
	assert_int_equal(o.no_helm, 0);
	assert_null(o.selector); /* main fills in app.kubernetes.io/instance=RELEASE */
	assert_null(o.ns);
}

static void t_options(void **state)
{
	struct opts o;
	(void)state;
	assert_int_equal(parse(&o, "-n", "shop", "--kubeconfig", "/k", "--context", "c", "-l", "a=b", "--timeout",
	                       "1h30m", "--output", "json", "--logs", "0", "--image-pull-grace", "5s", "--no-helm",
	                       "--chunk-size", "0", "-v", "my.rel-1", NULL),
	                 -1);
	assert_string_equal(o.ns, "shop");
	assert_string_equal(o.kubeconfig, "/k");
	assert_string_equal(o.context, "c");
	assert_string_equal(o.selector, "a=b");
	assert_int_equal(o.timeout_ms, 5400000);
	assert_int_equal(o.json, 1);
	assert_int_equal(o.logs, 0);
	assert_int_equal(o.pull_grace_ms, 5000);
	assert_int_equal(o.no_helm, 1);
	assert_int_equal(o.chunk, 0);
	assert_int_equal(o.level, LOG_DEBUG);
	assert_string_equal(o.release, "my.rel-1");
	assert_int_equal(parse(&o, "--timeout", "0", "--output", "text", "-n", "", "app", NULL), -1);
	assert_int_equal(o.timeout_ms, 0);
	assert_int_equal(o.json, 0);
	assert_null(o.ns);
}

static void t_usage_errors(void **state)
{
	struct opts o;
	(void)state;
	assert_int_equal(parse(&o, NULL), 64);
	assert_int_equal(parse(&o, "a", "b", NULL), 64);
	assert_int_equal(parse(&o, "--timeout", "5", "app", NULL), 64);
	assert_int_equal(parse(&o, "--timeout", "-1s", "app", NULL), 64);
	assert_int_equal(parse(&o, "--image-pull-grace", "x", "app", NULL), 64);
	assert_int_equal(parse(&o, "--output", "yaml", "app", NULL), 64);
	assert_int_equal(parse(&o, "--logs", "x", "app", NULL), 64);
	assert_int_equal(parse(&o, "--logs", "10001", "app", NULL), 64);
	assert_int_equal(parse(&o, "--logs", "", "app", NULL), 64);
	assert_int_equal(parse(&o, "--chunk-size", "-1", "app", NULL), 64);
	assert_int_equal(parse(&o, "--chunk-size", "100001", "app", NULL), 64);
	assert_int_equal(parse(&o, "--chunk-size", "5k", "app", NULL), 64);
	assert_int_equal(parse(&o, "--chunk-size", "", "app", NULL), 64);
	assert_int_equal(parse(&o, "-l", "", "app", NULL), 64);
	assert_int_equal(parse(&o, "-x", "app", NULL), 64);
	assert_int_equal(parse(&o, "--nope", "app", NULL), 64);
	assert_int_equal(parse(&o, "app", "-n", NULL), 64); /* '+': options stop at RELEASE */
	assert_int_equal(parse(&o, "-n", NULL), 64);
}

/* the rule itself is tested in test_names.c; here: that RELEASE is checked, at 53 */
/* RELEASE_CHECK_* like the other tools' variables; the command line wins; bad values name the variable. */
static void t_environment(void **state)
{
	struct opts o;
	(void)state;
	setenv("RELEASE_CHECK_RELEASE", "shop", 1);
	setenv("RELEASE_CHECK_NAMESPACE", "prod", 1);
	setenv("RELEASE_CHECK_TIMEOUT", "90s", 1);
	setenv("RELEASE_CHECK_MIN_READY", "10s", 1);
	setenv("RELEASE_CHECK_OUTPUT", "json", 1);
	setenv("RELEASE_CHECK_LOGS", "5", 1);
	setenv("RELEASE_CHECK_NO_HELM", "true", 1);
	setenv("RELEASE_CHECK_CHUNK_SIZE", "50", 1);
	assert_int_equal(parse(&o, NULL), -1);
	assert_int_equal(o.chunk, 50);
	assert_string_equal(o.release, "shop");
	assert_string_equal(o.ns, "prod");
	assert_int_equal(o.timeout_ms, 90000);
	assert_int_equal(o.min_ready_ms, 10000);
	assert_int_equal(o.json, 1);
	assert_int_equal(o.logs, 5);
	assert_int_equal(o.no_helm, 1);
	assert_int_equal(parse(&o, "-n", "dev", "--timeout", "1m", "--output", "text", "app", NULL), -1);
	assert_string_equal(o.release, "app");
	assert_string_equal(o.ns, "dev");
	assert_int_equal(o.timeout_ms, 60000);
	assert_int_equal(o.json, 0);
	setenv("RELEASE_CHECK_MIN_READY", "soon", 1);
	assert_int_equal(parse(&o, NULL), 64);
	unsetenv("RELEASE_CHECK_MIN_READY");
	setenv("RELEASE_CHECK_CHUNK_SIZE", "many", 1);
	assert_int_equal(parse(&o, NULL), 64);
	unsetenv("RELEASE_CHECK_CHUNK_SIZE");
	setenv("RELEASE_CHECK_NO_HELM", "yes", 1);
	assert_int_equal(parse(&o, NULL), 64);
	unsetenv("RELEASE_CHECK_RELEASE");
	unsetenv("RELEASE_CHECK_NAMESPACE");
	unsetenv("RELEASE_CHECK_TIMEOUT");
	unsetenv("RELEASE_CHECK_OUTPUT");
	unsetenv("RELEASE_CHECK_LOGS");
	unsetenv("RELEASE_CHECK_NO_HELM");
	assert_int_equal(parse(&o, NULL), 64); /* missing RELEASE */
}

static void t_quiet_and_min_ready(void **state)
{
	struct opts o;
	(void)state;
	assert_int_equal(parse(&o, "app", NULL), -1);
	assert_int_equal(o.quiet, 0);
	assert_int_equal(o.min_ready_ms, 0); /* the default: see release-check(1) */
	assert_int_equal(parse(&o, "-q", "--min-ready", "15s", "app", NULL), -1);
	assert_int_equal(o.quiet, 1);
	assert_int_equal(o.min_ready_ms, 15000);
	assert_int_equal(parse(&o, "--quiet", "--min-ready", "x", "app", NULL), 64);
}

static void t_release_names(void **state)
{
	struct opts o;
	(void)state;
	assert_int_equal(parse(&o, "my-app.v2", NULL), -1);
	assert_int_equal(parse(&o, "12345678901234567890123456789012345678901234567890123", NULL), -1);
	assert_int_equal(parse(&o, "123456789012345678901234567890123456789012345678901234", NULL), 64);
	assert_int_equal(parse(&o, "App", NULL), 64);
	assert_int_equal(parse(&o, "a..b", NULL), 64);
	assert_int_equal(parse(&o, "a=b", NULL), 64);
}

static struct check *new_check(void)
{
	struct check *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->st = verdict_store_new();
	assert_non_null(c->st);
	return c;
}

static void free_check(struct check *c)
{
	verdict_result_free(&c->res);
	verdict_store_free(c->st);
	free(c);
}

static cJSON *J(const char *s)
{
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	return j;
}

/* The i-th stored object of a kind (the store's insertion order). */
static const cJSON *stored(struct check *c, size_t k, size_t i)
{
	const struct vobj *o = c->st->head[k];
	while (o && i--)
		o = o->next;
	assert_non_null(o);
	return o->obj;
}

static void t_store(void **state)
{
	struct check *c = new_check();
	cJSON *a = J(
	    "{\"metadata\":{\"name\":\"p\",\"uid\":\"1\",\"managedFields\":[{}]},\"status\":{\"phase\":\"Pending\"}}");
	cJSON *b = J("{\"metadata\":{\"name\":\"p\",\"uid\":\"1\"},\"status\":{\"phase\":\"Running\"}}");
	cJSON *other = J("{\"metadata\":{\"name\":\"p\",\"uid\":\"2\"}}");
	cJSON *num;
	(void)state;

	assert_int_equal(store_event(c, K_PODS, WATCH_RESET, NULL), 0);
	assert_int_equal(c->synced[K_PODS], 0);
	assert_int_equal(store_event(c, K_PODS, WATCH_ADDED, a), 0);
	assert_int_equal(verdict_store_count(c->st, VERDICT_PODS), 1);
	assert_null(json_path(stored(c, K_PODS, 0), "metadata.managedFields"));
	assert_int_equal(store_event(c, K_PODS, WATCH_MODIFIED, b), 0);
	assert_int_equal(verdict_store_count(c->st, VERDICT_PODS), 1);
	assert_string_equal(json_str(stored(c, K_PODS, 0), "status.phase"), "Running");
	/* same name, new uid: a new object (recreated pod) */
	assert_int_equal(store_event(c, K_PODS, WATCH_ADDED, other), 0);
	assert_int_equal(verdict_store_count(c->st, VERDICT_PODS), 2);
	assert_int_equal(store_event(c, K_PODS, WATCH_DELETED, a), 0);
	assert_int_equal(verdict_store_count(c->st, VERDICT_PODS), 1);
	assert_string_equal(json_str(stored(c, K_PODS, 0), "metadata.uid"), "2");
	assert_int_equal(store_event(c, K_PODS, WATCH_DELETED, a), 0); /* unknown: no-op */
	assert_int_equal(store_event(c, K_PODS, WATCH_SYNCED, NULL), 0);
	assert_int_equal(c->synced[K_PODS], 1);
	num = J("7");
	assert_int_equal(store_event(c, K_PODS, WATCH_ADDED, num), 0); /* not an object: ignored */
	cJSON_Delete(num);
	assert_int_equal(verdict_store_count(c->st, VERDICT_PODS), 1);
	/* a relist that does not deliver it: gone at its end */
	assert_int_equal(store_event(c, K_PODS, WATCH_RESET, NULL), 0);
	assert_int_equal(c->synced[K_PODS], 0);
	assert_int_equal(verdict_store_count(c->st, VERDICT_PODS), 1);
	assert_int_equal(store_event(c, K_PODS, WATCH_SYNCED, NULL), 0);
	assert_int_equal(verdict_store_count(c->st, VERDICT_PODS), 0);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(other);
	free_check(c);
}

static void t_store_never_keeps_release_payload(void **state)
{
	struct check *c = new_check();
	cJSON *s = J("{\"metadata\":{\"name\":\"sh.helm.release.v1.app.v1\",\"uid\":\"s\",\"labels\":{\"owner\":"
	             "\"helm\",\"name\":\"app\"},\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
	             "\"{}\",\"k\":\"v\"}},\"data\":{\"release\":\"SECRET\"},\"stringData\":{\"x\":\"y\"}}");
	char *txt;
	(void)state;
	assert_int_equal(store_event(c, K_RELEASES, WATCH_ADDED, s), 0);
	txt = cJSON_PrintUnformatted(stored(c, K_RELEASES, 0));
	assert_null(strstr(txt, "SECRET"));
	assert_null(strstr(txt, "stringData"));
	assert_null(strstr(txt, "last-applied"));
	assert_null(strstr(txt, "annotations")); /* a Secret's annotations are not read */
	assert_non_null(strstr(txt, "\"labels\":{\"owner\":\"helm\",\"name\":\"app\"}"));
	free(txt);
	cJSON_Delete(s);
	free_check(c);
}

static void t_all_synced(void **state)
{
	struct check *c = new_check();
	size_t k;
	(void)state;
	c->first_spec = K_DEPLOYMENTS;
	for (k = K_DEPLOYMENTS; k < K_COUNT; k++) {
		assert_false(all_synced(c));
		c->synced[k] = 1;
	}
	assert_true(all_synced(c)); /* --no-helm: secrets not watched */
	c->first_spec = K_RELEASES;
	assert_false(all_synced(c));
	free_check(c);
}

static char *slurp(FILE *f)
{
	long n = ftell(f);
	char *s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	rewind(f);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	return s;
}

/*
 * The progress line is written without printf (the bench's CPU per
 * event): byte for byte what "[%7s] %s %-36s %5s  %-18s %s\n" made.
 */
static void t_row_line_format(void **state)
{
	static const int64_t ms[] = {0, 99, 100, 999, 1000, 12345, 59999, 600000, 86400000, 9999999999LL};
	static const int64_t counts[][2] = {{0, 0}, {1, 1}, {3, 4}, {12, 1000}, {0, -1}, {123456, 1234567}, {-1, 3}};
	static const char *const names[] = {"p", "web-7d9f8b6c4-x2x9z", "a-name-long-enough-to-pass-the-36-column-pad",
	                                    ""};
	struct check *c = new_check();
	char got[64], want[64];
	size_t i, j, k;
	(void)state;

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		fmt_elapsed(ms[i], got, sizeof(got));
		snprintf(want, sizeof(want), "%lld.%llds", (long long)(ms[i] / 1000), (long long)(ms[i] % 1000 / 100));
		assert_string_equal(got, want);
	}
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		fmt_ready(counts[i][0], counts[i][1], got, sizeof(got));
		if (counts[i][1] < 0)
			snprintf(want, sizeof(want), "-");
		else if (counts[i][0] < 0) /* unknown: never "-1/3" */
			snprintf(want, sizeof(want), "?/%lld", (long long)counts[i][1]);
		else
			snprintf(want, sizeof(want), "%lld/%lld", (long long)counts[i][0], (long long)counts[i][1]);
		assert_string_equal(got, want);
	}
	c->start_mono = kube_now_ms() - 4321000;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		for (j = 0; j < sizeof(counts) / sizeof(counts[0]); j++)
			for (k = 0; k < 4; k++) {
				struct verdict_row r;
				char *out, el[32], rd[48], obj[300], line[2048];
				memset(&r, 0, sizeof(r));
				snprintf(r.kind, sizeof(r.kind), "%s", k % 2 ? "Pod" : "StatefulSet");
				snprintf(r.name, sizeof(r.name), "%s", names[i]);
				snprintf(r.state, sizeof(r.state), "%s", k < 2 ? "Ready" : "CrashLoopBackOff-and-more");
				snprintf(r.reason, sizeof(r.reason), "%s",
				         k == 3 ? "" : "container \"app\" is waiting");
				r.ready = counts[j][0];
				r.desired = counts[j][1];
				r.status = (enum verdict_status)k;
				c->out = tmpfile();
				assert_non_null(c->out);
				print_row_line(c, &r);
				out = slurp(c->out);
				fclose(c->out);
				/* the elapsed time is read back from the line: it ticks */
				assert_true(strlen(out) > 10 && out[0] == '[' && out[8] == ']');
				memcpy(el, out + 1, 7);
				el[7] = '\0';
				fmt_ready(r.ready, r.desired, rd, sizeof(rd));
				snprintf(obj, sizeof(obj), "%s/%s", r.kind, r.name);
				snprintf(line, sizeof(line), "[%7s] %s %-36s %5s  %-18s %s\n", el + strspn(el, " "),
				         status_tag(r.status), obj, rd, r.state, r.reason);
				assert_string_equal(out, line);
				free(out);
			}
	free_check(c);
}

static void t_change_lines(void **state)
{
	struct check *c = new_check();
	struct opts o;
	cJSON *p1 = J("{\"metadata\":{\"name\":\"p\",\"uid\":\"1\",\"ownerReferences\":[{\"kind\":\"ReplicaSet\","
	              "\"name\":\"r\",\"controller\":true}]},\"status\":{\"phase\":\"Running\"}}");
	cJSON *p2 = J("{\"metadata\":{\"name\":\"p\",\"uid\":\"1\"},\"status\":{\"phase\":\"Running\",\"conditions\":"
	              "[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
	char *out;
	(void)state;

	memset(&o, 0, sizeof(o));
	o.release = "app";
	o.timeout_ms = 60000;
	o.pull_grace_ms = 60000;
	o.no_helm = 1;
	c->o = &o;
	c->first_spec = K_DEPLOYMENTS;
	c->start_mono = kube_now_ms();
	c->out = tmpfile();
	assert_non_null(c->out);
	store_event(c, K_PODS, WATCH_ADDED, p1);
	assert_int_equal(evaluate(c), 0);
	assert_int_equal(evaluate(c), 0); /* unchanged: no second line */
	store_event(c, K_PODS, WATCH_MODIFIED, p2);
	assert_int_equal(evaluate(c), 1); /* healthy: decided */
	/* a relist delivering the same object: nothing to report */
	store_event(c, K_PODS, WATCH_RESET, NULL);
	store_event(c, K_PODS, WATCH_ADDED, p2);
	store_event(c, K_PODS, WATCH_SYNCED, NULL);
	assert_int_equal(evaluate(c), 1);
	assert_int_equal(c->printed, 0);
	store_event(c, K_PODS, WATCH_DELETED, p2);
	assert_int_equal(evaluate(c), 0);
	out = slurp(c->out);
	fclose(c->out);
	assert_non_null(strstr(out, "] wait Pod/p "));
	assert_non_null(strstr(out, "] ok   Pod/p "));
	assert_non_null(strstr(out, "] gone Pod/p\n"));
	assert_int_equal(strstr(strstr(out, "wait Pod/p") + 1, "wait Pod/p") == NULL, 1);
	assert_int_equal(strstr(strstr(out, "ok   Pod/p") + 1, "ok   Pod/p") == NULL, 1);
	free(out);
	cJSON_Delete(p1);
	cJSON_Delete(p2);
	free_check(c);
}

static void t_clean_text(void **state)
{
	char s[] = "ok\tline\n\033[31mred\rx\x7f";
	char d[8];
	(void)state;
	clean_text(s);
	assert_string_equal(s, "ok\tline\n?[31mred?x?");
	copy_str(d, sizeof(d), "0123456789");
	assert_string_equal(d, "0123456");
	copy_str(d, sizeof(d), "ab");
	assert_string_equal(d, "ab");
}

static int run_args(const char *a1, const char *a2, const char *a3)
{
	char *argv[] = {(char *)"release-check", (char *)a1, (char *)a2, (char *)a3, NULL};
	int argc = a3 ? 4 : a2 ? 3 : 2;
	optind = 0;
	return run(argc, argv);
}

static void t_run_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(run_args("--help", NULL, NULL), 0);
	assert_int_equal(run_args("-V", NULL, NULL), 0);
	assert_int_equal(run_args("--output", "xml", "app"), 64);
	/* configuration errors exit 78 before any request */
	assert_int_equal(run_args("--kubeconfig", "/nonexistent/kubeconfig", "app"), 78);
	log_init("release-check", LOG_TEXT, LOG_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_defaults),
	    cmocka_unit_test(t_options),
	    cmocka_unit_test(t_usage_errors),
	    cmocka_unit_test(t_release_names),
	    cmocka_unit_test(t_store),
	    cmocka_unit_test(t_store_never_keeps_release_payload),
	    cmocka_unit_test(t_all_synced),
	    cmocka_unit_test(t_change_lines),
	    cmocka_unit_test(t_row_line_format),
	    cmocka_unit_test(t_clean_text),
	    cmocka_unit_test(t_run_exit_codes),
	    cmocka_unit_test(t_environment),
	    cmocka_unit_test(t_quiet_and_min_ready),
	};
	log_init("release-check", LOG_TEXT, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
