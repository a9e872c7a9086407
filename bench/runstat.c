/*
 * runstat - run a command, then write "<user_us> <sys_us> <maxrss_kb> <exit>"
 * for it (and its reaped descendants) to a file: GNU time's idea with
 * microseconds, because our waiters use less than time's 10 ms resolution.
 * SIGINT is ignored here (as time(1) does) so the benchmark can interrupt
 * the command and still get its figures.
 *
 *   runstat OUTFILE COMMAND [ARG...]
 */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: runstat OUTFILE COMMAND [ARG...]\n");
		return 64;
	}
	pid = fork();
	if (pid < 0)
		return 71;
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	signal(SIGINT, SIG_IGN);
	while (wait4(pid, &status, 0, &ru) < 0)
		;
	f = fopen(argv[1], "w");
	if (!f)
		return 73;
	fprintf(f, "%ld %ld %ld %d\n", (long)ru.ru_utime.tv_sec * 1000000L + (long)ru.ru_utime.tv_usec,
	        (long)ru.ru_stime.tv_sec * 1000000L + (long)ru.ru_stime.tv_usec, ru.ru_maxrss,
	        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
