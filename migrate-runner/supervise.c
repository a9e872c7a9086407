/*
 * supervise.c - the PID-1 loop (see supervise.h).
 *
 * Habits from tini and dumb-init: signals are blocked and read
 * synchronously (signalfd), never handled asynchronously; the child gets
 * the original mask and SIGPIPE disposition back before exec; a failed exec
 * reports errno through a close-on-exec pipe and _exits, never returning
 * through main. Differences on purpose: we wait for every child, not just
 * the main one, before exiting (tini#180, dumb-init#212), and SIGURG is
 * never forwarded (the Go runtime sends it to itself for preemption,
 * scuttle#44).
 */
#include "supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define SUP_BUF 65536
/* after SIGKILL, how long to wait for the kernel to tear processes down */
#define SUP_KILL_WAIT_MS 5000

static int sup_sfd = -1;
static sigset_t sup_orig_mask;
static struct sigaction sup_orig_pipe;
static int sup_term_sig;

int64_t sup_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sup_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sup_init(void)
{
	sigset_t all;
	struct sigaction ign;

	if (sup_sfd >= 0)
		return 0;
	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &sup_orig_mask) != 0)
		return -1;
	/* a closed stdout must give EPIPE, not a pending SIGPIPE we would forward */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	if (sigaction(SIGPIPE, &ign, &sup_orig_pipe) != 0)
		return -1;
	sup_sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sup_sfd < 0)
		return -1;
	/*
	 * Not PID 1 (e.g. shareProcessNamespace, or run by hand): orphaned
	 * descendants are re-parented to us so they are reaped and waited for.
	 */
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
		log_warn("cannot become a child subreaper: %s; orphaned processes will not be waited for",
		         strerror(errno));
	return 0;
}

static int is_term_signal(int sig) { return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT; }

int sup_pending_signal(void) { return sup_term_sig; }

int sup_wait(int64_t ms)
{
	int64_t end = sup_mono_ms() + (ms > 0 ? ms : 0);

	if (sup_term_sig)
		return sup_term_sig;
	for (;;) {
		struct pollfd p = {.fd = sup_sfd, .events = POLLIN, .revents = 0};
		int64_t left = end - sup_mono_ms();
		struct signalfd_siginfo si;

		if (left < 0)
			left = 0;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return 0;
		while (read(sup_sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD) {
				while (waitpid(-1, NULL, WNOHANG) > 0)
					;
			} else if (is_term_signal((int)si.ssi_signo)) {
				sup_term_sig = (int)si.ssi_signo;
				return sup_term_sig;
			} else {
				log_debug("ignoring signal %d before the command started", (int)si.ssi_signo);
			}
		}
		if (left == 0)
			return 0;
	}
}

int sup_wait_cb(void *ctx, int64_t ms)
{
	(void)ctx;
	return sup_wait(ms);
}

/* Signal every process we are responsible for: the group and our children. */
static void signal_all(pid_t pgid, int sig)
{
	DIR *d;
	struct dirent *de;
	pid_t self = getpid();

	if (pgid > 0)
		kill(-pgid, sig);
	if (self == 1) {
		/* PID 1 of a namespace: everything else in it is ours */
		kill(-1, sig);
		return;
	}
	/* subreaper: children that left the group (setsid) are still ours */
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[64], buf[512];
		char *rp;
		long pid, ppid;
		ssize_t n;
		int fd;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = strtol(de->d_name, NULL, 10);
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* "pid (comm) S ppid ...": comm may contain spaces and ')' */
		rp = strrchr(buf, ')');
		if (!rp || rp[1] == '\0' || rp[2] == '\0')
			continue;
		ppid = strtol(rp + 4, NULL, 10);
		if (ppid == self && pid != self)
			kill((pid_t)pid, sig);
	}
	closedir(d);
}

/* Write everything; on a broken stdout keep draining the child but drop. */
static void write_all(int fd, const char *buf, size_t len, int *broken)
{
	while (len > 0 && !*broken) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
				poll(&p, 1, 1000);
				continue;
			}
			*broken = 1;
			log_warn("cannot write the command's output to fd %d: %s; discarding it", fd, strerror(errno));
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

struct stream {
	int fd;  /* read end, -1 at EOF */
	int out; /* 1 or 2 */
	int broken;
	char last; /* the last byte passed through, '\n' before any */
};

/* Read once; returns 0 at EOF/error (fd closed), 1 when data was copied, -1 for EAGAIN. */
static int pump(struct stream *s, struct tail *t, char *buf)
{
	ssize_t n;

	if (s->fd < 0)
		return 0;
	n = read(s->fd, buf, SUP_BUF);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return 0;
	}
	write_all(s->out, buf, (size_t)n, &s->broken);
	tail_feed(t, s->out - 1, buf, (size_t)n);
	s->last = buf[n - 1];
	return 1;
}

