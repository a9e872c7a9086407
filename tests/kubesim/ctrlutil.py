"""Helpers shared by the controllers and the kubelet: store subscriptions,
an Event recorder, label selectors, time and name helpers."""

import datetime
import hashlib
import queue
import random
import sys
import threading
import time
import traceback

import resources
from registry import ApiError

ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"     # k8s.io/apimachinery/pkg/util/rand
EVENTS = ("", "events")


def log(component, msg):
    sys.stderr.write(f"kubesim {component}: {msg}\n")
    sys.stderr.flush()


def log_exc(component, what):
    log(component, f"{what}: {traceback.format_exc()}")


def rand_suffix(n=5):
    return "".join(random.choice(ALPHANUMS) for _ in range(n))


def safe_encode(s):
    """rand.SafeEncodeString."""
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in s)


def fnv32a(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def ts(t=None):
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(s):
    if not s:
        return None
    return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def seconds_since(s):
    t = parse_ts(s)
    return None if t is None else (now() - t).total_seconds()


def parse_duration(text):
    """'2s', '1.5s', '250ms', '1m', '2' (seconds) -> float seconds."""
    text = str(text).strip()
    if not text:
        return 0.0
    for suffix, mult in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * mult
    return float(text)


def go_duration(seconds):
    """time.Duration.String() for whole and fractional seconds: 10s, 1m20s, 500ms."""
    if seconds < 1:
        return f"{int(round(seconds * 1000))}ms"
    s = round(seconds, 3)
    m, sec = divmod(s, 60)
    sec_txt = f"{sec:g}s"
    if m >= 60:
        h, m = divmod(int(m), 60)
        return f"{h}h{m}m{sec_txt}"
    return f"{int(m)}m{sec_txt}" if m else sec_txt


def selector_matches(sel, labels):
    """metav1.LabelSelector against a labels dict (an empty selector matches everything)."""
    labels = labels or {}
    if sel is None:
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def controller_ref(obj):
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner, block=True):
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": block}


def has_cond(obj, ctype, status="True"):
    return any(c.get("type") == ctype and c.get("status") == status
               for c in (obj.get("status") or {}).get("conditions") or [])


def get_cond(status, ctype):
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


class Subscriber:
    """Receives every store event (called under the store lock: only enqueue).
    Registered like a watcher, so abort_watches() may put ABORT: ignored."""

    def __init__(self, store, gks=None):
        self.store, self.gks = store, gks
        self.queue = self          # abort_watches() calls self.queue.put(ABORT)
        self.events = queue.SimpleQueue()

    def offer(self, ev):
        if self.gks is None or ev.gk in self.gks:
            self.events.put(ev)

    def put(self, item):
        pass

    def start(self):
        with self.store.lock:
            self.store.watchers.add(self)

    def stop(self):
        self.store.unwatch(self)


class EventRecorder:
    """core/v1 Events like client-go's recorder: one object per (object,
    reason, message, source), count and lastTimestamp bumped on repeats."""

    def __init__(self, sim, component, host=None):
        self.sim, self.component, self.host = sim, component, host
        self.lock = threading.Lock()
        self.names = {}

    def event(self, obj, etype, reason, message, field_path=None):
        try:
            self._event(obj, etype, reason, message, field_path)
        except (ApiError, KeyError):
            pass

    def _event(self, obj, etype, reason, message, field_path):
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        kind = resources.by_kind("v1", "Event")
        key = (md.get("uid"), reason, message, field_path, etype)
        stamp = ts()
        reg = self.sim.registry
        with self.lock:
            name = self.names.get(key)
            if name:
                cur = self.sim.store.get(EVENTS, ns, name)
                if cur is not None:
                    cur["count"] = int(cur.get("count") or 1) + 1
                    cur["lastTimestamp"] = stamp
                    reg.update(kind, ns, name, cur, manager=self.component)
                    return
            name = f"{md['name']}.{int(time.time() * 1e9):x}"[:253]
            inv = {"kind": obj.get("kind"), "namespace": md.get("namespace"), "name": md["name"],
                   "uid": md.get("uid"), "apiVersion": obj.get("apiVersion"),
                   "resourceVersion": md.get("resourceVersion")}
            if field_path:
                inv["fieldPath"] = field_path
            source = {"component": self.component}
            if self.host:
                source["host"] = self.host
            ev = {"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": name, "namespace": ns},
                  "involvedObject": {k: v for k, v in inv.items() if v is not None},
                  "reason": reason, "message": message, "source": source,
                  "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": etype,
                  "eventTime": None, "reportingComponent": self.component, "reportingInstance": self.host or ""}
            reg.create(kind, ns, ev, manager=self.component)
            self.names[key] = name


def short_hash(text):
    return hashlib.sha256(text.encode()).hexdigest()
