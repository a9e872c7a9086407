/*
 * fuzz_migrate_record.c - migrate-runner's pure parts over arbitrary bytes.
 *
 * The input is the command's output (fed to the tail in chunks, alternating
 * streams at every 0x01 byte) and, at the same time, a ConfigMap and a
 * Lease as JSON. Checks: the termination-log JSON is valid and never over
 * its cap, the tail is valid UTF-8 JSON, pruning never removes the key it
 * writes, and the lock verdict is one of the four.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/duration.c"
#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../migrate-runner/lock.c"
#include "../../lib/record.c"
#include "../../migrate-runner/store.c"
#include "../../migrate-runner/tail.c"
#include "../unit/test_migrate_fake_kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tail *t = tail_new(20, 64);
	struct rec_outcome o = {REC_SIGNALED, 137, 9, 1700000000000LL, 1700000001000LL, "job", "pod", 2, NULL};
	struct lock_observation obs = {{0}, 0};
	const char *p = (const char *)data;
	size_t start = 0;
	int stream = 0;
	char *tail, *json;
	cJSON *cm, *back;

	if (!t)
		return 0;
	log_init("fuzz", LOG_TEXT, LOG_ERROR);
	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == 0x01) {
			tail_feed(t, stream, p + start, i - start);
			stream ^= 1;
			start = i + 1;
		}
	}
	tail_flush(t);
	tail = tail_text(t, 4096);
	if (!tail)
		abort();
	o.output_tail = tail;
	for (size_t cap = 512; cap <= 4096; cap += 3584) {
		json = rec_json_capped(&o, cap);
		if (!json || strlen(json) > cap)
			abort();
		back = json_parse(json, strlen(json));
		if (!back || !json_str(back, "outputTail"))
			abort();
		cJSON_Delete(back);
		free(json);
	}

	cm = json_parse(p, size);
	if (cm) {
		if (rec_cm_put(cm, "the-key", "{\"status\":\"failed\",\"finishedAt\":\"2024-01-01T00:00:00Z\"}", 2, 200,
		               NULL) == 0 &&
		    !json_str(cm, "data.the-key"))
			abort();
		if (lock_decide(cm, "me", 5000, 30, &obs, NULL) > LOCK_HELD)
			abort();
		cJSON_Delete(cm);
	}
	{
		char *z = malloc(size + 1);
		if (z) {
			memcpy(z, data, size);
			z[size] = '\0';
			if (rec_parse_attempt(z) < 0)
				abort();
			free(z);
		}
	}
	free(tail);
	tail_free(t);
	return 0;
}
