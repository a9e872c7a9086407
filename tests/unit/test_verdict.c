/*
 * test_verdict.c - the release-check evaluator over many small object sets.
 *
 * Fixtures are JSON with single quotes (turned into double quotes before
 * parsing) in the shape verdict_eval takes: {"deployments":[...], ...}.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/json.c"
#include "rc_sources.h"
#include "verdict_compare.h"

/* 2024-01-01T00:10:00Z */
#define NOW_MS 1704067800000LL

static struct verdict_result R;
static struct first_seen_table FS;

static void same_rows(const struct verdict_result *want, const struct verdict_result *got, const char *how)
{
	char why[4096];

	if (vc_differ(want, got, why, sizeof(why)))
		fail_msg("%s: %s", how, why);
}

/*
 * Every fixture is judged three ways: as given (R), pruned to what the
 * rules read (verdict_prune must keep every field they use), and through
 * the incremental store fed out of order, with a decoy added and deleted
 * per kind and an update after every event (propagate must re-judge every
 * row an event affects).
 */
static void check_pruned(const cJSON *doc, const struct verdict_opts *o)
{
	cJSON *pruned = vc_pruned(doc);
	struct verdict_result got;

	assert_non_null(pruned);
	assert_int_equal(verdict_eval(pruned, o, &got), 0);
	same_rows(&R, &got, "pruned");
	verdict_result_free(&got);
	cJSON_Delete(pruned);
}

/*
 * ... and as the watch hands objects over: each printed, parsed with
 * verdict_keep (json_parse_kept) into exactly verdict_prune's tree, and
 * given to the store (verdict_store_put_owned) without a copy.
 */
static void check_kept(const cJSON *doc, const struct verdict_opts *o, int comparable)
{
	struct verdict_store *st = verdict_store_new();
	struct verdict_counts cnt;
	struct verdict_result got;
	size_t k;

	assert_non_null(st);
	for (k = 0; k < VERDICT_NKINDS; k++) {
		const cJSON *it;
		cJSON_ArrayForEach (it, rc_arr(doc, verdict_kinds[k].key)) {
			char *text, *a, *b;
			cJSON *kept, *pr;
			if (!cJSON_IsObject(it))
				continue;
			text = cJSON_PrintUnformatted(it);
			assert_non_null(text);
			kept = json_parse_kept(text, strlen(text), verdict_keep((enum verdict_kind)k), 1u << 20, NULL);
			pr = verdict_prune((enum verdict_kind)k, it);
			assert_non_null(kept);
			a = cJSON_PrintUnformatted(pr);
			b = cJSON_PrintUnformatted(kept);
			assert_string_equal(b, a);
			assert_int_equal(verdict_store_put_owned(st, (enum verdict_kind)k, kept), 0);
			cJSON_free(text);
			cJSON_free(a);
			cJSON_free(b);
			cJSON_Delete(pr);
		}
	}
	if (comparable) {
		assert_int_equal(verdict_store_update(st, o, NULL, NULL, &cnt), 0);
		assert_int_equal(verdict_store_result(st, &got), 0);
		same_rows(&R, &got, "kept and owned");
		verdict_result_free(&got);
	}
	verdict_store_free(st);
}

static void check_incremental(const cJSON *doc, const struct verdict_opts *o, int backwards)
{
	struct verdict_store *st = verdict_store_new();
	struct verdict_result got;
	struct verdict_counts cnt;
	size_t i, k;

	assert_non_null(st);
	/*
	 * backwards: pods before their owners, owners before theirs, so every
	 * lookup changes later; forwards: a Job before its pods
	 */
	for (i = 0; i < VERDICT_NKINDS; i++) {
		k = backwards ? VERDICT_NKINDS - 1 - i : i;
		const cJSON *a = rc_arr(doc, verdict_kinds[k].key), *it;
		cJSON *decoy = a && a->child ? cJSON_Duplicate(a->child, 1) : NULL;
		if (decoy) {
			/* same name, another uid: a lookup by name finds it first until it goes */
			cJSON *md = cJSON_GetObjectItemCaseSensitive(decoy, "metadata");
			if (cJSON_IsObject(md)) {
				cJSON_DeleteItemFromObjectCaseSensitive(md, "uid");
				cJSON_AddStringToObject(md, "uid", "decoy-uid");
			}
			assert_int_equal(verdict_store_put(st, (enum verdict_kind)k, decoy), 0);
			assert_int_equal(verdict_store_update(st, o, NULL, NULL, &cnt), 0);
		}
		cJSON_ArrayForEach (it, a) {
			assert_int_equal(verdict_store_put(st, (enum verdict_kind)k, it), 0);
			assert_int_equal(verdict_store_update(st, o, NULL, NULL, &cnt), 0);
		}
		if (decoy) {
			verdict_store_delete(st, (enum verdict_kind)k, decoy);
			assert_int_equal(verdict_store_update(st, o, NULL, NULL, &cnt), 0);
			cJSON_Delete(decoy);
		}
	}
	assert_int_equal(verdict_store_result(st, &got), 0);
	same_rows(&R, &got, "incremental");
	verdict_result_free(&got);
	/* a modification that changes nothing, and a relist that delivers everything again */
	for (k = 0; k < VERDICT_NKINDS; k++) {
		const cJSON *it;
		verdict_store_relist_begin(st, (enum verdict_kind)k);
		cJSON_ArrayForEach (it, rc_arr(doc, verdict_kinds[k].key))
			assert_int_equal(verdict_store_put(st, (enum verdict_kind)k, it), 0);
		verdict_store_relist_end(st, (enum verdict_kind)k);
	}
	assert_int_equal(verdict_store_update(st, o, NULL, NULL, &cnt), 0);
	assert_int_equal(verdict_store_result(st, &got), 0);
	same_rows(&R, &got, "relisted");
	assert_int_equal(cnt.verdict, R.verdict);
	assert_int_equal(cnt.nconsidered, R.nconsidered);
	assert_int_equal(cnt.recheck_at_ms, R.recheck_at_ms);
	verdict_result_free(&got);
	verdict_store_free(st);
}

static void run_full(const char *sq, const char *release, int64_t now, int64_t grace, int use_table)
{
	size_t n = strlen(sq), i;
	char *s = malloc(n + 1);
	cJSON *doc;
	struct verdict_opts o;

	assert_non_null(s);
	for (i = 0; i <= n; i++)
		s[i] = sq[i] == '\'' ? '"' : sq[i];
	doc = json_parse(s, n);
	if (!doc)
		fail_msg("fixture is not JSON: %s", s);
	memset(&o, 0, sizeof(o));
	o.release = release;
	o.now_ms = now;
	o.pull_grace_ms = grace;
	if (use_table) {
		o.first_seen = first_seen_lookup;
		o.first_seen_ctx = &FS;
	}
	verdict_result_free(&R);
	assert_int_equal(verdict_eval(doc, &o, &R), 0);
	check_pruned(doc, &o);
	check_kept(doc, &o, vc_comparable(doc));
	if (vc_comparable(doc)) {
		check_incremental(doc, &o, 1);
		check_incremental(doc, &o, 0);
	}
	if (use_table)
		first_seen_record(&FS, &R, now);
	cJSON_Delete(doc);
	free(s);
}

static void run(const char *sq) { run_full(sq, NULL, NOW_MS, -1, 0); }
static void run_rel(const char *sq, const char *rel) { run_full(sq, rel, NOW_MS, -1, 0); }

static const struct verdict_row *row(const char *kind, const char *name)
{
	size_t i;
	for (i = 0; i < R.nrows; i++)
		if (strcmp(R.rows[i].kind, kind) == 0 && strcmp(R.rows[i].name, name) == 0)
			return &R.rows[i];
	fail_msg("no row %s/%s", kind, name);
	return NULL;
}

static int teardown(void **state)
{
	(void)state;
	verdict_result_free(&R);
	memset(&FS, 0, sizeof(FS));
	return 0;
}

/* ---- fixtures ---------------------------------------------------------------- */

#define DEPLOY(name, rev, gen, obsgen, desired, updated, replicas, avail, extra)                                       \
	"{'metadata':{'name':'" name "','uid':'d-" name "','generation':" #gen                                         \
	",'annotations':{'deployment.kubernetes.io/revision':'" rev "'}},'spec':{'replicas':" #desired                 \
	"},'status':{'observedGeneration':" #obsgen ",'replicas':" #replicas ",'updatedReplicas':" #updated            \
	",'readyReplicas':" #avail ",'availableReplicas':" #avail extra "}}"
#define DEPLOY_OK(name, rev) DEPLOY(name, rev, 2, 2, 2, 2, 2, 2, "")

#define RS(name, deploy, rev)                                                                                          \
	"{'metadata':{'name':'" name "','uid':'rs-" name "','annotations':{'deployment.kubernetes.io/revision':'" rev  \
	"'},"                                                                                                          \
	"'ownerReferences':[{'kind':'Deployment','name':'" deploy "','uid':'d-" deploy "','controller':true}]}}"

#define OWNER(kind, name)                                                                                              \
	"'ownerReferences':[{'kind':'" kind "','name':'" name "','uid':'u-" name "','controller':true}]"
#define RSOWNER(rs) "'ownerReferences':[{'kind':'ReplicaSet','name':'" rs "','uid':'rs-" rs "','controller':true}]"

#define POD(name, owner, status)                                                                                       \
	"{'metadata':{'name':'" name "','uid':'p-" name "'," owner "},'spec':{'containers':[{'name':'app'}]},"         \
	"'status':" status "}"
#define READY_STATUS                                                                                                   \
	"{'phase':'Running','conditions':[{'type':'Ready','status':'True'}],"                                          \
	"'containerStatuses':[{'name':'app','ready':true,'state':{'running':{}}}]}"
#define NOTREADY_STATUS                                                                                                \
	"{'phase':'Running','conditions':[{'type':'Ready','status':'False'}],"                                         \
	"'containerStatuses':[{'name':'app','ready':false,'state':{'running':{}}}]}"
