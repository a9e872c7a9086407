/*
 * duration.c - strict duration parsing.
 */
#include "duration.h"

#include <stdio.h>
#include <string.h>

#define DUR_MAX_MS (10LL * 366 * 24 * 3600 * 1000)

static int dur_fail(char *err, size_t errlen, const char *s, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "invalid duration \"%s\": %s (use e.g. 90s, 5m, 1h30m)", s, why);
	return -1;
}

int dur_parse(const char *s, int64_t *ms, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		int64_t factor;
	} units[] = {{"h", 3600000}, {"ms", 1}, {"m", 60000}, {"s", 1000}};
	/* rank of each unit: h > m > s > ms; groups must strictly decrease */
	static const int rank[] = {4, 1, 3, 2};
	const char *p = s;
	int64_t total = 0;
	int last_rank = 5;

	if (!s || !*s)
		return dur_fail(err, errlen, s ? s : "", "empty");
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return 0;
	}
	while (*p) {
		int64_t v = 0;
		size_t i, digits = 0;

		while (*p >= '0' && *p <= '9') {
			v = v * 10 + (*p - '0');
			if (v > DUR_MAX_MS)
				return dur_fail(err, errlen, s, "too large");
			p++;
			digits++;
		}
		if (!digits)
			return dur_fail(err, errlen, s, "expected a number");
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].name);
			/* "m" must not swallow the "m" of "ms" */
			if (strncmp(p, units[i].name, n) == 0 && !(n == 1 && p[0] == 'm' && p[1] == 's'))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return dur_fail(err, errlen, s, *p ? "unknown unit" : "missing unit");
		if (rank[i] >= last_rank)
			return dur_fail(err, errlen, s, "units out of order or repeated");
		last_rank = rank[i];
		if (v > DUR_MAX_MS / units[i].factor)
			return dur_fail(err, errlen, s, "too large");
		total += v * units[i].factor;
		if (total > DUR_MAX_MS)
			return dur_fail(err, errlen, s, "too large");
		p += strlen(units[i].name);
	}
	*ms = total;
	return 0;
}

char *dur_format(int64_t ms, char *buf, size_t len)
{
	int64_t h = ms / 3600000, m = (ms / 60000) % 60, s = (ms / 1000) % 60, frac = ms % 1000;
	size_t n = 0;

	buf[0] = '\0';
	if (h)
		n += (size_t)snprintf(buf + n, len - n, "%lldh", (long long)h);
	if (m && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%lldm", (long long)m);
	if ((s || frac || n == 0) && n < len) {
		if (frac)
			snprintf(buf + n, len - n, "%lld.%03llds", (long long)s, (long long)frac);
		else
			snprintf(buf + n, len - n, "%llds", (long long)s);
	}
	return buf;
}
