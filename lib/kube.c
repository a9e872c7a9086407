/*
 * kube.c - the API client: credentials, TLS, one request with retries, and
 * the typed classification of what the server answered.
 */
#include "kube.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "exitcodes.h"
#include "json.h"
#include "kube_internal.h"
#include "kubeconfig.h"
#include "log.h"

#define KUBE_MAX_BODY (64u << 20)
#define KUBE_TOKEN_REREAD_MS 60000 /* bound tokens rotate; kubelet rewrites the file */
#define KUBE_ATTEMPT_TIMEOUT_MS 30000
#define KUBE_CONNECT_TIMEOUT_MS 10000
#define KUBE_BACKOFF_BASE_MS 200
#define KUBE_BACKOFF_CAP_MS 10000

/* How requests reach a server named by tls-server-name (see tls_route_init). */
struct tls_route {
	char *url_base;                /* server URL, host = tls-server-name */
	char *host_hdr;                /* "Host: " + the server URL's host[:port] */
	struct curl_slist *connect_to; /* "::REALHOST:REALPORT" */
};

struct kube_client {
	struct kube_config cfg;
	CURL *easy; /* reused by kube_request: keeps the connection alive */
	char *token;
	int64_t token_read_ms;  /* when token_file was last read (monotonic) */
	int64_t cred_expiry_ms; /* exec credential expiry (wall clock), 0 = none */
	char *exec_cert, *exec_key;
	char *identity;
	uint64_t rng;
	int64_t deadline_ms; /* of the current operation, bounds exec plugins (0 = none) */
	int exec_worked;     /* the exec plugin gave a credential at least once */
	struct tls_route route;
	struct kcfg_exec_run bg; /* an exec plugin run by kube_refresh_async */
	int bg_running;
	int64_t (*limit)(void *ctx); /* kube_set_limit */
	void *limit_ctx;
};

