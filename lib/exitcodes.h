/*
 * exitcodes.h - the exit-code contract of the three binaries.
 *
 * Charts (podFailurePolicy rules) and pipelines depend on these numbers;
 * they follow sysexits(3) where a code exists. Never renumber.
 */
#ifndef MG_EXITCODES_H
#define MG_EXITCODES_H

/* wait-for-job, release-check */
#define MG_EXIT_OK 0           /* Job succeeded / release healthy */
#define MG_EXIT_FAILED 1       /* Job failed / release failed */
#define MG_EXIT_TIMEOUT 2      /* --timeout reached */
#define MG_EXIT_USAGE 64       /* EX_USAGE: bad flags or arguments */
#define MG_EXIT_UNAVAILABLE 69 /* EX_UNAVAILABLE: API server unreachable */
#define MG_EXIT_NOPERM 77      /* EX_NOPERM: 401/403 that persists */
#define MG_EXIT_CONFIG 78      /* EX_CONFIG: bad kubeconfig, missing SA files */

/* migrate-runner (besides the child's own code and 128+N) */
#define MG_EXIT_TEMPFAIL 75     /* EX_TEMPFAIL: lock or dependency wait timed out */
#define MG_EXIT_CMD_TIMEOUT 124 /* its own --timeout fired (as timeout(1)) */
#define MG_EXIT_CANNOT_EXEC 126 /* command found but not executable */
#define MG_EXIT_NOT_FOUND 127   /* command not found */

#endif
