#!/usr/bin/env python3
"""Soak: many wait-for-job waiters against a kubesim that misbehaves.

    python3 bench/soak.py [--seconds 300] [--waiters 16]

For the given time, Jobs are created and then complete or fail at random
moments, some are deleted right after they finish (as ttlSecondsAfterFinished
does) with migrate-runner's record left behind, while a chaos loop injects
dropped watches, 410s, 5xx bursts, 429 with Retry-After, latency, short
API-server outages and token rotations. Every waiter runs in real in-cluster
mode (unshare -m, the service-account token file is rotated under it).

It fails (exit 1) when any waiter gives a wrong verdict or none, or when a
waiter spins: more than 120 requests per minute of waiting, more than
600 ms of CPU per minute of waiting under a fault every ~2.5 s (each costs a
reconnection and a TLS handshake; a spinning loop costs far more), file
descriptors or RSS that grow after warm-up.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from mg import BIN, COMPLETE, FAILED, KubeSim, can_unshare, in_cluster_cmd, in_cluster_env, job  # noqa: E402

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
    def __init__(self, ks, name, want, record, logdir):
        self.name, self.want = name, want
        # -v: every request and retry, so a failure explains itself
        argv = [BIN("wait-for-job"), "--timeout", "90s", "-v", name]
        if record:
            argv[1:1] = ["--record", "soak-records"]
        self.log = os.path.join(logdir, name + ".log")
        with open(self.log, "w") as f:
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
            log.append((round(time.monotonic(), 1), name))
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
        stop = threading.Event()
        th = threading.Thread(target=chaos, args=(ks, stop, chaos_log), daemon=True)
        th.start()
        end = time.monotonic() + a.seconds
        live, seq, pending = [], 0, []  # pending: (when, name, outcome, delete)
        while time.monotonic() < end or live:
            now = time.monotonic()
            while now < end and len(live) < a.waiters:
                seq += 1
                name = "soak-%d" % seq
                outcome = random.choice(["succeeded", "succeeded", "failed"])
                delete = random.random() < 0.3
                ks.apply(job(name))
                live.append(Waiter(ks, name, 0 if outcome == "succeeded" else 1, record=delete, logdir=logdir))
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
