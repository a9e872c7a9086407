/*
 * watch.c - list-then-watch state machines, one per spec, on one curl multi
 * handle. The framing of the watch stream (newline-delimited JSON events,
 * arriving in arbitrary chunks) is bounded and fed straight from libcurl's
 * write callback, so an event is decoded the moment its last byte arrives.
 * The loop is libcurl's socket interface: a wake-up touches only the
 * connection that has data (curl_multi_perform would try every watch's
 * socket, two system calls each, on every event of any of them).
 */
#include "watch.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "json.h"
#include "kube_internal.h"
#include "log.h"

#define WATCH_DEFAULT_TIMEOUT_S 300
#define WATCH_DEFAULT_MAX_LINE (16u << 20)
#define WATCH_DEFAULT_MAX_LIST (256u << 20)
#define WATCH_LIST_TIMEOUT_MS 60000
#define WATCH_UNAVAILABLE_AFTER 3 /* consecutive failures before on_unavailable */
#define WATCH_MIN_STREAM_MS 1000
/* an object is at most ~1.5 MB in etcd: more values in one event is an attack */
#define WATCH_MAX_EVENT_VALUES (256u << 10)
#define WATCH_MAX_SOCKETS 64   /* a connection per spec, two while one connects (happy eyeballs) */
#define WATCH_CRED_POLL_MS 20  /* while an exec plugin runs in the background */
#define WATCH_MAX_CONTINUE 512 /* a continue token's length (the server's are ~100 bytes); escaped, it fits q[] */

enum wphase { W_IDLE, W_LIST, W_WATCH };

struct wstate {
	const struct watch_spec *spec;
	size_t index;
	CURL *h;
	struct curl_slist *hdrs;
	enum wphase phase;
	int need_list;
	char *cont; /* continue token of the list being paged; NULL: the next list starts afresh */
	char rv[64];
	struct kbuf body; /* list body */
	struct kbuf line; /* partial watch line */
	int64_t next_ms;  /* start of the next request while idle */
	int64_t started_ms;
	unsigned failures;
	int reported;       /* on_unavailable called in this failure streak */
	int64_t auth_since; /* first 401/403 of the current streak (kube_auth_retry) */
	int gone;           /* ERROR 410 in the stream */
	int bad_stream;     /* malformed or oversized line */
	size_t events;      /* events in the current stream */
	int64_t retry_after_ms;
	char errbuf[CURL_ERROR_SIZE];
	struct kube_error last;
	struct wrun *run;
	/*
	 * Its first request has an answer (or ended). Specs start in a chain,
	 * each once the one before it is answered: by then that connection's
	 * TLS session ticket is in the multi handle's cache, and the next
	 * connection resumes it instead of a full handshake (two ECDSA
	 * verifications and an ECDH: ~50 M instructions with mbedTLS, more
	 * than a thousand watch events cost). TLS 1.3 tickets are single-use,
	 * and servers send one or two per handshake: hence a chain.
	 */
	int answered;
	struct json_keep *keeps; /* spec->keep in its envelopes (envelope_keeps); NULL: parse all */
	const struct json_keep *line_keep, *list_keep;
};

struct wrun {
	struct kube_client *kc;
	const struct watch_opts *opts;
	watch_cb cb;
	void *ctx;
	int stop; /* 1 ok, -1 cancelled, -2 fatal (err set) */
	struct kube_error *err;
	CURLM *multi;
	struct pollfd pfd[WATCH_MAX_SOCKETS]; /* what libcurl asks us to poll (on_socket) */
	size_t npfd;
	int64_t curl_at; /* kube_now_ms when libcurl wants its timeout action; -1: never (on_timer) */
};

/*
 * Feed bytes to the line framer; calls on_line for each complete line
 * (without the newline). Returns 0, -1 when a line exceeds the cap, or the
 * first non-zero value returned by on_line.
 */
