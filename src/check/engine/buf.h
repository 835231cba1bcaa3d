/* buf.h: growing text buffers and JSON string escaping (buf.c). The lowest layer of the
 * report pipeline: it knows no finding, no record and no option. */
#ifndef WREF_CHECK_ENGINE_BUF_H
#define WREF_CHECK_ENGINE_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct wref__buf {
    char *data;
    size_t len, cap;
    bool failed;   /* a printf did not fit (out of memory): the text is cut short */
} wref__buf;
void wref__buf_printf(wref__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wref__buf_free(wref__buf *b);
void wref__buf_json_string(wref__buf *b, const char *s);   /* a JSON string literal, or null */
/* The body of a JSON string literal for s (no quotes), piece by piece through put: quotes,
 * backslashes and control bytes escaped, bytes that are not UTF-8 as U+FFFD. Allocates
 * nothing: async-signal-safe when put is. */
void wref__json_escape(const char *s, void (*put)(void *ctx, const char *p, size_t n), void *ctx);
size_t wref__utf8_len(const unsigned char *p);   /* well-formed UTF-8 sequence length, 0 if not */

#endif /* WREF_CHECK_ENGINE_BUF_H */
