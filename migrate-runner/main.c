/*
 * migrate-runner - the entrypoint of a migration Job's container: wait for
 * dependencies, take the lock, run the command as a correct PID 1, and make
 * its outcome durable (termination log, stdout, ConfigMap record).
 *
 * This file only parses options and maps results to exit codes; the work
 * is in supervise.c, lock.c, record.c, waittcp.c, sidecar.c.
 */
#include <errno.h>
#include <stdint.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "duration.h"
#include "exitcodes.h"
#include "kube.h"
#include "log.h"
#include "names.h"

#include "keeper.h"
#include "lock.h"
#include "record.h"
#include "store.h"
#include "sidecar.h"
#include "supervise.h"
#include "tail.h"
#include "waittcp.h"

#define PROG "migrate-runner"
#define MAX_WAIT_TCP 16
#define TAIL_LINE_LEN 1024
/* outputTail in the ConfigMap; the termination log trims further to 4096 in total */
#define TAIL_MAX_BYTES 4096
#define TERMINATION_LOG_MAX 4096
#define DEFAULT_TERMINATION_LOG "/dev/termination-log"
#define RECORD_MAX_BYTES (256 * 1024)

struct config {
	int64_t timeout_ms, grace_ms, wait_timeout_ms, lock_timeout_ms, lock_lease_ms;
	int64_t record_timeout_ms, termination_grace_ms;
	struct wtcp_target tcp[MAX_WAIT_TCP];
	size_t ntcp;
	const char *lock;
	const char *sidecar_spec, *sidecar_ready_url;
	int sidecar_wait;
	struct sidecar sidecar;
	int have_sidecar;
	const char *record, *record_key;
	long record_max_keys;
	long attempt;
	long tail_lines;
	const char *termination_log; /* NULL = default */
	const char *kubeconfig, *context, *namespace;
	enum log_format log_format;
	int verbose;
	char *const *argv;
	const char *job, *pod;
	char hostname[256];
};

static const char usage_text[] =
    "Usage: " PROG " [OPTIONS] -- COMMAND [ARG...]\n"
    "Run a database migration command as a correct PID 1 and record its outcome.\n"
    "\n"
    "Command:\n"
    "      --timeout DURATION        stop the command after DURATION: SIGTERM, grace, SIGKILL;\n"
    "                                exit 124 [MR_TIMEOUT; default: none]\n"
    "      --grace DURATION          time between SIGTERM and SIGKILL, also for processes the\n"
    "                                command leaves behind [MR_GRACE; default 10s]\n"
    "      --tail-lines N            output lines kept for the record, secrets masked; 0 keeps\n"
    "                                none [MR_TAIL_LINES; default 20]\n"
    "\n"
    "Before the command:\n"
    "      --wait-tcp HOST:PORT      wait until HOST:PORT accepts TCP connections; repeatable\n"
    "                                [MR_WAIT_TCP, comma-separated]\n"
    "      --wait-timeout DURATION   give up on dependencies (and the sidecar) after DURATION;\n"
    "                                exit 75 [MR_WAIT_TIMEOUT; default 2m]\n"
    "      --lock NAME               hold the coordination.k8s.io Lease NAME while the command\n"
    "                                runs [MR_LOCK]\n"
    "      --lock-timeout DURATION   give up waiting for the lock; exit 75 [MR_LOCK_TIMEOUT;\n"
    "                                default 10m]\n"
    "      --lock-lease DURATION     lease duration, renewed every third of it [MR_LOCK_LEASE;\n"
    "                                default 30s]\n"
    "      --sidecar KIND            istio, linkerd, or an http:// URL: ask that proxy to quit on\n"
    "                                every exit [MR_SIDECAR]\n"
    "      --sidecar-wait            wait for the sidecar to be ready first (--wait-timeout)\n"
    "                                [MR_SIDECAR_WAIT=1]\n"
    "      --sidecar-ready-url URL   readiness endpoint to wait for; implies --sidecar-wait\n"
    "                                [MR_SIDECAR_READY_URL]\n"
    "\n"
    "Outcome:\n"
    "      --record CONFIGMAP        store the outcome in this ConfigMap [MR_RECORD]\n"
    "      --record-key KEY          data key of the outcome [MR_RECORD_KEY; default $JOB_NAME]\n"
    "      --record-max-keys N       keep at most N outcomes, pruning the oldest\n"
    "                                [MR_RECORD_MAX_KEYS; default 20]\n"
    "      --attempt N               attempt number to record [MR_ATTEMPT; default: the previous\n"
    "                                record's attempt + 1 for the same key, else 1]\n"
    "      --termination-log PATH    write the outcome summary there; \"\" disables\n"
    "                                [MR_TERMINATION_LOG; default /dev/termination-log if writable]\n"
    "      --record-timeout DURATION give up writing the record after DURATION (the termination\n"
    "                                log and stdout line come first) [MR_RECORD_TIMEOUT; default 10s]\n"
    "      --termination-grace DURATION  the pod's terminationGracePeriodSeconds: after a SIGTERM,\n"
    "                                the record and the lock release end 2s before it runs out\n"
    "                                [MR_TERMINATION_GRACE; default 30s]\n"
    "\n"
    "Connection (for --lock and --record):\n"
    "      --kubeconfig PATH         kubeconfig file [KUBECONFIG; default: in-cluster, ~/.kube/config]\n"
    "      --context NAME            kubeconfig context\n"
    "  -n, --namespace NS            namespace [default: the context's or the pod's]\n"
    "\n"
    "Other:\n"
    "      --log-format FORMAT       text or json [MR_LOG_FORMAT; default text]\n"
    "  -v, --verbose                 debug messages\n"
    "  -h, --help                    this help\n"
    "  -V, --version                 version\n"
    "\n"
    "Environment: JOB_NAME (record key, \"job\"), POD_NAME or HOSTNAME (lock holder, \"pod\").\n"
    "DURATION: 90s, 5m, 1h30m, 250ms, 0. Flags override the environment.\n"
    "\n"
    "Exit status: the command's own; 128+N when it died of signal N; 124 when --timeout\n"
    "fired; 126 command not executable; 127 command not found; 75 lock or dependency wait\n"
    "timed out; 64 usage error; 78 configuration error (e.g. --lock without any Kubernetes\n"
    "configuration).\n";

