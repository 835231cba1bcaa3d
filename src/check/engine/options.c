/* options.c: struct, defaults, parser and help text generated from options.def.
 * Nothing here calls malloc: it runs while the checker initializes, possibly before the
 * program's allocator is ready. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "check/engine/options.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct wref__options wref__opt = {
#define WREF__OPTION(type, name, default_, help) .name = default_,
#include "check/engine/options.def"
};

static const struct wref__options defaults = {
#define WREF__OPTION(type, name, default_, help) .name = default_,
#include "check/engine/options.def"
};

enum kind { KIND_bool, KIND_int, KIND_uint, KIND_size, KIND_string, KIND_enum };

static const char *const kind_names[] = {
    [KIND_bool] = "bool", [KIND_int] = "int", [KIND_uint] = "uint",
    [KIND_size] = "size", [KIND_string] = "string", [KIND_enum] = "enum",
};

struct desc {
    const char *name;
    enum kind kind;
    size_t offset;
    const char *help;
};

static const struct desc descs[] = {
#define WREF__OPTION(type, name, default_, help)                                               \
    { #name, KIND_##type, offsetof(struct wref__options, name), help },
#include "check/engine/options.def"
};
#define NDESCS (sizeof descs / sizeof descs[0])

static const struct {
    const char *option;
    enum wref__option_value value;
    const char *name;
} enum_values[] = {
#define WREF__OPTION_ENUM(option, constant, value) { #option, WREF__##constant, value },
#include "check/engine/options.def"
};
#define NENUM_VALUES (sizeof enum_values / sizeof enum_values[0])

static const struct {
    const char *option;
    long long min, max;
} ranges[] = {
#define WREF__OPTION_RANGE(option, min, max) { #option, (long long)(min), (long long)(max) },
#include "check/engine/options.def"
};
#define NRANGES (sizeof ranges / sizeof ranges[0])

void wref__options_defaults(struct wref__options *o)
{
    *o = defaults;
}

const char *wref__option_value_name(enum wref__option_value v)
{
    for (size_t i = 0; i < NENUM_VALUES; i++)
        if (enum_values[i].value == v)
            return enum_values[i].name;
    return "?";
}

const char *wref__option_enum_value(const char *option, size_t i)
{
    for (size_t k = 0; k < NENUM_VALUES; k++)
        if (strcmp(enum_values[k].option, option) == 0 && i-- == 0)
            return enum_values[k].name;
    return NULL;
}

int wref__option_range(const char *option, long long *min, long long *max)
{
    for (size_t i = 0; i < NRANGES; i++) {
        if (strcmp(ranges[i].option, option) == 0) {
            *min = ranges[i].min;
            *max = ranges[i].max;
            return 1;
        }
    }
    return 0;
}

/* ---- formatting (snprintf into caller buffers; no allocation) ------------------------------ */

static void *field(const struct wref__options *o, const struct desc *d)
{
    return (char *)o + d->offset;
}

static int field_equal(const struct wref__options *a, const struct wref__options *b,
                       const struct desc *d)
{
    switch (d->kind) {
    case KIND_bool: return *(bool *)field(a, d) == *(bool *)field(b, d);
    case KIND_int: return *(int *)field(a, d) == *(int *)field(b, d);
    case KIND_uint: return *(unsigned *)field(a, d) == *(unsigned *)field(b, d);
    case KIND_size: return *(size_t *)field(a, d) == *(size_t *)field(b, d);
    case KIND_string: return strcmp(field(a, d), field(b, d)) == 0;
    case KIND_enum:
        return *(enum wref__option_value *)field(a, d) == *(enum wref__option_value *)field(b, d);
    }
    return 0;
}

/* The value as it would be written in WREF_CHECK_OPTIONS (strings in double quotes). */
static void format_value(char *buf, size_t cap, const struct wref__options *o,
                         const struct desc *d)
{
    const void *f = field(o, d);
    switch (d->kind) {
    case KIND_bool: snprintf(buf, cap, "%d", *(const bool *)f ? 1 : 0); return;
    case KIND_int: snprintf(buf, cap, "%d", *(const int *)f); return;
    case KIND_uint: snprintf(buf, cap, "%u", *(const unsigned *)f); return;
    case KIND_size: {
        size_t v = *(const size_t *)f;
        if (v != 0 && v % (1u << 30) == 0)
            snprintf(buf, cap, "%zug", v >> 30);
        else if (v != 0 && v % (1u << 20) == 0)
            snprintf(buf, cap, "%zum", v >> 20);
        else if (v != 0 && v % (1u << 10) == 0)
            snprintf(buf, cap, "%zuk", v >> 10);
        else
            snprintf(buf, cap, "%zu", v);
        return;
    }
    case KIND_string: snprintf(buf, cap, "\"%s\"", (const char *)f); return;
    case KIND_enum:
        snprintf(buf, cap, "%s", wref__option_value_name(*(const enum wref__option_value *)f));
        return;
    }
}

