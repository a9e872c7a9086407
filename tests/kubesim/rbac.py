"""Authorisation from the stored RBAC objects (Role, RoleBinding, ClusterRole,
ClusterRoleBinding), like the real RBAC authorizer, for users whose rules are
auth.RBAC: the service-account tokens the kubelet mounts into pods (and any
user registered with POST /tokens {"rbac": true}).

Subjects: ServiceAccount (namespace defaults to the binding's), User, Group
(service accounts are in system:serviceaccounts, system:serviceaccounts:NS and
system:authenticated).  Rules: verbs, apiGroups, resources (incl. "*",
"sub/resource", "*/status"), resourceNames, nonResourceURLs.  The built-in
ClusterRole cluster-admin is known even when not stored; the aggregated
admin/edit/view roles are not."""

import auth

RBAC_GROUP = "rbac.authorization.k8s.io"
CLUSTER_ADMIN = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                 {"nonResourceURLs": ["*"], "verbs": ["*"]}]


def groups_of(user):
    groups = ["system:authenticated"]
    if user.startswith("system:serviceaccount:"):
        ns = user.split(":")[2]
        groups += ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    return groups


def _applies(subject, user, groups, binding_ns):
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return bool(ns) and user == f"system:serviceaccount:{ns}:{subject.get('name')}"
    if kind == "User":
        return subject.get("name") == user
    if kind == "Group":
        return subject.get("name") in groups
    return False


def _non_resource_allows(rule, a):
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a["verb"] not in verbs:
        return False
    for url in rule.get("nonResourceURLs") or []:
        if url == "*" or url == a["path"] or (url.endswith("*") and a["path"].startswith(url[:-1])):
            return True
    return False


class Authorizer:
    def __init__(self, store):
        self.store = store

    def _role_rules(self, ref, ns):
        kind, name = ref.get("kind"), ref.get("name")
        if kind == "ClusterRole":
            role = self.store.get((RBAC_GROUP, "clusterroles"), "", name)
            if role is None and name == "cluster-admin":
                return CLUSTER_ADMIN
        elif kind == "Role" and ns:
            role = self.store.get((RBAC_GROUP, "roles"), ns, name)
        else:
            role = None
        return (role or {}).get("rules") or []

    def rules_for(self, user, ns):
        groups = groups_of(user)
        rules = []
        crbs, _ = self.store.list((RBAC_GROUP, "clusterrolebindings"))
        for b in crbs:
            if any(_applies(s, user, groups, "") for s in b.get("subjects") or []):
                rules += self._role_rules(b.get("roleRef") or {}, "")
        if ns:
            rbs, _ = self.store.list((RBAC_GROUP, "rolebindings"), ns)
            for b in rbs:
                if any(_applies(s, user, groups, ns) for s in b.get("subjects") or []):
                    rules += self._role_rules(b.get("roleRef") or {}, ns)
        return rules

    def __call__(self, user, attrs):
        rules = self.rules_for(user, attrs.get("namespace", "") if attrs["resource_request"] else "")
        if not attrs["resource_request"]:
            return any(_non_resource_allows(r, attrs) for r in rules)
        return any(auth.rule_allows(r, attrs) for r in rules if r.get("resources"))