int64_t kube_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int kerr(struct kube_error *err, enum kube_rc rc, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int kerr(struct kube_error *err, enum kube_rc rc, long status, const char *fmt, ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	err->rc = rc;
	err->http_status = status;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- bounded buffers ---------------------------------------------------- */

int kbuf_append(struct kbuf *b, const char *p, size_t n)
{
	if (b->toobig || n > b->max - b->len) {
		b->toobig = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		char *nd;
		while (nc < b->len + n + 1)
			nc *= 2;
		nd = realloc(b->data, nc);
		if (!nd) {
			b->toobig = 1;
			return -1;
		}
		b->data = nd;
		b->cap = nc;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void kbuf_reset(struct kbuf *b)
{
	b->len = 0;
	b->toobig = 0;
	if (b->data)
		b->data[0] = '\0';
}

void kbuf_free(struct kbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->toobig = 0;
}

/* ---- tls-server-name ---------------------------------------------------- */

/*
 * tls-server-name (client-go's tls.Config.ServerName): the name the API
 * server's certificate must carry, and the SNI to send, when the URL's host
 * is not it (a server reached by IP, through a tunnel, or behind a front end
 * that routes by SNI). libcurl has no option for that name alone, so the
 * request URL carries tls-server-name as its host - libcurl then sends it
 * as SNI (also when the real host is an IP, which gets none) and verifies
 * the certificate against it, with every TLS backend - while
 * CURLOPT_CONNECT_TO sends the connection (a proxy's CONNECT too) to the
 * server URL's real host and port, and an explicit Host header keeps the
 * server URL's host:port, as client-go sends it. kube_setup_easy is the one
 * place a request URL is built, so lists, watches and one-off requests all
 * take this route.
 * Limit: a NO_PROXY from the environment is matched against
 * tls-server-name, not the real host (libcurl matches the URL's host).
 */
static char *str_cat4(const char *a, const char *b, const char *c, const char *d)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 1;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s%s%s", a, b, c, d);
	return s;
}

static void tls_route_free(struct tls_route *r)
{
	free(r->url_base);
	free(r->host_hdr);
	curl_slist_free_all(r->connect_to);
	memset(r, 0, sizeof(*r));
}

/* Build the route for tls-server-name (nothing to do without one, or for http://). */
static int tls_route_init(const struct kube_config *c, struct tls_route *r, struct kube_error *err)
{
	const char *tsn = c->tls_server_name;
	CURLU *u = NULL;
	char *host = NULL, *port = NULL, *rport = NULL, *url = NULL, *name = NULL, *ct = NULL;
	struct curl_slist *l;
	size_t n;
	int rc = KUBE_OK;

	memset(r, 0, sizeof(*r));
	if (!tsn || !*tsn || strncmp(c->server, "https://", 8) != 0)
		return KUBE_OK;
	if (!(u = curl_url()))
		return kerr(err, KUBE_ENOMEM, 0, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, c->server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &rport, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		rc = kerr(err, KUBE_ECONFIG, 0, "%s: the server URL cannot be parsed", c->source);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL; /* none written: the Host header has none either */
	/* an IPv6 literal is a URL host in brackets */
	name = strchr(tsn, ':') && tsn[0] != '[' ? str_cat4("[", tsn, "]", "") : strdup(tsn);
	if (!name) {
		rc = kerr(err, KUBE_ENOMEM, 0, "out of memory");
		goto out;
	}
	if (strcasecmp(name, host) == 0)
		goto out; /* the URL already names it */
	if (strpbrk(tsn, "/?#@ ") || curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		char shown[256];
		log_sanitize(shown, sizeof(shown), tsn, 0);
		rc = kerr(err, KUBE_ECONFIG, 0, "%s: tls-server-name \"%s\" is not a host name", c->source, shown);
		goto out;
	}
	n = strlen(url);
	while (n && url[n - 1] == '/')
		url[--n] = '\0'; /* paths are appended with their leading '/' */
	r->url_base = strdup(url);
	r->host_hdr = str_cat4("Host: ", host, port ? ":" : "", port ? port : "");
	ct = str_cat4("::", host, ":", rport);
	l = ct ? curl_slist_append(NULL, ct) : NULL;
	r->connect_to = l;
	if (!r->url_base || !r->host_hdr || !l) {
		tls_route_free(r);
		rc = kerr(err, KUBE_ENOMEM, 0, "out of memory");
	}
out:
	free(ct);
	free(name);
	curl_free(url);
	curl_free(host);
	curl_free(port);
	curl_free(rport);
	curl_url_cleanup(u);
	return rc;
}

/* ---- credentials --------------------------------------------------------- */

static void set_token(struct kube_client *kc, char *tok)
{
	if (kc->token) {
		memset(kc->token, 0, strlen(kc->token));
		free(kc->token);
	}
	kc->token = tok;
}

/* The "sub" claim of a JWT, for messages; the token itself is never shown. */
static char *jwt_subject(const char *tok)
{
	const char *a = strchr(tok, '.'), *b;
	char *payload = NULL, *sub = NULL;
	size_t len;
	cJSON *j;

	if (!a || !(b = strchr(a + 1, '.')))
		return NULL;
	if (kcfg_b64decode(a + 1, (size_t)(b - a - 1), &payload, &len) < 0)
		return NULL;
	j = json_parse(payload, len);
	if (j && json_str(j, "sub"))
		sub = strdup(json_str(j, "sub"));
	cJSON_Delete(j);
	free(payload);
	return sub;
}

/* deadline (0 = none), brought forward by kube_set_limit's callback */
static int64_t limited(struct kube_client *kc, int64_t deadline)
{
	int64_t l = kc->limit ? kc->limit(kc->limit_ctx) : 0;

	return l > 0 && (!deadline || l < deadline) ? l : deadline;
}

void kube_set_limit(struct kube_client *kc, int64_t (*limit)(void *ctx), void *ctx)
{
	kc->limit = limit;
	kc->limit_ctx = ctx;
}

/* Does the exec credential need the plugin: none yet, or about to expire? */
static int exec_due(const struct kube_client *kc)
{
	return kc->cfg.has_exec &&
	       ((!kc->token && !kc->exec_cert) || (kc->cred_expiry_ms && wall_ms() >= kc->cred_expiry_ms - 10000));
}

/* Take an exec plugin's result: the new credential, or the error. */
static int exec_apply(struct kube_client *kc, int rc, char *tok, char *cert, char *key, int64_t exp,
                      struct kube_error *err)
{
	/*
	 * A plugin that worked before and fails now (a cloud IAM hiccup, a
	 * network blip) is retried like an unavailable server, with backoff,
	 * not turned into a fatal config error in the middle of a watch. One
	 * that never worked is a configuration problem (78) at once.
	 */
	if (rc == KUBE_ECONFIG && kc->exec_worked) {
		err->rc = KUBE_EUNAVAILABLE;
		snprintf(err->reason, sizeof(err->reason), "Unavailable");
		return KUBE_EUNAVAILABLE;
	}
	if (rc != KUBE_OK)
		return rc;
	kc->exec_worked = 1;
	set_token(kc, tok);
	free(kc->exec_cert);
	if (kc->exec_key)
		memset(kc->exec_key, 0, strlen(kc->exec_key));
	free(kc->exec_key);
	kc->exec_cert = cert;
	kc->exec_key = key;
	kc->cred_expiry_ms = exp;
	return KUBE_OK;
}

int kube_refresh_async(struct kube_client *kc, struct kube_error *err)
{
	char *tok = NULL, *cert = NULL, *key = NULL;
	int64_t exp = 0;
	int rc;

	if (!kc->bg_running) {
		if (!exec_due(kc))
			return KUBE_OK;
		rc = kcfg_exec_start(&kc->cfg, kc->deadline_ms, &kc->bg, err);
		if (rc != KUBE_OK)
			return exec_apply(kc, rc, NULL, NULL, NULL, 0, err);
		kc->bg_running = 1;
	}
	rc = kcfg_exec_poll(&kc->cfg, &kc->bg, 0, &tok, &cert, &key, &exp, err);
	if (rc == KCFG_EXEC_RUNNING)
		return KUBE_PENDING;
	kc->bg_running = 0;
	return exec_apply(kc, rc, tok, cert, key, exp, err);
}

int kube_refresh_credentials(struct kube_client *kc, int force, struct kube_error *err)
{
	struct kube_config *c = &kc->cfg;

	if (c->token_file && (force || !kc->token || kube_now_ms() - kc->token_read_ms >= KUBE_TOKEN_REREAD_MS)) {
		char *tok;
		size_t len;

		if (kcfg_read_file(c->token_file, 1u << 20, &tok, &len) < 0) {
			/* keep a token we have: the kubelet may be mid-rotation */
			if (kc->token)
				return KUBE_OK;
			return kerr(err, KUBE_ECONFIG, 0, "%s: cannot read token file %s: %s", c->source, c->token_file,
			            kcfg_file_error(errno));
		}
		while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
			tok[--len] = '\0';
		if (!len) {
			free(tok);
			if (kc->token)
				return KUBE_OK;
			return kerr(err, KUBE_ECONFIG, 0, "%s: token file %s is empty", c->source, c->token_file);
		}
		set_token(kc, tok);
		kc->token_read_ms = kube_now_ms();
		if (c->in_cluster && !kc->identity)
			kc->identity = jwt_subject(kc->token);
	}
	if (c->has_exec && (force || exec_due(kc))) {
		char *tok = NULL, *cert = NULL, *key = NULL;
		int64_t exp = 0;
		int rc;

		/* one may be on its way already (kube_refresh_async): finish it */
		if (!kc->bg_running) {
			rc = kcfg_exec_start(c, kc->deadline_ms, &kc->bg, err);
			if (rc != KUBE_OK)
				return exec_apply(kc, rc, NULL, NULL, NULL, 0, err);
			kc->bg_running = 1;
		}
		/* a deadline brought forward meanwhile kills the plugin's group at once */
		while ((rc = kcfg_exec_poll(c, &kc->bg, 50, &tok, &cert, &key, &exp, err)) == KCFG_EXEC_RUNNING)
			kc->bg.deadline = limited(kc, kc->bg.deadline);
		kc->bg_running = 0;
		return exec_apply(kc, rc, tok, cert, key, exp, err);
	}
	return KUBE_OK;
}

int kube_client_new(const struct kube_conn_opts *opts, struct kube_client **out, struct kube_error *err)
{
	struct kube_client *kc;
	int rc;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	kc = calloc(1, sizeof(*kc));
	if (!kc)
		return kerr(err, KUBE_ENOMEM, 0, "out of memory");
	rc = kcfg_load(opts, &kc->cfg, err);
	if (rc != KUBE_OK) {
		free(kc);
		return rc;
	}
	if (kc->cfg.insecure)
		log_warn("%s: insecure-skip-tls-verify is set: the API server's identity is NOT verified, "
		         "anyone on the path can read the credentials and forge answers",
		         kc->cfg.source);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(kc->easy = curl_easy_init())) {
		kube_client_free(kc);
		return kerr(err, KUBE_ENOMEM, 0, "cannot initialise libcurl");
	}
	rc = tls_route_init(&kc->cfg, &kc->route, err);
	if (rc != KUBE_OK) {
		kube_client_free(kc);
		return rc;
	}
	kc->rng = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)kc;
	if (!kc->cfg.has_exec) {
		/* token files are read now so a missing file is a config error (78) */
		rc = kube_refresh_credentials(kc, 1, err);
		if (rc != KUBE_OK) {
			kube_client_free(kc);
			return rc;
		}
	}
	if (kc->cfg.token) {
		set_token(kc, strdup(kc->cfg.token));
		if (!kc->token) {
			kube_client_free(kc);
			return kerr(err, KUBE_ENOMEM, 0, "out of memory");
		}
	}
	if (!kc->identity && kc->cfg.user_name)
		kc->identity = strdup(kc->cfg.user_name);
	*out = kc;
	return KUBE_OK;
}

void kube_client_free(struct kube_client *kc)
{
	if (!kc)
		return;
	if (kc->bg_running)
		kcfg_exec_abort(&kc->bg);
	if (kc->easy)
		curl_easy_cleanup(kc->easy);
	tls_route_free(&kc->route);
	set_token(kc, NULL);
	free(kc->exec_cert);
	if (kc->exec_key)
		memset(kc->exec_key, 0, strlen(kc->exec_key));
	free(kc->exec_key);
	free(kc->identity);
	kcfg_free(&kc->cfg);
	free(kc);
}

const char *kube_namespace(const struct kube_client *kc) { return kc->cfg.namespace; }
const char *kube_server(const struct kube_client *kc) { return kc->cfg.server; }
const char *kube_source(const struct kube_client *kc) { return kc->cfg.source; }
const char *kube_identity(const struct kube_client *kc)
{
	if (kc->identity)
		return kc->identity;
	return kc->cfg.in_cluster ? "the pod's service account" : "the kubeconfig's user";
}

/* ---- one request ------------------------------------------------------- */

/*
 * How many bytes of a client key to hand to libcurl. curl passes the key
 * blob as is to mbedtls_pk_parse_key(), which takes PEM only when the
 * terminating NUL is inside the length (it copies certificates itself, not
 * keys): without it every PEM key - kubeadm's, kind's, minikube's - failed
 * with "Error parsing private key". A DER key is binary and keeps its exact
 * length. The buffers we hold are all NUL-terminated.
 */
/* PEM may follow other text ("Bag Attributes" from openssl pkcs12 exports) */
static int is_pem(const void *p, size_t len) { return memmem(p, len, "-----BEGIN", 10) != NULL; }

size_t kube_key_blob_len(const char *key, size_t len) { return is_pem(key, len) ? len + 1 : len; }

int64_t kube_set_deadline(struct kube_client *kc, int64_t deadline_ms)
{
	int64_t prev = kc->deadline_ms;

	kc->deadline_ms = deadline_ms;
	return prev;
}

/*
 * libcurl opens its sockets without close-on-exec: an exec plugin or the
 * migration command would inherit the API connection (issue 15 item 9).
 */
static int sock_cloexec(void *ud, curl_socket_t fd, curlsocktype purpose)
{
	(void)ud;
	(void)purpose;
	fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	return CURL_SOCKOPT_OK;
}

/* TLS: verification, CA, client certificate. */
static void setup_tls(struct kube_client *kc, CURL *h)
{
	struct kube_config *c = &kc->cfg;
	struct curl_blob blob = {.flags = CURL_BLOB_COPY};

	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca) {
		blob.data = c->ca;
		blob.len = c->ca_len;
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (c->cert || kc->exec_cert) {
		/* mbedTLS tells PEM from DER itself, OpenSSL (host builds) must be told */
		blob.data = kc->exec_cert ? kc->exec_cert : c->cert;
		blob.len = kc->exec_cert ? strlen(kc->exec_cert) : c->cert_len;
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, is_pem(blob.data, blob.len) ? "PEM" : "DER");
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
		blob.data = kc->exec_key ? kc->exec_key : c->key;
		blob.len = kube_key_blob_len(blob.data, kc->exec_key ? strlen(kc->exec_key) : c->key_len);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, is_pem(blob.data, blob.len) ? "PEM" : "DER");
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
	}
}

