/*
 * tail.c - fixed-size ring of the last output lines (see tail.h).
 */
#include "tail.h"

#include "record.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct partial {
	char *buf;
	size_t len;
	int cut; /* the line was longer than the slot */
};

struct tail {
	size_t max_lines, max_line_len;
	char *slots;  /* max_lines * max_line_len */
	size_t *lens; /* length of each slot */
	size_t head;  /* index of the oldest line */
	size_t count;
	struct partial part[2];
	char *partbuf;
};

struct tail *tail_new(size_t max_lines, size_t max_line_len)
{
	struct tail *t;

	if (max_lines == 0 || max_line_len < 8)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->max_lines = max_lines;
	t->max_line_len = max_line_len;
	t->slots = malloc(max_lines * max_line_len);
	t->lens = calloc(max_lines, sizeof(*t->lens));
	t->partbuf = malloc(2 * max_line_len);
	if (!t->slots || !t->lens || !t->partbuf) {
		tail_free(t);
		return NULL;
	}
	t->part[0].buf = t->partbuf;
	t->part[1].buf = t->partbuf + max_line_len;
	return t;
}

void tail_free(struct tail *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->lens);
	free(t->partbuf);
	free(t);
}

static void commit(struct tail *t, struct partial *p)
{
	size_t idx;

	if (t->count < t->max_lines) {
		idx = (t->head + t->count) % t->max_lines;
		t->count++;
	} else {
		idx = t->head;
		t->head = (t->head + 1) % t->max_lines;
	}
	memcpy(t->slots + idx * t->max_line_len, p->buf, p->len);
	t->lens[idx] = p->len;
	p->len = 0;
	p->cut = 0;
}

void tail_feed(struct tail *t, int stream, const char *buf, size_t len)
{
	struct partial *p;

	if (!t || stream < 0 || stream > 1)
		return;
	p = &t->part[stream];
	/*
	 * A big chunk from a chatty migration: only its last max_lines
	 * complete lines can stay in the ring, so start right after the
	 * newline before them instead of copying every line in (some three
	 * million lines per 256 MB). The partial line ends in the skipped
	 * part and would be evicted too.
	 */
	if (len > 2 * t->max_lines) {
		size_t seen = 0, end = len;
		const char *nl;

		while ((nl = memrchr(buf, '\n', end)) != NULL) {
			end = (size_t)(nl - buf);
			if (++seen == t->max_lines + 1) {
				p->len = 0;
				p->cut = 0;
				buf = nl + 1;
				len -= end + 1;
				break;
			}
		}
	}
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;
		size_t room = t->max_line_len - p->len;

		if (n > room) {
			p->cut = 1;
			memcpy(p->buf + p->len, buf, room);
			p->len += room;
		} else {
			memcpy(p->buf + p->len, buf, n);
			p->len += n;
		}
		if (!nl)
			break;
		commit(t, p);
		buf = nl + 1;
		len -= n + 1;
	}
}