static int watch_frame(struct kbuf *line, const char *data, size_t n, int (*on_line)(void *, char *, size_t), void *ud)
{
	while (n) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;

		if (kbuf_append(line, data, take) < 0)
			return -1;
		if (!nl)
			return 0;
		data += take + 1;
		n -= take + 1;
		if (line->len) {
			int rc;
			size_t len = line->len;
			if (line->data[len - 1] == '\r')
				line->data[--len] = '\0';
			rc = len ? on_line(ud, line->data, len) : 0;
			kbuf_reset(line);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static void set_rv(struct wstate *w, const cJSON *obj)
{
	const char *rv = json_str(obj, "metadata.resourceVersion");

	size_t n = rv ? strlen(rv) : 0;

	if (rv && n < sizeof(w->rv))
		memcpy(w->rv, rv, n + 1);
}

/* what watch_take may detach: the object being delivered, and its parent */
static _Thread_local struct {
	cJSON *parent;
	const cJSON *obj;
} takeable;

cJSON *watch_take(const cJSON *obj)
{
	cJSON *o;

	if (!obj || obj != takeable.obj)
		return NULL;
	o = cJSON_DetachItemViaPointer(takeable.parent, (cJSON *)takeable.obj);
	takeable.obj = NULL;
	return o;
}

static int deliver(struct wstate *w, enum watch_event ev, const cJSON *obj, cJSON *parent)
{
	int rc;

	if (w->keeps && parent) {
		takeable.parent = parent;
		takeable.obj = obj;
	}
	rc = w->run->cb(w->run->ctx, w->index, ev, obj);
	takeable.obj = NULL;

	if (rc > 0)
		w->run->stop = 1;
	else if (rc < 0)
		w->run->stop = -1;
	return rc;
}

/* ADDED, MODIFIED or DELETED (the caller checked it is one of them). */
static enum watch_event event_kind(const char *type)
{
	if (strcmp(type, "ADDED") == 0)
		return WATCH_ADDED;
	if (strcmp(type, "MODIFIED") == 0)
		return WATCH_MODIFIED;
	return WATCH_DELETED;
}

/* One watch event line. Returns non-zero to end the stream. */
static int watch_line(void *ud, char *p, size_t len)
{
	struct wstate *w = ud;
	int toobig;
	cJSON *j = w->line_keep ? json_parse_kept(p, len, w->line_keep, WATCH_MAX_EVENT_VALUES, &toobig)
	                        : json_parse_capped(p, len, WATCH_MAX_EVENT_VALUES, &toobig);
	const char *type = j ? json_str(j, "type") : NULL;
	const cJSON *obj = j ? cJSON_GetObjectItemCaseSensitive(j, "object") : NULL;
	int rc = 0;

	if (toobig) {
		log_warn("watch %s: an event has more than %u values; re-watching", w->spec->what,
		         WATCH_MAX_EVENT_VALUES);
		w->bad_stream = 1;
		return 1;
	}
	if (!type || !cJSON_IsObject(obj)) {
		log_debug("watch %s: malformed event line (%zu bytes); re-watching", w->spec->what, len);
		w->bad_stream = 1;
		rc = 1;
		goto out;
	}
	w->events++;
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0 || strcmp(type, "DELETED") == 0) {
		set_rv(w, obj);
		rc = deliver(w, event_kind(type), obj, j) ? 1 : 0;
	} else if (strcmp(type, "BOOKMARK") == 0) {
		set_rv(w, obj);
	} else if (strcmp(type, "ERROR") == 0) {
		int64_t code = json_int(obj, "code", 0);
		const char *msg = json_str(obj, "message");

		if (code == 410) {
			/* our resourceVersion fell out of the server's history */
			log_debug("watch %s: %s; relisting", w->spec->what, msg ? msg : "410 Gone");
			w->gone = 1;
		} else {
			kube_http_error((long)code, p, len, &w->last);
			w->bad_stream = 1;
			log_debug("watch %s: error event %lld: %s", w->spec->what, (long long)code, msg ? msg : "");
		}
		rc = 1;
	}
out:
	cJSON_Delete(j);
	return rc;
}

static size_t watch_write(char *p, size_t sz, size_t n, void *ud)
{
	struct wstate *w = ud;
	size_t len = sz * n;
	long status = 0;

	if (w->run->stop)
		return 0;
	w->answered = 1;
	if (w->phase == W_LIST)
		return kbuf_append(&w->body, p, len) < 0 ? 0 : len;
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) /* an error Status body: keep it for the message */
		return kbuf_append(&w->body, p, len) < 0 ? 0 : len;
	switch (watch_frame(&w->line, p, len, watch_line, w)) {
	case 0: return len;
	case -1:
		log_warn("watch %s: an event is larger than %zu bytes; re-watching", w->spec->what, w->line.max);
		w->bad_stream = 1;
		return 0;
	default: return 0;
	}
}