/*
 * Close every descriptor above 2 but keep: libcurl opens the API socket
 * without close-on-exec, and the command must not inherit it (issue 15
 * item 9). close_range(2) where the kernel has it, else a bounded loop.
 */
static void close_from(int lo, int hi)
{
	struct rlimit rl;
	long max = 65536;

	if (lo > hi)
		return;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < max)
		max = (long)rl.rlim_cur;
	for (long fd = lo; fd <= hi && fd < max; fd++)
		close((int)fd);
}

static void close_inherited(int keep)
{
	close_from(3, keep - 1);
	close_from(keep + 1, INT_MAX);
}

static void child_exec(const struct sup_opts *o, int outw, int errw, int execw, pid_t parent_pgrp)
{
	int e;

	if (dup2(outw, STDOUT_FILENO) < 0 || dup2(errw, STDERR_FILENO) < 0)
		goto fail;
	if (outw != STDOUT_FILENO && outw != STDERR_FILENO)
		close(outw);
	if (errw != STDOUT_FILENO && errw != STDERR_FILENO)
		close(errw);
	close_inherited(execw);
	setpgid(0, 0);
	/*
	 * Interactive use: hand the terminal to the new group, or the command
	 * would get SIGTTIN reading it. SIGTTOU is still blocked here.
	 */
	if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == parent_pgrp)
		tcsetpgrp(STDIN_FILENO, getpid());
	sigaction(SIGPIPE, &sup_orig_pipe, NULL);
	sigprocmask(SIG_SETMASK, &sup_orig_mask, NULL);
	execvp(o->argv[0], o->argv);
fail:
	e = errno;
	while (write(execw, &e, sizeof(e)) < 0 && errno == EINTR)
		;
	_exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
}

