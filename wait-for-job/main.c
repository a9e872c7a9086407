/*
 * wait-for-job - block until a Kubernetes Job (or every Job matching a
 * selector) succeeded; exit 1 as soon as one failed.
 *
 * Runs as the init container of application pods. It watches instead of
 * polling, survives API hiccups and token rotation, and with --record asks
 * migrate-runner's outcome record when the Job is gone (deleted by
 * ttlSecondsAfterFinished: k8s-wait-for#50, helm#30533).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "duration.h"
#include "exitcodes.h"
#include "json.h"
#include "kube.h"
#include "log.h"
#include "names.h"
#include "record.h"
#include "verdict.h"
#include "watch.h"

#define HEARTBEAT_MS 60000
#define CHECK_ONCE_BUDGET_MS 30000
#define MAX_TRACKED 4096

struct opts {
	const char *job;
	const char *selector;
	const char *record;
	const char *ns;
	const char *kubeconfig;
	const char *context;
	int64_t timeout_ms; /* -1 = none */
	enum log_format log_format;
	enum log_level level;
};

struct tracked {
	char name[254];
	struct job_state st;
	int live; /* still in the latest view */
};

/* The Role rule that lets us read one watched collection (for 403 hints). */
struct rbac_rule {
	const char *api_group; /* "" for the core group */
	const char *resource;
	const char *name; /* the resourceNames entry, or NULL (a label selector) */
};

/* migrate-runner's outcome record for the Job, read by lib/record.c (the one codec) */
struct outcome {
	int present; /* the key exists and is a record */
	struct rec_view v;
};

