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
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

sys.path.insert(0, os.path.join(ROOT, "tests", "realkube"))
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
        self.user, self.sys = int(last[0]) / 1e6, int(last[1]) / 1e6
        self.cpu = self.user + self.sys
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
        # a short 3 s wait too, comparable with the figures in docs/design.md
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



# ---- release-check --------------------------------------------------------------

import rc_fixtures as fx  # noqa: E402


def release_waiters(ks, rel, deploy="web"):
    kubectl = kubectl_binary()
    kc = [kubectl, "--kubeconfig", ks.kubeconfig, "--cache-dir", os.path.join(ks.state_dir, "bench-kubectl-cache")]
    # the loop users write today (issue #6): phases only, every 10 s
    loop = ("while :; do "
            "p=$(%(k)s get pods -l app.kubernetes.io/instance=%(r)s -o 'jsonpath={.items[*].status.phase}'); "
            "case \" $p \" in *\" Failed \"*) exit 1;; esac; ok=1; "
            "for x in $p; do case $x in Running|Succeeded) ;; *) ok=0;; esac; done; "
            "[ -n \"$p\" ] && [ $ok = 1 ] && exit 0; sleep 10; done"
            % {"k": " ".join(shlex.quote(x) for x in kc), "r": rel})
    return {
        "release-check": [os.path.join(BUILD, "release-check"), "--kubeconfig", ks.kubeconfig, "--no-helm",
                          "--logs", "0", "--image-pull-grace", "2s", rel],
        "poll loop (10 s)": ["bash", "-c", loop],
        "kubectl rollout status": kc + ["rollout", "status", "deployment/" + deploy, "--timeout=0s"],
    }


def web(ks, ns, rel, replicas, pod_status, revision="2", **dkw):
    d = ks.apply(fx.deployment(ns, "web", rel, replicas=replicas, revision=revision, **dkw))
    ks.apply(fx.replicaset(ns, "web-1", rel, d, "1"))
    cur = ks.apply(fx.replicaset(ns, "web-2", rel, d, revision, replicas=replicas))
    for i in range(replicas):
        ks.apply(fx.pod(ns, "web-2-%d" % i, rel, owner=cur, status=pod_status))
    return d, cur


def scenarios():
    """name -> (expected verdict, setup(ks, ns, rel) -> final change or None)."""
    creating = fx.waiting_status("ContainerCreating", "")

    def healthy_late(ks, ns, rel):
        d, cur = web(ks, ns, rel, 3, creating, available=0, updated=3)
        # an old pod still terminating must not count
        old = ks.objects(kind="ReplicaSet", namespace=ns)
        old = [o for o in old if o["metadata"]["name"] == "web-1"][0]
        ks.apply(fx.pod(ns, "web-1-a", rel, owner=old, status=fx.crash_status(), finalizers=["bench/hold"]))
        ks.delete("v1", "Pod", ns, "web-1-a")

        def final():
            for i in range(3):
                ks.apply(fx.pod(ns, "web-2-%d" % i, rel, owner=cur, status=fx.ready_status()))
            ks.apply(fx.deployment(ns, "web", rel, replicas=3, revision="2"))
        return final

    def crashloop(ks, ns, rel):
        d, cur = web(ks, ns, rel, 2, fx.ready_status(), available=1)
        ks.apply(fx.pod(ns, "web-2-1", rel, owner=cur, status=creating))

        def final():
            ks.apply(fx.pod(ns, "web-2-1", rel, owner=cur, status=fx.crash_status()))
        return final

    def image_pull(ks, ns, rel):
        d, cur = web(ks, ns, rel, 1, fx.waiting_status("ImagePullBackOff", "Back-off pulling image \"app:2\""),
                     available=0)
        return None

    def evicted_replaced(ks, ns, rel):
        d, cur = web(ks, ns, rel, 2, fx.ready_status())
        st = {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}
        ks.apply(fx.pod(ns, "web-2-x", rel, owner=cur, status=st))
        return None

    def migration_failed(ks, ns, rel):
        web(ks, ns, rel, 1, fx.ready_status())
        ks.apply(fx.job(ns, "migrate-2", rel, active=1))

        def final():
            ks.apply(fx.job(ns, "migrate-2", rel, failed=3, conditions=[
                ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]))
        return final

    def job_retried_ok(ks, ns, rel):
        web(ks, ns, rel, 1, fx.ready_status())
        ks.apply(fx.job(ns, "migrate-2", rel, failed=1, active=1))

        def final():
            ks.apply(fx.job(ns, "migrate-2", rel, failed=1, succeeded=1,
                            conditions=[("Complete", "CompletionsReached", "")]))
        return final

    return {
        "healthy (pods ready late, old pod terminating)": ("healthy", healthy_late),
        "CrashLoopBackOff": ("failed", crashloop),
        "ImagePullBackOff (grace 2 s)": ("failed", image_pull),
        "evicted pod replaced": ("healthy", evicted_replaced),
        "migration Job failed": ("failed", migration_failed),
        "Job failed once, then succeeded": ("healthy", job_retried_ok),
    }


