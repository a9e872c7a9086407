#!/bin/sh
# Run each libFuzzer binary for SECONDS from its corpus (tests/fuzz/corpus/<name>,
# copied to a scratch dir so new inputs do not dirty the repo). A crash fails.
set -u
secs=$1
shift
out=${MG_RESULTS:-build/test-results}
mkdir -p "$out"
passed=0 failed=0
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	scratch=$(mktemp -d)
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$scratch/"
	if "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="build/fuzz/$name-" "$scratch" >"build/fuzz/$name.log" 2>&1; then
		runs=$(grep -o 'Done [0-9]* runs' "build/fuzz/$name.log" | tail -n 1)
		echo "ok: fuzz $name ($runs in ${secs}s)"
		passed=$((passed + 1))
	else
		tail -n 40 "build/fuzz/$name.log"
		echo "FAIL: fuzz $name (artifacts: build/fuzz/$name-*)"
		failed=$((failed + 1))
	fi
	rm -rf "$scratch"
done
echo "fuzz ${passed} ${failed}" >"$out/fuzz"
[ "$failed" = 0 ]
