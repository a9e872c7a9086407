/*
 * waittcp.c - TCP dependency waits (see waittcp.h).
 */
#include "waittcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "duration.h"
#include "log.h"

int wtcp_parse(const char *spec, struct wtcp_target *t)
{
	const char *colon, *hs, *he;
	char *end;
	long port;

	memset(t, 0, sizeof(*t));
	if (!spec || strlen(spec) >= sizeof(t->spec))
		return -1;
	snprintf(t->spec, sizeof(t->spec), "%s", spec);
	if (spec[0] == '[') {
		he = strchr(spec, ']');
		if (!he || he[1] != ':')
			return -1;
		hs = spec + 1;
		colon = he + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || memchr(spec, ':', (size_t)(colon - spec)))
			return -1; /* a bare IPv6 address needs brackets */
		hs = spec;
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(t->host))
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || errno || port < 1 || port > 65535)
		return -1;
	memcpy(t->host, hs, (size_t)(he - hs));
	snprintf(t->port, sizeof(t->port), "%ld", port);
	return 0;
}

/* One round over the resolved addresses. Returns 0 when one accepted. */
static int try_connect(const struct wtcp_target *t, int timeout_ms, char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, ok = -1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(t->host, t->port, &hints, &res);
	if (rc != 0) {
		snprintf(why, whylen, "cannot resolve %s: %s", t->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai && ok != 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		int err = 0;
		socklen_t elen = sizeof(err);

		if (fd < 0) {
			snprintf(why, whylen, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			ok = 0;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
			int pr = poll(&p, 1, timeout_ms);

			if (pr == 0)
				snprintf(why, whylen, "connect timed out");
			else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
				snprintf(why, whylen, "poll: %s", strerror(errno));
			else if (err)
				snprintf(why, whylen, "%s", strerror(err));
			else
				ok = 0;
		} else {
			snprintf(why, whylen, "%s", strerror(errno));
		}
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

int wtcp_wait(const struct wtcp_target *t, size_t n, int64_t deadline_ms, int64_t (*mono_now)(void),
              int (*wait_cb)(void *ctx, int64_t ms), void *ctx, size_t *failed)
{
	for (size_t i = 0; i < n; i++) {
		int64_t start = mono_now(), backoff = 100;
		char why[256] = "", d[32];
		int attempts = 0;

		dur_format(deadline_ms - start > 0 ? deadline_ms - start : 0, d, sizeof(d));
		log_info("waiting for %s to accept TCP connections (up to %s)", t[i].spec, d);
		for (;;) {
			int64_t now = mono_now(), left = deadline_ms - now;

			if (left <= 0) {
				log_error("%s did not accept a TCP connection in time (%d attempts; last error: %s)",
				          t[i].spec, attempts, why[0] ? why : "none");
				if (failed)
					*failed = i;
				return WTCP_TIMEOUT;
			}
			attempts++;
			if (try_connect(&t[i], left < 2000 ? (int)left : 2000, why, sizeof(why)) == 0)
				break;
			if (attempts == 1 || attempts % 10 == 0)
				log_info("%s: %s; retrying", t[i].spec, why);
			left = deadline_ms - mono_now();
			if (left <= 0)
				continue;
			if (wait_cb(ctx, backoff < left ? backoff : left) != 0)
				return WTCP_INTERRUPTED;
			if (backoff < 2000)
				backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
		}
		dur_format(mono_now() - start, d, sizeof(d));
		log_info("%s accepts connections (waited %s)", t[i].spec, d);
	}
	return WTCP_OK;
}
