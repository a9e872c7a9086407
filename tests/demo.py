#!/usr/bin/env python3
"""The whole pattern on one machine, as a user would see it (make demo).

kubesim (a fake API server with Deployment/ReplicaSet/Job controllers and a
kubelet that runs our real static binaries as pod containers) stands in for
the cluster; the real helm v4 and kubectl talk to it.

  1. helm upgrade --install of chart-snippets/example-app: the migration Job
     runs under migrate-runner while the app pods sit in Init:0/1 behind
     wait-for-job, then start; release-check reports the release out.
  2. helm upgrade with a migration that fails: the new pods stay gated, the
     old ones keep serving, release-check fails fast and shows why, with the
     migration's own output.

Everything runs in a temporary directory that is removed at the end.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
sys.path.insert(0, os.path.join(ROOT, "tests", "realkube"))
# make demo CLUSTER=real: the same on a real kube-apiserver, controller
# manager, scheduler and etcd (tests/realkube), the node agent running pods
REAL = os.environ.get("CLUSTER", "kubesim") == "real"
if REAL:
    from realkube import RealKube as KubeSim  # noqa: E402
else:
    from kubesim_client import KubeSim  # noqa: E402

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))
CHART = os.path.join(ROOT, "chart-snippets", "example-app")
TTY = sys.stdout.isatty()


def bold(s):
    return "\033[1m%s\033[0m" % s if TTY else s


def say(s):
    print("\n" + bold("==> " + s), flush=True)


def tool(name):
    return subprocess.run([os.path.join(ROOT, "tests", "tools.sh"), name], check=True, capture_output=True,
                          text=True).stdout.strip()


def show(cmd, env):
    print(bold("$ " + " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))), flush=True)
    r = subprocess.run(cmd, env=env, text=True, capture_output=True)
    sys.stdout.write(r.stdout)
    sys.stdout.write("".join(line + "\n" for line in r.stderr.splitlines()
                             if "found symbolic link in path" not in line))
    sys.stdout.flush()
    return r


def main():
    if os.geteuid() != 0:
        print("demo: kubesim's kubelet runs containers in private mount/PID namespaces (unshare): run as root",
              file=sys.stderr)
        return 2
    helm, kubectl = tool("helm"), tool("kubectl")
    tmp = tempfile.mkdtemp(prefix="mg-demo-")
    ks = KubeSim(state_dir=tmp, controllers=True, kubelet=True, bin_dir=BUILD, backoff_scale=0.05, max_grace=1)
    rc = 1
    try:
        ks.start()
        env = dict(os.environ, KUBECONFIG=ks.kubeconfig, HELM_CACHE_HOME=os.path.join(tmp, "hc"),
                   HELM_CONFIG_HOME=os.path.join(tmp, "hf"), HELM_DATA_HOME=os.path.join(tmp, "hd"))
        env.pop("HELM_NAMESPACE", None)
        k = [kubectl, "--cache-dir", os.path.join(tmp, "kc")]
        what = ("a real control plane (kube-apiserver %s, etcd, controller manager, scheduler, node agent)"
                % ks.info.get("version") if REAL else "kubesim")
        say("%s is up at %s (real kubectl %s and helm v4 talk to it)" % (
            what, ks.server, os.path.basename(kubectl)))

        def upgrade(tag, script):
            return show([helm, "upgrade", "--install", "shop", "chart-snippets/example-app", "--set", "image.tag=" + tag,
                         "--set-json", "migrationGate.migration.command=" + json.dumps(["sh", "-c", script])], env)

        def watch_pods(seconds, until=None):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                r = subprocess.run(k + ["get", "jobs,pods", "-o", "wide"], env=env, capture_output=True, text=True)
                print(bold("$ kubectl get jobs,pods") + "   (t=%.0fs)" % (seconds - (end - time.monotonic())))
                print("\n".join(line[:110] for line in r.stdout.splitlines()), flush=True)
                if until and until(r.stdout):
                    return
                time.sleep(1.5)

        def current_job():
            """The Job the app pods' gate names (wait-for-job's argument)."""
            r = subprocess.run(k + ["get", "deployments", "-l", "app.kubernetes.io/instance=shop", "-o",
                                    "jsonpath={.items[0].spec.template.spec.initContainers[0].args[0]}"],
                               env=env, capture_output=True, text=True)
            return r.stdout.strip() or "shop-migrate-?"

        def release_check():
            print(bold("$ release-check --timeout 2m shop"), flush=True)
            return subprocess.run([os.path.join(BUILD, "release-check"), "--timeout", "2m", "shop"], env=env).returncode

        say("1. helm upgrade --install shop (image 1.0.0, a migration that takes 6 s)")
        os.chdir(ROOT)
        upgrade("1.0.0", "echo 'migrating to schema 1.0.0'; sleep 6; echo 'schema 1.0.0 ready'")
        job = current_job()
        say("helm returned at once; the app pods wait in Init:0/1 for Job %s "
            "(named by the hash of the migration: an upgrade that does not change it reuses it)" % job)
        watch_pods(3)
        say("release-check follows the rollout live until it is really out")
        code = release_check()
        print(bold("release-check exit code: %d" % code))
        if code != 0:
            return 1
        show(k + ["logs", "job/" + job], env)

        say("2. helm upgrade shop (image 1.1.0) whose migration FAILS")
        upgrade("1.1.0", "echo 'migrating to schema 1.1.0'; sleep 1; echo 'ALTER TABLE orders ADD COLUMN note text'; "
                         "echo 'ERROR:  column \"note\" of relation \"orders\" already exists' >&2; exit 3")
        say("the new pods stay gated; the 1.0.0 pods keep serving")
        watch_pods(1)
        say("release-check fails fast, with the reason and the migration's output")
        code = release_check()
        print(bold("release-check exit code: %d (1 = the release failed)" % code))
        watch_pods(1)
        rc = 0 if code == 1 else 1
        say("done: the demo %s; cleaning up" % ("behaved as expected" if rc == 0 else "did NOT behave as expected"))
    finally:
        ks.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