static int append_param(char *q, size_t cap, size_t *n, const char *key, const char *val)
{
	char esc[2048];
	int w;

	if (!kube_query_escape(val, esc, sizeof(esc)))
		return -1;
	w = snprintf(q + *n, cap - *n, "%s%s=%s", *n ? "&" : "", key, esc);
	if (w < 0 || (size_t)w >= cap - *n)
		return -1;
	*n += (size_t)w;
	return 0;
}

/* Accept header: metadata-only specs ask for PartialObjectMetadata(List). */
static const char *accept_for(const struct watch_spec *spec, int list)
{
	if (!spec->metadata_only)
		return NULL;
	if (list)
		return "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
	return "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
}

static void retry_later(struct wrun *r, struct wstate *w, const struct kube_error *e, int relist);

/* The list or watch URL path of a spec. Returns 0, or -1 when too long. */
static int request_path(const struct wstate *w, int list, int timeout_s, char *path, size_t cap)
{
	char q[4096], t[16];
	size_t n = 0;

	if ((w->spec->label_selector && append_param(q, sizeof(q), &n, "labelSelector", w->spec->label_selector)) ||
	    (w->spec->field_selector && append_param(q, sizeof(q), &n, "fieldSelector", w->spec->field_selector)))
		return -1;
	if (list && w->run->opts->list_chunk) {
		snprintf(t, sizeof(t), "%u", w->run->opts->list_chunk);
		if (append_param(q, sizeof(q), &n, "limit", t) ||
		    (w->cont && append_param(q, sizeof(q), &n, "continue", w->cont)))
			return -1;
	}
	if (!list) {
		snprintf(t, sizeof(t), "%d", timeout_s);
		if (append_param(q, sizeof(q), &n, "watch", "1") ||
		    append_param(q, sizeof(q), &n, "resourceVersion", w->rv) ||
		    append_param(q, sizeof(q), &n, "allowWatchBookmarks", "true") ||
		    append_param(q, sizeof(q), &n, "timeoutSeconds", t))
			return -1;
	}
	if ((size_t)snprintf(path, cap, "%s%s%s", w->spec->path, n ? "?" : "", n ? q : "") >= cap)
		return -1;
	return 0;
}

static int wstart(struct wrun *r, struct wstate *w)
{
	struct kube_error e;
	char path[6144];
	int list = w->need_list || !w->rv[0];
	int timeout_s = r->opts->timeout_seconds > 0 ? r->opts->timeout_seconds : WATCH_DEFAULT_TIMEOUT_S;
	int rc;

	if (request_path(w, list, timeout_s, path, sizeof(path)) < 0) {
		r->stop = -2;
		memset(r->err, 0, sizeof(*r->err));
		r->err->rc = KUBE_EINVALID;
		snprintf(r->err->message, sizeof(r->err->message), "%s: selector too long", w->spec->what);
		return KUBE_EINVALID;
	}
	/* a credential from an exec plugin is fetched without blocking the loop */
	rc = kube_refresh_async(r->kc, &e);
	if (rc == KUBE_PENDING) {
		w->next_ms = kube_now_ms() + WATCH_CRED_POLL_MS;
		return rc;
	}
	curl_easy_reset(w->h);
	curl_slist_free_all(w->hdrs);
	w->hdrs = NULL;
	if (rc == KUBE_OK)
		rc = kube_setup_easy(r->kc, w->h, "GET", path, NULL, accept_for(w->spec, list), &w->hdrs, &e);
	if (rc == KUBE_EUNAVAILABLE) {
		/* an exec plugin that worked before failed: back off, retry */
		w->phase = list ? W_LIST : W_WATCH;
		w->retry_after_ms = -1;
		retry_later(r, w, &e, 0);
		w->phase = W_IDLE;
		return rc;
	}
	if (rc != KUBE_OK) {
		*r->err = e;
		r->stop = -2;
		return rc;
	}
	w->phase = list ? W_LIST : W_WATCH;
	w->errbuf[0] = '\0';
	w->retry_after_ms = -1;
	w->gone = w->bad_stream = 0;
	w->events = 0;
	w->started_ms = kube_now_ms();
	kbuf_reset(&w->body);
	kbuf_reset(&w->line);
	curl_easy_setopt(w->h, CURLOPT_ERRORBUFFER, w->errbuf);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->h, CURLOPT_HEADERFUNCTION, kube_retry_after_header);
	curl_easy_setopt(w->h, CURLOPT_HEADERDATA, &w->retry_after_ms);
	curl_easy_setopt(w->h, CURLOPT_PRIVATE, w);
	/* a stream must end by the server's timeout; this only guards a dead peer */
	curl_easy_setopt(w->h, CURLOPT_TIMEOUT_MS, list ? (long)WATCH_LIST_TIMEOUT_MS : (long)(timeout_s + 60) * 1000L);
	log_debug("%s %s", list ? "list" : "watch", path);
	curl_multi_add_handle(r->multi, w->h);
	return KUBE_OK;
}

