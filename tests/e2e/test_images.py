"""Black-box tests of the OCI image archives (issue #8).

`make test-images` builds build/images/ (both platforms) and runs this file
with MG_IMAGES_REQUIRED=1, so a missing archive is a failure there. Run by
plain discovery (tests/e2e) without `make images` first, the suite skips.

What is checked, per image and platform: the archive is one OCI index
(linux/amd64 + linux/arm64) that skopeo reads; config (User 65532:65532,
Entrypoint, labels, os/arch), a single layer holding only /NAME and
/NAME.spdx.json with deterministic metadata; the SPDX SBOM; the size
budget; the unpacked binary runs (arm64 under qemu-user), wait-for-job
does a real wait against kubesim, and - like a container runtime would - in
a chroot of the bare rootfs as uid 65532 in in-cluster mode; two builds are
byte-identical.
"""

import datetime
import gzip
import hashlib
import io
import json
import os
import platform as host_platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import socket
import time
import unittest
import urllib.request

from mg import ROOT, COMPLETE, FAILED, KubeSim, can_unshare, clean_env, job, run, start

IMAGE_DIR = os.environ.get("MG_IMAGE_DIR", os.path.join(ROOT, "build", "images"))
REQUIRED = os.environ.get("MG_IMAGES_REQUIRED") == "1"
ARCHES = os.environ.get("MG_IMAGE_ARCHES", "x86_64 aarch64").split()
PLATFORM = {"x86_64": "amd64", "aarch64": "arm64"}
ELF_MACHINE = {"amd64": 62, "arm64": 183}
ALL_BINS = ("wait-for-job", "migrate-runner", "release-check")
NAMES = os.environ.get("MG_IMAGE_NAMES", "").split() or [
    b for b in ALL_BINS if os.path.exists(os.path.join(ROOT, b, "main.c"))]
# set by `make test-images` (empty: no source label); otherwise the label,
# when present, must be an https URL
IMAGE_SOURCE = os.environ.get("IMAGE_SOURCE")
PLACEHOLDER = r"example\.(invalid|com|org)|\.invalid\b"
# issue #8: wait-for-job image <= 1.2 MB uncompressed (layer + config)
SIZE_BUDGET = {"wait-for-job": 1_200_000}
UID = "65532:65532"


def makefile_version():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return re.search(r"^VERSION \?= (\S+)", f.read(), re.M).group(1)


VERSION = makefile_version()
PLATFORMS = [PLATFORM[a] for a in ARCHES]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def load(path):
    return json.loads(slurp(path))


def archive(name):
    return os.path.join(IMAGE_DIR, name + ".oci.tar")


