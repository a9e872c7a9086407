/*
 * duration.h - Go-style durations ("90s", "5m", "1h30m", "250ms", "0").
 *
 * Anything else is an error, never a silent default (docker-compose-wait#60).
 */
#ifndef MG_DURATION_H
#define MG_DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse s into milliseconds. Accepted: one or more <digits><unit> groups with
 * units h, m, s, ms (in decreasing order, each at most once), or a bare "0".
 * Returns 0 on success; -1 with a message in err (may be NULL) otherwise.
 * The maximum is 10 years.
 */
int dur_parse(const char *s, int64_t *ms, char *err, size_t errlen);

/* Format ms as "1h2m3.5s"-style text into buf; returns buf. */
char *dur_format(int64_t ms, char *buf, size_t len);

#endif