#define WAITING_STATUS(reason, msg)                                                                                    \
	"{'phase':'Pending','startTime':'2024-01-01T00:09:50Z','conditions':[{'type':'Ready','status':'False',"        \
	"'lastTransitionTime':'2024-01-01T00:09:50Z'}],'containerStatuses':[{'name':'app','ready':false,"              \
	"'restartCount':0,'state':{'waiting':{'reason':'" reason "','message':'" msg "'}}}]}"
#define CRASH_STATUS                                                                                                   \
	"{'phase':'Running','conditions':[{'type':'Ready','status':'False'}],'containerStatuses':[{'name':'app',"      \
	"'ready':false,'restartCount':3,'state':{'waiting':{'reason':'CrashLoopBackOff','message':'back-off 40s'}},"   \
	"'lastState':{'terminated':{'exitCode':1,'reason':'Error','finishedAt':'2024-01-01T00:09:00Z'}}}]}"

/* a healthy Deployment "web" at revision 2 with two ready pods */
#define WEB_OK                                                                                                         \
	"'deployments':[" DEPLOY_OK("web", "2") "],'replicasets':[" RS("web-1", "web", "1") "," RS("web-2", "web",     \
	                                                                                           "2") "]"
#define WEB_PODS POD("web-2-a", RSOWNER("web-2"), READY_STATUS) "," POD("web-2-b", RSOWNER("web-2"), READY_STATUS)

#define JOB(name, conds, extra)                                                                                        \
	"{'metadata':{'name':'" name "','uid':'u-" name "','creationTimestamp':'2024-01-01T00:05:00Z'" extra "},"      \
	"'spec':{'completions':1},'status':{'conditions':[" conds "]}}"
#define COND(type, status) "{'type':'" type "','status':'" status "','reason':'R" type "','message':'m " type "'}"

#define HELM(rel, ver, status, created)                                                                                \
	"{'metadata':{'name':'sh.helm.release.v1." rel ".v" ver "','creationTimestamp':'" created "',"                 \
	"'labels':{'owner':'helm','name':'" rel "','version':'" ver "','status':'" status "'}}}"

/* ---- empty and Deployments ------------------------------------------------------ */

static void t_empty(void **state)
{
	(void)state;
	run("{}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(R.summary, "no workloads or pods match the selector yet");
	run("[]");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	run("{'pods':{},'deployments':7}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(R.nrows, 0);
}

static void t_deploy_healthy(void **state)
{
	(void)state;
	run("{" WEB_OK ",'pods':[" WEB_PODS "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Deployment", "web")->status, ROW_OK);
	assert_string_equal(row("Deployment", "web")->state, "Available");
	assert_int_equal(row("Deployment", "web")->ready, 2);
	assert_int_equal(row("Deployment", "web")->desired, 2);
	assert_int_equal(row("Pod", "web-2-a")->status, ROW_OK);
	assert_int_equal(R.nconsidered, 3);
	assert_int_equal(R.recheck_at_ms, 0);
}

static void t_deploy_generation_pending(void **state)
{
	(void)state;
	run("{'deployments':[" DEPLOY("web", "2", 3, 2, 2, 2, 2, 2, "") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Deployment", "web")->state, "Pending");
	assert_non_null(strstr(row("Deployment", "web")->reason, "generation 3"));
}

static void t_deploy_rollout_steps(void **state)
{
	(void)state;
	run("{'deployments':[" DEPLOY("web", "2", 2, 2, 3, 1, 4, 1, "") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Deployment", "web")->reason, "1 of 3 replicas updated");
	run("{'deployments':[" DEPLOY("web", "2", 2, 2, 3, 3, 4, 3, "") "]}");
	assert_string_equal(row("Deployment", "web")->reason, "1 old replicas pending termination");
	run("{'deployments':[" DEPLOY("web", "2", 2, 2, 3, 3, 3, 2, "") "]}");
	assert_string_equal(row("Deployment", "web")->reason, "2 of 3 replicas ready");
	assert_int_equal(row("Deployment", "web")->ready, 2);
	run("{'deployments':[" DEPLOY("web", "2", 2, 2, 3, 3, 3, 3, "") "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
}

static void t_deploy_zero_replicas(void **state)
{
	(void)state;
	run("{'deployments':[" DEPLOY("web", "2", 1, 1, 0, 0, 0, 0, "") "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
}

static void t_deploy_default_replicas(void **state)
{
	(void)state;
	run("{'deployments':[{'metadata':{'name':'web','generation':1},'spec':{},'status':{'observedGeneration':1}}]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(row("Deployment", "web")->desired, 1);
}

static void t_deploy_pde_current(void **state)
{
	(void)state;
	run("{'deployments':[" DEPLOY(
	    "web", "2", 3, 3, 2, 1, 2, 1,
	    ",'conditions':[{'type':'Progressing','status':'False','reason':"
	    "'ProgressDeadlineExceeded','message':'ReplicaSet \\'web-2\\' has timed out progressing.'}]") "]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_int_equal(row("Deployment", "web")->status, ROW_FAILED);
	assert_string_equal(row("Deployment", "web")->state, "ProgressDeadlineExceeded");
	assert_non_null(strstr(row("Deployment", "web")->reason, "has timed out progressing"));
	assert_string_equal(row("Deployment", "web")->events_kind, "Deployment");
	assert_non_null(strstr(R.summary, "Deployment/web: "));
}

static void t_deploy_pde_stale(void **state)
{
	(void)state;
	/* the condition is about generation 3; generation 4 is not observed yet */
	run("{'deployments':[" DEPLOY("web", "2", 4, 3, 2, 1, 2, 1,
	                              ",'conditions':[{'type':'Progressing','status':'False','reason':"
	                              "'ProgressDeadlineExceeded'}]") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Deployment", "web")->state, "Pending");
}

static void t_deploy_progressing_true_not_failed(void **state)
{
	(void)state;
	run("{'deployments':[" DEPLOY("web", "2", 2, 2, 2, 2, 2, 2,
	                              ",'conditions':[{'type':'Progressing','status':'True','reason':"
	                              "'NewReplicaSetAvailable'}]") "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
}

static void t_deploy_paused(void **state)
{
	(void)state;
	run("{'deployments':[{'metadata':{'name':'web','generation':1},'spec':{'paused':true,'replicas':1},"
	    "'status':{'observedGeneration':1}}]}");
	/* decided, not waited for: the only workload is paused (issue 14 family 3) */
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_string_equal(row("Deployment", "web")->state, "Paused");
	assert_non_null(strstr(R.summary, "nothing to wait for: 1 workload paused or suspended"));
	/* beside a workload that rolls out, that one decides */
	run("{'deployments':[{'metadata':{'name':'web','generation':1},'spec':{'paused':true,'replicas':1},"
	    "'status':{'observedGeneration':1}},{'metadata':{'name':'api','generation':1},'spec':{'replicas':1},"
	    "'status':{'observedGeneration':1,'replicas':1,'updatedReplicas':1,'readyReplicas':0,"
	    "'availableReplicas':0}}]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
}

static void t_deploy_replica_failure(void **state)
{
	(void)state;
	run("{'deployments':[" DEPLOY("web", "2", 2, 2, 2, 0, 0, 0,
	                              ",'conditions':[{'type':'ReplicaFailure','status':'True','reason':'FailedCreate',"
	                              "'message':'pods \\'web-x\\' is forbidden: exceeded quota'}]") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Deployment", "web")->state, "ReplicaFailure");
	assert_non_null(strstr(row("Deployment", "web")->reason, "exceeded quota"));
}

/* ---- pods of Deployments ----------------------------------------------------- */

static void t_old_pods_terminating(void **state)
{
	(void)state;
	run("{" WEB_OK ",'pods':[" WEB_PODS ","
	    "{'metadata':{'name':'web-1-a','deletionTimestamp':'2024-01-01T00:09:00Z'," RSOWNER(
	        "web-1") "},"
	                 "'status':" CRASH_STATUS "}]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Pod", "web-1-a")->status, ROW_IGNORED);
	assert_string_equal(row("Pod", "web-1-a")->state, "Terminating");
}

static void t_superseded_pods_ignored(void **state)
{
	(void)state;
	/* an old crash-looping pod of revision 1 does not fail revision 2 */
	run("{" WEB_OK ",'pods':[" WEB_PODS "," POD("web-1-a", RSOWNER("web-1"), CRASH_STATUS) "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Pod", "web-1-a")->status, ROW_IGNORED);
	assert_string_equal(row("Pod", "web-1-a")->state, "Superseded");
	assert_non_null(strstr(row("Pod", "web-1-a")->reason, "revision 1, current 2"));
}

static void t_superseded_without_deployment(void **state)
{
	(void)state;
	/* the Deployment is not selected: the newest sibling ReplicaSet is current */
	run("{'replicasets':[" RS("web-1", "web", "1") "," RS("web-2", "web", "2") "],'pods':[" WEB_PODS "," POD(
	    "web-1-a", RSOWNER("web-1"), CRASH_STATUS) "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Pod", "web-1-a")->status, ROW_IGNORED);
	/* owned ReplicaSets are not rows of their own */
	assert_int_equal(R.nrows, 3);
}

static void t_crashloop_fails(void **state)
{
	const struct verdict_row *r;
	(void)state;
	run("{" WEB_OK ",'pods':[" POD("web-2-a", RSOWNER("web-2"), CRASH_STATUS) "]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	r = row("Pod", "web-2-a");
	assert_int_equal(r->status, ROW_FAILED);
	assert_string_equal(r->state, "CrashLoopBackOff");
	assert_string_equal(r->reason, "container \"app\" is crash-looping (last exit 1 (Error), 3 restarts)");
	assert_string_equal(r->log_pod, "web-2-a");
	assert_string_equal(r->log_container, "app");
	assert_int_equal(r->log_previous, 1);
	assert_string_equal(r->events_kind, "Pod");
	assert_string_equal(r->events_name, "web-2-a");
	assert_int_equal(r->ready, 0);
	assert_int_equal(r->desired, 1);
}

static void t_crashloop_deferred_until_observed(void **state)
{
	(void)state;
	/* generation 3 not observed yet: web-2 may be about to be replaced */
	run("{'deployments':[" DEPLOY("web", "2", 3, 2, 2, 2, 2, 0, "") "],'replicasets':[" RS(
	    "web-2", "web", "2") "],'pods':[" POD("web-2-a", RSOWNER("web-2"), CRASH_STATUS) "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(row("Pod", "web-2-a")->status, ROW_PROGRESSING);
	assert_string_equal(row("Pod", "web-2-a")->state, "CrashLoopBackOff");
	assert_non_null(strstr(row("Pod", "web-2-a")->reason, "observes generation 3"));
}

static void t_pods_ready_late(void **state)
{
	(void)state;
	run("{" WEB_OK ",'pods':[" POD("web-2-a", RSOWNER("web-2"), READY_STATUS) "," POD("web-2-b", RSOWNER("web-2"),
	                                                                                  NOTREADY_STATUS) "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Pod", "web-2-b")->state, "NotReady");
	assert_string_equal(row("Pod", "web-2-b")->reason, "container \"app\" is not ready");
	assert_non_null(strstr(R.summary, "waiting for 1 object, e.g. Pod/web-2-b"));
	run("{" WEB_OK ",'pods':[" WEB_PODS "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
}

static void t_phase_running_is_not_ready(void **state)
{
	(void)state;
	/* the bash loop's bug: Running with an unready container is not healthy */
	run("{'pods':[" POD("p", OWNER("StatefulSet", "db"),
	                    "{'phase':'Running','conditions':[{'type':'Ready','status':'False','message':'containers "
	                    "with unready status: [app]'}]}") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Pod", "p")->state, "Running");
	assert_non_null(strstr(row("Pod", "p")->reason, "unready status"));
}

static void t_container_creating(void **state)
{
	(void)state;
	run("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("ContainerCreating", "")) "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Pod", "p")->state, "ContainerCreating");
	run("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), "{'phase':'Pending'}") "]}");
	assert_string_equal(row("Pod", "p")->state, "Pending");
	run("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), "{}") "]}");
	assert_string_equal(row("Pod", "p")->state, "Pending");
}

/* ---- image pull / config errors and their grace ---------------------------------- */

static void t_image_pull_within_grace(void **state)
{
	const struct verdict_row *r;
	(void)state;
	/* not ready since 00:09:50, now 00:10:00: 10 s into a 60 s grace */
	run("{'pods':[" POD("p", OWNER("ReplicaSet", "x"),
	                    WAITING_STATUS("ImagePullBackOff", "Back-off pulling image")) "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	r = row("Pod", "p");
	assert_string_equal(r->state, "ImagePullBackOff");
	assert_string_equal(r->grace_key, "p-p/app/image");
	/* from our own first sighting, never the server's startTime (issue #14) */
	assert_int_equal(r->fails_at_ms, NOW_MS + 60000);
	assert_int_equal(R.recheck_at_ms, NOW_MS + 60000);
	assert_non_null(strstr(r->reason, "fails if it persists 60s"));
}

static void t_image_pull_past_grace(void **state)
{
	const struct verdict_row *r;
	(void)state;
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("ErrImagePull", "timeout")) "]}", NULL,
	         NOW_MS, -1, 1);
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("ErrImagePull", "timeout")) "]}", NULL,
	         NOW_MS + 60000, -1, 1);
	assert_int_equal(R.verdict, VERDICT_FAILED);
	r = row("Pod", "p");
	assert_string_equal(r->state, "ErrImagePull");
	assert_string_equal(r->reason, "container \"app\": ErrImagePull: timeout (for 60s)");
	/* the image never ran: no logs, Events say why */
	assert_string_equal(r->log_container, "");
	assert_string_equal(r->events_name, "p");
	/* a shorter grace fails sooner */
	memset(&FS, 0, sizeof(FS));
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("ErrImagePull", "x")) "]}", NULL, NOW_MS,
	         5000, 1);
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("ErrImagePull", "x")) "]}", NULL,
	         NOW_MS + 5000, 5000, 1);
	assert_int_equal(R.verdict, VERDICT_FAILED);
}

static void t_image_pull_first_seen_table(void **state)
{
	const char *doc = "{'pods':[" POD("p", OWNER("ReplicaSet", "x"),
	                                  "{'phase':'Pending','containerStatuses':[{'name':'app','state':{'waiting':"
	                                  "{'reason':'ImagePullBackOff'}}}]}") "]}";
	(void)state;
	/* no server timestamps: the caller's first sighting counts */
	run_full(doc, NULL, NOW_MS, 2000, 1);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(FS.n, 1);
	assert_int_equal(first_seen_lookup(&FS, "p-p/app/image"), NOW_MS);
	run_full(doc, NULL, NOW_MS + 1000, 2000, 1);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(first_seen_lookup(&FS, "p-p/app/image"), NOW_MS);
	run_full(doc, NULL, NOW_MS + 2000, 2000, 1);
	assert_int_equal(R.verdict, VERDICT_FAILED);
	/* the state clears: the key is dropped, a recurrence starts a new grace */
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), READY_STATUS) "]}", NULL, NOW_MS + 3000, 2000, 1);
	assert_int_equal(FS.n, 0);
	run_full(doc, NULL, NOW_MS + 4000, 2000, 1);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(row("Pod", "p")->fails_at_ms, NOW_MS + 6000);
}

