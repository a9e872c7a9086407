"""Test helper for kubesim (standard library only).  Stable API:

    import sys; sys.path.insert(0, "tests/kubesim")
    from kubesim_client import KubeSim, kubectl_binary

    with KubeSim() as ks:                    # temp state dir, waits until ready
        ks.apply({...full object incl. status...})
        ks.patch_status("batch/v1", "Job", "default", "migrate",
                        {"conditions": [{"type": "Complete", "status": "True"}]})
        ks.delete("batch/v1", "Job", "default", "migrate")
        ks.objects(kind="Job", namespace="default")        # -> list of objects
        ks.logs("default", "pod-1", "line1\\nline2\\n", container="app", previous=False)
        ks.faults(errors_5xx=2, match="/jobs"); ks.clear_faults()
        ks.pager(expire_next=1)                              # limit/continue: next token gets 410
        ks.requests(); ks.reset_requests()                  # {"total","by_verb","items"}
        tok = ks.token("system:serviceaccount:ns:sa", rules=[{...}])
        ks.image("example/migrations", ["/migrate-runner", "--"], ["sh", "-c", "sleep 2"])  # --kubelet
        ks.rotate(ks.sa_user, grace_seconds=0)             # rewrites sa_dir/token
        r = ks.kubectl("get", "jobs", "-o", "json")         # CompletedProcess(text)
        p = ks.kubectl_popen("wait", "--for=condition=complete", "job/migrate")
        ks.wait_for_request(lambda r: r["verb"] == "watch" and "/jobs" in r["path"])
        code, headers, body = ks.api("GET", "/api/v1/namespaces/default/pods")
        with ks.open_watch("/apis/batch/v1/namespaces/default/jobs?watch=true") as w:
            event = json.loads(w.readline())
        env = dict(os.environ, **ks.in_cluster_env())     # + files in ks.sa_dir

Attributes: state_dir, kubeconfig, ca_file, sa_dir (token, ca.crt, namespace),
sa_user, server, api_port, control_port, admin_token, info (kubesim.json).
KubeSim(state_dir=None, bookmark_interval=None, history=None, sa_namespace=
"default", sa_name="default", extra_args=(), controllers=False, kubelet=False,
bin_dir=None, backoff_scale=None, max_grace=None, pod_rbac=None) — the last six
switch on kubesim's controllers and kubelet (README.md "Controllers", "Kubelet").  kubectl_binary() honours
$KUBECTL, else the plain kubectl.1.32 beside the resolved `kubectl` (the
/usr/bin/kubectl dispatcher adds requests of its own), else `kubectl`.
"""

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def kubectl_binary():
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    found = shutil.which("kubectl")
    if found:
        plain = os.path.join(os.path.dirname(os.path.realpath(found)), "kubectl.1.32")
        if os.access(plain, os.X_OK):
            return plain
        return found
    return "kubectl"


class ControlError(Exception):
    def __init__(self, code, body):
        super().__init__(f"control API {code}: {body}")
        self.code, self.body = code, body


