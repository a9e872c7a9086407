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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "json.h"
#include "log.h"

#define KCFG_MAX_FILE (4u << 20)
#define KCFG_MAX_EXEC_OUT (1u << 20)
#define KCFG_EXEC_TIMEOUT_MS 60000
#define KCFG_MAX_DEPTH 64

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

/*
 * Open a file we are about to read whole: a FIFO, a device or a directory
 * given as CA, key, token or kubeconfig path would block forever or never
 * end (issue 15 item 10), so only regular files (after symlinks, as the
 * kubelet's ..data links) are accepted; O_NONBLOCK makes the open itself
 * return at once for a FIFO without a writer.
 */
static int open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

const char *kcfg_file_error(int e) { return e == EINVAL ? "not a regular file" : strerror(e); }

int kcfg_read_file(const char *path, size_t cap, char **out, size_t *outlen)
{
	int fd = open_regular(path);
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
			      kcfg_file_error(errno));
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
	if (!cfg->exec.argv[0])
		return kfail(err, KUBE_ENOMEM, "out of memory");
	for (i = 1, it = args ? args->data.sequence.items.start : NULL; it && i <= nargs; it++, i++) {
		const char *a = yscalar(ynode(y, *it));
		if (!(cfg->exec.argv[i] = strdup(a ? a : "")))
			return kfail(err, KUBE_ENOMEM, "out of memory");
	}
	for (i = 0, it = env ? env->data.sequence.items.start : NULL; it && i < nenv; it++) {
		yaml_node_t *e = ynode(y, *it);
		const char *n = yscalar(ymap_get(y, e, "name"));
		const char *v = yscalar(ymap_get(y, e, "value"));
		if (!n || !*n)
			return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s: exec.env entry without a name", y->path,
			             owner);
		if (!(cfg->exec.env[i++] = xasprintf("%s=%s", n, v ? v : "")))
			return kfail(err, KUBE_ENOMEM, "out of memory");
	}
	cfg->exec.install_hint = xstrdup(yscalar(ymap_get(y, ex, "installHint")));
	return 0;
}

/*
 * libyaml has no nesting limit and its scanner is quadratic in the depth
 * (100k levels of "- - - ..." took 31 s): walk the events first and stop
 * at KCFG_MAX_DEPTH, long before it costs anything. A kubeconfig is 5 deep.
 */