static void t_image_pull_future_server_time(void **state)
{
	(void)state;
	/* a server clock ahead of ours never shortens the grace below our own sighting */
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("ErrImagePull", "x")) "]}", NULL,
	         NOW_MS - 60000, -1, 0);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(row("Pod", "p")->fails_at_ms, NOW_MS);
}

static void t_invalid_image_name_fails_at_once(void **state)
{
	(void)state;
	run("{'pods':[" POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("InvalidImageName", "bad ref")) "]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Pod", "p")->state, "InvalidImageName");
	assert_string_equal(row("Pod", "p")->grace_key, "");
}

static void t_create_container_config_error(void **state)
{
	(void)state;
	run("{'pods':[" POD("p", OWNER("ReplicaSet", "x"),
	                    WAITING_STATUS("CreateContainerConfigError", "secret \\'db\\' not found")) "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Pod", "p")->grace_key, "p-p/app/config");
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"),
	                         WAITING_STATUS("CreateContainerConfigError", "secret \\'db\\' not found")) "]}",
	         NULL, NOW_MS, -1, 1);
	run_full("{'pods':[" POD("p", OWNER("ReplicaSet", "x"),
	                         WAITING_STATUS("CreateContainerConfigError", "secret \\'db\\' not found")) "]}",
	         NULL, NOW_MS + 60000, -1, 1);
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_non_null(strstr(row("Pod", "p")->reason, "secret \"db\" not found"));
}

/* ---- init containers ---------------------------------------------------------- */

#define INIT_POD(status_init)                                                                                          \
	POD("p", RSOWNER("web-2"),                                                                                     \
	    "{'phase':'Pending','conditions':[{'type':'Initialized','status':'False'}],"                               \
	    "'initContainerStatuses':[" status_init "],'containerStatuses':[{'name':'app','ready':false,"              \
	    "'state':{'waiting':{'reason':'PodInitializing'}}}]}")

