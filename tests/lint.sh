#!/bin/sh
# make lint: formatting (clang-format) and banned functions (curl's checksrc
# habit). Exit 1 with the offending places listed.
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^\.deps/')
status=0

if command -v clang-format >/dev/null 2>&1; then
	if ! clang-format --dry-run -Werror $files 2>/tmp/mg-lint.$$; then
		head -n 40 /tmp/mg-lint.$$
		echo "lint: formatting differs from .clang-format (run: clang-format -i <files>)"
		status=1
	fi
	rm -f /tmp/mg-lint.$$
else
	echo "lint: clang-format not installed; formatting not checked"
fi

# unbounded or unsafe: use snprintf, memcpy with a length, strtol, strtok_r
if grep -nE '(^|[^_a-zA-Z0-9])(sprintf|vsprintf|strcpy|strcat|atoi|atol|strtok|gets)[[:space:]]*\(' $files; then
	echo "lint: banned function(s) above"
	status=1
fi
[ $status = 0 ] && echo "lint: ok ($(echo "$files" | wc -w) files)"
exit $status
