/*
 * kubeconfig.c - resolve where and how to reach the API server, as client-go
 * does: --kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config.
 *
 * Errors name the file, the field and what is wrong: a user reading
 * "exit 78" in an init container's log must know what to fix.
 */
#include "kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "json.h"
#include "log.h"

#define KCFG_MAX_FILE (4u << 20)
#define KCFG_MAX_EXEC_OUT (1u << 20)
#define KCFG_EXEC_TIMEOUT_MS 60000

extern char **environ;

static int kfail(struct kube_error *err, enum kube_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int kfail(struct kube_error *err, enum kube_rc rc, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		memset(err, 0, sizeof(*err));
		err->rc = rc;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return rc;
}

int kcfg_read_file(const char *path, size_t cap, char **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, sz = 4096;
	char *buf;

	if (fd < 0)
		return -1;
	buf = malloc(sz);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 >= sz) {
			char *nb;
			if (sz > cap) {
				free(buf);
				close(fd);
				errno = EFBIG;
				return -1;
			}
			sz *= 2;
			nb = realloc(buf, sz);
			if (!nb) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return -1;
			}
			buf = nb;
		}
		n = read(fd, buf + len, sz - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > cap) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	if (outlen)
		*outlen = len;
	return 0;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int kcfg_b64decode(const char *in, size_t len, char **out, size_t *outlen)
{
	char *buf = malloc(len / 4 * 3 + 4);
	size_t i, n = 0;
	unsigned acc = 0;
	int bits = 0, pad = 0;

	if (!buf)
		return -1;
	for (i = 0; i < len; i++) {
		int v;
		unsigned char c = (unsigned char)in[i];

		if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		v = b64val(c);
		if (v < 0)
			goto bad;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (pad > 2 || bits >= 6)
		goto bad;
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
bad:
	free(buf);
	return -1;
}

static void strv_free(char **v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

void kcfg_free(struct kube_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->ca);
	free(cfg->cert);
	free(cfg->key);
	if (cfg->token)
		memset(cfg->token, 0, strlen(cfg->token));
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->username);
	if (cfg->password)
		memset(cfg->password, 0, strlen(cfg->password));
	free(cfg->password);
	free(cfg->proxy_url);
	free(cfg->tls_server_name);
	free(cfg->namespace);
	free(cfg->source);
	free(cfg->user_name);
	free(cfg->exec.api_version);
	free(cfg->exec.command);
	strv_free(cfg->exec.argv);
	strv_free(cfg->exec.env);
	free(cfg->exec.install_hint);
	memset(cfg, 0, sizeof(*cfg));
}

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* ---- YAML document navigation ---------------------------------------- */

struct ydoc {
	yaml_document_t doc;
	const char *path;
};

static yaml_node_t *ynode(struct ydoc *y, int idx) { return idx ? yaml_document_get_node(&y->doc, idx) : NULL; }

static yaml_node_t *ymap_get(struct ydoc *y, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = ynode(y, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
		    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
			return ynode(y, p->value);
	}
	return NULL;
}

/* Scalar value, or NULL (also for YAML null/empty). Borrowed, NUL-terminated. */
static const char *yscalar(yaml_node_t *n)
{
	const char *v;

	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	v = (const char *)n->data.scalar.value;
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (strcmp(v, "null") == 0 || strcmp(v, "~") == 0))
		return NULL;
	return v;
}

static int ybool(yaml_node_t *n)
{
	const char *v = yscalar(n);
	return v && (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0);
}

/* Find the entry of a named list (clusters/users/contexts) with this name. */
static yaml_node_t *ynamed(struct ydoc *y, yaml_node_t *root, const char *list, const char *name, const char *inner)
{
	yaml_node_t *seq = ymap_get(y, root, list);
	yaml_node_item_t *it;

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *e = ynode(y, *it);
		const char *n = yscalar(ymap_get(y, e, "name"));
		if (n && strcmp(n, name) == 0) {
			yaml_node_t *in = ymap_get(y, e, inner);
			return in ? in : e; /* an entry without body still "exists" */
		}
	}
	return NULL;
}