static void t_init_failed(void **state)
{
	const struct verdict_row *r;
	(void)state;
	/*
	 * The wait-for-job gate saw the migration Job fail. restartPolicy
	 * Always (the default): the kubelet runs it again, only its crash
	 * loop (or the Job's own Failed row) fails the release (issue #14,
	 * family 5: an exit the controller retries is not a failure).
	 */
	run("{" WEB_OK
	    ",'pods':[" INIT_POD("{'name':'wait-for-migration','ready':false,'state':{'terminated':"
	                         "{'exitCode':1,'reason':'Error','message':'Job app-migrate-3 failed'}}}") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	/* restartPolicy Never: it will not run again */
	run("{" WEB_OK ",'pods':[{'metadata':{'name':'p','uid':'p-p'," RSOWNER(
	    "web-2") "},'spec':{'restartPolicy':"
	             "'Never','containers':[{'name':'app'}]},'status':{'phase':'Pending','conditions':[{'type':'"
	             "Initialized',"
	             "'status':'False'}],'initContainerStatuses':[{'name':'wait-for-migration','ready':false,'state':{"
	             "'terminated':{'exitCode':1,'reason':'Error','message':'Job app-migrate-3 failed'}}}]}}]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	r = row("Pod", "p");
	assert_string_equal(r->state, "Init:Error");
	assert_string_equal(r->reason,
	                    "init container \"wait-for-migration\" failed: exit 1 (Error): Job app-migrate-3 failed");
	assert_string_equal(r->log_container, "wait-for-migration");
	assert_int_equal(r->log_previous, 0);
}

static void t_init_crashloop(void **state)
{
	(void)state;
	run("{" WEB_OK ",'pods':[" INIT_POD("{'name':'gate','restartCount':2,'state':{'waiting':{'reason':"
	                                    "'CrashLoopBackOff'}},'lastState':{'terminated':{'exitCode':1}}}") "]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Pod", "p")->state, "Init:CrashLoopBackOff");
	assert_int_equal(row("Pod", "p")->log_previous, 1);
	assert_string_equal(row("Pod", "p")->log_container, "gate");
}

static void t_init_waiting(void **state)
{
	(void)state;
	run("{" WEB_OK ",'pods':[" INIT_POD("{'name':'gate','state':{'terminated':{'exitCode':0}}},"
	                                    "{'name':'gate2','state':{'running':{}}}") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Pod", "p")->state, "Init:1/2");
	assert_string_equal(row("Pod", "p")->reason, "waiting for init container \"gate2\"");
}

static void t_init_image_pull(void **state)
{
	(void)state;
	run_full("{" WEB_OK
	         ",'pods':[" INIT_POD("{'name':'gate','state':{'waiting':{'reason':'ImagePullBackOff'}}}") "]}",
	         NULL, NOW_MS, 0, 0);
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Pod", "p")->state, "Init:ImagePullBackOff");
}

static void t_sidecar(void **state)
{
	const char *pod_sq =
	    "{'pods':[{'metadata':{'name':'p'," RSOWNER("web-2") "},'spec':{'initContainers':[{'name':'proxy',"
	                                                         "'restartPolicy':'Always'}],'containers':[{'name':'"
	                                                         "app'}]},'status':{'phase':'Running','conditions':"
	                                                         "[{'type':'Initialized','status':'True'},{'type':'"
	                                                         "Ready','status':'True'}],'initContainerStatuses':"
	                                                         "[{'name':'proxy','started':true,'state':{'running':{}"
	                                                         "}}],'containerStatuses':[{'name':'app','ready':"
	                                                         "true,'state':{'running':{}}}]}}]}";
	(void)state;
	run(pod_sq);
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	/* a crash-looping sidecar fails as a container, not "init container" */
	run("{'pods':[{'metadata':{'name':'p'," RSOWNER(
	    "web-2") "},'spec':{'initContainers':[{'name':'proxy',"
	             "'restartPolicy':'Always'}]},'status':{'phase':'Running','initContainerStatuses':[{'name':'proxy',"
	             "'state':{'waiting':{'reason':'CrashLoopBackOff'}}}]}}]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Pod", "p")->state, "CrashLoopBackOff");
	assert_non_null(strstr(row("Pod", "p")->reason, "container \"proxy\""));
	assert_null(strstr(row("Pod", "p")->reason, "init container"));
}

/* ---- failed pods, eviction, scheduling ----------------------------------------- */

static void t_evicted_replaced(void **state)
{
	(void)state;
	run("{" WEB_OK ",'pods':[" WEB_PODS "," POD("web-2-old", RSOWNER("web-2"),
	                                            "{'phase':'Failed','reason':'Evicted','message':"
	                                            "'The node was low on resource: memory.'}") "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Pod", "web-2-old")->status, ROW_IGNORED);
	assert_string_equal(row("Pod", "web-2-old")->state, "Evicted");
	assert_non_null(strstr(row("Pod", "web-2-old")->reason, "ReplicaSet web-2 replaces it"));
}

static void t_unowned_failed(void **state)
{
	const struct verdict_row *r;
	(void)state;
	run("{'pods':[{'metadata':{'name':'solo'},'status':{'phase':'Failed','containerStatuses':[{'name':'c1',"
	    "'state':{'terminated':{'exitCode':0}}},{'name':'c2','state':{'terminated':{'exitCode':3}}}]}}]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	r = row("Pod", "solo");
	assert_string_equal(r->reason, "pod failed");
	assert_string_equal(r->log_container, "c2");
	assert_int_equal(r->log_previous, 0);
	/* an unowned evicted pod is nobody's to replace */
	run("{'pods':[{'metadata':{'name':'solo'},'status':{'phase':'Failed','reason':'Evicted'}}]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Pod", "solo")->reason, "pod failed: Evicted");
	assert_string_equal(row("Pod", "solo")->log_container, "");
}

