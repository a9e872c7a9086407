/*
 * Fuzz target: wait-for-job's evaluators over server JSON - a Job's status
 * conditions and migrate-runner's outcome record inside a ConfigMap (a
 * JSON string within JSON). The first byte picks the record key.
 */
#include "../../lib/json.c"
#include "../../lib/jobstatus.c"
#include "../../wait-for-job/verdict.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char *const keys[] = {"m-1", "app-migrate-12", "", "x"};
	struct job_state js;
	struct record_state rs;
	char d[160];
	cJSON *j;

	if (size < 1)
		return 0;
	j = json_parse((const char *)data + 1, size - 1);
	if (!j)
		return 0;
	job_evaluate(j, &js);
	job_describe(&js, d, sizeof(d));
	record_evaluate(j, keys[data[0] & 3], &rs);
	if (rs.present && rs.verdict == JOB_RUNNING)
		__builtin_trap(); /* a record is succeeded or failed, never running */
	cJSON_Delete(j);
	return 0;
}
