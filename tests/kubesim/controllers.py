"""kube-controller-manager in miniature: the Deployment, ReplicaSet, Job and
TTL-after-finished controllers and the garbage collector, driven by the
store's events (no polling; timers only for deadlines and back-offs).

One worker thread reconciles keys level-triggered: each sync reads the current
objects from the store and writes through the registry (so every write is a
real watch event).  Objects annotated kubesim.io/controller: ignore are left
alone.  See README.md "Controllers" for what is and is not modelled."""

import copy
import heapq
import json
import math
import queue
import threading
import time

import resources
from ctrlutil import (EventRecorder, Subscriber, controller_ref, fnv32a, get_cond, has_cond, log_exc,
                      owner_ref, parse_ts, rand_suffix, safe_encode, seconds_since, selector_matches, ts)
from registry import ApiError

PODS, RSS, DEPLOYS, JOBS, EVENTS = ("", "pods"), ("apps", "replicasets"), ("apps", "deployments"), \
    ("batch", "jobs"), ("", "events")
K_POD, K_RS, K_DEPLOY, K_JOB = (resources.by_kind("v1", "Pod"), resources.by_kind("apps/v1", "ReplicaSet"),
                                resources.by_kind("apps/v1", "Deployment"), resources.by_kind("batch/v1", "Job"))
JOB_FINALIZER = "batch.kubernetes.io/job-tracking"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
IGNORE = "kubesim.io/controller"
MANAGER = "kube-controller-manager"
TERMINAL = ("Succeeded", "Failed")


def _ignored(obj):
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(IGNORE) == "ignore"


