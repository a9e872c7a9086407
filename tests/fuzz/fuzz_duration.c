/* Fuzz target: durations and RFC 3339 times (user and server input). */
#include <stdlib.h>
#include <string.h>

#include "../../lib/duration.c"
#include "../../lib/json.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *s = malloc(size + 1), err[128], buf[64];
	int64_t ms;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (dur_parse(s, &ms, err, sizeof(err)) == 0) {
		int64_t again;
		/* what we print parses back to the same value */
		dur_format(ms, buf, sizeof(buf));
		if (!strchr(buf, '.') && (dur_parse(buf, &again, err, sizeof(err)) != 0 || again != ms))
			abort();
	}
	(void)json_parse_time(s, &ms);
	free(s);
	return 0;
}