/* Append one header; on failure the list is kept (curl_slist_append would lose it). */
static int hdr_add(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (!n)
		return -1;
	*l = n;
	return 0;
}

/* Authorization, Accept, Host (tls-server-name), Content-Type. Returns 0 or -1 (out of memory). */
static int setup_headers(struct kube_client *kc, CURL *h, const char *accept, const char *content_type,
                         struct curl_slist **hdrs)
{
	char line[256];
	int bad = 0;

	if (kc->token) {
		size_t n = strlen(kc->token) + 32;
		char *hv = malloc(n);
		if (!hv)
			return -1;
		snprintf(hv, n, "Authorization: Bearer %s", kc->token);
		bad |= hdr_add(hdrs, hv);
		memset(hv, 0, n);
		free(hv);
	} else if (kc->cfg.username && kc->cfg.password) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, kc->cfg.username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, kc->cfg.password);
	}
	snprintf(line, sizeof(line), "Accept: %s", accept ? accept : "application/json");
	bad |= hdr_add(hdrs, line);
	if (kc->route.host_hdr)
		bad |= hdr_add(hdrs, kc->route.host_hdr);
	if (content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		bad |= hdr_add(hdrs, line);
	}
	/* "Expect: 100-continue" costs a round trip on every PUT/POST */
	bad |= hdr_add(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	return bad ? -1 : 0;
}

