/*
 * verdict.h - the release-check evaluator: a pure function from the set of
 * objects of a release (as the API server returns them) to a verdict and
 * one row per object. No I/O, no clock: the caller passes "now" and a
 * lookup of when it first saw a graced state, so unit tests and the fuzzer
 * drive it with plain JSON.
 *
 * Rules (docs/design.md "Verdicts"): healthy when every current-revision workload
 * is rolled out and every selected pod is Ready or Succeeded; failed fast on
 * what will not heal by itself; progressing otherwise. Terminating pods and
 * pods of superseded ReplicaSets are ignored; a Failed pod that a controller
 * replaces (eviction) is not a failure; a Job's own conditions decide for
 * its pods (a Job that failed once and then succeeded is healthy).
 */
#ifndef RC_VERDICT_H
#define RC_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "json.h"

/*
 * The input document: an object with one array per kind, each holding the
 * objects exactly as listed/watched. Missing keys mean "none".
 */
#define VERDICT_KEY_RELEASES "releases" /* Helm release Secrets (metadata only is read) */
#define VERDICT_KEY_DEPLOYMENTS "deployments"
#define VERDICT_KEY_REPLICASETS "replicasets"
#define VERDICT_KEY_STATEFULSETS "statefulsets"
#define VERDICT_KEY_DAEMONSETS "daemonsets"
#define VERDICT_KEY_JOBS "jobs"
#define VERDICT_KEY_PODS "pods"

/* The kinds, in the order of the keys above (the watch specs use it too). */
enum verdict_kind {
	VERDICT_RELEASES,
	VERDICT_DEPLOYMENTS,
	VERDICT_REPLICASETS,
	VERDICT_STATEFULSETS,
	VERDICT_DAEMONSETS,
	VERDICT_JOBS,
	VERDICT_PODS,
	VERDICT_NKINDS,
};

/*
 * One entry per kind (verdict.c): its key in verdict_eval's input, the
 * kind of its rows, where they come in the result, the API collection to
 * list and watch, and the rules (internal.h, opaque here).
 */
struct rc_kind_hooks;
struct verdict_kind_info {
	const char *key;      /* VERDICT_KEY_* */
	const char *row_kind; /* "Deployment" */
	int row_rank;         /* rows are ordered by it */
	const char *api_prefix, *resource, *group,
	    *what; /* "/apis/apps/v1", "deployments", "apps", "deployments.apps" */
	const struct rc_kind_hooks *hooks;
};
extern const struct verdict_kind_info verdict_kinds[VERDICT_NKINDS];

enum verdict {
	VERDICT_PROGRESSING = 0,
	VERDICT_HEALTHY,
	VERDICT_FAILED,
};

enum verdict_status {
	ROW_OK = 0,      /* rolled out / Ready / Succeeded / record deployed */
	ROW_PROGRESSING, /* keep waiting */
	ROW_FAILED,      /* will not heal by itself */
	ROW_IGNORED,     /* shown for completeness, does not count */
};

#define VERDICT_NAME_LEN 254
#define VERDICT_STATE_LEN 48
#define VERDICT_REASON_LEN 512
#define VERDICT_KEY_LEN 200

struct verdict_row {
	char kind[16]; /* "Release", "Deployment", ..., "Pod" */
	char name[VERDICT_NAME_LEN];
	enum verdict_status status;
	int64_t ready, desired;          /* -1 when not applicable */
	char state[VERDICT_STATE_LEN];   /* short: "Available", "CrashLoopBackOff" */
	char reason[VERDICT_REASON_LEN]; /* one line: why (control characters removed) */
	/*
	 * Where to look on failure: the pod and container whose logs explain
	 * it (log_container empty: no logs, e.g. the image never pulled), and
	 * whether the previous instance holds them (crash loops). events_kind
	 * and events_name: the object whose Events to show.
	 */
	char log_pod[VERDICT_NAME_LEN];
	char log_container[VERDICT_NAME_LEN];
	int log_previous;
	char events_kind[16];
	char events_name[VERDICT_NAME_LEN];
	/*
	 * A state that fails only when it persists past the grace
	 * (ErrImagePull, CreateContainerConfigError, ...): grace_key names it
	 * for the caller's first-seen table and fails_at_ms (wall clock, ms
	 * since the epoch) is when it fails if nothing changes. 0/"" otherwise.
	 */
	char grace_key[VERDICT_KEY_LEN];
	int64_t fails_at_ms;
	int grace_ok;      /* the graced state turns ok, not failed, at fails_at_ms (the --min-ready window) */
	int64_t exit_code; /* a failed Job: the migration's exit code (termination message, else the container's); -1 */
	/*
	 * When the object entered this status and state (opts->now_ms of the
	 * evaluation that first saw them; verdict_eval: now).
	 */
	int64_t since_ms;
};