/* What a valid value looks like, for the bad-value warning. */
static void format_expected(char *buf, size_t cap, const struct desc *d)
{
    long long min = 0, max = 0;
    int has_range = wref__option_range(d->name, &min, &max);
    switch (d->kind) {
    case KIND_bool: snprintf(buf, cap, "expected 0 or 1"); return;
    case KIND_int:
        if (has_range)
            snprintf(buf, cap, "expected an integer from %lld to %lld", min, max);
        else
            snprintf(buf, cap, "expected an integer");
        return;
    case KIND_uint:
    case KIND_size:
        if (has_range)
            snprintf(buf, cap, "expected %s from %lld to %lld",
                     d->kind == KIND_size ? "a size" : "an integer", min, max);
        else
            snprintf(buf, cap, "expected a non-negative integer");
        return;
    case KIND_string:
        snprintf(buf, cap, "at most %d bytes", WREF__OPTION_STRING_MAX - 1);
        return;
    case KIND_enum: {
        size_t len = 0;
        buf[0] = 0;
        len += (size_t)snprintf(buf, cap, "expected");
        const char *sep = " ";
        for (size_t i = 0; i < NENUM_VALUES && len < cap; i++) {
            if (strcmp(enum_values[i].option, d->name) != 0)
                continue;
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", sep, enum_values[i].name);
            sep = "|";
        }
        return;
    }
    }
}

/* ---- parsing ------------------------------------------------------------------------------- */

static int is_separator(char c)
{
    return c == ':' || c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const struct desc *find_desc(const char *name, size_t len)
{
    for (size_t i = 0; i < NDESCS; i++)
        if (strlen(descs[i].name) == len && memcmp(descs[i].name, name, len) == 0)
            return &descs[i];
    return NULL;
}

static int in_range(const struct desc *d, long long v)
{
    for (size_t i = 0; i < NRANGES; i++)
        if (strcmp(ranges[i].option, d->name) == 0)
            return v >= ranges[i].min && v <= ranges[i].max;
    return 1;
}

/* Parses an unsigned decimal; with `suffixes`, an optional k/m/g (binary) multiplier. */
static int parse_unsigned(const char *s, int suffixes, unsigned long long *out)
{
    if (*s < '0' || *s > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return 0;
    if (suffixes && *end != 0 && end[1] == 0) {
        unsigned shift;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return 0;
        }
        if (v > (ULLONG_MAX >> shift))
            return 0;
        v <<= shift;
        end++;
    }
    if (*end != 0)
        return 0;
    *out = v;
    return 1;
}

/* Stores value `v` (NUL-terminated) into the field. Returns 0 if v is not valid. */
static int set_value(struct wref__options *o, const struct desc *d, const char *v, size_t len)
{
    void *f = field(o, d);
    switch (d->kind) {
    case KIND_bool:
        if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
            *(bool *)f = true;
        else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
            *(bool *)f = false;
        else
            return 0;
        return 1;
    case KIND_int: {
        const char *digits = v[0] == '-' || v[0] == '+' ? v + 1 : v;
        if (*digits < '0' || *digits > '9')
            return 0;
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno != 0 || *end != 0 || x < INT_MIN || x > INT_MAX || !in_range(d, x))
            return 0;
        *(int *)f = (int)x;
        return 1;
    }
    case KIND_uint:
    case KIND_size: {
        unsigned long long x;
        if (!parse_unsigned(v, d->kind == KIND_size, &x))
            return 0;
        if (x > (d->kind == KIND_uint ? (unsigned long long)UINT_MAX : (unsigned long long)SIZE_MAX))
            return 0;
        if (x > (unsigned long long)LLONG_MAX || !in_range(d, (long long)x))
            return 0;
        if (d->kind == KIND_uint)
            *(unsigned *)f = (unsigned)x;
        else
            *(size_t *)f = (size_t)x;
        return 1;
    }
    case KIND_string:
        if (len >= WREF__OPTION_STRING_MAX)
            return 0;
        memcpy(f, v, len + 1);
        return 1;
    case KIND_enum:
        for (size_t i = 0; i < NENUM_VALUES; i++) {
            if (strcmp(enum_values[i].option, d->name) == 0 &&
                strcmp(enum_values[i].name, v) == 0) {
                *(enum wref__option_value *)f = enum_values[i].value;
                return 1;
            }
        }
        return 0;
    }
    return 0;
}

