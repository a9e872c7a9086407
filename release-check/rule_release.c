/*
 * rule_release.c - the Helm release record (a Secret), read by labels only.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "json.h"

/*
 * No record of the release: a misspelled name or the wrong namespace, which
 * waiting does not fix (it waited the whole --timeout before, issue #14).
 * Fails at once, naming the releases that do exist here (the watch lists
 * every owner=helm record, metadata only).
 */
static void release_not_found(struct verdict_store *st, const char *rel, struct verdict_row *row)
{
	char names[VERDICT_REASON_LEN / 2] = "";
	size_t n = 0, len = 0;
	const struct vobj *o, *p;

	for (o = st->head[VERDICT_RELEASES]; o; o = o->next) {
		const char *name = rc_meta(o->obj, "metadata.labels", "name");
		if (!name || !rc_streq(rc_meta(o->obj, "metadata.labels", "owner"), "helm"))
			continue;
		for (p = st->head[VERDICT_RELEASES]; p != o; p = p->next) /* first of its name only */
			if (rc_streq(rc_meta(p->obj, "metadata.labels", "name"), name) &&
			    rc_streq(rc_meta(p->obj, "metadata.labels", "owner"), "helm"))
				break;
		if (p != o)
			continue;
		if (len + strlen(name) + 8 < sizeof(names))
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", n ? ", " : "", name);
		else if (len + 5 < sizeof(names))
			len += (size_t)snprintf(names + len, sizeof(names) - len, ", ...");
		n++;
	}
	st->release_missing = 1;
	row->status = ROW_FAILED;
	rc_clean_copy(row->state, sizeof(row->state), "NotFound");
	rc_fmt(row->reason, sizeof(row->reason),
	       "no Helm release \"%s\" in this namespace (no Secret sh.helm.release.v1.%s.v*); %s%s%s; check the "
	       "name and --namespace, or pass --no-helm",
	       rel, rel, n ? "releases here: " : "no Helm releases here", names, "");
}

/*
 * The newest sh.helm.release.v1.NAME.vN Secret by its "version" label. Only
 * labels are read: the payload (values, often with credentials) is never
 * decoded.
 */
void rc_rule_release(struct eval *ev)
{
	const char *rel = ev->opts->release;
	const cJSON *best = NULL;
	const struct vobj *o;
	int64_t best_v = -1;
	struct verdict_row *row;
	const char *st;

	ev->st->helm_revision = -1;
	ev->st->helm_status[0] = '\0';
	ev->st->release_missing = 0;
	if (!rel)
		return;
	for (o = ev->st->head[VERDICT_RELEASES]; o; o = o->next) {
		const cJSON *s = o->obj;
		int64_t v;
		if (!rc_streq(rc_meta(s, "metadata.labels", "owner"), "helm") ||
		    !rc_streq(rc_meta(s, "metadata.labels", "name"), rel))
			continue;
		v = rc_parse_uint(rc_meta(s, "metadata.labels", "version"));
		if (v > best_v) {
			best_v = v;
			best = s;
		}
	}
	row = rc_add_row(ev, "Release", NULL);
	if (!row)
		return;
	rc_clean_copy(row->name, sizeof(row->name), rel);
	if (!best) {
		release_not_found(ev->st, rel, row);
		return;
	}
	st = rc_nz(rc_meta(best, "metadata.labels", "status"));
	ev->st->helm_revision = best_v;
	rc_clean_copy(ev->st->helm_status, sizeof(ev->st->helm_status), st);
	rc_clean_copy(row->state, sizeof(row->state), st[0] ? st : "unknown");
	if (strcmp(st, "deployed") == 0) {
		row->status = ROW_OK;
		rc_fmt(row->reason, sizeof(row->reason), "revision %lld deployed", (long long)best_v);
	} else if (strcmp(st, "failed") == 0) {
		row->status = ROW_FAILED;
		rc_fmt(row->reason, sizeof(row->reason), "Helm marked revision %lld failed (see `helm history %s`)",
		       (long long)best_v, rel);
	} else if (strncmp(st, "pending-", 8) == 0) {
		rc_fmt(row->reason, sizeof(row->reason), "Helm is still applying revision %lld (%s)", (long long)best_v,
		       st);
	} else if (strcmp(st, "uninstalling") == 0 || strcmp(st, "uninstalled") == 0) {
		row->status = ROW_FAILED;
		rc_fmt(row->reason, sizeof(row->reason), "the release is %s (revision %lld)", st, (long long)best_v);
	} else {
		/* superseded as newest, unknown: a record being rewritten; wait */
		rc_fmt(row->reason, sizeof(row->reason), "revision %lld has status \"%s\"", (long long)best_v, st);
	}
}

/* The release row reads every record (and the Jobs read the release: see the update). */
void rc_prop_release(struct verdict_store *st, struct vobj *o)
{
	(void)o;
	st->release_dirty = 1;
}

/* ---- which Jobs are current --------------------------------------------------------- */

#define RC_REVISION_LABEL "migration-gate.io/release-revision"

static const cJSON *array(const cJSON *a) { return cJSON_IsArray(a) ? a : NULL; }

static int runs_wait_for_job(const char *s)
{
	const char *base = s ? strrchr(s, '/') : NULL;
	base = base ? base + 1 : s;
	return rc_streq(base, "wait-for-job");
}

/* An image reference whose repository's last path element is wait-for-job (any tag or digest). */
static int wait_for_job_image(const char *image)
{
	char repo[256];
	const char *slash, *end;
	size_t n;

	if (!image)
		return 0;
	slash = strrchr(image, '/');
	slash = slash ? slash + 1 : image;
	end = slash + strcspn(slash, ":@");
	n = (size_t)(end - slash);
	if (n >= sizeof(repo))
		return 0;
	memcpy(repo, slash, n);
	repo[n] = '\0';
	return strcmp(repo, "wait-for-job") == 0;
}

