/*
 * log.c - the one place that writes diagnostics (stderr).
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_progname = "migration-gate";
static enum log_format log_fmt = LOG_TEXT;
static enum log_level log_max = LOG_INFO;
static FILE *log_first;

void log_init(const char *prog, enum log_format fmt, enum log_level max)
{
	if (prog) {
		const char *slash = strrchr(prog, '/');
		log_progname = slash ? slash + 1 : prog;
	}
	log_fmt = fmt;
	log_max = max;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_JSON;
	else
		return -1;
	return 0;
}

enum log_format log_get_format(void) { return log_fmt; }
enum log_level log_get_level(void) { return log_max; }
const char *log_prog(void) { return log_progname; }

static const char *const level_names[] = {"error", "warning", "info", "debug"};

/* JSON string body escaping into a bounded buffer (truncates). */
static size_t json_escape_into(char *dst, size_t cap, const char *src)
{
	size_t n = 0;
	for (; *src && n + 7 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		if (c == '"' || c == '\\') {
			dst[n++] = '\\';
			dst[n++] = (char)c;
		} else if (c == '\n') {
			dst[n++] = '\\';
			dst[n++] = 'n';
		} else if (c == '\t') {
			dst[n++] = '\\';
			dst[n++] = 't';
		} else if (c < 0x20) {
			n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", c);
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return n;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	unsigned cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	cp = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

size_t log_sanitize(char *dst, size_t cap, const char *src, int keep_newlines)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t n = 0, k;

	if (!cap)
		return 0;
	while (*s && n + 5 < cap) {
		if (*s >= 0x20 && *s < 0x7f) {
			dst[n++] = (char)*s++;
		} else if (keep_newlines && (*s == '\n' || *s == '\t')) {
			dst[n++] = (char)*s++;
		} else if (*s >= 0x80 && (k = utf8_len(s)) != 0 && !(k == 2 && s[0] == 0xc2 && s[1] < 0xa0)) {
			if (n + k >= cap)
				break;
			memcpy(dst + n, s, k);
			n += k;
			s += k;
		} else {
			/* C0 and C1 controls (ESC, CSI), DEL, invalid UTF-8 */
			int c1 = s[0] == 0xc2 && s[1] >= 0x80 && s[1] < 0xa0;
			n += (size_t)snprintf(dst + n, cap - n, "\\x%02x", c1 ? s[1] : s[0]);
			s += c1 ? 2 : 1;
		}
	}
	dst[n] = '\0';
	return n;
}

const char *log_safe(const char *s, char *buf, size_t len)
{
	log_sanitize(buf, len, s ? s : "", 0);
	return buf;
}

void log_flush_first(FILE *f) { log_first = f; }

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	char raw[4096], msg[4096];

	if (lvl > log_max)
		return;
	if (log_first)
		fflush(log_first);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	/* the safety net for every line: API data may carry escape sequences */
	log_sanitize(msg, sizeof(msg), raw, 1);
	if (log_fmt == LOG_JSON) {
		char esc[8192];
		char ts[32];
		struct timespec now;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		json_escape_into(esc, sizeof(esc), msg);
		fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"prog\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
		        now.tv_nsec / 1000000L, log_progname, level_names[lvl], esc);
	} else if (lvl == LOG_ERROR || lvl == LOG_WARN) {
		fprintf(stderr, "%s: %s: %s\n", log_progname, level_names[lvl], msg);
	} else {
		fprintf(stderr, "%s: %s\n", log_progname, msg);
	}
	fflush(stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}
