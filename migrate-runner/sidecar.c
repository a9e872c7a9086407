/*
 * sidecar.c - service-mesh proxy readiness and quit (see sidecar.h).
 */
#include "sidecar.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "log.h"

/* Well-known endpoints: Istio's pilot-agent and Linkerd's proxy admin port. */
#define ISTIO_QUIT "http://127.0.0.1:15020/quitquitquit"
#define ISTIO_READY "http://127.0.0.1:15021/healthz/ready"
#define LINKERD_QUIT "http://127.0.0.1:4191/shutdown"
#define LINKERD_READY "http://127.0.0.1:4191/ready"

#define QUIT_ATTEMPTS 3
#define QUIT_TIMEOUT_MS 2000

static int http_url(const char *s)
{
	return s && (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0) && strlen(s) < 512 &&
	       !strpbrk(s, " \t\r\n");
}

int sidecar_parse(const char *spec, const char *ready_url, struct sidecar *out)
{
	memset(out, 0, sizeof(*out));
	if (!spec)
		return -1;
	if (strcmp(spec, "istio") == 0) {
		snprintf(out->kind, sizeof(out->kind), "istio");
		snprintf(out->quit_url, sizeof(out->quit_url), "%s", ISTIO_QUIT);
		snprintf(out->ready_url, sizeof(out->ready_url), "%s", ISTIO_READY);
	} else if (strcmp(spec, "linkerd") == 0) {
		snprintf(out->kind, sizeof(out->kind), "linkerd");
		snprintf(out->quit_url, sizeof(out->quit_url), "%s", LINKERD_QUIT);
		snprintf(out->ready_url, sizeof(out->ready_url), "%s", LINKERD_READY);
	} else if (http_url(spec)) {
		snprintf(out->kind, sizeof(out->kind), "url");
		snprintf(out->quit_url, sizeof(out->quit_url), "%s", spec);
	} else {
		return -1;
	}
	if (ready_url && *ready_url) {
		if (!http_url(ready_url))
			return -1;
		snprintf(out->ready_url, sizeof(out->ready_url), "%s", ready_url);
	}
	return 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

/* One request; returns the HTTP status, or -1 with why filled. */
static long http_call(const char *url, int post, long timeout_ms, char *why, size_t whylen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	long status = -1;
	CURLcode rc;

	if (!c) {
		snprintf(why, whylen, "curl_easy_init failed");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* loopback: never through an HTTP(S)_PROXY from the environment */
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "migrate-runner/" MG_VERSION);
	if (post) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	return status;
}

int sidecar_wait_ready(const struct sidecar *s, int64_t deadline_ms, int64_t (*mono_now)(void),
                       int (*wait_cb)(void *ctx, int64_t ms), void *ctx)
{
	int64_t backoff = 100;
	char why[256] = "";
	int attempts = 0;

	if (!s->ready_url[0])
		return SIDECAR_NO_READY_URL;
	log_info("waiting for the %s sidecar to be ready (%s)", s->kind, s->ready_url);
	for (;;) {
		int64_t left = deadline_ms - mono_now();
		long st;

		if (left <= 0) {
			log_error("the %s sidecar was not ready in time (last: %s)", s->kind, why[0] ? why : "none");
			return SIDECAR_TIMEOUT;
		}
		attempts++;
		st = http_call(s->ready_url, 0, left < 2000 ? left : 2000, why, sizeof(why));
		if (st >= 200 && st < 300) {
			log_info("the %s sidecar is ready", s->kind);
			return SIDECAR_READY;
		}
		if (st > 0)
			snprintf(why, sizeof(why), "HTTP %ld", st);
		if (attempts == 1 || attempts % 10 == 0)
			log_info("%s sidecar not ready yet: %s", s->kind, why);
		left = deadline_ms - mono_now();
		if (left > 0 && wait_cb(ctx, backoff < left ? backoff : left) != 0)
			return SIDECAR_INTERRUPTED;
		if (backoff < 1000)
			backoff *= 2;
	}
}

int sidecar_quit(const struct sidecar *s)
{
	char why[256] = "";

	for (int i = 0; i < QUIT_ATTEMPTS; i++) {
		long st = http_call(s->quit_url, 1, QUIT_TIMEOUT_MS, why, sizeof(why));

		if (st >= 200 && st < 300) {
			log_info("asked the %s sidecar to quit", s->kind);
			return 0;
		}
		if (st >= 400 && st < 500) {
			/* a disabled endpoint (Linkerd without shutdown enabled) will not change */
			log_warn("the %s sidecar refused to quit: HTTP %ld from %s (endpoint disabled?)", s->kind, st,
			         s->quit_url);
			return -1;
		}
		if (st > 0)
			snprintf(why, sizeof(why), "HTTP %ld", st);
		if (i + 1 < QUIT_ATTEMPTS) {
			struct timespec ts = {0, 200000000L * (i + 1)};
			nanosleep(&ts, NULL);
		}
	}
	log_warn("could not ask the %s sidecar to quit (%s): %s; the pod may not complete", s->kind, s->quit_url, why);
	return -1;
}