def verdict_of(rc):
    return {0: "healthy", 1: "failed", None: "no answer"}.get(rc, "exit %s" % rc)


def suite_release(ks, rounds, idle, cap=25.0):
    names = list(release_waiters(ks, "x"))
    res = {n: {"times": {}, "verdicts": {}} for n in names}
    seq = 0
    # the peers that never answer cost the whole cap: three rounds are plenty
    for r in range(min(rounds, 3)):
        for scen, (want, setup) in scenarios().items():
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                seq += 1
                ns = "bench-rel-%d" % seq
                rel = "app"
                final = setup(ks, ns, rel)
                argv = release_waiters(ks, rel)[n]
                argv = argv[:1] + ["-n", ns] + argv[1:] if n == "release-check" else (
                    argv[:-3] + ["-n", ns] + argv[-3:] if n == "kubectl rollout status" else
                    ["bash", "-c", argv[2].replace("get pods", "-n %s get pods" % ns)])
                p = Proc(argv)
                if final:
                    settle(ks, 1.5)
                    t0 = time.monotonic()
                    final()
                else:
                    t0 = p.t_start  # decided by the state it finds
                ok = p.wait(cap)
                if not ok:
                    p.kill()
                took = p.t_exit - t0 if ok else None
                rc = p.rc if ok else None
                res[n]["times"].setdefault(scen, []).append(took)
                res[n]["verdicts"].setdefault(scen, []).append(verdict_of(rc))
    res["_want"] = {scen: want for scen, (want, _) in scenarios().items()}
    return res