static int yaml_depth_ok(const char *text, size_t len, const char *path, struct kube_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, rc = 0, done = 0;

	if (!yaml_parser_initialize(&parser))
		return kfail(err, KUBE_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && !rc) {
		if (!yaml_parser_parse(&parser, &ev))
			break; /* the loader reports the syntax error with its line */
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (depth > KCFG_MAX_DEPTH)
			rc = kfail(err, KUBE_ECONFIG, "kubeconfig %s: nested deeper than %d levels at line %lu", path,
			           KCFG_MAX_DEPTH, (unsigned long)parser.mark.line + 1);
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* Load the first YAML document of text into y->doc. */
static int ydoc_load(struct ydoc *y, const char *text, size_t len, struct kube_error *err)
{
	yaml_parser_t parser;
	int rc;

	if ((rc = yaml_depth_ok(text, len, y->path, err)) != 0)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return kfail(err, KUBE_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &y->doc)) {
		kfail(err, KUBE_ECONFIG, "kubeconfig %s: invalid YAML at line %lu: %s", y->path,
		      (unsigned long)parser.problem_mark.line + 1, parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return KUBE_ECONFIG;
	}
	yaml_parser_delete(&parser);
	return 0;
}

/* The server URL of a cluster: http(s), no credentials in it (issue 15 item 12). */
static int kcfg_server(struct ydoc *y, yaml_node_t *cluster, const char *cluster_name, struct kube_config *cfg,
                       struct kube_error *err)
{
	const char *server = yscalar(ymap_get(y, cluster, "server"));
	const char *host, *end;

	if (!server || !*server)
		return kfail(err, KUBE_ECONFIG, "kubeconfig %s: cluster \"%s\": server is missing", y->path,
		             cluster_name);
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		return kfail(err, KUBE_ECONFIG,
		             "kubeconfig %s: cluster \"%s\": server must start with https:// (or http://)", y->path,
		             cluster_name);
	host = strstr(server, "://") + 3;
	end = host + strcspn(host, "/?#");
	/* never echo the URL: it may hold a password */
	if (memchr(host, '@', (size_t)(end - host)))
		return kfail(err, KUBE_ECONFIG,
		             "kubeconfig %s: cluster \"%s\": the server URL contains credentials (user:password@); "
		             "remove them and authenticate with the user's token, client certificate or username and "
		             "password",
		             y->path, cluster_name);
	cfg->server = strdup(server);
	if (!cfg->server)
		return kfail(err, KUBE_ENOMEM, "out of memory");
	while (*cfg->server && cfg->server[strlen(cfg->server) - 1] == '/')
		cfg->server[strlen(cfg->server) - 1] = '\0';
	return 0;
}

static int kcfg_cluster(struct ydoc *y, yaml_node_t *cluster, const char *cluster_name, struct kube_config *cfg,
                        struct kube_error *err)
{
	char owner[320];
	int rc;

	if ((rc = kcfg_server(y, cluster, cluster_name, cfg, err)) != 0)
		return rc;
	cfg->insecure = ybool(ymap_get(y, cluster, "insecure-skip-tls-verify"));
	cfg->proxy_url = xstrdup(yscalar(ymap_get(y, cluster, "proxy-url")));
	cfg->tls_server_name = xstrdup(yscalar(ymap_get(y, cluster, "tls-server-name")));
	snprintf(owner, sizeof(owner), "cluster \"%s\"", cluster_name);
	if ((rc = kcfg_blob(y, cluster, "certificate-authority", owner, &cfg->ca, &cfg->ca_len, err)) != 0)
		return rc;
	if (cfg->insecure && cfg->ca)
		return kfail(err, KUBE_ECONFIG,
		             "kubeconfig %s: cluster \"%s\": certificate-authority and insecure-skip-tls-verify are "
		             "both set; remove one",
		             y->path, cluster_name);
	return 0;
}

static int kcfg_user(struct ydoc *y, yaml_node_t *root, const char *ctx_name, const char *user_name,
                     struct kube_config *cfg, struct kube_error *err)
{
	yaml_node_t *user = ynamed(y, root, "users", user_name, "user"), *ex, *ap;
	const char *tok, *tf;
	char owner[320];
	int rc;

	if (!user)
		return kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\": user \"%s\" not found", y->path,
		             ctx_name, user_name);
	snprintf(owner, sizeof(owner), "user \"%s\"", user_name);
	cfg->user_name = strdup(user_name);
	if ((rc = kcfg_blob(y, user, "client-certificate", owner, &cfg->cert, &cfg->cert_len, err)) != 0 ||
	    (rc = kcfg_blob(y, user, "client-key", owner, &cfg->key, &cfg->key_len, err)) != 0)
		return rc;
	if (!!cfg->cert != !!cfg->key)
		return kfail(err, KUBE_ECONFIG,
		             "kubeconfig %s: %s: client-certificate and client-key must be set together", y->path,
		             owner);
	tok = yscalar(ymap_get(y, user, "token"));
	tf = yscalar(ymap_get(y, user, "tokenFile"));
	if (tok && *tok)
		cfg->token = strdup(tok);
	else if (tf && *tf)
		cfg->token_file = kcfg_resolve(y->path, tf);
	cfg->username = xstrdup(yscalar(ymap_get(y, user, "username")));
	cfg->password = xstrdup(yscalar(ymap_get(y, user, "password")));
	ap = ymap_get(y, user, "auth-provider");
	if (ap) {
		const char *apn = yscalar(ymap_get(y, ap, "name"));
		return kfail(err, KUBE_ECONFIG,
		             "kubeconfig %s: %s: auth-provider \"%s\" was removed from Kubernetes clients; "
		             "use an exec credential plugin (e.g. gke-gcloud-auth-plugin, kubelogin)",
		             y->path, owner, apn ? apn : "?");
	}
	ex = ymap_get(y, user, "exec");
	if (ex && ex->type == YAML_MAPPING_NODE)
		return kcfg_exec_parse(y, ex, owner, cfg, err);
	if ((tok && *tok && !cfg->token) || (tf && *tf && !cfg->token_file) || !cfg->user_name)
		return kfail(err, KUBE_ENOMEM, "out of memory");
	return 0;
}

/* The context to use: its cluster entry and names. */
static int kcfg_context(struct ydoc *y, yaml_node_t *root, const char *context, const char **ctx_name,
                        yaml_node_t **ctx, struct kube_error *err)
{
	char names[256];

	*ctx_name = context ? context : yscalar(ymap_get(y, root, "current-context"));
	if (!*ctx_name || !**ctx_name) {
		ynames(y, root, "contexts", names, sizeof(names));
		return kfail(err, KUBE_ECONFIG,
		             "kubeconfig %s: no current-context is set; pass --context (available: %s)", y->path,
		             *names ? names : "none");
	}
	*ctx = ynamed(y, root, "contexts", *ctx_name, "context");
	if (!*ctx) {
		ynames(y, root, "contexts", names, sizeof(names));
		return kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\" not found (available: %s)", y->path,
		             *ctx_name, *names ? names : "none");
	}
	return 0;
}

