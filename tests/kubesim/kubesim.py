#!/usr/bin/env python3
"""kubesim: a fake Kubernetes API server for tests (Python 3 standard library).

    python3 tests/kubesim/kubesim.py --state-dir DIR [--port 0] [--control-port 0]
        [--bookmark-interval S] [--history N] [--sa-namespace NS --sa-name NAME]
        [--controllers] [--kubelet --bin-dir build] [--backoff-scale F] [--max-grace S]
        [--pod-rbac enforce|open]

Generates a CA and server certificate with the openssl CLI, serves HTTPS on
127.0.0.1 (and ::1 on the same port when possible), and writes into DIR:
  ca.crt, kubeconfig (admin token), kubeconfig-cert (admin client certificate,
  CN kubesim-cert-admin O system:masters, PEM key), serviceaccount/{token,ca.crt,namespace}
  (the in-cluster ServiceAccount's own token, full access until restricted
  through the control API), and last, atomically, kubesim.json
  {"pid","api_port","control_port","server","admin_token",...}.
--controllers / --kubelet (off by default) run Deployments, ReplicaSets, Jobs,
garbage collection and pods, with our real binaries in pods (controllers.py,
kubelet.py).  See README.md for the control API and the conventions."""

import argparse
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apiserver  # noqa: E402
import auth  # noqa: E402
import control  # noqa: E402
import rbac  # noqa: E402
import registry  # noqa: E402
import store  # noqa: E402

ADMIN_USER = "kubernetes-admin"
CERT_ADMIN_USER = "kubesim-cert-admin"


def write_atomic(path, data, mode=0o644):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def generate_certs(d):
    """CA + server certificate (EC P-256) with the SANs a client may dial."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "server.ext")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", ca_key, "-out", ca_crt, "-days", "3650", "-subj", "/CN=kubesim-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=kube-apiserver")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes.default.svc,"
                "DNS:kubernetes.default.svc.cluster.local,DNS:kubernetes\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "365", "-extfile", ext)
    return ca_crt, crt, key


def generate_client_cert(d, name, cn, orgs=(), rsa=False):
    """A client certificate signed by kubesim's CA (d/ca.crt, d/ca.key):
    CN = user, O = groups, like kubeadm's admin.conf.  EC keys are PKCS#8 PEM
    ("BEGIN PRIVATE KEY"); rsa=True writes a PKCS#1 "BEGIN RSA PRIVATE KEY"
    as kubeadm, kind and minikube do.  Returns (crt, key) paths."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    key, csr, crt = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "crt"))
    ext = os.path.join(d, f"{name}.ext")
    if rsa:
        run("genrsa", "-traditional", "-out", key, "2048")
    else:
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", key)
    subj = "".join(f"/O={o}" for o in orgs) + f"/CN={cn}"
    run("req", "-new", "-key", key, "-out", csr, "-subj", subj)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.crt"), "-CAkey", os.path.join(d, "ca.key"),
        "-CAcreateserial", "-out", crt, "-days", "365", "-extfile", ext)
    os.chmod(key, 0o600)
    return crt, key


def kubeconfig_text(server, ca_b64, user, user_fields):
    fields = "".join(f"    {k}: {v}\n" for k, v in user_fields.items())
    return f"""apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: {server}
    certificate-authority-data: {ca_b64}
users:
- name: {user}
  user:
{fields}contexts:
- name: kubesim
  context:
    cluster: kubesim
    user: {user}
    namespace: default
current-context: kubesim
"""


