"""chart-snippets/ with the real helm v4: lint, template with assertions on
the rendered objects, values.schema.json, the plain YAML kept in sync,
kustomize on the plain YAML, and `helm upgrade --install` of the example
chart into kubesim (controllers + kubelet running our real binaries, pods'
tokens authorised by the chart's own Roles) with the pattern observed.

    python3 -m unittest discover -s tests/e2e -p 'test_chart.py' -v
"""

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import chart_helpers as ch

JOB_NAME_LABEL_REF = "metadata.labels['batch.kubernetes.io/job-name']"


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}")
    return found[0]


def env_of(container):
    return {e["name"]: e for e in container.get("env") or []}


def env_value(container, name):
    e = env_of(container).get(name)
    return None if e is None else e.get("value")


JOB_RE = r"^shop-migrate-[0-9a-f]{10}$"
REGISTRY = "localhost:5000/migration-gate"   # example-app's images.registry


def job_name(objs):
    return one(objs, "Job")["metadata"]["name"]


def waits_for(container):
    """The Job a wait-for-job init container waits for (its positional JOB)."""
    args = container.get("args") or []
    return args[0] if args else env_value(container, "WAIT_FOR_JOB_NAME")


def pod_specs(objs):
    """(owner name, pod spec) of every workload."""
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"])
            for o in objs if o["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")]


