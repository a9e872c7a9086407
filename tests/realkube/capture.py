#!/usr/bin/env python3
"""Capture release-check's conformance table from the real control plane.

    python3 tests/realkube/capture.py [--out DIR] [--only CASE,...] [--list]

Starts RealKube (kube-apiserver, kube-controller-manager, kube-scheduler
v1.37.2, etcd, the node agent), drives real objects through the states a
release gate must judge, and writes each state as DIR/<case>.json (default
tests/unit/captured/) with the verdict Kubernetes semantics say it must get,
plus DIR/INDEX (the case names, one a line). tests/unit/test_rc_captured.c
feeds every file to release-check's pure evaluator; tests/realkube/
test_capture.py re-captures into a temporary directory and runs that test on
the fresh files, so the table stays true for the pinned Kubernetes version.

Every case runs in its own namespace, all at once. Once a second the driver
lists Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and Pods
(cluster-wide, as release-check lists them per namespace); a case is a
generator that yields the state it waits for (a predicate on its namespace's
snapshot), acts when it is reached (a template change, a pause) and finally
returns its judgements. The snapshot that satisfied the last predicate is
the one written, so the file always holds the state its verdict is about.

What is changed from what the API server returned (nothing a rule may read):
metadata.managedFields, resourceVersion and selfLink are dropped; every uid
becomes "uid-<kind>-<name>" (also inside messages that quote it) and every
RFC 3339 timestamp is shifted so the case starts at 2024-01-01T00:00:00Z
(durations and order kept), so a re-capture differs only where the cluster
did something different. "capturedAtMs" is the snapshot's moment on that
shifted clock: the unit test judges at it.

Who wrote which status is recorded per case ("statusFrom"): workload and Job
status come from the real controllers, PodScheduled=False from the real
scheduler; a scheduled pod's container states from the node agent
(tests/realkube/README.md "Capture" lists what a real kubelet would do
differently and the cases left out for that reason).
"""

import argparse
import calendar
import json
import os
import re
import sys
import time
import urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from realkube import K8S_VERSION, RealKube  # noqa: E402

OUT = os.path.join(ROOT, "tests", "unit", "captured")
BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))
SLOW = float(os.environ.get("MG_SLOW", "1"))
BASE = calendar.timegm((2024, 1, 1, 0, 0, 0))     # the shifted start of every case
KEYS = (("deployments", "/apis/apps/v1/deployments"), ("replicasets", "/apis/apps/v1/replicasets"),
        ("statefulsets", "/apis/apps/v1/statefulsets"), ("daemonsets", "/apis/apps/v1/daemonsets"),
        ("jobs", "/apis/batch/v1/jobs"), ("pods", "/api/v1/pods"))
PREFIX = "cap-"
CASE_TIMEOUT = 150

CONTROLLERS = "kube-controller-manager " + K8S_VERSION
SCHEDULER = "kube-scheduler " + K8S_VERSION
NODE = "node agent (tests/realkube/nodeagent.py: kubesim's kubelet model)"


# ---------------------------------------------------------------- objects

def sim(name="app", **behaviour):
    """A container the node agent simulates from KUBESIM_* env."""
    env = [{"name": "KUBESIM_" + k.upper(), "value": str(v)} for k, v in behaviour.items()]
    return {"name": name, "image": "registry.example/app:1", "env": env}


def pod_spec(*containers, init=(), **extra):
    s = {"containers": list(containers), "terminationGracePeriodSeconds": 1}
    if init:
        s["initContainers"] = list(init)
    s.update(extra)
    return s


def workload(kind, name, ns, spec, replicas=None, **more):
    s = {"selector": {"matchLabels": {"app": name}},
         "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}
    if replicas is not None:
        s["replicas"] = replicas
    s.update(more)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns,
                                                                 "labels": {"app": name}}, "spec": s}


def job(name, ns, container, backoff=0, **more):
    s = {"template": {"spec": pod_spec(container, restartPolicy="Never")}}
    if backoff is not None:
        s["backoffLimit"] = backoff
    s.update(more)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns,
                                                                   "labels": {"app": name}}, "spec": s}