class KubeSim:
    def __init__(self, state_dir=None, bookmark_interval=None, history=None,
                 sa_namespace="default", sa_name="default", extra_args=(),
                 controllers=False, kubelet=False, bin_dir=None, backoff_scale=None, max_grace=None,
                 pod_rbac=None):
        self._own_dir = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="kubesim-")
        self.args = ["--state-dir", self.state_dir, "--sa-namespace", sa_namespace, "--sa-name", sa_name]
        if bookmark_interval is not None:
            self.args += ["--bookmark-interval", str(bookmark_interval)]
        if history is not None:
            self.args += ["--history", str(history)]
        if controllers:
            self.args.append("--controllers")
        if kubelet:
            self.args.append("--kubelet")
        if bin_dir:
            self.args += ["--bin-dir", os.path.abspath(bin_dir)]
        if backoff_scale is not None:
            self.args += ["--backoff-scale", str(backoff_scale)]
        if max_grace is not None:
            self.args += ["--max-grace", str(max_grace)]
        if pod_rbac:
            self.args += ["--pod-rbac", pod_rbac]
        self.args += list(extra_args)
        self.proc = None
        self._ssl = None

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout=15):
        ready = os.path.join(self.state_dir, "kubesim.json")
        if os.path.exists(ready):
            os.unlink(ready)
        self._log = open(os.path.join(self.state_dir, "kubesim.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "kubesim.py"), *self.args],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError(f"kubesim exited with {self.proc.returncode}; see {self._log.name}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kubesim did not become ready")
            time.sleep(0.02)
        with open(ready) as f:
            self.info = json.load(f)
        self.api_port, self.control_port = self.info["api_port"], self.info["control_port"]
        self.server, self.admin_token = self.info["server"], self.info["admin_token"]
        self.kubeconfig, self.ca_file = self.info["kubeconfig"], self.info["ca_file"]
        self.sa_dir, self.sa_user = self.info["sa_dir"], self.info["sa_user"]
        self._ssl = ssl.create_default_context(cafile=self.ca_file)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ control API
    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise ControlError(e.code, e.read().decode(errors="replace")) from None

    def apply(self, obj):
        return self.control("POST", "/apply", obj)

    def patch_status(self, api_version, kind, namespace, name, status):
        return self.control("POST", "/patch-status", {"apiVersion": api_version, "kind": kind,
                                                      "namespace": namespace, "name": name, "status": status})

    def delete(self, api_version, kind, namespace, name):
        return self.control("POST", "/delete", {"apiVersion": api_version, "kind": kind,
                                                "namespace": namespace, "name": name})

    def objects(self, kind=None, namespace=None):
        q = "&".join(f"{k}={v}" for k, v in (("kind", kind), ("namespace", namespace)) if v)
        return self.control("GET", "/objects" + ("?" + q if q else ""))["items"]

    def logs(self, namespace, pod, text, container=None, previous=False):
        return self.control("POST", "/logs", {"namespace": namespace, "pod": pod, "container": container,
                                              "previous": previous, "text": text})

    def faults(self, **spec):
        return self.control("POST", "/faults", spec)

    def pager(self, expire_next=0):
        """The next expire_next list requests that carry a continue token get 410 Expired."""
        return self.control("POST", "/pager", {"expire_next": expire_next})

    def clear_faults(self):
        return self.control("POST", "/faults/clear", {})

    def requests(self):
        return self.control("GET", "/requests")

    def reset_requests(self):
        return self.control("POST", "/requests/reset", {})

    def token(self, user, rules=None, token=None):
        body = {"user": user}
        if rules is not None:
            body["rules"] = rules
        if token:
            body["token"] = token
        return self.control("POST", "/tokens", body)["token"]

    def rotate(self, user, grace_seconds=0):
        return self.control("POST", "/rotate", {"user": user, "grace_seconds": grace_seconds})["token"]

    def image(self, image, entrypoint, cmd=()):
        """Declare an image's ENTRYPOINT/CMD: the kubelet then runs its containers
        as local processes (image = "repo" for every tag, or "repo:tag")."""
        return self.control("POST", "/images", {"image": image, "entrypoint": list(entrypoint), "cmd": list(cmd)})

    def wait_for_request(self, predicate, timeout=10):
        """Block until a recorded API request satisfies predicate(item); return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.requests()["items"]:
                if predicate(item):
                    return item
            time.sleep(0.01)
        raise TimeoutError("no matching API request recorded")

    # ------------------------------------------------------------ clients
    def kubectl_cmd(self, *args):
        return [kubectl_binary(), "--kubeconfig", self.kubeconfig,
                "--cache-dir", os.path.join(self.state_dir, "kubectl-cache"), *args]

    def kubectl(self, *args, input=None, timeout=60):
        return subprocess.run(self.kubectl_cmd(*args), input=input, capture_output=True, text=True,
                              timeout=timeout)

    def kubectl_popen(self, *args):
        return subprocess.Popen(self.kubectl_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def api(self, method, path, body=None, token=None, headers=None, content_type="application/json", timeout=30):
        """One HTTPS request to the API; returns (status, headers, body bytes) without raising on 4xx/5xx."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = {"Authorization": f"Bearer {token or self.admin_token}", "Content-Type": content_type}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def open_watch(self, path, token=None, timeout=30):
        """Start a watch; returns the open response (iterate .readline() for events)."""
        req = urllib.request.Request(self.server + path,
                                     headers={"Authorization": f"Bearer {token or self.admin_token}"})
        return urllib.request.urlopen(req, context=self._ssl, timeout=timeout)

    def in_cluster_env(self):
        """Environment variables an in-cluster client needs (pair with sa_dir files)."""
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.api_port)}
