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
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define SUP_BUF 65536
/* a reader of our stdout/stderr that takes nothing for this long loses output, not the loop */
#define SUP_STALL_MS 2000
/* the command's pipes and the tee pipes (best effort; the default is 64 KiB) */
#define SUP_PIPE_SZ (256 * 1024)
/* after SIGKILL, how long to wait for the kernel to tear processes down */
#define SUP_KILL_WAIT_MS 5000

static int sup_sfd = -1;
static sigset_t sup_orig_mask;
static struct sigaction sup_orig_pipe;
static int sup_term_sig;
static int64_t sup_term_at; /* mono ms of the first terminating signal */
/* poll(2), replaceable by the unit tests to prove a failing poll loses nothing */
static int (*sup_poll)(struct pollfd *, nfds_t, int) = poll;

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

int64_t sup_term_ms(void) { return sup_term_at; }

int64_t sup_check_term(void)
{
	struct signalfd_siginfo si;

	while (sup_sfd >= 0 && read(sup_sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (is_term_signal((int)si.ssi_signo) && !sup_term_at) {
			sup_term_sig = (int)si.ssi_signo;
			sup_term_at = sup_mono_ms();
		}
	}
	return sup_term_at;
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

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
				if (!sup_term_at)
					sup_term_at = sup_mono_ms();
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

/*
 * Output pass-through. Our stdout/stderr are made non-blocking while the
 * command runs (when they are pipes or sockets), so a reader that stops
 * reading can never stop this loop (issue 15 item 7): bytes it does not
 * take wait in `pend` and the command's pipe (back-pressure) for up to
 * SUP_STALL_MS; after that they are dropped and counted until it reads
 * again. The tail always sees every byte.
 */
struct stream {
	int fd;  /* read end of the command's pipe, -1 at EOF */
	int out; /* 1 or 2 */
	int broken;
	int dropping;
	char last; /* the last byte passed through, '\n' before any */
	char *buf; /* SUP_BUF bytes */
	size_t pend_off, pend_len;
	int64_t stalled_since; /* mono ms; 0 while the reader keeps up */
	uint64_t dropped;
	int out_flags; /* original flags of out, -1 = left alone */
	/*
	 * Zero-copy path (issue 15, throughput): tee(2) duplicates what the
	 * command wrote into tee_r for the tail, splice(2) moves the bytes
	 * themselves to out without a copy through user space. `ahead` bytes
	 * were tee'd (and fed to the tail) but are still in the command's
	 * pipe. tee_r < 0: the read/write path only.
	 */
	int tee_r, tee_w;
	size_t ahead;
};

static void stream_open(struct stream *s, int fd, int out, char *buf)
{
	struct stat sb;

	int tp[2];

	*s = (struct stream){.fd = fd, .out = out, .last = '\n', .buf = buf, .out_flags = -1, .tee_r = -1, .tee_w = -1};
	if (fd >= 0) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		/* bigger pipes: fewer wake-ups per megabyte (best effort) */
		fcntl(fd, F_SETPIPE_SZ, SUP_PIPE_SZ);
		if (pipe2(tp, O_CLOEXEC | O_NONBLOCK) == 0) {
			fcntl(tp[1], F_SETPIPE_SZ, SUP_PIPE_SZ);
			s->tee_r = tp[0];
			s->tee_w = tp[1];
		}
	}
	/* a terminal or a file is never made non-blocking: it is shared with the shell */
	if (fstat(out, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode))) {
		s->out_flags = fcntl(out, F_GETFL);
		if (s->out_flags >= 0 && !(s->out_flags & O_NONBLOCK))
			fcntl(out, F_SETFL, s->out_flags | O_NONBLOCK);
		else
			s->out_flags = -1;
	}
}

static void stream_close(struct stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	close_pair((int[2]){s->tee_r, s->tee_w});
	s->tee_r = s->tee_w = -1;
	if (s->out_flags >= 0)
		fcntl(s->out, F_SETFL, s->out_flags);
	s->out_flags = -1;
}

