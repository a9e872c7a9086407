#!/usr/bin/env python3
"""kubesim with --controllers --kubelet, driven by the real kubectl and, where
the pattern needs them, the real static binaries from build/ (wait-for-job,
migrate-runner) running in-cluster inside pods.

    python3 -m unittest tests/kubesim/test_controllers.py -v

Tests that run real binaries need root (unshare) and build/wait-for-job,
build/migrate-runner (`make`); they are skipped with the reason otherwise.
Each test works in its own namespace of one shared kubesim."""

import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from kubesim_client import KubeSim  # noqa: E402

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))


def can_run_real():
    if os.geteuid() != 0:
        return "needs root for unshare (real containers)"
    if subprocess.run(["unshare", "-m", "-p", "-f", "--mount-proc", "true"], capture_output=True).returncode:
        return "unshare -m -p does not work here"
    for b in ("wait-for-job", "migrate-runner"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            return f"{BUILD}/{b} is not built (run make)"
    return None


REAL_SKIP = can_run_real()


def wait_until(fn, timeout=15, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def env(**kv):
    return [{"name": k, "value": str(v)} for k, v in kv.items()]


def deployment(name, replicas=3, image="example/app:1", container_env=None, **spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": dict({"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                          "template": {"metadata": {"labels": {"app": name}},
                                       "spec": {"containers": [{"name": "app", "image": image,
                                                                "env": container_env or []}]}}}, **spec)}


def job(name, container, **spec):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": dict({"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}, **spec)}