int kube_setup_easy(struct kube_client *kc, CURL *h, const char *method, const char *path, const char *content_type,
                    const char *accept, struct curl_slist **hdrs, struct kube_error *err)
{
	struct kube_config *c = &kc->cfg;
	const char *base = kc->route.url_base ? kc->route.url_base : c->server;
	size_t ulen = strlen(base) + strlen(path) + 1;
	char *url;
	int rc;

	*hdrs = NULL;
	rc = kube_refresh_credentials(kc, 0, err);
	if (rc != KUBE_OK)
		return rc;
	url = malloc(ulen);
	if (!url)
		return kerr(err, KUBE_ENOMEM, 0, "out of memory");
	snprintf(url, ulen, "%s%s", base, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	free(url);
	if (kc->route.connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, kc->route.connect_to);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sock_cloexec);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)KUBE_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "migration-gate/" MG_VERSION);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (c->proxy_url)
		curl_easy_setopt(h, CURLOPT_PROXY, c->proxy_url);
	setup_tls(kc, h);
	if (setup_headers(kc, h, accept, content_type, hdrs) < 0)
		return kerr(err, KUBE_ENOMEM, 0, "out of memory");
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	return KUBE_OK;
}

int64_t kube_auth_backoff_ms(struct kube_client *kc, unsigned n)
{
	int64_t d = kube_backoff_ms(kc, n);
	return d < 1000 ? d : 1000;
}

