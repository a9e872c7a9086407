/*
 * watch.h - list-then-watch of one or more collections, multiplexed on one
 * thread (curl multi), feeding decoded objects to a callback.
 *
 * For each spec: LIST (collecting resourceVersion), deliver the items, then
 * WATCH from that version with allowWatchBookmarks and a server timeout;
 * re-watch on EOF; relist on 410 (HTTP or ERROR event); back off with jitter
 * on 5xx/connection errors; honour Retry-After on 429. Every watch line and
 * list body has a size cap. Idle waiting sleeps in poll(): ~0 CPU.
 */
#ifndef MG_WATCH_H
#define MG_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "kube.h"

enum watch_event {
	WATCH_RESET,    /* a (re)list starts: forget what this spec delivered */
	WATCH_ADDED,    /* obj: the object */
	WATCH_MODIFIED, /* obj: the object */
	WATCH_DELETED,  /* obj: the last state */
	WATCH_SYNCED,   /* the list was delivered: the view is complete */
};

struct watch_spec {
	const char *path;           /* collection, e.g. /apis/batch/v1/namespaces/ns/jobs */
	const char *label_selector; /* or NULL */
	const char *field_selector; /* or NULL; metadata.name=X lets RBAC resourceNames apply */
	const char *what;           /* for messages: "jobs.batch" */
	/*
	 * Ask for PartialObjectMetadata (labels, annotations, owners only):
	 * Helm release Secrets carry megabytes of payload nobody here reads.
	 * A server that does not support it answers full objects, which is
	 * fine for callers that read metadata only.
	 */
	int metadata_only;
	/*
	 * What the callback reads of each object (json_parse_kept), or NULL:
	 * all of it. Parsing only that is most of the cost of a watch: the rest
	 * of a pod (managedFields, spec) is scanned, never built. The watch adds
	 * what it reads itself (metadata.resourceVersion; code, message and
	 * reason of an ERROR event). Keys of one array are distinct.
	 */
	const struct json_keep *keep;
};

/*
 * Return 0 to go on, 1 to stop successfully (watch_run returns KUBE_OK),
 * -1 to abort (watch_run returns KUBE_ECANCELLED). obj is only valid during
 * the call.
 */
typedef int (*watch_cb)(void *ctx, size_t spec_index, enum watch_event ev, const cJSON *obj);

/*
 * Inside a watch_cb for ADDED, MODIFIED or DELETED of a spec with a keep:
 * detach obj and hand it to the caller (who cJSON_Deletes it), saving the
 * copy a store would make. NULL when it is not the object being delivered
 * or the spec has no keep (obj is then a part of a larger tree).
 */
cJSON *watch_take(const cJSON *obj);

struct watch_opts {
	int timeout_seconds; /* server-side watch timeout; 0 = 300 */
	int64_t deadline_ms; /* absolute (kube_now_ms); 0 = none */
	/*
	 * on_tick runs every tick_ms (0 = never), and also once when the
	 * caller-owned *wake_at (absolute kube_now_ms time; may be NULL) is
	 * reached; the loop zeroes *wake_at before that call. The callbacks may
	 * set *wake_at through their ctx: an alarm for a state that changes
	 * with time alone (a grace period expiring) while no event arrives.
	 * Return values as for watch_cb.
	 */
	int64_t tick_ms;
	int64_t *wake_at;
	int (*on_tick)(void *ctx);
	/*
	 * Consecutive failed attempts (connection errors, 5xx) after which
	 * on_unavailable is called once per failure streak; the watch keeps
	 * retrying until the deadline.
	 */
	void (*on_unavailable)(void *ctx, const struct kube_error *err);
	size_t max_line; /* watch line cap; 0 = 16 MiB */
	size_t max_list; /* list body cap; 0 = 256 MiB */
	/*
	 * Items per list answer (limit/continue, as kubectl's --chunk-size):
	 * a large namespace is listed in pages, each parsed and delivered
	 * before the next is asked for, so memory holds one page's body, not
	 * the whole list's. The pages are one consistent snapshot (the
	 * server's continue token); WATCH_RESET comes before the first and
	 * WATCH_SYNCED after the last. A token that expires between pages
	 * (410) restarts the list. 0: the whole list in one answer.
	 */
	unsigned list_chunk;
};

/*
 * Run until the callback stops, the deadline passes (KUBE_ETIMEOUT; err
 * tells whether the server was unreachable at that moment with
 * err->http_status == 0 and err->reason "Unavailable"), or a fatal error:
 * 401 after a token refresh (KUBE_EUNAUTHORIZED), 403 (KUBE_EFORBIDDEN),
 * TLS failure (KUBE_ETLS). err->message names the verb and resource.
 */
int watch_run(struct kube_client *kc, const struct watch_spec *specs, size_t nspecs, const struct watch_opts *opts,
              watch_cb cb, void *ctx, struct kube_error *err);

#endif
