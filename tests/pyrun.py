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
"""
import os
import sys
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


def write_results(out, name, passed, failed, skipped, note):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "w") as f:
        f.write(f"{name} {passed} {failed} {len(skipped)}{' ' + note if note else ''}\n")
    with open(os.path.join(out, name + ".skips"), "w") as f:
        for test, reason in skipped:
            # a class skipped in setUpClass reports a holder, not a test
            tid = test.id() if hasattr(test, "id") else str(test)
            f.write("%s: %s\n" % (tid, " ".join(str(reason).split()) or "no reason given"))


def main():
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
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    res = runner.run(suite)
    passed, failed = count(res)
    write_results(os.environ.get("MG_RESULTS", "build/test-results"), name, passed, failed, res.skipped, note)
    print(f"{name}: {passed} passed, {failed} failed, {len(res.skipped)} skipped")
    if res.testsRun == 0:
        print(f"{name}: no tests ran", file=sys.stderr)
        return 1
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
