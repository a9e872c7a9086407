"""Shared helpers for the black-box tests of the static binaries.

    from mg import BIN, run, start, in_cluster_cmd, job, KubeSim

BIN(name) is the binary under test (build/NAME; $MG_BUILD_DIR overrides).
in_cluster_cmd(ks, argv) wraps argv so it runs in real in-cluster mode: a
private mount namespace (unshare -m) with a tmpfs on /run and kubesim's
service-account directory bind-mounted at
/run/secrets/kubernetes.io/serviceaccount (/var/run is a link to /run), plus
KUBERNETES_SERVICE_HOST/PORT. Nothing is created on the real filesystem.
"""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))

# MG_BACKEND selects the API server the suites run against: "kubesim" (the
# default: our simulator, with fault injection) or "real" (tests/realkube: a
# real kube-apiserver and etcd; the suites' KubeSim(...) then starts one, and
# what only a simulator can do is skipped with the reason).
BACKEND = os.environ.get("MG_BACKEND", "kubesim")
if BACKEND == "real":
    sys.path.insert(0, os.path.join(ROOT, "tests", "realkube"))
    from realkube import RealKube as KubeSim  # noqa: E402,F401
else:
    from kubesim_client import KubeSim  # noqa: E402,F401


def kubesim_only(reason):
    """Skip a test on the real backend: it needs what only kubesim does."""
    import unittest
    return unittest.skipIf(BACKEND == "real", "kubesim only: " + reason)

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))
# >1 when the binaries run under valgrind or sanitizers: timeouts and time
# limits in tests scale by it (make check-e2e-valgrind sets 3)
SLOW = float(os.environ.get("MG_SLOW", "1"))


def T(d):
    """A duration option value ("1s", "1500ms") scaled by SLOW, written the
    way the binaries print durations when it is whole seconds."""
    ms = int(d[:-2]) if d.endswith("ms") else int(float(d[:-1]) * 1000)
    ms = int(ms * SLOW)
    return "%ds" % (ms // 1000) if ms % 1000 == 0 else "%dms" % ms
SA_MOUNT = "/run/secrets/kubernetes.io/serviceaccount"


def BIN(name):
    return os.path.join(BUILD, name)


def clean_env(extra=None):
    """An environment without any ambient Kubernetes configuration."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KUBERNETES_", "WAIT_FOR_JOB_", "RELEASE_CHECK_", "MR_"))
           and k not in ("KUBECONFIG", "JOB_NAME", "POD_NAME")}
    env["HOME"] = "/nonexistent-home"
    env.update(extra or {})
    return env


def run(argv, timeout=30, env=None, **kw):
    """Run to completion; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env or clean_env(), **kw)


_started = []


def start(argv, env=None, **kw):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env or clean_env(), **kw)
    _started.append(p)
    return p


def kill_leftovers():
    """Kill what start() started and is still running (a test that failed or
    skipped before it finished its waiter); a test's cleanup calls it."""
    while _started:
        p = _started.pop()
        if p.poll() is None:
            p.kill()
            p.wait()


def can_unshare():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def in_cluster_cmd(ks, argv):
    script = ('set -e; mount -t tmpfs tmpfs /run; mkdir -p "$SA_MOUNT"; '
              'mount --bind "$SA_SRC" "$SA_MOUNT"; exec "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]


def in_cluster_env(ks, extra=None):
    env = clean_env(ks.in_cluster_env())
    env["SA_SRC"] = ks.sa_dir
    env["SA_MOUNT"] = SA_MOUNT
    env.update(extra or {})
    return env


def job(name, ns="default", status=None, labels=None):
    """A Job object as the API server would store it, with the given status."""
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {"backoffLimit": 2, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "migrate", "image": "migrate:1"}]}}},
        "status": status or {"active": 1},
    }


# Valid on a real API server too (it requires startTime on a finished Job and
# completionTime on a Complete one: tests/kubesim/README.md, "checked against")
COMPLETE = {"succeeded": 1, "active": 0, "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:00:05Z",
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
                           {"type": "Complete", "status": "True", "reason": "CompletionsReached"}]}
FAILED = {"failed": 3, "active": 0, "startTime": "2026-01-01T00:00:00Z",
          "conditions": [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                          "message": "Job has reached the specified backoff limit"},
                         {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                          "message": "Job has reached the specified backoff limit"}]}