def bare_pod(name, ns, container, policy="Never"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": pod_spec(container, restartPolicy=policy)}


# ---------------------------------------------------------------- reading a snapshot

def cond(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return {}


def one(snap, key, name):
    return next((o for o in snap[key] if o["metadata"]["name"] == name), None)


def observed(obj):
    return obj is not None and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"].get("generation")


def pods_of(snap, prefix):
    return [p for p in snap["pods"] if p["metadata"]["name"].startswith(prefix)]


def ready(p):
    return cond(p, "Ready").get("status") == "True"


def waiting(p, reason, init=False):
    key = "initContainerStatuses" if init else "containerStatuses"
    return any(((c.get("state") or {}).get("waiting") or {}).get("reason") == reason
               for c in (p.get("status") or {}).get(key) or [])


def running_unready(p):
    cs = (p.get("status") or {}).get("containerStatuses") or []
    return bool(cs) and all("running" in (c.get("state") or {}) for c in cs) and not ready(p)


def deployment_complete(snap, name, n):
    d = one(snap, "deployments", name)
    st = (d or {}).get("status") or {}
    return observed(d) and all(st.get(k) == n for k in ("replicas", "updatedReplicas", "readyReplicas",
                                                        "availableReplicas")) \
        and cond(d, "Progressing").get("reason") == "NewReplicaSetAvailable" \
        and len([p for p in pods_of(snap, name + "-") if ready(p)]) == n \
        and len(pods_of(snap, name + "-")) == n


def sts_complete(snap, name, n):
    s = one(snap, "statefulsets", name)
    st = (s or {}).get("status") or {}
    return observed(s) and all(st.get(k) == n for k in ("replicas", "readyReplicas", "availableReplicas",
                                                        "updatedReplicas", "currentReplicas")) \
        and st.get("currentRevision") == st.get("updateRevision")


def ds_complete(snap, name, n):
    d = one(snap, "daemonsets", name)
    st = (d or {}).get("status") or {}
    return observed(d) and all(st.get(k) == n for k in ("desiredNumberScheduled", "currentNumberScheduled",
                                                        "updatedNumberScheduled", "numberReady",
                                                        "numberAvailable"))


def job_done(snap, name, ctype, reason=None):
    j = one(snap, "jobs", name)
    c = cond(j or {}, ctype)
    return j is not None and c.get("status") == "True" and (reason is None or c.get("reason") == reason)


def row(kind, name, status):
    return {"kind": kind, "name": name, "status": status}


def judged(verdict, *rows, seen=0):
    """One judgement: the verdict (and rows) when release-check first saw the
    state `seen` seconds before the capture."""
    return {"firstSeenSecondsAgo": seen, "verdict": verdict, "rows": list(rows)}


# ---------------------------------------------------------------- the cases
#
# Each case: a generator function (rk, ns) that creates its objects, yields
# (what, predicate) for each state it waits for (it is sent the snapshot that
# satisfied it) and returns the judgements of the last snapshot. The
# docstring is the Kubernetes semantics the verdict rests on (API reference:
# DeploymentStatus, StatefulSetStatus, DaemonSetStatus, JobStatus,
# ContainerStateWaiting, PodCondition; release-check(1) for the choices).

CASES = {}


def case(status_from):
    def reg(fn):
        CASES[fn.__name__.replace("_", "-")] = (fn, status_from)
        return fn
    return reg


def update(rk, obj_path, change):
    """GET, change, PUT; again on a 409 (the controllers write too)."""
    for _ in range(20):
        cur = rk.json("GET", obj_path)
        change(cur)
        code, _, body = rk.api("PUT", obj_path, cur)
        if code == 200:
            return json.loads(body)
        if code != 409:
            raise RuntimeError(f"PUT {obj_path}: {code} {body[:300]!r}")
    raise RuntimeError(f"PUT {obj_path}: conflicts")


def set_env(obj, container_index, **behaviour):
    c = obj["spec"]["template"]["spec"]["containers"][container_index]
    c["env"] = [{"name": "KUBESIM_" + k.upper(), "value": str(v)} for k, v in behaviour.items()]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def deployment_complete_rollout(rk, ns):
    """Every count of DeploymentStatus (replicas, updatedReplicas,
    readyReplicas, availableReplicas) equals spec.replicas for the observed
    generation, Available=True and Progressing=True reason
    NewReplicaSetAvailable: the rollout is complete, the pods are Ready."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim()), replicas=2))
    snap = yield "rollout complete", lambda s: deployment_complete(s, "web", 2)
    return [judged("healthy", row("Deployment", "web", "ok"),
                   *(row("Pod", p["metadata"]["name"], "ok") for p in pods_of(snap, "web-")))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def deployment_mid_rollout(rk, ns):
    """A template change (generation 2, observed): the controller surged one
    pod of the new ReplicaSet (maxSurge 25% of 2 rounds up to 1,
    maxUnavailable rounds down to 0), which runs but is not Ready:
    updatedReplicas 1 < replicas. Not rolled out: progressing, and the old
    ReplicaSet's pods (superseded) do not make it healthy."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim()), replicas=2))
    yield "first rollout complete", lambda s: deployment_complete(s, "web", 2)
    update(rk, f"/apis/apps/v1/namespaces/{ns}/deployments/web", lambda d: set_env(d, 0, never_ready=1))

    def mid(s):
        d = one(s, "deployments", "web")
        new = [p for p in pods_of(s, "web-") if any(e.get("name") == "KUBESIM_NEVER_READY"
                                                     for e in p["spec"]["containers"][0].get("env") or [])]
        return observed(d) and d["metadata"]["generation"] == 2 and d["status"].get("updatedReplicas") == 1 \
            and len(new) == 1 and running_unready(new[0])
    snap = yield "new ReplicaSet's pod running, not Ready", mid
    new = next(p for p in pods_of(snap, "web-") if not ready(p))
    return [judged("progressing", row("Deployment", "web", "progressing"), row("Pod", new["metadata"]["name"],
                                                                               "progressing"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def deployment_progress_deadline_exceeded(rk, ns):
    """Progressing=False with reason ProgressDeadlineExceeded, written by the
    controller for the observed generation after progressDeadlineSeconds
    without progress (the pod never becomes Ready): the API reference says
    the rollout failed to progress; a gate fails."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim(never_ready=1)), replicas=1,
                           progressDeadlineSeconds=2))
    yield "ProgressDeadlineExceeded", lambda s: observed(one(s, "deployments", "web")) and \
        cond(one(s, "deployments", "web"), "Progressing").get("reason") == "ProgressDeadlineExceeded" and \
        all(running_unready(p) for p in pods_of(s, "web-"))
    return [judged("failed", row("Deployment", "web", "failed"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def deployment_paused(rk, ns):
    """spec.paused with a changed template: the controller observes the new
    generation, sets Progressing=Unknown reason DeploymentPaused and creates
    no new ReplicaSet; the change will not roll out until resumed.
    release-check(1): a paused Deployment is skipped with a note; the pods of
    its current ReplicaSet still count (Ready here)."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim()), replicas=1))
    yield "rollout complete", lambda s: deployment_complete(s, "web", 1)

    def pause(d):
        d["spec"]["paused"] = True
        set_env(d, 0, log="v2")
    update(rk, f"/apis/apps/v1/namespaces/{ns}/deployments/web", pause)
    snap = yield "DeploymentPaused observed", lambda s: observed(one(s, "deployments", "web")) and \
        one(s, "deployments", "web")["metadata"]["generation"] == 2 and \
        cond(one(s, "deployments", "web"), "Progressing").get("reason") == "DeploymentPaused" and \
        len(s["replicasets"]) == 1 and all(ready(p) for p in pods_of(s, "web-"))
    return [judged("healthy", row("Deployment", "web", "ignored"),
                   *(row("Pod", p["metadata"]["name"], "ok") for p in pods_of(snap, "web-")))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def deployment_min_ready_seconds(rk, ns):
    """minReadySeconds 3600: both pods are Ready (readyReplicas 2) but none
    has been Ready that long, so availableReplicas is 0 and Available=False
    (MinimumReplicasUnavailable). Ready is not available: progressing."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim()), replicas=2, minReadySeconds=3600,
                           progressDeadlineSeconds=7200))
    yield "Ready, not available", lambda s: observed(one(s, "deployments", "web")) and \
        one(s, "deployments", "web")["status"].get("readyReplicas") == 2 and \
        one(s, "deployments", "web")["status"].get("updatedReplicas") == 2 and \
        not one(s, "deployments", "web")["status"].get("availableReplicas") and \
        cond(one(s, "deployments", "web"), "Available").get("status") == "False"
    return [judged("progressing", row("Deployment", "web", "progressing"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def deployment_replica_failure(rk, ns):
    """A ResourceQuota of 1 pod: the ReplicaSet controller's second create is
    refused (ReplicaFailure=True reason FailedCreate, copied to the
    Deployment); one pod runs. Counts short of spec.replicas: not healthy.
    The quota may be raised, so it is waited for (release-check(1):
    ReplicaFailure is reported, progressing) until the progress deadline."""
    q = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "pods", "namespace": ns},
         "spec": {"hard": {"pods": "1"}}}
    rk.json("POST", f"/api/v1/namespaces/{ns}/resourcequotas", q, ok=(201,))
    yield "quota status computed", lambda s: (rk.json("GET", f"/api/v1/namespaces/{ns}/resourcequotas/pods")
                                              .get("status") or {}).get("hard")
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim()), replicas=2))
    yield "ReplicaFailure", lambda s: observed(one(s, "deployments", "web")) and \
        cond(one(s, "deployments", "web"), "ReplicaFailure").get("status") == "True" and \
        one(s, "deployments", "web")["status"].get("readyReplicas") == 1
    return [judged("progressing", row("Deployment", "web", "progressing"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def deployment_old_pods_terminating(rk, ns):
    """A template change whose new pods are Ready at once while the old
    pods take their termination grace (8 s, SIGTERM ignored): the
    controller reports the rollout complete (updated, ready, available 2,
    Progressing reason NewReplicaSetAvailable, the old ReplicaSet scaled to
    0, its pods only in terminatingReplicas) while the old pods still exist
    with a deletionTimestamp. Terminating pods are on their way out (removed
    from endpoints): healthy, the old pods ignored."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim(ignore_sigterm=1), terminationGracePeriodSeconds=8),
                           replicas=2))
    yield "first rollout complete", lambda s: deployment_complete(s, "web", 2)

    def change(d):
        set_env(d, 0, log="v2")
        d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    update(rk, f"/apis/apps/v1/namespaces/{ns}/deployments/web", change)

    def done_but_terminating(s):
        d = one(s, "deployments", "web")
        st = (d or {}).get("status") or {}
        old = [p for p in pods_of(s, "web-") if p["metadata"].get("deletionTimestamp")]
        new = [p for p in pods_of(s, "web-") if not p["metadata"].get("deletionTimestamp")]
        return observed(d) and d["metadata"]["generation"] == 2 and \
            all(st.get(k) == 2 for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")) \
            and cond(d, "Progressing").get("reason") == "NewReplicaSetAvailable" and len(old) == 2 and \
            len(new) == 2 and all(ready(p) for p in new)
    snap = yield "rollout complete, old pods terminating", done_but_terminating
    return [judged("healthy", row("Deployment", "web", "ok"),
                   *(row("Pod", p["metadata"]["name"], "ignored") for p in pods_of(snap, "web-")
                     if p["metadata"].get("deletionTimestamp")))]


@case({"Deployment": CONTROLLERS})
def deployment_scaled_to_zero(rk, ns):
    """spec.replicas 0, observed: the API omits the zero counts; nothing to
    roll out (Available=True). Healthy."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim()), replicas=0))
    yield "observed", lambda s: observed(one(s, "deployments", "web")) and \
        cond(one(s, "deployments", "web"), "Available").get("status") == "True"
    return [judged("healthy", row("Deployment", "web", "ok"))]


@case({"StatefulSet": CONTROLLERS, "Pod": NODE})
def statefulset_complete(rk, ns):
    """readyReplicas, availableReplicas, updatedReplicas and currentReplicas
    equal spec.replicas and currentRevision == updateRevision for the
    observed generation: rolled out. Healthy."""
    rk.put_object(workload("StatefulSet", "db", ns, pod_spec(sim()), replicas=2, serviceName="db",
                           podManagementPolicy="Parallel"))
    yield "rolled out", lambda s: sts_complete(s, "db", 2)
    return [judged("healthy", row("StatefulSet", "db", "ok"))]


@case({"StatefulSet": CONTROLLERS, "Pod": NODE})
def statefulset_min_ready_seconds(rk, ns):
    """minReadySeconds 3600: both pods Ready (readyReplicas 2), none
    available yet (availableReplicas 0). Available is what the API defines
    as serving for minReadySeconds: progressing."""
    rk.put_object(workload("StatefulSet", "db", ns, pod_spec(sim()), replicas=2, serviceName="db",
                           podManagementPolicy="Parallel", minReadySeconds=3600))
    yield "Ready, not available", lambda s: observed(one(s, "statefulsets", "db")) and \
        one(s, "statefulsets", "db")["status"].get("readyReplicas") == 2 and \
        not one(s, "statefulsets", "db")["status"].get("availableReplicas")
    return [judged("progressing", row("StatefulSet", "db", "progressing"))]


def sts_changed(rk, ns, replicas, strategy=None, **env):
    """The start of the StatefulSet cases: db rolled out, then its template
    changed (the container's env), which makes a new updateRevision
    (`yield from` it)."""
    more = {"updateStrategy": strategy} if strategy else {}
    rk.put_object(workload("StatefulSet", "db", ns, pod_spec(sim()), replicas=replicas, serviceName="db",
                           podManagementPolicy="Parallel", **more))
    yield "rolled out", lambda s: sts_complete(s, "db", replicas)
    update(rk, f"/apis/apps/v1/namespaces/{ns}/statefulsets/db", lambda o: set_env(o, 0, **env))


def sts_held_back(snap, n):
    """The changed template observed, every pod Ready on the old revision:
    no pod updated, so no updatedReplicas at all (the API omits the 0)."""
    st = one(snap, "statefulsets", "db")
    status = (st or {}).get("status") or {}
    return observed(st) and st["metadata"]["generation"] == 2 and status.get("readyReplicas") == n and \
        status.get("currentRevision") != status.get("updateRevision") and "updatedReplicas" not in status


@case({"StatefulSet": CONTROLLERS, "Pod": NODE})
def statefulset_partition(rk, ns):
    """RollingUpdate with partition 2 of 3 after a template change: the
    controller updates ordinal 2 only (updatedReplicas 1) and keeps
    currentRevision != updateRevision on purpose; ordinals 0-1 stay on the
    old revision until the partition is lowered. What was asked for is done:
    healthy (release-check(1): only ordinals >= partition must be updated)."""
    yield from sts_changed(rk, ns, 3, {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, log="v2")

    def partial(s):
        st = one(s, "statefulsets", "db")
        if not observed(st) or st["metadata"]["generation"] != 2:
            return False
        status = st["status"]
        p2 = one(s, "pods", "db-2")
        return status.get("updatedReplicas") == 1 and status.get("readyReplicas") == 3 and \
            status.get("availableReplicas") == 3 and status.get("currentRevision") != status.get("updateRevision") \
            and p2 is not None and ready(p2) and \
            p2["metadata"]["labels"].get("controller-revision-hash") == status.get("updateRevision")
    yield "ordinal 2 updated and Ready", partial
    return [judged("healthy", row("StatefulSet", "db", "ok"))]


@case({"StatefulSet": CONTROLLERS, "Pod": NODE})
def statefulset_partition_staged(rk, ns):
    """A staged rollout: the partition (2) is at the replica count (2), so
    after a template change the controller records the new updateRevision
    and updates no pod; updatedReplicas is 0, which the API omits (the
    status has no updatedReplicas at all). Nothing was asked to be updated
    and the pods are Ready: healthy (release-check(1); it waited out the
    timeout while a missing count was always unknown)."""
    yield from sts_changed(rk, ns, 2, {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, log="v2")
    yield "new revision recorded, no pod updated, updatedReplicas omitted", lambda s: sts_held_back(s, 2)
    return [judged("healthy", row("StatefulSet", "db", "ok"))]


@case({"StatefulSet": CONTROLLERS, "Pod": NODE})
def statefulset_ondelete(rk, ns):
    """updateStrategy OnDelete after a template change: the controller
    records the new updateRevision but replaces no pod (updatedReplicas 0)
    until someone deletes one. It will never roll out by itself; its pods
    are Ready: healthy with a note (release-check(1))."""
    yield from sts_changed(rk, ns, 2, {"type": "OnDelete"}, log="v2")
    yield "new revision recorded, no pod replaced", lambda s: sts_held_back(s, 2)
    return [judged("healthy", row("StatefulSet", "db", "ok"))]


@case({"StatefulSet": CONTROLLERS, "Pod": NODE})
def statefulset_rolling(rk, ns):
    """RollingUpdate after a template change whose pod never becomes Ready:
    the controller replaced the highest ordinal (db-1, updateRevision,
    running, not Ready) and waits for it before the next:
    currentRevision != updateRevision, readyReplicas 1. Progressing."""
    yield from sts_changed(rk, ns, 2, never_ready=1)

    def rolling(s):
        st = one(s, "statefulsets", "db")
        status = (st or {}).get("status") or {}
        p1 = one(s, "pods", "db-1")
        return observed(st) and st["metadata"]["generation"] == 2 and p1 is not None and \
            p1["metadata"]["labels"].get("controller-revision-hash") == status.get("updateRevision") and \
            running_unready(p1) and status.get("currentRevision") != status.get("updateRevision")
    yield "db-1 on the new revision, not Ready", rolling
    return [judged("progressing", row("StatefulSet", "db", "progressing"), row("Pod", "db-1", "progressing"))]


@case({"DaemonSet": CONTROLLERS, "Pod": NODE})
def daemonset_complete(rk, ns):
    """desiredNumberScheduled 1 (one node), currentNumberScheduled,
    updatedNumberScheduled, numberReady and numberAvailable 1, observed:
    rolled out. Healthy."""
    rk.put_object(workload("DaemonSet", "agent", ns, pod_spec(sim())))
    yield "rolled out", lambda s: ds_complete(s, "agent", 1)
    return [judged("healthy", row("DaemonSet", "agent", "ok"))]


@case({"DaemonSet": CONTROLLERS, "Pod": NODE})
def daemonset_rolling(rk, ns):
    """RollingUpdate (maxUnavailable 1) after a template change whose pod
    never becomes Ready: the old pod was replaced, the new one runs not
    Ready: updatedNumberScheduled 1, numberReady 0, numberUnavailable 1.
    Progressing."""
    rk.put_object(workload("DaemonSet", "agent", ns, pod_spec(sim())))
    yield "rolled out", lambda s: ds_complete(s, "agent", 1)
    update(rk, f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent", lambda o: set_env(o, 0, never_ready=1))

    def rolling(s):
        d = one(s, "daemonsets", "agent")
        st = (d or {}).get("status") or {}
        return observed(d) and d["metadata"]["generation"] == 2 and st.get("updatedNumberScheduled") == 1 and \
            not st.get("numberReady") and len(pods_of(s, "agent-")) == 1 and running_unready(pods_of(s, "agent-")[0])
    snap = yield "new pod running, not Ready", rolling
    return [judged("progressing", row("DaemonSet", "agent", "progressing"),
                   row("Pod", pods_of(snap, "agent-")[0]["metadata"]["name"], "progressing"))]


@case({"DaemonSet": CONTROLLERS})
def daemonset_no_matching_node(rk, ns):
    """A nodeSelector no node matches: desiredNumberScheduled 0 (present: the
    DaemonSetStatus counts are required fields), observed. Nothing to run
    anywhere is rolled out: healthy."""
    rk.put_object(workload("DaemonSet", "agent", ns, pod_spec(sim(), nodeSelector={"disktype": "none-here"})))
    yield "observed, 0 desired", lambda s: observed(one(s, "daemonsets", "agent")) and \
        one(s, "daemonsets", "agent")["status"].get("desiredNumberScheduled") == 0
    return [judged("healthy", row("DaemonSet", "agent", "ok"))]


@case({"DaemonSet": CONTROLLERS, "Pod": NODE})
def daemonset_ondelete(rk, ns):
    """updateStrategy OnDelete after a template change: the controller
    replaces no pod (updatedNumberScheduled 0) until someone deletes it;
    the pod is Ready (numberReady 1 = desired). Never rolls out by itself:
    healthy with a note (release-check(1))."""
    rk.put_object(workload("DaemonSet", "agent", ns, pod_spec(sim()), updateStrategy={"type": "OnDelete"}))
    yield "rolled out", lambda s: ds_complete(s, "agent", 1)
    update(rk, f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent", lambda o: set_env(o, 0, log="v2"))
    yield "new generation observed, nothing replaced", lambda s: observed(one(s, "daemonsets", "agent")) and \
        one(s, "daemonsets", "agent")["metadata"]["generation"] == 2 and \
        not one(s, "daemonsets", "agent")["status"].get("updatedNumberScheduled") and \
        one(s, "daemonsets", "agent")["status"].get("numberReady") == 1
    return [judged("healthy", row("DaemonSet", "agent", "ok"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_running(rk, ns):
    """No terminal condition, active 1, its pod Running: the Job has not
    finished ("0 failed" is not done). Progressing."""
    rk.put_object(job("migrate", ns, sim(exit_after="600s")))
    snap = yield "active, pod running", lambda s: one(s, "jobs", "migrate") and \
        one(s, "jobs", "migrate")["status"].get("active") == 1 and pods_of(s, "migrate-") and \
        all("running" in (c.get("state") or {}) for p in pods_of(s, "migrate-")
            for c in p["status"].get("containerStatuses") or [{}])
    return [judged("progressing", row("Job", "migrate", "progressing"),
                   row("Pod", pods_of(snap, "migrate-")[0]["metadata"]["name"], "ok"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_partly_complete(rk, ns):
    """completions 2, parallelism 1: the first pod succeeded, the second is
    running: succeeded 1 < completions 2 and no terminal condition. One
    success is not the Job's success: progressing."""
    rk.put_object(job("migrate", ns, sim(exit_after="6s", exit="0"), completions=2, parallelism=1))
    yield "succeeded 1, active 1", lambda s: one(s, "jobs", "migrate") and \
        one(s, "jobs", "migrate")["status"].get("succeeded") == 1 and \
        one(s, "jobs", "migrate")["status"].get("active") == 1 and \
        sorted(p["status"].get("phase") for p in pods_of(s, "migrate-")) == ["Running", "Succeeded"]
    return [judged("progressing", row("Job", "migrate", "progressing"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_onfailure_retrying(rk, ns):
    """restartPolicy OnFailure, backoffLimit 6: the container exited 1 twice
    or more and the kubelet restarts it with back-off (CrashLoopBackOff): these
    restarts are the Job's retries, counted against backoffLimit, and the
    sixth attempt would succeed. The Job has no terminal condition: the Job
    controller decides when the retries are exhausted (JobSpec.backoffLimit),
    so the release is progressing, not failed."""
    j = job("migrate", ns, sim(exit="1,1,1,1,1,0"), backoff=6)
    j["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    rk.put_object(j)
    yield "CrashLoopBackOff between retries", lambda s: pods_of(s, "migrate-") and \
        all(waiting(p, "CrashLoopBackOff") for p in pods_of(s, "migrate-")) and \
        not cond(one(s, "jobs", "migrate"), "Failed") and not cond(one(s, "jobs", "migrate"), "FailureTarget")
    return [judged("progressing", row("Job", "migrate", "progressing"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_pod_failure_policy(rk, ns):
    """podFailurePolicy FailJob on exit code 42: the pod exits 42 and the
    controller fails the Job at once (Failed=True reason PodFailurePolicy),
    whatever backoffLimit is left. The release fails."""
    rk.put_object(job("migrate", ns, sim(exit="42"), backoff=6, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}))
    yield "Failed", lambda s: job_done(s, "migrate", "Failed", "PodFailurePolicy")
    return [judged("failed", row("Job", "migrate", "failed"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_complete(rk, ns):
    """Complete=True (after SuccessCriteriaMet), succeeded 1 = completions:
    the Job succeeded; its pod is Succeeded (container terminated, reason
    Completed), which is done, not unready. Healthy."""
    rk.put_object(job("migrate", ns, sim(exit_after="0.5s", exit="0")))
    snap = yield "Complete", lambda s: job_done(s, "migrate", "Complete") and \
        one(s, "jobs", "migrate")["status"].get("succeeded") == 1 and \
        all(p["status"].get("phase") == "Succeeded" for p in pods_of(s, "migrate-"))
    pod = pods_of(snap, "migrate-")[0]["metadata"]["name"]
    return [judged("healthy", row("Job", "migrate", "ok"), row("Pod", pod, "ok"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_retried_then_succeeded(rk, ns):
    """backoffLimit 2: the first pod exits 1 (phase Failed), the Job
    controller starts another that exits 0: Complete=True, succeeded 1,
    failed 1. The failed attempt is history the Job's conditions decide:
    healthy, the failed pod is not a failure of the release."""
    rk.put_object(job("migrate", ns, sim(exit="1,0"), backoff=2))
    snap = yield "Complete after one failure", lambda s: job_done(s, "migrate", "Complete") and \
        one(s, "jobs", "migrate")["status"].get("failed") == 1 and \
        one(s, "jobs", "migrate")["status"].get("succeeded") == 1 and \
        sorted(p["status"].get("phase") for p in pods_of(s, "migrate-")) == ["Failed", "Succeeded"]
    failed = next(p for p in pods_of(snap, "migrate-") if p["status"]["phase"] == "Failed")
    return [judged("healthy", row("Job", "migrate", "ok"), row("Pod", failed["metadata"]["name"], "ignored"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_backoff_limit_exceeded(rk, ns):
    """backoffLimit 1, every pod exits 1: Failed=True reason
    BackoffLimitExceeded (after FailureTarget), failed 2. The migration
    failed: the release fails."""
    rk.put_object(job("migrate", ns, sim(exit="1", log="ERROR: relation exists"), backoff=1))
    yield "Failed", lambda s: job_done(s, "migrate", "Failed", "BackoffLimitExceeded") and \
        one(s, "jobs", "migrate")["status"].get("failed") == 2 and \
        all(p["status"].get("phase") == "Failed" for p in pods_of(s, "migrate-"))
    return [judged("failed", row("Job", "migrate", "failed"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_failure_target(rk, ns):
    """activeDeadlineSeconds 2 passed; the pod ignores SIGTERM and takes its
    8 s grace: the controller has set FailureTarget=True (reason
    DeadlineExceeded) and deleted the pod, and writes Failed only once the
    pod is gone. FailureTarget is the controller's decision that the Job
    fails: failed now, not after the grace."""
    j = job("migrate", ns, sim(exit_after="600s", ignore_sigterm=1), activeDeadlineSeconds=2)
    j["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 8
    rk.put_object(j)
    yield "FailureTarget, pod terminating", lambda s: job_done(s, "migrate", "FailureTarget") and \
        not cond(one(s, "jobs", "migrate"), "Failed") and pods_of(s, "migrate-") and \
        all(p["metadata"].get("deletionTimestamp") for p in pods_of(s, "migrate-"))
    return [judged("failed", row("Job", "migrate", "failed"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_failed_indexes(rk, ns):
    """An Indexed Job with backoffLimitPerIndex 0: index 0 fails once, the
    index is failed, and the Job gets Failed=True reason FailedIndexes
    (status.failedIndexes "0"). The release fails."""
    rk.put_object(job("migrate", ns, sim(exit="1"), backoff=None, completionMode="Indexed", completions=1,
                      backoffLimitPerIndex=0))
    yield "Failed", lambda s: job_done(s, "migrate", "Failed", "FailedIndexes")
    return [judged("failed", row("Job", "migrate", "failed"))]


@case({"Job": CONTROLLERS, "Pod": NODE})
def job_deadline_exceeded(rk, ns):
    """activeDeadlineSeconds 2 passed with the pod still running: the
    controller terminates it and sets Failed=True reason DeadlineExceeded.
    The release fails."""
    rk.put_object(job("migrate", ns, sim(exit_after="600s"), activeDeadlineSeconds=2))
    yield "Failed", lambda s: job_done(s, "migrate", "Failed", "DeadlineExceeded")
    return [judged("failed", row("Job", "migrate", "failed"))]


@case({"Job": CONTROLLERS, "Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def job_suspended(rk, ns):
    """spec.suspend: the controller sets Suspended=True and starts no pod;
    the Job will not run until resumed. release-check(1): shown with a note,
    not counted; the release's Deployment is rolled out: healthy."""
    rk.put_object(job("migrate", ns, sim(exit_after="1s", exit="0"), suspend=True))
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim()), replicas=1))
    yield "Suspended, web rolled out", lambda s: cond(one(s, "jobs", "migrate") or {}, "Suspended") \
        .get("status") == "True" and deployment_complete(s, "web", 1)
    return [judged("healthy", row("Job", "migrate", "ignored"), row("Deployment", "web", "ok"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def pod_crashloopbackoff(rk, ns):
    """The container exits 1 every time; restartPolicy Always: after the
    second exit the kubelet waits in back-off: state.waiting.reason
    CrashLoopBackOff, restartCount >= 1. It will not heal by itself: failed."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim(crashloop=1, log="fatal: no db")), replicas=1))
    snap = yield "CrashLoopBackOff", lambda s: pods_of(s, "web-") and all(waiting(p, "CrashLoopBackOff")
                                                                          for p in pods_of(s, "web-"))
    return [judged("failed", row("Pod", pods_of(snap, "web-")[0]["metadata"]["name"], "failed"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def pod_init_crashloopbackoff(rk, ns):
    """An init container that exits 1 every time (restartPolicy Always):
    the kubelet restarts it with back-off, initContainerStatuses waiting
    CrashLoopBackOff, phase Pending (Init:CrashLoopBackOff). The app never
    starts: failed."""
    spec = pod_spec(sim(), init=[sim("wait", crashloop=1)])
    rk.put_object(workload("Deployment", "web", ns, spec, replicas=1))
    snap = yield "Init:CrashLoopBackOff", lambda s: pods_of(s, "web-") and \
        all(waiting(p, "CrashLoopBackOff", init=True) for p in pods_of(s, "web-"))
    return [judged("failed", row("Pod", pods_of(snap, "web-")[0]["metadata"]["name"], "failed"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def pod_image_not_found(rk, ns):
    """The registry answers the pull with "not found" (ErrImagePull, the
    CRI's NotFound): a tag that does not exist does not appear by waiting.
    Failed at once (release-check(1): the registry refused for good)."""
    c = sim()
    c["image"] = "registry.example/app:bad"
    rk.put_object(workload("Deployment", "web", ns, pod_spec(c), replicas=1))
    snap = yield "ErrImagePull", lambda s: pods_of(s, "web-") and all(waiting(p, "ErrImagePull")
                                                                      for p in pods_of(s, "web-"))
    return [judged("failed", row("Pod", pods_of(snap, "web-")[0]["metadata"]["name"], "failed"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def pod_invalid_image_name(rk, ns):
    """An image reference the runtime cannot parse (upper case in the
    repository): waiting reason InvalidImageName, never retried. Failed."""
    c = sim()
    c["image"] = "registry.example/App:1"
    rk.put_object(workload("Deployment", "web", ns, pod_spec(c), replicas=1))
    snap = yield "InvalidImageName", lambda s: pods_of(s, "web-") and all(waiting(p, "InvalidImageName")
                                                                          for p in pods_of(s, "web-"))
    return [judged("failed", row("Pod", pods_of(snap, "web-")[0]["metadata"]["name"], "failed"))]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def pod_create_container_config_error(rk, ns):
    """An env var from a ConfigMap that does not exist (yet):
    CreateContainerConfigError. A later manifest may create it, so the
    kubelet keeps retrying: progressing when first seen, failed once it has
    persisted past the pull grace (60 s on release-check's own clock)."""
    c = sim()
    c["env"].append({"name": "DB_URL", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "url"}}})
    rk.put_object(workload("Deployment", "web", ns, pod_spec(c), replicas=1))
    snap = yield "CreateContainerConfigError", lambda s: pods_of(s, "web-") and \
        all(waiting(p, "CreateContainerConfigError") for p in pods_of(s, "web-"))
    pod = pods_of(snap, "web-")[0]["metadata"]["name"]
    return [judged("progressing", row("Pod", pod, "progressing")),
            judged("failed", row("Pod", pod, "failed"), seen=61)]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": SCHEDULER})
def pod_unschedulable(rk, ns):
    """A nodeSelector no node matches: the real scheduler sets
    PodScheduled=False reason Unschedulable ("0/1 nodes are available: 1
    node(s) didn't match Pod's node affinity/selector"), no
    nominatedNodeName. A cluster autoscaler may add a node: progressing when
    first seen, failed after the 5 min scheduling grace."""
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim(), nodeSelector={"disktype": "none-here"}),
                           replicas=1))
    snap = yield "Unschedulable", lambda s: pods_of(s, "web-") and \
        all(cond(p, "PodScheduled").get("reason") == "Unschedulable" for p in pods_of(s, "web-"))
    pod = pods_of(snap, "web-")[0]["metadata"]["name"]
    return [judged("progressing", row("Pod", pod, "progressing")),
            judged("failed", row("Pod", pod, "failed"), seen=360)]


@case({"Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": SCHEDULER})
def pod_preemption_nominated(rk, ns):
    """A pod of PriorityClass 1000 requesting the node's 8 CPUs, which a
    priority-0 pod of another namespace holds: the real scheduler preempts
    (deletes the victim, which takes its 8 s grace) and sets status.nominatedNodeName while the
    pod stays PodScheduled=False Unschedulable. Room is being made: not a
    failure even after the scheduling grace."""
    code, _, body = rk.api("POST", "/apis/scheduling.k8s.io/v1/priorityclasses",
                           {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                            "metadata": {"name": "cap-high"}, "value": 1000})
    if code not in (201, 409):
        raise RuntimeError(f"PriorityClass: {code} {body[:300]!r}")
    cpu = {"resources": {"requests": {"cpu": "8"}}}
    other = ns[:56] + "-other"      # the victim belongs to someone else, not to this release
    victim = bare_pod("victim", other, dict(sim(ignore_sigterm=1), **cpu), policy="Always")
    victim["spec"]["terminationGracePeriodSeconds"] = 8
    rk.put_object(victim)
    yield "victim running", lambda s: ready(rk.json("GET", f"/api/v1/namespaces/{other}/pods/victim"))
    rk.put_object(workload("Deployment", "web", ns, pod_spec(dict(sim(), **cpu), priorityClassName="cap-high"),
                           replicas=1))
    snap = yield "nominated", lambda s: pods_of(s, "web-") and all(
        (p.get("status") or {}).get("nominatedNodeName") and
        cond(p, "PodScheduled").get("reason") == "Unschedulable" for p in pods_of(s, "web-")) and \
        rk.json("GET", f"/api/v1/namespaces/{other}/pods/victim")["metadata"].get("deletionTimestamp")
    pod = pods_of(snap, "web-")[0]["metadata"]["name"]
    return [judged("progressing", row("Pod", pod, "progressing"), seen=360)]


@case({"Job": CONTROLLERS, "Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def pod_gated_by_running_job(rk, ns):
    """The pattern itself: the app pod's init container is the real
    wait-for-job (in-cluster, its ServiceAccount allowed to read Jobs),
    blocking while the migration Job runs: the pod is Pending, Initialized
    False, its init container running. The migration has not finished:
    progressing."""
    grant_job_reader(rk, ns)
    rk.put_object(job("migrate", ns, sim(exit_after="600s")))
    gate = {"name": "gate", "image": "migration-gate/wait-for-job:test", "args": ["migrate"]}
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim(), init=[gate]), replicas=1))
    snap = yield "gate running", lambda s: pods_of(s, "web-") and all(
        "running" in ((p["status"].get("initContainerStatuses") or [{}])[0].get("state") or {})
        for p in pods_of(s, "web-")) and one(s, "jobs", "migrate")["status"].get("active") == 1
    pod = pods_of(snap, "web-")[0]["metadata"]["name"]
    return [judged("progressing", row("Job", "migrate", "progressing"), row("Pod", pod, "progressing"))]


@case({"Job": CONTROLLERS, "Deployment": CONTROLLERS, "ReplicaSet": CONTROLLERS, "Pod": NODE})
def pod_gate_on_failed_job(rk, ns):
    """The migration Job failed (BackoffLimitExceeded); the real
    wait-for-job in the app pod's init container exits 1 and the kubelet
    restarts it (restartPolicy Always). The release failed: the Job says
    so."""
    grant_job_reader(rk, ns)
    rk.put_object(job("migrate", ns, sim(exit="1")))
    gate = {"name": "gate", "image": "migration-gate/wait-for-job:test", "args": ["migrate"]}
    rk.put_object(workload("Deployment", "web", ns, pod_spec(sim(), init=[gate]), replicas=1))

    def gate_failed(s):
        ics = [(p["status"].get("initContainerStatuses") or [{}])[0] for p in pods_of(s, "web-")]
        return job_done(s, "migrate", "Failed") and ics and all(
            ((c.get("state") or {}).get("terminated") or (c.get("lastState") or {}).get("terminated") or {})
            .get("exitCode") == 1 for c in ics)
    yield "gate exited 1", gate_failed
    return [judged("failed", row("Job", "migrate", "failed"))]


def grant_job_reader(rk, ns):
    """The namespace's default ServiceAccount may read its Jobs (what the
    chart's Role grants the gate)."""
    rk.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "gate", "namespace": ns},
                   "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}]})
    rk.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "gate", "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gate"},
                   "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]})


@case({"Pod": NODE})
def pod_unowned_succeeded(rk, ns):
    """A pod without owner, restartPolicy Never, exited 0: phase Succeeded.
    Done: healthy."""
    rk.put_object(bare_pod("once", ns, sim(exit_after="0.3s", exit="0")))
    yield "Succeeded", lambda s: one(s, "pods", "once") and one(s, "pods", "once")["status"].get("phase") == \
        "Succeeded"
    return [judged("healthy", row("Pod", "once", "ok"))]


@case({"Pod": NODE})
def pod_unowned_failed(rk, ns):
    """A pod without owner, restartPolicy Never, exited 3: phase Failed.
    Nothing replaces it: failed."""
    rk.put_object(bare_pod("once", ns, sim(exit="3")))
    yield "Failed", lambda s: one(s, "pods", "once") and one(s, "pods", "once")["status"].get("phase") == "Failed"
    return [judged("failed", row("Pod", "once", "failed"))]


@case({"Pod": NODE})
def pod_unowned_init_failed(rk, ns):
    """A pod without owner, restartPolicy Never, whose init container exits
    1: the kubelet does not retry it, phase Failed (Init:Error). Failed."""
    rk.put_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "once", "namespace": ns},
                   "spec": pod_spec(sim(), init=[sim("wait", exit="1")], restartPolicy="Never")})
    yield "Failed", lambda s: one(s, "pods", "once") and one(s, "pods", "once")["status"].get("phase") == "Failed"
    return [judged("failed", row("Pod", "once", "failed"))]


# ---------------------------------------------------------------- normalising

TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$")


def shift_ts(s, shift):
    """An RFC 3339 UTC timestamp moved by whole seconds (its fraction kept), or None."""
    m = TS.match(s)
    if not m:
        return None
    secs = calendar.timegm(tuple(int(x) for x in m.groups()[:6])) + shift
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + (m.group(7) or "") + "Z"


def normalise(snap, t0):
    """The snapshot as written: volatile metadata dropped, uids named,
    timestamps shifted so that t0 (wall clock) is BASE."""
    uids = {}
    for key, objs in snap.items():
        kind = key[:-1]
        for o in objs:
            md = o["metadata"]
            if md.get("uid"):
                uids[md["uid"]] = f"uid-{kind}-{md['name']}"
            for ref in md.get("ownerReferences") or []:
                uids.setdefault(ref["uid"], f"uid-{ref['kind'].lower()}-{ref['name']}")
    shift = BASE - int(t0)

    def walk(v):
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            shifted = shift_ts(v, shift)
            if shifted:
                return shifted
            for uid, name in uids.items():
                if uid in v:
                    v = v.replace(uid, name)
            return v
        return v
    out = {}
    for key, objs in snap.items():
        lst = []
        for o in objs:
            o = json.loads(json.dumps(o))
            for k in ("managedFields", "resourceVersion", "selfLink"):
                o["metadata"].pop(k, None)
            lst.append(walk(o))
        out[key] = lst
    return out, shift


# ---------------------------------------------------------------- the driver

class Run:
    def __init__(self, name, fn, status_from, rk):
        self.name, self.status_from = name, status_from
        self.ns = (PREFIX + name)[:63].rstrip("-")
        self.rk = rk
        self.t0 = time.time()
        rk.ensure_namespace(self.ns)
        self.gen = fn(rk, self.ns)
        self.doc = fn.__doc__
        self.result = None
        self.error = None
        self.last_error = None
        self.what, self.pred = "its objects to be created", lambda s: False
        try:
            self.what, self.pred = next(self.gen)
        except (RuntimeError, OSError) as e:
            self.error = f"{type(e).__name__} creating its objects: {e}"
        self.deadline = time.monotonic() + CASE_TIMEOUT * SLOW

    def step(self, snap, now):
        try:
            ok = self.pred(snap)
        except (KeyError, TypeError, IndexError, AttributeError, RuntimeError, urllib.error.URLError) as e:
            ok, self.last_error = False, e
        if not ok:
            if time.monotonic() > self.deadline:
                self.error = f"timed out waiting for: {self.what}" + \
                    (f" (last: {self.last_error})" if self.last_error else "")
            return
        try:
            self.what, self.pred = self.gen.send(snap)
        except StopIteration as stop:
            self.result = self.record(snap, now, stop.value)
        except (RuntimeError, OSError) as e:
            self.error = f"{type(e).__name__} after '{self.what}': {e}"

    def record(self, snap, now, judgements):
        objects, shift = normalise(snap, self.t0)
        semantics = " ".join(self.doc.split())
        return {"case": self.name, "kubernetes": K8S_VERSION,
                "statusFrom": self.status_from,
                "semantics": semantics,
                "capturedAtMs": int(round((now + shift) * 1000)),
                "judge": judgements,
                "objects": objects}


def snapshot(rk):
    snaps = {}
    for key, path in KEYS:
        for o in rk.json("GET", path).get("items") or []:
            ns = o["metadata"].get("namespace", "")
            if ns.startswith(PREFIX):
                snaps.setdefault(ns, {k: [] for k, _ in KEYS})[key].append(o)
    return snaps


def capture(rk, names, log=print):
    runs = [Run(n, *CASES[n], rk) for n in names]
    active = [r for r in runs if not r.error]
    while active:
        time.sleep(1)
        now = time.time()
        snaps = snapshot(rk)
        for r in list(active):
            r.step(snaps.get(r.ns) or {k: [] for k, _ in KEYS}, now)
            if r.result or r.error:
                active.remove(r)
                log(f"capture: {r.name}: {r.error or 'captured'} ({time.time() - r.t0:.0f} s)")
    return runs


def write(runs, out):
    os.makedirs(out, exist_ok=True)
    for n in os.listdir(out):
        if n.endswith(".json") or n == "INDEX":
            os.unlink(os.path.join(out, n))
    names = []
    for r in sorted(runs, key=lambda r: r.name):
        if not r.result:
            continue
        with open(os.path.join(out, r.name + ".json"), "w") as f:
            json.dump(r.result, f, indent=1)
            f.write("\n")
        names.append(r.name)
    with open(os.path.join(out, "INDEX"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    return names


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT, help="where to write <case>.json and INDEX (default %(default)s)")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--state-dir", help="keep the cluster's state (logs) here (default: a temporary directory)")
    args = ap.parse_args(argv)
    if args.list:
        for n, (fn, _) in CASES.items():
            print(f"{n}: {' '.join(fn.__doc__.split())}")
        return 0
    names = args.only.split(",") if args.only else list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"capture: unknown case(s): {', '.join(unknown)}", file=sys.stderr)
        return 64
    start = time.monotonic()
    with RealKube(state_dir=args.state_dir, node=True, bin_dir=BUILD, backoff_scale=0.05,
                  max_grace=10) as rk:
        print(f"capture: cluster up in {time.monotonic() - start:.0f} s", file=sys.stderr)
        runs = capture(rk, names, log=lambda m: print(m, file=sys.stderr))
    failed = [r for r in runs if not r.result]
    if args.only and os.path.abspath(args.out) == os.path.abspath(OUT):
        # a partial run updates only its cases in the committed table
        os.makedirs(args.out, exist_ok=True)
        for r in runs:
            if r.result:
                with open(os.path.join(args.out, r.name + ".json"), "w") as f:
                    json.dump(r.result, f, indent=1)
                    f.write("\n")
        have = sorted(n[:-5] for n in os.listdir(args.out) if n.endswith(".json"))
        with open(os.path.join(args.out, "INDEX"), "w") as f:
            f.write("".join(n + "\n" for n in have))
    else:
        write(runs, args.out)
    print(f"capture: {len(runs) - len(failed)} of {len(runs)} cases captured into {args.out} "
          f"in {time.monotonic() - start:.0f} s", file=sys.stderr)
    for r in failed:
        print(f"capture: {r.name}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
