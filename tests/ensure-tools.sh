#!/bin/sh
# Install what a build or test step needs from Debian's archive, once.
# Idempotent: each group checks before it installs.
#   ensure-tools.sh GROUP... (musl host fuzz cross images images-test lint unzip bench demo)
#
# cross: build aarch64 binaries (Debian's aarch64 gcc + binutils; musl for
# arm64 comes from `lib/deps/deps.sh toolchain aarch64`).
# images: build and test the OCI images (umoci, skopeo; qemu-user runs the
# arm64 binaries on an amd64 host).
set -eu

need=""
# want PACKAGE [COMMAND]: install PACKAGE unless it is installed (dpkg) or,
# when COMMAND is given, unless COMMAND is on PATH already.
want() {
	if [ -n "${2:-}" ] && command -v "$2" >/dev/null 2>&1; then return 0; fi
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || need="$need $1"
}

for group in "$@"; do
	case "$group" in
	musl) want musl-tools musl-gcc; want bzip2 bzip2; want make make; want patch patch ;;
	host)
		# any libcurl -dev flavour will do
		dpkg-query -W -f='${Status}' libcurl4-openssl-dev libcurl4-gnutls-dev libcurl4-nss-dev 2>/dev/null |
			grep -q 'install ok installed' || need="$need libcurl4-openssl-dev"
		want libcjson-dev
		want libyaml-dev
		want libcmocka-dev
		want clang clang
		want openssl openssl
		want valgrind valgrind
		;;
	fuzz) want clang clang; want libclang-rt-14-dev ;;
	cross)
		want gcc-aarch64-linux-gnu aarch64-linux-gnu-gcc
		want binutils-aarch64-linux-gnu aarch64-linux-gnu-ar
		;;
	images)
		want umoci umoci
		want skopeo skopeo
		want python3 python3
		want qemu-user qemu-aarch64
		;;
	# make test-images: a real registry on loopback (make publish), images/Dockerfile built daemon-less
	images-test) want docker-registry docker-registry; want buildah buildah; want mmdebstrap mmdebstrap ;;
	# make demo: the static build (musl), certificates (openssl), helm's zip (unzip)
	demo) want musl-tools musl-gcc; want bzip2 bzip2; want make make; want patch patch; want openssl openssl; want unzip unzip; want python3 python3 ;;
	# make lint: formatting is checked, never skipped for want of the tool
	lint) want clang-format clang-format ;;
	unzip) want unzip unzip ;;
	bench) want tini tini; want dumb-init dumb-init; want time /usr/bin/time; want valgrind valgrind; want strace strace ;;
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
# another install may hold dpkg's lock (parallel make targets): wait for it
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $need >&2
