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
import select
import shutil
import socket
import subprocess
import sys
import threading
import time

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


class Reframer:
    """A TCP relay in front of the API server that changes only how the
    server's bytes are cut into reads, never the bytes: "drip" sends them in
    pieces of 1 to 3 bytes (every TLS record arrives in many reads), "burst"
    holds them for `hold` seconds and sends them at once (many TLS records in
    one read). The client's bytes pass unchanged. kubeconfig_for(path)
    writes a copy of a kubeconfig that goes through the relay."""

    def __init__(self, upstream_port, mode, hold=0.3):
        self.mode, self.hold, self.upstream_port = mode, hold, upstream_port
        self.pieces = 0          # sends to the client
        self.max_records = 0     # TLS records begun in one send (burst)
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def kubeconfig_for(self, path, api_port):
        with open(path) as f:
            text = f.read()
        needle = "127.0.0.1:%d" % api_port
        assert needle in text, "no %s in %s" % (needle, path)
        out = path + ".reframed-%s-%d" % (self.mode, self.port)
        with open(out, "w") as f:
            f.write(text.replace(needle, "127.0.0.1:%d" % self.port))
        return out

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
                u = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                return
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._up, args=(c, u), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    def _up(self, c, u):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                u.sendall(data)
        except (OSError, ValueError):
            pass
        self._close(c, u)

    def _down(self, u, c):
        rec_left = 0     # bytes of the current TLS record still to come
        try:
            buf, since = b"", None
            while True:
                wait = None if since is None else max(0.0, since + self.hold - time.monotonic())
                r, _, _ = select.select([u], [], [], wait)
                data = u.recv(65536) if r else b""
                if r and not data:
                    if buf:
                        c.sendall(buf)
                    break
                if self.mode == "drip":
                    i, n = 0, 1
                    while i < len(data):
                        c.sendall(data[i:i + n])
                        i, n = i + n, n % 3 + 1
                        with self.lock:
                            self.pieces += 1
                    continue
                buf += data
                if since is None and buf:
                    since = time.monotonic()
                if since is not None and time.monotonic() >= since + self.hold:
                    records, i = 0, rec_left
                    while i + 5 <= len(buf):         # count the record headers in this send
                        records += 1
                        i += 5 + int.from_bytes(buf[i + 3:i + 5], "big")
                    rec_left = max(0, i - len(buf))
                    c.sendall(buf)
                    with self.lock:
                        self.pieces += 1
                        self.max_records = max(self.max_records, records)
                    buf, since = b"", None
        except (OSError, ValueError):   # ValueError: _up closed the socket
            pass
        self._close(c, u)

    def close(self):
        self.closed = True
        self._close(self.sock)
