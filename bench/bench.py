#!/usr/bin/env python3
"""Side-by-side benchmarks of migration-gate against the tools users pick
otherwise, on one kubesim, interleaved, several rounds; medians and ratios.

    python3 bench/bench.py [--rounds N] [--idle SECONDS] [--suite wait ...] [--out DIR]

Every figure is process-level and can be rerun by anyone: wall time from the
control-API call that changes the object to the waiter's exit (includes the
~1 ms control round trip), CPU (user+sys, µs) and peak RSS from wait4(2) in bench/runstat.c for the
waiter and its children (e.g. the kubectl processes of
a polling loop; peak RSS is the largest single process), API requests as
counted by kubesim.
Nothing here is a pass/fail test; results go to stdout (markdown), a JSON
file, and bench/RESULTS.md.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from kubesim_client import KubeSim, kubectl_binary  # noqa: E402
from mg import COMPLETE, FAILED, clean_env, job  # noqa: E402

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))
NEVER = None  # a waiter that did not exit within the cap


RUNSTAT = os.path.join(BUILD, "bench", "runstat")


class Proc:
    """A waiter run under bench/runstat.c, which reports the rusage of the
    waiter and its children only, in microseconds (the rusage of a child
    forked from this Python process would count Python's own memory from
    before the exec)."""

    _seq = 0

    def __init__(self, argv, env=None, out_dir="/tmp"):
        Proc._seq += 1
        self.timefile = os.path.join(out_dir, "bench-time-%d-%d" % (os.getpid(), Proc._seq))
        self.argv = argv
        self.t_start = time.monotonic()
        self.p = subprocess.Popen([RUNSTAT, self.timefile] + argv,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env or clean_env(), start_new_session=True)
        self.t_exit = None
        self.rc = None

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                return self._done()
            time.sleep(0.0005)
        return False

    def _done(self):
        self.t_exit = time.monotonic()
        self.rc = self.p.returncode
        with open(self.timefile) as f:
            last = f.read().strip().splitlines()[-1].split()
        os.unlink(self.timefile)
        self.cpu = (int(last[0]) + int(last[1])) / 1e6
        self.rss_mb = int(last[2]) / 1024.0
        return True

    def kill(self):
        if self.rc is None:
            try:
                # runstat ignores SIGINT while it waits, so it still reports
                os.killpg(self.p.pid, 2)
            except ProcessLookupError:
                pass
            self.p.wait()
            self._done()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_ms(s):
    return "never" if s is None else ("%.1f ms" % (s * 1000) if s < 10 else "%.2f s" % s)


# ---- waiters ---------------------------------------------------------------

def waiters(ks, name):
    kubectl = kubectl_binary()
    kc = ["--kubeconfig", ks.kubeconfig]
    cache = ["--cache-dir", os.path.join(ks.state_dir, "bench-kubectl-cache")]
    loop = ("while :; do "
            "c=$(%(k)s get job %(n)s -o 'jsonpath={.status.conditions[?(@.status==\"True\")].type}' 2>/dev/null); "
            "case \" $c \" in *\" Complete \"*) exit 0;; *\" Failed \"*) exit 1;; esac; sleep 2; done"
            % {"k": " ".join(shlex.quote(x) for x in [kubectl] + kc + cache), "n": name})
    return {
        "wait-for-job": [os.path.join(BUILD, "wait-for-job"), "--kubeconfig", ks.kubeconfig, "-q", name],
        "kubectl wait": [kubectl] + kc + cache + ["wait", "--for=condition=complete", "--timeout=-1s",
                                                  "job/" + name],
        "poll loop (2 s)": ["bash", "-c", loop],
    }


def warm(ks):
    # kubectl writes a discovery cache on first use: not what we measure
    subprocess.run([kubectl_binary(), "--kubeconfig", ks.kubeconfig, "--cache-dir",
                    os.path.join(ks.state_dir, "bench-kubectl-cache"), "get", "jobs"], capture_output=True)


def settle(ks, seconds):
    """Let every waiter establish its list/watch (or first poll)."""
    time.sleep(seconds)


def suite_wait(ks, rounds, idle, cap=10.0):
    names = list(waiters(ks, "x"))
    res = {n: {"done": [], "failed": [], "rc_done": [], "rc_failed": []} for n in names}
    seq = 0
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # interleave, rotate who goes first
        for outcome in ("done", "failed"):
            for n in order:
                seq += 1
                jn = "bench-%d" % seq
                ks.apply(job(jn))
                p = Proc(waiters(ks, jn)[n])
                settle(ks, 1.0)
                t0 = time.monotonic()
                ks.patch_status("batch/v1", "Job", "default", jn, COMPLETE if outcome == "done" else FAILED)
                if p.wait(cap):
                    res[n][outcome].append(p.t_exit - t0)
                else:
                    p.kill()
                    res[n][outcome].append(NEVER)
                res[n]["rc_" + outcome].append(p.rc)
                ks.delete("batch/v1", "Job", "default", jn)
    # idle cost: one waiter at a time, alone with the server
    for n in names:
        seq += 1
        jn = "bench-idle-%d" % seq
        ks.apply(job(jn))
        ks.reset_requests()
        p = Proc(waiters(ks, jn)[n])
        settle(ks, idle)
        reqs = ks.requests()["total"]
        ks.patch_status("batch/v1", "Job", "default", jn, COMPLETE)
        if not p.wait(cap):
            p.kill()
        res[n]["idle_requests"] = reqs
        res[n]["idle_cpu"] = p.cpu
        res[n]["rss_mb"] = p.rss_mb
        # a short 3 s wait too, comparable with DESIGN's figures
        seq += 1
        jn = "bench-short-%d" % seq
        ks.apply(job(jn))
        ks.reset_requests()
        p = Proc(waiters(ks, jn)[n])
        settle(ks, 3.0)
        ks.patch_status("batch/v1", "Job", "default", jn, COMPLETE)
        if not p.wait(cap):
            p.kill()
        res[n]["short_requests"] = ks.requests()["total"]
        res[n]["short_cpu"] = p.cpu
    sizes = {"wait-for-job": os.path.getsize(os.path.join(BUILD, "wait-for-job")),
             "kubectl wait": os.path.getsize(kubectl_binary()),
             "poll loop (2 s)": os.path.getsize(kubectl_binary())}
    for n in names:
        res[n]["binary_bytes"] = sizes[n]
    return res


def table_wait(res, idle):
    ours = res["wait-for-job"]
    lines = [
        "| waiter | Job done → exit (median) | Job failed → exit (median) | CPU, 3 s wait | CPU, %d s idle | "
        "requests, 3 s / %d s idle | peak RSS | binary |" % (idle, idle),
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, v in res.items():
        lines.append("| %s | %s | %s | %.1f ms | %.1f ms | %d / %d | %.1f MB | %.1f MB |" % (
            n, fmt_ms(median(v["done"])), fmt_ms(median(v["failed"])) if median(v["failed"]) else "never",
            v["short_cpu"] * 1000, v["idle_cpu"] * 1000, v["short_requests"], v["idle_requests"], v["rss_mb"],
            v["binary_bytes"] / 1e6))
    lines.append("")
    lines.append("Ratios against wait-for-job (peer / ours): " + "; ".join(
        "%s: latency ×%s, idle CPU ×%s, RSS ×%.0f" % (
            n, ("%.0f" % (median(v["done"]) / median(ours["done"]))) if median(v["done"]) else "∞",
            ("%.0f" % (v["idle_cpu"] / ours["idle_cpu"])) if ours["idle_cpu"] > 0 else "n/a",
            v["rss_mb"] / ours["rss_mb"])
        for n, v in res.items() if n != "wait-for-job"))
    return "\n".join(lines)


SUITES = {"wait": (suite_wait, table_wait)}


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s %s, Python %s, kubectl %s" % (
        cpu, os.cpu_count(), platform.system(), platform.release(), platform.python_version(),
        os.path.basename(kubectl_binary()))


def build_runstat():
    src = os.path.join(ROOT, "bench", "runstat.c")
    if not os.path.exists(RUNSTAT) or os.path.getmtime(RUNSTAT) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(RUNSTAT), exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", RUNSTAT, src], check=True)


def main():
    build_runstat()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=60, help="seconds of idle waiting to measure")
    ap.add_argument("--suite", action="append", choices=sorted(SUITES), help="default: all")
    ap.add_argument("--out", default=os.path.join(BUILD, "bench"))
    ap.add_argument("--no-results-md", action="store_true", help="do not update bench/RESULTS.md")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = ["## %s" % stamp, "", "Machine: %s. Rounds: %d, interleaved." % (machine(), a.rounds), ""]
    raw = {"date": stamp, "machine": machine(), "rounds": a.rounds, "idle": a.idle, "suites": {}}
    with KubeSim(bookmark_interval=60) as ks:
        warm(ks)
        for s in a.suite or sorted(SUITES):
            run, table = SUITES[s]
            print("bench: suite %s ..." % s, file=sys.stderr)
            res = run(ks, a.rounds, a.idle)
            raw["suites"][s] = res
            report += ["### %s" % s, "", table(res, a.idle), ""]
    text = "\n".join(report)
    print(text)
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump(raw, f, indent=1, default=str)
    if not a.no_results_md:
        path = os.path.join(ROOT, "bench", "RESULTS.md")
        head = "# Benchmark results\n\nNewest first. Produced by `make bench` (bench/bench.py).\n\n"
        old = ""
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
            old = old[len(head):] if old.startswith(head) else old
        with open(path, "w") as f:
            f.write(head + text + "\n\n" + old)


if __name__ == "__main__":
    main()