enum {
	OPT_TIMEOUT = 256,
	OPT_GRACE,
	OPT_TAIL_LINES,
	OPT_WAIT_TCP,
	OPT_WAIT_TIMEOUT,
	OPT_LOCK,
	OPT_LOCK_TIMEOUT,
	OPT_LOCK_LEASE,
	OPT_SIDECAR,
	OPT_SIDECAR_WAIT,
	OPT_SIDECAR_READY_URL,
	OPT_RECORD,
	OPT_RECORD_KEY,
	OPT_RECORD_MAX_KEYS,
	OPT_ATTEMPT,
	OPT_TERMINATION_LOG,
	OPT_RECORD_TIMEOUT,
	OPT_TERMINATION_GRACE,
	OPT_KUBECONFIG,
	OPT_CONTEXT,
	OPT_LOG_FORMAT,
};

static const struct option long_opts[] = {
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"tail-lines", required_argument, NULL, OPT_TAIL_LINES},
    {"wait-tcp", required_argument, NULL, OPT_WAIT_TCP},
    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"lock", required_argument, NULL, OPT_LOCK},
    {"lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT},
    {"lock-lease", required_argument, NULL, OPT_LOCK_LEASE},
    {"sidecar", required_argument, NULL, OPT_SIDECAR},
    {"sidecar-wait", no_argument, NULL, OPT_SIDECAR_WAIT},
    {"sidecar-ready-url", required_argument, NULL, OPT_SIDECAR_READY_URL},
    {"record", required_argument, NULL, OPT_RECORD},
    {"record-key", required_argument, NULL, OPT_RECORD_KEY},
    {"record-max-keys", required_argument, NULL, OPT_RECORD_MAX_KEYS},
    {"attempt", required_argument, NULL, OPT_ATTEMPT},
    {"termination-log", required_argument, NULL, OPT_TERMINATION_LOG},
    {"record-timeout", required_argument, NULL, OPT_RECORD_TIMEOUT},
    {"termination-grace", required_argument, NULL, OPT_TERMINATION_GRACE},
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"namespace", required_argument, NULL, 'n'},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The sidecar as far as it is known, so that even a usage error lets it quit. */
static struct sidecar usage_sidecar;
static int usage_have_sidecar;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vusage_error(fmt, ap);
	va_end(ap);
	if (usage_have_sidecar) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		sidecar_quit(&usage_sidecar);
	}
	return MG_EXIT_USAGE;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int parse_dur(const char *what, const char *s, int64_t *out)
{
	char err[128];

	if (dur_parse(s, out, err, sizeof(err)) != 0) {
		usage_error("invalid %s '%s': %s", what, s, err);
		return -1;
	}
	return 0;
}

