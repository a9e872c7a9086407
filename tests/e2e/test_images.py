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
import time
import unittest

from mg import ROOT, COMPLETE, FAILED, KubeSim, can_unshare, clean_env, job, run, start

IMAGE_DIR = os.environ.get("MG_IMAGE_DIR", os.path.join(ROOT, "build", "images"))
REQUIRED = os.environ.get("MG_IMAGES_REQUIRED") == "1"
ARCHES = os.environ.get("MG_IMAGE_ARCHES", "x86_64 aarch64").split()
PLATFORM = {"x86_64": "amd64", "aarch64": "arm64"}
ELF_MACHINE = {"amd64": 62, "arm64": 183}
ALL_BINS = ("wait-for-job", "migrate-runner", "release-check")
NAMES = os.environ.get("MG_IMAGE_NAMES", "").split() or [
    b for b in ALL_BINS if os.path.exists(os.path.join(ROOT, b, "main.c"))]
# set by `make test-images`; otherwise whatever the archive says must be a URL
IMAGE_SOURCE = os.environ.get("IMAGE_SOURCE")
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
        if IMAGE_SOURCE:
            self.assertEqual(value, IMAGE_SOURCE)
        else:
            self.assertRegex(value, r"^https?://[^/\s]+/\S*$")

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
                self.check_source(ann["org.opencontainers.image.source"])
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
                    self.check_source(lab["org.opencontainers.image.source"])
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
                  "IMAGE_SOURCE=" + lab["org.opencontainers.image.source"], "IMAGE_NAMES=" + " ".join(NAMES),
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
        for key in ("source", "version", "revision", "licenses"):
            self.assertIn("org.opencontainers.image.%s=" % key, base)
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


if __name__ == "__main__":
    unittest.main()
