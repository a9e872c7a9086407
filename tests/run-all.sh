#!/bin/sh
# Everything after lint and the unit tests: fuzz smoke runs, kubesim's own
# tests with the real kubectl and helm, black-box tests of the static
# binaries (and of the OCI images), the same black-box suite against
# ASan/UBSan and valgrind builds, and a short soak. Prints one closing line
# "N passed, N failed" over all suites (unit tests included).
#   MG_SKIP="valgrind soak"   skip some steps (names as below)
set -u
cd "$(dirname "$0")/.."
out=${MG_RESULTS:-build/test-results}
mkdir -p "$out"
status=0
skip=" ${MG_SKIP:-} "

step() { # name description
	case "$skip" in *" $1 "*) printf '\n=== %s: skipped (MG_SKIP) ===\n' "$1"; return 1 ;; esac
	printf '\n=== %s: %s ===\n' "$1" "$2"
	step_start=$(date +%s)
}
took() { echo "($1 took $(( $(date +%s) - step_start ))s)"; }

if step fuzz "libFuzzer smoke, ${FUZZ_SECONDS:-15}s per target"; then
	make -s fuzz-smoke || status=1
	took fuzz
fi

if step kubesim "the fake API server with the real kubectl and helm"; then
	python3 tests/pyrun.py kubesim tests/kubesim || status=1
	took kubesim
fi

if step e2e "black-box tests of the static binaries, the chart and the images"; then
	make -s images || status=1
	python3 tests/pyrun.py e2e tests/e2e || status=1
	took e2e
fi

if step asan "the black-box suite against ASan/UBSan builds"; then
	make -s check-e2e-asan || status=1
	took asan
fi

if step valgrind "the unit tests and the black-box suite under valgrind memcheck"; then
	make -s check-unit-valgrind || status=1
	make -s check-e2e-valgrind || status=1
	took valgrind
fi

if step soak "${SOAK_SECONDS:-60}s of waiters against injected faults"; then
	make -s soak SOAK_SECONDS="${SOAK_SECONDS:-60}" || status=1
	took soak
fi

printf '\n=== summary ===\n'
passed=0 failed=0
for f in "$out"/*; do
	[ -f "$f" ] || continue
	read -r name p fl _rest <"$f"
	printf '%-14s %4s passed, %s failed\n' "$name" "$p" "$fl"
	passed=$((passed + p))
	failed=$((failed + fl))
done
echo "${passed} passed, ${failed} failed"
[ "$failed" = 0 ] || status=1
exit $status
