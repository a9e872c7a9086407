"""Helpers for tests/e2e/test_chart.py: the real helm, YAML parsing, and the
generator of chart-snippets/plain-yaml/ from the example chart.

    python3 tests/e2e/chart_helpers.py --write   # regenerate plain-yaml/
    python3 tests/e2e/chart_helpers.py --check   # exit 1 when it is stale

helm is `tests/tools.sh helm` ($HELM, helm on PATH, else v4.1.4 from npm);
kubectl is `tests/tools.sh kubectl`. Multi-document YAML is parsed with PyYAML
when it is importable, else by `kubectl label --local -o json` (offline).
"""

import functools
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SNIPPETS = os.path.join(ROOT, "chart-snippets")
LIBRARY = os.path.join(SNIPPETS, "migration-gate")
EXAMPLE = os.path.join(SNIPPETS, "example-app")
PLAIN = os.path.join(SNIPPETS, "plain-yaml")

# The plain YAML is the example chart rendered with these, minus the
# Helm-only bits PLAIN_DROP_* below (documented in plain-yaml/kustomization.yaml).
PLAIN_RELEASE = "shop"
PLAIN_NAMESPACE = "default"
PLAIN_SET = []
PLAIN_DROP_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
# which file each object goes to
PLAIN_FILES = [
    ("serviceaccounts.yaml", lambda o: o["kind"] == "ServiceAccount"),
    ("rbac.yaml", lambda o: o["kind"] in ("Role", "RoleBinding")),
    ("migration.yaml", lambda o: o["kind"] in ("ConfigMap", "Lease", "Job")),
    ("api.yaml", lambda o: o["metadata"]["name"].endswith("-api")),
    ("worker.yaml", lambda o: o["metadata"]["name"].endswith("-worker")),
]


@functools.lru_cache(maxsize=None)
def tool(name):
    r = subprocess.run([os.path.join(ROOT, "tests", "tools.sh"), name], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"tests/tools.sh {name}: {r.stderr.strip()}")
    return r.stdout.strip()


def _quiet_stderr(text):
    # helm logs one INFO line per command for charts/migration-gate (a symlink)
    return "\n".join(l for l in text.splitlines() if "found symbolic link in path" not in l)


def helm(*args, env=None, timeout=120):
    """Run the real helm; CompletedProcess with text output (symlink INFO lines dropped)."""
    e = dict(os.environ)
    # never touch the user's helm state or cluster
    e.setdefault("HELM_CACHE_HOME", os.path.join(tempfile.gettempdir(), "mg-helm-cache"))
    e.setdefault("HELM_CONFIG_HOME", os.path.join(tempfile.gettempdir(), "mg-helm-config"))
    e.setdefault("HELM_DATA_HOME", os.path.join(tempfile.gettempdir(), "mg-helm-data"))
    e.update(env or {})
    r = subprocess.run([tool("helm"), *args], capture_output=True, text=True, env=e, timeout=timeout)
    r.stderr = _quiet_stderr(r.stderr)
    return r


def template(release="shop", chart=EXAMPLE, sets=(), set_json=(), namespace="default", extra=()):
    """helm template -> (CompletedProcess, text)."""
    argv = ["template", release, chart, "--namespace", namespace]
    for s in sets:
        argv += ["--set", s]
    for s in set_json:
        argv += ["--set-json", s]
    argv += list(extra)
    r = helm(*argv)
    return r, r.stdout


def _have_pyyaml():
    try:
        import yaml  # noqa: F401
        return True
    except ImportError:
        return False


def parse_yaml_docs(text):
    """Multi-document YAML -> list of dicts (empty documents dropped)."""
    if _have_pyyaml():
        import yaml
        return [d for d in yaml.safe_load_all(text) if d]
    # kubectl parses the YAML itself and prints JSON, without a server; it
    # adds "labels": {} where there were none, on both sides of a comparison.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        r = subprocess.run([tool("kubectl"), "label", "--local", "-f", f.name, "-o", "json", "mg-nonexistent-"],
                           capture_output=True, text=True, env={**os.environ, "KUBECONFIG": "/nonexistent"})
        if r.returncode != 0:
            raise RuntimeError("kubectl could not parse the YAML: " + r.stderr)
    finally:
        os.unlink(f.name)
    dec, s, i, out = json.JSONDecoder(), r.stdout, 0, []
    while True:
        while i < len(s) and s[i].isspace():
            i += 1
        if i >= len(s):
            break
        obj, i = dec.raw_decode(s, i)
        out.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    for o in out:
        if o.get("metadata", {}).get("labels") == {}:
            del o["metadata"]["labels"]
    return out