int kube_auth_retry(struct kube_client *kc, int64_t *since)
{
	struct kube_error ignored;
	int64_t now = kube_now_ms();
	char *before = kc->token ? strdup(kc->token) : NULL;
	int changed;

	if (kc->token && !before)
		return now - (*since ? *since : now) < KUBE_AUTH_PERSIST_MS; /* out of memory: no comparison */

	/* a file that cannot be read now keeps the old token: retry anyway */
	kube_refresh_credentials(kc, 1, &ignored);
	changed = (before == NULL) != (kc->token == NULL) || (before && strcmp(before, kc->token) != 0);
	if (before) {
		memset(before, 0, strlen(before));
		free(before);
	}
	/* a token we have not tried yet starts a new streak */
	if (!*since || changed)
		*since = now;
	return now - *since < KUBE_AUTH_PERSIST_MS;
}

void kube_http_error(long status, const char *body, size_t len, struct kube_error *err)
{
	cJSON *j = body && len ? json_parse(body, len) : NULL;
	const char *msg = j ? json_str(j, "message") : NULL;
	const char *reason = j ? json_str(j, "reason") : NULL;
	enum kube_rc rc;

	switch (status) {
	case 401: rc = KUBE_EUNAUTHORIZED; break;
	case 403: rc = KUBE_EFORBIDDEN; break;
	case 404: rc = KUBE_ENOTFOUND; break;
	case 409: rc = KUBE_ECONFLICT; break;
	case 410: rc = KUBE_EGONE; break;
	case 429: rc = KUBE_EUNAVAILABLE; break;
	default:
		if (status >= 500)
			rc = KUBE_EUNAVAILABLE;
		else if (status >= 400)
			rc = KUBE_EINVALID;
		else if (status >= 300)
			rc = KUBE_EREDIRECT;
		else
			rc = KUBE_EPROTO; /* a 1xx/2xx where another answer was due (204 to a list) */
		break;
	}
	memset(err, 0, sizeof(*err));
	err->rc = rc;
	err->http_status = status;
	/* the server's words end up on terminals and in logs: one line, no escapes */
	if (reason)
		log_sanitize(err->reason, sizeof(err->reason), reason, 0);
	if (msg)
		log_sanitize(err->message, sizeof(err->message), msg, 0);
	else if (rc == KUBE_EREDIRECT)
		snprintf(err->message, sizeof(err->message),
		         "HTTP %ld redirect from the server: the server URL points at something that is not the API "
		         "server (a proxy, load balancer or web UI); redirects are never followed, they would carry "
		         "the credentials elsewhere",
		         status);
	else
		snprintf(err->message, sizeof(err->message), "HTTP %ld from the API server", status);
	cJSON_Delete(j);
}

