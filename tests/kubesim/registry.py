"""Object semantics on top of the store: metadata stamping, status
subresource rules, generation, optimistic concurrency, finalizers, patches.
Shared by the API server (validated path) and the control API (force path)."""

import copy
import datetime
import json
import random
import string
import uuid

import patch as patchlib
import resources


def now_rfc3339(plus_seconds=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=plus_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminating_pod(kind, md):
    """A pod in graceful termination stays until the kubelet removes it."""
    return kind.gk == ("", "pods") and bool(md.get("deletionGracePeriodSeconds"))


def status_obj(code, reason, message, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.headers = code, headers or {}
        self.status = status_obj(code, reason, message, details)


def _details(kind, name):
    d = {"name": name}
    if kind.group:
        d["group"] = kind.group
    d["kind"] = kind.plural
    return d


def not_found(kind, name):
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', _details(kind, name))


def conflict(kind, name, why="the object has been modified; please apply your changes to the latest version and try again"):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind.qualified} "{name}": {why}',
                    _details(kind, name))


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def invalid(kind, name, message):
    return ApiError(422, "Invalid", f'{kind.kind} "{name}" is invalid: {message}',
                    dict(_details(kind, name), kind=kind.kind))


def _without_volatile(obj):
    """Object minus fields that change on every write, to detect no-op writes."""
    o = copy.deepcopy(obj)
    md = o.get("metadata", {})
    for k in ("resourceVersion", "managedFields"):
        md.pop(k, None)
    return o