struct waiter {
	const struct opts *o;
	const char *ns;
	char timeout[32]; /* --timeout as printed, "none" without one */
	int check_once;
	/* what is watched */
	struct watch_spec specs[2];
	struct rbac_rule rules[2];
	size_t nspecs;
	char paths[2][512], fields[2][300];
	int synced[2];
	int listing[2]; /* between RESET and SYNCED of a (re)list */
	/* single-Job mode */
	int job_present;
	struct job_state job;
	struct outcome rec;
	/* selector mode */
	struct tracked *jobs;
	size_t njobs;
	/* outcome */
	enum job_verdict verdict;
	int decided_by_record;
	char failed_name[254];
	struct job_state failed_state;
	char last_state[512];
	int64_t start_ms;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: wait-for-job [OPTIONS] JOB_NAME\n"
	           "       wait-for-job [OPTIONS] -l SELECTOR\n"
	           "\n"
	           "Wait until the Kubernetes Job JOB_NAME (or every Job matching SELECTOR, at\n"
	           "least one) has succeeded. Exit 1 as soon as one has failed.\n"
	           "\n"
	           "Options:\n"
	           "  -n, --namespace NS       namespace (default: from the context or the pod)\n"
	           "      --kubeconfig PATH    kubeconfig file (default: $KUBECONFIG, in-cluster,\n"
	           "                           ~/.kube/config)\n"
	           "      --context NAME       kubeconfig context\n"
	           "  -l, --selector SELECTOR  wait for every Job matching this label selector\n"
	           "      --timeout DURATION   give up after DURATION (e.g. 90s, 10m, 1h30m);\n"
	           "                           default: wait forever; 0: check once\n"
	           "      --record CONFIGMAP   when the Job does not exist, take the outcome\n"
	           "                           migrate-runner recorded in this ConfigMap\n"
	           "      --log-format FORMAT  text (default) or json\n"
	           "  -q, --quiet              print errors only\n"
	           "  -v, --verbose            print debugging details\n"
	           "  -h, --help               show this help and exit\n"
	           "  -V, --version            show the version and exit\n"
	           "\n"
	           "Environment (used when the option is not given):\n"
	           "  WAIT_FOR_JOB_NAME, WAIT_FOR_JOB_SELECTOR, WAIT_FOR_JOB_NAMESPACE,\n"
	           "  WAIT_FOR_JOB_TIMEOUT, WAIT_FOR_JOB_RECORD, WAIT_FOR_JOB_LOG_FORMAT\n"
	           "\n"
	           "Exit status:\n"
	           "  0  succeeded              1  failed           2  timed out\n"
	           "  64 usage error            69 API server unavailable\n"
	           "  77 not authorised (RBAC)  78 configuration error\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"namespace", required_argument, NULL, 'n'},  {"kubeconfig", required_argument, NULL, 'K'},
	    {"context", required_argument, NULL, 'C'},    {"selector", required_argument, NULL, 'l'},
	    {"timeout", required_argument, NULL, 'T'},    {"record", required_argument, NULL, 'R'},
	    {"log-format", required_argument, NULL, 'F'}, {"quiet", no_argument, NULL, 'q'},
	    {"verbose", no_argument, NULL, 'v'},          {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0},
	};
	const char *timeout = getenv("WAIT_FOR_JOB_TIMEOUT");
	const char *fmt = getenv("WAIT_FOR_JOB_LOG_FORMAT");
	char err[256];
	int c;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->level = LOG_INFO;
	o->selector = getenv("WAIT_FOR_JOB_SELECTOR");
	o->ns = getenv("WAIT_FOR_JOB_NAMESPACE");
	o->record = getenv("WAIT_FOR_JOB_RECORD");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:l:qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->ns = optarg; break;
		case 'K': o->kubeconfig = optarg; break;
		case 'C': o->context = optarg; break;
		case 'l': o->selector = optarg; break;
		case 'T': timeout = optarg; break;
		case 'R': o->record = optarg; break;
		case 'F': fmt = optarg; break;
		case 'q': o->level = LOG_ERROR; break;
		case 'v': o->level = LOG_DEBUG; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("wait-for-job %s\n", MG_VERSION); exit(0);
		default: return cli_getopt_error(c, argv);
		}
	}
	if (fmt && *fmt && log_parse_format(fmt, &o->log_format) < 0)
		return cli_usage_error("--log-format must be text or json, not \"%s\"", fmt);
	if (timeout && *timeout) {
		if (dur_parse(timeout, &o->timeout_ms, err, sizeof(err)) < 0)
			return cli_usage_error("--timeout: %s", err);
	}
	if (optind < argc)
		o->job = argv[optind++];
	else if (getenv("WAIT_FOR_JOB_NAME") && *getenv("WAIT_FOR_JOB_NAME"))
		o->job = getenv("WAIT_FOR_JOB_NAME");
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s' (one JOB_NAME at most)", argv[optind]);
	if (o->selector && !*o->selector)
		o->selector = NULL;
	if (o->record && !*o->record)
		o->record = NULL;
	if (o->ns && !*o->ns)
		o->ns = NULL;
	if (o->job && o->selector)
		return cli_usage_error("give either JOB_NAME or --selector, not both (%s)", o->job);
	if (!o->job && !o->selector)
		return cli_usage_error("missing JOB_NAME (or --selector)");
	if (o->ns && !name_is_dns_label(o->ns))
		return cli_usage_error("invalid namespace \"%s\" (lowercase letters, digits and '-')", o->ns);
	if (o->job && !name_is_dns_subdomain(o->job, 253))
		return cli_usage_error("invalid Job name \"%s\" (lowercase letters, digits, '-' and '.')", o->job);
	if (o->record && o->selector)
		return cli_usage_error("--record works with a JOB_NAME, not with --selector (%s)", o->selector);
	if (o->record && !name_is_dns_subdomain(o->record, 253))
		return cli_usage_error("invalid ConfigMap name \"%s\"", o->record);
	return 0;
}

/* ---- state ---------------------------------------------------------------- */

static struct tracked *track(struct waiter *w, const char *name)
{
	size_t i;
	struct tracked *nt;

	for (i = 0; i < w->njobs; i++)
		if (strcmp(w->jobs[i].name, name) == 0)
			return &w->jobs[i];
	if (w->njobs >= MAX_TRACKED)
		return NULL;
	nt = realloc(w->jobs, (w->njobs + 1) * sizeof(*nt));
	if (!nt)
		return NULL;
	w->jobs = nt;
	nt = &w->jobs[w->njobs++];
	memset(nt, 0, sizeof(*nt));
	snprintf(nt->name, sizeof(nt->name), "%s", name);
	return nt;
}

