/*
 * Unit tests: lib/kubeconfig.c - real-world kubeconfig shapes (EKS and GKE
 * exec plugins, client certificates, several contexts), malformed files,
 * ExecCredential parsing and running a plugin; the tls-server-name route
 * (lib/kube.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/kubeconfig.c"
#include "../../lib/kube.c"

static char tmpdir[64];

/* the plugin run to its end, as kube_refresh_credentials does without a limit */
static int run_exec(const struct kube_config *cfg, int64_t deadline_ms, char **token, char **cert, char **key,
                    int64_t *expiry_ms, struct kube_error *err)
{
	struct kcfg_exec_run run;
	int rc;

	*token = *cert = *key = NULL;
	rc = kcfg_exec_start(cfg, deadline_ms, &run, err);
	while (rc == KUBE_OK &&
	       (rc = kcfg_exec_poll(cfg, &run, 50, token, cert, key, expiry_ms, err)) == KCFG_EXEC_RUNNING)
		rc = KUBE_OK;
	return rc;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-kcfg-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text, int mode)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(p, (mode_t)mode);
}

static int parse(const char *text, const char *context, struct kube_config *cfg, struct kube_error *err)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/config", tmpdir);
	memset(err, 0, sizeof(*err));
	return kcfg_parse(text, strlen(text), path, context, cfg, err);
}

/* "hello" and a PEM-ish blob, base64 */
#define B64_HELLO "aGVsbG8="

static const char eks[] = "apiVersion: v1\n"
                          "kind: Config\n"
                          "clusters:\n"
                          "- cluster:\n"
                          "    certificate-authority-data: " B64_HELLO "\n"
                          "    server: https://ABC.gr7.eu-west-1.eks.amazonaws.com/\n"
                          "  name: arn:aws:eks:eu-west-1:123:cluster/prod\n"
                          "contexts:\n"
                          "- context:\n"
                          "    cluster: arn:aws:eks:eu-west-1:123:cluster/prod\n"
                          "    user: arn:aws:eks:eu-west-1:123:cluster/prod\n"
                          "  name: arn:aws:eks:eu-west-1:123:cluster/prod\n"
                          "current-context: arn:aws:eks:eu-west-1:123:cluster/prod\n"
                          "preferences: {}\n"
                          "users:\n"
                          "- name: arn:aws:eks:eu-west-1:123:cluster/prod\n"
                          "  user:\n"
                          "    exec:\n"
                          "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                          "      args:\n"
                          "      - --region\n"
                          "      - eu-west-1\n"
                          "      - eks\n"
                          "      - get-token\n"
                          "      - --cluster-name\n"
                          "      - prod\n"
                          "      command: aws\n"
                          "      env:\n"
                          "      - name: AWS_PROFILE\n"
                          "        value: ops\n"
                          "      interactiveMode: IfAvailable\n"
                          "      provideClusterInfo: false\n";

static void eks_exec_plugin(void **state)
{
	struct kube_config cfg;
	struct kube_error err;
	(void)state;
	assert_int_equal(parse(eks, NULL, &cfg, &err), KUBE_OK);
	assert_string_equal(cfg.server, "https://ABC.gr7.eu-west-1.eks.amazonaws.com");
	assert_int_equal(cfg.ca_len, 5);
	assert_memory_equal(cfg.ca, "hello", 5);
	assert_int_equal(cfg.has_exec, 1);
	assert_string_equal(cfg.exec.command, "aws");
	assert_string_equal(cfg.exec.argv[0], "aws");
	assert_string_equal(cfg.exec.argv[1], "--region");
	assert_string_equal(cfg.exec.argv[6], "prod");
	assert_null(cfg.exec.argv[7]);
	assert_string_equal(cfg.exec.env[0], "AWS_PROFILE=ops");
	assert_null(cfg.exec.env[1]);
	assert_string_equal(cfg.namespace, "default");
	assert_null(cfg.token);
	kcfg_free(&cfg);
}