/*
 * When the caller first saw grace_key (wall clock ms), or 0 when it never
 * did. The evaluator only reads; the caller records the keys of the rows it
 * gets back (first_seen_record below is the usual way).
 */
typedef int64_t (*verdict_first_seen_fn)(const void *ctx, const char *grace_key);

struct verdict_opts {
	const char *release; /* Helm release name, or NULL: no release record expected */
	/*
	 * The caller's clock in ms, on which every grace is measured from when
	 * the caller first saw the state: release-check passes its monotonic
	 * clock. Never compared with a server timestamp (a CI clock that is
	 * off would fail or pass a grace at once).
	 */
	int64_t now_ms;
	int64_t pull_grace_ms;  /* grace for image pulls that may heal, CreateContainerConfigError; <0 = default 60 s */
	int64_t sched_grace_ms; /* grace for an Unschedulable pod with no sign of scale-up; <=0 = default 5 min */
	int64_t min_ready_ms;   /* a pod counts once Ready without a restart this long; 0 = at once */
	verdict_first_seen_fn first_seen; /* may be NULL */
	const void *first_seen_ctx;
};

#define VERDICT_DEFAULT_PULL_GRACE_MS 60000
#define VERDICT_DEFAULT_SCHED_GRACE_MS 300000

struct verdict_result {
	enum verdict verdict;
	char summary[VERDICT_REASON_LEN]; /* one line */
	struct verdict_row *rows;         /* nrows rows, kinds in a fixed order */
	size_t nrows;
	size_t nconsidered;    /* workloads and pods that counted */
	size_t nskipped;       /* workloads not counted by design (paused, suspended) */
	int64_t recheck_at_ms; /* earliest fails_at_ms of a progressing row, 0 = none */
	int64_t now_ms;        /* opts->now_ms of the update the rows are of */
	int release_missing;   /* opts->release has no Helm record here: failed, a configuration error */
	/* the Helm release record, when one was found */
	int64_t helm_revision; /* -1: none */
	char helm_status[32];
};

/*
 * Evaluate objects (see the keys above; NULL or not an object = empty) into
 * *out. Returns 0, or -1 when out of memory. The caller frees *out with
 * verdict_result_free (also after a failure).
 */
int verdict_eval(const cJSON *objects, const struct verdict_opts *opts, struct verdict_result *out);
void verdict_result_free(struct verdict_result *r);

/*
 * The same rules, incrementally, for a watch of a large release: a store of
 * the objects (pruned copies: only the fields the rules read), indexed by
 * uid, name and owner, with each object's row cached. An update re-judges
 * only the objects that changed and the ones that read them (a pod reads
 * its ReplicaSet, that one's Deployment and siblings, its Job), so one
 * watch event costs O(1) however large the release; verdict_eval is this
 * store filled from a document, so both paths share every rule.
 *
 * opts->release and pull_grace_ms must stay the same for a store's life.
 * With opts->first_seen NULL the store records when it first saw each
 * grace_key itself (unbounded, per object).
 */
struct verdict_store;

struct verdict_counts {
	enum verdict verdict;
	size_t nfailed, nprogressing, nconsidered;
	int64_t recheck_at_ms; /* as in verdict_result */
	int release_missing;   /* as in verdict_result */
};

