#!/usr/bin/env python3
"""Soak: many wait-for-job waiters against a kubesim that misbehaves.

    python3 bench/soak.py [--seconds 300] [--waiters 16]

For the given time, Jobs are created and then complete or fail at random
moments, some are deleted right after they finish (as ttlSecondsAfterFinished
does) with migrate-runner's record left behind, while a chaos loop injects
dropped watches, 410s, 5xx bursts, 429 with Retry-After, latency, short
API-server outages and token rotations. Most waiters run in real in-cluster
mode (unshare -m, the service-account token file is rotated under it); every
fourth uses a kubeconfig whose user is an exec credential plugin that mints
tokens kubesim accepts for a few seconds only (some revoked before the
expirationTimestamp they advertise), so those waiters refresh mid-wait.
Every ~15 s a migrate-runner episode runs: its command exits while the API
server is down; the termination log and the stdout line must come at once,
and either the record appears once the API is back within --record-timeout
or the runner says it was not written (never both, never neither); its Job
is then deleted when the record was written, and its waiters - some started
only after the deletion - must take the verdict from the record alone. Every
third episode runs on a kubesim of its own whose outage outlasts the record
budget: the runner must say the record was not written, within the budget.

It fails (exit 1) when any waiter gives a wrong verdict or none, or when a
waiter spins: more than 120 requests per minute of waiting, more than
600 ms of CPU per minute of waiting under a fault every ~2.5 s (each costs a
reconnection and a TLS handshake; a spinning loop costs far more), file
descriptors or RSS that grow after warm-up.
"""

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from mg import BIN, COMPLETE, FAILED, KubeSim, can_unshare, clean_env, in_cluster_cmd, in_cluster_env, job  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
CPU_PER_MIN = 0.600  # s of CPU per minute of waiting, with a fault every ~2.5 s


def proc_sample(pid):
    """(rss_kb, fds, cpu_s) of a live process, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")]
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        return (rss[0] if rss else 0, fds, (int(st[11]) + int(st[12])) / CLK)
    except (OSError, IndexError, ValueError):
        return None


def find_binary_pid(p):
    """The waiter's own pid: unshare/sh exec into it, so it is p.pid."""
    return p.pid


class Waiter:
    def __init__(self, ks, name, want, record, logdir, kubeconfig=None, tag=""):
        self.name, self.want = name + tag, want
        # -v: every request and retry, so a failure explains itself
        argv = [BIN("wait-for-job"), "--timeout", "90s", "-v", name]
        if record:
            argv[1:1] = ["--record", record if isinstance(record, str) else "soak-records"]
        self.log = os.path.join(logdir, self.name + ".log")
        with open(self.log, "w") as f:
            if kubeconfig:  # an exec-plugin user: not in-cluster
                self.p = subprocess.Popen(argv[:1] + ["--kubeconfig", kubeconfig] + argv[1:],
                                          env=clean_env(), stdout=subprocess.DEVNULL, stderr=f)
            else:
                self.p = subprocess.Popen(in_cluster_cmd(ks, argv), env=in_cluster_env(ks),
                                          stdout=subprocess.DEVNULL, stderr=f)
        self.t0 = time.monotonic()
        self.samples = []
        self.err = ""

    def sample(self):
        # unshare and sh exec into the waiter: sample only the waiter itself
        try:
            if not os.readlink("/proc/%d/exe" % self.p.pid).endswith("wait-for-job"):
                return
        except OSError:
            return
        s = proc_sample(self.p.pid)
        if s:
            self.samples.append((time.monotonic() - self.t0,) + s)

    def done(self):
        return self.p.poll() is not None


