/*
 * release-check - after `helm upgrade --install`, watch the release's
 * workloads and pods until the release is healthy (exit 0), failed (1) or
 * the timeout passes (2); see release-check.1 and docs/design.md "Verdicts".
 *
 * main parses options, lists+watches seven collections at once through
 * lib/watch, feeds every event to the evaluator's store (pruned objects,
 * indexed) and updates the verdict after every event: the change that
 * decides the release is acted on within milliseconds, not on a poll, and
 * an update re-judges only what the event changed, so a 1000-pod release
 * costs little more per event than a small one (issue #6). On failure it
 * fetches the failing containers' logs and the pods' Events.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "duration.h"
#include "exitcodes.h"
#include "json.h"
#include "kube.h"
#include "log.h"
#include "names.h"
#include "pool.h"
#include "verdict.h"
#include "watch.h"

#define DEFAULT_TIMEOUT_MS (10LL * 60 * 1000)
#define DEFAULT_CHUNK 500          /* objects per list answer: kubectl's --chunk-size */
#define CHECK_ONCE_BUDGET_MS 30000 /* --timeout 0: one look, this long to get it */
#define TICK_MS 1000
#define HEARTBEAT_MS 30000    /* not a TTY: "still waiting" this often when quiet */
#define FETCH_BUDGET_MS 15000 /* all logs and Events after a failure */
#define MAX_LOG_TARGETS 3     /* failing objects whose logs/events are shown */
#define MAX_EVENTS 10
#define MAX_LOG_BYTES 65536
#define TABLE_MAX_ROWS 30
#define TTY_REDRAW_MS 100
/*
 * Off a terminal, progress lines are written at most every OUT_FLUSH_MS (a
 * 1000-pod release changes a thousand times in a few seconds: one write
 * each was a third of its system calls); the verdict and every log message
 * flush them first.
 */
#define OUT_FLUSH_MS 100
#define RC_REPORT_SCHEMA_VERSION                                                                                       \
	1 /* --output json: bump on an incompatible change */ /* the table of a large release is not redrawn per event \
	                                                       */

enum kind_index {
	K_RELEASES = VERDICT_RELEASES,
	K_DEPLOYMENTS = VERDICT_DEPLOYMENTS,
	K_REPLICASETS = VERDICT_REPLICASETS,
	K_STATEFULSETS = VERDICT_STATEFULSETS,
	K_DAEMONSETS = VERDICT_DAEMONSETS,
	K_JOBS = VERDICT_JOBS,
	K_PODS = VERDICT_PODS,
	K_COUNT = VERDICT_NKINDS,
};

/* the collections and their RBAC names: verdict_kinds[] (verdict.c), one entry per kind */
#define kinds verdict_kinds

struct opts {
	const char *release, *ns, *kubeconfig, *context, *selector;
	int64_t timeout_ms; /* 0: check once */
	int64_t pull_grace_ms;
	int64_t min_ready_ms; /* --min-ready */
	long logs;
	long chunk; /* --chunk-size: items per list answer; 0: whole lists */
	int json, no_helm, quiet;
	int selector_given; /* -l/RELEASE_CHECK_SELECTOR: a 400 about it is a usage error */
	enum log_level level;
};

struct check {
	const struct opts *o;
	struct kube_client *kc;
	const char *ns;
	struct verdict_store *st; /* the objects, pruned, and their rows */
	size_t first_spec;        /* K_DEPLOYMENTS with --no-helm */
	int synced[K_COUNT];
	struct verdict_counts cnt; /* of the last update */
	int have_res;              /* an update ran: cnt (and res on demand) hold a verdict */
	struct verdict_result res; /* all rows: built on demand (refresh_result) */
	int res_stale;
	int64_t start_mono, start_wall;
	int64_t last_out_mono;
	FILE *out; /* progress: stdout, or stderr with --output json */
	int printed;
	int tty, table_lines;
	int64_t last_draw, draw_due;   /* TTY redraws (kube_now_ms clock) */
	int64_t last_flush, flush_due; /* progress lines off a TTY (same clock) */
	int64_t wake_at;               /* watch alarm: a graced state expires, a redraw is due (kube_now_ms) */
	int64_t fetch_deadline;        /* for all log and Event requests after a failure */
};

static int64_t rc_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t elapsed(const struct check *c) { return kube_now_ms() - c->start_mono; }

/* ---- options ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "Usage: release-check [OPTIONS] RELEASE\n"
	           "\n"
	           "Watch a release's workloads and pods until it is healthy, failed or timed\n"
	           "out. Reads the Helm release record (Secret sh.helm.release.v1.RELEASE.vN)\n"
	           "without the helm binary and works without one (kustomize, plain YAML).\n"
	           "\n"
	           "Options:\n"
	           "  -n, --namespace NS          namespace (default: from the context or the pod)\n"
	           "      --kubeconfig PATH       kubeconfig file (default: $KUBECONFIG, in-cluster,\n"
	           "                              ~/.kube/config)\n"
	           "      --context NAME          kubeconfig context\n"
	           "  -l, --selector SEL          label selector of the workloads and pods\n"
	           "                              (default: app.kubernetes.io/instance=RELEASE)\n"
	           "      --timeout DURATION      give up after DURATION (e.g. 90s, 10m, 1h30m);\n"
	           "                              default 10m; 0: check once\n"
	           "      --output FORMAT         text (default) or json (one report on stdout)\n"
	           "      --logs N                log lines per failing container (default 20, 0: none)\n"
	           "      --image-pull-grace DURATION\n"
	           "                              how long an image pull that may heal (timeout, rate\n"
	           "                              limit) or CreateContainerConfigError may last before\n"
	           "                              it fails the release (default 60s)\n"
	           "      --min-ready DURATION    count a pod only once it has been Ready, without a\n"
	           "                              restart, this long (default 0s: at once)\n"
	           "      --chunk-size N          list N objects per request, as kubectl does (default\n"
	           "                              500; 0: each list in one answer)\n"
	           "      --no-helm               do not read the Helm release record (no Secret access)\n"
	           "  -q, --quiet                 no progress lines: only the verdict and errors\n"
	           "  -v, --verbose               print debugging details\n"
	           "  -h, --help                  show this help and exit\n"
	           "  -V, --version               show the version and exit\n"
	           "\n"
	           "Environment (the options override them):\n"
	           "  RELEASE_CHECK_RELEASE, RELEASE_CHECK_NAMESPACE, RELEASE_CHECK_CONTEXT,\n"
	           "  RELEASE_CHECK_SELECTOR, RELEASE_CHECK_TIMEOUT, RELEASE_CHECK_OUTPUT,\n"
	           "  RELEASE_CHECK_LOGS, RELEASE_CHECK_IMAGE_PULL_GRACE, RELEASE_CHECK_MIN_READY,\n"
	           "  RELEASE_CHECK_CHUNK_SIZE, RELEASE_CHECK_NO_HELM (1 or true)\n"
	           "\n"
	           "Exit status:\n"
	           "  0  healthy                 1  failed            2  timed out\n"
	           "  64 usage error             69 API server unavailable\n"
	           "  77 not authorised (RBAC)   78 configuration error (also: no such Helm release)\n");
}

/* Option values as given (environment, then command line), before they are checked. */
struct raw_opts {
	const char *timeout, *grace, *min_ready, *output, *logs, *chunk, *no_helm;
	const char *timeout_from, *grace_from, *min_ready_from, *output_from, *logs_from, *chunk_from; /* messages */
};

