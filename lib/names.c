/*
 * names.c - RFC 1123 names as Kubernetes validates them (see names.h).
 */
#include "names.h"

#include <string.h>

#define DNS_LABEL_MAX 63

static int lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* s[0..n) is one label: [a-z0-9-], alphanumeric at both ends */
static int is_label(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!lower_alnum(s[i]) && !(s[i] == '-' && i > 0 && i < n - 1))
			return 0;
	return 1;
}

int name_is_dns_subdomain(const char *s, size_t max)
{
	size_t n, i, start = 0;

	if (!s)
		return 0;
	n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (i = 0; i <= n; i++) {
		if (s[i] != '.' && s[i] != '\0')
			continue;
		if (!is_label(s + start, i - start))
			return 0;
		start = i + 1;
	}
	return 1;
}

int name_is_dns_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n <= DNS_LABEL_MAX && is_label(s, n);
}