static void say(void (*warn)(const char *, void *), void *arg, const char *line)
{
    if (warn != NULL)
        warn(line, arg);
}

/* Clips s[0..len) for quoting in a warning. */
#define CLIP 60
#define CLIP_ARGS(s, len) (int)((len) > CLIP ? CLIP : (len)), printable(s, len), (len) > CLIP ? "..." : ""

/* s[0..min(len, CLIP)) with control characters shown as '?', so that a warning stays one
 * line whatever the input holds. Two alternating buffers: a warning quotes at most two. */
static const char *printable(const char *s, size_t len)
{
    static __thread char buf[2][CLIP + 1];
    static __thread unsigned which;
    char *out = buf[which++ & 1];
    size_t n = len > CLIP ? CLIP : len;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[n] = 0;
    return out;
}

int wref__options_parse(struct wref__options *o, const char *text,
                        void (*warn)(const char *line, void *arg), void *arg)
{
    char line[1024];
    int warnings = 0;
    const char *p = text != NULL ? text : "";

    for (;;) {
        while (is_separator(*p))
            p++;
        if (*p == 0)
            break;
        const char *key = p;
        while (*p != 0 && *p != '=' && !is_separator(*p))
            p++;
        size_t key_len = (size_t)(p - key);
        if (*p != '=') {
            snprintf(line, sizeof line,
                     "WARNING: wref-check: expected name=value, got '%.*s%s' (ignored)",
                     CLIP_ARGS(key, key_len));
            say(warn, arg, line);
            warnings++;
            continue;
        }
        p++; /* '=' */
        const char *val;
        size_t val_len;
        int unterminated = 0;
        if (*p == '\'' || *p == '"') {
            char quote = *p++;
            val = p;
            while (*p != 0 && *p != quote)
                p++;
            val_len = (size_t)(p - val);
            if (*p == quote)
                p++;
            else
                unterminated = 1;
        } else {
            val = p;
            for (;;) {
                while (*p != 0 && !is_separator(*p))
                    p++;
                /* ",word" without '=' continues the value: a list (report=text,json) */
                const char *q = p + 1;
                if (*p != ',')
                    break;
                while (*q != 0 && *q != '=' && !is_separator(*q))
                    q++;
                if (*q == '=' || q == p + 1)
                    break;
                p = q;
            }
            val_len = (size_t)(p - val);
        }

        const struct desc *d = find_desc(key, key_len);
        if (d == NULL) {
            snprintf(line, sizeof line,
                     "WARNING: wref-check: unknown option '%.*s%s' (ignored; help=1 lists the options)",
                     CLIP_ARGS(key, key_len));
            say(warn, arg, line);
            warnings++;
            continue;
        }
        char value[WREF__OPTION_STRING_MAX];
        int ok = !unterminated && val_len < sizeof value;
        if (ok) {
            memcpy(value, val, val_len);
            value[val_len] = 0;
            ok = set_value(o, d, value, val_len);
        }
        if (!ok) {
            char expected[256], current[WREF__OPTION_STRING_MAX + 8];
            format_expected(expected, sizeof expected, d);
            format_value(current, sizeof current, o, d);
            for (char *c = current; *c; c++)   /* a string value may hold a newline: one line */
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                    *c = '?';
            snprintf(line, sizeof line,
                     "WARNING: wref-check: bad value '%.*s%s' for option '%s' (%s%s; keeping %s%.*s)",
                     CLIP_ARGS(val, val_len), d->name, unterminated ? "unterminated quote; " : "",
                     expected, field_equal(o, &defaults, d) ? "default " : "", 200, current);
            say(warn, arg, line);
            warnings++;
        }
    }
    return warnings;
}

/* ---- help ---------------------------------------------------------------------------------- */

static void write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

void wref__options_help(int fd)
{
    char line[1024], def[WREF__OPTION_STRING_MAX + 8];
    static const char header[] =
        "wref-check options: WREF_CHECK_OPTIONS=\"name=value:name=value\" "
        "(separators ':' ',' or spaces; quote values with '...' or \"...\")\n";
    write_all(fd, header, sizeof header - 1);
    int n = snprintf(line, sizeof line, "  %-18s %-7s %-8s %s\n", "name", "type", "default",
                     "description");
    write_all(fd, line, (size_t)n);
    for (size_t i = 0; i < NDESCS; i++) {
        const struct desc *d = &descs[i];
        format_value(def, sizeof def, &defaults, d);
        n = snprintf(line, sizeof line, "  %-18s %-7s %-8s %s\n", d->name, kind_names[d->kind],
                     def, d->help);
        if (n > 0)
            write_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
}
