#!/usr/bin/env python3
"""A node agent for the real control plane: kubesim's kubelet (tests/kubesim/
kubelet.py, the same PodWorker code) driven through a real API server.

    nodeagent.py --kubeconfig NODE.kubeconfig --state-dir DIR --node-name N
                 --serving-cert C --serving-key K --client-ca CA [--bin-dir build]

It authenticates as system:node:N (client certificate, group system:nodes), so
the API server's Node authorizer and NodeRestriction admission govern it like a
kubelet. It registers the Node (Ready, InternalIP 127.0.0.1, the port of its
kubelet endpoint), renews its Lease in kube-node-lease every 10 s, lists and
watches the pods the real scheduler bound to it (fieldSelector spec.nodeName),
runs their containers with kubelet.py (our static binaries as real processes in
private mount/PID namespaces), writes pod status through pods/status, Events
through core/v1 events, the ServiceAccount token through the TokenRequest API
(bound to the pod, expiring), and ends a graceful deletion with the final
DELETE (grace 0, UID precondition). It serves /containerLogs over HTTPS with
client-certificate authentication, which is how the API server answers
`pods/log` (kubectl logs, release-check's logs on failure).

Where it differs from a kubelet (README.md): no container runtime, images or
network; KUBERNETES_SERVICE_HOST is 127.0.0.1 (the API server's port), not the
ClusterIP; pod IPs are reported but carry no traffic; no probes (a container is
Ready when started, as kubesim's kubelet does for our binaries)."""

import argparse
import base64
import json
import os
import queue
import signal
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "kubesim"))

import kubelet  # noqa: E402
from ctrlutil import ts  # noqa: E402

LEASE_SECONDS = 40
WATCH_TIMEOUT = 300


def log(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} nodeagent: {msg}\n")
    sys.stderr.flush()


class Event:
    __slots__ = ("type", "obj")

    def __init__(self, etype, obj):
        self.type, self.obj = etype, obj


def load_kubeconfig(path):
    """The subset a node kubeconfig written by realkube.py has (one cluster,
    one user with client-certificate-data/client-key-data)."""
    vals = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition(": ")
            if k in ("server", "certificate-authority-data", "client-certificate-data", "client-key-data"):
                vals[k] = v.strip()
    return vals


class Api:
    def __init__(self, kubeconfig, state_dir):
        kc = load_kubeconfig(kubeconfig)
        self.server = kc["server"]
        u = urllib.parse.urlsplit(self.server)
        self.host, self.port = u.hostname, u.port
        d = tempfile.mkdtemp(prefix="pki-", dir=state_dir)
        paths = {}
        for key, name in (("certificate-authority-data", "ca.crt"), ("client-certificate-data", "node.crt"),
                          ("client-key-data", "node.key")):
            paths[name] = os.path.join(d, name)
            with open(paths[name], "wb") as f:
                f.write(base64.b64decode(kc[key]))
        os.chmod(paths["node.key"], 0o600)
        with open(paths["ca.crt"]) as f:
            self.ca_pem = f.read()
        self.ctx = ssl.create_default_context(cafile=paths["ca.crt"])
        self.ctx.load_cert_chain(paths["node.crt"], paths["node.key"])

    def call(self, method, path, body=None, content_type="application/json", timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"message": raw[:300].decode(errors="replace")}

    def stream(self, path, timeout):
        req = urllib.request.Request(self.server + path, headers={"Accept": "application/json"})
        return urllib.request.urlopen(req, context=self.ctx, timeout=timeout)