int kcfg_parse(const char *text, size_t len, const char *path, const char *context, struct kube_config *cfg,
               struct kube_error *err)
{
	struct ydoc y;
	yaml_node_t *root, *ctx, *cluster;
	const char *ctx_name, *cluster_name, *user_name, *ns;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	memset(&y, 0, sizeof(y));
	y.path = path;
	if ((rc = ydoc_load(&y, text, len, err)) != 0)
		return rc;
	rc = KUBE_ECONFIG;
	root = yaml_document_get_root_node(&y.doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		kfail(err, KUBE_ECONFIG,
		      "kubeconfig %s: not a kubeconfig (expected a mapping with clusters, users, contexts)", path);
		goto out;
	}
	if ((rc = kcfg_context(&y, root, context, &ctx_name, &ctx, err)) != 0)
		goto out;
	cluster_name = yscalar(ymap_get(&y, ctx, "cluster"));
	user_name = yscalar(ymap_get(&y, ctx, "user"));
	ns = yscalar(ymap_get(&y, ctx, "namespace"));
	cluster = cluster_name ? ynamed(&y, root, "clusters", cluster_name, "cluster") : NULL;
	if (!cluster) {
		rc = cluster_name
		         ? kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\": cluster \"%s\" not found", path,
		                 ctx_name, cluster_name)
		         : kfail(err, KUBE_ECONFIG, "kubeconfig %s: context \"%s\" names no cluster", path, ctx_name);
		goto out;
	}
	if ((rc = kcfg_cluster(&y, cluster, cluster_name, cfg, err)) != 0)
		goto out;
	if (user_name && (rc = kcfg_user(&y, root, ctx_name, user_name, cfg, err)) != 0)
		goto out;
	cfg->namespace = strdup(ns && *ns ? ns : "default");
	cfg->source = xasprintf("kubeconfig %s (context %s)", path, ctx_name);
	rc = cfg->namespace && cfg->source ? KUBE_OK : kfail(err, KUBE_ENOMEM, "out of memory");
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
		return kfail(err, KUBE_ECONFIG, "kubeconfig %s: %s", path, kcfg_file_error(errno));
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
		           KCFG_SA_DIR, kcfg_file_error(errno));
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
		if (!cfg->namespace) {
			kcfg_free(cfg);
			return kfail(err, KUBE_ENOMEM, "out of memory");
		}
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

/*
 * What the plugin's process needs, all prepared before it exists: its
 * environment (ours, KUBERNETES_EXEC_INFO and the kubeconfig's env entries
 * replacing same-named ones), /dev/null for stdin, the pipe's write end.
 */
