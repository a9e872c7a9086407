/*
 * prune.c - what the rules read of each kind (verdict_prune): the store
 * keeps only that, and never a Secret's payload.
 */
#include "internal.h"

static const struct json_keep k_name[] = {{"name", NULL}, {NULL, NULL}};
static const struct json_keep k_owner[] = {
    {"kind", NULL}, {"name", NULL}, {"uid", NULL}, {"controller", NULL}, {NULL, NULL}};
static const struct json_keep k_annotations[] = {
    {"deployment.kubernetes.io/revision", NULL}, {"helm.sh/hook", NULL}, {NULL, NULL}};
static const struct json_keep k_labels[] = {{"migration-gate.io/release-revision", NULL}, {NULL, NULL}};
static const struct json_keep k_meta[] = {
    {"name", NULL},
    {"uid", NULL},
    {"generation", NULL},
    {"creationTimestamp", NULL},
    {"deletionTimestamp", NULL},
    {"ownerReferences", k_owner},
    {"annotations", k_annotations},
    {"labels", k_labels},
    {NULL, NULL},
};
/* a Helm release Secret: labels only, never the payload (values, credentials) */
static const struct json_keep k_release_labels[] = {
    {"owner", NULL}, {"name", NULL}, {"version", NULL}, {"status", NULL}, {NULL, NULL}};
static const struct json_keep k_release_meta[] = {
    {"name", NULL}, {"uid", NULL}, {"creationTimestamp", NULL}, {"labels", k_release_labels}, {NULL, NULL}};
static const struct json_keep k_condition[] = {
    {"type", NULL}, {"status", NULL}, {"reason", NULL}, {"message", NULL}, {"lastTransitionTime", NULL}, {NULL, NULL}};

/* pod templates: the wait-for-job init container names the current migration Job (rule_release.c) */
static const struct json_keep k_env[] = {{"name", NULL}, {"value", NULL}, {NULL, NULL}};
static const struct json_keep k_tmpl_init[] = {{"name", NULL}, {"image", NULL}, {"command", NULL},
                                               {"args", NULL}, {"env", k_env},  {NULL, NULL}};
static const struct json_keep k_tmpl_spec[] = {{"initContainers", k_tmpl_init}, {NULL, NULL}};
static const struct json_keep k_template[] = {{"spec", k_tmpl_spec}, {NULL, NULL}};
static const struct json_keep k_deploy_spec[] = {
    {"replicas", NULL}, {"paused", NULL}, {"template", k_template}, {NULL, NULL}};
static const struct json_keep k_deploy_status[] = {{"observedGeneration", NULL}, {"replicas", NULL},
                                                   {"updatedReplicas", NULL},    {"availableReplicas", NULL},
                                                   {"readyReplicas", NULL},      {"unavailableReplicas", NULL},
                                                   {"conditions", k_condition},  {NULL, NULL}};
static const struct json_keep k_rs_spec[] = {{"replicas", NULL}, {NULL, NULL}};
static const struct json_keep k_rs_status[] = {{"observedGeneration", NULL},
                                               {"availableReplicas", NULL},
                                               {"readyReplicas", NULL},
                                               {"replicas", NULL},
                                               {"fullyLabeledReplicas", NULL},
                                               {"conditions", k_condition},
                                               {NULL, NULL}};
static const struct json_keep k_rolling[] = {{"partition", NULL}, {NULL, NULL}};
static const struct json_keep k_strategy[] = {{"type", NULL}, {"rollingUpdate", k_rolling}, {NULL, NULL}};
static const struct json_keep k_sts_spec[] = {
    {"replicas", NULL}, {"updateStrategy", k_strategy}, {"template", k_template}, {NULL, NULL}};
static const struct json_keep k_sts_status[] = {{"observedGeneration", NULL}, {"replicas", NULL},
                                                {"readyReplicas", NULL},      {"updatedReplicas", NULL},
                                                {"availableReplicas", NULL},  {"currentRevision", NULL},
                                                {"updateRevision", NULL},     {"currentReplicas", NULL},
                                                {"conditions", k_condition},  {NULL, NULL}};
static const struct json_keep k_ds_spec[] = {{"updateStrategy", k_strategy}, {"template", k_template}, {NULL, NULL}};
static const struct json_keep k_ds_status[] = {{"observedGeneration", NULL},
                                               {"desiredNumberScheduled", NULL},
                                               {"updatedNumberScheduled", NULL},
                                               {"numberAvailable", NULL},
                                               {"numberReady", NULL},
                                               {"numberUnavailable", NULL},
                                               {"currentNumberScheduled", NULL},
                                               {"conditions", k_condition},
                                               {NULL, NULL}};
