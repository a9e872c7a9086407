/*
 * lock.c - Lease-based lock with client-go leaderelection semantics
 * (see lock.h).
 */
#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "json.h"
#include "log.h"

struct lock {
	struct kube_client *kc;
	char *name, *holder;
	int lease_s;
	cJSON *lease; /* our latest copy of the Lease, as the server returned it */
	int64_t last_renew_ms;
	int held;
	char other[128];
	char path[512], coll[512];
	uint32_t rnd;
};

char *lock_micro_time(int64_t wall_ms, char *buf, size_t len)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	char base[32];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06dZ", base, (int)(wall_ms % 1000) * 1000);
	return buf;
}

enum lock_verdict lock_decide(const cJSON *lease, const char *holder, int64_t now_ms, int default_lease_s,
                              struct lock_observation *obs, int64_t *wait_ms)
{
	const char *who = json_str(lease, "spec.holderIdentity");
	const char *renew = json_str(lease, "spec.renewTime");
	const char *rv = json_str(lease, "metadata.resourceVersion");
	int64_t dur = json_int(lease, "spec.leaseDurationSeconds", 0);
	char key[sizeof(obs->key)];
	int64_t elapsed;

	if (wait_ms)
		*wait_ms = 0;
	if (!who || !*who)
		return LOCK_FREE;
	if (strcmp(who, holder) == 0)
		return LOCK_OURS;
	if (dur <= 0 || dur > 86400)
		dur = default_lease_s;
	snprintf(key, sizeof(key), "%s|%s|%s", who, renew ? renew : "", rv ? rv : "");
	if (strcmp(key, obs->key) != 0) {
		memcpy(obs->key, key, sizeof(key));
		obs->observed_ms = now_ms;
	}
	elapsed = now_ms - obs->observed_ms;
	if (elapsed >= dur * 1000)
		return LOCK_EXPIRED;
	if (wait_ms)
		*wait_ms = dur * 1000 - elapsed;
	return LOCK_HELD;
}

struct lock *lock_new(struct kube_client *kc, const char *name, const char *holder, int lease_s)
{
	struct lock *l = calloc(1, sizeof(*l));
	int n1, n2;

	if (!l)
		return NULL;
	l->kc = kc;
	l->name = strdup(name);
	l->holder = strdup(holder);
	l->lease_s = lease_s > 0 ? lease_s : 30;
	l->rnd = (uint32_t)getpid() * 2654435761u ^ (uint32_t)kube_now_ms();
	if (!l->rnd)
		l->rnd = 1;
	n1 =
	    snprintf(l->coll, sizeof(l->coll), "/apis/coordination.k8s.io/v1/namespaces/%s/leases", kube_namespace(kc));
	n2 = snprintf(l->path, sizeof(l->path), "%s/%s", l->coll, name);
	if (!l->name || !l->holder || n1 < 0 || (size_t)n1 >= sizeof(l->coll) || n2 < 0 ||
	    (size_t)n2 >= sizeof(l->path)) {
		lock_free(l);
		return NULL;
	}
	return l;
}

void lock_free(struct lock *l)
{
	if (!l)
		return;
	cJSON_Delete(l->lease);
	free(l->name);
	free(l->holder);
	free(l);
}

int64_t lock_last_renew(const struct lock *l) { return l->last_renew_ms; }
int lock_lease_seconds(const struct lock *l) { return l->lease_s; }
const char *lock_other_holder(const struct lock *l) { return l->other; }

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_str(cJSON *obj, const char *key, const char *val)
{
	cJSON *v = cJSON_CreateString(val);

	if (!v)
		return -1;
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	if (!cJSON_AddItemToObject(obj, key, v)) {
		cJSON_Delete(v);
		return -1;
	}
	return 0;
}

static int set_num(cJSON *obj, const char *key, double val)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	return cJSON_AddNumberToObject(obj, key, val) ? 0 : -1;
}

static cJSON *get_or_add_object(cJSON *obj, const char *key)
{
	cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsObject(o))
		return o;
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	return cJSON_AddObjectToObject(obj, key);
}

/*
 * Turn a copy of base (or a new object when base is NULL) into the Lease we
 * want to write. take: we become the holder (acquireTime, transitions).
 * release: clear the holder. Caller cJSON_Deletes.
 */
