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

	/*
	 * In place: each key is compared with the path's segment as it is
	 * walked, no copy and no strlen (this runs for every field a rule
	 * reads: ~40 per pod event, the largest share of release-check's CPU
	 * per event). A key with a '.' in it never matches a segment.
	 */
	while (cur && *p) {
		const cJSON *c;
		const char *q = p;

		if (*p == '.' || (cur->type & 0xFF) != cJSON_Object)
			return NULL;
		for (c = cur->child; c; c = c->next) {
			const char *k = c->string;
			if (!k || *k != *p)
				continue;
			for (q = p; *k && *k == *q && *q != '.'; k++, q++)
				;
			if (!*k && (!*q || *q == '.'))
				break;
		}
		if (!c)
			return NULL;
		cur = c;
		p = *q == '.' ? q + 1 : q;
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

/* ---- json_parse_kept: parse only what is kept ------------------------------------ */

#define KEPT_MAX_DEPTH 1000 /* cJSON's CJSON_NESTING_LIMIT: what it refuses, we refuse */

struct kp {
	const char *p, *end;
	size_t built, max;
	int depth, toobig;
};

static void kp_ws(struct kp *k)
{
	while (k->p < k->end && (*k->p == ' ' || *k->p == '\n' || *k->p == '\r' || *k->p == '\t'))
		k->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The code unit of "\uXXXX" at p (p at the 'u'), or -1. */
static long u_escape(const char *p, const char *end)
{
	long v = 0;
	int i;

	if (end - p < 5)
		return -1;
	for (i = 1; i <= 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/*
 * Past the string at k->p (at its '"'); *esc: it has escapes. Refuses what
 * cJSON refuses: unknown escapes and unpaired surrogates.
 */
static int kp_string(struct kp *k, int *esc)
{
	const char *p = k->p + 1, *end = k->end;

	*esc = 0;
	for (;;) {
		/* eight bytes at a time while none is '"' or '\\' */
		while (end - p >= 8) {
			uint64_t v, q, b, hit;
			memcpy(&v, p, 8);
			q = v ^ 0x2222222222222222ull; /* '"' */
			b = v ^ 0x5c5c5c5c5c5c5c5cull; /* '\\' */
			hit = ((q - 0x0101010101010101ull) & ~q & 0x8080808080808080ull) |
			      ((b - 0x0101010101010101ull) & ~b & 0x8080808080808080ull);
			if (hit) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				/*
				 * The lowest flagged byte is the first '"' or '\\' (a
				 * false flag only follows a true one): jump to it.
				 */
				p += __builtin_ctzll(hit) >> 3;
#endif
				break;
			}
			p += 8;
		}
		while (p < end && *p != '"' && *p != '\\')
			p++;
		if (p >= end)
			return -1;
		if (*p == '"') {
			k->p = p + 1;
			return 0;
		}
		*esc = 1;
		if (++p >= end)
			return -1;
		switch (*p) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't': p++; break;
		case 'u': {
			long u = u_escape(p, end);
			if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
				return -1;
			p += 5;
			if (u >= 0xD800 && u <= 0xDBFF) {
				long lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? u_escape(p + 1, end) : -1;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				p += 6;
			}
			break;
		}
		default: return -1;
		}
	}
}

/* Past the number at k->p: RFC 8259's grammar, at most 63 characters (as cJSON). */
static int kp_number(struct kp *k)
{
	const char *p = k->p, *end = k->end, *start = k->p;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0') {
		p++;
	} else if (p < end && *p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return -1;
	}
	if (p < end && *p == '.') {
		if (++p >= end || *p < '0' || *p > '9')
			return -1;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return -1;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p - start > 63)
		return -1;
	k->p = p;
	return 0;
}

static int kp_literal(struct kp *k, const char *lit, size_t n)
{
	if ((size_t)(k->end - k->p) < n || memcmp(k->p, lit, n) != 0)
		return -1;
	k->p += n;
	return 0;
}

/* Past one scalar (string, number, literal) at k->p. */
static int kp_scalar(struct kp *k)
{
	int esc;

	switch (*k->p) {
	case '"': return kp_string(k, &esc);
	case 't': return kp_literal(k, "true", 4);
	case 'f': return kp_literal(k, "false", 5);
	case 'n': return kp_literal(k, "null", 4);
	default: return kp_number(k);
	}
}

/*
 * Past one value at k->p (whitespace before it skipped), without building
 * anything: the hot path (managedFields, specs, most of every object).
 * Iterative, so a deep document costs no stack.
 */
static int kp_skip(struct kp *k)
{
	char open[KEPT_MAX_DEPTH];
	int sp = 0, esc;

value:
	kp_ws(k);
	if (k->p >= k->end)
		return -1;
	if (*k->p == '{' || *k->p == '[') {
		if (k->depth + sp >= KEPT_MAX_DEPTH)
			return -1;
		open[sp++] = *k->p++;
		kp_ws(k);
		if (k->p < k->end && *k->p == (open[sp - 1] == '{' ? '}' : ']')) {
			k->p++;
			sp--;
			goto after;
		}
		if (open[sp - 1] == '[')
			goto value;
		goto key;
	}
	if (kp_scalar(k) < 0)
		return -1;
after:
	if (sp == 0)
		return 0;
	kp_ws(k);
	if (k->p >= k->end)
		return -1;
	if (*k->p == ',') {
		k->p++;
		if (open[sp - 1] == '[')
			goto value;
		goto key;
	}
	if (*k->p != (open[sp - 1] == '{' ? '}' : ']'))
		return -1;
	k->p++;
	sp--;
	goto after;
key:
	kp_ws(k);
	if (k->p >= k->end || *k->p != '"' || kp_string(k, &esc) < 0)
		return -1;
	kp_ws(k);
	if (k->p >= k->end || *k->p != ':')
		return -1;
	k->p++;
	goto value;
}

static int kp_count(struct kp *k, size_t n)
{
	k->built += n;
	if (k->built > k->max) {
		k->toobig = 1;
		return -1;
	}
	return 0;
}

/* A whole value (the span [start, k->p) that kp_skip validated), built by cJSON. */
static cJSON *kp_whole(struct kp *k, const char *start)
{
	size_t n = (size_t)(k->p - start);
	cJSON *v;
	int esc = 0;

	if (*start == '"') {
		/* the common case: a string without escapes is its bytes */
		struct kp s = {start, k->p, 0, 0, 0, 0};
		if (kp_string(&s, &esc) < 0)
			return NULL;
	}
	if (kp_count(k, *start == '{' || *start == '[' ? json_count_values(start, n) : 1) < 0)
		return NULL;
	if (*start == '"' && !esc) {
		char *str = cJSON_malloc(n - 1);
		if (!str)
			return NULL;
		memcpy(str, start + 1, n - 2);
		str[n - 2] = '\0';
		v = cJSON_CreateStringReference("");
		if (!v) {
			cJSON_free(str);
			return NULL;
		}
		v->type = cJSON_String;
		v->valuestring = str;
		return v;
	}
	/*
	 * true, false, null and small non-negative integers (ready, started,
	 * restartCount, generation, exitCode): built directly, as cJSON would
	 * parse them, without its parser's setup for each value.
	 */
	if (n == 4 && memcmp(start, "true", 4) == 0)
		return cJSON_CreateTrue();
	if (n == 5 && memcmp(start, "false", 5) == 0)
		return cJSON_CreateFalse();
	if (n == 4 && memcmp(start, "null", 4) == 0)
		return cJSON_CreateNull();
	if (n <= 15 && *start >= '0' && *start <= '9') {
		int64_t iv = 0;
		size_t i;
		for (i = 0; i < n && start[i] >= '0' && start[i] <= '9'; i++)
			iv = iv * 10 + (start[i] - '0');
		if (i == n) /* all digits: exact in a double */
			return cJSON_CreateNumber((double)iv);
	}
	return cJSON_ParseWithLength(start, n);
}

static cJSON *kp_value(struct kp *k, const struct json_keep *keep);

/* The raw key (no escapes) equals want? A key is a C string to cJSON: it ends at a NUL. */
static int kp_key_is(const char *raw, size_t n, const char *want)
{
	size_t i;

	/* raw has no NUL but where cJSON's key would end (it keeps C strings) */
	for (i = 0; i < n && raw[i]; i++)
		if (want[i] != raw[i])
			return 0;
	return want[i] == '\0';
}

static cJSON *kp_object(struct kp *k, const struct json_keep *keep)
{
	cJSON *found[JSON_KEEP_MAX], *out = NULL;
	size_t nkeep = 0, i;

	while (keep[nkeep].key && nkeep < JSON_KEEP_MAX)
		nkeep++;
	memset(found, 0, nkeep * sizeof(found[0])); /* only these are read */
	if (k->depth >= KEPT_MAX_DEPTH)
		return NULL;
	k->depth++;
	k->p++; /* '{' */
	kp_ws(k);
	if (k->p < k->end && *k->p == '}') {
		k->p++;
		goto done;
	}
	for (;;) {
		const char *kstart;
		cJSON *decoded = NULL;
		int esc, hit = -1;

		kp_ws(k);
		if (k->p >= k->end || *k->p != '"')
			goto fail;
		kstart = k->p;
		if (kp_string(k, &esc) < 0)
			goto fail;
		if (esc) {
			if (!(decoded = cJSON_ParseWithLength(kstart, (size_t)(k->p - kstart))))
				goto fail;
			for (i = 0; i < nkeep && hit < 0; i++)
				if (!found[i] && strcmp(decoded->valuestring, keep[i].key) == 0)
					hit = (int)i;
			cJSON_Delete(decoded);
		} else {
			size_t n = (size_t)(k->p - kstart - 2);
			char c0 = n ? kstart[1] : '\0'; /* the first byte decides most keys */
			for (i = 0; i < nkeep && hit < 0; i++)
				if (!found[i] && keep[i].key[0] == c0 && kp_key_is(kstart + 1, n, keep[i].key))
					hit = (int)i;
		}
		/* a later duplicate of a key already found is skipped: the first counts */
		kp_ws(k);
		if (k->p >= k->end || *k->p != ':')
			goto fail;
		k->p++;
		kp_ws(k);
		if (hit >= 0) {
			if (!(found[hit] = kp_value(k, keep[hit].sub)))
				goto fail;
		} else if (kp_skip(k) < 0) {
			goto fail;
		}
		kp_ws(k);
		if (k->p < k->end && *k->p == ',') {
			k->p++;
			continue;
		}
		if (k->p < k->end && *k->p == '}') {
			k->p++;
			break;
		}
		goto fail;
	}
done:
	k->depth--;
	if (kp_count(k, 1) < 0 || !(out = cJSON_CreateObject()))
		goto fail;
	for (i = 0; i < nkeep; i++) {
		if (found[i]) {
			cJSON_AddItemToObjectCS(out, keep[i].key, found[i]);
			found[i] = NULL;
		}
	}
	return out;
fail:
	for (i = 0; i < nkeep; i++)
		cJSON_Delete(found[i]);
	cJSON_Delete(out);
	return NULL;
}

static cJSON *kp_array(struct kp *k, const struct json_keep *keep)
{
	cJSON *out;

	if (k->depth >= KEPT_MAX_DEPTH || kp_count(k, 1) < 0 || !(out = cJSON_CreateArray()))
		return NULL;
	k->depth++;
	k->p++; /* '[' */
	kp_ws(k);
	if (k->p < k->end && *k->p == ']') {
		k->p++;
		k->depth--;
		return out;
	}
	for (;;) {
		cJSON *e;

		kp_ws(k);
		if (!(e = kp_value(k, keep)))
			break;
		cJSON_AddItemToArray(out, e);
		kp_ws(k);
		if (k->p < k->end && *k->p == ',') {
			k->p++;
			continue;
		}
		if (k->p < k->end && *k->p == ']') {
			k->p++;
			k->depth--;
			return out;
		}
		break;
	}
	cJSON_Delete(out);
	return NULL;
}

/* The value at k->p (no whitespace before it), pruned by keep. */
static cJSON *kp_value(struct kp *k, const struct json_keep *keep)
{
	const char *start = k->p;

	if (k->p >= k->end)
		return NULL;
	if (keep && *k->p == '{')
		return kp_object(k, keep);
	if (keep && *k->p == '[')
		return kp_array(k, keep);
	if (kp_skip(k) < 0)
		return NULL;
	return kp_whole(k, start);
}

cJSON *json_parse_kept(const char *buf, size_t len, const struct json_keep *keep, size_t max_values, int *toobig)
{
	struct kp k = {buf, buf + len, 0, max_values, 0, 0};
	cJSON *v;

	kp_ws(&k);
	v = kp_value(&k, keep);
	if (v) {
		kp_ws(&k);
		if (k.p != k.end) {
			cJSON_Delete(v);
			v = NULL;
		}
	}
	if (toobig)
		*toobig = k.toobig;
	return v;
}