static const struct json_keep k_job_spec[] = {{"completions", NULL},
                                              {"parallelism", NULL},
                                              {"completionMode", NULL},
                                              {"backoffLimit", NULL},
                                              {"backoffLimitPerIndex", NULL},
                                              {"suspend", NULL},
                                              {NULL, NULL}};
static const struct json_keep k_job_status[] = {
    {"succeeded", NULL},         {"failed", NULL}, {"active", NULL}, {"ready", NULL},
    {"conditions", k_condition}, {NULL, NULL}};

static const struct json_keep k_waiting[] = {{"reason", NULL}, {"message", NULL}, {NULL, NULL}};
static const struct json_keep k_terminated[] = {
    {"exitCode", NULL}, {"reason", NULL}, {"message", NULL}, {"finishedAt", NULL}, {NULL, NULL}};
static const struct json_keep k_cstate[] = {{"waiting", k_waiting}, {"terminated", k_terminated}, {NULL, NULL}};
static const struct json_keep k_cstatus[] = {
    {"name", NULL},      {"ready", NULL},         {"started", NULL}, {"restartCount", NULL},
    {"state", k_cstate}, {"lastState", k_cstate}, {NULL, NULL}};
static const struct json_keep k_init_container[] = {{"name", NULL}, {"restartPolicy", NULL}, {NULL, NULL}};
/* spec.containers: only how many (and names, for reading a dump) */
static const struct json_keep k_pod_spec[] = {
    {"containers", k_name}, {"initContainers", k_init_container}, {"restartPolicy", NULL}, {NULL, NULL}};
static const struct json_keep k_pod_status[] = {{"phase", NULL},
                                                {"nominatedNodeName", NULL},
                                                {"reason", NULL},
                                                {"message", NULL},
                                                {"startTime", NULL},
                                                {"conditions", k_condition},
                                                {"containerStatuses", k_cstatus},
                                                {"initContainerStatuses", k_cstatus},
                                                {NULL, NULL}};

/* per kind: metadata, spec, status (verdict_kinds[] points at these) */
const struct json_keep rc_keep_release[] = {{"metadata", k_release_meta}, {NULL, NULL}};
const struct json_keep rc_keep_deployment[] = {
    {"metadata", k_meta}, {"spec", k_deploy_spec}, {"status", k_deploy_status}, {NULL, NULL}};
const struct json_keep rc_keep_replicaset[] = {
    {"metadata", k_meta}, {"spec", k_rs_spec}, {"status", k_rs_status}, {NULL, NULL}};
const struct json_keep rc_keep_statefulset[] = {
    {"metadata", k_meta}, {"spec", k_sts_spec}, {"status", k_sts_status}, {NULL, NULL}};
const struct json_keep rc_keep_daemonset[] = {
    {"metadata", k_meta}, {"spec", k_ds_spec}, {"status", k_ds_status}, {NULL, NULL}};
const struct json_keep rc_keep_job[] = {
    {"metadata", k_meta}, {"spec", k_job_spec}, {"status", k_job_status}, {NULL, NULL}};
const struct json_keep rc_keep_pod[] = {
    {"metadata", k_meta}, {"spec", k_pod_spec}, {"status", k_pod_status}, {NULL, NULL}};

/*
 * Copy of v keeping only the keys of sub (recursively; in each element
 * of an array). A value of another type than expected is copied whole:
 * the rules read it exactly as they would the original.
 */
static cJSON *prune_value(const cJSON *v, const struct json_keep *sub)
{
	cJSON *out;
	const cJSON *e;

	if (!sub || (!cJSON_IsObject(v) && !cJSON_IsArray(v)))
		return cJSON_Duplicate(v, 1);
	if (cJSON_IsArray(v)) {
		out = cJSON_CreateArray();
		cJSON_ArrayForEach (e, v) {
			cJSON *c = out ? prune_value(e, sub) : NULL;
			if (!c) {
				cJSON_Delete(out);
				return NULL;
			}
			cJSON_AddItemToArray(out, c);
		}
		return out;
	}
	out = cJSON_CreateObject();
	for (; out && sub->key; sub++) {
		cJSON *c;
		/* the first of duplicate keys, as the getters read */
		e = cJSON_GetObjectItemCaseSensitive(v, sub->key);
		if (!e)
			continue;
		c = prune_value(e, sub->sub);
		if (!c || !cJSON_AddItemToObject(out, sub->key, c)) {
			cJSON_Delete(c);
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

const struct json_keep *verdict_keep(enum verdict_kind k)
{
	return (unsigned)k < VERDICT_NKINDS ? verdict_kinds[k].hooks->keep : NULL;
}

cJSON *verdict_prune(enum verdict_kind k, const cJSON *obj)
{
	if ((unsigned)k >= VERDICT_NKINDS || !cJSON_IsObject(obj))
		return cJSON_CreateNull();
	return prune_value(obj, verdict_kinds[k].hooks->keep);
}
