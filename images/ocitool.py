#!/usr/bin/env python3
"""Deterministic helpers for images/build.sh (Python standard library only).

  ocitool.py sbom --name N --version V --revision R --source URL --epoch SECONDS
                  --pins FILE [--toolchain PLATFORM=musl:VER,libgcc:VER]...
                  --binary PLATFORM=PATH [--binary ...]          > N.spdx.json
      An SPDX 2.3 JSON document for one image (all its platforms): our
      program, the files it ships per platform, and every library linked
      into it statically with version, licence, CPE and source checksum.
      No random parts: the namespace is derived from the inputs.

  ocitool.py index LAYOUT --ref REF [--annotation KEY=VALUE]... TAG...
      Replace LAYOUT/index.json by one entry (ref.name REF) that points at a
      new OCI image index listing the manifests tagged TAG..., each with the
      platform read from its config. This is the multi-arch image.
"""

import argparse
import datetime
import hashlib
import json
import os
import sys

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

# What lib/deps/deps.sh pins, as scanners need it: licence (SPDX expression),
# CPE vendor:product as NVD spells it, and a one-line description.
DEPS = {
    "curl": ("curl", "haxx:curl", "libcurl, HTTP/HTTPS only"),
    "mbedtls": ("Apache-2.0 OR GPL-2.0-or-later", "arm:mbed_tls", "Mbed TLS, the TLS library"),
    "cjson": ("MIT", "cjson_project:cjson", "cJSON, JSON parser"),
    "libyaml": ("MIT", "pyyaml:libyaml", "LibYAML, kubeconfig parsing"),
}
TOOLCHAIN = {
    "musl": ("MIT", "musl-libc:musl", "musl libc (static), from Debian's musl-dev",
             "https://musl.libc.org/releases/musl-{v}.tar.gz"),
    "libgcc": ("GPL-3.0-or-later WITH GCC-exception-3.1", "gnu:gcc",
               "libgcc.a of Debian's gcc (runtime support routines)",
               "https://ftp.gnu.org/gnu/gcc/gcc-{v}/gcc-{v}.tar.xz"),
}


