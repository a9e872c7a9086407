/*
 * rc_sources.h - release-check's evaluator as one translation unit, for
 * the unit tests and fuzz targets that reach its statics (the binary
 * links the same files separately). Include after lib/json.c.
 */
#ifndef MG_RC_SOURCES_H
#define MG_RC_SOURCES_H

#include "../../lib/jobstatus.c"
#include "../../release-check/fields.c"
#include "../../release-check/index.c"
#include "../../release-check/store.c"
#include "../../release-check/prune.c"
#include "../../release-check/report.c"
#include "../../release-check/first_seen.c"
#include "../../release-check/rule_release.c"
#include "../../release-check/rule_workloads.c"
#include "../../release-check/rule_job.c"
#include "../../release-check/rule_pod.c"
#include "../../release-check/verdict.c"

#endif
