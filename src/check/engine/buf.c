/* buf.c: growing text buffers and JSON string escaping, the output helpers of every report
 * writer (report.c, json.c, suppress.c, census.c) and of the fault path (wref__json_escape,
 * which allocates nothing). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wref__buf_printf(wref__buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;   /* once cut, stays cut: never a text with a hole in it */
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->data && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;   /* out of memory: the finding is cut short, never lost entirely */
        }
        b->data = d;
        b->cap = cap;
    }
}

void wref__buf_free(wref__buf *b)
{
    free(b->data);
    *b = (wref__buf){0};
}

/* Length of the well-formed UTF-8 sequence at p (1 for ASCII), 0 when it is not one. */
size_t wref__utf8_len(const unsigned char *p)
{
    if (*p < 0x80)
        return 1;
    size_t n = *p >= 0xf0 && *p <= 0xf4 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 && *p < 0xe0 ? 2 : 0;
    if (n == 0 || (n == 3 && *p >= 0xf0))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0))) ||
        (n == 4 && ((*p == 0xf0 && p[1] < 0x90) || (*p == 0xf4 && p[1] >= 0x90))))
        return 0;   /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

void wref__json_escape(const char *s, void (*put)(void *ctx, const char *p, size_t n), void *ctx)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t len = wref__utf8_len(p);
        char esc[8] = {'\\', (char)*p, 0};
        if (*p == '"' || *p == '\\') {
            put(ctx, esc, 2);
        } else if (*p == '\n') {
            put(ctx, "\\n", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = "0123456789abcdef"[*p >> 4];
            esc[5] = "0123456789abcdef"[*p & 15];
            put(ctx, esc, 6);
        } else if (len == 0) {
            put(ctx, "\\ufffd", 6);   /* not UTF-8 (a path, say): the replacement character */
        } else {
            put(ctx, (const char *)p, len);
        }
        p += len ? len : 1;
    }
}

static void buf_put(void *ctx, const char *p, size_t n)
{
    wref__buf_printf(ctx, "%.*s", (int)n, p);
}

void wref__buf_json_string(wref__buf *b, const char *s)
{
    if (!s) {
        wref__buf_printf(b, "null");
        return;
    }
    wref__buf_printf(b, "\"");
    wref__json_escape(s, buf_put, b);
    wref__buf_printf(b, "\"");
}
