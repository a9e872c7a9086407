"""Patch algorithms: JSON merge patch (RFC 7386), JSON patch (RFC 6902), a
strategic merge patch that knows the merge keys of the built-in kinds, and an
approximation of server-side apply built on top of it."""

import copy


class PatchError(ValueError):
    pass


# ------------------------------------------------------------ merge patch

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ------------------------------------------------------------ JSON patch

def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    cur = doc
    for p in parts:
        if isinstance(cur, list):
            try:
                cur = cur[int(p)]
            except (ValueError, IndexError):
                raise PatchError(f"path element {p!r} not found")
        elif isinstance(cur, dict) and p in cur:
            cur = cur[p]
        else:
            raise PatchError(f"path element {p!r} not found")
    return cur


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if idx > len(parent):
            raise PatchError("index out of range")
        parent.insert(idx, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc, parts):
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    try:
        if isinstance(parent, list):
            return parent.pop(int(last))
        return parent.pop(last)
    except (KeyError, IndexError, ValueError, AttributeError):
        raise PatchError(f"unable to remove nonexistent key: {last}")


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), _pointer(op.get("path", ""))
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = _remove(doc, src) if kind == "move" else copy.deepcopy(_walk(doc, src))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _walk(doc, path) != op.get("value"):
                raise PatchError(f"testing value {op.get('path')} failed")
        else:
            raise PatchError(f"unexpected kind: {kind}")
    return doc


# ------------------------------------------------------------ strategic merge
# patchMergeKey of list fields in the built-in types (by field name; "ports" is
# containerPort in containers and port in Services, chosen by the elements).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "conditions": "type", "imagePullSecrets": "name", "hostAliases": "ip",
    "ownerReferences": "uid", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "ports": None,
}
PRIMITIVE_MERGE = {"finalizers"}


def _merge_key(field, items):
    if field == "ports":
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def _strip(v):
    """Remove $-directives from a value that is inserted as-is."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


_DELETE = object()


def strategic_merge(target, patch):
    if not isinstance(patch, dict):
        return _strip(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace" or not isinstance(target, dict):
        return _strip(patch)
    result = dict(target)
    orders = {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
        elif k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            result[name] = [x for x in result.get(name) or [] if x not in v]
        elif k == "$retainKeys":
            for key in list(result):
                if key not in v and key not in patch:
                    del result[key]
        elif k.startswith("$"):
            continue
        elif v is None:
            result.pop(k, None)
        elif isinstance(v, list):
            result[k] = _merge_list(result.get(k), v, k)
        else:
            merged = strategic_merge(result.get(k), v)
            if merged is _DELETE:
                result.pop(k, None)
            else:
                result[k] = merged
    for name, order in orders.items():
        if isinstance(result.get(name), list):
            result[name] = _reorder(result[name], order, _merge_key(name, result[name]))
    return result


def _merge_list(current, patch, field):
    current = current if isinstance(current, list) else []
    if field in PRIMITIVE_MERGE:
        return current + [x for x in patch if x not in current]
    key = _merge_key(field, patch + current)
    if not key or not all(isinstance(x, dict) for x in patch):
        return _strip(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return [_strip(x) for x in patch if x.get("$patch") != "replace"]
    result = [copy.deepcopy(x) for x in current]
    for item in patch:
        idx = next((i for i, c in enumerate(result) if isinstance(c, dict) and c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
        elif idx is None:
            result.append(_strip(item))
        else:
            result[idx] = strategic_merge(result[idx], item)
    return result


def _reorder(items, order, key):
    def ident(x):
        return x.get(key) if key and isinstance(x, dict) else x
    wanted = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    ranked = sorted((i for i in items if ident(i) in wanted), key=lambda i: wanted.index(ident(i)))
    return ranked + [i for i in items if ident(i) not in wanted]


# ------------------------------------------------------------ server-side apply
# Approximation: the applied configuration is strategically merged onto the
# live object, and fields this manager applied last time but no longer
# applies are removed.  No ownership conflicts are detected.

def _removals(prev, new, field=None):
    """A strategic-merge patch deleting what is in prev but not in new."""
    if isinstance(prev, dict) and isinstance(new, dict):
        out = {}
        for k, v in prev.items():
            if k not in new:
                out[k] = None
            elif isinstance(v, (dict, list)):
                sub = _removals(v, new[k], k)
                if sub:
                    out[k] = sub
        return out
    if isinstance(prev, list) and isinstance(new, list):
        key = _merge_key(field, prev + new)
        if not key or not all(isinstance(x, dict) for x in prev + new):
            return None
        out = []
        for item in prev:
            match = next((n for n in new if n.get(key) == item.get(key)), None)
            if match is None:
                out.append({key: item.get(key), "$patch": "delete"})
            else:
                sub = _removals(item, match)
                if sub:
                    out.append(dict(sub, **{key: item.get(key)}))
        return out
    return None


def server_side_apply(current, applied, previously_applied):
    base = current
    if previously_applied:
        base = strategic_merge(current, _removals(previously_applied, applied) or {})
    return strategic_merge(base, applied)


def fields_v1(obj):
    """A minimal managedFields fieldsV1 set: map keys only, lists are leaves."""
    if not isinstance(obj, dict):
        return {}
    return {f"f:{k}": fields_v1(v) for k, v in obj.items()
            if k not in ("apiVersion", "kind") and not (k in ("resourceVersion", "uid", "managedFields",
                                                                  "creationTimestamp", "generation"))}