struct exec_child_args {
	const char *command;
	char *const *argv;
	char **envp;
	int devnull, out_fd;
};

/* "NAME=..." entries a and b set the same variable. */
static int same_name(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");
	return strncmp(a, b, n) == 0 && (b[n] == '=' || b[n] == '\0');
}

static char **exec_envp(const struct kube_config *cfg, char *info)
{
	extern char **environ;
	size_t n = 0, k = 0, i, j;
	char **e;

	while (environ[n])
		n++;
	while (cfg->exec.env[k])
		k++;
	if (!(e = calloc(n + k + 2, sizeof(*e))))
		return NULL;
	for (i = 0, j = 0; i < n; i++) {
		size_t m;
		int replaced = same_name(environ[i], info);
		for (m = 0; m < k && !replaced; m++)
			replaced = same_name(environ[i], cfg->exec.env[m]);
		if (!replaced)
			e[j++] = environ[i];
	}
	e[j++] = info;
	for (i = 0; i < k; i++)
		e[j++] = cfg->exec.env[i];
	return e;
}

/*
 * The plugin's side. exec_clone gave it its process group (so a timeout
 * can kill whatever it started), stdin from /dev/null (never interactive),
 * stdout into our pipe, and no other descriptor of ours: libcurl's sockets
 * and anything a binary opened must not leak into a third-party program
 * (issue 15 item 9). Here it starts as a fresh process would:
 * migrate-runner blocks every signal (its signalfd) and all three ignore
 * SIGPIPE, and both survive exec; a plugin or a helper it leaves behind
 * would otherwise shrug off a plain kill.
 *
 * It runs in a copy of a possibly multi-threaded process made by raw
 * clones, without fork()'s re-initialisation of the C library: only
 * system calls and execve from here (no malloc, no stdio locks), on what
 * the parent prepared.
 */
static void exec_child(const struct exec_child_args *a) __attribute__((noreturn));
static void exec_child(const struct exec_child_args *a)
{
	static const char msg[] = ": exec plugin ";
	struct sigaction dfl;
	sigset_t none;
	int e;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL);
	execvpe(a->command, a->argv, a->envp);
	e = errno;
	/* exit 127 says "could not be run"; the reason on stderr, without stdio */
	if (write(2, log_prog(), strlen(log_prog())) >= 0 && write(2, msg, sizeof(msg) - 1) >= 0 &&
	    write(2, a->command, strlen(a->command)) >= 0 && write(2, ": ", 2) >= 0)
		(void)!write(2, strerror(e), strlen(strerror(e)));
	(void)!write(2, "\n", 1);
	_exit(127);
}

/*
 * Start the plugin under a child whose exit raises no signal (a clone
 * with exit signal 0): waitpid(-1) and wait() leave that child alone, only
 * a wait with __WALL for its pid collects it. migrate-runner, as PID 1,
 * reaps every child with waitpid(-1) on its main thread while its lock
 * keeper runs a plugin on another: a plainly forked plugin was reaped
 * there, and its exit status lost. The child never execs (the kernel
 * turns the exit signal of a child that has exec'd back into SIGCHLD): it
 * forks the plugin, waits for it and ends the same way, exit status or
 * signal. Both are in the child's process group. Returns the child's pid,
 * or -1 with errno.
 */
