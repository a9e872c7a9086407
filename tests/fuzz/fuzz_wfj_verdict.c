/*
 * Fuzz target: what wait-for-job reads from the server - a Job (its status
 * conditions and counters, through lib/jobstatus) and migrate-runner's
 * outcome record (lib/record's rec_decode, the one decoder).
 */
#include "../../lib/json.c"
#include "../../lib/jobstatus.c"
#include "../../lib/record.c"
#include "../../wait-for-job/verdict.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct job_state js;
	struct rec_view rv;
	char d[160];
	cJSON *j;

	if (size < 1)
		return 0;
	(void)rec_decode((const char *)data + 1, size - 1, &rv);
	j = json_parse((const char *)data + 1, size - 1);
	if (!j)
		return 0;
	job_evaluate(j, &js);
	job_describe(&js, d, sizeof(d));
	cJSON_Delete(j);
	return 0;
}
