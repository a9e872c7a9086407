/*
 * keeper.c - the Lease renewal thread (see keeper.h).
 */
#include "keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube.h"
#include "log.h"

struct keeper {
	struct lock *lock;
	const char *name;
	int64_t lease_ms;
	int stop[2]; /* main -> thread: stop now */
	int gave[2]; /* thread -> main: the lock is gone (keeper_fd) */
	int done[2]; /* thread -> main: the thread has returned */
	pthread_t thread;
	/* written by the thread before it writes gave[1], read after */
	int lost;
	int64_t budget;
};

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

static void poke(int fd)
{
	ssize_t n;

	do
		n = write(fd, "x", 1);
	while (n < 0 && errno == EINTR);
}

/* Sleep ms or until told to stop; returns 1 to stop. */
static int sleep_or_stop(struct keeper *k, int64_t ms)
{
	struct pollfd p = {.fd = k->stop[0], .events = POLLIN, .revents = 0};
	int n;

	do
		n = poll(&p, 1, (int)(ms > 0 ? ms : 0));
	while (n < 0 && errno == EINTR);
	return n > 0;
}

/*
 * Renew once. Returns -1 to go on (*next_ms set), or the ms left before a
 * successor may start when the command must stop.
 */
static int64_t renew_once(struct keeper *k, int64_t *next_ms)
{
	struct kube_error err;
	int64_t now = kube_now_ms(), last = lock_last_renew(k->lock);
	int64_t budget, req = k->lease_ms / 3 < 5000 ? k->lease_ms / 3 : 5000;
	int res = lock_renew(k->lock, now + req, &err);

	now = kube_now_ms();
	if (res == LOCK_RENEWED) {
		*next_ms = k->lease_ms / 3;
		return -1;
	}
	/* whoever takes over waits a full lease after our last renewal */
	budget = last + k->lease_ms - 1000 - now;
	if (budget < 0)
		budget = 0;
	if (res == LOCK_LOST) {
		log_error("lost the lock %s (now held by %s); terminating the command so that two migrations "
		          "never run at once",
		          k->name, lock_other_holder(k->lock)[0] ? lock_other_holder(k->lock) : "nobody");
		return budget;
	}
	if (now - last >= k->lease_ms * 2 / 3) {
		log_error("could not renew the lock %s for %lld ms (%s); terminating the command so that two "
		          "migrations never run at once",
		          k->name, (long long)(now - last), err.message);
		return budget;
	}
	log_warn("could not renew the lock %s: %s; retrying", k->name, err.message);
	*next_ms = k->lease_ms / 10 > 500 ? k->lease_ms / 10 : 500;
	return -1;
}

static void *keeper_main(void *arg)
{
	struct keeper *k = arg;
	int64_t next = k->lease_ms / 3;

	while (!sleep_or_stop(k, next)) {
		int64_t budget = renew_once(k, &next);

		if (budget >= 0) {
			k->budget = budget;
			k->lost = 1;
			poke(k->gave[1]);
			break;
		}
	}
	poke(k->done[1]);
	return NULL;
}

struct keeper *keeper_start(struct lock *l, const char *name, int64_t lease_ms)
{
	struct keeper *k = calloc(1, sizeof(*k));
	int e;

	if (!k)
		return NULL;
	k->lock = l;
	k->name = name;
	k->lease_ms = lease_ms;
	k->stop[0] = k->stop[1] = k->gave[0] = k->gave[1] = k->done[0] = k->done[1] = -1;
	if (pipe2(k->stop, O_CLOEXEC) != 0 || pipe2(k->gave, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pipe2(k->done, O_CLOEXEC) != 0)
		goto fail;
	e = pthread_create(&k->thread, NULL, keeper_main, k);
	if (e != 0) {
		errno = e;
		goto fail;
	}
	return k;
fail:
	e = errno;
	close_pair(k->stop);
	close_pair(k->gave);
	close_pair(k->done);
	free(k);
	errno = e;
	return NULL;
}

int keeper_fd(const struct keeper *k) { return k ? k->gave[0] : -1; }

int64_t keeper_budget(struct keeper *k)
{
	char c;

	while (read(k->gave[0], &c, 1) == 1)
		;
	return k->budget;
}

int keeper_lost(const struct keeper *k) { return k && k->lost; }

int keeper_stop(struct keeper *k, int64_t deadline_ms)
{
	struct pollfd p;
	int n;

	if (!k)
		return 0;
	poke(k->stop[1]);
	p = (struct pollfd){.fd = k->done[0], .events = POLLIN, .revents = 0};
	do {
		int64_t left = deadline_ms - kube_now_ms();
		n = poll(&p, 1, (int)(left > 0 ? left : 0));
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	pthread_join(k->thread, NULL);
	close_pair(k->stop);
	close_pair(k->gave);
	close_pair(k->done);
	free(k);
	return 0;
}
