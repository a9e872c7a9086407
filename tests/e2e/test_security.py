"""Security checks of all three static binaries (issue #9).

- Bearer tokens never appear in output (even with -v), in migrate-runner's
  record or in its termination message; nor do the command's arguments.
- A TLS verification failure is fatal, says so clearly, and exits 78.
- A kubeconfig that would send a bearer token over plain http:// is refused
  (78) before any request is made.
- Issue 15: tls-server-name is the SNI and the verified name (the Host
  header and the address stay the server URL's); credentials in the server URL are
  refused and never printed; a redirect or a 204 from the "API server" is
  its misconfiguration (69), a malformed URL a configuration error (78) at
  once; a FIFO as CA path fails at once; a hanging exec plugin is bounded by
  --timeout; an exec plugin failing in the middle of a watch is retried.
"""

import base64
import http.server
import json
import os
import re
import select
import signal
import socket
import ssl
import tempfile
import threading
import time
import unittest

import subprocess

from mg import BIN, COMPLETE, SLOW, T, KubeSim, clean_env, job, kubesim_only, kill_leftovers, run, start

WFJ, MR, RC = BIN("wait-for-job"), BIN("migrate-runner"), BIN("release-check")


def kubeconfig_text(server, token, ca_line):
    return ("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
            "clusters:\n- name: c\n  cluster:\n    server: %s\n%s"
            "users:\n- name: u\n  user:\n    token: %s\n"
            "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: default}\n") % (server, ca_line, token)


