/*
 * store.h - where the outcome record goes: the termination log, and the
 * ConfigMap that keeps outcomes after the Job is gone (the JSON itself is
 * lib/record.h's).
 *
 * Contract (docs/design.md "The outcome record"): status, reason, exitCode,
 * signal, startedAt, finishedAt, durationSeconds, job, pod, attempt,
 * outputTail. Never the command arguments, never a token.
 */
#ifndef MR_STORE_H
#define MR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube.h"
#include "record.h"

/*
 * Write json to path (truncating). create: also create the file (an
 * explicit --termination-log); otherwise the file must exist. Returns 0 or
 * an errno value.
 */
int rec_write_file(const char *path, int create, const char *json);

/*
 * Pure: set cm.data[key] = value in a ConfigMap object and prune other keys
 * that hold records (oldest finishedAt first) while there are more than
 * max_keys keys or the data exceeds max_bytes. Keys that do not hold a
 * record are never removed. *pruned (may be NULL) receives the number of
 * keys removed. Returns 0, or -1 on OOM / when cm is not an object.
 */
int rec_cm_put(cJSON *cm, const char *key, const char *value, size_t max_keys, size_t max_bytes, size_t *pruned);

/* A ConfigMap key must be [-._a-zA-Z0-9]+, at most 253 bytes. */
int rec_valid_key(const char *key);

struct rec_store_opts {
	const char *name; /* ConfigMap */
	const char *key;
	size_t max_keys;
	size_t max_bytes;
	int64_t deadline_ms; /* absolute, kube_now_ms clock */
};

/*
 * Create or update the ConfigMap with data[key] = value: GET, then POST on
 * 404 or PUT with the read resourceVersion; a 409 re-reads and retries
 * until the deadline. Returns KUBE_OK or the failing kube_rc with err set.
 */
int rec_store(struct kube_client *kc, const struct rec_store_opts *o, const char *value, struct kube_error *err);

/*
 * Read data[key] of the ConfigMap. *value is a copy the caller frees, or
 * NULL when the ConfigMap or the key does not exist (still KUBE_OK).
 */
int rec_load(struct kube_client *kc, const char *name, const char *key, int64_t deadline_ms, char **value,
             struct kube_error *err);

#endif
