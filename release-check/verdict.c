/*
 * verdict.c - objects of a release in, verdict out (see verdict.h): the
 * table of kinds, and verdict_eval, the pure form.
 *
 * Pure: reads only the cJSON trees and the options. The rules judge one
 * object at a time (rule_*.c); the store around them (store.c) keeps the
 * objects indexed and each one's row cached. What every kind needs - its
 * input key, API path, row order, rule, what other rows read of it, what
 * pruning keeps - is one entry below (kstatus keeps one status function
 * per kind behind one table: a new kind is one entry, not eight edits).
 */
#include "verdict.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct rc_kind_hooks h_release = {NULL, NULL, rc_prop_release, NULL, rc_keep_release, 1};
static const struct rc_kind_hooks h_deployment = {
    rc_rule_deployment, rc_sig_deployment, rc_prop_deployment, NULL, rc_keep_deployment, 0};
static const struct rc_kind_hooks h_replicaset = {rc_rule_replicaset,   rc_sig_replicaset,  rc_prop_replicaset,
                                                  rc_notify_replicaset, rc_keep_replicaset, 0};
static const struct rc_kind_hooks h_statefulset = {
    rc_rule_statefulset, rc_sig_template_jobs, rc_prop_workload, NULL, rc_keep_statefulset, 0};
static const struct rc_kind_hooks h_daemonset = {
    rc_rule_daemonset, rc_sig_template_jobs, rc_prop_workload, NULL, rc_keep_daemonset, 0};
static const struct rc_kind_hooks h_job = {rc_rule_job, rc_sig_job, rc_prop_job, NULL, rc_keep_job, 0};
static const struct rc_kind_hooks h_pod = {rc_rule_pod, NULL, rc_prop_pod, NULL, rc_keep_pod, 1};

/* Rows come in row_rank order: the release, workloads, bare ReplicaSets, Jobs, pods. */
const struct verdict_kind_info verdict_kinds[VERDICT_NKINDS] = {
    [VERDICT_RELEASES] = {VERDICT_KEY_RELEASES, "Release", 0, "/api/v1", "secrets", "", "secrets", &h_release},
    [VERDICT_DEPLOYMENTS] = {VERDICT_KEY_DEPLOYMENTS, "Deployment", 1, "/apis/apps/v1", "deployments", "apps",
                             "deployments.apps", &h_deployment},
    [VERDICT_REPLICASETS] = {VERDICT_KEY_REPLICASETS, "ReplicaSet", 4, "/apis/apps/v1", "replicasets", "apps",
                             "replicasets.apps", &h_replicaset},
    [VERDICT_STATEFULSETS] = {VERDICT_KEY_STATEFULSETS, "StatefulSet", 2, "/apis/apps/v1", "statefulsets", "apps",
                              "statefulsets.apps", &h_statefulset},
    [VERDICT_DAEMONSETS] = {VERDICT_KEY_DAEMONSETS, "DaemonSet", 3, "/apis/apps/v1", "daemonsets", "apps",
                            "daemonsets.apps", &h_daemonset},
    [VERDICT_JOBS] = {VERDICT_KEY_JOBS, "Job", 5, "/apis/batch/v1", "jobs", "batch", "jobs.batch", &h_job},
    [VERDICT_PODS] = {VERDICT_KEY_PODS, "Pod", 6, "/api/v1", "pods", "", "pods", &h_pod},
};

unsigned rc_kind_at_rank(size_t rank)
{
	unsigned k;

	for (k = 0; k < VERDICT_NKINDS; k++)
		if ((size_t)verdict_kinds[k].row_rank == rank)
			return k;
	return VERDICT_RELEASES;
}

/* The pure form: a store over the document's objects (borrowed, not pruned). */
int verdict_eval(const cJSON *objects, const struct verdict_opts *opts, struct verdict_result *out)
{
	struct verdict_store *st = verdict_store_new();
	const cJSON *o;
	size_t k;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->helm_revision = -1;
	if (!st)
		return -1;
	for (k = 0; k < VERDICT_NKINDS && rc == 0; k++)
		cJSON_ArrayForEach (o, rc_arr(objects, verdict_kinds[k].key))
			if ((rc = rc_store_add(st, (unsigned)k, o, NULL)) < 0)
				break;
	if (rc == 0)
		rc = verdict_store_update(st, opts, NULL, NULL, NULL);
	if (rc == 0)
		rc = verdict_store_result(st, out);
	verdict_store_free(st);
	return rc;
}

void verdict_result_free(struct verdict_result *r)
{
	free(r->rows);
	r->rows = NULL;
	r->nrows = 0;
}
