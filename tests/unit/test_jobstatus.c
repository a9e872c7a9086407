/*
 * test_jobstatus.c - lib/jobstatus.c, the one Job rule of wait-for-job and
 * release-check, table-driven from the batch/v1 Job API reference:
 * terminal conditions first; without one, succeeded >= completions
 * (default 1; a NonIndexed work queue: succeeded >= 1 and active == 0) or
 * failed > backoffLimit (default 6); suspended is its own phase; a missing
 * counter is unknown, never 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/jobstatus.c"

struct jcase {
	const char *name;
	const char *job; /* single quotes for double quotes */
	enum jobstatus_phase want;
	enum jobstatus_source by;
	const char *reason; /* NULL: not checked */
};

#define C(t, s) "{'type':'" t "','status':'" s "'}"

static const struct jcase cases[] = {
    /* conditions decide */
    {"no status", "{}", JOBSTATUS_RUNNING, JOBSTATUS_BY_NONE, NULL},
    {"Complete", "{'status':{'conditions':[" C("Complete", "True") "],'succeeded':1}}", JOBSTATUS_SUCCEEDED,
     JOBSTATUS_BY_CONDITION, "Complete"},
    {"SuccessCriteriaMet before Complete (1.31+)", "{'status':{'conditions':[" C("SuccessCriteriaMet", "True") "]}}",
     JOBSTATUS_SUCCEEDED, JOBSTATUS_BY_CONDITION, "SuccessCriteriaMet"},
    {"Failed with reason",
     "{'status':{'conditions':[{'type':'Failed','status':'True','reason':'BackoffLimitExceeded',"
     "'message':'Job has reached the specified backoff limit'}],'failed':7}}",
     JOBSTATUS_FAILED, JOBSTATUS_BY_CONDITION, "BackoffLimitExceeded"},
    {"FailureTarget before Failed (1.31+)",
     "{'status':{'conditions':[{'type':'FailureTarget','status':'True','reason':'DeadlineExceeded'}]}}",
     JOBSTATUS_FAILED, JOBSTATUS_BY_CONDITION, "DeadlineExceeded"},
    {"Complete=False decides nothing", "{'status':{'conditions':[" C("Complete", "False") "]}}", JOBSTATUS_RUNNING,
     JOBSTATUS_BY_NONE, NULL},
    {"failed pods then success: condition wins",
     "{'spec':{'backoffLimit':0},'status':{'conditions':[" C("Complete", "True") "],'succeeded':1,'failed':3}}",
     JOBSTATUS_SUCCEEDED, JOBSTATUS_BY_CONDITION, NULL},
    /* counters, no terminal condition (older or other controllers) */
    {"0 active is not done", "{'status':{'active':0,'succeeded':0}}", JOBSTATUS_RUNNING, JOBSTATUS_BY_NONE, NULL},
    {"succeeded >= completions default 1", "{'status':{'succeeded':1}}", JOBSTATUS_SUCCEEDED, JOBSTATUS_BY_COUNTERS,
     "Completed"},
    {"succeeded < completions", "{'spec':{'completions':3},'status':{'succeeded':2,'active':1}}", JOBSTATUS_RUNNING,
     JOBSTATUS_BY_NONE, NULL},
    {"succeeded == completions", "{'spec':{'completions':3},'status':{'succeeded':3}}", JOBSTATUS_SUCCEEDED,
     JOBSTATUS_BY_COUNTERS, NULL},
    {"work queue: one succeeded, others active", "{'spec':{'parallelism':3},'status':{'succeeded':1,'active':2}}",
     JOBSTATUS_RUNNING, JOBSTATUS_BY_NONE, NULL},
    {"work queue: one succeeded, none active", "{'spec':{'parallelism':3},'status':{'succeeded':1,'active':0}}",
     JOBSTATUS_SUCCEEDED, JOBSTATUS_BY_COUNTERS, NULL},
    {"work queue: active missing is unknown", "{'spec':{'parallelism':3},'status':{'succeeded':1}}", JOBSTATUS_RUNNING,
     JOBSTATUS_BY_NONE, NULL},
    {"Indexed without completions: 1", "{'spec':{'parallelism':2,'completionMode':'Indexed'},'status':{'succeeded':1}}",
     JOBSTATUS_SUCCEEDED, JOBSTATUS_BY_COUNTERS, NULL},
    {"failed > backoffLimit default 6", "{'status':{'failed':7}}", JOBSTATUS_FAILED, JOBSTATUS_BY_COUNTERS,
     "BackoffLimitExceeded"},
    {"failed == backoffLimit: retrying", "{'status':{'failed':6,'active':1}}", JOBSTATUS_RUNNING, JOBSTATUS_BY_NONE,
     NULL},
    {"backoffLimit 0, one failure", "{'spec':{'backoffLimit':0},'status':{'failed':1}}", JOBSTATUS_FAILED,
     JOBSTATUS_BY_COUNTERS, NULL},
    {"backoffLimitPerIndex: only the condition knows",
     "{'spec':{'completionMode':'Indexed','completions':3,'backoffLimitPerIndex':1},'status':{'failed':9}}",
     JOBSTATUS_RUNNING, JOBSTATUS_BY_NONE, NULL},
    {"counters of the wrong type are unknown", "{'status':{'succeeded':'1','failed':'9'}}", JOBSTATUS_RUNNING,
     JOBSTATUS_BY_NONE, NULL},
    {"negative counters are unknown", "{'status':{'succeeded':-1}}", JOBSTATUS_RUNNING, JOBSTATUS_BY_NONE, NULL},
    /* suspended */
    {"suspended", "{'spec':{'suspend':true},'status':{'active':0}}", JOBSTATUS_SUSPENDED, JOBSTATUS_BY_NONE,
     "Suspended"},
    {"Suspended condition", "{'status':{'conditions':[" C("Suspended", "True") "]}}", JOBSTATUS_SUSPENDED,
     JOBSTATUS_BY_NONE, NULL},
    {"suspended after it failed: failed", "{'spec':{'suspend':true},'status':{'conditions':[" C("Failed", "True") "]}}",
     JOBSTATUS_FAILED, JOBSTATUS_BY_CONDITION, NULL},
    /* not an object */
    {"null", "null", JOBSTATUS_RUNNING, JOBSTATUS_BY_NONE, NULL},
};

