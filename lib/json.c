/*
 * json.c - lookups over API objects, RFC 3339 time.
 */
#include "json.h"

#include <stdio.h>
#include <string.h>

const cJSON *json_path(const cJSON *root, const char *dotted)
{
	const cJSON *cur = root;
	const char *p = dotted;

	while (cur && *p) {
		char key[128];
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n == 0 || n >= sizeof(key) || !cJSON_IsObject(cur))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		cur = cJSON_GetObjectItemCaseSensitive(cur, key);
		p += n + (dot ? 1 : 0);
	}
	return cur;
}

const char *json_str(const cJSON *root, const char *dotted)
{
	const cJSON *n = json_path(root, dotted);
	return cJSON_IsString(n) ? n->valuestring : NULL;
}

int64_t json_int(const cJSON *root, const char *dotted, int64_t def)
{
	const cJSON *n = json_path(root, dotted);
	if (!cJSON_IsNumber(n))
		return def;
	/* valuedouble holds the exact value for the 53-bit integers we read */
	if (n->valuedouble > 9.0e15 || n->valuedouble < -9.0e15)
		return def;
	return (int64_t)n->valuedouble;
}

int json_bool(const cJSON *root, const char *dotted) { return cJSON_IsTrue(json_path(root, dotted)) ? 1 : 0; }

const cJSON *json_condition(const cJSON *obj, const char *type)
{
	const cJSON *conds = json_path(obj, "status.conditions");
	const cJSON *c;

	if (!cJSON_IsArray(conds))
		return NULL;
	cJSON_ArrayForEach (c, conds) {
		const char *t = json_str(c, "type");
		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

int json_condition_true(const cJSON *obj, const char *type)
{
	const char *s = json_str(json_condition(obj, type), "status");
	return s && strcmp(s, "True") == 0;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0, i;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int json_parse_time(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, frac_ms = 0, off = 0;
	const char *p;

	if (!s || strlen(s) < 20)
		return -1;
	if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
	    s[16] != ':' || digits(s + 17, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	p = s + 19;
	if (*p == '.') {
		int scale = 100;
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9') {
			frac_ms += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	*ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)off * 60) * 1000 + frac_ms;
	return 0;
}

char *json_format_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/*
 * An upper bound of the values cJSON would allocate for buf, in one linear
 * pass: every value but the first follows a '[', '{' or ','. cJSON costs
 * ~80 bytes of heap per value, so "[0,0,0,...]" amplifies 40-fold: a 32 MB
 * list took 1.4 GB and 17 s of CPU before this cap (issue 15 item 10).
 */
size_t json_count_values(const char *buf, size_t len)
{
	size_t i, n = 1;
	int in_str = 0;

	for (i = 0; i < len; i++) {
		char c = buf[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == ',' || c == '[' || c == '{') {
			n++;
		}
	}
	return n;
}

cJSON *json_parse_capped(const char *buf, size_t len, size_t max_values, int *toobig)
{
	const char *end = NULL;
	cJSON *j;

	if (toobig)
		*toobig = 0;
	if (json_count_values(buf, len) > max_values) {
		if (toobig)
			*toobig = 1;
		return NULL;
	}
	j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (!j)
		return NULL;
	/* trailing whitespace is fine, anything else is not */
	while (end && (size_t)(end - buf) < len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
		end++;
	if (end && (size_t)(end - buf) < len) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

cJSON *json_parse(const char *buf, size_t len) { return json_parse_capped(buf, len, JSON_MAX_VALUES, NULL); }
