/*
 * The one name check (lib/names.c) against Kubernetes' own rules:
 * IsDNS1123Subdomain and IsDNS1123Label of k8s.io/apimachinery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../lib/names.c"

static void subdomain(void **state)
{
	(void)state;
	assert_true(name_is_dns_subdomain("app", 253));
	assert_true(name_is_dns_subdomain("a", 253));
	assert_true(name_is_dns_subdomain("0", 253));
	assert_true(name_is_dns_subdomain("shop-migrate-12", 253));
	assert_true(name_is_dns_subdomain("my-app.v2", 253));
	assert_true(name_is_dns_subdomain("a.b-c9", 253));
	assert_false(name_is_dns_subdomain(NULL, 253));
	assert_false(name_is_dns_subdomain("", 253));
	assert_false(name_is_dns_subdomain("App", 253));
	assert_false(name_is_dns_subdomain("-app", 253));
	assert_false(name_is_dns_subdomain("app-", 253));
	assert_false(name_is_dns_subdomain(".app", 253));
	assert_false(name_is_dns_subdomain("app.", 253));
	/* every label begins and ends alphanumeric */
	assert_false(name_is_dns_subdomain("a..b", 253));
	assert_false(name_is_dns_subdomain("a.-b", 253));
	assert_false(name_is_dns_subdomain("a-.b", 253));
	assert_false(name_is_dns_subdomain("a_b", 253));
	assert_false(name_is_dns_subdomain("a/b", 253));
	assert_false(name_is_dns_subdomain("a,b", 253));
	assert_false(name_is_dns_subdomain("a=b", 253));
	assert_false(name_is_dns_subdomain("a b", 253));
	assert_false(name_is_dns_subdomain("\xc3\xa9t\xc3\xa9", 253));
}

static void subdomain_length(void **state)
{
	char s[300];

	(void)state;
	/* Helm's release names: at most 53 */
	assert_true(name_is_dns_subdomain("12345678901234567890123456789012345678901234567890123", 53));
	assert_false(name_is_dns_subdomain("123456789012345678901234567890123456789012345678901234", 53));
	memset(s, 'a', 253);
	s[253] = '\0';
	s[100] = '.'; /* labels may be longer than 63 in a subdomain, as in Kubernetes */
	assert_true(name_is_dns_subdomain(s, 253));
	s[253] = 'a';
	s[254] = '\0';
	assert_false(name_is_dns_subdomain(s, 253));
}

static void label(void **state)
{
	char s[80];

	(void)state;
	assert_true(name_is_dns_label("default"));
	assert_true(name_is_dns_label("kube-system"));
	assert_true(name_is_dns_label("a1"));
	assert_false(name_is_dns_label(NULL));
	assert_false(name_is_dns_label(""));
	assert_false(name_is_dns_label("a.b"));
	assert_false(name_is_dns_label("-a"));
	assert_false(name_is_dns_label("a-"));
	assert_false(name_is_dns_label("Shop"));
	assert_false(name_is_dns_label("a/b"));
	memset(s, 'a', 63);
	s[63] = '\0';
	assert_true(name_is_dns_label(s));
	s[63] = 'a';
	s[64] = '\0';
	assert_false(name_is_dns_label(s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(subdomain),
	    cmocka_unit_test(subdomain_length),
	    cmocka_unit_test(label),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
