/*
 * cli.h - what the three binaries' option parsers share.
 */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A usage error: "<prog>: <message>" and "Try '<prog> --help' for more
 * information." on stderr (prog as given to log_init). Returns
 * MG_EXIT_USAGE for the caller to exit with.
 */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_vusage_error(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * The usage error for what getopt_long returned when the optstring starts
 * with ':' (and opterr is 0): '?' an unknown option, anything else (':') an
 * option without its value. Returns MG_EXIT_USAGE.
 */
int cli_getopt_error(int c, char *const argv[]);

/* Name checks for option values: names.h. */

#endif
