/* Fuzz target: kubeconfig YAML parsing (every context, first byte picks one). */
#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/kubeconfig.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct kube_config cfg;
	struct kube_error err;
	static const char *const contexts[] = {NULL, "a", "x", "prod"};

	if (size < 1)
		return 0;
	if (kcfg_parse((const char *)data + 1, size - 1, "/nonexistent/fuzz/config", contexts[data[0] & 3], &cfg,
	               &err) == KUBE_OK)
		kcfg_free(&cfg);
	return 0;
}