static void fatal(struct wrun *r, struct wstate *w, const struct kube_error *e)
{
	const char *verb = w->phase == W_LIST ? "list" : "watch";

	*r->err = *e;
	r->stop = -2;
	if (e->rc == KUBE_EFORBIDDEN || e->rc == KUBE_EUNAUTHORIZED) {
		snprintf(r->err->message, sizeof(r->err->message), "cannot %s %s (%.200s): %.400s", verb, w->spec->what,
		         w->spec->path, e->message);
		snprintf(r->err->reason, sizeof(r->err->reason), "%s", verb);
	}
}

/* A retriable failure: schedule the next attempt with backoff. */
static void retry_later(struct wrun *r, struct wstate *w, const struct kube_error *e, int relist)
{
	int64_t wait;

	w->last = *e;
	w->failures++;
	if (relist)
		w->need_list = 1;
	wait = w->retry_after_ms >= 0 ? w->retry_after_ms : kube_backoff_ms(r->kc, w->failures);
	w->next_ms = kube_now_ms() + wait;
	log_debug("%s %s: %s; retrying in %lld ms", w->phase == W_LIST ? "list" : "watch", w->spec->what, e->message,
	          (long long)wait);
	if (w->failures >= WATCH_UNAVAILABLE_AFTER && !w->reported && r->opts->on_unavailable) {
		w->reported = 1;
		r->opts->on_unavailable(r->ctx, e);
	}
}

static void healthy(struct wstate *w)
{
	w->failures = 0;
	w->reported = 0;
	w->auth_since = 0;
	memset(&w->last, 0, sizeof(w->last));
}

/* The next list starts afresh (its first page), not from a continue token. */
static void clear_continue(struct wstate *w)
{
	free(w->cont);
	w->cont = NULL;
}

static void list_done(struct wrun *r, struct wstate *w)
{
	int toobig;
	cJSON *j = w->list_keep ? json_parse_kept(w->body.data, w->body.len, w->list_keep, JSON_MAX_VALUES, &toobig)
	                        : json_parse_capped(w->body.data, w->body.len, JSON_MAX_VALUES, &toobig);
	const cJSON *items = j ? cJSON_GetObjectItemCaseSensitive(j, "items") : NULL;
	cJSON *it, *next;
	const char *cont;
	struct kube_error e;

	if (toobig) {
		memset(&e, 0, sizeof(e));
		e.rc = KUBE_ETOOBIG;
		snprintf(e.message, sizeof(e.message), "list %s: more than %u values; narrow the selector",
		         w->spec->what, JSON_MAX_VALUES);
		fatal(r, w, &e);
		return;
	}
	if (!cJSON_IsArray(items)) {
		memset(&e, 0, sizeof(e));
		e.rc = KUBE_EPROTO;
		snprintf(e.message, sizeof(e.message), "list %s: the API server answered an invalid list",
		         w->spec->what);
		cJSON_Delete(j);
		retry_later(r, w, &e, 1);
		return;
	}
	cont = w->run->opts->list_chunk ? json_str(j, "metadata.continue") : NULL;
	if (cont && strlen(cont) > WATCH_MAX_CONTINUE) {
		memset(&e, 0, sizeof(e));
		e.rc = KUBE_EPROTO;
		snprintf(e.message, sizeof(e.message),
		         "list %s: the API server's continue token is longer than %d bytes", w->spec->what,
		         WATCH_MAX_CONTINUE);
		cJSON_Delete(j);
		clear_continue(w);
		retry_later(r, w, &e, 1);
		return;
	}
	if (!cont || !*cont)
		healthy(w); /* not before the last page: a server that expires every token must not look healthy */
	/* the first page (or the only one) starts the relist */
	if (!w->cont && deliver(w, WATCH_RESET, NULL, NULL) != 0) {
		cJSON_Delete(j);
		return;
	}
	for (it = items->child; it; it = next) {
		next = it->next; /* the callback may take it */
		if (deliver(w, WATCH_ADDED, it, (cJSON *)items) != 0)
			break;
	}
	clear_continue(w);
	if (cont && *cont && !r->stop) {
		/* more pages of the same snapshot: ask for the next one at once */
		w->cont = strdup(cont);
		cJSON_Delete(j);
		if (!w->cont) {
			memset(&e, 0, sizeof(e));
			e.rc = KUBE_ENOMEM;
			snprintf(e.message, sizeof(e.message), "out of memory");
			fatal(r, w, &e);
			return;
		}
		w->need_list = 1;
		w->next_ms = 0;
		return;
	}
	w->need_list = 0;
	w->rv[0] = '\0';
	set_rv(w, j);
	if (!r->stop)
		deliver(w, WATCH_SYNCED, NULL, NULL);
	cJSON_Delete(j);
	w->next_ms = 0; /* watch right away */
}