def rfc3339(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sums(path):
    h1, h256 = hashlib.sha1(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h1.update(chunk)
            h256.update(chunk)
    return h1.hexdigest(), h256.hexdigest()


def spdx_id(*parts):
    s = "-".join(parts)
    return "SPDXRef-" + "".join(c if c.isalnum() or c in ".-" else "-" for c in s)


def upstream_version(v):
    """1.2.3-1 -> 1.2.3 (drop a Debian revision)."""
    return v.rsplit("-", 1)[0] if "-" in v else v


def cmd_sbom(a):
    pins = []
    with open(a.pins) as f:
        for line in f:
            if line.strip():
                name, version, tarball, sha, url = line.split()
                pins.append((name, version, tarball, sha, url))
    binaries = sorted(tuple(b.split("=", 1)) for b in a.binary)
    toolchain = {}  # (name, version) -> [platforms]
    for t in a.toolchain or []:
        plat, spec = t.split("=", 1)
        for item in spec.split(","):
            n, v = item.split(":", 1)
            toolchain.setdefault((n, v), []).append(plat)

    files, sums = [], []
    for plat, path in binaries:
        s1, s256 = file_sums(path)
        sums.append(f"{plat}={s256}")
        files.append({
            "fileName": "./" + a.name,
            "SPDXID": spdx_id("File", plat, a.name),
            "fileTypes": ["BINARY"],
            "checksums": [{"algorithm": "SHA1", "checksumValue": s1},
                          {"algorithm": "SHA256", "checksumValue": s256}],
            "licenseConcluded": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": f"/{a.name} in the {plat} image: static, stripped musl executable",
        })
    # Everything that determines the content, hashed: the same inputs give
    # the same namespace, different inputs a different one.
    seed = "\n".join([a.name, a.version, a.revision, a.source, str(a.epoch), *sums,
                      *(" ".join(p) for p in pins), *(f"{n}={v}" for n, v in sorted(toolchain))])
    digest = hashlib.sha256(seed.encode()).hexdigest()

    app_id = spdx_id("Package", a.name)
    # SPDX wants a real download location or NOASSERTION (the .invalid
    # placeholder of IMAGE_SOURCE is not one).
    if ".invalid" in a.source:
        location = "NOASSERTION"
    elif a.revision != "unknown":
        location = f"git+{a.source}@{a.revision}"
    else:
        location = a.source
    app = {
        "name": a.name,
        "SPDXID": app_id,
        "versionInfo": a.version,
        "supplier": "Organization: migration-gate",
        "downloadLocation": location,
        # The package is the program; its files are the per-platform binaries.
        "filesAnalyzed": True,
        "hasFiles": [f["SPDXID"] for f in files],
        # SPDX 2.3 section 7.9: SHA-1 over the sorted SHA-1s of the files.
        "packageVerificationCode": {"packageVerificationCodeValue": hashlib.sha1("".join(
            sorted(f["checksums"][0]["checksumValue"] for f in files)).encode()).hexdigest()},
        "licenseInfoFromFiles": ["NOASSERTION"],
        "licenseConcluded": "MIT",
        "licenseDeclared": "MIT",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "APPLICATION",
        "sourceInfo": f"built from revision {a.revision} of {a.source}",
        "description": f"{a.name}, part of migration-gate; one static binary per platform "
                       f"({', '.join(p for p, _ in binaries)})",
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": f"pkg:generic/migration-gate/{a.name}@{a.version}"}],
    }
    packages, rels = [app], [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": app_id}]
    for f in files:
        rels.append({"spdxElementId": app_id, "relationshipType": "CONTAINS", "relatedSpdxElement": f["SPDXID"]})

    def dep(name, version, lic, cpe, desc, url, checksum=None, tarball=None, source_info=None, comment=None):
        pid = spdx_id("Package", name, version)
        p = {
            "name": name,
            "SPDXID": pid,
            "versionInfo": version,
            "downloadLocation": url,
            "filesAnalyzed": False,
            "licenseConcluded": lic,
            "licenseDeclared": lic,
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "description": desc,
            "externalRefs": [
                {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                 "referenceLocator": f"cpe:2.3:a:{cpe}:{upstream_version(version)}:*:*:*:*:*:*:*"},
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": f"pkg:generic/{name}@{upstream_version(version)}?download_url={url}"},
            ],
        }
        if checksum:
            p["checksums"] = [{"algorithm": "SHA256", "checksumValue": checksum}]
        if tarball:
            p["packageFileName"] = tarball
        if source_info:
            p["sourceInfo"] = source_info
        if comment:
            p["comment"] = comment
        packages.append(p)
        rels.append({"spdxElementId": app_id, "relationshipType": "STATIC_LINK", "relatedSpdxElement": pid})

    for name, version, tarball, sha, url in pins:
        lic, cpe, desc = DEPS.get(name, ("NOASSERTION", f"{name}:{name}", name))
        dep(name, version, lic, cpe, desc, url, checksum=sha, tarball=tarball,
            source_info=f"source tarball {tarball} (SHA-256 {sha}), pinned and verified by lib/deps/deps.sh")
    for (name, version), plats in sorted(toolchain.items()):
        lic, cpe, desc, url = TOOLCHAIN[name]
        dep(name, version, lic, cpe, desc, url.format(v=upstream_version(version)),
            comment="linked into the binaries for " + ", ".join(sorted(plats)))

    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{a.name}-{a.version}",
        "documentNamespace": f"{a.source.rstrip('/')}/spdx/{a.name}-{a.version}-{digest}",
        "creationInfo": {
            "created": rfc3339(a.epoch),
            "creators": ["Organization: migration-gate", "Tool: migration-gate-images-ocitool"],
        },
        "packages": packages,
        "files": files,
        "relationships": rels,
    }
    json.dump(doc, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


def blob_path(layout, digest):
    alg, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", alg, hexd)


def read_json_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        data = f.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise SystemExit(f"ocitool: blob {digest} does not match its digest")
    return json.loads(data)


def write_blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return digest


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def cmd_index(a):
    with open(os.path.join(a.layout, "index.json")) as f:
        top = json.load(f)
    by_tag = {d.get("annotations", {}).get("org.opencontainers.image.ref.name"): d for d in top["manifests"]}
    manifests = []
    for tag in a.tags:
        d = by_tag.get(tag)
        if d is None or d["mediaType"] != MT_MANIFEST:
            raise SystemExit(f"ocitool: no image manifest tagged {tag!r} in {a.layout}")
        cfg = read_json_blob(a.layout, read_json_blob(a.layout, d["digest"])["config"]["digest"])
        platform = {"architecture": cfg["architecture"], "os": cfg["os"]}
        if cfg.get("variant"):
            platform["variant"] = cfg["variant"]
        manifests.append({"mediaType": MT_MANIFEST, "digest": d["digest"], "size": d["size"], "platform": platform})
    annotations = dict(kv.split("=", 1) for kv in a.annotation or [])
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
    if annotations:
        index["annotations"] = annotations
    data = canonical(index)
    digest = write_blob(a.layout, data)
    top = {"schemaVersion": 2, "manifests": [{
        "mediaType": MT_INDEX, "digest": digest, "size": len(data),
        "annotations": {"org.opencontainers.image.ref.name": a.ref}}]}
    with open(os.path.join(a.layout, "index.json"), "wb") as f:
        f.write(canonical(top))
    print(digest)
    return 0


def main():
    ap = argparse.ArgumentParser(prog="ocitool.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sbom")
    s.add_argument("--name", required=True)
    s.add_argument("--version", required=True)
    s.add_argument("--revision", default="unknown")
    s.add_argument("--source", required=True)
    s.add_argument("--epoch", type=int, required=True)
    s.add_argument("--pins", required=True)
    s.add_argument("--toolchain", action="append")
    s.add_argument("--binary", action="append", required=True)
    i = sub.add_parser("index")
    i.add_argument("layout")
    i.add_argument("--ref", required=True)
    i.add_argument("--annotation", action="append")
    i.add_argument("tags", nargs="+")
    a = ap.parse_args()
    return cmd_sbom(a) if a.cmd == "sbom" else cmd_index(a)


if __name__ == "__main__":
    sys.exit(main())
