/*
 * verdict_compare.h - what the evaluator's unit tests and its fuzz target
 * both need to check that the three ways of judging a document agree (as
 * given, pruned by verdict_prune, fed to the incremental store). Include
 * after release-check/verdict.c (it uses that file's statics).
 */
#ifndef MG_VERDICT_COMPARE_H
#define MG_VERDICT_COMPARE_H

#include <stdio.h>
#include <string.h>

/* The document with every object pruned; NULL when out of memory. */
static cJSON *vc_pruned(const cJSON *doc)
{
	cJSON *pruned = cJSON_CreateObject();
	size_t k;

	for (k = 0; pruned && k < VERDICT_NKINDS; k++) {
		const cJSON *a = rc_arr(doc, verdict_kinds[k].key), *it;
		cJSON *pa;
		if (!a)
			continue;
		pa = cJSON_AddArrayToObject(pruned, verdict_kinds[k].key);
		if (!pa) {
			cJSON_Delete(pruned);
			return NULL;
		}
		cJSON_ArrayForEach (it, a)
			cJSON_AddItemToArray(pa, verdict_prune((enum verdict_kind)k, it));
	}
	return pruned;
}

/* The store identifies objects by uid (else name): only documents where each has its own. */
static int vc_comparable(const cJSON *doc)
{
	size_t k;

	for (k = 0; k < VERDICT_NKINDS; k++) {
		const cJSON *it, *jt;
		cJSON_ArrayForEach (it, rc_arr(doc, verdict_kinds[k].key)) {
			if (!cJSON_IsObject(it) || !rc_obj_id(it))
				return 0;
			for (jt = it->next; jt; jt = jt->next)
				if (cJSON_IsObject(jt) && rc_obj_id(jt) && strcmp(rc_obj_id(it), rc_obj_id(jt)) == 0)
					return 0;
		}
	}
	return 1;
}

/* 0 when a and b say the same in every field; else 1 and the first difference in why. */
static int vc_differ(const struct verdict_result *a, const struct verdict_result *b, char *why, size_t len)
{
	size_t i;

	if (a->verdict != b->verdict || a->nrows != b->nrows || a->nconsidered != b->nconsidered ||
	    a->recheck_at_ms != b->recheck_at_ms || a->helm_revision != b->helm_revision ||
	    a->release_missing != b->release_missing || strcmp(a->helm_status, b->helm_status) != 0 ||
	    strcmp(a->summary, b->summary) != 0) {
		snprintf(why, len, "result differs: \"%s\" (%zu rows) vs \"%s\" (%zu rows)", a->summary, a->nrows,
		         b->summary, b->nrows);
		return 1;
	}
	for (i = 0; i < a->nrows; i++) {
		const struct verdict_row *x = &a->rows[i], *y = &b->rows[i];
		if (strcmp(x->kind, y->kind) || strcmp(x->name, y->name) || x->status != y->status ||
		    x->ready != y->ready || x->desired != y->desired || strcmp(x->state, y->state) ||
		    strcmp(x->reason, y->reason) || strcmp(x->log_pod, y->log_pod) ||
		    strcmp(x->log_container, y->log_container) || x->log_previous != y->log_previous ||
		    strcmp(x->events_kind, y->events_kind) || strcmp(x->events_name, y->events_name) ||
		    strcmp(x->grace_key, y->grace_key) || x->fails_at_ms != y->fails_at_ms ||
		    x->grace_ok != y->grace_ok || x->exit_code != y->exit_code) {
			snprintf(why, len, "row %zu differs: %s/%s %s \"%s\" vs %s/%s %s \"%s\"", i, x->kind, x->name,
			         x->state, x->reason, y->kind, y->name, y->state, y->reason);
			return 1;
		}
	}
	return 0;
}

#endif
