"""Object storage with ONE global resourceVersion counter, a bounded event
history for watch replay, and watchers fed under the same lock as writes so a
watch never misses or reorders an event."""

import collections
import copy
import queue
import threading

Event = collections.namedtuple("Event", "rv gk type obj old")
ABORT = object()     # queued to a watcher: drop the connection without a clean end


class Expired(Exception):
    def __init__(self, requested, oldest):
        super().__init__(f"too old resource version: {requested} ({oldest})")


class Watcher:
    def __init__(self, gk, namespace, label_match, field_match):
        self.gk, self.namespace = gk, namespace
        self.label_match, self.field_match = label_match, field_match
        self.queue = queue.SimpleQueue()

    def _matches(self, obj):
        if obj is None:
            return False
        md = obj.get("metadata", {})
        if self.namespace and md.get("namespace") != self.namespace:
            return False
        return self.label_match(md.get("labels")) and self.field_match(obj)

    def offer(self, ev):
        """Translate a store event into what this watch sees: an object that
        starts/stops matching the selectors is ADDED/DELETED, like the real server."""
        if ev.gk != self.gk:
            return
        new_ok = self._matches(ev.obj)
        old_ok = self._matches(ev.old) if ev.type == "MODIFIED" else False
        if ev.type == "DELETED":
            new_ok and self.queue.put(("DELETED", ev.obj))
        elif new_ok and old_ok:
            self.queue.put(("MODIFIED", ev.obj))
        elif new_ok:
            self.queue.put(("ADDED", ev.obj))
        elif old_ok:
            self.queue.put(("DELETED", ev.obj))


class Store:
    def __init__(self, history=1000, first_rv=1000):
        self.lock = threading.RLock()
        self.rv = first_rv
        self.objects = collections.defaultdict(dict)   # gk -> {(ns, name): obj}
        self.history = collections.deque(maxlen=max(1, history))
        self.evicted_rv = 0                            # newest RV no longer in history
        self.watchers = set()

    # -- reads (callers get copies; stored objects are never handed out)
    def get(self, gk, ns, name):
        with self.lock:
            obj = self.objects[gk].get((ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, gk, ns=""):
        with self.lock:
            items = [copy.deepcopy(o) for (n, _), o in sorted(self.objects[gk].items()) if not ns or n == ns]
            return items, self.rv

    # -- writes: each bumps the global RV and records one event
    def put(self, gk, obj):
        with self.lock:
            md = obj["metadata"]
            key = (md.get("namespace", ""), md["name"])
            old = self.objects[gk].get(key)
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            self.objects[gk][key] = obj
            self._record(Event(self.rv, gk, "MODIFIED" if old else "ADDED", copy.deepcopy(obj), old))
            return copy.deepcopy(obj)

    def remove(self, gk, ns, name):
        with self.lock:
            obj = self.objects[gk].pop((ns, name))
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._record(Event(self.rv, gk, "DELETED", obj, None))
            return copy.deepcopy(obj)

    def _record(self, ev):
        if len(self.history) == self.history.maxlen:
            self.evicted_rv = self.history[0].rv
        self.history.append(ev)
        for w in list(self.watchers):
            w.offer(ev)

    # -- watches
    def watch(self, gk, ns, label_match, field_match, since_rv=None):
        """Register a watcher.  since_rv None: synthetic ADDED for the current
        state first; otherwise replay history after since_rv (Expired if gone)."""
        w = Watcher(gk, ns, label_match, field_match)
        with self.lock:
            if since_rv is None:
                for (_, _), obj in sorted(self.objects[gk].items()):
                    if w._matches(obj):
                        w.queue.put(("ADDED", copy.deepcopy(obj)))
            else:
                if since_rv < self.evicted_rv:
                    raise Expired(since_rv, self.evicted_rv)
                for ev in self.history:
                    if ev.rv > since_rv:
                        w.offer(ev)
            self.watchers.add(w)
            return w, self.rv

    def unwatch(self, w):
        with self.lock:
            self.watchers.discard(w)

    def abort_watches(self):
        with self.lock:
            for w in self.watchers:
                w.queue.put(ABORT)