/* wait-for-job's options that take a value (wait-for-job(1)) */
static int takes_value(const char *opt)
{
	static const char *const with[] = {"-n",         "-l",        "--namespace", "--kubeconfig", "--context",
	                                   "--selector", "--timeout", "--record",    "--log-format"};
	size_t i;

	for (i = 0; i < sizeof(with) / sizeof(with[0]); i++)
		if (strcmp(opt, with[i]) == 0)
			return 1;
	return 0;
}

/* The first operand (JOB) of the argument vector from index i, as wait-for-job's getopt reads it. */
static const char *job_operand(const cJSON *const *argv, size_t argc, size_t i)
{
	for (; i < argc; i++) {
		const char *a = cJSON_IsString(argv[i]) ? argv[i]->valuestring : NULL;
		if (!a)
			return NULL;
		if (strcmp(a, "--") == 0)
			return i + 1 < argc && cJSON_IsString(argv[i + 1]) ? argv[i + 1]->valuestring : NULL;
		if (a[0] != '-' || !a[1])
			return a;
		if (takes_value(a))
			i++;
	}
	return NULL;
}

/*
 * The Job an init container of a pod template waits for: its
 * WAIT_FOR_JOB_NAME, else the JOB operand of a command/args that runs
 * wait-for-job (or of the args of a wait-for-job image's entrypoint).
 * NULL when it does not run wait-for-job or names no Job (a selector).
 */
static const char *init_container_job(const cJSON *c)
{
	const cJSON *argv[64], *e, *env = json_path(c, "env");
	const char *cmd0;
	size_t argc = 0, i, start = 0;
	int runs = wait_for_job_image(json_str(c, "image"));

	cJSON_ArrayForEach (e, array(json_path(c, "command")))
		if (argc < 64)
			argv[argc++] = e;
	cJSON_ArrayForEach (e, array(json_path(c, "args")))
		if (argc < 64)
			argv[argc++] = e;
	for (i = 0; i < argc && !runs; i++) {
		cmd0 = cJSON_IsString(argv[i]) ? argv[i]->valuestring : NULL;
		if (runs_wait_for_job(cmd0)) {
			runs = 1;
			start = i + 1;
		}
	}
	if (!runs)
		return NULL;
	cJSON_ArrayForEach (e, array(env))
		if (rc_streq(json_str(e, "name"), "WAIT_FOR_JOB_NAME") && json_str(e, "value") &&
		    json_str(e, "value")[0])
			return json_str(e, "value");
	if (!start && json_path(c, "command")) /* an entrypoint override that is not wait-for-job */
		return NULL;
	return job_operand(argv, argc, start);
}

/* 1 when a workload's pod template waits for Job name; *any: it waits for some Job. */
static int template_names(const cJSON *w, const char *name, int *any)
{
	const cJSON *c, *ics = json_path(w, "spec.template.spec.initContainers");

	cJSON_ArrayForEach (c, array(ics)) {
		const char *job = init_container_job(c);
		if (!job)
			continue;
		*any = 1;
		if (rc_streq(job, name))
			return 1;
	}
	return 0;
}

uint64_t rc_sig_template_jobs(uint64_t h, const cJSON *w)
{
	const cJSON *c, *ics = json_path(w, "spec.template.spec.initContainers");

	cJSON_ArrayForEach (c, array(ics))
		h = rc_sig_str(h, init_container_job(c));
	return h;
}

/*
 * Is job the current revision's? Exact answers only, never timestamps
 * (a Job created in the same second as the release record counted as
 * current, issue #14): (a) a current workload's pod template runs
 * wait-for-job for it (the chart-snippets init container; works without
 * Helm), or (b) its migration-gate.io/release-revision label is the
 * current Helm revision. A Job that is neither, while either rule has
 * something to say, is an earlier revision's kept Job. RC_JOB_UNKNOWN: no
 * rule applies (not a chart that names its Jobs): it counts.
 */
enum rc_job_identity rc_job_identity(const struct eval *ev, const cJSON *job, char *why, size_t cap)
{
	static const unsigned kinds[] = {VERDICT_DEPLOYMENTS, VERDICT_STATEFULSETS, VERDICT_DAEMONSETS};
	const char *name = json_str(job, "metadata.name");
	int64_t label = rc_parse_uint(rc_meta(job, "metadata.labels", RC_REVISION_LABEL));
	int64_t rev = ev->st->helm_revision;
	const struct vobj *o;
	int any = 0;
	size_t k;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (o = ev->st->head[kinds[k]]; o; o = o->next)
			if (template_names(o->obj, name, &any)) {
				rc_fmt(why, cap, "the wait-for-job init container of %s %s waits for it",
				       verdict_kinds[kinds[k]].row_kind, rc_nz(json_str(o->obj, "metadata.name")));
				return RC_JOB_CURRENT;
			}
	if (rev >= 0 && label >= 0) {
		if (label == rev) {
			rc_fmt(why, cap, "labelled with the current Helm revision %lld", (long long)rev);
			return RC_JOB_CURRENT;
		}
		rc_fmt(why, cap, "kept Job of Helm revision %lld (current %lld)", (long long)label, (long long)rev);
		return RC_JOB_EARLIER;
	}
	if (any) {
		rc_fmt(why, cap,
		       "kept Job of an earlier revision: no current pod template's wait-for-job waits for it");
		return RC_JOB_EARLIER;
	}
	why[0] = '\0';
	return RC_JOB_UNKNOWN;
}
