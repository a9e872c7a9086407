#!/bin/sh
# Everything after the unit tests: fuzz smoke runs, kubesim's own tests with
# the real kubectl, black-box tests of the static binaries. Prints one
# closing line "N passed, N failed" over all suites (unit tests included).
set -u
cd "$(dirname "$0")/.."
out=${MG_RESULTS:-build/test-results}
mkdir -p "$out"
status=0

step() { printf '\n=== %s ===\n' "$*"; }

step "fuzz smoke (${FUZZ_SECONDS:-15}s per target)"
make -s fuzz-smoke || status=1

step "kubesim (real kubectl against the fake API server)"
python3 tests/pyrun.py kubesim tests/kubesim || status=1

step "black-box tests of build/ binaries"
python3 tests/pyrun.py e2e tests/e2e || status=1

step "summary"
passed=0 failed=0
for f in "$out"/*; do
	[ -f "$f" ] || continue
	read -r name p fl _rest <"$f"
	printf '%-10s %4s passed, %s failed\n' "$name" "$p" "$fl"
	passed=$((passed + p))
	failed=$((failed + fl))
done
echo "${passed} passed, ${failed} failed"
[ "$failed" = 0 ] || status=1
exit $status
