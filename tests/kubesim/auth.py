"""Bearer tokens, client certificates and an RBAC-lite rule matcher.

Rules belong to a user (every token of that user shares them).  A user whose
rules are None has full access.  A rule is a PolicyRule
{apiGroups, resources, verbs, resourceNames} plus an optional kubesim
extension "namespaces" (empty/absent = every namespace and cluster scope)."""

import secrets
import threading
import time

# Paths any authenticated user may GET (the real system:discovery and
# system:public-info-viewer roles).
DISCOVERY_PREFIXES = ("/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz")
SELF_REVIEW = ("authorization.k8s.io", "selfsubjectaccessreviews", "create")
RBAC = "rbac"          # a user's rules: authorise with the stored Roles/RoleBindings (rbac.py)


class Auth:
    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {}       # token -> [user, expires_at or None]
        self.rules = {}        # user -> list of rules, None for full access, or RBAC
        self.rbac = None       # callable(user, attrs) -> bool, set when RBAC is served (rbac.py)
        self.groups = {}       # certificate user -> its O groups

    def add_token(self, user, token=None, rules=None, set_rules=False, ttl=None):
        """ttl: seconds the token works (a short-lived exec-plugin credential); None = until rotated."""
        token = token or secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = [user, time.time() + ttl if ttl is not None else None]
            if set_rules or user not in self.rules:
                self.rules[user] = rules
        return token

    def authenticate(self, header, peercert=None):
        """The user of a request: a verified client certificate first (the
        real API server's union authenticator tries x509 before tokens), then
        a bearer token."""
        user = self.authenticate_cert(peercert)
        if user is not None:
            return user
        if not header or not header.startswith("Bearer "):
            return None
        token = header[len("Bearer "):].strip()
        with self.lock:
            entry = self.tokens.get(token)
            if not entry:
                return None
            if entry[1] is not None and time.time() >= entry[1]:
                del self.tokens[token]
                return None
            return entry[0]

    def authenticate_cert(self, peercert):
        """A client certificate the TLS layer verified against the CA: CN is
        the user, each O a group (x509 authenticator of kube-apiserver).
        Members of system:masters are authorised for everything."""
        if not peercert:
            return None
        cn, orgs = None, []
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
                elif key == "organizationName":
                    orgs.append(value)
        if not cn:
            return None
        with self.lock:
            self.groups[cn] = orgs
            if "system:masters" in orgs:
                self.rules[cn] = None
            elif cn not in self.rules:
                self.rules[cn] = RBAC
        return cn

    def groups_of(self, user):
        """The O groups of a certificate user (empty for token users)."""
        with self.lock:
            return list(self.groups.get(user, ()))

    def rotate(self, user, grace_seconds=0):
        """Issue a new token for user; its other tokens stop working after the grace."""
        new = secrets.token_urlsafe(32)
        with self.lock:
            expires = time.time() + grace_seconds
            for tok, entry in list(self.tokens.items()):
                if entry[0] == user:
                    if grace_seconds <= 0:
                        del self.tokens[tok]
                    elif entry[1] is None or entry[1] > expires:
                        entry[1] = expires
            self.tokens[new] = [user, None]
        return new

    def authorize(self, user, attrs):
        """attrs: dict verb, group, resource, subresource, namespace, name, path, resource_request."""
        with self.lock:
            rules = self.rules.get(user)
        if rules is None:
            return True
        if not attrs["resource_request"]:
            path = attrs["path"]
            return attrs["verb"] == "get" and any(path == p or path.startswith(p + "/") for p in DISCOVERY_PREFIXES)
        if (attrs["group"], attrs["resource"], attrs["verb"]) == SELF_REVIEW:
            return True     # system:basic-user: anyone may ask what they may do
        if rules == RBAC:
            return bool(self.rbac and self.rbac(user, attrs))
        return any(rule_allows(r, attrs) for r in rules)


def rule_allows(rule, a):
    def has(key, value):
        values = rule.get(key) or []
        return "*" in values or value in values
    resource = a["resource"] + ("/" + a["subresource"] if a["subresource"] else "")
    if not has("verbs", a["verb"]) or not has("apiGroups", a["group"]):
        return False
    if not (has("resources", resource) or (a["subresource"] and has("resources", "*/" + a["subresource"]))):
        return False
    names = rule.get("resourceNames") or []
    if names and a["name"] not in names:
        return False
    namespaces = rule.get("namespaces") or []
    return not namespaces or a["namespace"] in namespaces


def forbidden_message(user, a):
    """Worded exactly like the real API server's authorization filter."""
    if not a["resource_request"]:
        return f'forbidden: User "{user}" cannot {a["verb"]} path "{a["path"]}"'
    resource = a["resource"] + ("/" + a["subresource"] if a["subresource"] else "")
    qualified = f'{a["resource"]}.{a["group"]}' if a["group"] else a["resource"]
    subject = f'{qualified} "{a["name"]}"' if a["name"] else qualified
    where = (f'in the namespace "{a["namespace"]}"' if a["namespace"] else "at the cluster scope")
    return (f'{subject} is forbidden: User "{user}" cannot {a["verb"]} resource "{resource}" '
            f'in API group "{a["group"]}" {where}')