PLUGIN = """#!/usr/bin/env python3
# soak exec credential plugin: a token kubesim accepts for TTL s; it says it
# expires later than that one time in three (revoked early: the 401 path)
import datetime, json, os, random, urllib.request
# the waiter that ran it: the plugin's parent is the waiter's non-exec'ing
# child that starts and waits for it (lib/kubeconfig.c exec_clone)
with open("/proc/%%d/stat" %% os.getppid()) as st:
    waiter = int(st.read().rsplit(")", 1)[1].split()[1])
with open(%(count)r, "a") as f:
    f.write("%%d\\n" %% waiter)
ttl = random.choice([12, 12, 4])
req = urllib.request.Request("http://127.0.0.1:%(port)d/tokens", method="POST",
                             data=json.dumps({"user": "soak-exec", "ttl_seconds": ttl}).encode(),
                             headers={"Content-Type": "application/json"})
tok = json.loads(urllib.request.urlopen(req, timeout=10).read())["token"]
exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=12)
print(json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
                  "status": {"token": tok, "expirationTimestamp": exp.strftime("%%Y-%%m-%%dT%%H:%%M:%%SZ")}}))
"""


def exec_kubeconfig(ks, d):
    """A kubeconfig whose user is the soak's exec plugin; returns (path, invocation log)."""
    count = os.path.join(d, "plugin-calls")
    plugin = os.path.join(d, "soak-plugin.py")
    with open(plugin, "w") as f:
        f.write(PLUGIN % {"count": count, "port": ks.control_port})
    os.chmod(plugin, 0o755)
    with open(ks.ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    path = os.path.join(d, "exec-kubeconfig")
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n"
                "    server: %s\n    certificate-authority-data: %s\nusers:\n- name: u\n  user:\n    exec:\n"
                "      apiVersion: client.authentication.k8s.io/v1\n      command: %s\n"
                "      interactiveMode: Never\ncontexts:\n- name: x\n  context: {cluster: c, user: u, "
                "namespace: default}\n" % (ks.server, ca, plugin))
    return path, count


RECORD_TIMEOUT = 8  # the runner's --record-timeout in the episodes


