/*
 * test_rc_conformance.c - release-check's verdicts, table-driven, one
 * table per family of issue #14, written from the Kubernetes API
 * reference (what each status field and condition means), not from other
 * checkers' suites:
 *
 *   1. never healthy too early: every signal must agree, a missing count
 *      is unknown (the API omits zero counts), no contradicting condition
 *   2. status of older or other controllers: decide from what the API
 *      defines (Job counters, the current ReplicaSet, StatefulSet counters)
 *   3. objects that never roll out by design are decided, not waited out
 *   4. what will not heal fails fast; what may heal is graced, on our
 *      own clock from our first sighting
 *   5. what is fine is not failed
 *
 * A case may say it was first seen `seen` ms before NOW: it is judged
 * then (first-seen table) and again at NOW.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/json.c"
#ifdef RC_OLD /* the evaluator before issue #14, to show these cases failing */
#include RC_OLD
#else
#include "rc_sources.h"
#endif

#define NOW_MS 1704067800000LL /* 2024-01-01T00:10:00Z */
#define MIN (60 * 1000LL)

struct rcase {
	const char *name;
	const char *doc; /* verdict_eval's input, single quotes for double quotes */
	int64_t seen;    /* first seen this long before NOW; 0: at NOW */
	enum verdict want;
	const char *kind, *obj; /* a row to check (NULL: none) */
	enum verdict_status row_want;
};

#define META(name, gen) "'metadata':{'name':'" name "','uid':'u-" name "','generation':" #gen "}"
#define DEP(name, spec, status) "{" META(name, 1) ",'spec':" spec ",'status':" status "}"
#define OBS "'observedGeneration':1"
#define DEP_OK(name)                                                                                                   \
	DEP(name, "{'replicas':2}",                                                                                    \
	    "{" OBS ",'replicas':2,'updatedReplicas':2,'readyReplicas':2,'availableReplicas':2}")
#define POD(name, owner, spec, status)                                                                                 \
	"{'metadata':{'name':'" name "','uid':'p-" name "'" owner "},'spec':{'containers':[{'name':'app'}]" spec       \
	"},'status':" status "}"
#define OWNED(kind, name)                                                                                              \
	",'ownerReferences':[{'kind':'" kind "','name':'" name "','uid':'u-" name "','controller':true}]"
#define WAITING(reason, msg)                                                                                           \
	"{'phase':'Pending','startTime':'2024-01-01T00:05:00Z','conditions':[{'type':'Ready','status':'False',"        \
	"'lastTransitionTime':'2024-01-01T00:05:00Z'}],'containerStatuses':[{'name':'app','ready':false,"              \
	"'state':{'waiting':{'reason':'" reason "','message':'" msg "'}}}]}"
#define READY                                                                                                          \
	"{'phase':'Running','conditions':[{'type':'Ready','status':'True'}],'containerStatuses':[{'name':'app','"      \
	"ready':true,'state':{'running':{}}}]}"

/* ---- 1. never healthy too early ------------------------------------------------- */

