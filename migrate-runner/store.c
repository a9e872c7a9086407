/*
 * store.c - the termination log and the ConfigMap record (see store.h).
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"

int rec_write_file(const char *path, int create, const char *json)
{
	/* O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of hanging */
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (create ? O_CREAT : 0), 0644);
	size_t len = strlen(json), off = 0;
	int rc = 0;

	if (fd < 0)
		return errno;
	while (off < len) {
		ssize_t n = write(fd, json + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0 && rc == 0)
		rc = errno;
	return rc;
}

int rec_valid_key(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n > 253 || strcmp(key, ".") == 0 || strcmp(key, "..") == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

struct candidate {
	cJSON *item; /* deleted by pointer: a key may have had duplicates */
	int64_t finished;
	size_t bytes;
};

static int cmp_candidate(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	if (x->finished != y->finished)
		return x->finished < y->finished ? -1 : 1;
	return strcmp(x->item->string, y->item->string);
}

/* finishedAt of a record value, or -1 when the value is not one of ours. */
static int64_t record_finished(const char *value)
{
	cJSON *j = json_parse(value, strlen(value));
	const char *fin, *status;
	int64_t ms = -1;

	if (!j)
		return -1;
	fin = json_str(j, "finishedAt");
	status = json_str(j, "status");
	if (cJSON_IsObject(j) && fin && status && json_parse_time(fin, &ms) != 0)
		ms = -1;
	cJSON_Delete(j);
	return ms;
}

struct keyed {
	cJSON *item;
	size_t pos;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->item->string, y->item->string);

	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * A hostile or broken server may send duplicate keys; keep only the last
 * of each (as Go's decoder, hence the API server, reads them), so that a
 * key names exactly one item (issue 15 item 16: pruning by name freed one
 * duplicate and then read the other's freed key). Returns 0 or -1 on OOM.
 */
static int drop_duplicate_keys(cJSON *data)
{
	struct keyed *all;
	cJSON *item;
	size_t n = 0, i = 0;

	cJSON_ArrayForEach (item, data) {
		if (!item->string)
			return -1;
		n++;
	}
	all = malloc((n ? n : 1) * sizeof(*all));
	if (!all)
		return -1;
	cJSON_ArrayForEach (item, data) {
		all[i].item = item;
		all[i].pos = i;
		i++;
	}
	qsort(all, n, sizeof(*all), cmp_keyed);
	for (i = 0; i + 1 < n; i++)
		if (strcmp(all[i].item->string, all[i + 1].item->string) == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(data, all[i].item));
	free(all);
	return 0;
}

static int set_key(cJSON *data, const char *key, const char *value)
{
	cJSON *nv = cJSON_CreateString(value);

	if (!nv)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(data, key)) {
		if (!cJSON_ReplaceItemInObjectCaseSensitive(data, key, nv)) {
			cJSON_Delete(nv);
			return -1;
		}
	} else if (!cJSON_AddItemToObject(data, key, nv)) {
		cJSON_Delete(nv);
		return -1;
	}
	return 0;
}

int rec_cm_put(cJSON *cm, const char *key, const char *value, size_t max_keys, size_t max_bytes, size_t *pruned)
{
	cJSON *data, *item;
	struct candidate *cands = NULL;
	size_t ncand = 0, nkeys = 0, bytes = 0, removed = 0;

	if (pruned)
		*pruned = 0;
	if (!cJSON_IsObject(cm))
		return -1;
	data = cJSON_GetObjectItemCaseSensitive(cm, "data");
	if (!cJSON_IsObject(data)) {
		cJSON_DeleteItemFromObjectCaseSensitive(cm, "data");
		data = cJSON_AddObjectToObject(cm, "data");
		if (!data)
			return -1;
	}
	if (drop_duplicate_keys(data) != 0 || set_key(data, key, value) != 0)
		return -1;

	cJSON_ArrayForEach (item, data)
		nkeys++;
	cands = calloc(nkeys ? nkeys : 1, sizeof(*cands));
	if (!cands)
		return -1;
	cJSON_ArrayForEach (item, data) {
		size_t b = strlen(item->string) + (cJSON_IsString(item) ? strlen(item->valuestring) : 0);
		bytes += b;
		if (strcmp(item->string, key) == 0 || !cJSON_IsString(item))
			continue;
		cands[ncand].finished = record_finished(item->valuestring);
		if (cands[ncand].finished < 0)
			continue;
		cands[ncand].item = item;
		cands[ncand].bytes = b;
		ncand++;
	}
	qsort(cands, ncand, sizeof(*cands), cmp_candidate);
	for (size_t i = 0; i < ncand && (nkeys > max_keys || bytes > max_bytes); i++) {
		nkeys--;
		bytes -= cands[i].bytes;
		cJSON_Delete(cJSON_DetachItemViaPointer(data, cands[i].item));
		removed++;
	}
	if (pruned)
		*pruned = removed;
	free(cands);
	return 0;
}

static int cm_path(struct kube_client *kc, const char *name, char *buf, size_t len)
{
	int n = name ? snprintf(buf, len, "/api/v1/namespaces/%s/configmaps/%s", kube_namespace(kc), name)
	             : snprintf(buf, len, "/api/v1/namespaces/%s/configmaps", kube_namespace(kc));
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int request_deadline(int64_t deadline) { return kube_now_ms() >= deadline; }

int rec_load(struct kube_client *kc, const char *name, const char *key, int64_t deadline_ms, char **value,
             struct kube_error *err)
{
	char path[512];
	cJSON *cm = NULL;
	const cJSON *v;
	int rc;

	*value = NULL;
	if (cm_path(kc, name, path, sizeof(path)) != 0) {
		memset(err, 0, sizeof(*err));
		err->rc = KUBE_EINVALID;
		snprintf(err->message, sizeof(err->message), "ConfigMap name too long");
		return KUBE_EINVALID;
	}
	rc = kube_get_json(kc, path, deadline_ms, &cm, err);
	if (rc == KUBE_ENOTFOUND)
		return KUBE_OK;
	if (rc != KUBE_OK)
		return rc;
	v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cm, "data"), key);
	if (cJSON_IsString(v)) {
		*value = strdup(v->valuestring);
		if (!*value)
			rc = KUBE_ENOMEM;
	}
	cJSON_Delete(cm);
	return rc;
}

static int send_json(struct kube_client *kc, const char *method, const char *path, const cJSON *obj, int64_t deadline,
                     struct kube_error *err)
{
	struct kube_response resp = {0};
	char *body = cJSON_PrintUnformatted(obj);
	int rc;

	if (!body) {
		memset(err, 0, sizeof(*err));
		err->rc = KUBE_ENOMEM;
		return KUBE_ENOMEM;
	}
	rc = kube_request(kc, method, path, "application/json", body, strlen(body), deadline, &resp, err);
	kube_response_free(&resp);
	free(body);
	return rc;
}

int rec_store(struct kube_client *kc, const struct rec_store_opts *o, const char *value, struct kube_error *err)
{
	char path[512], coll[512];
	int rc = KUBE_ETIMEOUT;
	int64_t deadline = o->deadline_ms ? o->deadline_ms : kube_now_ms() + 30000;

	memset(err, 0, sizeof(*err));
	if (cm_path(kc, o->name, path, sizeof(path)) != 0 || cm_path(kc, NULL, coll, sizeof(coll)) != 0) {
		err->rc = KUBE_EINVALID;
		snprintf(err->message, sizeof(err->message), "ConfigMap name too long");
		return KUBE_EINVALID;
	}
	/* Each round: read, modify, write guarded by resourceVersion. */
	for (int round = 0; round < 50 && !request_deadline(deadline); round++) {
		cJSON *cm = NULL;
		size_t pruned = 0;

		rc = kube_get_json(kc, path, deadline, &cm, err);
		if (rc == KUBE_ENOTFOUND) {
			cJSON *obj = cJSON_CreateObject();
			cJSON *meta = obj ? cJSON_AddObjectToObject(obj, "metadata") : NULL;
			cJSON *labels = meta ? cJSON_AddObjectToObject(meta, "labels") : NULL;

			if (!labels || !cJSON_AddStringToObject(obj, "apiVersion", "v1") ||
			    !cJSON_AddStringToObject(obj, "kind", "ConfigMap") ||
			    !cJSON_AddStringToObject(meta, "name", o->name) ||
			    !cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "migrate-runner") ||
			    rec_cm_put(obj, o->key, value, o->max_keys, o->max_bytes, NULL) != 0) {
				cJSON_Delete(obj);
				err->rc = KUBE_ENOMEM;
				return KUBE_ENOMEM;
			}
			rc = send_json(kc, "POST", coll, obj, deadline, err);
			cJSON_Delete(obj);
			if (rc == KUBE_ECONFLICT) {
				log_debug("ConfigMap %s was created concurrently; retrying", o->name);
				continue;
			}
			return rc;
		}
		if (rc != KUBE_OK)
			return rc;
		if (rec_cm_put(cm, o->key, value, o->max_keys, o->max_bytes, &pruned) != 0) {
			cJSON_Delete(cm);
			err->rc = KUBE_ENOMEM;
			return KUBE_ENOMEM;
		}
		/* the server fills these; sending managedFields back only costs bytes */
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(cm, "metadata"),
		                                        "managedFields");
		rc = send_json(kc, "PUT", path, cm, deadline, err);
		cJSON_Delete(cm);
		if (rc == KUBE_OK) {
			if (pruned)
				log_info("pruned %zu old record(s) from ConfigMap %s", pruned, o->name);
			return KUBE_OK;
		}
		if (rc != KUBE_ECONFLICT && rc != KUBE_ENOTFOUND)
			return rc;
		log_debug("ConfigMap %s changed concurrently (%s); re-reading", o->name,
		          rc == KUBE_ECONFLICT ? "409" : "404");
	}
	if (rc == KUBE_OK || rc == KUBE_ECONFLICT || rc == KUBE_ENOTFOUND) {
		rc = KUBE_ETIMEOUT;
		err->rc = rc;
		snprintf(err->message, sizeof(err->message), "ConfigMap %s kept changing concurrently; gave up",
		         o->name);
	}
	return rc;
}