def runner_episode(ks, k, logdir, live, failures, stats, chaos_log, lost=False):
    """migrate-runner's command exits during an API outage (see the module
    doc). lost: on a kubesim of its own (no waiters, no chaos), an outage
    past the record budget: the record cannot be written, and the runner
    must say so, within its budget, with the local copies on time."""
    name = "soak-mr-%d" % k
    code = random.choice([0, 0, 3])
    want = 0 if code == 0 else 1
    outage = RECORD_TIMEOUT + 4 if lost else 2
    go = os.path.join(logdir, name + ".go")
    tlog = os.path.join(logdir, name + ".termination-log")
    ks.apply(job(name))
    for i in range(0 if lost else 2):
        live.append(Waiter(ks, name, want, "soak-mr-records", logdir, tag="-early%d" % i))
    env = clean_env({"KUBECONFIG": ks.kubeconfig, "JOB_NAME": name, "POD_NAME": name + "-pod"})
    with open(os.path.join(logdir, name + ".runner.log"), "w") as errf:
        p = subprocess.Popen([BIN("migrate-runner"), "-v", "--record", "soak-mr-records", "--record-max-keys", "100",
                              "--record-timeout", "%ds" % RECORD_TIMEOUT, "--termination-log", tlog, "--",
                              "sh", "-c", "echo migrating; while [ ! -e %s ]; do sleep 0.05; done; exit %d" % (go, code)],
                             env=env, stdout=subprocess.PIPE, stderr=errf, text=True)
    lines = []

    def read():
        for line in p.stdout:
            lines.append((time.monotonic(), line))
    th = threading.Thread(target=read, daemon=True)
    th.start()
    t_start = time.monotonic()
    while not lines and time.monotonic() < t_start + 20:
        time.sleep(0.05)
    ks.faults(stop_listening=outage)
    t_go = time.monotonic()
    open(go, "w").close()
    t_tlog = None
    while time.monotonic() < t_go + 5:
        if os.path.exists(tlog) and os.path.getsize(tlog) > 0:
            t_tlog = time.monotonic()
            break
        time.sleep(0.01)
    try:
        rc = p.wait(timeout=RECORD_TIMEOUT + 15)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    t_end = time.monotonic()
    th.join(5)
    with open(os.path.join(logdir, name + ".runner.log")) as f:
        err = f.read()
    bad = []
    final = [(t, ln) for t, ln in lines if ln.startswith("{")]
    if rc != code:
        bad.append("exit %d, the command's was %d" % (rc, code))
    if t_tlog is None or t_tlog - t_go > 2.0:
        bad.append("termination log %s" % ("missing" if t_tlog is None else "after %.1f s" % (t_tlog - t_go)))
    else:
        with open(tlog) as f:
            o = json.load(f)
        if o.get("exitCode") != code:
            bad.append("termination log says exitCode %s" % o.get("exitCode"))
    if not final or final[-1][0] - t_go > 2.0 or json.loads(final[-1][1]).get("exitCode") != code:
        bad.append("stdout line %s" % (repr(final[-1]) if final else "missing"))
    if t_end - t_go > RECORD_TIMEOUT + 5:
        bad.append("ran %.1f s past the command's exit (record budget %d s)" % (t_end - t_go, RECORD_TIMEOUT))
    cms = [o for o in ks.objects(kind="ConfigMap", namespace="default") if o["metadata"]["name"] == "soak-mr-records"]
    raw = ((cms[0].get("data") or {}) if cms else {}).get(name)
    said_lost = "FAILED to record the outcome" in err
    if raw is not None:
        rec = json.loads(raw)
        if rec.get("exitCode") != code or rec.get("status") != ("succeeded" if code == 0 else "failed"):
            bad.append("record %s" % raw)
    if (raw is not None) == said_lost:
        bad.append("record %s, yet the runner %s" % ("written" if raw is not None else "absent",
                                                      "says it was not" if said_lost else "does not say so"))
    # a 2 s outage in an 8 s budget must not lose the record, unless chaos added its own outage
    chaos_outage = not lost and any(t >= t_go - 3 and t <= t_end and n == "outage" for t, n in chaos_log)
    if raw is None and outage * 3 <= RECORD_TIMEOUT and not chaos_outage:
        bad.append("a %d s outage lost the record (budget %d s)" % (outage, RECORD_TIMEOUT))
    if raw is not None and outage > RECORD_TIMEOUT + 2:
        bad.append("the record was written although the API was down past the budget (no outage?)")
    stats["episodes"] += 1
    stats["written" if raw is not None else "lost"] += 1
    if bad:
        failures.append("%s (outage %d s): %s; runner log %s.runner.log" % (name, outage, "; ".join(bad), name))
    if lost:
        ks.delete("batch/v1", "Job", "default", name)
        return
    # the Job finishes; with a record it is deleted at once (ttlSecondsAfterFinished=0) and the
    # record is the only trace, also for the waiters that start only now
    for _ in range(40):
        try:
            ks.patch_status("batch/v1", "Job", "default", name, COMPLETE if code == 0 else FAILED)
            if raw is not None:
                ks.delete("batch/v1", "Job", "default", name)
            break
        except Exception:
            time.sleep(0.5)
    if raw is not None:
        for i in range(2):
            live.append(Waiter(ks, name, want, "soak-mr-records", logdir, tag="-late%d" % i))


def episodes(ks, end, logdir, live, failures, stats, chaos_log):
    """Every third episode runs on a kubesim of its own with an outage past
    the record budget (the others' waiters would time out in it)."""
    k, own = 0, None
    try:
        while time.monotonic() + 10 < end:
            time.sleep(random.uniform(3, 8))
            k += 1
            lost = k % 3 == 2 and time.monotonic() + RECORD_TIMEOUT + 10 < end
            try:
                if lost and own is None:
                    own = KubeSim(bookmark_interval=2).start()
                runner_episode(own if lost else ks, k, logdir, live, failures, stats, chaos_log, lost=lost)
            except Exception as e:
                failures.append("runner episode %d: %r" % (k, e))
            time.sleep(5)
    finally:
        if own is not None:
            own.stop()


