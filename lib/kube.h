/*
 * kube.h - connection to the Kubernetes API server: configuration
 * (in-cluster or kubeconfig, as client-go resolves it) and HTTP requests.
 *
 * Resolution order: opts->kubeconfig, $KUBECONFIG (first file of the list),
 * in-cluster (KUBERNETES_SERVICE_HOST + _PORT), ~/.kube/config.
 * TLS verification is on unless the kubeconfig says insecure-skip-tls-verify;
 * a bearer token is never sent over plain http and never logged.
 */
#ifndef MG_KUBE_H
#define MG_KUBE_H

#include <stddef.h>
#include <stdint.h>

enum kube_rc {
	KUBE_OK = 0,
	KUBE_ECONFIG,       /* bad kubeconfig / service-account files */
	KUBE_ENOCONFIG,     /* no configuration found at all */
	KUBE_EUNAUTHORIZED, /* 401 that persisted after a token refresh */
	KUBE_EFORBIDDEN,    /* 403 */
	KUBE_ENOTFOUND,     /* 404 */
	KUBE_ECONFLICT,     /* 409: AlreadyExists or Conflict (see reason) */
	KUBE_EGONE,         /* 410 */
	KUBE_EINVALID,      /* any other 4xx (400, 422, ...) */
	KUBE_EUNAVAILABLE,  /* connection errors / 5xx / 429 until the deadline */
	KUBE_ETIMEOUT,      /* the caller's deadline passed */
	KUBE_ETLS,          /* TLS verification failed: fatal, never retried */
	KUBE_ETOOBIG,       /* response body over the cap */
	KUBE_EPROTO,        /* malformed response */
	KUBE_ECANCELLED,    /* a callback stopped the operation */
	KUBE_ENOMEM,
	KUBE_EREDIRECT, /* 3xx: the server URL is not the API server (never followed) */
};

struct kube_error {
	enum kube_rc rc;
	long http_status;  /* 0 when no response */
	char reason[64];   /* Status.reason ("NotFound", "AlreadyExists", ...) */
	char message[768]; /* Status.message or a description */
};

struct kube_conn_opts {
	const char *kubeconfig; /* --kubeconfig, or NULL */
	const char *context;    /* --context, or NULL */
	const char *namespace;  /* -n, or NULL for the context/in-cluster default */
};

struct kube_client;

/*
 * Resolve the configuration and prepare a client. On failure returns
 * KUBE_ECONFIG or KUBE_ENOCONFIG with err->message naming the file, the
 * field and what is wrong. The caller frees *out with kube_client_free.
 */
int kube_client_new(const struct kube_conn_opts *opts, struct kube_client **out, struct kube_error *err);
void kube_client_free(struct kube_client *kc);

/*
 * A deadline that can come forward while a request is under way (a
 * SIGTERM cuts migrate-runner's record write short): limit(ctx) returns an
 * absolute deadline (kube_now_ms clock), or 0 for none, and every request
 * of kc ends by the earlier of its own deadline and that one. It is asked
 * while an exec plugin runs (every 50 ms), during a transfer (libcurl's
 * progress callback) and during a retry's backoff (every 100 ms), on the
 * thread that makes the request. NULL removes it.
 */
void kube_set_limit(struct kube_client *kc, int64_t (*limit)(void *ctx), void *ctx);

/* Strings owned by the client. */
const char *kube_namespace(const struct kube_client *kc);
const char *kube_server(const struct kube_client *kc);
/* "kubeconfig /path (context x)" or "in-cluster service account" */
const char *kube_source(const struct kube_client *kc);
/*
 * Who we authenticate as, for 403 messages: the service account from the
 * token's "sub" claim in-cluster ("system:serviceaccount:ns:name"), the
 * kubeconfig user name otherwise. Never the token itself.
 */
const char *kube_identity(const struct kube_client *kc);

/* Monotonic clock in milliseconds (deadlines below use it). */
int64_t kube_now_ms(void);

struct kube_response {
	long status;
	char *body; /* NUL-terminated; free with kube_response_free */
	size_t len;
	int64_t retry_after_ms; /* from a 429/503 Retry-After, else -1 */
};
void kube_response_free(struct kube_response *r);

/*
 * One API request with retries: connection errors, 5xx and 429 are retried
 * with jittered exponential backoff (honouring Retry-After) until
 * deadline_ms (absolute, kube_now_ms() clock; 0 = 30 s from now); a 401
 * re-reads the token once and retries. path includes the query string.
 * body may be NULL. On KUBE_OK (2xx) resp holds the body; on API errors
 * err carries the typed result and the server's Status message, and resp
 * (if not NULL) still holds the body. The caller frees resp.
 */
int kube_request(struct kube_client *kc, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len, int64_t deadline_ms, struct kube_response *resp,
                 struct kube_error *err);

/* GET path and parse JSON into *out (cJSON tree; caller cJSON_Deletes). */
struct cJSON;
int kube_get_json(struct kube_client *kc, const char *path, int64_t deadline_ms, struct cJSON **out,
                  struct kube_error *err);

/*
 * Percent-encode s for a query parameter value into buf. Returns buf, or
 * NULL when it does not fit.
 */
char *kube_query_escape(const char *s, char *buf, size_t len);

/* A one-line description of an error result, for logs ("403 Forbidden: ..."). */
const char *kube_strerror(enum kube_rc rc);

/*
 * The one mapping of a result to the exit-code contract (exitcodes.h) of
 * wait-for-job and release-check: 2 timed out; 77 refused (401/403); 78
 * configuration (kubeconfig, TLS, malformed server URL); 64 only for a 400
 * about a selector the user gave (KUBE_EXIT_USER_SELECTOR); 69 for
 * everything the server got wrong (unreachable, 3xx, 5xx, an invalid or
 * unexpected answer) and for a check-once that could not look
 * (KUBE_EXIT_CHECK_ONCE). KUBE_OK gives 0: the verdict is the caller's.
 */
#define KUBE_EXIT_CHECK_ONCE 1u
#define KUBE_EXIT_USER_SELECTOR 2u
int kube_exit_code(enum kube_rc rc, const struct kube_error *err, unsigned flags);

#endif