def table_release(res, idle):
    want = res["_want"]
    names = [n for n in res if n != "_want"]
    lines = ["| scenario (expected) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    score = {n: 0 for n in names}
    for scen, w in want.items():
        cells = []
        for n in names:
            vs = res[n]["verdicts"][scen]
            v = max(set(vs), key=vs.count)
            t = median(res[n]["times"][scen])
            right = v == w
            score[n] += right
            cells.append("%s %s%s" % ("✔" if right else "✘", v, (", " + fmt_ms(t)) if t is not None else ""))
        lines.append("| %s (%s) | %s |" % (scen, w, " | ".join(cells)))
    lines.append("| **right verdicts** | " + " | ".join("**%d / %d**" % (score[n], len(want)) for n in names) + " |")
    lines.append("")
    lines.append("Times are medians from the change that decides the scenario (or from the start when nothing "
                 "changes) to the exit; the cap is 25 s (\"no answer\"). A verdict is only right when the tool "
                 "gave it after the deciding change: a loop that exits \"healthy\" while pods still crash-loop "
                 "is counted as it behaves.")
    return "\n".join(lines)


# ---- migrate-runner ------------------------------------------------------------

def suite_runner(ks, rounds, idle):
    mr = os.path.join(BUILD, "migrate-runner")
    wrappers = {"direct": [], "migrate-runner": [mr, "--termination-log", "/dev/null", "--"]}
    for tool, argv in (("tini", ["tini", "--"]), ("dumb-init", ["dumb-init"])):
        if shutil.which(tool):
            wrappers[tool] = argv
    n_start = 200 * max(1, rounds // 5)
    start = {w: [] for w in wrappers}
    for i in range(n_start):
        for w, pre in wrappers.items():
            t = time.monotonic()
            subprocess.run(pre + ["/bin/true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            start[w].append(time.monotonic() - t)
    p = Proc([mr, "--termination-log", "/dev/null", "--", "/bin/true"])
    p.wait(10)
    rss = p.rss_mb
    size = 256 << 20
    gen = "yes 'INFO migration step 0042 applied: ALTER TABLE orders ADD COLUMN note text' | head -c %d" % size
    thr = {"cat": [], "migrate-runner": []}
    for r in range(max(3, rounds)):
        for w in thr:
            t = time.monotonic()
            if w == "cat":
                subprocess.run(["sh", "-c", gen + " | cat > /dev/null"])
            else:
                subprocess.run([mr, "--termination-log", "/dev/null", "--", "sh", "-c", gen],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            thr[w].append(size / (time.monotonic() - t) / 1e6)
    return {"start": start, "rss_mb": rss, "throughput": thr, "n_start": n_start}


def table_runner(res, idle):
    d = median(res["start"]["direct"])
    lines = ["| wrapper | start+exit of /bin/true (median of %d) | added |" % res["n_start"], "|---|---|---|"]
    for w, xs in res["start"].items():
        m = median(xs)
        lines.append("| %s | %.2f ms | %s |" % (w, m * 1000, "—" if w == "direct" else "%+.2f ms" % ((m - d) * 1000)))
    t = res["throughput"]
    lines += ["", "Peak RSS of migrate-runner: %.1f MB. Output throughput (256 MB of log lines to stdout, "
              "median MB/s): through `cat` %.0f, through migrate-runner %.0f (%.0f %%)." % (
                  res["rss_mb"], median(t["cat"]), median(t["migrate-runner"]),
                  100 * median(t["migrate-runner"]) / median(t["cat"]))]
    return "\n".join(lines)


# ---- scale ---------------------------------------------------------------------

def suite_scale(ks, rounds, idle, pods=1000, workloads=50):
    ns, rel = "bench-scale", "big"
    per = pods // workloads
    rss = []
    owners = []
    for w in range(workloads):
        d = ks.apply(fx.deployment(ns, "w%d" % w, rel, replicas=per, revision="1", available=0))
        rs = ks.apply(fx.replicaset(ns, "w%d-1" % w, rel, d, "1", replicas=per))
        owners.append(rs)
        for i in range(per):
            ks.apply(fx.pod(ns, "w%d-1-%d" % (w, i), rel, owner=rs, status=fx.notready_status()))
    rc_argv = [os.path.join(BUILD, "release-check"), "--kubeconfig", ks.kubeconfig, "-n", ns, "--no-helm",
               "--logs", "0", "--timeout", "10m", rel]
    p = Proc(rc_argv)
    settle(ks, 3)
    ks.reset_requests()
    t0 = time.monotonic()
    for w in range(workloads):
        for i in range(per):
            ks.apply(fx.pod(ns, "w%d-1-%d" % (w, i), rel, owner=owners[w], status=fx.ready_status()))
        ks.apply(fx.deployment(ns, "w%d" % w, rel, replicas=per, revision="1"))
    events = pods + workloads
    ok = p.wait(60)
    if not ok:
        p.kill()
    res = {"pods": pods, "workloads": workloads, "events": events, "rc": p.rc, "cpu": p.cpu, "rss_mb": p.rss_mb,
           "user": p.user, "sys": p.sys, "feed_s": time.monotonic() - t0}
    # the same release checked once (lists and verdict, no watch): what the
    # watch run spent beyond it is what its events cost
    once = []
    for _ in range(max(rounds, 1)):
        q = Proc(check_once(rc_argv))
        if not q.wait(60):
            q.kill()
        once.append((q.cpu, q.user, q.sys))
    once.sort()
    res["once_cpu"], res["once_user"], res["once_sys"] = once[len(once) // 2]
    res["callgrind"] = scale_callgrind(ks, ns, rel, owners, per, rc_argv) if shutil.which("valgrind") else None
    res["syscalls"] = scale_syscalls(ks, ns, rel, owners, per, rc_argv) if shutil.which("strace") else None
    res["big"] = scale_big(ks, rel, pods * 5, workloads * 5)
    # wait-for-job with 1000 Jobs in the namespace: it must not list them all
    jns = "bench-jobs"
    for i in range(1000):
        ks.apply(job("j%d" % i, ns=jns, status=COMPLETE if i % 2 else {"active": 1}))
    ks.reset_requests()
    p = Proc([os.path.join(BUILD, "wait-for-job"), "--kubeconfig", ks.kubeconfig, "-n", jns, "-q",
              "--timeout", "5s", "j1"])
    p.wait(10)
    reqs = ks.requests()["items"]
    res["wfj"] = {"rc": p.rc, "cpu": p.cpu, "rss_mb": p.rss_mb, "requests": len(reqs),
                  "narrowed": all("fieldSelector=metadata.name" in (r["query"] or "") for r in reqs)}
    return res


def check_once(argv):
    """The same release-check command with --timeout 0: one look, no watch."""
    i = argv.index("--timeout")
    return argv[:i + 1] + ["0"] + argv[i + 2:]


def callgrind_start(argv, out):
    return subprocess.Popen(["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=" + out] + argv,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(),
                            start_new_session=True)


def callgrind_total(out):
    """The run's instruction count (Ir): callgrind's summary line."""
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no summary in " + out)


def scale_measured(ks, ns, rel, owners, per, rc_argv, run, total, tag):
    """A check-once run of the healthy release (the lists, the verdict) and
    a watch run that lists the same objects not ready and then takes one
    event per object, each under run(argv, out) (a Popen); total(out) reads
    the figure, and the difference per event is what an event costs. The
    files are build/bench/{once,watch}-TAG.out (callgrind_annotate reads
    them)."""
    out = os.path.join(BUILD, "bench", "once-%s.out" % tag)
    p = run(check_once(rc_argv), out)
    once_rc = p.wait(600)
    once = total(out)
    for w, rs in enumerate(owners):
        for i in range(per):
            ks.apply(fx.pod(ns, "w%d-1-%d" % (w, i), rel, owner=rs, status=fx.notready_status()))
        ks.apply(fx.deployment(ns, "w%d" % w, rel, replicas=per, revision="1", available=0))
    ks.reset_requests()
    out = os.path.join(BUILD, "bench", "watch-%s.out" % tag)
    p = run(rc_argv, out)
    # watching once every list has its watch (each spec lists, then watches)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        verbs = [r["verb"] for r in ks.requests()["items"]]
        if verbs and verbs.count("watch") >= verbs.count("list"):
            break
        time.sleep(0.2)
    settle(ks, 1)
    for w, rs in enumerate(owners):
        for i in range(per):
            ks.apply(fx.pod(ns, "w%d-1-%d" % (w, i), rel, owner=rs, status=fx.ready_status()))
        ks.apply(fx.deployment(ns, "w%d" % w, rel, replicas=per, revision="1"))
    try:
        watch_rc = p.wait(600)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        watch_rc = p.wait()
    return once_rc, once, watch_rc, total(out), len(owners) * (per + 1)


def scale_callgrind(ks, ns, rel, owners, per, rc_argv):
    """Instructions instead of CPU time (repeatable on a shared machine)."""
    once_rc, once, watch_rc, watch, events = scale_measured(ks, ns, rel, owners, per, rc_argv, callgrind_start,
                                                            callgrind_total, "callgrind")
    return {"once_rc": once_rc, "once_ir": once, "watch_rc": watch_rc, "watch_ir": watch, "events": events,
            "per_1000": (watch - once) * 1000.0 / events}


def strace_counts(out):
    """strace -c's table: syscall name -> calls."""
    counts = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[3].isdigit():
                counts[parts[-1]] = int(parts[3])
    return counts


def scale_syscalls(ks, ns, rel, owners, per, rc_argv):
    """System calls per event (strace -c): what the CPU's system time is made of."""
    def run(argv, out):
        return subprocess.Popen(["strace", "-f", "-c", "-o", out] + argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=clean_env(), start_new_session=True)
    once_rc, once, watch_rc, watch, events = scale_measured(ks, ns, rel, owners, per, rc_argv, run, strace_counts,
                                                            "strace")

    def per_1000(*names):
        return sum(watch.get(n, 0) - once.get(n, 0) for n in names) * 1000.0 / events
    return {"rc": (once_rc, watch_rc), "events": events, "total": per_1000("total"),
            "recv": per_1000("recvfrom", "read", "recvmsg"), "poll": per_1000("poll", "ppoll"),
            "write": per_1000("write", "writev"), "mem": per_1000("mmap", "munmap", "mremap", "madvise", "brk")}


def scale_big(ks, rel, pods, workloads):
    """A healthy release of `pods` pods: peak RSS and time to the verdict."""
    ns, per = "bench-scale-big", pods // workloads
    for w in range(workloads):
        d = ks.apply(fx.deployment(ns, "w%d" % w, rel, replicas=per, revision="1"))
        rs = ks.apply(fx.replicaset(ns, "w%d-1" % w, rel, d, "1", replicas=per))
        for i in range(per):
            ks.apply(fx.pod(ns, "w%d-1-%d" % (w, i), rel, owner=rs, status=fx.ready_status()))
    p = Proc([os.path.join(BUILD, "release-check"), "--kubeconfig", ks.kubeconfig, "-n", ns, "--no-helm",
              "--logs", "0", "--timeout", "10m", rel])
    if not p.wait(120):
        p.kill()
    return {"pods": pods, "workloads": workloads, "rc": p.rc, "cpu": p.cpu, "rss_mb": p.rss_mb,
            "wall": p.t_exit - p.t_start}


def table_scale(res, idle):
    w = res["wfj"]
    rows = [
        "| figure | value | target |", "|---|---|---|",
        "| release-check, %d pods + %d Deployments: exit code | %s | 0 |" % (res["pods"], res["workloads"], res["rc"]),
        "| … CPU (user + sys) for the initial lists + %d watch events | %.0f ms | |" % (
            res["events"], res["cpu"] * 1000),
        "| … CPU of a check-once run of the same release (lists, verdict; median) | %.0f ms | |" % (
            res["once_cpu"] * 1000),
        "| … CPU per 1000 watch events ((watch − once) / %d): user + sys | %.1f ms = %.1f + %.1f ms | ≤ 30 ms |" % (
            res["events"], (res["cpu"] - res["once_cpu"]) * 1e6 / res["events"],
            (res["user"] - res["once_user"]) * 1e6 / res["events"], (res["sys"] - res["once_sys"]) * 1e6 / res["events"]),
        "| … peak RSS | %.1f MB | ≤ 16 MB |" % res["rss_mb"],
    ]
    cg = res.get("callgrind")
    if cg:
        rows += [
            "| … instructions (callgrind): check once / watch run, exit codes | %.1f M / %.1f M, %s / %s | 0 / 0 |" % (
                cg["once_ir"] / 1e6, cg["watch_ir"] / 1e6, cg["once_rc"], cg["watch_rc"]),
            "| … instructions per 1000 watch events ((watch − once) / %d) | %.1f M | |" % (
                cg["events"], cg["per_1000"] / 1e6),
        ]
    else:
        rows.append("| … instructions (callgrind) | not measured: no valgrind | |")
    sc = res.get("syscalls")
    if sc:
        rows.append("| … system calls per 1000 watch events (strace -c, watch − once): all = reads + polls + "
                    "writes + memory + other; exit codes | %.0f = %.0f + %.0f + %.0f + %.0f + %.0f; %s / %s | |" % (
                        sc["total"], sc["recv"], sc["poll"], sc["write"], sc["mem"],
                        sc["total"] - sc["recv"] - sc["poll"] - sc["write"] - sc["mem"], sc["rc"][0], sc["rc"][1]))
    else:
        rows.append("| … system calls (strace) | not measured: no strace | |")
    b = res["big"]
    rows += [
        "| release-check, %d pods + %d Deployments, healthy: exit code | %s | 0 |" % (
            b["pods"], b["workloads"], b["rc"]),
        "| … start to verdict, CPU, peak RSS | %.2f s, %.0f ms, %.1f MB | ≤ 1 s, ≤ 48 MB |" % (
            b["wall"], b["cpu"] * 1000, b["rss_mb"]),
        "| wait-for-job with 1000 Jobs in the namespace: exit code, requests | %s, %d (all narrowed by "
        "fieldSelector: %s) | 0, ≤ 2 |" % (w["rc"], w["requests"], "yes" if w["narrowed"] else "NO"),
        "| … CPU, peak RSS | %.1f ms, %.1f MB | |" % (w["cpu"] * 1000, w["rss_mb"]),
    ]
    return "\n".join(rows)


# ---- fan-out: many gated pods waiting for one Job (real API server only) -----

def proc_stat(pid):
    """(CPU seconds, RSS MB, peak RSS MB) of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = hwm = 0.0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024.0
    return cpu, rss, hwm


def suite_fanout(ks, rounds, idle, n=200, cap=120.0):
    """N waiters of one kind at once on one Job, as N gated pods' init
    containers would be, against the real kube-apiserver: its CPU and memory
    while they wait, requests per minute, and the time from the Job's
    completion to the last waiter's exit. The waiters run as host processes
    (what each init container would run), so the node agent's own cost is not
    in the figures."""
    api_pid = ks.procs["kube-apiserver"].pid
    res = {}
    for kind in waiters(ks, "x"):
        jn = "fanout-%s" % kind.split()[0].replace("-", "")
        ks.apply(job(jn))
        ks.reset_requests()
        cpu0, _, _ = proc_stat(api_pid)
        t_start = time.monotonic()
        procs = [subprocess.Popen(waiters(ks, jn)[kind], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=clean_env(), start_new_session=True) for _ in range(n)]
        spawn = time.monotonic() - t_start
        time.sleep(idle)
        cpu1, rss, _ = proc_stat(api_pid)
        reqs = ks.requests()["total"]
        window = time.monotonic() - t_start
        t0 = time.monotonic()
        ks.patch_status("batch/v1", "Job", "default", jn, COMPLETE)
        last, exited = None, 0
        deadline = t0 + cap
        pending = list(procs)
        while pending and time.monotonic() < deadline:
            still = []
            for p in pending:
                if p.poll() is None:
                    still.append(p)
                else:
                    exited += 1
                    last = time.monotonic() - t0
            pending = still
            time.sleep(0.005)
        for p in pending:
            os.killpg(p.pid, 9)
            p.wait()
        ok = sum(1 for p in procs if p.returncode == 0)
        res[kind] = {"waiters": n, "spawn_s": spawn, "window_s": window,
                     "apiserver_cpu_s": cpu1 - cpu0, "apiserver_rss_mb": rss,
                     "requests": reqs, "requests_per_min": reqs * 60.0 / window,
                     "last_exit_s": last if not pending else NEVER, "exited_ok": ok}
        ks.delete("batch/v1", "Job", "default", jn)
        time.sleep(2)
    return res


def table_fanout(res, idle):
    lines = ["| %d waiters on one Job | kube-apiserver CPU while waiting | its RSS | requests / min | "
             "Job complete → last waiter exits | exited 0 |" % next(iter(res.values()))["waiters"],
             "|---|---|---|---|---|---|"]
    for kind, r in res.items():
        lines.append("| %s | %.2f s in %.0f s | %.0f MB | %.0f | %s | %d / %d |" % (
            kind, r["apiserver_cpu_s"], r["window_s"], r["apiserver_rss_mb"], r["requests_per_min"],
            fmt_ms(r["last_exit_s"]), r["exited_ok"], r["waiters"]))
    return "\n".join(lines)


SUITES = {"wait": (suite_wait, table_wait), "release": (suite_release, table_release),
          "runner": (suite_runner, table_runner), "scale": (suite_scale, table_scale),
          "fanout": (suite_fanout, table_fanout)}
# on the real control plane (--backend real): what needs no simulator
REAL_SUITES = ("wait", "fanout")


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
    ap.add_argument("--backend", choices=("kubesim", "real"), default="kubesim",
                    help="real: a real kube-apiserver + etcd (tests/realkube; status written through the "
                         "status subresource, no controllers), suites %s" % ", ".join(REAL_SUITES))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if a.backend == "real":
        from realkube import RealKube
        cluster = RealKube()
        server = "a real kube-apiserver %s + etcd (tests/realkube)" % "v1.37.2"
        suites = a.suite or list(REAL_SUITES)
    else:
        cluster = KubeSim(bookmark_interval=60)
        server = "kubesim"
        suites = [x for x in (a.suite or sorted(SUITES)) if x != "fanout"]
    report = ["## %s — %s" % (stamp, server), "",
              "Machine: %s. Rounds: %d, interleaved." % (machine(), a.rounds), ""]
    raw = {"date": stamp, "machine": machine(), "rounds": a.rounds, "idle": a.idle, "server": server, "suites": {}}
    with cluster as ks:
        warm(ks)
        for s in suites:
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