class Registry:
    def __init__(self, store):
        self.store = store
        self.applied = {}     # (gk, ns, name, manager) -> last server-side applied config
        # With a kubelet (kubelet.py) pod deletion is graceful like on a real
        # server: deletionTimestamp + grace, the kubelet stops the containers and
        # then removes the object (finish_pod_delete).
        self.graceful_pods = False
        self.orphan_uids = set()   # owners deleted with propagationPolicy=Orphan (read by the GC)

    # ------------------------------------------------------------ reads
    def get(self, kind, ns, name):
        obj = self.store.get(kind.gk, ns, name)
        if obj is None:
            raise not_found(kind, name)
        return obj

    # ------------------------------------------------------------ helpers
    def _check_shape(self, kind, ns, obj, name=None):
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was not a JSON object")
        api_version, k = obj.setdefault("apiVersion", kind.api_version), obj.setdefault("kind", kind.kind)
        if (api_version, k) != (kind.api_version, kind.kind):
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected "
                              f"API version ({kind.api_version})" if api_version != kind.api_version else
                              f"the kind in the data ({k}) does not match the expected kind ({kind.kind})")
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        if kind.namespaced:
            if md.get("namespace") and ns and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = md.get("namespace") or ns
        else:
            md.pop("namespace", None)
        if name is not None and md.get("name") and md["name"] != name:
            raise bad_request(f"the name of the object ({md['name']}) does not match the name on the URL ({name})")
        if name is not None:
            md["name"] = name
        return md

    @staticmethod
    def _managed(obj, manager, operation, subresource=None, fields=None):
        if not manager:
            return
        entry = {"manager": manager, "operation": operation, "apiVersion": obj.get("apiVersion"),
                 "time": now_rfc3339(), "fieldsType": "FieldsV1",
                 "fieldsV1": patchlib.fields_v1(fields if fields is not None else obj)}
        if subresource:
            entry["subresource"] = subresource
        md = obj["metadata"]
        md["managedFields"] = [m for m in md.get("managedFields") or []
                               if (m.get("manager"), m.get("operation"), m.get("subresource")) !=
                               (manager, operation, subresource)] + [entry]

    # ------------------------------------------------------------ create
    def create(self, kind, ns, obj, dry_run=False, manager=None, operation="Update", check_namespace=True,
               keep_status=False):
        obj = copy.deepcopy(obj)
        md = self._check_shape(kind, ns, obj)
        if not md.get("name"):
            if not md.get("generateName"):
                raise invalid(kind, "", "metadata.name: Required value: name or generateName is required")
            md["name"] = md["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        with self.store.lock:
            if check_namespace and kind.namespaced and self.store.get(("", "namespaces"), "", md["namespace"]) is None:
                raise ApiError(404, "NotFound", f'namespaces "{md["namespace"]}" not found',
                               {"name": md["namespace"], "kind": "namespaces"})
            if self.store.get(kind.gk, md.get("namespace", ""), md["name"]) is not None:
                raise ApiError(409, "AlreadyExists", f'{kind.qualified} "{md["name"]}" already exists',
                               _details(kind, md["name"]))
            for k in ("resourceVersion", "deletionTimestamp", "managedFields"):
                md.pop(k, None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            if kind.generation:
                md["generation"] = 1
            if kind.initial_status is not None and not (keep_status and "status" in obj):
                obj["status"] = copy.deepcopy(kind.initial_status)
            resources.apply_defaults(kind, obj)
            self._managed(obj, manager, operation)
            if dry_run:
                return obj
            return self.store.put(kind.gk, obj)

    # ------------------------------------------------------------ update
    def update(self, kind, ns, name, obj, subresource=None, dry_run=False, manager=None,
               operation="Update", current=None):
        obj = copy.deepcopy(obj)
        self._check_shape(kind, ns, obj, name)
        with self.store.lock:
            cur = current if current is not None else self.get(kind, ns, name)
            rv = obj["metadata"].get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                raise conflict(kind, name)
            if subresource == "status":
                new = copy.deepcopy(cur)
                new["status"] = obj.get("status", {})
            else:
                new = obj
                if "status" in kind.subresources:
                    if "status" in cur:
                        new["status"] = cur["status"]
                    else:
                        new.pop("status", None)
                md, cmd = new["metadata"], cur["metadata"]
                for k in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
                    if k in cmd:
                        md[k] = cmd[k]
                    else:
                        md.pop(k, None)
                md.setdefault("managedFields", cmd.get("managedFields"))
                if md["managedFields"] is None:
                    del md["managedFields"]
                if kind.generation and new.get("spec") != cur.get("spec"):
                    md["generation"] = cmd.get("generation", 0) + 1
                # a Job's pod template is immutable (apis/batch/validation
                # ValidateJobSpecUpdate): a real server answers 422
                if kind.gk == ("batch", "jobs") and \
                        (new.get("spec") or {}).get("template") != (cur.get("spec") or {}).get("template"):
                    what = "Invalid value: core.PodTemplateSpec{...}: field is immutable"
                    raise ApiError(422, "Invalid", f'Job.batch "{name}" is invalid: spec.template: {what}',
                                   dict(_details(kind, name), kind=kind.kind, causes=[
                                       {"reason": "FieldValueInvalid", "message": what, "field": "spec.template"}]))
            return self._commit(kind, cur, new, subresource, dry_run, manager, operation)

    def _commit(self, kind, cur, new, subresource, dry_run, manager, operation, fields=None):
        new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if _without_volatile(new) == _without_volatile(cur):
            return cur     # no-op writes do not bump the resourceVersion (like etcd3 storage)
        self._managed(new, manager, operation, subresource, fields)
        if dry_run:
            return new
        md = new["metadata"]
        if md.get("deletionTimestamp") and not md.get("finalizers") and not _terminating_pod(kind, md):
            return self.store.remove(kind.gk, md.get("namespace", ""), md["name"])
        return self.store.put(kind.gk, new)

    # ------------------------------------------------------------ patch
    def patch(self, kind, ns, name, content_type, body, subresource=None, dry_run=False, manager=None):
        try:
            data = json.loads(body or b"null")
        except ValueError:
            if content_type == "application/apply-patch+yaml":
                raise ApiError(415, "UnsupportedMediaType",
                               "kubesim: server-side apply bodies must be JSON (YAML is not supported)")
            raise bad_request("the body of the request was in an unknown format")
        with self.store.lock:
            if content_type == "application/apply-patch+yaml":
                return self._apply(kind, ns, name, data, subresource, dry_run, manager or "")
            cur = self.get(kind, ns, name)
            try:
                if content_type == "application/json-patch+json":
                    new = patchlib.json_patch(cur, data)
                elif content_type == "application/merge-patch+json":
                    if not isinstance(data, dict):
                        raise patchlib.PatchError("merge patch must be an object")
                    new = patchlib.merge_patch(cur, data)
                elif content_type == "application/strategic-merge-patch+json":
                    if not isinstance(data, dict):
                        raise patchlib.PatchError("strategic merge patch must be an object")
                    new = patchlib.strategic_merge(cur, data)
                else:
                    raise ApiError(415, "UnsupportedMediaType",
                                   f'the body of the request was in an unknown format - accepted media types include: '
                                   f'application/json-patch+json, application/merge-patch+json, '
                                   f'application/apply-patch+yaml, application/strategic-merge-patch+json')
            except patchlib.PatchError as e:
                raise ApiError(422, "Invalid", str(e))
            return self.update(kind, ns, name, new, subresource, dry_run, manager, current=cur)

    def _apply(self, kind, ns, name, applied, subresource, dry_run, manager):
        if not manager:
            raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        if not isinstance(applied, dict) or not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("apiVersion and kind must be set in a server-side apply configuration")
        applied = copy.deepcopy(applied)
        applied.get("metadata", {}).pop("managedFields", None)
        key = (kind.gk, ns, name, manager)
        cur = self.store.get(kind.gk, ns if kind.namespaced else "", name)
        if cur is None:
            obj = self.create(kind, ns, dict(applied, metadata=dict(applied.get("metadata", {}), name=name)),
                              dry_run, manager, "Apply")
        else:
            new = patchlib.server_side_apply(cur, applied, self.applied.get(key))
            obj = self.update(kind, ns, name, new, subresource, dry_run, manager, "Apply", current=cur)
        if not dry_run:
            self.applied[key] = applied
        return obj

    # ------------------------------------------------------------ delete
    def delete(self, kind, ns, name, options=None, dry_run=False):
        options = options or {}
        with self.store.lock:
            cur = self.get(kind, ns, name)
            pre = options.get("preconditions") or {}
            md = cur["metadata"]
            if pre.get("uid") and pre["uid"] != md["uid"]:
                raise conflict(kind, name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                           f"UID in object meta: {md['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
                raise conflict(kind, name, f"Precondition failed: ResourceVersion in precondition: "
                                           f"{pre['resourceVersion']}, ResourceVersion in object meta: {md['resourceVersion']}")
            if dry_run:
                return cur, False
            if options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents"):
                self.orphan_uids.add(md["uid"])
            if kind.gk == ("", "pods") and self.graceful_pods:
                grace = self._pod_grace(cur, options)
                if grace > 0:
                    if not md.get("deletionTimestamp"):
                        md["deletionTimestamp"] = now_rfc3339(grace)
                        md["deletionGracePeriodSeconds"] = grace
                        cur = self.store.put(kind.gk, cur)
                    return cur, False
                if md.get("finalizers"):
                    md["deletionTimestamp"] = md.get("deletionTimestamp") or now_rfc3339()
                    md["deletionGracePeriodSeconds"] = 0
                    return self.store.put(kind.gk, cur), False
            if md.get("finalizers"):
                if not md.get("deletionTimestamp"):
                    md["deletionTimestamp"] = now_rfc3339()
                    md["deletionGracePeriodSeconds"] = 0
                    cur = self.store.put(kind.gk, cur)
                return cur, False
            for k in [k for k in self.applied if k[:3] == (kind.gk, ns, name)]:
                del self.applied[k]
            return self.store.remove(kind.gk, md.get("namespace", ""), name), True

    @staticmethod
    def _pod_grace(pod, options):
        """The real pod strategy: unscheduled or terminal pods go at once; else
        the request's gracePeriodSeconds, else the pod's (default 30)."""
        if not (pod.get("spec") or {}).get("nodeName"):
            return 0
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if options.get("gracePeriodSeconds") is not None:
            return max(0, int(options["gracePeriodSeconds"]))
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return 30 if grace is None else max(0, int(grace))

    def finish_pod_delete(self, ns, name, uid):
        """The kubelet's final delete (grace 0) once the containers stopped."""
        kind = resources.by_kind("v1", "Pod")
        with self.store.lock:
            cur = self.store.get(kind.gk, ns, name)
            if cur is None or cur["metadata"].get("uid") != uid:
                return None
            md = cur["metadata"]
            if md.get("finalizers"):
                md["deletionTimestamp"] = md.get("deletionTimestamp") or now_rfc3339()
                md["deletionGracePeriodSeconds"] = 0
                return self.store.put(kind.gk, cur)
            return self.store.remove(kind.gk, ns, name)

    def set_status(self, kind, ns, name, status, uid=None, manager=None):
        """Replace .status (controllers and the kubelet); None when the object
        is gone or was replaced by another with the same name."""
        with self.store.lock:
            cur = self.store.get(kind.gk, ns, name)
            if cur is None or (uid and cur["metadata"].get("uid") != uid):
                return None
            new = copy.deepcopy(cur)
            new["status"] = status
            return self._commit(kind, cur, new, "status", False, manager, "Update", fields={"status": status})

    # ------------------------------------------------------------ control API (no validation)
    def force_apply(self, obj):
        """Create or replace an object INCLUDING status, keeping uid/creationTimestamp."""
        kind = self._kind_of(obj)
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("name"):
            raise bad_request("metadata.name is required")
        ns = md.get("namespace") or ("default" if kind.namespaced else "")
        with self.store.lock:
            cur = self.store.get(kind.gk, ns, md["name"])
            if cur is None:
                return self.create(kind, ns, obj, check_namespace=False, keep_status=True)
            self._check_shape(kind, ns, obj, md["name"])
            cmd = cur["metadata"]
            for k in ("uid", "creationTimestamp"):
                obj["metadata"][k] = cmd[k]
            if kind.generation:
                gen = cmd.get("generation", 1) + (obj.get("spec") != cur.get("spec"))
                obj["metadata"].setdefault("generation", gen)
            return self._commit(kind, cur, obj, None, False, None, None)

    def force_patch_status(self, api_version, kind_name, ns, name, status):
        kind = self._kind_of({"apiVersion": api_version, "kind": kind_name})
        with self.store.lock:
            cur = self.get(kind, ns if kind.namespaced else "", name)
            new = copy.deepcopy(cur)
            new["status"] = patchlib.strategic_merge(cur.get("status") or {}, status)
            return self._commit(kind, cur, new, "status", False, None, None)

    @staticmethod
    def _kind_of(obj):
        kind = resources.by_kind(obj.get("apiVersion"), obj.get("kind"))
        if kind is None:
            raise bad_request(f"kubesim does not serve {obj.get('apiVersion')}/{obj.get('kind')}")
        return kind
