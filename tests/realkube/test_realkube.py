"""The binaries against a real control plane driven by its real controllers.

kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes,
tests/realkube/go.mod) and etcd, plus the node agent (nodeagent.py) running
pods: a Job really runs a pod and really exhausts its backoffLimit, a
Deployment really exceeds its progress deadline, the pods' tokens come from
the TokenRequest API and are checked by the real authenticator, and RBAC
`resourceNames` rules are enforced by the real authorizer. What tests/e2e
does with status written by hand, this does with the controllers.

Skips (counted, with the reason) without Go, root or unshare, or without
build/ (make).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))

from realkube import NODE_NAME, RealKube, go_available  # noqa: E402

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))
SLOW = float(os.environ.get("MG_SLOW", "1"))


def why_not():
    if not go_available():
        return "go is not on PATH: the real control plane cannot be built"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "the node agent runs containers in namespaces: needs root and unshare"
    for b in ("wait-for-job", "migrate-runner", "release-check"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            return f"{BUILD}/{b} is missing: run make"
    return None


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KUBERNETES_", "WAIT_FOR_JOB_", "RELEASE_CHECK_", "MR_")) and k != "KUBECONFIG"}
    env["HOME"] = "/nonexistent-home"
    env.update(extra or {})
    return env


def run(argv, timeout=60, env=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout * SLOW, env=env or clean_env())


def sim_container(name="main", **behaviour):
    """A container the node agent simulates (kubelet.py "simulated" mode)."""
    env = [{"name": "KUBESIM_" + k.upper(), "value": str(v)} for k, v in behaviour.items()]
    return {"name": name, "image": "registry.example/app:1", "env": env}


def job(name, ns, container, backoff=0, **spec):
    s = {"backoffLimit": backoff, "template": {"spec": {"restartPolicy": "Never", "containers": [container],
                                                           "terminationGracePeriodSeconds": 1}}}
    s.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns}, "spec": s}


def deployment(name, ns, container, replicas=2, **spec):
    s = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
         "template": {"metadata": {"labels": {"app": name}},
                      "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}}
    s.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}}, "spec": s}


@unittest.skipIf(why_not(), why_not())
class RealControlPlane(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rk = RealKube(node=True, bin_dir=BUILD, backoff_scale=0.05, max_grace=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.rk.stop()

    def setUp(self):
        self.ns = "t-" + self.id().split(".")[-1].replace("_", "-").lower()[5:40].strip("-")
        self.rk.ensure_namespace(self.ns)

    def bin(self, name, *args, kubeconfig=None):
        return [os.path.join(BUILD, name), "--kubeconfig", kubeconfig or self.rk.kubeconfig, "-n", self.ns, *args]

    def wait_until(self, what, pred, timeout=60):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.2)
        self.fail(f"timed out waiting for {what}")

    def get(self, path):
        code, _, body = self.rk.api("GET", path)
        return json.loads(body) if code == 200 else None

    # ---- the control plane itself -------------------------------------------------

    def test_control_plane_and_node(self):
        r = self.rk.kubectl("get", "nodes", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        node = json.loads(r.stdout)["items"][0]
        self.assertEqual(node["metadata"]["name"], NODE_NAME)
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        self.assertEqual(ready[0]["status"], "True")
        code, _, body = self.rk.api("GET", "/version")
        self.assertEqual(json.loads(body)["gitVersion"], "v1.37.2")
        lease = self.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE_NAME}")
        self.assertEqual(lease["spec"]["holderIdentity"], NODE_NAME)

    def test_job_template_is_immutable(self):
        """What kubesim must reproduce (the chart's reinstall bug hid behind it)."""
        self.rk.put_object(job("imm", self.ns, sim_container(exit_after="30s"), suspend=True))
        for _ in range(10):     # the Job controller writes it too (Suspended): 409 means re-read
            cur = self.get(f"/apis/batch/v1/namespaces/{self.ns}/jobs/imm")
            cur["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/app:2"
            code, _, body = self.rk.api("PUT", f"/apis/batch/v1/namespaces/{self.ns}/jobs/imm", cur)
            if code != 409:
                break
        self.assertEqual(code, 422, body)
        self.assertIn(b"field is immutable", body)

    # ---- wait-for-job on Jobs run by the real Job controller --------------------------

    def test_wait_for_job_success_from_real_controller(self):
        self.rk.put_object(job("migrate", self.ns, sim_container(exit_after="1s", exit="0")))
        r = run(self.bin("wait-for-job", "--timeout", "90s", "migrate"), timeout=100)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("job migrate succeeded", r.stderr)
        # wait-for-job may exit on SuccessCriteriaMet while the pod is still in
        # uncountedTerminatedPods: the counter follows a moment later
        self.wait_until("succeeded 1", lambda: self.get(
            f"/apis/batch/v1/namespaces/{self.ns}/jobs/migrate")["status"].get("succeeded") == 1)

    def test_wait_for_job_backoff_limit_really_exceeded(self):
        self.rk.put_object(job("migrate", self.ns, sim_container(exit="1", log="ERROR: relation exists"),
                               backoff=1))
        r = run(self.bin("wait-for-job", "--timeout", "90s", "migrate"), timeout=100)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("BackoffLimitExceeded", r.stderr)
        # (FailureTarget comes first: the counter may follow a moment later)
        self.wait_until("failed 2", lambda: self.get(
            f"/apis/batch/v1/namespaces/{self.ns}/jobs/migrate")["status"].get("failed") == 2)

    def test_wait_for_job_client_certificate_pem_key(self):
        """kubeadm/kind kubeconfigs: client certificate + PEM key (issue #15 item 1)."""
        self.rk.put_object(job("migrate", self.ns, sim_container(exit_after="0.5s", exit="0")))
        r = run(self.bin("wait-for-job", "--timeout", "90s", "migrate", kubeconfig=self.rk.kubeconfig_cert),
                timeout=100)
        self.assertEqual(r.returncode, 0, r.stderr)

    # ---- the gate: a pod's init container, in-cluster, with resourceNames RBAC --------

    def rbac_for_gate(self, sa, job_name):
        self.rk.ensure_sa(self.ns, sa)
        self.rk.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                            "metadata": {"name": sa, "namespace": self.ns},
                            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"],
                                       "verbs": ["get", "list", "watch"], "resourceNames": [job_name]}]})
        self.rk.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                            "metadata": {"name": sa, "namespace": self.ns},
                            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
                            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": self.ns}]})

    def gated_pod(self, name, sa, job_name):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": self.ns},
                "spec": {"serviceAccountName": sa, "terminationGracePeriodSeconds": 1,
                         "initContainers": [{"name": "gate", "image": "migration-gate/wait-for-job:test",
                                             "args": [job_name]}],
                         "containers": [sim_container("app")]}}

    def pod(self, name):
        return self.get(f"/api/v1/namespaces/{self.ns}/pods/{name}")

    def test_gate_holds_until_the_real_job_succeeds(self):
        self.rbac_for_gate("app", "migrate")
        self.rk.put_object(self.gated_pod("app", "app", "migrate"))
        # no Job yet: the gate waits (kubernetes#75227), the pod stays Init:0/1
        self.wait_until("the gate to run", lambda: (self.pod("app").get("status", {})
                                                    .get("initContainerStatuses") or [{}])[0]
                        .get("state", {}).get("running"))
        time.sleep(2)
        self.assertEqual(self.pod("app")["status"]["phase"], "Pending")
        self.rk.put_object(job("migrate", self.ns, sim_container(exit_after="1s", exit="0")))
        p = self.wait_until("the app pod to run", lambda: self.pod("app")["status"]["phase"] == "Running" and
                            self.pod("app"))
        gate = p["status"]["initContainerStatuses"][0]["state"]["terminated"]
        self.assertEqual(gate["exitCode"], 0)
        r = self.rk.kubectl("logs", "-n", self.ns, "app", "-c", "gate")
        self.assertEqual(r.returncode, 0, r.stderr)      # pods/log: API server -> node agent
        self.assertIn("job migrate succeeded", r.stdout)

    def test_gate_fails_on_a_failed_job_and_rbac_names_the_job(self):
        self.rbac_for_gate("app", "migrate")
        self.rk.put_object(job("migrate", self.ns, sim_container(exit="3")))
        self.rk.put_object(self.gated_pod("app", "app", "migrate"))
        self.rk.put_object(self.gated_pod("other", "app", "not-mine"))
        p = self.wait_until("the gate to fail", lambda: (self.pod("app")["status"].get("initContainerStatuses")
                                                          or [{}])[0].get("lastState", {}).get("terminated")
                            or (self.pod("app")["status"].get("initContainerStatuses") or [{}])[0]
                            .get("state", {}).get("terminated"))
        self.assertEqual(p["exitCode"], 1, p)
        o = self.wait_until("the other gate to be refused", lambda: (self.pod("other")["status"]
                            .get("initContainerStatuses") or [{}])[0].get("lastState", {}).get("terminated")
                            or (self.pod("other")["status"].get("initContainerStatuses") or [{}])[0]
                            .get("state", {}).get("terminated"), timeout=90)
        self.assertEqual(o["exitCode"], 77, o)       # the real authorizer refused: not our Job

    # ---- migrate-runner: record ConfigMap and Lease through real optimistic concurrency --

    def test_migrate_runner_records_and_locks(self):
        sa = "migrate"
        self.rk.ensure_sa(self.ns, sa)
        self.rk.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                            "metadata": {"name": sa, "namespace": self.ns},
                            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                       "verbs": ["get", "create", "update"]},
                                      {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                       "verbs": ["get", "create", "update"]}]})
        self.rk.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                            "metadata": {"name": sa, "namespace": self.ns},
                            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
                            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": self.ns}]})
        c = {"name": "migrate", "image": "registry.example/migrations:1",
             "command": ["/migrate-runner", "--record", "app-migrations", "--lock", "app-migrate", "--",
                         "sh", "-c", "echo applying 0042; echo done"],
             "env": [{"name": "JOB_NAME", "valueFrom": {"fieldRef": {
                 "fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}},
                     {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
        j = job("app-migrate-1", self.ns, c)
        j["spec"]["template"]["spec"]["serviceAccountName"] = sa
        self.rk.put_object(j)
        r = run(self.bin("wait-for-job", "--timeout", "90s", "--record", "app-migrations", "app-migrate-1"),
                timeout=100)
        self.assertEqual(r.returncode, 0, r.stderr)
        cm = self.get(f"/api/v1/namespaces/{self.ns}/configmaps/app-migrations")
        rec = json.loads(cm["data"]["app-migrate-1"])
        self.assertEqual(rec["status"], "succeeded")
        self.assertEqual(rec["exitCode"], 0)
        self.assertIn("done", rec["outputTail"])
        lease = self.get(f"/apis/coordination.k8s.io/v1/namespaces/{self.ns}/leases/app-migrate")
        self.assertIsNotNone(lease, "the Lease was never written (MicroTime accepted by the real server?)")
        pods = self.get(f"/api/v1/namespaces/{self.ns}/pods?labelSelector=job-name%3Dapp-migrate-1")["items"]
        term = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual(json.loads(term["message"])["status"], "succeeded")
        # the Job is gone (TTL, or deleted): the record decides
        self.rk.delete("batch/v1", "Job", self.ns, "app-migrate-1")
        self.wait_until("the Job to be gone", lambda: self.get(
            f"/apis/batch/v1/namespaces/{self.ns}/jobs/app-migrate-1") is None)
        r = run(self.bin("wait-for-job", "--timeout", "20s", "--record", "app-migrations", "app-migrate-1"))
        self.assertEqual(r.returncode, 0, r.stderr)

    # ---- release-check on rollouts run by the real Deployment controller ----------------

    def test_release_check_healthy_rollout(self):
        self.rk.put_object(deployment("web", self.ns, sim_container("app")))
        r = run(self.bin("release-check", "--no-helm", "-l", "app=web", "--timeout", "90s", "web"), timeout=100)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        d = self.get(f"/apis/apps/v1/namespaces/{self.ns}/deployments/web")
        self.assertEqual(d["status"].get("readyReplicas"), 2)

    def test_release_check_crashloop_fails_fast_with_logs_through_the_api(self):
        self.rk.put_object(deployment("web", self.ns, sim_container(
            "app", crashloop="1", log="fatal: cannot reach db at db:5432")))
        # a crashing container without a readiness probe is Ready for a moment:
        # --min-ready is what makes that moment not count (release-check(1))
        r = run(self.bin("release-check", "--no-helm", "-l", "app=web", "--timeout", "90s", "--min-ready", "5s",
                         "web", kubeconfig=self.rk.kubeconfig_cert), timeout=100)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("CrashLoopBackOff", out)
        self.assertIn("fatal: cannot reach db at db:5432", out)     # pods/log via the node agent
        self.assertIn("BackOff", out)                              # the pod's Events

    def test_release_check_progress_deadline_from_the_real_controller(self):
        self.rk.put_object(deployment("web", self.ns, sim_container("app", never_ready="1"), replicas=1,
                                      progressDeadlineSeconds=2))
        r = run(self.bin("release-check", "--no-helm", "-l", "app=web", "--timeout", "120s", "web"), timeout=130)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("ProgressDeadlineExceeded", out)

    def test_release_check_statefulset_partition_holding_every_pod(self):
        """A staged StatefulSet rollout (partition = replicas): the real controller moves no pod and,
        the count being 0, sends no updatedReplicas; nothing is to be updated, so healthy at once
        (it waited out the timeout when a missing count was always unknown)."""
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "db", "namespace": self.ns, "labels": {"app": "db"}},
               "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                        "template": {"metadata": {"labels": {"app": "db"}},
                                     "spec": {"containers": [sim_container("db")],
                                              "terminationGracePeriodSeconds": 1}}}}
        self.rk.put_object(sts)
        r = run(self.bin("release-check", "--no-helm", "-l", "app=db", "--timeout", "90s", "db"), timeout=100)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        cur = self.get(f"/apis/apps/v1/namespaces/{self.ns}/statefulsets/db")
        cur["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
        cur["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "KUBESIM_LOG", "value": "v2"}]
        self.rk.put_object(cur)
        st = self.wait_until("the controller's status of generation 2", lambda: (lambda o: o["status"] if o and o[
            "status"].get("observedGeneration") == 2 and o["status"].get("updateRevision") else None)(
            self.get(f"/apis/apps/v1/namespaces/{self.ns}/statefulsets/db")))
        self.assertNotEqual(st["currentRevision"], st["updateRevision"])
        self.assertNotIn("updatedReplicas", st)      # the API's omitted 0
        r = run(self.bin("release-check", "--no-helm", "-l", "app=db", "--timeout", "20s", "db"), timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ordinals >= 2 updated (partition)", r.stdout)

    def test_release_check_pages_lists_with_the_real_continue_token(self):
        """--chunk-size 2 on 5 pods: three pod list requests, the later two with the server's token."""
        self.rk.put_object(deployment("web", self.ns, sim_container("app"), replicas=5))
        self.wait_until("5 pods", lambda: len((self.get(f"/api/v1/namespaces/{self.ns}/pods") or {})
                                              .get("items", [])) == 5)
        self.rk.reset_requests()
        r = run(self.bin("release-check", "--no-helm", "-l", "app=web", "--timeout", "90s", "--chunk-size", "2",
                         "web"), timeout=100)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lists = [i["query"] for i in self.rk.requests()["items"]
                 if i["verb"] == "list" and i["path"] == f"/api/v1/namespaces/{self.ns}/pods"]
        self.assertGreaterEqual(len(lists), 3, lists)
        self.assertTrue(all("limit=2" in q for q in lists), lists)
        self.assertEqual(["continue=" in q for q in lists[:3]], [False, True, True], lists)

    def test_release_check_reads_helm_records_as_metadata(self):
        """A real PartialObjectMetadataList for the Helm release Secrets."""
        self.rk.put_object(deployment("web", self.ns, sim_container("app"), replicas=1))
        for rev in (1, 2):
            self.rk.put_object({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                                "metadata": {"name": f"sh.helm.release.v1.web.v{rev}", "namespace": self.ns,
                                             "labels": {"owner": "helm", "name": "web", "version": str(rev),
                                                        "status": "deployed" if rev == 2 else "superseded"}},
                                "data": {"release": "c2VjcmV0"}})
        r = run(self.bin("release-check", "-l", "app=web", "--timeout", "90s", "--output", "json", "web"),
                timeout=100)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("c2VjcmV0", r.stdout + r.stderr)
        reqs = [i for i in self.rk.requests()["items"] if "/secrets" in i["path"] and self.ns in i["path"]]
        self.assertTrue(reqs, "release-check never read the release records")


if __name__ == "__main__":
    unittest.main()
