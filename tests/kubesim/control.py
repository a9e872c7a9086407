"""The test-control API (plain HTTP on loopback, JSON in/out), plus the fault
and request-log state it manipulates.  Reference: README.md."""

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import auth
import resources
from registry import ApiError

COUNTED_FAULTS = ("errors_5xx", "too_many", "truncate", "malformed", "next_watch_gone")


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.clear()

    def clear(self):
        with self.lock:
            self.counted = {}            # name -> {"n", "match", ...options}
            self.latency_ms = 0
            self.watch_close_after = None

    def set(self, spec):
        with self.lock:
            for name in COUNTED_FAULTS:
                if spec.get(name):
                    self.counted[name] = {"n": int(spec[name]), "match": spec.get("match", ""),
                                          "code": int(spec.get("code", 503)),
                                          "retry_after": spec.get("retry_after", 1),
                                          "mode": spec.get("mode", "event")}
            if "latency_ms" in spec:
                self.latency_ms = float(spec["latency_ms"])
            if "close_watches_after" in spec:
                v = spec["close_watches_after"]
                self.watch_close_after = float(v) if v is not None else None

    def take(self, name, path):
        """Consume one occurrence of a counted fault if it applies to path."""
        with self.lock:
            f = self.counted.get(name)
            if not f or f["n"] <= 0 or (f["match"] and f["match"] not in path):
                return None
            f["n"] -= 1
            return dict(f)

    def latency(self):
        return self.latency_ms / 1000.0

    def close_watches_after(self):
        return self.watch_close_after

    def snapshot(self):
        with self.lock:
            return {"counted": {k: dict(v) for k, v in self.counted.items()},
                    "latency_ms": self.latency_ms, "close_watches_after": self.watch_close_after}


class RequestLog:
    def __init__(self, keep=10000):
        self.lock = threading.Lock()
        self.keep = keep
        self.reset()

    def reset(self):
        with self.lock:
            self.total = 0
            self.by_verb = collections.Counter()
            self.items = collections.deque(maxlen=self.keep)

    def add(self, rec):
        with self.lock:
            self.total += 1
            self.by_verb[rec.get("verb") or "unknown"] += 1
            self.items.append(dict(rec))

    def snapshot(self):
        with self.lock:
            return {"total": self.total, "by_verb": dict(self.by_verb), "items": list(self.items)}


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._dispatch()

    do_POST = do_GET

    def _dispatch(self):
        sim = self.server.sim
        url = urlsplit(self.path)
        q = dict(parse_qsl(url.query))
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 8 * 1024 * 1024:
                return self._reply(413, {"error": "body too large"})
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            route = (self.command, url.path.rstrip("/"))
            handler = ROUTES.get(route)
            if handler is None:
                return self._reply(404, {"error": f"no route {route[0]} {route[1]}"})
            self._reply(200, handler(sim, body, q))
        except ApiError as e:
            self._reply(e.code, e.status)
        except (ValueError, KeyError, TypeError) as e:
            self._reply(400, {"error": f"{type(e).__name__}: {e}"})


def _kind(body):
    kind = resources.by_kind(body.get("apiVersion"), body.get("kind"))
    if kind is None:
        raise ValueError(f"unknown apiVersion/kind {body.get('apiVersion')}/{body.get('kind')}")
    return kind


def _objects(sim, body, q):
    items = []
    for k in resources.KINDS:
        if q.get("kind") and q["kind"] not in (k.kind, k.plural):
            continue
        objs, _ = sim.store.list(k.gk, q.get("namespace", "") if k.namespaced else "")
        items += objs
    return {"items": items, "resourceVersion": str(sim.store.rv)}


def _delete(sim, body, q):
    kind = _kind(body)
    obj, _ = sim.registry.delete(kind, body.get("namespace", "default") if kind.namespaced else "", body["name"])
    return obj


def _logs(sim, body, q):
    ns, pod = body.get("namespace", "default"), body["pod"]
    container = body.get("container")
    if not container:
        p = sim.store.get(("", "pods"), ns, pod)
        names = [c.get("name") for c in ((p or {}).get("spec") or {}).get("containers") or []]
        if len(names) != 1:
            raise ValueError("container is required unless the pod exists and has exactly one container")
        container = names[0]
    sim.logs[(ns, pod, container, bool(body.get("previous")))] = body.get("text", "")
    return {"ok": True}


def _faults(sim, body, q):
    sim.faults.set(body)
    if body.get("close_watches_now"):
        sim.store.abort_watches()
    if body.get("stop_listening"):
        sim.api.stop_for(float(body["stop_listening"]))
    return sim.faults.snapshot()


def _faults_clear(sim, body, q):
    sim.faults.clear()
    return sim.faults.snapshot()


def _tokens(sim, body, q):
    if body.get("rbac"):     # authorise this user with the stored Roles/RoleBindings
        token = sim.auth.add_token(body["user"], body.get("token"), auth.RBAC, set_rules=True)
        return {"token": token, "user": body["user"]}
    ttl = float(body["ttl_seconds"]) if body.get("ttl_seconds") is not None else None
    token = sim.auth.add_token(body["user"], body.get("token"), body.get("rules"), set_rules="rules" in body, ttl=ttl)
    return {"token": token, "user": body["user"]}


def _rotate(sim, body, q):
    token = sim.rotate(body["user"], float(body.get("grace_seconds", 0)))
    return {"token": token, "user": body["user"]}


def _requests(sim, body, q):
    snap = sim.requests.snapshot()
    if q.get("since"):
        snap["items"] = [i for i in snap["items"] if i["ts"] >= float(q["since"])]
    return snap


def _requests_reset(sim, body, q):
    sim.requests.reset()
    return {"ok": True}


def _images(sim, body, q):
    """Register an image's ENTRYPOINT/CMD for the kubelet (exec mode)."""
    sim.images[body["image"]] = {"entrypoint": list(body.get("entrypoint") or []), "cmd": list(body.get("cmd") or [])}
    return {"images": sim.images}


ROUTES = {
    ("GET", "/healthz"): lambda sim, b, q: {"ok": True, "resourceVersion": str(sim.store.rv)},
    ("POST", "/apply"): lambda sim, b, q: sim.registry.force_apply(b),
    ("POST", "/patch-status"): lambda sim, b, q: sim.registry.force_patch_status(
        b["apiVersion"], b["kind"], b.get("namespace", "default"), b["name"], b["status"]),
    ("POST", "/delete"): _delete,
    ("GET", "/objects"): _objects,
    ("POST", "/logs"): _logs,
    ("POST", "/faults"): _faults,
    ("POST", "/pager"): lambda sim, b, q: sim.pager.set(b),
    ("POST", "/faults/clear"): _faults_clear,
    ("GET", "/faults"): lambda sim, b, q: sim.faults.snapshot(),
    ("GET", "/requests"): _requests,
    ("POST", "/requests/reset"): _requests_reset,
    ("POST", "/tokens"): _tokens,
    ("POST", "/rotate"): _rotate,
    ("POST", "/images"): _images,
    ("GET", "/images"): lambda sim, b, q: {"images": sim.images},
}


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sim, port):
        self.sim = sim
        super().__init__(("127.0.0.1", port), ControlHandler)


def start(sim, port):
    server = ControlServer(sim, port)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    return server

