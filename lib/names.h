/*
 * names.h - the Kubernetes name rules, checked before any request: a typo
 * in a Job name would otherwise be answered "not found" and waited for
 * forever, and a '/' in a name would change the request path.
 */
#ifndef MG_NAMES_H
#define MG_NAMES_H

#include <stddef.h>

/*
 * 1 when s is an RFC 1123 DNS subdomain of at most max characters: labels
 * of [a-z0-9-] that begin and end alphanumeric, joined by '.' (Kubernetes'
 * IsDNS1123Subdomain). The names of Jobs, ConfigMaps and Leases (max 253),
 * and Helm's rule for release names (max 53).
 */
int name_is_dns_subdomain(const char *s, size_t max);

/*
 * 1 when s is one RFC 1123 DNS label of at most 63 characters (no dots):
 * the name of a namespace.
 */
int name_is_dns_label(const char *s);

#endif