static pid_t exec_clone(const struct exec_child_args *a)
{
	long pid = syscall(SYS_clone, 0UL, NULL, NULL, NULL, NULL);
	struct sigaction dfl;
	sigset_t none;
	long plugin;
	int st, fd;

	if (pid != 0)
		return (pid_t)pid;
	setpgid(0, 0);
	if (a->devnull >= 0)
		dup2(a->devnull, 0);
	dup2(a->out_fd, 1);
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
		for (fd = 3; fd < 65536; fd++)
			close(fd);
	plugin = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
	if (plugin == 0)
		exec_child(a);
	if (plugin < 0)
		_exit(127);
	while (waitpid((pid_t)plugin, &st, 0) < 0)
		if (errno != EINTR)
			_exit(127);
	if (WIFSIGNALED(st)) {
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(WTERMSIG(st), &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		kill((pid_t)syscall(SYS_getpid), WTERMSIG(st));
		_exit(128 + WTERMSIG(st));
	}
	_exit(WEXITSTATUS(st));
}

/* waitpid for the plugin: a clone child needs __WALL. */
static pid_t exec_wait(pid_t pid, int *status, int flags)
{
	pid_t w;
	while ((w = waitpid(pid, status, flags | __WALL)) < 0 && errno == EINTR)
		;
	return w;
}

/* Read what the pipe holds now. Returns 1 at EOF, 0 otherwise. */
static int exec_drain(int fd, struct kcfg_exec_out *o)
{
	for (;;) {
		ssize_t n;

		if (o->len + 4096 + 1 > o->cap) {
			size_t nc = o->cap ? o->cap * 2 : 8192;
			char *nb;
			if (nc > KCFG_MAX_EXEC_OUT + 8192 || !(nb = realloc(o->buf, nc))) {
				o->toobig = 1;
				return 1;
			}
			o->buf = nb;
			o->cap = nc;
		}
		n = read(fd, o->buf + o->len, o->cap - o->len - 1);
		if (n > 0) {
			o->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n == 0 || errno != EAGAIN;
	}
}

/*
 * One step of collecting the plugin's stdout: wait up to wait_ms for
 * output, notice its exit. The pipe is non-blocking and every wait is
 * bounded, so a plugin that hangs, or that exits leaving a child that
 * still holds its stdout, cannot block us (issue 15 item 2). Returns 1
 * while it runs, 0 when it is over (exited and drained, or output over the
 * cap: the group is killed), -1 at the deadline (the group is killed).
 */
static int exec_step(struct kcfg_exec_run *run, int wait_ms)
{
	struct pollfd p = {.fd = run->eof ? -1 : run->fd, .events = POLLIN};
	int64_t left = run->deadline - mono_ms();

	if (left <= 0 || run->o.toobig) {
		kill(-run->pid, SIGKILL);
		if (!run->exited)
			exec_wait(run->pid, &run->status, 0);
		run->exited = 1;
		return left <= 0 && !run->o.toobig ? -1 : 0;
	}
	if (wait_ms > left)
		wait_ms = (int)left;
	if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
		return -1;
	if (!run->exited) {
		pid_t w = exec_wait(run->pid, &run->status, WNOHANG);
		/* ECHILD: not ours any more, which only a wait with __WALL by
		 * someone else can do; its status is lost, so it counts as a
		 * failure, never as a plain exit 0 */
		if (w < 0 && errno == ECHILD)
			run->status = -1;
		if (w == run->pid || (w < 0 && errno == ECHILD))
			run->exited = 1;
	}
	if (!run->eof)
		run->eof = exec_drain(run->fd, &run->o);
	if (run->o.toobig)
		return exec_step(run, 0);
	/* exited and drained: a child of the plugin that still holds the pipe
	 * open is not waited for */
	return run->exited ? 0 : 1;
}

/* A message for a plugin that did not exit 0. */
static int exec_failed(const struct kube_config *cfg, int status, struct kube_error *err)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return kfail(err, KUBE_ECONFIG, "exec plugin %s could not be run%s%s", cfg->exec.command,
		             cfg->exec.install_hint ? ": " : "", cfg->exec.install_hint ? cfg->exec.install_hint : "");
	return kfail(err, KUBE_ECONFIG, "exec plugin %s failed (%s %d)", cfg->exec.command,
	             WIFEXITED(status) ? "exit status" : "signal",
	             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int kcfg_exec_start(const struct kube_config *cfg, int64_t deadline_ms, struct kcfg_exec_run *run,
                    struct kube_error *err)
{
	struct exec_child_args a;
	int pfd[2], e;
	char info[256];

	memset(run, 0, sizeof(*run));
	run->fd = -1;
	run->own_deadline = mono_ms() + KCFG_EXEC_TIMEOUT_MS;
	run->deadline = deadline_ms && deadline_ms < run->own_deadline ? deadline_ms : run->own_deadline;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return kfail(err, KUBE_ECONFIG, "exec plugin %s: pipe: %s", cfg->exec.command, strerror(errno));
	snprintf(
	    info, sizeof(info),
	    "KUBERNETES_EXEC_INFO={\"kind\":\"ExecCredential\",\"apiVersion\":\"%s\",\"spec\":{\"interactive\":false}}",
	    cfg->exec.api_version);
	a.command = cfg->exec.command;
	a.argv = cfg->exec.argv;
	a.out_fd = pfd[1];
	a.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!(a.envp = exec_envp(cfg, info)))
		run->pid = -1, errno = ENOMEM;
	else
		run->pid = exec_clone(&a);
	e = errno;
	free(a.envp);
	if (a.devnull >= 0)
		close(a.devnull);
	close(pfd[1]);
	if (run->pid < 0) {
		close(pfd[0]);
		return kfail(err, KUBE_ECONFIG, "exec plugin %s: clone: %s", cfg->exec.command, strerror(e));
	}
	setpgid(run->pid, run->pid); /* also here: no race with a kill before the child ran */
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	run->fd = pfd[0];
	return KUBE_OK;
}

/* The result of a finished run (step returned 0 or -1); releases it. */
static int exec_result(const struct kube_config *cfg, struct kcfg_exec_run *run, int step, char **token, char **cert,
                       char **key, int64_t *expiry_ms, struct kube_error *err)
{
	struct kcfg_exec_out *o = &run->o;
	char perr[256];
	int rc;

	if (step < 0 && run->deadline == run->own_deadline)
		rc = kfail(err, KUBE_ECONFIG, "exec plugin %s did not finish within %d s; killed", cfg->exec.command,
		           KCFG_EXEC_TIMEOUT_MS / 1000);
	else if (step < 0)
		rc = kfail(err, KUBE_ETIMEOUT, "exec plugin %s was still running at the deadline; killed",
		           cfg->exec.command);
	else if (o->toobig)
		rc = kfail(err, KUBE_ECONFIG, "exec plugin %s printed more than %u bytes", cfg->exec.command,
		           KCFG_MAX_EXEC_OUT);
	else if (run->status == -1)
		rc = kfail(err, KUBE_ECONFIG,
		           "exec plugin %s: its exit status was collected by another wait; not trusted",
		           cfg->exec.command);
	else if (!WIFEXITED(run->status) || WEXITSTATUS(run->status) != 0)
		rc = exec_failed(cfg, run->status, err);
	else if (!o->len)
		rc = kfail(err, KUBE_ECONFIG, "exec plugin %s printed nothing", cfg->exec.command);
	else if (o->buf[o->len] = '\0',
	         kcfg_parse_exec_credential(o->buf, o->len, token, cert, key, expiry_ms, perr, sizeof(perr)) < 0)
		rc = kfail(err, KUBE_ECONFIG, "exec plugin %s: %s", cfg->exec.command, perr);
	else
		rc = KUBE_OK;
	kcfg_exec_abort(run);
	return rc;
}

int kcfg_exec_poll(const struct kube_config *cfg, struct kcfg_exec_run *run, int wait_ms, char **token, char **cert,
                   char **key, int64_t *expiry_ms, struct kube_error *err)
{
	int step;

	*token = *cert = *key = NULL;
	step = exec_step(run, wait_ms);
	if (step == 1)
		return KCFG_EXEC_RUNNING;
	return exec_result(cfg, run, step, token, cert, key, expiry_ms, err);
}

void kcfg_exec_abort(struct kcfg_exec_run *run)
{
	if (run->pid > 0 && !run->exited) {
		kill(-run->pid, SIGKILL);
		exec_wait(run->pid, &run->status, 0);
	}
	if (run->fd >= 0)
		close(run->fd);
	if (run->o.buf)
		memset(run->o.buf, 0, run->o.cap);
	free(run->o.buf);
	memset(run, 0, sizeof(*run));
	run->fd = -1;
}