static void describe(struct waiter *w, char *buf, size_t len)
{
	char d[160];

	if (w->o->job) {
		if (w->job_present) {
			job_describe(&w->job, d, sizeof(d));
			snprintf(buf, len, "job %s: %s", w->o->job, d);
		} else if (w->o->record) {
			snprintf(buf, len, "job %s: not found, and configmap %s has no outcome for it yet; waiting",
			         w->o->job, w->o->record);
		} else {
			snprintf(buf, len, "job %s: not found yet; waiting for it to be created", w->o->job);
		}
	} else {
		size_t i, live = 0, done = 0;
		for (i = 0; i < w->njobs; i++) {
			if (!w->jobs[i].live)
				continue;
			live++;
			done += w->jobs[i].st.verdict == JOB_SUCCEEDED;
		}
		if (!live)
			snprintf(buf, len, "no job matches %s yet; waiting", w->o->selector);
		else
			snprintf(buf, len, "jobs matching %s: %zu of %zu succeeded", w->o->selector, done, live);
	}
}

/* Decide from the current view: 1 when decided (w->verdict set), else 0. */
static int decide(struct waiter *w)
{
	if (w->o->job) {
		if (!w->synced[0] || (w->o->record && !w->synced[1]))
			return 0;
		if (w->job_present) {
			if (w->job.verdict == JOB_RUNNING)
				return 0;
			w->verdict = w->job.verdict;
			w->failed_state = w->job;
			snprintf(w->failed_name, sizeof(w->failed_name), "%s", w->o->job);
			return 1;
		}
		if (w->o->record && w->rec.present) {
			w->verdict = w->rec.v.succeeded ? JOB_SUCCEEDED : JOB_FAILED;
			w->decided_by_record = 1;
			return 1;
		}
		return 0;
	} else {
		size_t i, live = 0, done = 0;

		if (!w->synced[0])
			return 0;
		for (i = 0; i < w->njobs; i++) {
			if (!w->jobs[i].live)
				continue;
			live++;
			if (w->jobs[i].st.verdict == JOB_FAILED) {
				/* fail fast: one failed Job fails the wait */
				w->verdict = JOB_FAILED;
				w->failed_state = w->jobs[i].st;
				snprintf(w->failed_name, sizeof(w->failed_name), "%s", w->jobs[i].name);
				return 1;
			}
			done += w->jobs[i].st.verdict == JOB_SUCCEEDED;
		}
		if (live && done == live) {
			w->verdict = JOB_SUCCEEDED;
			return 1;
		}
		return 0;
	}
}

static void report_state(struct waiter *w)
{
	char s[512];

	describe(w, s, sizeof(s));
	if (strcmp(s, w->last_state) != 0) {
		log_info("%s", s);
		snprintf(w->last_state, sizeof(w->last_state), "%s", s);
	}
}

/* data[key] of the record ConfigMap, decoded; not present when missing or not a record */
static void read_record(const cJSON *cm, const char *key, struct outcome *out)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");
	const cJSON *v = cJSON_IsObject(data) ? cJSON_GetObjectItemCaseSensitive(data, key) : NULL;

	out->present = cJSON_IsString(v) && rec_decode(v->valuestring, strlen(v->valuestring), &out->v) == 0;
}

