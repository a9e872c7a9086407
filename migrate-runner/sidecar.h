/*
 * sidecar.h - wait for a service-mesh proxy to be ready, and ask it to quit
 * when we are done: a Job's pod only completes when every container has
 * exited, and proxies do not exit by themselves (istio#11045).
 *
 * Plain HTTP to loopback with libcurl: no credentials are ever attached,
 * proxy environment variables are ignored.
 */
#ifndef MR_SIDECAR_H
#define MR_SIDECAR_H

#include <stdint.h>

struct sidecar {
	char kind[16]; /* "istio", "linkerd" or "url" */
	char quit_url[512];
	char ready_url[512]; /* "" when there is no known readiness endpoint */
};

/*
 * "istio", "linkerd", or an http:// URL to POST to. ready_url may be NULL;
 * it overrides the readiness endpoint. Returns 0, or -1 when malformed.
 */
int sidecar_parse(const char *spec, const char *ready_url, struct sidecar *out);

enum sidecar_rc {
	SIDECAR_READY = 0,
	SIDECAR_TIMEOUT,
	SIDECAR_INTERRUPTED,
	SIDECAR_NO_READY_URL,
};

/* Poll ready_url until it answers 2xx, until deadline_ms (mono_now clock). */
int sidecar_wait_ready(const struct sidecar *s, int64_t deadline_ms, int64_t (*mono_now)(void),
                       int (*wait_cb)(void *ctx, int64_t ms), void *ctx);

/*
 * POST to quit_url with a short timeout and a few retries. Never fails the
 * run: a refused or disabled endpoint is a warning. Returns 0 when the proxy
 * acknowledged (2xx), -1 otherwise.
 */
int sidecar_quit(const struct sidecar *s);

#endif
