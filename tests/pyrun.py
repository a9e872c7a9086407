#!/usr/bin/env python3
"""Run Python unittest suites and record their results for the summary.

usage: pyrun.py NAME DIR [DIR...]   (discovers test_*.py in each DIR)

Writes, in $MG_RESULTS (default build/test-results):
  NAME        "NAME PASSED FAILED SKIPPED [note]" (tests/run-all.sh sums these)
  NAME.skips  one line per skipped test: "<test id>: <reason>"

MG_SUBSET=NAME leaves out the modules (or Module.Class) listed for NAME in
SUBSETS below; the note says which subset ran and what it left out, so a
partial run is never mistaken for the whole suite. A new test module is in
every subset until someone decides otherwise.

MG_JOBS=N runs the suite in N worker processes at once (default 4: most of
the black-box tests wait on timeouts, backoffs and watches, not on the CPU;
MG_JOBS=1 runs everything in this process, in discovery order, as before).
The unit of work is a test class, or a whole module when it has a
setUpModule/tearDownModule; each unit runs in a fresh `pyrun.py --unit`
process whose output is printed as one block when it ends (failures with
their tracebacks at the end of their block). Every class starts its own
kubesim or control plane on free ports and its own temp dirs, so units share
nothing but the machine. Units run longest first by the durations recorded
in build/test-durations.json (and $MG_CACHE/test-durations.json, which a
fresh clone on the same machine finds); a unit never timed runs first.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# What each subset leaves out. The sanitizer and valgrind passes re-run the
# black-box suite against instrumented builds; what they can find is in our
# binaries, so they skip the tests that drive no code of ours there: the helm
# template/lint/schema tests and the chart lifecycle on kubesim (test_chart;
# test_pattern drives the same binaries through the whole pattern) and the
# OCI image tests (test_images: they run the static binaries inside the
# images, never the instrumented build).
SUBSETS = {
    "binaries": ["test_chart", "test_images"],
    # The e2e suites on the real control plane (MG_BACKEND=real): the image
    # tests that talk to no API server (the images' contents, the registry
    # round trip, the Dockerfile built with buildah) ran in the kubesim pass
    # and would only repeat it, minutes of buildah included.
    "real": ["test_images.Dockerfile", "test_images.ImageSource", "test_images.Publish",
             "test_images.DockerfileBuild"] +
            ["test_images.Images." + t for t in (
                "test_index_is_multi_arch", "test_config", "test_layer_holds_only_the_binary_and_its_sbom",
                "test_size_budget", "test_sbom", "test_unpack_and_run_version", "test_runs_like_a_container",
                "test_two_builds_are_byte_identical", "test_binaries_rebuild_identically")],
}

# Units that run after the parallel part, one at a time with nothing else
# running (a test whose timing assertion cannot take a loaded machine and
# cannot be made to): "module.Class" or "module".
ALONE = set()

DEFAULT_JOBS = 4
DURATIONS = "build/test-durations.json"


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def select(suite, excluded):
    """The tests of suite whose id does not start with one of excluded
    (module or module.Class), and how many were left out."""
    kept, left = unittest.TestSuite(), 0
    for t in iter_tests(suite):
        tid = t.id()
        if any(tid == x or tid.startswith(x + ".") for x in excluded):
            left += 1
        else:
            kept.addTest(t)
    return kept, left


def load(dirs):
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for d in dirs:
        suite.addTests(loader.discover(d, pattern="test_*.py", top_level_dir=d))
    return suite


def count(res):
    """(passed, failed) by test: a test with several failing subtests fails
    once; an error outside any test (setUpClass, a module that does not
    import) is one failure of its own and hides no passed test."""
    bad, outside = set(), 0
    for t in [t for t, _ in res.failures + res.errors] + list(res.unexpectedSuccesses):
        owner = getattr(t, "test_case", t)
        if isinstance(owner, unittest.TestCase):
            bad.add(owner.id())
        else:
            outside += 1
    skipped_tests = sum(isinstance(t, unittest.TestCase) for t, _ in res.skipped)
    return max(res.testsRun - len(bad) - skipped_tests, 0), len(bad) + outside


def skip_lines(skipped):
    # a class skipped in setUpClass reports a holder, not a test
    return ["%s: %s" % (test.id() if hasattr(test, "id") else str(test),
                        " ".join(str(reason).split()) or "no reason given") for test, reason in skipped]


def write_results(out, name, passed, failed, skips, note):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "w") as f:
        f.write(f"{name} {passed} {failed} {len(skips)}{' ' + note if note else ''}\n")
    with open(os.path.join(out, name + ".skips"), "w") as f:
        for line in skips:
            f.write(line + "\n")


# ---- parallel runs -------------------------------------------------------------

def unit_of(test):
    """The unit a test runs in: its module when the module has module-level
    fixtures, else module.Class; None for what the loader made of a module
    that does not import (run in this process)."""
    cls = type(test)
    mod = sys.modules.get(cls.__module__)
    if cls.__module__.startswith("unittest") or mod is None:
        return None
    if hasattr(mod, "setUpModule") or hasattr(mod, "tearDownModule"):
        return cls.__module__
    return cls.__module__ + "." + cls.__qualname__


class TimedResult(unittest.TextTestResult):
    """Also records how long each test took."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.durations, self._t0 = {}, {}

    def startTest(self, test):
        self._t0[test.id()] = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.durations[test.id()] = round(time.monotonic() - self._t0.pop(test.id(), time.monotonic()), 2)


