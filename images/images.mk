# ---- OCI images (issue #8) -- included by the top-level Makefile ------------
#
#   make images        $(IMAGE_DIR)/<bin>.oci.tar: one multi-arch OCI image
#                      (linux/amd64 + linux/arm64) per binary, FROM scratch,
#                      plus <bin>.spdx.json (SBOM) and SHA256SUMS
#   make test-images   make images, then tests/e2e/test_images.py
#   make publish REGISTRY=ghcr.io/ORG TAG=0.1.0
#                      push what make images built, with skopeo:
#                      REGISTRY/<bin>:TAG (the index) + its SBOM (images/publish.sh)
#
# No container engine needed: umoci + skopeo from Debian (tests/ensure-tools.sh
# images), arm64 cross-compiled (ensure-tools.sh cross + lib/deps/deps.sh).
# Reproducible: the same commit gives byte-identical archives.
# See images/README.md.

IMAGE_DIR ?= build/images
# The repository URL for org.opencontainers.image.source and the SBOM. Unset:
# `git remote get-url origin` when that is an https URL (credentials and .git
# dropped), else nothing - no source label, NOASSERTION in the SBOM. Never a
# placeholder (issue #13). Set it when publishing from elsewhere:
#   make images IMAGE_SOURCE=https://github.com/ORG/migration-gate
IMAGE_SOURCE ?= $(shell u=$$(git -C $(CURDIR) remote get-url origin 2>/dev/null) && \
	python3 $(CURDIR)/images/ocitool.py source --from-remote "$$u" 2>/dev/null)
IMAGE_ARCHES ?= x86_64 aarch64
IMAGE_NAMES ?= $(BINS)
# Every timestamp in the images; from the last commit unless set.
ifeq ($(origin SOURCE_DATE_EPOCH),undefined)
SOURCE_DATE_EPOCH := $(shell git -C $(CURDIR) log -1 --format=%ct 2>/dev/null || echo 0)
endif
ifeq ($(origin IMAGE_REVISION),undefined)
IMAGE_REVISION := $(shell git -C $(CURDIR) rev-parse HEAD 2>/dev/null || echo unknown)
endif

images:
	@./tests/ensure-tools.sh images
	@for a in $(IMAGE_ARCHES); do $(MAKE) --no-print-directory ARCH=$$a all || exit 1; done
	@VERSION='$(VERSION)' REVISION='$(IMAGE_REVISION)' SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' \
		IMAGE_SOURCE='$(IMAGE_SOURCE)' IMAGE_ARCHES='$(IMAGE_ARCHES)' DEPS_DIR='$(DEPS_DIR)' \
		BUILD_DIR='$(CURDIR)/build' sh images/build.sh $(IMAGE_DIR) $(IMAGE_NAMES)

# For images/Dockerfile: the files of this ARCH's image, $(IMAGE_DIR)/<bin>
# and <bin>.spdx.json, from the same build (no umoci needed).
image-files: all
	@VERSION='$(VERSION)' REVISION='$(IMAGE_REVISION)' SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' \
		IMAGE_SOURCE='$(IMAGE_SOURCE)' IMAGE_ARCHES='$(ARCH)' DEPS_DIR='$(DEPS_DIR)' \
		BUILD_DIR='$(CURDIR)/build' sh images/build.sh --files $(IMAGE_DIR) $(IMAGE_NAMES)

# MG_IMAGES_REQUIRED: missing archives fail the tests instead of skipping them.
test-images: images
	@./tests/ensure-tools.sh images-test
	@cd tests/e2e && MG_IMAGES_REQUIRED=1 MG_IMAGE_DIR='$(abspath $(IMAGE_DIR))' \
		MG_IMAGE_NAMES='$(IMAGE_NAMES)' MG_IMAGE_ARCHES='$(IMAGE_ARCHES)' \
		IMAGE_SOURCE='$(IMAGE_SOURCE)' python3 -m unittest -v test_images

# REGISTRY: where the images go, host[:port][/path]; image names are the
# binaries' (REGISTRY/wait-for-job:TAG, REGISTRY/migrate-runner:TAG, ...).
# Pushes the archives as built (run make images first; SHA256SUMS is checked).
TAG ?= $(VERSION)
publish:
	@sh images/publish.sh $(IMAGE_DIR) '$(REGISTRY)' '$(TAG)' $(IMAGE_NAMES)

.PHONY: images image-files test-images publish