/*
 * A watch stream that the server accepted (200) ended, cleanly or not:
 * servers close watches all the time (timeouts, restarts, load balancers),
 * so resume from rv at once instead of counting a failure - unless it
 * closed at once without a word, which must not become a tight loop. A
 * stream shorter than a second is resumed no sooner than a second after it
 * started.
 */
static void rewatch(struct wrun *r, struct wstate *w, const struct kube_error *e, int64_t lasted)
{
	if (w->events == 0 && lasted < WATCH_MIN_STREAM_MS) {
		retry_later(r, w, e, 0);
		return;
	}
	healthy(w);
	w->next_ms = lasted < WATCH_MIN_STREAM_MS ? w->started_ms + WATCH_MIN_STREAM_MS : 0;
}

/* The transfer itself failed (no complete answer). */
static void transfer_failed(struct wrun *r, struct wstate *w, CURLcode cc, long status, int64_t lasted)
{
	struct kube_error e;

	memset(&e, 0, sizeof(e));
	if (w->phase == W_LIST && w->body.toobig) {
		e.rc = KUBE_ETOOBIG;
		snprintf(e.message, sizeof(e.message), "list %s: larger than the %zu-byte cap", w->spec->what,
		         w->body.max);
		fatal(r, w, &e);
		return;
	}
	kube_curl_error(cc, w->errbuf, kube_server(r->kc), &e);
	if (e.rc == KUBE_ETLS || e.rc == KUBE_ECONFIG)
		fatal(r, w, &e); /* no retry can fix it */
	else if (w->phase == W_WATCH && status == 200)
		rewatch(r, w, &e, lasted); /* an established stream broke */
	else
		retry_later(r, w, &e, w->phase == W_LIST);
}

/* The server answered something else than 200. */
static void http_refused(struct wrun *r, struct wstate *w, long status)
{
	struct kube_error e;
	int first;

	kube_http_error(status, w->body.data, w->body.len, &e);
	switch (e.rc) {
	case KUBE_EGONE:
		if (w->cont) {
			/* a list page's continue token expired: list afresh, after a backoff that grows if it recurs */
			clear_continue(w);
			retry_later(r, w, &e, 1);
			break;
		}
		/* a watch's resourceVersion expired: list afresh at once */
		w->need_list = 1;
		w->next_ms = 0;
		break;
	case KUBE_EUNAUTHORIZED:
	case KUBE_EFORBIDDEN:
		first = !w->auth_since;
		if (!kube_auth_retry(r->kc, &w->auth_since)) {
			fatal(r, w, &e);
			break;
		}
		if (first) {
			log_debug("%s %s: %s; re-reading the credentials and retrying",
			          w->phase == W_LIST ? "list" : "watch", w->spec->what, e.message);
			w->failures = 0;
		}
		/* first retry at once (a rotated token), then at most a second apart */
		w->next_ms = first ? 0 : kube_now_ms() + kube_auth_backoff_ms(r->kc, ++w->failures);
		break;
	case KUBE_EUNAVAILABLE:
	case KUBE_EPROTO: /* a 2xx that is not 200: the server misbehaves; it may heal */
		retry_later(r, w, &e, w->phase == W_LIST);
		break;
	default: fatal(r, w, &e); break; /* 3xx, 4xx: retrying cannot help */
	}
}