def _int_or_percent(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        v = float(value[:-1]) * total / 100.0
        return int(math.ceil(v) if round_up else math.floor(v))
    return int(value or 0)


def _pod_ready(p):
    return has_cond(p, "Ready")


def _active(p):
    return not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") not in TERMINAL


def template_hash(template, collisions=0):
    data = json.dumps(template, sort_keys=True, separators=(",", ":")) + (str(collisions) if collisions else "")
    return safe_encode(str(fnv32a(data.encode())))


def _without_hash(template):
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def _cond(ctype, status, reason, message, stamp=None, probe=True):
    stamp = stamp or ts()
    c = {"type": ctype, "status": status}
    if probe:
        c["lastProbeTime"] = stamp
    c.update(lastTransitionTime=stamp, reason=reason, message=message)
    return c


class ControllerManager:
    def __init__(self, sim, backoff_scale=0.1):
        self.sim, self.store, self.reg = sim, sim.store, sim.registry
        self.scale = backoff_scale
        self.sub = Subscriber(self.store)
        self.timers, self.seq = [], 0
        self.rec_deploy = EventRecorder(sim, "deployment-controller")
        self.rec_rs = EventRecorder(sim, "replicaset-controller")
        self.rec_job = EventRecorder(sim, "job-controller")
        self.rec_ttl = EventRecorder(sim, "ttl-after-finished-controller")
        self.job_last_fail = {}       # job uid -> monotonic time of the last counted failure
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="controllers", daemon=True)

    # ------------------------------------------------------------ loop
    def start(self):
        self.sub.start()
        self.thread.start()

    def stop(self):
        self.stopped.set()
        self.sub.stop()

    def after(self, seconds, key):
        self.seq += 1
        heapq.heappush(self.timers, (time.monotonic() + max(0.0, seconds), self.seq, key))

    def _initial_keys(self):
        keys = {}
        for gk, k in ((DEPLOYS, "Deployment"), (RSS, "ReplicaSet"), (JOBS, "Job")):
            for o in self.store.list(gk)[0]:
                keys[(k, o["metadata"]["namespace"], o["metadata"]["name"])] = None
        return keys

    def _loop(self):
        keys = self._initial_keys()
        while not self.stopped.is_set():
            if not keys:
                wait = 1.0
                if self.timers:
                    wait = max(0.0, min(wait, self.timers[0][0] - time.monotonic()))
                try:
                    self._keys_for(self.sub.events.get(timeout=wait), keys)
                except queue.Empty:
                    pass
            while True:      # drain what is queued: one sync per key per round
                try:
                    self._keys_for(self.sub.events.get_nowait(), keys)
                except queue.Empty:
                    break
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                keys[heapq.heappop(self.timers)[2]] = None
            batch, keys = list(keys), {}
            for key in batch:
                if self.stopped.is_set():
                    return
                try:
                    self._sync(key)
                except ApiError as e:
                    if e.code not in (404, 409):
                        log_exc("controllers", f"sync {key}")
                    self.after(0.05, key)   # conflict / gone: retry soon
                except Exception:
                    log_exc("controllers", f"sync {key}")
                    self.after(1.0, key)

    def _keys_for(self, ev, keys):
        if ev.gk == EVENTS:
            return
        obj = ev.obj
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace", ""), md.get("name")
        ref = controller_ref(obj) or {}
        if ev.gk == DEPLOYS:
            keys[("Deployment", ns, name)] = None
        elif ev.gk == RSS:
            keys[("ReplicaSet", ns, name)] = None
            if ref.get("kind") == "Deployment":
                keys[("Deployment", ns, ref["name"])] = None
        elif ev.gk == JOBS:
            keys[("Job", ns, name)] = None
        elif ev.gk == PODS:
            if ref.get("kind") == "ReplicaSet":
                keys[("ReplicaSet", ns, ref["name"])] = None
            elif ref.get("kind") == "Job":
                keys[("Job", ns, ref["name"])] = None
            if JOB_FINALIZER in (md.get("finalizers") or []):
                keys[("podfin", ns, name)] = None
        if ev.type == "DELETED":
            keys[("gc-owner", md.get("uid"), ns)] = None
        elif ev.type == "ADDED" and md.get("ownerReferences"):
            keys[("gc-check", ev.gk, ns, name)] = None

    def _sync(self, key):
        kind = key[0]
        if kind == "Deployment":
            self.sync_deployment(key[1], key[2])
        elif kind == "ReplicaSet":
            self.sync_replicaset(key[1], key[2])
        elif kind == "Job":
            self.sync_job(key[1], key[2])
        elif kind == "gc-owner":
            self.gc_dependents(key[1], key[2])
        elif kind == "gc-check":
            self.gc_check(key[1], key[2], key[3])
        elif kind == "podfin":
            self.orphan_pod_finalizer(key[1], key[2])

    # ------------------------------------------------------------ helpers
    def _owned(self, gk, ns, uid):
        return [o for o in self.store.list(gk, ns)[0] if (controller_ref(o) or {}).get("uid") == uid]

    def _delete(self, kind, obj):
        md = obj["metadata"]
        try:
            self.reg.delete(kind, md.get("namespace", ""), md["name"], {"preconditions": {"uid": md["uid"]}})
            return True
        except ApiError:
            return False

    def _create_pod(self, owner, template, recorder, finalizers=None):
        tmeta = template.get("metadata") or {}
        prefix = owner["metadata"]["name"] + "-"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": prefix + rand_suffix(), "generateName": prefix,
                            "namespace": owner["metadata"]["namespace"],
                            "labels": copy.deepcopy(tmeta.get("labels") or {}),
                            "ownerReferences": [owner_ref(owner)]},
               "spec": copy.deepcopy(template.get("spec") or {})}
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = copy.deepcopy(tmeta["annotations"])
        if finalizers:
            pod["metadata"]["finalizers"] = list(finalizers)
        try:
            created = self.reg.create(K_POD, pod["metadata"]["namespace"], pod, manager=MANAGER)
        except ApiError as e:
            recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {e}")
            return None
        recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return created

    # ------------------------------------------------------------ ReplicaSet
    def sync_replicaset(self, ns, name):
        rs = self.store.get(RSS, ns, name)
        if rs is None or _ignored(rs) or rs["metadata"].get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        want = int(spec.get("replicas", 1))
        pods = self._owned(PODS, ns, rs["metadata"]["uid"])
        active = [p for p in pods if _active(p)]
        diff = len(active) - want
        if diff < 0:
            for _ in range(min(-diff, 500)):
                self._create_pod(rs, spec.get("template") or {}, self.rec_rs)
        elif diff > 0:
            for p in sorted(active, key=self._deletion_rank)[:diff]:
                if self._delete(K_POD, p):
                    self.rec_rs.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
        if diff:
            pods = self._owned(PODS, ns, rs["metadata"]["uid"])
            active = [p for p in pods if _active(p)]
        min_ready = int(spec.get("minReadySeconds") or 0)
        tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in active if _pod_ready(p)]
        available = 0
        for p in ready:
            since = seconds_since((get_cond(p.get("status") or {}, "Ready") or {}).get("lastTransitionTime"))
            if min_ready == 0 or (since is not None and since >= min_ready):
                available += 1
            else:
                self.after(min_ready - (since or 0) + 0.05, ("ReplicaSet", ns, name))
        status = {"replicas": len(active),
                  "fullyLabeledReplicas": sum(1 for p in active if all(
                      (p["metadata"].get("labels") or {}).get(k) == v for k, v in tlabels.items())),
                  "readyReplicas": len(ready), "availableReplicas": available,
                  "observedGeneration": rs["metadata"].get("generation", 1)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if (rs.get("status") or {}).get("conditions"):
            status["conditions"] = rs["status"]["conditions"]
        self.reg.set_status(K_RS, ns, name, status, rs["metadata"]["uid"], MANAGER)

    @staticmethod
    def _deletion_rank(p):
        """controller.ActivePods ordering: the first ones are deleted first."""
        st = p.get("status") or {}
        phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(st.get("phase"), 0)
        restarts = sum(int(c.get("restartCount", 0)) for c in st.get("containerStatuses") or [])
        ready = _pod_ready(p)
        ready_since = parse_ts((get_cond(st, "Ready") or {}).get("lastTransitionTime"))
        created = parse_ts(p["metadata"].get("creationTimestamp"))
        return (bool((p.get("spec") or {}).get("nodeName")), phase_rank, ready,
                -(ready_since.timestamp() if ready and ready_since else 0), -restarts,
                -(created.timestamp() if created else 0))

    # ------------------------------------------------------------ Deployment
    def sync_deployment(self, ns, name):
        d = self.store.get(DEPLOYS, ns, name)
        if d is None or _ignored(d) or d["metadata"].get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        strategy = spec.get("strategy") or {}
        ru = strategy.get("rollingUpdate") or {}
        recreate = strategy.get("type") == "Recreate"
        surge = 0 if recreate else _int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
        unavailable = 0 if recreate else _int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
        if not recreate and surge == 0 and unavailable == 0:
            unavailable = 1
        template = spec.get("template") or {}
        rss = self._owned(RSS, ns, d["metadata"]["uid"])
        new_rs = next((r for r in rss if _without_hash((r.get("spec") or {}).get("template")) == template), None)
        olds = [r for r in rss if r is not new_rs]
        max_rev = max([int(((r["metadata"].get("annotations") or {}).get(REVISION)) or 0) for r in olds] or [0])
        created_now = False
        if new_rs is None:
            new_rs = self._create_rs(d, template, max_rev + 1, replicas, surge, rss)
            if new_rs is None:
                return
            created_now = True
        elif int((new_rs["metadata"].get("annotations") or {}).get(REVISION) or 0) <= max_rev:
            new_rs["metadata"].setdefault("annotations", {})[REVISION] = str(max_rev + 1)
            new_rs = self.reg.update(K_RS, ns, new_rs["metadata"]["name"], new_rs, manager=MANAGER)
        revision = (new_rs["metadata"].get("annotations") or {}).get(REVISION)
        if (d["metadata"].get("annotations") or {}).get(REVISION) != revision:
            d["metadata"].setdefault("annotations", {})[REVISION] = revision
            d = self.reg.update(K_DEPLOY, ns, name, d, manager=MANAGER)

        if not spec.get("paused"):
            if recreate:
                self._recreate(d, new_rs, olds, replicas)
            else:
                self._rolling(d, new_rs, olds, replicas, surge, unavailable)
            self._cleanup(d, olds)
        self._deployment_status(d, new_rs, replicas, unavailable, created_now)

    def _create_rs(self, d, template, revision, replicas, surge, existing):
        ns = d["metadata"]["namespace"]
        names = {r["metadata"]["name"] for r in existing}
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        h = template_hash(template, collisions)
        while f"{d['metadata']['name']}-{h}" in names:
            collisions += 1
            h = template_hash(template, collisions)
        t = copy.deepcopy(template)
        t.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        sel = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        sel.setdefault("matchLabels", {})[HASH_LABEL] = h
        labels = dict(t["metadata"]["labels"])
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": ns, "labels": labels,
                           "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas),
                                           "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                                           REVISION: str(revision)},
                           "ownerReferences": [owner_ref(d)]},
              "spec": {"replicas": 0, "minReadySeconds": int((d.get("spec") or {}).get("minReadySeconds") or 0),
                       "selector": sel, "template": t}}
        try:
            return self.reg.create(K_RS, ns, rs, manager=MANAGER)
        except ApiError as e:
            self.rec_deploy.event(d, "Warning", "FailedCreate", f"Failed to create new replica set: {e}")
            return None

    def _scale(self, d, rs, n, surge):
        cur = int((rs.get("spec") or {}).get("replicas", 0))
        replicas = int((d.get("spec") or {}).get("replicas", 1))
        ann = rs["metadata"].setdefault("annotations", {})
        want_ann = {"deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge)}
        if cur == n and all(ann.get(k) == v for k, v in want_ann.items()):
            return rs
        ann.update(want_ann)
        rs["spec"]["replicas"] = n
        out = self.reg.update(K_RS, rs["metadata"]["namespace"], rs["metadata"]["name"], rs, manager=MANAGER)
        if cur != n:
            verb = "up" if n > cur else "down"
            self.rec_deploy.event(d, "Normal", "ScalingReplicaSet",
                                  f"Scaled {verb} replica set {rs['metadata']['name']} from {cur} to {n}")
        return out

    @staticmethod
    def _spec_replicas(rs):
        return int((rs.get("spec") or {}).get("replicas", 0))

    @staticmethod
    def _st(rs, key):
        return int((rs.get("status") or {}).get(key, 0))

    def _rolling(self, d, new_rs, olds, replicas, surge, unavailable):
        olds = sorted(olds, key=lambda r: r["metadata"].get("creationTimestamp") or "")
        active_olds = [r for r in olds if self._spec_replicas(r) > 0]
        if not active_olds:        # nothing to roll: plain scaling
            self._scale(d, new_rs, replicas, surge)
            return
        # scale up the new ReplicaSet within maxSurge
        new_n = self._spec_replicas(new_rs)
        total = new_n + sum(self._spec_replicas(r) for r in olds)
        if new_n > replicas:
            new_rs = self._scale(d, new_rs, replicas, surge)
        elif new_n < replicas and total < replicas + surge:
            new_rs = self._scale(d, new_rs, min(replicas, new_n + replicas + surge - total), surge)
        # scale down old ReplicaSets within maxUnavailable
        all_pods = self._spec_replicas(new_rs) + sum(self._spec_replicas(r) for r in olds)
        min_available = replicas - unavailable
        new_unavailable = self._spec_replicas(new_rs) - self._st(new_rs, "availableReplicas")
        max_down = all_pods - min_available - new_unavailable
        if max_down <= 0:
            return
        cleaned = 0
        for r in olds:       # first the old pods that are not available anyway
            if cleaned >= max_down:
                break
            n = self._spec_replicas(r)
            unhealthy = n - self._st(r, "availableReplicas")
            if n == 0 or unhealthy <= 0:
                continue
            down = min(max_down - cleaned, unhealthy)
            self._scale(d, r, n - down, surge)
            cleaned += down
        olds = self._owned(RSS, d["metadata"]["namespace"], d["metadata"]["uid"])
        olds = sorted([r for r in olds if r["metadata"]["uid"] != new_rs["metadata"]["uid"]],
                      key=lambda r: r["metadata"].get("creationTimestamp") or "")
        available = self._st(new_rs, "availableReplicas") + sum(self._st(r, "availableReplicas") for r in olds)
        budget = min(available - min_available, max_down - cleaned)
        for r in olds:
            if budget <= 0:
                break
            n = self._spec_replicas(r)
            if n == 0:
                continue
            down = min(n, budget)
            self._scale(d, r, n - down, surge)
            budget -= down

    def _recreate(self, d, new_rs, olds, replicas):
        if any(self._spec_replicas(r) > 0 for r in olds):
            for r in olds:
                if self._spec_replicas(r) > 0:
                    self._scale(d, r, 0, 0)
            return
        ns = d["metadata"]["namespace"]
        for r in olds:       # wait until the old pods are gone
            if any(_active(p) or p["metadata"].get("deletionTimestamp")
                   for p in self._owned(PODS, ns, r["metadata"]["uid"])):
                return
        self._scale(d, new_rs, replicas, 0)

    def _cleanup(self, d, olds):
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
        idle = [r for r in olds if self._spec_replicas(r) == 0 and self._st(r, "replicas") == 0]
        idle.sort(key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION) or 0))
        for r in idle[: max(0, len(idle) - int(limit))]:
            self._delete(K_RS, r)

    def _deployment_status(self, d, new_rs, replicas, unavailable, created_now):
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        rss = self._owned(RSS, ns, d["metadata"]["uid"])
        new_rs = next((r for r in rss if r["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs)
        old = d.get("status") or {}
        st = {"observedGeneration": d["metadata"].get("generation", 1),
              "replicas": sum(self._st(r, "replicas") for r in rss),
              "updatedReplicas": self._st(new_rs, "replicas"),
              "readyReplicas": sum(self._st(r, "readyReplicas") for r in rss),
              "availableReplicas": sum(self._st(r, "availableReplicas") for r in rss)}
        st["unavailableReplicas"] = max(0, replicas - st["availableReplicas"])
        st = {k: v for k, v in st.items() if v or k == "observedGeneration"}
        if old.get("collisionCount"):
            st["collisionCount"] = old["collisionCount"]
        conds = [copy.deepcopy(c) for c in old.get("conditions") or []]

        def set_cond(ctype, status, reason, message, keep_update=False):
            cur = next((c for c in conds if c["type"] == ctype), None)
            stamp = ts()
            if cur and cur["status"] == status and cur.get("reason") == reason and cur.get("message") == message \
                    and keep_update:
                return
            new = {"type": ctype, "status": status, "lastUpdateTime": stamp,
                   "lastTransitionTime": cur["lastTransitionTime"] if cur and cur["status"] == status else stamp,
                   "reason": reason, "message": message}
            conds[:] = [c for c in conds if c["type"] != ctype] + [new]

        rs_name = new_rs["metadata"]["name"]
        avail = st.get("availableReplicas", 0)
        if avail >= replicas - unavailable:
            set_cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", True)
        else:
            set_cond("Available", "False", "MinimumReplicasUnavailable",
                     "Deployment does not have minimum availability.", True)
        deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
        progressing = next((c for c in conds if c["type"] == "Progressing"), None)
        if created_now:
            set_cond("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        elif progressing is None and deadline is not None:
            set_cond("Progressing", "True", "FoundNewReplicaSet", f'Found new replica set "{rs_name}"')
        if deadline is not None and not (d.get("spec") or {}).get("paused"):
            progressing = next((c for c in conds if c["type"] == "Progressing"), None)
            complete = (st.get("updatedReplicas", 0) == replicas and st.get("replicas", 0) == replicas
                        and avail == replicas and st["observedGeneration"] >= d["metadata"].get("generation", 1))
            old_old = int(old.get("replicas", 0)) - int(old.get("updatedReplicas", 0))
            new_old = st.get("replicas", 0) - st.get("updatedReplicas", 0)
            moved = (st.get("updatedReplicas", 0) > int(old.get("updatedReplicas", 0))
                     or st.get("readyReplicas", 0) > int(old.get("readyReplicas", 0))
                     or avail > int(old.get("availableReplicas", 0)) or new_old < old_old)
            if complete:
                if not progressing or progressing.get("reason") != "NewReplicaSetAvailable":
                    set_cond("Progressing", "True", "NewReplicaSetAvailable",
                             f'ReplicaSet "{rs_name}" has successfully progressed.')
            elif moved and not created_now:
                set_cond("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
            elif progressing and progressing.get("reason") != "ProgressDeadlineExceeded":
                started = parse_ts(progressing.get("lastUpdateTime"))
                left = (started.timestamp() + int(deadline) - time.time()) if started else 0
                if left <= 0 and progressing.get("reason") != "NewReplicaSetAvailable":
                    set_cond("Progressing", "False", "ProgressDeadlineExceeded",
                             f'ReplicaSet "{rs_name}" has timed out progressing.')
                elif left > 0:
                    self.after(left + 0.05, ("Deployment", ns, name))
        if conds:
            st["conditions"] = conds
        self.reg.set_status(K_DEPLOY, ns, name, st, d["metadata"]["uid"], MANAGER)

    # ------------------------------------------------------------ Job
    def _pod_failure_policy(self, job, pod):
        """-> (action, message) of the first podFailurePolicy rule the failed pod matches."""
        rules = (((job.get("spec") or {}).get("podFailurePolicy")) or {}).get("rules") or []
        st = pod.get("status") or {}
        for i, rule in enumerate(rules):
            oc = rule.get("onExitCodes")
            if oc:
                for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                    term = (cs.get("state") or {}).get("terminated") or {}
                    code = term.get("exitCode")
                    if code in (None, 0) or (oc.get("containerName") and oc["containerName"] != cs.get("name")):
                        continue
                    inside = code in (oc.get("values") or [])
                    if inside == (oc.get("operator", "In") == "In"):
                        return rule.get("action"), (
                            f"Container {cs.get('name')} for pod {pod['metadata']['namespace']}/"
                            f"{pod['metadata']['name']} failed with exit code {code} matching "
                            f"{rule.get('action')} rule at index {i}")
            for pc in rule.get("onPodConditions") or []:
                if any(c.get("type") == pc.get("type") and c.get("status") == pc.get("status", "True")
                       for c in st.get("conditions") or []):
                    return rule.get("action"), (
                        f"Pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has condition "
                        f"{pc.get('type')} matching {rule.get('action')} rule at index {i}")
        return "Count", None

    def sync_job(self, ns, name):
        job = self.store.get(JOBS, ns, name)
        if job is None or _ignored(job) or job["metadata"].get("deletionTimestamp"):
            return
        md, spec = job["metadata"], job.get("spec") or {}
        uid = md["uid"]
        status = copy.deepcopy(job.get("status") or {})
        for k in ("succeeded", "failed"):
            status[k] = int(status.get(k) or 0)
        pods = self._owned(PODS, ns, uid)
        counted = []
        fail_job = None
        for p in pods:
            if JOB_FINALIZER not in (p["metadata"].get("finalizers") or []):
                continue
            phase = (p.get("status") or {}).get("phase")
            if phase == "Succeeded":
                status["succeeded"] += 1
            elif phase == "Failed" or p["metadata"].get("deletionTimestamp"):
                action, msg = self._pod_failure_policy(job, p)
                if action == "FailJob" and fail_job is None:
                    fail_job = msg
                if action != "Ignore":
                    status["failed"] += 1
                    self.job_last_fail[uid] = time.monotonic()
            else:
                continue
            counted.append(p)
        active = [p for p in pods if _active(p)]
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")
                       and (p.get("status") or {}).get("phase") not in TERMINAL]
        finished = has_cond(job, "Complete") or has_cond(job, "Failed")
        suspended = bool(spec.get("suspend"))
        if not finished:
            if not status.get("startTime") and not suspended:
                status["startTime"] = ts()
            conds = status.setdefault("conditions", [])
            target = get_cond(status, "FailureTarget")
            success = get_cond(status, "SuccessCriteriaMet")
            if not target and not success:
                restarts = 0
                if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
                    restarts = sum(int(c.get("restartCount", 0)) for p in active
                                   for c in ((p.get("status") or {}).get("containerStatuses") or [])
                                   + ((p.get("status") or {}).get("initContainerStatuses") or []))
                completions = spec.get("completions")
                ads = spec.get("activeDeadlineSeconds")
                age = seconds_since(status.get("startTime"))
                if fail_job:
                    target = _cond("FailureTarget", "True", "PodFailurePolicy", fail_job)
                elif status["failed"] + restarts > int(spec.get("backoffLimit", 6)):
                    target = _cond("FailureTarget", "True", "BackoffLimitExceeded",
                                   "Job has reached the specified backoff limit")
                elif ads is not None and age is not None and age >= int(ads):
                    target = _cond("FailureTarget", "True", "DeadlineExceeded",
                                   "Job was active longer than specified deadline")
                elif (completions is not None and status["succeeded"] >= int(completions)) or \
                        (completions is None and status["succeeded"] > 0 and not active):
                    success = _cond("SuccessCriteriaMet", "True", "CompletionsReached",
                                    "Reached expected number of succeeded pods")
                if target:
                    conds.append(target)
                elif success:
                    conds.append(success)
                elif ads is not None and age is not None:
                    self.after(int(ads) - age + 0.05, ("Job", ns, name))
            if target or success:
                for p in active:
                    if self._delete(K_POD, p):
                        self.rec_job.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
                active = []
                terminating = [p for p in self._owned(PODS, ns, uid)
                               if p["metadata"].get("deletionTimestamp")
                               and (p.get("status") or {}).get("phase") not in TERMINAL]
                if not terminating:
                    if target:
                        conds.append(_cond("Failed", "True", target["reason"], target["message"]))
                        self.rec_job.event(job, "Warning", target["reason"], target["message"])
                    else:
                        conds.append(_cond("Complete", "True", success["reason"], success["message"]))
                        status["completionTime"] = ts()
                        self.rec_job.event(job, "Normal", "Completed", "Job completed")
            elif not suspended:
                active = self._job_manage(job, status, active)
            if not conds:
                status.pop("conditions")
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if _pod_ready(p))
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}
        status = {k: v for k, v in status.items() if v or k in ("ready", "terminating", "uncountedTerminatedPods")}
        job = self.reg.set_status(K_JOB, ns, name, status, uid, MANAGER) or job
        for p in counted:
            self._drop_finalizer(p)
        if has_cond(job, "Complete") or has_cond(job, "Failed"):
            self._ttl(job)

    def _job_manage(self, job, status, active):
        spec = job.get("spec") or {}
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            want = 0 if status["succeeded"] > 0 else parallelism
        else:
            want = max(0, min(parallelism, int(completions) - status["succeeded"]))
        if len(active) < want:
            if status["failed"] > 0:
                last = self.job_last_fail.get(job["metadata"]["uid"])
                delay = min(10.0 * 2 ** (status["failed"] - 1), 600.0) * self.scale
                left = (last + delay - time.monotonic()) if last is not None else 0
                if left > 0:
                    self.after(left, ("Job", ns, name))
                    return active
            for _ in range(want - len(active)):
                p = self._create_pod(job, spec.get("template") or {}, self.rec_job, [JOB_FINALIZER])
                if p:
                    active.append(p)
        elif len(active) > want:
            for p in active[want:]:
                if self._delete(K_POD, p):
                    self.rec_job.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            active = active[:want]
        return active

    def _drop_finalizer(self, pod):
        md = pod["metadata"]
        with self.store.lock:
            cur = self.store.get(PODS, md["namespace"], md["name"])
            if cur is None or cur["metadata"]["uid"] != md["uid"]:
                return
            fins = [f for f in cur["metadata"].get("finalizers") or [] if f != JOB_FINALIZER]
            if fins == (cur["metadata"].get("finalizers") or []):
                return
            cur["metadata"]["finalizers"] = fins
            if not fins:
                del cur["metadata"]["finalizers"]
            self.reg.update(K_POD, md["namespace"], md["name"], cur, manager=MANAGER, current=None)

    def orphan_pod_finalizer(self, ns, name):
        """A pod keeping the job-tracking finalizer after its Job is gone."""
        p = self.store.get(PODS, ns, name)
        if p is None or JOB_FINALIZER not in (p["metadata"].get("finalizers") or []):
            return
        ref = controller_ref(p) or {}
        job = self.store.get(JOBS, ns, ref.get("name", "")) if ref.get("kind") == "Job" else None
        if job is None or job["metadata"]["uid"] != ref.get("uid"):
            self._drop_finalizer(p)

    def _ttl(self, job):
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        st = job.get("status") or {}
        finished = st.get("completionTime") or (get_cond(st, "Failed") or {}).get("lastTransitionTime")
        since = seconds_since(finished)
        if since is None:
            return
        left = int(ttl) - since
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        if left > 0:
            self.after(left + 0.05, ("Job", ns, name))
            return
        self._delete(K_JOB, job)

    # ------------------------------------------------------------ garbage collector
    def gc_dependents(self, uid, ns):
        """An owner was deleted: delete its dependents (background propagation),
        or drop the reference when it was deleted with propagationPolicy=Orphan
        or the dependent has other owners."""
        orphan = uid in self.reg.orphan_uids
        self.reg.orphan_uids.discard(uid)
        for kind in resources.KINDS:
            if kind.virtual or kind.gk == EVENTS:
                continue
            for o in self.store.list(kind.gk, ns if (ns and kind.namespaced) else "")[0]:
                refs = o["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                rest = [r for r in refs if r.get("uid") != uid]
                if orphan or rest:
                    with self.store.lock:
                        cur = self.store.get(kind.gk, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                        if cur is None:
                            continue
                        cur["metadata"]["ownerReferences"] = [r for r in cur["metadata"].get("ownerReferences") or []
                                                              if r.get("uid") != uid]
                        if not cur["metadata"]["ownerReferences"]:
                            del cur["metadata"]["ownerReferences"]
                        self.reg.update(kind, o["metadata"].get("namespace", ""), o["metadata"]["name"], cur,
                                        manager="garbage-collector")
                elif not o["metadata"].get("deletionTimestamp"):
                    self._delete(kind, o)

    def gc_check(self, gk, ns, name):
        """A new object whose owners are all absent is garbage (like the real GC)."""
        kind = next((k for k in resources.KINDS if k.gk == gk), None)
        obj = self.store.get(gk, ns if kind and kind.namespaced else "", name)
        if kind is None or obj is None:
            return
        for ref in obj["metadata"].get("ownerReferences") or []:
            okind = resources.by_kind(ref.get("apiVersion"), ref.get("kind"))
            if okind is None:
                return            # an owner kind kubesim does not serve: assume it exists
            owner = self.store.get(okind.gk, ns if okind.namespaced else "", ref.get("name", ""))
            if owner is not None and owner["metadata"]["uid"] == ref.get("uid"):
                return
        self._delete(kind, obj)
