/*
 * lock.h - a coordination.k8s.io/v1 Lease as a mutual-exclusion lock
 * between migration runs (two quick helm upgrades start two Jobs).
 *
 * Semantics follow client-go leaderelection: the holder renews
 * spec.renewTime; another candidate takes a lease held by someone else only
 * after it has itself watched the lease record stay unchanged for
 * leaseDurationSeconds on its own monotonic clock (clocks of different
 * nodes are never compared). Every write carries the resourceVersion it was
 * based on, so of two racing writers one gets 409 and re-reads.
 * Release clears holderIdentity, so a waiter can take the lease at once.
 */
#ifndef MR_LOCK_H
#define MR_LOCK_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube.h"

/* What a candidate may do with the lease it has just read (pure). */
enum lock_verdict {
	LOCK_FREE,    /* no holder: take it */
	LOCK_OURS,    /* we hold it already (e.g. our container restarted) */
	LOCK_EXPIRED, /* someone else's, unchanged for its lease duration: take over */
	LOCK_HELD,    /* someone else's and alive (as far as we can tell): wait */
};

/* What a candidate remembers between reads, for the local expiry rule. */
struct lock_observation {
	char key[256];       /* holder + renewTime + resourceVersion last seen */
	int64_t observed_ms; /* monotonic time when key was first seen */
};

/*
 * Decide on a lease object. obs is updated (a changed record restarts the
 * expiry clock). now_ms is monotonic. default_lease_s is used when the
 * lease has no valid spec.leaseDurationSeconds. *wait_ms (may be NULL)
 * receives how long until the lease could expire, for LOCK_HELD.
 */
enum lock_verdict lock_decide(const cJSON *lease, const char *holder, int64_t now_ms, int default_lease_s,
                              struct lock_observation *obs, int64_t *wait_ms);

/* "2006-01-02T15:04:05.000000Z" (metav1.MicroTime) for wall-clock ms; buf >= 28 bytes. */
char *lock_micro_time(int64_t wall_ms, char *buf, size_t len);

struct lock;

/*
 * Bind a lock to the client (borrowed, must outlive the lock). name: the
 * Lease; holder: our identity (the pod name). Returns NULL on OOM.
 */
struct lock *lock_new(struct kube_client *kc, const char *name, const char *holder, int lease_s);
void lock_free(struct lock *l);

enum lock_rc {
	LOCK_ACQUIRED = 0,
	LOCK_TIMEOUT,     /* deadline passed while someone else held it */
	LOCK_INTERRUPTED, /* wait_cb returned non-zero */
	LOCK_ERROR,       /* API error: err says which */
};

/*
 * Acquire, waiting until deadline_ms (monotonic). Between reads the lock
 * calls wait_cb(ctx, ms) to sleep; a non-zero return (a signal arrived)
 * stops with LOCK_INTERRUPTED. API errors that persist past a request's
 * retries end with LOCK_ERROR, except unavailability, which is waited out
 * until the deadline.
 */
int lock_acquire(struct lock *l, int64_t deadline_ms, int (*wait_cb)(void *ctx, int64_t ms), void *ctx,
                 struct kube_error *err);

enum lock_renew_rc {
	LOCK_RENEWED = 0,
	LOCK_LOST,      /* someone else holds it now */
	LOCK_RENEW_ERR, /* could not reach the API: try again; err says why */
};
/* Renew once, within deadline_ms (monotonic). */
int lock_renew(struct lock *l, int64_t deadline_ms, struct kube_error *err);

/* Monotonic time of the last successful acquire/renew. */
int64_t lock_last_renew(const struct lock *l);
int lock_lease_seconds(const struct lock *l);
/* The holder seen during the last wait (for messages), or "". */
const char *lock_other_holder(const struct lock *l);

/* Release (clear holderIdentity) if we still hold it. Returns KUBE_OK or an error. */
int lock_release(struct lock *l, int64_t deadline_ms, struct kube_error *err);

#endif