static cJSON *build(const struct lock *l, const cJSON *base, int take, int release)
{
	cJSON *obj = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
	cJSON *meta, *spec;
	char now[40];

	if (!obj)
		return NULL;
	lock_micro_time(wall_ms(), now, sizeof(now));
	meta = get_or_add_object(obj, "metadata");
	spec = get_or_add_object(obj, "spec");
	if (!meta || !spec)
		goto fail;
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
	if (!base) {
		cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
		if (!labels || set_str(obj, "apiVersion", "coordination.k8s.io/v1") || set_str(obj, "kind", "Lease") ||
		    set_str(meta, "name", l->name) ||
		    set_str(labels, "app.kubernetes.io/managed-by", "migrate-runner") ||
		    set_num(spec, "leaseTransitions", 0))
			goto fail;
	}
	if (release) {
		/* as client-go's ReleaseOnCancel: no holder, a minimal duration */
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "holderIdentity");
		if (set_num(spec, "leaseDurationSeconds", 1) || set_str(spec, "renewTime", now))
			goto fail;
		return obj;
	}
	if (take) {
		const char *prev = json_str(spec, "holderIdentity");
		int64_t transitions = json_int(spec, "leaseTransitions", 0);

		/* as client-go: every change of holder, from none included, counts */
		if (base && (!prev || strcmp(prev, l->holder) != 0))
			transitions++;
		if (set_num(spec, "leaseTransitions", (double)transitions) || set_str(spec, "acquireTime", now))
			goto fail;
	}
	if (set_str(spec, "holderIdentity", l->holder) || set_num(spec, "leaseDurationSeconds", l->lease_s) ||
	    set_str(spec, "renewTime", now))
		goto fail;
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

static void oom(struct kube_error *err)
{
	memset(err, 0, sizeof(*err));
	err->rc = KUBE_ENOMEM;
	snprintf(err->message, sizeof(err->message), "out of memory");
}

/* POST/PUT obj; on success keep the server's copy in l->lease. */
static int write_lease(struct lock *l, const char *method, cJSON *obj, int64_t deadline, struct kube_error *err)
{
	struct kube_response resp = {0};
	char *body = cJSON_PrintUnformatted(obj);
	int rc;

	if (!body) {
		oom(err);
		return KUBE_ENOMEM;
	}
	rc = kube_request(l->kc, method, strcmp(method, "POST") == 0 ? l->coll : l->path, "application/json", body,
	                  strlen(body), deadline, &resp, err);
	free(body);
	if (rc == KUBE_OK) {
		cJSON *got = resp.body ? json_parse(resp.body, resp.len) : NULL;
		cJSON_Delete(l->lease);
		/* a server that answers without a body: keep what we sent */
		l->lease = got ? got : cJSON_Duplicate(obj, 1);
	}
	kube_response_free(&resp);
	return rc;
}

static int64_t req_deadline(int64_t deadline)
{
	int64_t now = kube_now_ms();
	int64_t d = now + 10000;

	if (deadline && deadline < d)
		d = deadline;
	if (d < now + 1000)
		d = now + 1000;
	return d;
}

static int64_t jitter(struct lock *l, int64_t ms)
{
	l->rnd ^= l->rnd << 13;
	l->rnd ^= l->rnd >> 17;
	l->rnd ^= l->rnd << 5;
	return ms / 2 + (int64_t)(l->rnd % (uint32_t)(ms / 2 + 1));
}

static int transient(int rc) { return rc == KUBE_EUNAVAILABLE || rc == KUBE_ETIMEOUT; }

struct acquiring {
	struct lock_observation obs;
	int announced, unavailable, conflicts, absent;
};

/* Someone else holds it: say so once per holder. */
static void announce_holder(struct lock *l, struct acquiring *a, const cJSON *cur, int64_t until_expiry)
{
	const char *who = json_str(cur, "spec.holderIdentity");
	char d[32];

	a->conflicts = 0;
	if (a->announced && strcmp(who, l->other) == 0)
		return;
	dur_format(until_expiry, d, sizeof(d));
	snprintf(l->other, sizeof(l->other), "%s", who);
	log_info("lock %s is held by %s; waiting (it expires in %s unless renewed)", l->name, l->other, d);
	a->announced = 1;
}

/*
 * One round: read, decide, write. Returns LOCK_ACQUIRED, LOCK_ERROR, or -1
 * to sleep and try again (held by someone else, unreachable, or a 409).
 */
static int try_acquire(struct lock *l, struct acquiring *a, int64_t deadline_ms, struct kube_error *err)
{
	cJSON *cur = NULL, *want;
	const char *method;
	enum lock_verdict v = LOCK_FREE;
	int64_t until_expiry = 0;
	int rc = kube_get_json(l->kc, l->path, req_deadline(deadline_ms), &cur, err);

	if (rc == KUBE_ENOMEM) {
		oom(err);
		return LOCK_ERROR;
	}
	if (rc != KUBE_OK && rc != KUBE_ENOTFOUND) {
		if (!transient(rc))
			return LOCK_ERROR;
		if (!a->unavailable++)
			log_warn("lock %s: %s; retrying until the lock timeout", l->name, err->message);
		return -1;
	}
	a->unavailable = 0;
	if (cur) {
		v = lock_decide(cur, l->holder, kube_now_ms(), l->lease_s, &a->obs, &until_expiry);
		if (v == LOCK_HELD) {
			announce_holder(l, a, cur, until_expiry);
			cJSON_Delete(cur);
			return -1;
		}
		if (v == LOCK_EXPIRED)
			log_warn("lock %s: holder %s stopped renewing its lease %lld s ago; taking over", l->name,
			         json_str(cur, "spec.holderIdentity"),
			         (long long)json_int(cur, "spec.leaseDurationSeconds", l->lease_s));
	}
	method = cur ? "PUT" : "POST";
	want = build(l, cur, v != LOCK_OURS || !l->held, 0);
	cJSON_Delete(cur);
	if (!want) {
		oom(err);
		return LOCK_ERROR;
	}
	rc = write_lease(l, method, want, req_deadline(deadline_ms), err);
	cJSON_Delete(want);
	if (rc == KUBE_OK) {
		l->held = 1;
		l->last_renew_ms = kube_now_ms();
		memset(err, 0, sizeof(*err));
		return LOCK_ACQUIRED;
	}
	if (rc == KUBE_EFORBIDDEN && !strcmp(method, "POST")) {
		/*
		 * The chart creates the Lease and grants only get/update on it by
		 * name, but Helm applies it a moment after the Job: absent and not
		 * creatable means "not there yet", until the lock timeout.
		 */
		if (!a->absent++)
			log_warn("lock %s: the Lease does not exist and creating it is not allowed (%s); "
			         "waiting for it to appear until the lock timeout",
			         l->name, err->message);
		return -1;
	}
	if (rc == KUBE_ECONFLICT) {
		/* someone else was faster (look again after a pause), or a server that always says 409 */
		if (++a->conflicts == 5)
			log_warn("lock %s: %d write conflicts (409) in a row; backing off", l->name, a->conflicts);
		else
			log_debug("lock %s: write conflict (409); re-reading", l->name);
		return -1;
	}
	return transient(rc) ? -1 : LOCK_ERROR;
}

