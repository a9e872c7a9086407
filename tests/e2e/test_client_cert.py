"""Client-certificate authentication of all three static binaries (issue 15
item 1): kubeadm, kind and minikube kubeconfigs carry a client certificate
and a PEM key; the key must reach mbedTLS NUL-terminated or it is refused.

The tests take a kubeconfig so they can run against any cluster:
MG_CERT_KUBECONFIG (a kubeconfig that authenticates with a client
certificate whose user may do everything) and, optionally, MG_CERT_CA_CRT /
MG_CERT_CA_KEY (the cluster's client CA, to mint the CN/O mapping case).
Without them the suite's cluster is started (kubesim, or the real control
plane with MG_BACKEND=real) and its kubeconfig-cert is used.
"""

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from mg import BIN, KubeSim, ROOT, run

sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
from kubesim import generate_client_cert  # noqa: E402

WFJ, MR, RC = BIN("wait-for-job"), BIN("migrate-runner"), BIN("release-check")


def rewrite_user(kubeconfig, dst, crt, key, der_key=False):
    """A copy of kubeconfig whose user has this certificate and key (files
    referenced by path, the key optionally converted to DER)."""
    if der_key:
        der = key + ".der"
        subprocess.run(["openssl", "pkey", "-in", key, "-outform", "DER", "-out", der], check=True,
                       capture_output=True)
        key = der
    out, skip = [], False
    with open(kubeconfig) as f:
        for line in f:
            if line.startswith("  user:") and not skip:
                out.append(line)
                out.append(f"    client-certificate: {crt}\n    client-key: {key}\n")
                skip = True
                continue
            if skip and line.startswith("    "):
                continue
            skip = skip and not line.startswith("- ") and line.startswith("    ")
            out.append(line)
    with open(dst, "w") as f:
        f.writelines(out)
    return dst


class ClientCert(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mg-cert-")
        cls.ks = None
        cfg = os.environ.get("MG_CERT_KUBECONFIG")
        if cfg:
            cls.kubeconfig = cfg
            cls.ca_crt, cls.ca_key = os.environ.get("MG_CERT_CA_CRT"), os.environ.get("MG_CERT_CA_KEY")
        else:
            # kubesim, or tests/realkube with MG_BACKEND=real (same interface)
            cls.ks = KubeSim().start()
            cls.kubeconfig = cls.ks.info["kubeconfig_cert"]
            cls.ca_crt = cls.ks.ca_file
            keys = [os.path.join(cls.ks.state_dir, d, "ca.key") for d in ("", "pki")]
            cls.ca_key = next((k for k in keys if os.path.exists(k)), None)

    @classmethod
    def tearDownClass(cls):
        if cls.ks:
            cls.ks.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_all_three(self, cfg):
        runs = [
            # authenticated and authorised: waits for a Job that is not there
            ([WFJ, "--kubeconfig", cfg, "--timeout", "0", "no-such-job"], (2,)),
            ([RC, "--kubeconfig", cfg, "--no-helm", "--timeout", "0", "no-such-release"], (0, 2)),
            ([MR, "--kubeconfig", cfg, "--record", "mg-cert-record", "--record-key", "k", "--", "true"], (0,)),
        ]
        for argv, codes in runs:
            with self.subTest(binary=os.path.basename(argv[0])):
                r = run(argv, timeout=60)
                self.assertIn(r.returncode, codes, r.stderr)
                self.assertNotIn("private key", r.stderr)
                self.assertNotIn("certificate-authority", r.stderr)

    def test_pem_key_kubeconfig_data(self):
        with open(self.kubeconfig) as f:
            text = f.read()
        self.assertIn("client-key-data", text)
        key = base64.b64decode(text.split("client-key-data:")[1].split()[0])
        self.assertTrue(key.startswith(b"-----BEGIN"), "the key of this kubeconfig is not PEM")
        self.check_all_three(self.kubeconfig)

    def mint(self, name, cn, orgs, rsa):
        if not (self.ca_crt and self.ca_key):
            self.skipTest("no client CA key (MG_CERT_CA_CRT/MG_CERT_CA_KEY)")
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.ca_crt, os.path.join(d, "ca.crt"))
        shutil.copy(self.ca_key, os.path.join(d, "ca.key"))
        return generate_client_cert(d, name, cn, orgs, rsa=rsa)

    def test_pkcs1_rsa_pem_and_der_key_files(self):
        crt, key = self.mint("rsa", "mg-rsa-admin", ["system:masters"], rsa=True)
        with open(key) as f:
            self.assertIn("BEGIN RSA PRIVATE KEY", f.read())
        self.check_all_three(rewrite_user(self.kubeconfig, os.path.join(self.tmp, "rsa.cfg"), crt, key))
        self.check_all_three(rewrite_user(self.kubeconfig, os.path.join(self.tmp, "der.cfg"), crt, key,
                                          der_key=True))

    def test_cn_is_the_user_o_the_groups(self):
        # no group grants anything: the API server refuses the CN by name
        crt, key = self.mint("alice", "mg-alice", ["mg-devs"], rsa=False)
        cfg = rewrite_user(self.kubeconfig, os.path.join(self.tmp, "alice.cfg"), crt, key)
        r = run([WFJ, "--kubeconfig", cfg, "--timeout", "20s", "j"], timeout=60)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn('User "mg-alice"', r.stderr)


if __name__ == "__main__":
    unittest.main()
