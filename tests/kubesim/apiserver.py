"""The Kubernetes API endpoint: TLS listener with connection tracking (so a
restart can be simulated), request routing, the verbs, watch streaming and
fault injection at the response layer."""

import base64
import copy
import json
import queue
import select
import socket
import ssl
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

import protobuf
import resources
import selector
import tables
from auth import forbidden_message
from registry import ApiError, bad_request, status_obj
from store import ABORT, Expired

MAX_BODY = 3 * 1024 * 1024          # the real server's etcd object limit
DEFAULT_WATCH_TIMEOUT = 1800.0
POLL = 0.5                          # how often an idle watch checks its client is still there
INITIAL_END = object()              # queued after the synthetic ADDED events of a watch


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def request_info(method, path, query):
    """Kubernetes RequestInfo: resource request attributes used for routing and RBAC."""
    parts = [p for p in path.split("/") if p]
    info = {"resource_request": False, "verb": method.lower(), "path": path, "group": "", "version": "",
            "resource": "", "subresource": "", "namespace": "", "name": "", "extra": False}
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return info
    if rest[0] == "namespaces" and len(rest) > 1:
        info["namespace"] = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    info.update(resource_request=True, group=group, version=version, resource=rest[0],
                name=rest[1] if len(rest) > 1 else "", subresource=rest[2] if len(rest) > 2 else "",
                extra=len(rest) > 3)
    watch = query.get("watch") in ("true", "1")
    verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update",
            "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())
    if not info["name"]:
        verb = {"get": "watch" if watch else "list", "delete": "deletecollection"}.get(verb, verb)
        if verb in ("list", "watch"):
            # Like the real server: a list/watch narrowed to one name is
            # authorised as a request for that name (RBAC resourceNames).
            try:
                _, terms = selector.parse_fields(query.get("fieldSelector", ""))
                info["name"] = selector.single_name(terms)
            except selector.SelectorError:
                pass
    info["verb"] = verb
    return info


class Listener:
    """Accepts TLS connections on loopback (IPv4 and, if possible, IPv6) and
    runs one handler thread per connection.  stop_for() closes everything for
    a while, like an API server restart."""

    def __init__(self, sim, ssl_ctx, port):
        self.sim, self.ssl_ctx, self.port = sim, ssl_ctx, port
        self.lock = threading.Lock()
        self.socks, self.conns = [], set()
        self.ipv6 = False
        self.closed = False
        self._bind()

    @staticmethod
    def _listen(family, host, port):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
            s.listen(128)
            return s
        except OSError:
            s.close()
            raise

    def _bind(self):
        s4 = self._listen(socket.AF_INET, "127.0.0.1", self.port)
        self.port = s4.getsockname()[1]
        socks = [s4]
        try:
            socks.append(self._listen(socket.AF_INET6, "::1", self.port))
            self.ipv6 = True
        except OSError:
            pass    # no IPv6 loopback here: serve 127.0.0.1 only
        with self.lock:
            self.socks = socks
        for s in socks:
            threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def _accept_loop(self, sock):
        while True:
            try:
                conn, addr = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn, addr), daemon=True).start()

    def _serve_conn(self, conn, addr):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # one event = one segment, now
        # the TLS socket takes the connection over (wrap_socket detaches conn):
        # it is the one an outage (_drop_all) must shut down, idle keep-alive
        # connections included, also in the middle of a handshake
        try:
            tls = self.ssl_ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        with self.lock:
            if self.closed or not self.socks:
                tls.close()
                return
            self.conns.add(tls)
        try:
            tls.do_handshake()
            APIHandler(tls, addr, self)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            with self.lock:
                self.conns.discard(tls)
            try:
                tls.close()
            except OSError:
                pass

    def _drop_all(self):
        with self.lock:
            socks, conns = self.socks, list(self.conns)
            self.socks = []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)   # wakes the accept() thread; close() alone would not
            except OSError:
                pass
            s.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sim.store.abort_watches()

    def stop_for(self, seconds):
        # overlapping outages add up to the latest end: an earlier, shorter
        # one must not bring the server back in the middle of a longer one
        with self.lock:
            self.down_until = max(getattr(self, "down_until", 0), time.monotonic() + seconds)
        self._drop_all()

        def restart():
            time.sleep(seconds)
            with self.lock:
                if time.monotonic() < self.down_until - 0.01:
                    return       # a later outage's thread brings it back
            deadline = time.monotonic() + 10
            while not self.closed:
                try:
                    return self._bind()
                except OSError:      # the port may linger briefly; keep it, clients dial it
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        threading.Thread(target=restart, daemon=True).start()

    def close(self):
        self.closed = True
        self._drop_all()


class APIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubesim"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # ------------------------------------------------------------ plumbing
    def _serve(self):
        self.sim = self.server.sim
        url = urlsplit(self.path)
        self.q = dict(parse_qsl(url.query, keep_blank_values=True))
        self.pathq = self.path
        self.rec = {"method": self.command, "path": url.path, "query": url.query, "user": None,
                    "verb": None, "code": None, "ts": time.time()}
        self.recorded = False
        try:
            body = self._read_body()
            user = self.sim.auth.authenticate(self.headers.get("Authorization"), self.request.getpeercert())
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self.rec["user"] = user
            info = request_info(self.command, url.path, self.q)
            self.rec["verb"] = info["verb"]
            self._pre_faults()
            if not self.sim.auth.authorize(user, info):
                raise ApiError(403, "Forbidden", forbidden_message(user, info),
                               self._forbidden_details(info))
            if info["resource_request"]:
                self._resource(info, body)
            else:
                self._nonresource(url.path)
        except ApiError as e:
            self._send_json(e.code, e.status, e.headers)
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True
        except Exception as e:   # a kubesim bug: answer like the real server's panic handler, keep serving
            traceback.print_exc()
            self.close_connection = True
            if not self.recorded:
                self._send_json(500, status_obj(500, "InternalError", f"Internal error occurred: kubesim: {e!r}"))
        finally:
            if not self.recorded:
                self._record(self.rec["code"] or 0)

    @staticmethod
    def _forbidden_details(info):
        if not info["resource_request"]:
            return {}
        d = {"name": info["name"]} if info["name"] else {}
        if info["group"]:
            d["group"] = info["group"]
        d["kind"] = info["resource"]
        return d

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    self.close_connection = True
                    raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
        return self.rfile.read(length) if length else b""

    def _record(self, code):
        self.recorded = True
        self.rec["code"] = code
        self.sim.requests.add(self.rec)

    def _pre_faults(self):
        f = self.sim.faults
        hit = f.take("too_many", self.pathq)
        if hit:
            raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                           {"retryAfterSeconds": int(hit["retry_after"])},
                           {"Retry-After": str(int(hit["retry_after"]))})
        hit = f.take("errors_5xx", self.pathq)
        if hit:
            code = int(hit.get("code", 503))
            reason, msg = (("InternalError", "Internal error occurred: injected by kubesim") if code == 500 else
                           ("ServiceUnavailable", "the server is currently unable to handle the request"))
            raise ApiError(code, reason, msg)

    def _send(self, code, body, content_type="application/json", headers=None):
        """Whole response in one write (headers + body) so small responses are one segment."""
        latency = self.sim.faults.latency()
        if latency:
            time.sleep(latency)
        if content_type == "application/json" and self.sim.faults.take("malformed", self.pathq):
            body = body[: max(1, len(body) // 2)] + b'<<kubesim malformed>>'
        truncate = self.sim.faults.take("truncate", self.pathq)
        lines = [f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}",
                 f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
                 "Cache-Control: no-cache, private", f"Audit-Id: kubesim-{self.rec['ts']}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if self.command == "HEAD" else body)
        self._record(code)
        if truncate:
            self.wfile.write(payload[: len(payload) - max(1, len(body) // 2)])
            self._abort()
            return
        self.wfile.write(payload)

    def _send_json(self, code, obj, headers=None):
        self._send(code, _dumps(obj), "application/json", headers)

    def _abort(self):
        """Drop the connection without a clean HTTP end."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------ non-resource
    def _nonresource(self, path):
        path = path.rstrip("/") or "/"
        sim = self.sim
        doc = None
        if path == "/version":
            doc = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-kubesim", "gitCommit": "kubesim",
                   "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0",
                   "compiler": "gc", "platform": "linux/amd64"}
        elif path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/api":
            doc = resources.api_versions(f"127.0.0.1:{sim.api.port}")
        elif path == "/apis":
            doc = resources.api_group_list()
        elif path == "/openapi/v3":
            doc = resources.openapi_root()
        elif path.startswith("/openapi/v3/"):
            doc = resources.openapi_gv(path[len("/openapi/v3/"):])
        else:
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) == 2:
                doc = resources.api_resource_list("", parts[1])
            elif parts[0] == "apis" and len(parts) == 2:
                doc = resources.api_group(parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                doc = resources.api_resource_list(parts[1], parts[2])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        self._send_json(200, doc)

    # ------------------------------------------------------------ resources
    def _resource(self, info, body):
        kind = resources.by_path(info["group"], info["version"], info["resource"])
        sub = info["subresource"]
        if (kind is None or info["extra"] or (sub and sub not in kind.subresources)
                or (not kind.namespaced and info["namespace"] and kind.plural != "namespaces")):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        ns = info["namespace"] if kind.namespaced else ""
        verb, q = info["verb"], self.q
        name = self._url_name(info)
        dry = q.get("dryRun") == "All"
        manager = q.get("fieldManager") or (self.headers.get("User-Agent") or "").split("/")[0]
        reg = self.sim.registry
        if sub == "log":
            return self._log(kind, ns, name)
        if kind.virtual:
            if verb != "create":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            return self._access_review(self._json(body))
        if verb == "get":
            obj = reg.get(kind, ns, name)
            if self._wants_table():
                return self._send_json(200, tables.to_table(kind, [obj], obj["metadata"]["resourceVersion"],
                                                            q.get("includeObject", "Metadata")))
            return self._send_json(200, obj)
        if verb in ("list", "watch", "deletecollection"):
            try:
                lmatch = selector.parse_labels(q.get("labelSelector", ""))
                fmatch, _ = selector.parse_fields(q.get("fieldSelector", ""))
            except selector.SelectorError as e:
                raise bad_request(str(e))
            if verb == "watch":
                return self._watch(kind, ns, lmatch, fmatch)
            if verb == "list" and (q.get("limit") or q.get("continue")):
                items, rv, cont, remaining = self.sim.pager.page(kind.gk, ns, q, lmatch, fmatch)
                return self._list(kind, items, rv, cont, remaining)
            self._check_list_rv()
            items, rv = self.sim.store.list(kind.gk, ns)
            items = [o for o in items if lmatch(o["metadata"].get("labels")) and fmatch(o)]
            if verb == "deletecollection":
                items = [reg.delete(kind, o["metadata"].get("namespace", ""), o["metadata"]["name"],
                                    self._json(body) if body else None, dry)[0] for o in items]
                rv = self.sim.store.rv
            return self._list(kind, items, rv)
        if verb == "create":
            obj = reg.create(kind, ns, self._json(body), dry, manager)
            return self._send_json(201, obj)
        if verb == "update":
            obj = reg.update(kind, ns, name, self._json(body), sub or None, dry, manager)
            return self._send_json(200, obj)
        if verb == "patch":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            obj = reg.patch(kind, ns, name, ctype, body, sub or None, dry, manager)
            return self._send_json(200, obj)
        if verb == "delete":
            obj, gone = reg.delete(kind, ns, name, self._json(body) if body else None, dry)
            if gone and kind.plural != "pods":
                details = {"name": name, "kind": kind.plural, "uid": obj["metadata"]["uid"]}
                if kind.group:
                    details["group"] = kind.group
                return self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                             "status": "Success", "details": details})
            return self._send_json(200, obj)
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource")

    def _check_list_rv(self):
        """Lists are served from the current state; only an Exact match on a
        version that fell out of the history is refused, as the real server does."""
        rv = self.q.get("resourceVersion", "")
        if self.q.get("resourceVersionMatch") == "Exact" and rv:
            if not rv.isdigit():
                raise bad_request(f'resourceVersion: Invalid value: "{rv}": must be a number')
            if int(rv) < self.sim.store.evicted_rv:
                raise ApiError(410, "Expired", "The resourceVersion for the provided list is too old.")

    @staticmethod
    def _url_name(info):
        """The name from the URL (request_info may have taken one from a fieldSelector)."""
        return info["name"] if info["verb"] not in ("list", "watch") else ""

    def _json(self, body):
        if (self.headers.get("Content-Type") or "").startswith(protobuf.CONTENT_TYPE):
            return protobuf.decode(body)     # kubectl's typed clients send protobuf
        try:
            return json.loads(body)
        except ValueError:
            raise bad_request("the body of the request was in an unknown format - accepted media types "
                              "include: application/json, application/yaml")

    def _access_review(self, review):
        """SelfSubjectAccessReview: what `kubectl auth can-i` asks."""
        spec = review.get("spec") or {}
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if ra:
            attrs = {"resource_request": True, "verb": ra.get("verb", ""), "group": ra.get("group", ""),
                     "resource": ra.get("resource", ""), "subresource": ra.get("subresource", ""),
                     "namespace": ra.get("namespace", ""), "name": ra.get("name", ""), "path": ""}
        elif nra:
            attrs = {"resource_request": False, "verb": nra.get("verb", ""), "path": nra.get("path", "")}
        else:
            raise ApiError(422, "Invalid", 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                                           'spec.resourceAttributes: Invalid value: "null": exactly one of '
                                           'nonResourceAttributes or resourceAttributes must be specified')
        allowed = self.sim.auth.authorize(self.rec["user"], attrs)
        review.setdefault("metadata", {})["creationTimestamp"] = None
        review["status"] = {"allowed": allowed}
        self._send_json(201, review)

    def _wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    def _list(self, kind, items, rv, cont=None, remaining=None):
        if self._wants_table():
            table = tables.to_table(kind, items, rv, self.q.get("includeObject", "Metadata"))
            if cont:
                table["metadata"]["continue"] = cont
            return self._send_json(200, table)
        for o in items:   # typed lists carry no kind/apiVersion on their items
            o.pop("kind", None)
            o.pop("apiVersion", None)
        md = {"resourceVersion": str(rv)}
        if cont:
            md["continue"] = cont
            if remaining is not None:
                md["remainingItemCount"] = remaining
        self._send_json(200, {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                              "metadata": md, "items": items})

    def _log(self, kind, ns, pod_name):
        pod = self.sim.registry.get(kind, ns, pod_name)
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        all_names = names + [c.get("name") for c in spec.get("initContainers") or []]
        container = self.q.get("container") or ""
        if not container:
            if len(names) != 1:
                raise bad_request(f"a container name must be specified for pod {pod_name}, "
                                  f"choose one of: [{' '.join(names)}]")
            container = names[0]
        elif container not in all_names:
            raise bad_request(f"container {container} is not valid for pod {pod_name}")
        previous = self.q.get("previous") in ("true", "1")
        text = self.sim.logs.get((ns, pod_name, container, previous))
        if text is None and previous:
            raise bad_request(f'previous terminated container "{container}" in pod "{pod_name}" not found')
        text = text or ""
        if self.q.get("tailLines"):
            n = int(self.q["tailLines"])
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-n:]) if n > 0 else ""
        data = text.encode()
        if self.q.get("limitBytes"):
            data = data[: int(self.q["limitBytes"])]
        self._send(200, data, "text/plain")

    # ------------------------------------------------------------ watch
    def _watch(self, kind, ns, lmatch, fmatch):
        q, store, faults = self.q, self.sim.store, self.sim.faults
        rv_param = q.get("resourceVersion", "")
        send_initial = q.get("sendInitialEvents") == "true"
        try:
            since = None if rv_param in ("", "0") or send_initial else int(rv_param)
        except ValueError:
            raise bad_request(f'resourceVersion: Invalid value: "{rv_param}": must be a number')
        bookmarks = q.get("allowWatchBookmarks") == "true"
        gone = faults.take("next_watch_gone", self.pathq)
        if gone and gone.get("mode") == "http":
            raise ApiError(410, "Expired", f"too old resource version: {rv_param or 0} ({store.rv})")
        w = None
        try:
            if not gone:
                try:
                    w, start_rv = store.watch(kind.gk, ns, lmatch, fmatch, since)
                    if since is None:
                        w.queue.put(INITIAL_END)
                except Expired as e:
                    gone = str(e)
            self._start_stream()
            if gone:
                msg = gone if isinstance(gone, str) else f"too old resource version: {rv_param or 0} ({store.rv})"
                self._event({"type": "ERROR", "object": status_obj(410, "Expired", msg)})
                return self._end_stream()
            self._stream(kind, w, start_rv, bookmarks and send_initial, bookmarks)
        finally:
            if w is not None:
                store.unwatch(w)

    def _start_stream(self):
        latency = self.sim.faults.latency()
        if latency:
            time.sleep(latency)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Cache-Control: no-cache, private\r\nTransfer-Encoding: chunked\r\n\r\n")
        self._record(200)
        if self.sim.faults.take("truncate", self.pathq):
            self.wfile.write(b"40\r\n" + b'{"type":"ADDED","object":{"kind":')
            self._abort()
            raise ConnectionAbortedError
        if self.sim.faults.take("malformed", self.pathq):
            self._chunk(b'{"type":"ADDED","object":{"kind":<<kubesim malformed>>\n')

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _event(self, ev):
        self._chunk(_dumps(ev) + b"\n")

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")

    def _bookmark(self, kind, rv, initial_end=False):
        md = {"resourceVersion": str(rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        self._event({"type": "BOOKMARK", "object": {"kind": kind.kind, "apiVersion": kind.api_version,
                                                    "metadata": md}})

    def _client_gone(self):
        # A watch client never sends on the connection; readable means EOF/close.
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _stream(self, kind, w, start_rv, initial_bookmark, bookmarks):
        store, faults = self.sim.store, self.sim.faults
        now = time.monotonic()
        deadline = now + float(self.q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        close_after = faults.close_watches_after()
        abort_at = now + close_after if close_after is not None else None
        interval = self.sim.bookmark_interval
        next_bm = now + interval if bookmarks else None
        as_table, first_table = self._wants_table(), True
        while True:
            now = time.monotonic()
            if abort_at is not None and now >= abort_at:
                return self._abort()
            if now >= deadline:
                if bookmarks:
                    self._bookmark(kind, store.rv)
                return self._end_stream()
            wake = min(t for t in (deadline, abort_at, next_bm) if t is not None)
            try:
                item = w.queue.get(timeout=max(0.0, min(wake - now, POLL)))
            except queue.Empty:
                if self._client_gone():
                    self.close_connection = True
                    return
                if next_bm is not None and time.monotonic() >= next_bm:
                    with store.lock:       # a bookmark must never overtake a queued event
                        rv = store.rv if w.queue.empty() else None
                    if rv is not None:
                        self._bookmark(kind, rv)
                    next_bm = time.monotonic() + interval
                continue
            if item is ABORT:
                return self._abort()
            if item is INITIAL_END:
                if initial_bookmark:
                    self._bookmark(kind, start_rv, initial_end=True)
                continue
            obj = item[1]
            if as_table:   # kubectl get -w: a one-row Table per event, columns in the first only
                obj = tables.to_table(kind, [obj], obj["metadata"]["resourceVersion"],
                                      self.q.get("includeObject", "Metadata"))
                if not first_table:
                    obj["columnDefinitions"] = []
                first_table = False
            self._event({"type": item[0], "object": obj})


class Pager:
    """Lists in chunks (limit/continue), as the real server pages them out of
    etcd: every page of one list is read at the list's first resourceVersion,
    whatever was written since. kubesim keeps no old versions, so the first
    page's matching items are kept as the snapshot (the newest MAX_SNAPSHOTS
    of them). A token whose resourceVersion fell out of the watch history
    (the simulated compaction), or whose snapshot was dropped, gets the real
    server's 410 Expired."""

    MAX_SNAPSHOTS = 32
    EXPIRED = ("The provided continue parameter is too old to display a consistent list result. You can start "
               "a new list without the continue parameter, or use the continue token in this response to "
               "retrieve the remainder of the results. Continuing with the provided token results in an "
               "inconsistent list - objects that were created, modified, or deleted between the time the first "
               "chunk was returned and now may show up in the list.")

    def __init__(self, store):
        self.store = store
        self.lock = threading.Lock()
        self.snapshots = {}   # id -> ((gk, namespace), items), insertion ordered: the oldest is dropped first
        self.next_id = 1
        self.expire_next = 0     # so many coming continue requests get 410 (control: POST /pager)

    def set(self, body):
        with self.lock:
            self.expire_next = int(body.get("expire_next", 0))
            return {"expire_next": self.expire_next, "snapshots": len(self.snapshots)}

    def page(self, gk, ns, q, lmatch, fmatch):
        limit = q.get("limit", "")
        if limit and not limit.lstrip("-").isdigit():
            raise bad_request(f'strconv.ParseInt: parsing "{limit}": invalid syntax')
        limit = int(limit) if limit else 0
        token = q.get("continue", "")
        if token:
            if q.get("resourceVersion", "0") != "0":
                raise bad_request("specifying resource version is not allowed when using continue")
            sid, start, rv = self._decode(token)
            with self.lock:
                snap = self.snapshots.get(sid)
                if snap is not None and snap[0] != (gk, ns):
                    raise bad_request("continue key is not valid: the token is of another collection")
                if snap is None or self.expire_next > 0 or rv < self.store.evicted_rv:
                    self.expire_next = max(0, self.expire_next - 1)
                    self.snapshots.pop(sid, None)
                    raise ApiError(410, "Expired", self.EXPIRED)
                items = snap[1]
        else:
            items, rv = self.store.list(gk, ns)
            items = [o for o in items if lmatch(o["metadata"].get("labels")) and fmatch(o)]
            start = sid = 0
        end = len(items) if limit <= 0 else min(len(items), start + limit)
        if not sid and end < len(items):      # more pages to come: keep the snapshot they are cut from
            with self.lock:
                sid = self.next_id
                self.next_id += 1
                self.snapshots[sid] = ((gk, ns), items)
                while len(self.snapshots) > self.MAX_SNAPSHOTS:
                    del self.snapshots[next(iter(self.snapshots))]
        page = items[start:end]   # store.list's copies; _list only drops kind/apiVersion, so a page can go again
        if end >= len(items):
            # the snapshot stays: a real token works again (a retried page) until its revision is compacted
            return page, rv, None, None
        cont = base64.urlsafe_b64encode(json.dumps(
            {"v": "meta.k8s.io/v1", "rv": rv, "start": end, "id": sid}).encode()).decode().rstrip("=")
        # the real server counts what remains only for lists without selectors
        plain = not q.get("labelSelector") and not q.get("fieldSelector")
        return page, rv, cont, len(items) - end if plain else None

    @staticmethod
    def _decode(token):
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if raw.get("v") != "meta.k8s.io/v1":
                raise ValueError("version")
            return int(raw["id"]), int(raw["start"]), int(raw["rv"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise bad_request("continue key is not valid: " + token[:64])
