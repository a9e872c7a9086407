#!/bin/sh
# Daemon-less, reproducible OCI image build (called by `make images`).
#
#   images/build.sh OUTDIR NAME...
#   images/build.sh --files OUTDIR NAME...   (one arch in IMAGE_ARCHES)
#
# --files writes just what goes into the image, OUTDIR/NAME and
# OUTDIR/NAME.spdx.json, for images/Dockerfile (make image-files).
#
# For every NAME (wait-for-job, migrate-runner, release-check) it writes
#   OUTDIR/NAME.oci.tar     OCI image layout as a tar archive: one image index
#                           (linux/amd64 + linux/arm64), ref name = $VERSION
#   OUTDIR/NAME.spdx.json   the SPDX 2.3 SBOM (also inside the image, /NAME.spdx.json)
# and OUTDIR/SHA256SUMS over all of them.
#
# Each platform image is FROM scratch with a single layer holding /NAME (the
# static binary from build/ or build/aarch64/) and /NAME.spdx.json; config:
# Entrypoint ["/NAME"], User 65532:65532, org.opencontainers.image.* labels.
# Built with umoci (layers, configs, manifests) plus images/ocitool.py (the
# SBOM and the multi-arch index), then archived with a deterministic tar.
#
# Environment (images/images.mk sets all of it):
#   VERSION SOURCE_DATE_EPOCH     required
#   REVISION                      git commit, default "unknown"
#   IMAGE_SOURCE                  repository https URL for the labels and the SBOM;
#                                 empty: no source label, NOASSERTION in the SBOM
#   IMAGE_ARCHES                  default "x86_64 aarch64"
#   BUILD_DIR DEPS_DIR            default build, .deps
#
# Same binaries + same variables => byte-identical archives (all timestamps
# come from SOURCE_DATE_EPOCH; umoci's gzip output does not depend on the
# number of CPUs).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
: "${VERSION:?set VERSION}"
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH}"
REVISION=${REVISION:-unknown}
IMAGE_SOURCE=${IMAGE_SOURCE:-}
IMAGE_ARCHES=${IMAGE_ARCHES:-x86_64 aarch64}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
DEPS_DIR=${DEPS_DIR:-$ROOT/.deps}

say() { printf 'images: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

FILES_ONLY=
if [ "${1:-}" = --files ]; then
	FILES_ONLY=1
	shift
fi
[ $# -ge 2 ] || { echo "usage: $0 [--files] OUTDIR NAME..." >&2; exit 64; }
OUT=$1
shift
tools="python3 tar sha256sum"
if [ -n "$FILES_ONLY" ]; then
	[ "$(echo "$IMAGE_ARCHES" | wc -w)" = 1 ] || die "--files takes one arch (IMAGE_ARCHES=$IMAGE_ARCHES)"
else
	tools="umoci $tools"
fi
for t in $tools; do
	command -v "$t" >/dev/null 2>&1 || die "$t not found (run: tests/ensure-tools.sh images)"
done

export TZ=UTC LC_ALL=C
# A placeholder or a URL with a token must not end up in labels and SBOMs.
[ -z "$IMAGE_SOURCE" ] || IMAGE_SOURCE=$(python3 "$HERE/ocitool.py" source "$IMAGE_SOURCE") || exit 64
umask 022
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
# umoci unpack/repack as a normal user needs --rootless (uid 0 in the layer).
ROOTLESS=
[ "$(id -u)" = 0 ] || ROOTLESS=--rootless

platform() { # x86_64|aarch64 -> amd64|arm64
	case "$1" in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) die "unsupported arch $1" ;;
	esac
}
bindir() { # where the Makefile puts the binaries of an arch
	if [ "$1" = x86_64 ]; then echo "$BUILD_DIR"; else echo "$BUILD_DIR/$1"; fi
}
check_elf() { # file arch: refuse a binary built for the wrong machine
	case "$2" in x86_64) want=62 ;; aarch64) want=183 ;; esac
	got=$(od -An -tu2 --endian=little -j18 -N2 "$1" | tr -d ' ')
	[ "$got" = "$want" ] || die "$1 is not an $2 executable (ELF e_machine $got, want $want)"
}
# What else is linked in: musl's libc.a and gcc's libgcc.a, for the SBOM.
toolchain() { # arch -> musl:VER,libgcc:VER (parts that cannot be found are left out)
	case "$1" in
	x86_64)
		m=$(dpkg-query -W -f '${Version}' musl-dev 2>/dev/null || true)
		g=$(x86_64-linux-gnu-gcc -dumpfullversion 2>/dev/null || gcc -dumpfullversion 2>/dev/null || true)
		;;
	aarch64)
		deb=$(ls "$DEPS_DIR"/toolchain-aarch64/dl/musl-dev_*_arm64.deb 2>/dev/null | head -n 1 || true)
		m=$([ -z "$deb" ] || dpkg-deb -f "$deb" Version 2>/dev/null || true)
		g=$(aarch64-linux-gnu-gcc -dumpfullversion 2>/dev/null || true)
		;;
	esac
	s=
	[ -z "$m" ] || s="musl:$m"
	[ -z "$g" ] || s="${s:+$s,}libgcc:$g"
	echo "$s"
}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK="$OUT/.work"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
sh "$ROOT/lib/deps/deps.sh" pins >"$WORK/pins"
sums=

