/*
 * cli.c - usage errors and name checks for the option parsers.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"

int cli_vusage_error(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", log_prog());
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", log_prog());
	return MG_EXIT_USAGE;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cli_vusage_error(fmt, ap);
	va_end(ap);
	return rc;
}

int cli_dns_subdomain(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}
