#!/bin/sh
# Run cmocka unit-test binaries; record "unit PASSED FAILED" for the summary.
#   MG_WRAP="valgrind ..."   run each under a wrapper
#   MG_RESULTS_NAME=name     the summary's name (default unit)
set -u
out=${MG_RESULTS:-build/test-results}
mkdir -p "$out"
passed=0 failed=0 status=0
for t in "$@"; do
	log=$(mktemp)
	# shellcheck disable=SC2086
	if ${MG_WRAP:-} "$t" >"$log" 2>&1; then rc=0; else rc=$?; status=1; fi
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	if [ "$rc" != 0 ]; then
		cat "$log"
		# a crash (sanitizer report) counts as one failure even without a summary
		[ -n "$f" ] || failed=$((failed + 1))
		echo "FAIL: $t (exit $rc)"
	else
		echo "ok: $t (${p:-0} tests)"
	fi
	rm -f "$log"
done
name=${MG_RESULTS_NAME:-unit}
echo "$name ${passed} ${failed}" >"$out/$name"
echo "$name tests: $passed passed, $failed failed"
exit $status
