"""Helpers for the migrate-runner black-box tests (tests/e2e/test_migrate_runner.py).

    from mr_helpers import MR, outcome, FakeSidecar, listener, free_port

MR is the binary under test. outcome(stdout) parses the final JSON line the
runner prints. FakeSidecar is a tiny local HTTP server standing in for a
service-mesh proxy: it records every request and can answer the readiness
endpoint with 503 a given number of times first.
"""

import http.server
import json
import socket
import threading

from mg import BIN

MR = BIN("migrate-runner")


def outcome(stdout):
    """The runner's final stdout line, parsed."""
    lines = stdout.rstrip("\n").split("\n")
    return json.loads(lines[-1])


def free_port():
    """A loopback port nobody listens on (bound and released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listener():
    """A listening loopback socket; returns (socket, port)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s, s.getsockname()[1]


class FakeSidecar:
    """Records requests; POST /quit* and /shutdown answer quit_status; GET /ready answers 503 not_ready times."""

    def __init__(self, quit_status=200, not_ready=0, port=0):
        self.requests = []
        self.quit_status = quit_status
        self.not_ready = not_ready
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, code):
                body = b"ok\n"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with outer.lock:
                    outer.requests.append(("POST", self.path, dict(self.headers)))
                self._answer(outer.quit_status)

            def do_GET(self):  # noqa: N802
                with outer.lock:
                    outer.requests.append(("GET", self.path, dict(self.headers)))
                    ready = outer.not_ready <= 0
                    outer.not_ready -= 1
                self._answer(200 if ready else 503)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def posts(self):
        with self.lock:
            return [p for m, p, _ in self.requests if m == "POST"]

    def gets(self):
        with self.lock:
            return [p for m, p, _ in self.requests if m == "GET"]

    def headers(self):
        with self.lock:
            return [h for _, _, h in self.requests]