int kube_curl_error(CURLcode cc, const char *errbuf, const char *server, struct kube_error *err)
{
	const char *detail = errbuf && *errbuf ? errbuf : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_SSL_CERTPROBLEM:
		/* our own certificate or key: the CA is not to blame */
		return kerr(err, KUBE_ETLS, 0,
		            "cannot use the client certificate or key for %s: %s (check the user's "
		            "client-certificate and client-key)",
		            server, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		/* never retried, never downgraded: someone must fix the CA */
		return kerr(err, KUBE_ETLS, 0,
		            "TLS verification of %s failed: %s (check the cluster's certificate-authority)", server,
		            detail);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		/* no retry can fix the configuration */
		return kerr(err, KUBE_ECONFIG, 0, "server URL %s cannot be used: %s", server, detail);
	case CURLE_OPERATION_TIMEDOUT: return kerr(err, KUBE_EUNAVAILABLE, 0, "%s: timed out: %s", server, detail);
	default:
		kerr(err, KUBE_EUNAVAILABLE, 0, "%s: %s", server, detail);
		snprintf(err->reason, sizeof(err->reason), "Unavailable");
		return KUBE_EUNAVAILABLE;
	}
}

int64_t kube_backoff_ms(struct kube_client *kc, unsigned n)
{
	int64_t d = KUBE_BACKOFF_BASE_MS;
	uint64_t x;

	while (n-- > 1 && d < KUBE_BACKOFF_CAP_MS)
		d *= 2;
	if (d > KUBE_BACKOFF_CAP_MS)
		d = KUBE_BACKOFF_CAP_MS;
	/* xorshift64*: half fixed, half random, so many waiters spread out */
	x = kc->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	kc->rng = x;
	return d / 2 + (int64_t)((x * 2685821657736338717ULL) % (uint64_t)(d / 2 + 1));
}

int64_t kube_parse_retry_after(const char *v, size_t len)
{
	int64_t s = 0;
	size_t i = 0;

	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == len || v[i] < '0' || v[i] > '9')
		return -1; /* HTTP-dates are not used by the API server */
	for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
		s = s * 10 + (v[i] - '0');
		if (s > 3600)
			s = 3600;
	}
	return s * 1000;
}

struct req_ctx {
	struct kbuf body;
	int64_t retry_after_ms;
	struct kube_client *kc;
};

/* libcurl's progress callback: non-zero aborts the transfer (kube_set_limit) */
static int req_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct req_ctx *ctx = ud;
	int64_t d = limited(ctx->kc, ctx->kc->deadline_ms);

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return d && kube_now_ms() >= d;
}

static size_t req_write(char *p, size_t sz, size_t n, void *ud)
{
	struct req_ctx *rc = ud;
	return kbuf_append(&rc->body, p, sz * n) < 0 ? 0 : sz * n;
}

size_t kube_retry_after_header(char *p, size_t sz, size_t n, void *ud)
{
	int64_t *retry_after_ms = ud;
	size_t len = sz * n;

	if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0)
		*retry_after_ms = kube_parse_retry_after(p + 12, len - 12);
	return len;
}

