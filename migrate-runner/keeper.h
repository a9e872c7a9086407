/*
 * keeper.h - renew the Lease on a helper thread while the command runs.
 *
 * A renewal is an HTTP request of up to 5 s; made inside the supervisor's
 * loop it stopped signal forwarding and output draining meanwhile (issue
 * 15 item 7). The keeper owns the lock (and the lock's own kube client)
 * from keeper_start to keeper_stop; the supervisor only polls keeper_fd,
 * which becomes readable once the lock is lost or could not be renewed in
 * time. The thread is started with every signal blocked (sup_init), so
 * signals still reach the supervisor's signalfd only.
 */
#ifndef MR_KEEPER_H
#define MR_KEEPER_H

#include <stdint.h>

#include "lock.h"

struct keeper;

/*
 * Start renewing l every third of lease_ms. name is for messages. Returns
 * NULL (errno set) when the thread or its pipes cannot be created.
 */
struct keeper *keeper_start(struct lock *l, const char *name, int64_t lease_ms);

/* Readable once the keeper gave up on the lock; -1 for a NULL keeper. */
int keeper_fd(const struct keeper *k);

/*
 * After keeper_fd became readable: the ms left before whoever takes over
 * may start (the command must be gone by then), >= 0.
 */
int64_t keeper_budget(struct keeper *k);

/* 1 when the lock was lost (taken, deleted, or not renewed in time). */
int keeper_lost(const struct keeper *k);

/*
 * Stop the thread, waiting for a request in flight until deadline_ms
 * (kube_now_ms clock). Returns 0 when stopped: the lock is the caller's
 * again and k is freed; -1 when the thread is still busy: then neither the
 * lock nor its client may be touched or freed (the process is about to
 * exit anyway). A NULL keeper is stopped.
 */
int keeper_stop(struct keeper *k, int64_t deadline_ms);

#endif