for name in "$@"; do
	say "$name: $(echo "$IMAGE_ARCHES" | wc -w) platform(s), version $VERSION, revision $REVISION"
	W="$WORK/$name"
	L="$W/oci"
	mkdir -p "$W"

	# ---- SBOM over all platforms --------------------------------------------
	# (reusing "$@" is safe: the for loop above expanded the names already)
	set --
	for arch in $IMAGE_ARCHES; do
		b="$(bindir "$arch")/$name"
		[ -f "$b" ] || die "$b missing (make ARCH=$arch)"
		check_elf "$b" "$arch"
		set -- "$@" --binary "linux/$(platform "$arch")=$b"
		tc=$(toolchain "$arch")
		[ -z "$tc" ] || set -- "$@" --toolchain "linux/$(platform "$arch")=$tc"
	done
	python3 "$HERE/ocitool.py" sbom --name "$name" --version "$VERSION" --revision "$REVISION" \
		${IMAGE_SOURCE:+--source "$IMAGE_SOURCE"} --epoch "$SOURCE_DATE_EPOCH" --pins "$WORK/pins" "$@" >"$W/sbom.json"
	if [ -n "$FILES_ONLY" ]; then
		install -m 0755 "$(bindir "$IMAGE_ARCHES")/$name" "$OUT/$name"
		install -m 0644 "$W/sbom.json" "$OUT/$name.spdx.json"
		say "$name: $OUT/$name, $OUT/$name.spdx.json"
		continue
	fi

	# ---- one single-layer image per platform ----------------------------------
	umoci init --layout "$L"
	tags=
	for arch in $IMAGE_ARCHES; do
		p=$(platform "$arch")
		tags="$tags $p"
		umoci new --image "$L:$p"
		# shellcheck disable=SC2086
		umoci unpack $ROOTLESS --image "$L:$p" "$W/bundle-$p"
		r="$W/bundle-$p/rootfs"
		install -m 0755 "$(bindir "$arch")/$name" "$r/$name"
		install -m 0644 "$W/sbom.json" "$r/$name.spdx.json"
		touch -h -d "@$SOURCE_DATE_EPOCH" "$r/$name" "$r/$name.spdx.json" "$r"
		umoci repack --image "$L:$p" --history.created "$CREATED" \
			--history.created_by "COPY $name $name.spdx.json / # migration-gate images/build.sh" \
			"$W/bundle-$p"
		# (the source label only when IMAGE_SOURCE is set)
		umoci config --image "$L:$p" --no-history \
			--created "$CREATED" --os linux --architecture "$p" \
			--config.entrypoint "/$name" --config.user 65532:65532 \
			--config.label "org.opencontainers.image.title=$name" \
			--config.label "org.opencontainers.image.description=migration-gate $name: one static binary, FROM scratch" \
			${IMAGE_SOURCE:+--config.label "org.opencontainers.image.source=$IMAGE_SOURCE"} \
			--config.label "org.opencontainers.image.version=$VERSION" \
			--config.label "org.opencontainers.image.revision=$REVISION" \
			--config.label "org.opencontainers.image.licenses=MIT" \
			--config.label "org.opencontainers.image.created=$CREATED" \
			${IMAGE_SOURCE:+--manifest.annotation "org.opencontainers.image.source=$IMAGE_SOURCE"} \
			--manifest.annotation "org.opencontainers.image.version=$VERSION" \
			--manifest.annotation "org.opencontainers.image.revision=$REVISION" \
			--manifest.annotation "org.opencontainers.image.created=$CREATED"
		rm -rf "$W/bundle-$p"
	done
	umoci gc --layout "$L"

	# ---- the multi-arch index, then a deterministic archive -------------------
	# shellcheck disable=SC2086
	python3 "$HERE/ocitool.py" index "$L" --ref "$VERSION" \
		--annotation "org.opencontainers.image.title=$name" \
		${IMAGE_SOURCE:+--annotation "org.opencontainers.image.source=$IMAGE_SOURCE"} \
		--annotation "org.opencontainers.image.version=$VERSION" \
		--annotation "org.opencontainers.image.revision=$REVISION" \
		--annotation "org.opencontainers.image.licenses=MIT" \
		--annotation "org.opencontainers.image.created=$CREATED" \
		$tags >"$W/index-digest"
	tar -C "$L" --sort=name --format=ustar --mtime="@$SOURCE_DATE_EPOCH" \
		--owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX \
		-cf "$W/$name.oci.tar" oci-layout index.json blobs
	mv "$W/$name.oci.tar" "$OUT/$name.oci.tar"
	cp "$W/sbom.json" "$OUT/$name.spdx.json"
	say "$name: $OUT/$name.oci.tar (index $(cat "$W/index-digest"))"
	sums="$sums $name.oci.tar $name.spdx.json"
done

# shellcheck disable=SC2086
[ -z "$sums" ] || (cd "$OUT" && sha256sum -- $sums >SHA256SUMS)
