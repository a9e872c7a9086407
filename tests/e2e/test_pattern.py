"""The whole pattern under stress (issue #7): chart-snippets/example-app
installed with the real helm v4 into kubesim (controllers + a kubelet that
runs our real binaries; the pods' tokens are authorised by the chart's own
Roles), in the two situations CI must get right beyond a plain upgrade:

1. Two overlapping upgrades: revision N+1 is applied while the migration of
   revision N still runs, so two migration Jobs run at once. The Lease
   (migrationGate.migration.lock) keeps their commands serial; both
   succeed; release-check reports the last revision healthy.
2. A crash-looping application: the migration succeeds, the gate opens,
   the new app container crash-loops. release-check fails fast, naming
   CrashLoopBackOff and showing the container's log, while a concurrent
   `helm upgrade --wait` of the same revision is still waiting and only
   fails at its --timeout.

    python3 -m unittest discover -s tests/e2e -p 'test_pattern.py' -v    # ~30 s
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import chart_helpers as ch
import test_chart as tc  # InstallIntoKubesim's skip rule and helpers (a module, so its tests are not collected here)
from mg import SLOW

RELEASE = "shop"
RECORD = f"{RELEASE}-migrations"
LEASE = f"{RELEASE}-migrate"


def by_name(objs, name):
    return next((o for o in objs if o["metadata"]["name"] == name), None)


@unittest.skipIf(tc._install_skip_reason(), tc._install_skip_reason())
class WholePattern(unittest.TestCase):
    """Each test has its own namespace (release "shop" in it) on one kubesim."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = ch.PatternCluster("mg-pattern-", tc.BUILD)
        cls.tmp, cls.bin, cls.ks, cls.env = cls.cluster.tmp, cls.cluster.bin, cls.cluster.ks, cls.cluster.env

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    # -- helpers (namespaced versions of InstallIntoKubesim's)
    def objects(self, ns, kind):
        return self.ks.objects(kind=kind, namespace=ns)

    def get(self, ns, kind, name):
        return by_name(self.objects(ns, kind), name)

    def wait_until(self, ns, what, fn, timeout=30):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}\n" + self.dump(ns))
            time.sleep(0.1)

    def dump(self, ns):
        r = self.ks.kubectl("get", "-n", ns, "jobs,pods,deploy,rs,leases", "-o", "wide")
        ev = self.ks.kubectl("get", "-n", ns, "events", "--sort-by=.lastTimestamp")
        return r.stdout + r.stderr + "\n" + ev.stdout[-4000:]

    def helm_args(self, ns, tag, migrate_cmd, extra=()):
        return ["upgrade", "--install", RELEASE, ch.EXAMPLE, "--namespace", ns, "--create-namespace",
                "--set", f"image.tag={tag}",
                "--set-json", "migrationGate.migration.command=" + json.dumps(["sh", "-c", migrate_cmd]),
                *extra]

    def upgrade(self, ns, tag, migrate_cmd, extra=()):
        r = ch.helm(*self.helm_args(ns, tag, migrate_cmd, extra), env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def release_check(self, ns, timeout):
        return subprocess.run([os.path.join(self.bin, "release-check"), "-n", ns, "--timeout", timeout,
                               "--kubeconfig", self.ks.kubeconfig, RELEASE], capture_output=True, text=True,
                              timeout=180 * SLOW, env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent-home"})

    def live_app_pods(self, ns, tag=None):
        return [p for p in self.objects(ns, "Pod")
                if p["metadata"]["labels"].get("app.kubernetes.io/component") in ("api", "worker")
                and not p["metadata"].get("deletionTimestamp")
                and (tag is None or p["spec"]["containers"][0]["image"].endswith(":" + tag))]

    def record(self, ns):
        cm = self.get(ns, "ConfigMap", RECORD)
        return {k: json.loads(v) for k, v in (cm.get("data") or {}).items()}

    def logs(self, ns, *args):
        r = self.ks.kubectl("logs", "-n", ns, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def job_for(self, ns, tag):
        """The migration Job whose image has tag (Job names are hashes)."""
        return next((j for j in self.objects(ns, "Job")
                     if j["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":" + tag)), None)

    @staticmethod
    def init_state(pod):
        s = next(s for s in pod["status"].get("initContainerStatuses", []) if s["name"] == "wait-for-migration")
        return s["state"]

    # -- 1. two overlapping upgrades
    def test_overlapping_upgrades_run_their_migrations_one_at_a_time(self):
        ns = "overlap"
        # The Lease's shortest duration (3s, renewed every second) and a
        # migration longer than it: were the holder not renewing, the waiter
        # would take the Lease over after 3s, while the command still runs,
        # and the timestamps below would overlap.
        # keepPreviousJobs: revision 2 must not delete revision 1's Job
        # while its migration runs (by default Helm deletes it: the pod gets
        # SIGTERM, and its migration stops half-way)
        lock = ("--set", "migrationGate.migration.lock.enabled=true",
                "--set", "migrationGate.migration.lock.lease=3s",
                "--set", "migrationGate.migration.lock.timeout=60s",
                "--set", "migrationGate.migration.keepPreviousJobs=true")
        step = 'echo "migration {tag} start $(date +%s.%N)"; sleep 4; echo "migration {tag} end $(date +%s.%N)"'
        self.upgrade(ns, "1.0.0", step.format(tag="1.0.0"), lock)  # revision 1: Job shop-migrate-<hash 1>
        self.upgrade(ns, "1.1.0", step.format(tag="1.1.0"), lock)  # revision 2, at once: Job shop-migrate-<hash 2>
        jobs = {t: self.job_for(ns, t)["metadata"]["name"] for t in ("1.0.0", "1.1.0")}

        r = self.release_check(ns, "%ds" % (90 * SLOW))
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out + self.dump(ns))
        self.assertRegex(r.stdout, r"(?m)^\[ *[\d.]+s\] ok +Release/shop +- +deployed +revision 2 deployed$")
        self.assertRegex(r.stdout, r"(?m)^release shop is healthy after [\d.]+s: \d+ objects ready$")
        # the revision-1 Job belongs to an earlier revision: skipped as such
        # when it was created before revision 2's release record; both were
        # made by two upgrades at once, and creationTimestamps have second
        # resolution, so within the same second it is still judged (it
        # succeeds either way)
        self.assertRegex(r.stdout, rf"(?m)^\[ *[\d.]+s\] (skip +Job/{jobs['1.0.0']} +\d/1 +Superseded "
                                   rf"+.*\brevision\b.*|ok +Job/{jobs['1.0.0']} +1/1 +Complete +succeeded)$")
        self.assertRegex(r.stdout, rf"(?m)^\[ *[\d.]+s\] ok +Job/{jobs['1.1.0']} +1/1 +Complete +succeeded$")
        for job in jobs.values():
            self.assertTrue(tc.cond(self.get(ns, "Job", job), "Complete"), job)

        # both migrations succeeded, each in its first attempt (no lock timeout, no retry)
        rec = self.record(ns)
        runs = {}
        for tag, job in jobs.items():
            o = rec[job]
            self.assertEqual((o["status"], o["reason"], o["exitCode"], o["attempt"], o["job"]),
                             ("succeeded", "Exited", 0, 1, job), o)
            start = re.search(rf"(?m)^migration {re.escape(tag)} start (\d+\.\d+)$", o["outputTail"])
            end = re.search(rf"(?m)^migration {re.escape(tag)} end (\d+\.\d+)$", o["outputTail"])
            self.assertTrue(start and end, o["outputTail"])
            runs[job] = (float(start.group(1)), float(end.group(1)), o["pod"])
            # the same lines in the Job's pod log (kubectl logs job/NAME)
            log = self.logs(ns, f"job/{job}")
            self.assertIn(start.group(0), log)
            self.assertIn(end.group(0), log)
        first, second = sorted(runs, key=lambda j: runs[j][0])
        (s1, e1, pod1), (s2, e2, pod2) = runs[first], runs[second]
        # the command executions never overlapped ...
        self.assertGreaterEqual(s2, e1, f"the migrations overlapped: {runs}")
        # ... and the handover was prompt: the waiter re-reads the Lease
        # every 3.2 s at most, not only when the Lease would have expired
        self.assertLess(s2 - e1, 6 * SLOW, runs)

        # the second runner's own words: it found the Lease held by the
        # first pod and waited for it
        log1, log2 = self.logs(ns, f"job/{first}"), self.logs(ns, f"job/{second}")
        self.assertNotIn("is held by", log1)
        self.assertRegex(log1, rf"(?m)^migrate-runner: acquired lock {ns}/{LEASE} as {pod1}$")
        held = re.search(rf"(?m)^migrate-runner: lock {LEASE} is held by {pod1}; waiting \(it expires in 3s unless "
                         r"renewed\)$", log2)
        acquired = re.search(rf"(?m)^migrate-runner: acquired lock {ns}/{LEASE} as {pod2}$", log2)
        self.assertTrue(held, log2)
        self.assertTrue(acquired, log2)
        self.assertLess(held.start(), acquired.start(), log2)
        self.assertNotIn("taking over", log2)  # the first holder's renewals kept it from expiring

        # the Lease (Helm's, created empty): taken from nobody by the first
        # pod, handed to the second (each change of holder counts, as in
        # client-go), released at the end
        lease = self.get(ns, "Lease", LEASE)
        self.assertIsNotNone(lease)
        self.assertEqual(lease["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm")
        self.assertFalse(lease["spec"].get("holderIdentity"), lease)
        self.assertEqual(lease["spec"].get("leaseTransitions"), 2, lease)

        # the rollout ended on revision 2: every app pod runs 1.1.0 and passed
        # its gate on revision 2's Job only once that Job had completed
        self.wait_until(ns, "the 1.0.0 pods gone", lambda: not self.live_app_pods(ns, "1.0.0"))
        done = self.get(ns, "Job", jobs["1.1.0"])["status"]["completionTime"]
        pods = self.live_app_pods(ns)
        self.assertEqual(len(pods), 3, self.dump(ns))  # api 2, worker 1
        for p in pods:
            self.assertTrue(tc.cond(p, "Ready"), p["metadata"]["name"])
            self.assertEqual(tc.waits_for(p["spec"]["initContainers"][0]), jobs["1.1.0"])
            st = self.init_state(p)["terminated"]
            self.assertEqual(st["exitCode"], 0)
            self.assertLessEqual(done, st["finishedAt"], p["metadata"]["name"])

    def test_overlapping_upgrade_stops_the_previous_migration_by_default(self):
        """Without keepPreviousJobs (the default, so that helm rollback
        works) revision 2 deletes revision 1's Job: its migration is stopped
        (SIGTERM through migrate-runner), revision 2's runs once the Lease is
        free, the two never overlap, the release ends healthy."""
        ns = "overlap-default"
        lock = ("--set", "migrationGate.migration.lock.lease=3s", "--set", "migrationGate.migration.lock.timeout=60s")
        step = 'echo "migration {tag} start $(date +%s.%N)"; sleep 4; echo "migration {tag} end $(date +%s.%N)"'
        self.upgrade(ns, "1.0.0", step.format(tag="1.0.0"), lock)
        self.wait_until(ns, "revision 1's migration running", lambda: [
            p for p in self.objects(ns, "Pod") if p["metadata"]["labels"].get("app.kubernetes.io/component") ==
            "migration" and (p.get("status") or {}).get("phase") == "Running"])
        # ... and its runner holds the Lease (the command starts right after):
        # under valgrind "Running" comes long before that
        self.wait_until(ns, "revision 1's runner holding the Lease", lambda: (
            (self.get(ns, "Lease", "shop-migrate") or {}).get("spec") or {}).get("holderIdentity"))
        job1 = self.job_for(ns, "1.0.0")["metadata"]["name"]
        self.upgrade(ns, "1.1.0", step.format(tag="1.1.0"), lock)
        job2 = self.job_for(ns, "1.1.0")["metadata"]["name"]
        r = self.release_check(ns, "%ds" % (90 * SLOW))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dump(ns))
        self.wait_until(ns, f"Job {job1} deleted by Helm", lambda: self.get(ns, "Job", job1) is None)
        rec = self.record(ns)
        self.assertEqual((rec[job2]["status"], rec[job2]["attempt"]), ("succeeded", 1), rec[job2])
        s2 = float(re.search(r"(?m)^migration 1\.1\.0 start (\d+\.\d+)$", rec[job2]["outputTail"]).group(1))
        # it had started: stopped half-way by the signal, recorded as such
        self.assertEqual((rec[job1]["status"], rec[job1]["reason"]), ("failed", "Signaled"), rec[job1])
        self.assertNotIn("migration 1.0.0 end", rec[job1]["outputTail"])
        s1 = float(re.search(r"(?m)^migration 1\.0\.0 start (\d+\.\d+)$", rec[job1]["outputTail"]).group(1))
        self.assertLess(s1, s2)
        for p in self.live_app_pods(ns):
            self.assertEqual(tc.waits_for(p["spec"]["initContainers"][0]), job2)

    # -- 2. a crash-looping app container
    def test_crash_looping_app_fails_release_check_fast_not_helm_wait(self):
        ns = "crashloop"
        self.upgrade(ns, "1.0.0", "echo schema 1.0.0 ready")
        r = self.release_check(ns, "%ds" % (60 * SLOW))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dump(ns))

        # revision 2: the migration succeeds, the new app container exits 1
        # 0.1 s after every start. KUBESIM_READY_AFTER stands for the API's
        # readinessProbe (kubesim runs no probes): a container that dies
        # after 0.1 s is never Ready, so no pod is Ready for a moment.
        fatal = "FATAL: config key cache.url is missing"
        app_env = [{"name": "KUBESIM_CRASHLOOP", "value": "1"},
                   {"name": "KUBESIM_READY_AFTER", "value": "5s"},
                   {"name": "KUBESIM_LOG", "value": fatal}]
        helm_timeout = 12 * SLOW
        argv = [ch.tool("helm"), *self.helm_args(ns, "1.1.0", "echo migrating to 1.1.0; echo schema 1.1.0 ready",
                                                 ("--set-json", "env=" + json.dumps(app_env),
                                                  "--wait", "--timeout", "%ds" % helm_timeout))]
        t_helm = time.monotonic()
        helm = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, **self.env))
        try:
            # what CI runs after `helm upgrade`; here as soon as helm has
            # applied revision 2 (its Job comes after the Deployments)
            self.wait_until(ns, "helm to apply revision 2",
                            lambda: helm.poll() is not None or self.job_for(ns, "1.1.0"))
            job2 = self.job_for(ns, "1.1.0")["metadata"]["name"]
            self.assertIsNone(helm.poll(), "helm --wait returned early")
            t = time.monotonic()
            r = self.release_check(ns, "%ds" % (60 * SLOW))
            took = time.monotonic() - t
            helm_still_waiting = helm.poll() is None
            out = r.stdout + r.stderr

            self.assertEqual(r.returncode, 1, out + self.dump(ns))
            self.assertLess(took, 20 * SLOW, "release-check did not fail fast\n" + out)
            self.assertTrue(helm_still_waiting, "helm --wait should still be waiting when release-check failed\n" + out)
            # the migration is fine; the failure is the app's crash loop, with its log
            self.assertRegex(r.stdout, rf"(?m)^\[ *[\d.]+s\] ok +Job/{job2} +1/1 +Complete +succeeded$")
            self.assertNotRegex(r.stdout, r"(?m)FAIL +Job/")
            self.assertRegex(r.stdout, r"(?m)^release shop FAILED after [\d.]+s:$")
            fail = re.search(r'(?m)^  Pod/(shop-(api|worker)-[a-z0-9]+-[a-z0-9]+): container "(api|worker)" is '
                             r"crash-looping \(last exit 1 \(Error\), \d+ restarts?\)$", r.stdout)
            self.assertTrue(fail, r.stdout)
            pod = fail.group(1)
            self.assertEqual(fail.group(2), fail.group(3))
            self.assertRegex(r.stdout, rf"(?m)^\[ *[\d.]+s\] FAIL +Pod/{pod} +0/1 +CrashLoopBackOff +container ")
            self.assertRegex(r.stdout, rf"(?m)^    logs of {pod}/{fail.group(2)} \(previous instance\), last 20 lines:\n"
                                       rf"      \| {re.escape(fatal)}$")
            self.assertRegex(r.stdout, rf"(?m)^      \S+ +Warning +BackOff +Back-off restarting failed container "
                                       rf"{fail.group(2)} in pod {pod}_{ns}\(")

            # what the cluster shows meanwhile: the gate passed (init exit 0
            # after the successful migration), the app container crash-loops,
            # the 1.0.0 pods keep serving
            rec = self.record(ns)[job2]
            self.assertEqual((rec["status"], rec["exitCode"]), ("succeeded", 0))
            self.assertIn("schema 1.1.0 ready", rec["outputTail"])
            p = self.get(ns, "Pod", pod)
            self.assertEqual(self.init_state(p)["terminated"]["exitCode"], 0)
            self.assertIn(job2, self.logs(ns, pod, "-c", "wait-for-migration"))

            def crashlooping():
                pp = self.get(ns, "Pod", pod)
                cs = pp["status"]["containerStatuses"][0]
                w = cs["state"].get("waiting") or {}
                return cs if w.get("reason") == "CrashLoopBackOff" and cs["restartCount"] >= 1 else None
            cs = self.wait_until(ns, f"{pod} in CrashLoopBackOff", crashlooping)
            self.assertEqual(cs["lastState"]["terminated"]["exitCode"], 1)
            self.assertIn(fatal, self.logs(ns, pod, "--previous"))
            old = self.live_app_pods(ns, "1.0.0")
            self.assertEqual(sorted(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in old),
                             ["api", "api", "worker"], self.dump(ns))
            self.assertTrue(all(tc.cond(p, "Ready") for p in old), self.dump(ns))
            self.assertFalse([p for p in self.live_app_pods(ns, "1.1.0") if tc.cond(p, "Ready")])

            # helm --wait of the very same revision: no fail fast, only its timeout
            hout, herr = helm.communicate(timeout=helm_timeout + 60 * SLOW)
        finally:
            if helm.poll() is None:
                helm.kill()
                helm.wait()
        helm_took = time.monotonic() - t_helm
        self.assertEqual(helm.returncode, 1, hout + herr)
        self.assertGreaterEqual(helm_took, helm_timeout, herr)
        self.assertIn("Error: UPGRADE FAILED: ", herr)
        self.assertIn("context deadline exceeded", herr)
        self.assertNotIn("CrashLoopBackOff", herr)  # and it does not say why

        # afterwards Helm marks the revision failed, and release-check says so too
        r = self.release_check(ns, "0")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("Release/shop: Helm marked revision 2 failed (see `helm history shop`)", r.stdout)


if __name__ == "__main__":
    unittest.main()
