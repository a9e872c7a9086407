"""Black-box tests of the static release-check binary against kubesim, and
against a real kube-apiserver and etcd (MG_BACKEND=real).

Each test gets its own namespace on one shared API server, sets up the
objects of a scenario (with status, logs and Events through the control
API) and asserts the exact exit code and the key output. On the real
server (tests/realkube, started without controllers, so the API server
holds whatever status a test writes, through the status subresource) the
tests that set a pod's log by hand or inject faults are skipped, each with
its reason.

    python3 -m unittest tests/e2e/test_release_check.py     (MG_BUILD_DIR overrides build/)
"""

import json
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
sys.path.insert(0, HERE)

import rc_fixtures as fx  # noqa: E402
from mg import SLOW, T, KubeSim, Reframer  # noqa: E402

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "release-check")
MAN = os.path.join(ROOT, "release-check", "release-check.1")
REL = "app"


class Proc:
    """A release-check running in the background, its stdout read as it comes."""

    def __init__(self, args, env=None):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out = b""

    def read_until(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                self.p.kill()
                raise AssertionError(f"no {text!r} in output: {self.out.decode(errors='replace')}")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"exited before {text!r}: {self.out.decode(errors='replace')}")
                self.out += chunk

    def wait(self, timeout=20):
        rest, err = self.p.communicate(timeout=timeout)
        return self.p.returncode, (self.out + rest).decode(), err.decode()


@unittest.skipUnless(os.access(BIN, os.X_OK), f"{BIN} not built")
class ReleaseCheckTest(unittest.TestCase):
    ks = None
    counter = 0

    @classmethod
    def setUpClass(cls):
        cls.ks = KubeSim().start()

    @classmethod
    def tearDownClass(cls):
        cls.ks.stop()

    def setUp(self):
        ReleaseCheckTest.counter += 1
        self.ns = f"rc{ReleaseCheckTest.counter}"
        self.ks.clear_faults()
        self.ks.pager(expire_next=0)
        # what `helm install` leaves: without a record (and without --no-helm) the release does not exist
        self.ks.apply(fx.helm_secret(self.ns, REL, 1, "deployed"))

    # ------------------------------------------------------------ helpers
    def apply(self, *objs):
        return [self.ks.apply(o) for o in objs]

    def args(self, *extra, kubeconfig=None):
        return [BIN, "--kubeconfig", kubeconfig or self.ks.kubeconfig, "-n", self.ns, *extra]

    def run_rc(self, *extra, timeout=30, kubeconfig=None, release=REL):
        p = subprocess.run(self.args(*extra, release, kubeconfig=kubeconfig), capture_output=True, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def start(self, *extra, release=REL):
        return Proc(self.args(*extra, release))

    def web(self, rel=REL, replicas=2, ready=True, revision="2", init=(), **dkw):
        """Deployment web at revision `revision` with its ReplicaSets and `replicas` pods
        (with init containers `init`: a pod's containers are fixed at creation)."""
        d = self.ks.apply(fx.deployment(self.ns, "web", rel, replicas=replicas, revision=revision, **dkw))
        old = self.ks.apply(fx.replicaset(self.ns, "web-1", rel, d, "1"))
        cur = self.ks.apply(fx.replicaset(self.ns, "web-2", rel, d, revision, replicas=replicas))
        for i in range(replicas):
            self.ks.apply(fx.pod(self.ns, f"web-2-{i}", rel, owner=cur, init=init,
                                 status=fx.ready_status() if ready else fx.notready_status()))
        return d, old, cur

    def kubeconfig_for(self, token, user="limited"):
        f = tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False, dir=self.ks.state_dir)
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster:
    server: {self.ks.server}
    certificate-authority: {self.ks.ca_file}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: sim
  context:
    cluster: sim
    user: {user}
