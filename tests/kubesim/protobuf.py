"""Just enough Kubernetes protobuf decoding for request bodies kubectl sends
only as protobuf (its typed clients: `kubectl create configmap|secret|
namespace|serviceaccount|role|rolebinding|...`, `kubectl auth can-i`).
Schemas below cover those kinds; any other protobuf body gets 415.
Responses are always JSON, which client-go accepts."""

import base64

from registry import ApiError, bad_request

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


def _fields(data):
    """Decode one message into [(field number, value)]: varints as int,
    length-delimited as bytes; other wire types are rejected."""
    out, i = [], 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            if i >= len(data):
                raise bad_request("truncated protobuf")
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value
    while i < len(data):
        key = varint()
        wire = key & 7
        if wire == 0:
            value = varint()
        elif wire == 2:
            n = varint()
            value, i = data[i:i + n], i + n
        else:
            raise bad_request(f"unsupported protobuf wire type {wire}")
        out.append((key >> 3, value))
    return out


# Field types: "s" string, "b" bytes (base64 in JSON), "?" bool, "i" int64,
# "[s" repeated string, "{s"/"{b" map to string/bytes, dict = message,
# [dict] = repeated message.
OBJECT_META = {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"), 5: ("uid", "s"),
               6: ("resourceVersion", "s"), 11: ("labels", "{s"), 12: ("annotations", "{s"),
               14: ("finalizers", "[s")}
OBJECT_REF = {1: ("kind", "s"), 2: ("namespace", "s"), 3: ("name", "s"), 5: ("apiVersion", "s")}
POLICY_RULE = {1: ("verbs", "[s"), 2: ("apiGroups", "[s"), 3: ("resources", "[s"),
               4: ("resourceNames", "[s"), 5: ("nonResourceURLs", "[s")}
BINDING = {1: ("metadata", OBJECT_META),
           2: ("subjects", [{1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")}]),
           3: ("roleRef", {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")})}
RESOURCE_ATTRS = {1: ("namespace", "s"), 2: ("verb", "s"), 3: ("group", "s"), 4: ("version", "s"),
                  5: ("resource", "s"), 6: ("subresource", "s"), 7: ("name", "s")}
SCHEMAS = {
    "ConfigMap": {1: ("metadata", OBJECT_META), 2: ("data", "{s"), 3: ("binaryData", "{b"), 4: ("immutable", "?")},
    "Secret": {1: ("metadata", OBJECT_META), 2: ("data", "{b"), 3: ("type", "s"), 4: ("stringData", "{s"),
               5: ("immutable", "?")},
    "Namespace": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("finalizers", "[s")})},
    "ServiceAccount": {1: ("metadata", OBJECT_META), 2: ("secrets", [OBJECT_REF]),
                       3: ("imagePullSecrets", [{1: ("name", "s")}]), 4: ("automountServiceAccountToken", "?")},
    "Role": {1: ("metadata", OBJECT_META), 2: ("rules", [POLICY_RULE])},
    "ClusterRole": {1: ("metadata", OBJECT_META), 2: ("rules", [POLICY_RULE])},
    "RoleBinding": BINDING,
    "ClusterRoleBinding": BINDING,
    # DELETE bodies of typed clients (helm uninstall, helm's release storage)
    "DeleteOptions": {1: ("gracePeriodSeconds", "i"), 2: ("preconditions", {1: ("uid", "s"), 2: ("resourceVersion", "s")}),
                      3: ("orphanDependents", "?"), 4: ("propagationPolicy", "s"), 5: ("dryRun", "[s")},
    "SelfSubjectAccessReview": {1: ("metadata", OBJECT_META), 2: ("spec", {
        1: ("resourceAttributes", RESOURCE_ATTRS), 2: ("nonResourceAttributes", {1: ("path", "s"), 2: ("verb", "s")})})},
}


def _decode(data, schema):
    obj = {}
    for number, value in _fields(data):
        if number not in schema:
            continue       # fields kubesim does not model are dropped
        name, typ = schema[number]
        if isinstance(typ, dict):
            obj[name] = _decode(value, typ)
        elif isinstance(typ, list):
            obj.setdefault(name, []).append(_decode(value, typ[0]))
        elif typ == "s":
            if value:          # proto2 encodes unset strings as ""; JSON omits them
                obj[name] = value.decode()
        elif typ == "b":
            obj[name] = base64.b64encode(value).decode()
        elif typ == "?":
            obj[name] = bool(value)
        elif typ == "i":
            obj[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif typ == "[s":
            obj.setdefault(name, []).append(value.decode())
        elif typ in ("{s", "{b"):
            entry = dict(_fields(value))
            v = entry.get(2, b"")
            obj.setdefault(name, {})[entry.get(1, b"").decode()] = (
                v.decode() if typ == "{s" else base64.b64encode(v).decode())
    return obj


def decode(body):
    """A k8s protobuf envelope (magic + runtime.Unknown) to a JSON-shaped object."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body without the k8s envelope")
    envelope = dict(_fields(body[len(MAGIC):]))
    type_meta = dict(_fields(envelope.get(1, b"")))
    api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
    if kind not in SCHEMAS:
        raise ApiError(415, "UnsupportedMediaType",
                       f"kubesim decodes protobuf only for {', '.join(sorted(SCHEMAS))}, not {kind}; "
                       f"send JSON (e.g. kubectl create -f / apply -f)")
    return dict(apiVersion=api_version, kind=kind, **_decode(envelope.get(2, b""), SCHEMAS[kind]))
