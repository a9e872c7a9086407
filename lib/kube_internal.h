/*
 * kube_internal.h - what watch.c shares with kube.c. Not for the binaries.
 */
#ifndef MG_KUBE_INTERNAL_H
#define MG_KUBE_INTERNAL_H

#include <curl/curl.h>

#include "kube.h"

/* A growable buffer with a hard cap (curl's dynbuf "toobig" habit). */
struct kbuf {
	char *data;
	size_t len, cap, max;
	int toobig;
};
int kbuf_append(struct kbuf *b, const char *p, size_t n); /* -1 when over max */
void kbuf_reset(struct kbuf *b);
void kbuf_free(struct kbuf *b);

/*
 * Configure an easy handle for one request: URL (server + path), TLS
 * material, proxy, credentials (a fresh token), Accept (NULL means
 * application/json). *hdrs must be freed with curl_slist_free_all after the
 * transfer. Returns KUBE_OK or an error (credentials could not be obtained).
 */
int kube_setup_easy(struct kube_client *kc, CURL *h, const char *method, const char *path, const char *content_type,
                    const char *accept, struct curl_slist **hdrs, struct kube_error *err);

/*
 * The deadline (kube_now_ms clock, 0 = none) of the operation in progress:
 * an exec plugin run for it is killed when it passes. Returns the previous
 * one, for the caller to restore (a request made during a watch).
 */
int64_t kube_set_deadline(struct kube_client *kc, int64_t deadline_ms);

/*
 * Make sure the credentials are current: re-read a token file older than
 * a minute (force: always), re-run an exec plugin whose credential expired
 * (force: always). A plugin that worked before and fails now gives
 * KUBE_EUNAVAILABLE (retry with backoff); one that never worked,
 * KUBE_ECONFIG; one cut by the deadline, KUBE_ETIMEOUT.
 */
int kube_refresh_credentials(struct kube_client *kc, int force, struct kube_error *err);

/*
 * The same for a caller that must not block (the watch loop, so that a
 * plugin taking seconds never freezes the other streams): starts the exec
 * plugin in the background when the credential is due, and returns
 * KUBE_PENDING until it is over - call again soon - then its result as
 * kube_refresh_credentials would. KUBE_OK when nothing is due. A run still
 * going is finished by the next kube_refresh_credentials, or killed by
 * kube_client_free.
 */
#define KUBE_PENDING 1001
int kube_refresh_async(struct kube_client *kc, struct kube_error *err);

/*
 * After a 401 or 403: should the caller try again? A rotated token (the
 * kubelet rewrites the file; an exec credential expired) and RBAC that is
 * still propagating (Helm creates the RoleBinding with the pod) both heal
 * within seconds, so the credentials are re-read and the request retried
 * until the refusal has persisted for KUBE_AUTH_PERSIST_MS since *since
 * (0 on the first refusal; the caller resets it after a success) with the
 * same credentials: a token that changed since the last refusal restarts
 * the streak.
 * Returns 1 to retry, 0 to give up.
 */
#define KUBE_AUTH_PERSIST_MS 5000
int kube_auth_retry(struct kube_client *kc, int64_t *since);
/*
 * The pause between those retries: the usual backoff, at most a second, so
 * that a refusal that persists ends the wait right after the window.
 */
int64_t kube_auth_backoff_ms(struct kube_client *kc, unsigned n);

/* Fill err from an HTTP status and the response body (a Status object). */
void kube_http_error(long status, const char *body, size_t len, struct kube_error *err);
/* Fill err from a failed transfer; returns err->rc. */
int kube_curl_error(CURLcode cc, const char *errbuf, const char *server, struct kube_error *err);

/* Jittered exponential backoff for the n-th consecutive failure (n >= 1). */
int64_t kube_backoff_ms(struct kube_client *kc, unsigned n);

/*
 * The length to pass to libcurl for a client key blob: PEM needs its
 * terminating NUL inside the length (mbedTLS), DER must not have it.
 */
size_t kube_key_blob_len(const char *key, size_t len);

/* Parse a Retry-After header value (seconds) into ms, or -1. */
int64_t kube_parse_retry_after(const char *v, size_t len);

/*
 * The one CURLOPT_HEADERFUNCTION for Retry-After: ud points at an int64_t
 * (ms) the caller set to -1 before the transfer.
 */
size_t kube_retry_after_header(char *p, size_t sz, size_t n, void *ud);

#endif
