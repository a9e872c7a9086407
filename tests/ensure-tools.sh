#!/bin/sh
# Install what a build or test step needs from Debian's archive, once.
# Idempotent: each group checks before it installs.
#   ensure-tools.sh musl | host | fuzz | images | all
set -eu

need=""
want() { # command-or-file package
	case "$1" in
	/*) [ -e "$1" ] || need="$need $2" ;;
	*) command -v "$1" >/dev/null 2>&1 || need="$need $2" ;;
	esac
}

for group in "$@"; do
	case "$group" in
	musl) want musl-gcc musl-tools; want bzip2 bzip2; want make make ;;
	host)
		want /usr/include/curl/curl.h libcurl4-openssl-dev
		want /usr/include/cjson/cJSON.h libcjson-dev
		want /usr/include/yaml.h libyaml-dev
		want /usr/include/cmocka.h libcmocka-dev
		want clang clang
		want openssl openssl
		want valgrind valgrind
		;;
	fuzz) want clang clang; want /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a libclang-rt-14-dev ;;
	images) want umoci umoci; want skopeo skopeo ;;
	*) echo "ensure-tools: unknown group $group" >&2; exit 64 ;;
	esac
done

[ -n "$need" ] || exit 0
echo "ensure-tools: installing$need" >&2
if [ "$(id -u)" != 0 ]; then
	echo "ensure-tools: need root to install$need (or install them yourself)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >&2
