/*
 * tail.h - a bounded tail of the command's output lines, for the outcome
 * record.
 *
 * stdout and stderr are fed separately; each keeps its own partial line so
 * that interleaved chunks never splice two streams into one line. Complete
 * lines go into one ring in arrival order. Memory is fixed at creation:
 * max_lines slots of max_line_len bytes (longer lines are cut).
 */
#ifndef MR_TAIL_H
#define MR_TAIL_H

#include <stddef.h>

struct tail;

/* NULL on allocation failure. Free with tail_free. */
struct tail *tail_new(size_t max_lines, size_t max_line_len);
void tail_free(struct tail *t);

/* stream: 0 = stdout, 1 = stderr. */
void tail_feed(struct tail *t, int stream, const char *buf, size_t len);

/* Commit any unterminated last line of both streams. */
void tail_flush(struct tail *t);

/*
 * The kept lines, oldest first, joined by '\n' (no trailing newline), valid
 * UTF-8 (invalid bytes become '?'), redacted (tail_redact), and at most
 * max_bytes long: whole lines
 * are dropped from the front first, then the oldest remaining line is cut
 * at a character boundary. Returns a string the caller frees, or NULL on
 * allocation failure. An empty tail gives "".
 */
char *tail_text(const struct tail *t, size_t max_bytes);

/*
 * A copy of s with obvious secrets masked as "***": URL passwords
 * (scheme://user:***@), the values of keys naming a secret (password=,
 * PGPASSWORD=, "token": "...", client_secret: ..., api_key=), and Bearer or
 * Basic credentials. tail_text applies it. Caller frees; NULL on OOM.
 */
char *tail_redact(const char *s);

#endif