current-context: sim
""")
        f.close()
        return f.name

    # ------------------------------------------------------------ healthy
    def test_healthy_rollout_with_old_pods_terminating(self):
        self.apply(fx.helm_secret(self.ns, REL, 1, "superseded"), fx.helm_secret(self.ns, REL, 2, "deployed"))
        _, old, _ = self.web()
        # an old pod still terminating (held by a finalizer) and one of the superseded ReplicaSet
        self.ks.apply(fx.pod(self.ns, "web-1-a", REL, owner=old, status=fx.crash_status(),
                             finalizers=["test/hold"]))
        self.ks.delete("v1", "Pod", self.ns, "web-1-a")
        self.ks.apply(fx.pod(self.ns, "web-1-b", REL, owner=old, status=fx.crash_status()))
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("release app is healthy after", out)
        self.assertIn("ok   Release/app", out)
        self.assertIn("revision 2 deployed", out)
        self.assertRegex(out, r"skip Pod/web-1-a +0/1 +Terminating")
        self.assertRegex(out, r"skip Pod/web-1-b +0/1 +Superseded +pod of ReplicaSet web-1 \(revision 1, current 2\)")
        self.assertRegex(out, r"ok   Deployment/web +2/2 +Available")

    def test_pods_ready_late_decided_within_milliseconds(self):
        d, _, cur = self.web(replicas=1, ready=False, available=0)
        p = self.start("--timeout", "30s")
        p.read_until("wait Pod/web-2-0")
        t0 = time.monotonic()
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, status=fx.ready_status()))
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=1, revision="2"))
        rc, out, err = p.wait()
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, out + err)
        self.assertLess(took, 1.0 * SLOW, "reacts to the change, not a poll")
        self.assertRegex(out, r"wait Pod/web-2-0 +0/1 +NotReady +container \"app\" is not ready")
        self.assertRegex(out, r"ok   Pod/web-2-0 +1/1 +Ready")

    def test_progress_lines_written_within_a_moment(self):
        # off a terminal, lines are written at most every 100 ms: a change
        # right after another must still be written while it waits
        _, _, cur = self.web(replicas=3, ready=False, available=0)
        p = self.start("--timeout", "30s")
        p.read_until("wait Pod/web-2-2")
        for i in (0, 1):
            self.ks.apply(fx.pod(self.ns, f"web-2-{i}", REL, owner=cur, status=fx.ready_status()))
        p.read_until("ok   Pod/web-2-1", timeout=2 * SLOW)
        self.assertIsNone(p.p.poll())          # still waiting for web-2-2
        p.p.kill()
        p.wait()

    def reframed(self, mode):
        """Pods turn ready while release-check watches through a relay that
        re-cuts the server's TLS records into reads (mg.Reframer)."""
        relay = Reframer(self.ks.api_port, mode)
        self.addCleanup(relay.close)
        cfg = relay.kubeconfig_for(self.ks.kubeconfig, self.ks.api_port)
        n = 4
        _, _, cur = self.web(replicas=n, ready=False, available=0)
        p = Proc(self.args("--timeout", "60s", REL, kubeconfig=cfg))
        p.read_until("wait Pod/web-2-0", timeout=20 * SLOW)
        t0 = time.monotonic()
        for i in range(n):
            self.ks.apply(fx.pod(self.ns, f"web-2-{i}", REL, owner=cur, status=fx.ready_status()))
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=n, revision="2"))
        rc, out, err = p.wait(60 * SLOW)
        # every event is read when its bytes come: none waits in a buffer
        # for more bytes (the read-ahead's pending data) or for the timeout
        self.assertEqual(rc, 0, out + err)
        self.assertLess(time.monotonic() - t0, 5 * SLOW)
        for i in range(n):
            self.assertRegex(out, r"ok   Pod/web-2-%d +1/1 +Ready" % i)
        return relay

    def test_watch_with_records_cut_into_bytes(self):
        relay = self.reframed("drip")
        self.assertGreater(relay.pieces, 1000)   # the handshake, lists and events in 1-3 byte reads

    def test_watch_with_many_records_per_read(self):
        relay = self.reframed("burst")
        self.assertGreaterEqual(relay.max_records, 3)   # several events' records in one read

    def test_statefulset_partition_rollout(self):
        self.apply(fx.statefulset(self.ns, "db", REL, replicas=3, updated=1, partition=2))
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ordinals >= 2 updated (partition)", out)
        # the partitioned pod not updated yet: wait
        self.apply(fx.statefulset(self.ns, "db", REL, replicas=3, updated=0, partition=2))
        rc, out, err = self.run_rc("--timeout", T("1s"))
        self.assertEqual(rc, 2, out + err)
        self.assertIn("0 of 1 pods at ordinal >= 2 (partition) updated", out)

    def test_evicted_pod_replaced(self):
        _, _, cur = self.web()
        self.ks.apply(fx.pod(self.ns, "web-2-evicted", REL, owner=cur,
                             status={"phase": "Failed", "reason": "Evicted",
                                     "message": "The node was low on resource: memory."}))
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"skip Pod/web-2-evicted .*Evicted +The node was low on resource: memory\.; "
                              r"ReplicaSet web-2 replaces it")

    def test_job_failed_then_succeeded(self):
        self.web()
        j = self.ks.apply(fx.job(self.ns, "app-migrate-3", REL, conditions=[("Complete", "Completed", "")],
                                 succeeded=1, failed=1))
        self.ks.apply(fx.pod(self.ns, "app-migrate-3-a", REL, owner=dict(j, apiVersion="batch/v1"), restart="Never",
                             containers=("migrate",),
                             status={"phase": "Failed", "containerStatuses": [
                                 {"name": "migrate", "state": {"terminated": {"exitCode": 1}}}]}))
        self.ks.apply(fx.pod(self.ns, "app-migrate-3-b", REL, owner=dict(j, apiVersion="batch/v1"), restart="Never",
                             containers=("migrate",), status={"phase": "Succeeded"}))
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("succeeded after 1 failed attempt", out)

    def test_helm_release_absent(self):
        # a misspelled release fails at once with the configuration code, naming the releases there
        self.web()
        self.apply(fx.helm_secret(self.ns, "db", 3, "deployed"))
        t0 = time.monotonic()
        rc, out, err = self.run_rc(release="ap")
        self.assertEqual(rc, 78, out + err)
        # 1 s natively; valgrind (MG_SLOW=3) made it 3.16 s once: the bound there is for hangs, not speed
        self.assertLess(time.monotonic() - t0, 1.0 if SLOW == 1 else 2.0 * SLOW)
        self.assertIn('no Helm release "ap" in this namespace', err)
        self.assertIn("releases here: app, db;", err)
        rc, out, err = self.run_rc("--output", "json", release="ap")
        rep = json.loads(out)
        self.assertEqual((rep["verdict"], rep["exitCode"], rep["schemaVersion"]), ("error", 78, 1))
        self.assertIn("releases here: app, db", rep["error"])
        # --no-helm: no record needed (kustomize, plain YAML)
        rc, out, err = self.run_rc("--no-helm", "-l", "app.kubernetes.io/instance=app", release="ap")
        self.assertEqual(rc, 0, out + err)

    def test_helm_pending_upgrade_then_deployed(self):
        self.apply(fx.helm_secret(self.ns, REL, 4, "deployed"), fx.helm_secret(self.ns, REL, 5, "pending-upgrade"))
        self.web()
        p = self.start()
        p.read_until("Helm is still applying revision 5 (pending-upgrade)")
        t0 = time.monotonic()
        self.ks.apply(fx.helm_secret(self.ns, REL, 5, "deployed"))
        rc, out, err = p.wait()
        self.assertEqual(rc, 0, out + err)
        self.assertLess(time.monotonic() - t0, 1.0 * SLOW)
        self.assertIn("revision 5 deployed", out)

    def test_check_once(self):
        self.web()
        rc, out, err = self.run_rc("--timeout", "0")
        self.assertEqual(rc, 0, out + err)
        self.web(ready=False)
        rc, out, err = self.run_rc("--timeout", "0")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("release app: timeout (check once), not ready yet:", out)

    def test_custom_selector(self):
        self.web(rel="other")
        rc, out, err = self.run_rc("-l", "app.kubernetes.io/instance=other", "--no-helm")
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn("Release/app", out)

    # ------------------------------------------------------------ failures
    def test_crashloop_with_logs_and_events(self):
        self.apply(fx.helm_secret(self.ns, REL, 2, "deployed"))
        d, _, cur = self.web(replicas=1, available=0)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, status=fx.crash_status()))
        self.ks.logs(self.ns, "web-2-0", "".join(f"line {i}\n" for i in range(30)) + "fatal: cannot reach db\n",
                     container="app", previous=True)
        self.ks.logs(self.ns, "web-2-0", "current instance\n", container="app")
        self.apply(fx.event(self.ns, "e1", "Pod", "web-2-0", "Warning", "BackOff",
                            "Back-off restarting failed container app", count=7),
                   fx.event(self.ns, "e2", "Pod", "web-2-0", "Normal", "Pulled", "Container image pulled",
                            seconds_ago=100),
                   fx.event(self.ns, "e3", "Pod", "other", "Warning", "Unrelated", "not this pod"))
        rc, out, err = self.run_rc("--logs", "5")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("release app FAILED after", out)
        self.assertIn('Pod/web-2-0: container "app" is crash-looping (last exit 1 (Error), 4 restarts)', out)
        self.assertIn("logs of web-2-0/app (previous instance), last 5 lines:", out)
        self.assertIn("| fatal: cannot reach db", out)
        self.assertIn("| line 26", out)
        self.assertNotIn("| line 25", out)
        self.assertNotIn("current instance", out)
        self.assertIn("events of Pod/web-2-0:", out)
        self.assertRegex(out, r"Warning BackOff +Back-off restarting failed container app \(x7\)")
        self.assertLess(out.index("Pulled"), out.index("(x7)"))  # oldest first
        self.assertNotIn("Unrelated", out)

    def test_image_pull_backoff_past_grace(self):
        _, _, cur = self.web(replicas=1, available=0)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur,
                             status=fx.waiting_status("ImagePullBackOff", 'Back-off pulling image "app:2"',
                                                      since=300)))
        self.apply(fx.event(self.ns, "e1", "Pod", "web-2-0", "Warning", "Failed",
                            'Failed to pull image "app:2": i/o timeout'))
        rc, out, err = self.run_rc("--image-pull-grace", T("1s"))
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r'Pod/web-2-0: container "app": ImagePullBackOff: Back-off pulling image "app:2" '
                              r'\(for \d+s\)')
        self.assertIn('Failed to pull image "app:2": i/o timeout', out)
        self.assertNotIn("logs of", out)

    def test_image_pull_grace_expires_without_events(self):
        _, _, cur = self.web(replicas=1, available=0)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur,
                             status=fx.waiting_status("ErrImagePull", "dial tcp: i/o timeout")))
        t0 = time.monotonic()
        rc, out, err = self.run_rc("--image-pull-grace", T("2s"))
        took = time.monotonic() - t0
        self.assertEqual(rc, 1, out + err)
        self.assertIn("(fails if it persists %s)" % T("2s"), out)
        self.assertIn('container "app": ErrImagePull: dial tcp: i/o timeout (for ', out)
        self.assertLess(took, 5 * SLOW)

    def test_image_pull_transient_heals(self):
        _, _, cur = self.web(replicas=1, available=0)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur,
                             status=fx.waiting_status("ErrImagePull", "rate limited")))
        p = self.start()
        p.read_until("ErrImagePull")
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, status=fx.ready_status()))
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=1, revision="2"))
        rc, out, err = p.wait()
        self.assertEqual(rc, 0, out + err)

    def test_create_container_config_error(self):
        _, _, cur = self.web(replicas=1, available=0)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur,
                             status=fx.waiting_status("CreateContainerConfigError", 'secret "db" not found',
                                                      since=90)))
        # graced from our own first sighting (a later manifest may create the Secret), not the pod's age
        rc, out, err = self.run_rc("--image-pull-grace", T("1s"))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("(fails if it persists %s)" % T("1s"), out)
        self.assertIn('Pod/web-2-0: container "app": CreateContainerConfigError: secret "db" not found', out)

    def test_init_container_gate_failed(self):
        _, _, cur = self.web(replicas=1, available=0, init=("wait-for-migration",))
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, init=("wait-for-migration",), status={
            "phase": "Pending", "conditions": [{"type": "Initialized", "status": "False"}],
            "initContainerStatuses": [{"name": "wait-for-migration", "ready": False, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
            "containerStatuses": [{"name": "app", "ready": False,
                                   "state": {"waiting": {"reason": "PodInitializing"}}}]}))
        self.ks.logs(self.ns, "web-2-0", "wait-for-job: job app-migrate-3 failed: BackoffLimitExceeded\n",
                     container="wait-for-migration")
        # restartPolicy Always: the kubelet runs the gate again, one exit is not yet a failure
        rc, out, err = self.run_rc("--timeout", "0")
        self.assertEqual(rc, 2, out + err)
        # its crash loop is
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, init=("wait-for-migration",), status={
            "phase": "Pending", "conditions": [{"type": "Initialized", "status": "False"}],
            "initContainerStatuses": [{"name": "wait-for-migration", "ready": False, "restartCount": 1,
                                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                       "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
            "containerStatuses": [{"name": "app", "ready": False,
                                   "state": {"waiting": {"reason": "PodInitializing"}}}]}))
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 1, out + err)
        self.assertIn('Pod/web-2-0: init container "wait-for-migration" is crash-looping (last exit 1 (Error)', out)
        self.assertIn("logs of web-2-0/wait-for-migration", out)
        self.assertIn("| wait-for-job: job app-migrate-3 failed: BackoffLimitExceeded", out)

    def test_failed_migration_job(self):
        self.web()
        j = self.ks.apply(fx.job(self.ns, "app-migrate-3", REL, failed=3, conditions=[
            ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]))
        owner = dict(j, apiVersion="batch/v1")
        for name, exit_code, ago in (("a", 3, 30), ("b", 4, 10), ("c", 5, 20)):
            self.ks.apply(fx.pod(self.ns, f"app-migrate-3-{name}", REL, owner=owner, restart="Never",
                                 containers=("migrate",), status={"phase": "Failed", "containerStatuses": [
                                     {"name": "migrate", "state": {"terminated": {
                                         "exitCode": exit_code, "finishedAt": fx.ts(ago)}}}]}))
            self.ks.logs(self.ns, f"app-migrate-3-{name}", f"attempt {name}: relation already exists\n",
                         container="migrate")
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("Job/app-migrate-3: Job failed: BackoffLimitExceeded: Job has reached the specified backoff "
                      "limit", out)
        self.assertIn("logs of app-migrate-3-b/migrate, last 20 lines:", out)
        self.assertIn("| attempt b: relation already exists", out)
        self.assertRegex(out, r"skip Pod/app-migrate-3-a .*Job app-migrate-3")

    def gated_web(self, job_name):
        """Deployment web whose pod template's wait-for-job init container waits for job_name (chart-snippets)."""
        d = fx.deployment(self.ns, "web", REL, replicas=1, revision="2")
        d["spec"]["template"]["spec"]["initContainers"] = [{
            "name": "wait-for-migration", "image": "registry.example/migration-gate/wait-for-job:0.1.0",
            "args": [job_name], "env": [{"name": "WAIT_FOR_JOB_RECORD", "value": "app-migrations"}]}]
        d = self.ks.apply(d)
        cur = self.ks.apply(fx.replicaset(self.ns, "web-2", REL, d, "2", replicas=1))
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur))

    def test_current_job_named_by_the_gate_without_helm(self):
        # issue 14: --no-helm as exact as Helm mode for chart-snippets charts; no timestamps
        self.gated_web("app-migrate-b")
        self.ks.apply(fx.job(self.ns, "app-migrate-a", REL, failed=3, conditions=[
            ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]))
        self.ks.apply(fx.job(self.ns, "app-migrate-b", REL, succeeded=1, conditions=[("Complete", "", "")]))
        rc, out, err = self.run_rc("--no-helm")
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"skip Job/app-migrate-a .*Superseded .*no current pod template's wait-for-job")

    def test_failed_job_named_by_the_gate_without_helm(self):
        # the Job the gate names failed: the release failed, with the migration's exit code in the report,
        # though an earlier revision's Job succeeded (a finished Job never changes its verdict: the real
        # server refuses to take back Complete, so this is a namespace of its own)
        self.gated_web("app-migrate-b")
        self.ks.apply(fx.job(self.ns, "app-migrate-a", REL, succeeded=1, conditions=[("Complete", "", "")]))
        j = self.ks.apply(fx.job(self.ns, "app-migrate-b", REL, failed=3, conditions=[
            ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]))
        self.ks.apply(fx.pod(self.ns, "app-migrate-b-x", REL, owner=dict(j, apiVersion="batch/v1"), restart="Never",
                             containers=("migrate",), status={"phase": "Failed", "containerStatuses": [
                                 {"name": "migrate", "state": {"terminated": {
                                     "exitCode": 1, "finishedAt": fx.ts(5),
                                     "message": '{"status":"failed","reason":"Exited","exitCode":3}'}}}]}))
        rc, out, err = self.run_rc("--no-helm", "--output", "json", "-q")
        self.assertEqual(rc, 1, out + err)
        rep = json.loads(out)
        self.assertEqual((rep["schemaVersion"], rep["verdict"], rep["migrationExitCode"]), (1, "failed", 3))
        self.assertEqual(err, "")  # -q: no progress lines

    def test_job_of_earlier_revision_by_label(self):
        self.web()
        self.apply(fx.helm_secret(self.ns, REL, 4, "deployed"))
        old = fx.job(self.ns, "app-migrate-x", REL, failed=3, conditions=[("Failed", "BackoffLimitExceeded", "")])
        old["metadata"]["labels"]["migration-gate.io/release-revision"] = "3"
        self.ks.apply(old)
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("kept Job of Helm revision 3 (current 4)", out)

    def test_environment_and_quiet(self):
        self.web()
        env = dict(os.environ, RELEASE_CHECK_NAMESPACE=self.ns, RELEASE_CHECK_RELEASE=REL,
                   RELEASE_CHECK_TIMEOUT=T("20s"))
        p = subprocess.run([BIN, "--kubeconfig", self.ks.kubeconfig, "-q"], capture_output=True, text=True,
                           timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"^release app is healthy after [\d.]+s: \d+ objects? ready\n$")
        env["RELEASE_CHECK_TIMEOUT"] = "soon"
        p = subprocess.run([BIN, "--kubeconfig", self.ks.kubeconfig], capture_output=True, text=True, timeout=30,
                           env=env)
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("RELEASE_CHECK_TIMEOUT", p.stderr)

    def test_progress_deadline_exceeded_current_generation(self):
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=2, updated=1, available=1, revision="2",
                                    conditions=[{"type": "Progressing", "status": "False",
                                                 "reason": "ProgressDeadlineExceeded",
                                                 "message": 'ReplicaSet "web-2" has timed out progressing.'}]))
        self.apply(fx.event(self.ns, "e1", "Deployment", "web", "Warning", "ProgressDeadlineExceeded",
                            "rollout stuck"))
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 1, out + err)
        self.assertIn('Deployment/web: ReplicaSet "web-2" has timed out progressing.', out)
        self.assertIn("events of Deployment/web:", out)

    def test_progress_deadline_exceeded_stale_generation(self):
        pde = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=1, updated=0, available=0, observed=0,
                                    conditions=pde))
        p = self.start()
        p.read_until("waiting for the controller to observe generation 1")
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=1, conditions=[
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]))
        rc, out, err = p.wait()
        self.assertEqual(rc, 0, out + err)

    def test_helm_release_failed(self):
        self.apply(fx.helm_secret(self.ns, REL, 2, "deployed"), fx.helm_secret(self.ns, REL, 3, "failed"))
        self.web()
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("Release/app: Helm marked revision 3 failed (see `helm history app`)", out)

    def test_unowned_pod_failed(self):
        self.apply(fx.pod(self.ns, "smoke", REL, restart="Never", status={
            "phase": "Failed", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 2}}}]}))
        self.ks.logs(self.ns, "smoke", "smoke test failed\n", container="app")
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("Pod/smoke: pod failed", out)
        self.assertIn("| smoke test failed", out)

    # ------------------------------------------------------------ waiting, timeouts
    def test_unschedulable_keeps_waiting_until_timeout(self):
        _, _, cur = self.web(replicas=1, available=0)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, status={
            "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                "message": "0/3 nodes are available: 3 Insufficient cpu."}]}))
        rc, out, err = self.run_rc("--timeout", T("1s"))
        self.assertEqual(rc, 2, out + err)
        self.assertIn("release app: timeout after %s, still waiting for:" % T("1s"), out)
        self.assertIn("Pod/web-2-0 0/1 Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.", out)

    def test_timeout_prints_last_state(self):
        self.web(available=1)
        t0 = time.monotonic()
        rc, out, err = self.run_rc("--timeout", T("1500ms"))
        self.assertEqual(rc, 2, out + err)
        self.assertGreaterEqual(time.monotonic() - t0, 1.4)
        self.assertIn("Deployment/web 1/2 RollingOut: 1 of 2 replicas ready", out)

    def test_nothing_selected_is_not_success(self):
        rc, out, err = self.run_rc("--timeout", T("1s"))
        self.assertEqual(rc, 2, out + err)
        self.assertIn("no workloads or pods match the selector yet", out)

    # ------------------------------------------------------------ API trouble
    def test_forbidden_on_one_kind(self):
        rules = [{"apiGroups": [""], "resources": ["pods", "secrets", "events", "pods/log"],
                  "verbs": ["get", "list", "watch"]},
                 {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
                  "verbs": ["get", "list", "watch"]}]
        token = self.ks.token("limited", rules=rules)
        self.web()
        rc, out, err = self.run_rc(kubeconfig=self.kubeconfig_for(token))
        self.assertEqual(rc, 77, out + err)
        self.assertIn("cannot list jobs.batch", err)
        self.assertIn(f"may not list jobs.batch in namespace {self.ns}", err)
        self.assertIn('  - apiGroups: ["batch"]\n    resources: ["jobs"]\n    verbs: ["list", "watch"]', err)
        self.assertNotIn(token, out + err)

    def test_forbidden_secrets_suggests_no_helm(self):
        rules = [{"apiGroups": ["", "apps", "batch"], "resources": ["pods", "deployments", "replicasets",
                                                                    "statefulsets", "daemonsets", "jobs"],
                  "verbs": ["list", "watch"]}]
        kc = self.kubeconfig_for(self.ks.token("nosecrets", rules=rules))
        self.web()
        rc, out, err = self.run_rc(kubeconfig=kc)
        self.assertEqual(rc, 77, out + err)
        self.assertIn('resources: ["secrets"]', err)
        self.assertIn("--no-helm", err)
        rc, out, err = self.run_rc("--no-helm", kubeconfig=kc)
        self.assertEqual(rc, 0, out + err)

    def test_watch_drops_and_gone(self):
        _, _, cur = self.web(replicas=1, available=0, ready=False)
        p = self.start()
        p.read_until("wait Pod/web-2-0")
        # every watch is cut after 0.3 s and the next one answers 410 Gone: relist
        self.ks.faults(close_watches_after=0.3, next_watch_gone=2, match="/pods")
        self.ks.faults(close_watches_now=True)
        time.sleep(0.8)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, status=fx.ready_status()))
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=1, revision="2"))
        rc, out, err = p.wait()
        self.assertEqual(rc, 0, out + err)

    def pod_lists(self):
        """The queries of this namespace's pod lists (not watches), in order, with their status codes."""
        return [(i["query"], i["code"]) for i in self.ks.requests()["items"]
                if i.get("verb") == "list" and i["path"] == f"/api/v1/namespaces/{self.ns}/pods"]

    def test_lists_paged_with_continue(self):
        """--chunk-size pages the lists (limit/continue); a verdict needs every page: the one
        crashing pod sorts last, on the third page."""
        _, _, cur = self.web(replicas=7)
        self.ks.apply(fx.pod(self.ns, "web-2-6", REL, owner=cur, status=fx.crash_status()))
        rc, out, err = self.run_rc("--chunk-size", "3", "--timeout", "20s", "--logs", "0")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("web-2-6", out)
        lists = self.pod_lists()
        self.assertEqual(len(lists), 3, lists)
        self.assertTrue(all("limit=3" in q and c == 200 for q, c in lists), lists)
        self.assertEqual(["continue=" in q for q, _ in lists], [False, True, True], lists)
        # the default: 500 a page
        rc, out, err = self.run_rc("--timeout", "20s", "--logs", "0")
        self.assertEqual(rc, 1, out + err)
        self.assertTrue(all("limit=500" in q for q, _ in self.pod_lists()[3:]), self.pod_lists())
        # RELEASE_CHECK_CHUNK_SIZE=0: one answer, no limit
        env = dict(os.environ, RELEASE_CHECK_CHUNK_SIZE="0")
        p = subprocess.run(self.args("--timeout", "20s", "--logs", "0", REL), capture_output=True, text=True,
                           timeout=30, env=env)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotIn("limit=", self.pod_lists()[-1][0])

    def test_expired_continue_token_restarts_the_list(self):
        """A continue token that expires between pages (410) lists afresh from the first page."""
        self.web(replicas=5)
        self.ks.pager(expire_next=1)
        rc, out, err = self.run_rc("--chunk-size", "2", "--timeout", "20s")
        self.assertEqual(rc, 0, out + err)
        lists = self.pod_lists()
        self.assertEqual([c for _, c in lists], [200, 410, 200, 200, 200], lists)
        self.assertEqual(["continue=" in q for q, _ in lists], [False, True, False, True, True], lists)
        for i in range(5):     # every pod once, the first pages' not twice
            self.assertEqual(out.count(f"Pod/web-2-{i} "), 1, out)

    def test_continue_tokens_that_always_expire_back_off(self):
        """A server that expires every token: the relists back off, and the run ends at its deadline
        saying why instead of spinning on the first page."""
        self.web(replicas=5)
        self.ks.pager(expire_next=100000)
        rc, out, err = self.run_rc("--chunk-size", "2", "--timeout", "4s")
        lists = self.pod_lists()
        self.assertIn(rc, (2, 69), out + err)
        self.assertIn("continue parameter is too old", err)
        self.assertLess(len(lists), 30, lists)       # backed off: not hundreds of relists in 4 s
        self.assertGreater(len(lists), 4, lists)     # but it did keep trying

    def test_server_errors_retried(self):
        self.web()
        self.ks.faults(errors_5xx=3, match="/deployments")
        rc, out, err = self.run_rc()
        self.assertEqual(rc, 0, out + err)

    def test_unreachable_server(self):
        with socket_free_port() as port:
            kc = os.path.join(self.ks.state_dir, "dead.kubeconfig")
            with open(kc, "w") as f:
                f.write(f"apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n"
                        f"    server: https://127.0.0.1:{port}\n    certificate-authority: {self.ks.ca_file}\n"
                        f"users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n"
                        f"    cluster: x\n    user: u\ncurrent-context: x\n")
            rc, out, err = self.run_rc("--timeout", "2s", kubeconfig=kc)
        self.assertEqual(rc, 69, out + err)
        self.assertIn("unavailable", err)

    def test_bad_kubeconfig(self):
        kc = os.path.join(self.ks.state_dir, "bad.kubeconfig")
        with open(kc, "w") as f:
            f.write("apiVersion: v1\nkind: Config\ncurrent-context: nope\n")
        rc, out, err = self.run_rc(kubeconfig=kc)
        self.assertEqual(rc, 78, out + err)
        rc, out, err = self.run_rc(kubeconfig="/nonexistent/kubeconfig")
        self.assertEqual(rc, 78, out + err)

    # ------------------------------------------------------------ output
    def test_json_report(self):
        self.apply(fx.helm_secret(self.ns, REL, 2, "deployed"))
        _, _, cur = self.web(replicas=1, available=0)
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, status=fx.crash_status(exit_code=137)))
        self.ks.logs(self.ns, "web-2-0", "a\nb\n", container="app", previous=True)
        self.apply(fx.event(self.ns, "e1", "Pod", "web-2-0", "Warning", "BackOff", "Back-off", count=3))
        rc, out, err = self.run_rc("--output", "json")
        self.assertEqual(rc, 1, out + err)
        rep = json.loads(out)
        self.assertEqual(rep["verdict"], "failed")
        self.assertEqual(rep["exitCode"], 1)
        self.assertEqual(rep["release"], REL)
        self.assertEqual(rep["namespace"], self.ns)
        self.assertEqual(rep["selector"], "app.kubernetes.io/instance=app")
        self.assertEqual(rep["helm"], {"revision": 2, "status": "deployed"})
        self.assertRegex(rep["startedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIsInstance(rep["elapsedSeconds"], (int, float))
        pods = {o["name"]: o for o in rep["objects"] if o["kind"] == "Pod"}
        bad = pods["web-2-0"]
        self.assertEqual(bad["verdict"], "failed")
        self.assertEqual(bad["state"], "CrashLoopBackOff")
        self.assertEqual(bad["logs"], {"pod": "web-2-0", "container": "app", "previous": True, "lines": ["a", "b"]})
        self.assertEqual([(e["reason"], e["count"]) for e in bad["events"]], [("BackOff", 3)])
        kinds = [o["kind"] for o in rep["objects"]]
        self.assertEqual(kinds[:2], ["Release", "Deployment"])
        # progress goes to stderr, the report alone to stdout
        self.assertIn("FAIL Pod/web-2-0", err)

    def test_json_report_timeout_and_error(self):
        self.web(available=1)
        rc, out, err = self.run_rc("--output", "json", "--timeout", T("1s"))
        self.assertEqual(rc, 2, out + err)
        rep = json.loads(out)
        self.assertEqual((rep["verdict"], rep["exitCode"]), ("timeout", 2))
        rc, out, err = self.run_rc("--output", "json", kubeconfig="/nonexistent/kubeconfig")
        self.assertEqual(rc, 78, out + err)
        rep = json.loads(out)
        self.assertEqual((rep["verdict"], rep["exitCode"]), ("error", 78))
        self.assertIn("error", rep)

    def test_tty_table_redrawn_in_place(self):
        _, _, cur = self.web(replicas=1, available=0, ready=False)
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["TERM"] = "xterm"
            os.execv(BIN, self.args("--timeout", "20s", REL))
        out = b""

        def read_until(needle, timeout=10):
            nonlocal out
            deadline = time.monotonic() + timeout
            while needle not in out and time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
            return needle in out

        self.assertTrue(read_until(b"OBJECT"), out)
        time.sleep(1.2)  # at least one redraw on the tick
        self.ks.apply(fx.pod(self.ns, "web-2-0", REL, owner=cur, status=fx.ready_status()))
        self.ks.apply(fx.deployment(self.ns, "web", REL, replicas=1, revision="2"))
        read_until(b"is healthy after")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        text = out.decode(errors="replace")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, text)
        self.assertIn("\x1b[", text)  # cursor movement: redrawn in place
        self.assertRegex(text, r"release app in rc\d+: progressing")
        self.assertRegex(text, r"Deployment/web +0/1 +RollingOut")
        self.assertNotIn("[    ", text)  # no per-change log lines on a TTY

    # ------------------------------------------------------------ CLI
    def test_usage(self):
        for args, msg in ((["--kubeconfig", self.ks.kubeconfig], "missing RELEASE"),
                          (["--output", "yaml", REL], "--output must be text or json"),
                          (["--timeout", "10", REL], "--timeout"),
                          (["--logs", "-1", REL], "--logs must be"),
                          (["Bad_Name"], "invalid release name"),
                          ([REL, "extra"], "unexpected argument"),
                          (["--bogus", REL], "unknown option"),
                          (["--timeout"], "needs a value")):
            p = subprocess.run([BIN, *args], capture_output=True, text=True)
            self.assertEqual(p.returncode, 64, (args, p.stderr))
            self.assertIn(msg, p.stderr)
            self.assertIn("Try 'release-check --help'", p.stderr)
            self.assertEqual(p.stdout, "")
        p = subprocess.run([BIN, "--help"], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertIn("Usage: release-check [OPTIONS] RELEASE", p.stdout)
        p = subprocess.run([BIN, "-V"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^release-check \d+\.\d+\.\d+")

    def test_every_help_option_in_man_page(self):
        helptext = subprocess.run([BIN, "--help"], capture_output=True, text=True).stdout
        with open(MAN) as f:
            man = f.read().replace("\\-", "-")
        opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])\b", helptext))
        self.assertGreater(len(opts), 10)
        for opt in sorted(opts):
            self.assertIn(opt, man, f"{opt} is in --help but not in release-check.1")
        self.assertIn(".SH EXIT STATUS", man)
        for code in ("0", "1", "2", "64", "69", "77", "78"):
            self.assertRegex(man, rf"\.IP {code}\b|\.TP\n\.B {code}\b|\n{code}\b")


class socket_free_port:
    """A loopback port with nothing listening on it."""

    def __enter__(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        return self.port

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    unittest.main()