/* RELEASE_CHECK_*: the options' defaults, like wait-for-job's WAIT_FOR_JOB_* and migrate-runner's MR_*. */
static void parse_env(struct opts *o, struct raw_opts *r)
{
	const char *v;

	o->release = getenv("RELEASE_CHECK_RELEASE");
	o->ns = getenv("RELEASE_CHECK_NAMESPACE");
	o->context = getenv("RELEASE_CHECK_CONTEXT");
	o->selector = getenv("RELEASE_CHECK_SELECTOR");
#define ENV(field, name)                                                                                               \
	do {                                                                                                           \
		if ((v = getenv(name)) != NULL) {                                                                      \
			r->field = v;                                                                                  \
			r->field##_from = name;                                                                        \
		}                                                                                                      \
	} while (0)
	ENV(timeout, "RELEASE_CHECK_TIMEOUT");
	ENV(grace, "RELEASE_CHECK_IMAGE_PULL_GRACE");
	ENV(min_ready, "RELEASE_CHECK_MIN_READY");
	ENV(output, "RELEASE_CHECK_OUTPUT");
	ENV(logs, "RELEASE_CHECK_LOGS");
	ENV(chunk, "RELEASE_CHECK_CHUNK_SIZE");
#undef ENV
	r->no_helm = getenv("RELEASE_CHECK_NO_HELM");
}

/* Check and convert the values of r into o; -1 to go on, else the exit code. */
static int parse_values(struct opts *o, const struct raw_opts *r)
{
	char err[256], *end;

	if (r->timeout && dur_parse(r->timeout, &o->timeout_ms, err, sizeof(err)) < 0)
		return cli_usage_error("%s: %s", r->timeout_from, err);
	if (r->grace && dur_parse(r->grace, &o->pull_grace_ms, err, sizeof(err)) < 0)
		return cli_usage_error("%s: %s", r->grace_from, err);
	if (r->min_ready && dur_parse(r->min_ready, &o->min_ready_ms, err, sizeof(err)) < 0)
		return cli_usage_error("%s: %s", r->min_ready_from, err);
	if (r->output && strcmp(r->output, "json") == 0)
		o->json = 1;
	else if (r->output && strcmp(r->output, "text") != 0)
		return cli_usage_error("%s must be text or json, not \"%s\"", r->output_from, r->output);
	if (r->logs) {
		errno = 0;
		o->logs = strtol(r->logs, &end, 10);
		if (errno || end == r->logs || *end || o->logs < 0 || o->logs > 10000)
			return cli_usage_error("%s must be a number of lines from 0 to 10000, not \"%s\"", r->logs_from,
			                       r->logs);
	}
	if (r->chunk) {
		errno = 0;
		o->chunk = strtol(r->chunk, &end, 10);
		if (errno || end == r->chunk || *end || o->chunk < 0 || o->chunk > 100000)
			return cli_usage_error("%s must be a number of objects from 0 to 100000, not \"%s\"",
			                       r->chunk_from, r->chunk);
	}
	if (r->no_helm && *r->no_helm) {
		if (strcmp(r->no_helm, "1") == 0 || strcmp(r->no_helm, "true") == 0)
			o->no_helm = 1;
		else if (strcmp(r->no_helm, "0") != 0 && strcmp(r->no_helm, "false") != 0)
			return cli_usage_error("RELEASE_CHECK_NO_HELM must be 1, true, 0 or false, not \"%s\"",
			                       r->no_helm);
	}
	if (!o->release || !*o->release)
		return cli_usage_error("missing RELEASE");
	if (!name_is_dns_subdomain(o->release, 53))
		return cli_usage_error(
		    "invalid release name \"%s\" (at most 53 lowercase letters, digits, '-' and '.')", o->release);
	if (o->ns && !*o->ns)
		o->ns = NULL;
	if (o->context && !*o->context)
		o->context = NULL;
	if (o->selector && !*o->selector)
		return cli_usage_error("--selector must not be empty");
	return -1;
}

