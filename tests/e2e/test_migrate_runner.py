"""Black-box tests of the static migrate-runner binary (issue #5).

Exit codes, output pass-through, PID-1 duties, the outcome record, the Lease
lock against kubesim, dependency waits and sidecar quit. Every test asserts
exact exit codes; the runner's final stdout line is its outcome JSON.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from mg import SLOW, KubeSim, ROOT, T, can_unshare, clean_env, in_cluster_cmd, in_cluster_env, run, start
from mr_helpers import MR, FakeSidecar, free_port, listener, outcome

PY = sys.executable


def mr(*args, env=None, timeout=30, **kw):
    return run([MR, *args], env=env, timeout=timeout, **kw)


def wait_line(proc, want, timeout=10):
    """Read proc.stdout lines until one contains want; returns the lines read."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if want in line:
            return lines
    raise AssertionError(f"never saw {want!r}; got {lines!r}")


class Basics(unittest.TestCase):
    def test_exit_passthrough(self):
        for code in (0, 1, 3, 255):
            r = mr("--", "sh", "-c", f"echo out-{code}; exit {code}")
            self.assertEqual(r.returncode, code, r.stderr)
            self.assertTrue(r.stdout.startswith(f"out-{code}\n"))
            o = outcome(r.stdout)
            self.assertEqual(o["exitCode"], code)
            self.assertEqual(o["reason"], "Exited")
            self.assertEqual(o["status"], "succeeded" if code == 0 else "failed")
            self.assertIsNone(o["signal"])
            self.assertNotIn("outputTail", o)

    def test_final_line_is_a_line_of_its_own(self):
        # issue 15 item 5: output without a trailing newline must not glue to the JSON
        r = mr("--", "printf", "no-newline")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("no-newline\n{"), r.stdout)
        self.assertEqual(outcome(r.stdout)["status"], "succeeded")
        r = mr("--", "printf", "ends\\n")
        self.assertTrue(r.stdout.startswith("ends\n{"), r.stdout)

    def test_died_of_signal(self):
        for sig, name in ((signal.SIGKILL, "KILL"), (signal.SIGSEGV, "SEGV")):
            r = mr("--", "sh", "-c", f"kill -{name} $$")
            self.assertEqual(r.returncode, 128 + sig, r.stderr)
            o = outcome(r.stdout)
            self.assertEqual((o["reason"], o["signal"], o["exitCode"]), ("Signaled", int(sig), 128 + sig))

    def test_exec_failures(self):
        r = mr("--", "/nonexistent/migrate")
        self.assertEqual(r.returncode, 127)
        self.assertIn("cannot execute '/nonexistent/migrate': command not found", r.stderr)
        self.assertEqual(outcome(r.stdout)["reason"], "ExecFailed")
        r = mr("--", "no-such-command-anywhere")
        self.assertEqual(r.returncode, 127)
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
            f.write("#!/bin/sh\necho hi\n")
            f.flush()
            os.chmod(f.name, 0o644)
            r = mr("--", f.name)
            self.assertEqual(r.returncode, 126)
            self.assertIn("permission denied", r.stderr)
            self.assertEqual(outcome(r.stdout)["exitCode"], 126)

    def test_options_stop_at_command(self):
        # the command's own flags are not ours, with or without "--"
        r = mr("sh", "-c", "echo $0 $1", "--timeout", "x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("--timeout x\n"))


class Flags(unittest.TestCase):
    def usage(self, *args, env=None):
        r = mr(*args, env=env)
        self.assertEqual(r.returncode, 64, (args, r.stderr))
        lines = r.stderr.strip().split("\n")
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(lines[0].startswith("migrate-runner: "))
        self.assertEqual(lines[1], "Try 'migrate-runner --help' for more information.")
        self.assertEqual(r.stdout, "")
        return lines[0]

    def test_bad_flags(self):
        self.assertIn("unknown option '--bogus'", self.usage("--bogus", "--", "true"))
        self.assertIn("unknown option '-x'", self.usage("-x", "--", "true"))
        self.assertIn("needs a value", self.usage("--timeout"))
        self.assertIn("invalid --timeout '5x'", self.usage("--timeout", "5x", "--", "true"))
        self.assertIn("invalid --grace '-1s'", self.usage("--grace", "-1s", "--", "true"))
        self.assertIn("no command given", self.usage())
        self.assertIn("no command given", self.usage("--timeout", "1m", "--"))
        self.assertIn("invalid --wait-tcp 'db'", self.usage("--wait-tcp", "db", "--", "true"))
        self.assertIn("invalid --wait-tcp", self.usage("--wait-tcp", "db:99999", "--", "true"))
        self.assertIn("--record needs a key", self.usage("--record", "outcomes", "--", "true"))
        self.assertIn("invalid --record 'Bad_Name'", self.usage("--record", "Bad_Name", "--record-key", "k",
                                                                  "--", "true"))
        self.assertIn("invalid --lock", self.usage("--lock", "a/b", "--", "true"))
        self.assertIn("invalid --sidecar 'envoy'", self.usage("--sidecar", "envoy", "--", "true"))
        self.assertIn("invalid --tail-lines", self.usage("--tail-lines", "-1", "--", "true"))
        self.assertIn("invalid --lock-lease", self.usage("--lock-lease", "1s", "--", "true"))
        self.assertIn("invalid --log-format", self.usage("--log-format", "xml", "--", "true"))
        self.assertIn("--sidecar-ready-url needs --sidecar",
                      self.usage("--sidecar-ready-url", "http://127.0.0.1:1/", "--", "true"))
        self.assertIn("invalid MR_TIMEOUT 'soon'", self.usage("--", "true", env=clean_env({"MR_TIMEOUT": "soon"})))
        self.assertIn("invalid MR_WAIT_TCP 'b'", self.usage("--", "true", env=clean_env({"MR_WAIT_TCP": "a:1,b"})))

    def test_help_version(self):
        r = mr("--help")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "")
        self.assertTrue(r.stdout.startswith("Usage: migrate-runner [OPTIONS] -- COMMAND [ARG...]"))
        r2 = mr("-h")
        self.assertEqual(r2.stdout, r.stdout)
        v = mr("--version")
        self.assertEqual(v.returncode, 0)
        self.assertRegex(v.stdout, r"^migrate-runner \d+\.\d+\.\d+\n$")

    def test_man_page_documents_every_option(self):
        help_text = mr("--help").stdout
        opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])\b", help_text))
        self.assertIn("--lock", opts)
        with open(os.path.join(ROOT, "migrate-runner", "migrate-runner.1")) as f:
            src = f.read()
        # mdoc: "Fl \-timeout" renders as --timeout, "Fl n" as -n
        man = re.sub(r"\bFl (\S+)", lambda m: "-" + m.group(1), src).replace("\\-", "-")
        missing = sorted(o for o in opts if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", man))
        self.assertEqual(missing, [], "options in --help missing from the man page")
        self.assertIn("EXIT STATUS", man)
        for code in ("124", "126", "127", "75", "64", "78"):
            self.assertIn(code, man)

    def test_env_equivalents(self):
        with tempfile.TemporaryDirectory() as d:
            tl = os.path.join(d, "tl")
            env = clean_env({"MR_TIMEOUT": "300ms", "MR_GRACE": "0", "MR_TERMINATION_LOG": tl,
                             "JOB_NAME": "app-migrate-7", "POD_NAME": "app-migrate-7-abcde", "MR_ATTEMPT": "4"})
            r = mr("--", "sleep", "5", env=env)
            self.assertEqual(r.returncode, 124)
            o = outcome(r.stdout)
            self.assertEqual((o["reason"], o["job"], o["pod"], o["attempt"]),
                             ("TimedOut", "app-migrate-7", "app-migrate-7-abcde", 4))
            with open(tl) as f:
                self.assertEqual(json.load(f)["reason"], "TimedOut")
            # a flag beats the environment
            r = mr("--timeout", "0", "--", "true", env=env)
            self.assertEqual(r.returncode, 0)

    def test_no_kubernetes_is_a_config_error(self):
        for args in (("--lock", "migrations"), ("--record", "outcomes", "--record-key", "k")):
            t0 = time.monotonic()
            r = mr(*args, "--", "sh", "-c", "echo must-not-run")
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertLess(time.monotonic() - t0, 5 * SLOW)
            self.assertNotIn("must-not-run", r.stdout)
            self.assertIn("needs the Kubernetes API", r.stderr)
            self.assertEqual(outcome(r.stdout)["reason"], "ConfigError")
        # without --lock/--record the API is not needed at all
        r = mr("--", "true")
        self.assertEqual(r.returncode, 0)


class Supervisor(unittest.TestCase):
    def test_signals_forwarded_to_the_group(self):
        with tempfile.TemporaryDirectory() as d:
            script = (
                f'cd {d}; '
                '(trap "echo bg-usr1 >> log" USR1; trap "echo bg-hup >> log" HUP; '
                ' trap "echo bg-term >> log; exit 0" TERM; '
                ' while :; do sleep 0.05; done) & '
                'trap "echo main-usr1 >> log" USR1; trap "echo main-hup >> log" HUP; '
                'trap "echo main-urg >> log" URG; '
                'trap "echo main-term >> log; wait; exit 42" TERM; '
                'echo ready; while :; do sleep 0.05; done')
            p = start([MR, "--", "sh", "-c", script])
            wait_line(p, "ready")
            time.sleep(0.2)
            for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGURG):
                p.send_signal(sig)
                time.sleep(0.3)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 42, err)
            with open(os.path.join(d, "log")) as f:
                got = f.read().split()
        for want in ("bg-usr1", "bg-hup", "main-usr1", "main-hup", "main-term", "bg-term"):
            self.assertIn(want, got)
        self.assertNotIn("main-urg", got)  # SIGURG is never forwarded (scuttle#44)

    @unittest.skipUnless(can_unshare(), "needs root and unshare")
    def test_pid1_reaps_orphans(self):
        script = ('echo "pid=$$ ppid=$PPID"; '
                  'sh -c "sleep 0.2 & sleep 0.2 & exit 0"; '  # two orphans re-parented to PID 1
                  'sleep 0.8; '
                  'echo zombies=$(grep -s "^State:[[:space:]]*Z" /proc/[0-9]*/status | wc -l)')
        r = run(["unshare", "--pid", "--fork", "--mount-proc", MR, "--", "sh", "-c", script])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pid=2 ppid=1", r.stdout)  # the runner is PID 1
        self.assertIn("zombies=0", r.stdout)

    @unittest.skipUnless(can_unshare(), "needs root and unshare")
    def test_pid1_waits_for_other_children(self):
        # the command exits at once; a child it left needs 0.5 s for its shutdown
        script = ('(trap "sleep 0.5; echo cleanup-done; exit 0" TERM; while :; do sleep 0.05; done) & '
                  'sleep 0.2; exit 5')
        r = run(["unshare", "--pid", "--fork", "--mount-proc", MR, "--grace", "5s", "--", "sh", "-c", script])
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("cleanup-done", r.stdout)
        self.assertLess(r.stdout.index("cleanup-done"), r.stdout.index('{"status"'))

    def test_subreaper_waits_for_grandchildren(self):
        # not PID 1: a double-forked grandchild is still waited for
        script = ('sh -c "(trap \\"sleep 0.3; echo grandchild-done; exit 0\\" TERM; '
                  'while :; do sleep 0.05; done) &"; sleep 0.2; exit 0')
        r = mr("--", "sh", "-c", script)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("grandchild-done", r.stdout)

    def test_grace_then_sigkill(self):
        p = start([MR, "--grace", "1s", "--", "sh", "-c", 'trap "" TERM; echo ready; while :; do sleep 0.05; done'])
        wait_line(p, "ready")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 137, err)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 4 * SLOW)
        self.assertIn("SIGKILL", err)
        self.assertEqual(outcome(out)["signal"], 9)

    def test_timeout(self):
        t0 = time.monotonic()
        r = mr("--timeout", "300ms", "--grace", "2s", "--", "sleep", "10")
        self.assertEqual(r.returncode, 124)
        self.assertLess(time.monotonic() - t0, 2 * SLOW)  # sleep dies of the SIGTERM, no need for the grace
        o = outcome(r.stdout)
        self.assertEqual((o["reason"], o["exitCode"], o["signal"], o["status"]), ("TimedOut", 124, 15, "failed"))
        self.assertIn("timeout", r.stderr)
        # ignoring SIGTERM only buys the grace
        t0 = time.monotonic()
        r = mr("--timeout", "300ms", "--grace", "500ms", "--", "sh", "-c", 'trap "" TERM; sleep 10')
        self.assertEqual(r.returncode, 124)
        self.assertLess(time.monotonic() - t0, 3 * SLOW)
        self.assertIn("SIGKILL", r.stderr)

    def test_output_integrity_under_load(self):
        gen = ("import sys\n"
               "o, e = sys.stdout.buffer, sys.stderr.buffer\n"
               "for i in range(60000):\n"
               "    o.write(b'out %08d ' % i + b'x' * (i % 97) + b'\\n')\n"
               "    e.write(b'err %08d ' % i + b'y' * (i % 89) + b'\\n')\n"
               "    if i % 1000 == 0: o.flush(); e.flush()\n"
               "o.write(b'no newline at the end')\n")
        want_out = b"".join(b"out %08d " % i + b"x" * (i % 97) + b"\n" for i in range(60000)) + \
            b"no newline at the end"
        want_err = b"".join(b"err %08d " % i + b"y" * (i % 89) + b"\n" for i in range(60000))
        with tempfile.TemporaryDirectory() as d:
            tl = os.path.join(d, "tl")
            r = subprocess.run([MR, "--termination-log", tl, "--", PY, "-c", gen], capture_output=True,
                               timeout=60, env=clean_env())
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            self.assertTrue(r.stdout.startswith(want_out))
            self.assertEqual(json.loads(r.stdout[len(want_out):])["status"], "succeeded")
            self.assertEqual(r.stderr, want_err)
            with open(tl) as f:
                tail = json.load(f)["outputTail"].split("\n")
            self.assertEqual(tail[-1], "no newline at the end")
            # 20 whole lines of either stream, never spliced together
            self.assertEqual(len(tail), 20)
            known = set((want_out + b"\n" + want_err).decode().split("\n"))
            for line in tail:
                self.assertIn(line, known)

    def test_big_output_passes_whole_with_an_exact_tail(self):
        # the zero-copy path (tee + splice): every byte through, the tail exactly the last lines
        with tempfile.TemporaryDirectory() as d:
            tl = os.path.join(d, "tl")
            r = subprocess.run([MR, "--termination-log", tl, "--", "seq", "1", "3000000"], capture_output=True,
                               timeout=120, env=clean_env())
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            want = b"".join(b"%d\n" % i for i in range(1, 3000001))
            self.assertTrue(r.stdout.startswith(want))
            self.assertEqual(json.loads(r.stdout[len(want):])["status"], "succeeded")
            with open(tl) as f:
                tail = json.load(f)["outputTail"]
            self.assertEqual(tail, "\n".join(str(i) for i in range(2999981, 3000001)))

    def test_stalled_stdout_reader_never_freezes_the_loop(self):
        # issue 15 item 7: nobody reads our stdout; --timeout must still fire on time
        t0 = time.monotonic()
        p = start([MR, "--timeout", T("1s"), "--grace", "300ms", "--", "sh", "-c",
                   "head -c 3000000 /dev/zero; sleep 30"])
        try:
            p.wait(timeout=15 * SLOW)
            took = time.monotonic() - t0
            err = p.stderr.read()
        finally:
            if p.poll() is None:
                p.kill()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(p.returncode, 124, err)
        self.assertLess(took, (1 + 0.3 + 2 + 1 + 1.5) * SLOW)  # timeout, grace, stall bound, outcome line
        self.assertIn("dropped", err)

    def test_broken_stdout_no_sigpipe_for_the_command(self):
        # issue 15 item 8: our stdout's reader is gone; the command must not die of SIGPIPE
        r = subprocess.run(f"{MR} -- sh -c 'echo one; sleep 0.3; echo two; sleep 0.3; exit 5' | true; "
                           "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True,
                           text=True, timeout=30, env=clean_env())
        self.assertEqual(r.stdout.strip(), "5", r.stderr)

    def test_termination_log_and_cap(self):
        secret = "postgres://app:S3CRET-PASSWORD@db:5432/app"
        with tempfile.TemporaryDirectory() as d:
            tl = os.path.join(d, "termination-log")
            script = ('for i in $(seq 1 3000); do printf "line %d \\033[1mbold\\033[0m \\377 %s\\n" $i '
                      '"$(printf "%0100d" 0)"; done; echo final line; exit 3')
            # 3000 subshells: slow on a loaded machine, slower under sanitizers
            r = mr("--termination-log", tl, "--tail-lines", "50", "--", "sh", "-c", script, "sh", secret,
                   env=clean_env({"JOB_NAME": "app-migrate-3", "POD_NAME": "app-migrate-3-pod"}), errors="replace",
                   timeout=120)
            self.assertEqual(r.returncode, 3)
            raw = open(tl, "rb").read()
            self.assertLessEqual(len(raw), 4096)
            self.assertGreater(len(raw), 3000)
            o = json.loads(raw)
            self.assertEqual((o["status"], o["reason"], o["exitCode"], o["job"], o["pod"], o["attempt"]),
                             ("failed", "Exited", 3, "app-migrate-3", "app-migrate-3-pod", 1))
            self.assertTrue(o["outputTail"].endswith("final line"))
            self.assertIn("bold\u001b[0m ? 000", o["outputTail"])  # invalid UTF-8 became '?'
            self.assertIn("\\u001b", raw.decode())
            for k in ("startedAt", "finishedAt"):
                self.assertRegex(o[k], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertIsInstance(o["durationSeconds"], (int, float))
            self.assertNotIn("S3CRET", raw.decode())
            self.assertNotIn("S3CRET", r.stdout.split("\n")[-2])
            # the default path is used only when it exists; an unwritable explicit one is a warning
            r = mr("--termination-log", os.path.join(d, "no", "such", "dir"), "--", "true")
            self.assertEqual(r.returncode, 0)
            self.assertIn("cannot write the termination log", r.stderr)


class DependencyWait(unittest.TestCase):
    def test_wait_tcp_success(self):
        s, port = listener()
        with s:
            r = mr("--wait-tcp", f"127.0.0.1:{port}", "--wait-tcp", f"localhost:{port}", "--", "echo", "migrated")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"waiting for 127.0.0.1:{port}", r.stderr)
        self.assertIn("migrated", r.stdout)

    def test_wait_tcp_comes_up_later(self):
        port = free_port()
        holder = {}

        def later():
            time.sleep(0.8)
            import socket
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(4)
            holder["s"] = s

        t = threading.Thread(target=later)
        t.start()
        t0 = time.monotonic()
        r = mr("--wait-tcp", f"127.0.0.1:{port}", "--wait-timeout", "10s", "--", "true")
        t.join()
        holder["s"].close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(time.monotonic() - t0, 0.7)
        self.assertIn("accepts connections", r.stderr)

    def test_wait_tcp_timeout(self):
        port = free_port()
        t0 = time.monotonic()
        r = mr("--wait-tcp", f"127.0.0.1:{port}", "--wait-timeout", "1s", "--", "sh", "-c", "echo must-not-run")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertLess(time.monotonic() - t0, 4 * SLOW)
        self.assertNotIn("must-not-run", r.stdout)
        self.assertIn(f"127.0.0.1:{port} did not accept a TCP connection in time", r.stderr)
        o = outcome(r.stdout)
        self.assertEqual((o["reason"], o["exitCode"], o["status"]), ("DependencyTimeout", 75, "failed"))


