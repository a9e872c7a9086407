/*
 * Unit tests: migrate-runner/supervise.c (the PID-1 loop, with real
 * processes), waittcp.c and sidecar.c parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "../../lib/duration.c"
#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/record.c"
#include "../../migrate-runner/sidecar.c"
#include "../../migrate-runner/supervise.c"
#include "../../migrate-runner/tail.c"
#include "../../migrate-runner/waittcp.c"

static struct sup_result run_sh(const char *script, int64_t timeout_ms, int64_t grace_ms, struct tail *t)
{
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)script, NULL};
	struct sup_opts o = {.argv = argv, .timeout_ms = timeout_ms, .grace_ms = grace_ms, .tail = t};
	struct sup_result r;

	assert_int_equal(sup_run(&o, &r), 0);
	return r;
}

static void no_children_left(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void exit_codes(void **state)
{
	struct tail *t = tail_new(5, 128);
	struct sup_result r;
	char *s;

	(void)state;
	assert_int_equal(sup_init(), 0);
	r = run_sh("echo to-stdout; echo to-stderr >&2; exit 7", 0, 1000, t);
	assert_int_equal(r.how, SUP_EXITED);
	assert_int_equal(sup_exit_code(&r), 7);
	assert_true(r.finished_ms >= r.started_ms);
	s = tail_text(t, 1000);
	assert_non_null(strstr(s, "to-stdout"));
	assert_non_null(strstr(s, "to-stderr"));
	free(s);
	r = run_sh("kill -KILL $$", 0, 1000, NULL);
	assert_int_equal(r.how, SUP_SIGNALED);
	assert_int_equal(r.sig, SIGKILL);
	assert_int_equal(sup_exit_code(&r), 137);
	no_children_left();
	tail_free(t);
}

static void exec_failures(void **state)
{
	char *missing[] = {(char *)"/nonexistent/cmd", NULL};
	char path[] = "/tmp/mr-notexec-XXXXXX";
	char *notexec[] = {path, NULL};
	struct sup_opts o = {.argv = missing, .grace_ms = 1000};
	struct sup_result r;
	int fd = mkstemp(path); /* mode 0600: not executable */

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sup_init(), 0);
	sup_run(&o, &r);
	assert_int_equal(r.how, SUP_EXEC_FAILED);
	assert_int_equal(r.exec_errno, ENOENT);
	assert_int_equal(sup_exit_code(&r), 127);
	o.argv = notexec;
	sup_run(&o, &r);
	assert_int_equal(r.how, SUP_EXEC_FAILED);
	assert_int_equal(r.exec_errno, EACCES);
	assert_int_equal(sup_exit_code(&r), 126);
	unlink(path);
	no_children_left();
}

static void timeout_then_kill(void **state)
{
	struct sup_result r;
	int64_t t0;

	(void)state;
	assert_int_equal(sup_init(), 0);
	t0 = sup_mono_ms();
	/* ignores SIGTERM: needs the SIGKILL after the grace */
	r = run_sh("trap '' TERM; sleep 5 & wait; sleep 5", 200, 300, NULL);
	assert_true(r.timed_out);
	assert_true(r.killed);
	assert_int_equal(sup_exit_code(&r), 124);
	assert_true(sup_mono_ms() - t0 < 3000);
	no_children_left();
}

static void leftovers_are_stopped(void **state)
{
	struct sup_result r;
	int64_t t0;

	(void)state;
	assert_int_equal(sup_init(), 0);
	t0 = sup_mono_ms();
	/* the background job outlives the main process; it gets SIGTERM */
	r = run_sh("sleep 30 & exit 4", 0, 5000, NULL);
	assert_int_equal(sup_exit_code(&r), 4);
	assert_false(r.killed);
	assert_true(sup_mono_ms() - t0 < 3000);
	no_children_left();
}

static int64_t lose_now(void *ctx)
{
	int *n = ctx;
	++*n;
	return 100;
}