static int on_event(void *ctx, size_t idx, enum watch_event ev, const cJSON *obj)
{
	struct waiter *w = ctx;
	const char *name = obj ? json_str(obj, "metadata.name") : NULL;

	if (idx == 1) { /* the record ConfigMap */
		if (ev == WATCH_RESET || ev == WATCH_DELETED)
			memset(&w->rec, 0, sizeof(w->rec));
		else if (ev == WATCH_ADDED || ev == WATCH_MODIFIED)
			read_record(obj, w->o->job, &w->rec);
		else if (ev == WATCH_SYNCED)
			w->synced[1] = 1;
	} else if (w->o->job) {
		if (ev == WATCH_RESET) {
			w->job_present = 0;
		} else if (ev == WATCH_ADDED || ev == WATCH_MODIFIED) {
			if (name && strcmp(name, w->o->job) == 0) {
				w->job_present = 1;
				job_evaluate(obj, &w->job);
			}
		} else if (ev == WATCH_DELETED) {
			if (name && strcmp(name, w->o->job) == 0) {
				/* deleted while still running (or ttl raced us): judge its last state */
				struct job_state last;
				job_evaluate(obj, &last);
				w->job_present = last.verdict != JOB_RUNNING;
				w->job = last;
			}
		} else if (ev == WATCH_SYNCED) {
			w->synced[0] = 1;
		}
	} else {
		size_t i;
		struct tracked *t;

		if (ev == WATCH_RESET) {
			for (i = 0; i < w->njobs; i++)
				w->jobs[i].live = 0;
		} else if ((ev == WATCH_ADDED || ev == WATCH_MODIFIED) && name) {
			if ((t = track(w, name))) {
				t->live = 1;
				job_evaluate(obj, &t->st);
			} else {
				log_error("more than %d Jobs match %s; narrow the selector", MAX_TRACKED,
				          w->o->selector);
				return -1;
			}
		} else if (ev == WATCH_DELETED && name) {
			/* a Job deleted after it succeeded (ttl) still counts as succeeded */
			if ((t = track(w, name))) {
				job_evaluate(obj, &t->st);
				t->live = t->st.verdict != JOB_RUNNING;
			}
		} else if (ev == WATCH_SYNCED) {
			w->synced[0] = 1;
		}
	}
	if (ev == WATCH_RESET)
		w->listing[idx] = 1;
	else if (ev == WATCH_SYNCED)
		w->listing[idx] = 0;
	if (w->listing[0] || w->listing[1])
		return 0; /* judge a (re)list only once it is complete */
	if (decide(w))
		return 1;
	if (w->synced[0] && (!w->o->record || w->synced[1])) {
		report_state(w);
		if (w->check_once)
			return 1;
	}
	return 0;
}

static int on_tick(void *ctx)
{
	struct waiter *w = ctx;
	char el[32];

	if (!w->last_state[0])
		return 0;
	log_info("still waiting after %s: %s", dur_format(kube_now_ms() - w->start_ms, el, sizeof(el)), w->last_state);
	return 0;
}

static void on_unavailable(void *ctx, const struct kube_error *e)
{
	(void)ctx;
	log_warn("API server unavailable: %s; retrying with backoff", e->message);
}

/* " at TIME" when the record has a finish time, else "" */
static const char *at_time(const struct outcome *r, char *buf, size_t len)
{
	buf[0] = '\0';
	if (r->v.finished_at[0])
		snprintf(buf, len, " at %s", r->v.finished_at);
	return buf;
}

/* What the record says about the migration process itself. */
static void print_record_details(const struct rec_view *r)
{
	char d[32] = "", after[48] = "";

	if (r->duration >= 0) {
		dur_format((int64_t)(r->duration * 1000), d, sizeof(d));
		snprintf(after, sizeof(after), " after %s", d);
	}
	if (r->signal > 0)
		log_error("migration killed by signal %lld%s", (long long)r->signal, after);
	else if (r->exit_code >= 0)
		log_error("migration exited with code %lld%s", (long long)r->exit_code, after);
	if (r->output_tail[0])
		log_error("migration output (last lines):\n%s", r->output_tail);
}

static void print_failure(const struct waiter *w)
{
	const struct outcome *r = &w->rec;
	const struct job_state *f = &w->failed_state;
	char at[64], why[256], msg[1024]; /* API text: one line, no escapes (log_safe) */

	if (w->decided_by_record)
		log_error("job %s is gone; its recorded outcome is: failed (%s%s)", w->o->job,
		          r->v.reason[0] ? log_safe(r->v.reason, why, sizeof(why)) : "unknown",
		          at_time(r, at, sizeof(at)));
	else if (f->message[0])
		log_error("job %s failed: %s: %s (failed pods: %lld)", w->failed_name,
		          log_safe(f->reason, why, sizeof(why)), log_safe(f->message, msg, sizeof(msg)),
		          (long long)f->failed);
	else
		log_error("job %s failed: %s (failed pods: %lld)", w->failed_name,
		          log_safe(f->reason, why, sizeof(why)), (long long)f->failed);
	if (r->present && !r->v.succeeded)
		print_record_details(&r->v);
}

