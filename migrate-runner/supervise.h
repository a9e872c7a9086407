/*
 * supervise.h - run the command as a well-behaved PID 1.
 *
 * sup_init blocks every signal and reads them from a signalfd, so nothing
 * runs in signal handlers and nothing is lost between checks. sup_run
 * forks the command into its own process group, forwards every signal
 * except SIGCHLD/SIGURG to that group, reaps every child (we are PID 1 or a
 * child subreaper, so orphaned descendants are ours too), passes the
 * command's stdout/stderr through to ours (splice(2), no copy through user
 * space, when the kernel and our outputs allow) while feeding the tail
 * every byte (tee(2)), and does
 * not return while any child is still alive: after the command exits (or
 * after a SIGTERM, --timeout or a lost lock) the others get SIGTERM and up
 * to the grace period, then SIGKILL.
 */
#ifndef MR_SUPERVISE_H
#define MR_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>

#include "tail.h"

/*
 * Block all signals (the original mask is restored in the child), ignore
 * SIGPIPE (write errors are handled), open the signalfd, and become a child
 * subreaper when not PID 1. Returns 0, or -1 with errno set.
 */
int sup_init(void);

/*
 * Sleep up to ms before the command runs, returning early with the signal
 * number when SIGTERM, SIGINT, SIGHUP or SIGQUIT arrives (0 otherwise).
 * Children (none expected yet) are reaped. Usable as a wait callback:
 * sup_wait_cb(NULL, ms).
 */
int sup_wait(int64_t ms);
int sup_wait_cb(void *ctx, int64_t ms);

/* The terminating signal sup_wait saw, or 0. */
int sup_pending_signal(void);

/*
 * Monotonic ms when the first SIGTERM/SIGINT/SIGHUP/SIGQUIT arrived (before
 * or while the command ran), or 0: the kubelet's grace counts from there.
 */
int64_t sup_term_ms(void);

/*
 * After the command: read the signals that came meanwhile, without waiting
 * and without reaping (an exec plugin is a child its own code waits for),
 * and return sup_term_ms(). Not while sup_run runs.
 */
int64_t sup_check_term(void);

/*
 * Write all of buf to fd within timeout_ms, never blocking longer (a pipe
 * or socket is made non-blocking meanwhile). Returns 0, or -1 when not all
 * of it could be written (stalled reader, broken pipe).
 */
int sup_write_bounded(int fd, const char *buf, size_t len, int64_t timeout_ms);

struct sup_opts {
	char *const *argv;  /* the command; argv[0] is looked up in PATH */
	int64_t timeout_ms; /* 0 = no timeout */
	int64_t grace_ms;   /* SIGTERM -> SIGKILL */
	struct tail *tail;  /* may be NULL */
	/*
	 * When event_fd (>= 0, with on_event set) becomes readable, on_event
	 * is called once: return < 0 to go on; >= 0 to have the command
	 * terminated (SIGTERM to its group) and SIGKILLed after at most that
	 * many ms (and never later than the grace). The Lease keeper's fd.
	 */
	int event_fd;
	int64_t (*on_event)(void *ctx);
	void *ctx;
};

enum sup_how {
	SUP_EXITED,
	SUP_SIGNALED,
	SUP_EXEC_FAILED,  /* exec_errno says why */
	SUP_START_FAILED, /* pipe/fork failed: exec_errno says why */
};

struct sup_result {
	enum sup_how how;
	int code; /* exit status for SUP_EXITED */
	int sig;  /* signal for SUP_SIGNALED */
	int exec_errno;
	int timed_out;  /* --timeout fired */
	int terminated; /* on_event had the command terminated */
	int killed;     /* SIGKILL was sent after the grace */
	/* the command's stdout did not end in a newline: ours must start with one */
	int stdout_unterminated;
	/* output dropped because the reader of our stdout/stderr stalled */
	unsigned long long dropped_bytes;
	int64_t started_ms; /* wall clock, ms since the epoch */
	int64_t finished_ms;
};

/* Returns 0 (see r) — the only failure modes are reported in r->how. */
int sup_run(const struct sup_opts *o, struct sup_result *r);

/*
 * The runner's exit code for a result: 124 when timed out, the status,
 * 128+N for a signal, 127 for a command not found, 126 otherwise.
 */
int sup_exit_code(const struct sup_result *r);

/* Wall clock and monotonic ms. */
int64_t sup_wall_ms(void);
int64_t sup_mono_ms(void);

#endif
