/*
 * test_migrate_fake_kube.h - an in-memory stand-in for lib/kube.c used by
 * the migrate-runner unit tests: a tiny object store keyed by path that
 * honours resourceVersion (409 on a stale PUT, 409 on a duplicate POST,
 * 404 on a missing object), plus fault injection. Include after the .c
 * under test; it defines the kube_* functions those files call.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kube.h"

#define FK_MAX 8

struct kube_client {
	int dummy;
};

static struct {
	char path[256];
	cJSON *obj;
} fk_store[FK_MAX];
static int fk_rv = 100;
static int64_t fk_clock = 1000000;
static int fk_conflicts;   /* answer the next N PUTs with 409 (after bumping the rv) */
static int fk_unavailable; /* answer the next N requests as unreachable */
static int fk_forbidden;   /* answer every request 403 */
static int fk_requests;
/* run before each PUT is applied: lets a test change the object "concurrently" */
static void (*fk_before_put)(const char *path);

static struct kube_client fk_client;

const char *kube_namespace(const struct kube_client *kc)
{
	(void)kc;
	return "ns1";
}

int64_t kube_now_ms(void) { return fk_clock; }

const char *kube_strerror(enum kube_rc rc) { return rc == KUBE_OK ? "ok" : "error"; }

void kube_response_free(struct kube_response *r)
{
	free(r->body);
	r->body = NULL;
}

__attribute__((unused)) static void fk_reset(void)
{
	for (int i = 0; i < FK_MAX; i++) {
		cJSON_Delete(fk_store[i].obj);
		fk_store[i].obj = NULL;
		fk_store[i].path[0] = '\0';
	}
	fk_conflicts = fk_unavailable = fk_forbidden = fk_requests = 0;
	fk_before_put = NULL;
}

static int fk_find(const char *path)
{
	for (int i = 0; i < FK_MAX; i++)
		if (fk_store[i].obj && strcmp(fk_store[i].path, path) == 0)
			return i;
	return -1;
}

static void fk_bump(cJSON *obj)
{
	char rv[32];
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");

	snprintf(rv, sizeof(rv), "%d", ++fk_rv);
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
	cJSON_AddStringToObject(meta, "resourceVersion", rv);
}

/* Put obj (owned) at path directly, as another client would. */
static void fk_put_raw(const char *path, cJSON *obj)
{
	int i = fk_find(path);

	fk_bump(obj);
	if (i < 0)
		for (i = 0; i < FK_MAX && fk_store[i].obj; i++)
			;
	cJSON_Delete(fk_store[i].obj);
	fk_store[i].obj = obj;
	snprintf(fk_store[i].path, sizeof(fk_store[i].path), "%s", path);
}

__attribute__((unused)) static cJSON *fk_get(const char *path)
{
	int i = fk_find(path);
	return i < 0 ? NULL : fk_store[i].obj;
}

static int fk_fail(struct kube_error *err, enum kube_rc rc, long status, const char *msg)
{
	memset(err, 0, sizeof(*err));
	err->rc = rc;
	err->http_status = status;
	snprintf(err->message, sizeof(err->message), "%s", msg);
	return rc;
}

int kube_request(struct kube_client *kc, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len, int64_t deadline_ms, struct kube_response *resp,
                 struct kube_error *err)
{
	int i;

	(void)kc;
	(void)content_type;
	(void)deadline_ms;
	fk_requests++;
	memset(resp, 0, sizeof(*resp));
	memset(err, 0, sizeof(*err));
	if (fk_forbidden)
		return fk_fail(err, KUBE_EFORBIDDEN, 403, "forbidden");
	if (fk_unavailable > 0) {
		fk_unavailable--;
		fk_clock += 1000;
		return fk_fail(err, KUBE_EUNAVAILABLE, 0, "connection refused");
	}
	if (strcmp(method, "GET") == 0) {
		i = fk_find(path);
		if (i < 0)
			return fk_fail(err, KUBE_ENOTFOUND, 404, "not found");
		resp->body = cJSON_PrintUnformatted(fk_store[i].obj);
		resp->len = strlen(resp->body);
		resp->status = 200;
		return KUBE_OK;
	}
	{
		cJSON *obj = cJSON_ParseWithLength(body, body_len);
		char full[300];
		const char *name = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name"));

		if (!obj)
			return fk_fail(err, KUBE_EINVALID, 400, "bad json");
		if (strcmp(method, "POST") == 0) {
			snprintf(full, sizeof(full), "%s/%s", path, name ? name : "");
			if (fk_find(full) >= 0) {
				cJSON_Delete(obj);
				return fk_fail(err, KUBE_ECONFLICT, 409, "AlreadyExists");
			}
		} else { /* PUT */
			const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion"));
			const char *cur;

			if (fk_before_put)
				fk_before_put(path);
			snprintf(full, sizeof(full), "%s", path);
			i = fk_find(full);
			if (i < 0) {
				cJSON_Delete(obj);
				return fk_fail(err, KUBE_ENOTFOUND, 404, "not found");
			}
			if (fk_conflicts > 0) {
				fk_conflicts--;
				fk_bump(fk_store[i].obj);
			}
			cur = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(fk_store[i].obj, "metadata"), "resourceVersion"));
			if (!rv || !cur || strcmp(rv, cur) != 0) {
				cJSON_Delete(obj);
				return fk_fail(err, KUBE_ECONFLICT, 409, "Conflict");
			}
		}
		fk_put_raw(full, obj);
		resp->body = cJSON_PrintUnformatted(obj);
		resp->len = strlen(resp->body);
		resp->status = strcmp(method, "POST") == 0 ? 201 : 200;
		return KUBE_OK;
	}
}

int kube_get_json(struct kube_client *kc, const char *path, int64_t deadline_ms, struct cJSON **out,
                  struct kube_error *err)
{
	struct kube_response r;
	int rc = kube_request(kc, "GET", path, NULL, NULL, 0, deadline_ms, &r, err);

	*out = NULL;
	if (rc == KUBE_OK) {
		*out = cJSON_Parse(r.body);
		if (!*out)
			rc = fk_fail(err, KUBE_EPROTO, 200, "bad json");
	}
	kube_response_free(&r);
	return rc;
}
