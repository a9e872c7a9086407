/*
 * Fuzz target: json_parse_kept against the reference it replaces, pruning
 * cJSON's full parse. Whatever it accepts cJSON accepts, with the same
 * pruned tree; whatever cJSON accepts, printed back as strict JSON, it
 * accepts too. The keep is a pod's shape of release-check (nested objects,
 * arrays of objects, whole values).
 */
#include "../../lib/json.c"

static const struct json_keep k_leaf[] = {{"a", NULL}, {"b", NULL}, {"\xc3\xa9", NULL}, {NULL, NULL}};
static const struct json_keep k_mid[] = {{"a", k_leaf}, {"c", NULL}, {"", k_leaf}, {"d", k_leaf}, {NULL, NULL}};
static const struct json_keep k_top[] = {{"a", k_mid},     {"b", NULL},   {"items", k_mid},
                                         {"x\"y", k_leaf}, {"c", k_leaf}, {NULL, NULL}};

/* prune_value of release-check/prune.c, over json_keep */
static cJSON *ref_prune(const cJSON *v, const struct json_keep *sub)
{
	cJSON *out;
	const cJSON *e;

	if (!sub || (!cJSON_IsObject(v) && !cJSON_IsArray(v)))
		return cJSON_Duplicate(v, 1);
	out = cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject();
	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach (e, v)
			cJSON_AddItemToArray(out, ref_prune(e, sub));
		return out;
	}
	for (; sub->key; sub++) {
		e = cJSON_GetObjectItemCaseSensitive(v, sub->key);
		if (e)
			cJSON_AddItemToObject(out, sub->key, ref_prune(e, sub->sub));
	}
	return out;
}

static void same(const cJSON *full, const cJSON *kept)
{
	/* compared printed: cJSON_Compare finds an infinity unequal to itself */
	cJSON *want = ref_prune(full, k_top);
	char *a = cJSON_PrintUnformatted(want), *b = cJSON_PrintUnformatted(kept);
	if (!a || !b || strcmp(a, b) != 0)
		__builtin_trap();
	cJSON_free(a);
	cJSON_free(b);
	cJSON_Delete(want);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *buf = (const char *)data;
	cJSON *full = cJSON_ParseWithLength(buf, size), *kept;
	int toobig;

	kept = json_parse_kept(buf, size, k_top, 1u << 20, &toobig);
	if (kept) {
		const char *end = NULL;
		cJSON *strict = cJSON_ParseWithLengthOpts(buf, size, &end, 0);
		/* accepted: cJSON accepts it (up to trailing whitespace) and prunes it the same */
		if (!strict)
			__builtin_trap();
		same(strict, kept);
		cJSON_Delete(strict);
	}
	if (full) {
		char *printed = cJSON_PrintUnformatted(full);
		if (printed) {
			cJSON *again = json_parse_kept(printed, strlen(printed), k_top, 1u << 20, &toobig);
			cJSON *reparsed = cJSON_Parse(printed);
			/* NaN and infinities print as null: compare with the reparse, not the original */
			if (!again || !reparsed)
				__builtin_trap();
			same(reparsed, again);
			cJSON_Delete(again);
			cJSON_Delete(reparsed);
			cJSON_free(printed);
		}
	}
	cJSON_Delete(kept);
	cJSON_Delete(full);
	return 0;
}