static const char gke[] = "apiVersion: v1\n"
                          "clusters:\n"
                          "- cluster:\n"
                          "    certificate-authority-data: " B64_HELLO "\n"
                          "    server: https://34.1.2.3\n"
                          "  name: gke_proj_europe-west1_c1\n"
                          "contexts:\n"
                          "- context:\n"
                          "    cluster: gke_proj_europe-west1_c1\n"
                          "    namespace: payments\n"
                          "    user: gke_proj_europe-west1_c1\n"
                          "  name: gke_proj_europe-west1_c1\n"
                          "- context:\n"
                          "    cluster: other\n"
                          "    user: certuser\n"
                          "  name: other\n"
                          "- context: {cluster: other, user: tokuser, namespace: ns2}\n"
                          "  name: tok\n"
                          "current-context: gke_proj_europe-west1_c1\n"
                          "kind: Config\n"
                          "users:\n"
                          "- name: gke_proj_europe-west1_c1\n"
                          "  user:\n"
                          "    exec:\n"
                          "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                          "      command: gke-gcloud-auth-plugin\n"
                          "      installHint: Install gke-gcloud-auth-plugin for use with kubectl\n"
                          "      provideClusterInfo: true\n"
                          "- name: certuser\n"
                          "  user:\n"
                          "    client-certificate-data: " B64_HELLO "\n"
                          "    client-key-data: " B64_HELLO "\n"
                          "- name: tokuser\n"
                          "  user:\n"
                          "    token: abc.def.ghi\n"
                          "- name: fileuser\n"
                          "  user:\n"
                          "    tokenFile: tok.txt\n"
                          "clusters2: []\n";

static void gke_and_contexts(void **state)
{
	struct kube_config cfg;
	struct kube_error err;
	static const char other_cluster[] =
	    "- cluster:\n    server: https://10.0.0.1:6443\n    insecure-skip-tls-verify: true\n  name: other\n";
	char text[4096];
	(void)state;

	/* append the "other" cluster to the clusters list */
	snprintf(text, sizeof(text), "%s", gke);
	{
		char *p = strstr(text, "contexts:\n");
		char tail[4096];
		snprintf(tail, sizeof(tail), "%s", p);
		snprintf(p, sizeof(text) - (size_t)(p - text), "%s%s", other_cluster, tail);
	}
	assert_int_equal(parse(text, NULL, &cfg, &err), KUBE_OK);
	assert_string_equal(cfg.namespace, "payments");
	assert_string_equal(cfg.exec.command, "gke-gcloud-auth-plugin");
	assert_string_equal(cfg.exec.install_hint, "Install gke-gcloud-auth-plugin for use with kubectl");
	assert_non_null(strstr(cfg.source, "gke_proj_europe-west1_c1"));
	kcfg_free(&cfg);

	assert_int_equal(parse(text, "other", &cfg, &err), KUBE_OK);
	assert_string_equal(cfg.server, "https://10.0.0.1:6443");
	assert_int_equal(cfg.insecure, 1);
	assert_int_equal(cfg.cert_len, 5);
	assert_int_equal(cfg.key_len, 5);
	assert_int_equal(cfg.has_exec, 0);
	kcfg_free(&cfg);

	assert_int_equal(parse(text, "tok", &cfg, &err), KUBE_OK);
	assert_string_equal(cfg.token, "abc.def.ghi");
	assert_string_equal(cfg.namespace, "ns2");
	kcfg_free(&cfg);

	assert_int_equal(parse(text, "nope", &cfg, &err), KUBE_ECONFIG);
	assert_non_null(strstr(err.message, "context \"nope\" not found"));
	assert_non_null(strstr(err.message, "other"));
}