class Security(unittest.TestCase):
    def setUp(self):
        self.addCleanup(kill_leftovers)   # a waiter a failed test left running

    @classmethod
    def setUpClass(cls):
        cls.ks = KubeSim().start()
        cls.tmp = tempfile.mkdtemp(prefix="mg-sec-")
        with open(os.path.join(cls.ks.sa_dir, "token")) as f:
            cls.secrets = [cls.ks.admin_token, f.read().strip()]

    @classmethod
    def tearDownClass(cls):
        cls.ks.stop()

    def assertNoSecrets(self, *texts):
        for t in texts:
            for s in self.secrets:
                self.assertNotIn(s, t)

    def test_tokens_never_printed(self):
        ks = self.ks
        ks.apply(job("sec-ok", status=COMPLETE))
        ks.apply(job("sec-running"))
        runs = [
            [WFJ, "--kubeconfig", ks.kubeconfig, "-v", "sec-ok"],
            [WFJ, "--kubeconfig", ks.kubeconfig, "-v", "--log-format", "json", "--timeout", "1s", "sec-running"],
            [RC, "--kubeconfig", ks.kubeconfig, "-v", "--no-helm", "--timeout", "1s", "nothing"],
            [RC, "--kubeconfig", ks.kubeconfig, "--output", "json", "--no-helm", "--timeout", "1s", "nothing"],
        ]
        for argv in runs:
            with self.subTest(argv=argv[-1]):
                r = run(argv)
                self.assertIn(r.returncode, (0, 2), r.stderr)
                self.assertNoSecrets(r.stdout, r.stderr)

    def test_record_and_termination_log_hold_no_secrets(self):
        ks = self.ks
        tlog = os.path.join(self.tmp, "termination-log")
        # a connection string in the command's arguments must not be recorded
        r = run([MR, "--kubeconfig", ks.kubeconfig, "-v", "--record", "sec-rec", "--record-key", "m1",
                 "--termination-log", tlog, "--", "sh", "-c", "echo migrated; exit 3",
                 "postgres://app:hunter2@db/app"],
                env=clean_env({"JOB_NAME": "m1"}))
        self.assertEqual(r.returncode, 3, r.stderr)
        cm = [o for o in ks.objects(kind="ConfigMap", namespace="default") if o["metadata"]["name"] == "sec-rec"][0]
        rec = cm["data"]["m1"]
        with open(tlog) as f:
            term = f.read()
        self.assertEqual(json.loads(rec)["status"], "failed")
        self.assertIn("migrated", json.loads(rec)["outputTail"])
        for text in (rec, term, r.stdout, r.stderr):
            self.assertNotIn("hunter2", text)
        self.assertNoSecrets(rec, term, r.stdout, r.stderr)

    def wrong_ca_kubeconfig(self):
        os.makedirs(os.path.join(self.tmp, "other"), exist_ok=True)
        other = KubeSim(state_dir=os.path.join(self.tmp, "other")).start()
        try:
            with open(other.ca_file) as f:
                import base64
                ca = base64.b64encode(f.read().encode()).decode()
        finally:
            other.stop()
        path = os.path.join(self.tmp, "wrong-ca")
        with open(path, "w") as f:
            f.write(kubeconfig_text(self.ks.server, self.ks.admin_token,
                                    "    certificate-authority-data: %s\n" % ca))
        return path

    def test_tls_verification_failure_is_fatal(self):
        cfg = self.wrong_ca_kubeconfig()
        for argv in ([WFJ, "--kubeconfig", cfg, "--timeout", "20s", "j"],
                     [RC, "--kubeconfig", cfg, "--timeout", "20s", "rel"],
                     [MR, "--kubeconfig", cfg, "--lock", "l", "--lock-timeout", "20s", "--", "true"]):
            with self.subTest(binary=os.path.basename(argv[0])):
                r = run(argv, timeout=60)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn("TLS verification", r.stderr)
                self.assertNoSecrets(r.stdout, r.stderr)

    def test_bearer_token_refused_over_http(self):
        # a plain-http listener that would record anything sent to it
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        got = []

        def accept():
            srv.settimeout(5)
            try:
                while True:
                    c, _ = srv.accept()
                    got.append(c.recv(65536))
                    c.close()
            except OSError:
                pass
        th = threading.Thread(target=accept, daemon=True)
        th.start()
        path = os.path.join(self.tmp, "plain-http")
        with open(path, "w") as f:
            f.write(kubeconfig_text("http://127.0.0.1:%d" % srv.getsockname()[1], "plain-secret-token", ""))
        try:
            for argv in ([WFJ, "--kubeconfig", path, "j"], [RC, "--kubeconfig", path, "rel"],
                         [MR, "--kubeconfig", path, "--record", "r", "--record-key", "k", "--", "true"]):
                with self.subTest(binary=os.path.basename(argv[0])):
                    r = run(argv)
                    self.assertEqual(r.returncode, 78, r.stderr)
                    self.assertIn("refusing to send credentials over plain http", r.stderr)
                    self.assertNotIn("plain-secret-token", r.stdout + r.stderr)
        finally:
            srv.close()
        self.assertFalse(any(b"plain-secret-token" in g for g in got), "the token reached the http server")


def cluster_kubeconfig(server, ca_file=None, user_yaml="", extra_cluster=""):
    """A kubeconfig for server (CA from ca_file) with this user body."""
    ca = ""
    if ca_file:
        with open(ca_file, "rb") as f:
            ca = "    certificate-authority-data: %s\n" % base64.b64encode(f.read()).decode()
    users = "users:\n- name: u\n  user:\n%s" % user_yaml if user_yaml else "users:\n- name: u\n  user: {}\n"
    return ("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
            "clusters:\n- name: c\n  cluster:\n    server: %s\n%s%s%s"
            "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: default}\n"
            % (server, ca, extra_cluster, users))


