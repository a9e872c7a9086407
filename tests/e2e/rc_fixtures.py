"""Object builders for the release-check black-box tests (kubesim objects with status).

Every builder returns a full object for KubeSim.apply(); labels carry
app.kubernetes.io/instance=<release> so the default selector finds them.
"""

import base64
import datetime

INSTANCE = "app.kubernetes.io/instance"


def ts(seconds_ago=0):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(ns, name, rel, owner=None, **extra):
    md = {"name": name, "namespace": ns, "labels": {INSTANCE: rel}}
    if owner is not None:
        md["ownerReferences"] = [{"apiVersion": owner.get("apiVersion", "v1"), "kind": owner["kind"],
                                  "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                  "controller": True}]
    md.update(extra)
    return md


def deployment(ns, name, rel, replicas=2, updated=None, available=None, total=None, revision="1",
               observed=1, conditions=None):
    updated = replicas if updated is None else updated
    available = updated if available is None else available
    total = updated if total is None else total
    status = {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
              "readyReplicas": available, "availableReplicas": available}
    if conditions:
        status["conditions"] = conditions
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            # kubesim sets generation 1 on create and keeps an explicit one on update
            "metadata": meta(ns, name, rel, annotations={"deployment.kubernetes.io/revision": revision},
                             generation=max(observed, 1)),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {INSTANCE: rel}},
                     "template": {"metadata": {"labels": {INSTANCE: rel}},
                                  "spec": {"containers": [{"name": "app", "image": "app:" + revision}]}}},
            "status": status}


def replicaset(ns, name, rel, deploy, revision, replicas=0):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": meta(ns, name, rel, owner=dict(deploy, apiVersion="apps/v1"),
                             annotations={"deployment.kubernetes.io/revision": revision}),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {INSTANCE: rel}},
                     "template": {"metadata": {"labels": {INSTANCE: rel}},
                                  "spec": {"containers": [{"name": "app", "image": "app"}]}}},
            "status": {"replicas": replicas}}


def pod(ns, name, rel, owner=None, status=None, containers=("app",), init=(), restart="Always", **md_extra):
    spec = {"restartPolicy": restart, "containers": [{"name": c, "image": "img"} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c, "image": "img"} for c in init]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(ns, name, rel, owner=owner, **md_extra),
            "spec": spec, "status": status if status is not None else ready_status()}


def ready_status(containers=("app",)):
    return {"phase": "Running", "startTime": ts(60),
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                           {"type": "Ready", "status": "True", "lastTransitionTime": ts(30)}],
            "containerStatuses": [{"name": c, "ready": True, "restartCount": 0,
                                   "state": {"running": {"startedAt": ts(30)}}} for c in containers]}


def notready_status():
    return {"phase": "Running", "startTime": ts(5),
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ts(5)}],
            "containerStatuses": [{"name": "app", "ready": False, "restartCount": 0,
                                   "state": {"running": {"startedAt": ts(5)}}}]}


def crash_status(exit_code=1, restarts=4):
    return {"phase": "Running", "startTime": ts(120),
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ts(120)}],
            "containerStatuses": [{"name": "app", "ready": False, "restartCount": restarts,
                                   "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                         "message": "back-off 1m20s restarting failed container"}},
                                   "lastState": {"terminated": {"exitCode": exit_code, "reason": "Error",
                                                                "finishedAt": ts(10)}}}]}


def waiting_status(reason, message, since=0):
    return {"phase": "Pending", "startTime": ts(since),
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ts(since)}],
            "containerStatuses": [{"name": "app", "ready": False, "restartCount": 0,
                                   "state": {"waiting": {"reason": reason, "message": message}}}]}


# The interim condition the Job controller writes before the terminal one
# (since 1.31; a real API server refuses Complete or Failed without it)
_INTERIM = {"Complete": "SuccessCriteriaMet", "Failed": "FailureTarget"}


def job(ns, name, rel, conditions=(), succeeded=0, failed=0, active=0):
    st = {"succeeded": succeeded, "failed": failed, "active": active}
    if conditions:
        st["conditions"] = [{"type": ct, "status": "True", "reason": r or "Reached", "message": m}
                            for t, r, m in conditions for ct in (_INTERIM.get(t), t) if ct]
        types = {t for t, _, _ in conditions}
        if types & set(_INTERIM):
            st["startTime"] = ts(60)         # a finished Job has a startTime,
        if "Complete" in types:
            st["completionTime"] = ts(1)     # a complete one its completionTime
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(ns, name, rel),
            "spec": {"backoffLimit": 2, "completions": 1,
                     "template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "migrate", "image": "app"}]}}},
            "status": st}


def helm_secret(ns, rel, version, status):
    payload = base64.b64encode(b"H4sI-not-really-a-release").decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{rel}.v{version}", "namespace": ns,
                         "labels": {"owner": "helm", "name": rel, "version": str(version), "status": status}},
            "data": {"release": payload}}


def event(ns, name, kind, obj, etype, reason, message, count=1, seconds_ago=5):
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"kind": kind, "name": obj, "namespace": ns},
            "type": etype, "reason": reason, "message": message, "count": count,
            "firstTimestamp": ts(seconds_ago + 60), "lastTimestamp": ts(seconds_ago)}


def statefulset(ns, name, rel, replicas=3, ready=3, updated=3, partition=0, current="db-a", update="db-b"):
    strategy = {"type": "RollingUpdate"}
    if partition:
        strategy["rollingUpdate"] = {"partition": partition}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(ns, name, rel),
            "spec": {"replicas": replicas, "serviceName": name, "updateStrategy": strategy,
                     "selector": {"matchLabels": {INSTANCE: rel}},
                     "template": {"metadata": {"labels": {INSTANCE: rel}},
                                  "spec": {"containers": [{"name": "app", "image": "db"}]}}},
            "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready,
                       "availableReplicas": ready, "updatedReplicas": updated, "currentReplicas": replicas - updated,
                       "currentRevision": current, "updateRevision": update}}