class Sim:
    """Everything the API and control handlers share."""

    def __init__(self, args):
        self.args = args
        self.state_dir = os.path.abspath(args.state_dir)
        self.store = store.Store(history=args.history)
        self.registry = registry.Registry(self.store)
        self.pager = apiserver.Pager(self.store)
        self.auth = auth.Auth()
        self.auth.rbac = rbac.Authorizer(self.store)
        self.controllers = self.kubelet = None
        self.images = {}      # image or repository -> {"entrypoint": [...], "cmd": [...]} (kubelet "exec")
        for spec in args.image or []:
            name, _, cfg = spec.partition("=")
            cfg = json.loads(cfg)
            self.images[name] = cfg if isinstance(cfg, dict) else {"entrypoint": cfg, "cmd": []}
        self.faults = control.Faults()
        self.requests = control.RequestLog()
        self.logs = {}
        self.bookmark_interval = args.bookmark_interval
        self.sa_user = f"system:serviceaccount:{args.sa_namespace}:{args.sa_name}"
        self.admin_token = self.auth.add_token(ADMIN_USER)
        self.sa_token = self.auth.add_token(self.sa_user)
        self.file_lock = threading.Lock()
        self._seed()

    def _seed(self):
        for ns in dict.fromkeys(["default", "kube-system", "kube-public", "kube-node-lease", self.args.sa_namespace]):
            self.registry.force_apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.registry.force_apply({"apiVersion": "v1", "kind": "ServiceAccount",
                                   "metadata": {"name": self.args.sa_name, "namespace": self.args.sa_namespace}})

    def write_kubeconfig(self):
        with open(self.ca_crt, "rb") as f:
            ca_b64 = base64.b64encode(f.read()).decode()
        kubeconfig = kubeconfig_text(self.server_url, ca_b64, ADMIN_USER, {"token": self.admin_token})
        write_atomic(os.path.join(self.state_dir, "kubeconfig"), kubeconfig, 0o600)

    def write_cert_kubeconfig(self):
        """kubeconfig-cert: the same cluster, authenticated by a client
        certificate (CN kubesim-cert-admin, O system:masters) with a PEM key,
        as kubeadm's admin.conf."""
        with open(self.ca_crt, "rb") as f:
            ca_b64 = base64.b64encode(f.read()).decode()
        crt, key = generate_client_cert(self.state_dir, "client", CERT_ADMIN_USER, ["system:masters"])
        with open(crt, "rb") as f:
            crt_b64 = base64.b64encode(f.read()).decode()
        with open(key, "rb") as f:
            key_b64 = base64.b64encode(f.read()).decode()
        kubeconfig = kubeconfig_text(self.server_url, ca_b64, CERT_ADMIN_USER,
                                     {"client-certificate-data": crt_b64, "client-key-data": key_b64})
        write_atomic(os.path.join(self.state_dir, "kubeconfig-cert"), kubeconfig, 0o600)

    def write_serviceaccount(self):
        sa_dir = os.path.join(self.state_dir, "serviceaccount")
        os.makedirs(sa_dir, exist_ok=True)
        with open(self.ca_crt) as f:
            write_atomic(os.path.join(sa_dir, "ca.crt"), f.read())
        write_atomic(os.path.join(sa_dir, "namespace"), self.args.sa_namespace)
        write_atomic(os.path.join(sa_dir, "token"), self.sa_token, 0o600)

    def write_ready(self):
        info = {"pid": os.getpid(), "api_port": self.api.port, "control_port": self.control.server_address[1],
                "server": self.server_url, "server_v6": f"https://[::1]:{self.api.port}" if self.api.ipv6 else None,
                "admin_token": self.admin_token, "sa_user": self.sa_user, "sa_token": self.sa_token,
                "kubeconfig": os.path.join(self.state_dir, "kubeconfig"),
                "kubeconfig_cert": os.path.join(self.state_dir, "kubeconfig-cert"),
                "client_cert_user": CERT_ADMIN_USER,
                "ca_file": self.ca_crt, "sa_dir": os.path.join(self.state_dir, "serviceaccount"),
                "controllers": bool(self.args.controllers), "kubelet": bool(self.args.kubelet)}
        write_atomic(os.path.join(self.state_dir, "kubesim.json"), json.dumps(info, indent=1))

    def rotate(self, user, grace):
        """New token for user; rewrites whichever state file carries that user's token."""
        token = self.auth.rotate(user, grace)
        with self.file_lock:
            if user == self.sa_user:
                self.sa_token = token
                write_atomic(os.path.join(self.state_dir, "serviceaccount", "token"), token, 0o600)
            if user == ADMIN_USER:
                self.admin_token = token
                self.write_kubeconfig()
            if user in (self.sa_user, ADMIN_USER):
                self.write_ready()
        return token

    def start(self):
        os.makedirs(self.state_dir, exist_ok=True)
        ready = os.path.join(self.state_dir, "kubesim.json")
        if os.path.exists(ready):
            os.unlink(ready)
        self.ca_crt, crt, key = generate_certs(self.state_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        # client certificates are verified against the CA when presented
        # (kube-apiserver --client-ca-file); clients with tokens send none
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(self.ca_crt)
        ctx.set_alpn_protocols(["http/1.1"])
        self.api = apiserver.Listener(self, ctx, self.args.port)
        self.server_url = f"https://127.0.0.1:{self.api.port}"
        self.control = control.start(self, self.args.control_port)
        self.write_kubeconfig()
        self.write_cert_kubeconfig()
        self.write_serviceaccount()
        if self.args.controllers:
            import controllers
            self.controllers = controllers.ControllerManager(self, self.args.backoff_scale)
            self.controllers.start()
        if self.args.kubelet:
            import kubelet
            self.kubelet = kubelet.Kubelet(kubelet.SimCluster(self, pod_rbac=self.args.pod_rbac == "enforce"),
                                           self.args.bin_dir, self.args.backoff_scale, self.args.max_grace)
            self.kubelet.start()
        self.write_ready()

    def stop(self):
        if self.kubelet:
            self.kubelet.stop()
        if self.controllers:
            self.controllers.stop()
        self.api.close()
        self.control.shutdown()
        try:
            os.unlink(os.path.join(self.state_dir, "kubesim.json"))
        except OSError:
            pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--port", type=int, default=0, help="API port (0 = ephemeral)")
    p.add_argument("--control-port", type=int, default=0, help="control API port (0 = ephemeral)")
    p.add_argument("--bookmark-interval", type=float, default=1.0, help="seconds between watch BOOKMARKs")
    p.add_argument("--history", type=int, default=1000, help="watch events kept for replay")
    p.add_argument("--sa-namespace", default="default")
    p.add_argument("--sa-name", default="default")
    p.add_argument("--controllers", action="store_true",
                   help="run the Deployment/ReplicaSet/Job/TTL controllers and the garbage collector")
    p.add_argument("--kubelet", action="store_true", help="run pods (see kubelet.py); implies graceful pod deletion")
    p.add_argument("--bin-dir", default=None,
                   help="where the kubelet finds wait-for-job, migrate-runner, release-check (e.g. build)")
    p.add_argument("--backoff-scale", type=float, default=0.1,
                   help="factor on the real back-offs: CrashLoopBackOff, image pull, Job pod failures (default 0.1)")
    p.add_argument("--max-grace", type=float, default=2.0,
                   help="cap on terminationGracePeriodSeconds when the kubelet stops containers (default 2)")
    p.add_argument("--image", action="append", metavar="IMAGE=JSON",
                   help='ENTRYPOINT/CMD of an image the kubelet runs as a local process, e.g. '
                        '\'example/migrations={"entrypoint":["/migrate-runner","--"],"cmd":["sh","-c","sleep 2"]}\' '
                        '(a JSON list = entrypoint); repeatable')
    p.add_argument("--pod-rbac", choices=("enforce", "open"), default="enforce",
                   help="pods' service-account tokens are authorised by the stored Roles/RoleBindings (default) "
                        "or have full access")
    args = p.parse_args(argv)

    sim = Sim(args)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    sim.start()
    while not done.wait(3600):
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
