/*
 * waittcp.h - wait until dependencies (the database) accept TCP
 * connections, with backoff, before the command runs.
 */
#ifndef MR_WAITTCP_H
#define MR_WAITTCP_H

#include <stddef.h>
#include <stdint.h>

struct wtcp_target {
	char host[256];
	char port[8];
	char spec[272]; /* as given, for messages */
};

/* "HOST:PORT" or "[IPv6]:PORT", port 1-65535. Returns 0, or -1 when malformed. */
int wtcp_parse(const char *spec, struct wtcp_target *t);

enum wtcp_rc {
	WTCP_OK = 0,
	WTCP_TIMEOUT,
	WTCP_INTERRUPTED, /* wait_cb returned non-zero */
};

/*
 * Wait for each target in turn until deadline_ms (monotonic ms as
 * mono_now() returns). Name resolution is retried too (DNS of a fresh
 * Service may lag). wait_cb(ctx, ms) sleeps between attempts and returns
 * non-zero to stop. On WTCP_TIMEOUT, *failed (may be NULL) is the index of
 * the target that never answered.
 */
int wtcp_wait(const struct wtcp_target *t, size_t n, int64_t deadline_ms, int64_t (*mono_now)(void),
              int (*wait_cb)(void *ctx, int64_t ms), void *ctx, size_t *failed);

#endif
