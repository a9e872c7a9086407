/*
 * log.h - diagnostics on stderr, one line per message.
 *
 * Every line starts with the program name (text format) or carries it in a
 * "prog" field (--log-format json, for log aggregators). Nothing here ever
 * receives a bearer token: callers pass only redacted data.
 */
#ifndef MG_LOG_H
#define MG_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>

enum log_format { LOG_TEXT, LOG_JSON };

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

/* prog is kept by pointer (pass argv[0]'s basename or a literal). */
void log_init(const char *prog, enum log_format fmt, enum log_level max);
/* Parse "text"/"json"; returns 0 on success, -1 when unknown. */
int log_parse_format(const char *s, enum log_format *out);
enum log_format log_get_format(void);
enum log_level log_get_level(void);
const char *log_prog(void);
/*
 * A stream flushed before each message: a program that buffers its progress
 * output (release-check off a terminal) keeps it in order with the log.
 * NULL: none (the default).
 */
void log_flush_first(FILE *f);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*
 * Make text from the API safe for a terminal and a log: C0 and C1 control
 * characters (ESC, CSI: they recolour, retitle or rewrite a terminal), DEL
 * and bytes that are not UTF-8 become "\xNN"; newlines and tabs too unless
 * keep_newlines. Writes at most cap bytes including the NUL (truncates);
 * returns the length. Every log line goes through it with keep_newlines.
 */
size_t log_sanitize(char *dst, size_t cap, const char *src, int keep_newlines);
/*
 * log_sanitize(buf, len, s, 0) for one API-supplied value in a message
 * ("%s", log_safe(msg, b, sizeof(b))): one line, whatever s holds.
 */
const char *log_safe(const char *s, char *buf, size_t len);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