class Lint(unittest.TestCase):
    def lint(self, *args):
        r = ch.helm("lint", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 chart(s) failed", r.stdout)
        self.assertNotIn("[WARNING]", r.stdout)
        self.assertNotIn("[ERROR]", r.stdout)

    def test_library(self):
        self.lint(ch.LIBRARY)
        self.lint(ch.LIBRARY, "--strict")

    def test_example(self):
        self.lint(ch.EXAMPLE)
        self.lint(ch.EXAMPLE, "--strict")

    def test_example_with_options(self):
        self.lint(ch.EXAMPLE, "--strict", "--set", "migrationGate.waitForJob.timeout=30m",
                  "--set", "migrationGate.migration.timeout=20m", "--set", "migrationGate.migration.sidecar=istio",
                  "--set-json", 'migrationGate.migration.waitTcp=["db:5432"]')

    def test_versions_agree(self):
        """The image tag the library defaults to is the version make builds."""
        with open(os.path.join(ch.ROOT, "Makefile")) as f:
            version = re.search(r"(?m)^VERSION \?= (\S+)$", f.read()).group(1)
        r = ch.helm("show", "values", ch.LIBRARY)
        self.assertIn(f'tag: "{version}"', r.stdout)
        r = ch.helm("show", "chart", ch.LIBRARY)
        self.assertIn(f'appVersion: {version}', r.stdout)
        with open(os.path.join(ch.SNIPPETS, "README.md")) as f:
            self.assertIn(f"REGISTRY/migrate-runner:{version}", f.read())

    def test_library_is_a_library(self):
        r = ch.helm("show", "chart", ch.LIBRARY)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^type: library$")
        r = ch.helm("install", "x", ch.LIBRARY, "--dry-run=client")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("library charts are not installable", r.stderr)


class Template(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objs = ch.render("shop")

    def test_objects(self):
        kinds = sorted((o["kind"], o["metadata"]["name"]) for o in self.objs)
        self.assertEqual(kinds, sorted([
            ("ServiceAccount", "shop-app"), ("ServiceAccount", "shop-migrate"),
            ("Role", "shop-wait-for-migration"), ("Role", "shop-migrate"),
            ("RoleBinding", "shop-wait-for-migration"), ("RoleBinding", "shop-migrate"),
            ("ConfigMap", "shop-migrations"), ("Lease", "shop-migrate"), ("Job", job_name(self.objs)),
            ("Deployment", "shop-api"), ("Deployment", "shop-worker"), ("Service", "shop-api"),
        ]))
        # the migration Job is an ordinary release object, not a hook, and
        # not kept (helm.sh/resource-policy: keep breaks helm rollback)
        job = one(self.objs, "Job")
        self.assertRegex(job["metadata"]["name"], JOB_RE)
        self.assertNotIn("annotations", job["metadata"])
        self.assertEqual(job["metadata"]["labels"]["migration-gate.io/release-revision"], "1")
        # the Lease is Helm's and empty: migrate-runner owns its spec
        lease = one(self.objs, "Lease")
        self.assertNotIn("spec", lease)
        self.assertEqual(lease["apiVersion"], "coordination.k8s.io/v1")
        self.assertEqual(job["metadata"]["labels"]["app.kubernetes.io/instance"], "shop")
        self.assertEqual(job["metadata"]["labels"]["app.kubernetes.io/component"], "migration")

    def test_rendering_is_clean(self):
        for sets in ([], ["migrationGate.migration.timeout=0", "migrationGate.waitForJob.timeout=10m",
                          "migrationGate.migration.lock.lease=1m", "migrationGate.migration.sidecar=istio"]):
            r, text = ch.template("shop", sets=sets)
            self.assertEqual(r.returncode, 0, r.stderr)
            for n, line in enumerate(text.splitlines(), 1):
                self.assertFalse(line.endswith((" ", "\t")), f"trailing blank on line {n}: {line!r}")
                self.assertNotIn("<no value>", line)

    def test_job_name_is_the_migrations_hash(self):
        """The Job's name changes exactly when the migration (the Job's
        immutable pod template, its podFailurePolicy, runId) changes, under
        helm template as under helm upgrade: stable output, no suffix."""
        base = job_name(self.objs)
        self.assertRegex(base, JOB_RE)
        self.assertEqual(job_name(ch.render("shop")), base)            # stable
        self.assertEqual(ch.template("shop")[1], ch.template("shop")[1])
        same = [["api.replicas=7"], ["worker.args={--queue=x}"], ["migrationGate.migration.backoffLimit=5"],
                ["migrationGate.migration.activeDeadlineSeconds=900"],
                ["migrationGate.migration.ttlSecondsAfterFinished=60"],
                ["migrationGate.waitForJob.timeout=10m"], ["migrationGate.rbac.previousJobs=2"],
                ["migrationGate.migration.labels.team=db"]]
        for sets in same:
            with self.subTest(sets=sets):
                self.assertEqual(job_name(ch.render("shop", sets=sets)), base)
        changed = [["image.tag=1.0.1"], ["migrationGate.migration.runId=2"],
                   ["migrationGate.migration.timeout=5m"], ["migrationGate.migration.podAnnotations.checksum/config=ab"],
                   ["migrationGate.migration.podFailurePolicy.onTempfail=Count"],
                   ["migrationGate.migration.image.repository=registry.example.com/shop/migrations"]]
        names = {base}
        for sets in changed:
            with self.subTest(sets=sets):
                objs = ch.render("shop", sets=sets)
                n = job_name(objs)
                self.assertRegex(n, JOB_RE)
                self.assertNotIn(n, names)
                names.add(n)
                for owner, spec in pod_specs(objs):
                    for c in spec.get("initContainers", []):
                        self.assertEqual(c["args"], [n], owner)
        for cmd, env in ((["/app/migrate", "up", "--verbose"], []), (["/app/migrate", "up"], [{"name": "X", "value": "1"}])):
            objs = ch.render("shop", set_json=["migrationGate.migration.command=" + json.dumps(cmd),
                                               "migrationGate.migration.env=" + json.dumps(env)])
            self.assertNotIn(job_name(objs), names)
            names.add(job_name(objs))
        # the Job's pod labels carry no chart/app version (a chart release
        # alone must not change the immutable template)
        labels = one(self.objs, "Job")["spec"]["template"]["metadata"]["labels"]
        self.assertNotIn("helm.sh/chart", labels)
        self.assertNotIn("app.kubernetes.io/version", labels)
        # the old per-release suffix is gone (the schema says so)
        r, _ = ch.template("shop", sets=["migrationGate.migration.jobSuffix=v1"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'jobSuffix' not allowed", r.stderr)

    def test_long_release_names_stay_valid(self):
        seen = {}
        for rel in ("a" * 53, "a" * 52 + "b", "a" * 40, "a" * 41):  # 53: helm's maximum release name length
            objs = ch.render(rel)
            job = job_name(objs)
            self.assertLessEqual(len(job), 63)
            self.assertRegex(job, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?-migrate-[0-9a-f]{10}$")
            prefix = job.rsplit("-migrate-", 1)[0]
            self.assertLessEqual(len(prefix), 40)
            # hashed, not cut: names that share their first 40 characters
            # still get their own objects
            self.assertNotIn(prefix, seen, (rel, seen.get(prefix)))
            seen[prefix] = rel
            for o in objs:
                self.assertLessEqual(len(o["metadata"]["name"]), 63, o["metadata"]["name"])
        self.assertIn("a" * 40, seen)   # 40 characters are used as they are

    def test_init_container_waits_for_exactly_this_job_with_the_record(self):
        job = one(self.objs, "Job")["metadata"]["name"]
        cm = one(self.objs, "ConfigMap")["metadata"]["name"]
        for dep in by_kind(self.objs, "Deployment"):
            spec = dep["spec"]["template"]["spec"]
            inits = spec["initContainers"]
            self.assertEqual([c["name"] for c in inits], ["wait-for-migration"], dep["metadata"]["name"])
            c = inits[0]
            self.assertEqual(c["image"], REGISTRY + "/wait-for-job:0.1.0")
            self.assertNotIn("command", c)  # the image's entrypoint, /wait-for-job
            # the positional JOB (release-check reads it to know the current Job)
            self.assertEqual(c["args"], [job])
            self.assertNotIn("WAIT_FOR_JOB_NAME", env_of(c))
            self.assertEqual(env_value(c, "WAIT_FOR_JOB_RECORD"), cm)
            self.assertNotIn("WAIT_FOR_JOB_TIMEOUT", env_of(c))  # default: no timeout
            self.assertNotIn("WAIT_FOR_JOB_SELECTOR", env_of(c))
            self.assertEqual(c["terminationMessagePolicy"], "FallbackToLogsOnError")
            self.assertEqual(spec["serviceAccountName"], "shop-app")

    def test_init_container_options(self):
        objs = ch.render("shop", sets=["migrationGate.waitForJob.timeout=1h30m",
                                       "migrationGate.waitForJob.logFormat=json"])
        c = one(objs, "Deployment", "shop-api")["spec"]["template"]["spec"]["initContainers"][0]
        self.assertEqual(env_value(c, "WAIT_FOR_JOB_TIMEOUT"), "1h30m")
        self.assertEqual(env_value(c, "WAIT_FOR_JOB_LOG_FORMAT"), "json")

    def test_migration_job(self):
        job = one(self.objs, "Job")
        spec = job["spec"]
        self.assertEqual(spec["backoffLimit"], 2)
        self.assertEqual(spec["activeDeadlineSeconds"], 3600)
        self.assertNotIn("ttlSecondsAfterFinished", spec)
        pod = spec["template"]["spec"]
        self.assertEqual(pod["restartPolicy"], "Never")  # required by podFailurePolicy
        self.assertEqual(pod["serviceAccountName"], "shop-migrate")
        self.assertEqual([c["name"] for c in pod["containers"]], ["migrate"])
        self.assertNotIn("initContainers", pod)
        c = pod["containers"][0]
        # the application image (migration.image unset) with migrate-runner as entrypoint
        self.assertEqual(c["image"], "registry.example.com/shop/app:1.0.0")
        self.assertEqual(c["command"], ["/usr/local/bin/migrate-runner"])
        self.assertEqual(c["args"], ["--", "/app/migrate", "up"])
        env = env_of(c)
        self.assertEqual(env["JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], JOB_NAME_LABEL_REF)
        self.assertEqual(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        self.assertEqual(env_value(c, "MR_RECORD"), "shop-migrations")
        self.assertEqual(env_value(c, "MR_LOCK"), "shop-migrate")
        self.assertEqual(env_value(c, "MR_RECORD_MAX_KEYS"), "20")
        for k in ("MR_TIMEOUT", "MR_WAIT_TCP", "MR_SIDECAR", "MR_RECORD_KEY"):
            self.assertNotIn(k, env)
        self.assertEqual(c["terminationMessagePath"], "/dev/termination-log")
        self.assertEqual(pod["volumes"], [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}])

    def test_migration_options(self):
        objs = ch.render("shop", sets=[
            "migrationGate.migration.timeout=20m", "migrationGate.migration.grace=30s",
            "migrationGate.migration.waitTimeout=5m", "migrationGate.migration.lock.timeout=15m",
            "migrationGate.migration.lock.lease=1m", "migrationGate.migration.sidecar=istio",
            "migrationGate.migration.sidecarWait=true", "migrationGate.migration.logFormat=json",
            "migrationGate.migration.image.repository=registry.example.com/shop/migrations",
            "migrationGate.migration.image.tag=7", "migrationGate.migration.runner=/migrate-runner",
            "migrationGate.migration.jobNameLabel=job-name",
        ], set_json=['migrationGate.migration.waitTcp=["db:5432","[fd00::1]:6379"]',
                     'migrationGate.migration.command=["sh","-c","migrate up --verbose"]'])
        c = one(objs, "Job")["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c["image"], "registry.example.com/shop/migrations:7")
        self.assertEqual(c["command"], ["/migrate-runner"])
        self.assertEqual(c["args"], ["--", "sh", "-c", "migrate up --verbose"])
        want = {"MR_TIMEOUT": "20m", "MR_GRACE": "30s", "MR_WAIT_TIMEOUT": "5m", "MR_LOCK_TIMEOUT": "15m",
                "MR_LOCK_LEASE": "1m", "MR_SIDECAR": "istio", "MR_SIDECAR_WAIT": "1", "MR_LOG_FORMAT": "json",
                "MR_WAIT_TCP": "db:5432,[fd00::1]:6379"}
        for k, v in want.items():
            self.assertEqual(env_value(c, k), v, k)
        self.assertEqual(env_of(c)["JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.labels['job-name']")

    def test_digest_wins_over_tag(self):
        d = "sha256:" + "ab" * 32
        objs = ch.render("shop", sets=[f"migrationGate.images.waitForJob.digest={d}", f"image.digest={d}"])
        c = one(objs, "Deployment", "shop-api")["spec"]["template"]["spec"]["initContainers"][0]
        self.assertEqual(c["image"], REGISTRY + "/wait-for-job@" + d)
        self.assertEqual(one(objs, "Job")["spec"]["template"]["spec"]["containers"][0]["image"],
                         "registry.example.com/shop/app@" + d)

    def test_pod_failure_policy_matches_the_exit_codes(self):
        rules = one(self.objs, "Job")["spec"]["podFailurePolicy"]["rules"]
        self.assertEqual(rules, [
            {"action": "FailJob", "onExitCodes": {"containerName": "migrate", "operator": "In",
                                                  "values": [64, 78, 126, 127]}},
            {"action": "Ignore", "onExitCodes": {"containerName": "migrate", "operator": "In", "values": [75]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ])
        # the migration's own failures (1, 124 timeout, 137 OOM/SIGKILL) are counted
        for rule in rules:
            for code in (1, 2, 124, 137, 143):
                self.assertNotIn(code, rule.get("onExitCodes", {}).get("values", []))

    def test_pod_failure_policy_options(self):
        objs = ch.render("shop", sets=["migrationGate.migration.podFailurePolicy.onTempfail=Count",
                                       "migrationGate.migration.podFailurePolicy.ignoreDisruptions=false"],
                         set_json=['migrationGate.migration.podFailurePolicy.extraRules='
                                   '[{"action":"FailJob","onExitCodes":{"containerName":"migrate",'
                                   '"operator":"In","values":[3]}}]'])
        rules = one(objs, "Job")["spec"]["podFailurePolicy"]["rules"]
        self.assertEqual([r["action"] for r in rules], ["FailJob", "FailJob", "Count"])
        self.assertEqual(rules[0]["onExitCodes"]["values"], [3])  # user rules first: first match wins
        self.assertEqual(rules[2]["onExitCodes"]["values"], [75])

    def test_ttl_and_deadlines(self):
        # default: no TTL (a Job deleted by its TTL would be re-created, and
        # re-run, by the next helm upgrade or Argo CD's self-heal)
        self.assertNotIn("ttlSecondsAfterFinished", one(self.objs, "Job")["spec"])
        objs = ch.render("shop", sets=["migrationGate.migration.ttlSecondsAfterFinished=86400",
                                       "migrationGate.migration.activeDeadlineSeconds=600",
                                       "migrationGate.migration.backoffLimit=0",
                                       "migrationGate.migration.keepPreviousJobs=true"])
        job = one(objs, "Job")
        self.assertEqual(job["spec"]["ttlSecondsAfterFinished"], 86400)
        self.assertEqual(job["spec"]["activeDeadlineSeconds"], 600)
        self.assertEqual(job["spec"]["backoffLimit"], 0)
        self.assertEqual(job["metadata"]["annotations"], {"helm.sh/resource-policy": "keep"})
        objs = ch.render("shop", sets=["migrationGate.migration.ttlSecondsAfterFinished=0"])
        self.assertEqual(one(objs, "Job")["spec"]["ttlSecondsAfterFinished"], 0)

    def test_every_container_is_locked_down(self):
        self.assert_locked_down(self.objs)
        # also with every option that adds containers or volumes
        self.assert_locked_down(ch.render("shop", sets=["migrationGate.migration.sidecar=linkerd",
                                                        "migrationGate.migration.tmpVolume.enabled=false"]))

    def assert_locked_down(self, objs):
        specs = pod_specs(objs)
        self.assertEqual(len(specs), 3)
        for owner, spec in specs:
            psc = spec.get("securityContext", {})
            self.assertFalse(spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"), owner)
            for c in spec.get("initContainers", []) + spec["containers"]:
                where = f"{owner}/{c['name']}"
                sc = c.get("securityContext", {})

                def eff(key):
                    return sc.get(key, psc.get(key))
                self.assertIs(eff("runAsNonRoot"), True, where)
                uid = eff("runAsUser")
                self.assertTrue(uid is None or uid > 0, where)
                self.assertIs(sc.get("readOnlyRootFilesystem"), True, where)
                self.assertIs(sc.get("allowPrivilegeEscalation"), False, where)
                self.assertFalse(sc.get("privileged", False), where)
                self.assertEqual(sc.get("capabilities", {}).get("drop"), ["ALL"], where)
                self.assertNotIn("add", sc.get("capabilities", {}), where)
                self.assertEqual((eff("seccompProfile") or {}).get("type"), "RuntimeDefault", where)
                res = c.get("resources", {})
                self.assertTrue(res.get("requests", {}).get("cpu"), where)
                self.assertTrue(res.get("requests", {}).get("memory"), where)
                self.assertTrue(res.get("limits", {}).get("memory"), where)
        for owner, spec in specs:
            for c in spec.get("initContainers", []):
                if c["name"] == "wait-for-migration":
                    self.assertEqual(c["securityContext"]["runAsUser"], 65532)
                    self.assertEqual(c["resources"], {"requests": {"cpu": "10m", "memory": "8Mi"},
                                                      "limits": {"memory": "16Mi"}})

    def test_rbac_is_least_privilege(self):
        objs = self.objs
        self.assertEqual(by_kind(objs, "ClusterRole") + by_kind(objs, "ClusterRoleBinding"), [])
        roles = {r["metadata"]["name"]: r["rules"] for r in by_kind(objs, "Role")}
        for name, rules in roles.items():
            for rule in rules:
                for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                    self.assertNotIn("*", rule.get(key, []), f"{name}: {rule}")
                self.assertFalse(set(rule["verbs"]) & {"delete", "deletecollection", "patch", "escalate",
                                                       "bind", "impersonate"}, f"{name}: {rule}")
                # every rule is by name (Helm creates the record and the
                # Lease, so no "create", which resourceNames cannot restrict)
                self.assertTrue(rule.get("resourceNames"), f"{name}: {rule}")
                self.assertNotIn("create", rule["verbs"])
                self.assertNotIn("secrets", rule["resources"])
        self.assertEqual(roles["shop-wait-for-migration"], [
            {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": [job_name(objs)],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["shop-migrations"],
             "verbs": ["get", "list", "watch"]},
        ])
        self.assertEqual(roles["shop-migrate"], [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["shop-migrations"],
             "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["shop-migrate"],
             "verbs": ["get", "update"]},
        ])
        # each ServiceAccount is bound to its own Role, in the release namespace
        binds = {b["metadata"]["name"]: b for b in by_kind(objs, "RoleBinding")}
        self.assertEqual(binds["shop-wait-for-migration"]["roleRef"],
                         {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop-wait-for-migration"})
        self.assertEqual(binds["shop-wait-for-migration"]["subjects"],
                         [{"kind": "ServiceAccount", "name": "shop-app", "namespace": "default"}])
        self.assertEqual(binds["shop-migrate"]["subjects"],
                         [{"kind": "ServiceAccount", "name": "shop-migrate", "namespace": "default"}])
        # the SAs the pods run as are the bound ones
        sas = {s["metadata"]["name"] for s in by_kind(objs, "ServiceAccount")}
        for owner, spec in pod_specs(objs):
            self.assertIn(spec["serviceAccountName"], sas, owner)
        # the record ConfigMap is Helm's and empty: migrate-runner fills it
        cm = one(objs, "ConfigMap")
        self.assertNotIn("data", cm)

    def test_rbac_follows_the_options(self):
        objs = ch.render("shop", namespace="shop-prod", sets=[
            "migrationGate.migration.record.create=false", "migrationGate.migration.lock.enabled=false",
            "migrationGate.serviceAccounts.app.create=false", "migrationGate.serviceAccounts.app.name=shop-api-sa"],
            set_json=['migrationGate.rbac.extraJobNames=["shop-migrate-legacy"]'])
        self.assertEqual(by_kind(objs, "ConfigMap"), [])
        roles = {r["metadata"]["name"]: r["rules"] for r in by_kind(objs, "Role")}
        self.assertEqual(roles["shop-migrate"], [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["shop-migrations"],
             "verbs": ["get", "update"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        ])
        self.assertEqual(roles["shop-wait-for-migration"][0]["resourceNames"], [job_name(objs), "shop-migrate-legacy"])
        self.assertEqual(by_kind(objs, "Lease"), [])
        self.assertEqual([s["metadata"]["name"] for s in by_kind(objs, "ServiceAccount")], ["shop-migrate"])
        b = one(objs, "RoleBinding", "shop-wait-for-migration")
        self.assertEqual(b["subjects"], [{"kind": "ServiceAccount", "name": "shop-api-sa", "namespace": "shop-prod"}])
        self.assertEqual(one(objs, "Deployment", "shop-api")["spec"]["template"]["spec"]["serviceAccountName"],
                         "shop-api-sa")
        c = one(objs, "Job")["spec"]["template"]["spec"]["containers"][0]
        self.assertNotIn("MR_LOCK", env_of(c))
        objs = ch.render("shop", sets=["migrationGate.rbac.create=false"])
        self.assertEqual(by_kind(objs, "Role") + by_kind(objs, "RoleBinding"), [])
        # allJobs (for helm template renderers): the jobs rule without names
        objs = ch.render("shop", sets=["migrationGate.rbac.allJobs=true"])
        rule = one(objs, "Role", "shop-wait-for-migration")["rules"][0]
        self.assertEqual(rule, {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]})

    def test_disabled_renders_no_gate(self):
        objs = ch.render("shop", sets=["migrationGate.enabled=false"])
        self.assertEqual(sorted(o["kind"] for o in objs), ["Deployment", "Deployment", "Service"])
        for dep in by_kind(objs, "Deployment"):
            spec = dep["spec"]["template"]["spec"]
            self.assertFalse(spec.get("initContainers"))
            # no "<prefix>-app" that nothing creates: a real server would
            # refuse the pods
            self.assertEqual(spec["serviceAccountName"], "default")
            self.assertNotIn("automountServiceAccountToken", spec)
            self.assertEqual([v["name"] for v in spec["volumes"]], ["tmp"])
        # nor does it need the images' registry
        objs = ch.render("shop", sets=["migrationGate.enabled=false", "migrationGate.images.registry="])
        self.assertEqual(by_kind(objs, "Job"), [])
        objs = ch.render("shop", sets=["migrationGate.enabled=false", "migrationGate.serviceAccounts.app.name=api",
                                       "migrationGate.waitForJob.tokenOnlyInInitContainer=true"])
        spec = one(objs, "Deployment", "shop-api")["spec"]["template"]["spec"]
        self.assertEqual(spec["serviceAccountName"], "api")
        self.assertNotIn("automountServiceAccountToken", spec)

    def test_token_only_in_the_init_container(self):
        self.assertNotIn("automountServiceAccountToken",
                         one(self.objs, "Deployment", "shop-api")["spec"]["template"]["spec"])
        objs = ch.render("shop", sets=["migrationGate.waitForJob.tokenOnlyInInitContainer=true"])
        for dep in by_kind(objs, "Deployment"):
            spec = dep["spec"]["template"]["spec"]
            self.assertIs(spec["automountServiceAccountToken"], False)
            vol = next(v for v in spec["volumes"] if v["name"] == "migration-gate-token")
            srcs = vol["projected"]["sources"]
            self.assertEqual(srcs[0], {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}})
            self.assertEqual(srcs[1]["configMap"], {"name": "kube-root-ca.crt",
                                                    "items": [{"key": "ca.crt", "path": "ca.crt"}]})
            self.assertEqual(srcs[2]["downwardAPI"]["items"],
                             [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}])
            ic = spec["initContainers"][0]
            self.assertEqual(ic["volumeMounts"], [{"name": "migration-gate-token", "readOnly": True,
                                                   "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
            for c in spec["containers"]:
                self.assertNotIn("migration-gate-token", [m["name"] for m in c.get("volumeMounts") or []])
        # the migration Job keeps its own token; the Job is the same migration
        self.assertEqual(job_name(objs), job_name(self.objs))

    def test_images_need_a_real_registry(self):
        """No public default image: unset or placeholder registries fail
        with a message; one value (images.registry) moves them all."""
        for reg in ("", "REGISTRY/ORG", "REGISTRY", "ghcr.io/ORG", "registry.example.com/mg", "example.invalid/mg",
                    "images.example/mg"):
            with self.subTest(registry=reg):
                r, _ = ch.template("shop", sets=[f"migrationGate.images.registry={reg}"])
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("migrationGate.images.registry", r.stderr)
                self.assertIn("make publish REGISTRY=", r.stderr)
        for reg, want in (("ghcr.io/acme/migration-gate", "ghcr.io/acme/migration-gate/wait-for-job:0.1.0"),
                          ("localhost:5000/mg/", "localhost:5000/mg/wait-for-job:0.1.0"),
                          ("registry.internal:5000", "registry.internal:5000/wait-for-job:0.1.0")):
            objs = ch.render("shop", sets=[f"migrationGate.images.registry={reg}"])
            self.assertEqual(one(objs, "Deployment", "shop-api")["spec"]["template"]["spec"]["initContainers"][0]
                             ["image"], want)
        # a repository that names its own registry needs none
        objs = ch.render("shop", sets=["migrationGate.images.registry=",
                                       "migrationGate.images.waitForJob.repository=quay.io/acme/wfj"])
        self.assertEqual(one(objs, "Deployment", "shop-api")["spec"]["template"]["spec"]["initContainers"][0]
                         ["image"], "quay.io/acme/wfj:0.1.0")


class Schema(unittest.TestCase):
    def assert_rejected(self, sets=(), set_json=(), want=""):
        r, _ = ch.template("shop", sets=sets, set_json=set_json)
        self.assertNotEqual(r.returncode, 0, f"{sets} {set_json} was accepted")
        self.assertIn(want, r.stderr, r.stderr)

    def test_bad_durations_are_rejected(self):
        for key in ("migration.timeout", "waitForJob.timeout", "migration.grace", "migration.waitTimeout",
                    "migration.lock.timeout", "migration.lock.lease"):
            # what wait-for-job / migrate-runner would reject at run time,
            # caught at helm time instead (never a silent default)
            for bad in ("5x", "1.5h", "10", "5m1h", "-1s", "1d", "10 m", "m"):
                with self.subTest(key=key, value=bad):
                    self.assert_rejected([f"migrationGate.{key}={bad}"], want=f"at '/{key.replace('.', '/')}'")

    def test_good_durations_are_accepted(self):
        for good in ("0", "90s", "10m", "1h30m", "500ms", "2h0m5s", "1m500ms"):
            with self.subTest(value=good):
                r, _ = ch.template("shop", sets=[f"migrationGate.migration.timeout={good}",
                                                 f"migrationGate.waitForJob.timeout={good}"])
                self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_values_are_rejected(self):
        cases = [
            (["migrationGate.waitForJob.logFormat=xml"], [], "/waitForJob/logFormat"),
            (["migrationGate.migration.timout=5m"], [], "'timout' not allowed"),
            (["migrationGate.migration.podFailurePolicy.onTempfail=Retry"], [], "/migration/podFailurePolicy/onTempfail"),
            (["migrationGate.migration.sidecar=envoy"], [], "/migration/sidecar"),
            (["migrationGate.images.waitForJob.pullPolicy=Sometimes"], [], "/images/waitForJob/pullPolicy"),
            (["migrationGate.images.waitForJob.digest=sha256:xyz"], [], "/images/waitForJob/digest"),
            (["migrationGate.migration.jobNameLabel=app"], [], "/migration/jobNameLabel"),
            (["migrationGate.rbac.previousJobs=-1"], [], "/rbac/previousJobs"),
            (["migrationGate.migration.ttlSecondsAfterFinished=-5"], [], "/migration/ttlSecondsAfterFinished"),
            (["migrationGate.migration.activeDeadlineSeconds=0"], [], "/migration/activeDeadlineSeconds"),
            (["migrationGate.migration.runner=migrate-runner"], [], "/migration/runner"),
            (["migrationGate.namePrefix=Shop_Prod"], [], "/namePrefix"),
            ([], ['migrationGate.migration.waitTcp=["db"]'], "/migration/waitTcp/0"),
            ([], ["migrationGate.migration.podFailurePolicy.failJobExitCodes=[0]"],
             "/migration/podFailurePolicy/failJobExitCodes/0"),
            (["migrationGate.migration.lock=null"], [], "missing property 'lock'"),
            (["api.replicas=two"], [], "/api/replicas"),
            (["securityContext.allowPrivilegeEscalation=true"], [], "/securityContext/allowPrivilegeEscalation"),
            (["podSecurityContext.runAsNonRoot=false"], [], "/podSecurityContext/runAsNonRoot"),
        ]
        for sets, set_json, want in cases:
            with self.subTest(sets=sets, set_json=set_json):
                self.assert_rejected(sets, set_json, want)

    def test_template_errors_are_explained(self):
        self.assert_rejected(set_json=["migrationGate.migration.command=[]"],
                             want="set migrationGate.migration.command")
        self.assert_rejected(set_json=["migrationGate.migration.podFailurePolicy.failJobExitCodes=[78,64]"],
                             want="ascending order")
        self.assert_rejected(sets=["image.repository="], want="/image/repository")


class GitOps(unittest.TestCase):
    """chart-snippets/README.md "Argo CD" and "Flux", by rendering."""

    # what Argo CD's repo-server passes to helm template
    ARGO = ("--kube-version", "1.31.0", "--api-versions", "batch/v1", "--api-versions", "coordination.k8s.io/v1",
            "--include-crds")
    ARGO_VALUES = ["migrationGate.rbac.allJobs=true", "migrationGate.waitForJob.tokenOnlyInInitContainer=true"]

    def argo(self, sets=()):
        argv = ["template", "shop", ch.EXAMPLE, "--namespace", "shop", *self.ARGO]
        for x in sets:
            argv += ["--set", x]
        r = ch.helm(*argv)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_argo_rendering_is_stable_and_needs_no_suffix(self):
        a, b = self.argo(), self.argo()
        self.assertEqual(a, b, "a sync without changes must change nothing")
        objs = ch.parse_yaml_docs(a)
        job = one(objs, "Job")
        self.assertRegex(job["metadata"]["name"], JOB_RE)
        self.assertNotIn("ttlSecondsAfterFinished", job["spec"], "a TTL + self-heal re-runs the migration")
        self.assertNotIn("annotations", job["metadata"])
        # the next image: a new Job, which the old one (pruned) does not block
        objs2 = ch.parse_yaml_docs(self.argo(["image.tag=1.0.1"]))
        self.assertNotEqual(job_name(objs2), job["metadata"]["name"])
        # no lookup under helm template: only the current Job is named
        self.assertEqual(one(objs, "Role", "shop-wait-for-migration")["rules"][0]["resourceNames"],
                         [job["metadata"]["name"]])

    def test_argo_recommended_values(self):
        objs = ch.parse_yaml_docs(self.argo(self.ARGO_VALUES))
        rule = one(objs, "Role", "shop-wait-for-migration")["rules"][0]
        self.assertNotIn("resourceNames", rule)   # old pods that restart are admitted
        self.assertEqual(rule["verbs"], ["get", "list", "watch"])
        for dep in by_kind(objs, "Deployment"):
            spec = dep["spec"]["template"]["spec"]
            self.assertIs(spec["automountServiceAccountToken"], False)
            self.assertEqual([m["name"] for m in spec["initContainers"][0]["volumeMounts"]], ["migration-gate-token"])
            for c in spec["containers"]:
                self.assertNotIn("migration-gate-token", [m["name"] for m in c.get("volumeMounts") or []])
        # and the README shows exactly these values
        with open(os.path.join(ch.SNIPPETS, "README.md")) as f:
            text = f.read()
        self.assertIn("rbac: {allJobs: true}", text)
        self.assertIn("waitForJob: {tokenOnlyInInitContainer: true}", text)

    def test_flux_runs_real_helm_actions(self):
        """Flux's helm-controller installs and upgrades (revision counts,
        lookup works): what a real helm action renders differs from helm
        template only in the release-revision label and the Role's carried
        names, never in the Job's name."""
        r = ch.helm("install", "shop", ch.EXAMPLE, "--namespace", "shop", "--dry-run=client")
        self.assertEqual(r.returncode, 0, r.stderr)
        manifest = r.stdout[r.stdout.index("MANIFEST:"):]
        manifest = manifest[manifest.index("\n") + 1:].split("\nNOTES:")[0]
        objs = ch.parse_yaml_docs(manifest)
        self.assertEqual(job_name(objs), job_name(ch.parse_yaml_docs(self.argo())))
        self.assertEqual(one(objs, "Job")["metadata"]["labels"]["migration-gate.io/release-revision"], "1")
        with open(os.path.join(ch.SNIPPETS, "README.md")) as f:
            text = f.read()
        flux = text[text.index("## Flux"):text.index("## Plain YAML")]
        self.assertIn("not a `helm template` renderer", flux)
        self.assertNotIn("Flux with post-rendering", text)


class UserChart(unittest.TestCase):
    """The library as a user's own chart uses it: no alias, own Deployment."""

    def test_own_chart_without_alias(self):
        tmp = tempfile.mkdtemp(prefix="mg-userchart-")
        self.addCleanup(shutil.rmtree, tmp)
        c = os.path.join(tmp, "billing")
        os.makedirs(os.path.join(c, "templates"))
        os.makedirs(os.path.join(c, "charts"))
        os.symlink(ch.LIBRARY, os.path.join(c, "charts", "migration-gate"))
        with open(os.path.join(c, "Chart.yaml"), "w") as f:
            f.write("apiVersion: v2\nname: billing\nversion: 1.0.0\nappVersion: \"3.1\"\n"
                    "dependencies:\n  - name: migration-gate\n    version: 0.1.0\n"
                    "    repository: file://../migration-gate\n")
        with open(os.path.join(c, "values.yaml"), "w") as f:
            f.write("image: {repository: registry.example.com/billing, tag: \"3.1\"}\n"
                    "migration-gate:\n  namePrefix: billing\n  images: {registry: ghcr.io/acme/migration-gate}\n"
                    "  migration:\n    command: [bundle, exec, rake, db:migrate]\n")
        with open(os.path.join(c, "templates", "app.yaml"), "w") as f:
            f.write("""apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {matchLabels: {app: billing}}
  template:
    metadata: {labels: {app: billing}}
    spec:
      serviceAccountName: {{ include "migration-gate.appServiceAccountName" . }}
      initContainers:
        {{- include "migration-gate.initContainer" . | nindent 8 }}
      containers:
        - name: app
          image: registry.example.com/billing:3.1
---
{{ include "migration-gate.resources" . }}
""")
        r = ch.helm("lint", c, "--strict")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        objs = ch.render("rel-a", chart=c)
        job = one(objs, "Job")
        self.assertRegex(job["metadata"]["name"], r"^billing-migrate-[0-9a-f]{10}$")
        self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["image"], "registry.example.com/billing:3.1")
        self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["args"],
                         ["--", "bundle", "exec", "rake", "db:migrate"])
        sts = one(objs, "StatefulSet")["spec"]["template"]["spec"]
        self.assertEqual(sts["initContainers"][0]["args"], [job["metadata"]["name"]])
        self.assertEqual(sts["initContainers"][0]["image"], "ghcr.io/acme/migration-gate/wait-for-job:0.1.0")
        self.assertEqual(env_value(sts["initContainers"][0], "WAIT_FOR_JOB_RECORD"), "billing-migrations")
        self.assertEqual(sts["serviceAccountName"], "billing-app")
        # without .Values.image the migration image must be given
        r, _ = ch.template("rel-a", chart=c, sets=["image=null"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("set migrationGate.migration.image.repository", r.stderr)
        # the library's schema applies under its (unaliased) name
        r, _ = ch.template("rel-a", chart=c, sets=["migration-gate.migration.timeout=soon"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/migration/timeout", r.stderr)

    def test_missing_dependency_values_are_explained(self):
        tmp = tempfile.mkdtemp(prefix="mg-userchart-")
        self.addCleanup(shutil.rmtree, tmp)
        os.makedirs(os.path.join(tmp, "templates"))
        os.makedirs(os.path.join(tmp, "charts"))
        # the templates copied in without the dependency (so without its values)
        shutil.copytree(os.path.join(ch.LIBRARY, "templates"), os.path.join(tmp, "templates", "mg"))
        with open(os.path.join(tmp, "Chart.yaml"), "w") as f:
            f.write("apiVersion: v2\nname: copycat\nversion: 1.0.0\n")
        with open(os.path.join(tmp, "templates", "job.yaml"), "w") as f:
            f.write('{{ include "migration-gate.job" . }}\n')
        r, _ = ch.template("x", chart=tmp)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('alias: migrationGate', r.stderr)


class PlainYaml(unittest.TestCase):
    def plain_objects(self):
        objs = []
        for f in sorted(os.listdir(ch.PLAIN)):
            if f.endswith(".yaml") and f != "kustomization.yaml":
                with open(os.path.join(ch.PLAIN, f)) as fh:
                    objs += ch.parse_yaml_docs(fh.read())
        return objs

    def test_plain_yaml_matches_the_chart(self):
        """plain-yaml/*.yaml == the example chart rendered (release shop,
        defaults, keepPreviousJobs=false) minus helm.sh/chart and
        app.kubernetes.io/managed-by; regenerate with chart_helpers.py --write."""
        rendered = [ch.plain_normalize(o) for o in ch.render(ch.PLAIN_RELEASE, sets=ch.PLAIN_SET,
                                                             namespace=ch.PLAIN_NAMESPACE)]
        key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
        want = {key(o): o for o in rendered}
        got = {key(o): o for o in self.plain_objects()}
        self.assertEqual(sorted(got), sorted(want),
                         "objects differ: run python3 tests/e2e/chart_helpers.py --write")
        for k in want:
            self.assertEqual(got[k], want[k], f"{k} differs: run python3 tests/e2e/chart_helpers.py --write")

    def test_plain_yaml_has_no_helm_leftovers(self):
        for f in os.listdir(ch.PLAIN):
            with open(os.path.join(ch.PLAIN, f)) as fh:
                text = fh.read()
            for bad in ("{{", "helm.sh/chart", "managed-by: Helm", "helm.sh/resource-policy", "# Source:"):
                if f == "kustomization.yaml" and bad != "{{":
                    continue  # its comments explain what was left out
                self.assertNotIn(bad, text, f)

    def kustomize(self, path):
        r = subprocess.run([ch.tool("kubectl"), "kustomize", path], capture_output=True, text=True,
                           env={**os.environ, "KUBECONFIG": "/nonexistent"})
        self.assertEqual(r.returncode, 0, r.stderr)
        return ch.parse_yaml_docs(r.stdout)

    def assert_consistent(self, objs, job_name, record, ns=None):
        job = one(objs, "Job")
        self.assertEqual(job["metadata"]["name"], job_name)
        self.assertIn(record, {o["metadata"]["name"] for o in by_kind(objs, "ConfigMap")})
        c = job["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(env_value(c, "MR_RECORD"), record)
        self.assertEqual(env_value(c, "MR_RECORD_MAX_KEYS"), "20")  # not hit by the MR_RECORD replacement
        deps = by_kind(objs, "Deployment")
        self.assertEqual(len(deps), 2)
        sas = {o["metadata"]["name"] for o in by_kind(objs, "ServiceAccount")}
        for d in deps:
            spec = d["spec"]["template"]["spec"]
            ic = spec["initContainers"][0]
            self.assertEqual(ic["args"], [job_name])
            self.assertEqual(env_value(ic, "WAIT_FOR_JOB_RECORD"), record)
            self.assertIn(spec["serviceAccountName"], sas)
        self.assertIn(job["spec"]["template"]["spec"]["serviceAccountName"], sas)
        roles = by_kind(objs, "Role")
        app_role = [r for r in roles if r["metadata"]["name"].endswith("wait-for-migration")][0]
        self.assertEqual(app_role["rules"][0]["resourceNames"], [job_name])
        self.assertEqual(app_role["rules"][1]["resourceNames"], [record])
        mig_role = [r for r in roles if r["metadata"]["name"].endswith("-migrate")][0]
        self.assertEqual(mig_role["rules"][0]["resourceNames"], [record])
        lease = one(objs, "Lease")["metadata"]["name"]
        self.assertEqual(mig_role["rules"][1]["resourceNames"], [lease])
        self.assertEqual(env_value(c, "MR_LOCK"), lease)
        self.assertTrue(lease.endswith("shop-migrate"))
        for b in by_kind(objs, "RoleBinding"):
            self.assertIn(b["roleRef"]["name"], {r["metadata"]["name"] for r in roles})
            for s in b["subjects"]:
                self.assertIn(s["name"], sas)
                if ns:
                    self.assertEqual(s["namespace"], ns)
                    self.assertEqual(b["metadata"]["namespace"], ns)

    def test_kustomize_build(self):
        objs = self.kustomize(ch.PLAIN)
        self.assert_consistent(objs, "shop-migrate-1-0-0", "shop-migrations")

    def test_kustomize_with_namespace_and_prefix(self):
        tmp = tempfile.mkdtemp(prefix="mg-kustomize-")
        self.addCleanup(shutil.rmtree, tmp)
        dst = os.path.join(tmp, "plain-yaml")
        shutil.copytree(ch.PLAIN, dst)
        k = os.path.join(dst, "kustomization.yaml")
        with open(k) as f:
            text = f.read()
        text, n1 = re.subn(r"(?m)^# namespace: shop .*$", "namespace: shop-prod", text)
        text, n2 = re.subn(r"(?m)^# namePrefix: prod- .*$", "namePrefix: eu-", text)
        text, n3 = re.subn(r"value: shop-migrate-1-0-0", "value: shop-migrate-2-0-0", text)
        self.assertEqual((n1, n2, n3), (1, 1, 1), "kustomization.yaml changed shape")
        with open(k, "w") as f:
            f.write(text)
        objs = self.kustomize(dst)
        self.assert_consistent(objs, "eu-shop-migrate-2-0-0", "eu-shop-migrations", ns="shop-prod")


# ---- helm upgrade --install into kubesim -----------------------------------

sys.path.insert(0, os.path.join(ch.ROOT, "tests", "kubesim"))
from kubesim_client import KubeSim  # noqa: E402

BUILD = os.environ.get("MG_BUILD_DIR", os.path.join(ch.ROOT, "build"))
NS = "default"


def _install_skip_reason():
    if "kubelet" not in inspect.signature(KubeSim.__init__).parameters:
        return "kubesim has no kubelet yet (tests/kubesim part 2)"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "kubesim's kubelet runs our binaries under unshare: needs root"
    for b in ("wait-for-job", "migrate-runner", "release-check"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            return f"{BUILD}/{b} is missing: run make"
    return None


def cond(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


class KubesimJobTemplateIsImmutable(unittest.TestCase):
    """kubesim refuses a changed Job pod template as a real API server does
    (422, "field is immutable"): the reinstall bug of issue 13 (a reused
    Job name with another image) was invisible while kubesim accepted it."""

    JOB = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "shop-migrate-x", "namespace": "default", "labels": {"a": "1"}},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "migrate", "image": "app:1"}]}}}}

    def test_template_update_is_refused(self):
        with KubeSim() as ks:
            r = ks.kubectl("create", "-f", "-", input=json.dumps(self.JOB))
            self.assertEqual(r.returncode, 0, r.stderr)
            # metadata and the mutable spec fields may change
            r = ks.kubectl("patch", "job", "shop-migrate-x", "--type=merge",
                           "-p", '{"metadata":{"labels":{"migration-gate.io/release-revision":"2"}},'
                                 '"spec":{"activeDeadlineSeconds":60}}')
            self.assertEqual(r.returncode, 0, r.stderr)
            # the pod template may not, with any patch type or a PUT
            for argv in (("patch", "job", "shop-migrate-x", "--type=merge",
                          "-p", '{"spec":{"template":{"metadata":{"annotations":{"x":"y"}}}}}'),
                         ("patch", "job", "shop-migrate-x", "--type=strategic",
                          "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"migrate","image":"app:2"}]}}}}'),
                         ("set", "image", "job/shop-migrate-x", "migrate=app:2")):
                with self.subTest(argv=argv[:3]):
                    r = ks.kubectl(*argv)
                    self.assertNotEqual(r.returncode, 0, r.stdout)
                    self.assertRegex(r.stderr, r'(The Job|Job\.batch) "shop-migrate-x" is invalid: spec\.template')
                    self.assertIn("field is immutable", r.stderr)
            code, _, body = ks.api("PATCH", "/apis/batch/v1/namespaces/default/jobs/shop-migrate-x",
                                   body={"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}},
                                   content_type="application/merge-patch+json")
            self.assertEqual(code, 422, body)
            st = json.loads(body)
            self.assertEqual(st["reason"], "Invalid")
            self.assertEqual(st["message"], 'Job.batch "shop-migrate-x" is invalid: spec.template: Invalid value: '
                                            'core.PodTemplateSpec{...}: field is immutable')
            self.assertEqual(st["details"]["causes"][0]["field"], "spec.template")
            job = json.loads(ks.kubectl("get", "job", "shop-migrate-x", "-o", "json").stdout)
            self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["image"], "app:1")
            self.assertEqual(job["metadata"]["labels"]["migration-gate.io/release-revision"], "2")


class OnCluster:
    """Helpers that speak to the cluster only through its kubeconfig (the
    real helm and kubectl), so the tests run on kubesim today and on any
    backend that offers a kubeconfig, kubectl and a kubelet running our
    binaries (tests/realkube). Needs cls.cluster (ch.PatternCluster)."""

    NS = "default"

    @classmethod
    def kubectl_raw(cls, *args, input=None):
        return cls.cluster.ks.kubectl(*args, input=input)

    def kubectl(self, *args):
        r = self.kubectl_raw(*args)
        self.assertEqual(r.returncode, 0, f"kubectl {' '.join(args)}: {r.stderr}")
        return r

    def kget(self, kind, name=None, ns=None, selector=None):
        """One object (None when absent) or, without name, the list of items."""
        argv = ["get", kind, "-n", ns or self.NS, "-o", "json"]
        if name:
            argv.insert(2, name)
        if selector:
            argv += ["-l", selector]
        r = self.kubectl_raw(*argv)
        if r.returncode != 0:
            if name and "NotFound" in r.stderr:
                return None
            self.fail(f"kubectl {' '.join(argv)}: {r.stderr}")
        obj = json.loads(r.stdout)
        return obj if name else obj["items"]

    def helm_run(self, *args):
        return ch.helm(*args, env=self.cluster.env)

    def helm_ok(self, *args):
        r = self.helm_run(*args)
        self.assertEqual(r.returncode, 0, f"helm {' '.join(args)}: {r.stdout}{r.stderr}")
        return r

    def upgrade(self, tag, migrate_cmd, release="shop", extra=()):
        return self.helm_ok("upgrade", "--install", release, ch.EXAMPLE, "--namespace", self.NS,
                            "--set", f"image.tag={tag}",
                            "--set", "migrationGate.migration.lock.lease=3s",
                            "--set-json", "migrationGate.migration.command=" + json.dumps(["sh", "-c", migrate_cmd]),
                            *extra)

    def wait_until(self, what, fn, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}\n" + self.dump())
            time.sleep(0.2)

    def dump(self):
        r = self.kubectl_raw("get", "jobs,pods,deploy,rs,leases,cm", "-n", self.NS, "-o", "wide")
        ev = self.kubectl_raw("get", "events", "-n", self.NS, "--sort-by=.lastTimestamp")
        return r.stdout + r.stderr + "\n" + ev.stdout[-4000:]

    def release_check(self, release="shop", timeout="90s"):
        return subprocess.run([os.path.join(self.cluster.bin, "release-check"), "-n", self.NS, "--timeout", timeout,
                               "--kubeconfig", self.cluster.ks.kubeconfig, release], capture_output=True, text=True,
                              timeout=180, env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent-home"})

    def assert_healthy(self, release="shop"):
        r = self.release_check(release)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dump())

    def current_job(self, release="shop"):
        """The Job the release's pods wait for: the init container's JOB."""
        dep = self.kget("deployment", f"{release}-worker")
        return dep["spec"]["template"]["spec"]["initContainers"][0]["args"][0]

    def job_done(self, name, ctype="Complete"):
        j = self.kget("job", name)
        return j if j and cond(j, ctype) else None

    def live_pods(self, component, release="shop"):
        return [p for p in self.kget("pods", selector=f"app.kubernetes.io/instance={release},"
                                                      f"app.kubernetes.io/component={component}")
                if not p["metadata"].get("deletionTimestamp")]

    def record(self, release="shop"):
        cm = self.kget("configmap", f"{release}-migrations")
        return {k: json.loads(v) for k, v in ((cm or {}).get("data") or {}).items()}

    def init_status(self, pod):
        return next(s for s in pod["status"].get("initContainerStatuses", []) if s["name"] == "wait-for-migration")

    def app_role_jobs(self, release="shop"):
        return self.kget("role", f"{release}-wait-for-migration")["rules"][0]["resourceNames"]

    def assert_gate_passed(self, job_name, tag, release="shop", after_job=True):
        """Every app pod runs tag and passed its gate on job_name (only once
        that Job had completed, with after_job)."""
        job = self.kget("job", job_name)
        done = job["status"]["completionTime"]
        for comp in ("api", "worker"):
            dep = self.kget("deployment", f"{release}-{comp}")
            self.assertEqual(dep["status"].get("updatedReplicas"), dep["spec"]["replicas"], comp)
            ready = [p for p in self.live_pods(comp, release) if cond(p, "Ready")]
            self.assertEqual(len(ready), dep["spec"]["replicas"], comp)
            for p in ready:
                self.assertEqual(p["spec"]["containers"][0]["image"], f"registry.example.com/shop/app:{tag}")
                self.assertEqual(p["spec"]["initContainers"][0]["args"], [job_name])
                st = self.init_status(p)["state"]["terminated"]
                self.assertEqual(st["exitCode"], 0)
                if after_job:
                    self.assertLessEqual(done, st["finishedAt"], p["metadata"]["name"])


@unittest.skipIf(_install_skip_reason(), _install_skip_reason())
class InstallIntoKubesim(OnCluster, unittest.TestCase):
    """helm upgrade --install of example-app, an upgrade with a new image
    tag, a pod that restarts after its Job was deleted, a failing migration,
    exit 127: the gate holds, the record and the Lease work under the
    chart's own least-privilege Roles, release-check agrees."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = ch.PatternCluster("mg-helm-", BUILD)
        cls.tmp, cls.bin, cls.ks, cls.env = cls.cluster.tmp, cls.cluster.bin, cls.cluster.ks, cls.cluster.env

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    # -- the test: one release, several revisions, in order
    def test_install_upgrade_and_failure(self):
        # 1. install: the gate holds the pods until the migration succeeded
        self.upgrade("1.0.0", "echo migrating to 1.0.0; sleep 2; echo schema 1.0.0 ready")
        self.assert_healthy()
        j1 = self.current_job()
        self.assertRegex(j1, JOB_RE)
        self.wait_until(f"Job {j1} Complete", lambda: self.job_done(j1))
        self.assert_gate_passed(j1, "1.0.0")
        pod = self.live_pods("api")[0]["metadata"]["name"]
        log = self.kubectl("logs", pod, "-c", "wait-for-migration")
        self.assertIn(j1, log.stdout + log.stderr)
        rec = self.record()
        self.assertEqual(rec[j1]["status"], "succeeded")
        self.assertEqual(rec[j1]["exitCode"], 0)
        self.assertEqual(rec[j1]["job"], j1)  # JOB_NAME from the pod label
        self.assertIn("schema 1.0.0 ready", rec[j1]["outputTail"])
        lease = self.kget("lease", "shop-migrate")
        self.assertEqual(lease["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm")
        self.assertTrue(lease["spec"].get("acquireTime"), "migrate-runner took the Helm-created Lease")
        self.assertFalse(lease["spec"].get("holderIdentity"), "released after the migration")

        # 2. upgrade with a new image tag: a new Job, new pods wait for it
        self.upgrade("1.1.0", "echo migrating to 1.1.0; sleep 2; echo schema 1.1.0 ready")
        self.assert_healthy()
        j2 = self.current_job()
        self.assertNotEqual(j2, j1)
        self.wait_until(f"Job {j2} Complete", lambda: self.job_done(j2))
        self.wait_until("the old pods gone",
                        lambda: all(p["spec"]["containers"][0]["image"].endswith(":1.1.0")
                                    for p in self.live_pods("api") + self.live_pods("worker")))
        self.assert_gate_passed(j2, "1.1.0")
        self.assertEqual(self.app_role_jobs(), [j2, j1])
        rec = self.record()
        self.assertEqual(sorted(rec), sorted([j1, j2]))
        self.assertEqual(rec[j2]["status"], "succeeded")

        # 3. the Job is gone (deleted by hand, or a TTL): a restarted pod
        # passes on the record alone
        self.kubectl("delete", "job", j2)
        self.wait_until(f"Job {j2} deleted", lambda: self.kget("job", j2) is None)
        victim = self.live_pods("worker")[0]["metadata"]["name"]
        self.kubectl("delete", "pod", victim, "--wait=false")
        fresh = self.wait_until("a replacement worker pod Ready", lambda: [
            p for p in self.live_pods("worker") if p["metadata"]["name"] != victim and cond(p, "Ready")])
        self.assertEqual(self.init_status(fresh[0])["state"]["terminated"]["exitCode"], 0)
        log = self.kubectl("logs", fresh[0]["metadata"]["name"], "-c", "wait-for-migration")
        self.assertIn(f"job {j2} is gone; its recorded outcome is: succeeded", log.stdout + log.stderr)

        # 4. a failing migration: the new pods never start, the old ones serve
        self.upgrade("1.2.0", "echo migrating to 1.2.0; echo 'ERROR: column exists' >&2; exit 3")
        r = self.release_check()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr + self.dump())
        j3 = self.current_job()
        job3 = self.wait_until(f"Job {j3} Failed", lambda: self.job_done(j3, "Failed"))
        self.assertEqual(job3["status"].get("failed"), 3)  # counted: backoffLimit 2 -> 3 attempts
        rec = self.record()[j3]
        self.assertEqual((rec["status"], rec["exitCode"]), ("failed", 3))
        self.assertIn("column exists", rec["outputTail"])
        self.assertEqual(rec["attempt"], 3)
        new = self.wait_until("a 1.2.0 pod whose gate failed", lambda: [
            p for p in self.live_pods("api") if p["spec"]["containers"][0]["image"].endswith(":1.2.0")
            and (self.init_status(p).get("lastState", {}).get("terminated", {}).get("exitCode") == 1
                 or self.init_status(p)["state"].get("terminated", {}).get("exitCode") == 1)])
        self.assertFalse(cond(new[0], "Ready"))
        old_ready = [p for p in self.live_pods("api")
                     if p["spec"]["containers"][0]["image"].endswith(":1.1.0") and cond(p, "Ready")]
        self.assertTrue(old_ready, "the old ReplicaSet keeps serving")

        # 5. exit 127 (command not found): podFailurePolicy fails the Job at once
        self.upgrade("1.3.0", "exec /nonexistent/migrate up")
        j4 = self.current_job()
        job4 = self.wait_until(f"Job {j4} Failed", lambda: self.job_done(j4, "Failed"))
        failed = [c for c in job4["status"]["conditions"] if c["type"] == "Failed"][0]
        self.assertEqual(failed["reason"], "PodFailurePolicy")
        self.assertEqual(job4["status"].get("failed"), 1)
        self.assertEqual(self.record()[j4]["exitCode"], 127)

        # the pods of the earlier revisions still pass their gate when they
        # restart: the Role still names their Jobs (rbac.previousJobs,
        # carried over from the Role in the cluster)
        self.assertEqual(self.app_role_jobs(), [j4, j3, j2, j1])
        # and Helm deleted the Jobs of the earlier migrations (no keep)
        self.assertEqual(sorted(j["metadata"]["name"] for j in self.kget("jobs")), [j4])

    def test_token_only_in_the_init_container(self):
        """waitForJob.tokenOnlyInInitContainer: the gate still works (its
        token comes from the projected volume) and the application
        container has no token at all."""
        for ns, only_init in (("token-init", "true"), ("token-all", "false")):
            with self.subTest(tokenOnlyInInitContainer=only_init):
                self.token_probe(ns, only_init)

    def token_probe(self, ns, only_init):
        self.kubectl("create", "namespace", ns)
        # a real cluster's root-ca-cert-publisher puts this ConfigMap into
        # every namespace; kubesim has no such controller
        # (on the real backend the controller may already have made it)
        with open(self.ks.ca_file) as f:
            ca = f.read()
        r = self.ks.kubectl("create", "configmap", "kube-root-ca.crt", "-n", ns, "--from-literal=ca.crt=" + ca)
        self.assertTrue(r.returncode == 0 or "already exists" in r.stderr, r.stderr)
        probe = ("if test -e /run/secrets/kubernetes.io/serviceaccount/token; then echo HAS-TOKEN; "
                 "else echo NO-TOKEN; fi; exec sleep 600")
        self.helm_ok("upgrade", "--install", "shop", ch.EXAMPLE, "-n", ns,
                     "--set", "migrationGate.waitForJob.tokenOnlyInInitContainer=" + only_init,
                     "--set", "api.replicas=0",
                     "--set-json", 'migrationGate.migration.command=["sh","-c","echo migrated"]',
                     "--set-json", "worker.command=" + json.dumps(["sh", "-c", probe]),
                     "--set-json", 'env=[{"name":"KUBESIM_EXEC","value":"1"}]')
        r = subprocess.run([os.path.join(self.bin, "release-check"), "-n", ns, "--timeout", "90s",
                            "--kubeconfig", self.ks.kubeconfig, "shop"], capture_output=True, text=True, timeout=180,
                           env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent-home"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dump())
        pod = self.kget("pods", ns=ns, selector="app.kubernetes.io/component=worker")[0]
        self.assertEqual(self.init_status(pod)["state"]["terminated"]["exitCode"], 0)
        if only_init == "true":
            self.assertIs(pod["spec"]["automountServiceAccountToken"], False)
            self.assertEqual(pod["spec"]["initContainers"][0]["volumeMounts"][0]["name"], "migration-gate-token")
        name = pod["metadata"]["name"]
        log = self.kubectl("logs", "-n", ns, name, "-c", "wait-for-migration")
        self.assertIn("succeeded", log.stdout + log.stderr)
        out = self.wait_until("the worker's probe line", lambda: self.kubectl("logs", "-n", ns, name, "-c",
                                                                               "worker").stdout.strip())
        # the control (option off): the probe does see the token
        self.assertEqual(out, "NO-TOKEN" if only_init == "true" else "HAS-TOKEN")

    def test_plain_yaml_with_kubectl_apply_k(self):
        """The plain YAML works the same without Helm: kubectl apply -k."""
        dst = os.path.join(self.tmp, "plain-yaml")
        shutil.copytree(ch.PLAIN, dst)
        k = os.path.join(dst, "kustomization.yaml")
        with open(k) as f:
            text = f.read()
        text, n = re.subn(r"(?m)^# namespace: shop .*$", "namespace: plain", text)
        self.assertEqual(n, 1)
        # a migration command that exists on this machine
        patch = """  - target: {kind: Job}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/args
        value: ["--", "sh", "-c", "echo plain migration; sleep 1"]
"""
        self.assertIn("\npatches:\n", text)
        text = text.replace("\npatches:\n", "\npatches:\n" + patch, 1)
        with open(k, "w") as f:
            f.write(text)
        r = self.ks.kubectl("create", "namespace", "plain")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ks.kubectl("apply", "-k", dst)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rc = subprocess.run([os.path.join(self.bin, "release-check"), "-n", "plain", "--no-helm", "--timeout", "90s",
                             "--kubeconfig", self.ks.kubeconfig, "shop"], capture_output=True, text=True, timeout=180,
                            env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent-home"})
        self.assertEqual(rc.returncode, 0, rc.stdout + rc.stderr + self.dump())
        job = next(o for o in self.ks.objects(kind="Job", namespace="plain"))
        self.assertEqual(job["metadata"]["name"], "shop-migrate-1-0-0")
        self.assertTrue(cond(job, "Complete"))
        cm = next(o for o in self.ks.objects(kind="ConfigMap", namespace="plain")
                  if o["metadata"]["name"] == "shop-migrations")
        self.assertEqual(json.loads(cm["data"]["shop-migrate-1-0-0"])["status"], "succeeded")

        # the recipe of plain-yaml/kustomization.yaml: re-applying the same
        # name changes nothing (no re-run, no restart) ...
        pods = sorted(p["metadata"]["uid"] for p in self.kget("pods", ns="plain"))
        r = self.kubectl("apply", "-k", dst)
        self.assertEqual(self.kget("job", "shop-migrate-1-0-0", ns="plain")["metadata"]["uid"], job["metadata"]["uid"])
        self.assertEqual(sorted(p["metadata"]["uid"] for p in self.kget("pods", ns="plain")), pods)
        # ... a changed migration under the old name is refused, not skipped ...
        with open(k) as f:
            text = f.read()
        changed = text.replace('"echo plain migration; sleep 1"', '"echo plain migration 2; sleep 1"')
        self.assertNotEqual(changed, text)
        with open(k, "w") as f:
            f.write(changed)
        r = self.kubectl_raw("apply", "-k", dst)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("field is immutable", r.stderr)
        # ... and under a new name it runs; --prune deletes the previous Job
        with open(k, "w") as f:
            f.write(changed.replace("value: shop-migrate-1-0-0", "value: shop-migrate-1-1-0"))
        self.kubectl("apply", "-k", dst, "--prune", "-l", "app.kubernetes.io/part-of=shop",
                     "--prune-allowlist=batch/v1/Job")
        self.wait_until("the previous Job pruned", lambda: self.kget("job", "shop-migrate-1-0-0", ns="plain") is None)
        self.wait_until("shop-migrate-1-1-0 Complete",
                        lambda: cond(self.kget("job", "shop-migrate-1-1-0", ns="plain") or {}, "Complete"))
        dep = self.kget("deployment", "shop-worker", ns="plain")
        self.assertEqual(dep["spec"]["template"]["spec"]["initContainers"][0]["args"], ["shop-migrate-1-1-0"])
        self.assertIn("shop-migrate-1-1-0",
                      self.kget("role", "shop-wait-for-migration", ns="plain")["rules"][0]["resourceNames"])

    def test_rbac_is_enforced_here(self):
        """Without the chart's Roles the same release cannot work: proof that
        kubesim authorises the pods by the stored RBAC, so the test above
        exercised the chart's least-privilege rules."""
        r = ch.helm("upgrade", "--install", "shop", ch.EXAMPLE, "--namespace", "no-rbac", "--create-namespace",
                    "--set", "migrationGate.rbac.create=false",
                    "--set-json", 'migrationGate.migration.command=["sh","-c","echo unreachable"]', env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        def job():
            j = next((o for o in self.ks.objects(kind="Job", namespace="no-rbac")), None)
            return j if j and cond(j, "Failed") else None
        j = self.wait_until("the migration Job Failed", job)
        # migrate-runner exit 78 (RBAC forbids the Lease) -> FailJob after one attempt
        self.assertEqual([c["reason"] for c in j["status"]["conditions"] if c["type"] == "Failed"],
                         ["PodFailurePolicy"])
        self.assertEqual(j["status"].get("failed"), 1)

        def gate_refused():
            for p in self.ks.objects(kind="Pod", namespace="no-rbac"):
                for s in (p.get("status") or {}).get("initContainerStatuses") or []:
                    t = s.get("lastState", {}).get("terminated") or s.get("state", {}).get("terminated") or {}
                    if t.get("exitCode") == 77:
                        return p
            return None
        p = self.wait_until("an init container exiting 77 (not authorised)", gate_refused)
        text = ""
        for extra in ((), ("--previous",)):
            log = self.ks.kubectl("logs", "-n", "no-rbac", p["metadata"]["name"], "-c", "wait-for-migration", *extra)
            text += log.stdout
        self.assertIn("is forbidden", text)


@unittest.skipIf(_install_skip_reason(), _install_skip_reason())
class Lifecycle(OnCluster, unittest.TestCase):
    """chart-snippets/README.md "Lifecycle", step by step with the real helm
    on a cluster with controllers and a kubelet running our binaries: the
    steps run in order (test_1 ... test_8) on one release in one namespace,
    and each asserts what the README says happens."""

    NS = "life"
    M1 = "echo migrating to 1; sleep 1; echo schema 1 ready"
    M2 = "echo migrating to 2; sleep 1; echo schema 2 ready"
    M3 = "echo migrating to 3; echo 'ERROR: column exists' >&2; exit 3"
    state = {}

    @classmethod
    def setUpClass(cls):
        cls.cluster = ch.PatternCluster("mg-life-", BUILD)
        r = cls.kubectl_raw("create", "namespace", cls.NS)
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        failed = self.state.get("failed")
        if failed:
            self.skipTest(f"an earlier step failed: {failed}")

    def run(self, result=None):
        n = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > n:
            self.state["failed"] = self.id()
        return out

    def job_uid(self, name):
        j = self.kget("job", name)
        return j and j["metadata"]["uid"]

    def test_1_install(self):
        """Install: the Job runs once, the pods start after it; Helm created
        the Lease and the record, migrate-runner filled them."""
        self.upgrade("1.0.0", self.M1)
        self.assert_healthy()
        j1 = self.current_job()
        self.assertRegex(j1, JOB_RE)
        self.assert_gate_passed(j1, "1.0.0")
        job = self.kget("job", j1)
        self.assertEqual(job["metadata"]["labels"]["migration-gate.io/release-revision"], "1")
        self.assertEqual(self.record()[j1]["status"], "succeeded")
        lease = self.kget("lease", "shop-migrate")
        self.assertEqual(lease["metadata"]["annotations"]["meta.helm.sh/release-name"], "shop")
        self.assertFalse(lease["spec"].get("holderIdentity"))
        self.state.update(j1=j1, j1_uid=job["metadata"]["uid"])

    def test_2_noop_upgrade(self):
        """An upgrade that leaves the migration alone (--reuse-values plus a
        replica count): the same Job, relabelled; no new run, no pod restart."""
        j1 = self.state["j1"]
        pods = {p["metadata"]["uid"] for p in self.live_pods("worker") + self.live_pods("api")}
        rs = {r["metadata"]["name"] for r in self.kget("replicasets")}
        self.helm_ok("upgrade", "shop", ch.EXAMPLE, "-n", self.NS, "--reuse-values", "--set", "api.replicas=3")
        self.assertEqual(self.current_job(), j1)
        job = self.kget("job", j1)
        self.assertEqual(job["metadata"]["uid"], self.state["j1_uid"], "the same Job object")
        self.assertEqual(job["metadata"]["labels"]["migration-gate.io/release-revision"], "2")
        self.assertEqual(job["status"].get("succeeded"), 1)
        self.assertEqual([j["metadata"]["name"] for j in self.kget("jobs")], [j1])
        self.wait_until("3 api pods Ready", lambda: len([p for p in self.live_pods("api") if cond(p, "Ready")]) == 3)
        self.assert_healthy()
        self.assertEqual({r["metadata"]["name"] for r in self.kget("replicasets")}, rs, "no new ReplicaSet")
        now = {p["metadata"]["uid"] for p in self.live_pods("worker") + self.live_pods("api")}
        self.assertLessEqual(pods, now, "no pod was replaced")
        self.assertEqual(len(self.kget("pods", selector=f"batch.kubernetes.io/job-name={j1}")), 1, "no second run")
        self.assertEqual(sorted(self.record()), [j1])

    def test_3_upgrade(self):
        """An upgrade that changes the migration (here the image): a new Job;
        Helm deletes the previous one; the Role keeps naming it."""
        j1 = self.state["j1"]
        self.upgrade("1.1.0", self.M2, extra=("--reuse-values",))
        j2 = self.current_job()
        self.assertNotEqual(j2, j1)
        self.assert_healthy()
        self.assert_gate_passed(j2, "1.1.0")
        self.wait_until(f"Job {j1} deleted by Helm", lambda: self.kget("job", j1) is None)
        self.assertEqual(self.app_role_jobs(), [j2, j1])
        self.assertEqual(self.record()[j2]["status"], "succeeded")
        self.state.update(j2=j2)

    def test_4_failed_upgrade(self):
        """A failing migration: the new pods stay in Init, the old ones serve,
        release-check fails with the migration's exit code; Helm itself says
        deployed."""
        self.upgrade("1.2.0", self.M3, extra=("--reuse-values",))
        j3 = self.current_job()
        r = self.release_check()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr + self.dump())
        self.wait_until(f"Job {j3} Failed", lambda: self.job_done(j3, "Failed"))
        self.assertEqual(self.record()[j3]["exitCode"], 3)
        old = [p for p in self.live_pods("api") if p["spec"]["containers"][0]["image"].endswith(":1.1.0")]
        self.assertTrue(old and all(cond(p, "Ready") for p in old), "the old pods keep serving")
        st = json.loads(self.helm_ok("status", "shop", "-n", self.NS, "-o", "json").stdout)
        self.assertEqual((st["version"], st["info"]["status"]), (4, "deployed"))
        # an old pod that restarts now still passes its gate: its Job (j2)
        # was deleted by this upgrade, the Role still allows it (carried over
        # with lookup) and the record says it succeeded
        j2 = self.state["j2"]
        self.assertIsNone(self.kget("job", j2))
        self.assertEqual(self.app_role_jobs()[:2], [j3, j2])
        victim = old[0]["metadata"]["name"]
        self.kubectl("delete", "pod", victim, "-n", self.NS, "--wait=false")
        fresh = self.wait_until("a replacement 1.1.0 api pod Ready", lambda: [
            p for p in self.live_pods("api") if p["metadata"]["name"] != victim and cond(p, "Ready")
            and p["spec"]["containers"][0]["image"].endswith(":1.1.0") and p["metadata"]["name"] not in
            {o["metadata"]["name"] for o in old}])
        log = self.kubectl("logs", fresh[0]["metadata"]["name"], "-n", self.NS, "-c", "wait-for-migration")
        self.assertIn(f"job {j2} is gone; its recorded outcome is: succeeded", log.stdout + log.stderr)
        self.state.update(j3=j3)

    def test_5_rollback(self):
        """helm rollback to the last good revision works on the first try with
        the default values; that revision's Job is created again and runs its
        migration once more (the schema is not rolled back)."""
        j2, j3 = self.state["j2"], self.state["j3"]
        self.helm_ok("rollback", "shop", "3", "-n", self.NS)
        st = json.loads(self.helm_ok("status", "shop", "-n", self.NS, "-o", "json").stdout)
        self.assertEqual((st["version"], st["info"]["status"]), (5, "deployed"))
        self.assertEqual(self.current_job(), j2)
        self.wait_until(f"Job {j3} deleted by Helm", lambda: self.kget("job", j3) is None)
        self.assert_healthy()
        job = self.wait_until(f"Job {j2} Complete again", lambda: self.job_done(j2))
        self.assertEqual(job["metadata"]["labels"]["migration-gate.io/release-revision"], "3",
                         "rollback re-applies revision 3's manifest")
        # revision 3's pods had kept serving through the failed upgrade: they
        # are the release again, not restarted
        self.assert_gate_passed(j2, "1.1.0", after_job=False)
        rec = self.record()
        self.assertEqual(rec[j2]["status"], "succeeded")
        self.assertGreaterEqual(rec[j2]["startedAt"], job["metadata"]["creationTimestamp"], "it ran again")
        self.assertEqual(rec[j3]["status"], "failed")

    def test_6_uninstall(self):
        """helm uninstall leaves nothing a reinstall could mistake for its own:
        no Job, no migration pod, no record, no Lease, no Role."""
        self.helm_ok("uninstall", "shop", "-n", self.NS)
        for kind in ("jobs", "configmaps", "leases", "roles", "rolebindings", "deployments"):
            self.wait_until(f"no {kind} of shop left", lambda: not [
                o for o in self.kget(kind) if o["metadata"]["name"].startswith("shop-")])
        self.wait_until("no pod left", lambda: not self.kget("pods"))
        self.state["uninstalled_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def test_7_reinstall(self):
        """Reinstall with the same migration: the same Job name, but a new Job
        that runs the migration for the new installation; no stale record or
        Lease decides for it."""
        j2 = self.state["j2"]
        self.upgrade("1.1.0", self.M2)
        self.assertEqual(self.current_job(), j2, "the same migration, the same name")
        self.assert_healthy()
        job = self.kget("job", j2)
        self.assertGreaterEqual(job["metadata"]["creationTimestamp"], self.state["uninstalled_at"])
        self.assert_gate_passed(j2, "1.1.0")
        rec = self.record()
        self.assertEqual(sorted(rec), [j2])
        self.assertGreaterEqual(rec[j2]["startedAt"], self.state["uninstalled_at"])
        self.assertEqual(self.app_role_jobs(), [j2])

    def test_8_two_releases_in_one_namespace(self):
        """A second release in the namespace has its own Job, Lease, record
        and Roles; uninstalling it leaves the first alone."""
        self.upgrade("2.0.0", "echo other app; sleep 1", release="shop2")
        self.assert_healthy("shop2")
        self.assert_healthy("shop")
        jb = self.current_job("shop2")
        self.assertTrue(jb.startswith("shop2-migrate-"), jb)
        self.assertEqual(self.record("shop2")[jb]["status"], "succeeded")
        self.assertEqual(sorted(self.record("shop")), [self.state["j2"]])
        self.assertIsNotNone(self.kget("lease", "shop2-migrate"))
        self.assertEqual(self.app_role_jobs("shop2"), [jb])
        self.helm_ok("uninstall", "shop2", "-n", self.NS)
        self.wait_until("shop2's objects gone", lambda: not [
            o for o in self.kget("jobs") + self.kget("leases") + self.kget("configmaps")
            if o["metadata"]["name"].startswith("shop2-")])
        self.assertIsNotNone(self.kget("lease", "shop-migrate"))
        self.assert_healthy("shop")

    def test_9_rollback_with_kept_jobs(self):
        """Why keepPreviousJobs is off by default: with it, helm rollback to a
        revision whose Job is still there fails (helm/helm#8228); deleting
        that Job first, as the README says, makes it work."""
        self.helm_ok("uninstall", "shop", "-n", self.NS)
        self.wait_until("no pod left", lambda: not self.kget("pods"))
        keep = ("--set", "migrationGate.migration.keepPreviousJobs=true")
        self.upgrade("1.0.0", self.M1, extra=keep)
        self.assert_healthy()
        ja = self.current_job()
        self.upgrade("1.1.0", self.M2, extra=keep)
        self.assert_healthy()
        self.assertIsNotNone(self.kget("job", ja), "kept")
        r = self.helm_run("rollback", "shop", "1", "-n", self.NS)
        self.assertNotEqual(r.returncode, 0, "helm/helm#8228 is fixed? then keepPreviousJobs can be the default")
        self.assertIn(f'original object Job with the name "{ja}" not found', r.stderr)
        self.kubectl("delete", "job", ja, "-n", self.NS)
        self.wait_until(f"Job {ja} gone", lambda: self.kget("job", ja) is None)
        self.helm_ok("rollback", "shop", "1", "-n", self.NS)
        self.assertEqual(self.current_job(), ja)
        self.assert_healthy()


if __name__ == "__main__":
    unittest.main()
