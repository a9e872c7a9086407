"""A kubelet (and the scheduler's binding) for kubesim: every pod is bound to
the one node "kubesim-node"; its init containers run in order, then its
containers, and the pod status is reported in the shapes the real kubelet
(v1.32) reports: phases, PodReadyToStartContainers/Initialized/Ready/
ContainersReady/PodScheduled conditions, waiting/running/terminated states
with reasons and exit codes, restartCount, lastState, CrashLoopBackOff with
back-off, termination messages, Events.

Containers run in one of three ways (README.md "Kubelet" has the details):

* real: the container's command is one of our binaries (/wait-for-job,
  /migrate-runner, /release-check), or the image is one of ours
  (…/wait-for-job:TAG etc.) with no command: the static binary from --bin-dir
  runs as a local process in a private mount and PID namespace (unshare), with
  a tmpfs /run, the pod's service-account token, ca.crt and namespace at
  /run/secrets/kubernetes.io/serviceaccount, a container-like /dev with the
  termination-message file bind-mounted at terminationMessagePath, and the
  container's env (+ KUBERNETES_SERVICE_HOST/PORT): in-cluster mode for real.
* exec: an image whose ENTRYPOINT/CMD was registered (--image, POST /images),
  or container env KUBESIM_EXEC=1 (or pod annotation kubesim.io/exec: "true"):
  the resulting command runs the same way, as given, on this machine.
* simulated: everything else, driven by KUBESIM_* env / kubesim.io/* annotations.

Processes are killed on pod deletion (SIGTERM, grace capped by --max-grace,
SIGKILL) and on shutdown; each runs under unshare --kill-child with
PR_SET_PDEATHSIG, so even a SIGKILLed kubesim leaves no process behind."""

import base64
import ctypes
import hashlib
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time

import auth
import resources
from ctrlutil import EventRecorder, Subscriber, go_duration, log, log_exc, parse_duration, ts

PODS = ("", "pods")
K_POD = resources.by_kind("v1", "Pod")
NODE = "kubesim-node"
HOST_IP = "10.0.0.10"
OURS = ("wait-for-job", "migrate-runner", "release-check")
IGNORE = "kubesim.io/kubelet"
LOG_CAP = 1 << 20
MSG_CAP = 4096
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SA_MOUNT = "/run/secrets/kubernetes.io/serviceaccount"

_COMP = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_RE = re.compile(rf"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*(?::[0-9]+)?)/)?"
                      rf"{_COMP}(?:/{_COMP})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?$")

# Runs inside `unshare -m -p -f --mount-proc`: a container-like filesystem view
# made only of new mounts in the private namespace (nothing is created on the
# real filesystem), then exec of the container's command as PID 1.
WRAPPER = r'''
set -e
mount -t tmpfs -o mode=755 tmpfs /run
mkdir /run/.kshost
mount --rbind /dev /run/.kshost
mount -t tmpfs -o mode=755,nosuid tmpfs /dev
for n in null zero full random urandom tty; do : > /dev/$n; mount --bind /run/.kshost/$n /dev/$n; done
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
mkdir /dev/shm /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
umount -l /run/.kshost
rmdir /run/.kshost
if [ -n "$KS_SA" ]; then
  mkdir -p "$KS_SA_MOUNT"
  mount --bind "$KS_SA" "$KS_SA_MOUNT"
  mount -o remount,bind,ro "$KS_SA_MOUNT"
fi
if [ -n "$KS_TERM_DST" ]; then
  mkdir -p "${KS_TERM_DST%/*}"
  : > "$KS_TERM_DST"
  mount --bind "$KS_TERM_SRC" "$KS_TERM_DST"
fi
unset KS_SA KS_SA_MOUNT KS_TERM_SRC KS_TERM_DST
exec "$@"
'''

_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    _libc.prctl(1, signal.SIGKILL)       # PR_SET_PDEATHSIG: die with kubesim


def normalize_image(image):
    """What the runtime reports: docker.io/library/busybox:latest."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    if ":" not in name.rsplit("/", 1)[-1] and not digest:
        name += ":latest"
    return name + ("@" + digest if digest else "")


def image_id(image):
    repo = normalize_image(image).split("@")[0].rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def image_base(image):
    """Last path component of the repository, without tag or digest."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


class ConfigError(Exception):
    pass


# ---------------------------------------------------------------- processes

class Spawner:
    """Starts processes from one long-lived thread (PR_SET_PDEATHSIG fires
    when the *thread* that forked exits)."""

    def __init__(self):
        self.q = queue.Queue()
        threading.Thread(target=self._run, name="kubelet-spawner", daemon=True).start()

    def _run(self):
        while True:
            args, kw, box, done = self.q.get()
            try:
                box.append(subprocess.Popen(args, preexec_fn=_child_setup, start_new_session=True, **kw))
            except Exception as e:      # noqa: BLE001 - handed to the caller
                box.append(e)
            done.set()

    def spawn(self, args, **kw):
        box, done = [], threading.Event()
        self.q.put((args, kw, box, done))
        done.wait()
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]