/* A transfer ended; w->phase still says which kind until the end. */
static void transfer_done(struct wrun *r, struct wstate *w, CURLcode cc)
{
	long status = 0;
	struct kube_error e;
	int64_t lasted = kube_now_ms() - w->started_ms;

	w->answered = 1;
	curl_multi_remove_handle(r->multi, w->h);
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	memset(&e, 0, sizeof(e));
	if (r->stop) {
		/* nothing */
	} else if (w->phase == W_WATCH && w->gone) {
		w->need_list = 1;
		w->next_ms = 0;
	} else if (w->phase == W_WATCH && w->bad_stream) {
		e = w->last;
		if (!e.rc) {
			e.rc = KUBE_EPROTO;
			snprintf(e.message, sizeof(e.message), "malformed watch stream");
		}
		retry_later(r, w, &e, 0);
	} else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && status != 200 && !w->body.toobig)) {
		/* (a write error on an error response is only our refusal to stream it) */
		transfer_failed(r, w, cc, status, lasted);
	} else if (status == 200 && w->phase == W_LIST) {
		list_done(r, w);
	} else if (status == 200) {
		e.rc = KUBE_EUNAVAILABLE;
		snprintf(e.message, sizeof(e.message), "watch %s closed immediately", w->spec->what);
		rewatch(r, w, &e, lasted); /* server timeout or EOF */
	} else {
		http_refused(r, w, status);
	}
	w->phase = W_IDLE;
}

/* The deadline passed: timed out, or unavailable if that is why nothing was decided. */
static void deadline_reached(struct wstate *ws, size_t nspecs, struct kube_error *err)
{
	size_t i;

	memset(err, 0, sizeof(*err));
	err->rc = KUBE_ETIMEOUT;
	snprintf(err->message, sizeof(err->message), "deadline reached");
	for (i = 0; i < nspecs; i++) {
		/* failing requests, or answers that were never valid (an
		 * invalid list forever): the server is the problem (69) */
		if (ws[i].failures && (ws[i].last.rc == KUBE_EUNAVAILABLE || ws[i].last.rc == KUBE_EPROTO)) {
			*err = ws[i].last;
			err->rc = KUBE_ETIMEOUT;
			snprintf(err->reason, sizeof(err->reason), "Unavailable");
		}
	}
}

/* Periodic ticks and wake_at: call on_tick. Returns 1 when the run must stop. */
static int run_ticks(struct wrun *r, int64_t now, int64_t *next_tick)
{
	const struct watch_opts *opts = r->opts;
	int due = 0, t;

	if (*next_tick && now >= *next_tick) {
		*next_tick = now + opts->tick_ms;
		due = 1;
	}
	if (opts->wake_at && *opts->wake_at && now >= *opts->wake_at) {
		*opts->wake_at = 0;
		due = 1;
	}
	if (!due)
		return 0;
	t = opts->on_tick ? opts->on_tick(r->ctx) : 0;
	if (t > 0)
		r->stop = 1;
	else if (t < 0)
		r->stop = -1;
	return r->stop != 0;
}

/* libcurl's CURLMOPT_SOCKETFUNCTION: the sockets to poll, and for what. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct wrun *r = userp;
	size_t i;

	(void)easy;
	(void)socketp;
	for (i = 0; i < r->npfd && r->pfd[i].fd != s; i++)
		;
	if (what == CURL_POLL_REMOVE) {
		if (i < r->npfd)
			r->pfd[i] = r->pfd[--r->npfd];
		return 0;
	}
	if (i == r->npfd) {
		if (r->npfd == WATCH_MAX_SOCKETS)
			return -1; /* libcurl fails the transfers: never with our few specs */
		r->npfd++;
		r->pfd[i].fd = s;
	}
	r->pfd[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
	r->pfd[i].revents = 0;
	return 0;
}

/* libcurl's CURLMOPT_TIMERFUNCTION: when to give it CURL_SOCKET_TIMEOUT. */
static int on_timer(CURLM *multi, long ms, void *userp)
{
	struct wrun *r = userp;

	(void)multi;
	r->curl_at = ms < 0 ? -1 : kube_now_ms() + ms;
	return 0;
}

/* Handle the transfers that finished. */
static void reap_transfers(struct wrun *r)
{
	CURLMsg *m;
	int msgs;

	while ((m = curl_multi_info_read(r->multi, &msgs))) {
		struct wstate *w = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
		if (w)
			transfer_done(r, w, m->data.result);
	}
}

/* libcurl's timeout action, when due: connects, transfers just added, its own timeouts. */
static void run_timeouts(struct wrun *r)
{
	int running;

	if (r->curl_at < 0 || kube_now_ms() < r->curl_at)
		return;
	r->curl_at = -1; /* on_timer may set the next one during the call */
	curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	reap_transfers(r);
}

