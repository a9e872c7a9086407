/*
 * Fuzz target: the watch stream as a server might send it - arbitrary
 * chunking (the first byte picks the chunk size), newline framing with a
 * small line cap, event JSON decoding, ERROR events, bookmarks.
 */
#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../lib/kubeconfig.c"
#include "../../lib/kube.c"
#include "../../lib/watch.c"

static int fuzz_cb(void *ctx, size_t idx, enum watch_event ev, const cJSON *obj)
{
	(void)ctx;
	(void)idx;
	(void)ev;
	/* touch what evaluators read */
	if (obj) {
		(void)json_str(obj, "metadata.name");
		(void)json_condition_true(obj, "Complete");
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct watch_spec spec = {.path = "/x", .what = "x"};
	struct watch_opts o = {0};
	struct kube_error err = {0};
	struct wrun r = {.opts = &o, .cb = fuzz_cb, .err = &err};
	struct wstate w = {.spec = &spec, .run = &r};
	size_t chunk, off = 1;

	if (size < 1)
		return 0;
	log_init("fuzz", LOG_TEXT, LOG_ERROR);
	chunk = (size_t)data[0] % 64 + 1;
	w.line.max = 4096;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (watch_frame(&w.line, (const char *)data + off, n, watch_line, &w) != 0)
			kbuf_reset(&w.line); /* the stream would be restarted */
		off += n;
	}
	kbuf_free(&w.line);
	return 0;
}