def chaos(ks, stop, log):
    actions = [
        ("drop watches", lambda: ks.faults(close_watches_now=True)),
        ("next watches 410", lambda: ks.faults(next_watch_gone=random.randint(1, 2))),
        ("5xx burst", lambda: ks.faults(errors_5xx=random.randint(1, 3), code=random.choice([500, 503]))),
        ("429", lambda: ks.faults(too_many=random.randint(1, 2), retry_after=1)),
        ("latency", lambda: ks.faults(latency_ms=random.choice([0, 50, 200]))),
        ("outage", lambda: ks.faults(stop_listening=random.choice([1, 2]))),
        ("rotate token", lambda: ks.rotate(ks.sa_user, grace_seconds=random.choice([0, 2]))),
        ("truncate", lambda: ks.faults(truncate=1)),
        ("malformed", lambda: ks.faults(malformed=1)),
    ]
    # a fault every 1-4 s: counted faults are eaten by whichever requests
    # come next, mostly those of the waiters that are recovering, so a
    # denser rate leaves the server answering almost nothing at all
    while not stop.wait(random.uniform(1.0, 4.0)):
        name, act = random.choice(actions)
        try:
            act()
            log.append((time.monotonic(), name))
            print("soak: chaos %.1f %s" % (time.monotonic(), name), flush=True)
        except Exception as e:  # the control API may see the outage too
            log.append((round(time.monotonic(), 1), "%s failed: %s" % (name, e)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--waiters", type=int, default=16, help="waiters alive at once")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--logs", default=os.path.join(ROOT, "build", "soak"), help="waiter logs (-v) go here")
    a = ap.parse_args()
    if not can_unshare():
        print("soak: needs root and unshare -m (in-cluster mode with token rotation)", file=sys.stderr)
        return 2
    seed = a.seed if a.seed is not None else int(time.time())
    random.seed(seed)
    print("soak: %d s, %d waiters at once, seed %d" % (a.seconds, a.waiters, seed), flush=True)
    failures, finished, chaos_log = [], [], []
    logdir = a.logs
    os.makedirs(logdir, exist_ok=True)
    for f in os.listdir(logdir):
        os.unlink(os.path.join(logdir, f))
    with KubeSim(bookmark_interval=2, history=300) as ks:
        ks.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "soak-records", "namespace": "default"},
                  "data": {}})
        exec_cfg, plugin_calls = exec_kubeconfig(ks, logdir)
        stop = threading.Event()
        th = threading.Thread(target=chaos, args=(ks, stop, chaos_log), daemon=True)
        th.start()
        end = time.monotonic() + a.seconds
        live, seq, pending = [], 0, []  # pending: (when, name, outcome, delete)
        exec_pids = set()
        stats = {"episodes": 0, "written": 0, "lost": 0}
        ep = threading.Thread(target=episodes, args=(ks, end, logdir, live, failures, stats, chaos_log), daemon=True)
        ep.start()
        while time.monotonic() < end or live or ep.is_alive():
            now = time.monotonic()
            while now < end and len(live) < a.waiters:
                seq += 1
                name = "soak-%d" % seq
                outcome = random.choice(["succeeded", "succeeded", "failed"])
                delete = random.random() < 0.3
                ks.apply(job(name))
                w = Waiter(ks, name, 0 if outcome == "succeeded" else 1, record=delete, logdir=logdir,
                           kubeconfig=exec_cfg if seq % 4 == 0 else None)
                live.append(w)
                if seq % 4 == 0:
                    exec_pids.add(w.p.pid)
                pending.append((now + random.uniform(1, 20), name, outcome, delete))
            for item in [x for x in pending if x[0] <= now]:
                pending.remove(item)
                _, name, outcome, delete = item
                try:
                    if delete:
                        rec = {"status": outcome, "reason": "Exited", "exitCode": 0 if outcome == "succeeded" else 3}
                        ks.control("POST", "/apply", {
                            "apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "soak-records", "namespace": "default"},
                            "data": dict(ks.objects(kind="ConfigMap", namespace="default") and
                                         {o["metadata"]["name"]: o for o in
                                          ks.objects(kind="ConfigMap", namespace="default")}
                                         ["soak-records"].get("data") or {}, **{name: json.dumps(rec)})})
                    ks.patch_status("batch/v1", "Job", "default", name, COMPLETE if outcome == "succeeded" else FAILED)
                    if delete:
                        ks.delete("batch/v1", "Job", "default", name)
                except Exception as e:
                    pending.append((now + 0.5, name, outcome, delete))  # the control API saw an outage
                    print("soak: retrying %s: %s" % (name, e), file=sys.stderr)
            for w in list(live):
                if w.done():
                    live.remove(w)
                    finished.append(w)
                    if w.p.returncode != w.want:
                        with open(w.log) as f:
                            tail = f.readlines()[-40:]
                        st = [o.get("status") for o in ks.objects(kind="Job", namespace="default")
                              if o["metadata"]["name"] == w.name]
                        failures.append("%s: exit %s, want %s; the Job's status now: %s; log %s ends:\n%s" % (
                            w.name, w.p.returncode, w.want, json.dumps(st), w.log, "".join(tail)))
                else:
                    w.sample()
            time.sleep(0.25)
        stop.set()
        total_requests = ks.requests()["total"]
    # exec plugin: every call after a waiter's first is a refresh in the middle of its wait
    calls = {}
    if os.path.exists(plugin_calls):
        with open(plugin_calls) as f:
            for line in f:
                calls[int(line)] = calls.get(int(line), 0) + 1
    refreshes = sum(n - 1 for pid, n in calls.items() if pid in exec_pids)
    print("soak: exec plugin: %d waiters, %d calls, %d refreshes mid-wait" % (
        len(exec_pids), sum(calls.values()), refreshes))
    if exec_pids and not refreshes:
        failures.append("no exec-plugin waiter refreshed its credential")
    print("soak: migrate-runner episodes: %d (record written after the outage: %d, not written and said so: %d)" % (
        stats["episodes"], stats["written"], stats["lost"]))
    if not stats["episodes"] and a.seconds >= 30:
        failures.append("no migrate-runner episode ran")
    if not stats["lost"] and a.seconds >= 60:
        failures.append("no migrate-runner episode met an outage past its record budget")
    # spinning and leaks
    waited_min = sum((w.samples[-1][0] if w.samples else 0) for w in finished) / 60.0
    for w in finished:
        if len(w.samples) < 8:
            continue
        # after start-up, and not while the process is exiting (fds closing)
        warm = [s for s in w.samples if s[0] > 2.0 and s[2] >= 3]
        if not warm:
            continue
        # CPU after start-up; reconnecting after each injected fault costs a
        # TLS handshake or two, a spinning loop costs orders of magnitude more
        span = warm[-1][0] - warm[0][0]
        cpu = warm[-1][3] - warm[0][3]
        if span >= 5 and cpu / (span / 60.0) > CPU_PER_MIN:
            failures.append("%s: %.0f ms CPU in %.1f s of waiting under chaos (spinning?)" % (
                w.name, cpu * 1000, span))
        if max(s[2] for s in warm) > min(s[2] for s in warm) + 3:
            failures.append("%s: file descriptors grew from %d to %d" % (
                w.name, min(s[2] for s in warm), max(s[2] for s in warm)))
        if max(s[1] for s in warm) > warm[0][1] + 512:
            failures.append("%s: RSS grew from %d KB to %d KB" % (w.name, warm[0][1], max(s[1] for s in warm)))
    rpm = total_requests / waited_min if waited_min else 0
    if rpm > 120:
        failures.append("%.0f requests per minute of waiting (spinning?)" % rpm)
    maxrss = max((s[1] for w in finished for s in w.samples), default=0)
    print("soak: %d waiters finished, %d chaos actions, %d requests (%.0f per waiter-minute incl. the chaos "
          "retries), max RSS %d KB" % (len(finished), len(chaos_log), total_requests, rpm, maxrss))
    for f in failures:
        print("soak: FAIL %s" % f)
    print("soak: %d passed, %d failed" % (len(finished) - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