void kube_response_free(struct kube_response *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

struct req {
	const char *method, *path, *content_type, *body;
	size_t body_len;
};

/* One transfer. KUBE_OK on 2xx, else the classified error in err. */
static int kube_attempt(struct kube_client *kc, const struct req *rq, int64_t left, struct req_ctx *ctx,
                        struct kube_error *err)
{
	CURL *h = kc->easy;
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode cc;
	int rc;

	curl_easy_reset(h);
	kbuf_reset(&ctx->body);
	ctx->retry_after_ms = -1;
	rc = kube_setup_easy(kc, h, rq->method, rq->path, rq->content_type, NULL, &hdrs, err);
	if (rc != KUBE_OK) {
		curl_slist_free_all(hdrs);
		return rc;
	}
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, req_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, ctx);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, kube_retry_after_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx->retry_after_ms);
	if (kc->limit) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, req_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, ctx);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
	                 (long)(left < KUBE_ATTEMPT_TIMEOUT_MS ? left : KUBE_ATTEMPT_TIMEOUT_MS));
	if (rq->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	}
	cc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	if (cc == CURLE_WRITE_ERROR && ctx->body.toobig)
		return kerr(err, KUBE_ETOOBIG, 0, "%s %s: response larger than %u MiB", rq->method, rq->path,
		            KUBE_MAX_BODY >> 20);
	if (cc == CURLE_ABORTED_BY_CALLBACK)
		return kerr(err, KUBE_ETIMEOUT, 0, "%s %s: the deadline was brought forward; stopped", rq->method,
		            rq->path);
	if (cc != CURLE_OK)
		return kube_curl_error(cc, errbuf, kc->cfg.server, err);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return KUBE_OK;
	kube_http_error(status, ctx->body.data, ctx->body.len, err);
	return err->rc;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A retry's backoff, until *deadline at the latest, which kube_set_limit may bring forward. */
static void backoff(struct kube_client *kc, int64_t wait, int64_t *deadline)
{
	int64_t end = kube_now_ms() + wait, left;

	if (!kc->limit) {
		sleep_ms(wait);
		return;
	}
	while ((left = (end < *deadline ? end : *deadline) - kube_now_ms()) > 0) {
		sleep_ms(left < 100 ? left : 100);
		*deadline = limited(kc, *deadline);
	}
}

/* The deadline passed: the last failure decides between unavailable and timed out. */
static int request_deadline(const struct req *rq, struct kube_error *err)
{
	if (err->rc == KUBE_OK)
		return kerr(err, KUBE_ETIMEOUT, 0, "%s %s: deadline reached", rq->method, rq->path);
	if (err->rc != KUBE_EUNAVAILABLE)
		err->rc = KUBE_ETIMEOUT;
	return err->rc;
}

int kube_request(struct kube_client *kc, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len, int64_t deadline_ms, struct kube_response *resp,
                 struct kube_error *err)
{
	const struct req rq = {method, path, content_type, body, body_len};
	struct req_ctx ctx;
	unsigned failures = 0;
	int64_t auth_since = 0, wait, left, outer_deadline;
	int rc;

	memset(err, 0, sizeof(*err));
	memset(&ctx, 0, sizeof(ctx));
	ctx.body.max = KUBE_MAX_BODY;
	ctx.kc = kc;
	if (resp)
		memset(resp, 0, sizeof(*resp));
	if (!deadline_ms)
		deadline_ms = kube_now_ms() + KUBE_ATTEMPT_TIMEOUT_MS;
	outer_deadline = kc->deadline_ms;
	for (;;) {
		deadline_ms = limited(kc, deadline_ms);
		kube_set_deadline(kc, deadline_ms);
		left = deadline_ms - kube_now_ms();
		if (left <= 0) {
			rc = request_deadline(&rq, err);
			break;
		}
		rc = kube_attempt(kc, &rq, left, &ctx, err);
		if (rc == KUBE_EUNAUTHORIZED || rc == KUBE_EFORBIDDEN) {
			int first = !auth_since;
			if (!kube_auth_retry(kc, &auth_since))
				break;
			if (first)
				continue; /* a re-read token usually fixes it at once */
			wait = kube_auth_backoff_ms(kc, ++failures);
		} else if (rc == KUBE_EUNAVAILABLE) {
			failures++;
			wait = ctx.retry_after_ms >= 0 ? ctx.retry_after_ms : kube_backoff_ms(kc, failures);
		} else {
			break;
		}
		left = deadline_ms - kube_now_ms();
		if (wait > left)
			wait = left > 0 ? left : 0;
		log_debug("%s %s: %s; retrying in %lld ms", method, path, err->message, (long long)wait);
		backoff(kc, wait, &deadline_ms);
	}
	kube_set_deadline(kc, outer_deadline);
	if (resp && (rc == KUBE_OK || ctx.body.data)) {
		curl_easy_getinfo(kc->easy, CURLINFO_RESPONSE_CODE, &resp->status);
		resp->body = ctx.body.data;
		resp->len = ctx.body.len;
		resp->retry_after_ms = ctx.retry_after_ms;
		ctx.body.data = NULL;
	}
	kbuf_free(&ctx.body);
	if (rc == KUBE_OK)
		memset(err, 0, sizeof(*err));
	return rc;
}