static void ynames(struct ydoc *y, yaml_node_t *root, const char *list, char *buf, size_t len)
{
	yaml_node_t *seq = ymap_get(y, root, list);
	yaml_node_item_t *it;
	size_t n = 0;

	buf[0] = '\0';
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return;
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top && n < len; it++) {
		const char *nm = yscalar(ymap_get(y, ynode(y, *it), "name"));
		if (nm)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", nm);
	}
}

/* Resolve a path relative to the kubeconfig's directory (client-go rule). */
static char *kcfg_resolve(const char *cfgpath, const char *p)
{
	const char *slash;

	if (p[0] == '/' || !cfgpath)
		return strdup(p);
	slash = strrchr(cfgpath, '/');
	if (!slash)
		return strdup(p);
	return xasprintf("%.*s/%s", (int)(slash - cfgpath), cfgpath, p);
}

/*
 * One of "<field>-data" (base64) or "<field>" (a file) into *out.
 * Returns 0 (also when neither is set), or a KUBE_ECONFIG error.
 */
static int kcfg_blob(struct ydoc *y, yaml_node_t *m, const char *field, const char *owner, char **out, size_t *outlen,
                     struct kube_error *err)
{
	char key[64];
	const char *data, *file;

	snprintf(key, sizeof(key), "%s-data", field);
	data = yscalar(ymap_get(y, m, key));
	file = yscalar(ymap_get(y, m, field));
	if (data && *data) {
		if (kcfg_b64decode(data, strlen(data), out, outlen) < 0)
			return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s: %s is not valid base64", y->path, owner,
			             key);
		if (*outlen == 0)
			return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s: %s is empty", y->path, owner, key);
		return 0;
	}
	if (file && *file) {
		char *p = kcfg_resolve(y->path, file);
		int rc = p ? kcfg_read_file(p, KCFG_MAX_FILE, out, outlen) : -1;
		if (rc < 0) {
			kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s: %s %s: %s", y->path, owner, field, p ? p : file,
			      strerror(errno));
			free(p);
			return KUBE_ECONFIG;
		}
		free(p);
	}
	return 0;
}

static int kcfg_exec_parse(struct ydoc *y, yaml_node_t *ex, const char *owner, struct kube_config *cfg,
                           struct kube_error *err)
{
	yaml_node_t *args = ymap_get(y, ex, "args");
	yaml_node_t *env = ymap_get(y, ex, "env");
	const char *cmd = yscalar(ymap_get(y, ex, "command"));
	const char *api = yscalar(ymap_get(y, ex, "apiVersion"));
	size_t nargs = 0, nenv = 0, i;
	yaml_node_item_t *it;

	if (!cmd || !*cmd)
		return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s: exec.command is missing", y->path, owner);
	if (!api)
		api = "client.authentication.k8s.io/v1beta1";
	if (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
	    strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)
		return kfail(err, KUBE_ECONFIG,
		             "kubeconfig %s: %s: exec.apiVersion \"%s\" is not supported "
		             "(client.authentication.k8s.io/v1 or v1beta1)",
		             y->path, owner, api);
	if (args && args->type == YAML_SEQUENCE_NODE)
		nargs = (size_t)(args->data.sequence.items.top - args->data.sequence.items.start);
	else if (args && yscalar(args))
		return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s: exec.args must be a list", y->path, owner);
	if (env && env->type == YAML_SEQUENCE_NODE)
		nenv = (size_t)(env->data.sequence.items.top - env->data.sequence.items.start);
	cfg->has_exec = 1;
	cfg->exec.api_version = strdup(api);
	/* a command with a slash is a path relative to the kubeconfig */
	cfg->exec.command = strchr(cmd, '/') ? kcfg_resolve(y->path, cmd) : strdup(cmd);
	cfg->exec.argv = calloc(nargs + 2, sizeof(char *));
	cfg->exec.env = calloc(nenv + 1, sizeof(char *));
	if (!cfg->exec.api_version || !cfg->exec.command || !cfg->exec.argv || !cfg->exec.env)
		return kfail(err, KUBE_ENOMEM, "out of memory");
	cfg->exec.argv[0] = strdup(cfg->exec.command);
	for (i = 1, it = args ? args->data.sequence.items.start : NULL; it && i <= nargs; it++, i++) {
		const char *a = yscalar(ynode(y, *it));
		cfg->exec.argv[i] = strdup(a ? a : "");
	}
	for (i = 0, it = env ? env->data.sequence.items.start : NULL; it && i < nenv; it++) {
		yaml_node_t *e = ynode(y, *it);
		const char *n = yscalar(ymap_get(y, e, "name"));
		const char *v = yscalar(ymap_get(y, e, "value"));
		if (!n || !*n)
			return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s: exec.env entry without a name", y->path,
			             owner);
		cfg->exec.env[i++] = xasprintf("%s=%s", n, v ? v : "");
	}
	cfg->exec.install_hint = xstrdup(yscalar(ymap_get(y, ex, "installHint")));
	return 0;
}