static cJSON *parse_sq(const char *sq)
{
	size_t n = strlen(sq), i;
	char *s = malloc(n + 1);
	cJSON *j;

	assert_non_null(s);
	for (i = 0; i <= n; i++)
		s[i] = sq[i] == '\'' ? '"' : sq[i];
	j = json_parse(s, n);
	free(s);
	assert_non_null(j);
	return j;
}

static void t_table(void **state)
{
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct jcase *c = &cases[i];
		cJSON *j = parse_sq(c->job);
		struct jobstatus js;

		jobstatus_eval(j, &js);
		cJSON_Delete(j);
		if (js.phase != c->want || js.by != c->by)
			fail_msg("%s: phase %s by %d, want %s by %d", c->name, jobstatus_phase_name(js.phase),
			         (int)js.by, jobstatus_phase_name(c->want), (int)c->by);
		if (c->reason && strcmp(js.reason, c->reason) != 0)
			fail_msg("%s: reason \"%s\", want \"%s\"", c->name, js.reason, c->reason);
	}
}

static void t_unknown_counters(void **state)
{
	cJSON *j = parse_sq("{'status':{'active':2}}");
	struct jobstatus js;
	(void)state;

	jobstatus_eval(j, &js);
	assert_int_equal(js.active, 2);
	assert_int_equal(js.succeeded, -1);
	assert_int_equal(js.failed, -1);
	assert_int_equal(js.completions, 1);
	assert_int_equal(js.backoff_limit, 6);
	cJSON_Delete(j);
	jobstatus_eval(NULL, &js);
	assert_int_equal(js.phase, JOBSTATUS_RUNNING);
	assert_string_equal(jobstatus_phase_name(JOBSTATUS_SUSPENDED), "suspended");
}

static void t_message_from_counters(void **state)
{
	cJSON *j = parse_sq("{'spec':{'backoffLimit':2},'status':{'failed':3}}");
	struct jobstatus js;
	(void)state;

	jobstatus_eval(j, &js);
	assert_string_equal(js.message, "3 failed pods > backoffLimit 2 (status counters; no Failed condition)");
	cJSON_Delete(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_table),
	    cmocka_unit_test(t_unknown_counters),
	    cmocka_unit_test(t_message_from_counters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