def run_here(suite, stream):
    """Run suite like TextTestRunner(verbosity=2) without its closing 'Ran N
    tests' lines; returns the result summed up as a dict."""
    res = TimedResult(unittest.runner._WritelnDecorator(stream), True, 2)
    res.startTestRun()
    try:
        suite(res)
    finally:
        res.stopTestRun()
    res.printErrors()
    stream.flush()
    passed, failed = count(res)
    return {"run": res.testsRun, "passed": passed, "failed": failed, "skips": skip_lines(res.skipped),
            "ok": res.wasSuccessful(), "durations": res.durations}


def unit_main(dirs, unit, ids, out):
    """A worker: run the tests ids of unit, write the sums to out."""
    for d in reversed(dirs):
        sys.path.insert(0, os.path.abspath(d))
    want = set(ids)
    suite = unittest.TestSuite(t for t in iter_tests(unittest.TestLoader().loadTestsFromName(unit))
                               if t.id() in want)
    got = suite.countTestCases()
    if got != len(want):
        print(f"pyrun: unit {unit}: loaded {got} of its {len(want)} tests", file=sys.stderr)
        return 2
    r = run_here(suite, sys.stdout)
    with open(out + ".tmp", "w") as f:
        json.dump(r, f)
    os.replace(out + ".tmp", out)
    return 0


def durations_files():
    files = [DURATIONS]
    if os.environ.get("MG_CACHE", "/var/cache/migration-gate"):
        files.append(os.path.join(os.environ.get("MG_CACHE", "/var/cache/migration-gate"), "test-durations.json"))
    return files


def read_durations(name):
    for path in durations_files():
        try:
            with open(path) as f:
                d = json.load(f).get(name)
            if d:
                return d
        except (OSError, ValueError):
            pass
    return {}


def save_durations(name, units):
    for path in durations_files():
        try:
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = {}
            data.setdefault(name, {}).update(units)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path + ".tmp", "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(path + ".tmp", path)
        except OSError:
            pass