static void t_unowned_succeeded(void **state)
{
	(void)state;
	run("{'pods':[{'metadata':{'name':'solo'},'status':{'phase':'Succeeded'}}]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_string_equal(row("Pod", "solo")->state, "Completed");
}

static void t_never_restart_container_exit(void **state)
{
	(void)state;
	/* restartPolicy Never: a container that exited non-zero will not come back */
	run("{'pods':[{'metadata':{'name':'solo'},'spec':{'restartPolicy':'Never'},'status':{'phase':'Running',"
	    "'containerStatuses':[{'name':'main','state':{'terminated':{'exitCode':2}}},{'name':'side',"
	    "'state':{'running':{}}}]}}]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Pod", "solo")->state, "Error");
	/* with the default policy it restarts: wait for CrashLoopBackOff */
	run("{'pods':[{'metadata':{'name':'solo'},'status':{'phase':'Running',"
	    "'containerStatuses':[{'name':'main','state':{'terminated':{'exitCode':2}}}]}}]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
}

static void t_unschedulable(void **state)
{
	(void)state;
	run("{'pods':[" POD("p", RSOWNER("web-2"),
	                    "{'phase':'Pending','conditions':[{'type':'PodScheduled',"
	                    "'status':'False','reason':'Unschedulable','message':"
	                    "'0/3 nodes are available: 3 Insufficient cpu.'}]}") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Pod", "p")->state, "Unschedulable");
	assert_string_equal(row("Pod", "p")->reason, "0/3 nodes are available: 3 Insufficient cpu.");
	/* it may heal (autoscaler): graced, from our first sighting */
	assert_int_equal(R.recheck_at_ms, NOW_MS + VERDICT_DEFAULT_SCHED_GRACE_MS);
}

/* --min-ready: Ready without a restart for the window, on the caller's clock; a restart starts it again. */
static void min_ready_eval(const char *sq, int64_t now)
{
	size_t n = strlen(sq), i;
	char *js = malloc(n + 1);
	struct verdict_opts o;
	cJSON *doc;

	assert_non_null(js);
	for (i = 0; i <= n; i++)
		js[i] = sq[i] == '\'' ? '"' : sq[i];
	doc = json_parse(js, n);
	assert_non_null(doc);
	memset(&o, 0, sizeof(o));
	o.now_ms = now;
	o.pull_grace_ms = -1;
	o.min_ready_ms = 10000;
	o.first_seen = first_seen_lookup;
	o.first_seen_ctx = &FS;
	verdict_result_free(&R);
	assert_int_equal(verdict_eval(doc, &o, &R), 0);
	first_seen_record(&FS, &R, now);
	cJSON_Delete(doc);
	free(js);
}

#define RESTARTED_READY(n)                                                                                             \
	"{'phase':'Running','conditions':[{'type':'Ready','status':'True'}],"                                          \
	"'containerStatuses':[{'name':'app','ready':true,'restartCount':" #n ",'state':{'running':{}}}]}"

static void t_min_ready_window(void **state)
{
	const char *doc0 = "{'pods':[" POD("p", OWNER("ReplicaSet", "x"), RESTARTED_READY(0)) "]}";
	const char *doc1 = "{'pods':[" POD("p", OWNER("ReplicaSet", "x"), RESTARTED_READY(1)) "]}";
	(void)state;
	min_ready_eval(doc0, NOW_MS);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(row("Pod", "p")->grace_ok, 1);
	assert_int_equal(R.recheck_at_ms, NOW_MS + 10000);
	min_ready_eval(doc0, NOW_MS + 9999);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	/* a restart (it crashed and came back Ready) starts the window again */
	min_ready_eval(doc1, NOW_MS + 9999);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	min_ready_eval(doc1, NOW_MS + 10000);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	min_ready_eval(doc1, NOW_MS + 19999);
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_string_equal(row("Pod", "p")->state, "Ready");
	assert_int_equal(R.recheck_at_ms, 0);
}

/* ---- Jobs -------------------------------------------------------------------- */

static void t_job_complete(void **state)
{
	(void)state;
	run("{'jobs':[" JOB("mig", COND("Complete", "True"), "") "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_string_equal(row("Job", "mig")->state, "Complete");
	run("{'jobs':[" JOB("mig", COND("SuccessCriteriaMet", "True"), "") "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	run("{'jobs':[" JOB("mig", COND("Complete", "False"), "") "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Job", "mig")->state, "Running");
}

#define JOB_POD(name, exit, finished)                                                                                  \
	"{'metadata':{'name':'" name                                                                                   \
	"'," OWNER("Job", "mig") "},'spec':{'restartPolicy':'Never'},"                                                 \
	                         "'status':{'phase':'Failed','containerStatuses':[{'name':'migrate','state':{'"        \
	                         "terminated':{'exitCode':" #exit ",'finishedAt':'" finished "'}}}]}}"

static void t_job_failed(void **state)
{
	const struct verdict_row *r;
	(void)state;
	run("{'jobs':[" JOB("mig", COND("Failed", "True"), "") "],'pods':[" JOB_POD(
	    "mig-a", 3,
	    "2024-01-01T00:06:00Z") "," JOB_POD("mig-b", 4,
	                                        "2024-01-01T00:07:00Z") "," JOB_POD("mig-c", 5,
	                                                                            "2024-01-01T00:05:30Z") "]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	r = row("Job", "mig");
	assert_string_equal(r->reason, "Job failed: RFailed: m Failed");
	/* the last attempt's logs */
	assert_string_equal(r->log_pod, "mig-b");
	assert_string_equal(r->log_container, "migrate");
	assert_string_equal(r->events_kind, "Pod");
	assert_string_equal(r->events_name, "mig-b");
	/* its pods do not count on their own */
	assert_int_equal(row("Pod", "mig-a")->status, ROW_IGNORED);
	assert_string_equal(R.summary, "Job/mig: Job failed: RFailed: m Failed");
	run("{'jobs':[" JOB("mig", COND("FailureTarget", "True"), "") "]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Job", "mig")->log_pod, "");
	assert_string_equal(row("Job", "mig")->events_name, "mig");
}

static void t_job_failed_then_succeeded(void **state)
{
	(void)state;
	run("{'jobs':[{'metadata':{'name':'mig','uid':'u-mig'},'status':{'succeeded':1,'failed':2,'conditions':[" COND(
	    "Complete",
	    "True") "]}}],'pods':[" JOB_POD("mig-a", 1,
	                                    "2024-01-01T00:06:00Z") ","
	                                                            "{'metadata':{'name':'mig-b'," OWNER(
	                                                                "Job",
	                                                                "mig") "},'status':{'phase':'Succeeded'}}]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_string_equal(row("Job", "mig")->reason, "succeeded after 2 failed attempts");
	assert_int_equal(row("Pod", "mig-a")->status, ROW_IGNORED);
}

static void t_job_running_with_failed_pod(void **state)
{
	(void)state;
	/* a failed attempt while the Job retries: the Job decides */
	run("{'jobs':[{'metadata':{'name':'mig','uid':'u-mig'},'status':{'active':1,'failed':1}}],'pods':[" JOB_POD(
	    "mig-a", 1, "2024-01-01T00:06:00Z") "," POD("mig-b", OWNER("Job", "mig"), CRASH_STATUS) "]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_int_equal(row("Pod", "mig-a")->status, ROW_IGNORED);
	assert_non_null(strstr(row("Pod", "mig-a")->reason, "Job mig decides whether to retry"));
	assert_int_equal(row("Pod", "mig-b")->status, ROW_PROGRESSING);
	assert_non_null(strstr(row("Pod", "mig-b")->reason, "Job mig decides"));
	assert_string_equal(row("Job", "mig")->reason, "1 active, 0 succeeded, 1 failed");
}

static void t_job_pod_image_pull_fails(void **state)
{
	(void)state;
	/* a Job never fails on its own when its image cannot be pulled */
	run_full("{'jobs':[" JOB("mig", "", "") "],'pods':[" POD("mig-a", OWNER("Job", "mig"),
	                                                         WAITING_STATUS("ImagePullBackOff", "x")) "]}",
	         NULL, NOW_MS, -1, 1);
	run_full("{'jobs':[" JOB("mig", "", "") "],'pods':[" POD("mig-a", OWNER("Job", "mig"),
	                                                         WAITING_STATUS("ImagePullBackOff", "x")) "]}",
	         NULL, NOW_MS + 120000, -1, 1);
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_int_equal(row("Pod", "mig-a")->status, ROW_FAILED);
}

static void t_job_suspended_cronjob(void **state)
{
	(void)state;
	run("{'jobs':[{'metadata':{'name':'mig'},'spec':{'suspend':true}}]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY); /* decided: nothing else to wait for */
	assert_string_equal(row("Job", "mig")->state, "Suspended");
	run("{'jobs':[" JOB("nightly-1", COND("Failed", "True"), "," OWNER("CronJob", "nightly")) "]}");
	assert_int_equal(row("Job", "nightly-1")->status, ROW_IGNORED);
	assert_int_equal(R.verdict, VERDICT_PROGRESSING); /* nothing else */
	run("{" WEB_OK ",'jobs':[" JOB("nightly-1", COND("Failed", "True"), "," OWNER("CronJob", "nightly")) "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
}

/* A Deployment whose pod template's init container runs wait-for-job for job (the chart-snippets way). */
#define GATED_DEPLOY(job, container)                                                                                   \
	"{'metadata':{'name':'web','uid':'d-web','generation':2,'annotations':{'deployment.kubernetes.io/revision':"   \
	"'2'}},'spec':{'replicas':2,'template':{'spec':{'initContainers':[" container "]}}},'status':{"                \
	"'observedGeneration':2,'replicas':2,'updatedReplicas':2,'readyReplicas':2,'availableReplicas':2}}"
#define WFJ_IMAGE(job)                                                                                                 \
	"{'name':'wait-for-migration','image':'r.example/mg/wait-for-job:0.1.0@sha256:ab','args':['" job "']}"
#define REVJOB(name, rev, conds) JOB(name, conds, ",'labels':{'migration-gate.io/release-revision':'" rev "'}")

static void t_job_stale_hook(void **state)
{
	(void)state;
	/*
	 * Never by timestamps (issue #14): a Job of revision 2 created in the
	 * same second as revision 3's record was counted as current. The
	 * revision label decides, whatever the times say.
	 */
	run_rel("{'releases':[" HELM("app", "3", "deployed", "2024-01-01T00:05:00Z") "]," WEB_OK ",'jobs':[" REVJOB(
	            "mig", "2", COND("Failed", "True")) "]}",
	        "app");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Job", "mig")->status, ROW_IGNORED);
	assert_non_null(strstr(row("Job", "mig")->reason, "revision 2 (current 3)"));
	/* labelled with this revision: it counts, even created long before the record */
	run_rel("{'releases':[" HELM("app", "3", "deployed", "2024-01-01T00:09:00Z") "]," WEB_OK ",'jobs':[" REVJOB(
	            "mig", "3", COND("Failed", "True")) "]}",
	        "app");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	/* no label, no gate naming Jobs: nothing exact to go by, it counts */
	run_rel("{'releases':[" HELM("app", "3", "deployed", "2024-01-01T00:09:00Z") "]," WEB_OK ",'jobs':[" JOB(
	            "mig", COND("Failed", "True"), "") "]}",
	        "app");
	assert_int_equal(R.verdict, VERDICT_FAILED);
}

static void t_job_of_earlier_revision(void **state)
{
	(void)state;
	/*
	 * The Job the current pod template's wait-for-job waits for is the
	 * current one; a kept Job of an earlier revision is history (with or
	 * without Helm: --no-helm is as exact for chart-snippets charts).
	 */
	run("{'deployments':[" GATED_DEPLOY("app-migrate-b", WFJ_IMAGE("app-migrate-b")) "],'jobs':[" JOB(
	    "app-migrate-a", COND("Failed", "True"), "") "," JOB("app-migrate-b", COND("Complete", "True"), "") "]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Job", "app-migrate-a")->status, ROW_IGNORED);
	assert_string_equal(row("Job", "app-migrate-a")->state, "Superseded");
	assert_int_equal(row("Job", "app-migrate-b")->status, ROW_OK);
	/* the current one failed: the release failed */
	run("{'deployments':[" GATED_DEPLOY("app-migrate-b", WFJ_IMAGE("app-migrate-b")) "],'jobs':[" JOB(
	    "app-migrate-a", COND("Complete", "True"), "") "," JOB("app-migrate-b", COND("Failed", "True"), "") "]}");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_int_equal(row("Job", "app-migrate-a")->status, ROW_IGNORED);
	/* with Helm: named by the gate, or labelled with the revision */
	run_rel("{'releases':[" HELM("app", "3", "deployed", "2024-01-01T00:08:00Z") "],'deployments':[" GATED_DEPLOY(
	            "app-migrate-b", WFJ_IMAGE("app-migrate-b")) "],'jobs':[" REVJOB("app-migrate-a", "2",
	                                                                             COND("Failed", "True")) "]}",
	        "app");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(row("Job", "app-migrate-a")->status, ROW_IGNORED);
}

/* How the JOB argument of a wait-for-job init container is found. */
static void t_job_named_by_gate(void **state)
{
	static const char *const gates[] = {
	    WFJ_IMAGE("m-1"),
	    "{'name':'g','image':'busybox','command':['/bin/wait-for-job','--timeout','5m','-n','ns','m-1']}",
	    "{'name':'g','image':'x','command':['wait-for-job'],'args':['--record=rec','-q','--','m-1']}",
	    "{'name':'g','image':'wait-for-job','env':[{'name':'WAIT_FOR_JOB_NAME','value':'m-1'}]}",
	    "{'name':'g','image':'registry:5000/wait-for-job','args':['--log-format','json','m-1']}",
	};
	char doc[2048];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(gates) / sizeof(gates[0]); i++) {
		snprintf(doc, sizeof(doc),
		         "{'deployments':[" GATED_DEPLOY("m-1", "%s") "],'jobs':[" JOB("m-0", COND("Failed", "True"),
		                                                                       "") "]}",
		         gates[i]);
		run(doc);
		if (R.verdict != VERDICT_HEALTHY)
			fail_msg("gate %zu: %s", i, R.summary);
	}
	/* not a wait-for-job gate, or a selector: no Job named, the failed Job counts */
	static const char *const others[] = {
	    "{'name':'g','image':'busybox','args':['m-1']}",
	    "{'name':'g','image':'wait-for-job','command':['/bin/sh','-c','wait-for-job m-1']}",
	    "{'name':'g','image':'wait-for-job','args':['-l','app=x']}",
	};
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		snprintf(doc, sizeof(doc),
		         "{'deployments':[" GATED_DEPLOY("m-1", "%s") "],'jobs':[" JOB("m-0", COND("Failed", "True"),
		                                                                       "") "]}",
		         others[i]);
		run(doc);
		if (R.verdict != VERDICT_FAILED)
			fail_msg("not a gate %zu: %s", i, R.summary);
	}
}

/* ---- StatefulSets, DaemonSets, bare ReplicaSets ------------------------------------ */

#define STS(gen, obs, desired, ready, updated, replicas, cur, upd, strategy)                                           \
	"{'statefulsets':[{'metadata':{'name':'db','generation':" #gen "},'spec':{'replicas':" #desired                \
	",'updateStrategy':" strategy "},'status':{'observedGeneration':" #obs ",'readyReplicas':" #ready              \
	",'updatedReplicas':" #updated ",'replicas':" #replicas ",'currentRevision':'" cur "','updateRevision':'" upd  \
	"'}}]}"

static void t_statefulset(void **state)
{
	(void)state;
	run(STS(2, 2, 3, 3, 3, 3, "db-b", "db-b", "{'type':'RollingUpdate'}"));
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	run(STS(2, 1, 3, 3, 3, 3, "db-b", "db-b", "{}"));
	assert_string_equal(row("StatefulSet", "db")->state, "Pending");
	run(STS(2, 2, 3, 3, 1, 3, "db-a", "db-b", "{}"));
	assert_string_equal(row("StatefulSet", "db")->reason, "1 of 3 pods updated");
	run(STS(2, 2, 3, 3, 3, 3, "db-a", "db-b", "{}"));
	assert_string_equal(row("StatefulSet", "db")->reason, "rolling out revision db-b");
	run(STS(2, 2, 3, 2, 3, 3, "db-b", "db-b", "{}"));
	assert_string_equal(row("StatefulSet", "db")->reason, "2 of 3 pods ready");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	run(STS(2, 2, 3, 4, 3, 4, "db-b", "db-b", "{}"));
	assert_non_null(strstr(row("StatefulSet", "db")->reason, "scaling down"));
}

static void t_statefulset_partition(void **state)
{
	(void)state;
	/* partition 2 of 3: only ordinal 2 moves; revisions legitimately differ */
	run(STS(2, 2, 3, 3, 1, 3, "db-a", "db-b", "{'type':'RollingUpdate','rollingUpdate':{'partition':2}}"));
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_non_null(strstr(row("StatefulSet", "db")->reason, "ordinals >= 2 updated"));
	run(STS(2, 2, 3, 3, 0, 3, "db-a", "db-b", "{'type':'RollingUpdate','rollingUpdate':{'partition':2}}"));
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("StatefulSet", "db")->reason, "0 of 1 pods at ordinal >= 2 (partition) updated");
	/* partition >= replicas: nothing to update */
	run(STS(2, 2, 3, 3, 0, 3, "db-a", "db-b", "{'rollingUpdate':{'partition':5}}"));
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	/* OnDelete: readiness only */
	run(STS(2, 2, 3, 3, 0, 3, "db-a", "db-b", "{'type':'OnDelete'}"));
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
}

static void t_statefulset_available(void **state)
{
	(void)state;
	run("{'statefulsets':[{'metadata':{'name':'db'},'spec':{'replicas':2},'status':{'readyReplicas':2,"
	    "'availableReplicas':1,'updatedReplicas':2}}]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("StatefulSet", "db")->reason, "1 of 2 pods available");
}

static void t_daemonset(void **state)
{
	(void)state;
	run("{'daemonsets':[{'metadata':{'name':'ds','generation':1},'status':{'observedGeneration':1,"
	    "'desiredNumberScheduled':3,'updatedNumberScheduled':3,'numberReady':3,'numberAvailable':3}}]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	run("{'daemonsets':[{'metadata':{'name':'ds','generation':1},'status':{'observedGeneration':1,"
	    "'desiredNumberScheduled':3,'updatedNumberScheduled':2,'numberAvailable':3}}]}");
	assert_string_equal(row("DaemonSet", "ds")->reason, "2 of 3 nodes updated");
	run("{'daemonsets':[{'metadata':{'name':'ds','generation':1},'spec':{'updateStrategy':{'type':'OnDelete'}},"
	    "'status':{'observedGeneration':1,'desiredNumberScheduled':3,'updatedNumberScheduled':2,'numberReady':3,"
	    "'numberAvailable':2}}]}");
	assert_string_equal(row("DaemonSet", "ds")->reason, "2 of 3 nodes available");
	run("{'daemonsets':[{'metadata':{'name':'ds','generation':2},'status':{'observedGeneration':1}}]}");
	assert_string_equal(row("DaemonSet", "ds")->state, "Pending");
}

static void t_bare_replicaset(void **state)
{
	(void)state;
	run("{'replicasets':[{'metadata':{'name':'rs'},'spec':{'replicas':2},'status':{'availableReplicas':1}}]}");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("ReplicaSet", "rs")->state, "Scaling");
	run("{'replicasets':[{'metadata':{'name':'rs'},'spec':{'replicas':2},'status':{'readyReplicas':2,"
	    "'availableReplicas':2}}]}");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
}

/* ---- the Helm release record --------------------------------------------------- */

static void t_helm_states(void **state)
{
	const char *body = "]," WEB_OK ",'pods':[" WEB_PODS "]}";
	char doc[4096];
	(void)state;

	snprintf(doc, sizeof(doc), "{'releases':[%s,%s%s", HELM("app", "9", "superseded", "2024-01-01T00:00:00Z"),
	         HELM("app", "10", "deployed", "2024-01-01T00:01:00Z"), body);
	run_rel(doc, "app");
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_int_equal(R.helm_revision, 10); /* numeric, not lexical */
	assert_string_equal(R.helm_status, "deployed");
	assert_string_equal(row("Release", "app")->reason, "revision 10 deployed");

	snprintf(doc, sizeof(doc), "{'releases':[%s,%s%s", HELM("app", "4", "deployed", "2024-01-01T00:00:00Z"),
	         HELM("app", "5", "failed", "2024-01-01T00:01:00Z"), body);
	run_rel(doc, "app");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(R.summary, "Release/app: Helm marked revision 5 failed (see `helm history app`)");

	snprintf(doc, sizeof(doc), "{'releases':[%s%s", HELM("app", "5", "pending-upgrade", "2024-01-01T00:01:00Z"),
	         body);
	run_rel(doc, "app");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
	assert_string_equal(row("Release", "app")->state, "pending-upgrade");

	snprintf(doc, sizeof(doc), "{'releases':[%s%s", HELM("app", "1", "pending-install", "2024-01-01T00:01:00Z"),
	         body);
	run_rel(doc, "app");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);

	snprintf(doc, sizeof(doc), "{'releases':[%s%s", HELM("app", "2", "uninstalled", "2024-01-01T00:01:00Z"), body);
	run_rel(doc, "app");
	assert_int_equal(R.verdict, VERDICT_FAILED);

	snprintf(doc, sizeof(doc), "{'releases':[%s%s", HELM("app", "2", "unknown", "2024-01-01T00:01:00Z"), body);
	run_rel(doc, "app");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
}

#define OTHER_RECORDS                                                                                                  \
	HELM("other", "3", "failed", "2024-01-01T00:01:00Z")                                                           \
	"," HELM("other", "4", "deployed", "2024-01-01T00:01:00Z") "," HELM(                                           \
	    "shop", "1", "deployed", "2024-01-01T00:01:00Z") ",{'metadata':{'labels':{'owner':'me','name':'app','"     \
	                                                     "version':'9','status':'failed'}}}"

static void t_helm_absent(void **state)
{
	(void)state;
	/* a misspelled release fails at once (a configuration error), naming the releases here */
	run_rel("{" WEB_OK ",'pods':[" WEB_PODS "]}", "app");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_string_equal(row("Release", "app")->state, "NotFound");
	assert_int_equal(row("Release", "app")->status, ROW_FAILED);
	assert_int_equal(R.release_missing, 1);
	assert_int_equal(R.helm_revision, -1);
	assert_non_null(strstr(row("Release", "app")->reason, "no Helm releases here"));
	/* records of another release or not owned by helm do not count */
	run_rel("{'releases':[" OTHER_RECORDS "]," WEB_OK ",'pods':[" WEB_PODS "]}", "app");
	assert_int_equal(R.verdict, VERDICT_FAILED);
	assert_non_null(strstr(row("Release", "app")->reason, "releases here: other, shop;"));
	/* no release name (--no-helm): no row */
	run("{" WEB_OK ",'pods':[" WEB_PODS "]}");
	assert_int_equal(R.nrows, 3);
	assert_int_equal(R.release_missing, 0);
}

static void t_helm_only_is_not_healthy(void **state)
{
	(void)state;
	/* a deployed record with nothing selected: wrong selector or not created yet */
	run_rel("{'releases':[" HELM("app", "1", "deployed", "2024-01-01T00:01:00Z") "]}", "app");
	assert_int_equal(R.verdict, VERDICT_PROGRESSING);
}

/* ---- robustness and output ------------------------------------------------------- */

static void t_wrong_types(void **state)
{
	(void)state;
	run("{'deployments':[1,'x',null,{},{'metadata':7},{'metadata':{'name':5,'generation':'2'},'spec':"
	    "{'replicas':'3'},'status':{'conditions':{}}},{'metadata':{'name':'n'},'spec':{'replicas':-5},"
	    "'status':{'updatedReplicas':1e300,'conditions':[1,{'type':5},{'type':'Progressing','status':true}]}}],"
	    "'pods':[{},{'metadata':{'ownerReferences':'x'}},{'metadata':{'ownerReferences':[{},{'kind':'ReplicaSet'}]}"
	    ","
	    "'status':{'phase':5,'containerStatuses':[null,{'state':{'waiting':{'reason':7}}},{'state':"
	    "{'waiting':{'reason':'CrashLoopBackOff'}}}]}}],'jobs':[{'status':{'conditions':[{'type':'Failed'}]}}],"
	    "'statefulsets':[{}],'daemonsets':[{}],'replicasets':[{'metadata':{'ownerReferences':[]}}],"
	    "'releases':[{},{'metadata':{'labels':{'owner':'helm','name':'app','version':'99999999999999999999'}}}]}");
	assert_true(R.nrows > 5);
	assert_int_equal(R.verdict, VERDICT_FAILED); /* the nameless crash-looping pod */
	assert_string_equal(row("Pod", "(unnamed)")->state, "Pending");
}

static void t_control_chars_removed(void **state)
{
	(void)state;
	run("{'pods':[{'metadata':{'name':'p\\u001b[2J'},'status':{'phase':'Failed','message':'line1\\nline2\\u001b]0;"
	    "x\\u0007'}}]}");
	assert_string_equal(R.rows[0].name, "p [2J");
	assert_null(strchr(R.rows[0].reason, '\n'));
	assert_null(strchr(R.rows[0].reason, '\033'));
	assert_non_null(strstr(R.rows[0].reason, "line1 line2"));
}

static void t_long_strings_truncated(void **state)
{
	char doc[8192], big[3000];
	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(doc, sizeof(doc), "{'pods':[{'metadata':{'name':'%s'},'status':{'phase':'Failed','message':'%s'}}]}",
	         big, big);
	run(doc);
	assert_int_equal(strlen(R.rows[0].name), VERDICT_NAME_LEN - 1);
	assert_true(strlen(R.rows[0].reason) < VERDICT_REASON_LEN);
	assert_true(strlen(R.summary) < VERDICT_REASON_LEN);
}

static void t_many_rows(void **state)
{
	size_t cap = 200 * 200 + 64, i;
	char *doc = malloc(cap), *p = doc;
	(void)state;
	assert_non_null(doc);
	p += snprintf(p, cap, "{'pods':[");
	for (i = 0; i < 100; i++)
		p += snprintf(p, cap - (size_t)(p - doc),
		              "%s{'metadata':{'name':'p%zu'},'status':{'phase':'Succeeded'}}", i ? "," : "", i);
	snprintf(p, cap - (size_t)(p - doc), "]}");
	run(doc);
	free(doc);
	assert_int_equal(R.nrows, 100);
	assert_int_equal(R.verdict, VERDICT_HEALTHY);
	assert_string_equal(R.summary, "100 objects ready");
}

static void t_json_output(void **state)
{
	cJSON *j;
	const cJSON *objs, *o;
	(void)state;
	run_full("{'releases':[" HELM("app", "3", "deployed", "2024-01-01T00:01:00Z") "]," WEB_OK ",'pods':[" POD(
	             "web-2-a", RSOWNER("web-2"), WAITING_STATUS("ErrImagePull", "x")) "]}",
	         "app", NOW_MS, -1, 0);
	j = verdict_result_json(&R);
	assert_non_null(j);
	assert_string_equal(json_str(j, "verdict"), "progressing");
	assert_int_equal(json_int(j, "helm.revision", 0), 3);
	assert_string_equal(json_str(j, "helm.status"), "deployed");
	objs = json_path(j, "objects");
	assert_int_equal(cJSON_GetArraySize(objs), 3);
	o = cJSON_GetArrayItem(objs, 0);
	assert_string_equal(json_str(o, "kind"), "Release");
	assert_null(json_path(o, "ready"));
	o = cJSON_GetArrayItem(objs, 1);
	assert_string_equal(json_str(o, "kind"), "Deployment");
	assert_string_equal(json_str(o, "verdict"), "ok");
	assert_int_equal(json_int(o, "ready", -1), 2);
	o = cJSON_GetArrayItem(objs, 2);
	assert_string_equal(json_str(o, "verdict"), "progressing");
	assert_int_equal(json_int(o, "failsInSeconds", -1), 60);
	cJSON_Delete(j);
	/* a ready count not known yet (a status without it) is absent, not -1 */
	R.rows[1].ready = -1;
	j = verdict_result_json(&R);
	assert_non_null(j);
	o = cJSON_GetArrayItem(json_path(j, "objects"), 1);
	assert_null(json_path(o, "ready"));
	assert_int_equal(json_int(o, "desired", -1), 2);
	cJSON_Delete(j);
	assert_string_equal(verdict_name(VERDICT_FAILED), "failed");
	assert_string_equal(verdict_status_name(ROW_IGNORED), "ignored");
}

static void t_first_seen_full(void **state)
{
	struct verdict_result r;
	struct verdict_row rows[1];
	size_t i;
	(void)state;
	memset(&r, 0, sizeof(r));
	memset(rows, 0, sizeof(rows));
	r.rows = rows;
	r.nrows = 1;
	FS.n = FIRST_SEEN_MAX;
	for (i = 0; i < FIRST_SEEN_MAX; i++) {
		snprintf(FS.e[i].key, sizeof(FS.e[i].key), "k%zu", i);
		FS.e[i].ms = 5;
	}
	snprintf(rows[0].grace_key, sizeof(rows[0].grace_key), "k7");
	first_seen_record(&FS, &r, 9);
	assert_int_equal(FS.n, 1);
	assert_int_equal(first_seen_lookup(&FS, "k7"), 5);
	assert_int_equal(first_seen_lookup(&FS, "k8"), 0);
	assert_int_equal(first_seen_lookup(NULL, "k8"), 0);
}

/* ---- the store ---------------------------------------------------------------- */

static cJSON *Jsq(const char *sq)
{
	size_t n = strlen(sq), i;
	char *s = malloc(n + 1);
	cJSON *j;

	assert_non_null(s);
	for (i = 0; i <= n; i++)
		s[i] = sq[i] == '\'' ? '"' : sq[i];
	j = json_parse(s, n);
	free(s);
	assert_non_null(j);
	return j;
}

static void t_prune_fields(void **state)
{
	cJSON *pod = Jsq("{'metadata':{'name':'p','uid':'u','namespace':'n','generation':1,'resourceVersion':'9',"
	                 "'creationTimestamp':'c','deletionTimestamp':'d','labels':{'a':'b'},'annotations':{"
	                 "'deployment.kubernetes.io/revision':'3','helm.sh/hook':'pre-install','big':'x'},"
	                 "'managedFields':[{'manager':'m'}],'ownerReferences':[{'apiVersion':'v','kind':'ReplicaSet',"
	                 "'name':'r','uid':'ru','controller':true,'blockOwnerDeletion':true}]},"
	                 "'spec':{'restartPolicy':'Never','containers':[{'name':'app','image':'i','env':[]}],"
	                 "'initContainers':[{'name':'s','restartPolicy':'Always','image':'i'}],'volumes':[{}]},"
	                 "'status':{'phase':'Running','reason':'R','message':'M','startTime':'s','hostIP':'h',"
	                 "'conditions':[{'type':'Ready','status':'False','reason':'r','message':'m',"
	                 "'lastTransitionTime':'t','lastProbeTime':null}],"
	                 "'containerStatuses':[{'name':'app','ready':false,'started':true,'restartCount':2,"
	                 "'image':'i','imageID':'x','state':{'waiting':{'reason':'w','message':'wm'}},"
	                 "'lastState':{'terminated':{'exitCode':1,'reason':'Error','message':'tm','finishedAt':'f',"
	                 "'startedAt':'s','containerID':'c'}}}],'initContainerStatuses':'not an array'}}");
	cJSON *want =
	    Jsq("{'metadata':{'name':'p','uid':'u','generation':1,'creationTimestamp':'c',"
	        "'deletionTimestamp':'d','ownerReferences':[{'kind':'ReplicaSet','name':'r','uid':'ru',"
	        "'controller':true}],'annotations':{'deployment.kubernetes.io/revision':'3',"
	        "'helm.sh/hook':'pre-install'},'labels':{}},'spec':{'containers':[{'name':'app'}],"
	        "'initContainers':[{'name':'s','restartPolicy':'Always'}],'restartPolicy':'Never'},"
	        "'status':{'phase':'Running','reason':'R','message':'M','startTime':'s',"
	        "'conditions':[{'type':'Ready','status':'False','reason':'r','message':'m',"
	        "'lastTransitionTime':'t'}],'containerStatuses':[{'name':'app','ready':false,"
	        "'started':true,'restartCount':2,'state':{'waiting':{'reason':'w','message':'wm'}},"
	        "'lastState':{'terminated':{'exitCode':1,'reason':'Error','message':'tm','finishedAt':'f'}}}],"
	        "'initContainerStatuses':'not an array'}}");
	cJSON *got = verdict_prune(VERDICT_PODS, pod), *n;
	(void)state;

	assert_non_null(got);
	assert_true(cJSON_Compare(got, want, 1));
	cJSON_Delete(got);
	n = cJSON_CreateNumber(1);
	got = verdict_prune(VERDICT_PODS, n); /* reads as null, as the number would */
	assert_true(cJSON_IsNull(got));
	cJSON_Delete(got);
	cJSON_Delete(n);
	cJSON_Delete(pod);
	cJSON_Delete(want);
}

struct changes {
	char lines[8][400];
	size_t n;
};

static void record_change(void *ctx, const struct verdict_row *row, int gone)
{
	struct changes *c = ctx;
	if (c->n < 8)
		snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s%s/%s %s", gone ? "gone " : "", row->kind, row->name,
		         gone ? "" : row->state);
}

static void t_store_changes_and_time(void **state)
{
	struct verdict_store *st = verdict_store_new();
	struct verdict_opts o;
	struct verdict_counts cnt;
	struct changes ch;
	cJSON *pull = Jsq(POD("p", OWNER("ReplicaSet", "x"), WAITING_STATUS("ErrImagePull", "i/o timeout")));
	cJSON *ready = Jsq(POD("p", OWNER("ReplicaSet", "x"), READY_STATUS));
	(void)state;

	assert_non_null(st);
	memset(&o, 0, sizeof(o));
	o.now_ms = NOW_MS;
	o.pull_grace_ms = 60000;
	memset(&ch, 0, sizeof(ch));
	assert_int_equal(verdict_store_put(st, VERDICT_PODS, pull), 0);
	assert_int_equal(verdict_store_update(st, &o, record_change, &ch, &cnt), 0);
	assert_int_equal(ch.n, 1);
	assert_string_equal(ch.lines[0], "Pod/p ErrImagePull");
	assert_int_equal(cnt.verdict, VERDICT_PROGRESSING);
	assert_int_equal(cnt.nprogressing, 1);
	/* the grace counts from our first sighting, not the server's startTime */
	assert_int_equal(cnt.recheck_at_ms, NOW_MS + 60000);
	/* no event, still within the grace: nothing changes */
	o.now_ms = NOW_MS + 59000;
	assert_int_equal(verdict_store_update(st, &o, record_change, &ch, &cnt), 0);
	assert_int_equal(ch.n, 1);
	/* no event, the grace is over: time alone fails it */
	o.now_ms = NOW_MS + 60000;
	assert_int_equal(verdict_store_update(st, &o, record_change, &ch, &cnt), 0);
	assert_int_equal(cnt.verdict, VERDICT_FAILED);
	assert_int_equal(cnt.recheck_at_ms, 0);
	assert_int_equal(ch.n, 2);
	/* it heals: one change, the first-seen time goes with the key */
	assert_int_equal(verdict_store_put(st, VERDICT_PODS, ready), 0);
	assert_int_equal(verdict_store_update(st, &o, record_change, &ch, &cnt), 0);
	assert_int_equal(cnt.verdict, VERDICT_HEALTHY);
	assert_int_equal(ch.n, 3);
	assert_string_equal(ch.lines[2], "Pod/p Ready");
	assert_int_equal(st->head[VERDICT_PODS]->first_seen_ms, 0);
	assert_null(st->graced);
	/* the same again: no change reported */
	assert_int_equal(verdict_store_put(st, VERDICT_PODS, ready), 0);
	assert_int_equal(verdict_store_update(st, &o, record_change, &ch, &cnt), 0);
	assert_int_equal(ch.n, 3);
	verdict_store_delete(st, VERDICT_PODS, ready);
	assert_int_equal(verdict_store_count(st, VERDICT_PODS), 0);
	assert_int_equal(verdict_store_update(st, &o, record_change, &ch, &cnt), 0);
	assert_int_equal(ch.n, 4);
	assert_string_equal(ch.lines[3], "gone Pod/p ");
	assert_int_equal(cnt.verdict, VERDICT_PROGRESSING); /* nothing selected */
	assert_int_equal(cnt.nconsidered, 0);
	cJSON_Delete(pull);
	cJSON_Delete(ready);
	verdict_store_free(st);
}

/*
 * A status-only change of a Deployment (its counts as pods turn Ready)
 * re-judges the Deployment alone; a new revision re-judges its pods.
 */
static void t_store_dependents(void **state)
{
	struct verdict_store *st = verdict_store_new();
	struct verdict_opts o;
	struct verdict_counts cnt;
	char buf[2048];
	int i;
	cJSON *d1 = Jsq(DEPLOY("web", "2", 1, 1, 3, 3, 3, 0, ""));
	cJSON *d2 = Jsq(DEPLOY("web", "2", 1, 1, 3, 3, 3, 1, ""));
	cJSON *d3 = Jsq(DEPLOY("web", "3", 2, 2, 3, 0, 3, 0, ""));
	cJSON *d4 = Jsq(DEPLOY("web", "2", 2, 1, 3, 3, 3, 1, ""));
	cJSON *rs = Jsq(RS("web-2", "web", "2"));
	cJSON *crash = Jsq(POD("web-2-x", RSOWNER("web-2"), CRASH_STATUS));
	(void)state;

	assert_non_null(st);
	memset(&o, 0, sizeof(o));
	o.now_ms = NOW_MS;
	o.pull_grace_ms = -1;
	assert_int_equal(verdict_store_put(st, VERDICT_DEPLOYMENTS, d1), 0);
	assert_int_equal(verdict_store_put(st, VERDICT_REPLICASETS, rs), 0);
	for (i = 0; i < 3; i++) {
		cJSON *p;
		snprintf(buf, sizeof(buf), POD("web-2-%c", RSOWNER("web-2"), READY_STATUS), 'a' + i, 'a' + i);
		p = Jsq(buf);
		assert_int_equal(verdict_store_put(st, VERDICT_PODS, p), 0);
		cJSON_Delete(p);
	}
	assert_int_equal(verdict_store_update(st, &o, NULL, NULL, &cnt), 0);
	assert_int_equal(cnt.nconsidered, 4);
	assert_int_equal(verdict_store_put(st, VERDICT_DEPLOYMENTS, d2), 0);
	assert_non_null(st->dhead[VERDICT_DEPLOYMENTS]);
	assert_null(st->dhead[VERDICT_PODS]);
	assert_int_equal(verdict_store_update(st, &o, NULL, NULL, &cnt), 0);
	assert_int_equal(verdict_store_put(st, VERDICT_PODS, crash), 0);
	assert_int_equal(verdict_store_update(st, &o, NULL, NULL, &cnt), 0);
	assert_int_equal(cnt.verdict, VERDICT_FAILED);
	/* a new generation not yet observed: the crash loop may be of the old spec */
	assert_int_equal(verdict_store_put(st, VERDICT_DEPLOYMENTS, d4), 0);
	assert_int_equal(verdict_store_update(st, &o, NULL, NULL, &cnt), 0);
	assert_int_equal(cnt.verdict, VERDICT_PROGRESSING);
	assert_int_equal(verdict_store_put(st, VERDICT_DEPLOYMENTS, d3), 0);
	assert_non_null(st->dhead[VERDICT_PODS]);
	assert_int_equal(verdict_store_update(st, &o, NULL, NULL, &cnt), 0);
	/* revision 3 is current: the pods of revision 2 no longer count */
	assert_int_equal(cnt.nconsidered, 1);
	/* the Deployment goes: its newest ReplicaSet (revision 2) is current again */
	verdict_store_delete(st, VERDICT_DEPLOYMENTS, d3);
	assert_int_equal(verdict_store_update(st, &o, NULL, NULL, &cnt), 0);
	assert_int_equal(cnt.nconsidered, 4);
	assert_int_equal(cnt.verdict, VERDICT_FAILED);
	cJSON_Delete(crash);
	cJSON_Delete(d4);
	cJSON_Delete(d1);
	cJSON_Delete(d2);
	cJSON_Delete(d3);
	cJSON_Delete(rs);
	verdict_store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(t_empty, teardown),
	    cmocka_unit_test_teardown(t_deploy_healthy, teardown),
	    cmocka_unit_test_teardown(t_deploy_generation_pending, teardown),
	    cmocka_unit_test_teardown(t_deploy_rollout_steps, teardown),
	    cmocka_unit_test_teardown(t_deploy_zero_replicas, teardown),
	    cmocka_unit_test_teardown(t_deploy_default_replicas, teardown),
	    cmocka_unit_test_teardown(t_deploy_pde_current, teardown),
	    cmocka_unit_test_teardown(t_deploy_pde_stale, teardown),
	    cmocka_unit_test_teardown(t_deploy_progressing_true_not_failed, teardown),
	    cmocka_unit_test_teardown(t_deploy_paused, teardown),
	    cmocka_unit_test_teardown(t_deploy_replica_failure, teardown),
	    cmocka_unit_test_teardown(t_old_pods_terminating, teardown),
	    cmocka_unit_test_teardown(t_superseded_pods_ignored, teardown),
	    cmocka_unit_test_teardown(t_superseded_without_deployment, teardown),
	    cmocka_unit_test_teardown(t_crashloop_fails, teardown),
	    cmocka_unit_test_teardown(t_crashloop_deferred_until_observed, teardown),
	    cmocka_unit_test_teardown(t_pods_ready_late, teardown),
	    cmocka_unit_test_teardown(t_phase_running_is_not_ready, teardown),
	    cmocka_unit_test_teardown(t_container_creating, teardown),
	    cmocka_unit_test_teardown(t_image_pull_within_grace, teardown),
	    cmocka_unit_test_teardown(t_image_pull_past_grace, teardown),
	    cmocka_unit_test_teardown(t_image_pull_first_seen_table, teardown),
	    cmocka_unit_test_teardown(t_image_pull_future_server_time, teardown),
	    cmocka_unit_test_teardown(t_invalid_image_name_fails_at_once, teardown),
	    cmocka_unit_test_teardown(t_create_container_config_error, teardown),
	    cmocka_unit_test_teardown(t_init_failed, teardown),
	    cmocka_unit_test_teardown(t_init_crashloop, teardown),
	    cmocka_unit_test_teardown(t_init_waiting, teardown),
	    cmocka_unit_test_teardown(t_init_image_pull, teardown),
	    cmocka_unit_test_teardown(t_sidecar, teardown),
	    cmocka_unit_test_teardown(t_evicted_replaced, teardown),
	    cmocka_unit_test_teardown(t_unowned_failed, teardown),
	    cmocka_unit_test_teardown(t_unowned_succeeded, teardown),
	    cmocka_unit_test_teardown(t_never_restart_container_exit, teardown),
	    cmocka_unit_test_teardown(t_unschedulable, teardown),
	    cmocka_unit_test_teardown(t_job_complete, teardown),
	    cmocka_unit_test_teardown(t_job_failed, teardown),
	    cmocka_unit_test_teardown(t_job_failed_then_succeeded, teardown),
	    cmocka_unit_test_teardown(t_job_running_with_failed_pod, teardown),
	    cmocka_unit_test_teardown(t_job_pod_image_pull_fails, teardown),
	    cmocka_unit_test_teardown(t_job_suspended_cronjob, teardown),
	    cmocka_unit_test_teardown(t_job_stale_hook, teardown),
	    cmocka_unit_test_teardown(t_job_of_earlier_revision, teardown),
	    cmocka_unit_test_teardown(t_job_named_by_gate, teardown),
	    cmocka_unit_test_teardown(t_min_ready_window, teardown),
	    cmocka_unit_test_teardown(t_statefulset, teardown),
	    cmocka_unit_test_teardown(t_statefulset_partition, teardown),
	    cmocka_unit_test_teardown(t_statefulset_available, teardown),
	    cmocka_unit_test_teardown(t_daemonset, teardown),
	    cmocka_unit_test_teardown(t_bare_replicaset, teardown),
	    cmocka_unit_test_teardown(t_helm_states, teardown),
	    cmocka_unit_test_teardown(t_helm_absent, teardown),
	    cmocka_unit_test_teardown(t_helm_only_is_not_healthy, teardown),
	    cmocka_unit_test_teardown(t_wrong_types, teardown),
	    cmocka_unit_test_teardown(t_control_chars_removed, teardown),
	    cmocka_unit_test_teardown(t_long_strings_truncated, teardown),
	    cmocka_unit_test_teardown(t_many_rows, teardown),
	    cmocka_unit_test_teardown(t_json_output, teardown),
	    cmocka_unit_test_teardown(t_first_seen_full, teardown),
	    cmocka_unit_test_teardown(t_prune_fields, teardown),
	    cmocka_unit_test_teardown(t_store_changes_and_time, teardown),
	    cmocka_unit_test_teardown(t_store_dependents, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