class RealProcess:
    def __init__(self, kubelet, argv, env, cwd, sa, term_src, term_dst, on_output, on_exit):
        self.done, self.code, self.on_exit = threading.Event(), None, on_exit
        penv = dict(env)
        sa_dir, sa_mount = sa or (None, None)
        penv.update(KS_SA=sa_dir or "", KS_SA_MOUNT=sa_mount or SA_MOUNT, KS_TERM_SRC=term_src or "",
                    KS_TERM_DST=term_dst or "")
        cmd = ["unshare", "-m", "-p", "-f", "--mount-proc", "--propagation", "private", "--kill-child",
               "sh", "-c", WRAPPER, "sh", *argv]
        self.popen = kubelet.spawner.spawn(cmd, env=penv, cwd=cwd, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, args=(on_output,), daemon=True)
        self.reader.start()
        threading.Thread(target=self._waiter, daemon=True).start()

    def _waiter(self):
        rc = self.popen.wait()
        self.reader.join(5)
        self.code = 128 - rc if rc < 0 else rc
        self.done.set()
        self.on_exit()

    def _read(self, on_output):
        fd = self.popen.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            on_output(data.decode(errors="replace"))
        self.popen.stdout.close()

    def _pid1(self):
        try:
            with open(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children") as f:
                kids = f.read().split()
            return int(kids[0]) if kids else None
        except (OSError, ValueError):
            return None

    def signal(self, sig):
        pid = self._pid1()
        try:
            if pid:
                os.kill(pid, sig)
            else:
                self.popen.send_signal(sig)
        except ProcessLookupError:
            pass

    def terminate(self):
        self.signal(signal.SIGTERM)

    def kill(self):
        self.signal(signal.SIGKILL)
        try:
            self.popen.kill()
        except ProcessLookupError:
            pass

    def wait(self, timeout=None):
        return self.code if self.done.wait(timeout) else None


class SimProcess:
    """A simulated container process (see Behaviour)."""

    def __init__(self, behaviour, on_output, on_exit):
        self.b, self.on_exit = behaviour, on_exit
        self.done = threading.Event()
        self.code = None
        if behaviour.log:
            on_output(behaviour.log if behaviour.log.endswith("\n") else behaviour.log + "\n")
        if behaviour.exit_after is not None:
            self.timer = threading.Timer(behaviour.exit_after, self._exit, (behaviour.exit_code,))
            self.timer.daemon = True
            self.timer.start()

    def _exit(self, code):
        if not self.done.is_set():
            self.code = code
            self.done.set()
            self.on_exit()

    def terminate(self):
        if not self.b.ignore_sigterm:
            self._exit(self.b.term_exit)

    def kill(self):
        self._exit(137)

    def wait(self, timeout=None):
        return self.code if self.done.wait(timeout) else None


class Behaviour:
    """Simulated container behaviour from container env KUBESIM_* (literal
    values) or pod annotations kubesim.io/* (every simulated container)."""

    def __init__(self, pod, c, attempt):
        env = {e["name"]: str(e.get("value", "")) for e in c.get("env") or [] if "value" in e}
        ann = (pod["metadata"].get("annotations") or {})

        def get(key):
            v = env.get("KUBESIM_" + key.upper().replace("-", "_"))
            return v if v is not None else ann.get("kubesim.io/" + key)
        codes = get("exit")
        after = get("exit-after")
        self.exit_code, self.exit_after = 0, None
        if get("crashloop") in ("1", "true"):
            self.exit_code, self.exit_after = 1, 0.1
        if codes is not None:
            seq = [int(x) for x in str(codes).split(",") if x.strip()]
            self.exit_code = seq[min(attempt, len(seq) - 1)] if seq else 0
            self.exit_after = 0.1
        if after is not None:
            self.exit_after = parse_duration(after)
        ready = get("ready-after")
        self.ready_after = parse_duration(ready) if ready is not None else 0.0
        self.never_ready = get("never-ready") in ("1", "true")
        self.log = get("log")
        self.message = get("message")
        self.ignore_sigterm = get("ignore-sigterm") in ("1", "true")
        self.term_exit = int(get("term-exit") or 0)


# ---------------------------------------------------------------- per-container state

class CState:
    def __init__(self, spec, init):
        self.spec, self.init, self.name = spec, init, spec["name"]
        self.waiting = ("PodInitializing", None)
        self.running_since = None
        self.terminated = None
        self.last = None
        self.ready = False
        self.restarts = 0
        self.crashes = 0
        self.container_id = None
        self.started_image = False
        self.proc = None
        self.run_seq = 0

    def status(self):
        if self.running_since:
            state = {"running": {"startedAt": self.running_since}}
        elif self.terminated:
            state = {"terminated": dict(self.terminated)}
        else:
            reason, msg = self.waiting
            state = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
        image = self.spec.get("image") or ""
        st = {"name": self.name, "state": state, "lastState": {"terminated": dict(self.last)} if self.last else {},
              "ready": self.ready, "restartCount": self.restarts, "image": normalize_image(image) if image else "",
              "imageID": image_id(image) if self.started_image else "", "started": bool(self.running_since)}
        if self.container_id:
            st["containerID"] = self.container_id
        return st


# ---------------------------------------------------------------- kubelet

class SimCluster:
    """The kubelet's view of kubesim: its store and registry, tokens, logs.
    tests/realkube/nodeagent.py has the same interface over a real API
    server (ApiCluster); the Kubelet below runs pods against either."""

    node, host_ip, api_host = NODE, HOST_IP, "127.0.0.1"

    def __init__(self, sim, pod_rbac=True):
        self.sim, self.store, self.reg, self.pod_rbac = sim, sim.store, sim.registry, pod_rbac
        self.state_dir = sim.state_dir
        self.sub = Subscriber(self.store, {PODS})
        self.events = self.sub.events       # .get(timeout) -> event with .type, .obj
        self.recorder = EventRecorder(sim, "kubelet", NODE)
        self.scheduler = EventRecorder(sim, "default-scheduler")
        self.lock = threading.Lock()

    @property
    def api_port(self):
        return self.sim.api.port

    def start(self):
        """Subscribe; returns the pods that exist now."""
        self.reg.graceful_pods = True
        self.sub.start()
        return self.store.list(PODS)[0]

    def stop(self):
        self.sub.stop()

    def get(self, gk, ns, name):
        return self.store.get(gk, ns, name or "")

    def set_pod_status(self, ns, name, uid, status):
        """False when the pod is gone (or is another pod of that name)."""
        return self.reg.set_status(K_POD, ns, name, status, uid, "kubelet") is not None

    def finish_pod_delete(self, ns, name, uid):
        self.reg.finish_pod_delete(ns, name, uid)

    def bind(self, pod):
        """kubesim has no scheduler: bind to the one node; returns the pod."""
        md = pod["metadata"]
        ns, name = md["namespace"], md["name"]
        with self.store.lock:
            cur = self.store.get(PODS, ns, name)
            if cur is None or cur["metadata"]["uid"] != md["uid"]:
                return pod
            cur["spec"]["nodeName"] = NODE
            pod = self.reg.update(K_POD, ns, name, cur, manager="kube-scheduler")
        self.scheduler.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {NODE}")
        return pod

    def event(self, pod, etype, reason, message, field_path=None):
        self.recorder.event(pod, etype, reason, message, field_path)

    def sa_token(self, pod):
        spec = pod.get("spec") or {}
        user = f"system:serviceaccount:{pod['metadata']['namespace']}:{spec.get('serviceAccountName') or 'default'}"
        return self.sim.auth.add_token(user, None, auth.RBAC if self.pod_rbac else None, set_rules=False)

    def ca_pem(self):
        with open(self.sim.ca_crt) as f:
            return f.read()

    def image(self, image, repo):
        return self.sim.images.get(image) or self.sim.images.get(repo)

    def logs_append(self, key, text):
        with self.lock:
            cur = self.sim.logs.get(key, "") + text
            self.sim.logs[key] = cur[-LOG_CAP:] if len(cur) > LOG_CAP else cur

    def logs_rotate(self, key, prev_key):
        with self.lock:
            cur = self.sim.logs.pop(key, None)
            if cur is not None:
                self.sim.logs[prev_key] = cur

    def logs_get(self, key):
        with self.lock:
            return self.sim.logs.get(key, "")


class Kubelet:
    def __init__(self, cluster, bin_dir=None, backoff_scale=0.1, max_grace=2.0):
        self.cluster = cluster
        self.bin_dir = os.path.abspath(bin_dir) if bin_dir else None
        self.scale, self.max_grace = backoff_scale, max_grace
        self.workers, self.done = {}, set()
        self.lock = threading.Lock()
        self.spawner = Spawner()
        self.attempts = {}
        self.next_ip = 1
        self.pods_dir = os.path.join(cluster.state_dir, "pods")
        self.stopped = False
        self.unshare_ok = os.geteuid() == 0 and shutil.which("unshare") is not None

    def start(self):
        os.makedirs(self.pods_dir, exist_ok=True)
        for p in self.cluster.start():
            self._handle("ADDED", p)
        threading.Thread(target=self._loop, name="kubelet", daemon=True).start()

    def stop(self):
        self.stopped = True
        self.cluster.stop()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.kill_now()
        for w in workers:
            w.join(5)

    def _loop(self):
        while not self.stopped:
            try:
                ev = self.cluster.events.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                self._handle(ev.type, ev.obj)
            except Exception:       # noqa: BLE001
                log_exc("kubelet", "event")

    def _handle(self, etype, pod):
        md = pod["metadata"]
        uid = md.get("uid")
        with self.lock:
            w = self.workers.get(uid)
            done = uid in self.done
        if etype == "DELETED":
            if w:
                w.kill_now()
            return
        if w:
            w.update(pod)
            return
        if self.stopped or (md.get("annotations") or {}).get(IGNORE) == "ignore":
            return
        if done or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            if md.get("deletionTimestamp") and md.get("deletionGracePeriodSeconds"):
                self.cluster.finish_pod_delete(md["namespace"], md["name"], uid)   # nothing runs any more
            return
        with self.lock:
            if uid in self.workers or uid in self.done:
                return
            w = PodWorker(self, pod)
            self.workers[uid] = w
        w.start()

    def worker_done(self, w):
        with self.lock:
            self.workers.pop(w.uid, None)
            self.done.add(w.uid)

    def allocate_ip(self):
        with self.lock:
            n = self.next_ip
            self.next_ip += 1
        return f"10.244.{n // 250}.{n % 250 + 2}"

    def attempt(self, pod, container):
        owner = next((r.get("uid") for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")),
                     pod["metadata"]["uid"])
        with self.lock:
            n = self.attempts.get((owner, container), 0)
            self.attempts[(owner, container)] = n + 1
        return n

    def service_account_dir(self, pod):
        """The projected service-account volume: token, ca.crt, namespace."""
        ns = pod["metadata"]["namespace"]
        token = self.cluster.sa_token(pod)
        d = os.path.join(self.pods_dir, pod["metadata"]["uid"], "serviceaccount")
        os.makedirs(d, exist_ok=True)
        ca = self.cluster.ca_pem()
        for name, data, mode in (("token", token, 0o600), ("ca.crt", ca, 0o644), ("namespace", ns, 0o644)):
            tmp = os.path.join(d, f".{name}.tmp")
            with open(tmp, "w") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, os.path.join(d, name))
        return d

    def image_config(self, image):
        """ENTRYPOINT/CMD of an image: registered (--image, POST /images), or
        ours (…/wait-for-job etc.: ENTRYPOINT the binary, FROM scratch)."""
        repo = image.split("@", 1)[0]
        if ":" in repo.rsplit("/", 1)[-1]:
            repo = repo.rsplit(":", 1)[0]
        cfg = self.cluster.image(image, repo)
        if cfg is None and image_base(image) in OURS:
            cfg = {"entrypoint": ["/" + image_base(image)], "cmd": [], "scratch": True}
        return cfg

    def logs_append(self, ns, pod, container, text):
        self.cluster.logs_append((ns, pod, container, False), text)

    def logs_rotate(self, ns, pod, container):
        self.cluster.logs_rotate((ns, pod, container, False), (ns, pod, container, True))

    def backoff(self, n):
        """The kubelet's container back-off (10s doubling, max 5m) times the scale."""
        return min(10.0 * 2 ** max(0, n), 300.0) * self.scale


class PodWorker(threading.Thread):
    def __init__(self, kubelet, pod):
        super().__init__(name=f"pod-{pod['metadata']['name']}", daemon=True)
        self.k, self.pod = kubelet, pod
        md = pod["metadata"]
        self.uid, self.ns, self.name = md["uid"], md["namespace"], md["name"]
        self.cond = threading.Condition(threading.RLock())
        self.publish_lock = threading.Lock()
        self.deleting = bool(md.get("deletionTimestamp"))
        self.gone = False
        spec = pod.get("spec") or {}
        self.policy = spec.get("restartPolicy") or "Always"
        self.inits = [CState(c, True) for c in spec.get("initContainers") or []]
        self.mains = [CState(c, False) for c in spec.get("containers") or []]
        if not self.inits:
            for c in self.mains:
                c.waiting = ("ContainerCreating", None)
        self.conds = {}
        self.sandbox = False
        self.terminal = False
        self.ip = None
        self.start_time = None
        self.sa_dir = None
        self.dir = os.path.join(kubelet.pods_dir, self.uid)

    # ------------------------------------------------------------ signals from the kubelet
    def update(self, pod):
        with self.cond:
            self.pod = pod
            if pod["metadata"].get("deletionTimestamp") and not self.deleting:
                self.deleting = True
                self.cond.notify_all()

    def kill_now(self):
        with self.cond:
            self.gone = self.deleting = True
            self.cond.notify_all()
            procs = [c.proc for c in self.inits + self.mains if c.proc]
        for p in procs:
            p.kill()

    def sleep(self, seconds):
        """Wait, waking early on deletion; True when the pod is being deleted."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while not self.deleting:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return self.deleting

    # ------------------------------------------------------------ lifecycle
    def run(self):
        try:
            self._run()
        except Exception:      # noqa: BLE001
            log_exc("kubelet", f"pod {self.ns}/{self.name}")
        finally:
            self._shutdown_processes()
            try:
                if not self.gone:
                    self.terminal = True
                    self.publish()
                    if self.deleting:
                        self.k.cluster.finish_pod_delete(self.ns, self.name, self.uid)
            except Exception:      # noqa: BLE001
                log_exc("kubelet", f"pod {self.ns}/{self.name} final status")
            self.k.worker_done(self)
            shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self):
        if self.deleting:
            return
        self._bind()
        self.ip = self.k.allocate_ip()
        self.start_time = ts()
        self.publish()
        if not self._wait_volumes():
            return
        self.sandbox = True
        self.publish()
        for c in self.inits:
            code = self._run_container(c)
            if self.deleting or code != 0:
                return
        threads = [threading.Thread(target=self._run_container, args=(c,), daemon=True) for c in self.mains]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _bind(self):
        if not (self.pod.get("spec") or {}).get("nodeName"):
            self.pod = self.k.cluster.bind(self.pod)

    def _wait_volumes(self):
        n = 0
        while True:
            missing = self._missing_volume()
            if not missing:
                return True
            self.k.cluster.event(self.pod, "Warning", "FailedMount", missing)
            if self.sleep(self.k.backoff(n)):
                return False
            n = min(n + 1, 5)

    def _missing_volume(self):
        for v in (self.pod.get("spec") or {}).get("volumes") or []:
            sources = [v]
            sources += [s for s in ((v.get("projected") or {}).get("sources") or [])]
            for s in sources:
                cm, sec = s.get("configMap"), s.get("secret")
                if cm and not cm.get("optional") and self._get(("", "configmaps"), cm.get("name")) is None:
                    return f'MountVolume.SetUp failed for volume "{v.get("name")}" : configmap "{cm.get("name")}" not found'
                name = sec and (sec.get("secretName") or sec.get("name"))
                if sec and not sec.get("optional") and self._get(("", "secrets"), name) is None:
                    return f'MountVolume.SetUp failed for volume "{v.get("name")}" : secret "{name}" not found'
        return None

    def _get(self, gk, name):
        return self.k.cluster.get(gk, self.ns, name)

    def _shutdown_processes(self):
        with self.cond:
            procs = [(c, c.proc) for c in self.inits + self.mains if c.proc]
        for c, p in procs:
            p.kill()

    # ------------------------------------------------------------ one container
    def _field(self, c):
        return f"spec.{'initContainers' if c.init else 'containers'}{{{c.name}}}"

    def _event(self, c, etype, reason, message):
        self.k.cluster.event(self.pod, etype, reason, message, self._field(c) if c else None)

    def _restartable(self, c, code):
        if self.policy == "Never":
            return False
        if c.init or self.policy == "OnFailure":
            return code != 0
        return True

    def _run_container(self, c):
        """Runs c until it need not be restarted; returns its last exit code (None: never ran)."""
        code, pulls, configs = None, 0, 0
        while not self.deleting:
            problem = self._image_problem(c)
            if problem == "invalid":        # stays so until the pod is deleted
                self.sleep(1e9)
                return None
            if problem == "pull":
                if self._pull_backoff(c, pulls):
                    return None
                pulls += 1
                continue
            try:
                env = self._env(c)
            except ConfigError as e:
                self._set_waiting(c, "CreateContainerConfigError", str(e))
                self._event(c, "Warning", "Failed", f"Error: {e}")
                if self.sleep(self.k.backoff(configs)):
                    return None
                configs = min(configs + 1, 5)
                continue
            code = self._start_and_wait(c, env)
            if self.deleting or not self._restartable(c, code):
                return code
            c.crashes += 1
            if c.crashes > 1:
                delay = self.k.backoff(c.crashes - 2)
                msg = (f"back-off {go_duration(delay)} restarting failed container={c.name} "
                       f"pod={self.name}_{self.ns}({self.uid})")
                with self.cond:
                    c.last, c.terminated = c.terminated, None
                    c.waiting = ("CrashLoopBackOff", msg)
                self.publish()
                self._event(c, "Warning", "BackOff", f"Back-off restarting failed container {c.name} in pod "
                                                     f"{self.name}_{self.ns}({self.uid})")
                if self.sleep(delay):
                    return code
        return code

    def _image_problem(self, c):
        image = c.spec.get("image") or ""
        if not image or not IMAGE_RE.match(image):
            msg = f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": ' \
                  f'invalid reference format'
            self._set_waiting(c, "InvalidImageName", msg)
            self._event(c, "Warning", "InspectFailed", msg)
            self._event(c, "Warning", "Failed", "Error: InvalidImageName")
            return "invalid"
        if ":bad" in image:
            return "pull"
        return None

    def _pull_backoff(self, c, n):
        image = c.spec.get("image")
        full = normalize_image(image)
        self._event(c, "Normal", "Pulling", f'Pulling image "{image}"')
        err = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{full}": failed to resolve '
               f'reference "{full}": {full}: not found')
        self._set_waiting(c, "ErrImagePull", err)
        self._event(c, "Warning", "Failed", f'Failed to pull image "{image}": {err}')
        self._event(c, "Warning", "Failed", "Error: ErrImagePull")
        if self.sleep(max(0.2, self.k.backoff(0) / 2)):
            return True
        self._set_waiting(c, "ImagePullBackOff", f'Back-off pulling image "{image}"')
        self._event(c, "Normal", "BackOff", f'Back-off pulling image "{image}"')
        self._event(c, "Warning", "Failed", "Error: ImagePullBackOff")
        return self.sleep(self.k.backoff(n))

    def _set_waiting(self, c, reason, message):
        with self.cond:
            if c.terminated:
                c.last = c.terminated
            c.terminated, c.running_since, c.ready = None, None, False
            c.waiting = (reason, message)
        self.publish()

    # ------------------------------------------------------------ environment
    def _env(self, c):
        pod, ns = self.pod, self.ns
        port, host = str(self.k.cluster.api_port), self.k.cluster.api_host
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": self.name,
               "KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
               "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": f"tcp://{host}:{port}",
               f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
               f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp", f"KUBERNETES_PORT_{port}_TCP_PORT": port,
               f"KUBERNETES_PORT_{port}_TCP_ADDR": host}
        for ef in c.spec.get("envFrom") or []:
            prefix = ef.get("prefix") or ""
            for ref, gk, what in ((ef.get("configMapRef"), ("", "configmaps"), "configmap"),
                                  (ef.get("secretRef"), ("", "secrets"), "secret")):
                if not ref:
                    continue
                obj = self._get(gk, ref.get("name"))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f'{what} "{ref.get("name")}" not found')
                for k, v in (obj.get("data") or {}).items():
                    env[prefix + k] = base64.b64decode(v).decode(errors="replace") if what == "secret" else v
        for e in c.spec.get("env") or []:
            name = e.get("name")
            if "valueFrom" not in e:
                env[name] = expand(str(e.get("value", "")), env)
                continue
            vf = e["valueFrom"]
            if vf.get("fieldRef"):
                env[name] = self._field_ref(vf["fieldRef"].get("fieldPath", ""))
            elif vf.get("configMapKeyRef") or vf.get("secretKeyRef"):
                secret = bool(vf.get("secretKeyRef"))
                ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
                obj = self._get(("", "secrets") if secret else ("", "configmaps"), ref.get("name"))
                what = "secret" if secret else "configmap"
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f'{what} "{ref.get("name")}" not found')
                data = obj.get("data") or {}
                if ref.get("key") not in data:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f'couldn\'t find key {ref.get("key")} in '
                                      f'{"Secret" if secret else "ConfigMap"} {ns}/{ref.get("name")}')
                v = data[ref["key"]]
                env[name] = base64.b64decode(v).decode(errors="replace") if secret else v
            elif vf.get("resourceFieldRef"):
                res = vf["resourceFieldRef"].get("resource", "")
                env[name] = {"limits.cpu": "2", "requests.cpu": "0", "limits.memory": "8589934592",
                             "requests.memory": "0"}.get(res, "0")
        return env

    def _field_ref(self, path):
        pod = self.pod
        md = pod["metadata"]
        m = re.match(r"metadata\.(labels|annotations)\['(.*)'\]$", path)
        if m:
            return (md.get(m.group(1)) or {}).get(m.group(2), "")
        return {"metadata.name": md["name"], "metadata.namespace": md["namespace"], "metadata.uid": md["uid"],
                "spec.nodeName": self.k.cluster.node,
                "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", ""),
                "status.hostIP": self.k.cluster.host_ip, "status.hostIPs": self.k.cluster.host_ip,
                "status.podIP": self.ip or "",
                "status.podIPs": self.ip or ""}.get(path, "")

    # ------------------------------------------------------------ start / wait / stop
    def _command(self, c, env):
        """-> (mode, argv): real (one of our binaries), exec (as given, on this
        machine), sim (simulated), or ("error", StartError text)."""
        image = c.spec.get("image") or ""
        command = [expand(str(x), env) for x in c.spec.get("command") or []]
        args = [expand(str(x), env) for x in c.spec.get("args") or []]
        cfg = self.k.image_config(image)
        if command:                       # command replaces ENTRYPOINT, and CMD with it
            argv = command + args
        elif cfg:
            argv = list(cfg.get("entrypoint") or []) + (args or list(cfg.get("cmd") or []))
        else:
            argv = args
        if argv and os.path.basename(argv[0]) in OURS and (argv[0].startswith("/") or "/" not in argv[0]):
            return "real", [self._bin(os.path.basename(argv[0])), *argv[1:]]
        if cfg and cfg.get("scratch"):    # a FROM-scratch image holds nothing but our binary
            return "error", f'exec: "{argv[0]}": executable file not found in $PATH'
        ann = self.pod["metadata"].get("annotations") or {}
        literal = {e["name"]: str(e.get("value", "")) for e in c.spec.get("env") or [] if "value" in e}
        if cfg or literal.get("KUBESIM_EXEC") == "1" or ann.get("kubesim.io/exec") == "true":
            if not argv:
                return "error", "kubesim: no command: give one, or register the image's ENTRYPOINT/CMD"
            return "exec", argv
        return "sim", None

    def _bin(self, name):
        return os.path.join(self.k.bin_dir, name) if self.k.bin_dir else "/" + name

    def _start_and_wait(self, c, env):
        mode, argv = self._command(c, env)
        attempt = self.k.attempt(self.pod, c.name)
        with self.cond:
            if c.run_seq:
                self.k.logs_rotate(self.ns, self.name, c.name)
            c.run_seq += 1
            if c.terminated:
                c.last = c.terminated
            c.terminated = None
            c.container_id = "containerd://" + secrets.token_hex(32)
            c.started_image = True
            if c.run_seq > 1:
                c.restarts += 1
        image = c.spec.get("image")
        self._event(c, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        started = ts()
        term_src = term_dst = None
        behaviour = None
        error = None
        if mode == "error":
            error = argv
        elif mode in ("real", "exec"):
            error = self._preflight(argv, env)
        if error is None:
            self._event(c, "Normal", "Created", f"Created container: {c.name}")
            try:
                if mode == "sim":
                    behaviour = Behaviour(self.pod, c.spec, attempt)
                    proc = SimProcess(behaviour, lambda t: self.k.logs_append(self.ns, self.name, c.name, t),
                                      self._wake)
                else:
                    os.makedirs(self.dir, exist_ok=True)
                    sa_mount = self._sa_mount(c)
                    if sa_mount and self.sa_dir is None:
                        self.sa_dir = self.k.service_account_dir(self.pod)
                    path = c.spec.get("terminationMessagePath") or "/dev/termination-log"
                    term_src = os.path.join(self.dir, f"{c.name}.{c.run_seq}.termination-log")
                    open(term_src, "w").close()
                    if path.startswith(("/dev/", "/run/", "/var/run/")) and ".." not in path:
                        term_dst = path.replace("/var/run/", "/run/", 1)
                    cwd = c.spec.get("workingDir") or "/"
                    proc = RealProcess(self.k, argv, env, cwd if os.path.isdir(cwd) else "/",
                                       (self.sa_dir, sa_mount) if sa_mount else None,
                                       term_src, term_dst,
                                       lambda t: self.k.logs_append(self.ns, self.name, c.name, t), self._wake)
            except Exception as e:      # noqa: BLE001
                error = f"kubesim: cannot start: {e}"
        if error is not None:
            self._event(c, "Warning", "Failed", f"Error: failed to create containerd task: {error}")
            with self.cond:
                c.terminated = {"exitCode": 128, "reason": "StartError", "message": error,
                                "startedAt": "1970-01-01T00:00:00Z", "finishedAt": ts(),
                                "containerID": c.container_id}
                c.running_since, c.ready = None, False
            self.publish()
            return 128
        self._event(c, "Normal", "Started", f"Started container {c.name}")
        with self.cond:
            c.proc = proc
            c.running_since = started
            c.waiting = (None, None)
            seq = c.run_seq
            if behaviour is None or (behaviour.ready_after == 0 and not behaviour.never_ready):
                c.ready = not c.init
        self.publish()
        if behaviour is not None and behaviour.ready_after > 0 and not behaviour.never_ready and not c.init:
            t = threading.Timer(behaviour.ready_after, self._mark_ready, (c, seq))
            t.daemon = True
            t.start()
        code = self._wait(c, proc)
        message = ""
        if term_src:
            try:
                with open(term_src, "rb") as f:
                    message = f.read(MSG_CAP).decode(errors="replace")
            except OSError:
                pass
        elif behaviour is not None and behaviour.message:
            message = behaviour.message
        if not message and code != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            text = self.k.cluster.logs_get((self.ns, self.name, c.name, False))
            message = "".join(text.splitlines(keepends=True)[-80:])[-2048:]
        with self.cond:
            c.proc = None
            c.terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                            "startedAt": started, "finishedAt": ts(), "containerID": c.container_id}
            if message:
                c.terminated["message"] = message
            c.running_since, c.ready = None, c.init and code == 0
        self.publish()
        return code

    def _sa_mount(self, c):
        """Where c sees the service-account files, or None: at the mount of a
        projected volume with a serviceAccountToken source (what a real API
        server's ServiceAccount admission injects, or what a chart mounts
        into one container only); without such volumes (kubesim injects
        none), at the usual path unless automountServiceAccountToken is false."""
        spec = self.pod.get("spec") or {}
        projected = {v.get("name") for v in spec.get("volumes") or []
                     if any("serviceAccountToken" in s for s in (v.get("projected") or {}).get("sources") or [])}
        for m in c.spec.get("volumeMounts") or []:
            if m.get("name") in projected:
                path = m.get("mountPath") or SA_MOUNT
                return "/run/" + path[len("/var/run/"):] if path.startswith("/var/run/") else path
        if projected or spec.get("automountServiceAccountToken") is False:
            return None
        return SA_MOUNT

    def _preflight(self, argv, env):
        exe = argv[0] if argv else ""
        if not self.k.unshare_ok:
            return "kubesim: running real containers needs root and unshare(1)"
        if "/" in exe:
            if not os.access(exe, os.X_OK):
                return f'exec: "{exe}": stat {exe}: no such file or directory'
        elif not shutil.which(exe, path=env.get("PATH", DEFAULT_PATH)):
            return f'exec: "{exe}": executable file not found in $PATH'
        return None

    def _mark_ready(self, c, seq):
        with self.cond:
            if c.run_seq != seq or not c.running_since or self.deleting:
                return
            c.ready = True
        self.publish()

    def _wake(self):
        with self.cond:
            self.cond.notify_all()

    def _wait(self, c, proc):
        with self.cond:
            while not self.deleting and not proc.done.is_set():
                self.cond.wait(5)
            if proc.done.is_set():
                return proc.code
        # the pod is being deleted: SIGTERM, grace, SIGKILL
        if not self.gone:
            self._event(c, "Normal", "Killing", f"Stopping container {c.name}")
        grace = (self.pod["metadata"].get("deletionGracePeriodSeconds")
                 or (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 0)
        grace = min(float(grace), self.k.max_grace) if not self.gone else 0
        proc.terminate()
        code = proc.wait(grace) if grace > 0 else None
        if code is None:
            proc.kill()
            code = proc.wait(5)
        return 137 if code is None else code

    # ------------------------------------------------------------ status
    def publish(self):
        with self.publish_lock:     # compute + write in order (several container threads publish)
            with self.cond:
                if self.gone:
                    return
                status = self._status()
            if not self.k.cluster.set_pod_status(self.ns, self.name, self.uid, status):
                self.kill_now()

    def _phase(self):
        """kubelet getPhase (v1.32) for regular (non-sidecar) init containers."""
        pending_init = failed_init = 0
        for c in self.inits:
            if c.running_since:
                pending_init += 1
            elif c.terminated:
                if c.terminated["exitCode"] != 0:
                    failed_init += 1
            elif c.last is not None:
                if c.last["exitCode"] != 0:
                    failed_init += 1
            else:
                pending_init += 1
        running = waiting = stopped = succeeded = 0
        for c in self.mains:
            if c.running_since:
                running += 1
            elif c.terminated:
                stopped += 1
                succeeded += c.terminated["exitCode"] == 0
            elif c.last is not None:
                stopped += 1
            else:
                waiting += 1
        if failed_init and self.policy == "Never":
            return "Failed"
        any_started = any(c.run_seq for c in self.mains)
        if (pending_init and not any_started) or waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if self.terminal:
                return "Succeeded" if stopped == succeeded else "Failed"
            if self.policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            return "Failed" if self.policy == "Never" else "Running"
        return "Pending"

    def _set_cond(self, ctype, status, reason=None, message=None):
        cur = self.conds.get(ctype)
        if cur and cur["status"] == status and cur.get("reason") == reason and cur.get("message") == message:
            return cur
        c = {"type": ctype, "status": status, "lastProbeTime": None,
             "lastTransitionTime": cur["lastTransitionTime"] if cur and cur["status"] == status else ts()}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        self.conds[ctype] = c
        return c

    def _status(self):
        phase = self._phase()
        terminal = phase in ("Succeeded", "Failed")
        incomplete = [c.name for c in self.inits if not c.ready]
        if phase == "Succeeded":
            init = self._set_cond("Initialized", "True", "PodCompleted")
        elif any(c.run_seq for c in self.mains) or not incomplete:
            init = self._set_cond("Initialized", "True")
        else:
            init = self._set_cond("Initialized", "False", "ContainersNotInitialized",
                                  f"containers with incomplete status: [{' '.join(incomplete)}]")
        unready = [c.name for c in self.mains if not c.ready]
        if phase == "Succeeded":
            cr = self._set_cond("ContainersReady", "False", "PodCompleted")
            ready = self._set_cond("Ready", "False", "PodCompleted")
        elif unready:
            msg = f"containers with unready status: [{' '.join(unready)}]"
            cr = self._set_cond("ContainersReady", "False", "ContainersNotReady", msg)
            ready = self._set_cond("Ready", "False", "ContainersNotReady", msg)
        else:
            cr = self._set_cond("ContainersReady", "True")
            ready = self._set_cond("Ready", "True")
        sandbox = self._set_cond("PodReadyToStartContainers", "True" if self.sandbox and not terminal else "False")
        sched = self._set_cond("PodScheduled", "True")
        st = {"phase": phase, "conditions": [dict(c) for c in (sandbox, init, ready, cr, sched)],
              "hostIP": self.k.cluster.host_ip, "hostIPs": [{"ip": self.k.cluster.host_ip}]}
        if self.ip:
            st.update(podIP=self.ip, podIPs=[{"ip": self.ip}])
        if self.start_time:
            st["startTime"] = self.start_time
        if self.inits:
            st["initContainerStatuses"] = [c.status() for c in self.inits]
        st["containerStatuses"] = [c.status() for c in self.mains]
        st["qosClass"] = (self.pod.get("status") or {}).get("qosClass") or "BestEffort"
        return st


def expand(text, env):
    """Kubernetes $(VAR) expansion: $(VAR) -> value when defined, $$ -> $."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i):
            j = text.find(")", i)
            name = text[i + 2:j] if j > 0 else None
            if name is not None and name in env:
                out.append(env[name])
                i = j + 1
            else:
                out.append(text[i])
                i += 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