int lock_acquire(struct lock *l, int64_t deadline_ms, int (*wait_cb)(void *ctx, int64_t ms), void *ctx,
                 struct kube_error *err)
{
	struct acquiring a;
	/* the first re-reads come soon: a released lock is taken within ~0.1 s */
	int64_t backoff = 100;

	memset(&a, 0, sizeof(a));
	memset(err, 0, sizeof(*err));
	for (;;) {
		int rc = try_acquire(l, &a, deadline_ms, err);
		int64_t now, sleep_ms;

		if (rc >= 0)
			return rc;
		now = kube_now_ms();
		if (now >= deadline_ms)
			return LOCK_TIMEOUT;
		sleep_ms = jitter(l, backoff);
		/* re-check at most every 2 s: a released lock is taken soon */
		backoff = backoff * 2 < 2000 ? backoff * 2 : 2000;
		if (sleep_ms > deadline_ms - now)
			sleep_ms = deadline_ms - now;
		if (wait_cb(ctx, sleep_ms) != 0)
			return LOCK_INTERRUPTED;
	}
}

enum put_rc {
	PUT_DONE,
	PUT_GONE, /* deleted, or someone else holds it now */
	PUT_ERROR,
};

/*
 * Write our copy of the Lease, renewed or released (the one "PUT, on 409
 * re-read" loop). On 409 re-read it: still ours (our own retried write
 * bumped the version) means try again on the fresh copy, up to 3 times;
 * someone else's means it is gone.
 */
static enum put_rc put_ours(struct lock *l, int release, int64_t deadline_ms, struct kube_error *err)
{
	for (int round = 0; round < 3; round++) {
		cJSON *want = build(l, l->lease, 0, release), *cur = NULL;
		const char *who;
		int rc;

		if (!want) {
			oom(err);
			return PUT_ERROR;
		}
		rc = write_lease(l, "PUT", want, deadline_ms, err);
		cJSON_Delete(want);
		if (rc == KUBE_OK)
			return PUT_DONE;
		if (rc != KUBE_ECONFLICT)
			return rc == KUBE_ENOTFOUND ? PUT_GONE : PUT_ERROR;
		rc = kube_get_json(l->kc, l->path, deadline_ms, &cur, err);
		if (rc != KUBE_OK)
			return rc == KUBE_ENOTFOUND ? PUT_GONE : PUT_ERROR;
		who = json_str(cur, "spec.holderIdentity");
		if (!who || strcmp(who, l->holder) != 0) {
			snprintf(l->other, sizeof(l->other), "%s", who ? who : "");
			cJSON_Delete(cur);
			return PUT_GONE;
		}
		cJSON_Delete(l->lease);
		l->lease = cur;
	}
	err->rc = KUBE_ECONFLICT;
	snprintf(err->message, sizeof(err->message), "Lease %s kept changing (409); gave up", l->name);
	return PUT_ERROR;
}

int lock_renew(struct lock *l, int64_t deadline_ms, struct kube_error *err)
{
	memset(err, 0, sizeof(*err));
	switch (put_ours(l, 0, deadline_ms, err)) {
	case PUT_DONE: l->last_renew_ms = kube_now_ms(); return LOCK_RENEWED;
	case PUT_GONE: l->held = 0; return LOCK_LOST;
	default: return LOCK_RENEW_ERR;
	}
}

int lock_release(struct lock *l, int64_t deadline_ms, struct kube_error *err)
{
	memset(err, 0, sizeof(*err));
	if (!l->held)
		return KUBE_OK;
	if (put_ours(l, 1, deadline_ms, err) == PUT_ERROR)
		return err->rc != KUBE_OK ? (int)err->rc : KUBE_ECONFLICT;
	/* released, or not ours any more: nothing to release */
	l->held = 0;
	return KUBE_OK;
}
