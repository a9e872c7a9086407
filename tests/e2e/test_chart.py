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
            self.assertIn(f"migration-gate/migrate-runner:{version}", f.read())

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
            ("ConfigMap", "shop-migrations"), ("Job", "shop-migrate-1"),
            ("Deployment", "shop-api"), ("Deployment", "shop-worker"), ("Service", "shop-api"),
        ]))
        # the migration Job is an ordinary release object, not a hook
        job = one(self.objs, "Job")
        self.assertNotIn("helm.sh/hook", job["metadata"].get("annotations", {}))
        self.assertEqual(job["metadata"]["annotations"]["helm.sh/resource-policy"], "keep")
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

    def test_job_name_carries_the_revision(self):
        # helm template renders revision 1; the upgrade test in kubesim sees 2
        self.assertEqual(one(self.objs, "Job")["metadata"]["name"], "shop-migrate-1")
        objs = ch.render("shop", sets=["migrationGate.migration.jobSuffix=V1.2.3_rc"])
        self.assertEqual(one(objs, "Job")["metadata"]["name"], "shop-migrate-v1-2-3-rc")
        for name, spec in pod_specs(objs):
            for c in spec.get("initContainers", []):
                self.assertEqual(env_value(c, "WAIT_FOR_JOB_NAME"), "shop-migrate-v1-2-3-rc")

    def test_long_release_names_stay_valid(self):
        rel = "a" * 53  # helm's maximum release name length
        objs = ch.render(rel)
        job = one(objs, "Job")["metadata"]["name"]
        self.assertLessEqual(len(job), 63)
        self.assertRegex(job, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        self.assertTrue(job.endswith("-migrate-1"))
        for o in objs:
            self.assertLessEqual(len(o["metadata"]["name"]), 63, o["metadata"]["name"])

    def test_init_container_waits_for_exactly_this_job_with_the_record(self):
        job = one(self.objs, "Job")["metadata"]["name"]
        cm = one(self.objs, "ConfigMap")["metadata"]["name"]
        for dep in by_kind(self.objs, "Deployment"):
            spec = dep["spec"]["template"]["spec"]
            inits = spec["initContainers"]
            self.assertEqual([c["name"] for c in inits], ["wait-for-migration"], dep["metadata"]["name"])
            c = inits[0]
            self.assertEqual(c["image"], "migration-gate/wait-for-job:0.1.0")
            self.assertNotIn("command", c)  # the image's entrypoint, /wait-for-job
            self.assertNotIn("args", c)
            self.assertEqual(env_value(c, "WAIT_FOR_JOB_NAME"), job)
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
        self.assertEqual(spec["ttlSecondsAfterFinished"], 86400)
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
        self.assertEqual(c["image"], "migration-gate/wait-for-job@" + d)
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
        objs = ch.render("shop", sets=["migrationGate.migration.ttlSecondsAfterFinished=null",
                                       "migrationGate.migration.activeDeadlineSeconds=600",
                                       "migrationGate.migration.backoffLimit=0",
                                       "migrationGate.migration.keepPreviousJobs=false"])
        job = one(objs, "Job")
        self.assertNotIn("ttlSecondsAfterFinished", job["spec"])
        self.assertEqual(job["spec"]["activeDeadlineSeconds"], 600)
        self.assertEqual(job["spec"]["backoffLimit"], 0)
        self.assertNotIn("annotations", job["metadata"])
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
                if rule["verbs"] != ["create"]:
                    # every rule but "create" (which resourceNames cannot restrict) is by name
                    self.assertTrue(rule.get("resourceNames"), f"{name}: {rule}")
                self.assertNotIn("secrets", rule["resources"])
        self.assertEqual(roles["shop-wait-for-migration"], [
            {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": ["shop-migrate-1"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["shop-migrations"],
             "verbs": ["get", "list", "watch"]},
        ])
        self.assertEqual(roles["shop-migrate"], [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["shop-migrations"],
             "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["shop-migrate"],
             "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
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
        self.assertEqual(roles["shop-wait-for-migration"][0]["resourceNames"], ["shop-migrate-1", "shop-migrate-legacy"])
        self.assertEqual([s["metadata"]["name"] for s in by_kind(objs, "ServiceAccount")], ["shop-migrate"])
        b = one(objs, "RoleBinding", "shop-wait-for-migration")
        self.assertEqual(b["subjects"], [{"kind": "ServiceAccount", "name": "shop-api-sa", "namespace": "shop-prod"}])
        self.assertEqual(one(objs, "Deployment", "shop-api")["spec"]["template"]["spec"]["serviceAccountName"],
                         "shop-api-sa")
        c = one(objs, "Job")["spec"]["template"]["spec"]["containers"][0]
        self.assertNotIn("MR_LOCK", env_of(c))
        objs = ch.render("shop", sets=["migrationGate.rbac.create=false"])
        self.assertEqual(by_kind(objs, "Role") + by_kind(objs, "RoleBinding"), [])

    def test_disabled_renders_no_gate(self):
        objs = ch.render("shop", sets=["migrationGate.enabled=false"])
        self.assertEqual(sorted(o["kind"] for o in objs), ["Deployment", "Deployment", "Service"])
        for dep in by_kind(objs, "Deployment"):
            self.assertFalse(dep["spec"]["template"]["spec"].get("initContainers"))


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
                    "migration-gate:\n  namePrefix: billing\n"
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
        self.assertEqual(job["metadata"]["name"], "billing-migrate-1")
        self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["image"], "registry.example.com/billing:3.1")
        self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["args"],
                         ["--", "bundle", "exec", "rake", "db:migrate"])
        sts = one(objs, "StatefulSet")["spec"]["template"]["spec"]
        self.assertEqual(env_value(sts["initContainers"][0], "WAIT_FOR_JOB_NAME"), "billing-migrate-1")
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
            self.assertEqual(env_value(ic, "WAIT_FOR_JOB_NAME"), job_name)
            self.assertEqual(env_value(ic, "WAIT_FOR_JOB_RECORD"), record)
            self.assertIn(spec["serviceAccountName"], sas)
        self.assertIn(job["spec"]["template"]["spec"]["serviceAccountName"], sas)
        roles = by_kind(objs, "Role")
        app_role = [r for r in roles if r["metadata"]["name"].endswith("wait-for-migration")][0]
        self.assertEqual(app_role["rules"][0]["resourceNames"], [job_name])
        self.assertEqual(app_role["rules"][1]["resourceNames"], [record])
        mig_role = [r for r in roles if r["metadata"]["name"].endswith("-migrate")][0]
        self.assertEqual(mig_role["rules"][0]["resourceNames"], [record])
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


@unittest.skipIf(_install_skip_reason(), _install_skip_reason())
class InstallIntoKubesim(unittest.TestCase):
    """helm upgrade --install of example-app, then an upgrade with a new image
    tag, then a failing migration: the gate holds, the record and the Lease
    work under the chart's own least-privilege Roles, release-check agrees."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = ch.PatternCluster("mg-helm-", BUILD)
        cls.tmp, cls.bin, cls.ks, cls.env = cls.cluster.tmp, cls.cluster.bin, cls.cluster.ks, cls.cluster.env

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    # -- helpers
    def objects(self, kind):
        return self.ks.objects(kind=kind, namespace=NS)

    def get(self, kind, name):
        return next((o for o in self.objects(kind) if o["metadata"]["name"] == name), None)

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
        r = self.ks.kubectl("get", "jobs,pods,deploy,rs", "-o", "wide")
        ev = self.ks.kubectl("get", "events", "--sort-by=.lastTimestamp")
        return r.stdout + r.stderr + "\n" + ev.stdout[-4000:]

    def upgrade(self, tag, migrate_cmd, extra=()):
        r = ch.helm("upgrade", "--install", "shop", ch.EXAMPLE, "--namespace", NS,
                    "--set", f"image.tag={tag}",
                    "--set", "migrationGate.migration.lock.lease=3s",
                    "--set-json", "migrationGate.migration.command=" + json.dumps(["sh", "-c", migrate_cmd]),
                    *extra, env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def release_check(self, timeout="90s"):
        return subprocess.run([os.path.join(self.bin, "release-check"), "-n", NS, "--timeout", timeout,
                               "--kubeconfig", self.ks.kubeconfig, "shop"], capture_output=True, text=True, timeout=180,
                              env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent-home"})

    def live_pods(self, component):
        return [p for p in self.objects("Pod")
                if p["metadata"]["labels"].get("app.kubernetes.io/component") == component
                and not p["metadata"].get("deletionTimestamp")]

    def record(self):
        cm = self.get("ConfigMap", "shop-migrations")
        return {k: json.loads(v) for k, v in (cm.get("data") or {}).items()}

    def init_status(self, pod):
        return next(s for s in pod["status"].get("initContainerStatuses", []) if s["name"] == "wait-for-migration")

    def assert_gate_passed(self, job_name, tag):
        job = self.get("Job", job_name)
        done = job["status"]["completionTime"]
        for comp in ("api", "worker"):
            dep = self.get("Deployment", f"shop-{comp}")
            self.assertEqual(dep["status"].get("updatedReplicas"), dep["spec"]["replicas"], comp)
            ready = [p for p in self.live_pods(comp) if cond(p, "Ready")]
            self.assertEqual(len(ready), dep["spec"]["replicas"], comp)
            for p in ready:
                c = p["spec"]["containers"][0]
                self.assertEqual(c["image"], f"registry.example.com/shop/app:{tag}")
                ic = p["spec"]["initContainers"][0]
                self.assertEqual(env_value(ic, "WAIT_FOR_JOB_NAME"), job_name)
                st = self.init_status(p)["state"]["terminated"]
                self.assertEqual(st["exitCode"], 0)
                # the init container finished only once the Job had completed
                self.assertLessEqual(done, st["finishedAt"], p["metadata"]["name"])

    # -- the test: one release, several revisions, in order
    def test_install_upgrade_and_failure(self):
        # 1. install: the gate holds the pods until the migration succeeded
        self.upgrade("1.0.0", "echo migrating to 1.0.0; sleep 2; echo schema 1.0.0 ready")
        r = self.release_check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dump())
        job1 = self.wait_until("Job shop-migrate-1 Complete",
                               lambda: cond(self.get("Job", "shop-migrate-1") or {}, "Complete"))
        self.assertTrue(job1)
        self.assert_gate_passed("shop-migrate-1", "1.0.0")
        pod = self.live_pods("api")[0]["metadata"]["name"]
        log = self.ks.kubectl("logs", pod, "-c", "wait-for-migration")
        self.assertIn("shop-migrate-1", log.stdout + log.stderr)
        rec = self.record()
        self.assertEqual(rec["shop-migrate-1"]["status"], "succeeded")
        self.assertEqual(rec["shop-migrate-1"]["exitCode"], 0)
        self.assertEqual(rec["shop-migrate-1"]["job"], "shop-migrate-1")  # JOB_NAME from the pod label
        self.assertIn("schema 1.0.0 ready", rec["shop-migrate-1"]["outputTail"])
        lease = self.get("Lease", "shop-migrate")
        self.assertIsNotNone(lease, "migrate-runner --lock created the Lease")
        self.assertFalse(lease["spec"].get("holderIdentity"), "released after the migration")

        # 2. upgrade with a new image tag: a new Job, new pods wait for it
        self.upgrade("1.1.0", "echo migrating to 1.1.0; sleep 2; echo schema 1.1.0 ready")
        r = self.release_check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dump())
        self.wait_until("Job shop-migrate-2 Complete", lambda: cond(self.get("Job", "shop-migrate-2") or {}, "Complete"))
        self.wait_until("the old pods gone",
                        lambda: all(p["spec"]["containers"][0]["image"].endswith(":1.1.0")
                                    for p in self.live_pods("api") + self.live_pods("worker")))
        self.assert_gate_passed("shop-migrate-2", "1.1.0")
        self.assertIsNotNone(self.get("Job", "shop-migrate-1"), "helm.sh/resource-policy: keep")
        role = self.get("Role", "shop-wait-for-migration")
        self.assertEqual(role["rules"][0]["resourceNames"], ["shop-migrate-2", "shop-migrate-1"])
        rec = self.record()
        self.assertEqual(sorted(rec), ["shop-migrate-1", "shop-migrate-2"])
        self.assertEqual(rec["shop-migrate-2"]["status"], "succeeded")

        # 3. the Job is gone (TTL): a restarted pod passes on the record alone
        self.ks.kubectl("delete", "job", "shop-migrate-2")
        self.wait_until("Job shop-migrate-2 deleted", lambda: self.get("Job", "shop-migrate-2") is None)
        victim = self.live_pods("worker")[0]["metadata"]["name"]
        self.ks.kubectl("delete", "pod", victim, "--wait=false")
        fresh = self.wait_until("a replacement worker pod Ready", lambda: [
            p for p in self.live_pods("worker") if p["metadata"]["name"] != victim and cond(p, "Ready")])
        self.assertEqual(self.init_status(fresh[0])["state"]["terminated"]["exitCode"], 0)
        log = self.ks.kubectl("logs", fresh[0]["metadata"]["name"], "-c", "wait-for-migration")
        self.assertIn("job shop-migrate-2 is gone; its recorded outcome is: succeeded", log.stdout + log.stderr)

        # 4. a failing migration: the new pods never start, the old ones serve
        self.upgrade("1.2.0", "echo migrating to 1.2.0; echo 'ERROR: column exists' >&2; exit 3")
        r = self.release_check()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr + self.dump())
        job3 = self.wait_until("Job shop-migrate-3 Failed", lambda: (lambda j: j if cond(j, "Failed") else None)(
            self.get("Job", "shop-migrate-3") or {}))
        self.assertEqual(job3["status"].get("failed"), 3)  # counted: backoffLimit 2 -> 3 attempts
        rec = self.record()["shop-migrate-3"]
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
        job4 = self.wait_until("Job shop-migrate-4 Failed", lambda: (lambda j: j if cond(j, "Failed") else None)(
            self.get("Job", "shop-migrate-4") or {}))
        failed = [c for c in job4["status"]["conditions"] if c["type"] == "Failed"][0]
        self.assertEqual(failed["reason"], "PodFailurePolicy")
        self.assertEqual(job4["status"].get("failed"), 1)
        self.assertEqual(self.record()["shop-migrate-4"]["exitCode"], 127)

        # the pods of revision 2 still pass their gate when they restart:
        # the Role of revision 4 still names shop-migrate-2 (rbac.previousJobs)
        role = self.get("Role", "shop-wait-for-migration")
        self.assertEqual(role["rules"][0]["resourceNames"][:3], ["shop-migrate-4", "shop-migrate-3", "shop-migrate-2"])

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


if __name__ == "__main__":
    unittest.main()
