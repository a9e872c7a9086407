#!/bin/sh
# Push the archives of `make images` and their SBOMs to a registry with
# skopeo (called by `make publish`; see images/README.md "Publish").
#
#   images/publish.sh IMAGE_DIR REGISTRY TAG NAME...
#
# For every NAME, from IMAGE_DIR/NAME.oci.tar and IMAGE_DIR/NAME.spdx.json:
#   REGISTRY/NAME:TAG                the multi-arch index (amd64 + arm64), copied
#                                    with --all --preserve-digests, so its digest
#                                    is the archive's (checked after the push)
#   REGISTRY/NAME:sha256-HEX.sbom    the SPDX SBOM as an OCI artifact
#                                    (artifactType application/spdx+json) whose
#                                    `subject` is that index: cosign's tag scheme,
#                                    and an OCI 1.1 referrer on registries with
#                                    the referrers API
# then prints one line per image: REGISTRY/NAME:TAG@sha256:HEX (also written
# to IMAGE_DIR/published.txt).
#
# Environment:
#   SKOPEO_FLAGS     extra `skopeo copy` flags, e.g. --dest-authfile FILE
#                    (credentials: `skopeo login REGISTRY` or that file, never
#                    on the command line)
#
# TLS is verified, except for a registry on a loopback address
# (127.0.0.1, [::1], localhost): plain http there, for tests.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
say() { printf 'publish: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -ge 4 ] || { echo "usage: $0 IMAGE_DIR REGISTRY TAG NAME..." >&2; exit 64; }
DIR=$1 REGISTRY=${2%/} TAG=$3
shift 3

case "$REGISTRY" in
'') echo "publish: set REGISTRY, e.g. make publish REGISTRY=ghcr.io/ORG TAG=0.1.0" >&2; exit 64 ;;
*://*) echo "publish: REGISTRY is host[:port][/path], without a scheme (got $REGISTRY)" >&2; exit 64 ;;
*[A-Z]* | *' '*) echo "publish: REGISTRY must be lower case, no spaces (got $REGISTRY)" >&2; exit 64 ;;
*example.invalid* | *example.com*) echo "publish: REGISTRY $REGISTRY is a placeholder" >&2; exit 64 ;;
esac
# a Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
echo "$TAG" | grep -Eq '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' || {
	echo "publish: TAG $TAG is not a valid tag" >&2
	exit 64
}
for t in skopeo python3 sha256sum; do
	command -v "$t" >/dev/null 2>&1 || die "$t not found (run: tests/ensure-tools.sh images)"
done
[ -f "$DIR/SHA256SUMS" ] || die "$DIR/SHA256SUMS missing: run make images first"
# push exactly what make images wrote
(cd "$DIR" && sha256sum --quiet -c SHA256SUMS) || die "$DIR does not match its SHA256SUMS (rebuild: make images)"

host=${REGISTRY%%/*}
tls=--dest-tls-verify=true
case "$host" in
127.* | localhost | localhost:* | '[::1]' | '[::1]:'*) tls=--dest-tls-verify=false ;;
esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
: >"$WORK/published.txt"
for name in "$@"; do
	archive="$DIR/$name.oci.tar"
	sbom="$DIR/$name.spdx.json"
	[ -f "$archive" ] && [ -f "$sbom" ] || die "$archive or $sbom missing: run make images first"
	ref=$(tar -xOf "$archive" index.json | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])')
	dest="$REGISTRY/$name"

	# ---- the image index and both platform images -----------------------------
	say "$name -> $dest:$TAG"
	# shellcheck disable=SC2086
	skopeo copy --quiet --all --preserve-digests $tls ${SKOPEO_FLAGS:-} \
		--digestfile "$WORK/digest" "oci-archive:$archive:$ref" "docker://$dest:$TAG"
	digest=$(cat "$WORK/digest")

	# ---- the SBOM: an artifact whose subject is the index -----------------------
	rm -rf "$WORK/sbom"
	want=$(python3 "$HERE/ocitool.py" sbom-artifact "$WORK/sbom" --sbom "$sbom" --subject "$archive" --ref "$ref")
	[ "$want" = "$digest" ] || die "$dest:$TAG: the registry has $digest, the archive's index is $want"
	# shellcheck disable=SC2086
	skopeo copy --quiet --preserve-digests $tls ${SKOPEO_FLAGS:-} \
		"oci:$WORK/sbom:$ref" "docker://$dest:$(echo "$digest" | tr : -).sbom"
	say "$name: SBOM -> $dest:$(echo "$digest" | tr : -).sbom"
	echo "$dest:$TAG@$digest" | tee -a "$WORK/published.txt"
done
cp "$WORK/published.txt" "$DIR/published.txt"
