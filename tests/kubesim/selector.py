"""Label and field selectors with the real API server's syntax and semantics."""

import re


class SelectorError(ValueError):
    pass


def _split_top(s):
    """Split on commas that are not inside parentheses (set-based values)."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_RE_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_RE_EQ = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)$")
_RE_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^)]*)\)$")
_RE_CMP = re.compile(rf"^({_KEY})\s*(<|>)\s*(-?\d+)$")


def parse_labels(text):
    """Return a predicate over a labels dict; '' selects everything."""
    reqs = []
    for part in _split_top(text or ""):
        m = _RE_SET.match(part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(2), m.group(1), values))
            continue
        m = _RE_EQ.match(part)
        if m:
            reqs.append(("!=" if m.group(2) == "!=" else "=", m.group(1), m.group(3)))
            continue
        m = _RE_CMP.match(part)
        if m:
            reqs.append((m.group(2), m.group(1), int(m.group(3))))
            continue
        m = _RE_EXISTS.match(part)
        if m:
            reqs.append(("!exists" if m.group(1) else "exists", m.group(2), None))
            continue
        raise SelectorError(f"unable to parse requirement: {part!r}")

    def match(labels):
        labels = labels or {}
        for op, key, val in reqs:
            have = key in labels
            cur = labels.get(key)
            if op == "=" and cur != val:
                return False
            if op == "!=" and have and cur == val:
                return False
            if op == "in" and (not have or cur not in val):
                return False
            if op == "notin" and have and cur in val:
                return False
            if op == "exists" and not have:
                return False
            if op == "!exists" and have:
                return False
            if op in ("<", ">"):
                try:
                    n = int(cur)
                except (TypeError, ValueError):
                    return False
                if (op == "<" and not n < val) or (op == ">" and not n > val):
                    return False
        return True
    return match


_RE_FIELD = re.compile(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$")


def parse_fields(text):
    """Field selector over dotted paths (metadata.name, involvedObject.uid, status.phase, ...).
    Returns (predicate, terms) where terms lists (path, op, value)."""
    terms = []
    for part in _split_top(text or ""):
        m = _RE_FIELD.match(part)
        if not m:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        terms.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))

    def match(obj):
        for path, op, val in terms:
            cur = field_value(obj, path)
            if (cur == val) != (op == "="):
                return False
        return True
    return match, terms


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def single_name(terms):
    """The name a field selector narrows to (metadata.name=X), as the real
    server uses for authorising list/watch against resourceNames."""
    names = [v for p, op, v in terms if p == "metadata.name" and op == "="]
    return names[0] if len(names) == 1 else ""
