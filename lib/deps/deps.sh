#!/bin/sh
# Fetch, verify and build the pinned third-party libraries for the static
# musl binaries. Everything lands under $DEPS_DIR (default .deps/, ignored by
# git); a second run finds the stamps and does nothing.
#
#   deps.sh fetch            download + verify the tarballs
#   deps.sh build ARCH       build them for ARCH (x86_64 | aarch64) with musl
#   deps.sh toolchain ARCH   aarch64 only: the musl cross compiler (below)
#   deps.sh pins             name version tarball sha256 url, one a line
#
# aarch64 is cross-compiled with Debian's aarch64-linux-gnu-gcc (group
# `cross` of tests/ensure-tools.sh) and musl's arm64 libc/headers taken from
# Debian's musl-dev:arm64 .deb. The .deb is fetched through a private apt
# configuration and unpacked, not installed: no `dpkg --add-architecture`,
# which would change the machine's apt/dpkg setup for everyone (every later
# apt-get update would fetch arm64 indexes). It lands in
# $DEPS_DIR/toolchain-aarch64/, which then holds
# bin/aarch64-linux-musl-gcc (gcc + a musl specs file) and
# bin/aarch64-linux-musl-{ar,ranlib,strip,...} for configure --host.
#
# Where the tarballs come from: DEPS_SOURCE=debian (default) takes Debian
# trixie's orig tarballs through apt (these machines reach only Debian's
# archive); DEPS_SOURCE=upstream downloads the same releases from their
# projects. Either way the SHA-256 below decides, never the downloader's
# exit status.
set -eu

DEPS_DIR=${DEPS_DIR:-$(pwd)/.deps}
DEPS_SOURCE=${DEPS_SOURCE:-debian}
DL="$DEPS_DIR/dl"
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

CURL_V=8.14.1
MBEDTLS_V=3.6.6
CJSON_V=1.7.18
YAML_V=0.2.5

# name  debian-source-package  tarball  sha256  upstream-url
# The checksums are those of Debian's orig tarballs. For curl and mbedTLS
# these are the upstream release tarballs; for cJSON and libyaml Debian took
# GitHub's archive of the release tag (libyaml's: a git snapshot without
# ./configure, hence the plain compile below), so the upstream URLs point at
# those archives. Not verifiable from these machines (no network but
# Debian's archive): if an upstream download does not match, the build
# stops at the checksum, as it should.
PINS="
curl curl curl_${CURL_V}.orig.tar.gz 6766ada7101d292b42b8b15681120acd68effa4a9660935853cf6d61f0d984d4 https://curl.se/download/curl-${CURL_V}.tar.gz
mbedtls mbedtls mbedtls_${MBEDTLS_V}.orig.tar.bz2 8fb65fae8dcae5840f793c0a334860a411f884cc537ea290ce1c52bb64ca007a https://github.com/Mbed-TLS/mbedtls/releases/download/mbedtls-${MBEDTLS_V}/mbedtls-${MBEDTLS_V}.tar.bz2
cjson cjson cjson_${CJSON_V}.orig.tar.gz 3aa806844a03442c00769b83e99970be70fbef03735ff898f4811dd03b9f5ee5 https://github.com/DaveGamble/cJSON/archive/refs/tags/v${CJSON_V}.tar.gz
libyaml libyaml libyaml_${YAML_V}.orig.tar.gz fa240dbf262be053f3898006d502d514936c818e422afdcf33921c63bed9bf2e https://github.com/yaml/libyaml/archive/refs/tags/${YAML_V}.tar.gz
"