static void files_relative_to_kubeconfig(void **state)
{
	struct kube_config cfg;
	struct kube_error err;
	static const char text[] = "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n"
	                           "    certificate-authority: ca.pem\n"
	                           "users:\n- name: u\n  user:\n    tokenFile: tok.txt\n"
	                           "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	                           "current-context: x\n";
	(void)state;
	write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	assert_int_equal(parse(text, NULL, &cfg, &err), KUBE_OK);
	assert_non_null(strstr(cfg.ca, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(cfg.token_file, tmpdir));
	assert_non_null(strstr(cfg.token_file, "/tok.txt"));
	kcfg_free(&cfg);
}

static void malformed(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
	    {"clusters: [\n", "invalid YAML"},
	    {"- a\n- b\n", "not a kubeconfig"},
	    {"contexts: []\n", "no current-context"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {user: u}\n", "names no cluster"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n", "cluster \"c\" not found"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {}\n",
	     "server is missing"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: "
	     "{server: ftp://x}\n",
	     "must start with https://"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster:\n"
	     "    server: https://x\n    certificate-authority-data: '%%%'\n",
	     "certificate-authority-data is not valid base64"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster:\n"
	     "    server: https://x\n    certificate-authority: /nonexistent/ca.crt\n",
	     "/nonexistent/ca.crt"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
	     "cluster:\n"
	     "    server: https://x\n",
	     "user \"u\" not found"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
	     "cluster:\n"
	     "    server: https://x\nusers:\n- name: u\n  user:\n    client-certificate-data: aGVsbG8=\n",
	     "must be set together"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
	     "cluster:\n"
	     "    server: https://x\nusers:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n",
	     "auth-provider \"gcp\""},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
	     "cluster:\n"
	     "    server: https://x\nusers:\n- name: u\n  user:\n    exec: {apiVersion: "
	     "client.authentication.k8s.io/v1alpha1, command: x}\n",
	     "v1alpha1\" is not supported"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
	     "cluster:\n"
	     "    server: https://x\nusers:\n- name: u\n  user:\n    exec: {args: [a]}\n",
	     "exec.command is missing"},
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster:\n"
	     "    server: https://x\n    insecure-skip-tls-verify: true\n    certificate-authority-data: aGVsbG8=\n",
	     "both set"},
	    /* issue 15 item 12: credentials in the URL are refused, never echoed */
	    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster:\n"
	     "    server: https://admin:s3cr3t@x:6443/\n",
	     "contains credentials"},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_config cfg;
		struct kube_error err;
		assert_int_equal(parse(cases[i].text, NULL, &cfg, &err), KUBE_ECONFIG);
		if (!strstr(err.message, cases[i].want))
			fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err.message, cases[i].want);
		assert_non_null(strstr(err.message, tmpdir)); /* names the file */
		assert_null(strstr(err.message, "s3cr3t"));
	}
}

static void load_order_and_http_refusal(void **state)
{
	struct kube_config cfg;
	struct kube_error err;
	struct kube_conn_opts o = {0};
	char path[256];
	(void)state;

	write_file("plain",
	           "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	           "clusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:8080'}\n"
	           "users:\n- name: u\n  user: {token: secret-token}\n",
	           0600);
	snprintf(path, sizeof(path), "%s/plain", tmpdir);
	o.kubeconfig = path;
	assert_int_equal(kcfg_load(&o, &cfg, &err), KUBE_ECONFIG);
	assert_non_null(strstr(err.message, "plain http"));
	assert_null(strstr(err.message, "secret-token"));

	/* $KUBECONFIG list: the first existing file is used; -n overrides */
	o.kubeconfig = NULL;
	o.namespace = "override";
	write_file("good",
	           "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, namespace: a}\n"
	           "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n",
	           0600);
	snprintf(path, sizeof(path), "/nonexistent/a:%s/good", tmpdir);
	setenv("KUBECONFIG", path, 1);
	assert_int_equal(kcfg_load(&o, &cfg, &err), KUBE_OK);
	assert_string_equal(cfg.namespace, "override");
	kcfg_free(&cfg);
	setenv("KUBECONFIG", "/nonexistent/a", 1);
	assert_int_equal(kcfg_load(&o, &cfg, &err), KUBE_ECONFIG);
	unsetenv("KUBECONFIG");

	/* no config anywhere */
	setenv("HOME", tmpdir, 1);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kcfg_load(&o, &cfg, &err), KUBE_ENOCONFIG);
	assert_non_null(strstr(err.message, "no Kubernetes configuration"));
}