class Sidecar(unittest.TestCase):
    def test_quit_on_every_exit_path(self):
        port = free_port()
        cases = [
            ("success", ["--", "true"], 0),
            ("failure", ["--", "sh", "-c", "exit 3"], 3),
            ("exec failure", ["--", "/nonexistent"], 127),
            ("dependency timeout", ["--wait-tcp", f"127.0.0.1:{port}", "--wait-timeout", "300ms", "--", "true"], 75),
            ("config error", ["--lock", "mig", "--", "true"], 78),
            ("usage error", ["--bogus", "--", "true"], 64),
            ("timeout", ["--timeout", "200ms", "--", "sleep", "5"], 124),
        ]
        with FakeSidecar() as sc:
            for name, args, code in cases:
                before = len(sc.posts())
                r = mr("--sidecar", sc.url + "/quitquitquit", *args)
                self.assertEqual(r.returncode, code, (name, r.stderr))
                self.assertEqual(sc.posts()[before:], ["/quitquitquit"], name)
            # a signal before the command started (while waiting for the database)
            before = len(sc.posts())
            p = start([MR, "--sidecar", sc.url + "/quitquitquit", "--wait-tcp", f"127.0.0.1:{port}", "--",
                       "sh", "-c", "echo must-not-run"])
            deadline = time.monotonic() + 5
            err = ""
            while "waiting for" not in err and time.monotonic() < deadline:
                err += os.read(p.stderr.fileno(), 4096).decode()
            p.send_signal(signal.SIGTERM)
            out, err2 = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 143, err + err2)
            self.assertNotIn("must-not-run", out)
            self.assertEqual(outcome(out)["reason"], "Signaled")
            self.assertEqual(sc.posts()[before:], ["/quitquitquit"])
            # never a credential
            for h in sc.headers():
                self.assertNotIn("Authorization", h)

    def test_wait_ready_first(self):
        with FakeSidecar(not_ready=3) as sc:
            r = mr("--sidecar", sc.url + "/quit", "--sidecar-ready-url", sc.url + "/ready", "--", "echo", "ran")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sc.gets(), ["/ready"] * 4)
            self.assertEqual(sc.posts(), ["/quit"])
            self.assertIn("sidecar is ready", r.stderr)
        with FakeSidecar(not_ready=1000) as sc:
            r = mr("--sidecar", sc.url + "/quit", "--sidecar-ready-url", sc.url + "/ready", "--wait-timeout", "500ms",
                   "--", "echo", "ran")
            self.assertEqual(r.returncode, 75, r.stderr)
            self.assertNotIn("ran", r.stdout.split("\n")[0])
            self.assertEqual(outcome(r.stdout)["reason"], "DependencyTimeout")
            self.assertEqual(sc.posts(), ["/quit"])

    def test_disabled_or_absent_endpoint_is_a_warning(self):
        with FakeSidecar(quit_status=404) as sc:
            r = mr("--sidecar", sc.url + "/shutdown", "--", "sh", "-c", "exit 2")
            self.assertEqual(r.returncode, 2)
            self.assertIn("warning", r.stderr)
            self.assertIn("HTTP 404", r.stderr)
            self.assertEqual(sc.posts(), ["/shutdown"])  # a 4xx is not retried
        t0 = time.monotonic()
        r = mr("--sidecar", f"http://127.0.0.1:{free_port()}/quitquitquit", "--", "true")
        self.assertEqual(r.returncode, 0)
        self.assertIn("could not ask the url sidecar to quit", r.stderr)
        self.assertLess(time.monotonic() - t0, 5 * SLOW)

    def test_istio_well_known_port(self):
        try:
            sc = FakeSidecar(port=15020)
        except OSError:
            self.skipTest("port 15020 is in use")
        with sc:
            r = mr("--sidecar", "istio", "--", "true")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sc.posts(), ["/quitquitquit"])


class WithKubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ks = KubeSim().start()

    @classmethod
    def tearDownClass(cls):
        cls.ks.stop()

    def env(self, **extra):
        return clean_env({"KUBECONFIG": self.ks.kubeconfig, **extra})

    def cm_data(self, name):
        for o in self.ks.objects(kind="ConfigMap", namespace="default"):
            if o["metadata"]["name"] == name:
                return o.get("data", {})
        return None

    def lease(self, name):
        for o in self.ks.objects(kind="Lease", namespace="default"):
            if o["metadata"]["name"] == name:
                return o
        return None

    def test_record_created_and_updated(self):
        secret = "S3CRET-TOKEN-VALUE"
        env = self.env(JOB_NAME="app-migrate-1", POD_NAME="app-migrate-1-aaaaa")
        r = mr("--record", "rec1", "--termination-log", "", "--", "sh", "-c", "echo failing >&2; exit 3", "sh",
               secret, env=env)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("recorded the outcome in ConfigMap default/rec1 key app-migrate-1", r.stderr)
        rec = json.loads(self.cm_data("rec1")["app-migrate-1"])
        self.assertEqual((rec["status"], rec["reason"], rec["exitCode"], rec["attempt"], rec["pod"]),
                         ("failed", "Exited", 3, 1, "app-migrate-1-aaaaa"))
        self.assertEqual(rec["outputTail"], "failing")
        # the retried pod of the same Job: attempt 2, succeeded
        env["POD_NAME"] = "app-migrate-1-bbbbb"
        r = mr("--record", "rec1", "--", "echo", "ok", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        rec = json.loads(self.cm_data("rec1")["app-migrate-1"])
        self.assertEqual((rec["status"], rec["attempt"], rec["pod"], rec["outputTail"]),
                         ("succeeded", 2, "app-migrate-1-bbbbb", "ok"))
        # another Job's key is added, --record-key wins over JOB_NAME
        r = mr("--record", "rec1", "--record-key", "other-key", "--", "true", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(self.cm_data("rec1")), ["app-migrate-1", "other-key"])
        self.assertNotIn(secret, json.dumps(self.cm_data("rec1")))

    def test_record_tail_redacted_and_optional(self):
        # issue 15 item 14: obvious secrets masked; the tail can be turned off
        env = self.env()
        script = "echo connecting to postgres://app:hunter2@db/app; echo PGPASSWORD=pw123; exit 2"
        r = mr("--record", "rec4", "--record-key", "k1", "--termination-log", "", "--", "sh", "-c", script, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        tail = json.loads(self.cm_data("rec4")["k1"])["outputTail"]
        self.assertEqual(tail, "connecting to postgres://app:***@db/app\nPGPASSWORD=***")
        r = mr("--record", "rec4", "--record-key", "k2", "--tail-lines", "0", "--", "sh", "-c", script, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(json.loads(self.cm_data("rec4")["k2"])["outputTail"], "")
        r = mr("--record", "rec4", "--record-key", "k3", "--", "sh", "-c", script,
               env=self.env(MR_TAIL_LINES="0"))
        self.assertEqual(json.loads(self.cm_data("rec4")["k3"])["outputTail"], "")

    def test_record_on_failed_paths_and_pruning(self):
        env = self.env()
        for i in range(4):
            r = mr("--record", "rec2", "--record-key", f"job-{i}", "--record-max-keys", "3", "--",
                   "sh", "-c", f"exit {i}", env=env)
            self.assertEqual(r.returncode, i)
            time.sleep(1.05 if i < 3 else 0)  # finishedAt has second precision
        self.assertEqual(sorted(self.cm_data("rec2")), ["job-1", "job-2", "job-3"])
        r = mr("--record", "rec2", "--record-key", "job-3", "--record-max-keys", "3", "--", "/nonexistent", env=env)
        self.assertEqual(r.returncode, 127)
        self.assertEqual(json.loads(self.cm_data("rec2")["job-3"])["reason"], "ExecFailed")

    def test_record_failure_does_not_change_exit_code(self):
        # a user that may do nothing: every ConfigMap request is 403
        token = self.ks.token("nobody", rules=[])
        with open(self.ks.kubeconfig) as f:
            kc = re.sub(r"(?m)^(\s*token:).*$", lambda m: m.group(1) + " " + token, f.read())
        with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as f:
            f.write(kc)
            f.flush()
            r = mr("--kubeconfig", f.name, "--record", "rec3", "--record-key", "k", "--", "sh", "-c", "exit 4")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("FAILED to record the outcome in ConfigMap default/rec3 key k", r.stderr)
        self.assertIn("forbidden", r.stderr)
        self.assertIsNone(self.cm_data("rec3"))

    def test_lock_exclusive(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "log")
            body = f'echo "start $POD_NAME" >> {log}; sleep 0.05; echo "end $POD_NAME" >> {log}'
            for rnd in range(20):
                procs = [start([MR, "--lock", "excl", "--lock-lease", "3s", "--lock-timeout", "20s", "--",
                                "sh", "-c", body], env=self.env(POD_NAME=f"pod-{who}"))
                         for who in "ab"]
                for p in procs:
                    out, err = p.communicate(timeout=30)
                    self.assertEqual(p.returncode, 0, (rnd, err))
            with open(log) as f:
                lines = f.read().split("\n")[:-1]
        self.assertEqual(len(lines), 80)
        for i in range(0, 80, 2):
            start_who, end_who = lines[i].split(), lines[i + 1].split()
            self.assertEqual(start_who[0], "start", lines[i:i + 2])
            self.assertEqual(end_who, ["end", start_who[1]], f"overlap at line {i}: {lines[i:i + 2]}")
        lease = self.lease("excl")
        self.assertNotIn("holderIdentity", lease["spec"])  # released
        self.assertGreaterEqual(lease["spec"]["leaseTransitions"], 39)

    def test_lock_timeout_and_crashed_holder(self):
        a = start([MR, "--lock", "crash", "--lock-lease", "3s", "--", "sh", "-c", "echo pgid=$$; sleep 60"],
                  env=self.env(POD_NAME="pod-a"))
        pgid = int(wait_line(a, "pgid=")[-1].strip().split("=")[1])
        try:
            # a second runner gives up after --lock-timeout with 75
            r = mr("--lock", "crash", "--lock-lease", "3s", "--lock-timeout", "1500ms", "--", "echo", "must-not-run",
                   env=self.env(POD_NAME="pod-b"))
            self.assertEqual(r.returncode, 75, r.stderr)
            self.assertNotIn("must-not-run", r.stdout)
            self.assertIn("held by pod-a", r.stderr)
            self.assertEqual(outcome(r.stdout)["reason"], "LockTimeout")
            # the holder crashes hard: its lease stays behind
            a.kill()
            os.killpg(pgid, signal.SIGKILL)
            a.communicate()
            self.assertEqual(self.lease("crash")["spec"]["holderIdentity"], "pod-a")
            t0 = time.monotonic()
            r = mr("--lock", "crash", "--lock-lease", "3s", "--lock-timeout", "20s", "--", "echo", "migrated",
                   env=self.env(POD_NAME="pod-b"))
            took = time.monotonic() - t0
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("migrated", r.stdout)
            self.assertIn("taking over", r.stderr)
            self.assertGreaterEqual(took, 2.9)  # a full lease duration on our own clock
            self.assertLess(took, 8 * SLOW)
            self.assertEqual(self.lease("crash")["spec"]["leaseTransitions"], 1)
        finally:
            if a.poll() is None:
                a.kill()
                a.communicate()

    def test_lease_not_there_yet_and_not_creatable(self):
        # The chart creates the Lease and grants only get/update on it by name;
        # Helm applies it a moment after the Job. Absent + 403 on create must
        # mean "wait for it" (until --lock-timeout), not exit 78 at once.
        tok = self.ks.token("system:serviceaccount:default:late-lease", rules=[
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"]}])
        kc = os.path.join(self.ks.state_dir, "late-lease.kubeconfig")
        with open(self.ks.kubeconfig) as f, open(kc, "w") as g:
            g.write(f.read().replace(self.ks.admin_token, tok))
        p = start([MR, "--lock", "late", "--lock-timeout", T("20s"), "--", "echo", "migrated"],
                  env=clean_env({"KUBECONFIG": kc, "POD_NAME": "pod-a"}))
        try:
            seen = []
            for line in p.stderr:      # (wait_line reads stdout)
                seen.append(line)
                if "creating it is not allowed" in line:
                    break
            self.assertIn("creating it is not allowed", "".join(seen))
            self.ks.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": "late", "namespace": "default"}, "spec": {}})
            out, err = p.communicate(timeout=30 * SLOW)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 0, "".join(seen) + err)
        self.assertIn("migrated", out)
        self.assertNotIn("holderIdentity", self.lease("late")["spec"])     # taken, then released

    def test_lost_lease_terminates_the_command(self):
        p = start([MR, "--lock", "lost", "--lock-lease", "3s", "--", "sh", "-c", "echo running; sleep 30"],
                  env=self.env(POD_NAME="pod-a"))
        try:
            wait_line(p, "running")
            lease = self.lease("lost")
            lease["spec"]["holderIdentity"] = "intruder"
            code, _, body = self.ks.api("PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/lost", lease)
            self.assertEqual(code, 200, body)
            out, err = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
        # issue 15 item 4: recorded as a lost lock, retriable, not a plain "Signaled 143"
        self.assertEqual(p.returncode, 75, err)
        self.assertIn("lost the lock lost (now held by intruder)", err)
        o = outcome(out)
        self.assertEqual((o["reason"], o["status"], o["signal"]), ("LockLost", "failed", 15))
        self.assertEqual(self.lease("lost")["spec"]["holderIdentity"], "intruder")  # not released by us

    @unittest.skipUnless(can_unshare(), "needs root and unshare")
    def test_in_cluster_rbac(self):
        env = in_cluster_env(self.ks, {"JOB_NAME": "app-migrate-9", "POD_NAME": "app-migrate-9-x"})
        r = run(in_cluster_cmd(self.ks, [MR, "--record", "rec-ic", "--lock", "lock-ic", "--", "true"]), env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(self.cm_data("rec-ic")["app-migrate-9"])["status"], "succeeded")
        # a service account without leases: a configuration error, with the RBAC hint
        self.ks.token(self.ks.sa_user, rules=[{"apiGroups": [""], "resources": ["configmaps"],
                                               "verbs": ["get", "create", "update"]}])
        try:
            r = run(in_cluster_cmd(self.ks, [MR, "--record", "rec-ic", "--lock", "lock-ic2", "--", "true"]), env=env)
        finally:
            self.ks.control("POST", "/tokens", {"user": self.ks.sa_user, "rules": None})  # full access again
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("leases.coordination.k8s.io", r.stderr)


class OutcomeNeverLost(unittest.TestCase):
    """Issue 15 item 4: the local copies first and at once; the record within a budget; then the lock."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.ks = KubeSim(state_dir=self.dir).start()
        self.tlog = os.path.join(self.dir, "termination-log")
        self.go = os.path.join(self.dir, "go")

    def tearDown(self):
        self.ks.stop()
        subprocess.run(["rm", "-rf", self.dir])

    def start_runner(self, *opts, script=None):
        script = script or f'echo started; while [ ! -e {self.go} ]; do sleep 0.02; done; exit 3'
        env = clean_env({"KUBECONFIG": self.ks.kubeconfig, "JOB_NAME": "app-migrate-1", "POD_NAME": "pod-a"})
        return start([MR, "--record", "rec", "--lock", "lk", "--termination-log", self.tlog, *opts,
                      "--", "sh", "-c", script], env=env)

    def wait_file(self, path, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path) and os.path.getsize(path) > 0:
                return time.monotonic()
            time.sleep(0.01)
        return None

    def test_api_down_local_copies_at_once(self):
        p = self.start_runner("--record-timeout", T("3s"))
        try:
            wait_line(p, "started")
            self.ks.proc.kill()  # the API server is gone, connections refused
            self.ks.proc.wait()
            t0 = time.monotonic()
            open(self.go, "w").close()
            seen = self.wait_file(self.tlog, 5 * SLOW)
            self.assertIsNotNone(seen, "no termination message")
            self.assertLess(seen - t0, 1.0 * SLOW)
            with open(self.tlog) as f:
                self.assertEqual(json.load(f)["exitCode"], 3)
            # the stdout line is there at once as well, before the record gives up
            line = p.stdout.readline()
            self.assertLess(time.monotonic() - t0, 1.0 * SLOW)
            self.assertEqual(json.loads(line)["exitCode"], 3)
            out, err = p.communicate(timeout=20 * SLOW)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 3, err)
        self.assertIn("FAILED to record the outcome", err)
        self.assertLess(time.monotonic() - t0, (3 + 3 + 2) * SLOW)  # record budget, release, slack

    def test_lease_not_renewable_is_a_lost_lock(self):
        # the API server goes away for good: the Lease cannot be renewed, the command is stopped
        # before a successor could take over, and the outcome says LockLost (exit 75), locally at once
        p = self.start_runner("--lock-lease", "3s", "--record-timeout", T("1s"),
                              script="echo started; sleep 60")
        try:
            wait_line(p, "started")
            self.ks.proc.kill()
            self.ks.proc.wait()
            t0 = time.monotonic()
            out, err = p.communicate(timeout=30 * SLOW)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 75, err)
        self.assertLess(time.monotonic() - t0, 3 + 1 + 3 + 2 * SLOW)  # the lease, record, release, slack
        self.assertIn("could not renew the lock lk", err)
        with open(self.tlog) as f:
            o = json.load(f)
        self.assertEqual((o["reason"], o["exitCode"], o["signal"]), ("LockLost", 75, 15))
        self.assertEqual(outcome(out)["reason"], "LockLost")

    def test_sigterm_with_lock_api_down_within_grace(self):
        # the kubelet SIGKILLs --termination-grace after its SIGTERM: everything must be done by then
        p = self.start_runner("--grace", T("1s"), "--termination-grace", T("5s"),
                              script="trap 'sleep 0.5; exit 7' TERM; echo started; sleep 60 & wait")
        try:
            wait_line(p, "started")
            self.ks.proc.kill()
            self.ks.proc.wait()
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            seen = self.wait_file(self.tlog, 5 * SLOW)
            self.assertIsNotNone(seen, "no termination message")
            self.assertLess(seen - t0, 2.0 * SLOW)  # the command's 0.5 s, then at once
            out, err = p.communicate(timeout=20 * SLOW)
            took = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 7, err)
        self.assertLess(took, 5.0 * SLOW)  # before the kubelet's SIGKILL
        self.assertEqual(outcome(out)["exitCode"], 7)


if __name__ == "__main__":
    unittest.main()