static int64_t min_deadline(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

int sup_run(const struct sup_opts *o, struct sup_result *r)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, execp[2] = {-1, -1};
	struct stream st[2];
	char *buf = NULL;
	pid_t pid, pgrp = getpgrp();
	int main_status = 0, main_done = 0, others_termed = 0, no_children = 0;
	int64_t now, timeout_at = 0, kill_at = 0, giveup_at = 0, tick_at = 0;
	ssize_t n;
	int e;

	memset(r, 0, sizeof(*r));
	r->started_ms = sup_wall_ms();
	buf = malloc(SUP_BUF);
	if (!buf || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(execp, O_CLOEXEC) != 0)
		goto start_failed;
	pid = fork();
	if (pid < 0)
		goto start_failed;
	if (pid == 0) {
		close(outp[0]);
		close(errp[0]);
		close(execp[0]);
		child_exec(o, outp[1], errp[1], execp[1], pgrp);
	}
	/* both sides set the group, so kill(-pid) works whichever runs first */
	setpgid(pid, pid);
	close(outp[1]);
	close(errp[1]);
	close(execp[1]);
	do
		n = read(execp[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(execp[0]);
	if (n == (ssize_t)sizeof(e)) {
		r->how = SUP_EXEC_FAILED;
		r->exec_errno = e;
	}
	st[0] = (struct stream){.fd = outp[0], .out = STDOUT_FILENO, .broken = 0, .last = '\n'};
	st[1] = (struct stream){.fd = errp[0], .out = STDERR_FILENO, .broken = 0, .last = '\n'};
	fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
	fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);

	now = sup_mono_ms();
	if (o->timeout_ms > 0)
		timeout_at = now + o->timeout_ms;
	if (o->on_tick && o->tick_ms > 0)
		tick_at = now + o->tick_ms;

	for (;;) {
		struct pollfd p[3];
		int64_t wake = 0, wait_ms;
		struct signalfd_siginfo si;
		pid_t w;
		int status;

		/* reap everything that is ready */
		while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
			if (w == pid) {
				main_status = status;
				main_done = 1;
			}
		}
		no_children = w < 0 && errno == ECHILD;
		now = sup_mono_ms();
		if (main_done && no_children)
			break;
		if (main_done && !others_termed) {
			/* the command is gone but left processes behind: let them shut down */
			others_termed = 1;
			log_info("command exited; stopping the processes it left (grace %lld ms)",
			         (long long)o->grace_ms);
			signal_all(pid, SIGTERM);
			kill_at = min_deadline(kill_at, now + o->grace_ms);
		}
		if (timeout_at && now >= timeout_at && !r->timed_out) {
			r->timed_out = 1;
			timeout_at = 0;
			log_error("timeout: the command ran longer than %lld ms; sending SIGTERM (grace %lld ms)",
			          (long long)o->timeout_ms, (long long)o->grace_ms);
			kill(-pid, SIGTERM);
			kill_at = min_deadline(kill_at, now + o->grace_ms);
		}
		if (tick_at && now >= tick_at && !r->terminated) {
			int64_t next = o->tick_ms, budget = o->on_tick(o->ctx, &next);

			now = sup_mono_ms();
			tick_at = now + (next > 0 ? next : o->tick_ms);
			if (budget >= 0) {
				r->terminated = 1;
				tick_at = 0;
				kill(-pid, SIGTERM);
				kill_at = min_deadline(kill_at, now + (budget < o->grace_ms ? budget : o->grace_ms));
			}
		}
		if (kill_at && now >= kill_at && !r->killed) {
			r->killed = 1;
			kill_at = 0;
			log_warn("grace period over; sending SIGKILL to the remaining processes");
			signal_all(pid, SIGKILL);
			giveup_at = now + SUP_KILL_WAIT_MS;
		}
		if (giveup_at && now >= giveup_at) {
			log_error("processes survived SIGKILL for %d ms; giving up on them", SUP_KILL_WAIT_MS);
			break;
		}

		wake = min_deadline(wake, timeout_at);
		wake = min_deadline(wake, kill_at);
		wake = min_deadline(wake, giveup_at);
		wake = min_deadline(wake, tick_at);
		wait_ms = wake ? wake - now : -1;
		if (wake && wait_ms < 0)
			wait_ms = 0;
		if (wait_ms > 3600000)
			wait_ms = 3600000;

		p[0] = (struct pollfd){.fd = sup_sfd, .events = POLLIN, .revents = 0};
		p[1] = (struct pollfd){.fd = st[0].fd, .events = POLLIN, .revents = 0};
		p[2] = (struct pollfd){.fd = st[1].fd, .events = POLLIN, .revents = 0};
		if (poll(p, 3, (int)wait_ms) < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			sup_wait(100);
		}
		/* drain what is there: fewer poll() round trips per megabyte */
		for (int i = 0; i < 2; i++)
			if (p[i + 1].revents)
				for (int k = 0; k < 16 && pump(&st[i], o->tail, buf) > 0; k++)
					;
		while (read(sup_sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			int sig = (int)si.ssi_signo;

			if (sig == SIGCHLD)
				continue; /* reaped at the top of the loop */
			if (sig == SIGURG)
				continue;
			/*
			 * A write to our own broken stdout: the kernel queues SIGPIPE
			 * (blocked signals are never discarded) as sent by us. It is
			 * about our pipe, not the command's (issue 15 item 8).
			 */
			if (sig == SIGPIPE && si.ssi_pid == (uint32_t)getpid())
				continue;
			log_debug("forwarding signal %d to process group %d", sig, (int)pid);
			kill(-pid, sig);
			if (sig == SIGTERM && !kill_at && !r->killed) {
				kill_at = sup_mono_ms() + o->grace_ms;
				if (o->grace_ms > 0)
					log_info("got SIGTERM; the command has %lld ms to exit",
					         (long long)o->grace_ms);
			}
		}
	}
	/* take the terminal back from the command's group (interactive use) */
	if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == pid)
		tcsetpgrp(STDIN_FILENO, pgrp);
	/* whatever the pipes still hold */
	for (int i = 0; i < 2; i++)
		while (pump(&st[i], o->tail, buf) > 0)
			;
	for (int i = 0; i < 2; i++)
		if (st[i].fd >= 0)
			close(st[i].fd);
	tail_flush(o->tail);
	free(buf);
	r->stdout_unterminated = st[0].last != '\n';
	r->finished_ms = sup_wall_ms();
	if (r->how == SUP_EXEC_FAILED)
		return 0;
	if (!main_done) {
		r->how = SUP_SIGNALED;
		r->sig = SIGKILL;
	} else if (WIFSIGNALED(main_status)) {
		r->how = SUP_SIGNALED;
		r->sig = WTERMSIG(main_status);
	} else {
		r->how = SUP_EXITED;
		r->code = WEXITSTATUS(main_status);
	}
	return 0;

start_failed:
	r->how = SUP_START_FAILED;
	r->exec_errno = errno;
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		if (execp[i] >= 0)
			close(execp[i]);
	}
	free(buf);
	r->finished_ms = sup_wall_ms();
	return 0;
}

int sup_exit_code(const struct sup_result *r)
{
	if (r->timed_out)
		return 124;
	switch (r->how) {
	case SUP_EXITED: return r->code;
	case SUP_SIGNALED: return 128 + r->sig;
	case SUP_EXEC_FAILED: return r->exec_errno == ENOENT || r->exec_errno == ENOTDIR ? 127 : 126;
	case SUP_START_FAILED:
	default: return 126;
	}
}
