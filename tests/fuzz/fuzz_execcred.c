/* Fuzz target: ExecCredential JSON from credential plugins. */
#include <stdlib.h>

#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/kubeconfig.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *t, *c, *k, e[256];
	int64_t exp;

	if (kcfg_parse_exec_credential((const char *)data, size, &t, &c, &k, &exp, e, sizeof(e)) == 0) {
		free(t);
		free(c);
		free(k);
	}
	return 0;
}