say() { printf 'deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# apt-get source needs a deb-src entry for trixie. Build one in a private
# directory from the URIs this machine's apt already uses, so no host name is
# written into the repository and the system's apt state is not touched.
mirror_uri() {
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')
	if [ -z "$uri" ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
	fi
	[ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt; set DEPS_SOURCE=upstream"
}

apt_setup() {
	[ -n "${APT_TMP:-}" ] && return 0
	APT_TMP="$DEPS_DIR/apt"
	mkdir -p "$APT_TMP/lists/partial"
	mirror_uri
	printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$uri" >"$APT_TMP/trixie-src.sources"
	APT_OPTS="-o Dir::Etc::sourcelist=$APT_TMP/trixie-src.sources -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists=$APT_TMP/lists"
	# shellcheck disable=SC2086
	apt-get -qq $APT_OPTS update >&2 || say "apt-get update reported an error (continuing; the checksum decides)"
}

fetch_one() { # name srcpkg tarball sha url
	if sha_ok "$DL/$3" "$4"; then return 0; fi
	mkdir -p "$DL"
	rm -f "$DL/$3"
	if [ "$DEPS_SOURCE" = upstream ]; then
		say "downloading $5"
		curl -fsSL --retry 3 -o "$DL/$3" "$5" || true
	else
		apt_setup
		say "fetching $2 orig tarball from Debian trixie"
		# Only the orig tarball matters; a stale index may make apt fail on
		# the packaging files, so judge by the checksum below.
		# shellcheck disable=SC2086
		(cd "$DL" && apt-get -qq $APT_OPTS source --download-only "$2" >/dev/null 2>&1) || true
	fi
	sha_ok "$DL/$3" "$4" || die "$3: missing or SHA-256 mismatch (want $4)"
	say "verified $3"
}

cmd_fetch() {
	echo "$PINS" | while read -r n p t s u; do
		[ -n "$n" ] || continue
		fetch_one "$n" "$p" "$t" "$s" "$u"
	done
}

unpack() { # tarball -> directory under $BLD, echo its path
	rm -rf "$BLD/src-$1"
	mkdir -p "$BLD/src-$1"
	tar -xf "$DL/$2" -C "$BLD/src-$1" --strip-components=1
	echo "$BLD/src-$1"
}

# The aarch64 musl cross toolchain. Cheap when cached: the .deb is kept in
# $TC/dl, and the wrapper + specs are rewritten on every call so that they
# always point at the current $DEPS_DIR.
cmd_toolchain() {
	[ "${1:-aarch64}" = aarch64 ] || die "toolchain: only aarch64 is cross-compiled"
	TC="$DEPS_DIR/toolchain-aarch64"
	gnu=aarch64-linux-gnu
	command -v $gnu-gcc >/dev/null 2>&1 ||
		die "$gnu-gcc not found (run: tests/ensure-tools.sh cross)"
	deb=$(ls "$TC"/dl/musl-dev_*_arm64.deb 2>/dev/null | head -n 1 || true)
	# a download cut short is fetched again
	[ -z "$deb" ] || dpkg-deb --info "$deb" >/dev/null 2>&1 || { rm -f "$deb"; deb=; }
	if [ -z "$deb" ]; then
		# A private apt configuration for this machine's suite, arm64
		# only; apt checks the .deb against the signed index.
		suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
		[ -n "$suite" ] || suite=bookworm
		mirror_uri
		A="$TC/apt"
		rm -rf "$A" "$TC/dl"
		mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$TC/dl"
		: >"$A/status"
		printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nArchitectures: arm64\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$uri" "$suite" >"$A/arm64.sources"
		o="-o Dir::Etc::sourcelist=$A/arm64.sources -o Dir::Etc::sourceparts=/dev/null"
		o="$o -o Dir::State::Lists=$A/lists -o Dir::State::status=$A/status -o Dir::Cache=$A/cache"
		o="$o -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Acquire::Languages=none"
		o="$o -o APT::Sandbox::User=root"
		say "fetching musl-dev:arm64 from Debian $suite"
		# shellcheck disable=SC2086
		apt-get -qq $o update >&2 || die "apt-get update for arm64 failed"
		# shellcheck disable=SC2086
		(cd "$TC/dl" && apt-get -qq $o download musl-dev >&2) || true
		deb=$(ls "$TC"/dl/musl-dev_*_arm64.deb 2>/dev/null | head -n 1 || true)
		[ -n "$deb" ] || die "could not download musl-dev:arm64"
		rm -rf "$A"
		say "verified by apt: $(basename "$deb") sha256 $(sha256sum "$deb" | cut -d' ' -f1)"
	fi
	rm -rf "${TC:?}/sysroot" "${TC:?}/bin"
	mkdir -p "$TC/sysroot" "$TC/bin"
	dpkg-deb -x "$deb" "$TC/sysroot"
	sr="$TC/sysroot/usr"
	[ -f "$sr/lib/aarch64-linux-musl/libc.a" ] || die "$deb has no libc.a"
	# Debian's own specs with the paths moved into our sysroot.
	sed -e "s#/usr/include/aarch64-linux-musl#$sr/include/aarch64-linux-musl#g" \
		-e "s#/usr/lib/aarch64-linux-musl#$sr/lib/aarch64-linux-musl#g" \
		"$sr/lib/aarch64-linux-musl/musl-gcc.specs" >"$TC/musl-gcc.specs"
	# shellcheck disable=SC2016
	printf '#!/bin/sh\nexec "${REALGCC:-%s-gcc}" "$@" -specs "%s/musl-gcc.specs"\n' "$gnu" "$TC" \
		>"$TC/bin/aarch64-linux-musl-gcc"
	chmod 0755 "$TC/bin/aarch64-linux-musl-gcc"
	for t in ar ranlib strip nm ld objcopy objdump readelf as; do
		ln -sf "$(command -v $gnu-$t)" "$TC/bin/aarch64-linux-musl-$t"
	done
	echo "$TC/bin/aarch64-linux-musl-gcc"
}

cmd_build() {
	arch=${1:-$(uname -m)}
	case "$arch" in
	x86_64) cc=${MUSL_CC:-musl-gcc}; host= ;;
	aarch64)
		host=aarch64-linux-musl
		if [ -z "${MUSL_CC:-}" ] || [ "$MUSL_CC" = "$DEPS_DIR/toolchain-aarch64/bin/aarch64-linux-musl-gcc" ]; then
			cc=$(cmd_toolchain aarch64)
		else
			cc=$MUSL_CC
		fi
		# configure --host finds aarch64-linux-musl-{ar,ranlib,strip} here
		PATH="$(dirname "$cc"):$PATH"
		;;
	*) die "unsupported ARCH $arch (x86_64, aarch64)" ;;
	esac
	command -v "$cc" >/dev/null 2>&1 || die "$cc not found (install musl-tools)"
	PFX="$DEPS_DIR/$arch"
	BLD="$DEPS_DIR/build-$arch"
	# -r2: built with -ffile-prefix-map (no build paths in the binaries);
	# -r4: mbedTLS's AES-NI code through intrinsics (below);
	# -r5, -r6: curl with lib/deps/curl-mbedtls-readahead.patch;
	# keep in step with DEPS_STAMP in the Makefile.
	stamp="$PFX/.stamp-curl$CURL_V-mbedtls$MBEDTLS_V-cjson$CJSON_V-yaml$YAML_V-r6"
	[ -f "$stamp" ] && return 0
	cmd_fetch
	rm -rf "$PFX" "$BLD"
	mkdir -p "$PFX/lib" "$PFX/include" "$BLD"
	# The build directory must not leak into the binaries (assert() and
	# __FILE__ in libyaml/curl): they are reproducible from any checkout.
	cflags="-Os -ffunction-sections -fdata-sections -fPIE -ffile-prefix-map=$BLD=."
	ar=${AR:-ar}
	[ -z "$host" ] || ar=${AR:-aarch64-linux-gnu-ar}

	say "building mbedTLS $MBEDTLS_V for $arch"
	d=$(unpack mbedtls "mbedtls_${MBEDTLS_V}.orig.tar.bz2")
	if [ "$arch" = x86_64 ]; then
		# mbedTLS's AES-NI code through intrinsics instead of its inline
		# assembly, whose GHASH reverses bytes in C loops around the asm:
		# 353 instructions per 16-byte block -> ~65, a quarter of what
		# decrypting a watch event cost. aes.c and gcm.c must see the same
		# choice (round-key alignment). Compilers never emit AES or PCLMUL
		# instructions from plain C; SSSE3 (byte shuffles) only in aesni.c,
		# whose code runs only after mbedtls_aesni_has_support() saw the CPU
		# flags, so the binaries still run where they are missing (C AES).
		# Built here, make finds the objects up to date and archives them.
		for f in aes gcm aesni; do
			extra=; [ $f = aesni ] && extra="-O2 -mssse3"
			"$cc" $cflags -maes -mpclmul $extra -I"$d/library" -I"$d/include" -D_FILE_OFFSET_BITS=64 \
				-c "$d/library/$f.c" -o "$d/library/$f.o"
		done
	fi
	make -s -C "$d/library" -j"$JOBS" CC="$cc" AR="$ar" CFLAGS="$cflags" \
		libmbedtls.a libmbedx509.a libmbedcrypto.a >&2
	cp "$d"/library/libmbed*.a "$PFX/lib/"
	cp -r "$d/include/mbedtls" "$d/include/psa" "$PFX/include/"

	say "building cJSON $CJSON_V for $arch"
	d=$(unpack cjson "cjson_${CJSON_V}.orig.tar.gz")
	"$cc" $cflags -std=c89 -c "$d/cJSON.c" -o "$d/cJSON.o"
	"$ar" rcs "$PFX/lib/libcjson.a" "$d/cJSON.o"
	mkdir -p "$PFX/include/cjson"
	cp "$d/cJSON.h" "$PFX/include/cjson/"

	say "building libyaml $YAML_V for $arch"
	d=$(unpack libyaml "libyaml_${YAML_V}.orig.tar.gz")
	# The Debian orig tarball is a git snapshot without ./configure; the
	# library is six C files and needs only its version macros.
	for f in "$d"/src/*.c; do
		"$cc" $cflags -DYAML_DECLARE_STATIC -DYAML_VERSION_MAJOR=0 -DYAML_VERSION_MINOR=2 \
			-DYAML_VERSION_PATCH=5 -DYAML_VERSION_STRING='"0.2.5"' -I"$d/include" \
			-c "$f" -o "${f%.c}.o"
	done
	"$ar" rcs "$PFX/lib/libyaml.a" "$d"/src/*.o
	cp "$d/include/yaml.h" "$PFX/include/"

	say "building curl $CURL_V (HTTP/HTTPS only) for $arch"
	d=$(unpack curl "curl_${CURL_V}.orig.tar.gz")
	# One change to curl (the patch says why): a read-ahead buffer below
	# mbedTLS, one recv() per TLS record instead of three.
	patch -s -d "$d" -p1 < "$HERE/curl-mbedtls-readahead.patch" || die "curl patch did not apply"
	# Only what a Kubernetes client needs: HTTP(S), proxies (CI behind
	# proxies), IPv6, the threaded resolver (DNS timeouts in scratch images).
	(cd "$d" && ./configure -q ${host:+--host=$host} CC="$cc" AR="$ar" CFLAGS="$cflags" \
		CPPFLAGS="-I$PFX/include" LDFLAGS="-L$PFX/lib" \
		--prefix="$PFX" --disable-shared --enable-static \
		--with-mbedtls="$PFX" --without-ca-path \
		--with-ca-bundle=/etc/ssl/certs/ca-certificates.crt \
		--disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp \
		--disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap \
		--disable-smb --disable-smtp --disable-gopher --disable-mqtt --disable-ipfs \
		--disable-websockets --disable-manual --disable-docs --disable-verbose \
		--disable-ntlm --disable-kerberos-auth --disable-negotiate-auth --disable-aws \
		--disable-doh --disable-mime --disable-form-api --disable-netrc --disable-cookies \
		--disable-alt-svc --disable-hsts --disable-dateparse --disable-progress-meter \
		--disable-unix-sockets --disable-tls-srp --disable-libcurl-option \
		--without-libpsl --without-brotli --without-zstd --without-zlib \
		--without-libidn2 --without-nghttp2 --without-libssh2 --without-librtmp >&2 &&
		make -s -C lib -j"$JOBS" libcurl.la >&2 && make -s -C lib install-libLTLIBRARIES >&2 &&
		make -s -C include install >&2)   # libcurl only: "all" also builds the unit-test libcurlu
	touch "$stamp"
	say "done: $PFX"
}

cmd_pins() {
	echo "$PINS" | while read -r n p t s u; do
		[ -n "$n" ] || continue
		case "$n" in
		curl) v=$CURL_V ;; mbedtls) v=$MBEDTLS_V ;; cjson) v=$CJSON_V ;; libyaml) v=$YAML_V ;; *) v=unknown ;;
		esac
		echo "$n $v $t $s $u"
	done
}

case "${1:-}" in
fetch) cmd_fetch ;;
build) shift; cmd_build "$@" ;;
toolchain) shift; cmd_toolchain "$@" >/dev/null ;;
pins) cmd_pins ;;
*) echo "usage: $0 fetch | build [x86_64|aarch64] | toolchain aarch64 | pins" >&2; exit 64 ;;
esac
