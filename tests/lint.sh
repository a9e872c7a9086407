#!/bin/sh
# make lint: formatting (clang-format) and banned functions (curl's checksrc
# habit). Exit 1 with the offending places listed.
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^\.deps/')
status=0

# clang-format comes from Debian like every other tool (ensure-tools.sh lint);
# without it lint fails rather than passing unchecked
command -v clang-format >/dev/null 2>&1 || ./tests/ensure-tools.sh lint || true
if ! command -v clang-format >/dev/null 2>&1; then
	echo "lint: clang-format is missing and could not be installed (Debian package clang-format)"
	status=1
elif ! clang-format --dry-run -Werror $files 2>/tmp/mg-lint.$$; then
	head -n 40 /tmp/mg-lint.$$
	echo "lint: formatting differs from .clang-format (run: clang-format -i <files>)"
	status=1
fi
rm -f /tmp/mg-lint.$$

# unbounded or unsafe: use snprintf, memcpy with a length, strtol, strtok_r
if grep -nE '(^|[^_a-zA-Z0-9])(sprintf|vsprintf|strcpy|strcat|atoi|atol|strtok|gets)[[:space:]]*\(' $files; then
	echo "lint: banned function(s) above"
	status=1
fi
[ $status = 0 ] && echo "lint: ok ($(echo "$files" | wc -w) files, $(clang-format --version | sed 's/.*version \([0-9.]*\).*/clang-format \1/'))"
exit $status