def skopeo(*args):
    r = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("skopeo %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def runner(plat):
    """argv prefix to execute a binary of this platform on this host."""
    native = {"x86_64": "amd64", "aarch64": "arm64"}.get(host_platform.machine())
    return [] if plat == native else ["qemu-%s" % {"amd64": "x86_64", "arm64": "aarch64"}[plat]]


class OciArchive:
    """Reads an OCI image layout archive (a tar) directly, no tools."""

    def __init__(self, path):
        self.path = path
        with tarfile.open(path) as t:
            self.members = t.getmembers()
            self.files = {m.name: t.extractfile(m).read() for m in self.members if m.isfile()}
        self.top = json.loads(self.files["index.json"])

    def blob(self, digest):
        data = self.files["blobs/" + digest.replace(":", "/")]
        assert "sha256:" + sha256(data) == digest, "blob %s corrupt" % digest
        return data

    def index(self):
        return json.loads(self.blob(self.top["manifests"][0]["digest"]))

    def manifest(self, plat):
        for d in self.index()["manifests"]:
            if d["platform"]["architecture"] == plat:
                return json.loads(self.blob(d["digest"]))
        raise KeyError(plat)

    def config(self, plat):
        return json.loads(self.blob(self.manifest(plat)["config"]["digest"]))

    def config_size(self, plat):
        return self.manifest(plat)["config"]["size"]

    def layer_tar(self, plat):
        layers = self.manifest(plat)["layers"]
        assert len(layers) == 1, layers
        return gzip.decompress(self.blob(layers[0]["digest"]))


def epoch_of(rfc3339):
    return int(datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


# The keys SPDX 2.3's JSON schema allows (all objects there have
# additionalProperties: false) and the ones it requires.
SPDX_DOC = ({"SPDXID", "annotations", "comment", "creationInfo", "dataLicense", "externalDocumentRefs",
             "hasExtractedLicensingInfos", "name", "revieweds", "spdxVersion", "documentNamespace",
             "documentDescribes", "packages", "files", "snippets", "relationships"},
            {"SPDXID", "creationInfo", "dataLicense", "name", "spdxVersion"})
SPDX_PKG = ({"SPDXID", "annotations", "attributionTexts", "builtDate", "checksums", "comment", "copyrightText",
             "description", "downloadLocation", "externalRefs", "filesAnalyzed", "hasFiles", "homepage",
             "licenseComments", "licenseConcluded", "licenseDeclared", "licenseInfoFromFiles", "name",
             "originator", "packageFileName", "packageVerificationCode", "primaryPackagePurpose",
             "releaseDate", "sourceInfo", "summary", "supplier", "validUntilDate", "versionInfo"},
            {"SPDXID", "downloadLocation", "name"})
SPDX_FILE = ({"SPDXID", "annotations", "artifactOfs", "attributionTexts", "checksums", "comment",
              "copyrightText", "fileContributors", "fileDependencies", "fileName", "fileTypes",
              "licenseComments", "licenseConcluded", "licenseInfoInFiles", "noticeText"},
             {"SPDXID", "checksums", "fileName"})
SPDX_REL = ({"spdxElementId", "comment", "relatedSpdxElement", "relationshipType"},
            {"spdxElementId", "relatedSpdxElement", "relationshipType"})
# issue #8 / docs/design.md "Dependencies": the pinned dependencies and their licences
EXPECTED_LICENSES = {"curl": "curl", "mbedtls": "Apache-2.0 OR GPL-2.0-or-later", "cjson": "MIT",
                     "libyaml": "MIT", "musl": "MIT"}


def deps_pins():
    out = subprocess.run(["sh", os.path.join(ROOT, "lib", "deps", "deps.sh"), "pins"],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}


class Images(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [archive(n) for n in NAMES if not os.path.exists(archive(n))]
        tools = [t for t in ("skopeo", "umoci") if not shutil.which(t)]
        if missing or tools or not NAMES:
            why = "not built: %s; missing tools: %s (run `make test-images`)" % (missing or NAMES, tools)
            if REQUIRED:
                raise AssertionError(why)
            raise unittest.SkipTest(why)
        cls.arch = {n: OciArchive(archive(n)) for n in NAMES}
        cls.tmp = tempfile.mkdtemp(prefix="mg-images-")
        cls.rootfs = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def unpacked(self, name, plat):
        """skopeo picks the platform out of the index, umoci unpacks it."""
        key = (name, plat)
        if key not in self.rootfs:
            layout = os.path.join(self.tmp, "oci-%s-%s" % (name, plat))
            bundle = os.path.join(self.tmp, "bundle-%s-%s" % (name, plat))
            skopeo("copy", "--quiet", "--override-os", "linux", "--override-arch", plat,
                   "oci-archive:" + archive(name), "oci:%s:%s" % (layout, plat))
            r = subprocess.run(["umoci", "unpack", "--image", "%s:%s" % (layout, plat), bundle],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.rootfs[key] = (layout, bundle)
        return self.rootfs[key]

    def check_source(self, value):
        """issue #13: the source label is the repository or absent, never a placeholder."""
        if IMAGE_SOURCE is not None:
            self.assertEqual(value, IMAGE_SOURCE or None)
        elif value is not None:
            self.assertRegex(value, r"^https://[^/\s@]+/\S*$")
            self.assertNotRegex(value, PLACEHOLDER)

    # ---- the archive: one index, one image per platform ---------------------

    def test_index_is_multi_arch(self):
        for name in NAMES:
            with self.subTest(name=name):
                a = self.arch[name]
                self.assertEqual(len(a.top["manifests"]), 1, "index.json must name exactly one image")
                top = a.top["manifests"][0]
                self.assertEqual(top["mediaType"], "application/vnd.oci.image.index.v1+json")
                self.assertEqual(top["annotations"]["org.opencontainers.image.ref.name"], VERSION)
                raw = json.loads(skopeo("inspect", "--raw", "oci-archive:" + archive(name)))
                self.assertEqual(raw["mediaType"], "application/vnd.oci.image.index.v1+json")
                self.assertEqual(sorted((m["platform"]["os"], m["platform"]["architecture"])
                                        for m in raw["manifests"]),
                                 sorted(("linux", p) for p in PLATFORMS))
                ann = raw["annotations"]
                self.assertEqual(ann["org.opencontainers.image.version"], VERSION)
                self.check_source(ann.get("org.opencontainers.image.source"))
                # the reference with the tag works too
                skopeo("inspect", "--raw", "oci-archive:%s:%s" % (archive(name), VERSION))

    def test_config(self):
        for name in NAMES:
            for plat in PLATFORMS:
                with self.subTest(name=name, platform=plat):
                    cfg = json.loads(skopeo("inspect", "--config", "--override-os", "linux",
                                            "--override-arch", plat, "oci-archive:" + archive(name)))
                    self.assertEqual(cfg["architecture"], plat)
                    self.assertEqual(cfg["os"], "linux")
                    c = cfg["config"]
                    self.assertEqual(c["User"], UID)
                    self.assertEqual(c["Entrypoint"], ["/" + name])
                    self.assertNotIn("Cmd", c)
                    self.assertFalse(c.get("Env"), "a scratch image needs no environment")
                    lab = c["Labels"]
                    self.check_source(lab.get("org.opencontainers.image.source"))
                    self.assertEqual(lab["org.opencontainers.image.version"], VERSION)
                    self.assertRegex(lab["org.opencontainers.image.revision"], r"^([0-9a-f]{40}|unknown)$")
                    self.assertEqual(lab["org.opencontainers.image.licenses"], "MIT")
                    self.assertEqual(lab["org.opencontainers.image.title"], name)
                    created = lab["org.opencontainers.image.created"]
                    self.assertEqual(cfg["created"], created)
                    self.assertEqual(len(cfg["rootfs"]["diff_ids"]), 1)
                    self.assertEqual([h["created"] for h in cfg["history"]], [created])
                    info = json.loads(skopeo("inspect", "--override-os", "linux", "--override-arch", plat,
                                             "oci-archive:" + archive(name)))
                    self.assertEqual(len(info["Layers"]), 1, "single layer")
                    self.assertEqual((info["Os"], info["Architecture"]), ("linux", plat))

    def test_layer_holds_only_the_binary_and_its_sbom(self):
        for name in NAMES:
            sbom = load(os.path.join(IMAGE_DIR, name + ".spdx.json"))
            file_sums = {f["comment"].split(" in the ")[1].split(" image")[0]:
                         {c["algorithm"]: c["checksumValue"] for c in f["checksums"]}["SHA256"]
                         for f in sbom["files"]}
            for plat in PLATFORMS:
                with self.subTest(name=name, platform=plat):
                    a = self.arch[name]
                    created = epoch_of(a.config(plat)["created"])
                    with tarfile.open(fileobj=io.BytesIO(a.layer_tar(plat))) as t:
                        members = {m.name.lstrip("./") or ".": m for m in t.getmembers()}
                        self.assertEqual(sorted(members), sorted([".", name, name + ".spdx.json"]))
                        for m in members.values():
                            self.assertEqual((m.uid, m.gid), (0, 0))
                            self.assertEqual(m.mtime, created, "%s: mtime is SOURCE_DATE_EPOCH" % m.name)
                        b = members[name]
                        self.assertTrue(b.isfile())
                        self.assertEqual(b.mode & 0o7777, 0o755)
                        self.assertEqual(members[name + ".spdx.json"].mode & 0o7777, 0o644)
                        binary = t.extractfile(b).read()
                        inner_sbom = t.extractfile(members[name + ".spdx.json"]).read()
                    self.assertEqual(binary[:4], b"\x7fELF")
                    # reproducible from any checkout: no build paths inside
                    self.assertNotIn(b"/.deps/", binary)
                    self.assertNotIn(ROOT.encode() + b"/", binary)
                    self.assertEqual(int.from_bytes(binary[18:20], "little"), ELF_MACHINE[plat])
                    self.assertEqual(sha256(binary), file_sums["linux/" + plat], "SBOM lists this binary")
                    self.assertEqual(inner_sbom, slurp(os.path.join(IMAGE_DIR, name + ".spdx.json")))

    def test_size_budget(self):
        for name in NAMES:
            for plat in PLATFORMS:
                a = self.arch[name]
                size = len(a.layer_tar(plat)) + a.config_size(plat)
                print("\n  %s linux/%s: %d bytes uncompressed (layer+config), %d compressed layer"
                      % (name, plat, size, a.manifest(plat)["layers"][0]["size"]), end="")
                if name in SIZE_BUDGET:
                    with self.subTest(name=name, platform=plat):
                        self.assertLessEqual(size, SIZE_BUDGET[name])

    def test_sbom(self):
        pins = deps_pins()
        for name in NAMES:
            with self.subTest(name=name):
                raw = slurp(os.path.join(IMAGE_DIR, name + ".spdx.json"))
                doc = json.loads(raw)
                for obj, (allowed, required) in [(doc, SPDX_DOC)] + \
                        [(p, SPDX_PKG) for p in doc["packages"]] + [(f, SPDX_FILE) for f in doc["files"]] + \
                        [(r, SPDX_REL) for r in doc["relationships"]]:
                    self.assertLessEqual(set(obj), allowed, obj.get("SPDXID"))
                    self.assertLessEqual(required, set(obj), obj.get("SPDXID"))
                self.assertEqual(doc["spdxVersion"], "SPDX-2.3")
                self.assertEqual(doc["dataLicense"], "CC0-1.0")
                self.assertNotRegex(doc["documentNamespace"], r"[0-9a-f]{8}-[0-9a-f]{4}-", "no random UUID")
                self.assertNotRegex(raw.decode(), PLACEHOLDER, "issue #13: no placeholder address")
                cfg = self.arch[name].config(PLATFORMS[0])
                self.assertEqual(doc["creationInfo"]["created"], cfg["created"])
                ids = {doc["SPDXID"]} | {p["SPDXID"] for p in doc["packages"]} | {f["SPDXID"] for f in doc["files"]}
                for r in doc["relationships"]:
                    self.assertIn(r["spdxElementId"], ids)
                    self.assertIn(r["relatedSpdxElement"], ids)
                pkgs = {p["name"]: p for p in doc["packages"]}
                app = pkgs[name]
                self.assertEqual(app["versionInfo"], VERSION)
                self.assertEqual(app["licenseDeclared"], "MIT")
                self.assertEqual(len(app["hasFiles"]), len(PLATFORMS))
                self.assertIn({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                               "relatedSpdxElement": app["SPDXID"]}, doc["relationships"])
                for dep, lic in EXPECTED_LICENSES.items():
                    p = pkgs[dep]
                    self.assertEqual(p["licenseDeclared"], lic, dep)
                    self.assertIn({"spdxElementId": app["SPDXID"], "relationshipType": "STATIC_LINK",
                                   "relatedSpdxElement": p["SPDXID"]}, doc["relationships"])
                    cpe = [r["referenceLocator"] for r in p["externalRefs"] if r["referenceType"] == "cpe23Type"]
                    self.assertEqual(len(cpe), 1, dep)
                    if dep in pins:
                        _, version, tarball, sha, _url = pins[dep]
                        self.assertEqual(p["versionInfo"], version)
                        self.assertEqual(p["checksums"], [{"algorithm": "SHA256", "checksumValue": sha}])
                        self.assertEqual(p["packageFileName"], tarball)
                        self.assertIn(":%s:" % version, cpe[0])
                self.assertEqual(set(pins) - set(pkgs), set(), "every pinned dependency is listed")

    # ---- unpacked: the binary runs ---------------------------------------------

    def test_unpack_and_run_version(self):
        for name in NAMES:
            for plat in PLATFORMS:
                with self.subTest(name=name, platform=plat):
                    layout, bundle = self.unpacked(name, plat)
                    st = subprocess.run(["umoci", "stat", "--json", "--image", "%s:%s" % (layout, plat)],
                                        capture_output=True, text=True)
                    self.assertEqual(st.returncode, 0, st.stderr)
                    self.assertEqual(len(json.loads(st.stdout)["history"]), 1)
                    spec = load(os.path.join(bundle, "config.json"))
                    self.assertEqual(spec["process"]["args"], ["/" + name])
                    self.assertEqual((spec["process"]["user"]["uid"], spec["process"]["user"]["gid"]),
                                     (65532, 65532))
                    r = run(runner(plat) + [os.path.join(bundle, "rootfs", name), "--version"])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertIn("%s %s" % (name, VERSION), r.stdout + r.stderr)

    def test_wait_for_job_against_kubesim(self):
        if "wait-for-job" not in NAMES:
            self.skipTest("no wait-for-job image")
        with KubeSim() as ks:
            for plat in PLATFORMS:
                with self.subTest(platform=plat):
                    _, bundle = self.unpacked("wait-for-job", plat)
                    wfj = runner(plat) + [os.path.join(bundle, "rootfs", "wait-for-job"),
                                          "--kubeconfig", ks.kubeconfig, "--timeout", "60s"]
                    ok, bad = "img-ok-" + plat, "img-bad-" + plat
                    ks.apply(job(ok))
                    ks.apply(job(bad))
                    ks.reset_requests()
                    p = start(wfj + [ok])
                    q = start(wfj + [bad])
                    try:
                        # both watches are up before the Jobs finish (qemu is slow to start)
                        for n in (ok, bad):
                            ks.wait_for_request(lambda r, n=n: r["verb"] == "watch" and r["code"] == 200
                                                and "metadata.name%3D" + n in r["query"], timeout=30)
                        ks.patch_status("batch/v1", "Job", "default", ok, COMPLETE)
                        ks.patch_status("batch/v1", "Job", "default", bad, FAILED)
                        _, err = p.communicate(timeout=30)
                        self.assertEqual(p.returncode, 0, err)
                        self.assertIn("job %s succeeded" % ok, err)
                        _, err = q.communicate(timeout=30)
                        self.assertEqual(q.returncode, 1, err)
                        self.assertIn("BackoffLimitExceeded", err)
                    finally:
                        for proc in (p, q):
                            if proc.poll() is None:
                                proc.kill()
                            proc.communicate()

    def test_runs_like_a_container(self):
        """The bare rootfs, chrooted, as 65532:65532, in-cluster mode: nothing else needed."""
        if "wait-for-job" not in NAMES:
            self.skipTest("no wait-for-job image")
        if not can_unshare() or not shutil.which("chroot"):
            self.skipTest("needs root and unshare -m")
        native = [p for p in PLATFORMS if not runner(p)]
        if not native:
            self.skipTest("no image for this host's architecture")
        plat = native[0]
        _, bundle = self.unpacked("wait-for-job", plat)
        with KubeSim() as ks:
            root = tempfile.mkdtemp(prefix="rootfs-", dir=self.tmp)
            os.chmod(root, 0o755)
            shutil.copytree(os.path.join(bundle, "rootfs"), root, dirs_exist_ok=True, symlinks=True)
            self.assertEqual(sorted(os.listdir(root)), ["wait-for-job", "wait-for-job.spdx.json"])
            # what the kubelet and the runtime add: /dev, /proc, the projected token volume
            sa = os.path.join(root, "var/run/secrets/kubernetes.io/serviceaccount")
            os.makedirs(sa)
            for f in ("token", "ca.crt", "namespace"):
                shutil.copy(os.path.join(ks.sa_dir, f), sa)
                os.chmod(os.path.join(sa, f), 0o644)
            os.makedirs(os.path.join(root, "dev"))
            os.makedirs(os.path.join(root, "proc"))
            ks.apply(job("img-chroot", status=COMPLETE))
            script = ('set -e; mount --rbind /dev "$R/dev"; mount -t proc proc "$R/proc"; '
                      'exec chroot --userspec=65532:65532 "$R" "$@"')
            env = {"R": root, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                   "KUBERNETES_SERVICE_PORT": str(ks.api_port)}
            r = run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                     "/wait-for-job", "--timeout", "30s", "img-chroot"], env=env, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("job img-chroot succeeded", r.stderr)

    # ---- reproducibility ----------------------------------------------------------

    def test_two_builds_are_byte_identical(self):
        make = shutil.which("make")
        if not make:
            self.skipTest("make not found")
        lab = self.arch[NAMES[0]].config(PLATFORMS[0])["config"]["Labels"]
        inputs = ["SOURCE_DATE_EPOCH=%d" % epoch_of(lab["org.opencontainers.image.created"]),
                  "IMAGE_REVISION=" + lab["org.opencontainers.image.revision"],
                  "IMAGE_SOURCE=" + lab.get("org.opencontainers.image.source", ""), "IMAGE_NAMES=" + " ".join(NAMES),
                  "IMAGE_ARCHES=" + " ".join(ARCHES)]
        dirs = []
        for i in (1, 2):
            d = os.path.join(self.tmp, "rebuild%d" % i)
            t0 = time.monotonic()
            r = subprocess.run([make, "-s", "-C", ROOT, "images", "IMAGE_DIR=" + d, *inputs],
                               capture_output=True, text=True, timeout=900)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            print("\n  rebuild %d: %.1fs" % (i, time.monotonic() - t0), end="")
            dirs.append(d)
        files = sorted(os.listdir(dirs[0]))
        self.assertEqual(files, sorted(os.listdir(dirs[1])))
        self.assertIn("SHA256SUMS", files)
        for f in files:
            with self.subTest(file=f):
                self.assertEqual(sha256(slurp(os.path.join(dirs[0], f))),
                                 sha256(slurp(os.path.join(dirs[1], f))))
        # and the archives under test are that same build, unless the
        # binaries were rebuilt from changed sources since `make images`
        for name in NAMES:
            with self.subTest(archive=name):
                old = load(os.path.join(IMAGE_DIR, name + ".spdx.json"))
                new = load(os.path.join(dirs[0], name + ".spdx.json"))
                if [f["checksums"] for f in old["files"]] != [f["checksums"] for f in new["files"]]:
                    self.skipTest("binaries changed since %s was built" % archive(name))
                self.assertEqual(sha256(slurp(archive(name))),
                                 sha256(slurp(os.path.join(dirs[0], name + ".oci.tar"))))

    def test_binaries_rebuild_identically(self):
        """The compile step is reproducible too: a second build elsewhere gives the same bytes."""
        make = shutil.which("make")
        if not make:
            self.skipTest("make not found")
        for arch in ARCHES:
            bdir = os.path.join(ROOT, "build") if arch == "x86_64" else os.path.join(ROOT, "build", arch)
            q = subprocess.run([make, "-q", "-C", ROOT, "ARCH=" + arch, "all"], capture_output=True)
            if q.returncode != 0:
                self.skipTest("build/ is out of date for %s (sources changed since make)" % arch)
            other = os.path.join(self.tmp, "rebuild-bin-" + arch)
            targets = [os.path.join(other, n) for n in NAMES]
            r = subprocess.run([make, "-s", "-C", ROOT, "ARCH=" + arch, "BUILD=" + other, *targets],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for n in NAMES:
                with self.subTest(arch=arch, binary=n):
                    self.assertEqual(sha256(slurp(os.path.join(other, n))), sha256(slurp(os.path.join(bdir, n))))


class Dockerfile(unittest.TestCase):
    """images/Dockerfile cannot be built here (no container engine); check what can be checked."""

    def setUp(self):
        with open(os.path.join(ROOT, "images", "Dockerfile")) as f:
            self.text = f.read()
        # logical lines: join continuations, drop comments
        self.lines = [ln.strip() for ln in re.sub(r"\\\n", " ", self.text).splitlines()
                      if ln.strip() and not ln.lstrip().startswith("#")]

    def stage(self, name):
        out, cur = [], None
        for ln in self.lines:
            if ln.startswith("FROM "):
                cur = ln.split()[-1]
            elif cur == name:
                out.append(ln)
        return out

    def test_stages(self):
        self.assertIn("FROM debian:bookworm AS build", self.lines)
        self.assertIn("FROM scratch AS base", self.lines)
        self.assertEqual(self.lines[-1], "FROM ${BINARY}")
        self.assertIn("ARG BINARY=wait-for-job", self.lines)
        self.assertIn("USER 65532:65532", self.stage("base"))
        self.assertIn("ARG VERSION=%s" % VERSION, self.stage("base"), "keep in step with the Makefile's VERSION")
        base = " ".join(self.stage("base"))
        for key in ("version", "revision", "licenses"):
            self.assertIn("org.opencontainers.image.%s=" % key, base)
        # issue #13: no placeholder; the source label is the builder's --label
        self.assertNotIn("org.opencontainers.image.source=", base)
        self.assertNotRegex(self.text, PLACEHOLDER)
        self.assertIn("ARG IMAGE_SOURCE=", self.stage("build"))
        self.assertTrue(any(ln.startswith("RUN make") and "image-files" in ln for ln in self.stage("build")))
        for name in ALL_BINS:
            with self.subTest(binary=name):
                self.assertIn("FROM base AS " + name, self.lines)
                st = self.stage(name)
                self.assertIn('ENTRYPOINT ["/%s"]' % name, st)
                self.assertIn("COPY --from=build /out/%s /out/%s.spdx.json /" % (name, name), st)

    def test_dockerignore_keeps_local_state_out(self):
        with open(os.path.join(ROOT, "images", "Dockerfile.dockerignore")) as f:
            ignored = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
        self.assertLessEqual({".git", ".deps", "build"}, ignored)



# ---- IMAGE_SOURCE: the repository or nothing (issue #13) ---------------------------

class ImageSource(unittest.TestCase):
    """No placeholder address in labels and SBOMs: unset -> no label, NOASSERTION."""

    def make_value(self, remote):
        """IMAGE_SOURCE as the Makefile derives it, for a repository whose origin is REMOTE."""
        gitdir = tempfile.mkdtemp(prefix="mg-git-")
        self.addCleanup(shutil.rmtree, gitdir, True)
        for argv in (["git", "init", "-q", "--bare", gitdir], ["git", "--git-dir", gitdir, "remote", "add", "origin", remote]):
            subprocess.run(argv, check=True, capture_output=True)
        env = clean_env({"GIT_DIR": gitdir})
        env.pop("IMAGE_SOURCE", None)
        r = run(["make", "-s", "--no-print-directory", "-C", ROOT, "--eval",
                 "mg-print-source: ; @echo '[$(IMAGE_SOURCE)]'", "mg-print-source"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()[1:-1]

    def test_derived_from_an_https_origin_only(self):
        if not shutil.which("make") or not shutil.which("git"):
            self.skipTest("needs make and git")
        self.assertEqual(self.make_value("https://github.com/org/migration-gate.git"),
                         "https://github.com/org/migration-gate")
        # a token in the remote never reaches a label
        self.assertEqual(self.make_value("https://x-access-token:ghs_secret@github.com/org/mg.git"),
                         "https://github.com/org/mg")
        for remote in ("git@github.com:org/migration-gate.git", "/srv/git/mg", "https://example.invalid/mg"):
            with self.subTest(remote=remote):
                self.assertEqual(self.make_value(remote), "")

    def build_files(self, source):
        """images/build.sh --files for this host's arch: the SBOM as `make image-files` writes it."""
        arch = host_platform.machine()
        binary = os.path.join(ROOT, "build", "wait-for-job") if arch == "x86_64" else \
            os.path.join(ROOT, "build", arch, "wait-for-job")
        if arch not in PLATFORM or not os.path.exists(binary):
            self.skipTest("no %s binary built (make)" % binary)
        out = tempfile.mkdtemp(prefix="mg-src-")
        self.addCleanup(shutil.rmtree, out, True)
        env = clean_env({"VERSION": VERSION, "SOURCE_DATE_EPOCH": "0", "REVISION": "0" * 40,
                         "IMAGE_SOURCE": source, "IMAGE_ARCHES": arch})
        return run(["sh", os.path.join(ROOT, "images", "build.sh"), "--files", out, "wait-for-job"],
                   env=env, timeout=60), out

    def test_unset_source_is_left_out_of_the_sbom(self):
        r, out = self.build_files("")
        self.assertEqual(r.returncode, 0, r.stderr)
        raw = slurp(os.path.join(out, "wait-for-job.spdx.json")).decode()
        self.assertNotRegex(raw, PLACEHOLDER)
        doc = json.loads(raw)
        app = [p for p in doc["packages"] if p["name"] == "wait-for-job"][0]
        self.assertEqual(app["downloadLocation"], "NOASSERTION")
        self.assertNotIn(" of ", app["sourceInfo"])
        self.assertTrue(doc["documentNamespace"].startswith("https://spdx.org/spdxdocs/migration-gate-"))

    def test_set_source_is_used(self):
        r, out = self.build_files("https://github.com/org/migration-gate/")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = load(os.path.join(out, "wait-for-job.spdx.json"))
        app = [p for p in doc["packages"] if p["name"] == "wait-for-job"][0]
        self.assertEqual(app["downloadLocation"], "git+https://github.com/org/migration-gate@" + "0" * 40)
        self.assertTrue(doc["documentNamespace"].startswith("https://github.com/org/migration-gate/spdx/"))

    def test_placeholder_or_credentials_are_refused(self):
        for bad in ("https://example.invalid/migration-gate", "https://user:tok3n@github.com/org/mg",
                    "http://github.com/org/mg", "github.com/org/mg"):
            with self.subTest(source=bad):
                r, _ = self.build_files(bad)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertIn("IMAGE_SOURCE", r.stderr)
                self.assertNotIn("tok3n", r.stderr)

    def test_umoci_image_without_source_has_no_source_label(self):
        """The label itself (build.sh's umoci path), for one small image."""
        if not shutil.which("umoci"):
            self.skipTest("umoci not found")
        arch = host_platform.machine()
        binary = os.path.join(ROOT, "build", "wait-for-job")
        if arch != "x86_64" or not os.path.exists(binary):
            self.skipTest("needs an x86_64 build/wait-for-job (make)")
        out = tempfile.mkdtemp(prefix="mg-src-")
        self.addCleanup(shutil.rmtree, out, True)
        env = clean_env({"VERSION": VERSION, "SOURCE_DATE_EPOCH": "0", "REVISION": "0" * 40,
                         "IMAGE_SOURCE": "", "IMAGE_ARCHES": "x86_64"})
        r = run(["sh", os.path.join(ROOT, "images", "build.sh"), out, "wait-for-job"], env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        a = OciArchive(os.path.join(out, "wait-for-job.oci.tar"))
        self.assertNotIn("org.opencontainers.image.source", a.config("amd64")["config"]["Labels"])
        self.assertNotIn("org.opencontainers.image.source", a.manifest("amd64").get("annotations", {}))
        self.assertNotIn("org.opencontainers.image.source", a.index().get("annotations", {}))
        self.assertEqual(a.config("amd64")["config"]["Labels"]["org.opencontainers.image.version"], VERSION)
        for data in a.files.values():
            self.assertNotIn(b"example.invalid", data)


# ---- make publish: a real registry on loopback -----------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1, private config and storage."""

    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="registry-")
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                    "  delete:\n    enabled: true\nhttp:\n  addr: %s\n  secret: mg-test-only\n"
                    % (os.path.join(self.dir, "data"), self.host))
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen("http://%s/v2/" % self.host, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("docker-registry did not start: %s" % self.logtext())
            time.sleep(0.2)

    def logtext(self):
        with open(os.path.join(self.dir, "registry.log"), errors="replace") as f:
            return f.read()[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def find_cosign():
    """$COSIGN or cosign on PATH."""
    for c in (os.environ.get("COSIGN"), shutil.which("cosign")):
        if c and os.access(c, os.X_OK):
            return c
    return None


class Publish(unittest.TestCase):
    """`make publish` into a real registry, pulled back by digest and run."""

    TAG = "test"

    @classmethod
    def setUpClass(cls):
        missing = [archive(n) for n in NAMES if not os.path.exists(archive(n))]
        tools = [t for t in ("skopeo", "umoci", "docker-registry", "make") if not shutil.which(t)]
        if missing or tools or not NAMES:
            why = "not built: %s; missing tools: %s (run `make test-images`)" % (missing or NAMES, tools)
            if REQUIRED:
                raise AssertionError(why)
            raise unittest.SkipTest(why)
        cls.tmp = tempfile.mkdtemp(prefix="mg-publish-")
        cls.arch = {n: OciArchive(archive(n)) for n in NAMES}
        cls.digest = {n: cls.arch[n].top["manifests"][0]["digest"] for n in NAMES}
        cls.registry = Registry(cls.tmp)
        cls.repo = cls.registry.host + "/mg"
        t0 = time.monotonic()
        cls.out = cls.publish(cls.repo, cls.TAG)
        cls.seconds = time.monotonic() - t0

    @classmethod
    def tearDownClass(cls):
        cls.registry.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def publish(cls, registry, tag, env_extra=None):
        env = clean_env(env_extra)
        env.pop("REGISTRY", None)
        return run(["make", "-s", "--no-print-directory", "-C", ROOT, "publish", "REGISTRY=" + registry,
                    "TAG=" + tag, "IMAGE_DIR=" + IMAGE_DIR, "IMAGE_NAMES=" + " ".join(NAMES)],
                   env=env, timeout=300)

    def test_publish_prints_the_references_by_digest(self):
        self.assertEqual(self.out.returncode, 0, self.out.stdout + self.out.stderr)
        print("\n  make publish (%d images): %.1fs" % (len(NAMES), self.seconds), end="")
        want = ["%s/%s:%s@%s" % (self.repo, n, self.TAG, self.digest[n]) for n in NAMES]
        self.assertEqual(self.out.stdout.split(), want)
        with open(os.path.join(IMAGE_DIR, "published.txt")) as f:
            self.assertEqual(f.read().split(), want)

    def test_registry_serves_the_archive_index_unchanged(self):
        for name in NAMES:
            with self.subTest(name=name):
                raw = skopeo("inspect", "--raw", "--tls-verify=false",
                             "docker://%s/%s:%s" % (self.repo, name, self.TAG)).encode()
                self.assertEqual("sha256:" + sha256(raw), self.digest[name])
                self.assertEqual(raw, self.arch[name].blob(self.digest[name]))
                tags = json.loads(skopeo("list-tags", "--tls-verify=false", "docker://%s/%s" % (self.repo, name)))
                self.assertEqual(sorted(tags["Tags"]),
                                 sorted([self.TAG, self.digest[name].replace(":", "-") + ".sbom"]))

    def test_pull_by_digest_and_run(self):
        for name in NAMES:
            for plat in PLATFORMS:
                with self.subTest(name=name, platform=plat):
                    layout = os.path.join(self.tmp, "pulled-%s-%s" % (name, plat))
                    bundle = os.path.join(self.tmp, "bundle-%s-%s" % (name, plat))
                    skopeo("copy", "--quiet", "--src-tls-verify=false", "--override-os", "linux",
                           "--override-arch", plat, "docker://%s/%s@%s" % (self.repo, name, self.digest[name]),
                           "oci:%s:%s" % (layout, plat))
                    r = subprocess.run(["umoci", "unpack", "--image", "%s:%s" % (layout, plat), bundle],
                                       capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    spec = load(os.path.join(bundle, "config.json"))
                    self.assertEqual(spec["process"]["args"], ["/" + name])
                    binary = os.path.join(bundle, "rootfs", name)
                    r = run(runner(plat) + [binary, "--version"])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertIn("%s %s" % (name, VERSION), r.stdout + r.stderr)
                    r = run(runner(plat) + [binary, "--help"])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertIn("usage", (r.stdout + r.stderr).lower())
                    with tarfile.open(fileobj=io.BytesIO(self.arch[name].layer_tar(plat))) as t:
                        self.assertEqual(slurp(binary), t.extractfile(name).read())

    def test_sbom_is_an_artifact_referring_to_the_index(self):
        for name in NAMES:
            with self.subTest(name=name):
                ref = "docker://%s/%s:%s.sbom" % (self.repo, name, self.digest[name].replace(":", "-"))
                m = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", ref))
                sbom = slurp(os.path.join(IMAGE_DIR, name + ".spdx.json"))
                self.assertEqual(m["artifactType"], "application/spdx+json")
                self.assertEqual(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json")
                self.assertEqual(m["subject"]["digest"], self.digest[name])
                self.assertEqual(m["subject"]["mediaType"], "application/vnd.oci.image.index.v1+json")
                self.assertEqual(len(m["layers"]), 1)
                self.assertEqual(m["layers"][0]["digest"], "sha256:" + sha256(sbom))
                self.assertEqual(m["layers"][0]["mediaType"], "application/spdx+json")
                # and the bytes come back
                layout = os.path.join(self.tmp, "sbom-" + name)
                skopeo("copy", "--quiet", "--src-tls-verify=false", ref, "oci:%s:sbom" % layout)
                blob = os.path.join(layout, "blobs", "sha256", sha256(sbom))
                self.assertEqual(slurp(blob), sbom)

    def test_bad_registry_or_tag_is_refused(self):
        for registry, tag, msg in (("", "x", "set REGISTRY"), ("https://ghcr.io/org", "x", "without a scheme"),
                                   ("Ghcr.io/Org", "x", "lower case"), ("registry.example.invalid/o", "x", "placeholder"),
                                   (self.repo, "bad:tag", "not a valid tag")):
            with self.subTest(registry=registry, tag=tag):
                r = self.publish(registry, tag)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(msg, r.stderr)

    def test_sign_and_verify(self):
        """cosign signs the pushed index by digest with a key made here, and verifies it."""
        cosign = find_cosign()
        if not cosign:
            self.skipTest("no cosign ($COSIGN or PATH): not in Debian bookworm, `go install` of v2.6.5 did not "
                          "finish in 11 min on these 2 cores, Debian's skopeo has sigstore signing compiled out "
                          "(images/README.md, Signing)")
        env = clean_env({"COSIGN_PASSWORD": "mg-test-only"})
        keys = {}
        for who in ("signer", "other"):
            d = os.path.join(self.tmp, "keys-" + who)
            os.makedirs(d)
            r = run([cosign, "generate-key-pair"], env=env, cwd=d, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            keys[who] = d
        name = NAMES[0]
        by_digest = "%s/%s@%s" % (self.repo, name, self.digest[name])
        r = run([cosign, "sign", "--yes", "--tlog-upload=false", "--allow-http-registry",
                 "--key", os.path.join(keys["signer"], "cosign.key"), by_digest], env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        tags = json.loads(skopeo("list-tags", "--tls-verify=false", "docker://%s/%s" % (self.repo, name)))["Tags"]
        self.assertIn(self.digest[name].replace(":", "-") + ".sig", tags)
        verify = [cosign, "verify", "--insecure-ignore-tlog=true", "--allow-http-registry"]
        r = run(verify + ["--key", os.path.join(keys["signer"], "cosign.pub"), by_digest], env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.digest[name], r.stdout)
        r = run(verify + ["--key", os.path.join(keys["other"], "cosign.pub"), by_digest], env=env, timeout=120)
        self.assertNotEqual(r.returncode, 0, "a key that did not sign must not verify")


# ---- images/Dockerfile, built for real with buildah (no daemon) ---------------------

# buildah's storage and the local debian:bookworm base, kept between runs
# outside the clone (like tests/realkube's binaries): CI builds in a fresh clone
# on the same machine, and the base image plus the dependency layer take
# minutes to make; $MG_CACHE moves it
BUILDAH_DIR = os.path.join(os.environ.get("MG_CACHE", "/var/cache/migration-gate"), "buildah")


class DockerfileBuild(unittest.TestCase):
    """images/Dockerfile built by Debian's buildah and compared with the umoci image.

    The machines reach Debian's archive but no container registry, so the
    builder's `FROM debian:bookworm` is a bookworm minbase made with
    mmdebstrap from the same archive, stored as docker.io/library/debian:bookworm
    in a private buildah store ($MG_CACHE/buildah) and used with --pull=never.
    Everything else is the Dockerfile as a user runs it: the build stage runs
    apt-get and `make image-files` (fetching and building the pinned
    dependencies), then the FROM scratch stage. MG_SKIP_BUILDAH=1 skips it.
    """

    @classmethod
    def setUpClass(cls):
        if os.environ.get("MG_SKIP_BUILDAH") == "1":
            raise unittest.SkipTest("MG_SKIP_BUILDAH=1")
        missing = [archive(n) for n in NAMES if not os.path.exists(archive(n))]
        tools = [t for t in ("buildah", "mmdebstrap", "umoci", "skopeo", "git") if not shutil.which(t)]
        why = None
        if missing or tools or not NAMES:
            why = "not built: %s; missing tools: %s (run `make test-images`)" % (missing or NAMES, tools)
        elif os.geteuid() != 0:
            why = "buildah --isolation chroot and mmdebstrap --mode=root need root here"
        elif host_platform.machine() != "x86_64" or "amd64" not in PLATFORMS:
            why = "compares with the amd64 image: needs an x86_64 host"
        if why:
            if REQUIRED and os.geteuid() == 0:
                raise AssertionError(why)
            raise unittest.SkipTest(why)
        cls.tmp = tempfile.mkdtemp(prefix="mg-buildah-")
        cls.store = ["--root", os.path.join(BUILDAH_DIR, "root"), "--runroot", os.path.join(cls.tmp, "run")]
        cls.base_image()
        cls.context = cls.make_context()
        cfg = OciArchive(archive(NAMES[0])).config("amd64")
        lab = cfg["config"]["Labels"]
        cls.epoch = epoch_of(cfg["created"])
        cls.args = ["--build-arg", "SOURCE_DATE_EPOCH=%d" % cls.epoch,
                    "--build-arg", "IMAGE_REVISION=" + lab["org.opencontainers.image.revision"],
                    "--build-arg", "IMAGE_SOURCE=" + lab.get("org.opencontainers.image.source", "")]
        cls.built, cls.seconds = {}, {}
        for name in NAMES:
            t0 = time.monotonic()
            # (no --timestamp: it would key the layer cache to the commit, and
            # the dependency layer is meant to survive commits)
            r = cls.buildah("bud", "--isolation", "chroot", "--pull=never", "--layers", "--identity-label=false",
                            "-f", os.path.join(cls.context, "images", "Dockerfile"),
                            "--ignorefile", os.path.join(cls.context, "images", "Dockerfile.dockerignore"),
                            "--build-arg", "BINARY=" + name, *cls.args, "-t", "localhost/mg-test/%s:bud" % name,
                            cls.context, timeout=3600)
            cls.seconds[name] = time.monotonic() - t0
            if r.returncode != 0:
                cls.built[name] = r
                continue
            layout = os.path.join(cls.tmp, "oci-" + name)
            r = cls.buildah("push", "localhost/mg-test/%s:bud" % name, "oci:%s:bud" % layout, timeout=300)
            cls.built[name] = r if r.returncode else layout

    @classmethod
    def tearDownClass(cls):
        # the private store keeps only the layer cache: no containers, no test tags
        cls.buildah("rm", "--all", timeout=120)
        for name in NAMES:
            cls.buildah("rmi", "-f", "localhost/mg-test/%s:bud" % name, timeout=120)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def buildah(cls, *args, timeout=600):
        return subprocess.run(["buildah", *cls.store, *args], capture_output=True, text=True, timeout=timeout,
                              env=clean_env({"BUILDAH_ISOLATION": "chroot"}))

    @classmethod
    def forget_layers(cls):
        """Every image but the base: buildah's --layers cache keys the LABEL
        steps of the FROM-scratch stage without the ARG values they expand, so
        a layer left by an earlier revision came back with that revision's
        label (seen when the store moved out of the clone). Each run builds
        its layers anew; only the base image is kept between runs."""
        r = cls.buildah("images", "--all", "--noheading", "--format", "{{.ID}} {{.Name}}:{{.Tag}}")
        for line in r.stdout.splitlines():
            iid, ref = (line.split() + ["", ""])[:2]
            if iid and ref != "docker.io/library/debian:bookworm":
                cls.buildah("rmi", "-f", iid, timeout=120)

    @classmethod
    def base_image(cls):
        """debian:bookworm in the private store, made once from Debian's archive."""
        if cls.buildah("inspect", "--type", "image", "docker.io/library/debian:bookworm").returncode == 0:
            cls.forget_layers()
            return
        tar = os.path.join(cls.tmp, "bookworm.tar")
        t0 = time.monotonic()
        r = subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "bookworm", tar],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise AssertionError("mmdebstrap bookworm: %s" % r.stderr[-2000:])
        c = cls.buildah("from", "scratch").stdout.strip()
        for args in (("add", c, tar, "/"), ("config", "--cmd", "bash", c),
                     ("commit", "--quiet", c, "docker.io/library/debian:bookworm"), ("rm", c)):
            r = cls.buildah(*args)
            if r.returncode != 0:
                raise AssertionError("buildah %s: %s" % (args[0], r.stderr))
        print("\n  base image debian:bookworm (mmdebstrap, once): %.0fs" % (time.monotonic() - t0), end="")

    @classmethod
    def make_context(cls):
        """The build context a clone would give: tracked and unignored files of the working tree."""
        ctx = os.path.join(cls.tmp, "context")
        os.makedirs(ctx)
        files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "-co", "--exclude-standard"],
                               capture_output=True, check=True).stdout.split(b"\0")
        for f in filter(None, files):
            src = os.path.join(ROOT.encode(), f)
            if not os.path.lexists(src):
                continue  # deleted in the working tree
            dst = os.path.join(ctx.encode(), f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
        return ctx

    def layout(self, name):
        got = self.built[name]
        if not isinstance(got, str):
            self.fail("buildah failed (%.0fs): %s" % (self.seconds[name], (got.stdout + got.stderr)[-3000:]))
        print("\n  buildah bud %s: %.0fs" % (name, self.seconds[name]), end="")
        return got

    def unpack(self, name):
        bundle = os.path.join(self.tmp, "bundle-" + name)
        if not os.path.isdir(bundle):
            r = subprocess.run(["umoci", "unpack", "--image", self.layout(name) + ":bud", bundle],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        return bundle

    def test_same_files_and_binary_as_the_umoci_image(self):
        for name in NAMES:
            with self.subTest(name=name):
                rootfs = os.path.join(self.unpack(name), "rootfs")
                listing = sorted(os.path.relpath(os.path.join(d, f), rootfs)
                                 for d, dirs, files in os.walk(rootfs) for f in dirs + files)
                self.assertEqual(listing, [name, name + ".spdx.json"])
                with tarfile.open(fileobj=io.BytesIO(OciArchive(archive(name)).layer_tar("amd64"))) as t:
                    umoci_binary = t.extractfile(name).read()
                binary = slurp(os.path.join(rootfs, name))
                self.assertEqual(sha256(binary), sha256(umoci_binary),
                                 "the Dockerfile's builder and make images compile the same bytes")
                self.assertEqual(os.stat(os.path.join(rootfs, name)).st_mode & 0o7777, 0o755)
                r = run([os.path.join(rootfs, name), "--version"])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("%s %s" % (name, VERSION), r.stdout + r.stderr)

    def test_sbom_matches_for_amd64(self):
        for name in NAMES:
            with self.subTest(name=name):
                doc = load(os.path.join(self.unpack(name), "rootfs", name + ".spdx.json"))
                ref = load(os.path.join(IMAGE_DIR, name + ".spdx.json"))
                self.assertNotRegex(json.dumps(doc), PLACEHOLDER)
                amd64 = [f for f in ref["files"] if "linux/amd64" in f["comment"]]
                self.assertEqual(doc["files"], amd64)
                pkgs = lambda d: {(p["name"], p["versionInfo"], json.dumps(p.get("checksums")))  # noqa: E731
                                  for p in d["packages"] if p["name"] not in (name,)}
                # the musl/libgcc of the arm64 half are not in a one-platform build
                self.assertLessEqual(pkgs(doc), pkgs(ref))
                self.assertEqual({p[0] for p in pkgs(doc)}, {p[0] for p in pkgs(ref)})

    def test_config_like_the_umoci_image(self):
        for name in NAMES:
            with self.subTest(name=name):
                ours = OciArchive(archive(name)).config("amd64")
                layout = self.layout(name)
                with open(os.path.join(layout, "index.json")) as f:
                    mdesc = json.load(f)["manifests"][0]
                manifest = json.loads(slurp(os.path.join(layout, "blobs", "sha256", mdesc["digest"][7:])))
                cfg = json.loads(slurp(os.path.join(layout, "blobs", "sha256", manifest["config"]["digest"][7:])))
                self.assertEqual((cfg["os"], cfg["architecture"]), ("linux", "amd64"))
                c = cfg["config"]
                self.assertEqual(c["User"], UID)
                self.assertEqual(c["Entrypoint"], ["/" + name])
                self.assertFalse(c.get("Cmd"))
                lab, want = c.get("Labels", {}), ours["config"]["Labels"]
                for key in ("title", "version", "revision", "licenses"):
                    k = "org.opencontainers.image." + key
                    self.assertEqual(lab.get(k), want[k], k)
                self.assertNotIn("org.opencontainers.image.source", lab, "issue #13: the builder's --label")


if __name__ == "__main__":
    unittest.main()