class FixedAnswer(http.server.BaseHTTPRequestHandler):
    """A plain-http "API server" that answers every request with one status."""
    protocol_version = "HTTP/1.1"
    status = 302

    def do_GET(self):
        self.send_response(self.status)
        if self.status == 302:
            self.send_header("Location", "http://127.0.0.1:1/login")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class SniFront:
    """A TLS front end for the API server whose certificate (own CA) names
    only `name`: it records the SNI of every connection (None when none was
    sent) and the request line and Host header of every request, and relays
    the bytes to the API server on upstream_port."""

    def __init__(self, tmp, name, upstream_port):
        d = tempfile.mkdtemp(prefix="sni-", dir=tmp)
        self.ca_file, crt, key = make_server_cert(d, name)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        self.ctx.sni_callback = self._sni
        self.up_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.up_ctx.check_hostname = False
        self.up_ctx.verify_mode = ssl.CERT_NONE
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.snis, self.streams = [], []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _sni(self, sslobj, server_name, ctx):
        with self.lock:
            self.snis.append(server_name)

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    def _relay(self, raw):
        try:
            c = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()  # the client refused the certificate
            return
        buf = bytearray()
        with self.lock:
            self.streams.append(buf)
        try:
            u = self.up_ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.upstream_port)))
        except OSError:
            c.close()
            return
        with c, u:
            while not self.closed:
                ready = [s for s in (c, u) if s.pending()] or select.select([c, u], [], [], 0.5)[0]
                for s in ready:
                    # a readable TLS socket may hold only a record without
                    # data (a session ticket): a blocking recv would wait
                    # for data while the other side's bytes go unrelayed
                    s.settimeout(0)
                    try:
                        data = s.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        return
                    if s is c:
                        with self.lock:
                            buf += data
                    try:
                        (u if s is c else c).settimeout(10)
                        (u if s is c else c).sendall(data)
                    except OSError:
                        return

    def seen(self):
        """(SNI per connection, [(request line, Host header)] per request)."""
        reqs = []
        with self.lock:
            snis = list(self.snis)
            streams = [bytes(b) for b in self.streams]
        for b in streams:
            for m in re.finditer(rb"(?m)^((?:GET|PUT|POST|PATCH|DELETE) [^\r\n]*)\r\n(.*?)\r\n\r\n", b, re.S):
                host = re.search(rb"(?im)^host: *([^\r\n]*)", m.group(2))
                reqs.append((m.group(1).decode(), host.group(1).decode() if host else None))
        return snis, reqs

    def wait_for(self, pred, timeout=15):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if any(pred(line) for line, _ in self.seen()[1]):
                return
            time.sleep(0.02)
        raise TimeoutError("no matching request reached the front end")

    def close(self):
        self.closed = True
        self.sock.close()


def process_alive(pid):
    """pid runs (a zombie, killed and not yet reaped, does not count)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def kill_alive(pids):
    for pid in pids:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def make_server_cert(d, name):
    """CA and a server certificate (EC P-256) whose only name is `name`."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca, key, csr, crt, ext = (os.path.join(d, n) for n in
                                      ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt", "srv.ext"))
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key,
         "-out", ca, "-days", "30", "-subj", "/CN=sni-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=%s" % name)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % name)
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days", "30",
         "-extfile", ext)
    return ca, crt, key


