#!/usr/bin/env python3
"""Proof that kubesim is faithful: the real kubectl (v1.32) against it must
print what it prints against a real cluster, and the API details clients such
as wait-for-job rely on (watch semantics, 409/410, RBAC, faults) must hold.

    python3 -m unittest discover -s tests/kubesim -p 'test_*.py'
    python3 tests/kubesim/test_kubectl.py
"""

import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubesim_client import KubeSim, kubectl_binary  # noqa: E402

JOB_YAML = """apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  labels: {{app: demo, tier: {tier}}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: busybox:1.36
        command: ["sh", "-c", "echo migrating"]
"""

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                                   "env": [{"name": "A", "value": "1"}]}]}}},
}


def job_obj(name, **labels):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}}}


def lease(name):
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"holderIdentity": "a"}}


# ====================================================================== kubectl

class KubectlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ks = KubeSim().start()

    @classmethod
    def tearDownClass(cls):
        cls.ks.stop()

    def kubectl(self, *args, rc=0, **kw):
        r = self.ks.kubectl(*args, **kw)
        if rc is not None:
            self.assertEqual(r.returncode, rc, f"kubectl {' '.join(args)}\nstdout:{r.stdout}\nstderr:{r.stderr}")
        return r

    def write(self, name, text):
        path = os.path.join(self.ks.state_dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_binary_is_plain_kubectl(self):
        self.assertNotEqual(os.path.realpath(kubectl_binary()), "/usr/bin/kubectl")

    def test_get_json_custom_columns_and_tables(self):
        self.ks.apply(dict(job_obj("getme", app="demo"),
                           status={"succeeded": 1, "startTime": "2020-01-01T00:00:00Z",
                                   "completionTime": "2020-01-01T00:01:05Z",
                                   "conditions": [{"type": "Complete", "status": "True"}]}))
        obj = json.loads(self.kubectl("get", "job", "getme", "-o", "json").stdout)
        self.assertEqual((obj["kind"], obj["apiVersion"], obj["metadata"]["name"]), ("Job", "batch/v1", "getme"))
        lst = json.loads(self.kubectl("get", "jobs", "-l", "app=demo", "-o", "json").stdout)
        self.assertEqual(lst["kind"], "List")
        self.assertIn("getme", [i["metadata"]["name"] for i in lst["items"]])
        out = self.kubectl("get", "job", "getme", "-o", "custom-columns=NAME:.metadata.name,OK:.status.succeeded").stdout
        self.assertEqual(out.split("\n")[:2], ["NAME    OK", "getme   1"])
        lines = self.kubectl("get", "job", "getme").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"])
        self.assertEqual(lines[1].split()[:4], ["getme", "Complete", "1/1", "65s"])
        self.ks.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1", "namespace": "default"},
                       "data": {"a": "1", "b": "2"}})
        lines = self.kubectl("get", "cm", "cm1").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "DATA", "AGE"])
        self.assertEqual(lines[1].split()[:2], ["cm1", "2"])
        self.ks.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "default"},
                       "spec": {"containers": [{"name": "a", "image": "x"}]},
                       "status": {"phase": "Running", "containerStatuses": [
                           {"name": "a", "ready": True, "restartCount": 3, "state": {"running": {}}}]}})
        lines = self.kubectl("get", "pods", "p1").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"])
        self.assertEqual(lines[1].split()[:4], ["p1", "1/1", "Running", "3"])
        lines = self.kubectl("get", "namespaces").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "STATUS", "AGE"])

    def test_label_selectors(self):
        for name, labels in (("sel-a", {"app": "sel", "tier": "db"}), ("sel-b", {"app": "sel", "tier": "web"}),
                             ("sel-c", {"app": "sel"})):
            self.ks.apply(job_obj(name, **labels))

        def names(sel):
            out = self.kubectl("get", "jobs", "-l", sel, "-o", "custom-columns=N:.metadata.name", "--no-headers")
            return sorted(out.stdout.split())
        self.assertEqual(names("app=sel,tier=db"), ["sel-a"])
        self.assertEqual(names("app==sel,tier!=db"), ["sel-b", "sel-c"])
        self.assertEqual(names("app=sel,tier in (db,web)"), ["sel-a", "sel-b"])
        self.assertEqual(names("app=sel,tier notin (db)"), ["sel-b", "sel-c"])
        self.assertEqual(names("app=sel,tier"), ["sel-a", "sel-b"])
        self.assertEqual(names("app=sel,!tier"), ["sel-c"])
        r = self.kubectl("get", "jobs", "-l", "app=nothing")
        self.assertEqual((r.stdout, r.stderr), ("", "No resources found in default namespace.\n"))
        # kubectl pages lists (--chunk-size, 500 by default): every page arrives
        self.assertEqual(sorted(self.kubectl("get", "jobs", "-l", "app=sel", "--chunk-size=1", "-o",
                                             "custom-columns=N:.metadata.name", "--no-headers").stdout.split()),
                         ["sel-a", "sel-b", "sel-c"])

    def test_describe_job_with_events(self):
        job = self.ks.apply(job_obj("desc", app="d"))
        self.ks.apply({"apiVersion": "v1", "kind": "Event",
                       "metadata": {"name": "desc.1", "namespace": "default"},
                       "involvedObject": {"kind": "Job", "name": "desc", "namespace": "default",
                                          "uid": job["metadata"]["uid"], "apiVersion": "batch/v1"},
                       "reason": "SuccessfulCreate", "message": "Created pod: desc-abcde", "type": "Normal",
                       "source": {"component": "job-controller"}, "count": 1,
                       "firstTimestamp": job["metadata"]["creationTimestamp"],
                       "lastTimestamp": job["metadata"]["creationTimestamp"]})
        out = self.kubectl("describe", "job", "desc").stdout
        for pattern in (r"^Name:\s+desc$", r"^Namespace:\s+default$", r"^Labels:\s+app=d$",
                        r"^Parallelism:\s+1$", r"^Completions:\s+1$", r"^Backoff Limit:\s+6$",
                        r"^Pods Statuses:\s+0 Active \(0 Ready\) / 0 Succeeded / 0 Failed$|"
                        r"^Pods Statuses:\s+0 Active / 0 Succeeded / 0 Failed$",
                        r"^Selector:\s+batch.kubernetes.io/controller-uid=" + job["metadata"]["uid"] + "$",
                        r"^\s+Normal\s+SuccessfulCreate\s+\S+\s+job-controller\s+Created pod: desc-abcde$"):
            self.assertRegex(out, re.compile(pattern, re.M))

    def _wait_prompt(self, name, condition, status):
        self.ks.apply(job_obj(name))
        p = self.ks.kubectl_popen("wait", f"--for=condition={condition}", f"job/{name}", "--timeout=20s")
        try:
            self.ks.wait_for_request(lambda r: r["verb"] == "watch" and f"metadata.name%3D{name}" in r["query"])
            t0 = time.monotonic()
            self.ks.patch_status("batch/v1", "Job", "default", name, status)
            out, err = p.communicate(timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            p.kill()
        self.assertEqual((p.returncode, out, err), (0, f"job.batch/{name} condition met\n", ""))
        self.assertLess(elapsed, 1.0)

    def test_wait_complete_is_prompt(self):
        self._wait_prompt("wait-ok", "complete", {"succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]})

    def test_wait_failed_is_prompt(self):
        self._wait_prompt("wait-bad", "failed", {"failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True",
                                                          "reason": "BackoffLimitExceeded"}]})

    def test_rollout_status(self):
        dep = self.ks.apply(DEPLOYMENT)

        def roll_out():
            self.ks.wait_for_request(lambda r: r["verb"] == "watch" and "deployments" in r["path"])
            self.ks.patch_status("apps/v1", "Deployment", "default", "web", {
                "observedGeneration": dep["metadata"]["generation"], "replicas": 2, "updatedReplicas": 2,
                "readyReplicas": 2, "availableReplicas": 2,
                "conditions": [{"type": "Available", "status": "True"},
                               {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
        t = threading.Thread(target=roll_out)
        t.start()
        r = self.kubectl("rollout", "status", "deployment/web", "--timeout=20s")
        t.join()
        self.assertTrue(r.stdout.endswith('deployment "web" successfully rolled out\n'), r.stdout)
        lines = self.kubectl("get", "deploy", "web").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"])
        self.assertEqual(lines[1].split()[:4], ["web", "2/2", "2", "2"])

    def test_create_already_exists_and_delete(self):
        path = self.write("job-create.yaml", JOB_YAML.format(name="created", tier="db"))
        self.assertEqual(self.kubectl("create", "-f", path).stdout, "job.batch/created created\n")
        r = self.kubectl("create", "-f", path, rc=1)
        self.assertEqual(r.stderr, f'Error from server (AlreadyExists): error when creating "{path}": '
                                   f'jobs.batch "created" already exists\n')
        self.assertEqual(self.kubectl("delete", "job", "created").stdout, 'job.batch "created" deleted\n')
        r = self.kubectl("delete", "job", "created", rc=1)
        self.assertEqual(r.stderr, 'Error from server (NotFound): jobs.batch "created" not found\n')

    def test_apply_client_side(self):
        cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: "1"\n'
        path = self.write("cm.yaml", cm)
        self.assertEqual(self.kubectl("apply", "-f", path).stdout, "configmap/applied created\n")
        self.assertEqual(self.kubectl("apply", "-f", path).stdout, "configmap/applied unchanged\n")
        self.write("cm.yaml", cm.replace('a: "1"', 'b: "2"'))
        self.assertEqual(self.kubectl("apply", "-f", path).stdout, "configmap/applied configured\n")
        obj = json.loads(self.kubectl("get", "cm", "applied", "-o", "json").stdout)
        self.assertEqual(obj["data"], {"b": "2"})
        self.assertIn("kubectl.kubernetes.io/last-applied-configuration", obj["metadata"]["annotations"])
        # a strategic merge patch on a Deployment keeps containers merged by name
        dep = json.loads(json.dumps(DEPLOYMENT))
        dep["metadata"]["name"] = "applied-dep"
        path = self.write("dep.json", json.dumps(dep))
        self.kubectl("apply", "-f", path)
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
        self.write("dep.json", json.dumps(dep))
        self.assertEqual(self.kubectl("apply", "-f", path).stdout, "deployment.apps/applied-dep configured\n")
        live = json.loads(self.kubectl("get", "deploy", "applied-dep", "-o", "json").stdout)
        self.assertEqual(live["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26")
        self.assertEqual(live["metadata"]["generation"], 2)

    def test_apply_server_side(self):
        cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  x: "1"\n  y: "2"\n'
        path = self.write("ssa.yaml", cm)
        self.assertEqual(self.kubectl("apply", "--server-side", "-f", path).stdout, "configmap/ssa serverside-applied\n")
        self.write("ssa.yaml", cm.replace('  y: "2"\n', ""))
        self.assertEqual(self.kubectl("apply", "--server-side", "-f", path).stdout, "configmap/ssa serverside-applied\n")
        obj = json.loads(self.kubectl("get", "cm", "ssa", "-o", "json", "--show-managed-fields").stdout)
        self.assertEqual(obj["data"], {"x": "1"})
        self.assertIn(("kubectl", "Apply"), [(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]])

    def test_logs(self):
        self.ks.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "logpod", "namespace": "default"},
                       "spec": {"containers": [{"name": "app", "image": "x"}]}})
        self.ks.logs("default", "logpod", "one\ntwo\nthree\n")
        self.ks.logs("default", "logpod", "crashed\n", container="app", previous=True)
        self.assertEqual(self.kubectl("logs", "logpod", "--tail=2").stdout, "two\nthree\n")
        self.assertEqual(self.kubectl("logs", "logpod", "-c", "app", "--previous").stdout, "crashed\n")

    def test_forbidden_is_worded_like_a_real_cluster(self):
        user = "system:serviceaccount:ns:sa"
        token = self.ks.token(user, rules=[{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"],
                                            "resourceNames": ["visible"]}])
        self.ks.apply(job_obj("visible"))
        self.kubectl("--token", token, "get", "job", "visible")
        r = self.kubectl("--token", token, "get", "job", "hidden", rc=1)
        self.assertEqual(r.stderr, f'Error from server (Forbidden): jobs.batch "hidden" is forbidden: User "{user}" '
                                   f'cannot get resource "jobs" in API group "batch" in the namespace "default"\n')
        r = self.kubectl("--token", token, "get", "jobs", rc=1)
        self.assertEqual(r.stderr, f'Error from server (Forbidden): jobs.batch is forbidden: User "{user}" '
                                   f'cannot list resource "jobs" in API group "batch" in the namespace "default"\n')
        r = self.kubectl("--token", token, "get", "namespaces", rc=1)
        self.assertEqual(r.stderr, f'Error from server (Forbidden): namespaces is forbidden: User "{user}" '
                                   f'cannot list resource "namespaces" in API group "" at the cluster scope\n')

    def test_auth_can_i(self):
        user = "system:serviceaccount:ns:can"
        token = self.ks.token(user, rules=[{"apiGroups": ["batch"], "resources": ["jobs"],
                                            "verbs": ["get", "watch"], "resourceNames": ["m"]}])
        for args, answer in ((("get", "jobs/m"), "yes"), (("watch", "jobs/other"), "no"), (("list", "jobs"), "no")):
            r = self.kubectl("--token", token, "auth", "can-i", *args, rc=None)
            self.assertEqual((r.stdout, r.returncode), (answer + "\n", 0 if answer == "yes" else 1), args)

    def test_imperative_create_sends_protobuf(self):
        # kubectl's typed clients send protobuf bodies; the common kinds are decoded
        self.assertEqual(self.kubectl("create", "configmap", "imp", "--from-literal=k=v").stdout,
                         "configmap/imp created\n")
        self.assertEqual(self.kubectl("create", "secret", "generic", "imp", "--from-literal=k=v").stdout,
                         "secret/imp created\n")
        self.assertEqual(self.kubectl("create", "namespace", "imp").stdout, "namespace/imp created\n")
        cm = json.loads(self.kubectl("get", "cm", "imp", "-o", "json").stdout)
        self.assertEqual((cm["data"], "generateName" in cm["metadata"]), ({"k": "v"}, False))
        secret = json.loads(self.kubectl("get", "secret", "imp", "-o", "json").stdout)
        self.assertEqual((secret["data"], secret["type"]), ({"k": "dg=="}, "Opaque"))

    def test_get_watch_prints_table_rows(self):
        self.ks.apply(job_obj("watched"))
        p = self.ks.kubectl_popen("get", "job", "watched", "-w")
        try:
            self.ks.wait_for_request(lambda r: r["verb"] == "watch" and "metadata.name%3Dwatched" in r["query"])
            self.ks.patch_status("batch/v1", "Job", "default", "watched", {
                "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
            lines = [p.stdout.readline().split() for _ in range(3)]
        finally:
            p.kill()
            p.communicate()
        self.assertEqual([line[:3] for line in lines], [["NAME", "STATUS", "COMPLETIONS"],
                                                        ["watched", "Running", "0/1"],
                                                        ["watched", "Complete", "1/1"]])

    def test_unauthorized(self):
        r = self.kubectl("--token", "not-a-token", "get", "pods", rc=1)
        self.assertEqual(r.stderr.splitlines()[-1], "error: You must be logged in to the server (Unauthorized)")


# ====================================================================== HTTP API

class ApiTest(unittest.TestCase):
    HISTORY = 20

    @classmethod
    def setUpClass(cls):
        cls.ks = KubeSim(history=cls.HISTORY, bookmark_interval=0.2).start()

    @classmethod
    def tearDownClass(cls):
        cls.ks.stop()

    def tearDown(self):
        self.ks.clear_faults()

    def call(self, method, path, body=None, code=200, **kw):
        status, headers, data = self.ks.api(method, path, body, **kw)
        self.assertEqual(status, code, data)
        return json.loads(data) if data[:1] == b"{" else data

    @staticmethod
    def events(resp, n, stop=None):
        """Read up to n watch events (or until stop(event) is true)."""
        out = []
        while len(out) < n:
            line = resp.readline()
            if not line:
                break
            out.append(json.loads(line))
            if stop and stop(out[-1]):
                break
        return out

    LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"

    def test_list_pages_from_one_snapshot(self):
        ns_leases = "/apis/coordination.k8s.io/v1/namespaces/paged/leases"
        for i in range(5):
            self.ks.apply(dict(lease(f"p{i}"), metadata={"name": f"p{i}", "namespace": "paged"}))
        first = self.call("GET", f"{ns_leases}?limit=2")
        self.assertEqual([o["metadata"]["name"] for o in first["items"]], ["p0", "p1"])
        self.assertEqual(first["metadata"]["remainingItemCount"], 3)
        rv = first["metadata"]["resourceVersion"]
        # written after the first page: not in the later pages, which are read at the list's revision
        self.ks.apply(dict(lease("p11"), metadata={"name": "p11", "namespace": "paged"}))
        second = self.call("GET", f"{ns_leases}?limit=2&continue={first['metadata']['continue']}")
        self.assertEqual([o["metadata"]["name"] for o in second["items"]], ["p2", "p3"])
        self.assertEqual(second["metadata"]["resourceVersion"], rv)
        last = self.call("GET", f"{ns_leases}?limit=2&continue={second['metadata']['continue']}")
        self.assertEqual([o["metadata"]["name"] for o in last["items"]], ["p4"])
        self.assertNotIn("continue", last["metadata"])
        # as the real server: no resourceVersion with continue; a token that does not decode is 400
        self.call("GET", f"{ns_leases}?limit=2&resourceVersion=5&continue={second['metadata']['continue']}",
                  code=400)
        self.call("GET", f"{ns_leases}?limit=2&continue=bm90LWEtdG9rZW4", code=400)
        self.call("GET", f"{ns_leases}?limit=two", code=400)
        # a token whose revision was compacted away (fell out of the history) expires: 410
        page = self.call("GET", f"{ns_leases}?limit=2")
        for i in range(self.HISTORY + 2):
            self.ks.patch_status("coordination.k8s.io/v1", "Lease", "paged", "p0", {"i": i})
        st = self.call("GET", f"{ns_leases}?limit=2&continue={page['metadata']['continue']}", code=410)
        self.assertEqual(st["reason"], "Expired")
        self.assertIn("continue parameter is too old", st["message"])
        # and POST /pager expires the next one on demand
        page = self.call("GET", f"{ns_leases}?limit=2")
        self.ks.pager(expire_next=1)
        self.call("GET", f"{ns_leases}?limit=2&continue={page['metadata']['continue']}", code=410)

    def test_watch_replays_from_resource_version(self):
        a = self.call("POST", self.LEASES, lease("replay-a"), 201)
        self.call("POST", self.LEASES, lease("replay-b"), 201)
        self.call("DELETE", f"{self.LEASES}/replay-a")
        with self.ks.open_watch(f"{self.LEASES}?watch=true&resourceVersion={a['metadata']['resourceVersion']}") as w:
            evs = self.events(w, 2)
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                         [("ADDED", "replay-b"), ("DELETED", "replay-a")])
        self.assertGreater(int(evs[1]["object"]["metadata"]["resourceVersion"]),
                           int(evs[0]["object"]["metadata"]["resourceVersion"]))

    def test_watch_initial_state_and_live_events_with_selectors(self):
        self.ks.apply(job_obj("live-1", app="live"))
        self.ks.apply(job_obj("live-2", app="other"))
        path = "/apis/batch/v1/namespaces/default/jobs?watch=true&labelSelector=app%3Dlive"
        with self.ks.open_watch(path) as w:
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in self.events(w, 1)],
                             [("ADDED", "live-1")])
            t0 = time.monotonic()
            self.ks.patch_status("batch/v1", "Job", "default", "live-1", {"active": 1})
            ev = self.events(w, 1)[0]
            self.assertLess(time.monotonic() - t0, 0.5)
            self.assertEqual((ev["type"], ev["object"]["status"]["active"]), ("MODIFIED", 1))
            moved = job_obj("live-2", app="live")         # starts matching the selector: ADDED
            self.ks.apply(moved)
            self.assertEqual(self.events(w, 1)[0]["type"], "ADDED")

    def test_send_initial_events_ends_with_marked_bookmark(self):
        self.ks.apply(lease("initial"))
        q = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
        with self.ks.open_watch(f"{self.LEASES}?{q}") as w:
            evs = self.events(w, 100, stop=lambda e: e["type"] == "BOOKMARK")
        self.assertIn("initial", [e["object"]["metadata"]["name"] for e in evs if e["type"] == "ADDED"])
        self.assertEqual(evs[-1]["object"]["metadata"]["annotations"], {"k8s.io/initial-events-end": "true"})

    def test_gone_after_history_overflow(self):
        obj = self.call("POST", self.LEASES, lease("churn"), 201)
        old_rv = int(obj["metadata"]["resourceVersion"])
        for i in range(self.HISTORY + 2):
            self.ks.patch_status("coordination.k8s.io/v1", "Lease", "default", "churn", {"i": i})
        with self.ks.open_watch(f"{self.LEASES}?watch=true&resourceVersion={old_rv}") as w:
            evs = self.events(w, 5)
            self.assertEqual(w.readline(), b"")            # stream ends after the ERROR
        self.assertEqual(len(evs), 1)
        st = evs[0]["object"]
        self.assertEqual((evs[0]["type"], st["kind"], st["code"], st["reason"]), ("ERROR", "Status", 410, "Expired"))
        self.assertRegex(st["message"], rf"^too old resource version: {old_rv} \(\d+\)$")
        st = self.call("GET", f"{self.LEASES}?resourceVersion={old_rv}&resourceVersionMatch=Exact", code=410)
        self.assertEqual(st["reason"], "Expired")

    def test_bookmarks_and_timeout(self):
        t0 = time.monotonic()
        with self.ks.open_watch(f"{self.LEASES}?watch=true&resourceVersion=0&allowWatchBookmarks=true"
                                f"&timeoutSeconds=1&fieldSelector=metadata.name%3Dnone") as w:
            evs = self.events(w, 100)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(len(evs), 3)          # every 0.2 s plus one at the timeout
        for e in evs:
            self.assertEqual(e["type"], "BOOKMARK")
            self.assertEqual(set(e["object"]), {"kind", "apiVersion", "metadata"})
            self.assertEqual(set(e["object"]["metadata"]), {"resourceVersion"})
        self.assertTrue(0.9 <= elapsed < 3, elapsed)

    def test_stale_update_conflicts(self):
        obj = self.call("POST", self.LEASES, lease("locked"), 201)
        fresh = dict(obj, spec={"holderIdentity": "b"})
        self.call("PUT", f"{self.LEASES}/locked", fresh)
        st = self.call("PUT", f"{self.LEASES}/locked", dict(obj, spec={"holderIdentity": "c"}), code=409)
        self.assertEqual((st["reason"], st["message"]), ("Conflict", 'Operation cannot be fulfilled on leases.'
                         'coordination.k8s.io "locked": the object has been modified; please apply your changes '
                         'to the latest version and try again'))
        st = self.call("POST", self.LEASES, lease("locked"), 409)
        self.assertEqual(st["reason"], "AlreadyExists")

    def test_patch_types_and_dry_run(self):
        dep = dict(DEPLOYMENT, metadata={"name": "patched", "namespace": "default"})
        base = "/apis/apps/v1/namespaces/default/deployments"
        created = self.call("POST", base, dep, 201)
        self.assertEqual(created["metadata"]["generation"], 1)
        smp = {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "B", "value": "2"}]}, {"name": "side", "image": "envoy"}]}}}}
        out = self.call("PATCH", f"{base}/patched", smp, content_type="application/strategic-merge-patch+json")
        cs = out["spec"]["template"]["spec"]["containers"]
        self.assertEqual([(c["name"], c.get("image")) for c in cs], [("web", "nginx:1.25"), ("side", "envoy")])
        self.assertEqual([e["name"] for e in cs[0]["env"]], ["A", "B"])
        self.assertEqual(out["metadata"]["generation"], 2)
        out = self.call("PATCH", f"{base}/patched", {"spec": {"template": {"spec": {"containers": [
            {"name": "side", "$patch": "delete"}]}}}}, content_type="application/strategic-merge-patch+json")
        self.assertEqual(len(out["spec"]["template"]["spec"]["containers"]), 1)
        out = self.call("PATCH", f"{base}/patched", {"metadata": {"labels": {"x": "y"}}},
                        content_type="application/merge-patch+json")
        self.assertEqual((out["metadata"]["labels"], out["metadata"]["generation"]), ({"x": "y"}, 3))
        out = self.call("PATCH", f"{base}/patched", [{"op": "replace", "path": "/spec/replicas", "value": 5}],
                        content_type="application/json-patch+json")
        self.assertEqual(out["spec"]["replicas"], 5)
        self.call("PATCH", f"{base}/patched", [{"op": "test", "path": "/spec/replicas", "value": 1}],
                  content_type="application/json-patch+json", code=422)
        status_only = self.call("PATCH", f"{base}/patched/status", {"status": {"readyReplicas": 1}, "spec": {"replicas": 9}},
                                content_type="application/merge-patch+json")
        self.assertEqual((status_only["status"]["readyReplicas"], status_only["spec"]["replicas"]), (1, 5))
        dry = self.call("POST", f"{base}?dryRun=All", dict(dep, metadata={"name": "dry"}), 201)
        self.assertEqual(dry["metadata"]["name"], "dry")
        self.call("GET", f"{base}/dry", code=404)

    def test_resource_names_authorise_narrowed_list_and_watch(self):
        user = "system:serviceaccount:default:waiter"
        token = self.ks.token(user, rules=[{"apiGroups": ["batch"], "resources": ["jobs"],
                                            "verbs": ["get", "list", "watch"], "resourceNames": ["mig"]}])
        self.ks.apply(job_obj("mig"))
        base = "/apis/batch/v1/namespaces/default/jobs"
        lst = self.call("GET", f"{base}?fieldSelector=metadata.name%3Dmig", token=token)
        self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["mig"])
        with self.ks.open_watch(f"{base}?watch=true&fieldSelector=metadata.name%3Dmig", token=token) as w:
            self.assertEqual(self.events(w, 1)[0]["object"]["metadata"]["name"], "mig")
        st = self.call("GET", f"{base}?watch=true&fieldSelector=metadata.name%3Dother", token=token, code=403)
        self.assertEqual(st["message"], f'jobs.batch "other" is forbidden: User "{user}" cannot watch resource '
                                        f'"jobs" in API group "batch" in the namespace "default"')
        st = self.call("GET", base, token=token, code=403)
        self.assertEqual(st["message"], f'jobs.batch is forbidden: User "{user}" cannot list resource "jobs" '
                                        f'in API group "batch" in the namespace "default"')

    def test_token_rotation_rewrites_in_cluster_token(self):
        token_file = os.path.join(self.ks.sa_dir, "token")
        with open(token_file) as f:
            old = f.read()
        self.call("GET", "/api/v1/namespaces/default/pods", token=old)
        new = self.ks.rotate(self.ks.sa_user, grace_seconds=60)
        with open(token_file) as f:
            self.assertEqual(f.read(), new)
        self.call("GET", "/api/v1/namespaces/default/pods", token=old)          # within grace
        newer = self.ks.rotate(self.ks.sa_user, grace_seconds=0)
        st = self.call("GET", "/api/v1/namespaces/default/pods", token=new, code=401)
        self.assertEqual(st, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        self.call("GET", "/api/v1/namespaces/default/pods", token=old, code=401)
        self.call("GET", "/api/v1/namespaces/default/pods", token=newer)

    # ------------------------------------------------------------ faults
    def test_fault_errors_5xx_and_too_many(self):
        self.ks.faults(errors_5xx=2, match="/configmaps", code=500)
        self.call("GET", "/api/v1/namespaces/default/pods")                     # does not match
        self.assertEqual(self.call("GET", "/api/v1/namespaces/default/configmaps", code=500)["code"], 500)
        self.call("GET", "/api/v1/namespaces/default/configmaps", code=500)
        self.call("GET", "/api/v1/namespaces/default/configmaps")
        self.ks.faults(too_many=1, retry_after=3)
        status, headers, _ = self.ks.api("GET", "/api/v1/namespaces/default/pods")
        self.assertEqual((status, headers.get("Retry-After")), (429, "3"))
        self.call("GET", "/api/v1/namespaces/default/pods")

    def test_fault_latency(self):
        self.ks.faults(latency_ms=300)
        t0 = time.monotonic()
        self.call("GET", "/version")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)

    def test_fault_truncate_and_malformed(self):
        self.ks.faults(truncate=1)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            self.ks.api("GET", "/api/v1/namespaces")
        self.ks.faults(malformed=1)
        _, _, body = self.ks.api("GET", "/api/v1/namespaces")
        with self.assertRaises(ValueError):
            json.loads(body)
        self.call("GET", "/api/v1/namespaces")

    def test_fault_next_watch_gone(self):
        self.ks.faults(next_watch_gone=1)
        with self.ks.open_watch(f"{self.LEASES}?watch=true&resourceVersion=1") as w:
            ev = self.events(w, 2)
        self.assertEqual([(e["type"], e["object"]["code"]) for e in ev], [("ERROR", 410)])
        self.ks.faults(next_watch_gone=1, mode="http")
        st = self.call("GET", f"{self.LEASES}?watch=true", code=410)
        self.assertEqual(st["reason"], "Expired")

    def _read_until_closed(self, w):
        try:
            while w.readline():
                pass
        except (http.client.IncompleteRead, ConnectionError, socket.timeout):
            pass

    def test_fault_close_watches(self):
        with self.ks.open_watch(f"{self.LEASES}?watch=true&resourceVersion=0") as w:
            self.ks.wait_for_request(lambda r: r["verb"] == "watch" and r["query"] == "watch=true&resourceVersion=0")
            self.ks.faults(close_watches_now=True)
            t0 = time.monotonic()
            self._read_until_closed(w)
            self.assertLess(time.monotonic() - t0, 2)
        self.ks.faults(close_watches_after=0.3)
        t0 = time.monotonic()
        with self.ks.open_watch(f"{self.LEASES}?watch=true&resourceVersion=0") as w:
            self._read_until_closed(w)
        self.assertTrue(0.25 < time.monotonic() - t0 < 2)

    def test_fault_stop_listening(self):
        with self.ks.open_watch(f"{self.LEASES}?watch=true&resourceVersion=0") as w:
            self.ks.faults(stop_listening=1.0)
            self._read_until_closed(w)
        t0 = time.monotonic()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.ks.api_port), timeout=2).close()
        while time.monotonic() - t0 < 5:
            try:
                socket.create_connection(("127.0.0.1", self.ks.api_port), timeout=2).close()
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        self.assertGreater(time.monotonic() - t0, 0.7)
        self.call("GET", "/version")

    def test_fault_stop_listening_drops_idle_connections(self):
        # a keep-alive connection made before the outage is cut too: a
        # client's next request on it must not be served while the server is
        # down (the TLS socket took the connection over; the raw one was
        # shut down in vain, and migrate-runner's record went through)
        c = http.client.HTTPSConnection("127.0.0.1", self.ks.api_port, context=self.ks._ssl, timeout=5)
        hdrs = {"Authorization": "Bearer " + self.ks.admin_token}
        c.request("GET", "/version", headers=hdrs)
        self.assertEqual(c.getresponse().read()[:1], b"{")
        self.ks.faults(stop_listening=1.0)
        with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
            c.request("GET", "/version", headers=hdrs)
            c.getresponse().read()
        c.close()
        deadline = time.monotonic() + 5         # the next test finds it up again
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ks.api_port), timeout=2).close()
                break
            except ConnectionRefusedError:
                time.sleep(0.05)

    def test_requests_are_counted(self):
        self.ks.reset_requests()
        self.call("GET", "/api/v1/namespaces/default/pods")
        self.call("GET", "/api/v1/namespaces/default/pods/nope", code=404)
        r = self.ks.requests()
        self.assertEqual((r["total"], r["by_verb"]), (2, {"list": 1, "get": 1}))
        self.assertEqual([i["code"] for i in r["items"]], [200, 404])
        self.assertEqual(r["items"][0]["user"], "kubernetes-admin")

    def test_ipv6_loopback(self):
        if not self.ks.info.get("server_v6"):
            self.skipTest("no IPv6 loopback")
        import ssl
        import urllib.request
        ctx = ssl.create_default_context(cafile=self.ks.ca_file)
        req = urllib.request.Request(self.ks.info["server_v6"] + "/version",
                                     headers={"Authorization": f"Bearer {self.ks.admin_token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            self.assertEqual(json.loads(r.read())["major"], "1")


if __name__ == "__main__":
    unittest.main()