class ApiCluster:
    """kubelet.SimCluster's interface over a real API server, as system:node:N."""

    host_ip = "127.0.0.1"

    def __init__(self, api, node, state_dir, kubelet_port):
        self.api, self.node, self.state_dir = api, node, state_dir
        self.api_host, self.api_port = api.host, api.port
        self.kubelet_port = kubelet_port
        self.events = queue.SimpleQueue()
        self.logs, self.logs_lock = {}, threading.Lock()
        self.images = {}
        self.stopped = threading.Event()
        self.event_names, self.event_lock = {}, threading.Lock()

    # ------------------------------------------------------------ node and lease
    def register(self):
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node,
                                                          "kubernetes.io/os": "linux",
                                                          "kubernetes.io/arch": "amd64"}}}
        code, body = self.api.call("POST", "/api/v1/nodes", node)
        if code not in (201, 409):
            raise RuntimeError(f"register Node {self.node}: {code} {body}")
        self.update_node_status()

    def update_node_status(self):
        now = ts()
        res = {"cpu": "8", "memory": "16Gi", "pods": "250", "ephemeral-storage": "100Gi"}
        conds = [{"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now,
                  "lastTransitionTime": now}
                 for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
                                 ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                 ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID"))]
        conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                      "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                      "lastTransitionTime": now})
        status = {"capacity": res, "allocatable": res, "conditions": conds,
                  "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                {"type": "Hostname", "address": self.node}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                  "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": os.uname().release,
                               "osImage": "migration-gate realkube node agent", "containerRuntimeVersion":
                               "nodeagent://0", "kubeletVersion": "v1.37.2", "kubeProxyVersion": "",
                               "operatingSystem": "linux", "architecture": "amd64"}}
        code, body = self.api.call("PATCH", f"/api/v1/nodes/{self.node}/status", {"status": status},
                                   content_type="application/merge-patch+json")
        if code != 200:
            raise RuntimeError(f"Node {self.node} status: {code} {body}")

    def renew_lease_forever(self):
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}"
        wait = 0                # the first renewal at once, then every 10 s
        while not self.stopped.wait(wait):
            wait = 10
            spec = {"holderIdentity": self.node, "leaseDurationSeconds": LEASE_SECONDS,
                    "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}
            try:
                code, body = self.api.call("GET", path)
                if code == 404:
                    code, body = self.api.call("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                                               {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                "metadata": {"name": self.node}, "spec": spec})
                elif code == 200:
                    body["spec"] = spec
                    code, body = self.api.call("PUT", path, body)
                if code not in (200, 201):
                    log(f"lease: {code} {body}")
                self.update_node_status()
            except (OSError, RuntimeError) as e:
                log(f"lease: {e}")

    # ------------------------------------------------------------ pods
    def start(self):
        pods, rv = self._list()
        threading.Thread(target=self._watch_forever, args=(rv,), name="pod-watch", daemon=True).start()
        return pods

    def stop(self):
        self.stopped.set()

    def _list(self):
        sel = urllib.parse.quote(f"spec.nodeName={self.node}")
        code, body = self.api.call("GET", f"/api/v1/pods?fieldSelector={sel}")
        if code != 200:
            raise RuntimeError(f"list pods: {code} {body}")
        return body.get("items") or [], body["metadata"]["resourceVersion"]

    def _watch_forever(self, rv):
        sel = urllib.parse.quote(f"spec.nodeName={self.node}")
        while not self.stopped.is_set():
            try:
                path = (f"/api/v1/pods?watch=true&fieldSelector={sel}&resourceVersion={rv}"
                        f"&allowWatchBookmarks=true&timeoutSeconds={WATCH_TIMEOUT}")
                with self.api.stream(path, WATCH_TIMEOUT + 30) as r:
                    for line in r:
                        ev = json.loads(line)
                        obj = ev.get("object") or {}
                        if ev.get("type") == "ERROR":
                            raise LookupError(obj.get("message"))
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if ev.get("type") != "BOOKMARK":
                            self.events.put(Event(ev["type"], obj))
            except LookupError:     # 410 Gone: relist, replay as MODIFIED
                rv = self._relist()
            except (OSError, ValueError, urllib.error.URLError) as e:
                if self.stopped.is_set():
                    return
                log(f"pod watch: {e}; retrying")
                time.sleep(1)

    def _relist(self):
        while not self.stopped.is_set():
            try:
                pods, rv = self._list()
                for p in pods:
                    self.events.put(Event("MODIFIED", p))
                return rv
            except (OSError, RuntimeError) as e:
                log(f"relist: {e}")
                time.sleep(1)
        return "0"

    def get(self, gk, ns, name):
        group, resource = gk
        prefix = "/api/v1" if not group else f"/apis/{group}/v1"
        code, body = self.api.call("GET", f"{prefix}/namespaces/{ns}/{resource}/{urllib.parse.quote(name or '')}")
        return body if code == 200 else None

    def set_pod_status(self, ns, name, uid, status):
        patch = {"metadata": {"uid": uid}, "status": status}
        for _ in range(5):
            try:
                code, body = self.api.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", patch,
                                           content_type="application/merge-patch+json")
            except OSError as e:
                log(f"pod {ns}/{name} status: {e}")
                time.sleep(0.5)
                continue
            if code == 200:
                return True
            if code in (404, 409):  # gone, or the UID precondition failed: another pod of that name
                return False
            log(f"pod {ns}/{name} status: {code} {(body or {}).get('message')}")
            if code == 422:
                return True         # an invalid status is a bug here: logged, the pod keeps running
            time.sleep(0.5)
        return True

    def finish_pod_delete(self, ns, name, uid):
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": uid}}
        code, resp = self.api.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", body)
        if code not in (200, 202, 404, 409):
            log(f"final delete of {ns}/{name}: {code} {resp}")

    def bind(self, pod):
        return pod          # the real scheduler binds; we only see bound pods

    def event(self, pod, etype, reason, message, field_path=None):
        md = pod["metadata"]
        ns = md.get("namespace") or "default"
        key = (md.get("uid"), reason, message, field_path, etype)
        now = ts()
        try:
            with self.event_lock:
                name = self.event_names.get(key)
                if name:
                    code, cur = self.api.call("GET", f"/api/v1/namespaces/{ns}/events/{name}")
                    if code == 200:
                        patch = {"count": int(cur.get("count") or 1) + 1, "lastTimestamp": now}
                        self.api.call("PATCH", f"/api/v1/namespaces/{ns}/events/{name}", patch,
                                      content_type="application/merge-patch+json")
                        return
                name = f"{md['name']}.{time.time_ns():x}"[:253]
                inv = {"kind": "Pod", "namespace": ns, "name": md["name"], "uid": md.get("uid"),
                       "apiVersion": "v1", "resourceVersion": md.get("resourceVersion")}
                if field_path:
                    inv["fieldPath"] = field_path
                ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                      "involvedObject": inv, "reason": reason, "message": message, "type": etype,
                      "source": {"component": "kubelet", "host": self.node}, "firstTimestamp": now,
                      "lastTimestamp": now, "count": 1, "reportingComponent": "kubelet",
                      "reportingInstance": self.node}
                code, resp = self.api.call("POST", f"/api/v1/namespaces/{ns}/events", ev)
                if code == 201:
                    self.event_names[key] = name
                else:
                    log(f"event {reason}: {code} {(resp or {}).get('message')}")
        except OSError as e:
            log(f"event {reason}: {e}")

    def sa_token(self, pod):
        """A token bound to the pod (TokenRequest), as the projected volume has."""
        md, spec = pod["metadata"], pod.get("spec") or {}
        sa = spec.get("serviceAccountName") or "default"
        tr = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3607,
                       "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": md["name"], "uid": md["uid"]}}}
        code, body = self.api.call("POST", f"/api/v1/namespaces/{md['namespace']}/serviceaccounts/{sa}/token", tr)
        if code != 201:
            raise RuntimeError(f"TokenRequest for {md['namespace']}/{sa}: {code} {(body or {}).get('message')}")
        return body["status"]["token"]

    def ca_pem(self):
        return self.api.ca_pem

    def image(self, image, repo):
        """--image, or STATE_DIR/images.json (RealKube.image() writes it)."""
        try:
            with open(os.path.join(self.state_dir, "images.json")) as f:
                images = dict(json.load(f), **self.images)
        except (OSError, ValueError):
            images = self.images
        return images.get(image) or images.get(repo)

    def logs_append(self, key, text):
        with self.logs_lock:
            cur = self.logs.get(key, "") + text
            self.logs[key] = cur[-kubelet.LOG_CAP:] if len(cur) > kubelet.LOG_CAP else cur

    def logs_rotate(self, key, prev_key):
        with self.logs_lock:
            cur = self.logs.pop(key, None)
            if cur is not None:
                self.logs[prev_key] = cur

    def logs_get(self, key):
        with self.logs_lock:
            return self.logs.get(key, "")