static int parse_long(const char *what, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max) {
		usage_error("invalid %s '%s': want a whole number from %ld to %ld", what, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int add_tcp(struct config *c, const char *what, const char *spec)
{
	if (c->ntcp >= MAX_WAIT_TCP) {
		usage_error("too many --wait-tcp targets (at most %d)", MAX_WAIT_TCP);
		return -1;
	}
	if (wtcp_parse(spec, &c->tcp[c->ntcp]) != 0) {
		usage_error("invalid %s '%s': want HOST:PORT or [IPv6]:PORT", what, spec);
		return -1;
	}
	c->ntcp++;
	return 0;
}

static int set_sidecar(struct config *c, const char *spec)
{
	c->sidecar_spec = spec;
	if (sidecar_parse(spec, NULL, &usage_sidecar) != 0) {
		usage_have_sidecar = 0;
		usage_error("invalid --sidecar '%s': want istio, linkerd or an http:// URL", spec);
		return -1;
	}
	usage_have_sidecar = 1;
	return 0;
}

/* Defaults, then the environment; flags are applied over it by parse_args. */
static int parse_env(struct config *c)
{
	const char *v;

	c->grace_ms = 10000;
	c->wait_timeout_ms = 120000;
	c->lock_timeout_ms = 600000;
	c->lock_lease_ms = 30000;
	c->record_timeout_ms = 10000;
	c->termination_grace_ms = 30000;
	c->record_max_keys = 20;
	c->tail_lines = 20;
	c->log_format = LOG_TEXT;

	if ((v = env("MR_SIDECAR")) && set_sidecar(c, v) != 0)
		return -1;
	if ((v = env("MR_TIMEOUT")) && parse_dur("MR_TIMEOUT", v, &c->timeout_ms) != 0)
		return -1;
	if ((v = env("MR_GRACE")) && parse_dur("MR_GRACE", v, &c->grace_ms) != 0)
		return -1;
	if ((v = env("MR_WAIT_TIMEOUT")) && parse_dur("MR_WAIT_TIMEOUT", v, &c->wait_timeout_ms) != 0)
		return -1;
	if ((v = env("MR_LOCK_TIMEOUT")) && parse_dur("MR_LOCK_TIMEOUT", v, &c->lock_timeout_ms) != 0)
		return -1;
	if ((v = env("MR_LOCK_LEASE")) && parse_dur("MR_LOCK_LEASE", v, &c->lock_lease_ms) != 0)
		return -1;
	if ((v = env("MR_RECORD_TIMEOUT")) && parse_dur("MR_RECORD_TIMEOUT", v, &c->record_timeout_ms) != 0)
		return -1;
	if ((v = env("MR_TERMINATION_GRACE")) && parse_dur("MR_TERMINATION_GRACE", v, &c->termination_grace_ms) != 0)
		return -1;
	if ((v = env("MR_TAIL_LINES")) && parse_long("MR_TAIL_LINES", v, 0, 1000, &c->tail_lines) != 0)
		return -1;
	if ((v = env("MR_RECORD_MAX_KEYS")) && parse_long("MR_RECORD_MAX_KEYS", v, 1, 10000, &c->record_max_keys) != 0)
		return -1;
	if ((v = env("MR_ATTEMPT")) && parse_long("MR_ATTEMPT", v, 1, 1000000, &c->attempt) != 0)
		return -1;
	if ((v = env("MR_LOG_FORMAT")) && log_parse_format(v, &c->log_format) != 0) {
		usage_error("invalid MR_LOG_FORMAT '%s': want text or json", v);
		return -1;
	}
	if ((v = env("MR_WAIT_TCP"))) {
		char item[300];
		while (*v) {
			size_t n = strcspn(v, ",");
			if (n > 0) {
				if (n >= sizeof(item)) {
					usage_error("invalid MR_WAIT_TCP: an entry is too long");
					return -1;
				}
				memcpy(item, v, n);
				item[n] = '\0';
				if (add_tcp(c, "MR_WAIT_TCP", item) != 0)
					return -1;
			}
			v += n + (v[n] == ',');
		}
	}
	c->lock = env("MR_LOCK");
	c->record = env("MR_RECORD");
	c->record_key = env("MR_RECORD_KEY");
	c->sidecar_ready_url = env("MR_SIDECAR_READY_URL");
	v = getenv("MR_SIDECAR_WAIT");
	c->sidecar_wait = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
	c->termination_log = getenv("MR_TERMINATION_LOG"); /* "" disables */
	return 0;
}

static int check_config(struct config *c);

/* Returns -1 to go on, or an exit code. */
static int parse_args(struct config *c, int argc, char **argv)
{
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:n:vhV", long_opts, NULL)) != -1) {
		int rc = 0;

		switch (opt) {
		case OPT_TIMEOUT: rc = parse_dur("--timeout", optarg, &c->timeout_ms); break;
		case OPT_GRACE: rc = parse_dur("--grace", optarg, &c->grace_ms); break;
		case OPT_TAIL_LINES: rc = parse_long("--tail-lines", optarg, 0, 1000, &c->tail_lines); break;
		case OPT_WAIT_TCP: rc = add_tcp(c, "--wait-tcp", optarg); break;
		case OPT_WAIT_TIMEOUT: rc = parse_dur("--wait-timeout", optarg, &c->wait_timeout_ms); break;
		case OPT_LOCK: c->lock = optarg; break;
		case OPT_LOCK_TIMEOUT: rc = parse_dur("--lock-timeout", optarg, &c->lock_timeout_ms); break;
		case OPT_LOCK_LEASE: rc = parse_dur("--lock-lease", optarg, &c->lock_lease_ms); break;
		case OPT_SIDECAR: rc = set_sidecar(c, optarg); break;
		case OPT_SIDECAR_WAIT: c->sidecar_wait = 1; break;
		case OPT_SIDECAR_READY_URL: c->sidecar_ready_url = optarg; break;
		case OPT_RECORD: c->record = optarg; break;
		case OPT_RECORD_KEY: c->record_key = optarg; break;
		case OPT_RECORD_MAX_KEYS:
			rc = parse_long("--record-max-keys", optarg, 1, 10000, &c->record_max_keys);
			break;
		case OPT_ATTEMPT: rc = parse_long("--attempt", optarg, 1, 1000000, &c->attempt); break;
		case OPT_TERMINATION_LOG: c->termination_log = optarg; break;
		case OPT_RECORD_TIMEOUT: rc = parse_dur("--record-timeout", optarg, &c->record_timeout_ms); break;
		case OPT_TERMINATION_GRACE:
			rc = parse_dur("--termination-grace", optarg, &c->termination_grace_ms);
			break;
		case OPT_KUBECONFIG: c->kubeconfig = optarg; break;
		case OPT_CONTEXT: c->context = optarg; break;
		case 'n': c->namespace = optarg; break;
		case OPT_LOG_FORMAT:
			if (log_parse_format(optarg, &c->log_format) != 0)
				return usage_error("invalid --log-format '%s': want text or json", optarg);
			break;
		case 'v': c->verbose = 1; break;
		case 'h': fputs(usage_text, stdout); return fflush(stdout) == 0 ? MG_EXIT_OK : MG_EXIT_USAGE;
		case 'V': printf(PROG " %s\n", MG_VERSION); return MG_EXIT_OK;
		case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
		case '?':
		default:
			if (optopt)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
		if (rc != 0)
			return MG_EXIT_USAGE;
	}
	if (optind >= argc)
		return usage_error("no command given: " PROG " [OPTIONS] -- COMMAND [ARG...]");
	c->argv = argv + optind;
	return check_config(c);
}

/* The options together, and the identity; returns -1 to go on, or an exit code. */
static int check_config(struct config *c)
{
	const char *v;

	if (c->lock && !name_is_dns_subdomain(c->lock, 253))
		return usage_error("invalid --lock '%s': want a Kubernetes object name (lowercase, digits, '-', '.')",
		                   c->lock);
	if (c->record && !name_is_dns_subdomain(c->record, 253))
		return usage_error("invalid --record '%s': want a ConfigMap name (lowercase, digits, '-', '.')",
		                   c->record);
	c->job = env("JOB_NAME");
	if (c->record && !c->record_key)
		c->record_key = c->job;
	if (c->record && !c->record_key)
		return usage_error("--record needs a key: set --record-key or $JOB_NAME");
	if (c->record_key && !rec_valid_key(c->record_key))
		return usage_error("invalid record key '%s': want letters, digits, '-', '_', '.'", c->record_key);
	if (c->lock_lease_ms < 3000 || c->lock_lease_ms > 3600000)
		return usage_error("invalid --lock-lease: want 3s to 1h");
	if (c->sidecar_ready_url) {
		if (!c->sidecar_spec)
			return usage_error("--sidecar-ready-url needs --sidecar");
		c->sidecar_wait = 1;
	}
	if (c->sidecar_spec) {
		if (sidecar_parse(c->sidecar_spec, c->sidecar_ready_url, &c->sidecar) != 0)
			return usage_error("invalid --sidecar-ready-url '%s': want an http:// URL",
			                   c->sidecar_ready_url);
		c->have_sidecar = 1;
		if (c->sidecar_wait && !c->sidecar.ready_url[0])
			return usage_error("--sidecar-wait with a URL needs --sidecar-ready-url");
	}
	v = env("POD_NAME");
	if (!v)
		v = env("HOSTNAME");
	if (!v && gethostname(c->hostname, sizeof(c->hostname) - 1) == 0 && c->hostname[0])
		v = c->hostname;
	c->pod = v;
	return -1;
}

/* ---- the run ------------------------------------------------------------ */

/* after a SIGTERM, be done this long before the kubelet's SIGKILL */
#define END_MARGIN_MS 2000
/* the Lease release comes after the record, and gets at most this */
#define RELEASE_MAX_MS 3000
/* the outcome line on stdout: a stalled reader must not hold the record back */
#define STDOUT_LINE_MS 1000

struct run {
	struct config *cfg;
	struct kube_client *kc;      /* the record and the attempt number */
	struct kube_client *lock_kc; /* the Lease's own: the keeper thread's while the command runs */
	struct lock *lock;
	struct keeper *keeper;
	struct tail *tail;
	char *tail_text;
	struct rec_outcome out;
	int stdout_unterminated;
	int64_t t0_mono;
};

static const char *exec_why(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR: return "command not found";
	case EACCES:
	case EPERM: return "permission denied (not executable, or a noexec mount)";
	case ENOEXEC: return "not an executable format (a script without #!?)";
	default: return strerror(e);
	}
}

/* Fill the record for an exit before or instead of the command, and return code. */
static int finish_early(struct run *r, enum rec_reason reason, int code, int sig)
{
	r->out.reason = reason;
	r->out.exit_code = code;
	r->out.signal = sig;
	r->out.finished_ms = sup_wall_ms();
	return code;
}

static int signaled_before_start(struct run *r, int sig)
{
	log_error("got signal %d (%s) before the command started; exiting", sig, strsignal(sig));
	return finish_early(r, REC_SIGNALED, 128 + sig, sig);
}

/* Each step returns -1 to go on, or the exit code (r->out filled). */

static int step_signals(struct run *r)
{
	if (sup_init() != 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return finish_early(r, REC_EXEC_FAILED, MG_EXIT_CANNOT_EXEC, 0);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return -1;
}

static int connect_one(struct run *r, struct kube_client **kc)
{
	struct config *c = r->cfg;
	struct kube_conn_opts ko = {c->kubeconfig, c->context, c->namespace};
	struct kube_error err;
	int rc = kube_client_new(&ko, kc, &err);

	if (rc == KUBE_OK)
		return -1;
	log_error("%s needs the Kubernetes API, but %s: %s", c->lock ? "--lock" : "--record",
	          rc == KUBE_ENOCONFIG ? "there is no configuration (no in-cluster service account, no kubeconfig)"
	                               : "the configuration is unusable",
	          err.message);
	*kc = NULL;
	return finish_early(r, REC_CONFIG_ERROR, MG_EXIT_CONFIG, 0);
}

static int step_connect(struct run *r)
{
	struct config *c = r->cfg;
	int code;

	if (!c->lock && !c->record)
		return -1;
	if ((code = connect_one(r, &r->kc)) >= 0)
		return code;
	log_debug("Kubernetes API: %s (%s), namespace %s", kube_server(r->kc), kube_source(r->kc),
	          kube_namespace(r->kc));
	/* the Lease gets its own connection: renewing it never waits for the record, nor the reverse */
	return c->lock ? connect_one(r, &r->lock_kc) : -1;
}

static int step_sidecar(struct run *r)
{
	struct config *c = r->cfg;
	int rc;

	if (!c->have_sidecar || !c->sidecar_wait)
		return -1;
	rc = sidecar_wait_ready(&c->sidecar, r->t0_mono + c->wait_timeout_ms, sup_mono_ms, sup_wait_cb, NULL);
	if (rc == SIDECAR_TIMEOUT)
		return finish_early(r, REC_DEPENDENCY_TIMEOUT, MG_EXIT_TEMPFAIL, 0);
	if (rc == SIDECAR_INTERRUPTED)
		return signaled_before_start(r, sup_pending_signal());
	return -1;
}

static int step_wait_tcp(struct run *r)
{
	struct config *c = r->cfg;
	int rc;

	if (c->ntcp == 0)
		return -1;
	rc = wtcp_wait(c->tcp, c->ntcp, r->t0_mono + c->wait_timeout_ms, sup_mono_ms, sup_wait_cb, NULL, NULL);
	if (rc == WTCP_TIMEOUT)
		return finish_early(r, REC_DEPENDENCY_TIMEOUT, MG_EXIT_TEMPFAIL, 0);
	if (rc == WTCP_INTERRUPTED)
		return signaled_before_start(r, sup_pending_signal());
	return -1;
}

/* attempt = the previous outcome's for this key + 1 (a retried pod of the same Job) */
static int step_attempt(struct run *r)
{
	struct config *c = r->cfg;
	struct kube_error err;
	char *prev = NULL;

	if (!c->record || !r->kc || c->attempt != 0)
		return -1;
	if (rec_load(r->kc, c->record, c->record_key, kube_now_ms() + 10000, &prev, &err) == KUBE_OK)
		r->out.attempt = rec_parse_attempt(prev) + 1;
	else
		log_warn("cannot read ConfigMap %s for the attempt number: %s", c->record, err.message);
	free(prev);
	return -1;
}

static int lock_failed(struct run *r, int rc, const struct kube_error *err)
{
	struct config *c = r->cfg;
	char d[32];

	if (rc == LOCK_TIMEOUT) {
		dur_format(c->lock_timeout_ms, d, sizeof(d));
		log_error("lock timeout: lock %s still held by %s after %s%s%s", c->lock,
		          lock_other_holder(r->lock)[0] ? lock_other_holder(r->lock) : "another runner", d,
		          err->rc ? "; last error: " : "", err->rc ? err->message : "");
		return finish_early(r, REC_LOCK_TIMEOUT, MG_EXIT_TEMPFAIL, 0);
	}
	if (rc == LOCK_INTERRUPTED)
		return signaled_before_start(r, sup_pending_signal());
	log_error("cannot take lock %s: %s: %s%s", c->lock, kube_strerror(err->rc), err->message,
	          err->rc == KUBE_EFORBIDDEN ? " (RBAC: the service account needs get and update on the Lease "
	                                       "(leases.coordination.k8s.io), and create unless the chart creates it)"
	                                     : "");
	if (err->rc == KUBE_EFORBIDDEN || err->rc == KUBE_EUNAUTHORIZED || err->rc == KUBE_ECONFIG ||
	    err->rc == KUBE_ETLS || err->rc == KUBE_EINVALID)
		return finish_early(r, REC_CONFIG_ERROR, MG_EXIT_CONFIG, 0);
	return finish_early(r, REC_LOCK_TIMEOUT, MG_EXIT_TEMPFAIL, 0);
}

static int step_lock(struct run *r)
{
	struct config *c = r->cfg;
	struct kube_error err;
	int rc;

	if (!c->lock)
		return -1;
	r->lock = lock_new(r->lock_kc, c->lock, c->pod ? c->pod : "migrate-runner", (int)(c->lock_lease_ms / 1000));
	if (!r->lock) {
		log_error("out of memory");
		return finish_early(r, REC_CONFIG_ERROR, MG_EXIT_CONFIG, 0);
	}
	rc = lock_acquire(r->lock, kube_now_ms() + c->lock_timeout_ms, sup_wait_cb, NULL, &err);
	if (rc != LOCK_ACQUIRED)
		return lock_failed(r, rc, &err);
	log_info("acquired lock %s/%s as %s", kube_namespace(r->lock_kc), c->lock, c->pod);
	return -1;
}

/* The supervisor's event: the keeper gave up on the Lease. */
static int64_t lock_gone(void *ctx) { return keeper_budget(ctx); }

/* Turn the supervisor's result into the outcome; returns the exit code. */
static int outcome_of(struct run *r, const struct sup_result *res)
{
	struct config *c = r->cfg;
	int code = sup_exit_code(res);

	r->out.started_ms = res->started_ms;
	r->out.finished_ms = res->finished_ms;
	r->stdout_unterminated = res->stdout_unterminated;
	r->out.signal = res->how == SUP_SIGNALED ? res->sig : 0;
	if (res->terminated && !(res->how == SUP_EXITED && res->code == 0)) {
		/* stopped because the Lease was lost: said so, and retriable (not a plain "Signaled 143") */
		r->out.reason = REC_LOCK_LOST;
		code = MG_EXIT_TEMPFAIL;
		log_error("the command was stopped because the lock %s was lost; exit %d (retriable)", c->lock, code);
	} else if (res->timed_out) {
		r->out.reason = REC_TIMED_OUT;
	} else if (res->how == SUP_EXITED) {
		r->out.reason = REC_EXITED;
	} else if (res->how == SUP_SIGNALED) {
		r->out.reason = REC_SIGNALED;
		log_info("the command was killed by signal %d (%s); exit %d", res->sig, strsignal(res->sig), code);
	} else {
		r->out.reason = REC_EXEC_FAILED;
		log_error("cannot execute '%s': %s (exit %d)", c->argv[0], exec_why(res->exec_errno), code);
	}
	r->out.exit_code = code;
	return code;
}

static int step_command(struct run *r)
{
	struct config *c = r->cfg;
	struct sup_opts so = {.argv = c->argv, .timeout_ms = c->timeout_ms, .grace_ms = c->grace_ms, .tail = r->tail};
	struct sup_result res;
	int sig;

	if ((sig = sup_wait(0)) != 0)
		return signaled_before_start(r, sig);
	if (r->lock) {
		r->keeper = keeper_start(r->lock, c->lock, c->lock_lease_ms);
		if (!r->keeper) {
			log_error("cannot start renewing the lock: %s", strerror(errno));
			return finish_early(r, REC_EXEC_FAILED, MG_EXIT_CANNOT_EXEC, 0);
		}
		so.event_fd = keeper_fd(r->keeper);
		so.on_event = lock_gone;
		so.ctx = r->keeper;
	}
	sup_run(&so, &res);
	return outcome_of(r, &res);
}

/* ---- making the outcome durable ------------------------------------------ */

static void compose(struct run *r)
{
	struct config *c = r->cfg;

	r->tail_text = r->tail ? tail_text(r->tail, TAIL_MAX_BYTES) : NULL;
	r->out.output_tail = r->tail_text;
	r->out.job = c->job;
	r->out.pod = c->pod;
	if (r->out.attempt < 1)
		r->out.attempt = 1;
	if (!r->out.finished_ms)
		r->out.finished_ms = sup_wall_ms();
}

/* The termination log, then the stdout line: local, at once, before any API call. */
static void write_local(struct run *r)
{
	struct config *c = r->cfg;
	const char *path = c->termination_log ? c->termination_log : DEFAULT_TERMINATION_LOG;
	char *capped = *path ? rec_json_capped(&r->out, TERMINATION_LOG_MAX) : NULL;
	char *line = rec_json(&r->out, 0), *buf;
	int e;

	if (capped && (e = rec_write_file(path, c->termination_log != NULL, capped)) != 0) {
		if (c->termination_log)
			log_warn("cannot write the termination log %s: %s", path, strerror(e));
		else
			log_debug("no termination log at %s: %s", path, strerror(e));
	}
	/* a line of its own even after output without a final newline (issue 15 item 5) */
	buf = line ? malloc(strlen(line) + 3) : NULL;
	if (buf) {
		int n = snprintf(buf, strlen(line) + 3, "%s%s\n", r->stdout_unterminated ? "\n" : "", line);
		fflush(stdout);
		if (sup_write_bounded(STDOUT_FILENO, buf, (size_t)n, STDOUT_LINE_MS) != 0)
			log_warn("could not write the outcome line to stdout (closed, or not read for %d ms)",
			         STDOUT_LINE_MS);
	}
	free(buf);
	free(line);
	free(capped);
}

/*
 * When the pod is being stopped (a SIGTERM came), the kubelet SIGKILLs us
 * --termination-grace after it: everything must be done before that.
 */
static int64_t end_deadline(const struct config *c)
{
	int64_t t = sup_check_term();

	return t ? t + c->termination_grace_ms - END_MARGIN_MS : INT64_MAX;
}

/*
 * kube_set_limit's callback for the requests after the command: a SIGTERM
 * that comes while the record is being written (an exec plugin running, a
 * slow server) cuts it short too, not only one that came before.
 */
static int64_t end_limit(void *ctx)
{
	int64_t end = end_deadline(ctx);

	return end == INT64_MAX ? 0 : end;
}

static void store_record(struct run *r, int64_t end)
{
	struct config *c = r->cfg;
	struct rec_store_opts so = {c->record, c->record_key, (size_t)c->record_max_keys, RECORD_MAX_BYTES, 0};
	struct kube_error err = {0};
	int64_t now = kube_now_ms();
	char *full;
	int rc;

	if (!c->record || !r->kc || r->out.reason == REC_CONFIG_ERROR)
		return;
	so.deadline_ms = now + c->record_timeout_ms < end ? now + c->record_timeout_ms : end;
	if (so.deadline_ms - now < 100) {
		log_error("FAILED to record the outcome in ConfigMap %s: no time left before the pod's grace period "
		          "ends (--termination-grace)",
		          c->record);
		return;
	}
	full = rec_json(&r->out, 1);
	kube_set_limit(r->kc, end_limit, c);
	rc = full ? rec_store(r->kc, &so, full, &err) : KUBE_ENOMEM;
	if (rc == KUBE_OK)
		log_info("recorded the outcome in ConfigMap %s/%s key %s", kube_namespace(r->kc), c->record,
		         c->record_key);
	else
		log_error("FAILED to record the outcome in ConfigMap %s/%s key %s: %s%s%s (the exit code is "
		          "unchanged; waiters that rely on the record will not see this run)",
		          kube_namespace(r->kc), c->record, c->record_key, kube_strerror((enum kube_rc)rc),
		          err.message[0] ? ": " : "", err.message);
	free(full);
}

/*
 * What a renewal still in flight uses when we give up waiting for it: never
 * freed under the running thread, and kept reachable so that LeakSanitizer
 * does not report it as a leak at exit.
 */
static struct {
	/* volatile: stores that are never read back must not be optimised away */
	struct keeper *volatile keeper;
	struct lock *volatile lock;
	struct kube_client *volatile kc;
} abandoned;

/* Only after the record: a successor must find the outcome when it gets the lock. */
static void release_lock(struct run *r, int64_t end)
{
	struct kube_error err;
	int64_t deadline = kube_now_ms() + RELEASE_MAX_MS;

	if (!r->lock)
		return;
	if (end < deadline)
		deadline = end;
	if (keeper_stop(r->keeper, deadline) != 0) {
		/* the keeper still owns the lock and its client: leave both to the exit */
		log_warn("lock %s not released: a renewal is still in flight (it expires by itself)", r->cfg->lock);
		abandoned.keeper = r->keeper;
		abandoned.lock = r->lock;
		abandoned.kc = r->lock_kc;
		r->keeper = NULL;
		r->lock = NULL;
		r->lock_kc = NULL;
		return;
	}
	r->keeper = NULL;
	kube_set_limit(r->lock_kc, end_limit, r->cfg); /* the lock is ours again: no other thread */
	if (deadline - kube_now_ms() < 100)
		log_warn("lock %s not released: no time left (it expires by itself)", r->cfg->lock);
	else if (lock_release(r->lock, deadline, &err) != KUBE_OK)
		log_warn("cannot release lock %s: %s (it expires by itself)", r->cfg->lock, err.message);
}

static void finish(struct run *r)
{
	int64_t end = end_deadline(r->cfg);

	compose(r);
	write_local(r);
	store_record(r, end);
	release_lock(r, end_deadline(r->cfg)); /* a SIGTERM during the record counts */
	/* last: the record write may go through the proxy */
	if (r->cfg->have_sidecar)
		sidecar_quit(&r->cfg->sidecar);
}

static int run(struct config *c)
{
	static int (*const steps[])(struct run *) = {
	    step_signals, step_connect, step_sidecar, step_wait_tcp, step_attempt, step_lock, step_command,
	};
	struct run r;
	int code = -1;

	memset(&r, 0, sizeof(r));
	r.cfg = c;
	r.t0_mono = sup_mono_ms();
	r.out.started_ms = sup_wall_ms();
	r.out.attempt = (int)c->attempt;
	r.tail = c->tail_lines > 0 ? tail_new((size_t)c->tail_lines, TAIL_LINE_LEN) : NULL;
	for (size_t i = 0; code < 0 && i < sizeof(steps) / sizeof(steps[0]); i++)
		code = steps[i](&r);
	finish(&r);
	lock_free(r.lock);
	if (r.lock_kc)
		kube_client_free(r.lock_kc);
	if (r.kc)
		kube_client_free(r.kc);
	free(r.tail_text);
	tail_free(r.tail);
	return code;
}

#ifndef UNITTEST
int main(int argc, char **argv)
{
	static struct config cfg;
	int rc;

	log_init(PROG, LOG_TEXT, LOG_INFO);
	if (parse_env(&cfg) != 0)
		return MG_EXIT_USAGE;
	rc = parse_args(&cfg, argc, argv);
	if (rc >= 0)
		return rc;
	log_init(PROG, cfg.log_format, cfg.verbose ? LOG_DEBUG : LOG_INFO);
	return run(&cfg);
}
#endif
