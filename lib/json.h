/*
 * json.h - small read-only helpers over cJSON trees from the API server.
 *
 * Only case-sensitive lookups: Kubernetes field names are case-sensitive and
 * a lenient match can read the wrong field. Nothing here allocates unless
 * its comment says so.
 */
#ifndef MG_JSON_H
#define MG_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

/*
 * Follow a dotted path of object keys ("status.conditions"). A key cannot
 * contain '.'. Returns the node or NULL when any step is missing or is not
 * an object.
 */
const cJSON *json_path(const cJSON *root, const char *dotted);
/* The string at path, or NULL when missing or not a string. */
const char *json_str(const cJSON *root, const char *dotted);
/* The integer at path, or def when missing or not a number. */
int64_t json_int(const cJSON *root, const char *dotted, int64_t def);
/* 1 when the value at path is JSON true, else 0. */
int json_bool(const cJSON *root, const char *dotted);

/*
 * The element of the array at status.conditions whose "type" equals type,
 * or NULL. json_condition_true() is 1 when that condition's status is "True".
 */
const cJSON *json_condition(const cJSON *obj, const char *type);
int json_condition_true(const cJSON *obj, const char *type);

/*
 * Parse an RFC 3339 timestamp ("2024-01-02T03:04:05Z", optional fraction,
 * "Z" or "+hh:mm") into milliseconds since the epoch. Returns 0 or -1.
 */
int json_parse_time(const char *s, int64_t *ms);
/* Format ms since the epoch as RFC 3339 UTC with seconds into buf (>= 21 bytes). */
char *json_format_time(int64_t ms, char *buf, size_t len);

/*
 * Parse at most len bytes. Returns a tree the caller frees with
 * cJSON_Delete, or NULL for invalid JSON (trailing garbage included) and
 * for more than JSON_MAX_VALUES values (~160 MB of tree; a list of 3000
 * pods has ~1M). json_parse_capped takes the cap and sets *toobig (may be
 * NULL) when that is why it refused.
 */
#define JSON_MAX_VALUES (2u << 20)
cJSON *json_parse(const char *buf, size_t len);
cJSON *json_parse_capped(const char *buf, size_t len, size_t max_values, int *toobig);
/* An upper bound of the number of values in buf (one linear pass). */
size_t json_count_values(const char *buf, size_t len);

/*
 * What to keep of a JSON value: an array of keys ending with {NULL, NULL}.
 * sub says what to keep below that key (in each element, when the value is
 * an array); NULL keeps the whole value. A value of another type than an
 * object or array is always kept whole.
 */
struct json_keep {
	const char *key;
	const struct json_keep *sub;
};
#define JSON_KEEP_MAX 32 /* keys of one json_keep array, at most */
/*
 * Parse buf like json_parse_capped, but build only what keep names: the
 * same tree as pruning the full parse (the first of duplicate keys, kept
 * keys in keep's order), without building what is dropped. A watch event
 * of a pod is ~200 values, of which release-check reads ~40. Strict
 * RFC 8259 (what cJSON accepts, less its leniencies). max_values caps the
 * values built (*toobig, may be NULL, set when that is why it refused).
 * The kept keys point into keep (cJSON_StringIsConst): keep must outlive
 * the tree. keep NULL: the whole value.
 */
cJSON *json_parse_kept(const char *buf, size_t len, const struct json_keep *keep, size_t max_values, int *toobig);

#endif