static void exec_credential_parse(void **state)
{
	char *t, *c, *k, e[256];
	int64_t exp;
	static const char v1[] =
	    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
	    "\"spec\":{},\"status\":{\"token\":\"tok\",\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}";
	static const char certs[] =
	    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
	    "\"status\":{\"clientCertificateData\":\"C\",\"clientKeyData\":\"K\"}}";
	static const char *const bad[] = {
	    "not json",
	    "{\"kind\":\"Other\",\"apiVersion\":\"client.authentication.k8s.io/v1\",\"status\":{\"token\":\"t\"}}",
	    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"v1\",\"status\":{\"token\":\"t\"}}",
	    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\",\"status\":{}}",
	    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
	    "v1\",\"status\":{\"clientCertificateData\":\"C\"}}",
	    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
	    "v1\",\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}}",
	};
	size_t i;
	(void)state;
	assert_int_equal(kcfg_parse_exec_credential(v1, strlen(v1), &t, &c, &k, &exp, e, sizeof(e)), 0);
	assert_string_equal(t, "tok");
	assert_null(c);
	assert_int_equal(exp, 1893456000000LL);
	free(t);
	assert_int_equal(kcfg_parse_exec_credential(certs, strlen(certs), &t, &c, &k, &exp, e, sizeof(e)), 0);
	assert_null(t);
	assert_string_equal(c, "C");
	assert_string_equal(k, "K");
	assert_int_equal(exp, 0);
	free(c);
	free(k);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kcfg_parse_exec_credential(bad[i], strlen(bad[i]), &t, &c, &k, &exp, e, sizeof(e)),
		                 -1);
		assert_null(t);
	}
}

