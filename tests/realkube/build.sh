#!/bin/sh
# Build the pinned control plane once and print the directory of its binaries:
# kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes,
# go.mod) and etcd (cmd/etcd, go.etcd.io/etcd/server/v3 embed).
#
# The cache lives outside the clone (CI builds in a fresh clone on the same
# machine and must reuse it): $MG_CACHE, default /var/cache/migration-gate,
# keyed by a hash of go.mod, go.sum, cmd/ and the Go version. Go's own module
# and build caches make a rebuild after a key change incremental.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v go >/dev/null 2>&1 || { echo "realkube: go is not on PATH" >&2; exit 69; }
key=$(cd "$here" && { cat go.mod go.sum build.sh; find cmd -type f -name '*.go' | sort | xargs cat; go version; } |
	sha256sum | cut -c1-16)
out=${MG_CACHE:-/var/cache/migration-gate}/realkube/$key
if [ ! -f "$out/.complete" ]; then
	mkdir -p "$out"
	echo "realkube: building kube-apiserver, kube-controller-manager, kube-scheduler, etcd into $out" >&2
	start=$(date +%s)
	# -mod=readonly: go.sum pins every module; a missing sum is an error, not a
	# download. The version stamp is what the monorepo's build scripts set
	# (outside it, /version would say v0.0.0-master and helm's kubeVersion
	# checks would see 0.0.0).
	v=$(sed -n 's/^[[:space:]]*k8s\.io\/kubernetes v\([0-9.]*\)$/\1/p' "$here/go.mod")
	[ -n "$v" ] || { echo "realkube: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
	pkg=k8s.io/component-base/version
	ld="-s -w -X $pkg.gitVersion=v$v -X $pkg.gitMajor=${v%%.*} -X $pkg.gitMinor=$(echo "$v" | cut -d. -f2)"
	ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	(cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags="$ld" -o "$out/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler ./cmd/etcd) >&2
	touch "$out/.complete"
	echo "realkube: built in $(( $(date +%s) - start ))s" >&2
fi
echo "$out"
