/*
 * fields.c - reading the fields of API objects for release-check's rules,
 * and filling their rows. Every field may be missing or of the wrong type
 * (the fuzzer sees to it): read through the json_* helpers, which return
 * NULL/defaults, and copy cluster-supplied text through rc_clean_copy.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "json.h"

/*
 * Copy a cluster-supplied string for display: control characters (newlines,
 * ESC of terminal escape sequences) become spaces, so a message cannot
 * break the one-line format or drive the terminal.
 */
void rc_clean_copy(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	if (!cap)
		return;
	for (; src && *src && n + 1 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		dst[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[n] = '\0';
}

void rc_fmt(char *dst, size_t cap, const char *f, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, f);
	vsnprintf(tmp, sizeof(tmp), f, ap);
	va_end(ap);
	rc_clean_copy(dst, cap, tmp);
}

const char *rc_nz(const char *s) { return s ? s : ""; }

const cJSON *rc_arr(const cJSON *doc, const char *key)
{
	const cJSON *a = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, key) : NULL;
	return cJSON_IsArray(a) ? a : NULL;
}

int rc_streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* A label or annotation value. */
const char *rc_meta(const cJSON *obj, const char *map, const char *key)
{
	const cJSON *m = json_path(obj, map);
	const cJSON *v = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A non-negative decimal integer written as a string ("12"), else -1. */
int64_t rc_parse_uint(const char *s)
{
	int64_t v = 0;

	if (!s || !*s || strlen(s) > 15)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

int64_t rc_time_of(const cJSON *obj, const char *path)
{
	int64_t ms;
	return json_parse_time(json_str(obj, path), &ms) == 0 ? ms : 0;
}

/* A count from status/spec: missing, negative or absurd reads as def. */
int64_t rc_count(const cJSON *obj, const char *path, int64_t def)
{
	int64_t v = json_int(obj, path, def);
	return (v < 0 || v > 1000000000) ? def : v;
}

/*
 * The controller owner reference (controller: true), else the first owner
 * reference that names a kind, else NULL.
 */
const cJSON *rc_owner_ref(const cJSON *obj)
{
	const cJSON *refs = json_path(obj, "metadata.ownerReferences");
	const cJSON *r, *first = NULL;

	if (!cJSON_IsArray(refs))
		return NULL;
	cJSON_ArrayForEach (r, refs) {
		if (!json_str(r, "kind"))
			continue;
		if (json_bool(r, "controller"))
			return r;
		if (!first)
			first = r;
	}
	return first;
}
int rc_owned_by(const cJSON *obj, const cJSON *owner)
{
	const cJSON *ref = rc_owner_ref(obj);
	const char *uid = json_str(ref, "uid"), *ouid = json_str(owner, "metadata.uid");

	if (!ref || !rc_streq(json_str(ref, "name"), json_str(owner, "metadata.name")))
		return 0;
	return !(uid && ouid && strcmp(uid, ouid) != 0);
}

/* metadata.generation > status.observedGeneration: the controller lags. */
int rc_generation_pending(const cJSON *obj, int64_t *gen, int64_t *obs)
{
	*gen = json_int(obj, "metadata.generation", 0);
	*obs = json_int(obj, "status.observedGeneration", -1);
	return *gen > 0 && *obs < *gen;
}

/* The object's row (one per object at most). */
struct verdict_row *rc_add_row(struct eval *ev, const char *kind, const cJSON *obj)
{
	struct verdict_row *row = &ev->row;

	ev->has_row = 1;
	memset(row, 0, sizeof(*row));
	rc_clean_copy(row->kind, sizeof(row->kind), kind);
	rc_clean_copy(row->name, sizeof(row->name), json_str(obj, "metadata.name"));
	if (!row->name[0])
		rc_clean_copy(row->name, sizeof(row->name), "(unnamed)");
	row->ready = row->desired = -1;
	row->exit_code = -1;
	row->status = ROW_PROGRESSING;
	return row;
}

void rc_set_events(struct verdict_row *row, const char *kind, const char *name)
{
	rc_clean_copy(row->events_kind, sizeof(row->events_kind), kind);
	rc_clean_copy(row->events_name, sizeof(row->events_name), name);
}

void rc_set_logs(struct verdict_row *row, const char *pod, const char *container, int previous)
{
	rc_clean_copy(row->log_pod, sizeof(row->log_pod), pod);
	rc_clean_copy(row->log_container, sizeof(row->log_container), container);
	row->log_previous = container ? previous : 0;
}
/* rc_owner_ref of obj: the one the store read when it indexed the object being judged. */
const cJSON *rc_ref_of(const struct eval *ev, const cJSON *obj)
{
	return ev->cur && ev->cur->obj == obj ? ev->cur->ref : rc_owner_ref(obj);
}

/* uid, else name: what identifies an object across events */
const char *rc_obj_id(const cJSON *obj)
{
	const char *uid = json_str(obj, "metadata.uid");
	return uid && uid[0] ? uid : json_str(obj, "metadata.name");
}

uint64_t rc_sig_str(uint64_t h, const char *s)
{
	h = (h ^ (s ? 1u : 2u)) * 1099511628211ULL;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

uint64_t rc_sig_int(uint64_t h, int64_t v) { return (h ^ (uint64_t)v) * 1099511628211ULL; }
