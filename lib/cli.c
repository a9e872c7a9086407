/*
 * cli.c - usage errors for the option parsers.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

#include "exitcodes.h"
#include "log.h"

int cli_vusage_error(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", log_prog());
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", log_prog());
	return MG_EXIT_USAGE;
}

int cli_getopt_error(int c, char *const argv[])
{
	if (c != '?')
		return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
	if (optopt)
		return cli_usage_error("unknown option '-%c'", optopt);
	return cli_usage_error("unknown option '%s'", argv[optind - 1]);
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