def wait_rbac(sa, job_name):
    """ServiceAccount + least-privilege Role/RoleBinding for wait-for-job."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": sa},
         "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": [job_name],
                    "verbs": ["get", "list", "watch"]},
                   {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["migrations"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": sa},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
         "subjects": [{"kind": "ServiceAccount", "name": sa}]},
    ]


class ControllersTest(unittest.TestCase):
    ks = None
    counter = 0

    @classmethod
    def setUpClass(cls):
        cls.ks = KubeSim(controllers=True, kubelet=True, bin_dir=BUILD, backoff_scale=0.05, max_grace=1).start()

    @classmethod
    def tearDownClass(cls):
        log = os.path.join(cls.ks.state_dir, "kubesim.log")
        with open(log) as f:
            text = f.read()
        cls.ks.stop()
        assert "Traceback" not in text, text[-4000:]

    def setUp(self):
        ControllersTest.counter += 1
        self.ns = f"t{self.counter}-{self._testMethodName[5:25].replace('_', '-').strip('-')}"
        self.kubectl("create", "namespace", self.ns)

    # ------------------------------------------------------------ helpers
    def kubectl(self, *args, rc=0, input=None, timeout=60):
        r = self.ks.kubectl(*args, input=input, timeout=timeout)
        if rc is not None:
            self.assertEqual(r.returncode, rc, f"kubectl {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r

    def create(self, *objs):
        return self.kubectl("-n", self.ns, "apply", "-f", "-", input="\n".join(json.dumps(o) for o in objs))

    def get(self, kind, name=None):
        items = self.ks.objects(kind=kind, namespace=self.ns)
        if name is None:
            return items
        return next((o for o in items if o["metadata"]["name"] == name), None)

    def pods(self, prefix=""):
        return [p for p in self.get("Pod") if p["metadata"]["name"].startswith(prefix)]

    def pod_rows(self):
        """NAME -> (READY, STATUS, RESTARTS) as `kubectl get pods` prints them."""
        out = self.kubectl("-n", self.ns, "get", "pods", "--no-headers").stdout
        rows = {}
        for line in out.splitlines():
            cols = re.split(r"\s{2,}", line.strip())
            if len(cols) >= 4:
                rows[cols[0]] = (cols[1], cols[2], cols[3])
        return rows

    def wait_status(self, prefix, status, timeout=15):
        return wait_until(lambda: [n for n, r in self.pod_rows().items() if n.startswith(prefix) and r[1] == status],
                          timeout, 0.1, f"a pod {prefix}* with STATUS {status}: {self.pod_rows()}")

    def job_cond(self, name):
        j = self.get("Job", name) or {}
        return {c["type"]: c for c in (j.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}

    # ------------------------------------------------------------ Deployment / ReplicaSet
    def test_deployment_rollout_with_kubectl_rollout_status(self):
        self.create(deployment("web", container_env=env(KUBESIM_READY_AFTER="0.2s")))
        t = time.monotonic()
        r = self.kubectl("-n", self.ns, "rollout", "status", "deployment/web", "--timeout=20s")
        self.assertIn('deployment "web" successfully rolled out', r.stdout)
        self.assertLess(time.monotonic() - t, 5)
        d = self.get("Deployment", "web")
        self.assertEqual(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1")
        st = d["status"]
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
            self.assertEqual(st[k], 3, k)
        self.assertEqual(st["observedGeneration"], 1)
        conds = {c["type"]: c for c in st["conditions"]}
        self.assertEqual(conds["Available"]["reason"], "MinimumReplicasAvailable")
        self.assertEqual(conds["Progressing"]["reason"], "NewReplicaSetAvailable")
        # upgrade: a new ReplicaSet (revision 2) replaces the old one under maxSurge/maxUnavailable
        self.kubectl("-n", self.ns, "set", "image", "deployment/web", "app=example/app:2")
        r = self.kubectl("-n", self.ns, "rollout", "status", "deployment/web", "--timeout=20s")
        self.assertIn("successfully rolled out", r.stdout)
        rss = {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r for r in self.get("ReplicaSet")}
        self.assertEqual(set(rss), {"1", "2"})
        self.assertEqual((rss["1"]["spec"]["replicas"], rss["2"]["spec"]["replicas"]), (0, 3))
        h = rss["2"]["metadata"]["labels"]["pod-template-hash"]
        self.assertEqual(rss["2"]["metadata"]["name"], f"web-{h}")
        wait_until(lambda: len(self.pods()) == 3 and all(p["spec"]["containers"][0]["image"] == "example/app:2"
                                                         for p in self.pods()), what="old pods gone")
        out = self.kubectl("-n", self.ns, "get", "deployment", "web").stdout
        self.assertRegex(out, r"web\s+3/3\s+3\s+3\s")
        events = self.kubectl("-n", self.ns, "get", "events").stdout
        self.assertRegex(events, r"ScalingReplicaSet\s+deployment/web\s+Scaled up replica set web-\w+ from 0 to 1")
        # never more than replicas + maxSurge (25% of 3 -> 1) pods at once
        self.assertNotIn("from 0 to 2", events.split("Scaled up replica set web-" + h)[-1][:20])

    def test_progress_deadline_exceeded(self):
        self.create(deployment("stuck", replicas=1, progressDeadlineSeconds=1,
                               container_env=env(KUBESIM_NEVER_READY=1)))
        r = self.kubectl("-n", self.ns, "rollout", "status", "deployment/stuck", "--timeout=20s", rc=1)
        self.assertIn('deployment "stuck" exceeded its progress deadline', r.stderr)
        conds = {c["type"]: c for c in self.get("Deployment", "stuck")["status"]["conditions"]}
        self.assertEqual((conds["Progressing"]["status"], conds["Progressing"]["reason"]),
                         ("False", "ProgressDeadlineExceeded"))
        self.assertEqual((conds["Available"]["status"], conds["Available"]["reason"]),
                         ("False", "MinimumReplicasUnavailable"))

    def test_replicaset_scaling_and_garbage_collection(self):
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rs"}},
                       "template": {"metadata": {"labels": {"app": "rs"}},
                                    "spec": {"containers": [{"name": "c", "image": "example/c:1"}]}}}}
        self.create(rs)
        wait_until(lambda: self.pod_rows() and all(r[:2] == ("1/1", "Running") for r in self.pod_rows().values())
                   and len(self.pod_rows()) == 2, what="2 running pods")
        self.kubectl("-n", self.ns, "patch", "rs", "rs", "-p", '{"spec":{"replicas":4}}')
        wait_until(lambda: (self.get("ReplicaSet", "rs")["status"].get("readyReplicas")) == 4, what="4 ready")
        self.kubectl("-n", self.ns, "patch", "rs", "rs", "-p", '{"spec":{"replicas":1}}')
        wait_until(lambda: len(self.pods()) == 1, what="scaled down to 1 pod")
        st = self.get("ReplicaSet", "rs")["status"]
        self.assertEqual((st["replicas"], st["readyReplicas"], st["availableReplicas"]), (1, 1, 1))
        # orphan: the pod stays, without its ownerReference
        self.kubectl("-n", self.ns, "delete", "rs", "rs", "--cascade=orphan")
        pod = wait_until(lambda: [p for p in self.pods() if not p["metadata"].get("ownerReferences")],
                         what="orphaned pod")[0]
        # background (default): dependents are deleted
        self.create(rs)
        self.kubectl("-n", self.ns, "delete", "rs", "rs")
        wait_until(lambda: [p["metadata"]["name"] for p in self.pods()] == [pod["metadata"]["name"]],
                   what="only the orphan left")

    # ------------------------------------------------------------ Job
    def test_job_success_and_ttl(self):
        self.create(job("ok", {"name": "m", "image": "example/m:1",
                               "env": env(KUBESIM_EXIT_AFTER="0.3s", KUBESIM_LOG="migrated")},
                        ttlSecondsAfterFinished=3))
        r = self.kubectl("-n", self.ns, "wait", "--for=condition=complete", "job/ok", "--timeout=15s")
        self.assertIn("condition met", r.stdout)
        j = self.get("Job", "ok")
        st = j["status"]
        self.assertEqual([c["type"] for c in st["conditions"]], ["SuccessCriteriaMet", "Complete"])
        self.assertEqual(st["conditions"][1]["reason"], "CompletionsReached")
        self.assertEqual((st["succeeded"], st.get("active", 0), st.get("failed", 0)), (1, 0, 0))
        self.assertIn("completionTime", st)
        pod = self.pods("ok-")[0]
        self.assertEqual(pod["status"]["phase"], "Succeeded")
        self.assertNotIn("finalizers", pod["metadata"])       # job-tracking finalizer removed once counted
        self.assertEqual(self.pod_rows()[pod["metadata"]["name"]][:2], ("0/1", "Completed"))
        self.assertEqual(self.kubectl("-n", self.ns, "logs", "job/ok").stdout, "migrated\n")
        self.assertRegex(self.kubectl("-n", self.ns, "get", "job", "ok").stdout, r"ok\s+Complete\s+1/1\s")
        # ttlSecondsAfterFinished: the Job goes, and its pod with it (garbage collection)
        wait_until(lambda: self.get("Job", "ok") is None and not self.pods(), timeout=10, what="TTL deletion")

    def test_job_backoff_limit(self):
        self.create(job("bad", {"name": "m", "image": "example/m:1", "env": env(KUBESIM_EXIT=3)}, backoffLimit=1))
        r = self.kubectl("-n", self.ns, "wait", "--for=condition=failed", "job/bad", "--timeout=15s")
        self.assertIn("condition met", r.stdout)
        st = self.get("Job", "bad")["status"]
        conds = {c["type"]: c for c in st["conditions"]}
        self.assertEqual(set(conds), {"FailureTarget", "Failed"})
        self.assertEqual(conds["Failed"]["reason"], "BackoffLimitExceeded")
        self.assertEqual(conds["Failed"]["message"], "Job has reached the specified backoff limit")
        self.assertEqual(st["failed"], 2)
        self.assertNotIn("completionTime", st)
        rows = self.pod_rows()
        self.assertEqual(sorted(r[:2] for r in rows.values()), [("0/1", "Error")] * 2)
        term = self.pods()[0]["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (3, "Error"))
        self.assertRegex(self.kubectl("-n", self.ns, "get", "job", "bad").stdout, r"bad\s+Failed\s+0/1\s")

    def test_job_failed_once_then_succeeded(self):
        self.create(job("retry", {"name": "m", "image": "example/m:1", "env": env(KUBESIM_EXIT="1,0")},
                        backoffLimit=2))
        self.kubectl("-n", self.ns, "wait", "--for=condition=complete", "job/retry", "--timeout=15s")
        st = self.get("Job", "retry")["status"]
        self.assertEqual((st["failed"], st["succeeded"]), (1, 1))
        self.assertEqual(sorted(r[1] for r in self.pod_rows().values()), ["Completed", "Error"])

    def test_pod_failure_policy_fail_job(self):
        self.create(job("pfp", {"name": "m", "image": "example/m:1", "env": env(KUBESIM_EXIT=42)}, backoffLimit=5,
                        podFailurePolicy={"rules": [{"action": "FailJob",
                                                     "onExitCodes": {"operator": "In", "values": [42]}}]}))
        self.kubectl("-n", self.ns, "wait", "--for=condition=failed", "job/pfp", "--timeout=15s")
        c = self.job_cond("pfp")["Failed"]
        self.assertEqual(c["reason"], "PodFailurePolicy")
        self.assertRegex(c["message"], r"Container m for pod t\d+-[\w-]+/pfp-\w+ failed with exit code 42 "
                                       r"matching FailJob rule at index 0")
        self.assertEqual(len(self.pods()), 1)

    # ------------------------------------------------------------ kubelet states
    def test_crash_loop_back_off(self):
        self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crash"},
                     "spec": {"containers": [{"name": "app", "image": "example/app:1",
                                              "env": env(KUBESIM_CRASHLOOP=1, KUBESIM_LOG="boom")}]}})
        self.wait_status("crash", "CrashLoopBackOff")

        def backing_off():      # one object in the back-off (scaled to 1 s, 2 s, ...: it can end between two reads)
            p = self.get("Pod", "crash")
            c = ((p or {}).get("status") or {}).get("containerStatuses") or [{}]
            return p if c[0].get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" else None
        pod = wait_until(backing_off, 15, 0.05, "the pod's container in CrashLoopBackOff")
        cs = pod["status"]["containerStatuses"][0]
        self.assertEqual(pod["status"]["phase"], "Running")
        self.assertGreaterEqual(cs["restartCount"], 1)
        self.assertEqual(cs["lastState"]["terminated"]["exitCode"], 1)
        self.assertEqual(cs["lastState"]["terminated"]["reason"], "Error")
        self.assertRegex(cs["state"]["waiting"]["message"],
                         r"^back-off \d+ms restarting failed container=app pod=crash_%s\(" % self.ns)
        self.assertFalse(cs["ready"])
        self.assertEqual(self.kubectl("-n", self.ns, "logs", "crash", "--previous").stdout, "boom\n")
        row = self.pod_rows()["crash"]
        self.assertRegex(row[2], r"^\d+ \(\d+s ago\)$")
        events = self.kubectl("-n", self.ns, "get", "events").stdout
        self.assertRegex(events, r"Warning\s+BackOff\s+pod/crash\s+Back-off restarting failed container app")

    def test_init_states(self):
        ic = {"name": "init", "image": "example/init:1"}
        self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "init-error"},
                     "spec": {"restartPolicy": "Never",
                              "initContainers": [dict(ic, env=env(KUBESIM_EXIT=2))],
                              "containers": [{"name": "app", "image": "example/app:1"}]}},
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "init-loop"},
                     "spec": {"initContainers": [dict(ic, env=env(KUBESIM_CRASHLOOP=1))],
                              "containers": [{"name": "app", "image": "example/app:1"}]}},
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "init-slow"},
                     "spec": {"initContainers": [dict(ic, env=env(KUBESIM_EXIT_AFTER="2s")),
                                                 dict(ic, name="init2", env=env(KUBESIM_EXIT_AFTER="2s"))],
                              "containers": [{"name": "app", "image": "example/app:1"}]}})
        self.wait_status("init-error", "Init:Error")
        self.wait_status("init-loop", "Init:CrashLoopBackOff")
        self.wait_status("init-slow", "Init:1/2")
        self.wait_status("init-slow", "Running")
        p = self.get("Pod", "init-error")
        self.assertEqual(p["status"]["phase"], "Failed")
        self.assertEqual(p["status"]["containerStatuses"][0]["state"], {"waiting": {"reason": "PodInitializing"}})
        conds = {c["type"]: c for c in p["status"]["conditions"]}
        self.assertEqual(conds["Initialized"]["message"], "containers with incomplete status: [init]")
        p = self.get("Pod", "init-loop")
        self.assertEqual(p["status"]["phase"], "Pending")
        slow = self.get("Pod", "init-slow")["status"]
        self.assertEqual([s["state"]["terminated"]["reason"] for s in slow["initContainerStatuses"]],
                         ["Completed", "Completed"])
        self.assertEqual([c["type"] for c in slow["conditions"]],
                         ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"])

    def test_image_pull_and_config_errors(self):
        self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pull"},
                     "spec": {"containers": [{"name": "app", "image": "example/app:bad"}]}},
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cfg"},
                     "spec": {"containers": [{"name": "app", "image": "example/app:1", "env": [
                         {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]}]}},
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "badname"},
                     "spec": {"containers": [{"name": "app", "image": "Example/App:1"}]}})
        self.wait_status("pull", "ImagePullBackOff")
        self.wait_status("pull", "ErrImagePull")
        self.wait_status("badname", "InvalidImageName")
        self.wait_status("cfg", "CreateContainerConfigError")
        w = self.get("Pod", "cfg")["status"]["containerStatuses"][0]["state"]["waiting"]
        self.assertEqual(w, {"reason": "CreateContainerConfigError", "message": 'secret "db" not found'})
        self.kubectl("-n", self.ns, "create", "secret", "generic", "db", "--from-literal=url=postgres://x")
        self.wait_status("cfg", "Running")

    def test_graceful_delete_and_no_orphan_processes(self):
        if REAL_SKIP:
            self.skipTest(REAL_SKIP)
        marker = f"987.{os.getpid()}"     # sleep argument only this test (and process) uses
        self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "proc"},
                     "spec": {"containers": [{"name": "app", "image": "busybox:1", "env": env(KUBESIM_EXEC=1),
                                              "command": ["sh", "-c", f"echo up; sleep {marker}"]}]}})
        self.wait_status("proc", "Running")

        def procs():
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if marker.encode() in f.read():
                            found.append(pid)
                except OSError:
                    pass
            return found
        self.assertTrue(wait_until(procs, what="the container's processes"))
        wait_until(lambda: self.kubectl("-n", self.ns, "logs", "proc").stdout == "up\n", what="log")
        t = time.monotonic()
        self.kubectl("-n", self.ns, "delete", "pod", "proc", "--timeout=20s")
        # sh as PID 1 of its namespace has no SIGTERM handler: SIGKILL after the (capped) grace
        self.assertLess(time.monotonic() - t, 5)
        self.assertEqual(procs(), [])

    # ------------------------------------------------------------ real binaries in pods
    def test_wait_for_job_init_container_gates_until_the_job_completes(self):
        if REAL_SKIP:
            self.skipTest(REAL_SKIP)
        self.create(*wait_rbac("app", "migrate-1"),
                    job("migrate-1", {"name": "m", "image": "example/m:1", "env": env(KUBESIM_EXIT_AFTER="1.5s")}),
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                     "spec": {"serviceAccountName": "app",
                              "initContainers": [{"name": "wait", "image": "ghcr.io/example/wait-for-job:0.1",
                                                  "args": ["--timeout", "30s", "migrate-1"]}],
                              "containers": [{"name": "app", "image": "example/app:1"}]}},
                    # the same gate with a ServiceAccount whose Role does not name the Job: exit 77
                    *wait_rbac("other", "some-other-job"),
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "denied"},
                     "spec": {"serviceAccountName": "other", "restartPolicy": "Never",
                              "initContainers": [{"name": "wait", "image": "ghcr.io/example/wait-for-job:0.1",
                                                  "args": ["--timeout", "30s", "migrate-1"]}],
                              "containers": [{"name": "app", "image": "example/app:1"}]}})
        self.wait_status("app", "Init:0/1", timeout=5)
        ic = wait_until(lambda: (self.get("Pod", "app")["status"].get("initContainerStatuses") or [{}])[0]
                        .get("state", {}).get("running"), what="init container running")
        self.assertTrue(ic)
        self.assertFalse(self.job_cond("migrate-1"))
        self.wait_status("app", "Running", timeout=15)
        self.assertIn("Complete", self.job_cond("migrate-1"))
        st = self.get("Pod", "app")["status"]["initContainerStatuses"][0]
        self.assertEqual((st["state"]["terminated"]["exitCode"], st["state"]["terminated"]["reason"], st["ready"]),
                         (0, "Completed", True))
        log = self.kubectl("-n", self.ns, "logs", "app", "-c", "wait").stdout
        self.assertIn("job migrate-1 succeeded", log)
        self.wait_status("denied", "Init:Error", timeout=10)
        term = self.get("Pod", "denied")["status"]["initContainerStatuses"][0]["state"]["terminated"]
        self.assertEqual(term["exitCode"], 77)
        log = self.kubectl("-n", self.ns, "logs", "denied", "-c", "wait").stdout
        self.assertIn('cannot list resource "jobs"', log)

    def test_migrate_runner_records_outcome_and_termination_message(self):
        if REAL_SKIP:
            self.skipTest(REAL_SKIP)
        self.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "migrate"}},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "migrate"},
                     "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
                               {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["migrations"],
                                "verbs": ["get", "update"]}]},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": "migrate"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "migrate"},
                     "subjects": [{"kind": "ServiceAccount", "name": "migrate"}]})
        container = {"name": "migrate", "image": "example/app-migrations:1",
                     "command": ["/migrate-runner", "--record", "migrations", "--",
                                 "sh", "-c", "echo applying; sleep 0.3; echo 'schema v7 broken' >&2; exit 3"],
                     "env": [{"name": "JOB_NAME", "valueFrom": {"fieldRef": {
                         "fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}},
                             {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
        j = job("migrate-7", container, backoffLimit=0)
        j["spec"]["template"]["spec"]["serviceAccountName"] = "migrate"
        self.create(j)
        self.kubectl("-n", self.ns, "wait", "--for=condition=failed", "job/migrate-7", "--timeout=20s")
        pod = self.pods("migrate-7-")[0]
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (3, "Error"))
        msg = json.loads(term["message"])          # read from /dev/termination-log in the container
        self.assertEqual((msg["status"], msg["exitCode"], msg["job"], msg["pod"]),
                         ("failed", 3, "migrate-7", pod["metadata"]["name"]))
        rec = json.loads(self.get("ConfigMap", "migrations")["data"]["migrate-7"])
        self.assertEqual((rec["status"], rec["reason"], rec["exitCode"], rec["attempt"]), ("failed", "Exited", 3, 1))
        self.assertIn("schema v7 broken", rec["outputTail"])
        log = self.kubectl("-n", self.ns, "logs", pod["metadata"]["name"]).stdout
        self.assertIn("applying", log)
        self.assertEqual(self.pod_rows()[pod["metadata"]["name"]][1], "Error")

    def test_whole_pattern_in_seconds(self):
        """Migration Job (real migrate-runner, 2 s) + 3 app pods gated by the real wait-for-job."""
        if REAL_SKIP:
            self.skipTest(REAL_SKIP)
        sa_rules = [{"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": ["app-migrate-1"],
                     "verbs": ["get", "list", "watch"]},
                    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-migrations"],
                     "verbs": ["get", "list", "watch", "update"]},
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]
        objs = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "app"},
                 "rules": sa_rules},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "app"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app"},
                 "subjects": [{"kind": "ServiceAccount", "name": "app"}]}]
        # the migration image's own ENTRYPOINT/CMD (registered, as an image config would hold them)
        self.ks.image("example/app-migrations", ["/migrate-runner"],
                      ["--record", "app-migrations", "--", "sh", "-c", "sleep 2; echo migrated"])
        j = job("app-migrate-1", {"name": "migrate", "image": "example/app-migrations:1",
                                  "env": [{"name": "JOB_NAME", "valueFrom": {"fieldRef": {
                                      "fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}}]})
        j["spec"]["template"]["spec"]["serviceAccountName"] = "app"
        d = deployment("app", container_env=env(KUBESIM_READY_AFTER="0.2s"))
        d["spec"]["template"]["spec"].update(serviceAccountName="app", initContainers=[
            {"name": "wait-for-migration", "image": "ghcr.io/example/wait-for-job:0.1",
             "args": ["--record", "app-migrations", "--timeout", "60s", "app-migrate-1"]}])
        t = time.monotonic()
        self.create(*objs, j, d)
        self.kubectl("-n", self.ns, "rollout", "status", "deployment/app", "--timeout=30s")
        took = time.monotonic() - t
        self.assertIn("Complete", self.job_cond("app-migrate-1"))
        self.assertLess(took, 8, "the whole pattern should take seconds")
        self.assertGreater(took, 2, "app pods must wait for the 2 s migration")
        rows = self.pod_rows()
        self.assertEqual(sorted(r[1] for r in rows.values()), ["Completed", "Running", "Running", "Running"])
        rec = json.loads(self.get("ConfigMap", "app-migrations")["data"]["app-migrate-1"])
        self.assertEqual(rec["status"], "succeeded")


if __name__ == "__main__":
    unittest.main()