/* NULL when out of memory. verdict_store_free(NULL) is a no-op. */
struct verdict_store *verdict_store_new(void);
void verdict_store_free(struct verdict_store *st);

/*
 * ADDED/MODIFIED: store a pruned copy of obj (replacing the object with
 * the same uid, else the same name; non-objects are ignored). DELETED:
 * forget it. Returns 0, or -1 when out of memory (the store is unchanged).
 */
int verdict_store_put(struct verdict_store *st, enum verdict_kind k, const cJSON *obj);
/*
 * verdict_store_put of a tree the caller gives away (the store frees it):
 * one parsed with verdict_keep(k) (json_parse_kept), so no copy is made.
 * More than verdict_keep keeps is kept, and harmless; less reads as missing.
 */
int verdict_store_put_owned(struct verdict_store *st, enum verdict_kind k, cJSON *obj);
void verdict_store_delete(struct verdict_store *st, enum verdict_kind k, const cJSON *obj);
/*
 * A relist: _begin marks the kind's objects stale, puts refresh them,
 * _end drops the ones the list did not deliver (as deletions), so a relist
 * reports only real changes.
 */
void verdict_store_relist_begin(struct verdict_store *st, enum verdict_kind k);
void verdict_store_relist_end(struct verdict_store *st, enum verdict_kind k);
size_t verdict_store_count(const struct verdict_store *st, enum verdict_kind k);

/*
 * Row callback of an update: row is new or changed (status, ready/desired,
 * state or reason), or gone (the object was deleted or has no row any more;
 * only kind and name are meaningful then). row is valid during the call.
 */
typedef void (*verdict_change_fn)(void *ctx, const struct verdict_row *row, int gone);

/*
 * Re-judge what changed since the last update (and the graced rows whose
 * time has come), calling changed (may be NULL) for each row that changed,
 * and fill *counts. Returns 0, or -1 when out of memory.
 */
int verdict_store_update(struct verdict_store *st, const struct verdict_opts *opts, verdict_change_fn changed,
                         void *ctx, struct verdict_counts *counts);
/*
 * All rows of the last update, with the summary, into *out (the caller
 * frees it with verdict_result_free). O(objects): for reports, not per event.
 */
int verdict_store_result(const struct verdict_store *st, struct verdict_result *out);

/*
 * The fields of obj the rules read, as a new tree (the caller
 * cJSON_Deletes it), NULL when out of memory. Non-objects read as null.
 * Drops managedFields, specs, most annotations and every Secret payload.
 */
cJSON *verdict_prune(enum verdict_kind k, const cJSON *obj);
/* What verdict_prune keeps of kind k: the watch parses only that (json_parse_kept). */
const struct json_keep *verdict_keep(enum verdict_kind k);

const char *verdict_name(enum verdict v);               /* "healthy", "failed", "progressing" */
const char *verdict_status_name(enum verdict_status s); /* "ok", "progressing", "failed", "ignored" */

/*
 * The machine-readable form of one row / of the whole result (a graced
 * row says "failsInSeconds" / "readyInSeconds" from now_ms; the result's
 * now_ms is that of its update). The caller
 * cJSON_Deletes the returned tree; NULL when out of memory.
 */
cJSON *verdict_row_json(const struct verdict_row *row, int64_t now_ms);
cJSON *verdict_result_json(const struct verdict_result *r);

/*
 * A small bounded first-seen table for the caller: verdict_first_seen_fn
 * over it, and recording of the grace keys of a result (keys no longer
 * present are dropped, so a state that clears and comes back starts a new
 * grace).
 */
#define FIRST_SEEN_MAX 512
struct first_seen_table {
	struct {
		char key[VERDICT_KEY_LEN];
		int64_t ms;
	} e[FIRST_SEEN_MAX];
	size_t n;
};
int64_t first_seen_lookup(const void *table, const char *grace_key);
void first_seen_record(struct first_seen_table *t, const struct verdict_result *r, int64_t now_ms);

#endif
