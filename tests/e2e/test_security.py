"""Security checks of all three static binaries (issue #9).

- Bearer tokens never appear in output (even with -v), in migrate-runner's
  record or in its termination message; nor do the command's arguments.
- A TLS verification failure is fatal, says so clearly, and exits 78.
- A kubeconfig that would send a bearer token over plain http:// is refused
  (78) before any request is made.
"""

import json
import os
import socket
import tempfile
import threading
import unittest

from mg import BIN, COMPLETE, KubeSim, clean_env, job, run

WFJ, MR, RC = BIN("wait-for-job"), BIN("migrate-runner"), BIN("release-check")


def kubeconfig_text(server, token, ca_line):
    return ("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
            "clusters:\n- name: c\n  cluster:\n    server: %s\n%s"
            "users:\n- name: u\n  user:\n    token: %s\n"
            "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: default}\n") % (server, ca_line, token)


class Security(unittest.TestCase):
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
            [RC, "--kubeconfig", ks.kubeconfig, "--output", "json", "--timeout", "1s", "nothing"],
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


if __name__ == "__main__":
    unittest.main()
