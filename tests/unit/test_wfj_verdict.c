/* Unit tests: wait-for-job/verdict.c - Job conditions and outcome records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/jobstatus.c"
#include "../../wait-for-job/verdict.c"

static enum job_verdict eval(const char *json, struct job_state *st)
{
	cJSON *j = json_parse(json, strlen(json));
	assert_non_null(j);
	job_evaluate(j, st);
	cJSON_Delete(j);
	return st->verdict;
}

static void job_conditions(void **state)
{
	struct job_state st;
	(void)state;
	assert_int_equal(eval("{}", &st), JOB_RUNNING);
	/* 0 active is not "done" (k8s-wait-for#17) */
	assert_int_equal(eval("{\"status\":{\"active\":0,\"succeeded\":0}}", &st), JOB_RUNNING);
	assert_int_equal(
	    eval("{\"status\":{\"conditions\":[{\"type\":\"Complete\",\"status\":\"True\"}],\"succeeded\":1}}", &st),
	    JOB_SUCCEEDED);
	assert_string_equal(st.reason, "Complete");
	assert_int_equal(
	    eval("{\"status\":{\"conditions\":[{\"type\":\"SuccessCriteriaMet\",\"status\":\"True\"}]}}", &st),
	    JOB_SUCCEEDED);
	/* failed once, then succeeded on retry: success (k8s-wait-for#17, #53) */
	assert_int_equal(eval("{\"status\":{\"failed\":1,\"succeeded\":1,\"conditions\":[{\"type\":\"Complete\","
	                      "\"status\":\"True\"}]}}",
	                      &st),
	                 JOB_SUCCEEDED);
	assert_int_equal(st.failed, 1);
	assert_int_equal(
	    eval("{\"status\":{\"failed\":3,\"conditions\":[{\"type\":\"Failed\",\"status\":\"True\","
	         "\"reason\":\"BackoffLimitExceeded\",\"message\":\"Job has reached the specified backoff limit\"}]}}",
	         &st),
	    JOB_FAILED);
	assert_string_equal(st.reason, "BackoffLimitExceeded");
	assert_string_equal(st.message, "Job has reached the specified backoff limit");
	assert_int_equal(st.failed, 3);
	/* FailureTarget decides before the pods finished terminating (1.31+) */
	assert_int_equal(eval("{\"status\":{\"conditions\":[{\"type\":\"FailureTarget\",\"status\":\"True\",\"reason\":"
	                      "\"PodFailurePolicy\"}]}}",
	                      &st),
	                 JOB_FAILED);
	assert_string_equal(st.reason, "PodFailurePolicy");
	/* False / Unknown conditions decide nothing */
	assert_int_equal(eval("{\"status\":{\"conditions\":[{\"type\":\"Failed\",\"status\":\"False\"},{\"type\":"
	                      "\"Complete\",\"status\":\"Unknown\"}]}}",
	                      &st),
	                 JOB_RUNNING);
	assert_int_equal(eval("{\"spec\":{\"suspend\":true},\"status\":{}}", &st), JOB_RUNNING);
	assert_int_equal(st.suspended, 1);
	/* wrong types are ignored, not crashed on */
	assert_int_equal(eval("{\"status\":{\"conditions\":{\"type\":\"Complete\"},\"active\":\"1\"}}", &st),
	                 JOB_RUNNING);
	assert_int_equal(eval("{\"status\":{\"conditions\":[1,null,{\"type\":7,\"status\":\"True\"}]}}", &st),
	                 JOB_RUNNING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(job_conditions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