static void print_success(const struct waiter *w)
{
	char el[32], at[64];

	dur_format(kube_now_ms() - w->start_ms, el, sizeof(el));
	if (w->decided_by_record)
		log_info("job %s is gone; its recorded outcome is: succeeded%s (waited %s)", w->o->job,
		         at_time(&w->rec, at, sizeof(at)), el);
	else if (w->o->job)
		log_info("job %s succeeded (%s) after %s", w->o->job, w->job.reason, el);
	else
		log_info("all %zu jobs matching %s succeeded after %s", w->njobs, w->o->selector, el);
}

/*
 * The watched collection the server refused. watch_run's message names it
 * as "cannot VERB WHAT (PATH): ..." (watch.h); PATH is one of ours, so the
 * match cannot be fooled by a resource name in the server's text (a Job
 * called "configmaps").
 */
static size_t refused_spec(const struct waiter *w, const struct kube_error *e)
{
	char needle[sizeof(w->paths[0]) + 2];
	size_t i;

	for (i = 0; i < w->nspecs; i++) {
		snprintf(needle, sizeof(needle), "(%s)", w->specs[i].path);
		if (strstr(e->message, needle))
			return i;
	}
	return 0;
}

static void print_rbac_hint(const struct waiter *w, struct kube_client *kc, const struct kube_error *e)
{
	size_t i = refused_spec(w, e);
	const struct rbac_rule *r = &w->rules[i];
	char names[300] = "";

	if (r->name)
		snprintf(names, sizeof(names), "    resourceNames: [\"%s\"]\n", r->name);
	log_error("%s", e->message);
	log_error("%s (%s) is not allowed to read %s in namespace %s. Grant it with a Role rule:\n"
	          "  - apiGroups: [\"%s\"]\n"
	          "    resources: [\"%s\"]\n"
	          "%s"
	          "    verbs: [\"get\", \"list\", \"watch\"]",
	          kube_identity(kc), kube_source(kc), w->specs[i].what, w->ns, r->api_group, r->resource, names);
}

static void on_term(int sig)
{
	static const char msg[] = "wait-for-job: terminated by signal, exiting\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(128 + sig);
}

/* As PID 1 of the container, SIGTERM has no default action: exit ourselves. */
static void handle_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int connect_cluster(const struct opts *o, struct kube_client **kc)
{
	struct kube_conn_opts co = {.kubeconfig = o->kubeconfig, .context = o->context, .namespace = o->ns};
	struct kube_error err;

	if (kube_client_new(&co, kc, &err) == KUBE_OK)
		return 0;
	log_error("%s", err.message);
	return MG_EXIT_CONFIG;
}

/* One watched collection, narrowed to name (or selected by label), and its Role rule. */
static void add_spec(struct waiter *w, const char *api_prefix, const char *api_group, const char *resource,
                     const char *what, const char *name, const char *label_selector)
{
	size_t i = w->nspecs++;

	snprintf(w->paths[i], sizeof(w->paths[i]), "%s/namespaces/%s/%s", api_prefix, w->ns, resource);
	w->specs[i].path = w->paths[i];
	w->specs[i].what = what;
	if (name) {
		snprintf(w->fields[i], sizeof(w->fields[i]), "metadata.name=%s", name);
		w->specs[i].field_selector = w->fields[i];
	}
	w->specs[i].label_selector = label_selector;
	w->rules[i] = (struct rbac_rule){.api_group = api_group, .resource = resource, .name = name};
}

static void waiter_init(struct waiter *w, const struct opts *o, struct kube_client *kc)
{
	memset(w, 0, sizeof(*w));
	w->o = o;
	w->ns = kube_namespace(kc);
	w->check_once = o->timeout_ms == 0;
	w->start_ms = kube_now_ms();
	if (o->timeout_ms < 0)
		snprintf(w->timeout, sizeof(w->timeout), "none");
	else
		dur_format(o->timeout_ms, w->timeout, sizeof(w->timeout));
	if (o->job)
		add_spec(w, "/apis/batch/v1", "batch", "jobs", "jobs.batch", o->job, NULL);
	else
		add_spec(w, "/apis/batch/v1", "batch", "jobs", "jobs.batch", NULL, o->selector);
	if (o->record)
		add_spec(w, "/api/v1", "", "configmaps", "configmaps", o->record, NULL);
}

