#!/bin/sh
# Run cmocka unit-test binaries; record "NAME PASSED FAILED SKIPPED" for the
# summary and each skipped test in NAME.skips ("binary/test: reason").
#   MG_WRAP="valgrind ..."   run each under a wrapper
#   MG_RESULTS_NAME=name     the summary's name (default unit)
set -u
out=${MG_RESULTS:-build/test-results}
name=${MG_RESULTS_NAME:-unit}
mkdir -p "$out"
: >"$out/$name.skips"
passed=0 failed=0 skipped=0 status=0
for t in "$@"; do
	log=$(mktemp)
	# shellcheck disable=SC2086
	if ${MG_WRAP:-} "$t" >"$log" 2>&1; then rc=0; else rc=$?; status=1; fi
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	skipped=$((skipped + ${s:-0}))
	# cmocka's skip() takes no reason: name the test, point at its source
	if [ -n "$s" ]; then
		sed -n 's/^\[  SKIPPED \] \([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' "$log" | sort -u |
			sed "s|^|$(basename "$t")/|; s|\$|: skip() in the test (see tests/unit/$(basename "$t").c)|" >>"$out/$name.skips"
	fi
	if [ "$rc" != 0 ]; then
		cat "$log"
		# a crash (sanitizer report) counts as one failure even without a summary
		[ -n "$f" ] || failed=$((failed + 1))
		echo "FAIL: $t (exit $rc)"
	else
		echo "ok: $t (${p:-0} tests${s:+, $s skipped})"
	fi
	rm -f "$log"
done
echo "$name ${passed} ${failed} ${skipped}" >"$out/$name"
echo "$name tests: $passed passed, $failed failed, $skipped skipped"
exit $status