def render(release="shop", chart=EXAMPLE, sets=(), set_json=(), namespace="default"):
    r, text = template(release, chart, sets, set_json, namespace)
    if r.returncode != 0:
        raise AssertionError(f"helm template failed ({r.returncode}): {r.stderr}")
    return parse_yaml_docs(text)


# ---- plain YAML ----------------------------------------------------------

def plain_normalize(obj):
    """The Helm-only parts that the plain YAML leaves out, removed from obj."""
    def strip(meta):
        labels = meta.get("labels") or {}
        for k in PLAIN_DROP_LABELS:
            labels.pop(k, None)
    strip(obj["metadata"])
    tmpl = obj.get("spec", {}).get("template")
    if tmpl:
        strip(tmpl["metadata"])
    return obj


_DOC_SEP = re.compile(r"^---\s*$", re.M)
_DROP_LINE = re.compile(r"^\s*(# Source: .*|helm\.sh/chart: .*|app\.kubernetes\.io/managed-by: .*)$")


def plain_docs_from_chart():
    """[(filename, text of one document)] from the example chart's rendering."""
    argv = ["template", PLAIN_RELEASE, EXAMPLE, "--namespace", PLAIN_NAMESPACE]
    for s in PLAIN_SET:
        argv += ["--set", s]
    r = helm(*argv)
    if r.returncode != 0:
        raise RuntimeError("helm template: " + r.stderr)
    out = []
    for chunk in _DOC_SEP.split(r.stdout):
        lines = [l for l in chunk.splitlines() if not _DROP_LINE.match(l)]
        text = "\n".join(lines).strip("\n")
        if not text.strip():
            continue
        obj = parse_yaml_docs(text)[0]
        fname = next(f for f, match in PLAIN_FILES if match(obj))
        out.append((fname, text + "\n"))
    return out


HEADER = """\
# {fname}: part of the example application as plain YAML, for kustomize and
# other non-Helm users. Generated from chart-snippets/example-app (release
# "{release}", defaults) by `python3 tests/e2e/chart_helpers.py --write`;
# tests/e2e/test_chart.py fails when it no longer matches the chart. Change
# names, the images and the migration Job's name in kustomization.yaml.
"""


def plain_files_from_chart():
    files = {}
    for fname, doc in plain_docs_from_chart():
        files.setdefault(fname, []).append(doc)
    return {f: HEADER.format(fname=f, release=PLAIN_RELEASE) + "---\n" + "---\n".join(docs)
            for f, docs in files.items()}


def main(argv):
    if argv[1:] == ["--write"]:
        for f, text in plain_files_from_chart().items():
            with open(os.path.join(PLAIN, f), "w") as fh:
                fh.write(text)
            print("wrote", os.path.relpath(os.path.join(PLAIN, f), ROOT))
        return 0
    if argv[1:] == ["--check"]:
        stale = [f for f, text in plain_files_from_chart().items()
                 if not os.path.exists(os.path.join(PLAIN, f)) or open(os.path.join(PLAIN, f)).read() != text]
        for f in stale:
            print("stale:", f)
        return 1 if stale else 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))


class PatternCluster:
    """kubesim with controllers and a kubelet that runs private copies of the
    binaries in build_dir (a concurrent `make` must not pull them away
    mid-test), and a helm environment of its own (never the user's).
    MG_BACKEND=real (tests/e2e/mg.py) starts a real control plane with its
    node agent instead. Attributes: tmp, bin, ks (a started KubeSim or
    RealKube), env (for helm())."""

    def __init__(self, prefix, build_dir):
        import shutil
        sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
        sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
        from mg import KubeSim  # the backend switch
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.bin = os.path.join(self.tmp, "bin")
        os.makedirs(self.bin)
        for b in ("wait-for-job", "migrate-runner", "release-check"):
            shutil.copy2(os.path.join(build_dir, b), self.bin)
        # the kubelet's grace cap scales with MG_SLOW: under valgrind a signalled
        # migrate-runner needs more than 1 s to record its outcome
        slow = float(os.environ.get("MG_SLOW", "1"))
        self.ks = KubeSim(controllers=True, kubelet=True, bin_dir=self.bin, backoff_scale=0.05,
                          max_grace=max(1.0, 2.0 * slow))
        self.ks.start()
        self.env = {"KUBECONFIG": self.ks.kubeconfig}
        for d in ("cache", "config", "data"):
            self.env[f"HELM_{d.upper()}_HOME"] = os.path.join(self.tmp, d)

    def stop(self):
        import shutil
        self.ks.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
