"""meta.k8s.io/v1 Table responses, with the columns and cell formats of the
real API server's printers (pkg/printers/internalversion) so `kubectl get`
prints what it prints against a real cluster."""

import datetime


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _parse_ts(ts):
    if not ts:
        return None
    return datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def _since(ts):
    t = _parse_ts(ts)
    if t is None:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def _age(obj):
    return _since(obj.get("metadata", {}).get("creationTimestamp"))


def _containers(spec):
    cs = (spec or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector(sel):
    """metav1.FormatLabelSelector."""
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, vals = e.get("operator", ""), ",".join(sorted(e.get("values") or []))
        if op == "In":
            parts.append(f"{e['key']} in ({vals})")
        elif op == "NotIn":
            parts.append(f"{e['key']} notin ({vals})")
        elif op == "Exists":
            parts.append(e["key"])
        elif op == "DoesNotExist":
            parts.append("!" + e["key"])
    return ",".join(parts) if parts else "<none>"


def _has_cond(obj, ctype):
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _col(name, typ="string", priority=0, fmt="", desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


NAME = _col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE = _col("Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created.")


# ---------------------------------------------------------------- printers

def _pod(o):
    """printPod of pkg/printers/internalversion (v1.32), regular init containers."""
    st, spec = o.get("status") or {}, o.get("spec") or {}
    total = len(spec.get("containers") or [])
    ready = restarts = 0
    last_restart = None
    phase = st.get("phase") or ""
    reason = st.get("reason") or phase
    for c in st.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def note_restart(cs):
        nonlocal last_restart
        fin = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if fin and (last_restart is None or fin > last_restart):
            last_restart = fin
    initializing = False
    n_init = len(spec.get("initContainers") or [])
    for i, c in enumerate(st.get("initContainerStatuses") or []):
        restarts += int(c.get("restartCount", 0))
        note_restart(c)
        state = c.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            if not term.get("reason"):
                reason = (f"Init:Signal:{term['signal']}" if term.get("signal")
                          else f"Init:ExitCode:{term.get('exitCode')}")
            else:
                reason = "Init:" + term["reason"]
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break
    initialized = _has_cond(o, "Initialized")
    if not initializing or initialized:
        restarts, last_restart = 0, None
        has_running = False
        for c in reversed(st.get("containerStatuses") or []):
            restarts += int(c.get("restartCount", 0))
            note_restart(c)
            state = c.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif c.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_cond(o, "Ready") else "NotReady"
    if o["metadata"].get("deletionTimestamp") and st.get("reason") == "NodeLost":
        reason = "Unknown"
    elif o["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_txt = str(restarts)
    if restarts and last_restart:
        restarts_txt = f"{restarts} ({_since(last_restart)} ago)"
    gates = "<none>"
    if spec.get("readinessGates"):
        true = sum(1 for g in spec["readinessGates"] if _has_cond(o, g.get("conditionType")))
        gates = f"{true}/{len(spec['readinessGates'])}"
    return [o["metadata"]["name"], f"{ready}/{total}", reason, restarts_txt, _age(o),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            st.get("nominatedNodeName") or "<none>", gates]


def _job(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    succeeded = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = _parse_ts(st.get("startTime")), _parse_ts(st.get("completionTime"))
    if start is None:
        duration = ""
    elif end is None:
        duration = _since(st.get("startTime"))
    else:
        duration = human_duration((end - start).total_seconds())
    if _has_cond(o, "Complete"):
        status = "Complete"
    elif _has_cond(o, "Failed"):
        status = "Failed"
    elif o["metadata"].get("deletionTimestamp"):
        status = "Terminating"
    elif _has_cond(o, "Suspended"):
        status = "Suspended"
    elif _has_cond(o, "FailureTarget"):
        status = "FailureTarget"
    else:
        status = "Running"
    names, images = _containers(spec.get("template", {}).get("spec"))
    return [o["metadata"]["name"], status, completions, duration, _age(o), names, images,
            _selector(spec.get("selector"))]


def _deployment(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers(spec.get("template", {}).get("spec"))
    return [o["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _age(o), names, images,
            _selector(spec.get("selector"))]


def _replicaset(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers(spec.get("template", {}).get("spec"))
    return [o["metadata"]["name"], spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0),
            _age(o), names, images, _selector(spec.get("selector"))]


def _statefulset(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers(spec.get("template", {}).get("spec"))
    return [o["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", _age(o), names, images]


def _daemonset(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers(spec.get("template", {}).get("spec"))
    node_sel = spec.get("template", {}).get("spec", {}).get("nodeSelector") or {}
    return [o["metadata"]["name"], st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0),
            st.get("numberReady", 0), st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_sel.items())) or "<none>", _age(o), names, images,
            _selector(spec.get("selector"))]


def _service(o):
    spec = o.get("spec") or {}
    ports = ",".join(f"{p.get('port')}" + (f":{p['nodePort']}" if p.get("nodePort") else "") +
                     f"/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    ext = ",".join(spec.get("externalIPs") or []) or "<none>"
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [o["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>",
            ext, ports, _age(o), sel]


def _configmap(o):
    return [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o)]


def _secret(o):
    return [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}), _age(o)]


def _namespace(o):
    return [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), _age(o)]


def _serviceaccount(o):
    return [o["metadata"]["name"], len(o.get("secrets") or []), _age(o)]


def _lease(o):
    return [o["metadata"]["name"], (o.get("spec") or {}).get("holderIdentity") or "", _age(o)]


def _event(o):
    inv = o.get("involvedObject") or {}
    last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    return [_since(last), o.get("type", ""), o.get("reason", ""),
            f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", o.get("message", ""),
            (o.get("source") or {}).get("component", ""), "", _since(o.get("firstTimestamp") or last),
            o.get("count", 1), o.get("metadata", {}).get("name")]


def _default(o):
    return [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]


W = 1   # priority of -o wide columns
PRINTERS = {
    ("", "pods"): ([NAME, _col("Ready"), _col("Status"), _col("Restarts", "string"), AGE, _col("IP", priority=W),
                    _col("Node", priority=W), _col("Nominated Node", priority=W),
                    _col("Readiness Gates", priority=W)], _pod),
    ("batch", "jobs"): ([NAME, _col("Status"), _col("Completions"), _col("Duration"), AGE,
                         _col("Containers", priority=W), _col("Images", priority=W),
                         _col("Selector", priority=W)], _job),
    ("apps", "deployments"): ([NAME, _col("Ready"), _col("Up-to-date", "string"), _col("Available", "string"), AGE,
                               _col("Containers", priority=W), _col("Images", priority=W),
                               _col("Selector", priority=W)], _deployment),
    ("apps", "replicasets"): ([NAME, _col("Desired", "integer"), _col("Current", "integer"),
                               _col("Ready", "integer"), AGE, _col("Containers", priority=W),
                               _col("Images", priority=W), _col("Selector", priority=W)], _replicaset),
    ("apps", "statefulsets"): ([NAME, _col("Ready"), AGE, _col("Containers", priority=W),
                                _col("Images", priority=W)], _statefulset),
    ("apps", "daemonsets"): ([NAME, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                              _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Node Selector"),
                              AGE, _col("Containers", priority=W), _col("Images", priority=W),
                              _col("Selector", priority=W)], _daemonset),
    ("", "services"): ([NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE,
                        _col("Selector", priority=W)], _service),
    ("", "configmaps"): ([NAME, _col("Data", "string"), AGE], _configmap),
    ("", "secrets"): ([NAME, _col("Type"), _col("Data", "string"), AGE], _secret),
    ("", "namespaces"): ([NAME, _col("Status"), AGE], _namespace),
    ("", "serviceaccounts"): ([NAME, _col("Secrets", "string"), AGE], _serviceaccount),
    ("coordination.k8s.io", "leases"): ([NAME, _col("Holder"), AGE], _lease),
    ("", "events"): ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message"),
                      _col("Source", priority=W), _col("Subobject", priority=W), _col("First Seen", priority=W),
                      _col("Count", priority=W), _col("Name", priority=W)], _event),
}
DEFAULT = ([NAME, _col("Created At", "date",
                       desc="CreationTimestamp is a timestamp representing the server time when this object was created.")],
           _default)


def to_table(kind, items, resource_version, include_object="Metadata"):
    columns, printer = PRINTERS.get(kind.gk, DEFAULT)
    rows = []
    for o in items:
        row = {"cells": printer(o)}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o.get("metadata", {})}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(resource_version)},
            "columnDefinitions": columns, "rows": rows}