/* one option a line: clang-format would pack these fifteen two to a line */
/* clang-format off */
static const struct option longopts[] = {
    {"namespace", required_argument, NULL, 'n'},
    {"kubeconfig", required_argument, NULL, 'K'},
    {"context", required_argument, NULL, 'C'},
    {"selector", required_argument, NULL, 'l'},
    {"timeout", required_argument, NULL, 'T'},
    {"output", required_argument, NULL, 'o'},
    {"logs", required_argument, NULL, 'L'},
    {"image-pull-grace", required_argument, NULL, 'G'},
    {"min-ready", required_argument, NULL, 'M'},
    {"chunk-size", required_argument, NULL, 'S'},
    {"no-helm", no_argument, NULL, 'H'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};
/* clang-format on */

/* One option into o/r; -1 to go on, else the exit code. */
static int parse_option(int ch, char **argv, struct opts *o, struct raw_opts *r)
{
	switch (ch) {
	case 'n': o->ns = optarg; break;
	case 'K': o->kubeconfig = optarg; break;
	case 'C': o->context = optarg; break;
	case 'l': o->selector = optarg; break;
	case 'T': r->timeout = optarg, r->timeout_from = "--timeout"; break;
	case 'o': r->output = optarg, r->output_from = "--output"; break;
	case 'L': r->logs = optarg, r->logs_from = "--logs"; break;
	case 'G': r->grace = optarg, r->grace_from = "--image-pull-grace"; break;
	case 'M': r->min_ready = optarg, r->min_ready_from = "--min-ready"; break;
	case 'S': r->chunk = optarg, r->chunk_from = "--chunk-size"; break;
	case 'H': r->no_helm = "1"; break;
	case 'q': o->quiet = 1; break;
	case 'v': o->level = LOG_DEBUG; break;
	case 'h': usage(stdout); return MG_EXIT_OK;
	case 'V': printf("release-check %s\n", MG_VERSION); return MG_EXIT_OK;
	default: return cli_getopt_error(ch, argv);
	}
	return -1;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	struct raw_opts r;
	int ch, rc;

	memset(o, 0, sizeof(*o));
	memset(&r, 0, sizeof(r));
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	o->pull_grace_ms = VERDICT_DEFAULT_PULL_GRACE_MS;
	o->logs = 20;
	o->chunk = DEFAULT_CHUNK;
	o->level = LOG_INFO;
	parse_env(o, &r);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:n:l:qvhV", longopts, NULL)) != -1)
		if ((rc = parse_option(ch, argv, o, &r)) >= 0)
			return rc;
	if (optind < argc)
		o->release = argv[optind++];
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s' (one RELEASE)", argv[optind]);
	return parse_values(o, &r);
}

/* ---- the object store: the evaluator's, fed by the watch ------------------------------ */

static int store_event(struct check *c, size_t k, enum watch_event ev, const cJSON *obj)
{
	switch (ev) {
	case WATCH_RESET:
		verdict_store_relist_begin(c->st, (enum verdict_kind)k);
		c->synced[k] = 0;
		return 0;
	case WATCH_SYNCED:
		verdict_store_relist_end(c->st, (enum verdict_kind)k);
		c->synced[k] = 1;
		return 0;
	case WATCH_DELETED: verdict_store_delete(c->st, (enum verdict_kind)k, obj); return 0;
	case WATCH_ADDED:
	case WATCH_MODIFIED: {
		cJSON *mine = watch_take(obj); /* parsed with verdict_keep: no copy to make */
		return mine ? verdict_store_put_owned(c->st, (enum verdict_kind)k, mine)
		            : verdict_store_put(c->st, (enum verdict_kind)k, obj);
	}
	}
	return 0;
}

static int all_synced(const struct check *c)
{
	size_t k;
	for (k = c->first_spec; k < K_COUNT; k++)
		if (!c->synced[k])
			return 0;
	return 1;
}

/* ---- progress output ---------------------------------------------------------------- */

static const char *status_tag(enum verdict_status s)
{
	switch (s) {
	case ROW_OK: return "ok  ";
	case ROW_FAILED: return "FAIL";
	case ROW_IGNORED: return "skip";
	case ROW_PROGRESSING: break;
	}
	return "wait";
}

/*
 * The progress line's pieces without printf: a 1000-pod release prints a
 * line for each of its ~1000 watch events, and snprintf's formatting was
 * ~7 % of release-check's CPU per event (bench/RESULTS.md).
 */
static size_t put_uint(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/* "12.3s" (tenths, rounded down), like "%lld.%llds"; len ≥ 24 */
static void fmt_elapsed(int64_t ms, char *buf, size_t len)
{
	size_t n = 0;

	if (ms < 0 || len < 24) {
		snprintf(buf, len, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
		return;
	}
	n = put_uint(buf, (uint64_t)(ms / 1000));
	buf[n++] = '.';
	buf[n++] = (char)('0' + ms % 1000 / 100);
	buf[n++] = 's';
	buf[n] = '\0';
}

/* "3/4" (or "-" when desired is unknown); len ≥ 48 */
static void fmt_ready(int64_t ready, int64_t desired, char *buf, size_t len)
{
	size_t n;

	if (desired < 0) {
		snprintf(buf, len, "-");
		return;
	}
	if (ready < 0) { /* not known yet (a status without the count) */
		snprintf(buf, len, "?/%lld", (long long)desired);
		return;
	}
	if (len < 48) {
		snprintf(buf, len, "%lld/%lld", (long long)ready, (long long)desired);
		return;
	}
	n = put_uint(buf, (uint64_t)ready);
	buf[n++] = '/';
	n += put_uint(buf + n, (uint64_t)desired);
	buf[n] = '\0';
}

/* Append s to line (cap bytes, *n used) padded to width: left-aligned like %-Ns, else like %Ns. */
static void put_padded(char *line, size_t cap, size_t *n, const char *s, size_t width, int left)
{
	size_t len = strlen(s), pad = len < width ? width - len : 0;

	if (*n + len + pad + 1 > cap) /* cannot happen with the caller's sizes; cut rather than overflow */
		return;
	if (!left) {
		memset(line + *n, ' ', pad);
		*n += pad;
	}
	memcpy(line + *n, s, len);
	*n += len;
	if (left) {
		memset(line + *n, ' ', pad);
		*n += pad;
	}
}

/* "[%7s] %s %-36s %5s  %-18s %s\n" of elapsed, status, kind/name, ready, state, reason */
static void print_row_line(struct check *c, const struct verdict_row *r)
{
	char el[32], rd[48], obj[16 + VERDICT_NAME_LEN + 2];
	char line[2 + sizeof(el) + 6 + sizeof(obj) + 1 + sizeof(rd) + 2 + VERDICT_STATE_LEN + 1 + VERDICT_REASON_LEN +
	          8];
	size_t n = 0, kl = strnlen(r->kind, 15), nl = strnlen(r->name, VERDICT_NAME_LEN);

	fmt_elapsed(elapsed(c), el, sizeof(el));
	fmt_ready(r->ready, r->desired, rd, sizeof(rd));
	memcpy(obj, r->kind, kl);
	obj[kl] = '/';
	memcpy(obj + kl + 1, r->name, nl);
	obj[kl + 1 + nl] = '\0';
	line[n++] = '[';
	put_padded(line, sizeof(line), &n, el, 7, 0);
	put_padded(line, sizeof(line), &n, "] ", 0, 1);
	put_padded(line, sizeof(line), &n, status_tag(r->status), 0, 1);
	put_padded(line, sizeof(line), &n, " ", 0, 1);
	put_padded(line, sizeof(line), &n, obj, 36, 1);
	put_padded(line, sizeof(line), &n, " ", 0, 1);
	put_padded(line, sizeof(line), &n, rd, 5, 0);
	put_padded(line, sizeof(line), &n, "  ", 0, 1);
	put_padded(line, sizeof(line), &n, r->state, 18, 1);
	put_padded(line, sizeof(line), &n, " ", 0, 1);
	put_padded(line, sizeof(line), &n, r->reason, 0, 1);
	line[n++] = '\n';
	fwrite(line, 1, n, c->out);
}

static int term_width(const struct check *c)
{
	struct winsize ws;
	if (ioctl(fileno(c->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 100;
}

/* All rows of the last update into c->res, when an update ran since they were built. */
static int refresh_result(struct check *c)
{
	if (!c->res_stale)
		return 0;
	verdict_result_free(&c->res);
	if (verdict_store_result(c->st, &c->res) < 0) {
		log_error("out of memory");
		return -1;
	}
	c->res_stale = 0;
	return 0;
}

/* TTY: the table redrawn in place (cursor up over the last drawing, clear below). */
static void draw_table(struct check *c)
{
	int width = term_width(c), lines = 0, shown = 0;
	size_t i, hidden = 0;
	char el[32], line[1024];

	if (!c->have_res || refresh_result(c) < 0)
		return;
	c->last_draw = kube_now_ms();
	c->draw_due = 0;
	if (c->table_lines)
		fprintf(c->out, "\033[%dA\033[J", c->table_lines);
	fmt_elapsed(elapsed(c), el, sizeof(el));
	snprintf(line, sizeof(line), "release %s in %s: %s (%s)", c->o->release, c->ns, verdict_name(c->res.verdict),
	         el);
	fprintf(c->out, "%.*s\n", width - 1, line);
	snprintf(line, sizeof(line), "%-40s %7s  %-18s %s", "OBJECT", "READY", "STATE", "REASON");
	fprintf(c->out, "%.*s\n", width - 1, line);
	lines = 2;
	for (i = 0; i < c->res.nrows; i++) {
		const struct verdict_row *r = &c->res.rows[i];
		char rd[48], obj[16 + VERDICT_NAME_LEN + 2];
		if (r->status == ROW_IGNORED)
			continue;
		/* the pods that are fine are summed up by their workloads */
		if (shown >= TABLE_MAX_ROWS || (r->status == ROW_OK && strcmp(r->kind, "Pod") == 0)) {
			hidden++;
			continue;
		}
		fmt_ready(r->ready, r->desired, rd, sizeof(rd));
		snprintf(obj, sizeof(obj), "%s/%s", r->kind, r->name);
		snprintf(line, sizeof(line), "%-40s %7s  %-18s %s", obj, rd, r->state, r->reason);
		fprintf(c->out, "%.*s\n", width - 1, line);
		lines++;
		shown++;
	}
	if (hidden) {
		fprintf(c->out, "(%zu more: ready pods and objects not shown)\n", hidden);
		lines++;
	}
	fflush(c->out);
	c->table_lines = lines;
}

/* Not a TTY: one line per object whose state changed (verdict_change_fn). */
static void on_row(void *ctx, const struct verdict_row *r, int gone)
{
	struct check *c = ctx;
	char el[32];

	if (c->tty || c->o->quiet)
		return;
	if (gone) {
		fmt_elapsed(elapsed(c), el, sizeof(el));
		fprintf(c->out, "[%7s] gone %s/%s\n", el, r->kind, r->name);
	} else {
		print_row_line(c, r);
	}
	c->printed = 1;
}

/* ---- evaluation and the watch callbacks ---------------------------------------------- */

/* Write the buffered progress lines now (OUT_FLUSH_MS). */
static void flush_out(struct check *c, int64_t now)
{
	fflush(c->out);
	c->last_flush = now;
	c->flush_due = 0;
}

/* 1: the release is decided (or --timeout 0 had its look), 0: go on, -1: out of memory. */
static int evaluate(struct check *c)
{
	struct verdict_opts vo;
	int64_t now = kube_now_ms(); /* graces run on the monotonic clock, from our first sighting */

	memset(&vo, 0, sizeof(vo));
	vo.release = c->o->no_helm ? NULL : c->o->release;
	vo.now_ms = now;
	vo.pull_grace_ms = c->o->pull_grace_ms;
	vo.min_ready_ms = c->o->min_ready_ms;
	/* first_seen NULL: the store remembers when it first saw each grace key */
	c->printed = 0;
	if (verdict_store_update(c->st, &vo, on_row, c, &c->cnt) < 0)
		return -1;
	c->have_res = 1;
	c->res_stale = 1;
	if (c->printed) {
		int64_t mono = kube_now_ms();
		c->last_out_mono = mono;
		if (mono - c->last_flush >= OUT_FLUSH_MS)
			flush_out(c, mono);
		else if (!c->flush_due)
			c->flush_due = c->last_flush + OUT_FLUSH_MS;
	}
	if (c->tty) {
		/* a large release changes many times a second: redraw at most every TTY_REDRAW_MS */
		int64_t mono = kube_now_ms();
		if (mono - c->last_draw >= TTY_REDRAW_MS)
			draw_table(c);
		else if (!c->draw_due)
			c->draw_due = c->last_draw + TTY_REDRAW_MS;
	}
	return c->cnt.verdict != VERDICT_PROGRESSING || c->o->timeout_ms == 0;
}

/* The watch alarm: the earliest of a grace expiring and a pending redraw. */
static void set_alarm(struct check *c);

/* recheck_at_ms is on the kube_now_ms clock (evaluate): a little after it */
static int64_t recheck_mono(const struct check *c)
{
	int64_t now = kube_now_ms(), at = c->cnt.recheck_at_ms + 5;
	return at < now ? now : at;
}

static void set_alarm(struct check *c)
{
	c->wake_at = c->have_res && c->cnt.recheck_at_ms ? recheck_mono(c) : 0;
	if (c->draw_due && (!c->wake_at || c->draw_due < c->wake_at))
		c->wake_at = c->draw_due;
	if (c->flush_due && (!c->wake_at || c->flush_due < c->wake_at))
		c->wake_at = c->flush_due;
}

static int on_event(void *ctx, size_t spec_index, enum watch_event ev, const cJSON *obj)
{
	struct check *c = ctx;
	size_t k = spec_index + c->first_spec;
	int r;

	if (store_event(c, k, ev, obj) < 0) {
		log_error("out of memory");
		return -1;
	}
	if (ev == WATCH_RESET || !all_synced(c))
		return 0;
	r = evaluate(c);
	if (r < 0)
		log_error("out of memory");
	/*
	 * A graced state (an image that may never pull) fails at recheck_at
	 * even if no event comes: set the watch loop's alarm for it.
	 */
	if (r == 0)
		set_alarm(c);
	return r;
}

static int on_tick(void *ctx)
{
	struct check *c = ctx;
	int64_t now = kube_now_ms();

	/* the alarm of a grace period (or a heartbeat): judge again */
	if (c->have_res && c->cnt.recheck_at_ms && all_synced(c) && recheck_mono(c) <= now) {
		int r = evaluate(c);
		if (r != 0)
			return r;
	}
	if (c->flush_due && now >= c->flush_due)
		flush_out(c, now);
	if (c->tty) {
		draw_table(c);
	} else if (!c->o->quiet && c->have_res && now - c->last_out_mono >= HEARTBEAT_MS && refresh_result(c) == 0) {
		char el[32];
		fmt_elapsed(elapsed(c), el, sizeof(el));
		fprintf(c->out, "[%7s] still %s: %s\n", el, verdict_name(c->res.verdict), c->res.summary);
		fflush(c->out);
		c->last_out_mono = now;
	}
	set_alarm(c);
	return 0;
}

static void on_unavailable(void *ctx, const struct kube_error *err)
{
	struct check *c = ctx;
	log_warn("API server %s unavailable, retrying until the timeout: %s", kube_server(c->kc), err->message);
}

/* ---- after a failure: logs and Events ------------------------------------------------ */

static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Log text for a terminal: control characters other than tab become '?'. */
static void clean_text(char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f)
			*s = '?';
	}
}

/*
 * GET pods/NAME/log. A crash loop's explanation is in the previous
 * instance; when there is none (400), fall back to the current one.
 * Returns the text (caller frees) or NULL with why in errbuf.
 */
static char *fetch_logs(struct check *c, const char *pod, const char *container, int *previous, char *errbuf,
                        size_t errlen)
{
	char path[1024], esc[512];
	struct kube_response resp;
	struct kube_error err;
	int rc;

	if (!kube_query_escape(container, esc, sizeof(esc)))
		return NULL;
	for (;;) {
		snprintf(path, sizeof(path),
		         "/api/v1/namespaces/%s/pods/%s/log?container=%s&tailLines=%ld&limitBytes=%d%s", c->ns, pod,
		         esc, c->o->logs, MAX_LOG_BYTES, *previous ? "&previous=true" : "");
		memset(&resp, 0, sizeof(resp));
		memset(&err, 0, sizeof(err));
		rc = kube_request(c->kc, "GET", path, NULL, NULL, 0, c->fetch_deadline, &resp, &err);
		if (rc == KUBE_OK) {
			char *text = resp.body;
			resp.body = NULL;
			kube_response_free(&resp);
			if (!text)
				text = strdup("");
			if (text)
				clean_text(text);
			return text;
		}
		kube_response_free(&resp);
		if (*previous && rc == KUBE_EINVALID) {
			*previous = 0;
			continue;
		}
		if (rc == KUBE_EFORBIDDEN)
			snprintf(errbuf, errlen, "forbidden: RBAC needs get on pods/log in namespace %s", c->ns);
		else
			copy_str(errbuf, errlen, err.message[0] ? err.message : kube_strerror((enum kube_rc)rc));
		return NULL;
	}
}

static int64_t event_time(const cJSON *e)
{
	static const char *const fields[] = {"lastTimestamp", "eventTime", "series.lastObservedTime", "firstTimestamp",
	                                     "metadata.creationTimestamp"};
	size_t i;
	int64_t ms;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (json_parse_time(json_str(e, fields[i]), &ms) == 0)
			return ms;
	return 0;
}

static int cmp_event(const void *a, const void *b)
{
	int64_t ta = event_time(*(const cJSON *const *)a), tb = event_time(*(const cJSON *const *)b);
	return ta < tb ? -1 : ta > tb;
}

/*
 * The object's most recent Events (oldest first), as a JSON array of
 * {time,type,reason,message,count}; NULL with why in errbuf.
 */
static cJSON *fetch_events(struct check *c, const char *kind, const char *name, char *errbuf, size_t errlen)
{
	char path[2048], sel[600], esc[1024];
	cJSON *list = NULL, *out = NULL;
	const cJSON *items, *e;
	const cJSON **v = NULL;
	struct kube_error err;
	size_t n = 0, i;
	int rc;

	snprintf(sel, sizeof(sel), "involvedObject.kind=%s,involvedObject.name=%s", kind, name);
	if (!kube_query_escape(sel, esc, sizeof(esc)))
		return NULL;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events?fieldSelector=%s", c->ns, esc);
	memset(&err, 0, sizeof(err));
	rc = kube_get_json(c->kc, path, c->fetch_deadline, &list, &err);
	if (rc != KUBE_OK) {
		if (rc == KUBE_EFORBIDDEN)
			snprintf(errbuf, errlen, "forbidden: RBAC needs list on events in namespace %s", c->ns);
		else
			copy_str(errbuf, errlen, err.message[0] ? err.message : kube_strerror((enum kube_rc)rc));
		return NULL;
	}
	items = json_path(list, "items");
	out = cJSON_CreateArray();
	if (!out || !cJSON_IsArray(items))
		goto done;
	v = calloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*v));
	if (!v)
		goto done;
	cJSON_ArrayForEach (e, items)
		v[n++] = e;
	qsort(v, n, sizeof(*v), cmp_event);
	for (i = n > MAX_EVENTS ? n - MAX_EVENTS : 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		char ts[32], msg[1024];
		int64_t t = event_time(v[i]);
		if (!o)
			break;
		snprintf(msg, sizeof(msg), "%s", json_str(v[i], "message") ? json_str(v[i], "message") : "");
		clean_text(msg);
		for (char *p = msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
		cJSON_AddStringToObject(o, "time", t ? json_format_time(t, ts, sizeof(ts)) : "");
		cJSON_AddStringToObject(o, "type", json_str(v[i], "type") ? json_str(v[i], "type") : "");
		cJSON_AddStringToObject(o, "reason", json_str(v[i], "reason") ? json_str(v[i], "reason") : "");
		cJSON_AddStringToObject(o, "message", msg);
		cJSON_AddNumberToObject(o, "count", (double)json_int(v[i], "count", json_int(v[i], "series.count", 1)));
		cJSON_AddItemToArray(out, o);
	}
done:
	free(v);
	cJSON_Delete(list);
	return out;
}

/* ---- the final report ------------------------------------------------------------------ */

static void add_logs_json(cJSON *obj, const char *pod, const char *container, int previous, const char *text,
                          const char *why)
{
	cJSON *l = cJSON_AddObjectToObject(obj, "logs"), *lines;
	const char *p = text;

	if (!l)
		return;
	cJSON_AddStringToObject(l, "pod", pod);
	cJSON_AddStringToObject(l, "container", container);
	cJSON_AddBoolToObject(l, "previous", previous);
	if (!text) {
		cJSON_AddStringToObject(l, "error", why);
		return;
	}
	lines = cJSON_AddArrayToObject(l, "lines");
	while (lines && p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, n);
		if (line) {
			cJSON_AddItemToArray(lines, cJSON_CreateString(line));
			free(line);
		}
		p = nl ? nl + 1 : NULL;
	}
}

/*
 * Explain each failing object: its reason, the failing container's last
 * log lines and recent Events. Text on c->out or members of the JSON rows.
 */
static void explain_failures(struct check *c, cJSON *json_objs)
{
	size_t i, targets = 0;
	cJSON *jrow = json_objs ? json_objs->child : NULL;

	c->fetch_deadline = kube_now_ms() + FETCH_BUDGET_MS;

	for (i = 0; i < c->res.nrows; i++, jrow = jrow ? jrow->next : NULL) {
		const struct verdict_row *r = &c->res.rows[i];
		char why[512];

		if (r->status != ROW_FAILED)
			continue;
		if (!json_objs)
			fprintf(stdout, "  %s/%s: %s\n", r->kind, r->name, r->reason);
		if (targets >= MAX_LOG_TARGETS || (!r->log_container[0] && !r->events_name[0]))
			continue;
		targets++;
		if (r->log_container[0] && c->o->logs > 0) {
			int prev = r->log_previous;
			char *text = fetch_logs(c, r->log_pod, r->log_container, &prev, why, sizeof(why));
			if (json_objs) {
				add_logs_json(jrow, r->log_pod, r->log_container, prev, text, why);
			} else if (!text) {
				fprintf(stdout, "    logs of %s/%s: not available (%s)\n", r->log_pod, r->log_container,
				        why);
			} else {
				const char *p = text;
				fprintf(stdout, "    logs of %s/%s%s, last %ld lines:\n", r->log_pod, r->log_container,
				        prev ? " (previous instance)" : "", c->o->logs);
				if (!*p)
					fprintf(stdout, "      (empty)\n");
				while (*p) {
					const char *nl = strchr(p, '\n');
					int n = nl ? (int)(nl - p) : (int)strlen(p);
					fprintf(stdout, "      | %.*s\n", n, p);
					p += n + (nl ? 1 : 0);
				}
			}
			free(text);
		}
		if (r->events_name[0]) {
			cJSON *evs = fetch_events(c, r->events_kind, r->events_name, why, sizeof(why));
			const cJSON *e;
			if (json_objs) {
				if (evs)
					cJSON_AddItemToObject(jrow, "events", evs);
				else
					cJSON_AddStringToObject(jrow, "eventsError", why);
				continue;
			}
			if (!evs) {
				fprintf(stdout, "    events of %s/%s: not available (%s)\n", r->events_kind,
				        r->events_name, why);
				continue;
			}
			if (cJSON_GetArraySize(evs) == 0)
				fprintf(stdout, "    events of %s/%s: none\n", r->events_kind, r->events_name);
			else
				fprintf(stdout, "    events of %s/%s:\n", r->events_kind, r->events_name);
			cJSON_ArrayForEach (e, evs) {
				int64_t cnt = json_int(e, "count", 1);
				fprintf(stdout, "      %s  %-7s %-22s %s", json_str(e, "time"), json_str(e, "type"),
				        json_str(e, "reason"), json_str(e, "message"));
				if (cnt > 1)
					fprintf(stdout, " (x%lld)", (long long)cnt);
				fputc('\n', stdout);
			}
			cJSON_Delete(evs);
		}
	}
}

/* The rows that keep the release from being healthy (after a timeout). */
static void print_pending(struct check *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->res.nrows; i++) {
		const struct verdict_row *r = &c->res.rows[i];
		char rd[48];
		if (r->status != ROW_PROGRESSING)
			continue;
		if (n++ == TABLE_MAX_ROWS) {
			fprintf(stdout, "  ...\n");
			break;
		}
		fmt_ready(r->ready, r->desired, rd, sizeof(rd));
		fprintf(stdout, "  %s/%s %s %s: %s\n", r->kind, r->name, rd, r->state, r->reason);
	}
	if (!n)
		fprintf(stdout, "  %s\n", c->res.summary);
}

/* The failed migration's exit code (the first failed Job's, from its termination message), when known. */
static void add_migration_exit_code(const struct check *c, cJSON *rep)
{
	size_t i;

	for (i = 0; c->have_res && i < c->res.nrows; i++) {
		const struct verdict_row *r = &c->res.rows[i];
		if (r->status == ROW_FAILED && strcmp(r->kind, "Job") == 0 && r->exit_code >= 0) {
			cJSON_AddNumberToObject(rep, "migrationExitCode", (double)r->exit_code);
			return;
		}
	}
}

static void print_json_report(struct check *c, const char *verdict, int code, const char *error)
{
	cJSON *res = c->have_res && refresh_result(c) == 0 ? verdict_result_json(&c->res) : NULL;
	cJSON *rep = cJSON_CreateObject(), *objs = NULL, *helm = NULL;
	char ts[32];
	char *s;
	size_t i = 0;

	if (!rep || (c->have_res && !res)) {
		log_error("out of memory");
		cJSON_Delete(rep);
		cJSON_Delete(res);
		return;
	}
	/* 1: the first versioned report (issue 14); rows say failsInSeconds, not failsAt */
	cJSON_AddNumberToObject(rep, "schemaVersion", RC_REPORT_SCHEMA_VERSION);
	cJSON_AddStringToObject(rep, "verdict", verdict);
	cJSON_AddNumberToObject(rep, "exitCode", code);
	add_migration_exit_code(c, rep);
	if (error)
		cJSON_AddStringToObject(rep, "error", error);
	if (res)
		cJSON_AddStringToObject(rep, "summary", json_str(res, "summary"));
	cJSON_AddStringToObject(rep, "release", c->o->release);
	cJSON_AddStringToObject(rep, "namespace", c->ns ? c->ns : "");
	cJSON_AddStringToObject(rep, "selector", c->o->selector);
	cJSON_AddStringToObject(rep, "startedAt", json_format_time(c->start_wall, ts, sizeof(ts)));
	cJSON_AddStringToObject(rep, "finishedAt", json_format_time(rc_wall_ms(), ts, sizeof(ts)));
	cJSON_AddNumberToObject(rep, "elapsedSeconds", (double)elapsed(c) / 1000.0);
	if (res) {
		helm = cJSON_DetachItemFromObjectCaseSensitive(res, "helm");
		objs = cJSON_DetachItemFromObjectCaseSensitive(res, "objects");
	}
	if (helm)
		cJSON_AddItemToObject(rep, "helm", helm);
	if (objs) {
		cJSON *o;
		cJSON_AddItemToObject(rep, "objects", objs);
		cJSON_ArrayForEach (o, objs) {
			int64_t since;
			if (i >= c->res.nrows)
				break;
			/* since_ms is on the monotonic clock of the updates */
			since = c->res.rows[i].since_ms - c->start_mono;
			cJSON_AddNumberToObject(o, "sinceSeconds", (double)(since > 0 ? since : 0) / 1000.0);
			i++;
		}
		if (code == MG_EXIT_FAILED)
			explain_failures(c, objs);
	}
	cJSON_Delete(res);
	s = cJSON_Print(rep);
	if (s) {
		fprintf(stdout, "%s\n", s);
		cJSON_free(s);
	}
	fflush(stdout);
	cJSON_Delete(rep);
}

static void finish_table(struct check *c)
{
	if (c->tty && c->have_res) {
		draw_table(c);
		c->table_lines = 0;
	}
}

/* ---- errors ------------------------------------------------------------------------------ */

/* 403: which verb on which resource, for whom, and the Role rule that fixes it. */
static void print_rbac_hint(struct check *c, const struct kube_error *err)
{
	const struct verdict_kind_info *ki = NULL;
	const char *verb = err->reason[0] ? err->reason : "list";
	size_t k;

	log_error("%s", err->message);
	for (k = c->first_spec; k < K_COUNT; k++) {
		char pfx[128];
		snprintf(pfx, sizeof(pfx), "cannot %s %s (", verb, kinds[k].what);
		if (strncmp(err->message, pfx, strlen(pfx)) == 0)
			ki = &kinds[k];
	}
	if (!ki) {
		log_error("%s is not allowed to read the release's objects in namespace %s; RBAC must grant list and "
		          "watch on secrets, pods, jobs.batch and deployments, replicasets, statefulsets, daemonsets "
		          "(apps)",
		          kube_identity(c->kc), c->ns);
		return;
	}
	log_error("%s may not %s %s in namespace %s. release-check needs list and watch on it: add this rule to a "
	          "Role in %s bound to %s:\n"
	          "  - apiGroups: [\"%s\"]\n"
	          "    resources: [\"%s\"]\n"
	          "    verbs: [\"list\", \"watch\"]%s",
	          kube_identity(c->kc), verb, ki->what, c->ns, c->ns, kube_identity(c->kc), ki->group, ki->resource,
	          ki == &kinds[K_RELEASES] ? "\n(or pass --no-helm to skip the Helm release record)" : "");
}

/* ---- main ---------------------------------------------------------------------------------- */

/* The watched collections: the release records (unless --no-helm) and the selected objects. */
struct specs {
	struct watch_spec s[K_COUNT];
	char paths[K_COUNT][512];
	size_t n;
};

static void build_specs(const struct check *c, struct specs *sp)
{
	size_t k;

	memset(sp, 0, sizeof(*sp));
	for (k = c->first_spec; k < K_COUNT; k++, sp->n++) {
		snprintf(sp->paths[k], sizeof(sp->paths[k]), "%s/namespaces/%s/%s", kinds[k].api_prefix, c->ns,
		         kinds[k].resource);
		sp->s[sp->n].path = sp->paths[k];
		sp->s[sp->n].what = kinds[k].what;
		/*
		 * Every Helm record of the namespace, metadata only (never the
		 * payload): the current revision of ours, and the names of the
		 * others when ours does not exist.
		 */
		sp->s[sp->n].label_selector = k == K_RELEASES ? "owner=helm" : c->o->selector;
		sp->s[sp->n].metadata_only = k == K_RELEASES;
		sp->s[sp->n].keep = verdict_keep((enum verdict_kind)k);
	}
}

/* The client and the store; -1 to go on, else the exit code. */
static int setup(struct check *c, const struct opts *o)
{
	struct kube_conn_opts co;
	struct kube_error err;

	memset(c, 0, sizeof(*c));
	c->o = o;
	c->start_mono = kube_now_ms();
	c->start_wall = rc_wall_ms();
	c->last_out_mono = c->start_mono;
	c->out = o->json ? stderr : stdout;
	c->tty = !o->quiet && isatty(fileno(c->out)) && getenv("TERM") && strcmp(getenv("TERM"), "dumb") != 0;
	if (!c->tty) { /* OUT_FLUSH_MS */
		static char outbuf[16384];
		setvbuf(c->out, outbuf, _IOFBF, sizeof(outbuf));
		log_flush_first(c->out);
	}
	c->first_spec = o->no_helm ? K_DEPLOYMENTS : K_RELEASES;
	memset(&co, 0, sizeof(co));
	co.kubeconfig = o->kubeconfig;
	co.context = o->context;
	co.namespace = o->ns;
	memset(&err, 0, sizeof(err));
	if (kube_client_new(&co, &c->kc, &err) != KUBE_OK) {
		log_error("%s", err.message);
		if (o->json)
			print_json_report(c, "error", MG_EXIT_CONFIG, err.message);
		return MG_EXIT_CONFIG;
	}
	c->ns = kube_namespace(c->kc);
	c->st = verdict_store_new();
	if (!c->st) {
		log_error("out of memory");
		return MG_EXIT_UNAVAILABLE;
	}
	return -1;
}

/* List+watch until decided, timed out or an error; the watch's result. */
static int watch_release(struct check *c, struct kube_error *err, char *tmo, size_t tmolen)
{
	const struct opts *o = c->o;
	static struct specs sp;
	struct watch_opts wo;
	int rc;

	build_specs(c, &sp);
	memset(&wo, 0, sizeof(wo));
	wo.timeout_seconds = 300;
	/* the TTY clock ticks every second; CI logs only need the heartbeat */
	wo.tick_ms = c->tty ? TICK_MS : HEARTBEAT_MS / 6;
	wo.on_tick = on_tick;
	wo.on_unavailable = on_unavailable;
	wo.deadline_ms = c->start_mono + (o->timeout_ms > 0 ? o->timeout_ms : CHECK_ONCE_BUDGET_MS);
	wo.wake_at = &c->wake_at;
	wo.list_chunk = (unsigned)o->chunk;
	if (o->timeout_ms > 0)
		dur_format(o->timeout_ms, tmo, tmolen);
	else
		snprintf(tmo, tmolen, "check once");
	if (!c->tty && !o->quiet)
		fprintf(c->out, "checking release %s in namespace %s (selector %s, timeout %s, API %s)\n", o->release,
		        c->ns, o->selector, tmo, kube_server(c->kc));
	memset(err, 0, sizeof(*err));
	rc = watch_run(c->kc, sp.s, sp.n, &wo, on_event, c, err);
	if (rc == KUBE_ECANCELLED)
		rc = KUBE_ENOMEM; /* the callbacks only abort when out of memory */
	if (c->have_res && refresh_result(c) < 0) {
		c->have_res = 0;
		if (rc == KUBE_OK)
			rc = KUBE_ENOMEM;
	}
	finish_table(c);
	return rc;
}

/* The release row of a missing release: its reason names the releases that exist. */
static const char *missing_release_reason(const struct check *c)
{
	size_t i;

	for (i = 0; i < c->res.nrows; i++)
		if (strcmp(c->res.rows[i].kind, "Release") == 0)
			return c->res.rows[i].reason;
	return "no such Helm release";
}

/* A decided (or checked-once) release: the verdict line, the explanations; the exit code. */
static int report_verdict(struct check *c, const char *tmo, const char **word)
{
	const char *rel = c->o->release;
	char el[32];

	fmt_elapsed(elapsed(c), el, sizeof(el));
	if (c->res.release_missing) {
		/* a misspelled release or namespace: configuration, not a failed release (78) */
		*word = "error";
		log_error("release %s: %s", rel, missing_release_reason(c));
		return MG_EXIT_CONFIG;
	}
	if (c->res.verdict == VERDICT_HEALTHY) {
		*word = "healthy";
		if (!c->o->json)
			fprintf(stdout, "release %s is healthy after %s: %s\n", rel, el, c->res.summary);
		return MG_EXIT_OK;
	}
	if (c->res.verdict == VERDICT_FAILED) {
		*word = "failed";
		if (!c->o->json) {
			fprintf(stdout, "release %s FAILED after %s:\n", rel, el);
			explain_failures(c, NULL);
		}
		return MG_EXIT_FAILED;
	}
	*word = "timeout"; /* --timeout 0: one look, not decided */
	if (!c->o->json) {
		fprintf(stdout, "release %s: timeout (%s), not ready yet:\n", rel, tmo);
		print_pending(c);
	}
	return MG_EXIT_TIMEOUT;
}

/* The watch ended without a verdict: timed out or an error; the exit code. */
static int report_error(struct check *c, int rc, const struct kube_error *err, const char *tmo, const char **word)
{
	int code = kube_exit_code((enum kube_rc)rc, err,
	                          (c->o->timeout_ms == 0 ? KUBE_EXIT_CHECK_ONCE : 0) |
	                              (c->o->selector_given ? KUBE_EXIT_USER_SELECTOR : 0));

	*word = code == MG_EXIT_TIMEOUT ? "timeout" : "error";
	if (code == MG_EXIT_TIMEOUT) {
		if (!c->o->json) {
			fprintf(stdout, "release %s: timeout after %s, still waiting for:\n", c->o->release, tmo);
			if (c->have_res)
				print_pending(c);
			else
				fprintf(stdout, "  the first complete list of the release's objects\n");
		}
	} else if (rc == KUBE_EFORBIDDEN) {
		print_rbac_hint(c, err);
	} else if (rc == KUBE_EUNAUTHORIZED) {
		log_error("%s", err->message);
		log_error("the API server rejected the credentials of %s (%s): 401 Unauthorized; the token is invalid, "
		          "expired or revoked",
		          kube_identity(c->kc), kube_source(c->kc));
	} else if (rc == KUBE_ETIMEOUT && c->o->timeout_ms == 0) {
		log_error("could not check within %d s: %s", CHECK_ONCE_BUDGET_MS / 1000, err->message);
	} else if (rc == KUBE_ETIMEOUT) {
		log_error("API server %s unavailable until the timeout: %s", kube_server(c->kc), err->message);
	} else if (rc == KUBE_EINVALID && code == MG_EXIT_USAGE) {
		log_error("the API server rejected the selector: %s", err->message);
	} else {
		log_error("%s: %s", kube_strerror((enum kube_rc)rc), err->message);
	}
	return code;
}

static int run(int argc, char **argv)
{
	static struct check c; /* the store's tables are large: not on the stack */
	struct opts o;
	struct kube_error err;
	char default_sel[128], tmo[32];
	const char *word = "error";
	int rc, code;

	log_init("release-check", LOG_TEXT, LOG_INFO);
	rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	log_init("release-check", LOG_TEXT, o.quiet && o.level == LOG_INFO ? LOG_WARN : o.level);
	signal(SIGPIPE, SIG_IGN);
	o.selector_given = o.selector != NULL;
	if (!o.selector) {
		snprintf(default_sel, sizeof(default_sel), "app.kubernetes.io/instance=%s", o.release);
		o.selector = default_sel;
	}
	code = setup(&c, &o);
	if (code < 0) {
		rc = watch_release(&c, &err, tmo, sizeof(tmo));
		code = rc == KUBE_OK ? report_verdict(&c, tmo, &word) : report_error(&c, rc, &err, tmo, &word);
		if (o.json)
			print_json_report(&c, word, code,
			                  strcmp(word, "error") != 0 ? NULL
			                  : c.res.release_missing    ? missing_release_reason(&c)
			                  : err.message[0]           ? err.message
			                                             : "error");
		else
			fflush(stdout);
	}
	verdict_result_free(&c.res);
	verdict_store_free(c.st);
	kube_client_free(c.kc);
	return code;
}

#ifndef UNITTEST
int main(int argc, char **argv)
{
	pool_install(); /* before any cJSON allocation: every tree is the pool's */
	return run(argc, argv);
}
#endif
