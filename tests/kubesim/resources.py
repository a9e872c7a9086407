"""The one table of kinds kubesim serves, plus discovery and OpenAPI documents
derived from it.  Adding a kind = adding one Kind(...) line (and optionally a
table printer in tables.py and a defaulter below)."""

from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple = ()
    categories: tuple = ()
    subresources: tuple = ()          # "status", "log"
    generation: bool = False          # metadata.generation maintained on spec change
    verbs: tuple = tuple(ALL_VERBS)
    initial_status: dict = field(default=None, hash=False, compare=False)
    virtual: bool = False             # not stored: answered by a handler (reviews)

    @property
    def singular(self):
        return self.kind.lower()

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gk(self):
        """Storage key: group + plural (one version per group here)."""
        return (self.group, self.plural)

    @property
    def qualified(self):
        """How the real API server names the resource in messages: jobs.batch, configmaps."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS = [
    Kind("", "v1", "pods", "Pod", short_names=("po",), categories=("all",),
         subresources=("status", "log"), initial_status={"phase": "Pending", "qosClass": "BestEffort"}),
    Kind("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "events", "Event", short_names=("ev",)),
    Kind("", "v1", "services", "Service", short_names=("svc",), categories=("all",),
         subresources=("status",), initial_status={"loadBalancer": {}}),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    Kind("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",),
         subresources=("status",), verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
         initial_status={"phase": "Active"}),
    Kind("apps", "v1", "deployments", "Deployment", short_names=("deploy",), categories=("all",),
         subresources=("status",), generation=True, initial_status={}),
    Kind("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), categories=("all",),
         subresources=("status",), generation=True, initial_status={"replicas": 0}),
    Kind("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), categories=("all",),
         subresources=("status",), generation=True, initial_status={"replicas": 0, "availableReplicas": 0}),
    Kind("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",), categories=("all",),
         subresources=("status",), generation=True,
         initial_status={"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                         "numberMisscheduled": 0, "numberReady": 0}),
    Kind("batch", "v1", "jobs", "Job", categories=("all",), subresources=("status",),
         generation=True, initial_status={}),
    Kind("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), categories=("all",),
         subresources=("status",), generation=True, initial_status={}),
    Kind("coordination.k8s.io", "v1", "leases", "Lease"),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    Kind("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
         namespaced=False, verbs=("create",), virtual=True),
]

_BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
_BY_KIND = {(k.api_version, k.kind): k for k in KINDS if not k.virtual}


def by_path(group, version, plural):
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version, kind):
    return _BY_KIND.get((api_version, kind))


def group_versions():
    """Ordered [(group, version)] with the core group first, like the real server."""
    seen = []
    for k in KINDS:
        if (k.group, k.version) not in seen:
            seen.append((k.group, k.version))
    return seen


# ---------------------------------------------------------------- discovery

def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_doc(group):
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions() if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list():
    groups = [g for g, _ in group_versions() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_doc(g) for g in dict.fromkeys(groups)]}


def api_group(group):
    if not any(g == group for g, _ in group_versions() if g):
        return None
    return dict(kind="APIGroup", apiVersion="v1", **_group_doc(group))


def api_resource_list(group, version):
    kinds = [k for k in KINDS if k.group == group and k.version == version]
    if not kinds:
        return None
    resources = []
    for k in kinds:
        r = {"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
             "kind": k.kind, "verbs": list(k.verbs)}
        if k.short_names:
            r["shortNames"] = list(k.short_names)
        if k.categories:
            r["categories"] = list(k.categories)
        resources.append(r)
        for sub in k.subresources:
            resources.append({"name": f"{k.plural}/{sub}", "singularName": "", "namespaced": k.namespaced,
                              "kind": k.kind, "verbs": STATUS_VERBS if sub == "status" else ["get"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


# ---------------------------------------------------------------- OpenAPI v3
# kubectl create/apply (validate=strict by default) asks OpenAPI v3 whether the
# server accepts ?fieldValidation= on PATCH for the kind; answering "yes" makes
# kubectl delegate validation to the server instead of failing for lack of a
# schema.  No schemas are served: kubectl then builds strategic-merge patches
# from its compiled-in types, exactly as it does for built-in kinds.

def _gv_path(group, version):
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_root():
    return {"paths": {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash=kubesim"}
                      for g, v in group_versions()}}


def openapi_gv(gv_path):
    for g, v in group_versions():
        if _gv_path(g, v) == gv_path:
            break
    else:
        return None
    paths = {}
    for k in KINDS:
        if (k.group, k.version) != (g, v):
            continue
        prefix = "/" + gv_path + ("/namespaces/{namespace}" if k.namespaced else "")
        paths[f"{prefix}/{k.plural}/{{name}}"] = {"patch": {
            "operationId": f"patch{k.kind}",
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                           {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                           {"name": "dryRun", "in": "query", "schema": {"type": "string"}}],
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": k.kind}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (kubesim)", "version": "v1.32.0"},
            "paths": paths, "components": {}}


# ---------------------------------------------------------------- defaulting
# A little of the real server's defaulting, where kubectl output depends on it.

def _default_job(obj):
    spec = obj.setdefault("spec", {})
    uid = obj["metadata"]["uid"]
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("completions") is None and spec.get("parallelism") == 1:
        spec["completions"] = 1
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    tmeta = spec.setdefault("template", {}).setdefault("metadata", {})
    labels = tmeta.setdefault("labels", {})
    for key in ("batch.kubernetes.io/controller-uid", "controller-uid"):
        labels.setdefault(key, uid)
    for key in ("batch.kubernetes.io/job-name", "job-name"):
        labels.setdefault(key, obj["metadata"]["name"])


def _default_deployment(obj):
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("strategy", {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})


def _image_tag(image):
    """The tag of an image reference ("" when none; digests count as a tag)."""
    if "@" in image:
        return "digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _default_pod(obj):
    """The API server's Pod defaulting that the kubelet and kubectl output depend on."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = sa
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if not isinstance(c, dict):
            continue
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        if "imagePullPolicy" not in c:
            c["imagePullPolicy"] = "Always" if _image_tag(c.get("image") or "") in ("", "latest") else "IfNotPresent"


def _default_replicaset(obj):
    obj.setdefault("spec", {}).setdefault("replicas", 1)


def _default_secret(obj):
    obj["type"] = obj.get("type") or "Opaque"


DEFAULTERS = {("batch", "jobs"): _default_job, ("apps", "deployments"): _default_deployment,
              ("", "secrets"): _default_secret, ("", "pods"): _default_pod,
              ("apps", "replicasets"): _default_replicaset}


def apply_defaults(kind, obj):
    fn = DEFAULTERS.get(kind.gk)
    if fn:
        fn(obj)