# ---------------------------------------------------------------- kubelet endpoint (logs)

def make_handler(cluster):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):      # noqa: A003 - quiet
            pass

        def _send(self, code, text, ctype="text/plain"):
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):   # noqa: N802
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query)
            parts = u.path.strip("/").split("/")
            if u.path == "/healthz":
                return self._send(200, "ok")
            if len(parts) != 4 or parts[0] != "containerLogs":
                return self._send(404, "not found")
            _, ns, pod, container = parts
            previous = q.get("previous", ["false"])[0] == "true"
            key = (ns, pod, container, previous)
            with cluster.logs_lock:
                known = key in cluster.logs or (ns, pod, container, False) in cluster.logs
                text = cluster.logs.get(key, "")
            if not known:
                return self._send(404, f'container "{container}" in pod "{pod}" is not available')
            if previous and not text:
                return self._send(400, f'previous terminated container "{container}" in pod "{pod}" not found')
            if "tailLines" in q:
                n = int(q["tailLines"][0])
                lines = text.splitlines(keepends=True)
                text = "".join(lines[-n:]) if n > 0 else ""
            if "limitBytes" in q:
                text = text.encode()[:int(q["limitBytes"][0])].decode(errors="ignore")
            return self._send(200, text)
    return Handler


def serve_logs(cluster, cert, key, client_ca):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(cluster))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=client_ca)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_REQUIRED        # only the API server (kubelet client cert) reads logs
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, name="kubelet-endpoint", daemon=True).start()
    return httpd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--node-name", required=True)
    ap.add_argument("--serving-cert", required=True)
    ap.add_argument("--serving-key", required=True)
    ap.add_argument("--client-ca", required=True)
    ap.add_argument("--bin-dir")
    ap.add_argument("--backoff-scale", type=float, default=0.1)
    ap.add_argument("--max-grace", type=float, default=2.0)
    ap.add_argument("--image", action="append", default=[],
                    help='ENTRYPOINT/CMD of an image run as a local process: REPO={"entrypoint":[...],"cmd":[...]}')
    args = ap.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    api = Api(args.kubeconfig, args.state_dir)
    # the kubelet endpoint needs a port before the Node is registered
    cluster = ApiCluster(api, args.node_name, args.state_dir, 0)
    httpd = serve_logs(cluster, args.serving_cert, args.serving_key, args.client_ca)
    cluster.kubelet_port = httpd.server_address[1]
    for spec in args.image:
        repo, _, cfg = spec.partition("=")
        cluster.images[repo] = json.loads(cfg)
    cluster.register()
    threading.Thread(target=cluster.renew_lease_forever, name="lease", daemon=True).start()
    k = kubelet.Kubelet(cluster, args.bin_dir, args.backoff_scale, args.max_grace)
    k.start()
    log(f"node {args.node_name} ready; kubelet endpoint 127.0.0.1:{cluster.kubelet_port}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    k.stop()
    httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