/* Write what out takes now; returns the bytes written, or -1 once broken. */
static ssize_t write_some(struct stream *s, const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(s->out, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			s->broken = 1;
			if (s->buf) /* the command's stream, not sup_write_bounded's */
				log_warn("cannot write the command's output to fd %d: %s; discarding it", s->out,
				         strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return (ssize_t)off;
}

static void flush_pending(struct stream *s, int64_t now)
{
	ssize_t n = s->broken ? -1 : write_some(s, s->buf + s->pend_off, s->pend_len);

	if (n < 0) {
		s->pend_len = 0;
		return;
	}
	s->pend_off += (size_t)n;
	s->pend_len -= (size_t)n;
	if (s->pend_len == 0) {
		s->stalled_since = 0;
		if (s->dropping)
			log_warn("the reader of fd %d reads again; %llu bytes of the command's output were dropped",
			         s->out, (unsigned long long)s->dropped);
		s->dropping = 0;
	} else if (n > 0 || !s->stalled_since) {
		s->stalled_since = now;
	}
}

/* Leave the zero-copy path: what is ahead becomes pending (already in the tail). */
static void stop_splicing(struct stream *s)
{
	ssize_t n = s->ahead ? read(s->fd, s->buf, s->ahead < SUP_BUF ? s->ahead : SUP_BUF) : 0;

	close_pair((int[2]){s->tee_r, s->tee_w});
	s->tee_r = s->tee_w = -1;
	s->ahead = 0;
	s->pend_off = 0;
	s->pend_len = n > 0 ? (size_t)n : 0;
}

/* Duplicate what the command wrote into the tee pipe and feed it to the tail. */
static ssize_t tee_into_tail(struct stream *s, struct tail *t)
{
	/* at most one buffer: stop_splicing may have to take it all back into s->buf */
	ssize_t n = tee(s->fd, s->tee_w, SUP_BUF, SPLICE_F_NONBLOCK);

	if (n <= 0)
		return n;
	for (ssize_t left = n; left > 0;) {
		ssize_t k = read(s->tee_r, s->buf, (size_t)left < SUP_BUF ? (size_t)left : SUP_BUF);
		if (k <= 0)
			break;
		tail_feed(t, s->out - 1, s->buf, (size_t)k);
		s->last = s->buf[k - 1];
		left -= k;
	}
	s->ahead = (size_t)n;
	return n;
}

/*
 * The zero-copy pump; same contract as pump. Any surprise (a kernel or an
 * out without splice, a broken out, a stall) hands over to the read/write
 * path, which owns the drop policy.
 */
static int pump_splice(struct stream *s, struct tail *t, int64_t now)
{
	ssize_t n;

	if (!s->ahead) {
		n = tee_into_tail(s, t);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && errno != EINVAL)) {
			close(s->fd); /* EOF */
			s->fd = -1;
			return 0;
		}
		if (n < 0 && errno == EINVAL) {
			stop_splicing(s);
			return -1;
		}
		if (n < 0)
			return -1;
	}
	n = splice(s->fd, NULL, s->out, NULL, s->ahead, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	if (n > 0) {
		s->ahead -= (size_t)n;
		s->stalled_since = s->ahead ? now : 0;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (!s->stalled_since)
			s->stalled_since = now;
		if (now - s->stalled_since >= SUP_STALL_MS)
			stop_splicing(s); /* the read/write path starts dropping */
		return -1;
	}
	stop_splicing(s); /* EINVAL (no splice to out), EPIPE...: the plain path reports it */
	return -1;
}

/* Pass one chunk along. Returns 1 when data moved, 0 at EOF, -1 when nothing could. */
static int pump(struct stream *s, struct tail *t, int64_t now)
{
	ssize_t n;

	if (s->tee_r >= 0 && s->fd >= 0 && !s->pend_len && !s->broken)
		return pump_splice(s, t, now);
	if (s->pend_len)
		flush_pending(s, now);
	if (s->pend_len && !s->dropping && now - s->stalled_since >= SUP_STALL_MS) {
		s->dropping = 1;
		log_warn("nobody has read fd %d for %d ms; dropping the command's output until it is read again",
		         s->out, SUP_STALL_MS);
	}
	if (s->pend_len && s->dropping) {
		s->dropped += s->pend_len;
		s->pend_len = 0;
	}
	if (s->pend_len || s->fd < 0)
		return s->fd < 0 && !s->pend_len ? 0 : -1;
	n = read(s->fd, s->buf, SUP_BUF);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return 0;
	}
	tail_feed(t, s->out - 1, s->buf, (size_t)n);
	s->last = s->buf[n - 1];
	s->pend_off = 0;
	s->pend_len = (size_t)n;
	flush_pending(s, now);
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

struct loop {
	const struct sup_opts *o;
	struct sup_result *r;
	pid_t pid, pgrp;
	struct stream st[2];
	char *bufs;
	int main_status, main_done, others_termed, poll_failed;
	int64_t timeout_at, kill_at, giveup_at;
};

static int64_t min_deadline(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* Pipes, fork, exec; returns 0 with the command running, -1 with r->how set. */
static int start_child(struct loop *L)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, execp[2] = {-1, -1};
	int e;
	ssize_t n;

	L->bufs = malloc(2 * SUP_BUF);
	if (!L->bufs || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(execp, O_CLOEXEC) != 0 ||
	    (L->pid = fork()) < 0) {
		L->r->how = SUP_START_FAILED;
		L->r->exec_errno = errno;
		close_pair(outp);
		close_pair(errp);
		close_pair(execp);
		return -1;
	}
	if (L->pid == 0) {
		close(outp[0]);
		close(errp[0]);
		close(execp[0]);
		child_exec(L->o, outp[1], errp[1], execp[1], L->pgrp);
	}
	/* both sides set the group, so kill(-pid) works whichever runs first */
	setpgid(L->pid, L->pid);
	close(outp[1]);
	close(errp[1]);
	close(execp[1]);
	do
		n = read(execp[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(execp[0]);
	if (n == (ssize_t)sizeof(e)) {
		L->r->how = SUP_EXEC_FAILED;
		L->r->exec_errno = e;
	}
	stream_open(&L->st[0], outp[0], STDOUT_FILENO, L->bufs);
	stream_open(&L->st[1], errp[0], STDERR_FILENO, L->bufs + SUP_BUF);
	return 0;
}

/*
 * Reap every child that is ready, keeping the command's status. Returns 1
 * when no child is left at all.
 */
static int reap(struct loop *L)
{
	pid_t w;
	int status;

	while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
		if (w == L->pid) {
			L->main_status = status;
			L->main_done = 1;
		}
	}
	return w < 0 && errno == ECHILD;
}

static void terminate(struct loop *L, int64_t now, int64_t within_ms)
{
	kill(-L->pid, SIGTERM);
	L->kill_at = min_deadline(L->kill_at, now + (within_ms < L->o->grace_ms ? within_ms : L->o->grace_ms));
}

/* Leftovers, --timeout, the grace, SIGKILL. Returns 1 to stop waiting. */
static int check_deadlines(struct loop *L, int64_t now)
{
	const struct sup_opts *o = L->o;

	if (L->main_done && !L->others_termed) {
		/* the command is gone but left processes behind: let them shut down */
		L->others_termed = 1;
		log_info("command exited; stopping the processes it left (grace %lld ms)", (long long)o->grace_ms);
		signal_all(L->pid, SIGTERM);
		L->kill_at = min_deadline(L->kill_at, now + o->grace_ms);
	}
	if (L->timeout_at && now >= L->timeout_at && !L->r->timed_out) {
		L->r->timed_out = 1;
		L->timeout_at = 0;
		log_error("timeout: the command ran longer than %lld ms; sending SIGTERM (grace %lld ms)",
		          (long long)o->timeout_ms, (long long)o->grace_ms);
		terminate(L, now, o->grace_ms);
	}
	if (L->kill_at && now >= L->kill_at && !L->r->killed) {
		L->r->killed = 1;
		L->kill_at = 0;
		log_warn("grace period over; sending SIGKILL to the remaining processes");
		signal_all(L->pid, SIGKILL);
		L->giveup_at = now + SUP_KILL_WAIT_MS;
	}
	if (L->giveup_at && now >= L->giveup_at) {
		log_error("processes survived SIGKILL for %d ms; giving up on them", SUP_KILL_WAIT_MS);
		return 1;
	}
	return 0;
}

static void forward_signals(struct loop *L)
{
	struct signalfd_siginfo si;

	while (read(sup_sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int sig = (int)si.ssi_signo;

		if (sig == SIGCHLD || sig == SIGURG)
			continue; /* reaped at the top of the loop; the Go runtime's preemption (scuttle#44) */
		/*
		 * A write to our own broken stdout: the kernel queues SIGPIPE
		 * (blocked signals are never discarded) as sent by us. It is
		 * about our pipe, not the command's (issue 15 item 8).
		 */
		if (sig == SIGPIPE && si.ssi_pid == (uint32_t)getpid())
			continue;
		if (is_term_signal(sig) && !sup_term_at)
			sup_term_at = sup_mono_ms();
		log_debug("forwarding signal %d to process group %d", sig, (int)L->pid);
		kill(-L->pid, sig);
		if (sig == SIGTERM && !L->kill_at && !L->r->killed) {
			L->kill_at = sup_mono_ms() + L->o->grace_ms;
			if (L->o->grace_ms > 0)
				log_info("got SIGTERM; the command has %lld ms to exit", (long long)L->o->grace_ms);
		}
	}
}

static int64_t next_wake(const struct loop *L, int64_t now)
{
	int64_t wake = min_deadline(min_deadline(L->timeout_at, L->kill_at), L->giveup_at), ms;

	for (int i = 0; i < 2; i++)
		if ((L->st[i].pend_len && !L->st[i].dropping) || L->st[i].ahead)
			wake = min_deadline(wake, L->st[i].stalled_since + SUP_STALL_MS);
	if (!wake)
		return -1;
	ms = wake - now;
	return ms < 0 ? 0 : ms > 3600000 ? 3600000 : ms;
}

/*
 * Wait for a signal, output, a writable stdout, the keeper or a deadline,
 * and handle what came. A failing poll never stops the loop: reaping (with
 * the status) and forwarding happen on the next rounds as usual.
 */
static void wait_and_dispatch(struct loop *L, int64_t now)
{
	struct pollfd p[6];
	int n = 0, ev = -1, rc;

	p[n++] = (struct pollfd){.fd = sup_sfd, .events = POLLIN, .revents = 0};
	for (int i = 0; i < 2; i++) {
		struct stream *s = &L->st[i];
		int want_out = (s->pend_len && !s->dropping) || s->ahead;
		p[n++] = (struct pollfd){.fd = want_out ? -1 : s->fd, .events = POLLIN, .revents = 0};
		p[n++] = (struct pollfd){.fd = want_out ? s->out : -1, .events = POLLOUT, .revents = 0};
	}
	if (L->o->on_event && L->o->event_fd >= 0 && !L->r->terminated) {
		ev = n;
		p[n++] = (struct pollfd){.fd = L->o->event_fd, .events = POLLIN, .revents = 0};
	}
	rc = sup_poll(p, (nfds_t)n, (int)next_wake(L, now));
	if (rc < 0 && errno != EINTR) {
		if (!L->poll_failed++)
			log_error("poll: %s; polling every 50 ms instead", strerror(errno));
		nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
		for (int i = 0; i < n; i++)
			p[i].revents = p[i].fd >= 0 ? p[i].events : 0;
	}
	now = sup_mono_ms();
	/* drain what is there: fewer poll() round trips per megabyte */
	for (int i = 0; i < 2; i++)
		if (p[1 + 2 * i].revents || p[2 + 2 * i].revents || L->st[i].pend_len || L->st[i].ahead)
			for (int k = 0; k < 16 && pump(&L->st[i], L->o->tail, now) > 0; k++)
				;
	if (ev >= 0 && p[ev].revents) {
		int64_t budget = L->o->on_event(L->o->ctx);
		if (budget >= 0) {
			L->r->terminated = 1;
			terminate(L, now, budget);
		}
	}
	forward_signals(L);
}

/* After the loop: whatever the pipes still hold, within the stall bound. */
static void drain_rest(struct loop *L)
{
	int64_t end = sup_mono_ms() + SUP_STALL_MS;

	for (;;) {
		int64_t now = sup_mono_ms();
		int busy = 0;

		for (int i = 0; i < 2; i++) {
			struct stream *s = &L->st[i];
			for (int k = 0; k < 64 && pump(s, L->o->tail, now) > 0; k++)
				;
			busy |= s->fd >= 0 || s->pend_len || s->ahead;
		}
		if (!busy || now >= end)
			break;
		{
			int w0 = L->st[0].pend_len || L->st[0].ahead, w1 = L->st[1].pend_len || L->st[1].ahead;
			struct pollfd p[4] = {
			    {.fd = w0 ? -1 : L->st[0].fd, .events = POLLIN, .revents = 0},
			    {.fd = w0 ? L->st[0].out : -1, .events = POLLOUT, .revents = 0},
			    {.fd = w1 ? -1 : L->st[1].fd, .events = POLLIN, .revents = 0},
			    {.fd = w1 ? L->st[1].out : -1, .events = POLLOUT, .revents = 0},
			};
			sup_poll(p, 4, (int)(end - now < 50 ? end - now : 50));
		}
	}
	for (int i = 0; i < 2; i++) {
		L->st[i].dropped += L->st[i].pend_len + L->st[i].ahead;
		L->r->dropped_bytes += L->st[i].dropped;
		stream_close(&L->st[i]);
	}
	if (L->r->dropped_bytes)
		log_warn("%llu bytes of the command's output were dropped because nobody read them",
		         (unsigned long long)L->r->dropped_bytes);
}

static void finish_result(struct loop *L)
{
	struct sup_result *r = L->r;

	r->stdout_unterminated = L->st[0].last != '\n';
	r->finished_ms = sup_wall_ms();
	if (r->how == SUP_EXEC_FAILED)
		return;
	if (!L->main_done) {
		r->how = SUP_SIGNALED;
		r->sig = SIGKILL;
	} else if (WIFSIGNALED(L->main_status)) {
		r->how = SUP_SIGNALED;
		r->sig = WTERMSIG(L->main_status);
	} else {
		r->how = SUP_EXITED;
		r->code = WEXITSTATUS(L->main_status);
	}
}

int sup_run(const struct sup_opts *o, struct sup_result *r)
{
	struct loop L = {.o = o, .r = r, .pgrp = getpgrp()};
	int64_t now;

	memset(r, 0, sizeof(*r));
	r->started_ms = sup_wall_ms();
	if (start_child(&L) != 0) {
		free(L.bufs);
		r->finished_ms = sup_wall_ms();
		return 0;
	}
	now = sup_mono_ms();
	if (o->timeout_ms > 0)
		L.timeout_at = now + o->timeout_ms;
	for (;;) {
		int none_left = reap(&L);

		now = sup_mono_ms();
		if (L.main_done && none_left)
			break;
		if (check_deadlines(&L, now))
			break;
		wait_and_dispatch(&L, now);
	}
	/* take the terminal back from the command's group (interactive use) */
	if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == L.pid)
		tcsetpgrp(STDIN_FILENO, L.pgrp);
	drain_rest(&L);
	tail_flush(o->tail);
	free(L.bufs);
	finish_result(&L);
	return 0;
}

int sup_write_bounded(int fd, const char *buf, size_t len, int64_t timeout_ms)
{
	struct stream s;
	int64_t end = sup_mono_ms() + timeout_ms;
	ssize_t n = 0;
	size_t off = 0;

	stream_open(&s, -1, fd, NULL);
	while (off < len && n >= 0 && sup_mono_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};

		n = write_some(&s, buf + off, len - off);
		if (n > 0)
			off += (size_t)n;
		else if (n == 0)
			sup_poll(&p, 1, (int)(end - sup_mono_ms() > 0 ? end - sup_mono_ms() : 0));
	}
	stream_close(&s);
	return off == len ? 0 : -1;
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
