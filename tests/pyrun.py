#!/usr/bin/env python3
"""Run Python unittest suites and record "<name> PASSED FAILED" for the summary.

usage: pyrun.py NAME DIR [DIR...]   (discovers test_*.py in each DIR)
"""
import os
import sys
import unittest


def main():
    name, dirs = sys.argv[1], sys.argv[2:]
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for d in dirs:
        suite.addTests(loader.discover(d, pattern="test_*.py", top_level_dir=d))
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    passed = res.testsRun - failed - len(res.skipped)
    out = os.environ.get("MG_RESULTS", "build/test-results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "w") as f:
        f.write(f"{name} {passed} {failed} {len(res.skipped)}\n")
    print(f"{name}: {passed} passed, {failed} failed, {len(res.skipped)} skipped")
    if res.testsRun == 0:
        print(f"{name}: no tests ran", file=sys.stderr)
        return 1
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