/* Poll the sockets until timeout_ms, and give libcurl the ones that are ready. */
static void wait_sockets(struct wrun *r, int timeout_ms)
{
	struct {
		curl_socket_t fd;
		int ev;
	} ready[WATCH_MAX_SOCKETS];
	size_t i, n = 0;
	int running;

	if (poll(r->pfd, (nfds_t)r->npfd, timeout_ms) <= 0)
		return; /* timeout, or a signal: the loop looks at the time and its flags */
	/* on_socket changes pfd during the calls: collect first */
	for (i = 0; i < r->npfd; i++) {
		short re = r->pfd[i].revents;
		if (!re)
			continue;
		ready[n].fd = r->pfd[i].fd;
		ready[n++].ev = ((re & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0) |
		                ((re & POLLOUT) ? CURL_CSELECT_OUT : 0) |
		                ((re & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
		r->pfd[i].revents = 0;
	}
	for (i = 0; i < n && !r->stop; i++)
		curl_multi_socket_action(r->multi, ready[i].fd, ready[i].ev, &running);
	reap_transfers(r);
}

/* Spec i may start: the one before it is answered (wstate.answered: the chain). */
static int in_chain(const struct wstate *ws, size_t i) { return i == 0 || ws[i - 1].answered; }

/* The earliest of: an idle spec's next start, the tick, wake_at, the deadline. */
static int64_t next_wake(const struct wrun *r, const struct wstate *ws, size_t nspecs, int64_t next_tick)
{
	const struct watch_opts *opts = r->opts;
	int64_t wake = INT64_MAX;
	size_t i;

	for (i = 0; i < nspecs && in_chain(ws, i); i++)
		if (ws[i].phase == W_IDLE && ws[i].next_ms < wake)
			wake = ws[i].next_ms;
	if (next_tick && next_tick < wake)
		wake = next_tick;
	if (opts->wake_at && *opts->wake_at && *opts->wake_at < wake)
		wake = *opts->wake_at;
	if (opts->deadline_ms && opts->deadline_ms < wake)
		wake = opts->deadline_ms;
	return wake;
}

/*
 * spec->keep, extended with what this file reads of every object, wrapped
 * in a watch event line ({"type", "object"}) and in a list ({"metadata",
 * "items"}). One allocation, freed with the state. -1: out of memory or a
 * keep too long to extend (then everything is parsed: slower, never wrong).
 */
static int envelope_keeps(struct wstate *w)
{
	static const struct json_keep own[] = {{"code", NULL}, {"message", NULL}, {"reason", NULL}, {NULL, NULL}};
	static const struct json_keep list_meta[] = {{"resourceVersion", NULL}, {"continue", NULL}, {NULL, NULL}};
	const struct json_keep *user = w->spec->keep, *umeta = NULL;
	struct json_keep *top, *meta, *line, *list;
	size_t n = 0, m = 0, i, t = 0, u = 0;
	int has_meta = 0;

	for (; user[n].key; n++) {
		if (strcmp(user[n].key, "metadata") == 0) {
			has_meta = 1;
			umeta = user[n].sub;
		}
	}
	for (; umeta && umeta[m].key; m++)
		;
	if (n + 5 > JSON_KEEP_MAX || m + 2 > JSON_KEEP_MAX)
		return -1;
	if (!(w->keeps = calloc((n + 5) + (m + 2) + 3 + 3, sizeof(*w->keeps))))
		return -1;
	top = w->keeps;
	meta = top + n + 5;
	line = meta + m + 2;
	list = line + 3;
	for (i = 0; i < m; i++)
		meta[u++] = umeta[i];
	for (i = 0; i < m && strcmp(umeta[i].key, "resourceVersion") != 0; i++)
		;
	if (i == m)
		meta[u++] = (struct json_keep){"resourceVersion", NULL};
	for (i = 0; i < n; i++) {
		top[t] = user[i];
		if (strcmp(user[i].key, "metadata") == 0 && umeta)
			top[t].sub = meta; /* a whole metadata (NULL) stays whole */
		t++;
	}
	if (!has_meta)
		top[t++] = (struct json_keep){"metadata", meta};
	for (i = 0; own[i].key; i++) {
		size_t j;
		for (j = 0; j < n && strcmp(user[j].key, own[i].key) != 0; j++)
			;
		if (j == n)
			top[t++] = own[i];
	}
	line[0] = (struct json_keep){"type", NULL};
	line[1] = (struct json_keep){"object", top};
	list[0] = (struct json_keep){"metadata", list_meta};
	list[1] = (struct json_keep){"items", top};
	w->line_keep = line;
	w->list_keep = list;
	return 0;
}

static struct wstate *states_new(struct wrun *r, const struct watch_spec *specs, size_t nspecs)
{
	struct wstate *ws = calloc(nspecs ? nspecs : 1, sizeof(*ws));
	size_t i;

	for (i = 0; ws && i < nspecs; i++) {
		ws[i].spec = &specs[i];
		ws[i].index = i;
		ws[i].run = r;
		ws[i].need_list = 1;
		ws[i].body.max = r->opts->max_list ? r->opts->max_list : WATCH_DEFAULT_MAX_LIST;
		ws[i].line.max = r->opts->max_line ? r->opts->max_line : WATCH_DEFAULT_MAX_LINE;
		ws[i].h = curl_easy_init();
		if (!ws[i].h)
			r->stop = -2;
		if (specs[i].keep && envelope_keeps(&ws[i]) < 0)
			log_debug("watch %s: parsing whole objects (the keep is too long to extend)", specs[i].what);
	}
	return ws;
}

static void states_free(struct wrun *r, struct wstate *ws, size_t nspecs)
{
	size_t i;

	for (i = 0; ws && i < nspecs; i++) {
		if (ws[i].h) {
			curl_multi_remove_handle(r->multi, ws[i].h);
			curl_easy_cleanup(ws[i].h);
		}
		curl_slist_free_all(ws[i].hdrs);
		kbuf_free(&ws[i].body);
		kbuf_free(&ws[i].line);
		free(ws[i].keeps);
		free(ws[i].cont);
	}
	free(ws);
}

int watch_run(struct kube_client *kc, const struct watch_spec *specs, size_t nspecs, const struct watch_opts *opts,
              watch_cb cb, void *ctx, struct kube_error *err)
{
	struct wrun r = {.kc = kc, .opts = opts, .cb = cb, .ctx = ctx, .err = err, .curl_at = -1};
	struct wstate *ws;
	int64_t next_tick = opts->tick_ms > 0 ? kube_now_ms() + opts->tick_ms : 0, outer_deadline;
	size_t i;

	memset(err, 0, sizeof(*err));
	r.multi = curl_multi_init();
	if (r.multi) {
		curl_multi_setopt(r.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(r.multi, CURLMOPT_SOCKETDATA, &r);
		curl_multi_setopt(r.multi, CURLMOPT_TIMERFUNCTION, on_timer);
		curl_multi_setopt(r.multi, CURLMOPT_TIMERDATA, &r);
	}
	ws = r.multi ? states_new(&r, specs, nspecs) : NULL;
	if (!ws || r.stop) {
		states_free(&r, ws, nspecs);
		if (r.multi)
			curl_multi_cleanup(r.multi);
		err->rc = KUBE_ENOMEM;
		snprintf(err->message, sizeof(err->message), "out of memory");
		return KUBE_ENOMEM;
	}
	/* exec plugins run for this watch (credential refreshes, re-reads after
	 * a 401) die at its deadline */
	outer_deadline = kube_set_deadline(kc, opts->deadline_ms);
	while (!r.stop) {
		int64_t now = kube_now_ms(), wake, t;

		if (opts->deadline_ms && now >= opts->deadline_ms) {
			deadline_reached(ws, nspecs, err);
			break;
		}
		if (run_ticks(&r, now, &next_tick))
			break;
		for (i = 0; i < nspecs && !r.stop; i++)
			if (ws[i].phase == W_IDLE && ws[i].next_ms <= now && in_chain(ws, i))
				wstart(&r, &ws[i]);
		if (r.stop)
			break;
		run_timeouts(&r);
		if (r.stop)
			break;
		now = kube_now_ms();
		wake = next_wake(&r, ws, nspecs, next_tick);
		if (r.curl_at >= 0 && r.curl_at < wake)
			wake = r.curl_at;
		if (wake <= now)
			continue; /* something to start right away */
		t = wake == INT64_MAX || wake - now > 60000 ? 60000 : wake - now;
		wait_sockets(&r, (int)t);
	}
	if (r.stop == -1)
		err->rc = KUBE_ECANCELLED;
	else if (r.stop == 1)
		memset(err, 0, sizeof(*err));
	kube_set_deadline(kc, outer_deadline);
	states_free(&r, ws, nspecs);
	curl_multi_cleanup(r.multi);
	return err->rc;
}