static void watch_options(const struct waiter *w, struct watch_opts *wo)
{
	memset(wo, 0, sizeof(*wo));
	wo->timeout_seconds = 300;
	if (w->o->timeout_ms > 0)
		wo->deadline_ms = w->start_ms + w->o->timeout_ms;
	else if (w->check_once)
		wo->deadline_ms = w->start_ms + CHECK_ONCE_BUDGET_MS;
	wo->tick_ms = HEARTBEAT_MS;
	wo->on_tick = on_tick;
	wo->on_unavailable = on_unavailable;
}

static void announce(const struct waiter *w, struct kube_client *kc)
{
	const struct opts *o = w->o;
	char rec[300] = "";

	if (o->record)
		snprintf(rec, sizeof(rec), "; outcome record: configmap %s", o->record);
	if (o->job)
		log_info("waiting for job %s/%s to succeed (timeout: %s%s; API: %s)", w->ns, o->job, w->timeout, rec,
		         kube_server(kc));
	else
		log_info("waiting for every job matching %s in %s to succeed (timeout: %s; API: %s)", o->selector,
		         w->ns, w->timeout, kube_server(kc));
}

/* The exit code once the watch stopped by itself (decided or checked once). */
static int finish(struct waiter *w)
{
	if (w->check_once && !decide(w)) {
		log_error("not finished: %s", w->last_state);
		return MG_EXIT_TIMEOUT;
	}
	if (w->verdict == JOB_SUCCEEDED) {
		print_success(w);
		return MG_EXIT_OK;
	}
	print_failure(w);
	return MG_EXIT_FAILED;
}

/* The exit code when the watch ended with an error (exitcodes.h). */
static int exit_for_error(struct waiter *w, struct kube_client *kc, int rc, const struct kube_error *err)
{
	/* the code comes from the one mapping in lib/ (kube.h); the words are ours */
	int code =
	    kube_exit_code((enum kube_rc)rc, err,
	                   (w->check_once ? KUBE_EXIT_CHECK_ONCE : 0) | (w->o->selector ? KUBE_EXIT_USER_SELECTOR : 0));

	switch (rc) {
	case KUBE_ETIMEOUT:
		if (strcmp(err->reason, "Unavailable") == 0)
			log_error("API server %s unavailable until the timeout: %s", kube_server(kc), err->message);
		else if (code != MG_EXIT_TIMEOUT)
			log_error("could not check within %d s: %s", CHECK_ONCE_BUDGET_MS / 1000, err->message);
		else
			log_error("timed out after %s: %s", w->timeout,
			          w->last_state[0] ? w->last_state : "no answer yet");
		break;
	case KUBE_EFORBIDDEN: print_rbac_hint(w, kc, err); break;
	case KUBE_EUNAUTHORIZED:
		log_error("%s", err->message);
		log_error("the API server rejected the credentials of %s (%s): 401 Unauthorized; the token is "
		          "invalid, expired or revoked",
		          kube_identity(kc), kube_source(kc));
		break;
	case KUBE_ETLS:
	case KUBE_ECONFIG: log_error("%s", err->message); break;
	case KUBE_EINVALID: log_error("the API server rejected the request: %s", err->message); break;
	default: log_error("%s: %s", kube_strerror((enum kube_rc)rc), err->message); break;
	}
	return code;
}

#ifndef UNITTEST
int main(int argc, char **argv)
{
	struct opts o;
	struct kube_client *kc = NULL;
	struct kube_error err;
	struct watch_opts wo;
	struct waiter w;
	int rc;

	log_init("wait-for-job", LOG_TEXT, LOG_INFO);
	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	log_init("wait-for-job", o.log_format, o.level);
	handle_signals();
	rc = connect_cluster(&o, &kc);
	if (rc)
		return rc;
	waiter_init(&w, &o, kc);
	watch_options(&w, &wo);
	announce(&w, kc);
	rc = watch_run(kc, w.specs, w.nspecs, &wo, on_event, &w, &err);
	rc = rc == KUBE_OK ? finish(&w) : exit_for_error(&w, kc, rc, &err);
	free(w.jobs);
	kube_client_free(kc);
	return rc;
}
#endif