int kcfg_parse(const char *text, size_t len, const char *path, const char *context, struct kube_config *cfg,
               struct kube_error *err)
{
	yaml_parser_t parser;
	struct ydoc y;
	yaml_node_t *root, *ctx, *cluster, *user;
	const char *ctx_name, *cluster_name, *user_name, *server, *ns;
	char names[256], owner[320];
	int rc = KUBE_ECONFIG;

	memset(cfg, 0, sizeof(*cfg));
	y.path = path;
	if (!yaml_parser_initialize(&parser))
		return kfail(err, KUBE_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &y.doc)) {
		kfail(err, KUBE_ECONFIG, "kubeconfig %s: invalid YAML at line %lu: %s", path,
		      (unsigned long)parser.problem_mark.line + 1, parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return KUBE_ECONFIG;
	}
	yaml_parser_delete(&parser);
	root = yaml_document_get_root_node(&y.doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		kfail(err, KUBE_ECONFIG,
		      "kubeconfig %s: not a kubeconfig (expected a mapping with clusters, users, contexts)", path);
		goto out;
	}
	ctx_name = context ? context : yscalar(ymap_get(&y, root, "current-context"));
	if (!ctx_name || !*ctx_name) {
		ynames(&y, root, "contexts", names, sizeof(names));
		kfail(err, KUBE_ECONFIG, "kubeconfig %s: no current-context is set; pass --context (available: %s)",
		      path, *names ? names : "none");
		goto out;
	}
	ctx = ynamed(&y, root, "contexts", ctx_name, "context");
	if (!ctx) {
		ynames(&y, root, "contexts", names, sizeof(names));
		kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\" not found (available: %s)", path, ctx_name,
		      *names ? names : "none");
		goto out;
	}
	cluster_name = yscalar(ymap_get(&y, ctx, "cluster"));
	user_name = yscalar(ymap_get(&y, ctx, "user"));
	ns = yscalar(ymap_get(&y, ctx, "namespace"));
	if (!cluster_name) {
		kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\" names no cluster", path, ctx_name);
		goto out;
	}
	cluster = ynamed(&y, root, "clusters", cluster_name, "cluster");
	if (!cluster) {
		kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\": cluster \"%s\" not found", path, ctx_name,
		      cluster_name);
		goto out;
	}
	server = yscalar(ymap_get(&y, cluster, "server"));
	if (!server || !*server) {
		kfail(err, KUBE_ECONFIG, "kubeconfig %s: cluster \"%s\": server is missing", path, cluster_name);
		goto out;
	}
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
		kfail(err, KUBE_ECONFIG,
		      "kubeconfig %s: cluster \"%s\": server \"%s\" must start with https:// (or http://)", path,
		      cluster_name, server);
		goto out;
	}
	cfg->server = strdup(server);
	while (cfg->server && *cfg->server && cfg->server[strlen(cfg->server) - 1] == '/')
		cfg->server[strlen(cfg->server) - 1] = '\0';
	cfg->insecure = ybool(ymap_get(&y, cluster, "insecure-skip-tls-verify"));
	cfg->proxy_url = xstrdup(yscalar(ymap_get(&y, cluster, "proxy-url")));
	cfg->tls_server_name = xstrdup(yscalar(ymap_get(&y, cluster, "tls-server-name")));
	snprintf(owner, sizeof(owner), "cluster \"%s\"", cluster_name);
	if ((rc = kcfg_blob(&y, cluster, "certificate-authority", owner, &cfg->ca, &cfg->ca_len, err)) != 0)
		goto out;
	rc = KUBE_ECONFIG;
	if (cfg->insecure && cfg->ca) {
		kfail(err, KUBE_ECONFIG,
		      "kubeconfig %s: cluster \"%s\": certificate-authority and insecure-skip-tls-verify are both set; "
		      "remove one",
		      path, cluster_name);
		goto out;
	}

	if (user_name) {
		yaml_node_t *ex, *ap;
		const char *tok, *tf;

		user = ynamed(&y, root, "users", user_name, "user");
		if (!user) {
			kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\": user \"%s\" not found", path, ctx_name,
			      user_name);
			goto out;
		}
		snprintf(owner, sizeof(owner), "user \"%s\"", user_name);
		cfg->user_name = strdup(user_name);
		if ((rc = kcfg_blob(&y, user, "client-certificate", owner, &cfg->cert, &cfg->cert_len, err)) != 0 ||
		    (rc = kcfg_blob(&y, user, "client-key", owner, &cfg->key, &cfg->key_len, err)) != 0)
			goto out;
		rc = KUBE_ECONFIG;
		if (!!cfg->cert != !!cfg->key) {
			kfail(err, KUBE_ECONFIG,
			      "kubeconfig %s: %s: client-certificate and client-key must be set together", path, owner);
			goto out;
		}
		tok = yscalar(ymap_get(&y, user, "token"));
		tf = yscalar(ymap_get(&y, user, "tokenFile"));
		if (tok && *tok)
			cfg->token = strdup(tok);
		else if (tf && *tf)
			cfg->token_file = kcfg_resolve(path, tf);
		cfg->username = xstrdup(yscalar(ymap_get(&y, user, "username")));
		cfg->password = xstrdup(yscalar(ymap_get(&y, user, "password")));
		ap = ymap_get(&y, user, "auth-provider");
		if (ap) {
			const char *apn = yscalar(ymap_get(&y, ap, "name"));
			kfail(err, KUBE_ECONFIG,
			      "kubeconfig %s: %s: auth-provider \"%s\" was removed from Kubernetes clients; "
			      "use an exec credential plugin (e.g. gke-gcloud-auth-plugin, kubelogin)",
			      path, owner, apn ? apn : "?");
			goto out;
		}
		ex = ymap_get(&y, user, "exec");
		if (ex && ex->type == YAML_MAPPING_NODE) {
			if ((rc = kcfg_exec_parse(&y, ex, owner, cfg, err)) != 0)
				goto out;
			rc = KUBE_ECONFIG;
		}
	}
	cfg->namespace = strdup(ns && *ns ? ns : "default");
	cfg->source = xasprintf("kubeconfig %s (context %s)", path, ctx_name);
	if (!cfg->server || !cfg->namespace || !cfg->source) {
		rc = kfail(err, KUBE_ENOMEM, "out of memory");
		goto out;
	}
	rc = KUBE_OK;
