"""The captured conformance table stays true for the pinned Kubernetes.

tests/unit/captured/ holds objects captured from the real control plane
(capture.py) with the verdict each must get; tests/unit/test_rc_captured.c
judges them with release-check's evaluator in every `make check-asan`,
without Go. This re-captures every case into a temporary directory on a
fresh cluster and runs that same unit test on the fresh files: a controller
that now writes a different status (a Kubernetes bump in go.mod), or a case
that no longer reaches its state, fails here. It also checks that the
committed table has the same cases and the same expected verdicts as the
capture produces (nobody edited an expectation by hand).

About a minute: the cluster starts once, the cases run side by side.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from realkube import go_available  # noqa: E402

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ROOT, "build"))
SLOW = float(os.environ.get("MG_SLOW", "1"))
COMMITTED = os.path.join(ROOT, "tests", "unit", "captured")
UNIT = os.path.join(ROOT, "build", "host", "test_rc_captured")


def why_not():
    if not go_available():
        return "go is not on PATH: the real control plane cannot be built"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "the node agent runs containers in namespaces: needs root and unshare"
    if not os.access(os.path.join(BUILD, "wait-for-job"), os.X_OK):
        return f"{BUILD}/wait-for-job is missing: run make"
    return None


def expectations(d):
    """case -> its judgements, with the rows' object names left out (pod
    names differ from one capture to the next)."""
    with open(os.path.join(d, "INDEX")) as f:
        names = [n for n in f.read().split("\n") if n]
    out = {}
    for n in names:
        with open(os.path.join(d, n + ".json")) as f:
            doc = json.load(f)
        out[n] = [(j["firstSeenSecondsAgo"], j["verdict"], sorted((r["kind"], r["status"]) for r in j["rows"]))
                  for j in doc["judge"]]
    return out


@unittest.skipIf(why_not(), why_not())
class CapturedTable(unittest.TestCase):
    def test_fresh_capture_gets_the_committed_verdicts(self):
        tmp = tempfile.mkdtemp(prefix="capture-")
        self.addCleanup(shutil.rmtree, tmp, True)
        out = os.path.join(tmp, "captured")
        # the unit test binary (host build, as make check-asan builds it)
        r = subprocess.run(["make", "-s", "build/host/test_rc_captured"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([sys.executable, os.path.join(HERE, "capture.py"), "--out", out,
                            "--state-dir", os.path.join(tmp, "state")],
                           capture_output=True, text=True, timeout=400 * SLOW)
        self.assertEqual(r.returncode, 0, "capture failed:\n" + r.stderr[-4000:])
        fresh, committed = expectations(out), expectations(COMMITTED)
        self.assertEqual(sorted(fresh), sorted(committed), "the committed table has other cases than capture.py: "
                         "re-capture (python3 tests/realkube/capture.py)")
        for name in committed:
            self.assertEqual(fresh[name], committed[name], f"{name}: the committed expectations differ from "
                             "capture.py's")
        r = subprocess.run([UNIT], cwd=ROOT, env=dict(os.environ, MG_CAPTURED_DIR=out), capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, "release-check's verdicts on the fresh capture:\n" + r.stdout + r.stderr)
        self.assertIn("[  PASSED  ] 2 test(s).", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