static void event_terminates(void **state)
{
	char *argv[] = {(char *)"sleep", (char *)"10", NULL};
	int calls = 0, p[2];
	struct sup_opts o = {.argv = argv, .grace_ms = 5000, .on_event = lose_now, .ctx = &calls};
	struct sup_result r;

	(void)state;
	assert_int_equal(sup_init(), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	o.event_fd = p[0];
	sup_run(&o, &r);
	close(p[0]);
	close(p[1]);
	assert_int_equal(calls, 1); /* once, though the fd stays readable */
	assert_true(r.terminated);
	assert_int_equal(r.how, SUP_SIGNALED);
	assert_int_equal(r.sig, SIGTERM);
	assert_int_equal(sup_exit_code(&r), 143);
}

/*
 * Issue 15 item 7: a reader of our stdout that stops reading must not
 * freeze the loop (--timeout fired 13 s late): the output is dropped after
 * a bounded stall, counted, and the timeout holds.
 */
static void stalled_stdout_never_blocks(void **state)
{
	int p[2], saved = dup(STDOUT_FILENO);
	struct tail *t = tail_new(3, 128);
	struct sup_result r;
	int64_t t0;
	char *s;

	(void)state;
	assert_int_equal(sup_init(), 0);
	assert_int_equal(pipe(p), 0); /* nobody ever reads p[0] */
	fflush(stdout);
	dup2(p[1], STDOUT_FILENO);
	t0 = sup_mono_ms();
	r = run_sh("head -c 3000000 /dev/zero; echo; echo last-line; sleep 30", 3000, 300, t);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(p[0]);
	close(p[1]);
	assert_true(r.timed_out);
	assert_int_equal(sup_exit_code(&r), 124);
	assert_true(sup_mono_ms() - t0 < 3000 + 300 + SUP_STALL_MS + 1500);
	assert_true(r.dropped_bytes > 0);
	s = tail_text(t, 1000);
	assert_non_null(strstr(s, "last-line")); /* the tail saw every byte */
	free(s);
	tail_free(t);
	/* and the outcome line gives up in time too */
	assert_int_equal(pipe(p), 0);
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	t0 = sup_mono_ms();
	{
		static char big[70000];
		memset(big, 'x', sizeof(big));
		assert_int_equal(sup_write_bounded(p[1], big, sizeof(big), 200), -1);
	}
	assert_true(sup_mono_ms() - t0 < 1000);
	assert_int_equal(sup_write_bounded(p[1], "", 0, 200), 0);
	close(p[0]);
	close(p[1]);
}

/* poll(2) that fails; on the third call a SIGTERM arrives as well */
static int poll_calls;
static int failing_poll(struct pollfd *p, nfds_t n, int ms)
{
	(void)p;
	(void)n;
	(void)ms;
	if (++poll_calls == 3)
		kill(getpid(), SIGTERM);
	errno = EINVAL;
	return -1;
}

/* Issue 15 item 7: the poll-error path reaped without the status and swallowed SIGTERM. */
static void poll_errors_lose_nothing(void **state)
{
	struct sup_result r;

	(void)state;
	assert_int_equal(sup_init(), 0);
	sup_poll = failing_poll;
	poll_calls = 100;
	r = run_sh("sleep 0.2; exit 7", 0, 1000, NULL);
	assert_int_equal(r.how, SUP_EXITED);
	assert_int_equal(sup_exit_code(&r), 7);
	poll_calls = 0;
	r = run_sh("sleep 5", 0, 3000, NULL);
	sup_poll = poll;
	assert_int_equal(r.how, SUP_SIGNALED);
	assert_int_equal(r.sig, SIGTERM); /* forwarded, not SIGKILLed after the grace */
	assert_false(r.killed);
	assert_true(sup_term_ms() > 0);
	no_children_left();
}

/* issue 15 item 8: our own broken stdout must never send SIGPIPE to the command */
static void broken_stdout_no_sigpipe(void **state)
{
	int p[2], saved = dup(STDOUT_FILENO);
	struct sup_result r;

	(void)state;
	assert_int_equal(sup_init(), 0);
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	fflush(stdout);
	dup2(p[1], STDOUT_FILENO);
	close(p[1]);
	r = run_sh("echo one; sleep 0.2; echo two; sleep 0.2; exit 5", 0, 1000, NULL);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	assert_int_equal(r.how, SUP_EXITED);
	assert_int_equal(sup_exit_code(&r), 5);
}

/* issue 15 item 9: no descriptor but 0-2 reaches the command (the API socket) */
static void descriptors_not_inherited(void **state)
{
	char script[128];
	int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, like libcurl's sockets */
	struct sup_result r;

	(void)state;
	assert_true(fd > 2);
	assert_int_equal(sup_init(), 0);
	snprintf(script, sizeof(script), "[ -e /proc/$$/fd/%d ] && exit 9; exit 0", fd);
	r = run_sh(script, 0, 1000, NULL);
	close(fd);
	assert_int_equal(sup_exit_code(&r), 0);
}

static void wait_returns_on_term(void **state)
{
	int64_t t0;

	(void)state;
	assert_int_equal(sup_init(), 0);
	t0 = sup_mono_ms();
	assert_int_equal(sup_wait(50), 0);
	assert_true(sup_mono_ms() - t0 >= 50);
	kill(getpid(), SIGUSR1); /* not a reason to stop */
	assert_int_equal(sup_wait(10), 0);
	kill(getpid(), SIGTERM);
	assert_int_equal(sup_wait(5000), SIGTERM);
	assert_int_equal(sup_pending_signal(), SIGTERM);
	assert_int_equal(sup_wait_cb(NULL, 5000), SIGTERM);
	sup_term_sig = 0;
}

static void tcp_parse(void **state)
{
	struct wtcp_target t;

	(void)state;
	assert_int_equal(wtcp_parse("db:5432", &t), 0);
	assert_string_equal(t.host, "db");
	assert_string_equal(t.port, "5432");
	assert_int_equal(wtcp_parse("[::1]:80", &t), 0);
	assert_string_equal(t.host, "::1");
	assert_int_equal(wtcp_parse("db.ns.svc.cluster.local:1", &t), 0);
	assert_int_equal(wtcp_parse("db", &t), -1);
	assert_int_equal(wtcp_parse("db:", &t), -1);
	assert_int_equal(wtcp_parse(":80", &t), -1);
	assert_int_equal(wtcp_parse("db:0", &t), -1);
	assert_int_equal(wtcp_parse("db:65536", &t), -1);
	assert_int_equal(wtcp_parse("db:+80", &t), -1);
	assert_int_equal(wtcp_parse("db:80x", &t), -1);
	assert_int_equal(wtcp_parse("::1:80", &t), -1);
	assert_int_equal(wtcp_parse("[::1]80", &t), -1);
	assert_int_equal(wtcp_parse(NULL, &t), -1);
}

static int sleep_cb(void *ctx, int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	(void)ctx;
	nanosleep(&ts, NULL);
	return 0;
}

static void tcp_wait(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
	socklen_t alen = sizeof(a);
	struct wtcp_target t[2];
	char spec[64];
	size_t failed = 99;

	(void)state;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", ntohs(a.sin_port));
	assert_int_equal(wtcp_parse(spec, &t[0]), 0);
	assert_int_equal(wtcp_wait(t, 1, sup_mono_ms() + 2000, sup_mono_ms, sleep_cb, NULL, &failed), WTCP_OK);
	close(fd);
	/* now nobody listens there */
	assert_int_equal(wtcp_parse(spec, &t[1]), 0);
	assert_int_equal(wtcp_wait(t, 2, sup_mono_ms() + 300, sup_mono_ms, sleep_cb, NULL, &failed), WTCP_TIMEOUT);
	assert_int_equal(failed, 0);
}

static void sidecar_specs(void **state)
{
	struct sidecar s;

	(void)state;
	assert_int_equal(sidecar_parse("istio", NULL, &s), 0);
	assert_string_equal(s.quit_url, "http://127.0.0.1:15020/quitquitquit");
	assert_string_equal(s.ready_url, "http://127.0.0.1:15021/healthz/ready");
	assert_int_equal(sidecar_parse("linkerd", NULL, &s), 0);
	assert_string_equal(s.quit_url, "http://127.0.0.1:4191/shutdown");
	assert_int_equal(sidecar_parse("http://127.0.0.1:9/quit", NULL, &s), 0);
	assert_string_equal(s.kind, "url");
	assert_string_equal(s.ready_url, "");
	assert_int_equal(sidecar_parse("http://127.0.0.1:9/quit", "http://127.0.0.1:9/ready", &s), 0);
	assert_string_equal(s.ready_url, "http://127.0.0.1:9/ready");
	assert_int_equal(sidecar_parse("envoy", NULL, &s), -1);
	assert_int_equal(sidecar_parse("ftp://x/", NULL, &s), -1);
	assert_int_equal(sidecar_parse("http://a b/", NULL, &s), -1);
	assert_int_equal(sidecar_parse("istio", "file:///etc/passwd", &s), -1);
	assert_int_equal(sidecar_parse(NULL, NULL, &s), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(exit_codes),
	    cmocka_unit_test(exec_failures),
	    cmocka_unit_test(timeout_then_kill),
	    cmocka_unit_test(leftovers_are_stopped),
	    cmocka_unit_test(event_terminates),
	    cmocka_unit_test(wait_returns_on_term),
	    cmocka_unit_test(tcp_parse),
	    cmocka_unit_test(tcp_wait),
	    cmocka_unit_test(sidecar_specs),
	    cmocka_unit_test(broken_stdout_no_sigpipe),
	    cmocka_unit_test(descriptors_not_inherited),
	    cmocka_unit_test(stalled_stdout_never_blocks),
	    cmocka_unit_test(poll_errors_lose_nothing),
	};
	log_init("test", LOG_TEXT, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