int kube_get_json(struct kube_client *kc, const char *path, int64_t deadline_ms, cJSON **out, struct kube_error *err)
{
	struct kube_response r;
	int rc = kube_request(kc, "GET", path, NULL, NULL, 0, deadline_ms, &r, err);

	int toobig;

	*out = NULL;
	if (rc == KUBE_OK) {
		*out = json_parse_capped(r.body, r.len, JSON_MAX_VALUES, &toobig);
		if (!*out && toobig)
			rc = kerr(err, KUBE_ETOOBIG, r.status, "GET %s: the answer has more than %u values", path,
			          JSON_MAX_VALUES);
		else if (!*out)
			rc = kerr(err, KUBE_EPROTO, r.status, "GET %s: the API server answered invalid JSON", path);
	}
	kube_response_free(&r);
	return rc;
}

char *kube_query_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~') {
			if (n + 1 >= len)
				return NULL;
			buf[n++] = (char)c;
		} else {
			if (n + 3 >= len)
				return NULL;
			buf[n++] = '%';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 15];
		}
	}
	if (n >= len)
		return NULL;
	buf[n] = '\0';
	return buf;
}

const char *kube_strerror(enum kube_rc rc)
{
	switch (rc) {
	case KUBE_OK: return "ok";
	case KUBE_ECONFIG: return "configuration error";
	case KUBE_ENOCONFIG: return "no configuration";
	case KUBE_EUNAUTHORIZED: return "unauthorized";
	case KUBE_EFORBIDDEN: return "forbidden";
	case KUBE_ENOTFOUND: return "not found";
	case KUBE_ECONFLICT: return "conflict";
	case KUBE_EGONE: return "gone";
	case KUBE_EINVALID: return "rejected";
	case KUBE_EREDIRECT: return "redirected";
	case KUBE_EUNAVAILABLE: return "unavailable";
	case KUBE_ETIMEOUT: return "timed out";
	case KUBE_ETLS: return "TLS verification failed";
	case KUBE_ETOOBIG: return "response too large";
	case KUBE_EPROTO: return "protocol error";
	case KUBE_ECANCELLED: return "cancelled";
	case KUBE_ENOMEM: return "out of memory";
	}
	return "error";
}

int kube_exit_code(enum kube_rc rc, const struct kube_error *err, unsigned flags)
{
	switch (rc) {
	case KUBE_OK: return MG_EXIT_OK;
	case KUBE_ETIMEOUT:
		/* the deadline found the server failing, or a check-once could not look */
		if (strcmp(err->reason, "Unavailable") == 0 || (flags & KUBE_EXIT_CHECK_ONCE))
			return MG_EXIT_UNAVAILABLE;
		return MG_EXIT_TIMEOUT;
	case KUBE_EUNAUTHORIZED:
	case KUBE_EFORBIDDEN: return MG_EXIT_NOPERM;
	case KUBE_ECONFIG:
	case KUBE_ENOCONFIG:
	case KUBE_ETLS: return MG_EXIT_CONFIG;
	case KUBE_EINVALID:
		/* a 400 about a selector the user typed is a usage error; any
		 * other refusal of a request we built is the server's doing */
		if ((flags & KUBE_EXIT_USER_SELECTOR) && err->http_status == 400)
			return MG_EXIT_USAGE;
		return MG_EXIT_UNAVAILABLE;
	case KUBE_EREDIRECT:
	case KUBE_ENOTFOUND:
	case KUBE_ECONFLICT:
	case KUBE_EGONE:
	case KUBE_EUNAVAILABLE:
	case KUBE_ETOOBIG:
	case KUBE_EPROTO:
	case KUBE_ECANCELLED:
	case KUBE_ENOMEM: return MG_EXIT_UNAVAILABLE;
	}
	return MG_EXIT_UNAVAILABLE;
}
