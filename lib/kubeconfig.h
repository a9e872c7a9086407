/*
 * kubeconfig.h - internal to lib/: the resolved connection settings, from a
 * kubeconfig file (libyaml) or the in-cluster service account, and the
 * ExecCredential plugin protocol. kube.c is the only user outside tests.
 */
#ifndef MG_KUBECONFIG_H
#define MG_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kube.h"

#define KCFG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kcfg_exec {
	char *api_version;
	char *command;
	char **argv; /* argv[0] = command, NULL-terminated */
	char **env;  /* "NAME=VALUE" additions, NULL-terminated */
	char *install_hint;
};

/* Every string is heap-owned by the struct; kcfg_free releases it all. */
struct kube_config {
	char *server; /* https://host:port, no trailing slash */
	char *ca;     /* PEM, NUL-terminated; ca_len excludes the NUL */
	size_t ca_len;
	char *cert, *key; /* client certificate and key, PEM */
	size_t cert_len, key_len;
	char *token;      /* static token (kubeconfig "token") */
	char *token_file; /* re-read periodically (tokenFile / in-cluster) */
	char *username, *password;
	int insecure; /* insecure-skip-tls-verify */
	char *proxy_url;
	char *tls_server_name;
	char *namespace; /* never NULL after a successful load */
	char *source;    /* "kubeconfig /path (context x)" / "in-cluster ..." */
	char *user_name; /* kubeconfig user name, for messages */
	int in_cluster;
	int has_exec;
	struct kcfg_exec exec;
};

/* Resolve per the order in kube.h. KUBE_OK, KUBE_ECONFIG or KUBE_ENOCONFIG. */
int kcfg_load(const struct kube_conn_opts *opts, struct kube_config *cfg, struct kube_error *err);

/*
 * Parse kubeconfig text. path is used for messages and to resolve relative
 * file references; context NULL = current-context. Referenced files are
 * read. ns_override may be NULL.
 */
int kcfg_parse(const char *text, size_t len, const char *path, const char *context, struct kube_config *cfg,
               struct kube_error *err);

void kcfg_free(struct kube_config *cfg);

/*
 * Parse an ExecCredential (client.authentication.k8s.io v1 or v1beta1).
 * Outputs are heap strings (NULL when absent) the caller frees; *expiry_ms
 * is wall-clock ms since the epoch or 0 when none was given.
 * Returns 0, or -1 with a message in err.
 */
int kcfg_parse_exec_credential(const char *json, size_t len, char **token, char **cert, char **key, int64_t *expiry_ms,
                               char *err, size_t errlen);

/*
 * Run the exec plugin and parse its output (stdout capped at 1 MiB; stderr
 * passes through), in steps, so that no caller blocks on it: the watch loop
 * polls it between transfers, kube_refresh_credentials between checks of a
 * deadline that can come forward. kcfg_exec_start starts the plugin in its
 * own process group with no descriptor of ours but 0-2, no signal blocked
 * and SIGPIPE at its default, under a child that a waitpid(-1) elsewhere
 * in the process does not collect (its exit raises no signal), so its exit
 * status always reaches kcfg_exec_poll. kcfg_exec_poll waits at most wait_ms and
 * returns KCFG_EXEC_RUNNING, or the result (same outputs as above; the run
 * is then released): the group is killed at 60 s (KUBE_ECONFIG) or at
 * run->deadline (monotonic, 0 = none; KUBE_ETIMEOUT), whichever is first.
 * kcfg_exec_abort kills the group and releases a run that is not over
 * (harmless on a released one).
 */
#define KCFG_EXEC_RUNNING 1000
struct kcfg_exec_out {
	char *buf;
	size_t len, cap;
	int toobig;
};
struct kcfg_exec_run {
	pid_t pid;
	int fd, exited, eof, status;
	int64_t deadline, own_deadline; /* monotonic ms */
	struct kcfg_exec_out o;
};
int kcfg_exec_start(const struct kube_config *cfg, int64_t deadline_ms, struct kcfg_exec_run *run,
                    struct kube_error *err);
int kcfg_exec_poll(const struct kube_config *cfg, struct kcfg_exec_run *run, int wait_ms, char **token, char **cert,
                   char **key, int64_t *expiry_ms, struct kube_error *err);
void kcfg_exec_abort(struct kcfg_exec_run *run);

/* Standard or URL-safe base64, padding optional. *out is NUL-terminated. */
int kcfg_b64decode(const char *in, size_t len, char **out, size_t *outlen);

/*
 * Read a whole regular file (cap bytes at most) into a NUL-terminated heap
 * buffer. A FIFO, device or directory fails at once with EINVAL.
 */
int kcfg_read_file(const char *path, size_t cap, char **out, size_t *outlen);
/* strerror(e), but "not a regular file" for kcfg_read_file's EINVAL. */
const char *kcfg_file_error(int e);

#endif