static const struct rcase family1[] = {
    {"control: every signal agrees", "{'deployments':[" DEP_OK("web") "]}", 0, VERDICT_HEALTHY, "Deployment", "web",
     ROW_OK},
    {"available complete, ready short",
     "{'deployments':[" DEP("web", "{'replicas':3}",
                            "{" OBS ",'replicas':3,'updatedReplicas':3,'readyReplicas':2,'availableReplicas':3}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"counts complete, Available=False",
     "{'deployments':[" DEP("web", "{'replicas':2}",
                            "{" OBS ",'replicas':2,'updatedReplicas':2,'readyReplicas':2,'availableReplicas':2,"
                            "'conditions':[{'type':'Available','status':'False','reason':'MinimumReplicasUnavailable'}"
                            "]}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"counts complete, ReplicaFailure=True",
     "{'deployments':[" DEP("web", "{'replicas':2}",
                            "{" OBS ",'replicas':2,'updatedReplicas':2,'readyReplicas':2,'availableReplicas':2,"
                            "'conditions':[{'type':'ReplicaFailure','status':'True','reason':'FailedCreate'}]}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"readyReplicas missing is unknown",
     "{'deployments':[" DEP("web", "{'replicas':2}",
                            "{" OBS ",'replicas':2,'updatedReplicas':2,'availableReplicas':2}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"observedGeneration behind, counts complete",
     "{'deployments':[{'metadata':{'name':'web','generation':2},'spec':{'replicas':1},'status':{" OBS
     ",'replicas':1,'updatedReplicas':1,'readyReplicas':1,'availableReplicas':1}}]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"control: 0 replicas, zero counts omitted", "{'deployments':[" DEP("web", "{'replicas':0}", "{" OBS "}") "]}", 0,
     VERDICT_HEALTHY, "Deployment", "web", ROW_OK},
    {"DaemonSet without desiredNumberScheduled",
     "{'daemonsets':[" DEP("ds", "{}", "{" OBS ",'currentNumberScheduled':0,'numberReady':0}") "]}", 0,
     VERDICT_PROGRESSING, "DaemonSet", "ds", ROW_PROGRESSING},
    {"DaemonSet available complete, ready short",
     "{'daemonsets':[" DEP("ds", "{}",
                           "{" OBS ",'desiredNumberScheduled':3,'updatedNumberScheduled':3,'numberReady':2,"
                           "'numberAvailable':3}") "]}",
     0, VERDICT_PROGRESSING, "DaemonSet", "ds", ROW_PROGRESSING},
    {"control: DaemonSet on no node", "{'daemonsets':[" DEP("ds", "{}", "{" OBS ",'desiredNumberScheduled':0}") "]}", 0,
     VERDICT_HEALTHY, "DaemonSet", "ds", ROW_OK},
    {"StatefulSet readyReplicas missing",
     "{'statefulsets':[" DEP("db", "{'replicas':2}", "{" OBS ",'replicas':2,'updatedReplicas':2}") "]}", 0,
     VERDICT_PROGRESSING, "StatefulSet", "db", ROW_PROGRESSING},
    {"bare ReplicaSet with available only",
     "{'replicasets':[" DEP("rs", "{'replicas':2}", "{" OBS ",'replicas':2,'availableReplicas':2}") "]}", 0,
     VERDICT_PROGRESSING, "ReplicaSet", "rs", ROW_PROGRESSING},
    /* status.replicas == spec.replicas is part of the API's "complete" (kstatus, kapp, Helm agree) */
    {"Deployment scaling down 3 -> 2, every pod updated",
     "{'deployments':[" DEP("web", "{'replicas':2}",
                            "{" OBS ",'replicas':3,'updatedReplicas':3,'readyReplicas':3,'availableReplicas':3}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"Deployment scaled to 0, two pods still counted",
     "{'deployments':[" DEP("web", "{'replicas':0}",
                            "{" OBS ",'replicas':2,'updatedReplicas':2,'readyReplicas':2,'availableReplicas':2}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"StatefulSet scaling down 3 -> 2, every pod updated",
     "{'statefulsets':[" DEP("db", "{'replicas':2}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'updatedReplicas':3,"
                             "'currentReplicas':3,'currentRevision':'db-1','updateRevision':'db-1'}") "]}",
     0, VERDICT_PROGRESSING, "StatefulSet", "db", ROW_PROGRESSING},
    {"control: bare ReplicaSet scaling down says so",
     "{'replicasets':[" DEP("rs", "{'replicas':1}",
                            "{" OBS
                            ",'replicas':2,'fullyLabeledReplicas':2,'readyReplicas':2,'availableReplicas':2}") "]}",
     0, VERDICT_PROGRESSING, "ReplicaSet", "rs", ROW_PROGRESSING},
    /* a secondary count the controller writes with the main ones says some are missing */
    {"Deployment counts complete, unavailableReplicas 1",
     "{'deployments':[" DEP("web", "{'replicas':2}",
                            "{" OBS ",'replicas':2,'updatedReplicas':2,'readyReplicas':2,'availableReplicas':2,"
                            "'unavailableReplicas':1}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
    {"DaemonSet counts complete, numberUnavailable 1",
     "{'daemonsets':[" DEP(
         "ds", "{}",
         "{" OBS ",'desiredNumberScheduled':3,'currentNumberScheduled':3,"
         "'updatedNumberScheduled':3,'numberReady':3,'numberAvailable':3,'numberUnavailable':1}") "]}",
     0, VERDICT_PROGRESSING, "DaemonSet", "ds", ROW_PROGRESSING},
    {"DaemonSet counts complete, currentNumberScheduled 2 of 3",
     "{'daemonsets':[" DEP("ds", "{}",
                           "{" OBS ",'desiredNumberScheduled':3,'currentNumberScheduled':2,"
                           "'updatedNumberScheduled':3,'numberReady':3,'numberAvailable':3}") "]}",
     0, VERDICT_PROGRESSING, "DaemonSet", "ds", ROW_PROGRESSING},
    {"bare ReplicaSet counts complete, fullyLabeledReplicas 1 of 2",
     "{'replicasets':[" DEP("rs", "{'replicas':2}",
                            "{" OBS
                            ",'replicas':2,'fullyLabeledReplicas':1,'readyReplicas':2,'availableReplicas':2}") "]}",
     0, VERDICT_PROGRESSING, "ReplicaSet", "rs", ROW_PROGRESSING},
    {"StatefulSet revisions equal, currentReplicas 2 of 3",
     "{'statefulsets':[" DEP("db", "{'replicas':3}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'updatedReplicas':3,"
                             "'currentReplicas':2,'currentRevision':'db-1','updateRevision':'db-1'}") "]}",
     0, VERDICT_PROGRESSING, "StatefulSet", "db", ROW_PROGRESSING},
    {"control: StatefulSet partition keeps currentReplicas behind on purpose",
     "{'statefulsets':[" DEP("db",
                             "{'replicas':3,'updateStrategy':{'type':'RollingUpdate','rollingUpdate':{"
                             "'partition':2}}}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'updatedReplicas':1,"
                             "'currentReplicas':2,'currentRevision':'db-1','updateRevision':'db-2'}") "]}",
     0, VERDICT_HEALTHY, "StatefulSet", "db", ROW_OK},
};

/* ---- 2. older or other controllers ------------------------------------------------ */

#define RSX(name, rev, status)                                                                                         \
	"{'metadata':{'name':'" name "','uid':'u-" name "','annotations':{'deployment.kubernetes.io/revision':'" rev   \
	"'},'ownerReferences':[{'kind':'Deployment','name':'web','uid':'u-web','controller':true}]},'spec':{"          \
	"'replicas':2},'status':" status "}"
#define OLD_DEP                                                                                                        \
	"{'metadata':{'name':'web','uid':'u-web','generation':1,'annotations':{'deployment.kubernetes.io/revision':"   \
	"'2'}},'spec':{'replicas':2},'status':{" OBS ",'replicas':2,'availableReplicas':2}}"

static const struct rcase family2[] = {
    {"Job: succeeded, no Complete condition", "{'jobs':[{" META("mig", 1) ",'status':{'succeeded':1}}]}", 0,
     VERDICT_HEALTHY, "Job", "mig", ROW_OK},
    {"Job: failed > default backoffLimit, no Failed condition", "{'jobs':[{" META("mig", 1) ",'status':{'failed':7}}]}",
     0, VERDICT_FAILED, "Job", "mig", ROW_FAILED},
    {"Job: failed > backoffLimit 2", "{'jobs':[{" META("mig", 1) ",'spec':{'backoffLimit':2},'status':{'failed':3}}]}",
     0, VERDICT_FAILED, "Job", "mig", ROW_FAILED},
    {"StatefulSet without revision fields, counters complete",
     "{'statefulsets':[" DEP("db", "{'replicas':2}",
                             "{" OBS ",'replicas':2,'updatedReplicas':2,'readyReplicas':2,'currentReplicas':2}") "]}",
     0, VERDICT_HEALTHY, "StatefulSet", "db", ROW_OK},
    {"Deployment without updatedReplicas, its new ReplicaSet ready",
     "{'deployments':[" OLD_DEP "],'replicasets':[" RSX("web-1", "1", "{'replicas':0}") "," RSX(
         "web-2", "2", "{'replicas':2,'readyReplicas':2,'availableReplicas':2}") "]}",
     0, VERDICT_HEALTHY, "Deployment", "web", ROW_OK},
    {"Deployment without updatedReplicas, its new ReplicaSet not ready",
     "{'deployments':[" OLD_DEP
     "],'replicasets':[" RSX("web-1", "1", "{'replicas':2,'readyReplicas':2,'availableReplicas':2}") "," RSX(
         "web-2", "2", "{'replicas':2,'readyReplicas':1,'availableReplicas':1}") "]}",
     0, VERDICT_PROGRESSING, "Deployment", "web", ROW_PROGRESSING},
};

/* ---- 3. never rolls out by design --------------------------------------------------- */

static const struct rcase family3[] = {
    {"paused Deployment: skipped with a note",
     "{'deployments':[" DEP_OK("api") "," DEP("web", "{'replicas':2,'paused':true}", "{" OBS ",'replicas':2}") "]}", 0,
     VERDICT_HEALTHY, "Deployment", "web", ROW_IGNORED},
    {"suspended Job: skipped with a note",
     "{'deployments':[" DEP_OK("api") "],'jobs':[{" META("mig", 1) ",'spec':{'suspend':true},'status':{}}]}", 0,
     VERDICT_HEALTHY, "Job", "mig", ROW_IGNORED},
    {"OnDelete DaemonSet: ready pods count",
     "{'daemonsets':[" DEP("ds", "{'updateStrategy':{'type':'OnDelete'}}",
                           "{" OBS ",'desiredNumberScheduled':3,'updatedNumberScheduled':0,'numberReady':3,"
                           "'numberAvailable':3}") "]}",
     0, VERDICT_HEALTHY, "DaemonSet", "ds", ROW_OK},
    {"OnDelete StatefulSet, revisions differ: ready pods count",
     "{'statefulsets':[" DEP("db", "{'replicas':3,'updateStrategy':{'type':'OnDelete'}}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'updatedReplicas':0,"
                             "'currentRevision':'db-1','updateRevision':'db-2'}") "]}",
     0, VERDICT_HEALTHY, "StatefulSet", "db", ROW_OK},
    {"StatefulSet partition 2 of 3: ordinal 2 updated",
     "{'statefulsets':[" DEP("db",
                             "{'replicas':3,'updateStrategy':{'type':'RollingUpdate','rollingUpdate':{"
                             "'partition':2}}}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'updatedReplicas':1,"
                             "'currentRevision':'db-1','updateRevision':'db-2'}") "]}",
     0, VERDICT_HEALTHY, "StatefulSet", "db", ROW_OK},
    {"StatefulSet partition 2 of 3: ordinal 2 not updated",
     "{'statefulsets':[" DEP("db",
                             "{'replicas':3,'updateStrategy':{'type':'RollingUpdate','rollingUpdate':{"
                             "'partition':2}}}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'updatedReplicas':0,"
                             "'currentRevision':'db-1','updateRevision':'db-2'}") "]}",
     0, VERDICT_PROGRESSING, "StatefulSet", "db", ROW_PROGRESSING},
    /* as a real API server sends them: a 0 count is omitted */
    {"StatefulSet partition 3 of 3 (staged, nothing to update), updatedReplicas omitted",
     "{'statefulsets':[" DEP("db",
                             "{'replicas':3,'updateStrategy':{'type':'RollingUpdate','rollingUpdate':{"
                             "'partition':3}}}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'currentReplicas':3,"
                             "'currentRevision':'db-1','updateRevision':'db-2'}") "]}",
     0, VERDICT_HEALTHY, "StatefulSet", "db", ROW_OK},
    {"StatefulSet partition 3 of 3, a status without revision fields or updatedReplicas: nothing to update",
     "{'statefulsets':[" DEP("db",
                             "{'replicas':3,'updateStrategy':{'type':'RollingUpdate','rollingUpdate':{"
                             "'partition':3}}}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3}") "]}",
     0, VERDICT_HEALTHY, "StatefulSet", "db", ROW_OK},
    {"StatefulSet partition 2 of 3: ordinal 2 not updated, updatedReplicas omitted",
     "{'statefulsets':[" DEP("db",
                             "{'replicas':3,'updateStrategy':{'type':'RollingUpdate','rollingUpdate':{"
                             "'partition':2}}}",
                             "{" OBS ",'replicas':3,'readyReplicas':3,'availableReplicas':3,'currentReplicas':3,"
                             "'currentRevision':'db-1','updateRevision':'db-2'}") "]}",
     0, VERDICT_PROGRESSING, "StatefulSet", "db", ROW_PROGRESSING},
};

/* ---- 4. fail fast on what will not heal ---------------------------------------------- */

#define PODX(status) "{'pods':[" POD("p", OWNED("ReplicaSet", "web-2"), "", status) "]}"

static const struct rcase family4[] = {
    {"image manifest unknown", PODX(WAITING("ErrImagePull", "rpc error: manifest unknown: manifest unknown")), 0,
     VERDICT_FAILED, "Pod", "p", ROW_FAILED},
    {"image not found", PODX(WAITING("ErrImagePull", "failed to resolve reference: docker.io/x/y:9: not found")), 0,
     VERDICT_FAILED, "Pod", "p", ROW_FAILED},
    {"pull access denied",
     PODX(WAITING("ImagePullBackOff", "pull access denied, repository does not exist or may require authorization")), 0,
     VERDICT_FAILED, "Pod", "p", ROW_FAILED},
    {"registry says unauthorized", PODX(WAITING("ErrImagePull", "401 Unauthorized")), 0, VERDICT_FAILED, "Pod", "p",
     ROW_FAILED},
    {"invalid image name", PODX(WAITING("InvalidImageName", "couldn\\'t parse image reference")), 0, VERDICT_FAILED,
     "Pod", "p", ROW_FAILED},
    {"container cannot be created",
     PODX(WAITING("CreateContainerError", "container create failed: exec: \\\"/app\\\": stat /app: no such file "
                                          "or directory")),
     0, VERDICT_FAILED, "Pod", "p", ROW_FAILED},
    {"container name reservation race (containerd): graced",
     PODX(WAITING("CreateContainerError", "failed to reserve container name \\\"app_p\\\": name is reserved")), 0,
     VERDICT_PROGRESSING, "Pod", "p", ROW_PROGRESSING},
    {"registry timeout: graced, from our first sighting (not the server's startTime)",
     PODX(WAITING("ErrImagePull", "dial tcp: i/o timeout")), 0, VERDICT_PROGRESSING, "Pod", "p", ROW_PROGRESSING},
    {"registry timeout past the grace", PODX(WAITING("ErrImagePull", "dial tcp: i/o timeout")), 61000, VERDICT_FAILED,
     "Pod", "p", ROW_FAILED},
    {"rate limit: graced", PODX(WAITING("ErrImagePull", "429 Too Many Requests")), 30000, VERDICT_PROGRESSING, "Pod",
     "p", ROW_PROGRESSING},
    {"ConfigMap a later manifest creates: graced",
     PODX(WAITING("CreateContainerConfigError", "configmap \\'cfg\\' not found")), 0, VERDICT_PROGRESSING, "Pod", "p",
     ROW_PROGRESSING},
    {"ConfigMap still missing past the grace",
     PODX(WAITING("CreateContainerConfigError", "configmap \\'cfg\\' not found")), 61000, VERDICT_FAILED, "Pod", "p",
     ROW_FAILED},
    {"Unschedulable, no scale-up sign, past the grace",
     PODX("{'phase':'Pending','conditions':[{'type':'PodScheduled','status':'False','reason':'Unschedulable',"
          "'message':'0/3 nodes are available: 3 Insufficient cpu.'}]}"),
     6 * MIN, VERDICT_FAILED, "Pod", "p", ROW_FAILED},
    {"Unschedulable within the grace",
     PODX("{'phase':'Pending','conditions':[{'type':'PodScheduled','status':'False','reason':'Unschedulable'}]}"), MIN,
     VERDICT_PROGRESSING, "Pod", "p", ROW_PROGRESSING},
    {"Unschedulable but nominated (preemption under way)",
     PODX("{'phase':'Pending','nominatedNodeName':'n1','conditions':[{'type':'PodScheduled','status':'False',"
          "'reason':'Unschedulable'}]}"),
     6 * MIN, VERDICT_PROGRESSING, "Pod", "p", ROW_PROGRESSING},
    {"paused after ProgressDeadlineExceeded (the controller keeps the condition)",
     "{'deployments':[" DEP("web", "{'replicas':1,'paused':true}",
                            "{" OBS ",'replicas':1,'updatedReplicas':1,'unavailableReplicas':1,'conditions':[{"
                            "'type':'Progressing','status':'False','reason':'ProgressDeadlineExceeded'}]}") "]}",
     0, VERDICT_FAILED, "Deployment", "web", ROW_FAILED},
    {"unowned pod being deleted",
     "{'pods':[{'metadata':{'name':'p','uid':'p-p','deletionTimestamp':'2024-01-01T00:09:00Z'},'spec':{"
     "'containers':[{'name':'app'}]},'status':" READY "}]}",
     0, VERDICT_FAILED, "Pod", "p", ROW_FAILED},
};

/* ---- 5. not failing what is fine ------------------------------------------------------- */

static const struct rcase family5[] = {
    {"failed pod of a Job its counters say succeeded",
     "{'jobs':[{" META("mig", 1) ",'status':{'succeeded':1,'failed':1}}],'pods':[" POD(
         "mig-a", OWNED("Job", "mig"), ",'restartPolicy':'Never'",
         "{'phase':'Failed','containerStatuses':[{'name':'app','state':{'terminated':{'exitCode':1}}}]}") "]}",
     0, VERDICT_HEALTHY, "Pod", "mig-a", ROW_IGNORED},
    {"container exit the kubelet retries (restartPolicy Always)",
     PODX("{'phase':'Running','conditions':[{'type':'Ready','status':'False'}],'containerStatuses':[{'name':"
          "'app','ready':false,'restartCount':1,'state':{'terminated':{'exitCode':1,'reason':'Error'}}}]}"),
     0, VERDICT_PROGRESSING, "Pod", "p", ROW_PROGRESSING},
    {"container exit the kubelet retries (restartPolicy OnFailure)",
     "{'pods':[" POD("p", "", ",'restartPolicy':'OnFailure'",
                     "{'phase':'Running','containerStatuses':[{'name':'app','ready':false,'state':{'terminated':{"
                     "'exitCode':2}}}]}") "]}",
     0, VERDICT_PROGRESSING, "Pod", "p", ROW_PROGRESSING},
    {"init container exit the kubelet retries",
     PODX("{'phase':'Pending','conditions':[{'type':'Initialized','status':'False'}],'initContainerStatuses':[{"
          "'name':'wait','state':{'terminated':{'exitCode':1,'reason':'Error'}}}]}"),
     0, VERDICT_PROGRESSING, "Pod", "p", ROW_PROGRESSING},
    {"unowned pod that completed",
     "{'pods':[" POD("p", "", ",'restartPolicy':'Never'",
                     "{'phase':'Succeeded','containerStatuses':[{'name':'app','state':{'terminated':{'exitCode':0}}}]"
                     "}") "]}",
     0, VERDICT_HEALTHY, "Pod", "p", ROW_OK},
    {"unowned pod that completed, being deleted",
     "{'pods':[{'metadata':{'name':'p','uid':'p-p','deletionTimestamp':'2024-01-01T00:09:00Z'},'spec':{"
     "'containers':[{'name':'app'}]},'status':{'phase':'Succeeded'}}," POD("q", "", "", READY) "]}",
     0, VERDICT_HEALTHY, "Pod", "p", ROW_IGNORED},
};

static struct first_seen_table FS;

static void judge_doc(const char *sq, int64_t now, struct verdict_result *r)
{
	size_t n = strlen(sq), i;
	char *s = malloc(n + 1);
	struct verdict_opts o;
	cJSON *doc;

	assert_non_null(s);
	for (i = 0; i <= n; i++)
		s[i] = sq[i] == '\'' ? '"' : sq[i];
	doc = json_parse(s, n);
	if (!doc)
		fail_msg("fixture is not JSON: %s", s);
	memset(&o, 0, sizeof(o));
	o.now_ms = now;
	o.pull_grace_ms = -1;
	o.first_seen = first_seen_lookup;
	o.first_seen_ctx = &FS;
	assert_int_equal(verdict_eval(doc, &o, r), 0);
	first_seen_record(&FS, r, now);
	cJSON_Delete(doc);
	free(s);
}

static const struct verdict_row *find_row(const struct verdict_result *r, const char *kind, const char *name)
{
	size_t i;
	for (i = 0; i < r->nrows; i++)
		if (strcmp(r->rows[i].kind, kind) == 0 && strcmp(r->rows[i].name, name) == 0)
			return &r->rows[i];
	return NULL;
}

#ifndef RC_OLD
/* The document pruned by verdict_prune gives the same verdict and rows (statuses) as r. */
static int judged_same_pruned(const char *sq, const struct verdict_result *r)
{
	size_t n = strlen(sq), i, k;
	char *s = malloc(n + 1);
	struct verdict_opts o;
	struct verdict_result p;
	cJSON *doc, *pruned;
	int same;

	assert_non_null(s);
	for (i = 0; i <= n; i++)
		s[i] = sq[i] == '\'' ? '"' : sq[i];
	doc = json_parse(s, n);
	pruned = cJSON_CreateObject();
	assert_non_null(pruned);
	for (k = 0; k < VERDICT_NKINDS; k++) {
		const cJSON *it;
		cJSON *a = NULL;
		cJSON_ArrayForEach (it, rc_arr(doc, verdict_kinds[k].key)) {
			if (!a)
				assert_non_null(a = cJSON_AddArrayToObject(pruned, verdict_kinds[k].key));
			cJSON_AddItemToArray(a, verdict_prune((enum verdict_kind)k, it));
		}
	}
	memset(&o, 0, sizeof(o));
	o.now_ms = NOW_MS;
	o.pull_grace_ms = -1;
	o.first_seen = first_seen_lookup;
	o.first_seen_ctx = &FS;
	assert_int_equal(verdict_eval(pruned, &o, &p), 0);
	same = p.verdict == r->verdict && p.nrows == r->nrows;
	for (i = 0; same && i < p.nrows; i++)
		same = p.rows[i].status == r->rows[i].status && strcmp(p.rows[i].reason, r->rows[i].reason) == 0;
	verdict_result_free(&p);
	cJSON_Delete(pruned);
	cJSON_Delete(doc);
	free(s);
	return same;
}
#endif

/* Every case of a family; fails listing each case that disagrees. */
static void run_family(const struct rcase *cases, size_t n)
{
	char bad[4096] = "";
	size_t i, nbad = 0, len = 0;

	for (i = 0; i < n; i++) {
		const struct rcase *c = &cases[i];
		struct verdict_result r;
		const struct verdict_row *row;
		int ok;

		memset(&FS, 0, sizeof(FS));
		if (c->seen) {
			judge_doc(c->doc, NOW_MS - c->seen, &r);
			verdict_result_free(&r);
		}
		judge_doc(c->doc, NOW_MS, &r);
		row = c->kind ? find_row(&r, c->kind, c->obj) : NULL;
		ok = r.verdict == c->want && (!c->kind || (row && row->status == c->row_want));
#ifndef RC_OLD
		/* the watch keeps only what verdict_prune keeps: it must judge the same */
		if (ok && !judged_same_pruned(c->doc, &r)) {
			nbad++;
			len += (size_t)snprintf(bad + len, len < sizeof(bad) ? sizeof(bad) - len : 0,
			                        "\n  %s: pruned, the verdict differs", c->name);
		}
#endif
		if (!ok) {
			nbad++;
			len += (size_t)snprintf(bad + len, len < sizeof(bad) ? sizeof(bad) - len : 0,
			                        "\n  %s: %s (%s), want %s / row %s", c->name, verdict_name(r.verdict),
			                        r.summary, verdict_name(c->want), verdict_status_name(c->row_want));
		}
		verdict_result_free(&r);
	}
	if (nbad)
		fail_msg("%zu of %zu cases disagree:%s", nbad, n, bad);
}

#define FAMILY(t) run_family(t, sizeof(t) / sizeof(t[0]))

static void t_family1_never_healthy_too_early(void **state)
{
	(void)state;
	FAMILY(family1);
}

static void t_family2_older_controllers(void **state)
{
	(void)state;
	FAMILY(family2);
}

static void t_family3_by_design(void **state)
{
	(void)state;
	FAMILY(family3);
}

static void t_family4_fail_fast(void **state)
{
	(void)state;
	FAMILY(family4);
}

static void t_family5_not_failing_what_is_fine(void **state)
{
	(void)state;
	FAMILY(family5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_family1_never_healthy_too_early),
	    cmocka_unit_test(t_family2_older_controllers),
	    cmocka_unit_test(t_family3_by_design),
	    cmocka_unit_test(t_family4_fail_fast),
	    cmocka_unit_test(t_family5_not_failing_what_is_fine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