void tail_flush(struct tail *t)
{
	if (!t)
		return;
	for (int i = 0; i < 2; i++)
		if (t->part[i].len > 0)
			commit(t, &t->part[i]);
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

/* Copy src to dst replacing invalid UTF-8 and NUL bytes with '?'. */
static size_t sanitize(char *dst, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	while (i < n) {
		size_t k = s[i] ? utf8_seq(s + i, n - i) : 0;
		if (k == 0) {
			dst[o++] = '?';
			i++;
		} else {
			memcpy(dst + o, s + i, k);
			o += k;
			i += k;
		}
	}
	return o;
}

/*
 * Redaction (issue 15 item 14): the tail goes into a ConfigMap that every
 * app pod's wait-for-job prints. Mask the obvious: URL passwords
 * (scheme://user:PASS@), values of keys that name a secret (password=,
 * "token": ..., client_secret: ...), and Bearer/Basic credentials.
 */
static const char *const secret_keys[] = {
    "password", "passwd",  "pwd",        "secret",      "token",       "apikey",
    "api_key",  "api-key", "access_key", "private_key", "credentials", "authorization",
};

#define MASK "***"

static int is_ident(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'; }

static int is_value_end(char c) { return !c || isspace((unsigned char)c) || strchr("&;,\"'<>()[]{}", c); }

/* The identifier ending at s + end names a secret. */
static int secret_key_before(const char *s, size_t end)
{
	size_t b = end;

	while (b > 0 && is_ident(s[b - 1]))
		b--;
	for (size_t k = 0; k < sizeof(secret_keys) / sizeof(secret_keys[0]); k++) {
		size_t n = strlen(secret_keys[k]);
		if (end - b >= n && strncasecmp(s + end - n, secret_keys[k], n) == 0)
			return 1;
	}
	return 0;
}

/* Length of the value at p: up to the closing quote when quoted, else a separator. */
static size_t value_len(const char *p, char quote)
{
	size_t n = 0;

	if (quote) {
		while (p[n] && p[n] != quote && p[n] != '\n')
			n++;
		return n;
	}
	while (!is_value_end(p[n]))
		n++;
	return n;
}

/* "Bearer x" / "Basic x" at p (case-insensitive): the scheme's length with its space, else 0. */
static size_t auth_scheme(const char *p)
{
	if (strncasecmp(p, "bearer ", 7) == 0)
		return 7;
	if (strncasecmp(p, "basic ", 6) == 0)
		return 6;
	return 0;
}

struct red {
	const char *s;
	size_t i;
	char *out;
	size_t o;
};

static void copy(struct red *r, size_t n)
{
	memcpy(r->out + r->o, r->s + r->i, n);
	r->o += n;
	r->i += n;
}

static void mask(struct red *r, size_t n)
{
	memcpy(r->out + r->o, MASK, sizeof(MASK) - 1);
	r->o += sizeof(MASK) - 1;
	r->i += n;
}

/* scheme://user:PASS@host: returns 1 when handled. */
static int redact_url(struct red *r)
{
	const char *a = r->s + r->i + 3;
	size_t n = 0, colon = 0;

	if (strncmp(r->s + r->i, "://", 3) != 0)
		return 0;
	while (a[n] && a[n] != '@' && a[n] != '/' && !isspace((unsigned char)a[n]) && a[n] != '"' && a[n] != '\'') {
		if (a[n] == ':' && !colon)
			colon = n + 1;
		n++;
	}
	if (a[n] != '@' || !colon || colon == n)
		return 0;
	copy(r, 3 + colon);
	mask(r, n - colon);
	return 1;
}

/* key=VALUE, key: VALUE, "key": "VALUE" for a secret key: returns 1 when handled. */
static int redact_value(struct red *r)
{
	const char *s = r->s;
	size_t k = r->i, n;
	char quote = 0;

	if (s[r->i] != '=' && s[r->i] != ':')
		return 0;
	if (k > 0 && (s[k - 1] == '"' || s[k - 1] == '\''))
		k--;
	if (!secret_key_before(s, k))
		return 0;
	copy(r, 1);
	while (s[r->i] == ' ' || s[r->i] == '\t')
		copy(r, 1);
	if (s[r->i] == '"' || s[r->i] == '\'') {
		quote = s[r->i];
		copy(r, 1);
	}
	copy(r, auth_scheme(s + r->i));
	n = value_len(s + r->i, quote);
	if (n > 0)
		mask(r, n);
	return 1;
}

/* Bearer TOKEN anywhere: returns 1 when handled. */
static int redact_bearer(struct red *r)
{
	size_t n;

	if ((r->i > 0 && is_ident(r->s[r->i - 1])) || strncasecmp(r->s + r->i, "bearer ", 7) != 0)
		return 0;
	copy(r, 7);
	n = value_len(r->s + r->i, 0);
	if (n > 0)
		mask(r, n);
	return 1;
}

char *tail_redact(const char *s)
{
	size_t len = strlen(s);
	/* a mask of 3 bytes replaces at least 1: at most 3 times as long */
	struct red r = {s, 0, malloc(3 * len + 1), 0};

	if (!r.out)
		return NULL;
	while (r.i < len)
		if (!redact_url(&r) && !redact_value(&r) && !redact_bearer(&r))
			copy(&r, 1);
	r.out[r.o] = '\0';
	return r.out;
}

char *tail_text(const struct tail *t, size_t max_bytes)
{
	size_t total = 0, o = 0;
	char *out, *red;

	if (!t)
		return strdup("");
	for (size_t i = 0; i < t->count; i++)
		total += t->lens[(t->head + i) % t->max_lines] + 1;
	out = malloc(total + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < t->count; i++) {
		size_t idx = (t->head + i) % t->max_lines;
		if (i > 0)
			out[o++] = '\n';
		o += sanitize(out + o, t->slots + idx * t->max_line_len, t->lens[idx]);
	}
	out[o] = '\0';
	red = tail_redact(out);
	free(out);
	if (red)
		rec_trim_front(red, max_bytes);
	return red;
}