def run_parallel(name, dirs, suite, jobs):
    units, here = {}, unittest.TestSuite()
    for t in iter_tests(suite):
        u = unit_of(t)
        if u is None:
            here.addTest(t)
        else:
            units.setdefault(u, []).append(t.id())
    known = read_durations(name)
    # longest first; a unit never timed (no figure) before all of them
    order = sorted(units, key=lambda u: -known.get(u, float("inf")))
    queue = [u for u in order if u not in ALONE]
    alone = [u for u in order if u in ALONE]
    print(f"{name}: {sum(map(len, units.values()))} tests in {len(units)} units, {jobs} at a time"
          f"{f' ({len(alone)} alone at the end)' if alone else ''}", flush=True)

    total = {"run": 0, "passed": 0, "failed": 0, "skips": [], "ok": True}
    failed_units, took, lock = [], {}, threading.Lock()
    tmp = tempfile.mkdtemp(prefix="pyrun-")

    def add(unit, r, secs, text):
        with lock:
            for k in ("run", "passed", "failed"):
                total[k] += r[k]
            total["skips"] += r["skips"]
            total["ok"] = total["ok"] and r["ok"]
            if not r["ok"]:
                failed_units.append(unit)
            if unit in units:
                took[unit] = round(secs, 1)
            state = "ok" if r["ok"] else "FAILED"
            sys.stdout.write(f"\n--- {unit}: {state}, {r['run']} tests in {secs:.1f}s ---\n{text}")
            sys.stdout.flush()

    def run_unit(unit):
        out = os.path.join(tmp, unit + ".json")
        t0 = time.monotonic()
        with tempfile.TemporaryFile("w+", dir=tmp) as log:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--unit", unit, out, *dirs],
                               input=json.dumps(units[unit]), stdout=log, stderr=subprocess.STDOUT, text=True)
            log.seek(0)
            text = log.read()
        secs = time.monotonic() - t0
        try:
            with open(out) as f:
                r = json.load(f)
        except (OSError, ValueError):
            r = {"run": len(units[unit]), "passed": 0, "failed": 1, "skips": [], "ok": False}
            text += f"pyrun: unit {unit} exited {p.returncode} without its results: counted as one failure\n"
        add(unit, r, secs, text)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                unit = queue.pop(0)
            run_unit(unit)

    t0 = time.monotonic()
    if here.countTestCases():
        import io
        buf = io.StringIO()
        add("(not importable)", run_here(here, buf), 0, buf.getvalue())
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, len(queue)))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for unit in alone:
        run_unit(unit)
    wall = time.monotonic() - t0
    save_durations(name, took)
    slow = sorted(took.items(), key=lambda kv: -kv[1])[:5]
    print(f"\n{name}: {len(units)} units in {wall:.0f}s with {jobs} workers; longest: " +
          ", ".join(f"{u} {s:.0f}s" for u, s in slow))
    if failed_units:
        print(f"{name}: failed units: {', '.join(sorted(failed_units))}")
    return total


def main():
    if sys.argv[1:2] == ["--unit"]:
        unit, out, dirs = sys.argv[2], sys.argv[3], sys.argv[4:]
        return unit_main(dirs, unit, json.load(sys.stdin), out)
    name, dirs = sys.argv[1], sys.argv[2:]
    suite, note = load(dirs), ""
    subset = os.environ.get("MG_SUBSET", "")
    if subset and subset != "all":
        if subset not in SUBSETS:
            print(f"pyrun: unknown MG_SUBSET {subset!r} (known: all, {', '.join(SUBSETS)})", file=sys.stderr)
            return 64
        suite, left = select(suite, SUBSETS[subset])
        note = f"(subset {subset}: {left} tests of {', '.join(SUBSETS[subset])} not run)"
        print(f"{name}: {note}")
    try:
        jobs = int(os.environ.get("MG_JOBS") or DEFAULT_JOBS)
    except ValueError:
        print(f"pyrun: MG_JOBS must be a number, not {os.environ['MG_JOBS']!r}", file=sys.stderr)
        return 64
    if jobs > 1:
        r = run_parallel(name, dirs, suite, jobs)
    else:
        # (a suite drops its tests as they run: note their units first)
        unit_by_id = {t.id(): unit_of(t) for t in iter_tests(suite)}
        r = run_here(suite, sys.stdout)
        by_unit = {}
        for tid, u in unit_by_id.items():
            if u is not None:
                by_unit[u] = round(by_unit.get(u, 0) + r["durations"].get(tid, 0), 1)
        save_durations(name, by_unit)
    write_results(os.environ.get("MG_RESULTS", "build/test-results"), name, r["passed"], r["failed"], r["skips"], note)
    print(f"{name}: {r['passed']} passed, {r['failed']} failed, {len(r['skips'])} skipped")
    if r["run"] == 0:
        print(f"{name}: no tests ran", file=sys.stderr)
        return 1
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