class Issue15(unittest.TestCase):
    def setUp(self):
        self.addCleanup(kill_leftovers)   # a waiter a failed test left running

    """Connection hardening of issue 15 (items 2, 3, 10, 12, 15)."""

    @classmethod
    def setUpClass(cls):
        cls.ks = KubeSim().start()
        cls.tmp = tempfile.mkdtemp(prefix="mg-sec15-")

    @classmethod
    def tearDownClass(cls):
        cls.ks.stop()

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def token_user(self):
        return "    token: %s\n" % self.ks.admin_token

    def test_tls_server_name(self):
        """tls-server-name is the SNI sent and the name the certificate is
        verified against (client-go's tls.Config.ServerName), while the
        connection goes to the server URL's address and the Host header stays
        its host:port. The front end's certificate names only
        api.sni-test.example, and the URL's host is an IP (no SNI of its
        own): the list and watch of wait-for-job and the one-off requests of
        migrate-runner's record write must all arrive with that SNI."""
        ks, name = self.ks, "api.sni-test.example"
        front = SniFront(self.tmp, name, ks.api_port)
        self.addCleanup(front.close)
        url = "https://127.0.0.1:%d" % front.port

        def cfg(fname, extra):
            return self.write(fname, cluster_kubeconfig(url, front.ca_file, self.token_user(), extra))
        good = cfg("sni-good", "    tls-server-name: %s\n" % name)
        ks.apply(job("sni-watch"))
        p = start([WFJ, "--kubeconfig", good, "--timeout", T("30s"), "sni-watch"])
        try:
            front.wait_for(lambda line: "watch=1" in line and "sni-watch" in line)
            ks.patch_status("batch/v1", "Job", "default", "sni-watch", COMPLETE)
            out, err = p.communicate(timeout=30 * SLOW)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 0, err)
        r = run([MR, "--kubeconfig", good, "--record", "sni-rec", "--record-key", "sni-1", "--", "true"])
        self.assertEqual(r.returncode, 0, r.stderr)
        status, _, body = ks.api("GET", "/api/v1/namespaces/default/configmaps/sni-rec")
        self.assertEqual(status, 200, body)
        self.assertIn("sni-1", json.loads(body)["data"])
        conns, reqs = front.seen()
        self.assertGreaterEqual(len(conns), 2, conns)
        self.assertEqual(set(conns), {name}, "SNI sent")
        self.assertTrue(any("watch=1" in line for line, _ in reqs), reqs)
        self.assertTrue(any(line.startswith("PUT ") or line.startswith("POST ") for line, _ in reqs), reqs)
        self.assertEqual({host for _, host in reqs}, {"127.0.0.1:%d" % front.port}, "Host headers")

        # a name the certificate does not carry fails verification (78; the
        # runner keeps its command's exit code and says the record is not
        # written), and so does the URL's own host: the certificate really
        # names only `name`
        wrong = cfg("sni-wrong", "    tls-server-name: other.sni-test.example\n")
        plain = cfg("sni-none", "")
        for path, tsn in ((wrong, "other.sni-test.example"), (plain, None)):
            for argv, code in (([WFJ, "--kubeconfig", path, "--timeout", "20s", "j"], 78),
                               ([RC, "--kubeconfig", path, "--timeout", "20s", "rel"], 78),
                               ([MR, "--kubeconfig", path, "--record", "r", "--record-key", "k", "--", "true"], 0)):
                with self.subTest(tls_server_name=tsn, binary=os.path.basename(argv[0])):
                    before = len(front.seen()[0])
                    r = run(argv, timeout=60)
                    self.assertEqual(r.returncode, code, r.stderr)
                    self.assertIn("TLS verification", r.stderr)
                    if code == 0:
                        self.assertIn("FAILED to record the outcome", r.stderr)
                    if tsn:
                        self.assertEqual(set(front.seen()[0][before:]), {tsn})

    def test_credentials_in_server_url(self):
        port = self.ks.api_port
        for scheme in ("https", "http"):
            path = self.write("url-creds-" + scheme, cluster_kubeconfig(
                "%s://admin:hunter2@127.0.0.1:%d" % (scheme, port), None))
            for argv in ([WFJ, "--kubeconfig", path, "-v", "j"], [RC, "--kubeconfig", path, "-v", "rel"],
                         [MR, "--kubeconfig", path, "--record", "r", "--record-key", "k", "--", "true"]):
                with self.subTest(scheme=scheme, binary=os.path.basename(argv[0])):
                    r = run(argv)
                    self.assertEqual(r.returncode, 78, r.stderr)
                    self.assertIn("contains credentials", r.stderr)
                    self.assertNotIn("hunter2", r.stdout + r.stderr)

    def fixed_server(self, status):
        handler = type("H%d" % status, (FixedAnswer,), {"status": status})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        return self.write("fixed-%d" % status, cluster_kubeconfig("http://127.0.0.1:%d" % srv.server_address[1]))

    def test_redirect_and_no_content_are_unavailable(self):
        # 200 with an empty body: a list that is never valid (69, not 2)
        for status in (302, 204, 200):
            cfg = self.fixed_server(status)
            for argv in ([WFJ, "--kubeconfig", cfg, "--timeout", "3s", "j"],
                         [WFJ, "--kubeconfig", cfg, "--timeout", "3s", "-l", "app=x"],
                         [RC, "--kubeconfig", cfg, "--timeout", "3s", "rel"]):
                with self.subTest(status=status, argv=argv[3:]):
                    r = run(argv, timeout=60)
                    self.assertEqual(r.returncode, 69, r.stderr)
                    self.assertNotIn("rejected", r.stderr)

    def test_malformed_url_is_a_config_error_at_once(self):
        cfg = self.write("bad-url", cluster_kubeconfig("https://exa mple.invalid:6443", None))
        for argv in ([WFJ, "--kubeconfig", cfg, "--timeout", "30s", "j"],
                     [RC, "--kubeconfig", cfg, "--timeout", "30s", "rel"]):
            with self.subTest(binary=os.path.basename(argv[0])):
                t0 = time.monotonic()
                r = run(argv, timeout=60)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertLess(time.monotonic() - t0, 5 * SLOW)

    def test_fifo_as_ca_path(self):
        fifo = os.path.join(self.tmp, "ca.fifo")
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        cfg = self.write("fifo-ca", cluster_kubeconfig(self.ks.server, None, self.token_user(),
                                                        "    certificate-authority: %s\n" % fifo))
        r = run([WFJ, "--kubeconfig", cfg, "--timeout", "5s", "j"], timeout=20)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("not a regular file", r.stderr)

    def test_api_text_cannot_drive_the_terminal(self):
        # issue 15 item 11: a Job condition message with ESC sequences and a
        # newline that forges a success line
        ks = self.ks
        evil = "boom\x1b]0;pwned\x07\x1b[2J\nwait-for-job: job evil succeeded"
        status = {"failed": 1, "active": 0, "startTime": "2026-01-01T00:00:00Z", "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded\x1b[31m", "message": evil},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded\x1b[31m", "message": evil}]}
        ks.apply(job("evil", status=status))
        r = run([WFJ, "--kubeconfig", ks.kubeconfig, "--timeout", "10s", "evil"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertNotIn("\x1b", r.stderr + r.stdout)
        self.assertNotIn("\x07", r.stderr + r.stdout)
        self.assertFalse(any(line.startswith("wait-for-job: job evil succeeded") for line in r.stderr.splitlines()),
                         r.stderr)
        self.assertIn("\\x1b]0;pwned", r.stderr)

    def plugin_kubeconfig(self, name, script):
        plugin = self.write(name + ".sh", script, 0o755)
        user = ("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                "      command: %s\n      interactiveMode: Never\n" % plugin)
        return self.write(name, cluster_kubeconfig(self.ks.server, self.ks.ca_file, user))

    def test_hanging_exec_plugin_is_bounded_by_timeout(self):
        # it also leaves a child holding its stdout, like a wedged helper
        cfg = self.plugin_kubeconfig("hang", "#!/bin/sh\n(sleep 120) &\nexec sleep 120\n")
        for argv in ([WFJ, "--kubeconfig", cfg, "--timeout", "2s", "j"],
                     [RC, "--kubeconfig", cfg, "--timeout", "2s", "rel"]):
            with self.subTest(binary=os.path.basename(argv[0])):
                t0 = time.monotonic()
                r = run(argv, timeout=60, stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertLess(time.monotonic() - t0, 6 * SLOW)

    @kubesim_only("closes the watch streams (fault injection) to force a re-watch")
    def test_exec_plugin_failing_mid_watch_is_retried(self):
        ks = self.ks
        ks.apply(job("plugin-mid"))
        count = os.path.join(self.tmp, "plugin-count")
        script = ("#!/bin/sh\nn=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s\n"
                  "# calls 3 and 4 fail, as a cloud IAM hiccup would\n"
                  "if [ $n -eq 3 ] || [ $n -eq 4 ]; then echo 'token endpoint: 503' >&2; exit 1; fi\n"
                  "exp=$(date -u -d '+5 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
                  "printf '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
                  "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%%s\"}}' \"$exp\"\n"
                  % (count, count, ks.admin_token))
        cfg = self.plugin_kubeconfig("flaky", script)
        p = start([WFJ, "--kubeconfig", cfg, "--timeout", "30s", "plugin-mid"])
        try:
            ks.wait_for_request(lambda q: q["query"].find("watch=1") >= 0 and "plugin-mid" in q["query"])
            ks.faults(close_watches_now=True)     # the re-watch needs a fresh credential: calls 3, 4 fail
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with open(count) as f:
                    if int(f.read().strip() or 0) >= 5:
                        break
                time.sleep(0.1)
            ks.patch_status("batch/v1", "Job", "default", "plugin-mid", COMPLETE)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 0, err)
        with open(count) as f:
            self.assertGreaterEqual(int(f.read()), 5)

    def test_sigterm_while_exec_plugin_runs_for_the_record(self):
        """A SIGTERM that comes while the exec plugin runs for the record
        write (the command has exited): the write is cut short so that the
        runner is gone within --termination-grace (not --record-timeout),
        keeps the command's exit code, says on stdout and stderr what
        happened, and leaves no plugin process behind. The plugin is slow
        only once the command has run (its marker file exists), and it
        leaves a child in its group, like a wedged helper."""
        ks = self.ks
        d = tempfile.mkdtemp(prefix="slow-plugin-", dir=self.tmp)
        marker, pids = os.path.join(d, "command-done"), os.path.join(d, "plugin-pids")
        script = ("#!/bin/sh\n"
                  "if [ -e %s ]; then\n"
                  "  (exec sleep 120) </dev/null >/dev/null 2>&1 &\n"
                  "  echo $$ $! > %s.tmp && mv %s.tmp %s\n"
                  "  sleep 60 </dev/null >/dev/null 2>&1\n"
                  "fi\n"
                  "# expires at once: every request runs the plugin again\n"
                  "exp=$(date -u -d '+5 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
                  "printf '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
                  "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%%s\"}}' \"$exp\"\n"
                  % (marker, pids, pids, pids, ks.admin_token))
        cfg = self.plugin_kubeconfig("slow-after", script)
        grace = 6 * SLOW  # --termination-grace: the kubelet's SIGKILL comes this long after the SIGTERM
        p = start([MR, "--kubeconfig", cfg, "--record", "sigterm-rec", "--record-key", "plugin-slow",
                   "--record-timeout", T("20s"), "--termination-grace", T("6s"), "--termination-log", "",
                   "--", "sh", "-c", "echo migrated; touch %s; exit 3" % marker], stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15 * SLOW
            while not os.path.exists(pids) and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.path.exists(pids), "the plugin never ran after the command")
            with open(pids) as f:
                plugin_pids = [int(x) for x in f.read().split()]
            self.addCleanup(kill_alive, plugin_pids)  # should the test fail, no leftover either
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=60 * SLOW)
            took = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertLess(took, grace, "exit %.1f s after the SIGTERM, the grace is %.1f s; stderr: %s"
                        % (took, grace, err))
        self.assertEqual(p.returncode, 3, err)
        line = json.loads(out.rstrip("\n").split("\n")[-1])
        self.assertEqual((line["status"], line["reason"], line["exitCode"]), ("failed", "Exited", 3), out)
        # the plugin outlives the grace: the record cannot be there, and the runner must say so
        status, _, body = ks.api("GET", "/api/v1/namespaces/default/configmaps/sigterm-rec")
        self.assertNotIn("plugin-slow", json.loads(body).get("data") or {} if status == 200 else {}, body)
        self.assertIn("FAILED to record the outcome", err)
        for pid in plugin_pids:
            self.assertFalse(process_alive(pid), "plugin process %d left behind" % pid)

    def test_exec_plugin_starts_with_clean_signal_state(self):
        """migrate-runner blocks every signal (it reads them from a signalfd)
        and the tools ignore SIGPIPE; an exec plugin must not inherit either,
        or it and its helpers ignore a plain kill. The plugin writes its
        /proc/self/status signal masks, for a run of each tool."""
        ks = self.ks
        d = tempfile.mkdtemp(prefix="sigmask-plugin-", dir=self.tmp)
        ks.apply(job("sigmask", status=COMPLETE))
        for tool, argv in (("migrate-runner", [MR, "--record", "sigmask-rec", "--record-key", "k", "--", "true"]),
                           ("wait-for-job", [WFJ, "--timeout", T("20s"), "sigmask"])):
            out = os.path.join(d, tool)
            # the credential expires at once: the plugin runs again for each
            # request, also while migrate-runner supervises and after
            script = ("#!/bin/sh\n"
                      "grep -E '^Sig(Blk|Ign):' /proc/self/status | tr -d '\\n\\t' >> %s; echo >> %s\n"
                      "exp=$(date -u -d '+5 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
                      "printf '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
                      "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%%s\"}}' \"$exp\"\n"
                      % (out, out, ks.admin_token))
            cfg = self.plugin_kubeconfig("sigmask-" + tool, script)
            r = run([argv[0], "--kubeconfig", cfg] + argv[1:], timeout=60 * SLOW)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                runs = [re.findall(r"Sig(Blk|Ign):([0-9a-f]+)", line) for line in f.read().split("\n") if line]
            self.assertGreaterEqual(len(runs), 2 if tool == "migrate-runner" else 1, runs)
            for masks in map(dict, runs):
                self.assertEqual(int(masks["Blk"], 16), 0, "%s: plugin started with signals blocked: %s" % (tool, runs))
                self.assertFalse(int(masks["Ign"], 16) & (1 << (signal.SIGPIPE - 1)),
                                 "%s: plugin started with SIGPIPE ignored: %s" % (tool, runs))

    def test_lock_renewal_runs_the_exec_plugin_while_the_command_runs(self):
        """The lock keeper renews on its own thread while the supervisor
        reaps children on the main thread (waitpid(-1)): when the keeper's
        renewal runs the exec plugin (a credential that expires at once), the
        supervisor may reap the plugin first. The renewal must still use the
        plugin's output, not wait for an exit it will never see, fail, and
        terminate the command for a lock it still holds."""
        ks = self.ks
        d = tempfile.mkdtemp(prefix="keeper-plugin-", dir=self.tmp)
        runs = os.path.join(d, "runs")
        script = ("#!/bin/sh\n"
                  "echo run >> %s\n"
                  "exp=$(date -u -d '+5 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
                  "printf '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
                  "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%%s\"}}' \"$exp\"\n"
                  % (runs, ks.admin_token))
        cfg = self.plugin_kubeconfig("keeper-plugin", script)
        r = run([MR, "--kubeconfig", cfg, "--lock", "keeper-plugin-lock", "--lock-lease", T("3s"), "--",
                 "sh", "-c", "sleep %s; echo migrated" % (8 * SLOW)], timeout=120 * SLOW)
        with open(runs) as f:
            n = len(f.read().split())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("migrated", r.stdout)
        self.assertNotIn("could not renew", r.stderr)
        self.assertGreaterEqual(n, 4, "the plugin ran %d times: the renewals did not need it" % n)


if __name__ == "__main__":
    unittest.main()
