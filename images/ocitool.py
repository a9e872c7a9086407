#!/usr/bin/env python3
"""Deterministic helpers for images/build.sh (Python standard library only).

  ocitool.py sbom --name N --version V --revision R [--source URL] --epoch SECONDS
                  --pins FILE [--toolchain PLATFORM=musl:VER,libgcc:VER]...
                  --binary PLATFORM=PATH [--binary ...]          > N.spdx.json
      An SPDX 2.3 JSON document for one image (all its platforms): our
      program, the files it ships per platform, and every library linked
      into it statically with version, licence, CPE and source checksum.
      No random parts: the namespace is derived from the inputs. Without
      --source (IMAGE_SOURCE unset) nothing names a repository: the download
      location is NOASSERTION and the namespace is under spdx.org/spdxdocs.

  ocitool.py source [--from-remote] URL
      Check an IMAGE_SOURCE value: an absolute https URL without credentials
      and not a placeholder (.invalid, example.*); exit 64 otherwise. With
      --from-remote (a `git remote get-url` value): drop credentials and
      ".git", print nothing for a non-https remote.

  ocitool.py sbom-artifact OUTLAYOUT --sbom FILE --subject ARCHIVE --ref REF
      Write an OCI layout holding one artifact manifest (artifactType
      application/spdx+json, the SBOM as its only layer, an OCI 1.1 empty
      config) whose `subject` is the image index inside the OCI archive
      ARCHIVE (a tar from build.sh). Prints the subject's digest. skopeo
      copies it to a registry unchanged (make publish).

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
MT_SPDX = "application/spdx+json"

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
    source = check_source(a.source) if a.source else ""
    seed = "\n".join([a.name, a.version, a.revision, source, str(a.epoch), *sums,
                      *(" ".join(p) for p in pins), *(f"{n}={v}" for n, v in sorted(toolchain))])
    digest = hashlib.sha256(seed.encode()).hexdigest()

    app_id = spdx_id("Package", a.name)
    # SPDX wants a real download location or NOASSERTION: never invent one
    # (issue #13: a placeholder address leaked into published SBOMs).
    if not source:
        location = "NOASSERTION"
    elif a.revision != "unknown":
        location = f"git+{source}@{a.revision}"
    else:
        location = source
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
        "sourceInfo": f"built from revision {a.revision}" + (f" of {source}" if source else ""),
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
        # SPDX 2.3 section 6.5: a unique URI, not necessarily resolvable;
        # spdx.org/spdxdocs is the spec's own prefix for documents without one.
        "documentNamespace": (f"{source}/spdx/{a.name}-{a.version}-{digest}" if source else
                              f"https://spdx.org/spdxdocs/migration-gate-{a.name}-{a.version}-{digest}"),
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


def check_source(url):
    """An IMAGE_SOURCE that may go into labels and SBOMs, without a trailing slash."""
    from urllib.parse import urlsplit
    u = urlsplit(url)
    host = (u.hostname or "").lower()
    why = None
    if u.scheme != "https" or not host:
        why = "not an absolute https URL"
    elif u.username or u.password:
        why = "it carries credentials"
    elif host.endswith((".invalid", ".example", ".test", ".localhost")) or host == "localhost" \
            or host.split(".")[-2:-1] == ["example"]:
        why = "a placeholder host"
    if why:
        shown = "(not shown)" if u.username or u.password else repr(url)  # never log a token
        print(f"ocitool: IMAGE_SOURCE={shown}: {why}; set the repository's https URL "
              "or leave IMAGE_SOURCE empty", file=sys.stderr)
        raise SystemExit(64)
    return url.rstrip("/")


def cmd_source(a):
    url = a.url
    if a.from_remote:
        # `git remote get-url origin`: only an https remote names a public
        # page; drop credentials (https://user:token@host/...) and ".git".
        from urllib.parse import urlsplit, urlunsplit
        u = urlsplit(url.strip())
        if u.scheme != "https" or not u.hostname:
            return 0
        netloc = u.hostname + (f":{u.port}" if u.port else "")
        path = u.path.rstrip("/")
        path = path[:-4] if path.endswith(".git") else path
        url = urlunsplit(("https", netloc, path, "", ""))
    print(check_source(url))
    return 0


def cmd_sbom_artifact(a):
    import tarfile
    with tarfile.open(a.subject) as t:
        top = json.load(t.extractfile("index.json"))
    subj = next((d for d in top["manifests"]
                 if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == a.ref), None)
    if subj is None:
        raise SystemExit(f"ocitool: no image tagged {a.ref!r} in {a.subject}")
    os.makedirs(a.layout, exist_ok=True)
    with open(os.path.join(a.layout, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    with open(a.sbom, "rb") as f:
        sbom = f.read()
    empty = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "artifactType": MT_SPDX,
        # OCI image-spec 1.1's empty descriptor: an artifact has no config
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": write_blob(a.layout, empty),
                   "size": len(empty), "data": "e30="},
        "layers": [{"mediaType": MT_SPDX, "digest": write_blob(a.layout, sbom), "size": len(sbom),
                    "annotations": {"org.opencontainers.image.title": os.path.basename(a.sbom)}}],
        "subject": {"mediaType": subj["mediaType"], "digest": subj["digest"], "size": subj["size"]},
        "annotations": {"org.opencontainers.image.created": a.created} if a.created else {},
    }
    if not manifest["annotations"]:
        del manifest["annotations"]
    data = canonical(manifest)
    digest = write_blob(a.layout, data)
    with open(os.path.join(a.layout, "index.json"), "wb") as f:
        f.write(canonical({"schemaVersion": 2, "manifests": [{
            "mediaType": MT_MANIFEST, "digest": digest, "size": len(data), "artifactType": MT_SPDX,
            "annotations": {"org.opencontainers.image.ref.name": a.ref}}]}))
    print(subj["digest"])
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
    s.add_argument("--source", default="")
    s.add_argument("--epoch", type=int, required=True)
    s.add_argument("--pins", required=True)
    s.add_argument("--toolchain", action="append")
    s.add_argument("--binary", action="append", required=True)
    i = sub.add_parser("index")
    i.add_argument("layout")
    i.add_argument("--ref", required=True)
    i.add_argument("--annotation", action="append")
    i.add_argument("tags", nargs="+")
    c = sub.add_parser("source")
    c.add_argument("--from-remote", action="store_true",
                   help="URL is a git remote: normalise it, print nothing when it is not https")
    c.add_argument("url")
    r = sub.add_parser("sbom-artifact")
    r.add_argument("layout")
    r.add_argument("--sbom", required=True)
    r.add_argument("--subject", required=True)
    r.add_argument("--ref", required=True)
    r.add_argument("--created")
    a = ap.parse_args()
    return {"sbom": cmd_sbom, "index": cmd_index, "source": cmd_source,
            "sbom-artifact": cmd_sbom_artifact}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