static void exec_plugin_runs(void **state)
{
	struct kube_config cfg;
	struct kube_error err;
	char *t, *c, *k, text[1024];
	int64_t exp;
	(void)state;

	write_file("plugin.sh",
	           "#!/bin/sh\n"
	           "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3 ;; esac\n"
	           "[ \"$MY_ENV\" = yes ] || exit 4\n"
	           "[ \"$1\" = get-token ] || exit 5\n"
	           "printf "
	           "'{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
	           "v1\",\"status\":{\"token\":\"from-plugin\"}}'\n",
	           0755);
	write_file("failing.sh", "#!/bin/sh\necho 'plugin: expired SSO session' >&2\nexit 2\n", 0755);
	snprintf(text, sizeof(text),
	         "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
	         "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
	         "      command: ./plugin.sh\n      args: [get-token]\n      env: [{name: MY_ENV, value: 'yes'}]\n");
	assert_int_equal(parse(text, NULL, &cfg, &err), KUBE_OK);
	assert_int_equal(run_exec(&cfg, 0, &t, &c, &k, &exp, &err), KUBE_OK);
	assert_string_equal(t, "from-plugin");
	free(t);
	kcfg_free(&cfg);

	snprintf(text, sizeof(text),
	         "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
	         "users:\n- name: u\n  user:\n    exec:\n      command: ./failing.sh\n");
	assert_int_equal(parse(text, NULL, &cfg, &err), KUBE_OK);
	assert_int_equal(run_exec(&cfg, 0, &t, &c, &k, &exp, &err), KUBE_ECONFIG);
	assert_non_null(strstr(err.message, "exit status 2"));
	kcfg_free(&cfg);

	snprintf(text, sizeof(text),
	         "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
	         "users:\n- name: u\n  user:\n    exec:\n      command: no-such-plugin-xyz\n      installHint: brew "
	         "install it\n");
	assert_int_equal(parse(text, NULL, &cfg, &err), KUBE_OK);
	assert_int_equal(run_exec(&cfg, 0, &t, &c, &k, &exp, &err), KUBE_ECONFIG);
	assert_non_null(strstr(err.message, "brew install it"));
	kcfg_free(&cfg);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int plugin_cfg(const char *command, struct kube_config *cfg)
{
	char text[1024];
	struct kube_error err;

	snprintf(text, sizeof(text),
	         "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
	         "users:\n- name: u\n  user:\n    exec:\n      command: %s\n",
	         command);
	return parse(text, NULL, cfg, &err);
}

/*
 * Issue 15 item 2: a plugin that hangs, or exits leaving a child that holds
 * its stdout, must not block past the deadline; the plugin gets no
 * descriptor of ours but 0-2 (item 9).
 */
static void exec_plugin_bounded(void **state)
{
	static const char cred[] = "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
	                           "\"status\":{\"token\":\"t\"}}";
	struct kube_config cfg;
	struct kube_error err;
	char *t, *c, *k, script[512];
	int64_t exp, t0;
	int leak;
	(void)state;

	write_file("hang.sh", "#!/bin/sh\nexec sleep 30\n", 0755);
	assert_int_equal(plugin_cfg("./hang.sh", &cfg), KUBE_OK);
	t0 = now_ms();
	assert_int_equal(run_exec(&cfg, t0 + 300, &t, &c, &k, &exp, &err), KUBE_ETIMEOUT);
	assert_true(now_ms() - t0 < 2000);
	assert_non_null(strstr(err.message, "killed"));
	kcfg_free(&cfg);

	snprintf(script, sizeof(script), "#!/bin/sh\n(exec 2>/dev/null; sleep 20) &\nprintf '%%s' '%s'\n", cred);
	write_file("linger.sh", script, 0755);
	assert_int_equal(plugin_cfg("./linger.sh", &cfg), KUBE_OK);
	t0 = now_ms();
	assert_int_equal(run_exec(&cfg, t0 + 10000, &t, &c, &k, &exp, &err), KUBE_OK);
	assert_true(now_ms() - t0 < 2000);
	assert_string_equal(t, "t");
	free(t);
	kcfg_free(&cfg);

	/* a descriptor without O_CLOEXEC, like libcurl's sockets */
	leak = dup2(2, 57);
	assert_int_equal(leak, 57);
	snprintf(script, sizeof(script), "#!/bin/sh\n[ -e /proc/$$/fd/57 ] && exit 9\nprintf '%%s' '%s'\n", cred);
	write_file("fds.sh", script, 0755);
	assert_int_equal(plugin_cfg("./fds.sh", &cfg), KUBE_OK);
	assert_int_equal(run_exec(&cfg, 0, &t, &c, &k, &exp, &err), KUBE_OK);
	free(t);
	close(leak);
	kcfg_free(&cfg);
}

/*
 * A waitpid(-1) elsewhere in the process (migrate-runner's supervisor reaps
 * every child on its main thread while the lock keeper runs a plugin on
 * another) must not collect the plugin: its exit status decides, here a
 * failure despite a valid credential on stdout.
 */
static void exec_plugin_not_reaped_by_others(void **state)
{
	struct kube_config cfg;
	struct kube_error err;
	struct kcfg_exec_run run;
	char *t = NULL, *c = NULL, *k = NULL, script[512];
	int64_t exp, t0;
	int rc, st;
	(void)state;

	snprintf(script, sizeof(script),
	         "#!/bin/sh\nsleep 0.3\nprintf '%%s' '{\"kind\":\"ExecCredential\",\"apiVersion\":"
	         "\"client.authentication.k8s.io/v1\",\"status\":{\"token\":\"t\"}}'\nexit 3\n");
	write_file("exit3.sh", script, 0755);
	assert_int_equal(plugin_cfg("./exit3.sh", &cfg), KUBE_OK);
	assert_int_equal(kcfg_exec_start(&cfg, 0, &run, &err), KUBE_OK);
	t0 = now_ms();
	while (now_ms() - t0 < 1000) { /* past the plugin's exit */
		pid_t w = waitpid(-1, &st, WNOHANG);
		assert_int_not_equal(w, run.pid);
		usleep(10000);
	}
	while ((rc = kcfg_exec_poll(&cfg, &run, 50, &t, &c, &k, &exp, &err)) == KCFG_EXEC_RUNNING)
		;
	assert_int_equal(rc, KUBE_ECONFIG);
	assert_non_null(strstr(err.message, "exit status 3"));
	assert_null(t);
	kcfg_free(&cfg);
}

/*
 * Issue 15 item 10: a kubeconfig nested 100k deep is refused at once (the
 * YAML loader is quadratic in the depth), and a FIFO given as a file path
 * fails at once instead of blocking in open() or read().
 */
static void hostile_shapes(void **state)
{
	struct kube_config cfg;
	struct kube_error err;
	size_t n = 100000, i;
	char *deep = malloc(2 * n + 8), text[1024], fifo[256];
	int64_t t0;
	(void)state;

	assert_non_null(deep);
	for (i = 0; i < n; i++)
		memcpy(deep + 2 * i, "- ", 2);
	memcpy(deep + 2 * n, "x\n", 3);
	t0 = now_ms();
	assert_int_equal(kcfg_parse(deep, strlen(deep), "/deep", NULL, &cfg, &err), KUBE_ECONFIG);
	assert_true(now_ms() - t0 < 1000);
	assert_non_null(strstr(err.message, "nested deeper"));
	free(deep);

	snprintf(fifo, sizeof(fifo), "%s/ca.fifo", tmpdir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(text, sizeof(text),
	         "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  "
	         "cluster:\n    server: https://x\n    certificate-authority: %s\n",
	         fifo);
	t0 = now_ms();
	assert_int_equal(parse(text, NULL, &cfg, &err), KUBE_ECONFIG);
	assert_true(now_ms() - t0 < 1000);
	assert_non_null(strstr(err.message, "not a regular file"));
}

static void base64(void **state)
{
	char *o;
	size_t n;
	(void)state;
	assert_int_equal(kcfg_b64decode("aGVsbG8=", 8, &o, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(o, "hello");
	free(o);
	assert_int_equal(kcfg_b64decode("aGVsbG8", 7, &o, &n), 0); /* unpadded (JWT) */
	assert_string_equal(o, "hello");
	free(o);
	assert_int_equal(kcfg_b64decode("aGV\nsbG8=", 9, &o, &n), 0);
	free(o);
	assert_int_equal(kcfg_b64decode("a=GV", 4, &o, &n), -1);
	assert_int_equal(kcfg_b64decode("a*b", 3, &o, &n), -1);
	assert_int_equal(kcfg_b64decode("a", 1, &o, &n), -1);
}

/* tls-server-name: the URL's host becomes the name, the connection and the Host header keep the server's */
static void route_for(const char *server, const char *tsn, int want_rc, const char *url, const char *host_hdr,
                      const char *connect_to)
{
	char src[] = "kubeconfig k";
	struct kube_config c = {.server = (char *)server, .tls_server_name = (char *)tsn, .source = src};
	struct tls_route r;
	struct kube_error err;

	assert_int_equal(tls_route_init(&c, &r, &err), want_rc);
	if (!url) {
		assert_null(r.url_base);
		assert_null(r.host_hdr);
		assert_null(r.connect_to);
		return;
	}
	assert_string_equal(r.url_base, url);
	assert_string_equal(r.host_hdr, host_hdr);
	assert_string_equal(r.connect_to->data, connect_to);
	assert_null(r.connect_to->next);
	tls_route_free(&r);
}

static void tls_server_name_route(void **state)
{
	(void)state;
	route_for("https://10.0.0.1:6443", "kubernetes.default.svc", KUBE_OK, "https://kubernetes.default.svc:6443",
	          "Host: 10.0.0.1:6443", "::10.0.0.1:6443");
	/* no port written: none in the Host header, the scheme's to connect to; a path prefix stays */
	route_for("https://[fd00::1]/k8s/clusters/c-1", "api.example", KUBE_OK, "https://api.example/k8s/clusters/c-1",
	          "Host: [fd00::1]", "::[fd00::1]:443");
	route_for("https://lb.example:443", "fd00::2", KUBE_OK, "https://[fd00::2]:443", "Host: lb.example:443",
	          "::lb.example:443");
	/* nothing to change: no name, the same name, plain http (no TLS) */
	route_for("https://10.0.0.1:6443", NULL, KUBE_OK, NULL, NULL, NULL);
	route_for("https://API.example:6443", "api.example", KUBE_OK, NULL, NULL, NULL);
	route_for("http://127.0.0.1:8080", "api.example", KUBE_OK, NULL, NULL, NULL);
	/* not a host name: a configuration error, not a request elsewhere */
	route_for("https://10.0.0.1:6443", "evil.example/x", KUBE_ECONFIG, NULL, NULL, NULL);
	route_for("https://10.0.0.1:6443", "user@evil.example", KUBE_ECONFIG, NULL, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(eks_exec_plugin),
	    cmocka_unit_test(gke_and_contexts),
	    cmocka_unit_test(files_relative_to_kubeconfig),
	    cmocka_unit_test(malformed),
	    cmocka_unit_test(load_order_and_http_refusal),
	    cmocka_unit_test(exec_credential_parse),
	    cmocka_unit_test(exec_plugin_runs),
	    cmocka_unit_test(exec_plugin_bounded),
	    cmocka_unit_test(exec_plugin_not_reaped_by_others),
	    cmocka_unit_test(hostile_shapes),
	    cmocka_unit_test(base64),
	    cmocka_unit_test(tls_server_name_route),
	};
	log_init("test", LOG_TEXT, LOG_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