out:
	yaml_document_delete(&y.doc);
	if (rc != KUBE_OK)
		kcfg_free(cfg);
	return rc;
}

static int kcfg_load_file(const char *path, const char *context, struct kube_config *cfg, struct kube_error *err)
{
	char *text;
	size_t len;
	int rc;

	if (kcfg_read_file(path, KCFG_MAX_FILE, &text, &len) < 0)
		return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s", path, strerror(errno));
	rc = kcfg_parse(text, len, path, context, cfg, err);
	free(text);
	return rc;
}

static int kcfg_in_cluster(struct kube_config *cfg, struct kube_error *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *ns = NULL;
	size_t len;
	int v6 = strchr(host, ':') != NULL, rc;

	memset(cfg, 0, sizeof(*cfg));
	if (!*host || !port || !*port)
		return kfail(err, KUBE_ECONFIG,
		             "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set");
	if (kcfg_read_file(KCFG_SA_DIR "/ca.crt", KCFG_MAX_FILE, &cfg->ca, &cfg->ca_len) < 0) {
		rc = kfail(err, KUBE_ECONFIG,
		           "in-cluster: cannot read %s/ca.crt: %s (is automountServiceAccountToken disabled?)",
		           KCFG_SA_DIR, strerror(errno));
		goto fail;
	}
	if (access(KCFG_SA_DIR "/token", R_OK) != 0) {
		rc = kfail(err, KUBE_ECONFIG,
		           "in-cluster: cannot read %s/token: %s (is automountServiceAccountToken disabled?)",
		           KCFG_SA_DIR, strerror(errno));
		goto fail;
	}
	if (kcfg_read_file(KCFG_SA_DIR "/namespace", 4096, &ns, &len) == 0) {
		while (len && (ns[len - 1] == '\n' || ns[len - 1] == ' '))
			ns[--len] = '\0';
	}
	cfg->namespace = ns && *ns ? ns : strdup("default");
	if (ns && !*ns)
		free(ns);
	cfg->token_file = strdup(KCFG_SA_DIR "/token");
	/* IPv6 service hosts need brackets (client-go net.JoinHostPort) */
	cfg->server = xasprintf("https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
	cfg->source = strdup("in-cluster service account");
	cfg->in_cluster = 1;
	if (!cfg->namespace || !cfg->token_file || !cfg->server || !cfg->source) {
		rc = kfail(err, KUBE_ENOMEM, "out of memory");
		goto fail;
	}
	return KUBE_OK;
fail:
	kcfg_free(cfg);
	return rc;
}

int kcfg_load(const struct kube_conn_opts *opts, struct kube_config *cfg, struct kube_error *err)
{
	const char *env = getenv("KUBECONFIG");
	const char *home = getenv("HOME");
	const char *context = opts ? opts->context : NULL;
	int rc;

	if (opts && opts->kubeconfig) {
		rc = kcfg_load_file(opts->kubeconfig, context, cfg, err);
	} else if (env && *env) {
		/* a list like PATH: use the first file that exists (no merging) */
		char first[4096];
		const char *p = env;
		int found = 0;

		while (*p && !found) {
			const char *c = strchr(p, ':');
			size_t n = c ? (size_t)(c - p) : strlen(p);
			if (n && n < sizeof(first)) {
				memcpy(first, p, n);
				first[n] = '\0';
				if (access(first, F_OK) == 0)
					found = 1;
			}
			p += n + (c ? 1 : 0);
		}
		if (!found)
			return kfail(err, KUBE_ECONFIG, "KUBECONFIG=%s: no such file", env);
		rc = kcfg_load_file(first, context, cfg, err);
	} else if (getenv("KUBERNETES_SERVICE_HOST") && getenv("KUBERNETES_SERVICE_PORT")) {
		if (context)
			return kfail(err, KUBE_ECONFIG,
			             "--context needs a kubeconfig; running in-cluster there is none");
		rc = kcfg_in_cluster(cfg, err);
	} else {
		char path[4096];

		if (!home || !*home)
			return kfail(
			    err, KUBE_ENOCONFIG,
			    "no Kubernetes configuration: not in a cluster, no --kubeconfig, no $KUBECONFIG, no $HOME");
		snprintf(path, sizeof(path), "%s/.kube/config", home);
		if (access(path, F_OK) != 0)
			return kfail(err, KUBE_ENOCONFIG,
			             "no Kubernetes configuration: not in a cluster (KUBERNETES_SERVICE_HOST unset), "
			             "no --kubeconfig, no $KUBECONFIG and no %s",
			             path);
		rc = kcfg_load_file(path, context, cfg, err);
	}
	if (rc != KUBE_OK)
		return rc;
	if (opts && opts->namespace) {
		free(cfg->namespace);
		cfg->namespace = strdup(opts->namespace);
	}
	if (strncmp(cfg->server, "http://", 7) == 0 &&
	    (cfg->token || cfg->token_file || cfg->has_exec || cfg->password)) {
		kfail(err, KUBE_ECONFIG, "%s: refusing to send credentials over plain http to %s; use https",
		      cfg->source, cfg->server);
		kcfg_free(cfg);
		return KUBE_ECONFIG;
	}
	return KUBE_OK;
}

/* ---- ExecCredential ---------------------------------------------------- */

int kcfg_parse_exec_credential(const char *json, size_t len, char **token, char **cert, char **key, int64_t *expiry_ms,
                               char *err, size_t errlen)
{
	cJSON *j = json_parse(json, len);
	const char *kind, *api, *t, *c, *k, *exp;
	int rc = -1;

	*token = *cert = *key = NULL;
	*expiry_ms = 0;
	if (!j) {
		snprintf(err, errlen, "output is not valid JSON");
		return -1;
	}
	kind = json_str(j, "kind");
	api = json_str(j, "apiVersion");
	if (!kind || strcmp(kind, "ExecCredential") != 0) {
		snprintf(err, errlen, "output is not an ExecCredential (kind \"%s\")", kind ? kind : "");
		goto out;
	}
	if (!api || (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
	             strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)) {
		snprintf(err, errlen, "ExecCredential apiVersion \"%s\" is not supported", api ? api : "");
		goto out;
	}
	t = json_str(j, "status.token");
	c = json_str(j, "status.clientCertificateData");
	k = json_str(j, "status.clientKeyData");
	exp = json_str(j, "status.expirationTimestamp");
	if (!(t && *t) && !(c && *c && k && *k)) {
		snprintf(err, errlen,
		         "ExecCredential has neither status.token nor clientCertificateData+clientKeyData");
		goto out;
	}
	if ((c && *c) != (k && *k)) {
		snprintf(err, errlen, "ExecCredential has only one of clientCertificateData and clientKeyData");
		goto out;
	}
	if (exp && json_parse_time(exp, expiry_ms) < 0) {
		snprintf(err, errlen, "ExecCredential status.expirationTimestamp \"%.40s\" is not RFC 3339", exp);
		goto out;
	}
	if (t && *t)
		*token = strdup(t);
	if (c && *c) {
		*cert = strdup(c);
		*key = strdup(k);
	}
	rc = 0;
out:
	cJSON_Delete(j);
	return rc;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kcfg_run_exec(const struct kube_config *cfg, char **token, char **cert, char **key, int64_t *expiry_ms,
                  struct kube_error *err)
{
	int pfd[2];
	pid_t pid;
	char *out = NULL, info[256], perr[256];
	size_t len = 0, cap = 0;
	int status = 0, timed_out = 0;
	int64_t deadline = mono_ms() + KCFG_EXEC_TIMEOUT_MS;
	const char *api = cfg->exec.api_version;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return kfail(err, KUBE_ECONFIG, "exec plugin %s: pipe: %s", cfg->exec.command, strerror(errno));
	snprintf(
	    info, sizeof(info),
	    "KUBERNETES_EXEC_INFO={\"kind\":\"ExecCredential\",\"apiVersion\":\"%s\",\"spec\":{\"interactive\":false}}",
	    api);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return kfail(err, KUBE_ECONFIG, "exec plugin %s: fork: %s", cfg->exec.command, strerror(errno));
	}
	if (pid == 0) {
		size_t i;
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0); /* never interactive */
		dup2(pfd[1], 1);
		putenv(info);
		for (i = 0; cfg->exec.env[i]; i++)
			putenv(cfg->exec.env[i]);
		execvp(cfg->exec.command, cfg->exec.argv);
		fprintf(stderr, "%s: exec plugin %s: %s\n", log_prog(), cfg->exec.command, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (len + 4096 + 1 > cap) {
			char *nb;
			if (cap >= KCFG_MAX_EXEC_OUT) {
				kill(pid, SIGKILL);
				break;
			}
			cap = cap ? cap * 2 : 8192;
			nb = realloc(out, cap);
			if (!nb)
				break;
			out = nb;
		}
		n = read(pfd[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		free(out);
		return kfail(err, KUBE_ECONFIG, "exec plugin %s did not finish within %d s", cfg->exec.command,
		             KCFG_EXEC_TIMEOUT_MS / 1000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(out);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return kfail(err, KUBE_ECONFIG, "exec plugin %s could not be run%s%s", cfg->exec.command,
			             cfg->exec.install_hint ? ": " : "",
			             cfg->exec.install_hint ? cfg->exec.install_hint : "");
		return kfail(err, KUBE_ECONFIG, "exec plugin %s failed (%s %d)", cfg->exec.command,
		             WIFEXITED(status) ? "exit status" : "signal",
		             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	if (!out) {
		return kfail(err, KUBE_ECONFIG, "exec plugin %s printed nothing", cfg->exec.command);
	}
	out[len] = '\0';
	if (kcfg_parse_exec_credential(out, len, token, cert, key, expiry_ms, perr, sizeof(perr)) < 0) {
		free(out);
		return kfail(err, KUBE_ECONFIG, "exec plugin %s: %s", cfg->exec.command, perr);
	}
	memset(out, 0, len);
	free(out);
	return KUBE_OK;
}
