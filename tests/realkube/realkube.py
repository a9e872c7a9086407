#!/usr/bin/env python3
"""A real, pinned Kubernetes control plane for the tests (standard library only).

    python3 tests/realkube/realkube.py build          # build/cached binaries, prints their dir
    python3 tests/realkube/realkube.py up DIR        # start; writes DIR/kubeconfig, DIR/realkube.json
    python3 tests/realkube/realkube.py down DIR      # stop every process it started (by PID)

From Python:

    sys.path.insert(0, "tests/realkube"); from realkube import RealKube
    with RealKube(node=True, bin_dir="build") as rk:    # etcd, apiserver, kcm, scheduler, node agent
        rk.kubectl("get", "nodes")
        code, hdrs, body = rk.api("GET", "/api/v1/namespaces")
        tok = rk.token_for("default", "app", seconds=600)   # TokenRequest: bound, expiring

Everything listens on 127.0.0.1 only, on ports picked free at start. The
service CIDR (10.96.0.0/16) is only a number the API server allocates from:
nothing on this machine routes to it and no test sends traffic there
(KUBERNETES_SERVICE_HOST in pods is 127.0.0.1, tests/realkube/README.md).
Certificates (CA, serving, client, service-account key) come from the
openssl CLI into the state directory on every start; nothing is cached in
the repository. The binaries are built once by build.sh into a cache
outside the clone, keyed by the pinned versions (go.mod/go.sum).
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.request
from unittest import SkipTest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
K8S_VERSION = "v1.37.2"
SERVICE_CIDR = "10.96.0.0/16"
NODE_NAME = "realkube-node"
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
sys.path.insert(0, HERE)
import nodeagent  # noqa: E402  (its /containerLogs handler serves logs() without a node agent)


# kind -> resource, for the objects the tests write
KINDS = {"Namespace": "namespaces", "Node": "nodes", "Pod": "pods", "ConfigMap": "configmaps", "Secret": "secrets",
         "Event": "events", "Service": "services", "ServiceAccount": "serviceaccounts",
         "Deployment": "deployments", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
         "DaemonSet": "daemonsets", "Job": "jobs", "CronJob": "cronjobs", "Lease": "leases",
         "Role": "roles", "RoleBinding": "rolebindings", "ClusterRole": "clusterroles",
         "ClusterRoleBinding": "clusterrolebindings"}
API_VERSION = {"Namespace": "v1", "Node": "v1", "Pod": "v1", "ConfigMap": "v1", "Secret": "v1", "Event": "v1",
               "Service": "v1", "ServiceAccount": "v1", "Deployment": "apps/v1", "ReplicaSet": "apps/v1",
               "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1",
               "Lease": "coordination.k8s.io/v1", "Role": "rbac.authorization.k8s.io/v1",
               "RoleBinding": "rbac.authorization.k8s.io/v1", "ClusterRole": "rbac.authorization.k8s.io/v1",
               "ClusterRoleBinding": "rbac.authorization.k8s.io/v1"}
CLUSTER_SCOPED = {"Namespace", "Node", "ClusterRole", "ClusterRoleBinding"}
LISTED = {"Pod", "ConfigMap", "Secret", "Event", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Lease"}


class StartError(RuntimeError):
    """A component failed to start: names it and the path of its log."""


def go_available():
    return shutil.which("go") is not None


def build(quiet=True):
    """Build (or reuse) the control-plane binaries; returns their directory.
    Raises RuntimeError with build.sh's output when the build fails."""
    r = subprocess.run(["sh", os.path.join(HERE, "build.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"realkube build failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    if not quiet:
        sys.stderr.write(r.stderr)
    return r.stdout.strip().splitlines()[-1]


def _die_with_parent():
    """PR_SET_PDEATHSIG: a test runner killed before stop() leaves no
    component behind (the signal fires when the spawning thread exits: the
    tests start clusters from their main thread)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- certificates

def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])}: {r.stderr.strip()}")


def make_pki(d):
    """CA, serving and client certificates, the service-account key pair."""
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=realkube-ca", cwd=d)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    sans = ("IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")
    certs = {
        "apiserver": ("/CN=kube-apiserver", "serverAuth", sans),
        "admin": ("/O=system:masters/CN=kubernetes-admin", "clientAuth", None),
        "kcm": ("/CN=system:kube-controller-manager", "clientAuth", None),
        "scheduler": ("/CN=system:kube-scheduler", "clientAuth", None),
        "apiserver-kubelet-client": ("/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client", "clientAuth", None),
        "node": (f"/O=system:nodes/CN=system:node:{NODE_NAME}", "clientAuth", None),
        "kubelet-serving": (f"/O=system:nodes/CN=system:node:{NODE_NAME}", "serverAuth", "IP:127.0.0.1,DNS:localhost"),
    }
    for name, (subj, usage, san) in certs.items():
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
        ext = f"extendedKeyUsage={usage}\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        if san:
            ext += f"subjectAltName={san}\n"
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    for n in os.listdir(d):
        if n.endswith(".key"):
            os.chmod(os.path.join(d, n), 0o600)


def _b64(path):
    import base64
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def _write_kubeconfig(path, server, ca, user, credentials, namespace):
    text = (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: realkube\n  cluster:\n    server: {server}\n"
        f"    certificate-authority-data: {_b64(ca)}\n"
        f"users:\n- name: {user}\n  user:\n"
        + "".join(f"    {k}: {v}\n" for k, v in credentials.items()) +
        f"contexts:\n- name: realkube\n  context:\n    cluster: realkube\n    user: {user}\n"
        f"    namespace: {namespace}\n"
        "current-context: realkube\n")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def write_token_kubeconfig(path, server, ca, token, namespace="default"):
    _write_kubeconfig(path, server, ca, "admin-token", {"token": token}, namespace)


def write_kubeconfig(path, server, ca, cert, key, user, namespace="default"):
    """A kubeconfig with client-certificate auth (PEM key, as kubeadm writes)."""
    _write_kubeconfig(path, server, ca, user, {"client-certificate-data": _b64(cert),
                                               "client-key-data": _b64(key)}, namespace)


# ---------------------------------------------------------------- the cluster

def _container_names(pod_spec):
    return [[c.get("name") for c in pod_spec.get(k) or []] for k in ("initContainers", "containers")]


class RealKube:
    def __init__(self, state_dir=None, node=False, bin_dir=None, backoff_scale=0.1, max_grace=2.0,
                 kube_bin=None, controllers=None, kubelet=False, **kubesim_only):
        # kubesim's own knobs (bookmark_interval, history, ...) have no
        # equivalent on a real server: accepted and ignored
        self.kubesim_only = kubesim_only
        self._own_dir = state_dir is None
        self.state_dir = os.path.abspath(state_dir or tempfile.mkdtemp(prefix="realkube-"))
        # REALKUBE_BIN: a directory with the four binaries, instead of build.sh's
        self.kube_bin = kube_bin or os.environ.get("REALKUBE_BIN")
        self.want_node = node or kubelet     # kubesim's name for it
        # without controllers the API server alone holds whatever status a test
        # writes, like kubesim without --controllers (a node implies controllers)
        self.want_controllers = node if controllers is None else (controllers or node)
        self._audit_offset = 0
        self.bin_dir = os.path.abspath(bin_dir) if bin_dir else None
        self.backoff_scale, self.max_grace = backoff_scale, max_grace
        self.procs = {}         # component -> Popen
        self.component_logs = {}
        self._log_endpoint = None     # logs() without a node agent
        self.pki = os.path.join(self.state_dir, "pki")
        self.info = {}
        self._ssl_plain = None

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout=120):
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout):
        deadline = time.monotonic() + timeout
        self.kube_bin = self.kube_bin or build()
        make_pki(self.pki)
        p = lambda n: os.path.join(self.pki, n)     # noqa: E731
        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        self.api_port = api_port
        self.server = f"https://127.0.0.1:{api_port}"
        self.ca_file = p("ca.crt")
        etcd_dir = os.path.join(self.state_dir, "etcd")
        self._spawn("etcd", [os.path.join(self.kube_bin, "etcd"), "--data-dir", etcd_dir,
                             "--listen-client-url", f"http://127.0.0.1:{etcd_port}",
                             "--listen-peer-url", f"http://127.0.0.1:{etcd_peer}"])
        self._wait_tcp("etcd", etcd_port, deadline)
        self._spawn("kube-apiserver", [
            os.path.join(self.kube_bin, "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", f"--secure-port={api_port}", "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={p('apiserver.crt')}", f"--tls-private-key-file={p('apiserver.key')}",
            f"--client-ca-file={p('ca.crt')}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p('sa.pub')}", f"--service-account-signing-key-file={p('sa.key')}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={p('apiserver-kubelet-client.crt')}",
            f"--kubelet-client-key={p('apiserver-kubelet-client.key')}",
            f"--kubelet-certificate-authority={p('ca.crt')}",
            "--kubelet-preferred-address-types=InternalIP",
            "--allow-privileged=true", "--profiling=false",
            f"--token-auth-file={self._token_file()}",
            f"--audit-policy-file={self._audit_policy()}", f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking", "--audit-log-format=json",
            f"--cert-dir={os.path.join(self.state_dir, 'apiserver-certs')}",
        ])
        # kubeconfig: the admin token, like kubesim's; kubeconfig_cert: the
        # admin client certificate with a PEM key, as kubeadm/kind write it
        self.kubeconfig = os.path.join(self.state_dir, "kubeconfig")
        self.kubeconfig_cert = os.path.join(self.state_dir, "kubeconfig-cert")
        write_kubeconfig(self.kubeconfig_cert, self.server, p("ca.crt"), p("admin.crt"), p("admin.key"),
                         "kubernetes-admin")
        write_token_kubeconfig(self.kubeconfig, self.server, p("ca.crt"), self.admin_token)
        self._ssl_plain = ssl.create_default_context(cafile=self.ca_file)
        self._wait_ready("kube-apiserver", deadline)
        self._setup_default_sa()
        if not self.want_controllers:
            self._write_info()
            return
        for comp, user in (("kcm", "system:kube-controller-manager"), ("scheduler", "system:kube-scheduler")):
            write_kubeconfig(os.path.join(self.state_dir, f"{comp}.kubeconfig"), self.server, p("ca.crt"),
                             p(f"{comp}.crt"), p(f"{comp}.key"), user)
        self._spawn("kube-controller-manager", [
            os.path.join(self.kube_bin, "kube-controller-manager"),
            f"--kubeconfig={os.path.join(self.state_dir, 'kcm.kubeconfig')}",
            "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
            f"--service-account-private-key-file={p('sa.key')}", f"--root-ca-file={p('ca.crt')}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={p('ca.crt')}", f"--cluster-signing-key-file={p('ca.key')}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ])
        self._spawn("kube-scheduler", [
            os.path.join(self.kube_bin, "kube-scheduler"),
            f"--kubeconfig={os.path.join(self.state_dir, 'scheduler.kubeconfig')}",
            "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
        ])
        # The namespace and ServiceAccount controllers have run once "default"
        # has its ServiceAccount and kube-root-ca.crt: pods can be created.
        self._wait_for("kube-controller-manager", deadline, lambda: self.api(
            "GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200
            and self.api("GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt")[0] == 200)
        if self.want_node:
            self._start_node(deadline)
        self._write_info()

    def _write_info(self):
        self.info = {"server": self.server, "api_port": self.api_port, "kubeconfig": self.kubeconfig,
                     "kubeconfig_cert": self.kubeconfig_cert, "ca_file": self.ca_file,
                     "pids": {k: v.pid for k, v in self.procs.items()}, "logs": self.component_logs,
                     "kube_bin": self.kube_bin, "version": K8S_VERSION, "audit_log": self.audit_log}
        with open(os.path.join(self.state_dir, "realkube.json"), "w") as f:
            json.dump(self.info, f, indent=1)

    def _token_file(self):
        import secrets
        self.admin_token = secrets.token_hex(24)
        path = os.path.join(self.pki, "tokens.csv")
        with open(path, "w") as f:
            f.write(f'{self.admin_token},kubernetes-admin-token,admin-token,"system:masters"\n')
        os.chmod(path, 0o600)
        return path

    def _audit_policy(self):
        """Every request at Metadata level: tests and the bench count requests
        (verb, path, code) from it, as they do from kubesim's request log."""
        self.audit_log = os.path.join(self.state_dir, "audit.log")
        path = os.path.join(self.state_dir, "audit-policy.yaml")
        with open(path, "w") as f:
            f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                    "rules:\n- level: Metadata\n")
        return path

    def _setup_default_sa(self):
        """The in-cluster identity the e2e tests use (kubesim's "full access
        by default"): ServiceAccount default/default bound to cluster-admin;
        sa_dir holds a TokenRequest token for it."""
        self.sa_user = "system:serviceaccount:default:default"
        self.ensure_sa("default", "default")
        self.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": "mg-test-default-sa-admin"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": "cluster-admin"},
                         "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]})
        self.sa_dir = self.sa_dir_for("default", "default")

    def _start_node(self, deadline):
        p = lambda n: os.path.join(self.pki, n)     # noqa: E731
        nk = os.path.join(self.state_dir, "node.kubeconfig")
        write_kubeconfig(nk, self.server, p("ca.crt"), p("node.crt"), p("node.key"), f"system:node:{NODE_NAME}")
        args = [sys.executable, os.path.join(HERE, "nodeagent.py"), "--kubeconfig", nk,
                "--state-dir", os.path.join(self.state_dir, "node"), "--node-name", NODE_NAME,
                "--serving-cert", p("kubelet-serving.crt"), "--serving-key", p("kubelet-serving.key"),
                "--client-ca", p("ca.crt"), "--backoff-scale", str(self.backoff_scale),
                "--max-grace", str(self.max_grace)]
        if self.bin_dir:
            args += ["--bin-dir", self.bin_dir]
        self._spawn("node-agent", args)

        def node_ready():
            code, _, body = self.api("GET", f"/api/v1/nodes/{NODE_NAME}")
            if code != 200:
                return False
            conds = json.loads(body).get("status", {}).get("conditions") or []
            return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        self._wait_for("node-agent", deadline, node_ready)

    def _spawn(self, name, argv):
        log = os.path.join(self.state_dir, f"{name}.log")
        self.component_logs[name] = log
        with open(log, "wb") as f:
            # own session: stop() signals the whole group, so nothing outlives us
            self.procs[name] = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True, preexec_fn=_die_with_parent)

    @property
    def proc(self):
        """The API server's process (kubesim_client's .proc: tests kill it to
        take the API away)."""
        return self.procs.get("kube-apiserver")

    def _check_alive(self, name):
        for comp, proc in self.procs.items():
            if proc.poll() is not None:
                raise StartError(f"realkube: {comp} exited with {proc.returncode} while waiting for {name}; "
                                 f"see {self.component_logs[comp]}:\n{self._tail(comp)}")

    def _tail(self, comp, n=15):
        try:
            with open(self.component_logs[comp], errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _wait_for(self, name, deadline, pred):
        while True:
            self._check_alive(name)
            try:
                if pred():
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise StartError(f"realkube: {name} not ready in time; see {self.component_logs.get(name, self.state_dir)}:\n"
                                 f"{self._tail(name) if name in self.component_logs else ''}")
            time.sleep(0.2)

    def _wait_tcp(self, name, port, deadline):
        def up():
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        self._wait_for(name, deadline, up)

    def _wait_ready(self, name, deadline):
        self._wait_for(name, deadline, lambda: self.api("GET", "/readyz")[0] == 200)

    def stop(self):
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            else:
                try:    # a dead leader may have left children in its group
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.procs = {}
        if self._log_endpoint:
            self._log_endpoint[1].shutdown()
            self._log_endpoint = None
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ clients
    def api(self, method, path, body=None, token=None, headers=None, content_type="application/json", timeout=30):
        """One HTTPS request; admin (client certificate) unless token is given.
        Returns (status, headers, body bytes) without raising on 4xx/5xx."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = {"Content-Type": content_type, "Accept": "application/json",
                "Authorization": f"Bearer {token or self.admin_token}"}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=hdrs)
        ctx = self._ssl_plain
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method, path, body=None, ok=(200, 201), **kw):
        code, _, data = self.api(method, path, body, **kw)
        if code not in ok:
            raise RuntimeError(f"{method} {path}: {code} {data[:500]!r}")
        return json.loads(data) if data else None

    def open_watch(self, path, token=None, timeout=30):
        req = urllib.request.Request(self.server + path,
                                     headers={"Authorization": f"Bearer {token or self.admin_token}"})
        return urllib.request.urlopen(req, context=self._ssl_plain, timeout=timeout)

    def kubectl_cmd(self, *args):
        from kubesim_client import kubectl_binary
        return [kubectl_binary(), "--kubeconfig", self.kubeconfig,
                "--cache-dir", os.path.join(self.state_dir, "kubectl-cache"), *args]

    def kubectl(self, *args, input=None, timeout=60):
        return subprocess.run(self.kubectl_cmd(*args), input=input, capture_output=True, text=True, timeout=timeout)

    def kubectl_popen(self, *args):
        return subprocess.Popen(self.kubectl_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ensure_sa(self, namespace, name):
        self.ensure_namespace(namespace)
        code, _, body = self.api("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts",
                                 {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
        if code not in (201, 409):
            raise RuntimeError(f"create ServiceAccount {namespace}/{name}: {code} {body[:300]!r}")

    def ensure_namespace(self, namespace):
        code, _, body = self.api("POST", "/api/v1/namespaces",
                                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        if code not in (201, 409):
            raise RuntimeError(f"create Namespace {namespace}: {code} {body[:300]!r}")
        if code == 201 and not self.want_controllers:
            # The ServiceAccount admission plugin refuses a pod whose
            # ServiceAccount does not exist, and without the controller
            # manager nobody creates a new namespace's "default": do what its
            # ServiceAccount controller would.
            self.ensure_sa(namespace, "default")

    def sa_dir_for(self, namespace, sa, seconds=3600):
        """The in-cluster files (token, ca.crt, namespace) for a ServiceAccount."""
        d = os.path.join(self.state_dir, "sa", namespace, sa)
        os.makedirs(d, exist_ok=True)
        self.ensure_sa(namespace, sa)
        tok = self.token_for(namespace, sa, seconds)
        with open(self.ca_file) as f:
            ca = f.read()
        for name, data in (("token", tok), ("ca.crt", ca), ("namespace", namespace)):
            with open(os.path.join(d, name), "w") as f:
                f.write(data)
        return d

    def in_cluster_env(self):
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.api_port)}

    # ------------------------------------------------------------ kubesim_client's interface
    # The e2e suites drive either backend through these (tests/e2e/mg.py,
    # MG_BACKEND). What only a simulator can do raises unittest.SkipTest with
    # the reason, so the run counts and names it.

    def path_of(self, obj_or_av, kind=None, namespace=None, name=None):
        if isinstance(obj_or_av, dict):
            av, kind = obj_or_av["apiVersion"], obj_or_av["kind"]
            md = obj_or_av.get("metadata") or {}
            namespace, name = md.get("namespace"), md.get("name")
        else:
            av = obj_or_av
        resource = KINDS[kind]
        base = "/api/v1" if av == "v1" else f"/apis/{av}"
        if kind not in CLUSTER_SCOPED:
            base += f"/namespaces/{namespace or 'default'}"
        return f"{base}/{resource}" + (f"/{name}" if name else "")

    def put_object(self, obj):
        """Create, or replace what exists (resourceVersion taken over); the
        object as stored."""
        obj = json.loads(json.dumps(obj))
        md = obj.setdefault("metadata", {})
        if obj["kind"] not in CLUSTER_SCOPED:
            md.setdefault("namespace", "default")
            if md["namespace"] != "default":
                self.ensure_namespace(md["namespace"])
        for k in ("resourceVersion", "uid", "creationTimestamp"):
            md.pop(k, None)
        code, _, body = self.api("POST", self.path_of(obj["apiVersion"], obj["kind"], md.get("namespace")), obj)
        if code == 409:
            cur = self.json("GET", self.path_of(obj))
            if obj["kind"] == "Pod":
                if _container_names(cur["spec"]) != _container_names(obj.get("spec") or {}):
                    raise RuntimeError(f"apply Pod {md['namespace']}/{md['name']}: a pod's containers are fixed "
                                       "at creation (a real server refuses the change): create it with them")
                # the rest of its spec is fixed too (and defaulted): keep the stored one
                obj["spec"] = cur["spec"]
            elif obj["kind"] == "Job":
                # a Job's selector and template are fixed (and the selector generated)
                obj["spec"] = dict(cur["spec"], **{k: v for k, v in (obj.get("spec") or {}).items()
                                                  if k not in ("selector", "template")})
            md["resourceVersion"] = cur["metadata"]["resourceVersion"]
            code, _, body = self.api("PUT", self.path_of(obj), obj)
        if code not in (200, 201):
            raise RuntimeError(f"apply {obj['kind']} {md.get('namespace')}/{md.get('name')}: {code} "
                               f"{body[:600].decode(errors='replace')}")
        return json.loads(body)

    def apply(self, obj):
        """Like kubesim's control API: the object and, when given, its status
        (written through the status subresource, so the real server
        validates it)."""
        status = obj.get("status")
        stored = self.put_object({k: v for k, v in obj.items() if k != "status"})
        if status:
            stored = self._put_status(stored, status)
        return stored

    def _put_status(self, stored, status):
        stored["status"] = status
        code, _, body = self.api("PUT", self.path_of(stored) + "/status", stored)
        if code != 200:
            md = stored["metadata"]
            raise RuntimeError(f"status of {stored['kind']} {md.get('namespace')}/{md['name']}: {code} "
                               f"{body[:800].decode(errors='replace')}")
        return json.loads(body)

    def patch_status(self, api_version, kind, namespace, name, status):
        cur = self.json("GET", self.path_of(api_version, kind, namespace, name))
        return self._put_status(cur, status)

    def delete(self, api_version, kind, namespace, name):
        code, _, body = self.api("DELETE", self.path_of(api_version, kind, namespace, name),
                                 {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
        if code not in (200, 202, 404):
            raise RuntimeError(f"delete {kind} {namespace}/{name}: {code} {body[:300]!r}")

    def objects(self, kind=None, namespace=None):
        kinds = [kind] if kind else [k for k in KINDS if k in LISTED]
        out = []
        for k in kinds:
            av = API_VERSION[k]
            base = "/api/v1" if av == "v1" else f"/apis/{av}"
            path = f"{base}/namespaces/{namespace}/{KINDS[k]}" if namespace and k not in CLUSTER_SCOPED \
                else f"{base}/{KINDS[k]}"
            for item in self.json("GET", path).get("items") or []:
                item.setdefault("apiVersion", av)
                item.setdefault("kind", k)
                out.append(item)
        return out

    def token(self, user, rules=None, token=None):
        """A bound token for USER with exactly RULES (None: cluster-admin).
        USER system:serviceaccount:NS:NAME is that ServiceAccount; any other
        name becomes the ServiceAccount default/NAME (a real server mints
        tokens only for ServiceAccounts)."""
        if token:
            raise SkipTest("kubesim only: choosing a token's value")
        if user.startswith("system:serviceaccount:"):
            ns, name = user.split(":")[2:4]
        else:
            ns, name = "default", "".join(ch if ch.isalnum() else "-" for ch in user.lower())
        self.ensure_sa(ns, name)
        role = f"mg-test-{ns}-{name}"
        subjects = [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
        if rules is None:
            ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
        else:
            self.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                             "metadata": {"name": role}, "rules": rules})
            ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
        self.api("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{role}")  # roleRef is immutable
        self.put_object({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": role}, "roleRef": ref, "subjects": subjects})
        return self.token_for(ns, name)

    def token_for(self, namespace, sa, seconds=3600):
        tr = self.json("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"expirationSeconds": seconds}})
        return tr["status"]["token"]

    def rotate(self, user, grace_seconds=0):
        raise SkipTest("kubesim only: revoking a token at once (a real bound token lives until it expires)")

    def logs(self, namespace, pod, text, container=None, previous=False):
        """Set a pod's log by hand, like kubesim's /logs. The real API server
        answers pods/log by asking the kubelet of the pod's node, so without
        a node agent this serves them itself: a Node whose kubelet endpoint
        is an HTTPS server of ours (the node agent's /containerLogs handler,
        client certificates required), and the pod bound to that Node."""
        if self.want_node:
            raise SkipTest("kubesim only: setting a pod's log by hand (this server runs real containers)")
        store = self._logs_node()
        cur = self.json("GET", self.path_of("v1", "Pod", namespace, pod))
        container = container or cur["spec"]["containers"][0]["name"]
        with store.logs_lock:
            store.logs[(namespace, pod, container, previous)] = text
            store.logs.setdefault((namespace, pod, container, False), "")
        if not cur["spec"].get("nodeName"):
            self.json("POST", self.path_of("v1", "Pod", namespace, pod) + "/binding",
                      {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME}})

    def _logs_node(self):
        if self._log_endpoint:
            return self._log_endpoint[0]
        p = lambda n: os.path.join(self.pki, n)     # noqa: E731
        store = types.SimpleNamespace(logs={}, logs_lock=threading.Lock())
        httpd = nodeagent.serve_logs(store, p("kubelet-serving.crt"), p("kubelet-serving.key"), p("ca.crt"))
        self._log_endpoint = (store, httpd)
        self.put_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE_NAME}})
        node = self.json("GET", f"/api/v1/nodes/{NODE_NAME}")
        self._put_status(node, {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": httpd.server_address[1]}}})
        return store

    def faults(self, **spec):
        raise SkipTest("kubesim only: fault injection")

    def pager(self, expire_next=0):
        """The real server pages lists itself (its continue tokens expire only
        with etcd's compaction): making tokens expire on demand is kubesim's."""
        if expire_next:
            raise SkipTest("kubesim only: expiring continue tokens on demand")

    def clear_faults(self):
        pass

    def control(self, *a, **kw):
        raise SkipTest("kubesim only: the control API")

    def image(self, image, entrypoint, cmd=()):
        """Declare an image's ENTRYPOINT/CMD for the node agent (it runs such
        containers as local processes, like kubesim's kubelet)."""
        if not self.want_node:
            raise SkipTest("no node agent in this cluster")
        path = os.path.join(self.state_dir, "node", "images.json")
        try:
            with open(path) as f:
                images = json.load(f)
        except (OSError, ValueError):
            images = {}
        images[image] = {"entrypoint": list(entrypoint), "cmd": list(cmd)}
        with open(path + ".tmp", "w") as f:
            json.dump(images, f)
        os.replace(path + ".tmp", path)

    # requests, from the API server's audit log (Metadata level, blocking mode)
    def requests(self):
        items = []
        try:
            with open(self.audit_log, "rb") as f:
                f.seek(self._audit_offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        for line in data.splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            verb, stage = ev.get("verb"), ev.get("stage")
            if (ev.get("userAgent") or "").startswith("Python-urllib"):
                continue        # this harness (apply, patch_status): kubesim's control API is not counted either
            if (ev.get("user") or {}).get("username", "").startswith("system:") and \
                    not (ev.get("user") or {}).get("username", "").startswith("system:serviceaccount:"):
                continue        # the control plane's own components and the node
            # a watch counts when it starts; everything else when it completes
            if (verb == "watch") != (stage == "ResponseStarted"):
                continue
            path, _, query = ev.get("requestURI", "").partition("?")
            items.append({"verb": verb, "path": path, "query": query,
                          "code": (ev.get("responseStatus") or {}).get("code"),
                          "user": (ev.get("user") or {}).get("username")})
        by_verb = {}
        for it in items:
            by_verb[it["verb"]] = by_verb.get(it["verb"], 0) + 1
        return {"total": len(items), "by_verb": by_verb, "items": items}

    def reset_requests(self):
        try:
            self._audit_offset = os.path.getsize(self.audit_log)
        except OSError:
            self._audit_offset = 0

    def wait_for_request(self, predicate, timeout=10):
        from kubesim_client import KubeSim
        return KubeSim.wait_for_request(self, predicate, timeout)     # over requests() above


def main(argv):
    if len(argv) < 2 or argv[1] not in ("build", "up", "down"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 64
    if argv[1] == "build":
        if not go_available():
            print("realkube: go is not on PATH: cannot build the control plane", file=sys.stderr)
            return 69
        print(build(quiet=False))
        return 0
    if len(argv) != 3:
        print("realkube: usage: realkube.py up|down DIR", file=sys.stderr)
        return 64
    d = os.path.abspath(argv[2])
    if argv[1] == "up":
        rk = RealKube(state_dir=d, node=True, bin_dir=os.path.join(ROOT, "build"))
        rk._own_dir = False
        try:
            rk.start()
        except (StartError, RuntimeError) as e:
            print(e, file=sys.stderr)
            return 1
        print(rk.kubeconfig)
        return 0
    with open(os.path.join(d, "realkube.json")) as f:
        info = json.load(f)
    for name, pid in reversed(list(info["pids"].items())):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(150):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
